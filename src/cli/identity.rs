//! `meshlens identity ...`: make a trust anchor and issuer (or adopt a team's own), issue
//! workload certificates, and inspect certificates. The files are the ones `linkerd install`
//! takes, so they move between the sandbox and a real mesh.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use humantime::{format_duration, format_rfc3339_seconds};

use crate::identity::{
    Ca, CertInfo, ControlPlane, DEFAULT_CONTROL_NS, IdentityError, IdentityName, LeafPolicy,
    certs_from_pem, renew_at,
};

const ANCHOR_FILE: &str = "trust-anchor.crt";
const ISSUER_FILE: &str = "issuer.crt";
const ISSUER_KEY_FILE: &str = "issuer.key";

#[derive(Subcommand, Debug)]
pub enum IdentityCommand {
    /// Create DIR/trust-anchor.crt, DIR/issuer.crt and DIR/issuer.key: a new trust anchor and
    /// issuer, or (with --from-anchor) a team's own, checked and copied.
    Init {
        /// Where to write the three files; existing ones are never overwritten.
        #[arg(long)]
        dir: PathBuf,
        /// The trust domain of a new anchor and issuer (control-plane namespace: linkerd)
        /// [default: cluster.local].
        #[arg(long, conflicts_with = "from_anchor")]
        trust_domain: Option<String>,
        /// An existing trust anchor (PEM; may hold several during a rotation).
        #[arg(long, value_name = "CRT", requires_all = ["issuer_cert", "issuer_key"])]
        from_anchor: Option<PathBuf>,
        /// The existing issuer certificate that chains to --from-anchor.
        #[arg(long, value_name = "CRT", requires = "from_anchor")]
        issuer_cert: Option<PathBuf>,
        /// The existing issuer's private key (ECDSA P-256; PKCS#8 or SEC1 PEM).
        #[arg(long, value_name = "KEY", requires = "from_anchor")]
        issuer_key: Option<PathBuf>,
    },
    /// Issue a workload certificate: writes PREFIX.crt (leaf, then issuer) and PREFIX.key.
    Issue {
        /// A directory made by `identity init`.
        #[arg(long)]
        dir: PathBuf,
        /// The workload's service account. `--sa meshlens-operator --ns meshlens` issues the
        /// operator identity, which every proxy lets tap by default (`meshlens tap`).
        #[arg(long)]
        sa: String,
        /// The workload's namespace.
        #[arg(long)]
        ns: String,
        /// How long the certificate lives (plus 20s clock skew on each side), e.g. 24h, 90m.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        lifetime: Duration,
        /// Where to write: PREFIX.crt and PREFIX.key.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
    /// Print a certificate's identity, chain, validity and time left.
    Inspect {
        /// A PEM file: a leaf with its chain, or any certificate.
        cert: PathBuf,
    },
}

pub fn run(cmd: IdentityCommand) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    match cmd {
        IdentityCommand::Init {
            dir,
            trust_domain,
            from_anchor,
            issuer_cert,
            issuer_key,
        } => {
            let ca = match (from_anchor, issuer_cert, issuer_key) {
                (Some(anchor), Some(cert), Some(key)) => Ca::load(&anchor, &cert, &key, now)?,
                _ => {
                    let trust_domain = trust_domain.as_deref().unwrap_or("cluster.local");
                    Ca::generate(&ControlPlane::new(DEFAULT_CONTROL_NS, trust_domain)?, now)?
                }
            };
            init(&dir, &ca)
        }
        IdentityCommand::Issue {
            dir,
            sa,
            ns,
            lifetime,
            out,
        } => issue(&dir, &sa, &ns, lifetime, &out, now),
        IdentityCommand::Inspect { cert } => inspect(&cert, now),
    }
}

fn init(dir: &Path, ca: &Ca) -> anyhow::Result<ExitCode> {
    let paths = [ANCHOR_FILE, ISSUER_FILE, ISSUER_KEY_FILE].map(|f| dir.join(f));
    // Overwriting would orphan every certificate issued so far; refuse before writing anything.
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        bail!(
            "{} already exists; remove the old CA first or choose another --dir",
            existing.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let [anchor, issuer, key] = &paths;
    write_new(anchor, &ca.bundle().to_pem(), false)?;
    write_new(issuer, &ca.issuer_pem(), false)?;
    write_new(key, &ca.issuer_key_pem(), true)?;
    let info = ca.issuer_info();
    out!(
        "trust anchor  {} ({} anchor{})",
        anchor.display(),
        ca.bundle().len(),
        if ca.bundle().len() == 1 { "" } else { "s" }
    );
    out!(
        "issuer        {} ({}, valid until {})",
        issuer.display(),
        info.subject,
        format_rfc3339_seconds(info.not_after)
    );
    out!("issuer key    {} (mode 0600)", key.display());
    Ok(ExitCode::SUCCESS)
}

fn issue(
    dir: &Path,
    sa: &str,
    ns: &str,
    lifetime: Duration,
    out: &Path,
    now: SystemTime,
) -> anyhow::Result<ExitCode> {
    let ca = Ca::load(
        &dir.join(ANCHOR_FILE),
        &dir.join(ISSUER_FILE),
        &dir.join(ISSUER_KEY_FILE),
        now,
    )?;
    let control_plane = ca.control_plane().with_context(|| {
        format!(
            "{}: the issuer's name {:?} is not identity.<control-ns>.<trust-domain>, so it names \
             no trust domain for workload identities",
            dir.join(ISSUER_FILE).display(),
            ca.issuer_info().subject
        )
    })?;
    let name = control_plane.identity(sa, ns)?;
    let policy = LeafPolicy {
        lifetime,
        ..LeafPolicy::default()
    };
    let leaf = ca.issue(&name, &policy, now)?;
    let (crt, key) = (with_suffix(out, ".crt"), with_suffix(out, ".key"));
    write(&crt, &leaf.chain_pem(), false)?;
    write(&key, &leaf.key_pem(), true)?;
    out!("identity   {name}");
    out!(
        "files      {} (leaf, issuer), {}",
        crt.display(),
        key.display()
    );
    out!(
        "valid      {} to {}",
        format_rfc3339_seconds(leaf.not_before()),
        format_rfc3339_seconds(leaf.not_after())
    );
    out!("renew at   {}", format_rfc3339_seconds(leaf.renew_at()));
    Ok(ExitCode::SUCCESS)
}

fn inspect(path: &Path, now: SystemTime) -> anyhow::Result<ExitCode> {
    let text = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let in_file = |e: IdentityError| e.in_file(path);
    let chain = certs_from_pem(&text)
        .map_err(in_file)?
        .iter()
        .enumerate()
        .map(|(i, der)| CertInfo::parse(der, i + 1))
        .collect::<Result<Vec<_>, _>>()
        .map_err(in_file)?;
    let leaf = &chain[0];

    match leaf.identity() {
        Some(identity) => {
            out!("identity   {identity}");
            if let Ok(name) = IdentityName::parse(identity) {
                let cp = name.control_plane();
                out!(
                    "           service account {}, namespace {}, control plane {}, trust domain {}",
                    name.service_account(),
                    name.namespace(),
                    cp.ns(),
                    cp.trust_domain()
                );
            }
        }
        None => out!("identity   none (no DNS or URI subject alternative name)"),
    }
    out!("chain");
    for (i, cert) in chain.iter().enumerate() {
        let role = match (cert.is_ca, cert.is_self_signed()) {
            (false, _) => "leaf",
            (true, false) => "issuer",
            (true, true) => "root",
        };
        out!("  {i}  {role:<6}  {}", cert.subject);
        out!(
            "             issued by {}; {}, {}",
            cert.issuer,
            cert.key,
            cert.signature
        );
        out!(
            "             valid {} to {}",
            format_rfc3339_seconds(cert.not_before),
            format_rfc3339_seconds(cert.not_after)
        );
    }
    let lifetime = leaf
        .not_after
        .duration_since(leaf.not_before)
        .unwrap_or_default();
    out!(
        "valid      {} to {} ({})",
        format_rfc3339_seconds(leaf.not_before),
        format_rfc3339_seconds(leaf.not_after),
        format_duration(lifetime)
    );
    let left = if now < leaf.not_before {
        format!(
            "not valid yet (starts in {})",
            format_duration(whole(leaf.not_before.duration_since(now)))
        )
    } else if now >= leaf.not_after {
        format!(
            "expired {} ago",
            format_duration(whole(now.duration_since(leaf.not_after)))
        )
    } else {
        format!(
            "{} (renew at {})",
            format_duration(whole(leaf.not_after.duration_since(now))),
            format_rfc3339_seconds(renew_at(leaf.not_before, leaf.not_after))
        )
    };
    out!("time left  {left}");
    Ok(ExitCode::SUCCESS)
}

fn whole(d: Result<Duration, std::time::SystemTimeError>) -> Duration {
    Duration::from_secs(d.unwrap_or_default().as_secs())
}

/// `out/web` + `.crt` = `out/web.crt`, even when the prefix itself has dots (`web.shop`).
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(prefix.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

fn write_new(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    write_with(options, path, text, secret)
}

fn write(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    write_with(options, path, text, secret)
}

/// Private keys are created owner-only (0600), and tightened if the file already existed.
fn write_with(
    mut options: OpenOptions,
    path: &Path,
    text: &str,
    secret: bool,
) -> anyhow::Result<()> {
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        if path.exists() {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {}", path.display()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = secret;
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}
