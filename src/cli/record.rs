//! `meshlens record ADDR... -o FILE`: saves the live events of proxies to a recording, the
//! tap stream's own Avro container format, until Ctrl-C or `--duration`. A block is written
//! at least every second, so a killed recorder loses at most the last second.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args};
use tokio::time::Instant;

use crate::tap::recording::{Recorder, RecordingError};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("credentials").required(true).args(["ca", "token"])))]
pub struct RecordArgs {
    /// Admin addresses of the proxies (host:port), e.g. 127.0.0.1:4191.
    #[arg(required = true, value_name = "ADDR")]
    pub addrs: Vec<String>,
    /// The recording to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Stop after this long (`30s`, `5m`); else at Ctrl-C.
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub auth: super::connect::TapAuthArgs,
    #[command(flatten)]
    pub filter: super::tap::FilterArgs,
}

enum Step {
    Event(Option<Box<crate::tap::Event>>),
    Flush,
    Stop,
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let filter = args.filter.filter()?;
    let auth = args.auth.auth()?;
    let mut recorder = Recorder::create(&args.output, args.force).map_err(|e| match e {
        RecordingError::Exists { .. } => anyhow::anyhow!("{e}: pass --force to replace it"),
        e => e.into(),
    })?;
    let rt = super::connect::runtime()?;
    let (client, mut rx, status) = {
        let _in_runtime = rt.enter();
        super::connect::start(&args.addrs, auth, filter)
    };
    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    // The file is written here, on the main thread, never on the runtime's workers.
    loop {
        let flush_at = recorder.flush_deadline();
        let step = rt.block_on(async {
            tokio::select! {
                e = rx.recv() => Step::Event(e.map(Box::new)),
                () = until(flush_at) => Step::Flush,
                () = until(deadline) => Step::Stop,
                _ = &mut ctrl_c => Step::Stop,
            }
        });
        match step {
            Step::Event(Some(e)) => recorder.push(&e)?,
            Step::Flush => recorder.flush_due(std::time::Instant::now())?,
            Step::Event(None) | Step::Stop => break,
        }
    }
    rt.block_on(async {
        status.abort();
        client.stop().await;
    });
    while let Ok(e) = rx.try_recv() {
        recorder.push(&e)?;
    }
    let stats = recorder.finish()?;
    out!(
        "{}: {} events in {} blocks, {} bytes; {} lost",
        args.output.display(),
        stats.events,
        stats.blocks,
        stats.bytes,
        stats.lost
    );
    Ok(ExitCode::SUCCESS)
}

/// Sleeps until `at`, or forever without one.
async fn until(at: Option<impl Into<Instant>>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
