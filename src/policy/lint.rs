//! `policy lint`: every resource checked as the admission webhook would, references between
//! resources resolved, contracts compiled, and — given the workloads — warnings for what would
//! silently stop matching: identities, service accounts and namespaces no workload has,
//! Servers that select no pod, Servers shadowed by an older one.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use super::contract::{self, Contract};
use super::defaults::Settings;
use super::error::{PolicyError, Source};
use super::ids::IdentityMatch;
use super::index::{Index, identity_ref_match};
use super::load::{Loaded, PolicySet};
use super::resources::{ProxyProtocol, Resource, Spec};
use super::validate::validate;
use super::workload::Workload;

/// Something that is valid but probably not what was meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub at: Source,
    pub kind: String,
    pub name: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {}: {}: {}",
            self.at, self.kind, self.name, self.field, self.message
        )
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<PolicyError>,
    pub warnings: Vec<Warning>,
    pub contracts: Vec<Contract>,
    /// How many resources were checked.
    pub resources: usize,
}

fn finding(l: &Loaded, field: &str, message: String) -> (Source, String, String, String, String) {
    (
        l.at.clone(),
        l.resource.kind().to_string(),
        l.resource.name().to_string(),
        field.to_string(),
        message,
    )
}

fn error(l: &Loaded, field: &str, message: String) -> PolicyError {
    let (at, kind, name, field, message) = finding(l, field, message);
    PolicyError::Invalid {
        at: at.into(),
        kind,
        name,
        field,
        message,
    }
}

fn warning(l: &Loaded, field: &str, message: String) -> Warning {
    let (at, kind, name, field, message) = finding(l, field, message);
    Warning {
        at,
        kind,
        name,
        field,
        message,
    }
}

/// The resources Linkerd's admission webhook would accept; the rest come back as errors.
pub fn admitted(set: PolicySet) -> (PolicySet, Vec<PolicyError>) {
    let mut errors = Vec::new();
    let mut ok = PolicySet {
        ignored: set.ignored,
        ..PolicySet::default()
    };
    for l in set.resources {
        let problems = validate(&l.resource);
        if problems.is_empty() {
            ok.resources.push(l);
        } else {
            errors.extend(problems.into_iter().map(|(f, m)| error(&l, &f, m)));
        }
    }
    (ok, errors)
}

/// Lints a loaded set; `load_errors` (syntax, unreadable files) are reported first.
pub fn lint(
    set: &PolicySet,
    load_errors: Vec<PolicyError>,
    workloads: Option<&[Workload]>,
    settings: &Settings,
) -> Report {
    let mut report = Report {
        errors: load_errors,
        resources: set.resources.len(),
        ..Report::default()
    };
    let mut seen: HashMap<(&str, &str, &str, &str), &Loaded> = HashMap::new();
    for l in &set.resources {
        let r = &l.resource;
        for (field, message) in validate(r) {
            report.errors.push(error(l, &field, message));
        }
        if let Spec::SchemaContract(spec) = &r.spec {
            let base = l.at.file.parent().unwrap_or(Path::new("."));
            match contract::compile(r.name(), r.namespace(), spec, base, &settings.domain) {
                Ok(c) => report.contracts.push(c),
                Err(problems) => report
                    .errors
                    .extend(problems.into_iter().map(|(f, m)| error(l, &f, m))),
            }
        }
        let key = (r.group(), r.kind(), r.namespace(), r.name());
        if let Some(first) = seen.get(&key) {
            report.errors.push(error(
                l,
                "metadata.name",
                format!(
                    "{} {}/{} is already defined at {}",
                    r.kind(),
                    r.namespace(),
                    r.name(),
                    first.at
                ),
            ));
        } else {
            seen.insert(key, l);
        }
        references(set, l, &mut report);
    }
    if let Some(ws) = workloads {
        against_workloads(set, ws, settings, &mut report);
    }
    // File and document order; a stable sort keeps each document's errors in field order.
    report
        .errors
        .sort_by(|a, b| a.position().cmp(&b.position()));
    report
}

fn find<'a>(set: &'a PolicySet, kind: &str, ns: &str, name: &str) -> Option<&'a Resource> {
    set.iter()
        .find(|r| r.kind().eq_ignore_ascii_case(kind) && r.namespace() == ns && r.name() == name)
}

/// Targets, parents and authentications must exist in the set.
fn references(set: &PolicySet, l: &Loaded, report: &mut Report) {
    let r = &l.resource;
    let ns = r.namespace();
    let mut missing = |field: &str, kind: &str, ref_ns: &str, name: &str| {
        if !name.is_empty() && find(set, kind, ref_ns, name).is_none() {
            report.errors.push(error(
                l,
                field,
                format!("{kind} {ref_ns}/{name} does not exist in the given files"),
            ));
        }
    };
    match &r.spec {
        Spec::AuthorizationPolicy(s) => {
            let t = &s.target_ref;
            if !t.is("Namespace") {
                missing("spec.targetRef.name", &t.kind, ns, t.name());
            }
            for (i, a) in s.required_authentication_refs.iter().enumerate() {
                if a.is("MeshTLSAuthentication") || a.is("NetworkAuthentication") {
                    let ref_ns = a.namespace.as_deref().unwrap_or(ns);
                    missing(
                        &format!("spec.requiredAuthenticationRefs[{i}].name"),
                        &a.kind,
                        ref_ns,
                        a.name(),
                    );
                }
            }
        }
        Spec::ServerAuthorization(s) => {
            if let Some(name) = &s.server.name {
                missing("spec.server.name", "Server", ns, name);
            }
        }
        Spec::HttpRoute(_) | Spec::GrpcRoute(_) => {
            let (parents, grpc) = match &r.spec {
                Spec::HttpRoute(s) => (&s.parent_refs, false),
                Spec::GrpcRoute(s) => (&s.parent_refs, true),
                _ => return,
            };
            for (i, p) in parents.iter().enumerate().filter(|(_, p)| p.is_server()) {
                let field = format!("spec.parentRefs[{i}].name");
                let ref_ns = p.namespace.as_deref().unwrap_or(ns);
                missing(&field, "Server", ref_ns, &p.name);
                if let Some(Spec::Server(server)) =
                    find(set, "Server", ref_ns, &p.name).map(|s| &s.spec)
                    && (server.proxy_protocol == ProxyProtocol::Grpc) != grpc
                {
                    report.warnings.push(warning(
                        l,
                        &field,
                        format!(
                            "Server {} has proxyProtocol {}, so its {} are the ones served; this route is never used",
                            p.name,
                            server.proxy_protocol.as_str(),
                            if grpc { "HTTPRoutes" } else { "GRPCRoutes" }
                        ),
                    ));
                }
            }
        }
        Spec::SchemaContract(s) => missing(
            "spec.targetRef.name",
            &s.target_ref.kind,
            ns,
            s.target_ref.name(),
        ),
        _ => {}
    }
}

fn against_workloads(set: &PolicySet, ws: &[Workload], settings: &Settings, report: &mut Report) {
    let domain = &settings.domain;
    let ids: Vec<String> = ws.iter().map(|w| w.identity(domain)).collect();
    // Names outside our trust domain (other clusters, SPIFFE ids) cannot be checked.
    let matches_none = |m: &IdentityMatch| match m {
        IdentityMatch::Any => false,
        IdentityMatch::Exact(id) => domain.split(id).is_some() && !ids.contains(id),
        IdentityMatch::Suffix(s) => {
            domain.split(&format!("x{s}")).is_some() && !ids.iter().any(|id| m.matches(id))
        }
    };
    let explain = |m: &IdentityMatch| match m {
        IdentityMatch::Exact(id) => match domain.split(id) {
            Some((ns, sa)) => format!(
                "identity {id} matches no workload: none runs as service account `{sa}` in namespace `{ns}`"
            ),
            None => format!("identity {id} matches no workload"),
        },
        other => {
            format!("identity {other} matches no workload: no workload runs in that namespace")
        }
    };
    for l in &set.resources {
        let r = &l.resource;
        let ns = r.namespace();
        let mut check = |field: String, m: IdentityMatch| {
            if matches_none(&m) {
                report.warnings.push(warning(l, &field, explain(&m)));
            }
        };
        match &r.spec {
            Spec::MeshTlsAuthentication(s) => {
                for (i, id) in s.identities.iter().enumerate() {
                    if let Ok(m) = IdentityMatch::parse(id) {
                        check(format!("spec.identities[{i}]"), m);
                    }
                }
                for (i, rf) in s.identity_refs.iter().enumerate() {
                    check(
                        format!("spec.identityRefs[{i}]"),
                        identity_ref_match(domain, ns, rf),
                    );
                }
            }
            Spec::AuthorizationPolicy(s) => {
                for (i, a) in s.required_authentication_refs.iter().enumerate() {
                    if a.is("ServiceAccount") {
                        let ref_ns = a.namespace.as_deref().unwrap_or(ns);
                        check(
                            format!("spec.requiredAuthenticationRefs[{i}]"),
                            IdentityMatch::Exact(domain.service_account(ref_ns, a.name())),
                        );
                    }
                }
            }
            Spec::ServerAuthorization(s) => {
                if let Some(m) = &s.client.mesh_tls {
                    for (i, id) in m.identities.iter().enumerate() {
                        if let Ok(im) = IdentityMatch::parse(id) {
                            check(format!("spec.client.meshTLS.identities[{i}]"), im);
                        }
                    }
                    for (i, sa) in m.service_accounts.iter().enumerate() {
                        let sa_ns = sa.namespace.as_deref().unwrap_or(ns);
                        check(
                            format!("spec.client.meshTLS.serviceAccounts[{i}]"),
                            IdentityMatch::Exact(domain.service_account(sa_ns, &sa.name)),
                        );
                    }
                }
            }
            Spec::SchemaContract(s) => {
                for (i, sub) in s.subjects.iter().enumerate() {
                    for (j, id) in sub.producers.identities.iter().enumerate() {
                        if let Ok(m) = IdentityMatch::parse(id) {
                            check(format!("spec.subjects[{i}].producers.identities[{j}]"), m);
                        }
                    }
                    for (j, sa) in sub.producers.service_accounts.iter().enumerate() {
                        let sa_ns = sa.namespace.as_deref().unwrap_or(ns);
                        check(
                            format!("spec.subjects[{i}].producers.serviceAccounts[{j}]"),
                            IdentityMatch::Exact(domain.service_account(sa_ns, &sa.name)),
                        );
                    }
                }
            }
            Spec::Server(s) => {
                let Some(sel) = &s.pod_selector else { continue };
                let selected: Vec<&Workload> = ws
                    .iter()
                    .filter(|w| w.namespace == ns && sel.matches(&w.labels))
                    .collect();
                if selected.is_empty() {
                    report.warnings.push(warning(
                        l,
                        "spec.podSelector",
                        format!("selects no pod: no workload in namespace `{ns}` has these labels"),
                    ));
                } else if selected.iter().all(|w| w.resolve_port(&s.port).is_empty()) {
                    let names: Vec<_> = selected.iter().map(|w| w.name.as_str()).collect();
                    report.warnings.push(warning(
                        l,
                        "spec.port",
                        format!(
                            "selects no pod: the selected workloads ({}) declare no port named `{}`",
                            names.join(", "),
                            s.port
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    let index = Index::build(set, ws, settings);
    let mut overlaps: Vec<_> = index
        .workloads()
        .flat_map(|w| w.overlaps.iter().map(move |o| (w, o)))
        .collect();
    overlaps.sort_by(|a, b| {
        (&a.0.workload.namespace, &a.0.workload.name, a.1.port).cmp(&(
            &b.0.workload.namespace,
            &b.0.workload.name,
            b.1.port,
        ))
    });
    for (w, o) in overlaps {
        let ns = &w.workload.namespace;
        if let Some(l) = set.resources.iter().find(|l| {
            l.resource.kind() == "Server"
                && l.resource.namespace() == ns
                && l.resource.name() == o.loser
        }) {
            report.warnings.push(warning(
                l,
                "spec.port",
                format!(
                    "port {} of workload {ns}/{} already belongs to the older Server {}; this one is ignored there",
                    o.port, w.workload.name, o.winner
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load::load_str;
    use crate::policy::workload::parse_workloads;

    const POLICIES: &str = "
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: orders-http, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: http}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: orders-admin, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: admin}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: callers, namespace: shop}
spec:
  identities: [web.shop.serviceaccount.identity.linkerd.cluster.local, '*.backoffice.serviceaccount.identity.linkerd.cluster.local']
  identityRefs: [{kind: ServiceAccount, name: web}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: orders-authz, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: orders-http}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: callers}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: dangling, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: orders-grpc}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: NetworkAuthentication, name: nowhere}]
";

    fn run(workloads: Option<&str>) -> Report {
        let mut set = PolicySet::default();
        let mut errors = Vec::new();
        load_str(Path::new("p.yaml"), POLICIES, &mut set, &mut errors);
        let ws = workloads.map(|w| parse_workloads(Path::new("w.yaml"), w).unwrap());
        lint(&set, errors, ws.as_deref(), &Settings::default())
    }

    #[test]
    fn missing_references_are_errors() {
        let r = run(None);
        let errors: Vec<_> = r.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("document 5: AuthorizationPolicy dangling: spec.targetRef.name: Server shop/orders-grpc does not exist"));
        assert!(errors[1].contains("spec.requiredAuthenticationRefs[0].name: NetworkAuthentication shop/nowhere does not exist"));
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn a_namespace_rename_leaves_warnings() {
        // The shop moved to `store` and web got its own service account name.
        let r = run(Some(
            "- {namespace: store, name: orders, serviceAccount: orders, labels: {app: orders}, ports: [{name: http, port: 8080}]}\n\
             - {namespace: shop, name: orders, serviceAccount: orders, labels: {app: orders}, ports: [{name: http, port: 8080}]}\n\
             - {namespace: shop, name: web, serviceAccount: web-frontend, labels: {app: web}}\n",
        ));
        let warnings: Vec<_> = r.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
        assert!(warnings[0].contains("Server orders-admin: spec.port: selects no pod: the selected workloads (orders) declare no port named `admin`"));
        assert!(warnings[1].contains("spec.identities[0]: identity web.shop.serviceaccount.identity.linkerd.cluster.local matches no workload: none runs as service account `web` in namespace `shop`"));
        assert!(warnings[2].contains("spec.identities[1]: identity *.backoffice"));
        assert!(warnings[3].contains("spec.identityRefs[0]"));
    }

    #[test]
    fn admitted_drops_what_the_webhook_rejects() {
        let mut set = PolicySet::default();
        let mut errors = Vec::new();
        load_str(
            Path::new("p.yaml"),
            "apiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata: {name: n}\nspec: {networks: [{cidr: nope}]}\n",
            &mut set,
            &mut errors,
        );
        let (ok, errors) = admitted(set);
        assert!(ok.resources.is_empty());
        assert!(errors[0].to_string().contains("spec.networks[0].cidr"));
    }
}
