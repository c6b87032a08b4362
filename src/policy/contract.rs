//! meshlens's own kind, `SchemaContract` (`policy.meshlens.io/v1alpha1`): binds Avro subjects
//! to a Server or HTTPRoute, says which identities may produce each subject, which reader
//! schema consumers use and at what compatibility level, whether a non-conforming message is
//! rejected (`enforce`, 422) or let through and flagged (`audit`), and which fields tap redacts.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::avro::levels::Level;
use crate::avro::{Kind, NodeId, Schema, rabin_fingerprint};

use super::authz::{ClientTls, Meta};
use super::ids::{IdentityDomain, IdentityMatch};
use super::resources::{GATEWAY_GROUP, LINKERD_GROUP, ObjectRef, ServiceAccountRef};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaContractSpec {
    pub target_ref: ObjectRef,
    /// `enforce` (default) or `audit`.
    #[serde(default)]
    pub mode: Option<String>,
    pub subjects: Vec<SubjectSpec>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectSpec {
    pub subject: String,
    #[serde(default)]
    pub producers: ProducersSpec,
    /// The reader schema as inline JSON text.
    #[serde(default)]
    pub reader_schema: Option<String>,
    /// The reader schema as a file, relative to the contract's own file.
    #[serde(default)]
    pub reader_schema_file: Option<String>,
    /// A Confluent level name; default BACKWARD.
    #[serde(default)]
    pub compatibility: Option<String>,
    #[serde(default)]
    pub redact: RedactSpec,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProducersSpec {
    #[serde(default)]
    pub identities: Vec<String>,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountRef>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedactSpec {
    /// Dotted field paths in the reader schema (`customer.email`); arrays, maps and unions
    /// are stepped through.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Also redact every field whose schema carries `"sensitive": true`.
    #[serde(default = "yes")]
    pub sensitive: bool,
}

impl Default for RedactSpec {
    fn default() -> RedactSpec {
        RedactSpec {
            paths: Vec::new(),
            sensitive: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Audit,
}

impl Mode {
    /// The HTTP status a non-conforming message gets: 422 when enforced, none when audited.
    pub fn rejection_status(self) -> Option<u16> {
        match self {
            Mode::Enforce => Some(422),
            Mode::Audit => None,
        }
    }
}

/// A checked contract, ready for the proxy and tap.
#[derive(Debug, Clone)]
pub struct Contract {
    pub meta: Meta,
    pub namespace: String,
    /// The Server or HTTPRoute the contract is bound to.
    pub target: Meta,
    pub mode: Mode,
    pub subjects: Vec<SubjectContract>,
}

#[derive(Debug, Clone)]
pub struct SubjectContract {
    pub subject: String,
    pub producers: Vec<IdentityMatch>,
    pub reader: Arc<Schema>,
    /// CRC-64-AVRO of the reader, computed once: drift results are cached by it.
    pub reader_fingerprint: i64,
    pub level: Level,
    /// Field paths tap must redact: the listed ones, then the `sensitive` ones.
    pub redact: Vec<String>,
}

impl SubjectContract {
    /// Whether this client may publish messages of the subject (mTLS identity required).
    pub fn may_produce(&self, tls: &ClientTls) -> bool {
        match tls {
            ClientTls::Mtls(Some(id)) => self.producers.iter().any(|p| p.matches(id)),
            _ => false,
        }
    }
}

impl Contract {
    pub fn subject(&self, name: &str) -> Option<&SubjectContract> {
        self.subjects.iter().find(|s| s.subject == name)
    }
}

/// Checks a contract and compiles it; `base` is the directory its file is in. Problems come
/// back as `(field, message)` pairs, all of them.
pub fn compile(
    name: &str,
    namespace: &str,
    spec: &SchemaContractSpec,
    base: &Path,
    domain: &IdentityDomain,
) -> Result<Contract, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let t = &spec.target_ref;
    let target_ok = (t.is("Server") && t.group() == LINKERD_GROUP)
        || (t.is("HTTPRoute") && (t.group() == LINKERD_GROUP || t.group() == GATEWAY_GROUP));
    if !target_ok {
        problems.push((
            "spec.targetRef".into(),
            format!(
                "must be a policy.linkerd.io Server or an HTTPRoute, not {}/{}",
                t.group(),
                t.kind
            ),
        ));
    }
    if t.name().is_empty() {
        problems.push(("spec.targetRef.name".into(), "missing".into()));
    }
    if t.namespace.as_deref().is_some_and(|ns| ns != namespace) {
        problems.push((
            "spec.targetRef.namespace".into(),
            "a contract may only target resources in its own namespace".into(),
        ));
    }
    let mode = match spec.mode.as_deref() {
        None | Some("enforce") => Mode::Enforce,
        Some("audit") => Mode::Audit,
        Some(other) => {
            problems.push((
                "spec.mode".into(),
                format!("`{other}` is not a mode: use enforce or audit"),
            ));
            Mode::Enforce
        }
    };
    if spec.subjects.is_empty() {
        problems.push((
            "spec.subjects".into(),
            "at least one subject is needed".into(),
        ));
    }
    let mut subjects = Vec::new();
    for (i, s) in spec.subjects.iter().enumerate() {
        let at = |f: &str| format!("spec.subjects[{i}].{f}");
        if s.subject.is_empty() {
            problems.push((at("subject"), "missing".into()));
        }
        if spec.subjects[..i].iter().any(|o| o.subject == s.subject) {
            problems.push((at("subject"), format!("`{}` is listed twice", s.subject)));
        }
        let mut producers = Vec::new();
        for (j, id) in s.producers.identities.iter().enumerate() {
            match IdentityMatch::parse(id) {
                Ok(m) => producers.push(m),
                Err(e) => problems.push((at(&format!("producers.identities[{j}]")), e)),
            }
        }
        for sa in &s.producers.service_accounts {
            let ns = sa.namespace.as_deref().unwrap_or(namespace);
            producers.push(IdentityMatch::Exact(domain.service_account(ns, &sa.name)));
        }
        if producers.is_empty() && s.producers.identities.is_empty() {
            problems.push((
                at("producers"),
                "name at least one identity or serviceAccount allowed to produce".into(),
            ));
        }
        let level = match s.compatibility.as_deref() {
            None => Level::default(),
            Some(text) => text.parse().unwrap_or_else(|e: String| {
                problems.push((at("compatibility"), e));
                Level::default()
            }),
        };
        let reader = match (&s.reader_schema, &s.reader_schema_file) {
            (Some(text), None) => {
                Schema::parse(text).map_err(|e| (at("readerSchema"), e.to_string()))
            }
            (None, Some(file)) => {
                let path = base.join(file);
                std::fs::read_to_string(&path)
                    .map_err(|e| {
                        (
                            at("readerSchemaFile"),
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })
                    .and_then(|text| {
                        Schema::parse(&text).map_err(|e| {
                            (at("readerSchemaFile"), format!("{}: {e}", path.display()))
                        })
                    })
            }
            _ => Err((
                at("readerSchema"),
                "give exactly one of readerSchema (inline JSON) and readerSchemaFile".into(),
            )),
        };
        let reader = match reader {
            Ok(r) => Arc::new(r),
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let fields = field_paths(&reader);
        let mut redact = Vec::new();
        for (j, path) in s.redact.paths.iter().enumerate() {
            if fields.iter().any(|(p, _)| p == path) {
                redact.push(path.clone());
            } else {
                problems.push((
                    at(&format!("redact.paths[{j}]")),
                    format!("`{path}` is not a field of the reader schema"),
                ));
            }
        }
        if s.redact.sensitive {
            for (p, sensitive) in &fields {
                if *sensitive && !redact.contains(p) {
                    redact.push(p.clone());
                }
            }
        }
        subjects.push(SubjectContract {
            subject: s.subject.clone(),
            producers,
            reader_fingerprint: rabin_fingerprint(&reader),
            reader,
            level,
            redact,
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Contract {
        meta: Meta::new("SchemaContract", name),
        namespace: namespace.into(),
        target: Meta::new(&t.kind, t.name()),
        mode,
        subjects,
    })
}

/// Recursive types are followed this deep at most.
const MAX_DEPTH: usize = 32;

/// Every field path of a schema with whether it is marked `"sensitive": true` (on the field
/// or on its type).
pub fn field_paths(schema: &Schema) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    walk(schema, schema.root(), "", 0, &mut out);
    out
}

fn walk(schema: &Schema, id: NodeId, prefix: &str, depth: usize, out: &mut Vec<(String, bool)>) {
    if depth > MAX_DEPTH {
        return;
    }
    let marked =
        |props: &serde_json::Map<String, Json>| props.get("sensitive") == Some(&Json::Bool(true));
    match schema.kind(id) {
        Kind::Record(r) => {
            for f in &r.fields {
                let path = if prefix.is_empty() {
                    f.name.clone()
                } else {
                    format!("{prefix}.{}", f.name)
                };
                let branches = match schema.kind(f.schema) {
                    Kind::Union(b) => b.as_slice(),
                    _ => std::slice::from_ref(&f.schema),
                };
                let sensitive = marked(&f.props)
                    || marked(&schema.node(f.schema).props)
                    || branches.iter().any(|b| marked(&schema.node(*b).props));
                if !out.iter().any(|(p, _)| *p == path) {
                    out.push((path.clone(), sensitive));
                }
                walk(schema, f.schema, &path, depth + 1, out);
            }
        }
        Kind::Array(inner) | Kind::Map(inner) => walk(schema, *inner, prefix, depth + 1, out),
        Kind::Union(branches) => {
            for b in branches {
                walk(schema, *b, prefix, depth + 1, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{"type":"record","name":"Order","fields":[
        {"name":"id","type":"string"},
        {"name":"customer","type":{"type":"record","name":"Customer","fields":[
            {"name":"email","type":"string","sensitive":true},
            {"name":"name","type":"string"}]}},
        {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
            {"name":"sku","type":"string"},
            {"name":"card","type":["null",{"type":"string","sensitive":true}]}]}}}]}"#;

    fn spec(yaml: &str) -> SchemaContractSpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn compiles_redaction_from_paths_and_sensitive_marks() {
        let s = spec(&format!(
            "targetRef: {{group: policy.linkerd.io, kind: Server, name: orders-http}}\n\
             mode: audit\nsubjects:\n- subject: orders-value\n  producers: {{serviceAccounts: [{{name: orders}}]}}\n  \
             compatibility: FULL_TRANSITIVE\n  readerSchema: '{}'\n  redact: {{paths: [customer.name]}}\n",
            ORDER.replace('\n', " ")
        ));
        let c = compile("c", "shop", &s, Path::new("."), &IdentityDomain::default()).unwrap();
        assert_eq!(c.mode, Mode::Audit);
        assert_eq!(c.mode.rejection_status(), None);
        let sub = c.subject("orders-value").unwrap();
        assert_eq!(sub.level, Level::FullTransitive);
        assert_eq!(
            sub.redact,
            ["customer.name", "customer.email", "lines.card"]
        );
        let orders = ClientTls::Mtls(Some(
            "orders.shop.serviceaccount.identity.linkerd.cluster.local".into(),
        ));
        assert!(sub.may_produce(&orders));
        assert!(!sub.may_produce(&ClientTls::None));
    }

    #[test]
    fn lists_every_problem_with_its_field() {
        let s = spec(
            "targetRef: {kind: Deployment, name: x}\nmode: block\nsubjects:\n\
             - subject: a\n  compatibility: SIDEWAYS\n  readerSchema: '{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}'\n  \
             redact: {paths: [nope]}\n",
        );
        let problems =
            compile("c", "shop", &s, Path::new("."), &IdentityDomain::default()).unwrap_err();
        let fields: Vec<_> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.targetRef",
                "spec.mode",
                "spec.subjects[0].producers",
                "spec.subjects[0].compatibility",
                "spec.subjects[0].redact.paths[0]"
            ]
        );
        assert_eq!(Mode::Enforce.rejection_status(), Some(422));
    }
}
