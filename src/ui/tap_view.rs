//! The tap view: the model's event log as a virtualized table (only visible rows are
//! decoded), following the newest events until paused, and the selected event in full.

use egui::{Align, RichText, TextEdit};
use egui_extras::{Column, TableBuilder};

use crate::mesh::Mesh;
use crate::tap::{Event, EventKind};

const ROW_HEIGHT: f32 = 20.0;

#[derive(Debug)]
pub struct TapView {
    pub follow: bool,
    pub selected: Option<u64>,
    /// The selected event, decoded once.
    detail: Option<(u64, Event)>,
}

impl Default for TapView {
    fn default() -> Self {
        TapView {
            follow: true,
            selected: None,
            detail: None,
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
fn endpoint(e: &crate::tap::Endpoint) -> String {
    if let Some(w) = &e.workload {
        return w.clone();
    }
    match e
        .identity
        .as_deref()
        .and_then(|i| i.split_once(".serviceaccount."))
    {
        Some((sa_ns, _)) => sa_ns.to_string(),
        None => e.addr.clone(),
    }
}

impl TapView {
    pub fn ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        let log = mesh.log();
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.follow, "Follow newest");
            ui.label(format!("{} events held", log.len()));
            if log.evicted() > 0 {
                ui.weak(format!("({} older ones dropped)", log.evicted()));
            }
        });
        if self.selected.is_some() {
            egui::Panel::right("tap_details")
                .resizable(true)
                .default_size(360.0)
                .show(ui, |ui| self.details_ui(ui, mesh));
        }
        // The table gets what the details panel leaves, and scrolls sideways when narrow.
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::horizontal().show(ui, |ui| self.table_ui(ui, mesh));
        });
    }

    fn table_ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        let log = mesh.log();
        let first = log.first_seq();
        let rows = log.len();
        let mut table = TableBuilder::new(ui)
            .striped(true)
            .animate_scrolling(false)
            .resizable(true)
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
        if self.follow && rows > 0 {
            table = table.scroll_to_row(rows - 1, Some(Align::BOTTOM));
        }
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
                    let seq = first + row.index() as u64;
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
                            endpoint(&e.source),
                            endpoint(&e.destination)
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
                            ui.label(if s >= 500 {
                                text.color(ui.visuals().error_fg_color)
                            } else {
                                text
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
        self.detail = mesh.log().get(seq).map(|e| (seq, e));
    }

    fn details_ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        ui.horizontal(|ui| {
            ui.heading("Event");
            if ui.button("Close").clicked() {
                self.selected = None;
                self.detail = None;
            }
        });
        let Some((seq, e)) = &self.detail else {
            ui.label("This event has left the log.");
            return;
        };
        if mesh.log().get(*seq).is_none() {
            ui.weak("(no longer in the log)");
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.label(format!("#{seq} · {} · {}", kind(e.kind), clock(e.time_us)));
            ui.label(format!("proxy {} ({:?})", e.proxy, e.direction));
            ui.separator();
            ui.strong("Identities");
            for (side, ep) in [("source", &e.source), ("destination", &e.destination)] {
                ui.label(format!(
                    "{side}: {} at {}",
                    ep.identity.as_deref().unwrap_or("(no identity)"),
                    ep.addr
                ));
            }
            ui.strong("TLS");
            ui.label(if e.tls.secured {
                "mTLS".to_string()
            } else {
                format!(
                    "plaintext{}",
                    e.tls
                        .reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )
            });
            if let Some(h) = &e.http {
                ui.strong("HTTP");
                ui.label(format!(
                    "{} {} {}{} ({})",
                    h.method,
                    h.authority,
                    h.path,
                    h.status.map(|s| format!(" -> {s}")).unwrap_or_default(),
                    h.protocol
                ));
                if let Some(err) = &h.proxy_error {
                    ui.colored_label(ui.visuals().error_fg_color, err);
                }
            }
            if let Some(d) = &e.decision {
                ui.strong("Policy decision");
                ui.label(format!("{}: {}", d.verdict, d.reason));
                ui.label(format!("server {}/{}", d.server_kind, d.server_name));
                if let (Some(k), Some(n)) = (&d.route_kind, &d.route_name) {
                    ui.label(format!("route {k}/{n}"));
                }
                if let (Some(k), Some(n)) = (&d.authz_kind, &d.authz_name) {
                    ui.label(format!("authorized by {k}/{n}"));
                }
                for t in &d.tried {
                    ui.label(format!(
                        "tried {}/{}: {}",
                        t.kind,
                        t.name,
                        if t.matched {
                            "matched".to_string()
                        } else {
                            t.miss.clone().unwrap_or_else(|| "no match".into())
                        }
                    ));
                }
            }
            for a in &e.avro {
                ui.separator();
                ui.strong(format!(
                    "Avro {} ({})",
                    a.subject.as_deref().unwrap_or("unknown subject"),
                    a.framing
                ));
                ui.label(format!(
                    "writer v{} · reader v{} · drift {} · {}",
                    a.version.map(|v| v.to_string()).unwrap_or("?".into()),
                    a.reader_version
                        .map(|v| v.to_string())
                        .unwrap_or("?".into()),
                    a.drift.as_deref().unwrap_or("none"),
                    if a.valid { "valid" } else { "invalid" }
                ));
                for err in &a.errors {
                    ui.colored_label(ui.visuals().error_fg_color, err);
                }
                if let Some(json) = &a.value_json {
                    let label = ui.label("value");
                    ui.add(
                        TextEdit::multiline(&mut json.as_str())
                            .code_editor()
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(label.id);
                }
            }
        });
    }
}
