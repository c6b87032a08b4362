//! `sandbox.yaml`: the mesh a sandbox brings up — workloads and what they serve and call, the
//! schemas and policy they run under, and a scenario timeline. `Manifest::load` parses it and
//! checks everything a mistake would otherwise only show at run time, each problem with the
//! line it is on.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::{Result, SandboxError, io};
use crate::avro::Schema;
use crate::identity::ControlPlane;
use crate::policy::defaults::{DefaultPolicy, Settings};
use crate::policy::ids::IdentityDomain;
use crate::policy::workload::{NamedPort, Workload};

/// Manifests are kilobytes; anything far larger is a mistake, refused before parsing.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Requests per second one call may ask for: the sandbox is for looking at, not load tests.
pub const MAX_RATE: f64 = 200.0;
pub const MAX_REPLICAS: u32 = 8;
/// Loopback addresses are handed out from 127.0.0.10 up, one per workload replica.
pub const MAX_INSTANCES: usize = 200;
/// The longest latency a route or an injection may ask for.
pub const MAX_LATENCY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub schemas: SchemasSpec,
    #[serde(default)]
    pub policy: PolicySpec,
    pub workloads: Vec<WorkloadSpec>,
    #[serde(default)]
    pub scenario: Vec<Step>,
    /// The manifest's directory: relative paths in it are relative to this.
    #[serde(skip)]
    pub base: PathBuf,
    /// The manifest file, for messages.
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(skip)]
    text: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemasSpec {
    /// Where the `.avsc` files are; default `schemas`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default)]
    pub subjects: Vec<SubjectSpec>,
}

/// A registry subject and its versions, registered in order at start (version 1 first).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectSpec {
    pub subject: String,
    /// The subject's level in the registry; `NONE` lets a breaking version in, as a team
    /// that turned the check off would.
    #[serde(default)]
    pub compatibility: Option<String>,
    /// `.avsc` files in the schemas directory.
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// Linkerd policy YAML and SchemaContracts, loaded by every proxy; default `policy`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// The cluster's default inbound policy; default `all-unauthenticated`.
    #[serde(default)]
    pub default_policy: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSpec {
    pub name: String,
    pub namespace: String,
    /// Default: the workload's name.
    #[serde(default)]
    pub service_account: Option<String>,
    /// Default: `{app: <name>}`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Named ports (policy Servers should name them: the real port is picked at start).
    /// Default: `[{name: http, port: 8080}]`.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    #[serde(default = "one")]
    pub replicas: u32,
    /// Without a sidecar: calls go straight to the peer's inbound proxy in plaintext.
    #[serde(default = "yes")]
    pub meshed: bool,
    /// Starts only when a `start` step says so.
    #[serde(default)]
    pub on_demand: bool,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    #[serde(default)]
    pub calls: Vec<CallSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSpec {
    pub name: String,
    pub port: u16,
}

/// Requests the app answers: matched by method (any when absent) and path prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default = "slash")]
    pub path: String,
    /// Status code → weight; default `{200: 1}`.
    #[serde(default)]
    pub status: BTreeMap<u16, u32>,
    #[serde(default)]
    pub latency: LatencySpec,
    /// An Avro body for 2xx answers.
    #[serde(default)]
    pub response: Option<MessageSpec>,
}

/// A log-normal latency with this median and 99th percentile.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LatencySpec {
    #[serde(with = "duration", default = "default_median")]
    pub median: Duration,
    #[serde(with = "duration", default = "default_p99")]
    pub p99: Duration,
}

impl Default for LatencySpec {
    fn default() -> Self {
        LatencySpec {
            median: default_median(),
            p99: default_p99(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageSpec {
    pub subject: String,
    pub version: u32,
}

/// Requests the app makes, at a steady rate.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallSpec {
    pub name: String,
    /// `host:port`, the host `<workload>.<namespace>` (or `.svc.cluster.local`).
    pub target: String,
    /// Requests per second.
    pub rate: f64,
    #[serde(default = "get")]
    pub method: String,
    #[serde(default = "slash")]
    pub path: String,
    /// The request body's subject and version (Confluent-framed Avro); none: no body.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub payload: PayloadSpec,
}

/// How big random payloads get.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayloadSpec {
    #[serde(default = "three")]
    pub max_items: usize,
    #[serde(default = "twelve")]
    pub max_string: usize,
}

impl Default for PayloadSpec {
    fn default() -> Self {
        PayloadSpec {
            max_items: 3,
            max_string: 12,
        }
    }
}

/// One scenario step: at a time after start, or only on demand when `at` is absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(default, with = "opt_duration")]
    pub at: Option<Duration>,
    /// How to trigger it on demand; default `step-<n>` (from 1).
    #[serde(default)]
    pub name: Option<String>,
    /// What to look for, printed when the step runs.
    #[serde(default)]
    pub say: Option<String>,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// A producer ships another schema version of its call's subject.
    Rollout {
        workload: String,
        call: String,
        version: u32,
    },
    /// Copies a policy file (relative to the manifest) into the live policy directory.
    ApplyPolicy(PathBuf),
    /// Removes a file (by name) from the live policy directory.
    RemovePolicy(String),
    /// Issues new certificates to every replica of the workload.
    RotateCert(String),
    /// Replaces the workload's certificates with expired ones and restarts its proxies: every
    /// handshake with it fails from then on.
    ExpireCert(String),
    Kill(String),
    Restart(String),
    /// Adds latency and errors to a route (every route when none is named); zeros clear it.
    Inject(Injection),
    /// Starts an `onDemand` workload (such as an unmeshed client).
    Start(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Injection {
    pub workload: String,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default, with = "opt_duration")]
    pub latency: Option<Duration>,
    /// The share of requests answered 503, 0 to 1.
    #[serde(default)]
    pub errors: Option<f64>,
}

impl Action {
    /// The workload a step acts on, if any.
    pub fn workload(&self) -> Option<&str> {
        match self {
            Action::Rollout { workload, .. } => Some(workload),
            Action::Inject(i) => Some(&i.workload),
            Action::RotateCert(w)
            | Action::ExpireCert(w)
            | Action::Kill(w)
            | Action::Restart(w)
            | Action::Start(w) => Some(w),
            Action::ApplyPolicy(_) | Action::RemovePolicy(_) => None,
        }
    }
}

impl Step {
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("step-{}", index + 1))
    }
}

fn default_trust_domain() -> String {
    crate::identity::DEFAULT_TRUST_DOMAIN.to_string()
}
fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn three() -> usize {
    3
}
fn twelve() -> usize {
    12
}
fn slash() -> String {
    "/".into()
}
fn get() -> String {
    "GET".into()
}
fn default_median() -> Duration {
    Duration::from_millis(2)
}
fn default_p99() -> Duration {
    Duration::from_millis(10)
}

/// Durations as `humantime` strings (`250ms`, `10s`, `1m30s`).
mod duration {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration (like 500ms or 1m): {e}"
            ))
        })
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

/// One problem in a manifest, at a line when it can be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub message: String,
}

/// A workload as it runs: the manifest's entry with its defaults filled in.
impl WorkloadSpec {
    pub fn service_account(&self) -> &str {
        self.service_account.as_deref().unwrap_or(&self.name)
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        if self.labels.is_empty() {
            BTreeMap::from([("app".to_string(), self.name.clone())])
        } else {
            self.labels.clone()
        }
    }

    pub fn ports(&self) -> Vec<PortSpec> {
        if self.ports.is_empty() {
            vec![PortSpec {
                name: "http".into(),
                port: 8080,
            }]
        } else {
            self.ports.clone()
        }
    }

    /// The pod as policy sees it, with `port` as the real port of the first named port.
    pub fn policy_workload(&self, real_port: Option<u16>) -> Workload {
        let ports = self
            .ports()
            .iter()
            .enumerate()
            .map(|(i, p)| NamedPort {
                name: Some(p.name.clone()),
                port: if i == 0 {
                    real_port.unwrap_or(p.port)
                } else {
                    p.port
                },
            })
            .collect();
        Workload {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            service_account: self.service_account().to_string(),
            labels: self.labels(),
            ports,
            annotations: BTreeMap::new(),
            probes: Vec::new(),
        }
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl Manifest {
    /// Reads, parses and checks a manifest; every problem is in the error, one per line.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = read(path)?;
        let manifest = Manifest::parse(path, &text)?;
        let problems = manifest.check();
        if problems.is_empty() {
            return Ok(manifest);
        }
        let first = &problems[0];
        let mut message = first.message.clone();
        for p in &problems[1..] {
            let at = p.line.map(|l| format!(":{l}")).unwrap_or_default();
            message.push_str(&format!("\n{}{at}: {}", path.display(), p.message));
        }
        Err(SandboxError::Manifest {
            path: path.to_path_buf(),
            line: first.line,
            message,
        })
    }

    /// Parses without the checks that need the files around it.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let mut manifest: Manifest = serde_path_to_error::deserialize(de).map_err(|e| {
            let at = e.path().to_string();
            let line = e.inner().location().map(|l| l.line());
            let inner = strip_location(&e.inner().to_string()).to_string();
            SandboxError::Manifest {
                path: path.to_path_buf(),
                line,
                message: if at == "." {
                    inner
                } else {
                    format!("{at}: {inner}")
                },
            }
        })?;
        manifest.base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        manifest.path = path.to_path_buf();
        manifest.text = text.to_string();
        Ok(manifest)
    }

    pub fn schemas_dir(&self) -> PathBuf {
        self.base
            .join(self.schemas.dir.as_deref().unwrap_or(Path::new("schemas")))
    }

    pub fn policy_dir(&self) -> PathBuf {
        self.base
            .join(self.policy.dir.as_deref().unwrap_or(Path::new("policy")))
    }

    /// The policy directory and the schemas directory, relative to the manifest: the sandbox
    /// copies both side by side so that contracts' `readerSchemaFile` paths keep working.
    pub fn relative_dirs(&self) -> (PathBuf, PathBuf) {
        (
            self.policy.dir.clone().unwrap_or_else(|| "policy".into()),
            self.schemas.dir.clone().unwrap_or_else(|| "schemas".into()),
        )
    }

    pub fn default_policy(&self) -> DefaultPolicy {
        self.policy
            .default_policy
            .as_deref()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default()
    }

    pub fn control_plane(&self) -> Result<ControlPlane> {
        Ok(ControlPlane::new(
            crate::identity::DEFAULT_CONTROL_NS,
            &self.trust_domain,
        )?)
    }

    pub fn domain(&self) -> IdentityDomain {
        IdentityDomain {
            control_namespace: crate::identity::DEFAULT_CONTROL_NS.to_string(),
            trust_domain: self.trust_domain.clone(),
        }
    }

    pub fn workload(&self, name: &str) -> Option<&WorkloadSpec> {
        self.workloads
            .iter()
            .find(|w| w.name == name || w.key() == name)
    }

    /// The workload a call's target authority names, and the named port it asks for.
    pub fn resolve_target(&self, authority: &str) -> Option<(&WorkloadSpec, u16)> {
        let (host, port) = authority.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let host = host.strip_suffix(".svc.cluster.local").unwrap_or(host);
        let (name, ns) = host.split_once('.')?;
        let w = self
            .workloads
            .iter()
            .find(|w| w.name == name && w.namespace == ns)?;
        w.ports().iter().find(|p| p.port == port)?;
        Some((w, port))
    }

    /// The `.avsc` file of a subject version.
    pub fn schema_file(&self, subject: &str, version: u32) -> Option<PathBuf> {
        let s = self
            .schemas
            .subjects
            .iter()
            .find(|s| s.subject == subject)?;
        let file = s
            .versions
            .get(usize::try_from(version).ok()?.checked_sub(1)?)?;
        Some(self.schemas_dir().join(file))
    }

    /// The line of the first `key: value` (or `- key: value`) whose value starts with
    /// `value`, at or after `from`; for placing problems the parser cannot.
    fn line_of(&self, key: &str, value: &str, from: usize) -> Option<usize> {
        self.text
            .lines()
            .enumerate()
            .skip(from.saturating_sub(1))
            .find(|(_, l)| {
                let mut rest: &str = l;
                while let Some(i) = rest.find(key) {
                    let after = rest[i + key.len()..].trim_start();
                    if let Some(v) = after.strip_prefix(':') {
                        let v = v.trim_start().trim_start_matches(['"', '\'', '[']);
                        if v.starts_with(value) {
                            return true;
                        }
                    }
                    rest = &rest[i + key.len()..];
                }
                false
            })
            .map(|(i, _)| i + 1)
    }

    /// The line where a workload's entry starts.
    fn workload_line(&self, w: &WorkloadSpec) -> Option<usize> {
        let mut from = 1;
        while let Some(line) = self.line_of("name", &w.name, from) {
            let text = self.text.lines().nth(line - 1).unwrap_or("");
            if text.contains(&format!("name: {}", w.name)) && !text.contains("target") {
                let ns_near = self
                    .text
                    .lines()
                    .skip(line.saturating_sub(2))
                    .take(8)
                    .any(|l| l.contains(&w.namespace));
                if ns_near {
                    return Some(line);
                }
            }
            from = line + 1;
        }
        None
    }

    /// Every problem: names, references between workloads, calls, routes, schemas, policy
    /// and scenario steps. Empty when the manifest can run.
    pub fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut push = |line: Option<usize>, message: String| out.push(Problem { line, message });
        let cp = match self.control_plane() {
            Ok(cp) => Some(cp),
            Err(e) => {
                push(
                    self.line_of("trustDomain", "", 1),
                    format!("trustDomain: {e}"),
                );
                None
            }
        };
        if let Some(p) = &self.policy.default_policy
            && let Err(e) = p.parse::<DefaultPolicy>()
        {
            push(
                self.line_of("defaultPolicy", p, 1),
                format!("policy.defaultPolicy: {e}"),
            );
        }
        for ns in &self.namespaces {
            if let Some(cp) = &cp
                && let Err(e) = cp.identity("x", ns)
            {
                push(
                    self.line_of("namespaces", "", 1),
                    format!("namespace `{ns}`: {e}"),
                );
            }
        }
        let subjects = self.check_schemas(&mut push);

        let mut seen = HashSet::new();
        let instances: u32 = self.workloads.iter().map(|w| w.replicas).sum();
        if instances as usize > MAX_INSTANCES {
            push(
                None,
                format!(
                    "{instances} workload replicas: at most {MAX_INSTANCES} fit in one sandbox"
                ),
            );
        }
        if self.workloads.is_empty() {
            push(
                self.line_of("workloads", "", 1),
                "workloads: give at least one".into(),
            );
        }
        for w in &self.workloads {
            let line = self.workload_line(w);
            let at = format!("workload {}", w.key());
            if !seen.insert(w.key()) {
                push(line, format!("{at}: declared twice"));
            }
            if !self.namespaces.contains(&w.namespace) {
                push(
                    line,
                    format!(
                        "{at}: namespace `{}` is not in `namespaces` ({})",
                        w.namespace,
                        self.namespaces.join(", ")
                    ),
                );
            }
            if let Some(cp) = &cp
                && let Err(e) = cp.identity(w.service_account(), &w.namespace)
            {
                push(line, format!("{at}: {e}"));
            }
            if let Some(cp) = &cp
                && let Err(e) = cp.identity(&w.name, &w.namespace)
            {
                push(line, format!("{at}: name: {e}"));
            }
            if w.replicas == 0 || w.replicas > MAX_REPLICAS {
                push(line, format!("{at}: replicas must be 1 to {MAX_REPLICAS}"));
            }
            let mut names = HashSet::new();
            for p in w.ports() {
                if !crate::policy::validate::is_port_name(&p.name) || !names.insert(p.name.clone())
                {
                    push(
                        self.line_of("name", &p.name, line.unwrap_or(1)),
                        format!(
                            "{at}: port name `{}` is not a unique port name (like http)",
                            p.name
                        ),
                    );
                }
            }
            if !w.meshed && !w.routes.is_empty() {
                push(
                    line,
                    format!("{at}: an unmeshed workload is a client only; give it no routes"),
                );
            }
            self.check_routes(w, &at, line, &subjects, &mut push);
            self.check_calls(w, &at, line, &subjects, &mut push);
        }
        self.check_policy(&mut push);
        self.check_scenario(&mut push);
        out
    }

    /// Subject → number of versions, after checking that each schema file parses.
    fn check_schemas(
        &self,
        push: &mut impl FnMut(Option<usize>, String),
    ) -> BTreeMap<String, usize> {
        let mut subjects = BTreeMap::new();
        for s in &self.schemas.subjects {
            let line = self.line_of("subject", &s.subject, 1);
            if let Err(e) = crate::registry::store::validate_subject(&s.subject) {
                push(line, format!("subject {}: {e}", s.subject));
            }
            if let Some(level) = &s.compatibility
                && level.parse::<crate::avro::Level>().is_err()
            {
                push(
                    self.line_of("compatibility", level, line.unwrap_or(1)),
                    format!(
                        "subject {}: compatibility `{level}` is not a level (BACKWARD, FULL, NONE, ...)",
                        s.subject
                    ),
                );
            }
            if s.versions.is_empty() {
                push(
                    line,
                    format!("subject {}: list at least one version", s.subject),
                );
            }
            for file in &s.versions {
                let path = self.schemas_dir().join(file);
                let fline = self.line_of("versions", "", line.unwrap_or(1));
                match read(&path).and_then(|t| {
                    Schema::parse(&t).map_err(|e| SandboxError::Schema {
                        path: path.clone(),
                        message: e.to_string(),
                    })
                }) {
                    Ok(_) => {}
                    Err(e) => push(fline, format!("subject {}: {e}", s.subject)),
                }
            }
            if subjects
                .insert(s.subject.clone(), s.versions.len())
                .is_some()
            {
                push(line, format!("subject {}: declared twice", s.subject));
            }
        }
        subjects
    }

    fn check_message(
        &self,
        what: &str,
        subject: &str,
        version: u32,
        line: Option<usize>,
        subjects: &BTreeMap<String, usize>,
        push: &mut impl FnMut(Option<usize>, String),
    ) {
        match subjects.get(subject) {
            None => push(
                line,
                format!("{what}: subject `{subject}` is not in schemas.subjects"),
            ),
            Some(&n) if version == 0 || version as usize > n => push(
                line,
                format!("{what}: subject {subject} has versions 1 to {n}, not {version}"),
            ),
            Some(_) => {}
        }
    }

    fn check_routes(
        &self,
        w: &WorkloadSpec,
        at: &str,
        line: Option<usize>,
        subjects: &BTreeMap<String, usize>,
        push: &mut impl FnMut(Option<usize>, String),
    ) {
        for (i, r) in w.routes.iter().enumerate() {
            let what = format!("{at}: routes[{i}]");
            let rline = self.line_of("path", &r.path, line.unwrap_or(1)).or(line);
            if !r.path.starts_with('/') {
                push(
                    rline,
                    format!("{what}: path `{}` must start with /", r.path),
                );
            }
            if let Some(m) = &r.method
                && m.parse::<hyper::Method>().is_err()
            {
                push(rline, format!("{what}: `{m}` is not an HTTP method"));
            }
            if r.status.keys().any(|s| !(100..=599).contains(s)) {
                push(rline, format!("{what}: status codes are 100 to 599"));
            }
            if !r.status.is_empty() && r.status.values().all(|w| *w == 0) {
                push(rline, format!("{what}: status weights must not all be 0"));
            }
            if r.latency.median > r.latency.p99 {
                push(rline, format!("{what}: latency median is above p99"));
            }
            if r.latency.p99 > MAX_LATENCY {
                push(
                    rline,
                    format!("{what}: latency p99 is above {}s", MAX_LATENCY.as_secs()),
                );
            }
            if let Some(m) = &r.response {
                self.check_message(&what, &m.subject, m.version, rline, subjects, push);
            }
        }
    }

    fn check_calls(
        &self,
        w: &WorkloadSpec,
        at: &str,
        line: Option<usize>,
        subjects: &BTreeMap<String, usize>,
        push: &mut impl FnMut(Option<usize>, String),
    ) {
        let mut names = HashSet::new();
        for c in &w.calls {
            let what = format!("{at}: call {}", c.name);
            let cline = self
                .line_of("target", &c.target, line.unwrap_or(1))
                .or(line);
            if !names.insert(c.name.clone()) {
                push(cline, format!("{what}: declared twice"));
            }
            match self.resolve_target(&c.target) {
                None => push(
                    cline,
                    format!(
                        "{what}: target `{}` is not <workload>.<namespace>:<port> of a declared workload and port",
                        c.target
                    ),
                ),
                Some((t, _)) if !t.meshed => push(
                    cline,
                    format!("{what}: target {} is unmeshed and serves nothing", t.key()),
                ),
                Some(_) => {}
            }
            if !(c.rate > 0.0 && c.rate <= MAX_RATE) {
                push(
                    cline,
                    format!("{what}: rate must be above 0 and at most {MAX_RATE}"),
                );
            }
            if c.method.parse::<hyper::Method>().is_err() {
                push(
                    cline,
                    format!("{what}: `{}` is not an HTTP method", c.method),
                );
            }
            if !c.path.starts_with('/') {
                push(
                    cline,
                    format!("{what}: path `{}` must start with /", c.path),
                );
            }
            match (&c.subject, c.version) {
                (Some(s), v) => self.check_message(&what, s, v.unwrap_or(1), cline, subjects, push),
                (None, Some(_)) => push(cline, format!("{what}: a version needs a subject")),
                (None, None) => {}
            }
        }
    }

    /// Loads and lints the policy directory against the manifest's workloads.
    fn check_policy(&self, push: &mut impl FnMut(Option<usize>, String)) {
        let dir = self.policy_dir();
        if !dir.is_dir() {
            if self.policy.dir.is_some() {
                push(
                    self.line_of("dir", "", 1),
                    format!("policy.dir: {} is not a directory", dir.display()),
                );
            }
            return;
        }
        let settings = Settings {
            default_policy: self.default_policy(),
            domain: self.domain(),
            ..Settings::default()
        };
        let workloads: Vec<Workload> = self
            .workloads
            .iter()
            .map(|w| w.policy_workload(None))
            .collect();
        let (set, errors) = crate::policy::load::load_paths(std::slice::from_ref(&dir));
        let report = crate::policy::lint::lint(&set, errors, Some(&workloads), &settings);
        for e in report.errors {
            push(None, format!("policy: {e}"));
        }
    }

    fn check_scenario(&self, push: &mut impl FnMut(Option<usize>, String)) {
        let mut labels = HashSet::new();
        let mut from = self.line_of("scenario", "", 1).unwrap_or(1);
        for (i, step) in self.scenario.iter().enumerate() {
            let label = step.label(i);
            let key = match &step.action {
                Action::Rollout { .. } => "rollout",
                Action::ApplyPolicy(_) => "applyPolicy",
                Action::RemovePolicy(_) => "removePolicy",
                Action::RotateCert(_) => "rotateCert",
                Action::ExpireCert(_) => "expireCert",
                Action::Kill(_) => "kill",
                Action::Restart(_) => "restart",
                Action::Inject(_) => "inject",
                Action::Start(_) => "start",
            };
            let line = self.line_of(key, "", from);
            if let Some(l) = line {
                from = l + 1;
            }
            let what = format!("scenario {label}");
            if !labels.insert(label.clone()) {
                push(line, format!("{what}: a second step of this name"));
            }
            if let Some(name) = step.action.workload() {
                match self.workload(name) {
                    None => {
                        push(line, format!("{what}: no workload `{name}`"));
                        continue;
                    }
                    Some(w)
                        if !w.meshed
                            && !matches!(
                                step.action,
                                Action::Start(_) | Action::Kill(_) | Action::Restart(_)
                            ) =>
                    {
                        push(line, format!("{what}: workload {} is unmeshed", w.key()));
                    }
                    Some(_) => {}
                }
            }
            match &step.action {
                Action::Rollout {
                    workload,
                    call,
                    version,
                } => {
                    let Some(w) = self.workload(workload) else {
                        continue;
                    };
                    match w.calls.iter().find(|c| &c.name == call) {
                        None => push(line, format!("{what}: {} makes no call `{call}`", w.key())),
                        Some(c) => match &c.subject {
                            None => push(line, format!("{what}: call {call} sends no Avro body")),
                            Some(s) => {
                                let n = self
                                    .schemas
                                    .subjects
                                    .iter()
                                    .find(|x| &x.subject == s)
                                    .map_or(0, |x| x.versions.len());
                                if *version == 0 || *version as usize > n {
                                    push(
                                        line,
                                        format!(
                                            "{what}: subject {s} has versions 1 to {n}, not {version}"
                                        ),
                                    );
                                }
                            }
                        },
                    }
                }
                Action::ApplyPolicy(file) => {
                    let path = self.base.join(file);
                    if !path.is_file() {
                        push(line, format!("{what}: {} is not a file", path.display()));
                    } else if path.starts_with(self.policy_dir()) {
                        push(
                            line,
                            format!(
                                "{what}: {} is already in the policy directory; keep step files elsewhere",
                                path.display()
                            ),
                        );
                    }
                }
                Action::RemovePolicy(name) if name.contains('/') || name.contains("..") => {
                    push(
                        line,
                        format!("{what}: give a file name in the policy directory, not a path"),
                    );
                }
                Action::Inject(inj) => {
                    if inj.latency.is_some_and(|l| l > MAX_LATENCY) {
                        push(
                            line,
                            format!("{what}: latency is above {}s", MAX_LATENCY.as_secs()),
                        );
                    }
                    if inj.errors.is_some_and(|e| !(0.0..=1.0).contains(&e)) {
                        push(line, format!("{what}: errors is a share, 0 to 1"));
                    }
                    if let (Some(r), Some(w)) = (&inj.route, self.workload(&inj.workload))
                        && !w.routes.iter().any(|x| x.name.as_deref() == Some(r))
                    {
                        push(
                            line,
                            format!("{what}: {} has no route named `{r}`", w.key()),
                        );
                    }
                }
                Action::Start(name) if self.workload(name).is_some_and(|w| !w.on_demand) => {
                    push(
                        line,
                        format!("{what}: {name} starts with the sandbox; mark it onDemand: true"),
                    );
                }
                _ => {}
            }
        }
    }
}

fn read(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(SandboxError::Manifest {
            path: path.to_path_buf(),
            line: None,
            message: format!("{} bytes: too large for a manifest", meta.len()),
        });
    }
    std::fs::read_to_string(path).map_err(io(path))
}

/// serde_yaml_ng ends messages with " at line L column C"; the line is reported separately.
fn strip_location(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    /// Every key a manifest can have, each used once.
    const EVERY_KEY: &str = r#"
trustDomain: example.org
namespaces: [shop]
schemas:
  dir: schemas
  subjects:
  - {subject: shop.orders-value, compatibility: NONE, versions: [order.avsc]}
policy: {dir: policy, defaultPolicy: audit}
workloads:
- name: orders
  namespace: shop
  serviceAccount: orders-sa
  labels: {app: orders}
  ports: [{name: http, port: 8080}]
  replicas: 2
  meshed: true
  onDemand: false
  routes:
  - name: place
    method: POST
    path: /v1/orders
    status: {201: 9, 503: 1}
    latency: {median: 2ms, p99: 9ms}
    response: {subject: shop.orders-value, version: 1}
  calls:
  - name: self
    target: orders.shop:8080
    rate: 1
    method: POST
    path: /v1/orders
    subject: shop.orders-value
    version: 1
    payload: {maxItems: 2, maxString: 5}
scenario:
- {at: 1s, name: a, say: hi, rollout: {workload: orders, call: self, version: 1}}
- {applyPolicy: steps/p.yaml}
- {removePolicy: p.yaml}
- {rotateCert: orders}
- {expireCert: orders}
- {kill: orders}
- {restart: orders}
- {inject: {workload: orders, route: place, latency: 5ms, errors: 0.5}}
- {start: orders}
"#;

    fn schema() -> Json {
        serde_json::from_str(include_str!(
            "../../assets/schemas/sandbox-manifest.schema.json"
        ))
        .unwrap()
    }

    /// Checks that every key of `doc` is a property the schema declares at that place.
    fn described(root: &Json, schema: &Json, doc: &Json, at: &str) {
        let schema = match schema.get("$ref").and_then(Json::as_str) {
            Some(r) => &root["$defs"][r.trim_start_matches("#/$defs/")],
            None => schema,
        };
        match doc {
            Json::Object(map) => {
                for (k, v) in map {
                    let sub = schema["properties"]
                        .get(k)
                        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
                        .unwrap_or_else(|| panic!("{at}.{k} is not in the JSON schema"));
                    described(root, sub, v, &format!("{at}.{k}"));
                }
            }
            Json::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    described(root, &schema["items"], v, &format!("{at}[{i}]"));
                }
            }
            _ => {}
        }
    }

    fn json_of(yaml: &str) -> Json {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn the_json_schema_describes_every_key_and_the_demo() {
        let p = Path::new("sandbox.yaml");
        Manifest::parse(p, EVERY_KEY).expect("every key is a manifest key");
        let root = schema();
        described(&root, &root, &json_of(EVERY_KEY), "");
        let demo = super::super::demo::FILES[0].1;
        described(&root, &root, &json_of(demo), "");
    }

    #[test]
    fn parse_errors_name_the_field_and_line() {
        let p = Path::new("sandbox.yaml");
        let err = Manifest::parse(
            p,
            "namespaces: [shop]\nworkloads:\n- name: web\n  namespace: shop\n  colour: blue\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("sandbox.yaml:5: workloads[0]"), "{err}");
        assert!(err.contains("colour"), "{err}");
        let err = Manifest::parse(
            p,
            "namespaces: [shop]\nworkloads: []\nscenario:\n- at: soon\n  kill: web\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`soon` is not a duration"), "{err}");
    }

    #[test]
    fn checks_place_each_problem_on_its_line() {
        let dir = std::env::temp_dir().join(format!("meshlens-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "namespaces: [shop]\nworkloads:\n- name: web\n  namespace: shop\n  calls:\n  - name: buy\n    target: orders.shop:8080\n    rate: 500\n- name: orders\n  namespace: shop\nscenario:\n- name: go\n  rollout: {workload: web, call: sell, version: 1}\n- name: go\n  kill: nobody\n";
        let m = Manifest::parse(&dir.join("sandbox.yaml"), text).unwrap();
        let problems = m.check();
        let _ = std::fs::remove_dir_all(&dir);
        let find = |needle: &str| {
            problems
                .iter()
                .find(|p| p.message.contains(needle))
                .unwrap_or_else(|| panic!("no `{needle}` in {problems:?}"))
                .line
        };
        assert_eq!(find("rate must be above 0"), Some(7));
        assert_eq!(find("makes no call `sell`"), Some(13));
        assert_eq!(find("a second step of this name"), Some(15));
        assert_eq!(find("no workload `nobody`"), Some(15));
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn damaged_manifests_are_refused_without_panicking() {
        let path = Path::new("/nonexistent/meshlens/sandbox.yaml");
        let demo = super::super::demo::FILES[0].1;
        for text in [EVERY_KEY, demo] {
            let lines: Vec<&str> = text.lines().collect();
            for skip in 0..lines.len() {
                let mut damaged = lines.clone();
                damaged.remove(skip);
                if let Ok(m) = Manifest::parse(path, &damaged.join("\n")) {
                    let _ = m.check();
                }
                let cut = &text[..text.char_indices().nth(skip * 7).map_or(0, |(i, _)| i)];
                if let Ok(m) = Manifest::parse(path, cut) {
                    let _ = m.check();
                }
            }
        }
        for odd in [
            "namespaces: [shop]\nworkloads:\n- {name: w, namespace: shop, routes: [{status: {200: 0}, latency: {median: 1s, p99: 1ms}}]}\n",
            "namespaces: [shop]\nworkloads:\n- {name: w, namespace: shop, calls: [{name: c, target: ':', rate: -1}]}\n",
            "namespaces: ['']\nworkloads:\n- {name: '', namespace: ''}\nscenario: [{inject: {workload: '', errors: 9}}]\n",
        ] {
            let m = Manifest::parse(path, odd).unwrap();
            assert!(!m.check().is_empty(), "{odd}");
        }
    }

    #[test]
    fn defaults_fill_in_what_a_workload_leaves_out() {
        let m = Manifest::parse(
            Path::new("s.yaml"),
            "namespaces: [shop]\nworkloads:\n- {name: web, namespace: shop}\n",
        )
        .unwrap();
        let w = &m.workloads[0];
        assert_eq!(w.service_account(), "web");
        assert_eq!(w.labels()["app"], "web");
        let pw = w.policy_workload(Some(41234));
        assert_eq!(pw.ports[0].name.as_deref(), Some("http"));
        assert_eq!(pw.ports[0].port, 41234);
        assert_eq!(
            m.resolve_target("web.shop.svc.cluster.local:8080")
                .map(|(w, p)| (w.key(), p)),
            Some(("shop/web".to_string(), 8080))
        );
        assert!(m.resolve_target("web.shop:9090").is_none());
    }
}
