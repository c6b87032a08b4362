//! The index: for every workload and port, the Server that owns it (or the default server),
//! its routes with their route-level authorizations, and the server-level authorization list,
//! all resolved ahead of time so that a decision is a hash lookup and two short list walks.
//!
//! Orders that Linkerd leaves to a hash map are made stable here: within each group,
//! authorizations are sorted by creationTimestamp then name, and the server-level list is
//! ServerAuthorizations, then AuthorizationPolicies targeting the Server, then those targeting
//! the Namespace, then the Server's `accessPolicy`, then `localhost`.
//!
//! Default servers depend on the workload, not just on the default policy: a port listed in
//! `proxy-require-identity-inbound-ports` gets the authenticated twin of an allow-default, and a
//! port with HTTP probes gets a `probe` route. The opaque-ports annotation does not change the
//! server, only the protocol it is spoken with, so it is kept per workload and applied at lookup.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ipnet::IpNet;

use super::authz::{Authentication, Authz, Meta, NetworkMatch};
use super::defaults::{DefaultPolicy, Settings, parse_cidr};
use super::ids::{IdentityDomain, IdentityMatch};
use super::load::PolicySet;
use super::resources::{
    AuthorizationPolicySpec, MeshTlsAuthenticationSpec, Network, NetworkAuthenticationSpec,
    ObjectRef, ProxyProtocol, Resource, ServerAuthorizationSpec, ServerSpec, Spec,
};
use super::route::RouteMatcher;
use super::workload::{PortSet, Workload};

/// A route attached to a Server, with the authorizations that target it.
#[derive(Debug)]
pub struct RoutePolicy {
    pub meta: Meta,
    pub matcher: RouteMatcher,
    pub authzs: Vec<Arc<Authz>>,
}

/// Everything about one Server (or a default server) that evaluation needs.
#[derive(Debug)]
pub struct ServerPolicy {
    pub meta: Meta,
    pub protocol: ProxyProtocol,
    /// Attached routes, oldest first; empty means the match-all `default` route.
    pub routes: Vec<RoutePolicy>,
    /// Server-level authorizations, ending with `localhost`.
    pub authzs: Vec<Arc<Authz>>,
}

/// A Server that lost a port to an older one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub port: u16,
    pub winner: String,
    pub loser: String,
}

#[derive(Debug)]
pub struct WorkloadPolicy {
    pub workload: Workload,
    pub default_policy: DefaultPolicy,
    /// Ports a Server owns, and default servers with a probe route (ports with HTTP probes).
    ports: HashMap<u16, Arc<ServerPolicy>>,
    default_server: Arc<ServerPolicy>,
    /// The default server on `require_identity_ports` (the same one when nothing upgrades).
    authenticated_default_server: Arc<ServerPolicy>,
    require_identity_ports: PortSet,
    opaque_ports: PortSet,
    pub overlaps: Vec<Overlap>,
}

impl WorkloadPolicy {
    /// The Server owning `port`, else the default server for that port.
    pub fn server(&self, port: u16) -> &ServerPolicy {
        match self.ports.get(&port) {
            Some(s) => s,
            None if self.require_identity_ports.contains(port) => {
                &self.authenticated_default_server
            }
            None => &self.default_server,
        }
    }

    /// The protocol the proxy speaks on `port`: the Server's `proxyProtocol`, except that
    /// `unknown` (detect) — which is also what default servers have — becomes opaque on a
    /// port of the opaque-ports annotation, where the proxy never looks for HTTP.
    pub fn protocol(&self, port: u16) -> ProxyProtocol {
        match self.server(port).protocol {
            ProxyProtocol::Unknown if self.opaque_ports.contains(port) => ProxyProtocol::Opaque,
            p => p,
        }
    }
}

#[derive(Debug)]
pub struct Index {
    pub settings: Settings,
    workloads: HashMap<String, HashMap<String, WorkloadPolicy>>,
    pub default_route: Meta,
}

impl Index {
    pub fn workload(&self, namespace: &str, name: &str) -> Option<&WorkloadPolicy> {
        self.workloads.get(namespace)?.get(name)
    }

    pub fn workloads(&self) -> impl Iterator<Item = &WorkloadPolicy> {
        self.workloads.values().flat_map(|m| m.values())
    }

    /// Resolves every workload's ports against the resources. Invalid resources are served
    /// as Linkerd would serve them if they had been admitted; run `lint` to reject them.
    pub fn build(set: &PolicySet, workloads: &[Workload], settings: &Settings) -> Index {
        let b = Builder::new(set, settings);
        // Keyed by the probe paths too: a Server without routes carries the probe route of
        // the port it serves, and one Server may serve ports with different probes.
        let mut servers: HashMap<(&str, &str, Vec<String>), Arc<ServerPolicy>> = HashMap::new();
        let defaults: HashMap<DefaultPolicy, Arc<ServerPolicy>> = DefaultPolicy::ALL
            .into_iter()
            .map(|p| (p, Arc::new(b.default_server(p, &[]))))
            .collect();
        let mut index = Index {
            settings: settings.clone(),
            workloads: HashMap::new(),
            default_route: Meta::new("default", "default"),
        };
        for w in workloads {
            let ns_annotations = b.namespaces.get(w.namespace.as_str()).copied();
            let default_policy = w.default_policy(ns_annotations, settings.default_policy);
            let require_identity_ports = w.require_identity_ports();
            let mut ports: HashMap<u16, Arc<ServerPolicy>> = HashMap::new();
            let mut owners: HashMap<u16, &str> = HashMap::new();
            let mut overlaps = Vec::new();
            for (r, spec) in b.servers.get(w.namespace.as_str()).into_iter().flatten() {
                let selected = spec
                    .pod_selector
                    .as_ref()
                    .is_some_and(|s| s.matches(&w.labels));
                if !selected {
                    continue;
                }
                for port in w.resolve_port(&spec.port) {
                    if let Some(winner) = owners.get(&port) {
                        overlaps.push(Overlap {
                            port,
                            winner: winner.to_string(),
                            loser: r.name().to_string(),
                        });
                        continue;
                    }
                    owners.insert(port, r.name());
                    let paths = w.probe_paths(port);
                    let policy = servers
                        .entry((r.namespace(), r.name(), paths))
                        .or_insert_with_key(|(_, _, paths)| Arc::new(b.server(r, spec, paths)));
                    ports.insert(port, policy.clone());
                }
            }
            for port in w.probe_ports() {
                if owners.contains_key(&port) {
                    continue;
                }
                let policy = if require_identity_ports.contains(port) {
                    default_policy.require_identity()
                } else {
                    default_policy
                };
                let server = b.default_server(policy, &w.probe_paths(port));
                ports.insert(port, Arc::new(server));
            }
            index
                .workloads
                .entry(w.namespace.clone())
                .or_default()
                .insert(
                    w.name.clone(),
                    WorkloadPolicy {
                        workload: w.clone(),
                        default_policy,
                        ports,
                        default_server: defaults[&default_policy].clone(),
                        authenticated_default_server: defaults[&default_policy.require_identity()]
                            .clone(),
                        require_identity_ports,
                        opaque_ports: w.opaque_ports(ns_annotations),
                        overlaps,
                    },
                );
        }
        index
    }
}

fn all_networks() -> Vec<NetworkMatch> {
    ["0.0.0.0/0", "::/0"]
        .iter()
        .filter_map(|n| n.parse::<IpNet>().ok())
        .map(NetworkMatch::all)
        .collect()
}

fn networks(list: &[Network]) -> Vec<NetworkMatch> {
    list.iter()
        .filter_map(|n| {
            Some(NetworkMatch {
                net: parse_cidr(&n.cidr).ok()?,
                except: n.except.iter().filter_map(|e| parse_cidr(e).ok()).collect(),
            })
        })
        .collect()
}

/// The authorization a default policy (or a Server's `accessPolicy`) grants; none for `deny`.
pub fn default_authz(policy: DefaultPolicy, settings: &Settings) -> Option<Authz> {
    if policy == DefaultPolicy::Deny {
        return None;
    }
    Some(Authz {
        meta: Meta::new("default", policy.as_str()),
        networks: if policy.cluster_only() {
            settings
                .cluster_networks
                .iter()
                .copied()
                .map(NetworkMatch::all)
                .collect()
        } else {
            all_networks()
        },
        authentication: if policy.authenticated() {
            Authentication::TlsAuthenticated(vec![IdentityMatch::Any])
        } else {
            Authentication::Unauthenticated
        },
        unresolved: None,
    })
}

/// What a MeshTLSAuthentication `identityRefs` entry admits: a `ServiceAccount` its exact
/// identity (`*`: every account of its namespace), a `Namespace` every account in it (`*`:
/// any identity). `ns` is the authentication's namespace.
pub fn identity_ref_match(domain: &IdentityDomain, ns: &str, r: &ObjectRef) -> IdentityMatch {
    let ref_ns = r.namespace.as_deref().unwrap_or(ns);
    match (r.is("Namespace"), r.name()) {
        (true, "*") => IdentityMatch::Any,
        (true, name) => domain.namespace_wildcard(name),
        (false, "*") => domain.namespace_wildcard(ref_ns),
        (false, name) => IdentityMatch::Exact(domain.service_account(ref_ns, name)),
    }
}

/// The built-in authorization every inbound proxy adds for its own pod.
pub fn localhost_authz() -> Authz {
    Authz {
        meta: Meta::new("default", "localhost"),
        networks: ["127.0.0.1/32", "::1/128"]
            .iter()
            .filter_map(|n| n.parse::<IpNet>().ok())
            .map(NetworkMatch::all)
            .collect(),
        authentication: Authentication::Unauthenticated,
        unresolved: None,
    }
}

type Aged<'a, T> = Vec<(&'a Resource, T)>;

/// The resources grouped by what they attach to, each group oldest first.
struct Builder<'a> {
    settings: &'a Settings,
    namespaces: HashMap<&'a str, &'a BTreeMap<String, String>>,
    servers: HashMap<&'a str, Aged<'a, &'a ServerSpec>>,
    server_authorizations: HashMap<&'a str, Aged<'a, (&'a ServerAuthorizationSpec, Arc<Authz>)>>,
    /// Keyed by `ns/Kind/group/name` of the target.
    policies: HashMap<String, Aged<'a, Arc<Authz>>>,
    /// Keyed by `ns/server`.
    routes: HashMap<String, Aged<'a, (bool, Option<RouteMatcher>)>>,
    localhost: Arc<Authz>,
}

fn policy_key(ns: &str, kind: &str, group: &str, name: &str) -> String {
    format!("{ns}/{}/{group}/{name}", kind.to_ascii_lowercase())
}

impl<'a> Builder<'a> {
    fn new(set: &'a PolicySet, settings: &'a Settings) -> Builder<'a> {
        let mut b = Builder {
            settings,
            namespaces: HashMap::new(),
            servers: HashMap::new(),
            server_authorizations: HashMap::new(),
            policies: HashMap::new(),
            routes: HashMap::new(),
            localhost: Arc::new(localhost_authz()),
        };
        let mut mtls: HashMap<(&str, &str), &MeshTlsAuthenticationSpec> = HashMap::new();
        let mut nets: HashMap<(&str, &str), &NetworkAuthenticationSpec> = HashMap::new();
        for r in set.iter() {
            match &r.spec {
                Spec::MeshTlsAuthentication(s) => {
                    mtls.entry((r.namespace(), r.name())).or_insert(s);
                }
                Spec::NetworkAuthentication(s) => {
                    nets.entry((r.namespace(), r.name())).or_insert(s);
                }
                _ => {}
            }
        }
        for r in set.iter() {
            let ns = r.namespace();
            match &r.spec {
                Spec::Namespace => {
                    b.namespaces.insert(r.name(), &r.metadata.annotations);
                }
                Spec::Server(s) => b.servers.entry(ns).or_default().push((r, s)),
                Spec::ServerAuthorization(s) => {
                    let authz = Arc::new(b.server_authorization(r, s));
                    b.server_authorizations
                        .entry(ns)
                        .or_default()
                        .push((r, (s, authz)));
                }
                Spec::AuthorizationPolicy(s) => {
                    let authz = Arc::new(b.authorization_policy(r, s, &mtls, &nets));
                    let t = &s.target_ref;
                    let key = if t.is("Namespace") {
                        policy_key(ns, "Namespace", "", "")
                    } else if t.is("HTTPRoute") || t.is("GRPCRoute") {
                        // Either HTTPRoute group names the same route.
                        policy_key(ns, &t.kind, "", t.name())
                    } else {
                        policy_key(ns, &t.kind, t.group(), t.name())
                    };
                    b.policies.entry(key).or_default().push((r, authz));
                }
                Spec::HttpRoute(s) => {
                    for p in s.parent_refs.iter().filter(|p| p.is_server()) {
                        if p.namespace.as_deref().is_none_or(|n| n == ns) {
                            let key = format!("{ns}/{}", p.name);
                            b.routes
                                .entry(key)
                                .or_default()
                                .push((r, (false, RouteMatcher::http(s))));
                        }
                    }
                }
                Spec::GrpcRoute(s) => {
                    for p in s.parent_refs.iter().filter(|p| p.is_server()) {
                        if p.namespace.as_deref().is_none_or(|n| n == ns) {
                            let key = format!("{ns}/{}", p.name);
                            b.routes
                                .entry(key)
                                .or_default()
                                .push((r, (true, RouteMatcher::grpc(s))));
                        }
                    }
                }
                _ => {}
            }
        }
        for v in b.servers.values_mut() {
            v.sort_by(|a, b| a.0.age_key().cmp(&b.0.age_key()));
        }
        for v in b.server_authorizations.values_mut() {
            v.sort_by(|a, b| a.0.age_key().cmp(&b.0.age_key()));
        }
        for v in b.policies.values_mut() {
            v.sort_by(|a, b| a.0.age_key().cmp(&b.0.age_key()));
        }
        for v in b.routes.values_mut() {
            v.sort_by(|a, b| a.0.age_key().cmp(&b.0.age_key()));
        }
        b
    }

    fn server_authorization(&self, r: &Resource, s: &ServerAuthorizationSpec) -> Authz {
        let c = &s.client;
        let authentication = match (&c.mesh_tls, c.unauthenticated) {
            (_, true) | (None, false) => Authentication::Unauthenticated,
            (Some(m), false) if m.unauthenticated_tls => Authentication::TlsUnauthenticated,
            (Some(m), false) => Authentication::TlsAuthenticated(
                m.identities
                    .iter()
                    .filter_map(|i| IdentityMatch::parse(i).ok())
                    .chain(m.service_accounts.iter().map(|sa| {
                        let ns = sa.namespace.as_deref().unwrap_or(r.namespace());
                        IdentityMatch::Exact(self.settings.domain.service_account(ns, &sa.name))
                    }))
                    .collect(),
            ),
        };
        Authz {
            meta: Meta::new("serverauthorization", r.name()),
            networks: match &c.networks {
                Some(list) => networks(list),
                None => self
                    .settings
                    .cluster_networks
                    .iter()
                    .copied()
                    .map(NetworkMatch::all)
                    .collect(),
            },
            authentication,
            unresolved: None,
        }
    }

    fn authorization_policy(
        &self,
        r: &Resource,
        s: &AuthorizationPolicySpec,
        mtls: &HashMap<(&str, &str), &MeshTlsAuthenticationSpec>,
        nets: &HashMap<(&str, &str), &NetworkAuthenticationSpec>,
    ) -> Authz {
        let domain = &self.settings.domain;
        let mut authz = Authz {
            meta: Meta::new("authorizationpolicy", r.name()),
            networks: all_networks(),
            authentication: Authentication::Unauthenticated,
            unresolved: None,
        };
        for a in &s.required_authentication_refs {
            let ns = a.namespace.as_deref().unwrap_or(r.namespace());
            let name = a.name();
            if a.is("MeshTLSAuthentication") {
                match mtls.get(&(ns, name)) {
                    Some(m) => {
                        authz.authentication =
                            Authentication::TlsAuthenticated(self.mesh_tls_ids(ns, m))
                    }
                    None => {
                        authz.unresolved =
                            Some(format!("MeshTLSAuthentication {ns}/{name} does not exist"))
                    }
                }
            } else if a.is("NetworkAuthentication") {
                match nets.get(&(ns, name)) {
                    Some(n) => authz.networks = networks(&n.networks),
                    None => {
                        authz.unresolved =
                            Some(format!("NetworkAuthentication {ns}/{name} does not exist"))
                    }
                }
            } else if a.is("ServiceAccount") {
                authz.authentication =
                    Authentication::TlsAuthenticated(vec![IdentityMatch::Exact(
                        domain.service_account(ns, name),
                    )]);
            } else {
                authz.unresolved = Some(format!("unsupported authentication kind {}", a.kind));
            }
        }
        authz
    }

    /// A MeshTLSAuthentication's identities and identityRefs as matchers.
    fn mesh_tls_ids(&self, ns: &str, m: &MeshTlsAuthenticationSpec) -> Vec<IdentityMatch> {
        let domain = &self.settings.domain;
        let mut ids: Vec<_> = m
            .identities
            .iter()
            .filter_map(|i| IdentityMatch::parse(i).ok())
            .collect();
        ids.extend(
            m.identity_refs
                .iter()
                .map(|r| identity_ref_match(domain, ns, r)),
        );
        ids
    }

    fn policies_on(&self, ns: &str, kind: &str, group: &str, name: &str) -> Vec<Arc<Authz>> {
        self.policies
            .get(&policy_key(ns, kind, group, name))
            .into_iter()
            .flatten()
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// A Server's policy; `probe_paths` are those of the port it serves on one workload.
    fn server(&self, r: &Resource, s: &ServerSpec, probe_paths: &[String]) -> ServerPolicy {
        let ns = r.namespace();
        let grpc = s.proxy_protocol == ProxyProtocol::Grpc;
        let mut routes: Vec<RoutePolicy> = self
            .routes
            .get(&format!("{ns}/{}", r.name()))
            .into_iter()
            .flatten()
            .filter(|(_, (is_grpc, _))| *is_grpc == grpc)
            .filter_map(|(route, (_, matcher))| {
                let kind = route.kind();
                let authzs = self.policies_on(ns, kind, "", route.name());
                Some(RoutePolicy {
                    meta: Meta::new(kind, route.name()),
                    matcher: matcher.clone()?,
                    authzs,
                })
            })
            .collect();
        let mut authzs: Vec<Arc<Authz>> = self
            .server_authorizations
            .get(ns)
            .into_iter()
            .flatten()
            .filter(
                |(_, (saz, _))| match (&saz.server.name, &saz.server.selector) {
                    (Some(name), _) => name == r.name(),
                    (None, Some(sel)) => sel.matches(&r.metadata.labels),
                    (None, None) => false,
                },
            )
            .map(|(_, (_, a))| a.clone())
            .collect();
        authzs.extend(self.policies_on(ns, "Server", super::resources::LINKERD_GROUP, r.name()));
        authzs.extend(self.policies_on(ns, "Namespace", "", ""));
        let access = s
            .access_policy
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or(DefaultPolicy::Deny);
        authzs.extend(default_authz(access, self.settings).map(Arc::new));
        authzs.push(self.localhost.clone());
        // No routes attached: Linkerd serves its automatic routes, with a probe route unless
        // the Server speaks gRPC (probes are HTTP/1) or the port has no probes.
        if routes.is_empty() && !grpc && !probe_paths.is_empty() {
            routes = self.automatic_routes(probe_paths);
        }
        ServerPolicy {
            meta: Meta::new("server", r.name()),
            protocol: s.proxy_protocol,
            routes,
            authzs,
        }
    }

    /// Linkerd's routes for a Server (or default server) without routes on a port with HTTP
    /// probes: the `probe` route (GET on the exact probe paths), authorized by `default/probe`
    /// from the probe networks ahead of the server-level list, and the match-all `default`
    /// route. Without probes the empty route list stands for the default route alone.
    fn automatic_routes(&self, probe_paths: &[String]) -> Vec<RoutePolicy> {
        let probe = Authz {
            meta: Meta::new("default", "probe"),
            networks: self
                .settings
                .probe_networks
                .iter()
                .copied()
                .map(NetworkMatch::all)
                .collect(),
            authentication: Authentication::Unauthenticated,
            unresolved: None,
        };
        vec![
            RoutePolicy {
                meta: Meta::new("default", "probe"),
                matcher: RouteMatcher::probe(probe_paths),
                authzs: vec![Arc::new(probe)],
            },
            RoutePolicy {
                meta: Meta::new("default", "default"),
                matcher: RouteMatcher::match_all(),
                authzs: Vec::new(),
            },
        ]
    }

    /// A port no Server selects: named after the default policy, match-all default route
    /// (plus the probe route when the port has HTTP probes), the policy's own authorization
    /// (none for deny) and localhost. Namespace-targeted AuthorizationPolicies do not attach
    /// here, as in Linkerd.
    fn default_server(&self, policy: DefaultPolicy, probe_paths: &[String]) -> ServerPolicy {
        let mut authzs: Vec<Arc<Authz>> = default_authz(policy, self.settings)
            .map(Arc::new)
            .into_iter()
            .collect();
        authzs.push(self.localhost.clone());
        ServerPolicy {
            meta: Meta::new("default", policy.as_str()),
            protocol: ProxyProtocol::Unknown,
            routes: if probe_paths.is_empty() {
                Vec::new()
            } else {
                self.automatic_routes(probe_paths)
            },
            authzs,
        }
    }
}
