//! A client for a remote Confluent-compatible registry (Confluent, Redpanda, Karapace, or
//! `meshlens registry serve`), with basic or bearer authentication and a cache of schemas by
//! id, fingerprint and subject version. Schemas under an id never change, so they are cached
//! for good; "not found" answers are remembered for a few seconds so a stream of payloads
//! with an unknown id does not hammer the registry.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::error::RegistryError;
use super::store::Reference;
use crate::avro::levels::Level;
use crate::avro::{Schema, rabin_fingerprint};

const ACCEPT_TYPES: &str =
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json";
/// How long an id the registry did not know is not asked about again.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// How often at most the whole registry is listed to find a fingerprint.
const LISTING_TTL: Duration = Duration::from_secs(30);
const MAX_REFERENCES: usize = 1000;

/// How to authenticate to the registry.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// A schema the remote registry knows by an id.
#[derive(Debug)]
pub struct RemoteSchema {
    /// 0 when the registry did not say (a lookup by GUID may not).
    pub id: u32,
    /// The schema text as the registry returned it.
    pub text: String,
    pub references: Vec<Reference>,
    pub schema: Arc<Schema>,
    pub fingerprint: i64,
    /// (subject, version) pairs that use this id, when the registry said.
    pub usages: Vec<(String, u32)>,
}

/// A subject version as the REST API returns it, schema unparsed.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawVersion {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
    #[serde(
        default,
        rename = "schemaType",
        skip_serializing_if = "Option::is_none"
    )]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub references: Vec<Reference>,
}

#[derive(Debug, Deserialize)]
struct SchemaById {
    #[serde(default)]
    id: Option<u32>,
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    subject: String,
    version: u32,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error_code: Option<i64>,
    message: Option<String>,
}

#[derive(Default)]
struct Cache {
    by_id: HashMap<u32, Arc<RemoteSchema>>,
    by_fingerprint: HashMap<i64, Arc<RemoteSchema>>,
    by_guid: HashMap<[u8; 16], Arc<RemoteSchema>>,
    /// (subject, version) → id; versions never change their id.
    versions: HashMap<(String, u32), u32>,
    missing_ids: HashMap<u32, Instant>,
    missing_guids: HashMap<[u8; 16], Instant>,
    listed_at: Option<Instant>,
}

/// A remote registry.
pub struct RegistryClient {
    /// Without userinfo; ends with `/`.
    base: Url,
    auth: Auth,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base.as_str())
            .field("auth", &self.auth)
            .finish()
    }
}

impl RegistryClient {
    /// A client for the registry at `url` (`http://` or `https://`). Credentials in the URL
    /// (`https://user:pass@host`) are used for basic auth unless `auth` says otherwise.
    pub fn new(url: &str, auth: Auth) -> Result<RegistryClient, RegistryError> {
        let bad = |message: String| RegistryError::Transport {
            url: url_without_userinfo(url),
            message,
        };
        let mut base = Url::parse(url).map_err(|e| bad(format!("not a valid URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("a registry URL starts with http:// or https://".into()));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("a registry URL has no ?query or #fragment".into()));
        }
        let auth = match auth {
            Auth::None if !base.username().is_empty() => Auth::Basic {
                user: decode_userinfo(base.username()),
                password: base.password().map(decode_userinfo).unwrap_or_default(),
            },
            other => other,
        };
        let _ = base.set_username("");
        let _ = base.set_password(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("meshlens/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(format!("cannot set up HTTP: {e}")))?;
        Ok(RegistryClient {
            base,
            auth,
            http,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The registry's URL, without credentials.
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn url_for(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Result<T, RegistryError> {
        let url = self.url_for(segments);
        let shown = url.to_string();
        let mut request = self
            .http
            .request(method, url)
            .header(ACCEPT, ACCEPT_TYPES)
            .query(query);
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        if let Some(b) = body {
            request = request
                .header(CONTENT_TYPE, "application/vnd.schemaregistry.v1+json")
                .body(b.to_string());
        }
        let response = request.send().await.map_err(|e| RegistryError::Transport {
            url: shown.clone(),
            message: transport_message(&e),
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RegistryError::Transport {
                url: shown.clone(),
                message: format!("could not read the answer: {e}"),
            })?;
        if !status.is_success() {
            let parsed: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            let (code, message) = match parsed {
                Some(ErrorBody {
                    error_code,
                    message: Some(m),
                }) => (error_code, m),
                _ => (
                    None,
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned(),
                ),
            };
            let hint = match status.as_u16() {
                401 | 403 => " (check --registry-user/--registry-password or --registry-token)",
                _ => "",
            };
            return Err(RegistryError::Remote {
                url: shown,
                status: status.as_u16(),
                code,
                message: format!("{message}{hint}"),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Transport {
            url: shown,
            message: format!("the answer is not what a schema registry sends: {e}"),
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<T, RegistryError> {
        self.call(Method::GET, segments, query, None).await
    }

    // ---- lookups with the cache ----

    /// The schema cached under `id`, without asking the registry.
    pub fn cached_id(&self, id: u32) -> Option<Arc<RemoteSchema>> {
        self.cache().by_id.get(&id).cloned()
    }

    /// The schema cached with this fingerprint, without asking the registry.
    pub fn cached_fingerprint(&self, fingerprint: i64) -> Option<Arc<RemoteSchema>> {
        self.cache().by_fingerprint.get(&fingerprint).cloned()
    }

    /// The schema with this id; `None` when the registry does not know it.
    pub async fn schema_by_id(&self, id: u32) -> Result<Option<Arc<RemoteSchema>>, RegistryError> {
        {
            let cache = self.cache();
            if let Some(s) = cache.by_id.get(&id) {
                return Ok(Some(s.clone()));
            }
            if cache
                .missing_ids
                .get(&id)
                .is_some_and(|at| at.elapsed() < NEGATIVE_TTL)
            {
                return Ok(None);
            }
        }
        let id_text = id.to_string();
        let found: SchemaById = match self.get(&["schemas", "ids", &id_text], &[]).await {
            Ok(f) => f,
            Err(e) if e.is_not_found() => {
                self.cache().missing_ids.insert(id, Instant::now());
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        check_type(found.schema_type.as_deref(), id)?;
        // Which subject versions use it (for display); older registries may not say.
        let usages: Vec<(String, u32)> = self
            .get::<Vec<Usage>>(&["schemas", "ids", &id_text, "versions"], &[])
            .await
            .map(|u| u.into_iter().map(|u| (u.subject, u.version)).collect())
            .unwrap_or_default();
        let schema = self
            .build(id, found.schema, found.references, usages)
            .await?;
        Ok(Some(schema))
    }

    /// The schema cached under a GUID, without asking the registry.
    pub fn cached_guid(&self, guid: &[u8; 16]) -> Option<Arc<RemoteSchema>> {
        self.cache().by_guid.get(guid).cloned()
    }

    /// The schema with this GUID (Confluent's V1 framing, `GET /schemas/guids/{guid}`);
    /// `None` when the registry does not know it.
    pub async fn schema_by_guid(
        &self,
        guid: &[u8; 16],
    ) -> Result<Option<Arc<RemoteSchema>>, RegistryError> {
        {
            let cache = self.cache();
            if let Some(s) = cache.by_guid.get(guid) {
                return Ok(Some(s.clone()));
            }
            if cache
                .missing_guids
                .get(guid)
                .is_some_and(|at| at.elapsed() < NEGATIVE_TTL)
            {
                return Ok(None);
            }
        }
        let text = uuid_text(guid);
        let found: SchemaById = match self.get(&["schemas", "guids", &text], &[]).await {
            Ok(f) => f,
            Err(e) if e.is_not_found() => {
                self.cache().missing_guids.insert(*guid, Instant::now());
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let id = found.id.unwrap_or(0);
        check_type(found.schema_type.as_deref(), id)?;
        let schema = self
            .build(id, found.schema, found.references, Vec::new())
            .await?;
        self.cache().by_guid.insert(*guid, schema.clone());
        Ok(Some(schema))
    }

    /// A subject's version (`None` = latest); `None` when the subject or version is unknown.
    pub async fn subject_version(
        &self,
        subject: &str,
        version: Option<u32>,
    ) -> Result<Option<(u32, Arc<RemoteSchema>)>, RegistryError> {
        if let Some(v) = version {
            let cache = self.cache();
            if let Some(s) = cache
                .versions
                .get(&(subject.to_string(), v))
                .and_then(|id| cache.by_id.get(id))
            {
                return Ok(Some((v, s.clone())));
            }
        }
        let raw = match self.raw_version(subject, version, false).await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        check_type(raw.schema_type.as_deref(), raw.id)?;
        let schema = match self.cached_id(raw.id) {
            Some(s) => s,
            None => {
                self.build(
                    raw.id,
                    raw.schema,
                    raw.references,
                    vec![(raw.subject.clone(), raw.version)],
                )
                .await?
            }
        };
        self.cache()
            .versions
            .insert((subject.to_string(), raw.version), raw.id);
        Ok(Some((raw.version, schema)))
    }

    /// The schema whose CRC-64-AVRO fingerprint this is. Confluent has no such lookup, so on
    /// a cache miss the registry's schemas are listed (`GET /schemas`, at most every 30 s).
    pub async fn schema_by_fingerprint(
        &self,
        fingerprint: i64,
    ) -> Result<Option<Arc<RemoteSchema>>, RegistryError> {
        {
            let mut cache = self.cache();
            if let Some(s) = cache.by_fingerprint.get(&fingerprint) {
                return Ok(Some(s.clone()));
            }
            if cache.listed_at.is_some_and(|at| at.elapsed() < LISTING_TTL) {
                return Ok(None);
            }
            cache.listed_at = Some(Instant::now());
        }
        let all: Vec<RawVersion> = match self.get(&["schemas"], &[]).await {
            Ok(all) => all,
            Err(e) if matches!(e.status(), 404 | 405) => return Ok(None),
            Err(e) => return Err(e),
        };
        for raw in all {
            if raw
                .schema_type
                .as_deref()
                .is_some_and(|t| !t.eq_ignore_ascii_case("AVRO"))
                || self.cached_id(raw.id).is_some()
            {
                continue;
            }
            let usage = vec![(raw.subject.clone(), raw.version)];
            if let Err(e) = self.build(raw.id, raw.schema, raw.references, usage).await {
                tracing::debug!("skipping schema id {}: {e}", raw.id);
            }
        }
        Ok(self.cached_fingerprint(fingerprint))
    }

    /// Parses a schema (fetching what its references need) and caches it.
    async fn build(
        &self,
        id: u32,
        text: String,
        references: Vec<Reference>,
        usages: Vec<(String, u32)>,
    ) -> Result<Arc<RemoteSchema>, RegistryError> {
        let texts = self.reference_texts(&references).await?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let schema =
            Schema::parse_with_references(&text, &refs).map_err(|e| RegistryError::Transport {
                url: self
                    .url_for(&["schemas", "ids", &id.to_string()])
                    .to_string(),
                message: format!("the registry's schema {id} is not valid Avro: {e}"),
            })?;
        let remote = Arc::new(RemoteSchema {
            id,
            fingerprint: rabin_fingerprint(&schema),
            schema: Arc::new(schema),
            text,
            references,
            usages,
        });
        let mut cache = self.cache();
        cache
            .by_fingerprint
            .entry(remote.fingerprint)
            .or_insert_with(|| remote.clone());
        if id != 0 {
            cache.by_id.insert(id, remote.clone());
            for (subject, version) in &remote.usages {
                cache.versions.insert((subject.clone(), *version), id);
            }
        }
        Ok(remote)
    }

    /// The texts of everything `references` pulls in, dependencies first.
    pub async fn reference_texts(
        &self,
        references: &[Reference],
    ) -> Result<Vec<String>, RegistryError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut texts: HashMap<(String, u32), String> = HashMap::new();
        let mut stack: Vec<(Reference, bool)> = references
            .iter()
            .rev()
            .map(|r| (r.clone(), false))
            .collect();
        while let Some((r, expanded)) = stack.pop() {
            let key = (r.subject.clone(), r.version);
            if expanded {
                out.push(texts.remove(&key).unwrap_or_default());
                continue;
            }
            if !seen.insert(key.clone()) {
                continue;
            }
            if seen.len() > MAX_REFERENCES {
                return Err(RegistryError::Transport {
                    url: self.base.to_string(),
                    message: format!(
                        "schema references pull in more than {MAX_REFERENCES} schemas"
                    ),
                });
            }
            let raw = self.raw_version(&r.subject, Some(r.version), true).await?;
            stack.push((r, true));
            stack.extend(
                raw.references
                    .iter()
                    .rev()
                    .map(|inner| (inner.clone(), false)),
            );
            texts.insert(key, raw.schema);
        }
        Ok(out)
    }

    // ---- plain REST calls ----

    /// `GET /subjects` (`?deleted=true` with `include_deleted`).
    pub async fn subjects(&self, include_deleted: bool) -> Result<Vec<String>, RegistryError> {
        self.get(&["subjects"], &deleted_query(include_deleted))
            .await
    }

    /// `GET /subjects/{subject}/versions`.
    pub async fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        self.get(
            &["subjects", subject, "versions"],
            &deleted_query(include_deleted),
        )
        .await
    }

    /// `GET /subjects/{subject}/versions/{version|latest}`.
    pub async fn raw_version(
        &self,
        subject: &str,
        version: Option<u32>,
        include_deleted: bool,
    ) -> Result<RawVersion, RegistryError> {
        let v = version.map_or_else(|| "latest".to_string(), |v| v.to_string());
        self.get(
            &["subjects", subject, "versions", &v],
            &deleted_query(include_deleted),
        )
        .await
    }

    /// `POST /subjects/{subject}/versions`: registers and returns the id.
    pub async fn register(
        &self,
        subject: &str,
        schema: &str,
        references: &[Reference],
    ) -> Result<u32, RegistryError> {
        #[derive(Deserialize)]
        struct Id {
            id: u32,
        }
        let body = schema_body(schema, references);
        let r: Id = self
            .call(
                Method::POST,
                &["subjects", subject, "versions"],
                &[],
                Some(&body),
            )
            .await?;
        Ok(r.id)
    }

    /// `POST /subjects/{subject}`: the version this schema is in the subject.
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &str,
        references: &[Reference],
    ) -> Result<RawVersion, RegistryError> {
        let body = schema_body(schema, references);
        self.call(Method::POST, &["subjects", subject], &[], Some(&body))
            .await
    }

    /// `GET /config`.
    pub async fn global_level(&self) -> Result<Level, RegistryError> {
        let v: Json = self.get(&["config"], &[]).await?;
        self.level_of(&v, "config")
    }

    /// `GET /config/{subject}`: the subject's own level, `None` if it has none.
    pub async fn subject_level(&self, subject: &str) -> Result<Option<Level>, RegistryError> {
        match self.get::<Json>(&["config", subject], &[]).await {
            Ok(v) => self.level_of(&v, subject).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /config/{subject}`.
    pub async fn set_subject_level(
        &self,
        subject: &str,
        level: Level,
    ) -> Result<(), RegistryError> {
        let body = json!({"compatibility": level.as_str()});
        let _: Json = self
            .call(Method::PUT, &["config", subject], &[], Some(&body))
            .await?;
        Ok(())
    }

    fn level_of(&self, v: &Json, what: &str) -> Result<Level, RegistryError> {
        let text = v
            .get("compatibilityLevel")
            .or_else(|| v.get("compatibility"))
            .and_then(Json::as_str)
            .unwrap_or("");
        text.parse::<Level>().map_err(|e| RegistryError::Transport {
            url: self.url_for(&["config", what]).to_string(),
            message: e,
        })
    }
}

fn schema_body(schema: &str, references: &[Reference]) -> Json {
    let mut body = json!({"schema": schema, "schemaType": "AVRO"});
    if !references.is_empty() {
        body["references"] = json!(references);
    }
    body
}

fn deleted_query(include_deleted: bool) -> Vec<(&'static str, &'static str)> {
    if include_deleted {
        vec![("deleted", "true")]
    } else {
        Vec::new()
    }
}

fn check_type(schema_type: Option<&str>, id: u32) -> Result<(), RegistryError> {
    match schema_type {
        Some(t) if !t.eq_ignore_ascii_case("AVRO") => Err(RegistryError::SchemaNotFound(format!(
            "schema {id} is a {t} schema, not Avro"
        ))),
        _ => Ok(()),
    }
}

/// `8-4-4-4-12` lowercase hex, as Confluent writes GUIDs.
fn uuid_text(g: &[u8; 16]) -> String {
    let hex: String = g.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn decode_userinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with any `user:password@` removed, for messages.
fn url_without_userinfo(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s && !url[s + 3..at].contains('/') => {
            format!("{}{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn transport_message(e: &reqwest::Error) -> String {
    let mut message = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    };
    // The innermost cause is the precise one ("Connection refused", "invalid peer
    // certificate: UnknownIssuer"); the layers above it repeat what `message` says.
    let mut cause = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = Some(s.to_string());
        source = s.source();
    }
    if let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_becomes_basic_auth_and_leaves_the_url() {
        let c = RegistryClient::new("https://me:p%40ss@registry.example/api", Auth::None).unwrap();
        assert_eq!(c.url(), "https://registry.example/api/");
        match &c.auth {
            Auth::Basic { user, password } => {
                assert_eq!((user.as_str(), password.as_str()), ("me", "p@ss"))
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{c:?}").contains("p@ss"));
        assert_eq!(
            c.url_for(&["subjects", "a/b c", "versions"]).as_str(),
            "https://registry.example/api/subjects/a%2Fb%20c/versions"
        );
        let c = RegistryClient::new("http://h:1", Auth::Bearer("t".into())).unwrap();
        assert!(matches!(c.auth, Auth::Bearer(_)));
    }

    #[test]
    fn bad_urls_are_refused_without_leaking_secrets() {
        let e = RegistryClient::new("ftp://u:secret@h/", Auth::None).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(e.to_string().contains("http://"), "{e}");
        assert!(RegistryClient::new("not a url", Auth::None).is_err());
    }
}
