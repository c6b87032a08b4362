//! The Sources view: what feeds the model (each source's state, rate and loss, with stop,
//! reconnect and remove), forms to add a sandbox, a remote tap, metrics or a recording,
//! a replay's timeline, and recording the live stream. It only queues [`Command`]s; the
//! app hands them to the source hub, which does the work off the UI thread.

use std::path::PathBuf;
use std::time::Duration;

use egui::{Color32, RichText};

use super::file_dialog::{Browse, Mode};
use crate::sources::check;
use crate::sources::hub::{
    Command, MetricsFeed, RecorderStatus, ReplayStatus, SourceId, Spec, State, Status, TapAuth,
};
use crate::sources::replay::{self, Speed};

/// A start slower than this shows a spinner.
const SPINNER_AFTER: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sandbox,
    Tap,
    Metrics,
    Recording,
}

#[derive(Debug, Default)]
struct Forms {
    manifest: String,
    tap_addrs: String,
    tap_token: bool,
    ca: String,
    cert: String,
    key: String,
    token: String,
    prometheus: bool,
    targets: String,
    prometheus_url: String,
    every_s: f64,
    recording: String,
    record_to: String,
}

#[derive(Debug)]
pub struct SourcesView {
    /// Each source as the hub last reported it (set by the app every frame).
    pub statuses: Vec<Status>,
    pub recorder: Option<RecorderStatus>,
    pub kind: Kind,
    /// Start the new source in a fresh model, removing the others.
    pub replace: bool,
    forms: Forms,
    /// Which form was submitted at least once: its fields then say what is wrong.
    tried: Option<Kind>,
    tried_record: bool,
    commands: Vec<Command>,
    browse: Browse,
}

impl Default for SourcesView {
    fn default() -> SourcesView {
        SourcesView {
            statuses: Vec::new(),
            recorder: None,
            kind: Kind::Tap,
            replace: false,
            forms: Forms {
                every_s: 5.0,
                ..Forms::default()
            },
            tried: None,
            tried_record: false,
            commands: Vec::new(),
            browse: Browse::default(),
        }
    }
}

fn state_color(ui: &egui::Ui, state: State) -> Color32 {
    match state {
        State::Connected => Color32::from_rgb(60, 170, 90),
        State::Starting | State::Reconnecting => ui.visuals().warn_fg_color,
        State::Failed => ui.visuals().error_fg_color,
        State::Stopped => ui.visuals().weak_text_color(),
    }
}

/// A problem under a field, in the error colour.
fn problem(ui: &mut egui::Ui, text: Option<String>) -> bool {
    match text {
        Some(t) => {
            ui.colored_label(ui.visuals().error_fg_color, t);
            true
        }
        None => false,
    }
}

/// A labelled one-line text field.
fn field(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) {
    ui.horizontal(|ui| text(ui, label, value, hint));
}

/// Labels take a fixed width, so a form's fields and their "Browse…" buttons line up.
const LABEL_WIDTH: f32 = 130.0;

fn text(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) {
    let l = ui
        .scope(|ui| {
            ui.set_min_width(LABEL_WIDTH);
            ui.label(label)
        })
        .inner;
    ui.add(
        egui::TextEdit::singleline(value)
            .hint_text(hint)
            .desired_width(420.0),
    )
    .labelled_by(l.id);
}

/// A spinner beside a source that has been starting for longer than `SPINNER_AFTER` (the
/// demo sandbox, a large recording being indexed); until then, a frame to check again.
fn starting_spinner(ui: &mut egui::Ui, s: &Status) {
    if !matches!(s.state, State::Starting) {
        return;
    }
    if s.since.elapsed() >= SPINNER_AFTER {
        ui.spinner();
    } else {
        ui.ctx().request_repaint_after(SPINNER_AFTER);
    }
}

/// A labelled path field with a "Browse…" button beside it.
fn path_field(
    ui: &mut egui::Ui,
    browse: &mut Browse,
    mode: Mode,
    label: &str,
    value: &mut String,
    hint: &str,
) {
    ui.horizontal(|ui| {
        text(ui, label, value, hint);
        browse.button(ui, label, mode, value);
    });
    browse.problem_ui(ui, label);
}

impl SourcesView {
    /// The commands queued since the last call, in order.
    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.commands)
    }

    /// Queues a command as if a button had been clicked.
    pub fn push(&mut self, command: Command) {
        self.commands.push(command);
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.heading("Sources");
            if self.statuses.is_empty() {
                ui.label("Nothing feeds the model. Add a source below.");
            }
            for i in 0..self.statuses.len() {
                let status = self.statuses[i].clone();
                self.source_row(ui, &status);
            }
            ui.separator();
            self.record_ui(ui);
            ui.separator();
            self.add_ui(ui);
        });
    }

    fn source_row(&mut self, ui: &mut egui::Ui, s: &Status) {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.strong(s.spec.label());
                starting_spinner(ui, s);
                ui.label(RichText::new(s.state.word()).color(state_color(ui, s.state)));
                ui.label(format!("{:.0}/s", s.rate));
                ui.label(format!("{} events, {} lost", s.events, s.lost));
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let name = s.spec.label();
                    if ui
                        .button("Remove")
                        .on_hover_text(format!("Remove {name}"))
                        .clicked()
                    {
                        self.commands.push(Command::Remove(s.id));
                    }
                    if s.running() {
                        if ui
                            .button("Stop")
                            .on_hover_text(format!("Stop {name}"))
                            .clicked()
                        {
                            self.commands.push(Command::Stop(s.id));
                        }
                    } else if ui
                        .button("Reconnect")
                        .on_hover_text(format!("Start {name} again"))
                        .clicked()
                    {
                        self.commands.push(Command::Restart(s.id));
                    }
                });
            });
            if let Some(e) = &s.error {
                ui.colored_label(state_color(ui, s.state), e);
            }
            for d in &s.detail {
                ui.small(d);
            }
            if let (Some(r), true) = (&s.replay, s.running()) {
                self.timeline(ui, s.id, r);
            }
        });
    }

    /// Play/pause, speed and a scrubber over the recording's time range.
    fn timeline(&mut self, ui: &mut egui::Ui, id: SourceId, r: &ReplayStatus) {
        let Some((start, end)) = r.span else {
            ui.label("The recording holds no events.");
            return;
        };
        ui.horizontal(|ui| {
            let (text, command) = if r.paused {
                ("Play", replay::Command::Resume)
            } else {
                ("Pause", replay::Command::Pause)
            };
            if ui.button(text).clicked() {
                self.commands.push(Command::Replay(id, command));
            }
            for (label, speed) in [
                ("1×", Speed::Times(1.0)),
                ("10×", Speed::Times(10.0)),
                ("max", Speed::Max),
            ] {
                if ui.selectable_label(r.speed == speed, label).clicked() && r.speed != speed {
                    self.commands
                        .push(Command::Replay(id, replay::Command::Speed(speed)));
                }
            }
            let length = (end - start).max(1) as f64 / 1e6;
            let mut at = (r.position.unwrap_or(start) - start) as f64 / 1e6;
            let l = ui.label("Position");
            let slider = ui
                .add(
                    egui::Slider::new(&mut at, 0.0..=length)
                        .suffix(" s")
                        .max_decimals(1),
                )
                .labelled_by(l.id);
            if slider.changed() && !slider.dragged() || slider.drag_stopped() {
                let t = start + (at * 1e6) as i64;
                self.commands
                    .push(Command::Replay(id, replay::Command::Seek(t)));
            }
            ui.label(format!("of {length:.1} s"));
        });
    }

    fn record_ui(&mut self, ui: &mut egui::Ui) {
        ui.strong("Record the live stream");
        let active = self.recorder.as_ref().is_some_and(|r| r.active);
        if let Some(r) = &self.recorder {
            let verb = if r.active { "recording to" } else { "recorded" };
            ui.label(format!(
                "{verb} {}: {} events, {} dropped",
                r.path.display(),
                r.events,
                r.dropped
            ));
            if let Some(e) = &r.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        }
        if active {
            if ui.button("Stop recording").clicked() {
                self.commands.push(Command::StopRecording);
            }
            return;
        }
        path_field(
            ui,
            &mut self.browse,
            Mode::Save,
            "Record to",
            &mut self.forms.record_to,
            "/tmp/mesh.tap",
        );
        let issue = self
            .tried_record
            .then(|| check::new_file(&self.forms.record_to))
            .flatten();
        problem(ui, issue);
        if ui.button("Start recording").clicked() {
            self.tried_record = true;
            if check::new_file(&self.forms.record_to).is_none() {
                self.tried_record = false;
                self.commands
                    .push(Command::Record(PathBuf::from(self.forms.record_to.trim())));
            }
        }
    }

    fn add_ui(&mut self, ui: &mut egui::Ui) {
        ui.strong("Add a source");
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.kind, Kind::Tap, "Remote tap");
            ui.selectable_value(&mut self.kind, Kind::Sandbox, "Sandbox");
            ui.selectable_value(&mut self.kind, Kind::Metrics, "Metrics");
            ui.selectable_value(&mut self.kind, Kind::Recording, "Recording");
        });
        ui.checkbox(
            &mut self.replace,
            "Replace the current sources (start a new model)",
        );
        let show = self.tried == Some(self.kind);
        let spec = match self.kind {
            Kind::Sandbox => self.sandbox_form(ui, show),
            Kind::Tap => self.tap_form(ui, show),
            Kind::Metrics => self.metrics_form(ui, show),
            Kind::Recording => self.recording_form(ui, show),
        };
        let verb = match self.kind {
            Kind::Sandbox => "Start sandbox",
            Kind::Tap => "Connect",
            Kind::Metrics => "Follow metrics",
            Kind::Recording => "Open recording",
        };
        if ui.button(verb).clicked() {
            match spec {
                Some(spec) => {
                    self.tried = None;
                    self.commands.push(Command::Start {
                        spec,
                        replace: self.replace,
                    });
                }
                None => self.tried = Some(self.kind),
            }
        }
    }

    /// Each form draws its fields, with their problems under them once `show`, and
    /// returns the spec when every field is fine.
    fn sandbox_form(&mut self, ui: &mut egui::Ui, show: bool) -> Option<Spec> {
        path_field(
            ui,
            &mut self.browse,
            Mode::Open,
            "Manifest",
            &mut self.forms.manifest,
            "empty for the bundled demo",
        );
        let manifest = self.forms.manifest.trim();
        if manifest.is_empty() {
            return Some(Spec::Sandbox { manifest: None });
        }
        let issue = check::file(manifest);
        let bad = problem(ui, issue.filter(|_| show));
        (!bad && check::file(manifest).is_none()).then(|| Spec::Sandbox {
            manifest: Some(PathBuf::from(manifest)),
        })
    }

    fn tap_form(&mut self, ui: &mut egui::Ui, show: bool) -> Option<Spec> {
        let f = &mut self.forms;
        let browse = &mut self.browse;
        field(
            ui,
            "Admin addresses",
            &mut f.tap_addrs,
            "10.0.0.7:4191, ...",
        );
        let addrs = check::addrs(&f.tap_addrs);
        if show && let Err(e) = &addrs {
            problem(ui, Some(e.clone()));
        }
        ui.horizontal(|ui| {
            ui.radio_value(&mut f.tap_token, false, "mTLS certificate");
            ui.radio_value(&mut f.tap_token, true, "Bearer token");
        });
        let auth = if f.tap_token {
            path_field(
                ui,
                browse,
                Mode::Open,
                "Token file",
                &mut f.token,
                "a file holding a JWT",
            );
            let issue = check::file(&f.token);
            problem(ui, issue.clone().filter(|_| show));
            issue.is_none().then(|| TapAuth::Token {
                file: PathBuf::from(f.token.trim()),
            })
        } else {
            let mut ok = true;
            for (label, value, hint) in [
                ("Trust anchors (CA)", &mut f.ca, "ca.pem"),
                ("Client certificate", &mut f.cert, "cert.pem"),
                ("Client key", &mut f.key, "key.pem"),
            ] {
                path_field(ui, browse, Mode::Open, label, value, hint);
                let issue = check::file(value);
                ok &= issue.is_none();
                problem(ui, issue.filter(|_| show));
            }
            ok.then(|| TapAuth::Mtls {
                ca: PathBuf::from(f.ca.trim()),
                cert: PathBuf::from(f.cert.trim()),
                key: PathBuf::from(f.key.trim()),
            })
        };
        Some(Spec::Tap {
            addrs: addrs.ok()?,
            auth: auth?,
        })
    }

    fn metrics_form(&mut self, ui: &mut egui::Ui, show: bool) -> Option<Spec> {
        let f = &mut self.forms;
        ui.horizontal(|ui| {
            ui.radio_value(&mut f.prometheus, false, "Proxies' /metrics");
            ui.radio_value(&mut f.prometheus, true, "Prometheus server");
        });
        let feed = if f.prometheus {
            field(
                ui,
                "Prometheus URL",
                &mut f.prometheus_url,
                "http://prometheus:9090",
            );
            let issue = check::url(&f.prometheus_url);
            problem(ui, issue.clone().filter(|_| show));
            issue
                .is_none()
                .then(|| MetricsFeed::Prometheus(f.prometheus_url.trim().into()))
        } else {
            field(
                ui,
                "Targets",
                &mut f.targets,
                "shop/web=http://10.0.0.7:4191/metrics or a saved file",
            );
            let targets = check::metrics_targets(&f.targets);
            if show && let Err(e) = &targets {
                problem(ui, Some(e.clone()));
            }
            targets.ok().map(MetricsFeed::Targets)
        };
        ui.horizontal(|ui| {
            let l = ui.label("Every");
            ui.add(
                egui::DragValue::new(&mut f.every_s)
                    .range(1.0..=600.0)
                    .suffix(" s"),
            )
            .labelled_by(l.id);
        });
        Some(Spec::Metrics {
            feed: feed?,
            every_ms: (f.every_s * 1000.0) as u64,
        })
    }

    fn recording_form(&mut self, ui: &mut egui::Ui, show: bool) -> Option<Spec> {
        path_field(
            ui,
            &mut self.browse,
            Mode::Open,
            "Recording file",
            &mut self.forms.recording,
            "saved with `meshlens record` or below",
        );
        let issue = check::file(&self.forms.recording);
        problem(ui, issue.clone().filter(|_| show));
        issue.is_none().then(|| Spec::Recording {
            path: PathBuf::from(self.forms.recording.trim()),
        })
    }

    /// One compact entry per source for the status bar; details on hover.
    pub fn status_bar(&self, ui: &mut egui::Ui) {
        for s in &self.statuses {
            starting_spinner(ui, s);
            let text = format!(
                "{}: {} · {:.0}/s{}",
                s.spec.label(),
                s.state.word(),
                s.rate,
                if s.lost > 0 {
                    format!(" · {} lost", s.lost)
                } else {
                    String::new()
                }
            );
            let mut hover = format!(
                "{}\nstate: {}\n{} events, {} lost",
                s.spec.label(),
                s.state.word(),
                s.events,
                s.lost
            );
            for line in s.error.iter().chain(&s.detail) {
                hover.push('\n');
                hover.push_str(line);
            }
            ui.label(RichText::new(text).color(state_color(ui, s.state)))
                .on_hover_text(hover);
            ui.separator();
        }
        if let Some(r) = self.recorder.as_ref().filter(|r| r.active) {
            ui.label(format!("● recording {} events", r.events))
                .on_hover_text(r.path.display().to_string());
            ui.separator();
        }
    }
}
