//! The app's Shell on a synthetic mesh, to look at and time the graph view at scale:
//! `cargo run --example graph_scale -- 500 5000` opens a window with 500 workloads in ten
//! namespaces and 5,000 edges, with traffic flowing (100 requests per frame, 60 frames a
//! second). A third argument, `tap`, opens the Tap tab instead with 200,000 requests
//! already in the log.
//! With `MESHLENS_FRAME_LOG=1` it logs frame times like the app does.

use std::time::Instant;

use eframe::egui;
use meshlens::tap::{Endpoint, Event};
use meshlens::ui::frame_log::FrameLog;
use meshlens::ui::frame_pacing;
use meshlens::ui::shell::{Shell, Tab};
use meshlens::ui::software_gl;

#[path = "../tests/common/events.rs"]
mod events;

use events::{T0, deny, http, response_end};

/// Workload `i` of the synthetic mesh, in one of ten namespaces.
fn workload(i: u32) -> Endpoint {
    events::workload(&format!("svc-{i}"), &format!("ns-{}", i % 10), i)
}

/// A `GET /`, every 7th in plaintext, every 53rd denied, latencies spread over 1–5 ms.
fn request(stream: u64, client: &Endpoint, server: &Endpoint) -> Event {
    let mut e = response_end(stream, T0 + stream as i64 * 100, client, server);
    e.tls.secured = !stream.is_multiple_of(7);
    let h = http(&mut e);
    h.method = "GET".into();
    h.latency_us = Some(1_000 + stream % 4_000);
    if stream.is_multiple_of(53) {
        deny(&mut e, "no authorization matched the client");
    }
    e
}

struct Scale {
    shell: Shell,
    pairs: Vec<(Endpoint, Endpoint)>,
    stream: u64,
    log: Option<FrameLog>,
}

impl eframe::App for Scale {
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        software_gl::clear_color(visuals)
    }

    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        for _ in 0..100 {
            let (a, b) = &self.pairs[self.stream as usize % self.pairs.len()];
            self.stream += 1;
            let e = request(self.stream, a, b);
            self.shell.apply(&e);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(log) = &mut self.log {
            log.frame(ui.ctx(), frame.info().cpu_usage);
        }
        self.shell.ui(ui);
        frame_pacing::request_animation_frame(ui.ctx());
    }
}

fn main() -> eframe::Result {
    let started = Instant::now();
    software_gl::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| {
        args.get(i)
            .and_then(|a| a.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let nodes = number(0, 500).max(2);
    let edges = number(1, 5_000).max(1);
    let tap = args.get(2).is_some_and(|a| a == "tap");
    let ends: Vec<Endpoint> = (0..nodes as u32).map(|i| workload(i + 1)).collect();
    let mut pairs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    while pairs.len() < edges.min(nodes * (nodes - 1)) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let (a, b) = (
            (s % nodes as u64) as usize,
            ((s >> 32) % nodes as u64) as usize,
        );
        if a != b && seen.insert((a, b)) {
            pairs.push((ends[a].clone(), ends[b].clone()));
        }
    }
    let mut shell = Shell::new(format!("synthetic: {nodes} workloads, {edges} edges"));
    shell.welcome = false;
    let mut app = Scale {
        shell,
        pairs,
        stream: 0,
        log: FrameLog::from_env(started),
    };
    if tap {
        app.shell.tab = Tab::Tap;
    }
    for _ in 0..if tap { 200_000 } else { edges } {
        let (a, b) = &app.pairs[app.stream as usize % app.pairs.len()];
        app.stream += 1;
        let e = request(app.stream, a, b);
        app.shell.apply(&e);
    }
    eframe::run_native(
        "meshlens graph scale",
        software_gl::native_options(
            egui::ViewportBuilder::default().with_inner_size([1280.0, 800.0]),
        ),
        Box::new(move |_| Ok(Box::new(app))),
    )
}
