//! `meshlens doctor [CONFIG] [--tap ADDR ...]`: checks a sidecar's configuration, or a
//! connection to a mesh's tap, and says in words what is wrong and how to fix it. One line per
//! check: `✓` fine, `!` works but needs a look, `✗` broken; the last two end with `→` and what
//! to do. Exit 1 when any check is `✗`.

mod connection;
mod proxy_config;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{ArgGroup, Args};

use crate::identity::CertInfo;

/// The share of a certificate's lifetime left when Linkerd's proxies renew it (at 70 %): a
/// certificate with less left missed its renewal, so it is flagged. A fresh 24-hour leaf
/// is not.
const RENEW_WHEN_LEFT: f64 = 0.3;

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).multiple(true).args(["config", "tap"])))]
#[command(group(ArgGroup::new("credentials").args(["ca", "token"]).requires("tap")))]
pub struct DoctorArgs {
    /// A sidecar's proxy.yaml: checks that it parses; its certificate files (readable, not
    /// past their renewal point, key matching, chaining to the trust anchors, naming the
    /// workload's identity); its policy directory; its registry; its ports.
    #[arg(value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// A proxy's admin address (host:port): checks the TCP connection, the TLS handshake and
    /// that your credentials (--ca, --cert, --key or --token) may tap it.
    #[arg(long, value_name = "ADDR", requires = "credentials")]
    pub tap: Option<String>,
    #[command(flatten)]
    pub auth: super::connect::TapAuthArgs,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let mut report = Report::default();
    if let Some(path) = &args.config {
        proxy_config::check(path, &mut report, now)?;
    }
    if let Some(addr) = &args.tap {
        connection::check(addr, &args.auth, &mut report, now)?;
    }
    Ok(if report.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Pass,
    Warn,
    Fail,
}

/// One check's outcome: what was checked, what was found, and for `!`/`✗` what to do.
#[derive(Debug)]
struct Check {
    mark: Mark,
    what: String,
    found: String,
    fix: Option<String>,
}

impl Check {
    fn pass(what: impl Into<String>, found: impl Into<String>) -> Check {
        Check {
            mark: Mark::Pass,
            what: what.into(),
            found: found.into(),
            fix: None,
        }
    }

    fn warn(what: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            mark: Mark::Warn,
            what: what.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(what: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            mark: Mark::Fail,
            what: what.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Prints each check as it completes, so a slow network check shows what came before it.
#[derive(Default)]
struct Report {
    failed: bool,
}

impl Report {
    fn add(&mut self, check: Check) -> anyhow::Result<()> {
        let mark = match check.mark {
            Mark::Pass => "✓",
            Mark::Warn => "!",
            Mark::Fail => "✗",
        };
        self.failed |= check.mark == Mark::Fail;
        match &check.fix {
            Some(fix) => out!("{mark} {}: {} → {fix}", check.what, check.found),
            None => out!("{mark} {}: {}", check.what, check.found),
        }
        Ok(())
    }
}

/// Whether a certificate is valid now and has not passed the point where it should have
/// been renewed (`RENEW_WHEN_LEFT` of its lifetime left).
fn expiry(what: &str, cert: &CertInfo, now: SystemTime, renew: &str) -> Check {
    let at = humantime::format_rfc3339_seconds;
    if now < cert.not_before {
        return Check::fail(
            what,
            format!(
                "{} is not valid until {} (in {})",
                cert.subject,
                at(cert.not_before),
                words(cert.not_before.duration_since(now).unwrap_or_default())
            ),
            "check this machine's clock, or wait until then",
        );
    }
    let lifetime = cert
        .not_after
        .duration_since(cert.not_before)
        .unwrap_or_default();
    match cert.not_after.duration_since(now) {
        Err(past) => Check::fail(
            what,
            format!(
                "{} expired at {} ({} ago)",
                cert.subject,
                at(cert.not_after),
                words(past.duration())
            ),
            renew,
        ),
        Ok(left) if left.as_secs_f64() < lifetime.as_secs_f64() * RENEW_WHEN_LEFT => Check::warn(
            what,
            format!(
                "{} expires at {}, in {}: less than 30% of its lifetime of {} is left, and it should have been renewed at 70%",
                cert.subject,
                at(cert.not_after),
                words(left),
                words(lifetime)
            ),
            renew,
        ),
        Ok(left) => Check::pass(
            what,
            format!(
                "{} valid until {} ({} left of {})",
                cert.subject,
                at(cert.not_after),
                words(left),
                words(lifetime)
            ),
        ),
    }
}

/// A duration as a person says it, to its two largest units: "23 hours 47 minutes",
/// "364 days 23 hours", "5 seconds".
fn words(d: Duration) -> String {
    let secs = d.as_secs();
    let units = [
        (secs / 86_400, "day"),
        (secs / 3_600 % 24, "hour"),
        (secs / 60 % 60, "minute"),
        (secs % 60, "second"),
    ];
    let Some(first) = units.iter().position(|(n, _)| *n > 0) else {
        return "0 seconds".into();
    };
    units[first..]
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(not_before: SystemTime, lifetime: Duration) -> CertInfo {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["orders.shop".into()]).unwrap();
        params.not_before = not_before.into();
        params.not_after = (not_before + lifetime).into();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        CertInfo::parse(&der, 0).unwrap()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_fresh_day_long_certificate_passes_and_one_past_its_renewal_warns() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let day = cert(start, 24 * HOUR);
        let check = expiry("certificate expiry", &day, start + HOUR, "renew");
        assert_eq!(check.mark, Mark::Pass, "{check:?}");
        assert!(
            check.found.contains("(23 hours left of 1 day)"),
            "{check:?}"
        );
        // Linkerd renews at 70 %: with 8 hours of 24 left, it should have been.
        let check = expiry("certificate expiry", &day, start + 16 * HOUR, "renew");
        assert_eq!(check.mark, Mark::Pass, "{check:?}");
        let check = expiry("certificate expiry", &day, start + 17 * HOUR, "renew");
        assert_eq!(check.mark, Mark::Warn, "{check:?}");
        assert!(
            check.found.contains(", in 7 hours: less than 30%"),
            "{check:?}"
        );
        let check = expiry("certificate expiry", &day, start + 25 * HOUR, "renew");
        assert_eq!(check.mark, Mark::Fail, "{check:?}");
        assert!(check.found.contains("(1 hour ago)"), "{check:?}");
        let check = expiry("certificate expiry", &day, start - HOUR, "renew");
        assert_eq!(check.mark, Mark::Fail, "{check:?}");
        assert!(check.found.contains("is not valid until"), "{check:?}");
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(words(Duration::from_secs(0)), "0 seconds");
        assert_eq!(words(Duration::from_secs(5)), "5 seconds");
        assert_eq!(words(Duration::from_secs(61)), "1 minute 1 second");
        assert_eq!(
            words(23 * HOUR + Duration::from_secs(47 * 60 + 12)),
            "23 hours 47 minutes"
        );
        assert_eq!(words(24 * HOUR + Duration::from_secs(19)), "1 day");
        assert_eq!(words(365 * 24 * HOUR), "365 days");
    }
}
