//! The Metrics view: charts of requests per second, success and deny rate, and p50/p95/p99
//! latency for one edge or one workload's inbound traffic, over the last 1, 5 or 15 minutes.
//!
//! The points come from the model's per-edge series (`mesh::series`, 5 s buckets) through
//! `chart_series`, a pure function the tests call directly; they are recomputed only when
//! the model's generation or the selection changes.

use egui::Color32;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::mesh::Mesh;
use crate::mesh::graph::NodeId;
use crate::mesh::series::{SERIES_BUCKET_US, Sample};

/// What the charts show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    Edge {
        client: NodeId,
        server: NodeId,
    },
    /// Every edge into this node: the workload's inbound traffic.
    Workload(NodeId),
}

/// How far back the charts reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    OneMinute,
    FiveMinutes,
    FifteenMinutes,
}

impl Span {
    pub const ALL: [Span; 3] = [Span::OneMinute, Span::FiveMinutes, Span::FifteenMinutes];

    pub fn seconds(self) -> i64 {
        match self {
            Span::OneMinute => 60,
            Span::FiveMinutes => 300,
            Span::FifteenMinutes => 900,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Span::OneMinute => "1 m",
            Span::FiveMinutes => "5 m",
            Span::FifteenMinutes => "15 m",
        }
    }
}

/// The charts' points: x is the bucket's start in seconds before the model's newest event.
/// Rates and latencies are left out for buckets with no requests (a gap, not a zero).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartSeries {
    pub rps: Vec<[f64; 2]>,
    /// Percent of requests that succeeded.
    pub success_rate: Vec<[f64; 2]>,
    /// Percent of requests the server's policy denied.
    pub deny_rate: Vec<[f64; 2]>,
    /// Milliseconds.
    pub p50: Vec<[f64; 2]>,
    pub p95: Vec<[f64; 2]>,
    pub p99: Vec<[f64; 2]>,
}

/// The series of `subject` over `span`, ending at the model's clock.
pub fn chart_series(mesh: &Mesh, subject: Subject, span: Span) -> ChartSeries {
    let mut out = ChartSeries::default();
    let Some(now) = mesh.now_us() else {
        return out;
    };
    let buckets = (span.seconds() * 1_000_000 / SERIES_BUCKET_US) as usize;
    let mut sums: Vec<(i64, Option<Sample>)> = Vec::new();
    let edges = mesh.series().iter().filter(|((c, s), _)| match subject {
        Subject::Edge { client, server } => *c == client && *s == server,
        Subject::Workload(node) => *s == node,
    });
    for (_, series) in edges {
        let window = series.window.iter(now);
        let skip = series.window.buckets().saturating_sub(buckets);
        let window: Vec<_> = window.skip(skip).collect();
        if sums.is_empty() {
            sums = window.iter().map(|(t, _)| (*t, None)).collect();
        }
        for ((_, sum), (_, sample)) in sums.iter_mut().zip(window) {
            if let Some(sample) = sample {
                sum.get_or_insert_with(Sample::default).merge(sample);
            }
        }
    }
    let bucket_s = SERIES_BUCKET_US as f64 / 1e6;
    for (t, sample) in sums {
        let x = (t - now) as f64 / 1e6;
        let s = sample.unwrap_or_default();
        out.rps.push([x, f64::from(s.requests) / bucket_s]);
        if s.requests == 0 {
            continue;
        }
        let share = |n: u32| f64::from(n) * 100.0 / f64::from(s.requests);
        out.success_rate.push([x, share(s.successes)]);
        out.deny_rate.push([x, share(s.denied)]);
        for (q, v) in [
            (0.5, &mut out.p50),
            (0.95, &mut out.p95),
            (0.99, &mut out.p99),
        ] {
            if let Some(us) = s.latency_quantile(q) {
                v.push([x, us / 1e3]);
            }
        }
    }
    out
}

/// Everything the selector offers, with its label, sorted by label.
pub fn subjects(mesh: &Mesh) -> Vec<(Subject, String)> {
    let g = mesh.graph();
    let name = |id: NodeId| {
        g.node(id).map_or_else(
            || format!("node {id}"),
            |n| match (&n.namespace, &n.workload) {
                (Some(ns), Some(w)) => format!("{ns}/{w}"),
                _ => n.key.to_string(),
            },
        )
    };
    let mut servers: Vec<NodeId> = Vec::new();
    let mut out: Vec<(Subject, String)> = Vec::new();
    for ((client, server), _) in mesh.series().iter() {
        servers.push(*server);
        out.push((
            Subject::Edge {
                client: *client,
                server: *server,
            },
            format!("edge {} -> {}", name(*client), name(*server)),
        ));
    }
    servers.sort_unstable();
    servers.dedup();
    out.extend(servers.into_iter().map(|s| {
        (
            Subject::Workload(s),
            format!("workload {} (inbound)", name(s)),
        )
    }));
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

pub struct MetricsView {
    pub subject: Option<Subject>,
    pub span: Span,
    cache: Option<((u64, Subject, Span), ChartSeries)>,
    subjects: (u64, Vec<(Subject, String)>),
}

impl Default for MetricsView {
    fn default() -> Self {
        MetricsView {
            subject: None,
            span: Span::FiveMinutes,
            cache: None,
            subjects: (u64::MAX, Vec::new()),
        }
    }
}

impl MetricsView {
    /// The points on screen now (recomputed when the model or selection changed).
    pub fn series(&mut self, mesh: &Mesh) -> Option<&ChartSeries> {
        let subject = self.subject?;
        let key = (mesh.generation(), subject, self.span);
        if self.cache.as_ref().is_none_or(|(k, _)| *k != key) {
            self.cache = Some((key, chart_series(mesh, subject, self.span)));
        }
        self.cache.as_ref().map(|(_, s)| s)
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        if self.subjects.0 != mesh.generation() {
            self.subjects = (mesh.generation(), subjects(mesh));
        }
        if self.subject.is_none() {
            // A workload's inbound traffic first: the overview most people want.
            let list = &self.subjects.1;
            self.subject = list
                .iter()
                .find(|(s, _)| matches!(s, Subject::Workload(_)))
                .or(list.first())
                .map(|(s, _)| *s);
        }
        ui.horizontal(|ui| {
            let l = ui.label("Show:");
            let current = self
                .subjects
                .1
                .iter()
                .find(|(s, _)| Some(*s) == self.subject)
                .map_or("nothing yet", |(_, l)| l.as_str())
                .to_string();
            egui::ComboBox::from_id_salt("metrics_subject")
                .selected_text(current)
                .width(420.0)
                .show_ui(ui, |ui| {
                    for (s, label) in &self.subjects.1 {
                        ui.selectable_value(&mut self.subject, Some(*s), label);
                    }
                })
                .response
                .labelled_by(l.id);
            ui.separator();
            ui.label("Window:");
            for span in Span::ALL {
                ui.selectable_value(&mut self.span, span, span.label());
            }
        });
        let span = self.span;
        let Some(series) = self.series(mesh).cloned() else {
            ui.label("No requests yet: the charts fill in as traffic arrives.");
            return;
        };
        let height = ((ui.available_height() - 3.0 * 24.0) / 3.0).max(120.0);
        let x_min = -(span.seconds() as f64);
        let chart = |id: &str, y: &str| {
            Plot::new(id.to_string())
                .height(height)
                .legend(Legend::default())
                .include_x(x_min)
                .include_x(0.0)
                .include_y(0.0)
                .allow_scroll(false)
                .x_axis_label("seconds ago")
                .y_axis_label(y.to_string())
        };
        let line = |name: &str, points: &[[f64; 2]], color: Color32| {
            Line::new(
                name.to_string(),
                points.iter().copied().collect::<PlotPoints>(),
            )
            .color(color)
        };
        let (green, red) = (
            Color32::from_rgb(60, 170, 90),
            Color32::from_rgb(220, 70, 70),
        );
        let (blue, orange) = (
            Color32::from_rgb(90, 150, 230),
            Color32::from_rgb(230, 160, 50),
        );
        ui.label("Requests per second");
        chart("metrics_rps", "req/s").show(ui, |p| p.line(line("requests/s", &series.rps, blue)));
        ui.label("Success and deny rate (%)");
        chart("metrics_rates", "%").include_y(100.0).show(ui, |p| {
            p.line(line("success %", &series.success_rate, green));
            p.line(line("denied %", &series.deny_rate, red));
        });
        ui.label("Latency (ms)");
        chart("metrics_latency", "ms").show(ui, |p| {
            p.line(line("p50", &series.p50, blue));
            p.line(line("p95", &series.p95, orange));
            p.line(line("p99", &series.p99, red));
        });
    }
}
