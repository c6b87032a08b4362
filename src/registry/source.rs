//! `SchemaSource` for the directory store and for a remote registry, so `PayloadDecoder`
//! resolves Confluent ids, CRC-64-AVRO fingerprints and subject references through either
//! (and Confluent V1 GUIDs through a remote registry; the directory store assigns none).

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::client::{RegistryClient, RemoteSchema};
use super::store::{Store, StoredSchema, VersionSpec};
use crate::avro::framing::SchemaRef;
use crate::avro::payload::{KnownSchema, SchemaSource};

/// Looks schemas up in a directory store (in memory, no I/O).
#[derive(Debug, Clone)]
pub struct StoreSource {
    store: Arc<Store>,
}

impl StoreSource {
    pub fn new(store: Arc<Store>) -> StoreSource {
        StoreSource { store }
    }

    /// A schema, named by the first live subject version that uses it (or any, if all are
    /// deleted).
    fn known(&self, s: &StoredSchema) -> KnownSchema {
        known(
            s.schema.clone(),
            s.fingerprint,
            s.id,
            self.store.first_usage(s.id),
        )
    }
}

fn known(
    schema: Arc<crate::avro::Schema>,
    fingerprint: i64,
    id: u32,
    usage: Option<(String, u32)>,
) -> KnownSchema {
    let (subject, version) = match usage {
        Some((s, v)) => (Some(s), Some(v)),
        None => (None, None),
    };
    KnownSchema {
        schema,
        fingerprint,
        subject,
        version,
        id: Some(id),
    }
}

impl SchemaSource for StoreSource {
    fn lookup(&self, reference: &SchemaRef) -> Result<Option<KnownSchema>, String> {
        Ok(match reference {
            SchemaRef::ConfluentId(id) => self.store.schema_by_id(*id).map(|s| self.known(&s)),
            SchemaRef::Fingerprint(fp) => self
                .store
                .schema_by_fingerprint(*fp)
                .map(|s| self.known(&s)),
            SchemaRef::Subject { subject, version } => {
                let spec = version.map_or(VersionSpec::Latest, VersionSpec::Number);
                self.store.version(subject, spec, false).ok().map(|v| {
                    known(
                        v.schema.schema.clone(),
                        v.schema.fingerprint,
                        v.schema.id,
                        Some((v.subject, v.version)),
                    )
                })
            }
            _ => None,
        })
    }

    fn versions(&self, subject: &str) -> Result<Vec<KnownSchema>, String> {
        let numbers = match self.store.versions(subject, false) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        Ok(numbers
            .into_iter()
            .filter_map(|n| {
                self.store
                    .version(subject, VersionSpec::Number(n), false)
                    .ok()
            })
            .map(|v| {
                known(
                    v.schema.schema.clone(),
                    v.schema.fingerprint,
                    v.schema.id,
                    Some((v.subject, v.version)),
                )
            })
            .collect())
    }
}

/// Looks schemas up in a remote registry through its client's cache. `PayloadDecoder` is
/// synchronous, so a cache miss waits for the request on `runtime` (a multi-thread tokio
/// runtime that the caller keeps alive). Called on one of that runtime's own worker threads
/// it steps aside with `block_in_place`; called under a current-thread runtime (from its
/// blocking pool), it waits on a helper thread when `runtime` is a multi-thread runtime of its
/// own, and otherwise reports an error instead of deadlocking.
#[derive(Debug, Clone)]
pub struct ClientSource {
    client: Arc<RegistryClient>,
    runtime: Handle,
}

impl ClientSource {
    pub fn new(client: Arc<RegistryClient>, runtime: Handle) -> ClientSource {
        ClientSource { client, runtime }
    }

    fn wait<F>(&self, f: F) -> Result<F::Output, String>
    where
        F: Future + Send,
        F::Output: Send,
    {
        match Handle::try_current() {
            Err(_) => Ok(self.runtime.block_on(f)),
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                Ok(tokio::task::block_in_place(|| self.runtime.block_on(f)))
            }
            // Under a current-thread runtime (a one-thread sidecar's blocking pool): wait
            // from a thread outside any runtime — possible only when `runtime` is another,
            // multi-thread runtime; the current-thread one may be the very thread waiting.
            Ok(_) if self.runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
                std::thread::scope(|s| {
                    s.spawn(|| self.runtime.block_on(f))
                        .join()
                        .map_err(|_| "the registry lookup failed".to_string())
                })
            }
            Ok(_) => Err(
                "a registry lookup cannot wait on a current-thread tokio runtime; give the source a multi-thread runtime of its own".into(),
            ),
        }
    }

    fn known(s: &RemoteSchema, usage: Option<(String, u32)>) -> KnownSchema {
        let mut k = known(
            s.schema.clone(),
            s.fingerprint,
            s.id,
            usage.or_else(|| s.usages.first().cloned()),
        );
        if s.id == 0 {
            k.id = None;
        }
        k
    }
}

impl SchemaSource for ClientSource {
    fn lookup(&self, reference: &SchemaRef) -> Result<Option<KnownSchema>, String> {
        let c = &self.client;
        match reference {
            SchemaRef::ConfluentId(id) => {
                if let Some(s) = c.cached_id(*id) {
                    return Ok(Some(Self::known(&s, None)));
                }
                let found = self.wait(c.schema_by_id(*id))?.map_err(|e| e.to_string())?;
                Ok(found.map(|s| Self::known(&s, None)))
            }
            SchemaRef::Guid(guid) => {
                if let Some(s) = c.cached_guid(guid) {
                    return Ok(Some(Self::known(&s, None)));
                }
                let found = self
                    .wait(c.schema_by_guid(guid))?
                    .map_err(|e| e.to_string())?;
                Ok(found.map(|s| Self::known(&s, None)))
            }
            SchemaRef::Fingerprint(fp) => {
                if let Some(s) = c.cached_fingerprint(*fp) {
                    return Ok(Some(Self::known(&s, None)));
                }
                let found = self
                    .wait(c.schema_by_fingerprint(*fp))?
                    .map_err(|e| e.to_string())?;
                Ok(found.map(|s| Self::known(&s, None)))
            }
            SchemaRef::Subject { subject, version } => {
                let found = self
                    .wait(c.subject_version(subject, *version))?
                    .map_err(|e| e.to_string())?;
                Ok(found.map(|(v, s)| Self::known(&s, Some((subject.clone(), v)))))
            }
            _ => Ok(None),
        }
    }

    /// The version list is asked for each time (callers cache it for as long as they can
    /// tolerate missing a new registration); each version's schema comes from the client's
    /// cache, so only versions not seen before cost a request.
    fn versions(&self, subject: &str) -> Result<Vec<KnownSchema>, String> {
        let c = &self.client;
        let numbers = match self.wait(c.versions(subject, false))? {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        let mut out = Vec::with_capacity(numbers.len());
        for n in numbers {
            // Deleted between the two requests: skip it, as the registry now does.
            if let Some((v, s)) = self
                .wait(c.subject_version(subject, Some(n)))?
                .map_err(|e| e.to_string())?
            {
                out.push(Self::known(&s, Some((subject.to_string(), v))));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::{PayloadDecoder, SniffOptions, Value};

    #[test]
    fn store_source_resolves_ids_fingerprints_and_subjects() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        store
            .register("greetings-value", "\"string\"", &[])
            .unwrap();
        let source = StoreSource::new(store.clone());
        let by_id = source.lookup(&SchemaRef::ConfluentId(1)).unwrap().unwrap();
        assert_eq!(by_id.subject.as_deref(), Some("greetings-value"));
        assert_eq!(by_id.version, Some(1));
        let fp = by_id.fingerprint;
        assert!(
            source
                .lookup(&SchemaRef::Fingerprint(fp))
                .unwrap()
                .is_some()
        );
        let subject = SchemaRef::Subject {
            subject: "greetings-value".into(),
            version: None,
        };
        assert_eq!(source.lookup(&subject).unwrap().unwrap().id, Some(1));
        assert!(source.lookup(&SchemaRef::ConfluentId(2)).unwrap().is_none());
        store.register("greetings-value", "\"bytes\"", &[]).unwrap();
        let versions = source.versions("greetings-value").unwrap();
        let listed: Vec<_> = versions.iter().map(|k| (k.version, k.id)).collect();
        assert_eq!(listed, [(Some(1), Some(1)), (Some(2), Some(2))]);
        assert!(source.versions("nobody-value").unwrap().is_empty());

        let decoder = PayloadDecoder::new(SniffOptions::default()).with_source(Box::new(source));
        let out = decoder
            .decode(&[0, 0, 0, 0, 1, 0x04, b'h', b'i'], &[])
            .unwrap();
        assert_eq!(out.values, vec![Value::String("hi".into())]);
        assert_eq!(out.writer.version, Some(1));
    }

    #[test]
    fn client_source_refuses_to_block_a_current_thread_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client =
            Arc::new(RegistryClient::new("http://127.0.0.1:9", Default::default()).unwrap());
        let source = ClientSource::new(client, rt.handle().clone());
        let err = rt.block_on(async { source.lookup(&SchemaRef::ConfluentId(1)) });
        assert!(err.unwrap_err().contains("current-thread"));
    }

    #[test]
    fn client_source_waits_on_its_own_runtime_under_a_current_thread_one() {
        let own = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Port 9 (discard) refuses: the lookup is answered, as an error, instead of hanging.
        let client =
            Arc::new(RegistryClient::new("http://127.0.0.1:9", Default::default()).unwrap());
        let source = ClientSource::new(client, own.handle().clone());
        let answer = rt.block_on(async {
            tokio::task::spawn_blocking(move || source.lookup(&SchemaRef::ConfluentId(1)))
                .await
                .unwrap()
        });
        let err = answer.unwrap_err();
        assert!(!err.contains("current-thread"), "{err}");
    }
}
