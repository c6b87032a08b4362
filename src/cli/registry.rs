//! `meshlens registry serve|import|export`: serve a directory as a Confluent-compatible
//! schema registry, and copy between a directory and a remote registry. Also builds the
//! `SchemaSource` behind `avro decode --registry DIR|URL`.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use crate::avro::payload::SchemaSource;
use crate::registry::client::RawVersion;
use crate::registry::store::Imported;
use crate::registry::{
    Auth, ClientSource, Reference, RegistryClient, Store, StoreSource, VersionSpec, server,
};

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Serve a directory as a Confluent-compatible schema registry (REST API v1).
    ///
    /// The directory is created if it does not exist. It holds one .avsc per subject
    /// version and an index.json of ids, versions and levels, meant to be kept in git.
    /// Prints the URL it listens on; stops on Ctrl-C.
    Serve {
        /// The registry directory.
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on (port 0 picks a free port). The registry has no
        /// authentication: keep it on loopback unless the network is trusted.
        #[arg(long, default_value = "127.0.0.1:8081", value_name = "HOST:PORT")]
        listen: String,
    },
    /// Copy every subject version of a remote registry into a directory, keeping its ids,
    /// version numbers and compatibility levels (soft-deleted versions come along, deleted).
    Import {
        /// The registry directory to copy into (created if it does not exist).
        #[arg(long)]
        dir: PathBuf,
        /// The remote registry.
        #[arg(long, value_name = "URL")]
        from: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Register every live subject version of a directory with a remote registry, oldest
    /// first, and set the subjects' own compatibility levels there. The remote assigns its
    /// own ids; a version it already has is not registered again.
    Export {
        /// The registry directory to copy from.
        #[arg(long)]
        dir: PathBuf,
        /// The remote registry.
        #[arg(long, value_name = "URL")]
        to: String,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

/// Credentials for a remote registry (or put `user:password@` in the URL).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AuthArgs {
    /// User name for HTTP basic authentication (Confluent Cloud: the API key).
    #[arg(long, value_name = "USER", requires = "registry_password")]
    pub registry_user: Option<String>,
    /// Password for HTTP basic authentication (Confluent Cloud: the API secret).
    #[arg(long, value_name = "PASSWORD", requires = "registry_user")]
    pub registry_password: Option<String>,
    /// Bearer token (OAuth).
    #[arg(long, value_name = "TOKEN", conflicts_with = "registry_user")]
    pub registry_token: Option<String>,
}

impl AuthArgs {
    pub(super) fn auth(&self) -> Auth {
        match (
            &self.registry_user,
            &self.registry_password,
            &self.registry_token,
        ) {
            (_, _, Some(token)) => Auth::Bearer(token.clone()),
            (Some(user), Some(password), None) => Auth::Basic {
                user: user.clone(),
                password: password.clone(),
            },
            _ => Auth::None,
        }
    }
}

pub fn run(cmd: RegistryCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RegistryCommand::Serve { dir, listen } => serve(&dir, &listen),
        RegistryCommand::Import { dir, from, auth } => {
            let client = RegistryClient::new(&from, auth.auth())?;
            let store = Store::open(&dir)?;
            block_on(import(&client, &store))
        }
        RegistryCommand::Export { dir, to, auth } => {
            let client = RegistryClient::new(&to, auth.auth())?;
            let store = Store::open_read_only(&dir)?;
            block_on(export(&store, &client))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(super) fn block_on<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    runtime()?.block_on(f)
}

pub(super) use crate::registry::is_url;

/// The schema source for `--registry DIR|URL`, and the runtime a URL needs kept alive while
/// decoding.
pub fn schema_source(
    spec: &str,
    auth: &AuthArgs,
) -> anyhow::Result<(Box<dyn SchemaSource>, Option<tokio::runtime::Runtime>)> {
    if is_url(spec) {
        let client = Arc::new(RegistryClient::new(spec, auth.auth())?);
        let rt = runtime()?;
        let source = ClientSource::new(client, rt.handle().clone());
        return Ok((Box::new(source), Some(rt)));
    }
    if auth.registry_user.is_some() || auth.registry_token.is_some() {
        bail!(
            "--registry {spec}: credentials are for a registry URL (http:// or https://), not a directory"
        );
    }
    let dir = Path::new(spec);
    if !dir.is_dir() {
        bail!(
            "--registry {spec}: no such directory (give a registry directory, or an http:// or https:// URL)"
        );
    }
    let store = Store::open_read_only(dir)?;
    Ok((Box::new(StoreSource::new(Arc::new(store))), None))
}

fn serve(dir: &Path, listen: &str) -> anyhow::Result<ExitCode> {
    let store = Arc::new(Store::open(dir)?);
    let rt = runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            eprintln!(
                "warning: the registry has no authentication and listens on {addr}: anyone who reaches it can change schemas"
            );
        }
        let subjects = store.subjects(false, "").len();
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{addr}")?;
            writeln!(
                out,
                "serving {} ({subjects} subject{})",
                dir.display(),
                if subjects == 1 { "" } else { "s" }
            )?;
            out.flush()?;
        }
        server::serve(listener, store, stop_signal()).await?;
        eprintln!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// One remote subject version waiting to be imported.
struct Pending {
    raw: RawVersion,
    deleted: bool,
}

async fn import(client: &RegistryClient, store: &Store) -> anyhow::Result<ExitCode> {
    let url = client.url().to_string();
    let mut pending = Vec::new();
    let mut levels = BTreeMap::new();
    for subject in client.subjects(true).await? {
        let live: Vec<u32> = match client.versions(&subject, false).await {
            Ok(v) => v,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        for version in client.versions(&subject, true).await? {
            let raw = client.raw_version(&subject, Some(version), true).await?;
            if let Some(t) = raw.schema_type.as_deref()
                && !t.eq_ignore_ascii_case("AVRO")
            {
                eprintln!("skipping {subject} version {version}: a {t} schema");
                continue;
            }
            pending.push(Pending {
                raw,
                deleted: !live.contains(&version),
            });
        }
        if let Some(level) = client.subject_level(&subject).await? {
            levels.insert(subject, level);
        }
    }
    // Referenced versions first: import in rounds until nothing is left.
    let mut added = 0;
    let mut unchanged = 0;
    while !pending.is_empty() {
        let before = pending.len();
        let mut later = Vec::new();
        for p in pending {
            let ready = p.raw.references.iter().all(|r| {
                store
                    .version(&r.subject, VersionSpec::Number(r.version), true)
                    .is_ok()
            });
            if !ready {
                later.push(p);
                continue;
            }
            let r = &p.raw;
            let outcome = store
                .import_version(
                    &r.subject,
                    r.version,
                    r.id,
                    &r.schema,
                    &r.references,
                    p.deleted,
                )
                .with_context(|| format!("{url}: subject {} version {}", r.subject, r.version))?;
            match outcome {
                Imported::Added => {
                    added += 1;
                    out!(
                        "{} version {}: id {}{}",
                        r.subject,
                        r.version,
                        r.id,
                        if p.deleted { " (soft-deleted)" } else { "" }
                    );
                }
                Imported::Unchanged => unchanged += 1,
            }
        }
        if later.len() == before {
            let r = &later[0].raw;
            bail!(
                "{url}: subject {} version {} refers to a schema the registry did not list",
                r.subject,
                r.version
            );
        }
        pending = later;
    }
    let global = client.global_level().await?;
    if store.global_level() != global {
        store.set_global_level(global)?;
    }
    for (subject, level) in &levels {
        if store.subject_level(subject) != Some(*level) {
            store.set_subject_level(subject, *level)?;
        }
    }
    out!(
        "imported {added} version{} into {} ({unchanged} already there); global level {global}, {} subject level{}",
        if added == 1 { "" } else { "s" },
        store.dir().display(),
        levels.len(),
        if levels.len() == 1 { "" } else { "s" },
    );
    Ok(ExitCode::SUCCESS)
}

async fn export(store: &Store, client: &RegistryClient) -> anyhow::Result<ExitCode> {
    let url = client.url().to_string();
    // Every live version, referenced ones first (references name local versions, which
    // may have other numbers remotely).
    let mut pending: Vec<_> = store.all_versions("", false, false);
    let mut remote_version: BTreeMap<(String, u32), u32> = BTreeMap::new();
    let mut levels_set = std::collections::BTreeSet::new();
    let mut registered = 0;
    let mut existing = 0;
    while !pending.is_empty() {
        let before = pending.len();
        let mut later = Vec::new();
        for v in pending {
            let ready = v
                .schema
                .references
                .iter()
                .all(|r| remote_version.contains_key(&(r.subject.clone(), r.version)));
            if !ready {
                later.push(v);
                continue;
            }
            if !levels_set.contains(&v.subject) {
                if let Some(level) = store.subject_level(&v.subject) {
                    client.set_subject_level(&v.subject, level).await?;
                }
                levels_set.insert(v.subject.clone());
            }
            let references: Vec<Reference> = v
                .schema
                .references
                .iter()
                .map(|r| Reference {
                    name: r.name.clone(),
                    subject: r.subject.clone(),
                    version: remote_version[&(r.subject.clone(), r.version)],
                })
                .collect();
            let already = client
                .lookup(&v.subject, &v.schema.text, &references)
                .await
                .ok();
            let found = match already {
                Some(found) => {
                    existing += 1;
                    found
                }
                None => {
                    let id = client
                        .register(&v.subject, &v.schema.text, &references)
                        .await
                        .with_context(|| {
                            format!("{url}: registering {} version {}", v.subject, v.version)
                        })?;
                    let found = client
                        .lookup(&v.subject, &v.schema.text, &references)
                        .await
                        .with_context(|| format!("{url}: looking up {}", v.subject))?;
                    registered += 1;
                    out!(
                        "{} version {} (id {}) -> version {} (id {id})",
                        v.subject,
                        v.version,
                        v.schema.id,
                        found.version
                    );
                    found
                }
            };
            remote_version.insert((v.subject.clone(), v.version), found.version);
        }
        if later.len() == before {
            let v = &later[0];
            bail!(
                "{}: subject {} version {} refers to a version that is deleted or missing",
                store.dir().display(),
                v.subject,
                v.version
            );
        }
        pending = later;
    }
    out!(
        "exported {registered} version{} to {url} ({existing} already there)",
        if registered == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}
