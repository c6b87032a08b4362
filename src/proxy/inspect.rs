//! What the proxy does with an HTTP body that may carry Avro: decide cheaply whether to look
//! at it (`wants_inspection`), find the schema contract bound to the request's route or server
//! (`Contracts`), and turn the body into a `tap::Inspection` (`Inspector`). Pure: bytes in,
//! an answer out; no sockets, no runtime.
//!
//! How an inspection is judged:
//! - Without a contract, a body is valid when it decodes with its writer schema.
//! - With one, it must also be of a subject the contract lists, come from an allowed producer
//!   (requests only: a response is produced by the served workload, which the contract is
//!   bound to), be written with a registered version of the subject, and be readable by the
//!   contract's reader schema. A registry that cannot be asked makes the body invalid: an
//!   enforced contract fails closed.
//! - A body the proxy only kept a prefix of (`truncated`) that ran out mid-value is not a
//!   violation: `valid` then reflects the checks that need no value (subject, producer,
//!   drift), `value_json` is `None` and `errors` starts with an "inspection incomplete" note.
//!   A prefix that is damaged before it ends is still a violation.
//! - The value is shown as the producer wrote it (writer schema), so the contract's redact
//!   paths are matched by field name against the writer's fields.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::avro::container::Container;
use crate::avro::drift::{Drift, DriftReport, Version, classify};
use crate::avro::framing::{CONTAINER_MAGIC, SINGLE_OBJECT_MAGIC, SchemaRef, SniffOptions, sniff};
use crate::avro::levels::Level;
use crate::avro::{
    AvroError, Kind, KnownSchema, NodeId, PayloadDecoder, Schema, SchemaSource, Value, to_avro_json,
};
use crate::policy::authz::{ClientTls, Meta};
use crate::policy::contract::{Contract, Mode, SubjectContract};
use crate::tap::{Inspection, MessageSide};

/// What a redacted value is replaced with.
const MASK: &str = "***";
/// How long a subject's version list is trusted before it is asked for again.
const VERSIONS_TTL: Duration = Duration::from_secs(30);
/// How long a failure to list a subject's versions is remembered, so a registry outage
/// costs one request per subject per interval rather than one per message.
const FAILED_TTL: Duration = Duration::from_secs(5);
/// A writer missing from a cached version list may be a version registered since; the list
/// is asked for again, but at most this often, so unregistered writers cannot hammer the
/// registry.
const REFRESH_UNKNOWN_AFTER: Duration = Duration::from_secs(1);
/// Drift reports kept per subject; writers embedded in container files are chosen by the
/// sender, so the cache is bounded.
const MAX_DRIFT_REPORTS: usize = 1024;

/// Whether a body is worth handing to the `Inspector`. Called for every request, so it only
/// looks at the content type and the first bytes.
pub fn wants_inspection(
    content_type: Option<&str>,
    first_bytes: &[u8],
    has_contract: bool,
) -> bool {
    if has_contract {
        return true;
    }
    let essence = content_type.map(|ct| ct.split(';').next().unwrap_or(ct).trim());
    if essence.is_some_and(is_avro_media_type) {
        return true;
    }
    if first_bytes.starts_with(&CONTAINER_MAGIC) || first_bytes.starts_with(&SINGLE_OBJECT_MAGIC) {
        return true;
    }
    // Many binary formats start with a zero byte: only a body that claims nothing more
    // specific is taken for Confluent's magic byte and schema id.
    first_bytes.len() >= 5
        && first_bytes[0] == 0
        && essence
            .is_none_or(|e| e.is_empty() || e.eq_ignore_ascii_case("application/octet-stream"))
}

fn is_avro_media_type(essence: &str) -> bool {
    const EXACT: [&str; 4] = [
        "avro/binary",
        "application/avro",
        "application/x-avro",
        "application/x-avro-binary",
    ];
    if EXACT.iter().any(|t| essence.eq_ignore_ascii_case(t)) {
        return true;
    }
    let Some(sub) = strip_prefix_ci(essence, "application/") else {
        return false;
    };
    // `+json` is Avro's JSON encoding, which this decoder does not read.
    ends_with_ci(sub, "+avro")
        || (strip_prefix_ci(sub, "vnd.apache.avro").is_some() && !ends_with_ci(sub, "+json"))
}

fn strip_prefix_ci<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.as_bytes().get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix.as_bytes())
        .then(|| &s[prefix.len()..])
}

fn ends_with_ci(s: &str, suffix: &str) -> bool {
    s.len()
        .checked_sub(suffix.len())
        .is_some_and(|at| s.as_bytes()[at..].eq_ignore_ascii_case(suffix.as_bytes()))
}

/// Compiled schema contracts, found by what they are bound to.
#[derive(Debug, Clone, Default)]
pub struct Contracts {
    by_namespace: HashMap<String, Vec<Arc<Contract>>>,
}

impl Contracts {
    /// When two contracts are bound to the same target, the first given wins (lint reports
    /// contracts in file order).
    pub fn new(contracts: Vec<Contract>) -> Contracts {
        let mut by_namespace: HashMap<String, Vec<Arc<Contract>>> = HashMap::new();
        for c in contracts {
            by_namespace
                .entry(c.namespace.clone())
                .or_default()
                .push(Arc::new(c));
        }
        Contracts { by_namespace }
    }

    /// The contract for a request the policy engine matched to `server` and `route` (their
    /// metric metas: kind `server`, `HTTPRoute`, or `default` for Linkerd's own, which no
    /// contract can target). A contract on the route is more specific than one on the server.
    pub fn for_target(
        &self,
        namespace: &str,
        server: &Meta,
        route: Option<&Meta>,
    ) -> Option<&Arc<Contract>> {
        let list = self.by_namespace.get(namespace)?;
        let bound_to = |kind: &str, meta: &Meta| {
            list.iter().find(|c| {
                c.target.kind.eq_ignore_ascii_case(kind)
                    && meta.kind.eq_ignore_ascii_case(kind)
                    && c.target.name == meta.name
            })
        };
        route
            .and_then(|r| bound_to("HTTPRoute", r))
            .or_else(|| bound_to("Server", server))
    }
}

/// What the proxy knows about the message besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub side: MessageSide,
    /// HTTP headers that may name the schema (`x-avro-schema-id`, `__value_schema_id`, ...).
    pub headers: &'a [(&'a str, &'a [u8])],
    pub contract: Option<&'a Contract>,
    /// The connection's client: the producer of a request body.
    pub client: &'a ClientTls,
    /// The body is only a prefix of the message.
    pub truncated: bool,
}

/// A subject's registered versions as last fetched, and drift verdicts computed against them.
struct History {
    fetched: Instant,
    versions: Result<Arc<[KnownSchema]>, String>,
    /// By (writer fingerprint, reader fingerprint, level).
    drift: HashMap<(i64, i64, Level), Arc<DriftReport>>,
}

fn same_versions(
    a: &Result<Arc<[KnownSchema]>, String>,
    b: &Result<Arc<[KnownSchema]>, String>,
) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b.iter())
                    .all(|(x, y)| (x.version, x.fingerprint) == (y.version, y.fingerprint))
        }
        _ => false,
    }
}

/// Why a body did not decode: a violation, or only the end of a kept prefix.
enum Problem {
    Violation(String),
    Incomplete(String),
}

/// Inspects bodies against a registry and the contracts. Shared by every connection of a
/// proxy: decoders, version lists and drift verdicts are cached across calls. With a remote
/// registry a cache miss waits for the registry, so call it where blocking is allowed.
pub struct Inspector {
    source: Arc<dyn SchemaSource>,
    decoder: PayloadDecoder,
    options: SniffOptions,
    histories: Mutex<HashMap<String, History>>,
    refresh_unknown_after: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::Audit => "audit",
    }
}

impl Inspector {
    pub fn new(source: Arc<dyn SchemaSource>, options: SniffOptions) -> Inspector {
        Inspector {
            decoder: PayloadDecoder::new(options).with_source(Box::new(source.clone())),
            source,
            options,
            histories: Mutex::new(HashMap::new()),
            refresh_unknown_after: REFRESH_UNKNOWN_AFTER,
        }
    }

    pub fn inspect(&self, body: &[u8], ctx: &Context<'_>) -> Inspection {
        let mut out = Inspection {
            side: Some(ctx.side),
            contract: ctx
                .contract
                .map(|c| format!("{}/{}", c.namespace, c.meta.name)),
            mode: ctx.contract.map(|c| mode_name(c.mode).to_string()),
            truncated: ctx.truncated,
            ..Inspection::default()
        };
        let mut errors = Vec::new();
        let mut incomplete = None;
        let (writer, decoded) = match self.decoder.decode(body, ctx.headers) {
            Ok(d) => {
                out.framing = d.framing.name().to_string();
                (Some(d.writer), Some((d.reader, d.values)))
            }
            Err(e) => {
                let (framing, writer, problem) = self.undecoded(body, ctx, e);
                out.framing = framing;
                match problem {
                    Problem::Violation(m) => errors.push(m),
                    Problem::Incomplete(m) => incomplete = Some(m),
                }
                (writer, None)
            }
        };
        if let Some(w) = &writer {
            out.subject = w.subject.clone();
            out.version = w.version;
            out.schema_id = w.id;
            out.fingerprint = Some(w.fingerprint);
        }
        let subject = match (ctx.contract, &writer) {
            (Some(contract), Some(w)) => {
                self.check_contract(contract, w, ctx, &mut out, &mut errors)
            }
            _ => None,
        };
        if let Some((schema, mut values)) = decoded {
            for path in subject.iter().flat_map(|s| &s.redact) {
                let replaced = values.iter_mut().fold(false, |any, v| {
                    redact(&schema, schema.root(), v, path) | any
                });
                if replaced {
                    out.redacted.push(path.clone());
                }
            }
            // Container files hold many records: one document per line, as `avro decode` prints.
            let docs: Vec<String> = values
                .iter()
                .map(|v| to_avro_json(&schema, v, None))
                .collect();
            out.value_json = Some(docs.join("\n"));
        }
        out.valid = errors.is_empty();
        if let Some(note) = incomplete {
            errors.insert(0, note);
        }
        out.errors = errors;
        out
    }

    /// Framing, writer (when it can still be found) and the reason for a body that did not
    /// decode; the decoder's own message is written for its command-line use.
    fn undecoded(
        &self,
        body: &[u8],
        ctx: &Context<'_>,
        error: AvroError,
    ) -> (String, Option<KnownSchema>, Problem) {
        let framed = match sniff(body, ctx.headers, self.options) {
            Ok(f) => f,
            Err(e) => {
                let why = format!("the schema reference is malformed: {e}");
                return (String::new(), None, Problem::Violation(why));
            }
        };
        let framing = framed.framing.name().to_string();
        let writer = match &framed.reference {
            SchemaRef::Embedded => Container::open(body)
                .ok()
                .map(|c| KnownSchema::new(c.schema().clone())),
            SchemaRef::Configured => {
                let why = "no writer schema: the body has neither an Avro framing (magic bytes) nor a schema header (x-avro-schema-id, __value_schema_id, ...)";
                return (framing, None, Problem::Violation(why.into()));
            }
            reference => match self.source.lookup(reference) {
                Ok(Some(w)) => Some(w),
                Ok(None) => {
                    let why = format!(
                        "no writer schema: the body ({}) refers to {reference}, which the registry does not have",
                        framed.framing
                    );
                    return (framing, None, Problem::Violation(why));
                }
                Err(e) => {
                    let why = format!("no writer schema: could not look up {reference}: {e}");
                    return (framing, None, Problem::Violation(why));
                }
            },
        };
        let problem = match error {
            AvroError::Decode(e) if e.end_of_input && ctx.truncated => {
                Problem::Incomplete(format!(
                    "inspection incomplete: only the first {} bytes were kept and the value goes on past them ({e})",
                    body.len()
                ))
            }
            AvroError::Decode(e) => Problem::Violation(format!(
                "the payload does not decode with its writer schema: {e}"
            )),
            other => Problem::Violation(other.to_string()),
        };
        (framing, writer, problem)
    }

    /// Applies the contract's checks; returns the subject contract the body falls under.
    fn check_contract<'c>(
        &self,
        contract: &'c Contract,
        writer: &KnownSchema,
        ctx: &Context<'_>,
        out: &mut Inspection,
        errors: &mut Vec<String>,
    ) -> Option<&'c SubjectContract> {
        let (sc, versions) = match self.subject_for(contract, writer) {
            Ok(found) => found,
            Err(why) => {
                errors.push(why);
                return None;
            }
        };
        out.subject = Some(sc.subject.clone());
        if ctx.side == MessageSide::Request && !sc.may_produce(ctx.client) {
            errors.push(producer_error(sc, ctx.client));
        }
        let report = self.drift(sc, &versions, writer);
        out.drift = Some(report.verdict().to_string());
        out.version = report.writer_version;
        out.reader_version = report.reader_version;
        if let Drift::Incompatible(list) = &report.drift {
            let reader = report
                .reader_version
                .map_or(String::new(), |v| format!(" (version {v})"));
            let written = report
                .writer_version
                .map_or(String::new(), |v| format!(" (version {v})"));
            let more = match list.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            if let Some(first) = list.first() {
                errors.push(format!(
                    "the contract's reader schema{reader} of subject {} cannot read what the writer schema{written} wrote: {first}{more}",
                    sc.subject
                ));
            }
        }
        if report.is_unregistered() {
            let id = writer
                .id
                .map_or(String::new(), |id| format!(", schema id {id}"));
            errors.push(format!(
                "the writer schema (fingerprint {}{id}) is not a registered version of subject {}",
                writer.fingerprint, sc.subject
            ));
        }
        Some(sc)
    }

    /// Which of the contract's subjects the writer belongs to, with that subject's versions.
    /// A schema may be registered under several subjects, so the registry's first usage is
    /// tried first, then every contract subject's versions.
    fn subject_for<'c>(
        &self,
        contract: &'c Contract,
        writer: &KnownSchema,
    ) -> Result<(&'c SubjectContract, Arc<[KnownSchema]>), String> {
        if let Some(sc) = writer.subject.as_deref().and_then(|s| contract.subject(s)) {
            return Ok((sc, self.history(&sc.subject, writer)?));
        }
        for sc in &contract.subjects {
            let versions = self.history(&sc.subject, writer)?;
            if versions.iter().any(|k| k.fingerprint == writer.fingerprint) {
                return Ok((sc, versions));
            }
        }
        let listed: Vec<&str> = contract
            .subjects
            .iter()
            .map(|s| s.subject.as_str())
            .collect();
        let name = format!("{}/{}", contract.namespace, contract.meta.name);
        match (&writer.subject, contract.subjects.as_slice()) {
            // An unregistered writer (a container file's own schema) of a one-subject
            // contract: judged against that subject, where drift says it is unregistered.
            (None, [only]) => Ok((only, self.history(&only.subject, writer)?)),
            (Some(s), _) => Err(format!(
                "subject {s} is not covered by schema contract {name}, which covers {}",
                listed.join(", ")
            )),
            (None, _) => Err(format!(
                "the writer schema (fingerprint {}) is registered under none of the subjects of schema contract {name} ({})",
                writer.fingerprint,
                listed.join(", ")
            )),
        }
    }

    /// A subject's versions, from the cache while it is fresh and knows the writer.
    fn history(&self, subject: &str, writer: &KnownSchema) -> Result<Arc<[KnownSchema]>, String> {
        if let Some(h) = lock(&self.histories).get(subject) {
            let age = h.fetched.elapsed();
            let fresh = match &h.versions {
                Ok(v) => {
                    age < VERSIONS_TTL
                        && (age < self.refresh_unknown_after
                            || v.iter().any(|k| k.fingerprint == writer.fingerprint))
                }
                Err(_) => age < FAILED_TTL,
            };
            if fresh {
                return h.versions.clone();
            }
        }
        let fetched: Result<Arc<[KnownSchema]>, String> = self
            .source
            .versions(subject)
            .map(Arc::from)
            .map_err(|e| format!("could not list the versions of subject {subject}: {e}"));
        let mut histories = lock(&self.histories);
        let h = histories
            .entry(subject.to_string())
            .or_insert_with(|| History {
                fetched: Instant::now(),
                versions: Err(String::new()),
                drift: HashMap::new(),
            });
        if !same_versions(&h.versions, &fetched) {
            h.drift.clear();
        }
        h.fetched = Instant::now();
        h.versions = fetched.clone();
        fetched
    }

    /// Classifying is a compatibility check (and a level check of the writer's history), so
    /// its verdict is cached until the subject's versions change.
    fn drift(
        &self,
        sc: &SubjectContract,
        versions: &[KnownSchema],
        writer: &KnownSchema,
    ) -> Arc<DriftReport> {
        let key = (writer.fingerprint, sc.reader_fingerprint, sc.level);
        if let Some(r) = lock(&self.histories)
            .get(&sc.subject)
            .and_then(|h| h.drift.get(&key))
        {
            return r.clone();
        }
        let listed: Vec<Version<'_>> = versions
            .iter()
            .filter_map(|k| {
                Some(Version {
                    version: k.version?,
                    schema: &k.schema,
                    fingerprint: k.fingerprint,
                })
            })
            .collect();
        let report = Arc::new(classify(&listed, sc.level, &sc.reader, &writer.schema));
        if let Some(h) = lock(&self.histories).get_mut(&sc.subject) {
            if h.drift.len() >= MAX_DRIFT_REPORTS {
                h.drift.clear();
            }
            h.drift.insert(key, report.clone());
        }
        report
    }
}

fn producer_error(sc: &SubjectContract, client: &ClientTls) -> String {
    let allowed: Vec<String> = sc.producers.iter().map(ToString::to_string).collect();
    let allowed = allowed.join(", ");
    let subject = &sc.subject;
    match client {
        ClientTls::Mtls(Some(id)) => {
            format!("client {id} may not produce subject {subject} (allowed producers: {allowed})")
        }
        ClientTls::Mtls(None) => format!(
            "the client presented no mTLS identity, so it may not produce subject {subject} (allowed producers: {allowed})"
        ),
        ClientTls::None => format!(
            "the client is not on mTLS, so it has no identity and may not produce subject {subject} (allowed producers: {allowed})"
        ),
    }
}

/// Replaces the value at a dotted field path (stepping through arrays, maps and unions) with
/// the mask; whether anything was replaced.
fn redact(schema: &Schema, id: NodeId, value: &mut Value, path: &str) -> bool {
    match (schema.kind(id), value) {
        (Kind::Record(r), Value::Record(fields)) => {
            let (name, rest) = match path.split_once('.') {
                Some((name, rest)) => (name, Some(rest)),
                None => (path, None),
            };
            let Some((field, v)) = r
                .fields
                .iter()
                .zip(fields.iter_mut())
                .find(|(f, _)| f.name == name)
            else {
                return false;
            };
            match rest {
                None => {
                    *v = Value::String(MASK.to_string());
                    true
                }
                Some(rest) => redact(schema, field.schema, v, rest),
            }
        }
        (Kind::Array(items), Value::Array(values)) => values
            .iter_mut()
            .fold(false, |any, v| redact(schema, *items, v, path) | any),
        (Kind::Map(inner), Value::Map(entries)) => entries
            .iter_mut()
            .fold(false, |any, (_, v)| redact(schema, *inner, v, path) | any),
        (Kind::Union(branches), Value::Union(i, v)) => branches
            .get(*i as usize)
            .is_some_and(|b| redact(schema, *b, v, path)),
        _ => false,
    }
}

/// The body of a 422 answer to a message an enforced contract rejects: a summary line, then
/// one line per problem.
pub fn rejection_body(inspection: &Inspection) -> String {
    let mut body = String::from("meshlens: message rejected");
    if let Some(c) = &inspection.contract {
        body.push_str(&format!(" by schema contract {c}"));
        if let Some(m) = &inspection.mode {
            body.push_str(&format!(" ({m})"));
        }
    }
    let side = match inspection.side {
        Some(MessageSide::Request) => "the request body",
        Some(MessageSide::Response) => "the response body",
        None => "the body",
    };
    let mut about = Vec::new();
    if let Some(s) = &inspection.subject {
        about.push(format!("subject {s}"));
    }
    if let Some(v) = inspection.version {
        about.push(format!("version {v}"));
    }
    if let Some(id) = inspection.schema_id {
        about.push(format!("schema id {id}"));
    }
    let about = if about.is_empty() {
        String::new()
    } else {
        format!(" ({})", about.join(", "))
    };
    let n = inspection.errors.len();
    let problems = if n == 1 { "problem" } else { "problems" };
    body.push_str(&format!(
        ": {side}{about} does not conform: {n} {problems}\n"
    ));
    for e in &inspection.errors {
        body.push_str(e);
        body.push('\n');
    }
    body
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::avro::rabin_fingerprint;
    use crate::policy::contract::{SchemaContractSpec, compile};
    use crate::policy::ids::IdentityDomain;
    use crate::registry::source::StoreSource;
    use crate::registry::store::Store;

    const SUBJECT: &str = "orders-value";
    const WEB: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";
    const ORDERS: &str = "orders.shop.serviceaccount.identity.linkerd.cluster.local";

    fn order(extra_fields: &str, qty: &str) -> String {
        format!(
            r#"{{"type":"record","name":"Order","namespace":"shop","fields":[
            {{"name":"id","type":"string"}},
            {{"name":"customer","type":{{"type":"record","name":"Customer","fields":[
                {{"name":"email","type":"string","sensitive":true}},
                {{"name":"address","type":"string"}}]}}}},
            {{"name":"lines","type":{{"type":"array","items":{{"type":"record","name":"Line","fields":[
                {{"name":"sku","type":"string"}},{{"name":"qty","type":"{qty}"}}]}}}}}}{extra_fields}]}}"#
        )
    }

    fn v1() -> String {
        order("", "int")
    }

    /// Adds an optional field: readable by v1.
    fn v2() -> String {
        order(
            r#",{"name":"coupon","type":["null","string"],"default":null}"#,
            "int",
        )
    }

    /// Changes `qty` to a string: v1 cannot read it.
    fn v3() -> String {
        order("", "string")
    }

    fn long(out: &mut Vec<u8>, v: i64) {
        let mut n = ((v << 1) ^ (v >> 63)) as u64;
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        long(out, s.len() as i64);
        out.extend_from_slice(s.as_bytes());
    }

    /// An order as v1 (and v3, with `qty` as text) writes it; `coupon` appends v2's field.
    fn order_datum(qty_text: bool, coupon: Option<&str>) -> Vec<u8> {
        let mut d = Vec::new();
        string(&mut d, "o-1");
        string(&mut d, "a@example.com");
        string(&mut d, "1 Main St");
        long(&mut d, 1);
        string(&mut d, "sku-9");
        if qty_text {
            string(&mut d, "2");
        } else {
            long(&mut d, 2);
        }
        long(&mut d, 0);
        if let Some(c) = coupon {
            long(&mut d, 1);
            string(&mut d, c);
        }
        d
    }

    fn confluent(id: u32, datum: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(datum);
        out
    }

    /// An object container file of one record whose schema travels in its header.
    fn container(schema: &str, datum: &[u8]) -> Vec<u8> {
        let mut f = b"Obj\x01".to_vec();
        long(&mut f, 1);
        string(&mut f, "avro.schema");
        string(&mut f, schema);
        long(&mut f, 0);
        f.extend_from_slice(&[7; 16]);
        long(&mut f, 1);
        long(&mut f, datum.len() as i64);
        f.extend_from_slice(datum);
        f.extend_from_slice(&[7; 16]);
        f
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<Store>,
        inspector: Inspector,
        contract: Contract,
    }

    /// A registry with `versions` of the subject (registered at level NONE, so a breaking
    /// one is accepted, as a misconfigured registry would) and a contract reading with v1.
    fn fixture(versions: &[String]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        store.set_subject_level(SUBJECT, Level::None).unwrap();
        for v in versions {
            store.register(SUBJECT, v, &[]).unwrap();
        }
        let yaml = format!(
            "targetRef: {{group: policy.linkerd.io, kind: Server, name: orders-http}}\n\
             subjects:\n- subject: {SUBJECT}\n  producers: {{serviceAccounts: [{{name: web}}]}}\n  \
             readerSchema: '{}'\n  redact: {{paths: [customer.address, lines.sku]}}\n",
            v1().replace('\n', " ")
        );
        let spec: SchemaContractSpec = serde_yaml_ng::from_str(&yaml).unwrap();
        let contract = compile(
            "orders-events",
            "shop",
            &spec,
            Path::new("."),
            &IdentityDomain::default(),
        )
        .unwrap();
        let source: Arc<dyn SchemaSource> = Arc::new(StoreSource::new(store.clone()));
        Fixture {
            _dir: dir,
            store,
            inspector: Inspector::new(source, SniffOptions::default()),
            contract,
        }
    }

    impl Fixture {
        fn inspect_as(&self, body: &[u8], side: MessageSide, client: &ClientTls) -> Inspection {
            self.inspector.inspect(
                body,
                &Context {
                    side,
                    headers: &[],
                    contract: Some(&self.contract),
                    client,
                    truncated: false,
                },
            )
        }

        fn inspect(&self, body: &[u8]) -> Inspection {
            let web = ClientTls::Mtls(Some(WEB.into()));
            self.inspect_as(body, MessageSide::Request, &web)
        }

        fn cached_drift_reports(&self) -> usize {
            lock(&self.inspector.histories)
                .get(SUBJECT)
                .map_or(0, |h| h.drift.len())
        }
    }

    fn all_versions() -> Vec<String> {
        vec![v1(), v2(), v3()]
    }

    #[test]
    fn a_conforming_confluent_payload_fills_every_field() {
        let f = fixture(&all_versions());
        let got = f.inspect(&confluent(1, &order_datum(false, None)));
        let v1_fingerprint = rabin_fingerprint(&Schema::parse(&v1()).unwrap());
        assert_eq!(
            got,
            Inspection {
                side: Some(MessageSide::Request),
                framing: "confluent".into(),
                subject: Some(SUBJECT.into()),
                version: Some(1),
                schema_id: Some(1),
                fingerprint: Some(v1_fingerprint),
                contract: Some("shop/orders-events".into()),
                mode: Some("enforce".into()),
                valid: true,
                errors: vec![],
                drift: Some("same".into()),
                reader_version: Some(1),
                value_json: Some(
                    r#"{"id":"o-1","customer":{"email":"***","address":"***"},"lines":[{"sku":"***","qty":2}]}"#
                        .into()
                ),
                redacted: vec![
                    "customer.address".into(),
                    "lines.sku".into(),
                    "customer.email".into()
                ],
                truncated: false,
            }
        );
    }

    #[test]
    fn without_a_contract_a_decoded_body_is_valid_and_shown_whole() {
        let f = fixture(&all_versions());
        let got = f.inspector.inspect(
            &confluent(3, &order_datum(true, None)),
            &Context {
                side: MessageSide::Response,
                headers: &[],
                contract: None,
                client: &ClientTls::None,
                truncated: false,
            },
        );
        assert!(got.valid, "{:?}", got.errors);
        assert_eq!(
            (got.subject.as_deref(), got.version),
            (Some(SUBJECT), Some(3))
        );
        assert_eq!((got.contract, got.mode, got.drift), (None, None, None));
        assert!(got.redacted.is_empty());
        assert!(
            got.value_json
                .unwrap()
                .contains(r#""email":"a@example.com""#)
        );
    }

    #[test]
    fn a_client_the_contract_does_not_name_is_a_violation_on_requests_only() {
        let f = fixture(&all_versions());
        let body = confluent(1, &order_datum(false, None));
        let orders = ClientTls::Mtls(Some(ORDERS.into()));
        let got = f.inspect_as(&body, MessageSide::Request, &orders);
        assert!(!got.valid);
        assert_eq!(
            got.errors,
            [format!(
                "client {ORDERS} may not produce subject {SUBJECT} (allowed producers: {WEB})"
            )]
        );
        assert_eq!(
            rejection_body(&got),
            format!(
                "meshlens: message rejected by schema contract shop/orders-events (enforce): \
                 the request body (subject {SUBJECT}, version 1, schema id 1) does not conform: 1 problem\n{}\n",
                got.errors[0]
            )
        );
        let plaintext = f.inspect_as(&body, MessageSide::Request, &ClientTls::None);
        assert!(
            plaintext.errors[0].contains("not on mTLS"),
            "{:?}",
            plaintext.errors
        );
        // The server itself produces responses; the client's identity says nothing about them.
        assert!(f.inspect_as(&body, MessageSide::Response, &orders).valid);
    }

    #[test]
    fn a_compatible_evolution_passes_and_says_so() {
        let f = fixture(&all_versions());
        let got = f.inspect(&confluent(2, &order_datum(false, Some("SAVE"))));
        assert!(got.valid, "{:?}", got.errors);
        assert_eq!(got.drift.as_deref(), Some("compatible"));
        assert_eq!((got.version, got.reader_version), (Some(2), Some(1)));
        assert!(
            got.value_json
                .unwrap()
                .ends_with(r#""coupon":{"string":"SAVE"}}"#)
        );
    }

    #[test]
    fn a_breaking_version_is_incompatible_and_names_where() {
        let f = fixture(&all_versions());
        let got = f.inspect(&confluent(3, &order_datum(true, None)));
        assert!(!got.valid);
        assert_eq!(got.drift.as_deref(), Some("incompatible"));
        assert_eq!(got.errors.len(), 1, "{:?}", got.errors);
        let e = &got.errors[0];
        assert!(
            e.starts_with(&format!(
                "the contract's reader schema (version 1) of subject {SUBJECT} cannot read what the writer schema (version 3) wrote: TYPE_MISMATCH at /fields/2/type/items/fields/1"
            )),
            "{e}"
        );
        // What was sent is still shown, as the producer wrote it.
        assert!(got.value_json.unwrap().contains(r#""qty":"2""#));
    }

    #[test]
    fn a_writer_schema_the_subject_never_registered_is_a_violation() {
        let f = fixture(&all_versions());
        let rogue = order(r#",{"name":"note","type":"string","default":""}"#, "int");
        let mut datum = order_datum(false, None);
        string(&mut datum, "hi");
        let got = f.inspect(&container(&rogue, &datum));
        assert_eq!(got.framing, "container");
        assert_eq!(got.drift.as_deref(), Some("unregistered"));
        assert!(!got.valid);
        let fp = rabin_fingerprint(&Schema::parse(&rogue).unwrap());
        assert_eq!(
            got.errors,
            [format!(
                "the writer schema (fingerprint {fp}) is not a registered version of subject {SUBJECT}"
            )]
        );
        assert_eq!(
            got.redacted.len(),
            3,
            "redaction applies to container records too"
        );
    }

    #[test]
    fn an_unknown_schema_id_is_a_violation() {
        let f = fixture(&all_versions());
        let got = f.inspect(&confluent(99, &order_datum(false, None)));
        assert!(!got.valid);
        assert_eq!(got.framing, "confluent");
        assert_eq!((got.schema_id, got.value_json), (None, None));
        assert_eq!(
            got.errors,
            [
                "no writer schema: the body (Confluent v0 (schema id)) refers to schema id 99, which the registry does not have"
            ]
        );
    }

    #[test]
    fn a_subject_outside_the_contract_is_a_violation() {
        let f = fixture(&all_versions());
        f.store
            .register("payments-value", r#""string""#, &[])
            .unwrap();
        let got = f.inspect(&confluent(4, &[0x04, b'h', b'i']));
        assert!(!got.valid);
        assert_eq!(
            got.errors,
            [format!(
                "subject payments-value is not covered by schema contract shop/orders-events, which covers {SUBJECT}"
            )]
        );
    }

    #[test]
    fn garbage_gets_an_offset_and_never_a_panic() {
        let f = fixture(&all_versions());
        let got = f.inspect(&confluent(1, &[0x03]));
        assert!(!got.valid);
        assert_eq!(
            got.errors,
            [
                "the payload does not decode with its writer schema: negative length -2 at byte 5 (in .id)"
            ]
        );
        assert_eq!(
            got.drift.as_deref(),
            Some("same"),
            "the writer is still known"
        );
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let mut body: Vec<u8> = (0..len % 40)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            if len % 3 == 0 && !body.is_empty() {
                body[0] = 0;
            }
            let got = f.inspect(&body);
            assert!(got.valid || !got.errors.is_empty(), "{body:?}: {got:?}");
        }
        let got = f.inspect(b"hello");
        assert_eq!(got.framing, "bare");
        assert!(
            got.errors[0].starts_with("no writer schema"),
            "{:?}",
            got.errors
        );
    }

    #[test]
    fn a_kept_prefix_that_ends_mid_value_is_incomplete_not_invalid() {
        let f = fixture(&all_versions());
        let body = confluent(1, &order_datum(false, None));
        let cut = &body[..body.len() - 4];
        let web = ClientTls::Mtls(Some(WEB.into()));
        let ctx = |truncated| Context {
            side: MessageSide::Request,
            headers: &[],
            contract: Some(&f.contract),
            client: &web,
            truncated,
        };
        let got = f.inspector.inspect(cut, &ctx(true));
        assert!(got.valid && got.truncated);
        assert_eq!(got.value_json, None);
        assert_eq!(got.drift.as_deref(), Some("same"));
        assert!(
            got.errors[0].starts_with(&format!(
                "inspection incomplete: only the first {} bytes were kept",
                cut.len()
            )),
            "{:?}",
            got.errors
        );
        // The same bytes as a whole message are damaged.
        let whole = f.inspector.inspect(cut, &ctx(false));
        assert!(!whole.valid);
        assert!(whole.errors[0].starts_with("the payload does not decode"));
        // A prefix that is damaged before it ends is still a violation.
        let damaged = f.inspector.inspect(&confluent(1, &[0x03]), &ctx(true));
        assert!(!damaged.valid);
    }

    #[test]
    fn drift_verdicts_are_cached_until_the_subject_changes() {
        let mut f = fixture(&[v1()]);
        assert_eq!(
            f.inspect(&confluent(1, &order_datum(false, None)))
                .drift
                .as_deref(),
            Some("same")
        );
        assert_eq!(
            f.inspect(&confluent(1, &order_datum(false, None)))
                .drift
                .as_deref(),
            Some("same")
        );
        assert_eq!(f.cached_drift_reports(), 1);
        f.store.register(SUBJECT, &v2(), &[]).unwrap();
        let v2_body = confluent(2, &order_datum(false, Some("SAVE")));
        // Within the refresh interval the cached version list stands...
        assert_eq!(f.inspect(&v2_body).drift.as_deref(), Some("unregistered"));
        // ...after it, a writer the list does not know makes it ask again.
        f.inspector.refresh_unknown_after = Duration::ZERO;
        let got = f.inspect(&v2_body);
        assert_eq!(got.drift.as_deref(), Some("compatible"), "{:?}", got.errors);
        assert!(got.valid);
        assert_eq!(f.cached_drift_reports(), 1, "the old verdicts were dropped");
    }

    #[test]
    fn redaction_steps_through_unions_and_maps() {
        let schema = Schema::parse(
            r#"{"type":"record","name":"R","fields":[
            {"name":"gift","type":["null",{"type":"record","name":"G","fields":[{"name":"note","type":"string"}]}]},
            {"name":"tags","type":{"type":"map","values":{"type":"record","name":"T","fields":[{"name":"secret","type":"string"}]}}}]}"#,
        )
        .unwrap();
        let text = |s: &str| Value::String(s.into());
        let mut value = Value::Record(vec![
            Value::Union(1, Box::new(Value::Record(vec![text("love")]))),
            Value::Map(vec![
                ("a".into(), Value::Record(vec![text("x")])),
                ("b".into(), Value::Record(vec![text("y")])),
            ]),
        ]);
        assert!(redact(&schema, schema.root(), &mut value, "gift.note"));
        assert!(redact(&schema, schema.root(), &mut value, "tags.secret"));
        assert!(!redact(&schema, schema.root(), &mut value, "tags.nope"));
        assert_eq!(
            to_avro_json(&schema, &value, None),
            r#"{"gift":{"G":{"note":"***"}},"tags":{"a":{"secret":"***"},"b":{"secret":"***"}}}"#
        );
        let mut absent = Value::Record(vec![
            Value::Union(0, Box::new(Value::Null)),
            Value::Map(vec![]),
        ]);
        assert!(!redact(&schema, schema.root(), &mut absent, "gift.note"));
    }

    #[test]
    fn which_bodies_are_inspected() {
        let confluent_frame = [0u8, 0, 0, 0, 1, 2];
        for (content_type, first, contract, wanted) in [
            (Some("avro/binary"), &b""[..], false, true),
            (Some("Application/AVRO; charset=binary"), b"", false, true),
            (Some("application/vnd.shop.order+avro"), b"", false, true),
            (Some("application/vnd.apache.avro+binary"), b"", false, true),
            (Some("application/vnd.apache.avro+json"), b"{", false, false),
            (Some("application/json"), b"{\"a\":1}", false, false),
            (Some("application/json"), b"{\"a\":1}", true, true),
            (None, b"Obj\x01\x04", false, true),
            (Some("text/plain"), &[0xc3, 0x01, 0x8a], false, true),
            (None, &confluent_frame, false, true),
            (
                Some("application/octet-stream"),
                &confluent_frame,
                false,
                true,
            ),
            (Some("image/png"), &confluent_frame, false, false),
            (None, &[0, 0, 0], false, false),
            (None, b"hello", false, false),
        ] {
            assert_eq!(
                wants_inspection(content_type, first, contract),
                wanted,
                "{content_type:?} {first:?} {contract}"
            );
        }
    }

    #[test]
    fn a_contract_on_the_route_wins_over_one_on_the_server() {
        let spec = |kind: &str, name: &str| -> SchemaContractSpec {
            serde_yaml_ng::from_str(&format!(
                "targetRef: {{group: policy.linkerd.io, kind: {kind}, name: {name}}}\n\
                 subjects:\n- subject: s\n  producers: {{identities: ['*']}}\n  readerSchema: '\"string\"'\n"
            ))
            .unwrap()
        };
        let c = |name: &str, kind: &str, target: &str| {
            compile(
                name,
                "shop",
                &spec(kind, target),
                Path::new("."),
                &IdentityDomain::default(),
            )
            .unwrap()
        };
        let contracts = Contracts::new(vec![
            c("on-server", "Server", "orders-http"),
            c("on-route", "HTTPRoute", "orders-write"),
        ]);
        let server = Meta::new("server", "orders-http");
        let name = |route: Option<&Meta>| {
            contracts
                .for_target("shop", &server, route)
                .map(|c| c.meta.name.clone())
        };
        assert_eq!(
            name(Some(&Meta::new("HTTPRoute", "orders-write"))).as_deref(),
            Some("on-route")
        );
        assert_eq!(
            name(Some(&Meta::new("HTTPRoute", "orders-read"))).as_deref(),
            Some("on-server")
        );
        assert_eq!(
            name(Some(&Meta::new("default", "default"))).as_deref(),
            Some("on-server")
        );
        assert_eq!(name(None).as_deref(), Some("on-server"));
        assert!(contracts.for_target("other", &server, None).is_none());
        let elsewhere = Meta::new("server", "pg");
        assert!(contracts.for_target("shop", &elsewhere, None).is_none());
    }
}
