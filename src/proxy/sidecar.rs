//! One sidecar put together: the inbound, outbound and opaque TCP listeners, identity and
//! policy reloaded from their files, all stopped together. `meshlens proxy` runs one; the
//! sandbox runs one per workload in the same process.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::admin::{self, Admin};
use super::config::ProxyConfig;
use super::credentials::Credentials;
use super::destinations::Destinations;
use super::error::{ProxyError, Result};
use super::inbound::Inbound;
use super::inspect::Inspector;
use super::messages::{Inspections, NoRegistry};
use super::outbound::Outbound;
use super::policy_state::PolicyState;
use super::shared::Shared;
use super::watch::{POLL, stamp};
use crate::avro::SchemaSource;
use crate::avro::framing::SniffOptions;
use crate::policy::defaults::Settings;
use crate::policy::ids::IdentityDomain;
use crate::registry::{Auth, ClientSource, RegistryClient, Store, StoreSource};
use crate::tap::Publisher;
use crate::tap::server::{Authorization, IdentityPattern, TapServer, operator_identity};
use crate::tap::token::TokenVerifier;

/// Where a running sidecar listens (ports resolved when the config asked for port 0).
#[derive(Debug, Clone)]
pub struct Addrs {
    pub admin: SocketAddr,
    pub inbound: SocketAddr,
    pub outbound: SocketAddr,
    pub tcp: Vec<SocketAddr>,
}

pub struct Sidecar {
    pub shared: Arc<Shared>,
    pub addrs: Addrs,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Sidecar {
    /// Binds every listener and starts serving; returns once all of them listen.
    pub async fn start(config: ProxyConfig, tap: Publisher) -> Result<Sidecar> {
        let w = &config.workload;
        let credentials = Arc::new(Credentials::load(
            &config.identity,
            config.local_identity()?,
        )?);
        let settings = config.policy_settings()?;
        let policy_dir = config.policy.as_ref().map(|p| p.dir.clone());
        let policy = match &policy_dir {
            Some(dir) => PolicyState::load(dir, w, &settings, 1).map_err(ProxyError::Policy)?,
            None => PolicyState::defaults(w, &settings),
        };
        for warning in &policy.warnings {
            tracing::warn!("policy: left out: {warning}");
        }
        let registry_auth = match &config.registry_auth {
            Some(a) => a.load()?,
            None => Auth::None,
        };
        let inspections = inspections(config.registry.as_deref(), &registry_auth)?;
        let tap_publisher = tap.clone();
        let shared = Arc::new(Shared::new(
            w.clone(),
            credentials.clone(),
            policy,
            tap,
            inspections,
            config.timeouts.clone(),
            config.inspection.clone(),
        ));
        let inbound = Arc::new(Inbound::new(
            shared.clone(),
            config.inbound.app_host,
            config.inbound.port,
        ));
        let outbound = Arc::new(Outbound::new(
            shared.clone(),
            Destinations::new(&config.destinations),
            config.outbound.source_ip,
        ));

        let (stop, stopped) = watch::channel(false);
        let tap_server = Arc::new(tap_server(
            &config,
            &settings.domain,
            tap_publisher,
            stopped.clone(),
        )?);
        let mut tasks = JoinSet::new();
        let admin_listener = bind(config.admin.listen).await?;
        let inbound_listener = bind(config.inbound.listen).await?;
        let outbound_listener = bind(config.outbound.listen).await?;
        let addrs_in = inbound_listener
            .local_addr()
            .map_err(|source| ProxyError::Listen {
                addr: config.inbound.listen,
                source,
            })?;
        let addrs_out = outbound_listener
            .local_addr()
            .map_err(|source| ProxyError::Listen {
                addr: config.outbound.listen,
                source,
            })?;
        let admin_addr = admin_listener
            .local_addr()
            .map_err(|source| ProxyError::Listen {
                addr: config.admin.listen,
                source,
            })?;
        let mut tcp_addrs = Vec::new();
        let mut tcp_listeners = Vec::new();
        for route in &config.outbound.tcp {
            let l = bind(route.listen).await?;
            tcp_addrs.push(l.local_addr().map_err(|source| ProxyError::Listen {
                addr: route.listen,
                source,
            })?);
            tcp_listeners.push((l, route.destination.clone()));
        }

        let i = inbound.clone();
        tasks.spawn(accept(inbound_listener, stopped.clone(), move |s, p| {
            i.clone().serve(s, p)
        }));
        let o = outbound.clone();
        tasks.spawn(accept(outbound_listener, stopped.clone(), move |s, p| {
            o.clone().serve(s, p)
        }));
        for (l, destination) in tcp_listeners {
            let o = outbound.clone();
            tasks.spawn(accept(l, stopped.clone(), move |s, p| {
                o.clone().serve_tcp(s, p, destination.clone())
            }));
        }
        let route: admin::TapRoute = Arc::new(move |req| {
            let server = tap_server.clone();
            Box::pin(async move { server.handle(req).await })
        });
        let admin = Arc::new(
            Admin::new(shared.metrics.clone(), shared.credentials.cert().clone())
                .with_tls(shared.credentials.clone())
                .with_tap(route),
        );
        admin.set_ready(true);
        let mut admin_stop = stopped.clone();
        tasks.spawn(admin::serve(admin_listener, admin, async move {
            let _ = admin_stop.changed().await;
        }));
        let registry_dir = config
            .registry
            .clone()
            .filter(|r| !crate::registry::is_url(r))
            .map(PathBuf::from);
        tasks.spawn(reload(
            shared.clone(),
            outbound,
            Watched {
                policy_dir,
                registry_dir,
            },
            settings,
            stopped,
        ));
        Ok(Sidecar {
            shared,
            addrs: Addrs {
                admin: admin_addr,
                inbound: addrs_in,
                outbound: addrs_out,
                tcp: tcp_addrs,
            },
            stop,
            tasks,
        })
    }

    /// Stops accepting, closes every connection and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The tap server of the admin port: who may tap (`admin.tapAllow`, by default the operator
/// identity of this mesh's domain; `admin.tapTokens`), over this sidecar's publisher.
fn tap_server(
    config: &ProxyConfig,
    domain: &IdentityDomain,
    publisher: Publisher,
    stop: watch::Receiver<bool>,
) -> Result<TapServer> {
    let config_error = |message: String| ProxyError::Config {
        path: PathBuf::from("admin"),
        message,
    };
    let allow = match &config.admin.tap_allow {
        Some(list) => list
            .iter()
            .map(|p| IdentityPattern::parse(p).map_err(|e| config_error(format!("tapAllow: {e}"))))
            .collect::<Result<Vec<_>>>()?,
        None => vec![IdentityPattern::Exact(operator_identity(
            &domain.control_namespace,
            &domain.trust_domain,
        ))],
    };
    let tokens = match &config.admin.tap_tokens {
        Some(t) => {
            Some(TokenVerifier::load(t).map_err(|e| config_error(format!("tapTokens: {e}")))?)
        }
        None => None,
    };
    let w = &config.workload;
    Ok(TapServer::new(
        publisher,
        format!("{}/{}", w.namespace, w.name),
        Authorization { allow, tokens },
        stop,
    ))
}

/// The registry bodies are decoded against: a directory (read now), a URL (asked on demand,
/// cached), or none.
fn inspections(registry: Option<&str>, auth: &Auth) -> Result<Inspections> {
    let options = SniffOptions::default();
    let (source, may_block): (Arc<dyn SchemaSource>, bool) = match registry {
        None => (Arc::new(NoRegistry), false),
        Some(url) if crate::registry::is_url(url) => {
            let client = RegistryClient::new(url, auth.clone())
                .map_err(|e| ProxyError::Registry(e.to_string()))?;
            let source = ClientSource::new(Arc::new(client), registry_runtime()?);
            (Arc::new(source), true)
        }
        Some(dir) => {
            let store = Store::open_read_only(std::path::Path::new(dir))
                .map_err(|e| ProxyError::Registry(e.to_string()))?;
            (Arc::new(StoreSource::new(Arc::new(store))), false)
        }
    };
    Ok(Inspections {
        inspector: Arc::new(Inspector::new(source, options)),
        may_block,
    })
}

/// A runtime of its own for registry lookups: inspections wait for them on blocking threads,
/// which a one-thread (current-thread) sidecar runtime could not serve. Lives as long as the
/// process, like the sidecar.
fn registry_runtime() -> Result<tokio::runtime::Handle> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("registry")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
        .map(|rt| rt.handle().clone())
        .ok_or_else(|| ProxyError::Registry("cannot start the registry runtime".into()))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::Listen { addr, source })
}

/// Accepts until told to stop; then drops every connection it started.
async fn accept<F, Fut>(listener: TcpListener, mut stop: watch::Receiver<bool>, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve(stream, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
        while connections.try_join_next().is_some() {}
    }
}

/// Directories a sidecar re-reads when they change.
struct Watched {
    policy_dir: Option<PathBuf>,
    /// A directory registry (a URL is asked on demand instead).
    registry_dir: Option<PathBuf>,
}

/// Polls the identity files, the policy directory and a directory registry; a change that
/// loads cleanly goes live, one that does not is logged and the current state stays in force.
async fn reload(
    shared: Arc<Shared>,
    outbound: Arc<Outbound>,
    watched: Watched,
    settings: Settings,
    mut stop: watch::Receiver<bool>,
) {
    let Watched {
        policy_dir,
        registry_dir,
    } = watched;
    let identity_paths = shared.credentials.paths();
    let policy_paths: Vec<PathBuf> = policy_dir.iter().cloned().collect();
    // The store rewrites its index (atomically) on every change.
    let registry_paths: Vec<PathBuf> = registry_dir.iter().map(|d| d.join("index.json")).collect();
    let mut identity_stamp = stamp(&identity_paths);
    let mut policy_stamp = stamp(&policy_paths);
    let mut registry_stamp = stamp(&registry_paths);
    let mut generation = shared.policy().generation;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
        let now = stamp(&identity_paths);
        if now != identity_stamp {
            identity_stamp = now;
            let before = shared.credentials.configs();
            match shared.credentials.reload() {
                Ok(()) => {
                    tracing::info!("identity reloaded from {}", identity_paths[1].display());
                    if !Arc::ptr_eq(&before, &shared.credentials.configs()) {
                        outbound.reset_connections();
                    }
                }
                Err(e) => tracing::warn!("identity not reloaded, the current one stays: {e}"),
            }
        }
        if let Some(dir) = &policy_dir {
            let now = stamp(&policy_paths);
            if now != policy_stamp {
                policy_stamp = now;
                let dir = dir.clone();
                let w = shared.workload.clone();
                let s = settings.clone();
                let next = generation + 1;
                let loaded =
                    tokio::task::spawn_blocking(move || PolicyState::load(&dir, &w, &s, next))
                        .await;
                match loaded {
                    Ok(Ok(state)) => {
                        generation = next;
                        for warning in &state.warnings {
                            tracing::warn!("policy: left out: {warning}");
                        }
                        tracing::info!("policy reloaded (generation {generation})");
                        shared.set_policy(state);
                    }
                    Ok(Err(e)) => tracing::warn!("policy not reloaded, the current one stays: {e}"),
                    Err(e) => tracing::warn!("policy reload failed: {e}"),
                }
            }
        }
        if let Some(dir) = &registry_dir {
            let now = stamp(&registry_paths);
            if now != registry_stamp {
                registry_stamp = now;
                let dir = dir.to_string_lossy().into_owned();
                match tokio::task::spawn_blocking(move || inspections(Some(&dir), &Auth::None))
                    .await
                {
                    Ok(Ok(i)) => {
                        tracing::info!("registry reloaded");
                        shared.set_inspections(i);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!("registry not reloaded, the current one stays: {e}")
                    }
                    Err(e) => tracing::warn!("registry reload failed: {e}"),
                }
            }
        }
    }
}
