//! The app's frame without eframe: top bar with the view tabs and the theme switch, a
//! first-run welcome, the status bar, and the selected view. Tests drive it headless.

use std::time::{Duration, Instant};

use egui::{Key, KeyboardShortcut, Modifiers, RichText, Theme, ThemePreference};

use super::graph::GraphView;
use super::inspector::Inspector;
use super::log_panel::{self, LogPanel};
use super::metrics_view::MetricsView;
use super::palette::{self, Entry, Palette};
use super::policies_view::PoliciesView;
use super::schemas_view::SchemasView;
use super::software_gl;
use super::sources_view::SourcesView;
use super::tap_view::TapView;
use crate::mesh::Mesh;
use crate::sources::hub::Spec;
use crate::tap::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tab {
    Graph,
    Tap,
    Inspector,
    Sources,
    Policies,
    Metrics,
    Schemas,
}

impl Tab {
    /// Every tab in top-bar order; Ctrl+1… selects them in this order.
    pub const ALL: [Tab; 7] = [
        Tab::Graph,
        Tab::Tap,
        Tab::Policies,
        Tab::Metrics,
        Tab::Schemas,
        Tab::Inspector,
        Tab::Sources,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Graph => "Graph",
            Tab::Tap => "Tap",
            Tab::Inspector => "Avro inspector",
            Tab::Sources => "Sources",
            Tab::Policies => "Policies",
            Tab::Metrics => "Metrics",
            Tab::Schemas => "Schemas & drift",
        }
    }
}

/// What a shortcut or the command palette can ask of the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Show(Tab),
    ToggleTheme,
    ToggleLog,
    ToggleWelcome,
    OpenPalette,
}

const DIGITS: [Key; 9] = [
    Key::Num1,
    Key::Num2,
    Key::Num3,
    Key::Num4,
    Key::Num5,
    Key::Num6,
    Key::Num7,
    Key::Num8,
    Key::Num9,
];

/// Every action with its shortcut: the palette lists these and the keyboard triggers them.
pub fn actions() -> Vec<Entry<Action>> {
    let mut entries: Vec<Entry<Action>> = Tab::ALL
        .iter()
        .zip(DIGITS)
        .map(|(&tab, key)| Entry {
            label: format!("Show {}", tab.title()),
            shortcut: Some(KeyboardShortcut::new(Modifiers::COMMAND, key)),
            action: Action::Show(tab),
        })
        .collect();
    entries.extend([
        Entry {
            label: "Switch between dark and light theme".into(),
            shortcut: Some(KeyboardShortcut::new(
                Modifiers::COMMAND.plus(Modifiers::SHIFT),
                Key::T,
            )),
            action: Action::ToggleTheme,
        },
        Entry {
            label: "Show or hide the log".into(),
            shortcut: Some(KeyboardShortcut::new(
                Modifiers::COMMAND.plus(Modifiers::SHIFT),
                Key::L,
            )),
            action: Action::ToggleLog,
        },
        Entry {
            label: "Show or hide the welcome".into(),
            shortcut: Some(KeyboardShortcut::new(Modifiers::NONE, Key::F1)),
            action: Action::ToggleWelcome,
        },
        Entry {
            label: "Command palette".into(),
            shortcut: Some(palette::OPEN),
            action: Action::OpenPalette,
        },
    ]);
    entries
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
    pub sources: SourcesView,
    pub policies: PoliciesView,
    pub metrics: MetricsView,
    pub schemas: SchemasView,
    pub welcome: bool,
    /// The theme as the user last chose it (read from egui each frame), for saving.
    pub theme: ThemePreference,
    pub palette: Palette,
    pub log: LogPanel,
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
            sources: SourcesView::default(),
            policies: PoliciesView::default(),
            metrics: MetricsView::default(),
            schemas: SchemasView::default(),
            welcome: true,
            theme: ThemePreference::System,
            palette: Palette::default(),
            log: LogPanel::default(),
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

    /// Starts over with an empty model, as when a recording replaces the live sources.
    pub fn reset_model(&mut self) {
        self.mesh = Mesh::default();
        self.graph = GraphView::default();
        self.tap = TapView::default();
    }

    /// Counts `n` events just applied, for the events/s figure.
    pub fn applied(&mut self, n: u64) {
        self.rate.add(n);
    }

    pub fn perform(&mut self, action: Action, ctx: &egui::Context) {
        match action {
            Action::Show(tab) => self.tab = tab,
            Action::ToggleTheme => ctx.set_theme(match ctx.theme() {
                Theme::Dark => Theme::Light,
                Theme::Light => Theme::Dark,
            }),
            Action::ToggleLog => self.log.open = !self.log.open,
            Action::ToggleWelcome => self.welcome = !self.welcome,
            Action::OpenPalette => self.palette.toggle(),
        }
    }

    /// Runs the actions whose shortcut was pressed this frame (and takes the keys, so a
    /// text box does not also receive them).
    fn shortcuts(&mut self, ctx: &egui::Context, actions: &[Entry<Action>]) {
        let pressed: Vec<Action> = ctx.input_mut(|i| {
            actions
                .iter()
                .filter(|e| e.shortcut.as_ref().is_some_and(|s| i.consume_shortcut(s)))
                .map(|e| e.action)
                .collect()
        });
        for action in pressed {
            self.perform(action, ctx);
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let actions = actions();
        self.shortcuts(&ctx, &actions);
        if let Some(action) = self.palette.ui(&ctx, &actions) {
            self.perform(action, &ctx);
        }
        egui::Panel::top("top_bar")
            .frame(software_gl::panel_frame(ui.style()))
            .show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("status_bar")
            .frame(software_gl::panel_frame(ui.style()))
            .show(ui, |ui| self.status_bar(ui));
        if self.log.open {
            egui::Panel::bottom("log")
                .frame(software_gl::panel_frame(ui.style()))
                .resizable(true)
                .default_size(180.0)
                .show(ui, |ui| self.log.ui(ui, log_panel::buffer()));
        }
        if self.welcome {
            egui::Panel::top("welcome")
                .frame(software_gl::panel_frame(ui.style()))
                .show(ui, |ui| self.welcome_ui(ui));
        }
        software_gl::central_panel(ui.style()).show(ui, |ui| match self.tab {
            Tab::Graph => self.graph.ui(ui, &self.mesh),
            Tab::Tap => {
                self.schemas.poll(ui.ctx());
                let loading = self.schemas.is_loading();
                self.tap
                    .ui(ui, &self.mesh, self.schemas.snapshot.as_ref(), loading);
            }
            Tab::Inspector => self.inspector.ui(ui),
            Tab::Sources => self.sources.ui(ui),
            Tab::Policies => self.policies.ui(ui, &self.mesh),
            Tab::Metrics => self.metrics.ui(ui, &self.mesh),
            Tab::Schemas => self.schemas.ui(ui, &self.mesh),
        });
        self.theme = ctx.options(|o| o.theme_preference);
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("meshlens");
            ui.separator();
            for tab in Tab::ALL {
                ui.selectable_value(&mut self.tab, tab, tab.title());
            }
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
                let palette = ui.button("Commands").on_hover_text(format!(
                    "Every action, by name ({})",
                    ui.ctx().format_shortcut(&palette::OPEN)
                ));
                if palette.clicked() {
                    self.palette.toggle();
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
        let demo = Spec::Sandbox { manifest: None };
        if self.sources.statuses.iter().any(|s| s.spec == demo) {
            ui.label(
                "You are looking at a small storefront mesh running inside this app: sidecar \
                 proxies with mTLS identities, Linkerd authorization policy, and Avro \
                 messages checked against a schema registry. The demo tells a two-minute \
                 story: a compatible rollout, a breaking one caught as drift, a policy \
                 tightened, and certificates rotated.",
            );
        } else {
            ui.label(
                "Nothing feeds the app yet. The bundled demo, a small storefront mesh with \
                 mTLS identities, Linkerd policy and Avro messages, starts from Sources.",
            );
        }
        ui.label(
            "Graph shows who talks to whom; Tap shows every request with its policy decision \
             and decoded payload; Policies, Metrics and Schemas & drift show why calls were \
             denied, how they perform, and which producers ship a schema their consumers \
             cannot read.",
        );
        ui.label(
            "To look at a real mesh, open Sources: connect to your proxies' tap \
             (admin address with a client certificate, or a token), to their /metrics or a \
             Prometheus server, or open a recording. Ctrl+K lists every command; F1 brings \
             this back. `meshlens ui --no-demo` starts without the demo.",
        );
        ui.add_space(4.0);
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let problems = log_panel::buffer().problems();
            let text = if problems > 0 {
                RichText::new(format!("Log ({problems} warnings)"))
                    .color(ui.visuals().warn_fg_color)
            } else {
                RichText::new("Log")
            };
            ui.toggle_value(&mut self.log.open, text)
                .on_hover_text("What the sandbox, proxies and sources logged");
            ui.separator();
            if self.sources.statuses.is_empty() {
                ui.label(&self.source);
                ui.separator();
            }
            self.sources.status_bar(ui);
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
