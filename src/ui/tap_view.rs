//! The tap view: the model's event log as a virtualized table (only visible rows are
//! decoded), narrowed by a query, following the newest events until paused, with the
//! selected event in a side panel and the shown rows exportable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Align, TextEdit, Ui, Visuals};
use egui_extras::{Column, TableBuilder};

use super::file_dialog::{Browse, Mode};
use super::outcome::outcome_ui;
use super::software_gl;
use super::tap_cells::{self, CellText, TITLES, clock};
use super::tap_export::{Export, Format};
use super::tap_inspector::EventDetail;
use super::tap_rows::{FilteredRows, FollowPace};
use crate::mesh::Mesh;
use crate::mesh::query::{Query, QueryError, SYNTAX_HELP};
use crate::sources::registry_watch::Snapshot;

const ROW_HEIGHT: f32 = 20.0;
/// How long a frame may spend laying out the next step's rows.
const PREPARE_BUDGET: Duration = Duration::from_millis(2);

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
    /// While following, the event in the table's top row: where the rows stay when
    /// following stops.
    pinned_top: Option<u64>,
    pace: FollowPace,
    cells: CellText,
    /// The next step's newest row, once its rows' text is laid out.
    prepared: Option<u64>,
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
            pinned_top: None,
            pace: FollowPace::default(),
            cells: CellText::default(),
            prepared: None,
            detail: None,
            registry: None,
            registry_loading: false,
            browse: Browse::default(),
        }
    }
}

impl TapView {
    /// The rows currently shown, as sequence numbers, oldest first.
    pub fn shown(&self, mesh: &Mesh) -> Vec<u64> {
        self.rows.all(mesh.log())
    }

    /// While following: the newest event the table shows, which under a flood is a step
    /// behind the newest held.
    pub fn following_through(&self) -> Option<u64> {
        self.follow.then(|| self.pace.shown()).flatten()
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

    /// Paces a followed table and lays out its next step's rows (`fit` of them) a little
    /// each frame; returns how many rows the table shows up to its newest.
    fn follow_step(&mut self, ui: &Ui, mesh: &Mesh, fit: usize, visuals: &Visuals) -> usize {
        let log = mesh.log();
        let all = self.rows.len(log);
        let paced = self.pace.step(
            self.rows.seq(log, all.wrapping_sub(1)),
            ui.input(|i| i.time),
        );
        if paced.moved {
            self.cells.next_step();
        }
        if let Some(next) = paced.next
            && self.prepared != Some(next)
        {
            let end = self.rows.len_through(log, next);
            let (table_rows, cells) = (&self.rows, &mut self.cells);
            // Newest first: those show even when the table is short.
            let upcoming = (end.saturating_sub(fit)..end)
                .rev()
                .filter_map(|i| table_rows.seq(log, i))
                .filter_map(|seq| Some((seq, log.get(seq)?)))
                .flat_map(|(seq, e)| tap_cells::row(seq, &e, mesh, visuals));
            if cells.prepare(ui, upcoming, Instant::now() + PREPARE_BUDGET) {
                self.prepared = Some(next);
            }
        }
        if let Some(wait) = paced.wait {
            ui.ctx()
                .request_repaint_after(Duration::from_secs_f64(wait));
        }
        paced
            .shown
            .map_or(all, |seq| self.rows.len_through(log, seq))
    }

    fn table_ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        let log = mesh.log();
        let all = self.rows.len(log);
        let visuals = ui.visuals().clone();
        let pitch = ROW_HEIGHT + ui.spacing().item_spacing.y;
        // The rows that fit under the header.
        let fit = ((ui.available_height() - pitch) / pitch).floor().max(1.0) as usize;
        // Following, the table is the screenful ending at the shown row, never scrolled:
        // its rows keep their places while new events arrive and a full log drops old
        // ones, so a frame between steps draws the same text as the last.
        let (count, first) = if self.follow {
            let through = self.follow_step(ui, mesh, fit, &visuals);
            let count = fit.min(through);
            (count, through - count)
        } else {
            (all, 0)
        };
        // A click anywhere on a row selects it, so cell text must not take the click.
        ui.style_mut().interaction.selectable_labels = false;
        // Not striped: the stripes filled half the table every frame, which a software
        // renderer paid for with as much CPU as everything else in the view together.
        let mut table = TableBuilder::new(ui)
            .striped(false)
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
        if self.follow {
            table = table.vertical_scroll_offset(0.0);
            self.pinned_top = self.rows.seq(log, first);
        } else if let Some(top) = self.pinned_top.take()
            && let Some(i) = self.rows.row_of(log, top)
        {
            // Following just stopped: the rows stay where they were.
            table = table.vertical_scroll_offset(i as f32 * pitch);
        }
        let mut clicked = None;
        table
            .header(ROW_HEIGHT, |mut h| {
                for title in TITLES {
                    h.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|body| {
                let (table_rows, cells, selected) = (&self.rows, &mut self.cells, self.selected);
                body.rows(ROW_HEIGHT, count, |mut row| {
                    let Some(seq) = table_rows.seq(log, first + row.index()) else {
                        return;
                    };
                    let Some(e) = log.get(seq) else { return };
                    row.set_selected(selected == Some(seq));
                    let [number, rest @ ..] = tap_cells::row(seq, &e, mesh, &visuals);
                    row.col(|ui| {
                        let number = cells.galley(ui, number);
                        if ui.selectable_label(selected == Some(seq), number).clicked() {
                            clicked = Some(seq);
                        }
                    });
                    for cell in rest {
                        row.col(|ui| {
                            if !cell.0.is_empty() {
                                ui.label(cells.galley(ui, cell));
                            }
                        });
                    }
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
