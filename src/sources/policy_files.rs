//! Policy files for the Policies view: a worker thread loads and lints a directory or files
//! with the policy engine, indexes them for the workloads of a sandbox manifest, and sends
//! the result back; while a target is set it polls the files and reloads when they change
//! (the demo's scenario edits its live policy directory while it runs).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::policy::defaults::Settings;
use crate::policy::error::PolicyError;
use crate::policy::index::Index;
use crate::policy::lint::{admitted, lint};
use crate::policy::load::load_paths;
use crate::policy::workload::Workload;
use crate::proxy::watch::stamp;
use crate::sandbox::Manifest;

use super::sandbox::Waker;

/// How often the worker looks at the files' sizes and modification times.
pub const POLL: Duration = Duration::from_secs(2);

/// What to load: policy files or directories, and the sandbox manifest whose workloads
/// (and trust domain and default policy) the policy is evaluated for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub paths: Vec<PathBuf>,
    pub manifest: Option<PathBuf>,
}

/// One lint finding, placed at file:line when the engine knows where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub error: bool,
    /// `file:line`, or just the file.
    pub at: String,
    pub message: String,
}

/// A resource as read, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRow {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub at: String,
}

/// The outcome of one load.
#[derive(Debug)]
pub struct Loaded {
    pub target: Target,
    pub resources: Vec<ResourceRow>,
    pub diagnostics: Vec<Diagnostic>,
    /// Built from the admitted resources; `None` without workloads to evaluate for.
    pub index: Option<Index>,
    /// Why there is no index, in words.
    pub no_index: Option<String>,
    /// Counts loads, so a view can tell a reload happened.
    pub load: u64,
}

/// The worker; dropping it stops the thread.
pub struct PolicyFiles {
    commands: Option<Sender<Target>>,
    results: Receiver<Loaded>,
    thread: Option<JoinHandle<()>>,
}

impl PolicyFiles {
    /// Starts an idle worker; `waker` is called after each result is queued.
    pub fn start(waker: Waker) -> PolicyFiles {
        let (commands, rx) = channel();
        let (tx, results) = channel();
        let thread = std::thread::Builder::new()
            .name("policy-files".into())
            .spawn(move || work(&rx, &tx, &waker))
            .ok();
        PolicyFiles {
            commands: Some(commands),
            results,
            thread,
        }
    }

    /// Loads `target` now and again whenever its files change.
    pub fn load(&self, target: Target) {
        if let Some(c) = &self.commands {
            let _ = c.send(target);
        }
    }

    /// The newest finished load, if one came in since the last call.
    pub fn try_recv(&self) -> Option<Loaded> {
        let mut newest = None;
        while let Ok(l) = self.results.try_recv() {
            newest = Some(l);
        }
        newest
    }
}

impl Drop for PolicyFiles {
    fn drop(&mut self) {
        self.commands = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn work(commands: &Receiver<Target>, results: &Sender<Loaded>, waker: &Waker) {
    let mut current: Option<(Target, u64)> = None;
    let mut loads = 0;
    loop {
        match commands.recv_timeout(POLL) {
            Ok(target) => current = Some((target, 0)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some((target, seen)) = &mut current else {
            continue;
        };
        let mut watched = target.paths.clone();
        watched.extend(target.manifest.clone());
        let now = stamp(&watched);
        if now == *seen {
            continue;
        }
        *seen = now;
        loads += 1;
        if results.send(load(target, loads)).is_err() {
            return;
        }
        waker();
    }
}

/// Loads, lints and indexes `target`: the same steps as `meshlens policy lint` and a
/// proxy's policy reload.
pub fn load(target: &Target, load_number: u64) -> Loaded {
    let (settings, workloads, manifest_problem) = match &target.manifest {
        Some(path) => match workloads_of(path) {
            Ok((s, w)) => (s, w, None),
            Err(e) => (Settings::default(), Vec::new(), Some(e)),
        },
        None => (Settings::default(), Vec::new(), None),
    };
    let (set, errors) = load_paths(&target.paths);
    let known = (!workloads.is_empty()).then_some(workloads.as_slice());
    let report = lint(&set, errors, known, &settings);
    let resources = set
        .resources
        .iter()
        .map(|l| ResourceRow {
            kind: l.resource.kind().to_string(),
            namespace: l.resource.namespace().to_string(),
            name: l.resource.name().to_string(),
            at: place(&l.at.file, l.at.line),
        })
        .collect();
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    if let Some(problem) = &manifest_problem {
        diagnostics.push(Diagnostic {
            error: true,
            at: target
                .manifest
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            message: problem.clone(),
        });
    }
    diagnostics.extend(report.errors.iter().map(diagnostic));
    diagnostics.extend(report.warnings.iter().map(|w| Diagnostic {
        error: false,
        at: place(&w.at.file, w.at.line),
        message: format!("{} {}: {}: {}", w.kind, w.name, w.field, w.message),
    }));
    let (admitted_set, _) = admitted(set);
    let no_index = if workloads.is_empty() {
        Some(match manifest_problem {
            Some(p) => format!("no workloads to evaluate for: {p}"),
            None => "no workloads to evaluate for: load a sandbox manifest".to_string(),
        })
    } else {
        None
    };
    Loaded {
        target: target.clone(),
        resources,
        diagnostics,
        index: no_index
            .is_none()
            .then(|| Index::build(&admitted_set, &workloads, &settings)),
        no_index,
        load: load_number,
    }
}

fn workloads_of(path: &Path) -> Result<(Settings, Vec<Workload>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let m = Manifest::parse(path, &text).map_err(|e| e.to_string())?;
    let settings = Settings {
        default_policy: m.default_policy(),
        domain: m.domain(),
        ..Settings::default()
    };
    let workloads = m
        .workloads
        .iter()
        .map(|w| w.policy_workload(None))
        .collect();
    Ok((settings, workloads))
}

fn place(file: &Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", file.display()),
        None => file.display().to_string(),
    }
}

fn diagnostic(e: &PolicyError) -> Diagnostic {
    let (at, message) = match e {
        PolicyError::Syntax { at, message } => (place(&at.file, at.line), message.clone()),
        PolicyError::Invalid {
            at,
            kind,
            name,
            field,
            message,
        } => (
            place(&at.file, at.line),
            format!("{kind} {name}: {field}: {message}"),
        ),
        PolicyError::Io { path, source } => (path.display().to_string(), source.to_string()),
        PolicyError::Workloads { path, message } => (path.display().to_string(), message.clone()),
        PolicyError::Request(m) => (String::new(), m.clone()),
    };
    Diagnostic {
        error: true,
        at,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sandboxes/shop")
    }

    #[test]
    fn the_demo_policy_loads_clean_and_indexes_every_workload() {
        let l = load(
            &Target {
                paths: vec![shop().join("policy")],
                manifest: Some(shop().join("sandbox.yaml")),
            },
            1,
        );
        assert!(
            l.diagnostics.iter().all(|d| !d.error),
            "{:?}",
            l.diagnostics
        );
        assert!(l.resources.iter().any(|r| r.name == "orders-http"));
        let index = l.index.expect("workloads from the manifest");
        assert!(index.workload("shop", "orders").is_some());
    }

    #[test]
    fn a_broken_file_is_an_error_at_its_line_and_a_change_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.yaml");
        std::fs::write(&file, "kind: Server\nmetadata: {name: x\n  bad: [\n").unwrap();
        let (tx, rx) = channel();
        let files = PolicyFiles::start(std::sync::Arc::new(move || {
            let _ = tx.send(());
        }));
        files.load(Target {
            paths: vec![dir.path().to_path_buf()],
            manifest: None,
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let l = files.try_recv().unwrap();
        let d = &l.diagnostics[0];
        assert!(d.error);
        assert!(d.at.contains("bad.yaml:"), "{d:?}");
        assert!(l.no_index.is_some());
        std::fs::write(&file, "# fixed\n").unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let l = files.try_recv().unwrap();
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        assert_eq!(l.load, 2);
    }
}
