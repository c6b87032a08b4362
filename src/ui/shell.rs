//! The app's frame without eframe: top bar with the view tabs and the theme switch, a
//! first-run welcome, the status bar, and the selected view. Tests drive it headless.

use std::time::{Duration, Instant};

use egui::{RichText, Theme};

use super::graph::GraphView;
use super::inspector::Inspector;
use super::schemas_view::SchemasView;
use super::tap_view::TapView;
use crate::mesh::Mesh;
use crate::tap::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Graph,
    Tap,
    Inspector,
    Schemas,
}

/// Events per second, over whole seconds of wall time.
#[derive(Debug)]
struct Rate {
    since: Instant,
    count: u64,
    per_second: f64,
}

impl Rate {
    fn add(&mut self, n: u64) {
        self.count += n;
        let elapsed = self.since.elapsed();
        if elapsed >= Duration::from_secs(1) {
            self.per_second = self.count as f64 / elapsed.as_secs_f64();
            self.count = 0;
            self.since = Instant::now();
        }
    }
}

pub struct Shell {
    pub mesh: Mesh,
    pub tab: Tab,
    pub graph: GraphView,
    pub tap: TapView,
    pub inspector: Inspector,
    pub schemas: SchemasView,
    pub welcome: bool,
    /// What feeds the model, as the status bar says it (e.g. "demo sandbox: running").
    pub source: String,
    /// Events the source dropped before they reached the model.
    pub dropped: u64,
    rate: Rate,
}

impl Shell {
    pub fn new(source: impl Into<String>) -> Shell {
        Shell {
            mesh: Mesh::default(),
            tab: Tab::Graph,
            graph: GraphView::default(),
            tap: TapView::default(),
            inspector: Inspector::default(),
            schemas: SchemasView::default(),
            welcome: true,
            source: source.into(),
            dropped: 0,
            rate: Rate {
                since: Instant::now(),
                count: 0,
                per_second: 0.0,
            },
        }
    }

    pub fn apply(&mut self, event: &Event) {
        self.mesh.apply(event);
    }

    /// Counts `n` events just applied, for the events/s figure.
    pub fn applied(&mut self, n: u64) {
        self.rate.add(n);
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("top_bar").show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("status_bar").show(ui, |ui| self.status_bar(ui));
        if self.welcome {
            egui::Panel::top("welcome").show(ui, |ui| self.welcome_ui(ui));
        }
        egui::CentralPanel::default().show(ui, |ui| match self.tab {
            Tab::Graph => self.graph.ui(ui, &self.mesh),
            Tab::Tap => self.tap.ui(ui, &self.mesh),
            Tab::Inspector => self.inspector.ui(ui),
            Tab::Schemas => self.schemas.ui(ui, &self.mesh),
        });
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("meshlens");
            ui.separator();
            ui.selectable_value(&mut self.tab, Tab::Graph, "Graph");
            ui.selectable_value(&mut self.tab, Tab::Tap, "Tap");
            ui.selectable_value(&mut self.tab, Tab::Inspector, "Avro inspector");
            ui.selectable_value(&mut self.tab, Tab::Schemas, "Schemas & drift");
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let dark = ui.ctx().theme() == Theme::Dark;
                let (text, next) = if dark {
                    ("Light theme", Theme::Light)
                } else {
                    ("Dark theme", Theme::Dark)
                };
                if ui.button(text).clicked() {
                    ui.ctx().set_theme(next);
                }
                if !self.welcome && ui.button("Help").clicked() {
                    self.welcome = true;
                }
            });
        });
    }

    fn welcome_ui(&mut self, ui: &mut egui::Ui) {
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.strong("Welcome to meshlens");
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Got it").clicked() {
                    self.welcome = false;
                }
            });
        });
        ui.label(
            "You are looking at a small storefront mesh running inside this app: sidecar \
             proxies with mTLS identities, Linkerd authorization policy, and Avro messages \
             checked against a schema registry. Graph shows who talks to whom; Tap shows \
             every request with its policy decision and decoded payload.",
        );
        ui.label(
            "To look at a real mesh, use the CLI for now: `meshlens tap <admin addr>` for \
             live events, `meshlens edges` for who talks to whom, and `meshlens record` to \
             save a stream. Start the app with `meshlens ui --no-demo` to skip the demo.",
        );
        ui.add_space(4.0);
    }

    fn status_bar(&self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(&self.source);
            ui.separator();
            ui.label(format!("{:.0} events/s", self.rate.per_second));
            ui.separator();
            let lost = self.mesh.lost() + self.dropped;
            let text = RichText::new(format!("{lost} lost"));
            ui.label(if lost > 0 {
                text.color(ui.visuals().warn_fg_color)
            } else {
                text
            });
            ui.separator();
            let graph = self.mesh.graph();
            ui.label(format!(
                "{} workloads, {} edges",
                graph.nodes().count(),
                graph.edges().count()
            ));
            ui.separator();
            ui.label(format!("generation {}", self.mesh.generation()));
        });
    }
}
