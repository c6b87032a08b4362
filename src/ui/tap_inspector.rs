//! The selected tap event in full: the HTTP exchange, both identities and the TLS between
//! them, the policy decision with the authorizations tried in order, and each Avro message
//! with its schema reference, its problems and its value as a tree. The event carries the
//! value as Avro JSON; when the registry the Schemas view watches has the writer schema, the
//! inspector shows that schema and reads the value with it (logical types as values).

use std::sync::Arc;

use egui::{CollapsingHeader, Grid, RichText};

use super::value_tree::ValueTree;
use crate::sources::registry_watch::{Snapshot, VersionInfo};
use crate::tap::{Endpoint, Event, Inspection, MessageSide};

/// One event, decoded and its values parsed once when it is selected.
#[derive(Debug, Clone)]
pub struct EventDetail {
    pub seq: u64,
    pub event: Event,
    /// One per `event.avro`, `None` where the value did not decode.
    pub trees: Vec<Option<ValueTree>>,
    /// One per `event.avro`: its writer schema, where the registry has it.
    pub writers: Vec<Option<Arc<VersionInfo>>>,
    /// The registry snapshot the schemas were looked up in.
    registry: Option<Arc<Snapshot>>,
}

impl EventDetail {
    pub fn new(seq: u64, event: Event, registry: Option<&Arc<Snapshot>>) -> EventDetail {
        let writers: Vec<_> = event
            .avro
            .iter()
            .map(|a| registry.and_then(|r| writer_schema(r, a)))
            .collect();
        let trees = event
            .avro
            .iter()
            .zip(&writers)
            .map(|(a, writer)| {
                let tree = ValueTree::new(a.value_json.as_deref()?, &a.errors, &a.redacted);
                Some(match writer.as_ref().and_then(|w| w.schema.as_ref().ok()) {
                    Some(schema) => tree.with_schema(schema),
                    None => tree,
                })
            })
            .collect();
        EventDetail {
            seq,
            event,
            trees,
            writers,
            registry: registry.cloned(),
        }
    }

    /// Whether the detail was built from this registry snapshot (the same load).
    pub fn built_with(&self, registry: Option<&Arc<Snapshot>>) -> bool {
        match (&self.registry, registry) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// `registry_loading`: a registry is on its way, so a missing writer schema may come.
    pub fn ui(&self, ui: &mut egui::Ui, clock: impl Fn(i64) -> String, registry_loading: bool) {
        let e = &self.event;
        ui.label(format!(
            "#{} · {:?} · {} · proxy {} ({:?})",
            self.seq,
            e.kind,
            clock(e.time_us),
            e.proxy,
            e.direction
        ));
        section(ui, "Identities and TLS", |ui| identities(ui, e));
        if let Some(h) = &e.http {
            section(ui, "HTTP", |ui| {
                Grid::new("http").num_columns(2).show(ui, |ui| {
                    let mut row = |k: &str, v: String| {
                        ui.weak(k);
                        ui.label(v);
                        ui.end_row();
                    };
                    row("request", format!("{} {}{}", h.method, h.authority, h.path));
                    row("protocol", h.protocol.clone());
                    if let Some(ct) = &h.content_type {
                        row("content-type", ct.clone());
                    }
                    if let Some(s) = h.status {
                        row("status", s.to_string());
                    }
                    if let Some(g) = h.grpc_status {
                        row("grpc-status", g.to_string());
                    }
                    if let Some(l) = h.latency_us {
                        row("latency", format!("{:.1} ms", l as f64 / 1000.0));
                    }
                    row(
                        "bytes",
                        format!("{} sent, {} received", h.request_bytes, h.response_bytes),
                    );
                });
                if let Some(err) = &h.proxy_error {
                    ui.colored_label(ui.visuals().error_fg_color, format!("proxy error: {err}"));
                }
                ui.weak("Header values are not part of tap events.");
            });
        }
        if let Some(t) = &e.tcp {
            section(ui, "TCP", |ui| {
                ui.label(format!(
                    "{} bytes in, {} bytes out",
                    t.bytes_in, t.bytes_out
                ));
                if let Some(d) = t.duration_us {
                    ui.label(format!("open for {:.1} ms", d as f64 / 1000.0));
                }
                if let Some(err) = &t.error {
                    ui.colored_label(ui.visuals().error_fg_color, err);
                }
            });
        }
        if let Some(d) = &e.decision {
            section(ui, "Policy decision", |ui| {
                let verdict = RichText::new(format!("{}: {}", d.verdict, d.reason)).strong();
                ui.label(if d.verdict == "allow" {
                    verdict
                } else {
                    verdict.color(ui.visuals().error_fg_color)
                });
                ui.label(format!("server {}/{}", d.server_kind, d.server_name));
                if let (Some(k), Some(n)) = (&d.route_kind, &d.route_name) {
                    ui.label(format!("route {k}/{n}"));
                }
                if let (Some(k), Some(n)) = (&d.authz_kind, &d.authz_name) {
                    ui.label(format!("authorized by {k}/{n}"));
                }
                if d.tried.is_empty() {
                    ui.weak("The proxy reported no list of authorizations tried.");
                } else {
                    ui.weak("Authorizations tried, in order:");
                    for (i, t) in d.tried.iter().enumerate() {
                        let outcome = if t.matched {
                            "matched".to_string()
                        } else {
                            format!(
                                "no match: {}",
                                t.miss.as_deref().unwrap_or("no reason given")
                            )
                        };
                        ui.label(format!("{}. {}/{} — {outcome}", i + 1, t.kind, t.name));
                    }
                }
            });
        }
        let known = self.registry.is_some();
        for (i, ((a, tree), writer)) in e
            .avro
            .iter()
            .zip(&self.trees)
            .zip(&self.writers)
            .enumerate()
        {
            ui.separator();
            let title = format!(
                "Avro {} ({})",
                a.subject.as_deref().unwrap_or("unknown subject"),
                a.framing
            );
            CollapsingHeader::new(RichText::new(title).strong())
                .id_salt(("avro", self.seq, i))
                .default_open(true)
                .show(ui, |ui| {
                    let salt = format!("{}-{i}", self.seq);
                    inspection(ui, a, tree.as_ref(), &salt);
                    writer_ui(ui, a, writer.as_deref(), known, registry_loading, &salt);
                });
        }
    }
}

fn section(ui: &mut egui::Ui, title: &str, body: impl FnOnce(&mut egui::Ui)) {
    ui.separator();
    ui.strong(title);
    body(ui);
}

fn identities(ui: &mut egui::Ui, e: &Event) {
    for (side, ep) in [("source", &e.source), ("destination", &e.destination)] {
        ui.label(format!(
            "{side}: {}",
            ep.identity.as_deref().unwrap_or("(no identity proven)")
        ));
        ui.weak(match workload(ep) {
            Some(w) => format!("    {w} at {}", ep.addr),
            None => format!("    at {}", ep.addr),
        });
    }
    if e.tls.secured {
        ui.label("TLS: mTLS, both identities proven");
    } else {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "TLS: plaintext ({})",
                e.tls.reason.as_deref().unwrap_or("no reason given")
            ),
        );
    }
}

fn workload(ep: &Endpoint) -> Option<String> {
    match (&ep.namespace, &ep.workload) {
        (Some(ns), Some(w)) => Some(format!("{ns}/{w}")),
        (None, Some(w)) => Some(w.clone()),
        _ => None,
    }
}

fn inspection(ui: &mut egui::Ui, a: &Inspection, tree: Option<&ValueTree>, salt: &str) {
    let unknown = || "—".to_string();
    Grid::new(("schema", salt)).num_columns(2).show(ui, |ui| {
        let mut row = |k: &str, v: String| {
            ui.weak(k);
            ui.label(v);
            ui.end_row();
        };
        if let Some(side) = a.side {
            row(
                "message",
                match side {
                    MessageSide::Request => "request body".into(),
                    MessageSide::Response => "response body".into(),
                },
            );
        }
        row("subject", a.subject.clone().unwrap_or_else(unknown));
        row("version", a.version.map_or_else(unknown, |v| v.to_string()));
        row(
            "schema id",
            a.schema_id.map_or_else(unknown, |v| v.to_string()),
        );
        row(
            "fingerprint",
            a.fingerprint
                .map_or_else(unknown, |f| format!("{:016x}", f as u64)),
        );
        if let Some(c) = &a.contract {
            row(
                "contract",
                format!("{c} ({})", a.mode.as_deref().unwrap_or("no mode")),
            );
        }
        if let Some(d) = &a.drift {
            let reader = a
                .reader_version
                .map_or(String::new(), |v| format!(" against reader version {v}"));
            row("drift", format!("{d}{reader}"));
        }
        row(
            "checks",
            if a.valid { "valid" } else { "invalid" }.to_string(),
        );
    });
    if a.truncated {
        ui.weak("Only the first bytes of the body were inspected.");
    }
    for err in &a.errors {
        ui.colored_label(ui.visuals().error_fg_color, err);
    }
    if !a.redacted.is_empty() {
        ui.weak(format!("redacted: {}", a.redacted.join(", ")));
    }
    match tree {
        Some(tree) => tree.ui(ui, salt),
        None => {
            ui.weak("No decoded value.");
        }
    }
}

/// The writer schema of a message: by schema id, else by fingerprint, else by subject and
/// version.
fn writer_schema(registry: &Snapshot, a: &Inspection) -> Option<Arc<VersionInfo>> {
    let all = || registry.subjects.values().flatten();
    if let Some(id) = a.schema_id {
        return all().find(|v| v.id == id).cloned();
    }
    if let Some(fp) = a.fingerprint
        && let Some(v) = all().find(|v| v.fingerprint == Some(fp))
    {
        return Some(v.clone());
    }
    registry.version(a.subject.as_deref()?, a.version?).cloned()
}

/// The writer schema under the value, or why the value shows its encoded numbers.
fn writer_ui(
    ui: &mut egui::Ui,
    a: &Inspection,
    writer: Option<&VersionInfo>,
    known: bool,
    loading: bool,
    salt: &str,
) {
    match writer {
        Some(w) => {
            if let Err(e) = &w.schema {
                ui.weak(format!("The writer schema does not parse ({e}), so the value shows its encoded numbers."));
            }
            CollapsingHeader::new(format!("writer schema: version {}, id {}", w.version, w.id))
                .id_salt(("writer", salt))
                .show(ui, |ui| {
                    ui.add(egui::Label::new(RichText::new(&w.text).monospace()).selectable(true));
                });
        }
        None if a.value_json.is_none() => {}
        None if loading => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.weak("loading the registry for the writer schema…");
            });
        }
        None if known => {
            let what = match a.schema_id {
                Some(id) => format!("schema id {id}"),
                None => "The writer schema".into(),
            };
            ui.weak(format!(
                "{what} is not in the registry the Schemas tab shows, so dates, timestamps \
                 and decimals show as their encoded numbers and bytes."
            ));
        }
        None => {
            ui.weak(
                "No registry loaded: open one in the Schemas tab to see the writer schema, \
                 and dates, timestamps and decimals as values.",
            );
        }
    }
}
