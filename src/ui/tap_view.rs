//! The tap view: the model's event log as a virtualized table (only visible rows are
//! decoded), narrowed by a query, following the newest events until paused, with the
//! selected event in a side panel and the shown rows exportable.

use std::sync::Arc;

use egui::{Align, RichText, TextEdit};
use egui_extras::{Column, TableBuilder};

use super::file_dialog::{Browse, Mode};
use super::outcome::outcome_ui;
use super::software_gl;
use super::tap_export::{Export, Format};
use super::tap_inspector::EventDetail;
use super::tap_rows::{FilteredRows, FollowPace};
use crate::mesh::Mesh;
use crate::mesh::query::{Query, QueryError, SYNTAX_HELP};
use crate::sources::registry_watch::Snapshot;
use crate::tap::{Endpoint, EventKind};

const ROW_HEIGHT: f32 = 20.0;

#[derive(Debug)]
pub struct TapView {
    /// Keep the newest row in view; scrolling up pauses it.
    pub follow: bool,
    pub selected: Option<u64>,
    /// What is typed in the filter box.
    pub query_text: String,
    /// Why `query_text` did not parse; the last query that did stays applied.
    pub query_error: Option<QueryError>,
    pub export: Export,
    pub show_export: bool,
    rows: FilteredRows,
    /// The newest row scrolled to while following.
    followed: Option<u64>,
    pace: FollowPace,
    /// The selected event, decoded once.
    detail: Option<EventDetail>,
    /// The registry the Schemas view last loaded, for the inspector's writer schemas.
    registry: Option<Arc<Snapshot>>,
    /// The Schemas view is loading a registry.
    registry_loading: bool,
    browse: Browse,
}

impl Default for TapView {
    fn default() -> Self {
        TapView {
            follow: true,
            selected: None,
            query_text: String::new(),
            query_error: None,
            export: Export::default(),
            show_export: false,
            rows: FilteredRows::default(),
            followed: None,
            pace: FollowPace::default(),
            detail: None,
            registry: None,
            registry_loading: false,
            browse: Browse::default(),
        }
    }
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
fn clock(time_us: i64) -> String {
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

/// The workload's name; else the service account and namespace its identity proves (an
/// inbound proxy knows its client only by identity); else the address.
/// How a row names a side, as the graph does (`namespace/workload`). An inbound proxy
/// knows its client by identity only: the graph knows which workload holds that identity
/// when the client's own proxy reported it too, so one caller has one name in every row.
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

impl TapView {
    /// The rows currently shown, as sequence numbers, oldest first.
    pub fn shown(&self, mesh: &Mesh) -> Vec<u64> {
        self.rows.all(mesh.log())
    }

    /// The selected event as the inspector shows it.
    pub fn detail(&self) -> Option<&EventDetail> {
        self.detail.as_ref()
    }

    /// `registry`: the Schemas view's snapshot, and whether it is loading one; the inspector
    /// reads writer schemas from it.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        mesh: &Mesh,
        registry: Option<&Arc<Snapshot>>,
        registry_loading: bool,
    ) {
        self.registry = registry.cloned();
        self.registry_loading = registry_loading;
        if let Some(d) = &self.detail
            && !d.built_with(registry)
        {
            self.detail = Some(EventDetail::new(d.seq, d.event.clone(), registry));
        }
        self.export.poll();
        if self.rows.update(mesh.log()) {
            ui.request_repaint();
        }
        self.toolbar(ui, mesh);
        if self.show_export {
            self.export_ui(ui, mesh);
        }
        if self.selected.is_some() {
            egui::Panel::right("tap_details")
                .frame(software_gl::panel_frame(ui.style()))
                .resizable(true)
                .default_size(420.0)
                .show(ui, |ui| self.details_ui(ui, mesh));
        }
        // The table gets what the details panel leaves, and scrolls sideways when narrow.
        software_gl::central_panel(ui.style()).show(ui, |ui| {
            if self.rows.is_empty(mesh.log()) && self.rows.progress(mesh.log()) >= 1.0 {
                ui.weak(if mesh.log().is_empty() {
                    "No events yet: they appear here as proxies report them."
                } else {
                    "No held event matches the filter."
                });
            }
            // Scrolling up (wheel or trackpad) over the table pauses following; read before
            // a scroll area consumes it.
            if self.follow
                && ui.rect_contains_pointer(ui.max_rect())
                && ui.input(|i| i.smooth_scroll_delta.y > 0.0)
            {
                self.follow = false;
            }
            egui::ScrollArea::horizontal().show(ui, |ui| self.table_ui(ui, mesh));
        });
    }

    fn toolbar(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        let log = mesh.log();
        ui.horizontal(|ui| {
            let label = ui.label("Filter");
            let edit = ui
                .add(
                    TextEdit::singleline(&mut self.query_text)
                        .hint_text("to:orders status:5xx subject:OrderPlaced invalid")
                        .desired_width(420.0),
                )
                .labelled_by(label.id)
                .on_hover_text(SYNTAX_HELP);
            if edit.changed() {
                self.apply_query();
            }
            ui.separator();
            ui.toggle_value(&mut self.follow, "Follow newest")
                .on_hover_text("Keep the newest event in view; scrolling up pauses");
            if !self.follow && ui.button("Jump to newest").clicked() {
                self.follow = true;
            }
            ui.separator();
            let shown = self.rows.len(log);
            if self.rows.query().is_empty() {
                ui.label(format!("{} events held", log.len()));
            } else {
                ui.label(format!("{shown} of {} events", log.len()));
            }
            if log.evicted() > 0 {
                ui.weak(format!("({} older ones dropped)", log.evicted()));
            }
            ui.separator();
            ui.toggle_value(&mut self.show_export, "Export…");
        });
        match &self.query_error {
            Some(err) => {
                ui.colored_label(ui.visuals().error_fg_color, err.to_string());
            }
            None => {
                let done = self.rows.progress(log);
                if done < 1.0 {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.weak(format!("Filtering… {:.0}%", done * 100.0));
                    });
                }
            }
        }
    }

    /// Parses the filter text; a query that parses replaces the applied one.
    fn apply_query(&mut self) {
        match Query::parse(&self.query_text) {
            Ok(q) => {
                self.query_error = None;
                if &q != self.rows.query() {
                    self.rows.set_query(q);
                }
            }
            Err(e) => self.query_error = Some(e),
        }
    }

    fn export_ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        ui.horizontal(|ui| {
            let label = ui.label("Save to");
            ui.add(TextEdit::singleline(&mut self.export.path).desired_width(320.0))
                .labelled_by(label.id);
            self.browse
                .button(ui, "export", Mode::Save, &mut self.export.path);
            for f in [Format::Csv, Format::JsonLines, Format::JsonArray] {
                if ui
                    .selectable_label(self.export.format == f, f.label())
                    .clicked()
                {
                    self.export.set_format(f);
                }
            }
            let n = self.rows.len(mesh.log());
            let save = ui.add_enabled(
                !self.export.running(),
                egui::Button::new(format!("Save {n} rows")),
            );
            if save.clicked() {
                let log = mesh.log();
                let events = self
                    .rows
                    .all(log)
                    .into_iter()
                    .filter_map(|seq| Some((seq, log.get(seq)?)))
                    .collect();
                let ctx = ui.ctx().clone();
                self.export.start(events, move || ctx.request_repaint());
            }
            if self.export.running() {
                ui.spinner();
            }
            outcome_ui(ui, &self.export.outcome);
        });
        self.browse.problem_ui(ui, "export");
    }

    fn table_ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        let log = mesh.log();
        let mut rows = self.rows.len(log);
        if self.follow {
            let newest = self.rows.seq(log, rows.wrapping_sub(1));
            let (shown, wait) = self.pace.step(newest, ui.input(|i| i.time));
            if let Some(seq) = shown {
                rows = self.rows.len_through(log, seq);
            }
            if let Some(wait) = wait {
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_secs_f64(wait));
            }
        }
        // A click anywhere on a row selects it, so cell text must not take the click.
        ui.style_mut().interaction.selectable_labels = false;
        let mut table = TableBuilder::new(ui)
            .striped(true)
            .animate_scrolling(false)
            .resizable(true)
            .sense(egui::Sense::click())
            .cell_layout(egui::Layout::left_to_right(Align::Center))
            .column(Column::auto().at_least(50.0))
            .column(Column::auto().at_least(90.0))
            .column(Column::auto().at_least(60.0))
            .column(Column::auto().at_least(170.0).clip(true))
            .column(Column::auto().at_least(50.0))
            .column(Column::initial(140.0).clip(true))
            .column(Column::auto().at_least(45.0))
            .column(Column::auto().at_least(60.0))
            .column(Column::auto().at_least(60.0))
            .column(Column::initial(150.0).clip(true))
            .column(Column::remainder().at_least(60.0));
        // Scrolled only when the newest row changed: asking every frame makes the scroll
        // area repaint forever.
        let newest = self.rows.seq(log, rows.wrapping_sub(1));
        if self.follow && rows > 0 && self.followed != newest {
            table = table.scroll_to_row(rows - 1, Some(Align::BOTTOM));
        }
        self.followed = if self.follow { newest } else { None };
        let mut clicked = None;
        table
            .header(ROW_HEIGHT, |mut h| {
                for title in [
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
                ] {
                    h.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|body| {
                body.rows(ROW_HEIGHT, rows, |mut row| {
                    let Some(seq) = self.rows.seq(log, row.index()) else {
                        return;
                    };
                    let Some(e) = log.get(seq) else { return };
                    row.set_selected(self.selected == Some(seq));
                    row.col(|ui| {
                        if ui
                            .selectable_label(self.selected == Some(seq), format!("#{seq}"))
                            .clicked()
                        {
                            clicked = Some(seq);
                        }
                    });
                    row.col(|ui| {
                        ui.label(clock(e.time_us));
                    });
                    row.col(|ui| {
                        ui.label(kind(e.kind));
                    });
                    row.col(|ui| {
                        ui.label(format!(
                            "{} -> {}",
                            endpoint(&e.source, mesh),
                            endpoint(&e.destination, mesh)
                        ));
                    });
                    let http = e.http.as_ref();
                    row.col(|ui| {
                        ui.label(http.map(|h| h.method.as_str()).unwrap_or(""));
                    });
                    row.col(|ui| {
                        ui.label(http.map(|h| h.path.as_str()).unwrap_or(""));
                    });
                    row.col(|ui| {
                        if let Some(s) = http.and_then(|h| h.status) {
                            let text = RichText::new(s.to_string());
                            ui.label(match s {
                                500.. => text.color(ui.visuals().error_fg_color),
                                400..500 => text.color(ui.visuals().warn_fg_color),
                                _ => text,
                            });
                        }
                    });
                    row.col(|ui| {
                        if let Some(l) = http.and_then(|h| h.latency_us) {
                            ui.label(format!("{:.1} ms", l as f64 / 1000.0));
                        }
                    });
                    row.col(|ui| {
                        if let Some(d) = &e.decision {
                            let text = RichText::new(&d.verdict);
                            ui.label(if d.verdict == "allow" {
                                text
                            } else {
                                text.color(ui.visuals().error_fg_color)
                            });
                        }
                    });
                    row.col(|ui| {
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
                        ui.label(subjects.join(", "));
                    });
                    row.col(|ui| {
                        if !e.avro.is_empty() {
                            if e.avro.iter().all(|a| a.valid) {
                                ui.label("valid");
                            } else {
                                ui.colored_label(ui.visuals().error_fg_color, "invalid");
                            }
                        }
                    });
                    if row.response().clicked() {
                        clicked = Some(seq);
                    }
                });
            });
        if let Some(seq) = clicked {
            self.select(seq, mesh);
        }
    }

    /// Selects an event and pauses following, so the row stays where the user found it.
    pub fn select(&mut self, seq: u64, mesh: &Mesh) {
        self.selected = Some(seq);
        self.follow = false;
        self.detail = mesh
            .log()
            .get(seq)
            .map(|e| EventDetail::new(seq, e, self.registry.as_ref()));
    }

    fn details_ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        ui.horizontal(|ui| {
            ui.heading("Event");
            if ui.button("Close").clicked() {
                self.selected = None;
                self.detail = None;
            }
        });
        let Some(detail) = &self.detail else {
            ui.label("This event has left the log.");
            return;
        };
        if mesh.log().get(detail.seq).is_none() {
            ui.weak("(no longer in the log)");
        }
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| detail.ui(ui, clock, self.registry_loading));
    }
}
