//! The Policies view: per workload and port, the Server, its routes and authorizations with
//! the allow/deny counts the model saw; the newest denials with their reasons; the lint
//! findings of the loaded files; and a what-if panel that runs the real evaluator.
//!
//! Files are read by the `sources::policy_files` worker; this view only sends it targets.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use egui::{Color32, RichText, Sense};

use super::file_dialog::{Browse, Mode};
use super::software_gl;
use crate::mesh::Mesh;
use crate::mesh::policy_hits::{Counts, HIT_BUCKETS};
use crate::policy::authz::{ClientTls, Meta};
use crate::policy::eval::{HttpRequest, Request, Verdict};
use crate::policy::index::{Index, ServerPolicy};
use crate::sources::policy_files::{Loaded, PolicyFiles, Target};

/// Allow/deny totals and the 5 s buckets of the last five minutes.
#[derive(Debug, Clone, Default)]
struct Tally {
    allowed: u64,
    denied: u64,
    buckets: Vec<Counts>,
}

impl Tally {
    fn add(&mut self, allowed: u64, denied: u64, buckets: impl Iterator<Item = Counts>) {
        self.allowed += allowed;
        self.denied += denied;
        if self.buckets.is_empty() {
            self.buckets = vec![Counts::default(); HIT_BUCKETS];
        }
        for (t, c) in self.buckets.iter_mut().zip(buckets) {
            t.allowed += c.allowed;
            t.denied += c.denied;
        }
    }
}

/// Hits summed by server, by server+route and by server+authorization (`kind/name` keys, as
/// decisions name them), rebuilt when the model's generation changes.
#[derive(Debug, Default)]
struct Tallies {
    generation: u64,
    by_key: HashMap<String, Tally>,
}

impl Tallies {
    fn refresh(&mut self, mesh: &Mesh) {
        if self.generation == mesh.generation() && !self.by_key.is_empty() {
            return;
        }
        self.generation = mesh.generation();
        self.by_key.clear();
        let Some(now) = mesh.now_us() else { return };
        for h in mesh.policy_hits().hits() {
            let buckets = || {
                h.over_time
                    .iter(now)
                    .map(|(_, c)| c.copied().unwrap_or_default())
            };
            let server = h.key.server.clone();
            let mut keys = vec![server.clone()];
            if let Some(r) = &h.key.route {
                keys.push(format!("{server}\0{r}"));
            }
            if let Some(a) = &h.key.authz {
                keys.push(format!("{server}\0{a}"));
            }
            for k in keys {
                self.by_key
                    .entry(k)
                    .or_default()
                    .add(h.allowed, h.denied, buckets());
            }
        }
    }

    fn get(&self, key: &str) -> Option<&Tally> {
        self.by_key.get(key)
    }
}

/// Who asks, in the what-if panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Identity,
    Unauthenticated,
}

/// The what-if panel's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatIf {
    pub client: ClientKind,
    pub identity: String,
    pub client_ip: String,
    /// `namespace/name`.
    pub workload: String,
    pub port: u16,
    pub method: String,
    pub path: String,
}

impl Default for WhatIf {
    fn default() -> Self {
        WhatIf {
            client: ClientKind::Identity,
            identity: String::new(),
            client_ip: "10.0.0.9".into(),
            workload: String::new(),
            port: 8080,
            method: "GET".into(),
            path: "/".into(),
        }
    }
}

/// A decision in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: String,
    pub server: String,
    pub route: String,
    pub authorization: String,
    pub reason: String,
    /// Each authorization tried, in order: `kind/name`, matched, why.
    pub tried: Vec<(String, bool, String)>,
}

impl WhatIf {
    /// Runs the policy evaluator on the inputs (microseconds: index lookups and list walks).
    pub fn evaluate(&self, index: &Index) -> Result<Outcome, String> {
        let (namespace, workload) = self
            .workload
            .split_once('/')
            .ok_or("pick a target workload")?;
        let client_ip: IpAddr = self
            .client_ip
            .trim()
            .parse()
            .map_err(|_| format!("client IP `{}` is not an IP address", self.client_ip))?;
        let tls = match self.client {
            ClientKind::Identity if self.identity.trim().is_empty() => {
                return Err("enter the client's identity, or choose unauthenticated".into());
            }
            ClientKind::Identity => ClientTls::Mtls(Some(self.identity.trim().to_string())),
            ClientKind::Unauthenticated => ClientTls::None,
        };
        let req = Request {
            namespace: namespace.to_string(),
            workload: workload.to_string(),
            port: self.port,
            client_ip,
            tls,
            http: Some(HttpRequest {
                method: self.method.trim().to_string(),
                path: self.path.trim().to_string(),
                host: None,
                headers: Vec::new(),
                grpc: false,
            }),
        };
        let d = index.evaluate(&req).map_err(|e| e.to_string())?;
        let meta = |m: Option<&Meta>| m.map_or_else(|| "-".to_string(), Meta::to_string);
        Ok(Outcome {
            verdict: d.verdict.as_str().to_string(),
            server: d.server.to_string(),
            route: meta(d.route),
            authorization: meta(d.authorization),
            reason: d.reason(),
            tried: d
                .tried
                .iter()
                .map(|t| {
                    (
                        t.authz.meta.to_string(),
                        t.result.is_ok(),
                        t.authz.explain(t.result, &req.client_ip, &req.tls),
                    )
                })
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct PoliciesView {
    browse: Browse,
    worker: Option<PolicyFiles>,
    /// The newest load the worker finished.
    pub loaded: Option<Loaded>,
    /// What was last asked for; the demo's directory is only proposed until then.
    pub target: Option<Target>,
    /// The path field: files or directories, separated by `;`.
    pub paths: String,
    /// The sandbox manifest field, for the workloads.
    pub manifest: String,
    pub what_if: WhatIf,
    /// The decision for `evaluated`, redone whenever the inputs or the files change.
    outcome: Option<Result<Outcome, String>>,
    evaluated: Option<WhatIf>,
    /// Lint findings shown with their whole message.
    expanded: BTreeSet<usize>,
    tallies: Tallies,
}

impl PoliciesView {
    /// Loads `target` (and reloads it when its files change).
    pub fn watch(&mut self, target: Target, ctx: &egui::Context) {
        self.paths = target
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(";");
        self.manifest = target
            .manifest
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let ctx = ctx.clone();
        let worker = self.worker.get_or_insert_with(|| {
            PolicyFiles::start(Arc::new(move || {
                ctx.request_repaint_after(Duration::from_millis(30));
            }))
        });
        worker.load(target.clone());
        self.target = Some(target);
    }

    /// Whether the worker is still loading what was last asked for.
    pub fn is_loading(&self) -> bool {
        self.target
            .as_ref()
            .is_some_and(|t| self.loaded.as_ref().is_none_or(|l| &l.target != t))
    }

    /// Takes a finished load, if any; true when one came in.
    pub fn poll(&mut self) -> bool {
        let Some(l) = self.worker.as_ref().and_then(PolicyFiles::try_recv) else {
            return false;
        };
        if let Some(index) = &l.index {
            // Something to evaluate from the start: the first workload, asked by the first
            // identity.
            let w = &mut self.what_if;
            if w.workload.is_empty() {
                w.workload = workload_names(index).into_iter().next().unwrap_or_default();
            }
            if w.identity.is_empty() {
                w.identity = identities(index).into_iter().next().unwrap_or_default();
            }
        }
        self.loaded = Some(l);
        self.expanded.clear();
        self.outcome = None;
        true
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, mesh: &Mesh) {
        self.poll();
        self.tallies.refresh(mesh);
        self.load_bar(ui);
        ui.separator();
        egui::Panel::right("what_if")
            .frame(software_gl::panel_frame(ui.style()))
            .resizable(true)
            .default_size(380.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("what_if_scroll")
                    .show(ui, |ui| self.what_if_ui(ui));
            });
        egui::Panel::bottom("denials")
            .frame(software_gl::panel_frame(ui.style()))
            .resizable(true)
            .default_size(220.0)
            .show(ui, |ui| denials_ui(ui, mesh));
        software_gl::central_panel(ui.style()).show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("policies_scroll")
                .show(ui, |ui| {
                    self.diagnostics_ui(ui);
                    self.workloads_ui(ui);
                });
        });
    }

    fn load_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let l = ui.label("Policy files:");
            ui.add(egui::TextEdit::singleline(&mut self.paths).desired_width(360.0))
                .labelled_by(l.id)
                .on_hover_text("Files or directories, separated by ;");
            self.browse
                .button(ui, "policy", Mode::Folder, &mut self.paths);
            let m = ui.label("Manifest:");
            ui.add(egui::TextEdit::singleline(&mut self.manifest).desired_width(240.0))
                .labelled_by(m.id);
            self.browse
                .button(ui, "manifest", Mode::Open, &mut self.manifest);
            if ui.button("Load").clicked() {
                let target = Target {
                    paths: self
                        .paths
                        .split(';')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(PathBuf::from)
                        .collect(),
                    manifest: Some(self.manifest.trim())
                        .filter(|m| !m.is_empty())
                        .map(PathBuf::from),
                };
                self.watch(target, &ui.ctx().clone());
            }
        });
        self.browse.problem_ui(ui, "policy");
        self.browse.problem_ui(ui, "manifest");
        let status = match (&self.loaded, &self.target) {
            (Some(l), _) => {
                let errors = l.diagnostics.iter().filter(|d| d.error).count();
                let warnings = l.diagnostics.len() - errors;
                Some(format!(
                    "{} resources, {errors} errors, {warnings} warnings (load {}; reloads when the files change)",
                    l.resources.len(),
                    l.load
                ))
            }
            (None, Some(_)) => None,
            (None, None) => {
                Some("no policy loaded: enter a directory or files and press Load".into())
            }
        };
        ui.horizontal(|ui| {
            if self.is_loading() {
                ui.spinner();
                ui.label("loading the policy files…");
            }
            if let Some(status) = status {
                ui.label(status);
            }
        });
    }

    fn diagnostics_ui(&mut self, ui: &mut egui::Ui) {
        let Some(l) = &self.loaded else { return };
        if l.diagnostics.is_empty() {
            return;
        }
        ui.heading("Lint");
        for (i, d) in l.diagnostics.iter().enumerate() {
            let color = if d.error {
                ui.visuals().error_fg_color
            } else {
                ui.visuals().warn_fg_color
            };
            let open = self.expanded.contains(&i);
            let first = d.message.lines().next().unwrap_or_default();
            let text = format!(
                "{} {}: {}",
                if d.error { "error" } else { "warning" },
                d.at,
                if open { d.message.as_str() } else { first }
            );
            let r = ui.add(
                egui::Label::new(RichText::new(text).color(color))
                    .wrap_mode(if open {
                        egui::TextWrapMode::Wrap
                    } else {
                        egui::TextWrapMode::Truncate
                    })
                    .sense(Sense::click()),
            );
            if r.on_hover_text("click to show the whole message").clicked() {
                if open {
                    self.expanded.remove(&i);
                } else {
                    self.expanded.insert(i);
                }
            }
        }
        ui.separator();
    }

    fn workloads_ui(&self, ui: &mut egui::Ui) {
        let Some(l) = &self.loaded else { return };
        let Some(index) = &l.index else {
            if let Some(why) = &l.no_index {
                ui.label(why);
            }
            ui.label(format!("{} resources read", l.resources.len()));
            for r in &l.resources {
                ui.label(format!("{} {}/{}  ({})", r.kind, r.namespace, r.name, r.at));
            }
            return;
        };
        ui.heading("Servers, routes and authorizations");
        for name in workload_names(index) {
            let Some((ns, w)) = name.split_once('/') else {
                continue;
            };
            let Some(wp) = index.workload(ns, w) else {
                continue;
            };
            egui::CollapsingHeader::new(&name)
                .default_open(true)
                .show(ui, |ui| {
                    ui.label(format!("default policy {}", wp.default_policy));
                    for p in &wp.workload.ports {
                        self.server_ui(ui, p.port, wp.server(p.port));
                    }
                });
        }
    }

    fn server_ui(&self, ui: &mut egui::Ui, port: u16, s: &ServerPolicy) {
        let server = s.meta.to_string();
        ui.horizontal(|ui| {
            ui.strong(format!("port {port}: {server}"));
            ui.label(format!("({})", s.protocol.as_str()));
            tally_ui(ui, self.tallies.get(&server));
        });
        ui.indent(("routes", port, &server), |ui| {
            for r in &s.routes {
                ui.horizontal(|ui| {
                    ui.label(format!("route {}", r.meta));
                    tally_ui(ui, self.tallies.get(&format!("{server}\0{}", r.meta)));
                });
                ui.indent(("route_authz", &r.meta.name), |ui| {
                    for a in &r.authzs {
                        self.authz_ui(ui, &server, &a.meta);
                    }
                });
            }
            if !s.authzs.is_empty() {
                ui.label("server authorizations:");
                ui.indent(("server_authz", &server), |ui| {
                    for a in &s.authzs {
                        self.authz_ui(ui, &server, &a.meta);
                    }
                });
            }
        });
    }

    fn authz_ui(&self, ui: &mut egui::Ui, server: &str, meta: &Meta) {
        ui.horizontal(|ui| {
            ui.label(format!("authorization {meta}"));
            tally_ui(ui, self.tallies.get(&format!("{server}\0{meta}")));
        });
    }

    fn what_if_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("What if");
        let Some(index) = self.loaded.as_ref().and_then(|l| l.index.as_ref()) else {
            ui.label("Load policy files and a manifest to ask the policy engine.");
            return;
        };
        let w = &mut self.what_if;
        ui.horizontal(|ui| {
            ui.label("Client:");
            ui.radio_value(&mut w.client, ClientKind::Identity, "mTLS identity");
            ui.radio_value(
                &mut w.client,
                ClientKind::Unauthenticated,
                "unauthenticated",
            );
        });
        if w.client == ClientKind::Identity {
            let l = ui.label("Identity:");
            ui.add(egui::TextEdit::singleline(&mut w.identity).desired_width(f32::INFINITY))
                .labelled_by(l.id);
            ui.horizontal_wrapped(|ui| {
                for id in identities(index) {
                    let short = id.split('.').take(2).collect::<Vec<_>>().join(".");
                    if ui
                        .small_button(&short)
                        .on_hover_text(format!("use {id}"))
                        .clicked()
                    {
                        w.identity = id;
                    }
                }
            });
        }
        let l = ui.label("Client IP:");
        ui.text_edit_singleline(&mut w.client_ip).labelled_by(l.id);
        let l = ui.label("Target workload:");
        egui::ComboBox::from_id_salt("what_if_workload")
            .selected_text(w.workload.clone())
            .show_ui(ui, |ui| {
                for name in workload_names(index) {
                    ui.selectable_value(&mut w.workload, name.clone(), name);
                }
            })
            .response
            .labelled_by(l.id);
        ui.horizontal(|ui| {
            let l = ui.label("Port:");
            ui.add(egui::DragValue::new(&mut w.port).range(1..=65535))
                .labelled_by(l.id);
            let l = ui.label("Method:");
            egui::ComboBox::from_id_salt("what_if_method")
                .selected_text(w.method.clone())
                .show_ui(ui, |ui| {
                    for m in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
                        ui.selectable_value(&mut w.method, m.to_string(), m);
                    }
                })
                .response
                .labelled_by(l.id);
        });
        let l = ui.label("Path:");
        ui.text_edit_singleline(&mut w.path).labelled_by(l.id);
        if self.outcome.is_none() || self.evaluated.as_ref() != Some(&self.what_if) {
            self.outcome = Some(self.what_if.evaluate(index));
            self.evaluated = Some(self.what_if.clone());
        }
        ui.separator();
        match &self.outcome {
            Some(Ok(o)) => outcome_ui(ui, o),
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().warn_fg_color, e);
            }
            None => {}
        }
    }
}

fn outcome_ui(ui: &mut egui::Ui, o: &Outcome) {
    let color = if o.verdict == Verdict::Allow.as_str() {
        Color32::from_rgb(60, 170, 90)
    } else {
        ui.visuals().error_fg_color
    };
    ui.label(
        RichText::new(format!("Decision: {}", o.verdict))
            .strong()
            .color(color),
    );
    egui::Grid::new("what_if_outcome")
        .num_columns(2)
        .show(ui, |ui| {
            for (k, v) in [
                ("server", &o.server),
                ("route", &o.route),
                ("authorization", &o.authorization),
            ] {
                ui.label(k);
                ui.label(v);
                ui.end_row();
            }
        });
    ui.label(format!("Why: {}", o.reason));
    if !o.tried.is_empty() {
        ui.label("Authorizations tried, in order:");
        for (i, (name, matched, why)) in o.tried.iter().enumerate() {
            let mark = if *matched { "match" } else { "no" };
            ui.label(format!("{}. {mark} {name}: {why}", i + 1));
        }
    }
}

/// Every indexed workload as `namespace/name`, sorted.
fn workload_names(index: &Index) -> Vec<String> {
    let mut names: Vec<String> = index
        .workloads()
        .map(|w| format!("{}/{}", w.workload.namespace, w.workload.name))
        .collect();
    names.sort();
    names
}

/// The mTLS identity of every indexed workload, sorted.
fn identities(index: &Index) -> Vec<String> {
    let mut ids: Vec<String> = index
        .workloads()
        .map(|w| {
            index
                .settings
                .domain
                .service_account(&w.workload.namespace, &w.workload.service_account)
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Allowed / denied totals and a bar sparkline of the last five minutes.
fn tally_ui(ui: &mut egui::Ui, tally: Option<&Tally>) {
    let Some(t) = tally else {
        ui.weak("no traffic seen");
        return;
    };
    ui.label(format!("{} allowed", t.allowed));
    let denied = RichText::new(format!("{} denied", t.denied));
    ui.label(if t.denied > 0 {
        denied.color(ui.visuals().error_fg_color)
    } else {
        denied
    });
    sparkline(ui, &t.buckets);
}

fn sparkline(ui: &mut egui::Ui, buckets: &[Counts]) {
    let size = egui::vec2(buckets.len() as f32 * 2.0, 16.0);
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    let max = buckets
        .iter()
        .map(|c| c.allowed + c.denied)
        .max()
        .unwrap_or(0)
        .max(1) as f32;
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, ui.visuals().faint_bg_color);
    let allow = Color32::from_rgb(60, 170, 90);
    let deny = ui.visuals().error_fg_color;
    for (i, c) in buckets.iter().enumerate() {
        let x = rect.left() + i as f32 * 2.0;
        let h_allow = c.allowed as f32 / max * rect.height();
        let h_deny = c.denied as f32 / max * rect.height();
        let bottom = rect.bottom();
        if h_allow > 0.0 {
            painter.rect_filled(
                egui::Rect::from_min_max(
                    egui::pos2(x, bottom - h_allow),
                    egui::pos2(x + 1.5, bottom),
                ),
                0.0,
                allow,
            );
        }
        if h_deny > 0.0 {
            painter.rect_filled(
                egui::Rect::from_min_max(
                    egui::pos2(x, bottom - h_allow - h_deny),
                    egui::pos2(x + 1.5, bottom - h_allow),
                ),
                0.0,
                deny,
            );
        }
    }
    response.on_hover_text("requests per 5 s over the last 5 minutes: green allowed, red denied");
}

fn denials_ui(ui: &mut egui::Ui, mesh: &Mesh) {
    let denials = mesh.policy_hits().denials();
    let n = denials.len();
    ui.heading(format!("Recent denials ({n})"));
    let now = mesh.now_us().unwrap_or(0);
    let row_h = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
    egui::ScrollArea::vertical()
        .id_salt("denials_scroll")
        .auto_shrink([false, false])
        .show_rows(ui, row_h, n, |ui, range| {
            for d in mesh
                .policy_hits()
                .denials()
                .rev()
                .skip(range.start)
                .take(range.len())
            {
                let ago = (now - d.time_us).max(0) as f64 / 1e6;
                let request = d.request.as_deref().unwrap_or("TCP connection");
                let on = [Some(&d.key.server), d.key.route.as_ref()]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ");
                let tried = d
                    .tried
                    .iter()
                    .map(|t| format!("{}/{}", t.kind, t.name))
                    .collect::<Vec<_>>()
                    .join(", ");
                ui.add(
                    egui::Label::new(format!(
                        "{ago:>5.1}s ago  {}  {request}  -> {on}: {} - {}",
                        d.client, d.verdict, d.reason
                    ))
                    .truncate(),
                )
                .on_hover_text(if tried.is_empty() {
                    "no authorization was tried".to_string()
                } else {
                    format!("tried: {tried}")
                });
            }
        });
}
