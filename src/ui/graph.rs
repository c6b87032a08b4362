//! The graph view: workloads as nodes grouped by namespace, edges painted by hand (width by
//! requests per second, colour by success and denials, dashed when plaintext), pan and zoom,
//! a tooltip with the golden metrics, and a click that selects.

use std::collections::BTreeMap;

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2, WidgetInfo};

use super::layout::Layout;
use crate::mesh::Mesh;
use crate::mesh::graph::{Edge, Node, NodeId};

const NODE_RADIUS: f32 = 12.0;

#[derive(Debug)]
pub struct GraphView {
    layout: Layout,
    synced: Option<u64>,
    pan: Vec2,
    zoom: f32,
    pub selected: Option<NodeId>,
}

impl Default for GraphView {
    fn default() -> Self {
        GraphView {
            layout: Layout::default(),
            synced: None,
            pan: Vec2::ZERO,
            zoom: 1.0,
            selected: None,
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

fn edge_colour(e: &Edge) -> Color32 {
    if e.denied > 0 && e.denied * 20 >= e.requests {
        DENIED
    } else if e.success_rate().is_some_and(|s| s < 0.95) {
        FAILING
    } else {
        OK
    }
}

/// A stable colour per namespace.
fn namespace_colour(ns: &str) -> Color32 {
    let h = ns
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let hue = (h % 360) as f32 / 360.0;
    egui::ecolor::Hsva::new(hue, 0.45, 0.75, 1.0).into()
}

impl GraphView {
    pub fn ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        let graph = mesh.graph();
        let now = mesh.now_us().unwrap_or(0);
        if self.synced != Some(mesh.generation()) {
            self.synced = Some(mesh.generation());
            let mut namespaces: Vec<&str> = graph
                .nodes()
                .map(|n| n.namespace.as_deref().unwrap_or(""))
                .collect();
            namespaces.sort_unstable();
            namespaces.dedup();
            let nodes: Vec<(u64, usize)> = graph
                .nodes()
                .map(|n| {
                    let ns = n.namespace.as_deref().unwrap_or("");
                    (n.id, namespaces.binary_search(&ns).unwrap_or(0))
                })
                .collect();
            let edges: Vec<(u64, u64)> = graph.edges().map(|e| (e.client, e.server)).collect();
            self.layout.sync(&nodes, &edges);
        }
        for _ in 0..4 {
            self.layout.step();
        }
        if self.layout.is_hot() {
            ui.request_repaint();
        }

        egui::Panel::right("graph_details")
            .resizable(true)
            .default_size(260.0)
            .show(ui, |ui| self.details_ui(ui, mesh));

        let (response, painter) = ui.allocate_painter(ui.available_size(), Sense::click_and_drag());
        if response.dragged() {
            self.pan += response.drag_delta();
        }
        if response.hovered() {
            let (zoom, scroll) = ui.input(|i| (i.zoom_delta(), i.smooth_scroll_delta.y));
            self.zoom = (self.zoom * zoom * (scroll * 0.002).exp()).clamp(0.2, 5.0);
        }
        if response.clicked() {
            self.selected = None;
        }
        let rect = response.rect;
        let centre = rect.center() + self.pan;
        let zoom = self.zoom;
        let [cx, cy] = self.layout.centre();
        let to_screen = |p: [f32; 2]| centre + Vec2::new(p[0] - cx, p[1] - cy) * zoom;
        let visuals = ui.visuals().clone();
        let now_rps_scale = |rps: f64| (1.0 + (1.0 + rps as f32).log2() * 1.5).min(8.0);

        if graph.nodes().next().is_none() {
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                "waiting for traffic...",
                FontId::proportional(16.0),
                visuals.weak_text_color(),
            );
            return;
        }

        // Namespaces: a faint box around each group's nodes.
        let mut boxes: BTreeMap<&str, Rect> = BTreeMap::new();
        for n in graph.nodes() {
            let Some(p) = self.layout.position(n.id) else {
                continue;
            };
            let r = Rect::from_center_size(to_screen(p), Vec2::splat(NODE_RADIUS * 2.0));
            let ns = n.namespace.as_deref().unwrap_or("(outside the mesh)");
            boxes.entry(ns).and_modify(|b| *b = b.union(r)).or_insert(r);
        }
        for (ns, b) in &boxes {
            let b = b.expand(28.0);
            let colour = namespace_colour(ns);
            painter.rect_filled(b, 10.0, colour.gamma_multiply(0.08));
            painter.rect_stroke(
                b,
                10.0,
                Stroke::new(1.0, colour.gamma_multiply(0.5)),
                egui::StrokeKind::Inside,
            );
            painter.text(
                b.left_top() + Vec2::new(8.0, 4.0),
                Align2::LEFT_TOP,
                *ns,
                FontId::proportional(12.0),
                colour,
            );
        }

        for e in graph.edges() {
            let (Some(a), Some(b)) = (
                self.layout.position(e.client),
                self.layout.position(e.server),
            ) else {
                continue;
            };
            let (a, b) = (to_screen(a), to_screen(b));
            let dir = (b - a).normalized();
            if !dir.is_finite() {
                continue;
            }
            let (a, b) = (a + dir * NODE_RADIUS, b - dir * (NODE_RADIUS + 2.0));
            let stroke = Stroke::new(now_rps_scale(e.rps(now)), edge_colour(e));
            let secured = e.tls_share().is_some_and(|s| s >= 1.0);
            if secured {
                painter.line_segment([a, b], stroke);
            } else {
                painter.extend(egui::Shape::dashed_line(&[a, b], stroke, 6.0, 4.0));
            }
            let normal = dir.rot90() * 5.0;
            painter.add(egui::Shape::convex_polygon(
                vec![b, b - dir * 10.0 + normal, b - dir * 10.0 - normal],
                stroke.color,
                Stroke::NONE,
            ));
            if !secured {
                painter.text(
                    a + (b - a) * 0.5,
                    Align2::CENTER_CENTER,
                    "plain",
                    FontId::proportional(11.0),
                    FAILING,
                );
            }
        }

        for n in graph.nodes() {
            let Some(p) = self.layout.position(n.id) else {
                continue;
            };
            let p = to_screen(p);
            self.node_ui(ui, &painter, mesh, n, p);
        }
    }

    fn node_ui(&mut self, ui: &egui::Ui, painter: &egui::Painter, mesh: &Mesh, n: &Node, p: Pos2) {
        let label = node_label(n);
        let colour = namespace_colour(n.namespace.as_deref().unwrap_or(""));
        let selected = self.selected == Some(n.id);
        let stroke = if selected {
            Stroke::new(3.0, ui.visuals().selection.stroke.color)
        } else {
            Stroke::new(1.0, ui.visuals().widgets.noninteractive.fg_stroke.color)
        };
        let fill = if n.meshed() {
            colour
        } else {
            Color32::from_gray(140)
        };
        painter.circle(p, NODE_RADIUS, fill, stroke);
        let name = n.workload.as_deref().unwrap_or(&n.key);
        painter.text(
            p + Vec2::new(0.0, NODE_RADIUS + 2.0),
            Align2::CENTER_TOP,
            name,
            FontId::proportional(12.0),
            ui.visuals().text_color(),
        );
        let id = ui.scope_id().with(("node", n.id));
        let rect = Rect::from_center_size(p, Vec2::splat(NODE_RADIUS * 2.0));
        let response = ui.interact(rect, id, Sense::click());
        response.widget_info(|| WidgetInfo::labeled(egui::Role::Button, true, &label));
        let graph = mesh.graph();
        let now = mesh.now_us().unwrap_or(0);
        let response = response.on_hover_ui(|ui| {
            ui.strong(&label);
            if let Some(identity) = &n.identity {
                ui.label(identity);
            }
            golden_ui(ui, &golden(graph.edges().filter(|e| e.server == n.id), now));
        });
        if response.clicked() {
            self.selected = Some(n.id);
        }
    }

    fn details_ui(&self, ui: &mut egui::Ui, mesh: &Mesh) {
        let graph = mesh.graph();
        let now = mesh.now_us().unwrap_or(0);
        let Some(n) = self.selected.and_then(|id| graph.node(id)) else {
            ui.heading("Details");
            ui.label("Click a workload to see its identity and traffic.");
            ui.separator();
            ui.label("Edges: width is requests per second; green succeeds, orange fails, red is denied by policy; solid is mTLS, dashed and marked \"plain\" is plaintext. Drag to pan, scroll to zoom.");
            return;
        };
        ui.heading(node_label(n));
        ui.label(match &n.identity {
            Some(id) => format!("identity {id}"),
            None => "no mTLS identity (unmeshed)".to_string(),
        });
        ui.separator();
        ui.strong("Inbound");
        golden_ui(ui, &golden(graph.edges().filter(|e| e.server == n.id), now));
        ui.separator();
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
    }
}
