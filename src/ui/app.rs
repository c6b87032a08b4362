//! The eframe shell: owns the event source and drains it into the model each frame under a
//! time budget; everything drawn is in `shell`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;

use super::shell::Shell;
use crate::sources::sandbox::{SandboxSource, State};

/// How long one frame may spend folding events into the model.
const INGEST_BUDGET: Duration = Duration::from_millis(4);

pub struct MeshlensApp {
    shell: Shell,
    source: Option<SandboxSource>,
}

impl MeshlensApp {
    fn new(ctx: &egui::Context, demo: bool) -> MeshlensApp {
        let source = demo.then(|| {
            let ctx = ctx.clone();
            // Coalesced: a burst of events becomes one frame.
            SandboxSource::start_demo(Arc::new(move || {
                ctx.request_repaint_after(Duration::from_millis(30));
            }))
        });
        let label = if demo {
            "demo sandbox: starting"
        } else {
            "no source (started with --no-demo)"
        };
        MeshlensApp {
            shell: Shell::new(label),
            source,
        }
    }
}

impl eframe::App for MeshlensApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let Some(source) = &self.source else { return };
        let deadline = Instant::now() + INGEST_BUDGET;
        let mut n = 0;
        while let Some(event) = source.try_recv() {
            self.shell.apply(&event);
            n += 1;
            if Instant::now() >= deadline {
                // More may be queued: continue next frame.
                ctx.request_repaint();
                break;
            }
        }
        self.shell.applied(n);
        self.shell.dropped = source.dropped();
        if !self.shell.schemas.has_registry()
            && let Some(endpoints) = source.endpoints()
        {
            self.shell.schemas.offer_registry(&endpoints.ready.registry);
        }
        self.shell.source = match source.state() {
            State::Starting => "demo sandbox: starting".into(),
            State::Running => "demo sandbox: running".into(),
            State::Stopped => "demo sandbox: stopped".into(),
            State::Failed => format!(
                "demo sandbox failed: {}",
                source.error().unwrap_or_default()
            ),
        };
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.shell.ui(ui);
    }
}

/// Opens the window; with `demo`, the bundled sandbox runs inside and feeds it.
pub fn run_app(demo: bool) -> anyhow::Result<ExitCode> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("meshlens")
            .with_inner_size([1280.0, 800.0]),
        ..Default::default()
    };
    eframe::run_native(
        "meshlens",
        options,
        Box::new(move |cc| Ok(Box::new(MeshlensApp::new(&cc.egui_ctx, demo)))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
