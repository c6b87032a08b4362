//! CPU time per thread for one replay of the 1,000,002-event bench recording: pipelined
//! (`ReadAhead`), on one thread, and the model alone. On a shared machine the wall time of a
//! criterion run says more about the neighbours than about the code; the CPU each thread
//! spends does not, and the slower thread of the pipeline is what a quiet machine would wait
//! for. Linux only (it reads /proc).
//!
//! ```sh
//! cargo build --profile bench --no-default-features --example replay_cpu
//! target/release/examples/replay_cpu
//! ```

#[path = "../benches/common/mix.rs"]
mod mix;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use meshlens::mesh::Mesh;
use meshlens::tap::read_ahead::ReadAhead;
use meshlens::tap::recording::{Recorder, Recording};

/// User plus system CPU seconds from a /proc `stat` file.
fn cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).expect("/proc is readable");
    let after_name = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks = |i: usize| fields[i].parse::<f64>().unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let events = mix::events(333_334);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mix.avro");
    let mut recorder = Recorder::create(&path, false).expect("recorder");
    for e in &events {
        recorder.push(e).expect("push");
    }
    recorder.finish().expect("finish");
    for round in 0..3 {
        for mode in ["pipelined", "one_thread", "model_only"] {
            let process = cpu_seconds("/proc/self/stat");
            let this_thread = cpu_seconds("/proc/thread-self/stat");
            let wall = Instant::now();
            let mut mesh = Mesh::default();
            match mode {
                "pipelined" => {
                    let recording = Recording::open(&path).expect("open");
                    let mut ahead = ReadAhead::start(recording, 0).expect("read ahead");
                    while let Some(batch) = ahead.blocking_next() {
                        for (e, datum) in batch.expect("block").iter() {
                            mesh.apply_read(e, datum);
                        }
                    }
                    ahead.finish().expect("finish");
                }
                "one_thread" => {
                    let mut recording = Recording::open(&path).expect("open");
                    for i in 0..recording.blocks().len() {
                        recording
                            .for_each_in_block(i, |e, datum| mesh.apply_read(e, datum))
                            .expect("block");
                    }
                }
                _ => events.iter().for_each(|e| mesh.apply(e)),
            }
            let wall = wall.elapsed().as_secs_f64();
            let main = cpu_seconds("/proc/thread-self/stat") - this_thread;
            let other = cpu_seconds("/proc/self/stat") - process - main;
            println!(
                "{round} {mode:10}  wall {wall:.2} s  cpu: this thread {main:.2} s, others {other:.2} s"
            );
        }
    }
}
