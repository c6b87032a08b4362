//! Keeps a snapshot of a schema registry's subjects and versions for the app: a worker thread
//! polls a Confluent-compatible URL or a registry directory every few seconds and sends a
//! new snapshot only when a version appeared or went away, so an idle registry costs the UI
//! nothing. Versions never change their schema, so each is fetched once per target.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use super::sandbox::Waker;
use crate::avro::{Schema, rabin_fingerprint};
use crate::registry::{Auth, RegistryClient, Store, is_url};

/// More subjects than this are not listed (a note says so).
pub const MAX_SUBJECTS: usize = 500;
/// Only the newest this many versions of a subject are loaded.
pub const MAX_VERSIONS: usize = 100;

/// Where the schemas come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Url(String),
    Dir(PathBuf),
}

impl Target {
    /// `http(s)://…` is a registry URL, anything else a registry directory.
    pub fn parse(spec: &str) -> Result<Target, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err("give a registry URL (http://host:port) or a registry directory".into());
        }
        Ok(if is_url(spec) {
            Target::Url(spec.to_string())
        } else {
            Target::Dir(PathBuf::from(spec))
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Url(u) => f.write_str(u),
            Target::Dir(d) => write!(f, "{}", d.display()),
        }
    }
}

/// One registered version of a subject.
#[derive(Debug)]
pub struct VersionInfo {
    pub version: u32,
    pub id: u32,
    /// The schema text, pretty-printed.
    pub text: String,
    /// The parsed schema, or why it does not parse (e.g. a Protobuf subject).
    pub schema: Result<Arc<Schema>, String>,
    /// CRC-64-AVRO of the canonical form, when it parsed.
    pub fingerprint: Option<i64>,
}

#[derive(Debug, Default)]
pub struct Snapshot {
    pub source: String,
    /// Subject → its versions, oldest first.
    pub subjects: BTreeMap<String, Vec<Arc<VersionInfo>>>,
    /// Subjects left out by `MAX_SUBJECTS`.
    pub left_out: usize,
}

impl Snapshot {
    pub fn version(&self, subject: &str, version: u32) -> Option<&Arc<VersionInfo>> {
        self.subjects
            .get(subject)?
            .iter()
            .find(|v| v.version == version)
    }
}

#[derive(Debug, Clone)]
pub enum Update {
    Loaded(Arc<Snapshot>),
    Failed { source: String, error: String },
}

/// A running watch; dropping it lets the worker end after its current poll.
pub struct RegistryWatch {
    commands: Sender<Target>,
    updates: Receiver<Update>,
}

impl RegistryWatch {
    /// Starts polling `target` every `every`; `waker` is called after each update is queued.
    pub fn start(target: Target, every: Duration, waker: Waker) -> Result<RegistryWatch, String> {
        let (commands, inbox) = channel();
        let (outbox, updates) = channel();
        std::thread::Builder::new()
            .name("registry-watch".into())
            .spawn(move || watch(target, every, inbox, outbox, waker))
            .map_err(|e| format!("cannot start the registry watcher: {e}"))?;
        Ok(RegistryWatch { commands, updates })
    }

    /// Switches to another registry; it is loaded at once.
    pub fn point(&self, target: Target) {
        let _ = self.commands.send(target);
    }

    pub fn try_recv(&self) -> Option<Update> {
        self.updates.try_recv().ok()
    }
}

fn watch(
    mut target: Target,
    every: Duration,
    inbox: Receiver<Target>,
    outbox: Sender<Update>,
    waker: Waker,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = outbox.send(Update::Failed {
                source: target.to_string(),
                error: format!("cannot start the async runtime: {e}"),
            });
            waker();
            return;
        }
    };
    let mut loader = Loader::new(&target);
    let mut last: Option<Result<Vec<VersionKey>, String>> = None;
    loop {
        let update = match loader.load(&runtime) {
            Ok(snapshot) => {
                let keys = Ok(keys(&snapshot));
                (last.as_ref() != Some(&keys)).then(|| {
                    last = Some(keys);
                    Update::Loaded(Arc::new(snapshot))
                })
            }
            Err(error) => (last.as_ref() != Some(&Err(error.clone()))).then(|| {
                last = Some(Err(error.clone()));
                Update::Failed {
                    source: target.to_string(),
                    error,
                }
            }),
        };
        if let Some(update) = update {
            if outbox.send(update).is_err() {
                return;
            }
            waker();
        }
        match inbox.recv_timeout(every) {
            Ok(next) => {
                target = next;
                loader = Loader::new(&target);
                last = None;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// (subject, version, id): what tells one snapshot from the next.
type VersionKey = (String, u32, u32);

fn keys(s: &Snapshot) -> Vec<VersionKey> {
    s.subjects
        .iter()
        .flat_map(|(name, vs)| vs.iter().map(|v| (name.clone(), v.version, v.id)))
        .collect()
}

/// Loads snapshots of one target, remembering the versions already fetched.
struct Loader {
    target: Target,
    client: Option<Result<RegistryClient, String>>,
    fetched: HashMap<(String, u32), Arc<VersionInfo>>,
}

impl Loader {
    fn new(target: &Target) -> Loader {
        Loader {
            target: target.clone(),
            client: None,
            fetched: HashMap::new(),
        }
    }

    fn load(&mut self, runtime: &tokio::runtime::Runtime) -> Result<Snapshot, String> {
        match self.target.clone() {
            Target::Dir(dir) => self.load_dir(&dir),
            Target::Url(url) => {
                let client = self
                    .client
                    .get_or_insert_with(|| {
                        RegistryClient::new(&url, Auth::None).map_err(|e| e.to_string())
                    })
                    .as_ref()
                    .map_err(Clone::clone)?;
                let mut fetched = std::mem::take(&mut self.fetched);
                let result = runtime.block_on(load_url(client, &mut fetched));
                self.fetched = fetched;
                result
            }
        }
    }

    fn load_dir(&mut self, dir: &std::path::Path) -> Result<Snapshot, String> {
        let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
        let names = store.subjects(false, "");
        let mut snapshot = Snapshot {
            source: dir.display().to_string(),
            left_out: names.len().saturating_sub(MAX_SUBJECTS),
            ..Snapshot::default()
        };
        for name in names.into_iter().take(MAX_SUBJECTS) {
            // A prefix query: "orders" also lists "orders-v2".
            let mut versions = store.all_versions(&name, false, false);
            versions.retain(|v| v.subject == name);
            let skip = versions.len().saturating_sub(MAX_VERSIONS);
            let list = versions
                .into_iter()
                .skip(skip)
                .map(|v| {
                    let s = &v.schema;
                    Arc::new(VersionInfo {
                        version: v.version,
                        id: s.id,
                        text: pretty(&s.text),
                        schema: Ok(s.schema.clone()),
                        fingerprint: Some(s.fingerprint),
                    })
                })
                .collect();
            snapshot.subjects.insert(name, list);
        }
        Ok(snapshot)
    }
}

async fn load_url(
    client: &RegistryClient,
    fetched: &mut HashMap<(String, u32), Arc<VersionInfo>>,
) -> Result<Snapshot, String> {
    let mut names = client.subjects(false).await.map_err(|e| e.to_string())?;
    names.sort();
    let mut snapshot = Snapshot {
        source: client.url().to_string(),
        left_out: names.len().saturating_sub(MAX_SUBJECTS),
        ..Snapshot::default()
    };
    for name in names.into_iter().take(MAX_SUBJECTS) {
        let mut versions = client
            .versions(&name, false)
            .await
            .map_err(|e| e.to_string())?;
        versions.sort_unstable();
        let skip = versions.len().saturating_sub(MAX_VERSIONS);
        let mut list = Vec::new();
        for v in versions.into_iter().skip(skip) {
            let key = (name.clone(), v);
            if let Some(info) = fetched.get(&key) {
                list.push(info.clone());
                continue;
            }
            let raw = match client.raw_version(&name, Some(v), false).await {
                Ok(raw) => raw,
                // Deleted between the listing and now.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.to_string()),
            };
            let schema = if raw.schema_type.as_deref().is_some_and(|t| t != "AVRO") {
                Err(format!(
                    "a {} schema; only Avro is shown",
                    raw.schema_type.unwrap_or_default()
                ))
            } else {
                let refs = client
                    .reference_texts(&raw.references)
                    .await
                    .map_err(|e| e.to_string())?;
                let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
                Schema::parse_with_references(&raw.schema, &refs)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            };
            let info = Arc::new(VersionInfo {
                version: v,
                id: raw.id,
                text: pretty(&raw.schema),
                fingerprint: schema.as_ref().ok().map(|s| rabin_fingerprint(s)),
                schema,
            });
            fetched.insert(key, info.clone());
            list.push(info);
        }
        snapshot.subjects.insert(name, list);
    }
    Ok(snapshot)
}

/// The schema JSON indented, or as it came when it is not JSON.
fn pretty(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|j| serde_json::to_string_pretty(&j).ok())
        .unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_is_a_url_or_a_directory() {
        assert_eq!(
            Target::parse(" http://127.0.0.1:8081 "),
            Ok(Target::Url("http://127.0.0.1:8081".into()))
        );
        assert_eq!(
            Target::parse("registry"),
            Ok(Target::Dir(PathBuf::from("registry")))
        );
        assert!(Target::parse("  ").unwrap_err().contains("registry URL"));
    }

    #[test]
    fn a_directory_registry_is_loaded_and_a_missing_one_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .register("s", r#"{"type":"record","name":"r","fields":[]}"#, &[])
            .unwrap();
        drop(store);
        let mut loader = Loader::new(&Target::Dir(dir.path().to_path_buf()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let snapshot = loader.load(&rt).unwrap();
        let v1 = snapshot.version("s", 1).unwrap();
        assert_eq!(v1.id, 1);
        assert!(v1.text.contains("\n  \"name\": \"r\""), "{}", v1.text);
        assert!(v1.schema.is_ok() && v1.fingerprint.is_some());

        let mut missing = Loader::new(&Target::Dir(dir.path().join("nope")));
        let error = missing.load(&rt).unwrap_err();
        assert!(error.contains("not a registry directory"), "{error}");
    }
}
