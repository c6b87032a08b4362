//! `meshlens replay FILE`: prints a recording's events as `meshlens tap` prints live ones,
//! paced as they were recorded (or faster).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::tap::{Output, print_event};
use crate::sources::replay::{Options, Replay, Speed};
use crate::tap::batch::Batch;
use crate::tap::recording::Recording;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A recording made by `meshlens record` (or any Avro container file of tap events).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// How fast: `1` is as recorded, `10` ten times faster, `max` as fast as it prints.
    #[arg(long, value_name = "N|max", default_value = "1", value_parser = parse_speed)]
    pub speed: Speed,
    /// Start this far into the recording (`90s`, `5m`).
    #[arg(long, value_name = "OFFSET", value_parser = humantime::parse_duration)]
    pub from: Option<Duration>,
    /// How to print: a table, or JSON.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

fn parse_speed(text: &str) -> Result<Speed, String> {
    if text.eq_ignore_ascii_case("max") {
        return Ok(Speed::Max);
    }
    let n: f64 = text
        .trim_end_matches(['x', 'X'])
        .parse()
        .map_err(|_| format!("{text:?} is not a number or max"))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("{text} is not a positive speed"));
    }
    Ok(Speed::Times(n))
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let mut recording = Recording::open(&args.file)?;
    if recording.ignored_bytes() > 0 {
        eprintln!(
            "{}: ignoring the last {} bytes, a block cut off when the recorder stopped; replaying the {} events before them",
            args.file.display(),
            recording.ignored_bytes(),
            recording.events()
        );
    }
    // Only an offset needs the span, which reads every block's times first.
    let from_us = match args.from {
        Some(offset) => {
            let offset = i64::try_from(offset.as_micros()).context("--from is too far")?;
            recording
                .span()?
                .map(|(start, _)| start.saturating_add(offset))
        }
        None => None,
    };
    let options = Options {
        speed: args.speed,
        from_us,
        hold_at_end: false,
    };
    let rt = super::connect::runtime()?;
    rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let replay = Replay::start(recording, options, tx);
        let printed = print_batches(&mut rx, args.output).await;
        drop(rx);
        replay.stop().await?;
        printed?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Prints the events of each batch until the replay ends or Ctrl-C.
async fn print_batches(
    rx: &mut tokio::sync::mpsc::Receiver<Batch>,
    output: Output,
) -> anyhow::Result<()> {
    loop {
        let batch = tokio::select! {
            b = rx.recv() => b,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(batch) = batch else {
            return Ok(());
        };
        for event in batch.events() {
            print_event(event, output)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_are_numbers_or_max() {
        assert_eq!(parse_speed("max"), Ok(Speed::Max));
        assert_eq!(parse_speed("10"), Ok(Speed::Times(10.0)));
        assert_eq!(parse_speed("0.5x"), Ok(Speed::Times(0.5)));
        assert!(parse_speed("0").is_err());
        assert!(parse_speed("fast").is_err());
    }
}
