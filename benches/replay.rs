//! Replaying a 1,000,000-event recording into the model: open the file, read every block,
//! fold each event in. Baselines in the same run: decoding the
//! same file to generic Avro values (the general-purpose decoder alone), and the model alone
//! over events already in memory.

mod common;

/// The allocator the binary uses (`src/main.rs`), so the figures are the app's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use common::mix;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meshlens::avro::{Container, Decoder};
use meshlens::mesh::Mesh;
use meshlens::sources::replay::{Options, Replay, Speed};
use meshlens::tap::codec;
use meshlens::tap::read_ahead::ReadAhead;
use meshlens::tap::recording::{Recorder, Recording};

const REQUESTS: usize = 333_334;

fn replay(c: &mut Criterion) {
    let events = mix::events(REQUESTS);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mix.avro");
    let mut recorder = Recorder::create(&path, false).expect("recorder");
    for e in &events {
        recorder.push(e).expect("push");
    }
    let stats = recorder.finish().expect("finish");
    let bytes = std::fs::read(&path).expect("read back");
    eprintln!(
        "recording: {} events, {} blocks, {:.1} MB",
        stats.events,
        stats.blocks,
        stats.bytes as f64 / 1e6
    );
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events.len() as u64));

    // A thread reads, decompresses and decodes blocks ahead while this one folds them.
    g.bench_function("replay_into_model", |b| {
        b.iter(|| {
            let mut mesh = Mesh::default();
            let recording = Recording::open(&path).expect("open");
            let mut ahead = ReadAhead::start(recording, 0).expect("read ahead");
            while let Some(batch) = ahead.blocking_next() {
                for (e, datum) in batch.expect("block").iter() {
                    mesh.apply_read(e, datum);
                }
            }
            black_box(mesh.generation())
        })
    });
    // The same on one thread: read, decode and fold each block in turn.
    g.bench_function("replay_one_thread", |b| {
        b.iter(|| {
            let mut mesh = Mesh::default();
            let mut recording = Recording::open(&path).expect("open");
            for i in 0..recording.blocks().len() {
                recording
                    .for_each_in_block(i, |e, datum| mesh.apply_read(e, datum))
                    .expect("block");
            }
            black_box(mesh.generation())
        })
    });
    // What a live view does: the replay source sends batches of events from its reader
    // while the model folds them on the receiving thread.
    g.bench_function("replay_source_into_model", |b| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        b.iter(|| {
            let mut mesh = Mesh::default();
            let (tx, mut rx) = tokio::sync::mpsc::channel(16);
            let options = Options {
                speed: Speed::Max,
                from_us: None,
                hold_at_end: false,
            };
            let recording = Recording::open(&path).expect("open");
            let replay = rt.block_on(async { Replay::start(recording, options, tx) });
            while let Some(batch) = rx.blocking_recv() {
                for (e, datum) in batch.iter() {
                    mesh.apply_read(e, datum);
                }
            }
            rt.block_on(replay.wait()).expect("replay");
            black_box(mesh.generation())
        })
    });
    // Opening finds the blocks without decompressing them; the index of their times
    // (what a seek or a timeline needs) is read on demand.
    g.bench_function("open_only", |b| {
        b.iter(|| black_box(Recording::open(&path).expect("open").events()))
    });
    g.bench_function("open_and_index", |b| {
        b.iter(|| black_box(Recording::open(&path).expect("open").span().expect("span")))
    });
    g.bench_function("baseline_decode_values", |b| {
        let decoder = Decoder::new(codec::schema().clone(), codec::schema().clone());
        b.iter(|| {
            let file = Container::open(&bytes).expect("container");
            let mut n = 0;
            for block in file.blocks() {
                n += file
                    .records(&decoder, &block.expect("block"))
                    .expect("records")
                    .len();
            }
            black_box(n)
        })
    });
    g.bench_function("baseline_model_only", |b| {
        b.iter(|| {
            let mut mesh = Mesh::default();
            for e in &events {
                mesh.apply(e);
            }
            black_box(mesh.generation())
        })
    });
    g.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
