//! "Browse…" buttons beside path fields: the desktop's file chooser (rfd, through the XDG
//! portal) runs on a thread of its own, because a dialog blocks until the user chooses and
//! a frame must not. The chosen path lands in the field; the field stays editable by hand.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

/// Whether the dialog picks an existing file or folder, or names a file to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Open,
    Folder,
    Save,
}

/// The dialogs of one view: at most one is open at a time, for the field named `key`.
#[derive(Debug, Default)]
pub struct Browse {
    pending: Option<(String, Receiver<Option<PathBuf>>)>,
    /// A dialog's answer, kept until its field is drawn again.
    answered: Option<(String, PathBuf)>,
}

impl Browse {
    /// A "Browse…" button for the field `key` whose text is `value`. A chosen path replaces
    /// `value`; cancelling leaves it as it was.
    pub fn button(&mut self, ui: &mut egui::Ui, key: &str, mode: Mode, value: &mut String) {
        self.poll();
        if self.answered.as_ref().is_some_and(|(k, _)| k == key)
            && let Some((_, path)) = self.answered.take()
        {
            *value = path.display().to_string();
        }
        let response = ui
            .add_enabled(self.pending.is_none(), egui::Button::new("Browse…"))
            .on_hover_text("Choose with the desktop's file dialog")
            .on_disabled_hover_text("A file dialog is open");
        if response.clicked() {
            self.open(ui.ctx(), key, mode, value);
        }
    }

    fn poll(&mut self) {
        let Some((key, rx)) = &self.pending else {
            return;
        };
        let chosen = match rx.try_recv() {
            Ok(chosen) => chosen,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => None,
        };
        self.answered = chosen.map(|path| (key.clone(), path));
        self.pending = None;
    }

    fn open(&mut self, ctx: &egui::Context, key: &str, mode: Mode, current: &str) {
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let start = PathBuf::from(current);
        let spawned = std::thread::Builder::new()
            .name("file-dialog".into())
            .spawn(move || {
                let mut dialog = rfd::FileDialog::new();
                if let Some(dir) = start.parent().filter(|d| d.is_dir()) {
                    dialog = dialog.set_directory(dir);
                }
                if let Some(name) = start.file_name() {
                    dialog = dialog.set_file_name(name.to_string_lossy());
                }
                let chosen = match mode {
                    Mode::Open => dialog.pick_file(),
                    Mode::Folder => dialog.pick_folder(),
                    Mode::Save => dialog.save_file(),
                };
                let _ = tx.send(chosen);
                ctx.request_repaint();
            });
        // Without a thread there is no dialog; the field still takes a typed path.
        if spawned.is_ok() {
            self.pending = Some((key.to_string(), rx));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws the button for `key` once, as a frame would.
    fn frame(browse: &mut Browse, key: &str, value: &mut String) {
        let ctx = egui::Context::default();
        let mut output = ctx.run_ui(egui::RawInput::default(), |ui| {
            browse.button(ui, key, Mode::Open, value);
        });
        output.textures_delta.clear();
    }

    /// A dialog for `key` that has answered `path` (what the dialog thread sends).
    fn answered(key: &str, path: Option<&str>) -> Browse {
        let (tx, rx) = channel();
        tx.send(path.map(PathBuf::from)).unwrap();
        Browse {
            pending: Some((key.into(), rx)),
            answered: None,
        }
    }

    #[test]
    fn a_chosen_path_fills_its_field_and_cancel_keeps_the_text() {
        let mut value = "typed.pem".to_string();
        let mut browse = answered("ca", Some("/etc/mesh/ca.pem"));
        frame(&mut browse, "ca", &mut value);
        assert_eq!(value, "/etc/mesh/ca.pem");
        assert!(browse.pending.is_none());

        let mut browse = answered("ca", None);
        frame(&mut browse, "ca", &mut value);
        assert_eq!(value, "/etc/mesh/ca.pem");
        assert!(browse.pending.is_none() && browse.answered.is_none());
    }

    #[test]
    fn an_answer_waits_for_its_own_field() {
        let mut browse = answered("key", Some("/k.pem"));
        let mut cert = String::new();
        frame(&mut browse, "cert", &mut cert);
        assert_eq!(cert, "");
        let mut key = String::new();
        frame(&mut browse, "key", &mut key);
        assert_eq!(key, "/k.pem");
    }
}
