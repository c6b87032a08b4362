//! Confluent's REST API v1 over a [`Store`]: paths, JSON shapes and error codes. No sockets
//! here: the server hands in method, path, query and body and gets a status and a body back,
//! so every route is testable without a network.
//!
//! Request bodies that are not JSON answer 400 (`error_code` 400); JSON of the wrong shape
//! answers 422 (`error_code` 422); a schema that is not valid Avro answers 422 / 42201.

use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::error::RegistryError;
use super::store::{Reference, Store, SubjectVersion, VersionSpec, validate_subject};
use crate::avro::levels::Level;

/// The content type of every response.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Request content types the API reads (a missing one is fine too).
pub const ACCEPTED_CONTENT_TYPES: [&str; 4] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

/// A request as the server saw it. `path` and `query` are still percent-encoded.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
}

/// A status and a body (JSON, or a raw schema for the `/schema` routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    fn json(value: &Json) -> Response {
        Response {
            status: 200,
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// Confluent's error body.
    pub fn error(e: &RegistryError) -> Response {
        Response {
            status: e.status(),
            body: serde_json::to_vec(&json!({"error_code": e.code(), "message": e.to_string()}))
                .unwrap_or_default(),
        }
    }
}

/// Whether a request may change the store (and so may block on the disk).
pub fn may_write(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD")
}

/// Answers one request.
pub fn handle(store: &Store, req: &Request<'_>) -> Response {
    let segments = match split_path(req.path) {
        Ok(s) => s,
        Err(e) => return Response::error(&e),
    };
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query = Query::parse(req.query);
    match route(store, req.method, &segs, &query, req.body) {
        Ok(Reply::Json(v)) => Response::json(&v),
        Ok(Reply::Raw(text)) => Response {
            status: 200,
            body: text.into_bytes(),
        },
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!("{} {}: {e}", req.method, req.path);
            }
            Response::error(&e)
        }
    }
}

enum Reply {
    Json(Json),
    Raw(String),
}

fn ok(v: Json) -> Result<Reply, RegistryError> {
    Ok(Reply::Json(v))
}

fn route(
    store: &Store,
    method: &str,
    segs: &[&str],
    q: &Query,
    body: &[u8],
) -> Result<Reply, RegistryError> {
    let deleted = q.flag("deleted");
    match (method, segs) {
        ("GET", []) => ok(json!({})),
        ("GET", ["schemas", "types"]) => ok(json!(["AVRO"])),
        ("GET", ["schemas"]) => {
            let all = store.all_versions(q.get("subjectPrefix"), deleted, q.flag("latestOnly"));
            ok(Json::Array(all.iter().map(version_json).collect()))
        }
        ("GET", ["schemas", "ids", id]) => {
            let s = schema_by_id(store, id)?;
            let mut m = Map::new();
            m.insert("schema".into(), Json::String(s.text.clone()));
            if !s.references.is_empty() {
                m.insert("references".into(), references_json(&s.references));
            }
            ok(Json::Object(m))
        }
        ("GET", ["schemas", "ids", id, "schema"]) => {
            Ok(Reply::Raw(schema_by_id(store, id)?.text.clone()))
        }
        ("GET", ["schemas", "ids", id, "subjects"]) => {
            let s = schema_by_id(store, id)?;
            let mut subjects: Vec<String> = store
                .usages(s.id, deleted)
                .into_iter()
                .map(|(subject, _)| subject)
                .collect();
            subjects.dedup();
            ok(json!(subjects))
        }
        ("GET", ["schemas", "ids", id, "versions"]) => {
            let s = schema_by_id(store, id)?;
            let usages: Vec<Json> = store
                .usages(s.id, deleted)
                .into_iter()
                .map(|(subject, version)| json!({"subject": subject, "version": version}))
                .collect();
            ok(Json::Array(usages))
        }
        ("GET", ["schemas", "guids", guid]) => Err(RegistryError::SchemaNotFound(format!(
            "Schema {guid} not found: this registry does not assign GUIDs"
        ))),
        ("GET", ["subjects"]) => ok(json!(store.subjects(deleted, q.get("subjectPrefix")))),
        ("POST", ["subjects", subject]) => {
            let body = SchemaBody::parse(body)?;
            let references = body.references(store)?;
            let found = store.lookup(subject, body.schema()?, &references, deleted)?;
            ok(version_json(&found))
        }
        ("DELETE", ["subjects", subject]) => {
            ok(json!(store.delete_subject(subject, q.flag("permanent"))?))
        }
        ("GET", ["subjects", subject, "versions"]) => ok(json!(store.versions(subject, deleted)?)),
        ("POST", ["subjects", subject, "versions"]) => {
            validate_subject(subject)?;
            let body = SchemaBody::parse(body)?;
            let references = body.references(store)?;
            let registered = store.register(subject, body.schema()?, &references)?;
            if registered.created {
                tracing::info!(
                    subject,
                    id = registered.id,
                    version = registered.version,
                    "registered"
                );
            }
            ok(json!({"id": registered.id}))
        }
        ("GET", ["subjects", subject, "versions", v]) => {
            let found = store.version(subject, VersionSpec::parse(v)?, deleted)?;
            ok(version_json(&found))
        }
        ("GET", ["subjects", subject, "versions", v, "schema"]) => {
            let found = store.version(subject, VersionSpec::parse(v)?, deleted)?;
            Ok(Reply::Raw(found.schema.text.clone()))
        }
        ("GET", ["subjects", subject, "versions", v, "referencedby"]) => {
            ok(json!(store.referenced_by(subject, VersionSpec::parse(v)?)?))
        }
        ("DELETE", ["subjects", subject, "versions", v]) => ok(json!(store.delete_version(
            subject,
            VersionSpec::parse(v)?,
            q.flag("permanent")
        )?)),
        ("POST", ["compatibility", "subjects", subject, "versions", rest @ ..])
            if rest.len() <= 1 =>
        {
            let spec = rest.first().map(|v| VersionSpec::parse(v)).transpose()?;
            let body = SchemaBody::parse(body)?;
            let references = body.references(store)?;
            let result = store.check(subject, spec, body.schema()?, &references)?;
            let mut m = Map::new();
            m.insert("is_compatible".into(), Json::Bool(result.compatible));
            if q.flag("verbose") {
                m.insert("messages".into(), json!(result.messages));
            }
            ok(Json::Object(m))
        }
        ("GET", ["config"]) => ok(json!({"compatibilityLevel": store.global_level().as_str()})),
        ("PUT", ["config"]) => {
            let level = level_body(body)?;
            let level = store.set_global_level(level)?;
            ok(json!({"compatibility": level.as_str()}))
        }
        ("DELETE", ["config"]) => {
            let old = store.delete_global_level()?;
            ok(json!({"compatibilityLevel": old.as_str()}))
        }
        ("GET", ["config", subject]) => {
            let level = match store.subject_level(subject) {
                Some(l) => l,
                None if q.flag("defaultToGlobal") => store.global_level(),
                None => {
                    return Err(RegistryError::SubjectLevelNotConfigured(
                        subject.to_string(),
                    ));
                }
            };
            ok(json!({"compatibilityLevel": level.as_str()}))
        }
        ("PUT", ["config", subject]) => {
            let level = level_body(body)?;
            let level = store.set_subject_level(subject, level)?;
            ok(json!({"compatibility": level.as_str()}))
        }
        ("DELETE", ["config", subject]) => {
            let old = store.delete_subject_level(subject)?;
            ok(json!({"compatibilityLevel": old.as_str()}))
        }
        ("GET", ["mode"] | ["mode", _]) | ("DELETE", ["mode", _]) => {
            ok(json!({"mode": "READWRITE"}))
        }
        ("PUT", ["mode"] | ["mode", _]) => {
            let mode = parse_body::<ModeBody>(body)?.mode;
            if !mode.eq_ignore_ascii_case("READWRITE") {
                return Err(RegistryError::InvalidMode(mode));
            }
            ok(json!({"mode": "READWRITE"}))
        }
        ("GET", ["contexts"]) => ok(json!(["."])),
        _ if known_path(segs) => Err(RegistryError::MethodNotAllowed),
        _ => Err(RegistryError::NoSuchPath),
    }
}

/// A path the API serves with some method (for 405 versus 404).
fn known_path(segs: &[&str]) -> bool {
    matches!(
        segs,
        [] | ["schemas"]
            | ["schemas", "types"]
            | ["schemas", "ids", _]
            | ["schemas", "ids", _, "schema" | "subjects" | "versions"]
            | ["schemas", "guids", _]
            | ["subjects"]
            | ["subjects", _]
            | ["subjects", _, "versions"]
            | ["subjects", _, "versions", _]
            | ["subjects", _, "versions", _, "schema" | "referencedby"]
            | ["compatibility", "subjects", _, "versions"]
            | ["compatibility", "subjects", _, "versions", _]
            | ["config"]
            | ["config", _]
            | ["mode"]
            | ["mode", _]
            | ["contexts"]
    )
}

fn schema_by_id(
    store: &Store,
    id: &str,
) -> Result<std::sync::Arc<super::store::StoredSchema>, RegistryError> {
    id.parse::<u32>()
        .ok()
        .and_then(|n| store.schema_by_id(n))
        .ok_or_else(|| RegistryError::SchemaNotFound(format!("Schema {id} not found")))
}

fn references_json(refs: &[Reference]) -> Json {
    Json::Array(
        refs.iter()
            .map(|r| json!({"name": r.name, "subject": r.subject, "version": r.version}))
            .collect(),
    )
}

/// `{"subject","version","id","schema"}` (+ `references` when there are any).
fn version_json(v: &SubjectVersion) -> Json {
    let mut m = Map::new();
    m.insert("subject".into(), Json::String(v.subject.clone()));
    m.insert("version".into(), json!(v.version));
    m.insert("id".into(), json!(v.schema.id));
    m.insert("schema".into(), Json::String(v.schema.text.clone()));
    if !v.schema.references.is_empty() {
        m.insert("references".into(), references_json(&v.schema.references));
    }
    Json::Object(m)
}

// ---- bodies --------------------------------------------------------------------------------

fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            RegistryError::Unprocessable(format!("Unrecognized request body: {e}"))
        }
        _ => RegistryError::BadRequest(format!("The request body is not valid JSON: {e}")),
    })
}

/// The body of register, lookup and compatibility requests.
#[derive(Debug, Deserialize)]
struct SchemaBody {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<ReferenceBody>>,
}

#[derive(Debug, Deserialize)]
struct ReferenceBody {
    name: String,
    subject: String,
    version: i64,
}

impl SchemaBody {
    fn parse(body: &[u8]) -> Result<SchemaBody, RegistryError> {
        let b: SchemaBody = parse_body(body)?;
        if let Some(t) = &b.schema_type
            && !t.eq_ignore_ascii_case("AVRO")
        {
            return Err(RegistryError::InvalidSchema(format!(
                "schema type {t} is not supported: this registry holds Avro schemas only"
            )));
        }
        Ok(b)
    }

    fn schema(&self) -> Result<&str, RegistryError> {
        match self.schema.as_deref() {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(RegistryError::InvalidSchema("Empty schema".into())),
        }
    }

    /// The references with `-1` (latest) resolved to a version number.
    fn references(&self, store: &Store) -> Result<Vec<Reference>, RegistryError> {
        let mut out = Vec::new();
        for r in self.references.iter().flatten() {
            let spec = match r.version {
                -1 => VersionSpec::Latest,
                n if n >= 1 && n <= i64::from(i32::MAX) => VersionSpec::Number(n as u32),
                n => {
                    return Err(RegistryError::InvalidSchema(format!(
                        "reference {} has an invalid version {n}",
                        r.name
                    )));
                }
            };
            let version = store.version(&r.subject, spec, false).map_err(|_| {
                RegistryError::InvalidSchema(format!(
                    "reference {} (subject '{}' version {}) is not registered",
                    r.name, r.subject, r.version
                ))
            })?;
            out.push(Reference {
                name: r.name.clone(),
                subject: r.subject.clone(),
                version: version.version,
            });
        }
        Ok(out)
    }
}

#[derive(Debug, Deserialize)]
struct LevelBody {
    #[serde(default)]
    compatibility: Option<String>,
    #[serde(default, rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

fn level_body(body: &[u8]) -> Result<Level, RegistryError> {
    let b: LevelBody = parse_body(body)?;
    let text = b
        .compatibility
        .or(b.compatibility_level)
        .ok_or_else(|| RegistryError::InvalidLevel(String::new()))?;
    text.parse::<Level>()
        .map_err(|_| RegistryError::InvalidLevel(text))
}

#[derive(Debug, Deserialize)]
struct ModeBody {
    mode: String,
}

// ---- paths and queries ---------------------------------------------------------------------

/// Splits a path into percent-decoded segments (empty segments from `//` or a trailing `/`
/// are dropped).
fn split_path(path: &str) -> Result<Vec<String>, RegistryError> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_decode(s, false).ok_or_else(|| {
                RegistryError::BadRequest(format!(
                    "The path segment {s:?} is not valid UTF-8 percent-encoding"
                ))
            })
        })
        .collect()
}

/// Decodes `%XX` (and `+` as a space in query strings). `None` for bad escapes or UTF-8.
fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    Some((percent_decode(k, true)?, percent_decode(v, true)?))
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `?name=true` (any case; Python clients send `True`).
    fn flag(&self, name: &str) -> bool {
        self.get(name).eq_ignore_ascii_case("true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("reg")).unwrap();
        (dir, store)
    }

    fn call(store: &Store, method: &str, target: &str, body: &str) -> (u16, Json) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let r = handle(
            store,
            &Request {
                method,
                path,
                query,
                body: body.as_bytes(),
            },
        );
        let v = serde_json::from_slice(&r.body)
            .unwrap_or(Json::String(String::from_utf8_lossy(&r.body).into_owned()));
        (r.status, v)
    }

    const V1: &str = r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}"#;
    const V2_BAD: &str = r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#;

    fn body(schema: &str) -> String {
        json!({ "schema": schema }).to_string()
    }

    #[test]
    fn register_then_read_back_by_every_route() {
        let (_d, s) = store();
        let (status, v) = call(&s, "POST", "/subjects/a%2Fb/versions", &body(V1));
        assert_eq!((status, v.clone()), (200, json!({"id": 1})));
        assert_eq!(call(&s, "GET", "/subjects", "").1, json!(["a/b"]));
        assert_eq!(
            call(&s, "GET", "/subjects/a%2Fb/versions", "").1,
            json!([1])
        );
        let (_, latest) = call(&s, "GET", "/subjects/a%2Fb/versions/latest", "");
        assert_eq!(latest["id"], 1);
        assert_eq!(latest["schema"], V1);
        assert_eq!(
            call(&s, "GET", "/schemas/ids/1", "").1,
            json!({"schema": V1})
        );
        assert_eq!(call(&s, "GET", "/schemas/ids/1/schema", "").1["name"], "r");
        assert_eq!(
            call(&s, "GET", "/schemas/ids/1/versions", "").1,
            json!([{"subject": "a/b", "version": 1}])
        );
        assert_eq!(call(&s, "GET", "/schemas/types", "").1, json!(["AVRO"]));
    }

    #[test]
    fn error_codes() {
        let (_d, s) = store();
        call(&s, "POST", "/subjects/s/versions", &body(V1));
        let code = |m: &str, t: &str, b: &str| {
            let (status, v) = call(&s, m, t, b);
            (status, v["error_code"].as_i64().unwrap_or(0))
        };
        assert_eq!(code("GET", "/subjects/nope/versions", ""), (404, 40401));
        assert_eq!(code("GET", "/subjects/s/versions/7", ""), (404, 40402));
        assert_eq!(code("GET", "/schemas/ids/99", ""), (404, 40403));
        assert_eq!(code("GET", "/schemas/ids/x", ""), (404, 40403));
        assert_eq!(code("GET", "/subjects/s/versions/0", ""), (422, 42202));
        assert_eq!(
            code("POST", "/subjects/s/versions", &body(V2_BAD)),
            (409, 409)
        );
        assert_eq!(
            code("POST", "/subjects/s/versions", &body("{\"type\":")),
            (422, 42201)
        );
        assert_eq!(
            code("POST", "/subjects/s/versions", "{not json"),
            (400, 400)
        );
        assert_eq!(
            code("POST", "/subjects/s/versions", "{\"schema\":1}"),
            (422, 422)
        );
        assert_eq!(
            code("PUT", "/config", "{\"compatibility\":\"SIDEWAYS\"}"),
            (422, 42203)
        );
        assert_eq!(code("GET", "/config/s", ""), (404, 40408));
        assert_eq!(code("GET", "/nowhere", ""), (404, 404));
        assert_eq!(code("PATCH", "/subjects", ""), (405, 405));
        assert_eq!(
            code(
                "POST",
                "/subjects/s/versions",
                &json!({"schema": V1, "schemaType": "PROTOBUF"}).to_string()
            ),
            (422, 42201)
        );
    }

    #[test]
    fn incompatible_message_lists_confluent_descriptions() {
        let (_d, s) = store();
        call(&s, "POST", "/subjects/s/versions", &body(V1));
        let (_, v) = call(&s, "POST", "/subjects/s/versions", &body(V2_BAD));
        let message = v["message"].as_str().unwrap();
        assert!(message.starts_with("Schema being registered is incompatible with an earlier schema for subject \"s\", details: [{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'b' at path '/fields/1' in the new schema has no default value and is missing in the old schema'"), "{message}");
        assert!(message.ends_with("{oldSchemaVersion: 1}, {oldSchema: '{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}'}, {validateFields: 'false', compatibility: 'BACKWARD'}]"), "{message}");
        let (_, v) = call(
            &s,
            "POST",
            "/compatibility/subjects/s/versions/latest?verbose=True",
            &body(V2_BAD),
        );
        assert_eq!(v["is_compatible"], false);
        assert_eq!(v["messages"].as_array().unwrap().len(), 4);
        let (_, v) = call(
            &s,
            "POST",
            "/compatibility/subjects/s/versions/latest",
            &body(V1),
        );
        assert_eq!(v, json!({"is_compatible": true}));
        // With NONE the same schema registers.
        assert_eq!(
            call(&s, "PUT", "/config/s", "{\"compatibility\":\"none\"}").1,
            json!({"compatibility": "NONE"})
        );
        assert_eq!(
            call(&s, "POST", "/subjects/s/versions", &body(V2_BAD)).1,
            json!({"id": 2})
        );
        assert_eq!(
            call(&s, "GET", "/config/s", "").1,
            json!({"compatibilityLevel": "NONE"})
        );
        assert_eq!(
            call(&s, "GET", "/config", "").1,
            json!({"compatibilityLevel": "BACKWARD"})
        );
    }

    #[test]
    fn references_resolve_and_block_deletes() {
        let (_d, s) = store();
        let address = r#"{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"city","type":"string"}]}"#;
        call(&s, "POST", "/subjects/address/versions", &body(address));
        let order = r#"{"type":"record","name":"Order","namespace":"acme","fields":[{"name":"to","type":"Address"}]}"#;
        let with_ref = |schema: &str| {
            json!({"schema": schema, "references": [{"name": "acme.Address", "subject": "address", "version": -1}]})
                .to_string()
        };
        assert_eq!(
            call(&s, "POST", "/subjects/order/versions", &with_ref(order)).1,
            json!({"id": 2})
        );
        let (_, v) = call(&s, "GET", "/schemas/ids/2", "");
        assert_eq!(
            v["references"],
            json!([{"name": "acme.Address", "subject": "address", "version": 1}])
        );
        assert_eq!(
            call(&s, "POST", "/subjects/order", &with_ref(order)).1["version"],
            1
        );
        assert_eq!(
            call(&s, "GET", "/subjects/address/versions/1/referencedby", "").1,
            json!([2])
        );
        let (status, v) = call(&s, "DELETE", "/subjects/address", "");
        assert_eq!((status, v["error_code"].clone()), (422, json!(42206)));
        // Without the reference the schema does not parse.
        let (status, v) = call(&s, "POST", "/subjects/order2/versions", &body(order));
        assert_eq!((status, v["error_code"].clone()), (422, json!(42201)));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%3Ac", false).as_deref(), Some("a/b:c"));
        assert_eq!(percent_decode("a+b", true).as_deref(), Some("a b"));
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(percent_decode("%ff", false), None);
        let q = Query::parse("deleted=True&subjectPrefix=or%2D");
        assert!(q.flag("deleted"));
        assert_eq!(q.get("subjectPrefix"), "or-");
    }
}
