//! The in-process cluster: a CA and an identity per workload replica, the schema registry,
//! and for each replica its simulated app and its sidecar, all on loopback — each replica on
//! its own 127.0.0.x address, as a pod has its own IP. Brings it up, says where everything
//! listens (the ready file), runs scenario steps, and shuts it all down.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::Mutex;

use super::app::{App, AppSetup, Catalog, Control, Egress};
use super::error::{Result, SandboxError, io};
use super::manifest::{Manifest, WorkloadSpec};
use crate::avro::Schema;
use crate::identity::{Ca, ControlPlane, IdentityName, Leaf, LeafPolicy};
use crate::proxy::config::{
    AdminConfig, Destination, IdentityFiles, InboundConfig, InspectionLimits, OutboundConfig,
    PolicyFiles, ProxyConfig, Timeouts,
};
use crate::proxy::sidecar::{Addrs, Sidecar};
use crate::registry::Store;
use crate::tap::Publisher;
use crate::tap::server::operator_identity;

/// How a run is driven.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seeds every payload, latency and status draw.
    pub seed: u64,
    /// Whether `Cluster::play` runs the timed steps (off: steps run only on demand).
    pub scenario: bool,
    /// Scenario times are divided by this (2.0 plays a two-minute scenario in one).
    pub time_scale: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            scenario: true,
            time_scale: 1.0,
        }
    }
}

/// The ready file: where the registry and every proxy listen, and an identity that may tap.
#[derive(Debug, Clone, Serialize)]
pub struct Ready {
    pub registry: String,
    pub tap: TapCredentials,
    pub workloads: Vec<ReadyWorkload>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TapCredentials {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadyWorkload {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub admin: String,
    pub inbound: String,
    pub outbound: String,
}

/// One replica of a workload: its address, identity, sidecar and app.
pub(super) struct Instance {
    pub spec: Arc<WorkloadSpec>,
    pub replica: u32,
    pub ip: Ipv4Addr,
    pub identity: Option<IdentityName>,
    /// Sidecar config with the addresses it first bound, so a restart comes back there.
    pub config: Option<ProxyConfig>,
    pub addrs: Option<Addrs>,
    pub sidecar: Option<Sidecar>,
    pub app: Option<App>,
    pub app_listen: Option<SocketAddr>,
    pub egress: Egress,
    pub control: Arc<Control>,
    /// The sidecar's own tap: its admin port streams only what this replica's proxy saw.
    pub tap: Publisher,
}

impl Instance {
    pub fn label(&self) -> String {
        format!("{}/{}", self.spec.key(), self.replica)
    }

    pub fn running(&self) -> bool {
        self.app.is_some() || self.sidecar.is_some()
    }
}

/// Replicas of clusters started by one process get distinct addresses, so tests may run
/// several side by side.
static NEXT_ADDRESS: AtomicUsize = AtomicUsize::new(0);
/// 127.0.0.1 is each pod's own `localhost` to policy; workloads start at .10.
const FIRST_HOST: usize = 10;
const HOSTS: usize = 240;

pub struct Cluster {
    pub(super) manifest: Manifest,
    pub(super) options: Options,
    pub(super) work: PathBuf,
    pub(super) ca: Ca,
    pub(super) publisher: Publisher,
    pub(super) catalog: Arc<Catalog>,
    pub(super) instances: Mutex<Vec<Instance>>,
    pub(super) live_policy: PathBuf,
    pub(super) cert_dir: PathBuf,
    ready: Ready,
    registry_stop: Option<tokio::sync::oneshot::Sender<()>>,
    registry_task: Option<tokio::task::JoinHandle<()>>,
    /// Lets the apps' calls begin.
    go: tokio::sync::watch::Sender<bool>,
    /// Copy each sidecar's events into `publisher`.
    forwarders: Vec<tokio::task::JoinHandle<()>>,
    pub(super) started: tokio::time::Instant,
}

impl Cluster {
    /// Checks the manifest, brings everything up, and returns once every proxy, app and the
    /// registry listen.
    pub async fn start(manifest: Manifest, options: Options) -> Result<Cluster> {
        let started = tokio::time::Instant::now();
        if let Some(p) = manifest.check().into_iter().next() {
            return Err(SandboxError::Manifest {
                path: manifest.path.clone(),
                line: p.line,
                message: p.message,
            });
        }
        let work = work_dir()?;
        let publisher = Publisher::default();
        let control_plane = manifest.control_plane()?;
        let ca = Ca::generate(&control_plane, SystemTime::now())?;
        let cert_dir = work.join("identity");
        std::fs::create_dir_all(&cert_dir).map_err(io(&cert_dir))?;
        let anchors = cert_dir.join("trust-anchors.pem");
        std::fs::write(&anchors, ca.bundle().to_pem()).map_err(io(&anchors))?;

        let (policy_rel, schemas_rel) = manifest.relative_dirs();
        let live_policy = work.join("m").join(&policy_rel);
        copy_dir(&manifest.policy_dir(), &live_policy)?;
        copy_dir(&manifest.schemas_dir(), &work.join("m").join(&schemas_rel))?;

        let registry_dir = work.join("registry");
        let (catalog, store) = register(&manifest, &registry_dir)?;
        let catalog = Arc::new(catalog);
        let (registry_url, registry_stop, registry_task) = serve_registry(store).await?;

        let tap = operator_files(&ca, &control_plane, &cert_dir, &anchors)?;
        let mut instances = plan(&manifest);
        for inst in &mut instances {
            if inst.spec.meshed {
                let identity =
                    control_plane.identity(inst.spec.service_account(), &inst.spec.namespace)?;
                let leaf = ca.issue(&identity, &LeafPolicy::default(), SystemTime::now())?;
                write_leaf(&cert_dir, &inst.label(), &leaf)?;
                inst.identity = Some(identity);
            }
        }
        configure(
            &manifest,
            &mut instances,
            &anchors,
            &cert_dir,
            &live_policy,
            &registry_dir,
        )?;
        let forwarders = instances
            .iter()
            .filter(|i| i.config.is_some())
            .map(|i| tokio::spawn(forward(i.tap.subscribe(), publisher.clone())))
            .collect();

        let mut cluster = Cluster {
            manifest,
            options,
            work,
            ca,
            publisher,
            catalog,
            instances: Mutex::new(Vec::new()),
            live_policy,
            cert_dir,
            ready: Ready {
                registry: registry_url,
                tap,
                workloads: Vec::new(),
            },
            registry_stop: Some(registry_stop),
            registry_task: Some(registry_task),
            forwarders,
            go: tokio::sync::watch::channel(false).0,
            started,
        };
        for inst in &mut instances {
            if inst.spec.on_demand {
                continue;
            }
            if let Err(e) = cluster.start_instance(inst).await {
                cluster.instances = Mutex::new(instances);
                cluster.shutdown().await;
                return Err(e);
            }
        }
        cluster.ready.workloads = instances
            .iter()
            .filter_map(|i| {
                let (addrs, id) = (i.addrs.as_ref()?, i.identity.as_ref()?);
                Some(ReadyWorkload {
                    namespace: i.spec.namespace.clone(),
                    name: i.spec.name.clone(),
                    identity: id.as_str().to_string(),
                    admin: addrs.admin.to_string(),
                    inbound: addrs.inbound.to_string(),
                    outbound: addrs.outbound.to_string(),
                })
            })
            .collect();
        cluster.instances = Mutex::new(instances);
        cluster.started = tokio::time::Instant::now();
        cluster.go.send_replace(true);
        Ok(cluster)
    }

    /// Starts a replica's sidecar (if meshed) and app.
    pub(super) async fn start_instance(&self, inst: &mut Instance) -> Result<()> {
        let fail = |message: String| SandboxError::Workload {
            workload: inst.label(),
            message,
        };
        if let Some(config) = &inst.config {
            let sidecar = Sidecar::start(config.clone(), inst.tap.clone())
                .await
                .map_err(|e| fail(e.to_string()))?;
            inst.addrs = Some(sidecar.addrs.clone());
            inst.sidecar = Some(sidecar);
        }
        let app = App::start(AppSetup {
            spec: inst.spec.clone(),
            instance: inst.label(),
            seed: self.options.seed,
            listen: inst.app_listen,
            egress: inst.egress.clone(),
            catalog: self.catalog.clone(),
            control: inst.control.clone(),
            go: self.go.subscribe(),
        })
        .await?;
        inst.app = Some(app);
        Ok(())
    }

    /// Restarts only the sidecar (the pod's proxy container), at the same addresses.
    pub(super) async fn restart_sidecar(&self, inst: &mut Instance) -> Result<()> {
        let (Some(old), Some(config)) = (inst.sidecar.take(), &inst.config) else {
            return Ok(());
        };
        old.shutdown().await;
        let sidecar = Sidecar::start(config.clone(), inst.tap.clone())
            .await
            .map_err(|e| SandboxError::Workload {
                workload: inst.label(),
                message: e.to_string(),
            })?;
        inst.sidecar = Some(sidecar);
        Ok(())
    }

    pub(super) async fn stop_instance(inst: &mut Instance) {
        if let Some(app) = inst.app.take() {
            app.shutdown().await;
        }
        if let Some(sidecar) = inst.sidecar.take() {
            sidecar.shutdown().await;
        }
    }

    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// Every proxy publishes here: subscribe for the sandbox's own event stream.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The policy directory the proxies watch; scenario steps edit files here.
    pub fn live_policy_dir(&self) -> &Path {
        &self.live_policy
    }

    /// Time since everything listened: the scenario's clock.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Running replicas and all replicas.
    pub async fn running(&self) -> (usize, usize) {
        let instances = self.instances.lock().await;
        let up = instances.iter().filter(|i| i.running()).count();
        (up, instances.len())
    }

    /// The call outcomes of a workload's replicas (of every workload for `None`), summed:
    /// sent, ok, denied, rejected, app errors, mesh failures.
    pub async fn call_stats(&self, workload: Option<&str>) -> [u64; 6] {
        let instances = self.instances.lock().await;
        let mut sum = [0; 6];
        let mut seen = std::collections::HashSet::new();
        for i in instances
            .iter()
            .filter(|i| workload.is_none_or(|w| i.spec.name == w || i.spec.key() == w))
        {
            // Replicas share their workload's counters.
            if !seen.insert(Arc::as_ptr(&i.control)) {
                continue;
            }
            for (s, v) in sum.iter_mut().zip(i.control.stats.snapshot()) {
                *s += v;
            }
        }
        sum
    }

    /// Writes the ready file (atomically, so a watcher never reads half of it).
    pub fn write_ready(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(&self.ready).map_err(|e| SandboxError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }

    /// Stops every app, proxy and the registry, and removes the working directory.
    pub async fn shutdown(mut self) {
        let mut instances = std::mem::take(&mut *self.instances.lock().await);
        for inst in &mut instances {
            Cluster::stop_instance(inst).await;
        }
        for f in &self.forwarders {
            f.abort();
        }
        if let Some(stop) = self.registry_stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.registry_task.take() {
            let _ = task.await;
        }
    }
}

/// The working directory (certificates, registry, live policy) goes with the cluster, also
/// when a caller drops it without `shutdown`.
impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Republishes one sidecar's events (and its loss notices) on the cluster's publisher.
async fn forward(mut from: crate::tap::Subscriber, to: Publisher) {
    while let Some(e) = from.recv().await {
        to.publish(Arc::unwrap_or_clone(e));
    }
}

fn work_dir() -> Result<PathBuf> {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "meshlens-sandbox-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    Ok(dir)
}

/// Copies the files of a directory tree (policy, schemas: small text files).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    if !from.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Registers every subject version in order, at the subject's level, and remembers the ids.
fn register(manifest: &Manifest, dir: &Path) -> Result<(Catalog, Store)> {
    let store = Store::open(dir).map_err(|e| SandboxError::Registry(e.to_string()))?;
    let mut catalog = Catalog::default();
    for s in &manifest.schemas.subjects {
        if let Some(level) = &s.compatibility {
            let level = level
                .parse()
                .map_err(|e: String| SandboxError::Registry(format!("{}: {e}", s.subject)))?;
            store
                .set_subject_level(&s.subject, level)
                .map_err(|e| SandboxError::Registry(e.to_string()))?;
        }
        for (i, file) in s.versions.iter().enumerate() {
            let path = manifest.schemas_dir().join(file);
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let schema = Schema::parse(&text).map_err(|e| SandboxError::Schema {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let registered = store.register(&s.subject, &text, &[]).map_err(|e| {
                SandboxError::Registry(format!("{} version {}: {e}", s.subject, i + 1))
            })?;
            catalog.schemas.insert(
                (s.subject.clone(), i as u32 + 1),
                (Arc::new(schema), registered.id),
            );
        }
    }
    Ok((catalog, store))
}

type RegistryHandle = (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

async fn serve_registry(store: Store) -> Result<RegistryHandle> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Listen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| SandboxError::Listen { addr, source })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = crate::registry::server::serve(listener, Arc::new(store), shutdown).await {
            tracing::warn!("sandbox registry stopped: {e}");
        }
    });
    Ok((format!("http://{local}"), stop, task))
}

/// The operator identity's certificate: what `meshlens tap` presents to every admin port.
fn operator_files(
    ca: &Ca,
    cp: &ControlPlane,
    dir: &Path,
    anchors: &Path,
) -> Result<TapCredentials> {
    let name = IdentityName::parse(&operator_identity(cp.ns(), cp.trust_domain()))?;
    let leaf = ca.issue(&name, &LeafPolicy::default(), SystemTime::now())?;
    let (cert, key) = write_leaf(dir, "operator", &leaf)?;
    Ok(TapCredentials {
        ca: anchors.to_path_buf(),
        cert,
        key,
    })
}

/// Writes a leaf's chain and key, each renamed into place as a secret volume swaps them.
pub(super) fn write_leaf(dir: &Path, label: &str, leaf: &Leaf) -> Result<(PathBuf, PathBuf)> {
    let stem = label.replace('/', "-");
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    for (path, text) in [(&cert, leaf.chain_pem()), (&key, leaf.key_pem())] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
    }
    Ok((cert, key))
}

/// One instance per replica, each with its own loopback address; `configure` fills in the
/// rest.
fn plan(manifest: &Manifest) -> Vec<Instance> {
    let mut out = Vec::new();
    for w in &manifest.workloads {
        let spec = Arc::new(w.clone());
        let control = Arc::new(Control::new(w));
        for replica in 0..w.replicas {
            let n = NEXT_ADDRESS.fetch_add(1, Ordering::Relaxed) % HOSTS + FIRST_HOST;
            let ip = Ipv4Addr::new(127, 0, 0, n as u8);
            out.push(Instance {
                spec: spec.clone(),
                replica,
                ip,
                identity: None,
                config: None,
                addrs: None,
                sidecar: None,
                app: None,
                app_listen: None,
                egress: Egress::Proxy(SocketAddr::from((ip, 0))),
                control: control.clone(),
                tap: Publisher::default(),
            });
        }
    }
    out
}

/// A free port on `ip`, found by binding and letting go: peers' destination tables need
/// every inbound address before any sidecar starts.
fn free_port(ip: Ipv4Addr) -> Result<SocketAddr> {
    let addr = SocketAddr::from((ip, 0));
    let l = std::net::TcpListener::bind(addr)
        .map_err(|source| SandboxError::Listen { addr, source })?;
    l.local_addr()
        .map_err(|source| SandboxError::Listen { addr, source })
}

/// Picks every address and writes each meshed replica's sidecar config: its peers are every
/// meshed workload, each caller sent to one replica (spread round-robin over callers).
fn configure(
    manifest: &Manifest,
    instances: &mut [Instance],
    anchors: &Path,
    cert_dir: &Path,
    live_policy: &Path,
    registry_dir: &Path,
) -> Result<()> {
    struct Planned {
        inbound: SocketAddr,
        admin: SocketAddr,
        outbound: SocketAddr,
        app: SocketAddr,
    }
    let mut planned = Vec::with_capacity(instances.len());
    for inst in instances.iter() {
        planned.push(Planned {
            inbound: free_port(inst.ip)?,
            admin: free_port(inst.ip)?,
            outbound: free_port(inst.ip)?,
            app: free_port(Ipv4Addr::LOCALHOST)?,
        });
    }
    let replica_of = |w: &WorkloadSpec, caller: usize| -> Option<usize> {
        let replicas: Vec<usize> = instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.spec.key() == w.key())
            .map(|(n, _)| n)
            .collect();
        replicas.get(caller % replicas.len().max(1)).copied()
    };
    let mut configs = Vec::with_capacity(instances.len());
    for (n, inst) in instances.iter().enumerate() {
        let mut destinations = Vec::new();
        let mut direct = std::collections::HashMap::new();
        for w in manifest.workloads.iter().filter(|w| w.meshed) {
            let Some(peer) = replica_of(w, n) else {
                continue;
            };
            let identity = instances[peer]
                .identity
                .as_ref()
                .map(|i| i.as_str().to_string());
            let mut authorities = Vec::new();
            for p in w.ports() {
                for host in [
                    format!("{}.{}", w.name, w.namespace),
                    format!("{}.{}.svc.cluster.local", w.name, w.namespace),
                ] {
                    let authority = format!("{host}:{}", p.port);
                    direct.insert(authority.clone(), planned[peer].inbound);
                    authorities.push(authority);
                }
            }
            destinations.push(Destination {
                authorities,
                address: planned[peer].inbound,
                identity,
                namespace: Some(w.namespace.clone()),
                workload: Some(w.name.clone()),
            });
        }
        let p = &planned[n];
        if !inst.spec.meshed {
            configs.push((
                None,
                Egress::Direct {
                    source: IpAddr::V4(inst.ip),
                    targets: direct,
                },
                None,
            ));
            continue;
        }
        let label = inst.label().replace('/', "-");
        let config = ProxyConfig {
            workload: inst.spec.policy_workload(Some(p.app.port())),
            trust_domain: Some(manifest.trust_domain.clone()),
            control_namespace: None,
            identity: IdentityFiles {
                trust_anchors: anchors.to_path_buf(),
                cert: cert_dir.join(format!("{label}.crt")),
                key: cert_dir.join(format!("{label}.key")),
            },
            inbound: InboundConfig {
                listen: p.inbound,
                app_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: p.app.port(),
            },
            outbound: OutboundConfig {
                listen: p.outbound,
                tcp: Vec::new(),
                source_ip: Some(IpAddr::V4(inst.ip)),
            },
            admin: AdminConfig {
                listen: p.admin,
                tap_allow: None,
                tap_tokens: None,
            },
            destinations,
            policy: Some(PolicyFiles {
                dir: live_policy.to_path_buf(),
                default_policy: manifest.policy.default_policy.clone(),
            }),
            registry: Some(registry_dir.to_string_lossy().into_owned()),
            registry_auth: None,
            timeouts: Timeouts::default(),
            inspection: InspectionLimits::default(),
        };
        configs.push((Some(config), Egress::Proxy(p.outbound), Some(p.app)));
    }
    for (inst, (config, egress, app)) in instances.iter_mut().zip(configs) {
        inst.config = config;
        inst.egress = egress;
        inst.app_listen = app;
    }
    Ok(())
}
