//! The tap table's cell text: what each column says about an event, and the text laid out
//! ahead of the frame that shows it.
//!
//! egui shapes every string it has not shown in the previous frame, building a shaping plan
//! per call: tens of microseconds a cell. A followed flood brings a screenful of new rows
//! at every step (over 300 cells, 6-7 ms in one frame). `FollowPace` names the next step's
//! rows one step ahead, so their text is laid out a few cells per frame in between, and a
//! string that repeats (a method, a path, a pair of workloads) is laid out once while it
//! stays in use.

use std::sync::Arc;
use std::time::Instant;

use egui::{Color32, FontId, Galley, TextStyle, Ui, Visuals};
use foldhash::HashMap;

use crate::mesh::Mesh;
use crate::tap::{Endpoint, Event, EventKind};

/// The table's columns, in order.
pub const TITLES: [&str; 11] = [
    "#",
    "time",
    "event",
    "source -> destination",
    "method",
    "path",
    "status",
    "latency",
    "decision",
    "subject@version",
    "valid",
];

/// One cell: its text and colour (`None`: the theme's text colour).
pub type Cell = (String, Option<Color32>);

/// What each column says about event `seq`.
pub fn row(seq: u64, e: &Event, mesh: &Mesh, visuals: &Visuals) -> [Cell; 11] {
    let plain = |s: String| (s, None);
    let http = e.http.as_ref();
    let status = match http.and_then(|h| h.status) {
        Some(s @ 500..) => (s.to_string(), Some(visuals.error_fg_color)),
        Some(s @ 400..500) => (s.to_string(), Some(visuals.warn_fg_color)),
        Some(s) => plain(s.to_string()),
        None => plain(String::new()),
    };
    let decision = match &e.decision {
        Some(d) if d.verdict == "allow" => plain(d.verdict.clone()),
        Some(d) => (d.verdict.clone(), Some(visuals.error_fg_color)),
        None => plain(String::new()),
    };
    let subjects: Vec<String> = e
        .avro
        .iter()
        .filter_map(|a| {
            let s = a.subject.as_deref()?;
            Some(match a.version {
                Some(v) => format!("{s}@{v}"),
                None => s.to_string(),
            })
        })
        .collect();
    let validity = if e.avro.is_empty() {
        plain(String::new())
    } else if e.avro.iter().all(|a| a.valid) {
        plain("valid".to_string())
    } else {
        ("invalid".to_string(), Some(visuals.error_fg_color))
    };
    [
        plain(format!("#{seq}")),
        plain(clock(e.time_us)),
        plain(kind(e.kind).to_string()),
        plain(format!(
            "{} -> {}",
            endpoint(&e.source, mesh),
            endpoint(&e.destination, mesh)
        )),
        plain(http.map(|h| h.method.clone()).unwrap_or_default()),
        plain(http.map(|h| h.path.clone()).unwrap_or_default()),
        status,
        plain(
            http.and_then(|h| h.latency_us)
                .map(|l| format!("{:.1} ms", l as f64 / 1000.0))
                .unwrap_or_default(),
        ),
        decision,
        plain(subjects.join(", ")),
        validity,
    ]
}

fn kind(k: EventKind) -> &'static str {
    match k {
        EventKind::RequestStart => "request",
        EventKind::ResponseStart => "response",
        EventKind::ResponseEnd => "end",
        EventKind::TcpOpen => "tcp open",
        EventKind::TcpClose => "tcp close",
        EventKind::Lost => "lost",
    }
}

/// `HH:MM:SS.mmm` (UTC) of a microsecond timestamp.
pub fn clock(time_us: i64) -> String {
    let ms = time_us.div_euclid(1000);
    let s = ms.div_euclid(1000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s.rem_euclid(86_400) / 3600,
        s.rem_euclid(3600) / 60,
        s.rem_euclid(60),
        ms.rem_euclid(1000)
    )
}

/// How a row names a side, as the graph does (`namespace/workload`). An inbound proxy
/// knows its client by identity only: the graph knows which workload holds that identity
/// when the client's own proxy reported it too, so one caller has one name in every row.
/// Else the service account and namespace the identity proves; else the address.
fn endpoint(e: &Endpoint, mesh: &Mesh) -> String {
    let graph = mesh.graph();
    let node = e.identity.as_deref().and_then(|i| graph.find(i));
    let workload = e
        .workload
        .as_deref()
        .map(|w| (e.namespace.as_deref(), w))
        .or_else(|| node.and_then(|n| Some((n.namespace.as_deref(), n.workload.as_deref()?))));
    match workload {
        Some((Some(ns), w)) => format!("{ns}/{w}"),
        Some((None, w)) => w.to_string(),
        None => match e
            .identity
            .as_deref()
            .and_then(|i| i.split_once(".serviceaccount."))
        {
            Some((sa_ns, _)) => sa_ns.to_string(),
            None => e.addr.clone(),
        },
    }
}

/// Laid-out cell text, kept across frames.
#[derive(Debug, Default)]
pub struct CellText {
    galleys: HashMap<Cell, (Arc<Galley>, u64)>,
    /// Counts the table's steps; text unused for two steps is dropped.
    step: u64,
    /// The font and scale the text was laid out in; other ones start over.
    font: Option<(FontId, f32)>,
}

impl CellText {
    /// Drops everything when the font or the scale changed since the last frame.
    fn check_font(&mut self, ui: &Ui) {
        let font = (
            TextStyle::Body.resolve(ui.style()),
            ui.ctx().pixels_per_point(),
        );
        if self.font.as_ref() != Some(&font) {
            self.galleys.clear();
            self.font = Some(font);
        }
    }

    /// The cell's text laid out, from earlier frames when it was.
    pub fn galley(&mut self, ui: &Ui, cell: Cell) -> Arc<Galley> {
        self.check_font(ui);
        match self.touch(&cell) {
            Some(galley) => galley,
            None => self.lay_out(ui, cell),
        }
    }

    /// Lays out the cells not laid out yet until `deadline`; false when time ran out.
    pub fn prepare(
        &mut self,
        ui: &Ui,
        cells: impl IntoIterator<Item = Cell>,
        deadline: Instant,
    ) -> bool {
        self.check_font(ui);
        for cell in cells {
            if self.touch(&cell).is_some() {
                continue;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.lay_out(ui, cell);
        }
        true
    }

    /// The table moved on: text unused since the step before this one goes.
    pub fn next_step(&mut self) {
        self.step += 1;
        let keep_from = self.step.saturating_sub(2);
        self.galleys.retain(|_, (_, used)| *used >= keep_from);
    }

    /// The cell's galley if it is laid out, marked as used in this step.
    fn touch(&mut self, cell: &Cell) -> Option<Arc<Galley>> {
        let step = self.step;
        self.galleys.get_mut(cell).map(|(galley, used)| {
            *used = step;
            galley.clone()
        })
    }

    fn lay_out(&mut self, ui: &Ui, cell: Cell) -> Arc<Galley> {
        let font = self.font.clone().map(|(f, _)| f).unwrap_or_default();
        let (text, colour) = &cell;
        // The placeholder takes the theme's text colour where the galley is painted.
        let galley =
            ui.painter()
                .layout_no_wrap(text.clone(), font, colour.unwrap_or(Color32::PLACEHOLDER));
        self.galleys.insert(cell, (galley.clone(), self.step));
        galley
    }
}
