//! The eframe shell: owns the source hub, hands it the views' commands and drains its
//! messages into the model each frame under a time budget; saves the list of sources, the
//! open tab, the welcome's state and the theme so the next run offers them again.
//! Everything drawn is in `shell`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;
use serde::{Deserialize, Serialize};

use super::frame_log::FrameLog;
use super::ingest;
use super::shell::{Shell, Tab};
use super::software_gl;
use crate::sources::hub::{Command, Hub, Spec};
use crate::sources::policy_files::Target;

/// How long one frame may spend folding events into the model.
const INGEST_BUDGET: Duration = Duration::from_millis(4);
/// Where the list of sources is kept between runs.
const SOURCES_KEY: &str = "meshlens.sources";

/// Where the open tab, the welcome's state and the theme are kept between runs.
const VIEW_KEY: &str = "meshlens.view";

/// What the window showed, so the next run opens where this one left off and the
/// first-run welcome stays dismissed. The theme is kept here rather than left to egui's
/// saved memory, which is dropped whole when it does not parse (e.g. after an egui update).
#[derive(Debug, Serialize, Deserialize)]
struct SavedView {
    tab: Tab,
    welcome: bool,
    #[serde(default)]
    theme: egui::ThemePreference,
}

/// A source as saved between runs: what it is, and whether it was running.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    spec: Spec,
    running: bool,
}

pub struct MeshlensApp {
    shell: Shell,
    hub: Option<Hub>,
    frame_log: Option<FrameLog>,
}

impl MeshlensApp {
    fn new(cc: &eframe::CreationContext<'_>, demo: bool, started: Instant) -> MeshlensApp {
        let ctx = cc.egui_ctx.clone();
        // Coalesced: a burst of events becomes one frame.
        let hub = Hub::new(Arc::new(move || {
            ctx.request_repaint_after(Duration::from_millis(30));
        }));
        let mut shell = Shell::new(match (&hub, demo) {
            (Err(e), _) => format!("no sources: {e}"),
            (Ok(_), true) => "demo sandbox: starting".into(),
            (Ok(_), false) => "no source (started with --no-demo)".into(),
        });
        let saved: Option<Vec<Saved>> = cc.storage.and_then(|s| eframe::get_value(s, SOURCES_KEY));
        for command in restore(saved, demo) {
            shell.sources.push(command);
        }
        if let Some(view) = cc
            .storage
            .and_then(|s| eframe::get_value::<SavedView>(s, VIEW_KEY))
        {
            shell.tab = view.tab;
            shell.welcome = view.welcome;
            shell.theme = view.theme;
            cc.egui_ctx.set_theme(view.theme);
        }
        MeshlensApp {
            shell,
            hub: hub.ok(),
            frame_log: FrameLog::from_env(started),
        }
    }
}

/// What to do at start: the saved sources come back stopped, except the demo, which runs
/// again if it ran (and `demo` allows it). Without anything saved, the demo starts.
fn restore(saved: Option<Vec<Saved>>, demo: bool) -> Vec<Command> {
    let demo_spec = Spec::Sandbox { manifest: None };
    let Some(saved) = saved else {
        return if demo {
            vec![Command::Start {
                spec: demo_spec,
                replace: false,
            }]
        } else {
            Vec::new()
        };
    };
    saved
        .into_iter()
        .map(|s| {
            if demo && s.running && s.spec == demo_spec {
                Command::Start {
                    spec: s.spec,
                    replace: false,
                }
            } else {
                Command::Add(s.spec)
            }
        })
        .collect()
}

impl eframe::App for MeshlensApp {
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        software_gl::clear_color(visuals)
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let Some(hub) = &mut self.hub else { return };
        if ingest::pump(&mut self.shell, hub, INGEST_BUDGET) {
            // More may be queued: continue next frame.
            ctx.request_repaint();
        }
        // Views that read more than events follow the running sandbox's registry and policy.
        let wanted = self.shell.policies.target.is_none() || !self.shell.schemas.has_registry();
        if wanted && let Some(e) = hub.sandbox_endpoints() {
            if !self.shell.schemas.has_registry() {
                self.shell.schemas.offer_registry(&e.ready.registry);
            }
            if self.shell.policies.target.is_none() {
                let target = Target {
                    paths: vec![e.policy_dir],
                    manifest: Some(e.manifest),
                };
                self.shell.policies.watch(target, ctx);
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(log) = &mut self.frame_log {
            log.frame(ui.ctx(), frame.info().cpu_usage);
        }
        self.shell.ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let saved: Vec<Saved> = self
            .shell
            .sources
            .statuses
            .iter()
            .map(|s| Saved {
                spec: s.spec.clone(),
                running: s.running(),
            })
            .collect();
        eframe::set_value(storage, SOURCES_KEY, &saved);
        let view = SavedView {
            tab: self.shell.tab,
            welcome: self.shell.welcome,
            theme: self.shell.theme,
        };
        eframe::set_value(storage, VIEW_KEY, &view);
    }
}

/// Opens the window; with `demo`, the bundled sandbox runs inside and feeds it.
pub fn run_app(demo: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    software_gl::keep_freed_memory();
    let options = software_gl::native_options(
        egui::ViewportBuilder::default()
            .with_title("meshlens")
            .with_inner_size([1280.0, 800.0]),
    );
    eframe::run_native(
        "meshlens",
        options,
        Box::new(move |cc| Ok(Box::new(MeshlensApp::new(cc, demo, started)))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_sources_come_back_stopped_except_a_running_demo() {
        let tap = Spec::Recording {
            path: "/tmp/x.tap".into(),
        };
        let demo = Spec::Sandbox { manifest: None };
        let saved = || {
            Some(vec![
                Saved {
                    spec: tap.clone(),
                    running: true,
                },
                Saved {
                    spec: demo.clone(),
                    running: true,
                },
            ])
        };
        assert_eq!(
            restore(saved(), true),
            vec![
                Command::Add(tap.clone()),
                Command::Start {
                    spec: demo.clone(),
                    replace: false
                }
            ]
        );
        assert_eq!(
            restore(saved(), false),
            vec![Command::Add(tap), Command::Add(demo.clone())]
        );
        assert_eq!(restore(None, false), Vec::new());
        assert_eq!(restore(None, true).len(), 1);
    }

    /// eframe's storage, in memory.
    #[derive(Default)]
    struct Memory(std::collections::HashMap<String, String>);

    impl eframe::Storage for Memory {
        fn get_string(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
        fn set_string(&mut self, key: &str, value: String) {
            self.0.insert(key.to_string(), value);
        }
        fn remove_string(&mut self, key: &str) {
            self.0.remove(key);
        }
        fn flush(&mut self) {}
    }

    /// The app as eframe creates it (without the demo), reading `storage`; and its context.
    fn app(storage: Option<&dyn eframe::Storage>) -> (MeshlensApp, egui::Context) {
        let ctx = egui::Context::default();
        let mut cc = eframe::CreationContext::_new_kittest(ctx.clone());
        cc.storage = storage;
        (MeshlensApp::new(&cc, false, Instant::now()), ctx)
    }

    #[test]
    fn sources_tab_welcome_and_theme_come_back_after_a_restart() {
        use egui_kittest::Harness;
        use egui_kittest::kittest::Queryable as _;

        let (first, _) = app(None);
        assert!(first.shell.welcome && first.shell.tab == Tab::Graph);
        let mut h = Harness::builder()
            .with_size(egui::vec2(1280.0, 800.0))
            .build_ui_state(
                |ui, app: &mut MeshlensApp| {
                    let mut frame = eframe::Frame::_new_kittest();
                    eframe::App::logic(app, &ui.ctx().clone(), &mut frame);
                    app.shell.ui(ui);
                },
                first,
            );
        h.run();
        let specs = vec![
            Spec::Recording {
                path: "/tmp/monday.tap".into(),
            },
            Spec::Sandbox {
                manifest: Some("/tmp/mesh.yaml".into()),
            },
        ];
        for spec in &specs {
            h.state_mut().shell.sources.push(Command::Add(spec.clone()));
        }
        h.get_by_label("Got it").click();
        h.run();
        h.get_by_label("Light theme").click();
        h.run();
        h.get_by_label("Sources").click();
        h.run();
        let listed: Vec<Spec> = (h.state().shell.sources.statuses.iter())
            .map(|s| s.spec.clone())
            .collect();
        assert_eq!(listed, specs);

        let mut storage = Memory::default();
        eframe::App::save(h.state_mut(), &mut storage);
        drop(h);

        let (mut second, ctx) = app(Some(&storage));
        assert_eq!(second.shell.tab, Tab::Sources);
        assert!(!second.shell.welcome, "the welcome stays dismissed");
        assert_eq!(
            ctx.options(|o| o.theme_preference),
            egui::ThemePreference::Light
        );
        assert_eq!(
            second.shell.sources.take_commands(),
            specs.into_iter().map(Command::Add).collect::<Vec<_>>(),
            "the sources come back, stopped"
        );
    }
}
