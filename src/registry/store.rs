//! The directory store: one `.avsc` per subject version and an `index.json` of ids, versions
//! and compatibility levels, laid out to read well in git:
//!
//! ```text
//! DIR/index.json                       next id, levels, subjects → versions → {id, file, deleted}
//! DIR/subjects/orders-value/v1.avsc    the schema as registered, pretty-printed
//! DIR/.gitignore                       ignores the lock file and temporary files
//! ```
//!
//! Every write goes to a temporary file that is fsynced and renamed over the target (and the
//! directory fsynced), schema file first and index last, so a crash leaves either the old
//! index or the new one, never a torn file; a schema file the index does not name is ignored.
//! Writers are serialized by a mutex inside the process and by a lock file across processes.
//! Readers never touch the disk: the whole registry lives in memory behind a `RwLock`, and
//! a change becomes visible only once it is on disk.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::error::RegistryError;
use super::json_text;
use crate::avro::levels::{Level, LevelReport, check_level};
use crate::avro::{Schema, rabin_fingerprint};

pub const INDEX_FILE: &str = "index.json";
const LOCK_FILE: &str = ".lock";
const FORMAT: u32 = 1;
/// Confluent's version numbers are Java ints.
pub const MAX_VERSION: u32 = i32::MAX as u32;
const MAX_SUBJECT_LEN: usize = 1024;
/// Longest directory name made from a subject (file systems allow 255 bytes).
const MAX_DIR_LEN: usize = 120;
/// How many schemas the references of one schema may pull in.
const MAX_REFERENCES: usize = 1000;

/// A named type another subject version defines (Confluent schema references).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: u32,
}

/// A schema and the id it is known by.
#[derive(Debug)]
pub struct StoredSchema {
    pub id: u32,
    /// The schema as registered, without the whitespace (what the REST API returns).
    pub text: String,
    pub schema: Arc<Schema>,
    pub references: Vec<Reference>,
    /// CRC-64-AVRO of the canonical form.
    pub fingerprint: i64,
    /// What "the same schema" means: normalized JSON and the references.
    key: String,
}

/// One version of a subject.
#[derive(Debug, Clone)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: u32,
    pub deleted: bool,
    pub schema: Arc<StoredSchema>,
}

/// Which version of a subject: a number or the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(u32),
}

impl VersionSpec {
    /// Parses `N`, `latest` or `-1` as the REST API does (42202 otherwise).
    pub fn parse(s: &str) -> Result<VersionSpec, RegistryError> {
        if s.eq_ignore_ascii_case("latest") || s == "-1" {
            return Ok(VersionSpec::Latest);
        }
        match s.parse::<u32>() {
            Ok(n) if (1..=MAX_VERSION).contains(&n) => Ok(VersionSpec::Number(n)),
            _ => Err(RegistryError::InvalidVersion(s.to_string())),
        }
    }

    fn text(self) -> String {
        match self {
            VersionSpec::Latest => "latest".into(),
            VersionSpec::Number(n) => n.to_string(),
        }
    }
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub id: u32,
    pub version: u32,
    /// False when the subject already had this schema.
    pub created: bool,
}

/// The answer to a compatibility check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub compatible: bool,
    /// Confluent's verbose messages (empty when compatible).
    pub messages: Vec<String>,
}

/// What an import of one version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Added,
    Unchanged,
}

// ---- the index file ------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    format: u32,
    next_id: u32,
    /// The global level; absent = BACKWARD, Confluent's default.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "level_text")]
    compatibility: Option<Level>,
    #[serde(default)]
    subjects: BTreeMap<String, SubjectEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectEntry {
    /// The subject's directory under `subjects/`.
    dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "level_text")]
    compatibility: Option<Level>,
    /// Ascending by version.
    #[serde(default)]
    versions: Vec<VersionEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionEntry {
    version: u32,
    id: u32,
    /// Relative to the registry directory.
    file: String,
    #[serde(default, skip_serializing_if = "is_false")]
    deleted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    references: Vec<Reference>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

mod level_text {
    use serde::{Deserialize as _, Deserializer, Serializer};

    use crate::avro::levels::Level;

    pub fn serialize<S: Serializer>(level: &Option<Level>, s: S) -> Result<S::Ok, S::Error> {
        match level {
            Some(l) => s.serialize_str(l.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Level>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| t.parse::<Level>().map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Index {
    fn empty() -> Index {
        Index {
            format: FORMAT,
            next_id: 1,
            compatibility: None,
            subjects: BTreeMap::new(),
        }
    }
}

impl SubjectEntry {
    fn live(&self) -> impl DoubleEndedIterator<Item = &VersionEntry> {
        self.versions.iter().filter(|v| !v.deleted)
    }

    fn find(&self, spec: VersionSpec, include_deleted: bool) -> Option<&VersionEntry> {
        match spec {
            VersionSpec::Latest if include_deleted => self.versions.last(),
            VersionSpec::Latest => self.live().next_back(),
            VersionSpec::Number(n) => self
                .versions
                .iter()
                .find(|v| v.version == n && (include_deleted || !v.deleted)),
        }
    }
}

// ---- in memory -----------------------------------------------------------------------------

#[derive(Debug)]
struct State {
    index: Index,
    /// Every id some version (deleted or not) uses.
    schemas: HashMap<u32, Arc<StoredSchema>>,
    by_key: HashMap<String, u32>,
    by_fingerprint: HashMap<i64, u32>,
    /// The first live subject version using each id (or the first deleted one).
    first_usage: HashMap<u32, (String, u32)>,
}

impl State {
    /// Drops schemas no version uses and rebuilds the lookup maps.
    fn reindex(&mut self) {
        let used: HashSet<u32> = self
            .index
            .subjects
            .values()
            .flat_map(|s| s.versions.iter().map(|v| v.id))
            .collect();
        self.schemas.retain(|id, _| used.contains(id));
        self.by_key.clear();
        self.by_fingerprint.clear();
        let mut ids: Vec<u32> = self.schemas.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let s = &self.schemas[&id];
            self.by_key.entry(s.key.clone()).or_insert(id);
            self.by_fingerprint.entry(s.fingerprint).or_insert(id);
        }
        self.first_usage.clear();
        for deleted in [false, true] {
            for (name, entry) in &self.index.subjects {
                for v in entry.versions.iter().filter(|v| v.deleted == deleted) {
                    self.first_usage
                        .entry(v.id)
                        .or_insert_with(|| (name.clone(), v.version));
                }
            }
        }
    }

    fn subject_version(&self, subject: &str, v: &VersionEntry) -> Option<SubjectVersion> {
        Some(SubjectVersion {
            subject: subject.to_string(),
            version: v.version,
            deleted: v.deleted,
            schema: self.schemas.get(&v.id)?.clone(),
        })
    }

    /// The subject, which must have at least one version (deleted ones count if asked).
    fn subject(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<&SubjectEntry, RegistryError> {
        self.index
            .subjects
            .get(subject)
            .filter(|s| {
                if include_deleted {
                    !s.versions.is_empty()
                } else {
                    s.live().next().is_some()
                }
            })
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))
    }

    fn level(&self, subject: &str) -> Level {
        self.index
            .subjects
            .get(subject)
            .and_then(|s| s.compatibility)
            .or(self.index.compatibility)
            .unwrap_or_default()
    }

    /// Versions whose references name `subject` `version`.
    fn referrers(&self, subject: &str, version: u32, include_deleted: bool) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for (name, entry) in &self.index.subjects {
            for v in &entry.versions {
                if (include_deleted || !v.deleted)
                    && v.references
                        .iter()
                        .any(|r| r.subject == subject && r.version == version)
                {
                    out.push((name.clone(), v.version));
                }
            }
        }
        out
    }

    /// The texts of every schema `references` pulls in, dependencies first. Soft-deleted
    /// versions count only with `include_deleted` (while loading, everything counts).
    fn reference_texts(
        &self,
        references: &[Reference],
        include_deleted: bool,
    ) -> Result<Vec<String>, String> {
        let mut seen = HashSet::new();
        let mut texts = Vec::new();
        for r in references {
            self.visit_reference(r, include_deleted, &mut seen, &mut texts, 0)?;
        }
        Ok(texts)
    }

    fn visit_reference(
        &self,
        r: &Reference,
        include_deleted: bool,
        seen: &mut HashSet<(String, u32)>,
        texts: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), String> {
        if !seen.insert((r.subject.clone(), r.version)) {
            return Ok(());
        }
        if depth > 64 || seen.len() > MAX_REFERENCES {
            return Err("references nest too deeply".into());
        }
        let found = self
            .index
            .subjects
            .get(&r.subject)
            .and_then(|s| s.find(VersionSpec::Number(r.version), include_deleted))
            .and_then(|v| self.schemas.get(&v.id))
            .ok_or_else(|| {
                format!(
                    "reference {} (subject '{}' version {}) is not registered",
                    r.name, r.subject, r.version
                )
            })?;
        for inner in &found.references {
            self.visit_reference(inner, include_deleted, seen, texts, depth + 1)?;
        }
        texts.push(found.text.clone());
        Ok(())
    }
}

/// A schema parsed and checked, ready to be stored.
struct Prepared {
    text: String,
    pretty: String,
    schema: Arc<Schema>,
    references: Vec<Reference>,
    fingerprint: i64,
    key: String,
}

impl Prepared {
    fn stored(&self, id: u32) -> Arc<StoredSchema> {
        Arc::new(StoredSchema {
            id,
            text: self.text.clone(),
            schema: self.schema.clone(),
            references: self.references.clone(),
            fingerprint: self.fingerprint,
            key: self.key.clone(),
        })
    }
}

/// The identity of a schema: its JSON with object keys sorted and no whitespace, plus its
/// references. Unlike the Parsing Canonical Form it keeps defaults, logical types, aliases
/// and docs, so two schemas that decode differently never share an id.
fn identity_key(json: &Json, references: &[Reference]) -> String {
    fn sorted(v: &Json) -> Json {
        match v {
            Json::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Json::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Json::Array(a) => Json::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut key = sorted(json).to_string();
    for r in references {
        key.push('\0');
        key.push_str(&format!("{}\0{}\0{}", r.name, r.subject, r.version));
    }
    key
}

fn prepare(
    text: &str,
    references: &[Reference],
    reference_texts: &[String],
) -> Result<Prepared, RegistryError> {
    let json: Json = serde_json::from_str(text)
        .map_err(|e| RegistryError::InvalidSchema(format!("not valid JSON: {e}")))?;
    let refs: Vec<&str> = reference_texts.iter().map(String::as_str).collect();
    let schema = Schema::parse_with_references(text, &refs)
        .map_err(|e| RegistryError::InvalidSchema(e.to_string()))?;
    if let Some(bad) = schema.invalid_defaults().into_iter().next() {
        return Err(RegistryError::InvalidSchema(bad.to_string()));
    }
    Ok(Prepared {
        text: json_text::compact(text),
        pretty: json_text::pretty(text),
        fingerprint: rabin_fingerprint(&schema),
        schema: Arc::new(schema),
        key: identity_key(&json, references),
        references: references.to_vec(),
    })
}

/// Checks a subject name the way Confluent's 42208 does.
pub fn validate_subject(subject: &str) -> Result<(), RegistryError> {
    if subject.is_empty()
        || subject.len() > MAX_SUBJECT_LEN
        || subject.chars().any(char::is_control)
    {
        return Err(RegistryError::InvalidSubject(subject.to_string()));
    }
    Ok(())
}

/// A readable directory name for a subject: letters, digits, `-`, `_` and inner dots stay,
/// every other byte becomes `%XX`. The index keeps the real name; collisions (including
/// case-insensitive ones) get `~2`, `~3`, ...
impl Index {
    /// The subject's entry, created with a directory name no other subject uses.
    fn subject_entry(&mut self, subject: &str) -> &mut SubjectEntry {
        let taken: HashSet<String> = self
            .subjects
            .values()
            .map(|s| s.dir.to_ascii_lowercase())
            .collect();
        self.subjects
            .entry(subject.to_string())
            .or_insert_with(|| SubjectEntry {
                dir: dir_name(subject, &taken),
                compatibility: None,
                versions: Vec::new(),
            })
    }
}

fn dir_name(subject: &str, taken: &HashSet<String>) -> String {
    let mut base = String::new();
    for (i, b) in subject.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
            base.push(b as char);
        } else {
            base.push_str(&format!("%{b:02X}"));
        }
        if base.len() >= MAX_DIR_LEN {
            break;
        }
    }
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name.to_ascii_lowercase()) {
        name = format!("{base}~{n}");
        n += 1;
    }
    name
}

/// A relative path inside the registry directory, refusing anything that leaves it.
fn inside(dir: &Path, relative: &str) -> Option<PathBuf> {
    let rel = Path::new(relative);
    let ok = !relative.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| dir.join(rel))
}

// ---- atomic files --------------------------------------------------------------------------

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `target` so that a crash leaves the old file or the new one: a temporary
/// file in the same directory, fsync, rename, fsync of the directory.
fn write_atomic(target: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let parent = target
        .parent()
        .ok_or_else(|| RegistryError::store(target, "has no parent directory"))?;
    fs::create_dir_all(parent).map_err(|e| RegistryError::store(parent, e))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(
        ".tmp-{name}-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, target)?;
        sync_dir(parent)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        RegistryError::store(target, e)
    })
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Removes temporary files a crashed writer left in `dir` (not recursive).
fn remove_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            tracing::info!(path = %entry.path().display(), "removing a temporary file left by a crash");
            let _ = fs::remove_file(entry.path());
        }
    }
}

// ---- the store -----------------------------------------------------------------------------

/// A schema registry kept in a directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    state: RwLock<State>,
    /// Serializes writers; `None` when opened read-only.
    writer: Option<Mutex<File>>,
}

impl Store {
    /// Opens (or creates) the registry in `dir` for reading and writing. Fails if another
    /// process has it open for writing.
    pub fn open(dir: &Path) -> Result<Store, RegistryError> {
        let index_path = dir.join(INDEX_FILE);
        if !index_path.exists() {
            Store::init(dir)?;
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| RegistryError::store(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(RegistryError::Locked {
                    dir: dir.to_path_buf(),
                    lock: lock_path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(RegistryError::store(&lock_path, e));
            }
        }
        let state = load(dir)?;
        remove_temporaries(dir);
        for entry in state.index.subjects.values() {
            remove_temporaries(&dir.join("subjects").join(&entry.dir));
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
            writer: Some(Mutex::new(lock)),
        })
    }

    /// Opens an existing registry directory for lookups only (no lock is taken, so a server
    /// may be running on it).
    pub fn open_read_only(dir: &Path) -> Result<Store, RegistryError> {
        if !dir.join(INDEX_FILE).is_file() {
            return Err(RegistryError::store(
                dir,
                format!(
                    "not a registry directory (no {INDEX_FILE}); `meshlens registry serve --dir` creates one"
                ),
            ));
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            state: RwLock::new(load(dir)?),
            writer: None,
        })
    }

    fn init(dir: &Path) -> Result<(), RegistryError> {
        if dir.exists() {
            let mut entries = fs::read_dir(dir).map_err(|e| RegistryError::store(dir, e))?;
            if entries.next().is_some() {
                return Err(RegistryError::store(
                    dir,
                    format!(
                        "is not empty and has no {INDEX_FILE}, so it is not a registry directory; give a new or empty directory"
                    ),
                ));
            }
        }
        fs::create_dir_all(dir.join("subjects")).map_err(|e| RegistryError::store(dir, e))?;
        write_atomic(&dir.join(".gitignore"), b"/.lock\n.tmp-*\n")?;
        write_atomic(&dir.join(INDEX_FILE), &index_bytes(&Index::empty()))?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the writer lock; errors when the store is read-only.
    fn writer(&self) -> Result<MutexGuard<'_, File>, RegistryError> {
        match &self.writer {
            Some(m) => Ok(m.lock().unwrap_or_else(|p| p.into_inner())),
            None => Err(RegistryError::ReadOnly(self.dir.clone())),
        }
    }

    /// Persists `index` (and first the schema files given), then makes it visible.
    fn commit(
        &self,
        index: Index,
        files: &[(String, &str)],
        new_schemas: Vec<Arc<StoredSchema>>,
    ) -> Result<(), RegistryError> {
        for (rel, text) in files {
            let path = inside(&self.dir, rel)
                .ok_or_else(|| RegistryError::store(&self.dir, format!("bad file name {rel}")))?;
            let mut bytes = text.as_bytes().to_vec();
            bytes.push(b'\n');
            write_atomic(&path, &bytes)?;
        }
        write_atomic(&self.dir.join(INDEX_FILE), &index_bytes(&index))?;
        let mut state = self.write();
        state.index = index;
        for s in new_schemas {
            state.schemas.insert(s.id, s);
        }
        state.reindex();
        Ok(())
    }

    fn prepare(&self, text: &str, references: &[Reference]) -> Result<Prepared, RegistryError> {
        let texts = self
            .read()
            .reference_texts(references, false)
            .map_err(RegistryError::InvalidSchema)?;
        prepare(text, references, &texts)
    }

    // ---- reads ----

    /// The schema with this id (whether or not the versions using it are deleted).
    pub fn schema_by_id(&self, id: u32) -> Option<Arc<StoredSchema>> {
        self.read().schemas.get(&id).cloned()
    }

    /// The first schema registered with this CRC-64-AVRO fingerprint.
    pub fn schema_by_fingerprint(&self, fingerprint: i64) -> Option<Arc<StoredSchema>> {
        let state = self.read();
        let id = state.by_fingerprint.get(&fingerprint)?;
        state.schemas.get(id).cloned()
    }

    /// Subjects with at least one live version (or any version, with `include_deleted`).
    pub fn subjects(&self, include_deleted: bool, prefix: &str) -> Vec<String> {
        let state = self.read();
        state
            .index
            .subjects
            .iter()
            .filter(|(name, s)| {
                name.starts_with(prefix)
                    && if include_deleted {
                        !s.versions.is_empty()
                    } else {
                        s.live().next().is_some()
                    }
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let state = self.read();
        let entry = state.subject(subject, include_deleted)?;
        Ok(entry
            .versions
            .iter()
            .filter(|v| include_deleted || !v.deleted)
            .map(|v| v.version)
            .collect())
    }

    pub fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let state = self.read();
        let entry = state.subject(subject, include_deleted)?;
        entry
            .find(spec, include_deleted)
            .and_then(|v| state.subject_version(subject, v))
            .ok_or_else(|| RegistryError::VersionNotFound {
                subject: subject.to_string(),
                version: spec.text(),
            })
    }

    /// Every (subject, version) that uses schema `id`.
    pub fn usages(&self, id: u32, include_deleted: bool) -> Vec<(String, u32)> {
        let state = self.read();
        let mut out = Vec::new();
        for (name, entry) in &state.index.subjects {
            for v in &entry.versions {
                if v.id == id && (include_deleted || !v.deleted) {
                    out.push((name.clone(), v.version));
                }
            }
        }
        out
    }

    /// The subject version that names schema `id` for display: the first live one, else
    /// the first soft-deleted one.
    pub fn first_usage(&self, id: u32) -> Option<(String, u32)> {
        self.read().first_usage.get(&id).cloned()
    }

    /// Every version, subject by subject (only the latest of each, with `latest_only`).
    pub fn all_versions(
        &self,
        prefix: &str,
        include_deleted: bool,
        latest_only: bool,
    ) -> Vec<SubjectVersion> {
        let state = self.read();
        let mut out = Vec::new();
        for (name, entry) in state.index.subjects.range(prefix.to_string()..) {
            if !name.starts_with(prefix) {
                break;
            }
            let chosen: Vec<&VersionEntry> = if latest_only {
                entry
                    .find(VersionSpec::Latest, include_deleted)
                    .into_iter()
                    .collect()
            } else {
                entry
                    .versions
                    .iter()
                    .filter(|v| include_deleted || !v.deleted)
                    .collect()
            };
            out.extend(
                chosen
                    .into_iter()
                    .filter_map(|v| state.subject_version(name, v)),
            );
        }
        out
    }

    /// Ids of the live schemas whose references name this subject version.
    pub fn referenced_by(
        &self,
        subject: &str,
        spec: VersionSpec,
    ) -> Result<Vec<u32>, RegistryError> {
        let version = self.version(subject, spec, false)?.version;
        let state = self.read();
        let mut ids: Vec<u32> = state
            .referrers(subject, version, false)
            .into_iter()
            .filter_map(|(s, v)| {
                state.index.subjects[&s]
                    .find(VersionSpec::Number(v), false)
                    .map(|e| e.id)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Is this schema registered under `subject`? (`POST /subjects/{subject}`)
    pub fn lookup(
        &self,
        subject: &str,
        text: &str,
        references: &[Reference],
        include_deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let prepared = self.prepare(text, references)?;
        let state = self.read();
        let entry = state.subject(subject, include_deleted)?;
        entry
            .versions
            .iter()
            .rev()
            .filter(|v| include_deleted || !v.deleted)
            .find(|v| {
                state
                    .schemas
                    .get(&v.id)
                    .is_some_and(|s| s.key == prepared.key)
            })
            .and_then(|v| state.subject_version(subject, v))
            .ok_or_else(|| RegistryError::SchemaNotFound("Schema not found".into()))
    }

    pub fn global_level(&self) -> Level {
        self.read().index.compatibility.unwrap_or_default()
    }

    /// The subject's own level, if it has one.
    pub fn subject_level(&self, subject: &str) -> Option<Level> {
        self.read()
            .index
            .subjects
            .get(subject)
            .and_then(|s| s.compatibility)
    }

    /// The level a registration under `subject` is checked at.
    pub fn effective_level(&self, subject: &str) -> Level {
        self.read().level(subject)
    }

    /// Checks a schema against one version, or against the versions the subject's level
    /// requires (`spec` = None), without registering it.
    pub fn check(
        &self,
        subject: &str,
        spec: Option<VersionSpec>,
        text: &str,
        references: &[Reference],
    ) -> Result<CheckResult, RegistryError> {
        let prepared = self.prepare(text, references)?;
        let state = self.read();
        let history: Vec<SubjectVersion> = match spec {
            Some(spec) => {
                let entry = state.subject(subject, false)?;
                let v = entry
                    .find(spec, false)
                    .ok_or_else(|| RegistryError::VersionNotFound {
                        subject: subject.to_string(),
                        version: spec.text(),
                    })?;
                state.subject_version(subject, v).into_iter().collect()
            }
            None => match state.index.subjects.get(subject) {
                Some(entry) => entry
                    .live()
                    .filter_map(|v| state.subject_version(subject, v))
                    .collect(),
                None => Vec::new(),
            },
        };
        let level = state.level(subject);
        drop(state);
        let messages = incompatibilities(level, &prepared.schema, &history);
        Ok(CheckResult {
            compatible: messages.is_empty(),
            messages,
        })
    }

    // ---- writes ----

    /// Registers `text` under `subject`: the same schema already live in the subject returns
    /// its version; otherwise the subject's compatibility level is checked (409 on failure)
    /// and a new version is written, with the id the same schema has anywhere in the
    /// registry, or a new one.
    pub fn register(
        &self,
        subject: &str,
        text: &str,
        references: &[Reference],
    ) -> Result<Registered, RegistryError> {
        validate_subject(subject)?;
        let _writer = self.writer()?;
        let prepared = self.prepare(text, references)?;
        let state = self.read();
        if let Some(entry) = state.index.subjects.get(subject) {
            for v in entry.live() {
                if state
                    .schemas
                    .get(&v.id)
                    .is_some_and(|s| s.key == prepared.key)
                {
                    return Ok(Registered {
                        id: v.id,
                        version: v.version,
                        created: false,
                    });
                }
            }
        }
        let history: Vec<SubjectVersion> = state
            .index
            .subjects
            .get(subject)
            .map(|e| {
                e.live()
                    .filter_map(|v| state.subject_version(subject, v))
                    .collect()
            })
            .unwrap_or_default();
        let details = incompatibilities(state.level(subject), &prepared.schema, &history);
        if !details.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                details,
            });
        }
        let mut index = state.index.clone();
        let (id, reused) = match state.by_key.get(&prepared.key) {
            Some(id) => (*id, state.schemas.get(id).cloned()),
            None => {
                let id = index.next_id;
                index.next_id = id
                    .checked_add(1)
                    .ok_or_else(|| RegistryError::store(&self.dir, "schema ids are exhausted"))?;
                (id, None)
            }
        };
        let entry = index.subject_entry(subject);
        let version = entry.versions.last().map_or(1, |v| v.version + 1);
        if version > MAX_VERSION {
            return Err(RegistryError::NotPermitted(format!(
                "subject '{subject}' has no version numbers left"
            )));
        }
        let file = format!("subjects/{}/v{version}.avsc", entry.dir);
        entry.versions.push(VersionEntry {
            version,
            id,
            file: file.clone(),
            deleted: false,
            references: references.to_vec(),
        });
        drop(state);
        let stored = match reused {
            Some(s) => s,
            None => prepared.stored(id),
        };
        self.commit(index, &[(file, &prepared.pretty)], vec![stored])?;
        Ok(Registered {
            id,
            version,
            created: true,
        })
    }

    /// Adds a version with the id and version number it has elsewhere (`registry import`):
    /// no compatibility check, since the history is what it is.
    pub fn import_version(
        &self,
        subject: &str,
        version: u32,
        id: u32,
        text: &str,
        references: &[Reference],
        deleted: bool,
    ) -> Result<Imported, RegistryError> {
        validate_subject(subject)?;
        if version == 0 || version > MAX_VERSION || id == 0 {
            return Err(RegistryError::InvalidVersion(version.to_string()));
        }
        let _writer = self.writer()?;
        let prepared = self.prepare(text, references)?;
        let state = self.read();
        if let Some(existing) = state.schemas.get(&id)
            && existing.key != prepared.key
        {
            return Err(RegistryError::IdConflict(format!(
                "schema id {id} is already a different schema in {}",
                self.dir.display()
            )));
        }
        if let Some(v) = state
            .index
            .subjects
            .get(subject)
            .and_then(|e| e.find(VersionSpec::Number(version), true))
        {
            if v.id == id {
                return Ok(Imported::Unchanged);
            }
            return Err(RegistryError::IdConflict(format!(
                "subject '{subject}' version {version} is already schema id {} in {}",
                v.id,
                self.dir.display()
            )));
        }
        let mut index = state.index.clone();
        index.next_id = index.next_id.max(id.saturating_add(1));
        let entry = index.subject_entry(subject);
        let file = format!("subjects/{}/v{version}.avsc", entry.dir);
        let at = entry.versions.partition_point(|v| v.version < version);
        entry.versions.insert(
            at,
            VersionEntry {
                version,
                id,
                file: file.clone(),
                deleted,
                references: references.to_vec(),
            },
        );
        let stored = state
            .schemas
            .get(&id)
            .cloned()
            .unwrap_or_else(|| prepared.stored(id));
        drop(state);
        self.commit(index, &[(file, &prepared.pretty)], vec![stored])?;
        Ok(Imported::Added)
    }

    /// Deletes every version of a subject: softly (they stay on disk, hidden), or, once soft
    /// deleted, permanently. Returns the versions deleted.
    pub fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let _writer = self.writer()?;
        let state = self.read();
        let entry = state.subject(subject, true)?;
        let mut index = state.index.clone();
        let deleted: Vec<u32>;
        let mut remove_files = Vec::new();
        if permanent {
            if entry.live().next().is_some() {
                return Err(RegistryError::SubjectNotSoftDeleted(subject.to_string()));
            }
            for v in &entry.versions {
                if let Some((s, _)) = state
                    .referrers(subject, v.version, true)
                    .into_iter()
                    .find(|(s, _)| s != subject)
                {
                    tracing::debug!(referrer = %s, "permanent delete refused");
                    return Err(RegistryError::ReferenceExists {
                        subject: subject.to_string(),
                        version: v.version,
                    });
                }
            }
            deleted = entry.versions.iter().map(|v| v.version).collect();
            remove_files.extend(entry.versions.iter().map(|v| v.file.clone()));
            index.subjects.remove(subject);
        } else {
            if entry.live().next().is_none() {
                return Err(RegistryError::SubjectSoftDeleted(subject.to_string()));
            }
            for v in entry.live() {
                if let Some((s, _)) = state
                    .referrers(subject, v.version, false)
                    .into_iter()
                    .find(|(s, _)| s != subject)
                {
                    tracing::debug!(referrer = %s, "soft delete refused");
                    return Err(RegistryError::ReferenceExists {
                        subject: subject.to_string(),
                        version: v.version,
                    });
                }
            }
            deleted = entry.live().map(|v| v.version).collect();
            if let Some(e) = index.subjects.get_mut(subject) {
                for v in &mut e.versions {
                    v.deleted = true;
                }
            }
        }
        let dir = entry.dir.clone();
        drop(state);
        self.commit(index, &[], Vec::new())?;
        self.remove_files(&remove_files, permanent.then_some(&dir));
        Ok(deleted)
    }

    /// Deletes one version, softly or (once soft deleted) permanently.
    pub fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<u32, RegistryError> {
        let _writer = self.writer()?;
        let state = self.read();
        let entry = state.subject(subject, true)?;
        let found = match spec {
            VersionSpec::Latest => entry.find(spec, permanent),
            VersionSpec::Number(_) => entry.find(spec, true),
        };
        let v = found.ok_or_else(|| RegistryError::VersionNotFound {
            subject: subject.to_string(),
            version: spec.text(),
        })?;
        let version = v.version;
        if permanent && !v.deleted {
            return Err(RegistryError::VersionNotSoftDeleted {
                subject: subject.to_string(),
                version,
            });
        }
        if !permanent && v.deleted {
            return Err(RegistryError::VersionSoftDeleted {
                subject: subject.to_string(),
                version,
            });
        }
        if !state.referrers(subject, version, permanent).is_empty() {
            return Err(RegistryError::ReferenceExists {
                subject: subject.to_string(),
                version,
            });
        }
        let file = v.file.clone();
        let dir = entry.dir.clone();
        let mut index = state.index.clone();
        drop(state);
        let e = index
            .subjects
            .get_mut(subject)
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        if permanent {
            e.versions.retain(|x| x.version != version);
            if e.versions.is_empty() && e.compatibility.is_none() {
                index.subjects.remove(subject);
            }
        } else if let Some(x) = e.versions.iter_mut().find(|x| x.version == version) {
            x.deleted = true;
        }
        self.commit(index, &[], Vec::new())?;
        if permanent {
            self.remove_files(&[file], Some(&dir));
        }
        Ok(version)
    }

    /// Best effort: a file left behind is harmless (the index no longer names it).
    fn remove_files(&self, files: &[String], dir: Option<&String>) {
        for f in files {
            if let Some(path) = inside(&self.dir, f)
                && let Err(e) = fs::remove_file(&path)
            {
                tracing::warn!(path = %path.display(), "could not remove: {e}");
            }
        }
        if let Some(d) = dir {
            // Only succeeds when empty, which is what we want.
            let _ = fs::remove_dir(self.dir.join("subjects").join(d));
        }
    }

    /// Sets the global level; returns it.
    pub fn set_global_level(&self, level: Level) -> Result<Level, RegistryError> {
        let _writer = self.writer()?;
        let mut index = self.read().index.clone();
        index.compatibility = Some(level);
        self.commit(index, &[], Vec::new())?;
        Ok(level)
    }

    /// Resets the global level to the default; returns the one it had.
    pub fn delete_global_level(&self) -> Result<Level, RegistryError> {
        let _writer = self.writer()?;
        let mut index = self.read().index.clone();
        let old = index.compatibility.take().unwrap_or_default();
        self.commit(index, &[], Vec::new())?;
        Ok(old)
    }

    /// Sets a subject's own level (the subject need not have versions yet).
    pub fn set_subject_level(&self, subject: &str, level: Level) -> Result<Level, RegistryError> {
        validate_subject(subject)?;
        let _writer = self.writer()?;
        let mut index = self.read().index.clone();
        let taken: HashSet<String> = index
            .subjects
            .values()
            .map(|s| s.dir.to_ascii_lowercase())
            .collect();
        index
            .subjects
            .entry(subject.to_string())
            .or_insert_with(|| SubjectEntry {
                dir: dir_name(subject, &taken),
                compatibility: None,
                versions: Vec::new(),
            })
            .compatibility = Some(level);
        self.commit(index, &[], Vec::new())?;
        Ok(level)
    }

    /// Removes a subject's own level; returns it.
    pub fn delete_subject_level(&self, subject: &str) -> Result<Level, RegistryError> {
        let _writer = self.writer()?;
        let mut index = self.read().index.clone();
        let entry = index
            .subjects
            .get_mut(subject)
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        let old = entry
            .compatibility
            .take()
            .ok_or_else(|| RegistryError::SubjectLevelNotConfigured(subject.to_string()))?;
        if entry.versions.is_empty() {
            index.subjects.remove(subject);
        }
        self.commit(index, &[], Vec::new())?;
        Ok(old)
    }
}

fn index_bytes(index: &Index) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(index).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Checks `new` against `history` (oldest first) and renders what fails the way Confluent's
/// verbose messages do: each problem, then the old version and schema it was found against,
/// then the level.
fn incompatibilities(level: Level, new: &Schema, history: &[SubjectVersion]) -> Vec<String> {
    let olds: Vec<&Schema> = history.iter().map(|v| v.schema.schema.as_ref()).collect();
    let report: LevelReport = check_level(level, new, &olds);
    if report.is_compatible() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < report.violations.len() {
        let old_index = report.violations[i].old_index;
        while i < report.violations.len() && report.violations[i].old_index == old_index {
            let v = &report.violations[i];
            out.push(format!(
                "{{errorType:'{}', description:'{}', additionalInfo:'{}'}}",
                v.incompatibility.kind.as_str(),
                v.description(),
                v.incompatibility.detail
            ));
            i += 1;
        }
        let old = &history[old_index];
        out.push(format!("{{oldSchemaVersion: {}}}", old.version));
        out.push(format!("{{oldSchema: '{}'}}", old.schema.text));
    }
    out.push(format!(
        "{{validateFields: 'false', compatibility: '{}'}}",
        level.as_str()
    ));
    out
}

/// Reads `DIR/index.json` and every schema file it names. Errors name the file.
fn load(dir: &Path) -> Result<State, RegistryError> {
    let index_path = dir.join(INDEX_FILE);
    let bytes = fs::read(&index_path).map_err(|e| RegistryError::store(&index_path, e))?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
        RegistryError::store(
            &index_path,
            format!("damaged registry index: {e}; restore it from version control or a backup"),
        )
    })?;
    let bad = |message: String| RegistryError::store(&index_path, message);
    if index.format != FORMAT {
        return Err(bad(format!(
            "index format {} is not supported (this meshlens reads format {FORMAT})",
            index.format
        )));
    }
    let mut dirs = HashSet::new();
    for (name, entry) in &index.subjects {
        validate_subject(name).map_err(|e| bad(e.to_string()))?;
        if !dirs.insert(entry.dir.to_ascii_lowercase()) || inside(dir, &entry.dir).is_none() {
            return Err(bad(format!(
                "subject '{name}' has a bad or duplicate directory \"{}\"",
                entry.dir
            )));
        }
        let mut last = 0;
        for v in &entry.versions {
            if v.version <= last || v.version > MAX_VERSION || v.id == 0 || v.id >= index.next_id {
                return Err(bad(format!(
                    "subject '{name}' version {} (id {}): versions must ascend and ids be below next_id {}",
                    v.version, v.id, index.next_id
                )));
            }
            last = v.version;
        }
    }
    let mut state = State {
        index,
        schemas: HashMap::new(),
        by_key: HashMap::new(),
        by_fingerprint: HashMap::new(),
        first_usage: HashMap::new(),
    };
    // Schemas with references need the referenced ones first: load in rounds.
    let mut pending: Vec<(String, VersionEntry)> = state
        .index
        .subjects
        .iter()
        .flat_map(|(name, e)| e.versions.iter().map(move |v| (name.clone(), v.clone())))
        .collect();
    let mut texts: HashMap<u32, (String, PathBuf)> = HashMap::new();
    while !pending.is_empty() {
        let before = pending.len();
        let mut later = Vec::new();
        for (subject, v) in pending {
            let ready = v.references.iter().all(|r| {
                state
                    .index
                    .subjects
                    .get(&r.subject)
                    .and_then(|e| e.find(VersionSpec::Number(r.version), true))
                    .is_some_and(|rv| state.schemas.contains_key(&rv.id))
            });
            if !ready {
                later.push((subject, v));
                continue;
            }
            let path = inside(dir, &v.file).ok_or_else(|| {
                bad(format!(
                    "subject '{subject}' version {}: bad file name \"{}\"",
                    v.version, v.file
                ))
            })?;
            let text = fs::read_to_string(&path).map_err(|e| RegistryError::store(&path, e))?;
            let ref_texts = state
                .reference_texts(&v.references, true)
                .map_err(|e| RegistryError::store(&path, e))?;
            let prepared = prepare(&text, &v.references, &ref_texts)
                .map_err(|e| RegistryError::store(&path, e))?;
            match state.schemas.get(&v.id) {
                Some(existing) if existing.key != prepared.key => {
                    let other = &texts[&v.id].1;
                    return Err(RegistryError::store(
                        &path,
                        format!(
                            "schema id {} is also {} but the schemas differ; was a schema file edited by hand?",
                            v.id,
                            other.display()
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    texts.insert(v.id, (prepared.text.clone(), path));
                    state.schemas.insert(v.id, prepared.stored(v.id));
                }
            }
        }
        if later.len() == before {
            let (subject, v) = &later[0];
            return Err(bad(format!(
                "subject '{subject}' version {} refers to a subject version that does not exist (or a cycle)",
                v.version
            )));
        }
        pending = later;
    }
    state.reindex();
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}"#;
    const V2: &str = r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}"#;
    const V2_NO_DEFAULT: &str = r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#;

    fn temp() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("registry");
        (t, dir)
    }

    fn files_under(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(
                        e.path()
                            .strip_prefix(dir)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn layout_reads_well_in_git() {
        let (_t, dir) = temp();
        let store = Store::open(&dir).unwrap();
        store.register("orders-value", V1, &[]).unwrap();
        store.register(":.ctx:Orders/x", V1, &[]).unwrap();
        assert_eq!(
            files_under(&dir),
            [
                ".gitignore",
                ".lock",
                "index.json",
                "subjects/%3A.ctx%3AOrders%2Fx/v1.avsc",
                "subjects/orders-value/v1.avsc"
            ]
        );
        let avsc = fs::read_to_string(dir.join("subjects/orders-value/v1.avsc")).unwrap();
        assert!(avsc.starts_with("{\n  \"type\": \"record\",\n"), "{avsc}");
        let index = fs::read_to_string(dir.join(INDEX_FILE)).unwrap();
        assert!(index.contains("\"next_id\": 2"), "{index}");
        assert!(index.contains("\":.ctx:Orders/x\""), "{index}");
    }

    #[test]
    fn the_same_schema_gets_the_same_id_everywhere_and_ids_survive_reopening() {
        let (_t, dir) = temp();
        {
            let store = Store::open(&dir).unwrap();
            let a = store.register("a", V1, &[]).unwrap();
            assert_eq!((a.id, a.version, a.created), (1, 1, true));
            // Whitespace and key order do not make a new schema.
            let spaced =
                r#"{ "name": "r", "type": "record", "fields": [ {"type":"int", "name":"a"} ] }"#;
            let again = store.register("a", spaced, &[]).unwrap();
            assert_eq!((again.id, again.version, again.created), (1, 1, false));
            assert_eq!(store.register("b", spaced, &[]).unwrap().id, 1);
            assert_eq!(store.register("a", V2, &[]).unwrap().id, 2);
            // A default is part of the schema (the canonical form would drop it).
            let other_default = V2.replace("\"default\":0", "\"default\":1");
            store.set_subject_level("c", Level::None).unwrap();
            store.register("c", V2, &[]).unwrap();
            assert_eq!(store.register("c", &other_default, &[]).unwrap().id, 3);
        }
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.register("d", V2, &[]).unwrap().id, 2);
        assert_eq!(
            store.register("d", "\"string\"", &[]).unwrap_err().status(),
            409
        );
        store.set_global_level(Level::None).unwrap();
        assert_eq!(store.register("d", "\"string\"", &[]).unwrap().id, 4);
        assert_eq!(
            store
                .version("a", VersionSpec::Latest, false)
                .unwrap()
                .version,
            2
        );
        assert_eq!(store.schema_by_id(1).unwrap().text, V1);
        assert_eq!(store.subject_level("c"), Some(Level::None));
        assert_eq!(store.global_level(), Level::None);
    }

    #[test]
    fn levels_decide_registrations() {
        let (_t, dir) = temp();
        let store = Store::open(&dir).unwrap();
        store.register("s", V1, &[]).unwrap();
        let err = store.register("s", V2_NO_DEFAULT, &[]).unwrap_err();
        match &err {
            RegistryError::Incompatible { details, .. } => {
                assert!(details[0].starts_with("{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE'"));
                assert_eq!(details[1], "{oldSchemaVersion: 1}");
            }
            other => panic!("{other}"),
        }
        assert_eq!(err.code(), 409);
        store.set_subject_level("s", Level::Forward).unwrap();
        assert_eq!(store.register("s", V2_NO_DEFAULT, &[]).unwrap().version, 2);
        // FORWARD_TRANSITIVE: v1 cannot read data of a schema that drops a, nor can v2.
        store
            .set_subject_level("s", Level::ForwardTransitive)
            .unwrap();
        let dropped = r#"{"type":"record","name":"r","fields":[{"name":"b","type":"int"}]}"#;
        let check = store.check("s", None, dropped, &[]).unwrap();
        assert!(!check.compatible);
        let versions: Vec<&String> = check
            .messages
            .iter()
            .filter(|m| m.starts_with("{oldSchemaVersion"))
            .collect();
        assert_eq!(versions, ["{oldSchemaVersion: 2}", "{oldSchemaVersion: 1}"]);
        assert!(
            store
                .check("s", Some(VersionSpec::Number(1)), V2, &[])
                .unwrap()
                .compatible
        );
        assert_eq!(
            store.delete_subject_level("s").unwrap(),
            Level::ForwardTransitive
        );
        assert_eq!(store.effective_level("s"), Level::Backward);
        assert!(matches!(
            store.delete_subject_level("s"),
            Err(RegistryError::SubjectLevelNotConfigured(_))
        ));
    }

    #[test]
    fn soft_then_permanent_delete() {
        let (_t, dir) = temp();
        let store = Store::open(&dir).unwrap();
        store.register("s", V1, &[]).unwrap();
        store.register("s", V2, &[]).unwrap();
        // Versions: permanent needs a soft delete first.
        assert_eq!(
            store
                .delete_version("s", VersionSpec::Number(2), true)
                .unwrap_err()
                .code(),
            40407
        );
        assert_eq!(
            store
                .delete_version("s", VersionSpec::Latest, false)
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .delete_version("s", VersionSpec::Number(2), false)
                .unwrap_err()
                .code(),
            40406
        );
        assert_eq!(store.versions("s", false).unwrap(), [1]);
        assert_eq!(store.versions("s", true).unwrap(), [1, 2]);
        // A soft-deleted schema still answers by id.
        assert!(store.schema_by_id(2).is_some());
        assert_eq!(
            store
                .delete_version("s", VersionSpec::Number(2), true)
                .unwrap(),
            2
        );
        assert!(!dir.join("subjects/s/v2.avsc").exists());
        assert!(store.schema_by_id(2).is_none());
        // Subjects.
        assert_eq!(store.delete_subject("s", true).unwrap_err().code(), 40405);
        assert_eq!(store.delete_subject("s", false).unwrap(), [1]);
        assert_eq!(store.delete_subject("s", false).unwrap_err().code(), 40404);
        assert!(store.subjects(false, "").is_empty());
        assert_eq!(store.subjects(true, ""), ["s"]);
        assert_eq!(store.versions("s", false).unwrap_err().code(), 40401);
        // Registering again after a soft delete makes a new version with the old id (version
        // 2 was deleted permanently, so its number is free again, as in Confluent).
        let again = store.register("s", V1, &[]).unwrap();
        assert_eq!((again.id, again.version), (1, 2));
        store.delete_subject("s", false).unwrap();
        assert_eq!(store.delete_subject("s", true).unwrap(), [1, 2]);
        assert!(!dir.join("subjects/s").exists());
        drop(store);
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.delete_subject("s", false).unwrap_err().code(), 40401);
        // Ids are never reused.
        assert_eq!(store.register("t", "\"int\"", &[]).unwrap().id, 3);
    }

    #[test]
    fn an_id_is_named_by_its_first_live_usage() {
        let (_t, dir) = temp();
        let store = Store::open(&dir).unwrap();
        store.register("a", V1, &[]).unwrap();
        store.register("b", V1, &[]).unwrap();
        assert_eq!(store.first_usage(1), Some(("a".into(), 1)));
        store.delete_subject("a", false).unwrap();
        assert_eq!(store.first_usage(1), Some(("b".into(), 1)));
        store.delete_subject("b", false).unwrap();
        assert_eq!(store.first_usage(1), Some(("a".into(), 1)));
        assert_eq!(store.first_usage(2), None);
    }

    #[test]
    fn writes_are_atomic_and_crash_leftovers_are_harmless() {
        let (_t, dir) = temp();
        {
            let store = Store::open(&dir).unwrap();
            store.register("s", V1, &[]).unwrap();
        }
        // A writer that died mid-way left a temporary index and a schema file the index does
        // not name: the registry opens as it was and cleans the temporary file up.
        fs::write(dir.join(".tmp-index.json-1-0"), b"{\"format\": 1, \"next_").unwrap();
        fs::write(dir.join("subjects/s/v2.avsc"), b"\"int\"\n").unwrap();
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.versions("s", true).unwrap(), [1]);
        assert!(!dir.join(".tmp-index.json-1-0").exists());
        // The orphan is overwritten by the next version 2.
        assert_eq!(store.register("s", V2, &[]).unwrap().version, 2);
        let v2 = fs::read_to_string(dir.join("subjects/s/v2.avsc")).unwrap();
        assert!(v2.contains("\"default\": 0"), "{v2}");
        assert!(files_under(&dir).iter().all(|f| !f.contains(".tmp-")));
    }

    #[test]
    fn a_damaged_index_is_a_one_line_error_naming_the_file() {
        let (_t, dir) = temp();
        drop(Store::open(&dir).unwrap());
        fs::write(dir.join(INDEX_FILE), b"{\"format\": 1, \"next_id\": ").unwrap();
        let err = Store::open(&dir).unwrap_err().to_string();
        assert!(err.contains("index.json: damaged registry index"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        // A schema file edited into something else is named too.
        let (_t2, dir) = temp();
        Store::open(&dir).unwrap().register("s", V1, &[]).unwrap();
        fs::write(dir.join("subjects/s/v1.avsc"), b"{\"type\": \"nope\"}").unwrap();
        let err = Store::open(&dir).unwrap_err().to_string();
        assert!(err.contains("v1.avsc"), "{err}");
    }

    #[test]
    fn a_non_registry_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("notes.txt"), b"hi").unwrap();
        let err = Store::open(t.path()).unwrap_err().to_string();
        assert!(err.contains("not a registry directory"), "{err}");
        assert!(Store::open_read_only(t.path()).is_err());
    }

    #[test]
    fn one_writer_process_per_directory_and_read_only_readers() {
        let (_t, dir) = temp();
        let store = Store::open(&dir).unwrap();
        store.register("s", V1, &[]).unwrap();
        let err = Store::open(&dir).unwrap_err();
        assert!(matches!(err, RegistryError::Locked { .. }), "{err}");
        let reader = Store::open_read_only(&dir).unwrap();
        assert_eq!(reader.schema_by_id(1).unwrap().text, V1);
        assert_eq!(reader.register("t", V1, &[]).unwrap_err().code(), 42205);
        drop(store);
        assert!(Store::open(&dir).is_ok());
    }

    #[test]
    fn concurrent_writers_are_serialized() {
        let (_t, dir) = temp();
        let store = Arc::new(Store::open(&dir).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        // Distinct schemas across threads; the same one twice per thread.
                        let schema =
                            format!(r#"{{"type":"fixed","name":"f{t}_{i}","size":{}}}"#, i + 1);
                        let a = store.register(&format!("s{t}-{i}"), &schema, &[]).unwrap();
                        let b = store
                            .register(&format!("s{t}-{i}-copy"), &schema, &[])
                            .unwrap();
                        assert_eq!(a.id, b.id);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut ids: Vec<u32> = store
            .all_versions("", false, false)
            .iter()
            .map(|v| v.schema.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids, (1..=80).collect::<Vec<u32>>());
        drop(store);
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.subjects(false, "").len(), 160);
        assert_eq!(store.register("new", "\"int\"", &[]).unwrap().id, 81);
    }

    #[test]
    fn invalid_schemas_and_subjects() {
        let (_t, dir) = temp();
        let store = Store::open(&dir).unwrap();
        for bad in [
            "{",
            "{\"type\":\"recrod\"}",
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int","default":"x"}]}"#,
        ] {
            let e = store.register("s", bad, &[]).unwrap_err();
            assert_eq!(e.code(), 42201, "{bad}: {e}");
        }
        assert_eq!(store.register("", V1, &[]).unwrap_err().code(), 42208);
        assert_eq!(store.register("a\nb", V1, &[]).unwrap_err().code(), 42208);
    }

    #[test]
    fn import_keeps_ids_and_versions() {
        let (_t, dir) = temp();
        let store = Store::open(&dir).unwrap();
        assert_eq!(
            store.import_version("s", 3, 40, V1, &[], false).unwrap(),
            Imported::Added
        );
        assert_eq!(
            store.import_version("s", 3, 40, V1, &[], false).unwrap(),
            Imported::Unchanged
        );
        assert_eq!(
            store.import_version("s", 1, 7, V2, &[], true).unwrap(),
            Imported::Added
        );
        assert_eq!(store.versions("s", true).unwrap(), [1, 3]);
        assert_eq!(
            store
                .import_version("t", 1, 40, V2, &[], false)
                .unwrap_err()
                .code(),
            42207
        );
        assert_eq!(store.register("u", "\"int\"", &[]).unwrap().id, 41);
        assert_eq!(store.register("s", V1, &[]).unwrap().version, 3);
    }

    #[test]
    fn dir_names_are_readable_and_distinct() {
        let mut taken = HashSet::new();
        assert_eq!(dir_name("orders-value", &taken), "orders-value");
        assert_eq!(dir_name("com.acme.Order", &taken), "com.acme.Order");
        assert_eq!(dir_name("..", &taken), "%2E.");
        assert_eq!(dir_name("a b/c", &taken), "a%20b%2Fc");
        taken.insert("orders".to_string());
        assert_eq!(dir_name("Orders", &taken), "Orders~2");
        assert!(dir_name(&"x".repeat(500), &HashSet::new()).len() <= MAX_DIR_LEN);
        assert!(inside(Path::new("/r"), "../etc").is_none());
        assert!(inside(Path::new("/r"), "/etc").is_none());
        assert!(inside(Path::new("/r"), "subjects/a/v1.avsc").is_some());
    }
}
