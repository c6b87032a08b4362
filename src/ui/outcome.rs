//! How a background job's result shows beside the button that started it: the message in
//! words, red when it failed, nothing while there is none.

/// Shows `outcome` in place.
pub fn outcome_ui(ui: &mut egui::Ui, outcome: &Option<Result<String, String>>) {
    match outcome {
        Some(Ok(msg)) => {
            ui.label(msg);
        }
        Some(Err(msg)) => {
            ui.colored_label(ui.visuals().error_fg_color, msg);
        }
        None => {}
    }
}
