//! `meshlens sandbox up | validate | demo`: run a whole mesh in this process from a manifest
//! (the bundled storefront by default), check a manifest, or write the demo out to edit.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tokio::io::AsyncBufReadExt as _;

use crate::mesh::Mesh;
use crate::sandbox::scenario::StepReport;
use crate::sandbox::{Cluster, Manifest, Options, demo};

mod summary;

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// Bring up a sandbox mesh and play its scenario; Ctrl-C stops it.
    Up(UpArgs),
    /// Check a manifest: every problem, with its line.
    Validate {
        /// The manifest (sandbox.yaml).
        manifest: PathBuf,
    },
    /// Write the bundled demo (manifest, schemas, policy) to a directory, to read or edit.
    Demo {
        /// Where to write it (created; existing files are replaced).
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// The manifest (sandbox.yaml); the bundled storefront demo when absent.
    pub manifest: Option<PathBuf>,
    /// Stop after this long (`90s`, `5m`); default: until Ctrl-C.
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Seeds payloads, latencies and statuses: the same seed gives the same messages.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
    /// Once everything listens, write where (registry, proxies, tap credentials) as JSON.
    #[arg(long, value_name = "F")]
    pub ready_file: Option<PathBuf>,
    /// Play the scenario this many times faster (2 plays two minutes in one).
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub time_scale: f64,
    /// Do not play the timed scenario steps.
    #[arg(long)]
    pub no_scenario: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration (like 90s): {e}"))
}

pub fn run(cmd: SandboxCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SandboxCommand::Up(args) => up(args),
        SandboxCommand::Validate { manifest } => validate(&manifest),
        SandboxCommand::Demo { dir } => {
            let path = demo::write(&dir)?;
            out!(
                "wrote the storefront demo: meshlens sandbox up {}",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn validate(path: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let manifest = match Manifest::parse(path, &text) {
        Ok(m) => m,
        Err(e) => {
            out!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let problems = manifest.check();
    for p in &problems {
        let at = p.line.map(|l| format!(":{l}")).unwrap_or_default();
        out!("error: {}{at}: {}", path.display(), p.message);
    }
    let steps = manifest.scenario.len();
    out!(
        "{}: {} workloads, {} subjects, {steps} scenario steps: {} errors",
        path.display(),
        manifest.workloads.len(),
        manifest.schemas.subjects.len(),
        problems.len()
    );
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A directory removed when dropped: the bundled demo is written to one for the run.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    if !(args.time_scale > 0.0 && args.time_scale.is_finite()) {
        anyhow::bail!("--time-scale must be above 0");
    }
    let mut demo_dir = None;
    let path = match &args.manifest {
        Some(p) => p.clone(),
        None => {
            let dir = std::env::temp_dir().join(format!("meshlens-demo-{}", std::process::id()));
            let path = demo::write(&dir)?;
            demo_dir = Some(TempDir(dir));
            path
        }
    };
    let manifest = Manifest::load(&path)?;
    let options = Options {
        seed: args.seed,
        scenario: !args.no_scenario,
        time_scale: args.time_scale,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = rt.block_on(run_cluster(manifest, options, &args));
    // The stdin reader is a blocking read that only ends with a line or EOF: waiting for it
    // would keep the process alive after `--duration` until someone pressed Enter.
    rt.shutdown_background();
    drop(demo_dir);
    code
}

async fn run_cluster(
    manifest: Manifest,
    options: Options,
    args: &UpArgs,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let cluster = Cluster::start(manifest, options).await?;
    let mut sub = cluster.publisher().subscribe();
    if let Some(f) = &args.ready_file {
        cluster.write_ready(f)?;
    }
    print_ready(&cluster, started.elapsed())?;

    let mut mesh = Mesh::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    {
        let deadline = async {
            match args.duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let scenario = async {
            cluster.play(print_step).await;
            std::future::pending::<()>().await
        };
        let stop = super::proxy::shutdown_signal();
        // Step names typed on standard input run those steps now; a closed stdin just ends this.
        let mut stdin = Some(tokio::io::BufReader::new(tokio::io::stdin()).lines());
        tokio::pin!(deadline, scenario, stop);
        loop {
            tokio::select! {
                e = sub.recv() => match e {
                    Some(e) => mesh.apply(&e),
                    None => break,
                },
                _ = tick.tick() => {
                    let (up, total) = cluster.running().await;
                    let status = summary::Status {
                        elapsed_secs: cluster.elapsed().as_secs(),
                        up,
                        total,
                        mesh_failures: cluster.call_stats(None).await[5],
                    };
                    out!("{}", summary::line(&mesh, status));
                }
                line = async { stdin.as_mut()?.next_line().await.ok().flatten() }, if stdin.is_some() => {
                    match line.as_deref().map(str::trim) {
                        None => stdin = None,
                        Some("") => {}
                        Some(name) => match cluster.run_step(name).await {
                            Ok(report) => print_step(report),
                            Err(e) => out!("{e}"),
                        },
                    }
                }
                _ = &mut scenario => {}
                _ = &mut deadline => break,
                _ = &mut stop => break,
            }
        }
    }
    cluster.shutdown().await;
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn print_ready(cluster: &Cluster, took: Duration) -> anyhow::Result<()> {
    let r = cluster.ready();
    let mut out = std::io::stdout().lock();
    writeln!(out, "sandbox up in {} ms", took.as_millis())?;
    writeln!(out, "registry  {}", r.registry)?;
    writeln!(
        out,
        "{:<24} {:<22} {:<22} {:<22}",
        "workload", "admin (tap)", "inbound", "outbound"
    )?;
    for w in &r.workloads {
        writeln!(
            out,
            "{:<24} {:<22} {:<22} {:<22}",
            format!("{}/{}", w.namespace, w.name),
            w.admin,
            w.inbound,
            w.outbound
        )?;
    }
    let admins: Vec<&str> = r.workloads.iter().map(|w| w.admin.as_str()).collect();
    writeln!(
        out,
        "tap       meshlens tap {} --ca {} --cert {} --key {}",
        admins.join(" "),
        r.tap.ca.display(),
        r.tap.cert.display(),
        r.tap.key.display()
    )?;
    out.flush()?;
    Ok(())
}

fn print_step(report: StepReport) {
    let mut out = std::io::stdout().lock();
    let _ = match (&report.error, &report.say) {
        (Some(e), _) => writeln!(out, "step {} failed: {e}", report.label),
        (None, Some(say)) => writeln!(
            out,
            "step {} at {}s: {say}",
            report.label,
            report.at.as_secs()
        ),
        (None, None) => writeln!(out, "step {} at {}s", report.label, report.at.as_secs()),
    };
    let _ = out.flush();
}
