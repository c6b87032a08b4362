//! Replaying a 1,000,000-event recording into the model: read the container, decode every
//! event and fold it in. Baselines in the same run: decoding the same container to generic
//! Avro values (the general-purpose decoder alone), and the model alone over events already
//! in memory.

mod common;

use std::hint::black_box;

use common::mix;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meshlens::avro::{Codec, Container, ContainerFile, ContainerWriter, Decoder};
use meshlens::mesh::Mesh;
use meshlens::tap::codec;

const REQUESTS: usize = 333_334;

fn recording(events: &[meshlens::tap::Event]) -> Vec<u8> {
    let writer = ContainerWriter::new(codec::SCHEMA_JSON, Codec::Null).expect("tap schema");
    let mut file = ContainerFile::new(Vec::new(), writer).expect("header");
    let mut datum = Vec::new();
    for e in events {
        datum.clear();
        codec::encode(e, &mut datum);
        file.append_encoded(&datum).expect("append");
    }
    file.finish().expect("finish")
}

fn replay(c: &mut Criterion) {
    let events = mix::events(REQUESTS);
    let bytes = recording(&events);
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events.len() as u64));

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
    g.bench_function("replay_into_model", |b| {
        b.iter(|| {
            let mut mesh = Mesh::default();
            let file = Container::open(&bytes).expect("container");
            let decoder = codec::BlockDecoder::new(file.schema());
            for block in file.blocks() {
                for e in decoder.events(&block.expect("block")).expect("events") {
                    mesh.apply(&e);
                }
            }
            black_box(mesh.generation())
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
