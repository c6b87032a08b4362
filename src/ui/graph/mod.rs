//! The graph view: workloads as nodes grouped by namespace; edges with width by requests per
//! second, colour by success and denials, a lock when mTLS and dashes when plaintext, and
//! dots that travel at a speed set by the traffic. Pan, zoom, drag to pin, hover for the
//! golden metrics, click for details, filters, and an SVG or PNG export.
//!
//! Cost: the visible set is derived once per model generation and filter; all edges go into
//! one mesh; labels and locks are dropped when zoomed out or crowded, and past a thousand
//! edges the edges between namespaces fold into one link per pair (`bundle`); frames are
//! requested only while the layout is hot or traffic is animating.

mod bundle;
mod export;
mod filter;
mod paint;
mod raster;
mod sprite;

use std::collections::BTreeMap;

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2, WidgetInfo};

use self::bundle::{Bundle, Links, link_ends};
pub use self::export::Export;
use self::export::{SvgBox, SvgEdge, SvgNode, SvgScene};
use self::filter::namespace;
pub use self::filter::{Filter, Health, ShownEdge, Visible};
use self::paint::Batch;
use self::sprite::{DiscTexture, Sprites};
use super::file_dialog::{Browse, Mode};
use super::frame_pacing;
use super::layout::Layout;
use super::outcome::outcome_ui;
use super::software_gl;
use crate::mesh::Mesh;
use crate::mesh::graph::{Edge, Node, NodeId};

const NODE_RADIUS: f32 = 12.0;
/// More visible nodes than this and labels and locks are left out.
const CROWDED: usize = 150;
/// Below this zoom labels and locks are left out.
const FAR: f32 = 0.6;
/// More visible edges than this, when not drawn in full detail, and the edges between
/// namespaces are drawn as one link per pair of namespaces.
const BUNDLE_ABOVE: usize = 1_000;
const MIN_ZOOM: f32 = 0.05;
const MAX_ZOOM: f32 = 5.0;
/// Dots keep moving this many seconds after the last event.
const TRAFFIC_LINGER_S: f64 = 3.0;
/// Rates and health on screen are at most this old, in seconds (plus a refresh's frames).
const REFRESH_S: f64 = 0.25;
/// Edges whose counts one frame refreshes: 5,000 edges take four frames.
const REFRESH_SLICE: usize = 1_250;
/// Layout steps per frame at most, and the time they may take.
const STEPS_PER_FRAME: usize = 4;
const STEP_BUDGET_MS: f64 = 4.0;

/// How much is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Labels, locks, arrows and dashes.
    Full,
    /// Nodes and plain edges.
    Reduced,
    /// Nodes, one link per pair of namespaces, the count of edges inside each namespace on
    /// its box, and the hovered or selected workload's own edges.
    Overview,
}

/// What the last frame drew.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drawn {
    pub edges: usize,
    pub bundles: usize,
}

pub struct GraphView {
    layout: Layout,
    /// The graph's shape when the layout was last synced: see `Graph::shape`.
    topology: Option<u64>,
    visible: Visible,
    visible_for: Option<(u64, Filter)>,
    /// When (egui time) the visible set was last derived or its refresh began.
    visible_at: f64,
    /// Where the refresh of counts under way goes on in the next frame.
    refreshing: Option<usize>,
    pan: Vec2,
    zoom: f32,
    /// Fit the whole graph until the user pans or zooms.
    auto_fit: bool,
    detail: Detail,
    drawn: Drawn,
    /// The node under the pointer in the last frame: the overview draws its edges.
    hovered: Option<NodeId>,
    /// What nodes and dots are cut from; loaded at the first frame.
    disc: Option<DiscTexture>,
    pub selected: Option<NodeId>,
    pub filter: Filter,
    /// Dots travel along edges; off, a settled graph costs no frames.
    pub animate: bool,
    /// When the model last changed (egui time): dots stop a while after traffic does.
    changed_at: f64,
    pub export: Export,
    /// The export field's file dialog (tests give it a dialog of their own).
    pub browse: Browse,
}

impl Default for GraphView {
    fn default() -> Self {
        GraphView {
            layout: Layout::default(),
            topology: None,
            visible: Visible::default(),
            visible_for: None,
            visible_at: f64::NEG_INFINITY,
            refreshing: None,
            pan: Vec2::ZERO,
            zoom: 1.0,
            auto_fit: true,
            detail: Detail::Full,
            drawn: Drawn::default(),
            hovered: None,
            disc: None,
            selected: None,
            filter: Filter::default(),
            animate: true,
            changed_at: f64::NEG_INFINITY,
            export: Export::default(),
            browse: Browse::default(),
        }
    }
}

/// The name a node is shown (and found by a screen reader) under.
pub fn node_label(n: &Node) -> String {
    match (&n.namespace, &n.workload) {
        (Some(ns), Some(w)) => format!("{ns}/{w}"),
        (None, Some(w)) => w.clone(),
        _ => n.key.to_string(),
    }
}

/// Requests, success rate, RPS and p99 of what arrives at a node.
struct Golden {
    requests: u64,
    successes: u64,
    denied: u64,
    rps: f64,
    p99_us: Option<u64>,
}

fn golden<'a>(edges: impl Iterator<Item = &'a Edge>, now_us: i64) -> Golden {
    let mut g = Golden {
        requests: 0,
        successes: 0,
        denied: 0,
        rps: 0.0,
        p99_us: None,
    };
    for e in edges {
        g.requests += e.requests;
        g.successes += e.successes;
        g.denied += e.denied;
        g.rps += e.rps(now_us);
        let p99 = e.latency().and_then(|h| h.quantile(0.99));
        g.p99_us = g.p99_us.max(p99);
    }
    g
}

/// A namespace link's tooltip: what each direction folds together.
fn link_ui(ui: &mut egui::Ui, ways: &[&Bundle]) {
    for (k, b) in ways.iter().enumerate() {
        if k > 0 {
            ui.separator();
        }
        bundle_ui(ui, b);
    }
    ui.weak("Zoom in, or hover or select a workload, to see its own edges.");
}

fn bundle_ui(ui: &mut egui::Ui, b: &Bundle) {
    ui.strong(format!("{} -> {}", b.from, b.to));
    ui.label(format!(
        "{} edges between workloads · {:.1} req/s",
        b.edges, b.rps
    ));
    if b.requests > 0 {
        ui.label(format!(
            "{} requests · {:.1} % succeeded",
            b.requests,
            b.successes as f64 * 100.0 / b.requests as f64
        ));
    }
    if b.denied_edges > 0 {
        ui.colored_label(
            DENIED,
            format!(
                "{} denied by policy, on {} of its edges",
                b.denied, b.denied_edges
            ),
        );
    }
    if b.failing_edges > 0 {
        ui.colored_label(FAILING, format!("{} edges failing", b.failing_edges));
    }
    if b.plaintext_edges > 0 {
        ui.label(format!("{} edges not all mTLS", b.plaintext_edges));
    }
}

fn golden_ui(ui: &mut egui::Ui, g: &Golden) {
    ui.label(format!("{:.1} req/s", g.rps));
    if g.requests > 0 {
        ui.label(format!(
            "success {:.1} % of {} requests",
            g.successes as f64 * 100.0 / g.requests as f64,
            g.requests
        ));
    }
    if g.denied > 0 {
        ui.colored_label(DENIED, format!("{} denied by policy", g.denied));
    }
    if let Some(p) = g.p99_us {
        ui.label(format!("p99 {:.1} ms", p as f64 / 1000.0));
    }
}

const OK: Color32 = Color32::from_rgb(70, 170, 110);
const FAILING: Color32 = Color32::from_rgb(230, 150, 40);
const DENIED: Color32 = Color32::from_rgb(220, 70, 70);

fn health_colour(h: Health) -> Color32 {
    match h {
        Health::Ok => OK,
        Health::Failing => FAILING,
        Health::Denied => DENIED,
    }
}

/// A stable colour per namespace.
fn namespace_colour(ns: &str) -> Color32 {
    egui::ecolor::Hsva::new(namespace_hue(ns), 0.45, 0.75, 1.0).into()
}

/// The namespace's colour for its box's label: the pastel reads on a dark background but
/// not on a light one.
fn namespace_text_colour(ns: &str, dark: bool) -> Color32 {
    let (saturation, value) = if dark { (0.45, 0.75) } else { (0.7, 0.45) };
    egui::ecolor::Hsva::new(namespace_hue(ns), saturation, value, 1.0).into()
}

fn namespace_hue(ns: &str) -> f32 {
    let h = ns
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    // Mixed, so names that differ in one letter (ns-1, ns-2) get far-apart hues.
    let h = (h ^ (h >> 15)).wrapping_mul(0x2C1B_3C6D);
    ((h >> 12) % 360) as f32 / 360.0
}

fn edge_width(rps: f32) -> f32 {
    (1.0 + (1.0 + rps).log2() * 1.5).min(8.0)
}

/// A traffic dot's colour on a line of `colour`: lighter than the line on a dark
/// background, darker on a light one, where a lighter dot faded into the white.
fn dot_colour(colour: Color32, dark: bool) -> Color32 {
    if dark {
        colour.linear_multiply(1.3)
    } else {
        colour.lerp_to_gamma(Color32::BLACK, 0.45)
    }
}

/// A namespace link's width, by its share of the busiest link's rate. Links carry many
/// edges' traffic, so `edge_width` would make them all as wide as it goes.
fn link_width(rps: f32, busiest: f32) -> f32 {
    if busiest > 0.0 {
        1.5 + 3.5 * (rps / busiest).clamp(0.0, 1.0).sqrt()
    } else {
        1.5
    }
}

/// Where a frame's nodes go: their discs into one mesh, pins and labels to the painter.
struct NodeInk<'p> {
    painter: &'p egui::Painter,
    discs: Sprites,
}

/// Layout to screen and back.
#[derive(Clone, Copy)]
struct View {
    origin: Pos2,
    centre: [f32; 2],
    zoom: f32,
}

impl View {
    fn to_screen(self, p: [f32; 2]) -> Pos2 {
        self.origin + Vec2::new(p[0] - self.centre[0], p[1] - self.centre[1]) * self.zoom
    }

    fn to_layout(self, p: Pos2) -> [f32; 2] {
        let d = (p - self.origin) / self.zoom;
        [d.x + self.centre[0], d.y + self.centre[1]]
    }
}

impl GraphView {
    /// What the last frame drew: full detail, or reduced.
    pub fn detail(&self) -> Detail {
        self.detail
    }

    pub fn drawn(&self) -> Drawn {
        self.drawn
    }

    pub fn zoom(&self) -> f32 {
        self.zoom
    }

    pub fn visible(&self) -> &Visible {
        &self.visible
    }

    pub fn is_pinned(&self, id: NodeId) -> bool {
        self.layout.is_pinned(id)
    }

    /// Whether the layout is still moving (and asking for frames).
    pub fn is_settling(&self) -> bool {
        self.layout.is_hot()
    }

    /// A node's position in layout units.
    pub fn position(&self, id: NodeId) -> Option<[f32; 2]> {
        self.layout.position(id)
    }

    /// Dots move while animation is on and traffic arrived in the last few seconds.
    fn is_animating(&self, time: f64) -> bool {
        self.animate
            && time - self.changed_at < TRAFFIC_LINGER_S
            && self.visible.edges.iter().any(|e| e.rps > 0.0)
    }

    /// Brings the layout and visible set up to date with the model (at `time`, egui's
    /// clock): at once when the filter or the graph's shape changed; when only counts and
    /// rates did, a refresh begins at most every `REFRESH_S` and reads `REFRESH_SLICE`
    /// edges a frame. Filters that depend on counts derive the whole set instead.
    fn sync(&mut self, mesh: &Mesh, time: f64) {
        if let Some(start) = self.refreshing {
            self.refreshing = self.visible.refresh(mesh, start, REFRESH_SLICE);
        }
        let generation = mesh.generation();
        let (moved, refiltered) = self
            .visible_for
            .as_ref()
            .map_or((true, true), |(g, f)| (*g != generation, *f != self.filter));
        if !moved && !refiltered {
            return;
        }
        let graph = mesh.graph();
        let topo = graph.shape();
        let reshaped = self.topology != Some(topo);
        let due = time - self.visible_at >= REFRESH_S;
        if !refiltered && !reshaped && (!due || self.refreshing.is_some()) {
            return;
        }
        self.visible_at = time;
        self.visible_for = Some((generation, self.filter.clone()));
        if !refiltered && !reshaped && !self.filter.only_denies && !self.filter.only_drift {
            self.refreshing = self.visible.refresh(mesh, 0, REFRESH_SLICE);
            return;
        }
        if reshaped {
            self.topology = Some(topo);
            let mut namespaces: Vec<&str> = graph.nodes().map(namespace).collect();
            namespaces.sort_unstable();
            namespaces.dedup();
            let mut nodes: Vec<(u64, usize)> = graph
                .nodes()
                .map(|n| (n.id, namespaces.binary_search(&namespace(n)).unwrap_or(0)))
                .collect();
            nodes.sort_unstable();
            let edges: Vec<(u64, u64)> = graph.edges().map(|e| (e.client, e.server)).collect();
            self.layout.sync(&nodes, &edges);
        }
        self.visible = Visible::compute(mesh, &self.filter);
        self.refreshing = None;
    }

    fn step_layout(&mut self) {
        let start = std::time::Instant::now();
        for _ in 0..STEPS_PER_FRAME {
            if !self.layout.is_hot() || start.elapsed().as_secs_f64() * 1e3 > STEP_BUDGET_MS {
                break;
            }
            self.layout.step();
        }
    }

    /// Zoom and centre that show every visible node in `rect`.
    fn fit(&self, mesh: &Mesh, rect: Rect) -> ([f32; 2], f32) {
        let graph = mesh.graph();
        let mut lo = [f32::MAX; 2];
        let mut hi = [f32::MIN; 2];
        for p in self
            .visible
            .nodes
            .iter()
            .filter(|id| graph.node(**id).is_some())
            .filter_map(|&id| self.layout.position(id))
        {
            lo = [lo[0].min(p[0]), lo[1].min(p[1])];
            hi = [hi[0].max(p[0]), hi[1].max(p[1])];
        }
        if lo[0] > hi[0] {
            return (self.layout.centre(), 1.0);
        }
        let margin = 60.0;
        let zx = (rect.width() - 2.0 * margin).max(50.0) / (hi[0] - lo[0]).max(1.0);
        let zy = (rect.height() - 2.0 * margin).max(50.0) / (hi[1] - lo[1]).max(1.0);
        let zoom = zx.min(zy).clamp(MIN_ZOOM, 1.5);
        ([(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0], zoom)
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        self.export.poll();
        let time = ui.input(|i| i.time);
        if self.visible_for.as_ref().map(|(g, _)| *g) != Some(mesh.generation()) {
            self.changed_at = time;
        }
        self.sync(mesh, time);
        self.step_layout();

        egui::Panel::top("graph_toolbar")
            .frame(software_gl::panel_frame(ui.style()))
            .show(ui, |ui| self.toolbar_ui(ui, mesh));
        if self
            .selected
            .is_some_and(|id| mesh.graph().node(id).is_some())
        {
            egui::Panel::right("graph_details")
                .frame(software_gl::panel_frame(ui.style()))
                .resizable(true)
                .default_size(280.0)
                .show(ui, |ui| self.details_ui(ui, mesh));
        }
        software_gl::central_panel(ui.style()).show(ui, |ui| self.canvas_ui(ui, mesh));

        if self.layout.is_hot() || self.is_animating(time) || self.refreshing.is_some() {
            frame_pacing::request_animation_frame(ui.ctx());
        } else if self.visible_for.as_ref().map(|(g, _)| *g) != Some(mesh.generation()) {
            // Counts changed since the last refresh: show them when it is due.
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_secs_f64(REFRESH_S));
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        ui.horizontal_wrapped(|ui| {
            let hidden = self.filter.hidden_namespaces.len();
            let title = if hidden == 0 {
                "Namespaces".to_string()
            } else {
                format!("Namespaces ({hidden} hidden)")
            };
            ui.menu_button(title, |ui| {
                for ns in &self.visible.namespaces {
                    let mut shown = !self.filter.hidden_namespaces.contains(ns);
                    if ui.checkbox(&mut shown, ns).changed() {
                        if shown {
                            self.filter.hidden_namespaces.remove(ns);
                        } else {
                            self.filter.hidden_namespaces.insert(ns.clone());
                        }
                    }
                }
                if ui.button("Show all").clicked() {
                    self.filter.hidden_namespaces.clear();
                }
            });
            let l = ui.label("Identity:");
            ui.add(
                egui::TextEdit::singleline(&mut self.filter.identity)
                    .desired_width(140.0)
                    .hint_text("name or identity"),
            )
            .labelled_by(l.id);
            ui.checkbox(&mut self.filter.only_denies, "Only denies")
                .on_hover_text("Only edges with requests denied by policy");
            ui.checkbox(&mut self.filter.only_drift, "Only drift")
                .on_hover_text("Only workloads producing or consuming a drifting schema");
            ui.separator();
            ui.checkbox(&mut self.animate, "Animate traffic")
                .on_hover_text("Dots travel along edges, faster with more requests per second");
            ui.separator();
            if ui.button("−").on_hover_text("Zoom out").clicked() {
                self.zoom_by(1.0 / 1.5);
            }
            if ui.button("+").on_hover_text("Zoom in").clicked() {
                self.zoom_by(1.5);
            }
            if ui
                .button("Fit")
                .on_hover_text("Show the whole graph")
                .clicked()
            {
                self.auto_fit = true;
                self.pan = Vec2::ZERO;
            }
            ui.separator();
            let l = ui.label("Picture file:");
            ui.add(egui::TextEdit::singleline(&mut self.export.path).desired_width(180.0))
                .labelled_by(l.id)
                .on_hover_text("Ends in .svg or .png");
            self.browse
                .button(ui, "svg", Mode::Save, &mut self.export.path);
            let export = ui
                .add_enabled(!self.export.is_writing(), egui::Button::new("Export"))
                .on_hover_text("Writes the graph as SVG or PNG, by the file name's ending");
            if export.clicked() {
                let svg = self.svg_scene(mesh).to_svg();
                self.export.start(svg, ui.ctx());
            }
            if self.export.is_writing() {
                ui.spinner();
            }
            outcome_ui(ui, &self.export.outcome);
        });
        self.browse.problem_ui(ui, "svg");
    }

    fn zoom_by(&mut self, factor: f32) {
        self.auto_fit = false;
        self.zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
    }

    fn canvas_ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        let (response, painter) = ui.allocate_painter(ui.available_size(), Sense::click_and_drag());
        let rect = response.rect;
        let visuals = ui.visuals().clone();
        if mesh.graph().nodes().next().is_none() {
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                "waiting for traffic...",
                FontId::proportional(16.0),
                visuals.weak_text_color(),
            );
            return;
        }
        if self.visible.nodes.is_empty() {
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                "no workload matches the filters",
                FontId::proportional(16.0),
                visuals.weak_text_color(),
            );
            return;
        }

        let (centre, fit_zoom) = self.fit(mesh, rect);
        if self.auto_fit {
            self.zoom = fit_zoom;
        }
        let mut view = View {
            origin: rect.center() + self.pan,
            centre,
            zoom: self.zoom,
        };
        if response.dragged() {
            self.pan += response.drag_delta();
            self.auto_fit = false;
        }
        if response.hovered() {
            let (zoom, scroll, pointer) = ui.input(|i| {
                (
                    i.zoom_delta(),
                    i.smooth_scroll_delta.y,
                    i.pointer.hover_pos(),
                )
            });
            let factor = zoom * (scroll * 0.002).exp();
            if factor != 1.0 {
                // Zoom about the pointer: the point under it stays put.
                let anchor = pointer.unwrap_or(rect.center());
                let under = view.to_layout(anchor);
                self.zoom_by(factor);
                view.zoom = self.zoom;
                self.pan += anchor - view.to_screen(under);
            }
        }
        if response.clicked() {
            self.selected = None;
        }
        view.origin = rect.center() + self.pan;

        let shown_nodes = self
            .visible
            .nodes
            .iter()
            .filter_map(|&id| self.layout.position(id))
            .filter(|&p| rect.expand(NODE_RADIUS).contains(view.to_screen(p)))
            .count();
        self.detail = if self.zoom >= FAR && shown_nodes <= CROWDED {
            Detail::Full
        } else if self.visible.edges.len() > BUNDLE_ABOVE && !self.visible.bundles.is_empty() {
            Detail::Overview
        } else {
            Detail::Reduced
        };

        let boxes: BTreeMap<&str, Rect> = self
            .namespace_boxes(mesh)
            .into_iter()
            .map(|(ns, b)| {
                (
                    ns,
                    Rect::from_min_max(view.to_screen(b.0), view.to_screen(b.1)),
                )
            })
            .collect();
        self.boxes_ui(&painter, &boxes);
        let time = ui.input(|i| i.time);
        let disc = self
            .disc
            .get_or_insert_with(|| DiscTexture::load(ui.ctx()))
            .id();
        let links = self.edges_ui(&painter, view, &visuals, time, &boxes, disc);

        let graph = mesh.graph();
        let ids = self.visible.nodes.clone();
        let mut hovered = None;
        // The discs go in one mesh under the labels and pins painted as the nodes come.
        let discs_at = painter.add(egui::Shape::Noop);
        let mut ink = NodeInk {
            painter: &painter,
            discs: Sprites::new(disc),
        };
        for id in ids {
            let (Some(n), Some(p)) = (graph.node(id), self.layout.position(id)) else {
                continue;
            };
            let p = view.to_screen(p);
            if rect.expand(NODE_RADIUS).contains(p) && self.node_ui(ui, &mut ink, mesh, n, p, view)
            {
                hovered = Some(id);
            }
        }
        painter.set(discs_at, egui::Shape::mesh(ink.discs.mesh));
        self.box_labels_ui(&painter, &boxes, &visuals);
        if hovered != self.hovered {
            // The overview draws the hovered node's edges: show them without waiting.
            self.hovered = hovered;
            ui.ctx().request_repaint();
        }
        if self.detail == Detail::Overview {
            let hint = Rect::from_min_max(
                rect.left_bottom() + Vec2::new(8.0, -24.0),
                rect.right_bottom() - Vec2::new(8.0, 4.0),
            );
            ui.put(
                hint,
                egui::Label::new(
                    egui::RichText::new(
                        "Overview: one link per pair of namespaces (a red mark: some requests \
                         denied); a box counts the edges inside its namespace. Zoom in, or \
                         hover or select a workload, to see its own edges.",
                    )
                    .small()
                    .weak(),
                ),
            );
            let pointer = response.hover_pos();
            if let Some(p) = pointer.and_then(|p| links.under(p)) {
                let ways: Vec<&Bundle> = self.visible.pairs[p]
                    .ways
                    .iter()
                    .flatten()
                    .map(|&b| &self.visible.bundles[b])
                    .collect();
                response.on_hover_ui_at_pointer(|ui| link_ui(ui, &ways));
            }
        }
    }

    /// A faint box around each namespace's visible nodes (`boxes`: on screen).
    ///
    /// Zoomed out, boxes are outlines only: filling a large mesh's boxes is most of the
    /// window's pixels again, which a software renderer pays for in every frame.
    fn boxes_ui(&self, painter: &egui::Painter, boxes: &BTreeMap<&str, Rect>) {
        let full = self.detail == Detail::Full;
        for (&ns, &b) in boxes {
            let colour = namespace_colour(ns);
            if full {
                painter.rect_filled(b, 10.0, colour.gamma_multiply(0.08));
            }
            painter.rect_stroke(
                b,
                10.0,
                Stroke::new(
                    if full { 1.0 } else { 1.5 },
                    colour.gamma_multiply(if full { 0.5 } else { 0.7 }),
                ),
                egui::StrokeKind::Inside,
            );
        }
    }

    /// Each box's name and, in the overview, its counts: over the links and nodes, on a
    /// backdrop, so that neither hides the words.
    fn box_labels_ui(
        &self,
        painter: &egui::Painter,
        boxes: &BTreeMap<&str, Rect>,
        visuals: &egui::Visuals,
    ) {
        let backdrop = visuals.panel_fill.gamma_multiply(0.85);
        for (&ns, &b) in boxes {
            if self.detail != Detail::Full && b.width() <= 60.0 {
                continue;
            }
            let font = FontId::proportional(12.0);
            let inside = self.visible.inside.get(ns).copied().unwrap_or_default();
            let counted = self.detail == Detail::Overview && inside.edges > 0;
            let name = if counted {
                format!("{ns} · {} edges inside", inside.edges)
            } else {
                ns.to_string()
            };
            let mut lines = vec![(name, namespace_text_colour(ns, visuals.dark_mode))];
            if counted && inside.denied_edges > 0 {
                lines.push((format!("{} with denials", inside.denied_edges), DENIED));
            }
            // Inside its box, so that a long name never runs over a neighbour's.
            let painter = painter.with_clip_rect(painter.clip_rect().intersect(b));
            let mut at = b.left_top() + Vec2::new(8.0, 4.0);
            let galleys: Vec<_> = lines
                .into_iter()
                .map(|(text, colour)| {
                    let galley = painter.layout_no_wrap(text, font.clone(), colour);
                    let pos = at;
                    at.y += galley.size().y;
                    (pos, galley)
                })
                .collect();
            let area = galleys
                .iter()
                .map(|(pos, g)| Rect::from_min_size(*pos, g.size()))
                .reduce(|a, b| a.union(b));
            if let Some(area) = area {
                painter.rect_filled(area.expand(2.0), 3.0, backdrop);
            }
            for (pos, galley) in galleys {
                painter.galley(pos, galley, Color32::PLACEHOLDER);
            }
        }
    }

    /// Each namespace's bounding box in layout units, padded. Nodes outside the mesh get
    /// none: they are not a group, and their box would span the picture.
    fn namespace_boxes<'m>(&self, mesh: &'m Mesh) -> BTreeMap<&'m str, ([f32; 2], [f32; 2])> {
        let graph = mesh.graph();
        let pad = NODE_RADIUS + 28.0;
        let mut boxes: BTreeMap<&str, ([f32; 2], [f32; 2])> = BTreeMap::new();
        for &id in &self.visible.nodes {
            let (Some(n), Some(p)) = (graph.node(id), self.layout.position(id)) else {
                continue;
            };
            if n.namespace.is_none() {
                continue;
            }
            let (lo, hi) = ([p[0] - pad, p[1] - pad], [p[0] + pad, p[1] + pad]);
            boxes
                .entry(namespace(n))
                .and_modify(|(a, b)| {
                    *a = [a[0].min(lo[0]), a[1].min(lo[1])];
                    *b = [b[0].max(hi[0]), b[1].max(hi[1])];
                })
                .or_insert((lo, hi));
        }
        boxes
    }

    /// All edges, arrows, locks and traffic dots as one mesh; at the overview level, the
    /// links between namespaces too. Returns where those links are, to find the hovered one.
    fn edges_ui(
        &mut self,
        painter: &egui::Painter,
        view: View,
        visuals: &egui::Visuals,
        time: f64,
        boxes: &BTreeMap<&str, Rect>,
        disc: egui::TextureId,
    ) -> Links {
        let clip = painter.clip_rect();
        let overview = self.detail == Detail::Overview;
        let mut batch = Batch::with_capacity(self.visible.edges.len());
        let animating = self.is_animating(time);
        // Traffic dots, and marks on links with some denials.
        let mut dots = Sprites::new(disc);
        let mut links = Links::default();
        if overview {
            let bundles = &self.visible.bundles;
            let busiest = self.visible.pairs.iter().map(|p| p.rps).fold(0.0, f32::max);
            for (k, p) in self.visible.pairs.iter().enumerate() {
                let [first, second] = &p.namespaces;
                let (Some(from), Some(to)) =
                    (boxes.get(first.as_str()), boxes.get(second.as_str()))
                else {
                    continue;
                };
                let Some((a, b)) = link_ends(*from, *to) else {
                    continue;
                };
                let width = link_width(p.rps, busiest);
                let colour = health_colour(p.health);
                let dir = (b - a).normalized();
                // Each end with traffic arriving gets an arrowhead, and the line stops at
                // its back.
                let head = 6.0 + width;
                let (start, end) = (
                    if p.ways[1].is_some() {
                        a + dir * head
                    } else {
                        a
                    },
                    if p.ways[0].is_some() {
                        b - dir * head
                    } else {
                        b
                    },
                );
                if p.plaintext_edges == 0 {
                    batch.line(start, end, width, colour, true);
                } else {
                    // Unfeathered: dozens of links of short dashes are thousands of
                    // slivers, each costly on a software renderer.
                    batch.dashed(start, end, width, colour, [10.0, 6.0], false);
                }
                for (way, tip, towards) in [(0, b, dir), (1, a, -dir)] {
                    let Some(bundle) = p.ways[way] else {
                        continue;
                    };
                    batch.arrow(tip, towards, head, colour);
                    let bundle = &bundles[bundle];
                    if animating && bundle.rps > 0.0 {
                        let from = if way == 0 { a } else { b };
                        dots.disc(
                            traffic_dot(bundle.rps, 2 * k + way, from, tip, time),
                            2.0 + width * 0.4,
                            dot_colour(colour, visuals.dark_mode),
                        );
                    }
                }
                if p.denied_edges > 0 && p.health != Health::Denied {
                    // Some denials inside a link that is otherwise fine.
                    dots.disc(a + (b - a) * 0.5, 3.0 + width * 0.5, DENIED);
                }
                links.push(k, a, b, width);
            }
        }
        let backdrop = visuals.extreme_bg_color;
        let mut drawn = 0;
        for (k, e) in self.visible.edges.iter().enumerate() {
            let focus = [e.client, e.server]
                .iter()
                .any(|&id| Some(id) == self.selected || Some(id) == self.hovered);
            if overview && !focus && (e.bundle.is_some() || e.inside) {
                // Between namespaces: in a link; inside one: counted on its box.
                continue;
            }
            let (Some(a), Some(b)) = (
                self.layout.position(e.client),
                self.layout.position(e.server),
            ) else {
                continue;
            };
            let (a, b) = (view.to_screen(a), view.to_screen(b));
            if !clip.intersects(Rect::from_two_pos(a, b)) {
                continue;
            }
            let dir = (b - a).normalized();
            if dir == Vec2::ZERO || !dir.is_finite() {
                continue;
            }
            let r = NODE_RADIUS * view.zoom.min(1.0);
            let (a, b) = (a + dir * r, b - dir * (r + 1.0));
            let colour = health_colour(e.health);
            let width = edge_width(e.rps) * view.zoom.clamp(0.3, 1.0);
            let full = self.detail == Detail::Full || (overview && focus);
            if !full {
                batch.line(a, b, width.min(2.0), colour.gamma_multiply(0.7), false);
            } else if e.secured {
                batch.line(a, b, width, colour, true);
            } else {
                batch.dashed(a, b, width, colour, [6.0, 4.0], true);
            }
            if full {
                batch.arrow(b, dir, 10.0, colour);
                if e.secured && (b - a).length() > 40.0 {
                    batch.lock(a + (b - a) * 0.5, colour, backdrop);
                }
            }
            if animating && e.rps > 0.0 {
                dots.disc(
                    traffic_dot(e.rps, k, a, b, time),
                    (2.0 + width * 0.4) * view.zoom.clamp(0.5, 1.0),
                    dot_colour(colour, visuals.dark_mode),
                );
            }
            drawn += 1;
        }
        self.drawn = Drawn {
            edges: drawn,
            bundles: links.count(),
        };
        painter.add(egui::Shape::mesh(batch.mesh));
        if !dots.mesh.is_empty() {
            painter.add(egui::Shape::mesh(dots.mesh));
        }
        links
    }

    /// Draws node `n` at `p`; true when the pointer is on it.
    fn node_ui(
        &mut self,
        ui: &egui::Ui,
        ink: &mut NodeInk<'_>,
        mesh: &Mesh,
        n: &Node,
        p: Pos2,
        view: View,
    ) -> bool {
        let colour = namespace_colour(namespace(n));
        let selected = self.selected == Some(n.id);
        let pinned = self.layout.is_pinned(n.id);
        let drifting = self.visible.drifting.contains(&n.id);
        let radius = NODE_RADIUS * view.zoom.clamp(0.4, 1.2);
        let stroke = if selected {
            Stroke::new(3.0, ui.visuals().selection.stroke.color)
        } else if drifting {
            Stroke::new(2.5, DENIED)
        } else {
            Stroke::new(1.0, ui.visuals().widgets.noninteractive.fg_stroke.color)
        };
        let fill = if n.meshed() {
            colour
        } else {
            Color32::from_gray(140)
        };
        if self.detail == Detail::Full || selected || drifting {
            ink.discs
                .ringed(p, radius, fill, stroke.width, stroke.color);
        } else {
            // Zoomed out, a ring is a pixel wide and drawing it is a second square per node.
            ink.discs.disc(p, radius, fill);
        }
        let painter = ink.painter;
        if pinned {
            // A map pin: a head and a needle, at the node's top right.
            let head = p + Vec2::new(radius * 0.75, -radius * 0.9);
            painter.line_segment(
                [head, head + Vec2::new(-3.5, 5.0)],
                Stroke::new(1.5, ui.visuals().text_color()),
            );
            painter.circle(head, 3.5, DENIED, Stroke::new(1.0, Color32::BLACK));
        }
        if self.detail == Detail::Full || selected {
            let name = n.workload.as_deref().unwrap_or(&n.key);
            painter.text(
                p + Vec2::new(0.0, radius + 2.0),
                Align2::CENTER_TOP,
                name,
                FontId::proportional(12.0),
                ui.visuals().text_color(),
            );
        }
        let id = ui.scope_id().with(("node", n.id));
        let rect = Rect::from_center_size(p, Vec2::splat(radius * 2.0));
        let response = ui.interact(rect, id, Sense::click_and_drag());
        // Labels are made only when asked for: formatting one per node per frame was a few
        // per cent of a big graph's frame.
        response.widget_info(|| WidgetInfo::labeled(egui::Role::Button, true, node_label(n)));
        if response.dragged() {
            let now = response
                .interact_pointer_pos()
                .unwrap_or(p + response.drag_delta());
            self.layout.pin_at(n.id, view.to_layout(now));
        }
        if response.double_clicked() {
            self.layout.unpin(n.id);
        }
        response.context_menu(|ui| {
            if pinned {
                if ui.button("Unpin").clicked() {
                    self.layout.unpin(n.id);
                    ui.close();
                }
            } else if ui.button("Pin here").clicked() {
                self.layout.pin_at(n.id, view.to_layout(p));
                ui.close();
            }
            if ui.button("Show details").clicked() {
                self.selected = Some(n.id);
                ui.close();
            }
        });
        let graph = mesh.graph();
        let now = mesh.now_us().unwrap_or(0);
        let response = response.on_hover_ui(|ui| {
            ui.strong(node_label(n));
            if let Some(identity) = &n.identity {
                ui.label(identity);
            }
            golden_ui(ui, &golden(graph.edges().filter(|e| e.server == n.id), now));
            if pinned {
                ui.weak("pinned: double-click to let it move");
            }
        });
        if response.clicked() {
            self.selected = Some(n.id);
        }
        response.hovered()
    }

    fn details_ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        let graph = mesh.graph();
        let now = mesh.now_us().unwrap_or(0);
        let Some(n) = self.selected.and_then(|id| graph.node(id)) else {
            return;
        };
        ui.horizontal(|ui| {
            ui.heading(node_label(n));
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Close").clicked() {
                    self.selected = None;
                }
            });
        });
        ui.label(match &n.identity {
            Some(id) => format!("identity {id}"),
            None => "no mTLS identity (unmeshed)".to_string(),
        });
        if self.visible.drifting.contains(&n.id) {
            ui.colored_label(DENIED, "sends or reads a drifting schema");
        }
        if self.layout.is_pinned(n.id) && ui.button("Unpin").clicked() {
            self.layout.unpin(n.id);
        }
        ui.separator();
        ui.strong("Inbound");
        golden_ui(ui, &golden(graph.edges().filter(|e| e.server == n.id), now));
        ui.separator();
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.strong("Talks to");
            for e in graph.edges().filter(|e| e.client == n.id) {
                if let Some(s) = graph.node(e.server) {
                    let tls = match e.tls_share() {
                        Some(s) if s >= 1.0 => "mTLS",
                        Some(_) => "partly plaintext",
                        None => "",
                    };
                    ui.label(format!(
                        "-> {} · {:.1} req/s · {tls}",
                        node_label(s),
                        e.rps(now)
                    ));
                }
            }
            ui.strong("Called by");
            for e in graph.edges().filter(|e| e.server == n.id) {
                if let Some(c) = graph.node(e.client) {
                    ui.label(format!("<- {} · {} requests", node_label(c), e.requests));
                }
            }
            ui.separator();
            ui.weak(
                "Edges: width is requests per second; green succeeds, orange fails, red is \
                 denied by policy; a lock is mTLS, dashed is plaintext. Drag a node to pin it, \
                 double-click to unpin.",
            );
        });
    }

    /// The visible graph at the current layout, for the SVG and PNG export.
    fn svg_scene(&self, mesh: &Mesh) -> SvgScene {
        let graph = mesh.graph();
        let nodes = self
            .visible
            .nodes
            .iter()
            .filter_map(|&id| Some((graph.node(id)?, self.layout.position(id)?)))
            .map(|(n, pos)| SvgNode {
                pos,
                label: node_label(n),
                fill: if n.meshed() {
                    namespace_colour(namespace(n))
                } else {
                    Color32::from_gray(140)
                },
                pinned: self.layout.is_pinned(n.id),
            })
            .collect();
        let edges = self
            .visible
            .edges
            .iter()
            .filter_map(|e: &ShownEdge| {
                Some(SvgEdge {
                    from: self.layout.position(e.client)?,
                    to: self.layout.position(e.server)?,
                    width: edge_width(e.rps),
                    color: health_colour(e.health),
                    dashed: !e.secured,
                })
            })
            .collect();
        let boxes = self
            .namespace_boxes(mesh)
            .into_iter()
            .map(|(ns, (min, max))| SvgBox {
                name: ns.to_string(),
                min,
                max,
                color: namespace_colour(ns),
            })
            .collect();
        SvgScene {
            nodes,
            edges,
            boxes,
        }
    }
}

/// Where edge `k`'s dot is at `time`: it crosses the edge faster the more requests per
/// second it carries, each edge starting at its own phase.
fn traffic_dot(rps: f32, k: usize, a: Pos2, b: Pos2, time: f64) -> Pos2 {
    let speed = 0.15 + 0.25 * f64::from((1.0 + rps).log2());
    let phase = (k as f64 * 0.618_034).fract();
    let t = (time * speed + phase).fract() as f32;
    a + (b - a) * t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_dots_stand_out_from_their_line_in_either_theme() {
        let light = |c: Color32| c.r() as u32 + c.g() as u32 + c.b() as u32;
        for colour in [OK, FAILING, DENIED] {
            assert!(
                light(dot_colour(colour, true)) > light(colour),
                "lighter on dark"
            );
            assert!(
                light(dot_colour(colour, false)) < light(colour),
                "darker on light"
            );
            assert_eq!(dot_colour(colour, false).a(), 255, "still opaque");
        }
    }
}
