//! `Mesh::apply` events/s on a realistic mix (`common/mix.rs`), against baselines in the same
//! run: cloning each event into a Vec (what keeping decoded copies would cost) and encoding
//! each to its Avro datum (what the event log spends keeping one).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meshlens::mesh::Mesh;
use meshlens::tap::{Event, wire};

mod common;

/// The allocator the binary uses (`src/main.rs`), so the figures are the app's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use common::mix;

const REQUESTS: usize = 10_000;

fn model(c: &mut Criterion) {
    let events = mix::events(REQUESTS);
    let mut g = c.benchmark_group("model");
    g.throughput(Throughput::Elements(events.len() as u64));

    g.bench_function("mesh_apply", |b| {
        let mut mesh = Mesh::default();
        b.iter(|| {
            for e in &events {
                mesh.apply(e);
            }
            black_box(mesh.generation())
        })
    });
    g.bench_function("baseline_clone_into_vec", |b| {
        let mut sink: Vec<Event> = Vec::with_capacity(events.len());
        b.iter(|| {
            sink.clear();
            sink.extend(events.iter().cloned());
            black_box(sink.len())
        })
    });
    g.bench_function("baseline_encode", |b| {
        let mut out = Vec::with_capacity(events.len() * 512);
        b.iter(|| {
            out.clear();
            for e in &events {
                wire::encode(e, &mut out);
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, model);
criterion_main!(benches);
