//! "Browse…" buttons beside path fields: the desktop's file chooser (rfd, through the XDG
//! portal) runs on a thread of its own, because a dialog blocks until the user chooses and
//! a frame must not. The chosen path lands in the field; the field stays editable by hand.
//! When no dialog can be shown, the field says why, under it; a cancel says nothing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError, channel};

/// Whether the dialog picks an existing file or folder, or names a file to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Open,
    Folder,
    Save,
}

/// How a dialog ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Chosen(PathBuf),
    Cancelled,
    /// There is no dialog to show, and why.
    Unavailable(String),
}

/// Shows a dialog and waits for it, on the dialog thread: `mode` and the field's current path.
pub type Backend = fn(Mode, &Path) -> Answer;

/// The dialogs of one view: at most one is open at a time, for the field named `key`.
#[derive(Debug)]
pub struct Browse {
    backend: Backend,
    pending: Option<(String, Receiver<Answer>)>,
    /// A dialog's answer, kept until its field is drawn again.
    answered: Option<(String, PathBuf)>,
    /// Why there was no dialog for the field named first, shown under it.
    failed: Option<(String, String)>,
}

impl Default for Browse {
    fn default() -> Self {
        Browse::with_backend(desktop_dialog)
    }
}

impl Browse {
    /// Dialogs shown by `backend` instead of the desktop's (tests use this).
    pub fn with_backend(backend: Backend) -> Browse {
        Browse {
            backend,
            pending: None,
            answered: None,
            failed: None,
        }
    }

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

    /// Under the field `key`: why its dialog could not be shown, if it could not.
    pub fn problem_ui(&self, ui: &mut egui::Ui, key: &str) {
        if let Some((k, reason)) = &self.failed
            && k == key
        {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("No file dialog on this desktop ({reason}) — type the path instead"),
            );
        }
    }

    fn poll(&mut self) {
        let Some((key, rx)) = &self.pending else {
            return;
        };
        let answer = match rx.try_recv() {
            Ok(answer) => answer,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => {
                Answer::Unavailable("the dialog thread stopped".into())
            }
        };
        match answer {
            Answer::Chosen(path) => self.answered = Some((key.clone(), path)),
            Answer::Cancelled => {}
            Answer::Unavailable(reason) => self.failed = Some((key.clone(), reason)),
        }
        self.pending = None;
    }

    fn open(&mut self, ctx: &egui::Context, key: &str, mode: Mode, current: &str) {
        self.failed = None;
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let start = PathBuf::from(current);
        let backend = self.backend;
        let spawned = std::thread::Builder::new()
            .name("file-dialog".into())
            .spawn(move || {
                let _ = tx.send(backend(mode, &start));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.pending = Some((key.to_string(), rx)),
            Err(e) => self.failed = Some((key.to_string(), format!("cannot start a thread: {e}"))),
        }
    }
}

/// The desktop's file chooser through rfd. rfd answers "nothing chosen" both when the user
/// cancels and when there is no dialog at all, so whether a dialog can be shown is checked
/// first: rfd uses the XDG desktop portal over the D-Bus session bus, else `zenity`.
fn desktop_dialog(mode: Mode, start: &Path) -> Answer {
    let env = |name: &str| std::env::var_os(name);
    if let Some(reason) = missing_dialog(&env, &|p: &Path| p.exists()) {
        return Answer::Unavailable(reason);
    }
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
    chosen.map_or(Answer::Cancelled, Answer::Chosen)
}

/// Why neither the portal's file chooser nor `zenity` can be reached, or `None` when one can.
/// The portal is reachable when there is a session bus, the portal service is installed
/// (D-Bus starts it on demand) and one of its backends implements the file chooser.
fn missing_dialog(
    env: &dyn Fn(&str) -> Option<OsString>,
    exists: &dyn Fn(&Path) -> bool,
) -> Option<String> {
    let paths = |var: &str| env(var).map(|v| std::env::split_paths(&v).collect::<Vec<_>>());
    if paths("PATH")
        .unwrap_or_default()
        .iter()
        .any(|dir| exists(&dir.join("zenity")))
    {
        return None;
    }
    let bus = env("DBUS_SESSION_BUS_ADDRESS").is_some()
        || env("XDG_RUNTIME_DIR").is_some_and(|dir| exists(&Path::new(&dir).join("bus")));
    if !bus {
        return Some("no D-Bus session bus, no zenity".into());
    }
    let data_dirs = paths("XDG_DATA_DIRS")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| vec!["/usr/local/share".into(), "/usr/share".into()]);
    let installed = |file: &str| data_dirs.iter().any(|d| exists(&d.join(file)));
    if !installed("dbus-1/services/org.freedesktop.portal.Desktop.service") {
        return Some("no desktop portal installed, no zenity".into());
    }
    let chooser = data_dirs.iter().any(|d| {
        std::fs::read_dir(d.join("xdg-desktop-portal/portals"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .any(|text| text.contains("org.freedesktop.impl.portal.FileChooser"))
    });
    if !chooser {
        return Some("the desktop portal has no file chooser, no zenity".into());
    }
    None
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
        tx.send(path.map_or(Answer::Cancelled, |p| Answer::Chosen(p.into())))
            .unwrap();
        Browse {
            pending: Some((key.into(), rx)),
            ..Browse::default()
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
        assert!(browse.failed.is_none(), "a cancel is not a failure");
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

    /// An environment of `vars`, where the files in `files` exist.
    fn reason(vars: &[(&str, &str)], files: &[&str]) -> Option<String> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        let env = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
        missing_dialog(&env, &|p: &Path| files.iter().any(|f| f == p))
    }

    #[test]
    fn no_bus_and_no_zenity_means_no_dialog() {
        assert_eq!(
            reason(&[("PATH", "/usr/bin")], &[]).as_deref(),
            Some("no D-Bus session bus, no zenity")
        );
        assert_eq!(
            reason(&[("PATH", "/bin:/usr/bin")], &["/usr/bin/zenity"]),
            None
        );
        assert_eq!(
            reason(&[("XDG_RUNTIME_DIR", "/run/user/1")], &["/run/user/1/bus"]).as_deref(),
            Some("no desktop portal installed, no zenity")
        );
        assert_eq!(
            reason(
                &[
                    ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/b"),
                    ("XDG_DATA_DIRS", "/opt/d")
                ],
                &["/opt/d/dbus-1/services/org.freedesktop.portal.Desktop.service"]
            )
            .as_deref(),
            Some("the desktop portal has no file chooser, no zenity")
        );
    }
}
