//! `meshlens proxy --config proxy.yaml`: one standalone sidecar (inbound, outbound, admin),
//! for a staging mesh or a container. Runs until Ctrl-C or SIGTERM.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::proxy::config::ProxyConfig;
use crate::proxy::sidecar::Sidecar;
use crate::tap::Publisher;

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// The sidecar's configuration (see the README's "Running a sidecar").
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Worker threads; linkerd2-proxy uses one core by default. With one, the runtime runs
    /// on the calling thread (no work stealing, no cross-thread wakeups).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
}

pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let config = ProxyConfig::load(&args.config)?;
    let unusable = certificate_not_valid(&config, std::time::SystemTime::now());
    let mut builder = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads);
        b
    };
    let rt = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let workload = format!("{}/{}", config.workload.namespace, config.workload.name);
        let sidecar = Sidecar::start(config, Publisher::default()).await?;
        {
            let a = &sidecar.addrs;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "meshlens proxy for {workload} as {}",
                sidecar.shared.local_identity()
            )?;
            writeln!(
                out,
                "admin    http://{} (/metrics /ready /live /identity; /tap over mTLS)",
                a.admin
            )?;
            writeln!(out, "inbound  {} (mTLS)", a.inbound)?;
            writeln!(out, "outbound {} (plain HTTP from the app)", a.outbound)?;
            for t in &a.tcp {
                writeln!(out, "tcp      {t} (opaque)")?;
            }
            out.flush()?;
        }
        if let Some(problem) = unusable {
            eprintln!(
                "warning: {problem}: peers refuse its handshakes until new files are written (`meshlens doctor {}` says how)",
                args.config.display()
            );
        }
        shutdown_signal().await;
        sidecar.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Why the sidecar's own certificate cannot be used now (expired, or not valid yet), if so.
/// The sidecar still starts: the files are reloaded when a renewed certificate is written.
fn certificate_not_valid(config: &ProxyConfig, now: std::time::SystemTime) -> Option<String> {
    let path = &config.identity.cert;
    let text = std::fs::read(path).ok()?;
    let leaf = crate::identity::certs_from_pem(&text)
        .ok()?
        .into_iter()
        .next()?;
    let info = crate::identity::CertInfo::parse(&leaf, 0).ok()?;
    let at = humantime::format_rfc3339_seconds;
    if now > info.not_after {
        Some(format!(
            "{}: the certificate expired at {}",
            path.display(),
            at(info.not_after)
        ))
    } else if now < info.not_before {
        Some(format!(
            "{}: the certificate is not valid until {}",
            path.display(),
            at(info.not_before)
        ))
    } else {
        None
    }
}

/// Ctrl-C, or SIGTERM from a container runtime.
pub(super) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
