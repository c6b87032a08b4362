//! Schemas & drift: the registry's subjects and versions (kept fresh by a
//! `sources::registry_watch` worker), a schema viewer, a side-by-side diff of two versions
//! with compatibility both ways, the compatibility matrix by level, and the model's drift
//! board with the writer versions in traffic over time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use egui::text::LayoutJob;
use egui::{Color32, FontId, RichText, ScrollArea, TextFormat};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::drift_board::{self, Board, short_party};
use super::schema_compare::{self, Comparison, FieldView, LEVELS, MatrixRow, changed_lines};
use super::software_gl;
use crate::avro::Schema;
use crate::mesh::Mesh;
use crate::mesh::drift::Status;
use crate::sources::registry_watch::{RegistryWatch, Snapshot, Target, Update, VersionInfo};

/// How often the registry is asked for new versions.
pub const POLL_EVERY: Duration = Duration::from_secs(3);

const GREEN: Color32 = Color32::from_rgb(46, 160, 67);
const AMBER: Color32 = Color32::from_rgb(214, 150, 20);
const RED: Color32 = Color32::from_rgb(210, 55, 55);
const GREY: Color32 = Color32::from_rgb(120, 120, 120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Schema,
    Diff,
    Matrix,
    Drift,
}

/// Derived data is kept with the key it was computed for.
struct Cached<K, V> {
    key: K,
    value: Arc<V>,
}

fn cached<K: PartialEq, V>(
    slot: &mut Option<Cached<K, V>>,
    key: K,
    f: impl FnOnce() -> V,
) -> Arc<V> {
    match slot {
        Some(c) if c.key == key => c.value.clone(),
        _ => {
            let value = Arc::new(f());
            *slot = Some(Cached {
                key,
                value: value.clone(),
            });
            value
        }
    }
}

/// Each writer version's (seconds before now, messages/s) points.
type Series = BTreeMap<u32, Vec<[f64; 2]>>;

/// A comparison with the text lines of both sides and which of them changed.
struct SideBySide {
    comparison: Comparison,
    old: Vec<(String, bool)>,
    new: Vec<(String, bool)>,
}

pub struct SchemasView {
    /// What the registry field holds (a URL or a directory).
    pub registry_text: String,
    watch: Option<RegistryWatch>,
    /// A target to load once the view has a context to wake it with.
    pending: Option<Target>,
    pub snapshot: Option<Arc<Snapshot>>,
    /// Why the last load failed, in words.
    pub error: Option<String>,
    pub subject: Option<String>,
    pub pane: Pane,
    pub version: Option<u32>,
    pub old: Option<u32>,
    pub new: Option<u32>,
    /// Whether the side-by-side texts hide unchanged lines far from a change.
    pub fold: bool,
    /// Snapshots received; keys the caches.
    loads: u64,
    /// A load was asked for and has not answered yet.
    loading: bool,
    fields: Option<Cached<(u64, String, u32), Vec<FieldView>>>,
    side_by_side: Option<Cached<(u64, String, u32, u32), SideBySide>>,
    matrix: Option<Cached<(u64, String), Vec<MatrixRow>>>,
    board: Option<Cached<(u64, u64, String), Board>>,
    series: Option<Cached<(u64, String), Series>>,
}

impl Default for SchemasView {
    fn default() -> Self {
        SchemasView {
            registry_text: String::new(),
            watch: None,
            pending: None,
            snapshot: None,
            error: None,
            subject: None,
            pane: Pane::Drift,
            version: None,
            old: None,
            new: None,
            fold: true,
            loads: 0,
            loading: false,
            fields: None,
            side_by_side: None,
            matrix: None,
            board: None,
            series: None,
        }
    }
}

impl SchemasView {
    /// Whether a registry load is under way (the first, or after pointing elsewhere).
    pub fn is_loading(&self) -> bool {
        self.loading
    }

    /// Whether a registry was given (by the user or by `offer_registry`).
    pub fn has_registry(&self) -> bool {
        self.watch.is_some() || self.pending.is_some()
    }

    /// The running sandbox's registry, used unless one was already given.
    pub fn offer_registry(&mut self, url: &str) {
        if !self.has_registry() {
            self.registry_text = url.to_string();
            self.pending = Target::parse(url).ok();
            self.loading = self.pending.is_some();
        }
    }

    /// Asks the worker to load `registry_text`; a bad entry is reported in place.
    pub fn load(&mut self) {
        match Target::parse(&self.registry_text) {
            Ok(target) => {
                self.error = None;
                self.loading = true;
                match &self.watch {
                    Some(w) => w.point(target),
                    None => self.pending = Some(target),
                }
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Starts the registry worker once there is a context, and takes what it sent. The tap
    /// inspector's writer schemas come from here too, so the Tap tab calls it as well.
    pub fn poll(&mut self, ctx: &egui::Context) {
        if let Some(target) = self.pending.take() {
            let ctx = ctx.clone();
            let waker = Arc::new(move || ctx.request_repaint());
            match RegistryWatch::start(target, POLL_EVERY, waker) {
                Ok(w) => self.watch = Some(w),
                Err(e) => {
                    self.error = Some(e);
                    self.loading = false;
                }
            }
        }
        let Some(watch) = &self.watch else { return };
        while let Some(update) = watch.try_recv() {
            match update {
                Update::Loaded(snapshot) => {
                    self.error = None;
                    self.loading = false;
                    self.loads += 1;
                    self.snapshot = Some(snapshot);
                }
                Update::Failed { source, error } => {
                    self.loading = false;
                    self.error = Some(format!("cannot load {source}: {error}"));
                }
            }
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        self.poll(ui.ctx());
        self.registry_bar(ui);
        ui.separator();
        egui::Panel::left("schemas_subjects")
            .frame(software_gl::panel_frame(ui.style()))
            .resizable(true)
            .default_size(230.0)
            .show(ui, |ui| self.subject_list(ui, mesh));
        software_gl::central_panel(ui.style()).show(ui, |ui| {
            let Some(subject) = self.subject.clone() else {
                ui.label(
                    "Pick a subject on the left: its schemas, diffs, compatibility and drift.",
                );
                return;
            };
            ui.horizontal(|ui| {
                ui.heading(&subject);
                ui.separator();
                ui.selectable_value(&mut self.pane, Pane::Drift, "Drift");
                ui.selectable_value(&mut self.pane, Pane::Schema, "Schema");
                ui.selectable_value(&mut self.pane, Pane::Diff, "Diff");
                ui.selectable_value(&mut self.pane, Pane::Matrix, "Compatibility matrix");
            });
            ui.separator();
            let versions = self
                .snapshot
                .as_ref()
                .and_then(|s| s.subjects.get(&subject).cloned())
                .unwrap_or_default();
            match self.pane {
                Pane::Schema => self.schema_pane(ui, &subject, &versions),
                Pane::Diff => self.diff_pane(ui, &subject, &versions),
                Pane::Matrix => self.matrix_pane(ui, &subject, &versions),
                Pane::Drift => self.drift_pane(ui, &subject, &versions, mesh),
            }
        });
    }

    fn registry_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("Registry");
            let field = ui.add(
                egui::TextEdit::singleline(&mut self.registry_text)
                    .hint_text("http://host:8081 or a registry directory")
                    .desired_width(320.0),
            );
            let field = field.labelled_by(label.id);
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.button("Load").clicked() || enter {
                self.load();
            }
            if self.loading {
                ui.spinner();
                ui.label(format!("loading {}…", self.registry_text.trim()));
                return;
            }
            match (&self.error, &self.snapshot) {
                (Some(e), _) => {
                    ui.colored_label(RED, e);
                }
                (None, Some(s)) => {
                    let more = if s.left_out > 0 {
                        format!(" ({} more not listed)", s.left_out)
                    } else {
                        String::new()
                    };
                    ui.label(format!("{}: {} subjects{more}", s.source, s.subjects.len()));
                }
                (None, None) => {
                    ui.label("no registry loaded");
                }
            }
        });
    }

    fn subject_list(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        let mut names: BTreeMap<String, Option<usize>> = BTreeMap::new();
        if let Some(s) = &self.snapshot {
            for (name, versions) in &s.subjects {
                names.insert(name.clone(), Some(versions.len()));
            }
        }
        for (name, _) in mesh.drift().subjects() {
            names.entry(name.to_string()).or_insert(None);
        }
        ui.strong("Subjects");
        if names.is_empty() {
            ui.label("None yet: load a registry, or wait for Avro traffic.");
        }
        ScrollArea::vertical().show(ui, |ui| {
            for (name, versions) in names {
                ui.horizontal(|ui| {
                    let (colour, why) = match mesh.drift().subject(&name) {
                        Some(s) => {
                            let (status, why) = s.status();
                            (
                                status_colour(Some(status)),
                                why.unwrap_or_else(|| "green: no drift".into()),
                            )
                        }
                        None => (GREY, "no traffic seen".into()),
                    };
                    dot(ui, colour).on_hover_text(why);
                    let text = match versions {
                        Some(n) => format!("{name}  ({n})"),
                        None => format!("{name}  (not in registry)"),
                    };
                    let selected = self.subject.as_deref() == Some(name.as_str());
                    if ui.selectable_label(selected, text).clicked() {
                        self.select(&name);
                    }
                });
            }
        });
    }

    /// Shows `subject`, picking its newest version and the two newest to compare.
    pub fn select(&mut self, subject: &str) {
        self.subject = Some(subject.to_string());
        let versions: Vec<u32> = self
            .snapshot
            .as_ref()
            .and_then(|s| s.subjects.get(subject))
            .map(|vs| vs.iter().map(|v| v.version).collect())
            .unwrap_or_default();
        self.version = versions.last().copied();
        self.new = versions.last().copied();
        self.old = versions.iter().rev().nth(1).or(versions.last()).copied();
    }

    fn schema_pane(&mut self, ui: &mut egui::Ui, subject: &str, versions: &[Arc<VersionInfo>]) {
        if versions.is_empty() {
            ui.label("The registry has no versions of this subject.");
            return;
        }
        version_picker(ui, "Version", "schema_version", &mut self.version, versions);
        let Some(info) = self
            .version
            .and_then(|v| versions.iter().find(|i| i.version == v))
        else {
            return;
        };
        ui.horizontal(|ui| {
            ui.label(format!("id {}", info.id));
            ui.separator();
            match info.fingerprint {
                Some(f) => ui.label(format!("fingerprint (CRC-64-AVRO) {:016x}", f as u64)),
                None => ui.label("no fingerprint"),
            };
            if let Err(e) = &info.schema {
                ui.separator();
                ui.colored_label(RED, e);
            }
        });
        let key = (self.loads, subject.to_string(), info.version);
        let fields = cached(&mut self.fields, key, || schema_compare::fields(&info.text));
        ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
            if !fields.is_empty() {
                ui.strong("Fields");
                for (i, f) in fields.iter().enumerate() {
                    egui::CollapsingHeader::new(RichText::new(&f.title).monospace())
                        .id_salt(("field", info.version, i))
                        .show(ui, |ui| {
                            ui.label(RichText::new(&f.json).monospace());
                        });
                }
                ui.add_space(6.0);
            }
            egui::CollapsingHeader::new("Schema text")
                .id_salt(("schema_text", info.version))
                .default_open(fields.is_empty())
                .show(ui, |ui| {
                    ui.label(RichText::new(&info.text).monospace());
                });
        });
    }

    fn diff_pane(&mut self, ui: &mut egui::Ui, subject: &str, versions: &[Arc<VersionInfo>]) {
        if versions.len() < 2 {
            ui.label("A diff needs two versions; this subject has fewer.");
            return;
        }
        ui.horizontal(|ui| {
            version_picker(ui, "Old version", "diff_old", &mut self.old, versions);
            version_picker(ui, "New version", "diff_new", &mut self.new, versions);
        });
        let find = |v: Option<u32>| v.and_then(|v| versions.iter().find(|i| i.version == v));
        let (Some(old), Some(new)) = (find(self.old), find(self.new)) else {
            return;
        };
        let (Ok(old_schema), Ok(new_schema)) = (&old.schema, &new.schema) else {
            ui.colored_label(
                RED,
                "One of the two versions is not an Avro schema that parses.",
            );
            return;
        };
        let key = (self.loads, subject.to_string(), old.version, new.version);
        let sbs = cached(&mut self.side_by_side, key, || {
            let a: Vec<&str> = old.text.lines().collect();
            let b: Vec<&str> = new.text.lines().collect();
            let (da, db) = changed_lines(&a, &b);
            let zip = |lines: Vec<&str>, marks: Vec<bool>| {
                lines.into_iter().map(str::to_string).zip(marks).collect()
            };
            SideBySide {
                comparison: schema_compare::compare(old_schema, new_schema),
                old: zip(a, da),
                new: zip(b, db),
            }
        });
        let c = &sbs.comparison;
        let (o, n) = (old.version, new.version);
        direction(ui, &format!("v{n} reads v{o} data (backward)"), &c.backward);
        direction(ui, &format!("v{o} reads v{n} data (forward)"), &c.forward);
        ui.add_space(4.0);
        ui.strong(format!("{} changes", c.changes.len()));
        for change in &c.changes {
            let colour = if change.backward.is_breaking() || change.forward.is_breaking() {
                RED
            } else {
                ui.visuals().text_color()
            };
            ui.label(
                RichText::new(format!(
                    "{}: {} — backward: {}; forward: {}",
                    if change.path.is_empty() {
                        "(root)"
                    } else {
                        &change.path
                    },
                    change.kind,
                    impact(&change.backward),
                    impact(&change.forward)
                ))
                .color(colour),
            );
        }
        ui.separator();
        ui.checkbox(&mut self.fold, "Only changed lines and their context");
        ui.columns(2, |cols| {
            cols[0].strong(format!("v{o} (id {})", old.id));
            cols[1].strong(format!("v{n} (id {})", new.id));
            let changed = if cols[0].visuals().dark_mode {
                Color32::from_rgb(90, 60, 20)
            } else {
                Color32::from_rgb(255, 230, 170)
            };
            for (col, lines, salt) in [
                (0, &sbs.old, "diff_old_text"),
                (1, &sbs.new, "diff_new_text"),
            ] {
                let ui = &mut cols[col];
                let job = lines_job(lines, self.fold, ui.visuals().text_color(), changed);
                ScrollArea::both()
                    .id_salt(salt)
                    .auto_shrink(false)
                    .show(ui, |ui| {
                        ui.add(egui::Label::new(job).extend());
                    });
            }
        });
    }

    fn matrix_pane(&mut self, ui: &mut egui::Ui, subject: &str, versions: &[Arc<VersionInfo>]) {
        if versions.is_empty() {
            ui.label("The registry has no versions of this subject.");
            return;
        }
        let rows = cached(&mut self.matrix, (self.loads, subject.to_string()), || {
            let list: Vec<(u32, Result<&Schema, String>)> = versions
                .iter()
                .map(|v| (v.version, v.schema.as_deref().map_err(Clone::clone)))
                .collect();
            schema_compare::matrix(&list)
        });
        ui.label(
            "Each version checked against the versions before it, as the registry would when \
             it was registered. Hover a cell for the reasons.",
        );
        ui.add_space(4.0);
        egui::Grid::new("compat_matrix")
            .striped(true)
            .show(ui, |ui| {
                ui.strong("version");
                for level in LEVELS {
                    ui.strong(level.as_str());
                }
                ui.end_row();
                for row in rows.iter() {
                    ui.label(format!("v{}", row.version));
                    if let Some(p) = &row.problem {
                        ui.colored_label(RED, p);
                    } else if row.cells.is_empty() {
                        ui.label("first version");
                    }
                    for report in &row.cells {
                        let (text, colour) = if report.is_compatible() {
                            ("ok".to_string(), GREEN)
                        } else {
                            (format!("breaks ({})", report.violations.len()), RED)
                        };
                        let reasons = if report.is_compatible() {
                            "compatible".to_string()
                        } else {
                            report
                                .violations
                                .iter()
                                .map(|v| {
                                    format!(
                                        "against v{}: {}",
                                        versions[v.old_index].version,
                                        v.description()
                                    )
                                })
                                .collect::<Vec<_>>()
                                .join("\n")
                        };
                        ui.label(RichText::new(text).color(colour).strong())
                            .on_hover_text(reasons);
                    }
                    ui.end_row();
                }
            });
    }

    fn drift_pane(
        &mut self,
        ui: &mut egui::Ui,
        subject: &str,
        versions: &[Arc<VersionInfo>],
        mesh: &Mesh,
    ) {
        let Some(drift) = mesh.drift().subject(subject) else {
            ui.label("No message of this subject seen in traffic yet.");
            return;
        };
        let (status, why) = drift.status();
        ui.horizontal(|ui| {
            let word = match status {
                Status::Green => "green",
                Status::Amber => "amber",
                Status::Red => "red",
            };
            let colour = status_colour(Some(status));
            dot(ui, colour);
            ui.label(
                RichText::new(format!("Status: {word}"))
                    .color(colour)
                    .strong(),
            );
        });
        ui.label(why.unwrap_or_else(|| "every consumer reads the version it is sent".into()));
        ui.add_space(4.0);
        let key = (self.loads, mesh.generation(), subject.to_string());
        let board = cached(&mut self.board, key, || {
            drift_board::board(drift, |v| {
                versions
                    .iter()
                    .find(|i| i.version == v)
                    .and_then(|i| i.schema.as_deref().ok())
            })
        });
        ui.label("Producers' writer versions (rows) against consumers' readers (columns); a cell shows writer / reader version. Hover it for why.");
        ScrollArea::horizontal()
            .id_salt("drift_grid")
            .show(ui, |ui| {
                egui::Grid::new("drift_board").striped(true).show(ui, |ui| {
                    ui.strong("producer");
                    ui.strong("writes");
                    ui.strong("messages");
                    for c in &board.consumers {
                        ui.strong(short_party(c)).on_hover_text(c);
                    }
                    ui.end_row();
                    for row in &board.rows {
                        ui.label(short_party(&row.producer))
                            .on_hover_text(&row.producer);
                        ui.label(row.version.map_or_else(|| "?".into(), |v| format!("v{v}")));
                        ui.label(row.messages.to_string());
                        for cell in &row.cells {
                            match cell {
                                Some(cell) => {
                                    let fill = status_colour(cell.status);
                                    egui::Frame::new()
                                        .fill(fill)
                                        .corner_radius(3.0)
                                        .inner_margin(egui::Margin::symmetric(6, 2))
                                        .show(ui, |ui| {
                                            ui.label(
                                                RichText::new(&cell.text)
                                                    .color(Color32::WHITE)
                                                    .strong(),
                                            )
                                            .on_hover_text(&cell.reason);
                                        });
                                }
                                None => {
                                    ui.label("");
                                }
                            }
                        }
                        ui.end_row();
                    }
                });
            });
        ui.add_space(8.0);
        self.traffic_plot(ui, subject, mesh);
    }

    fn traffic_plot(&mut self, ui: &mut egui::Ui, subject: &str, mesh: &Mesh) {
        let Some(now) = mesh.now_us() else { return };
        let Some(drift) = mesh.drift().subject(subject) else {
            return;
        };
        let series = cached(
            &mut self.series,
            (mesh.generation(), subject.to_string()),
            || {
                let over_time = drift.versions_over_time(now);
                // Start one bucket before the first message, not five minutes back.
                let first = over_time
                    .values()
                    .filter_map(|points| points.iter().position(|p| p.1 > 0.0))
                    .min()
                    .unwrap_or(0)
                    .saturating_sub(1);
                over_time
                    .into_iter()
                    .map(|(v, points)| {
                        let xy = points[first..]
                            .iter()
                            .map(|(t, rate)| [(t - now) as f64 / 1e6, *rate])
                            .collect();
                        (v, xy)
                    })
                    .collect()
            },
        );
        ui.strong("Writer versions in traffic (messages/s)");
        Plot::new(("versions_in_traffic", subject))
            .height(ui.available_height().clamp(120.0, 260.0))
            .legend(Legend::default())
            .x_axis_label("seconds before the newest event")
            .include_y(0.0)
            .allow_scroll(false)
            .show(ui, |plot| {
                for (v, points) in series.iter() {
                    plot.line(
                        Line::new(format!("v{v}"), PlotPoints::from(points.clone())).width(2.0),
                    );
                }
            });
    }
}

/// A status light: a filled circle the size of a text line.
fn dot(ui: &mut egui::Ui, colour: Color32) -> egui::Response {
    let size = egui::vec2(10.0, ui.text_style_height(&egui::TextStyle::Body));
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 4.5, colour);
    response
}

fn status_colour(status: Option<Status>) -> Color32 {
    match status {
        Some(Status::Green) => GREEN,
        Some(Status::Amber) => AMBER,
        Some(Status::Red) => RED,
        None => GREY,
    }
}

fn version_picker(
    ui: &mut egui::Ui,
    label: &str,
    salt: &str,
    selected: &mut Option<u32>,
    versions: &[Arc<VersionInfo>],
) {
    let text = selected.map_or_else(|| "pick".to_string(), |v| format!("v{v}"));
    egui::ComboBox::new(salt, label)
        .selected_text(text)
        .show_ui(ui, |ui| {
            for v in versions {
                ui.selectable_value(
                    selected,
                    Some(v.version),
                    format!("v{} (id {})", v.version, v.id),
                );
            }
        });
}

/// One reading direction: compatible, or each reason with its JSON-pointer location.
fn direction(ui: &mut egui::Ui, what: &str, c: &crate::avro::compat::Compatibility) {
    if c.is_compatible() {
        ui.label(RichText::new(format!("{what}: compatible")).color(GREEN));
    } else {
        ui.label(
            RichText::new(format!(
                "{what}: incompatible ({})",
                c.incompatibilities.len()
            ))
            .color(RED)
            .strong(),
        );
    }
    for i in &c.incompatibilities {
        ui.label(format!("    {} at {}: {}", i.kind, i.location, i.message));
    }
    for w in &c.warnings {
        ui.label(
            RichText::new(format!("    warning at {}: {}", w.location, w.message)).color(AMBER),
        );
    }
}

fn impact(i: &crate::avro::diff::Impact) -> String {
    use crate::avro::diff::Impact;
    match i {
        Impact::Compatible => "compatible".into(),
        Impact::Warning(w) => format!("warning, {w}"),
        Impact::Breaks(b) => format!("breaks, {b}"),
    }
}

/// Unchanged lines kept around each change when folding.
const CONTEXT_LINES: usize = 3;

/// Monospace lines, the changed ones on a highlight; with `fold`, runs of unchanged lines
/// further than `CONTEXT_LINES` from a change become one `...` line.
fn lines_job(lines: &[(String, bool)], fold: bool, text: Color32, changed: Color32) -> LayoutJob {
    let shown = visible_lines(lines.iter().map(|l| l.1), fold.then_some(CONTEXT_LINES));
    let plain = TextFormat {
        font_id: FontId::monospace(12.0),
        color: text,
        ..TextFormat::default()
    };
    let mut job = LayoutJob::default();
    let mut skipped = false;
    for ((line, is_changed), show) in lines.iter().zip(shown) {
        if !show {
            if !skipped {
                job.append("...\n", 0.0, plain.clone());
            }
            skipped = true;
            continue;
        }
        skipped = false;
        let format = TextFormat {
            background: if *is_changed {
                changed
            } else {
                Color32::TRANSPARENT
            },
            ..plain.clone()
        };
        job.append(line, 0.0, format);
        job.append("\n", 0.0, plain.clone());
    }
    job
}

/// Which lines to show: all without `context`, else those within `context` lines of a
/// changed one.
fn visible_lines(changed: impl Iterator<Item = bool>, context: Option<usize>) -> Vec<bool> {
    let changed: Vec<bool> = changed.collect();
    let Some(context) = context else {
        return vec![true; changed.len()];
    };
    let mut shown = vec![false; changed.len()];
    for (i, _) in changed.iter().enumerate().filter(|(_, c)| **c) {
        let end = (i + context + 1).min(changed.len());
        shown[i.saturating_sub(context)..end].fill(true);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_keeps_the_context_around_changes() {
        let changed = [false, false, false, false, true, false, false, false, false];
        let shown = visible_lines(changed.into_iter(), Some(1));
        assert_eq!(
            shown,
            vec![false, false, false, true, true, true, false, false, false]
        );
        assert_eq!(visible_lines(changed.into_iter(), None), vec![true; 9]);
    }
}
