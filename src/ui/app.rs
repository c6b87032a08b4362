//! The eframe shell: window, top bar, and the views.

use std::process::ExitCode;

use eframe::egui;

use super::inspector::Inspector;

#[derive(Default)]
pub struct MeshlensApp {
    inspector: Inspector,
}

impl eframe::App for MeshlensApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::Panel::top("top_bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("meshlens");
                ui.separator();
                ui.label("Avro inspector");
            });
        });
        egui::CentralPanel::default().show(ui, |ui| self.inspector.ui(ui));
    }
}

pub fn run_app() -> anyhow::Result<ExitCode> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("meshlens")
            .with_inner_size([1200.0, 800.0]),
        ..Default::default()
    };
    eframe::run_native(
        "meshlens",
        options,
        Box::new(|_cc| Ok(Box::new(MeshlensApp::default()))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
