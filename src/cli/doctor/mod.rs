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

/// A certificate that ends sooner than this is flagged, so there is time to renew it.
const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 24 * 60 * 60);

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).multiple(true).args(["config", "tap"])))]
#[command(group(ArgGroup::new("credentials").args(["ca", "token"]).requires("tap")))]
pub struct DoctorArgs {
    /// A sidecar's proxy.yaml: checks that it parses; its certificate files (readable, not
    /// expiring within 7 days, key matching, chaining to the trust anchors, naming the
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

/// Whether a certificate is valid now and for the next 7 days.
fn expiry(what: &str, cert: &CertInfo, now: SystemTime, renew: &str) -> Check {
    let at = humantime::format_rfc3339_seconds;
    if now < cert.not_before {
        return Check::fail(
            what,
            format!(
                "{} is not valid until {} (in {})",
                cert.subject,
                at(cert.not_before),
                span(cert.not_before.duration_since(now).unwrap_or_default())
            ),
            "check this machine's clock, or wait until then",
        );
    }
    match cert.not_after.duration_since(now) {
        Err(past) => Check::fail(
            what,
            format!(
                "{} expired at {} ({} ago)",
                cert.subject,
                at(cert.not_after),
                span(past.duration())
            ),
            renew,
        ),
        Ok(left) if left < EXPIRY_WARNING => Check::warn(
            what,
            format!(
                "{} expires at {}, in {}",
                cert.subject,
                at(cert.not_after),
                span(left)
            ),
            renew,
        ),
        Ok(left) => Check::pass(
            what,
            format!(
                "{} valid until {} ({} left)",
                cert.subject,
                at(cert.not_after),
                span(left)
            ),
        ),
    }
}

/// A duration to the minute (or second, under one), as a person says it.
fn span(d: Duration) -> String {
    let secs = if d.as_secs() >= 60 {
        d.as_secs() / 60 * 60
    } else {
        d.as_secs()
    };
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}
