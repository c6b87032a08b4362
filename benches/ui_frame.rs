//! One full frame of the app's `Shell`, CPU side: the egui pass plus tessellation, headless,
//! at 1280×800. Each case is measured against an empty Shell frame in the same run:
//! (a) a demo-sized mesh, (b) a synthetic 500-workload / 5,000-edge graph, (c) 200,000 rows
//! in the tap log with the Tap tab showing. Live traffic is simulated by one new event per
//! frame, so the graph's derived data is rebuilt and the traffic dots move every frame.
//! Also: one layout step at 500/5,000. Before criterion runs, each case prints its p50 and
//! p99 over 300 frames, the figure the frame budget (16 ms) is about.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use egui::{Context, RawInput, Rect, pos2, vec2};
use meshlens::tap::{Endpoint, Event};
use meshlens::ui::layout::Layout;
use meshlens::ui::shell::{Shell, Tab};

#[path = "../tests/common/events.rs"]
mod events;

use events::{T0, deny, http, response_end, workload};

/// The allocator the binary uses (`src/main.rs`), so the figures are the app's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A request whose `stream` varies it: every 7th in plaintext, every 13th failing, every
/// 31st denied, latencies spread over 1–6 ms.
fn request(stream: u64, client: &Endpoint, server: &Endpoint) -> Event {
    let mut e = response_end(stream, T0 + stream as i64 * 500, client, server);
    e.tls.secured = !stream.is_multiple_of(7);
    let h = http(&mut e);
    h.path = "/orders".into();
    h.latency_us = Some(1_000 + stream % 5_000);
    if stream.is_multiple_of(13) {
        h.status = Some(503);
    }
    if stream.is_multiple_of(31) {
        deny(&mut e, "no authorization matched the client");
    }
    e
}

/// A shell fed `events` requests over `edges` of a graph with `nodes` workloads in `ns`
/// namespaces; returns it with the edge list, to keep traffic flowing per frame.
struct Case {
    shell: Shell,
    pairs: Vec<(Endpoint, Endpoint)>,
    stream: u64,
    ctx: Context,
    frame: u64,
}

impl Case {
    fn new(nodes: u32, ns: u32, edges: usize, events: usize, tab: Tab) -> Case {
        let mut shell = Shell::new("bench");
        shell.welcome = false;
        shell.tab = tab;
        let ends: Vec<Endpoint> = (0..nodes)
            .map(|i| workload(&format!("svc-{i}"), &format!("ns-{}", i % ns.max(1)), i + 1))
            .collect();
        let mut pairs = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        while pairs.len() < edges && nodes > 1 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let (a, b) = (
                (s % u64::from(nodes)) as usize,
                ((s >> 32) % u64::from(nodes)) as usize,
            );
            if a != b && seen.insert((a, b)) {
                pairs.push((ends[a].clone(), ends[b].clone()));
            }
        }
        let mut case = Case {
            shell,
            pairs,
            stream: 0,
            ctx: Context::default(),
            frame: 0,
        };
        for _ in 0..events {
            case.traffic();
        }
        // Let the layout settle, as it has after the first seconds in the app.
        for _ in 0..600 {
            case.frame();
            if !case.shell.graph.is_settling() {
                break;
            }
        }
        case
    }

    fn empty() -> Case {
        Case::new(0, 1, 0, 0, Tab::Graph)
    }

    /// One more request on the next edge in turn.
    fn traffic(&mut self) {
        if self.pairs.is_empty() {
            return;
        }
        let (a, b) = &self.pairs[self.stream as usize % self.pairs.len()];
        self.stream += 1;
        let e = request(self.stream, a, b);
        self.shell.apply(&e);
    }

    /// One frame: an event arrives, egui runs the Shell, the output is tessellated.
    fn frame(&mut self) -> usize {
        self.traffic();
        self.frame += 1;
        let input = RawInput {
            screen_rect: Some(Rect::from_min_size(pos2(0.0, 0.0), vec2(1280.0, 800.0))),
            time: Some(self.frame as f64 / 60.0),
            predicted_dt: 1.0 / 60.0,
            ..RawInput::default()
        };
        let shell = &mut self.shell;
        let mut out = self.ctx.run_ui(input, |ui| shell.ui(ui));
        // No GPU here to upload the font atlas to.
        out.textures_delta.clear();
        let prims = self.ctx.tessellate(out.shapes, out.pixels_per_point);
        prims.len()
    }
}

fn percentiles(name: &str, case: &mut Case) {
    let mut times: Vec<Duration> = (0..300)
        .map(|_| {
            let t = Instant::now();
            black_box(case.frame());
            t.elapsed()
        })
        .collect();
    times.sort_unstable();
    eprintln!(
        "{name}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over 300 frames",
        times[150].as_secs_f64() * 1e3,
        times[296].as_secs_f64() * 1e3,
        times[299].as_secs_f64() * 1e3,
    );
}

fn frames(c: &mut Criterion) {
    let mut cases = [
        ("empty_shell", Case::empty()),
        ("demo_graph", Case::new(8, 3, 12, 20_000, Tab::Graph)),
        (
            "graph_500_5000",
            Case::new(500, 10, 5_000, 20_000, Tab::Graph),
        ),
        ("tap_200k_rows", Case::new(8, 3, 12, 200_000, Tab::Tap)),
    ];
    for (name, case) in &mut cases {
        percentiles(name, case);
    }
    let mut g = c.benchmark_group("ui_frame");
    for (name, case) in &mut cases {
        g.bench_function(*name, |b| b.iter(|| black_box(case.frame())));
    }
    g.finish();
}

/// A layout step over 500 nodes and 5,000 edges, hot (every step moves every node).
fn layout(c: &mut Criterion) {
    let nodes: Vec<(u64, usize)> = (0..500).map(|i| (i, i as usize % 10)).collect();
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let edges: Vec<(u64, u64)> = (0..5_000)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 500, (s >> 32) % 500)
        })
        .collect();
    let mut g = c.benchmark_group("layout");
    g.bench_function("step_500_5000", |b| {
        b.iter_batched_ref(
            || {
                let mut l = Layout::default();
                l.sync(&nodes, &edges);
                l
            },
            |l| l.step(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, frames, layout);
criterion_main!(benches);
