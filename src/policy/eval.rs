//! One decision: port → Server, protocol, best route, then the ordered authorization list
//! where the first match wins and no match denies. The decision names the server, route and
//! authorization as Linkerd's metrics do, and lists every authorization it tried.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::{Value as Json, json};

use super::authz::{Authz, ClientTls, Meta, Miss};
use super::defaults::{DefaultPolicy, REQUIRE_IDENTITY_PORTS_ANNOTATION};
use super::error::PolicyError;
use super::index::{Index, ServerPolicy};
use super::resources::ProxyProtocol;
use super::route::RequestView;

/// An HTTP request (absent for a plain TCP connection).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    /// May carry a query string.
    pub path: String,
    /// The `:authority`/`Host`, port allowed.
    pub host: Option<String>,
    pub headers: Vec<(String, String)>,
    /// HTTP/2 with `content-type: application/grpc...`: denials become gRPC statuses.
    pub grpc: bool,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub namespace: String,
    pub workload: String,
    pub port: u16,
    pub client_ip: IpAddr,
    pub tls: ClientTls,
    pub http: Option<HttpRequest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    NoRoute,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::NoRoute => "no_route",
        }
    }
}

/// One authorization considered, in order, and whether it matched.
#[derive(Debug, Clone, Copy)]
pub struct Tried<'a> {
    pub authz: &'a Authz,
    pub result: Result<(), Miss>,
}

#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub verdict: Verdict,
    pub server: &'a Meta,
    pub protocol: ProxyProtocol,
    /// The request was judged per connection (TCP, opaque, TLS, or no HTTP given).
    pub per_connection: bool,
    pub grpc: bool,
    pub route: Option<&'a Meta>,
    pub authorization: Option<&'a Meta>,
    /// The workload's own default policy when `proxy-require-identity-inbound-ports` replaced
    /// it on this port by its authenticated twin (the server's name), so reasons can say so.
    pub upgraded_from: Option<DefaultPolicy>,
    pub tried: Vec<Tried<'a>>,
    pub request: &'a Request,
}

/// gRPC PERMISSION_DENIED and NOT_FOUND.
const GRPC_PERMISSION_DENIED: u16 = 7;
const GRPC_NOT_FOUND: u16 = 5;

impl Index {
    pub fn evaluate<'a>(&'a self, req: &'a Request) -> Result<Decision<'a>, PolicyError> {
        let w = self
            .workload(&req.namespace, &req.workload)
            .ok_or_else(|| {
                PolicyError::Request(format!(
                    "no workload {}/{} in the workloads file",
                    req.namespace, req.workload
                ))
            })?;
        let server = w.server(req.port);
        let protocol = w.protocol(req.port);
        let http = match protocol {
            ProxyProtocol::Opaque | ProxyProtocol::Tls => None,
            _ => req.http.as_ref(),
        };
        let mut d = Decision {
            verdict: Verdict::Deny,
            server: &server.meta,
            protocol,
            per_connection: http.is_none(),
            grpc: http.is_some_and(|h| h.grpc),
            route: None,
            authorization: None,
            upgraded_from: (server.meta.kind == "default"
                && server.meta.name != w.default_policy.as_str())
            .then_some(w.default_policy),
            tried: Vec::new(),
            request: req,
        };
        let route_authzs: &[std::sync::Arc<Authz>] = match http {
            None => &[],
            Some(h) => match best_route(server, h) {
                Ok(Some(route)) => {
                    d.route = Some(&route.meta);
                    &route.authzs
                }
                Ok(None) => {
                    d.route = Some(&self.default_route);
                    &[]
                }
                Err(()) => {
                    d.verdict = Verdict::NoRoute;
                    return Ok(d);
                }
            },
        };
        for authz in route_authzs.iter().chain(&server.authzs) {
            let result = authz.check(&req.client_ip, &req.tls);
            d.tried.push(Tried { authz, result });
            if result.is_ok() {
                d.verdict = Verdict::Allow;
                d.authorization = Some(&authz.meta);
                break;
            }
        }
        Ok(d)
    }
}

/// The best-scoring route; `Ok(None)` when the server has none (the default route applies);
/// `Err` when it has routes and none matches. Ties keep the older route.
fn best_route<'a>(
    server: &'a ServerPolicy,
    h: &HttpRequest,
) -> Result<Option<&'a super::index::RoutePolicy>, ()> {
    if server.routes.is_empty() {
        return Ok(None);
    }
    let (path, query) = h.path.split_once('?').unwrap_or((&h.path, ""));
    let host = h.host.as_deref().map(|host| match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(']') => {
            name
        }
        _ => host,
    });
    let view = RequestView {
        method: &h.method,
        path,
        query,
        host,
        headers: &h.headers,
    };
    let mut best = None;
    for route in &server.routes {
        if let Some(score) = route.matcher.score(&view)
            && best.as_ref().is_none_or(|(s, _)| score > *s)
        {
            best = Some((score, route));
        }
    }
    best.map(|(_, r)| Some(r)).ok_or(())
}

impl Decision<'_> {
    pub fn http_status(&self) -> Option<u16> {
        match (self.verdict, self.per_connection, self.grpc) {
            (Verdict::Allow, _, _) | (_, true, _) => None,
            (_, false, true) => Some(200),
            (Verdict::Deny, false, false) => Some(403),
            (Verdict::NoRoute, false, false) => Some(404),
        }
    }

    pub fn grpc_status(&self) -> Option<u16> {
        match (self.verdict, self.grpc) {
            (Verdict::Deny, true) => Some(GRPC_PERMISSION_DENIED),
            (Verdict::NoRoute, true) => Some(GRPC_NOT_FOUND),
            _ => None,
        }
    }

    /// Allowed only because the `audit` policy lets unmatched clients through.
    pub fn audit(&self) -> bool {
        self.authorization
            .is_some_and(|a| a.kind == "default" && a.name == "audit")
    }

    pub fn reason(&self) -> String {
        let req = self.request;
        let mut s = String::new();
        if self.server.kind == "default" {
            let _ = write!(
                s,
                "no Server selects port {}, so the default policy {} applies",
                req.port, self.server.name
            );
            if let Some(from) = self.upgraded_from {
                let _ = write!(
                    s,
                    " (the workload's {from}, made authenticated by {REQUIRE_IDENTITY_PORTS_ANNOTATION})"
                );
            }
            s.push_str("; ");
        }
        let what = match (&req.http, self.per_connection) {
            (Some(h), false) => format!("{} {}", h.method, h.path),
            _ => "the connection".to_string(),
        };
        match self.verdict {
            Verdict::NoRoute => {
                let _ = write!(
                    s,
                    "no route of {} matches {what}: {}",
                    self.server,
                    if self.grpc {
                        "gRPC NOT_FOUND (5)"
                    } else {
                        "HTTP 404"
                    }
                );
            }
            Verdict::Allow if self.audit() => {
                let _ = write!(
                    s,
                    "no authorization matched {what}, but audit mode lets it through (authz_name=\"audit\")"
                );
            }
            Verdict::Allow => {
                let authz = self
                    .authorization
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let why = self
                    .tried
                    .last()
                    .map(|t| t.authz.explain(t.result, &req.client_ip, &req.tls))
                    .unwrap_or_default();
                let _ = write!(s, "{what} authorized by {authz}: {why}");
            }
            Verdict::Deny => {
                let on = self.route.map(|r| format!(" on {r}")).unwrap_or_default();
                let response = if self.per_connection {
                    "the proxy closes the connection"
                } else if self.grpc {
                    "HTTP 200 with grpc-status 7 (PERMISSION_DENIED)"
                } else {
                    "HTTP 403"
                };
                let _ = write!(
                    s,
                    "no authorization{on} matches {what} from {}: {response}",
                    client(req)
                );
            }
        }
        s
    }

    fn tried_json(&self) -> Vec<Json> {
        self.tried
            .iter()
            .map(|t| {
                json!({
                    "kind": t.authz.meta.kind,
                    "name": t.authz.meta.name,
                    "matched": t.result.is_ok(),
                    "reason": t.authz.explain(t.result, &self.request.client_ip, &self.request.tls),
                })
            })
            .collect()
    }

    pub fn to_json(&self) -> Json {
        json!({
            "decision": self.verdict.as_str(),
            "http_status": self.http_status(),
            "grpc_status": self.grpc_status(),
            "server": self.server,
            "route": self.route,
            "authorization": self.authorization,
            "reason": self.reason(),
            "tried": self.tried_json(),
        })
    }

    /// The same content as `to_json`, for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let status = match (self.http_status(), self.grpc_status()) {
            (Some(h), Some(g)) => format!(" (HTTP {h}, grpc-status {g})"),
            (Some(h), None) => format!(" (HTTP {h})"),
            (None, _) if self.per_connection && self.verdict == Verdict::Deny => {
                " (connection closed)".to_string()
            }
            _ => String::new(),
        };
        let opt = |m: Option<&Meta>| m.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(s, "decision:      {}{status}", self.verdict.as_str());
        let _ = writeln!(
            s,
            "server:        {} ({})",
            self.server,
            self.protocol.as_str()
        );
        let _ = writeln!(s, "route:         {}", opt(self.route));
        let _ = writeln!(s, "authorization: {}", opt(self.authorization));
        let _ = writeln!(s, "reason:        {}", self.reason());
        if !self.tried.is_empty() {
            let _ = writeln!(s, "tried:");
            for (i, t) in self.tried.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "  {}. {} {}: {}",
                    i + 1,
                    if t.result.is_ok() { "match" } else { "no   " },
                    t.authz.meta,
                    t.authz
                        .explain(t.result, &self.request.client_ip, &self.request.tls)
                );
            }
        }
        s
    }
}

fn client(req: &Request) -> String {
    match &req.tls {
        ClientTls::Mtls(Some(id)) => format!("{id} ({})", req.client_ip),
        ClientTls::Mtls(None) => format!("an mTLS client without identity ({})", req.client_ip),
        ClientTls::None => format!("unauthenticated {}", req.client_ip),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::policy::defaults::{DefaultPolicy, Settings};
    use crate::policy::load::{PolicySet, load_str};
    use crate::policy::workload::parse_workloads;

    const WORKLOADS: &str = "
- {namespace: shop, name: orders, serviceAccount: orders, labels: {app: orders},
   ports: [{name: http, port: 8080}, {name: grpc, port: 9090}, {name: admin, port: 9990}]}
- {namespace: shop, name: postgres, serviceAccount: postgres, labels: {app: postgres}, ports: [{name: pg, port: 5432}]}
- {namespace: shop, name: web, serviceAccount: web, labels: {app: web}, ports: [{name: http, port: 8080}],
   annotations: {config.linkerd.io/default-inbound-policy: cluster-authenticated}}
- {namespace: quiet, name: batch, labels: {app: batch}, ports: [{name: http, port: 8080}]}
";

    fn index(policies: &str, settings: Settings) -> Index {
        index_with(policies, WORKLOADS, settings)
    }

    fn index_with(policies: &str, workloads: &str, settings: Settings) -> Index {
        let mut set = PolicySet::default();
        let mut errors = Vec::new();
        load_str(Path::new("p.yaml"), policies, &mut set, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let ws = parse_workloads(Path::new("w.yaml"), workloads).unwrap();
        Index::build(&set, &ws, &settings)
    }

    /// `orders` with kubelet probes on its http port and a metrics probe on admin.
    const PROBED: &str = "
- {namespace: shop, name: orders, serviceAccount: orders, labels: {app: orders},
   ports: [{name: http, port: 8080}, {name: admin, port: 9990}],
   probes: [{path: /ready, port: http}, {path: /live, port: 8080}, {path: /metrics, port: 9990}],
   annotations: {config.linkerd.io/default-inbound-policy: deny}}
";

    fn names(d: &Decision<'_>) -> (Verdict, String, Option<String>, Option<String>) {
        (
            d.verdict,
            d.server.to_string(),
            d.route.map(|m| m.to_string()),
            d.authorization.map(|m| m.to_string()),
        )
    }

    fn id(sa: &str, ns: &str) -> ClientTls {
        ClientTls::Mtls(Some(format!(
            "{sa}.{ns}.serviceaccount.identity.linkerd.cluster.local"
        )))
    }

    fn http(
        workload: &str,
        port: u16,
        tls: ClientTls,
        ip: &str,
        method: &str,
        path: &str,
    ) -> Request {
        Request {
            namespace: "shop".into(),
            workload: workload.into(),
            port,
            client_ip: ip.parse().unwrap(),
            tls,
            http: Some(HttpRequest {
                method: method.into(),
                path: path.into(),
                host: None,
                headers: Vec::new(),
                grpc: false,
            }),
        }
    }

    fn tcp(workload: &str, port: u16, tls: ClientTls, ip: &str) -> Request {
        Request {
            http: None,
            ..http(workload, port, tls, ip, "GET", "/")
        }
    }

    /// linkerd.md §b's worked example.
    const ORDERS: &str = "
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: orders-http, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: http, proxyProtocol: HTTP/1, accessPolicy: deny}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-read, namespace: shop}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: orders-http}]
  rules:
  - matches:
    - {method: GET, path: {type: PathPrefix, value: /v1/orders}}
    - {method: GET, path: {type: Exact, value: /healthz}}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: storefront-callers, namespace: shop}
spec:
  identities: [frontend.shop.serviceaccount.identity.linkerd.cluster.local]
  identityRefs: [{kind: Namespace, name: backoffice}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: orders-read-authz, namespace: shop}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: orders-read}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: storefront-callers}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: orders-probes, namespace: shop}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: orders-http}]
  rules: [{matches: [{method: GET, path: {type: Exact, value: /ready}}]}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: node-network, namespace: shop}
spec: {networks: [{cidr: 10.0.0.0/8, except: [10.42.0.0/16]}]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: orders-probes-authz, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: orders-probes}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: NetworkAuthentication, name: node-network}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: pg, namespace: shop}
spec: {podSelector: {matchLabels: {app: postgres}}, port: 5432, proxyProtocol: opaque, accessPolicy: audit}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: pg-orders-only, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: pg}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: orders}]
";

    #[test]
    fn the_reference_example_decides_as_documented() {
        let ix = index(ORDERS, Settings::default());
        let ip = "10.42.3.4";
        let req = http(
            "orders",
            8080,
            id("frontend", "shop"),
            ip,
            "GET",
            "/v1/orders",
        );
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(d.verdict, Verdict::Allow);
        assert_eq!(
            d.authorization,
            Some(&Meta::new("authorizationpolicy", "orders-read-authz"))
        );
        assert_eq!(d.route, Some(&Meta::new("HTTPRoute", "orders-read")));
        assert_eq!(d.server, &Meta::new("server", "orders-http"));

        let req = http(
            "orders",
            8080,
            id("frontend", "shop"),
            ip,
            "POST",
            "/v1/orders",
        );
        let d = ix.evaluate(&req).unwrap();
        assert_eq!((d.verdict, d.http_status()), (Verdict::NoRoute, Some(404)));

        let req = http("orders", 8080, ClientTls::None, ip, "GET", "/v1/orders");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            (d.verdict, d.http_status(), d.grpc_status()),
            (Verdict::Deny, Some(403), None)
        );
        let tried: Vec<_> = d.tried.iter().map(|t| t.authz.meta.name.as_str()).collect();
        assert_eq!(
            tried,
            ["orders-read-authz", "localhost"],
            "accessPolicy deny adds nothing"
        );

        let req = http(
            "orders",
            8080,
            id("billing", "shop"),
            ip,
            "GET",
            "/v1/orders/7",
        );
        assert_eq!(ix.evaluate(&req).unwrap().verdict, Verdict::Deny);
        let req = http(
            "orders",
            8080,
            id("reports", "backoffice"),
            ip,
            "GET",
            "/v1/orders/7",
        );
        assert_eq!(ix.evaluate(&req).unwrap().verdict, Verdict::Allow);

        // Kubelet probe from a node address outside the excepted pod range.
        let probe = |ip| http("orders", 8080, ClientTls::None, ip, "GET", "/ready");
        let req = probe("10.1.0.5");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            d.authorization,
            Some(&Meta::new("authorizationpolicy", "orders-probes-authz"))
        );
        assert_eq!(
            ix.evaluate(&probe("10.42.0.5")).unwrap().verdict,
            Verdict::Deny
        );

        let req = tcp("postgres", 5432, id("orders", "shop"), ip);
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            d.authorization,
            Some(&Meta::new("authorizationpolicy", "pg-orders-only"))
        );
        assert!(d.per_connection && d.route.is_none());
        let req = tcp("postgres", 5432, id("web", "shop"), ip);
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(d.verdict, Verdict::Allow);
        assert!(d.audit());
        assert_eq!(d.authorization, Some(&Meta::new("default", "audit")));
    }

    #[test]
    fn default_servers_authorize_probe_paths_from_the_probe_networks_only() {
        let ix = index_with("", PROBED, Settings::default());
        let get = |path: &str, ip: &str| http("orders", 8080, ClientTls::None, ip, "GET", path);
        let own = |v: Verdict, route: &str, authz: Option<&str>| {
            (
                v,
                "default/deny".to_string(),
                Some(route.to_string()),
                authz.map(str::to_string),
            )
        };
        // Probe networks default to everything, so the deny default still lets probes in.
        for (path, ip) in [
            ("/ready", "10.1.0.5"),
            ("/live", "8.8.8.8"),
            ("/live?v=1", "::5"),
        ] {
            let req = get(path, ip);
            let d = ix.evaluate(&req).unwrap();
            assert_eq!(
                names(&d),
                own(Verdict::Allow, "default/probe", Some("default/probe")),
                "{path}"
            );
        }
        // Other paths and methods take the default route, where only the default policy counts.
        let req = get("/ready/x", "10.1.0.5");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(names(&d), own(Verdict::Deny, "default/default", None));
        let req = http(
            "orders",
            8080,
            ClientTls::None,
            "10.1.0.5",
            "POST",
            "/ready",
        );
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(names(&d), own(Verdict::Deny, "default/default", None));
        assert_eq!(d.http_status(), Some(403));
        // Probes are per port: /metrics only on admin, /ready not there.
        let req = http(
            "orders",
            9990,
            ClientTls::None,
            "10.1.0.5",
            "GET",
            "/metrics",
        );
        assert_eq!(ix.evaluate(&req).unwrap().verdict, Verdict::Allow);
        let req = http("orders", 9990, ClientTls::None, "10.1.0.5", "GET", "/ready");
        assert_eq!(ix.evaluate(&req).unwrap().verdict, Verdict::Deny);
        // A port without probes has only the default route; a TCP connection no route at all.
        let req = http("orders", 7000, ClientTls::None, "10.1.0.5", "GET", "/ready");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(names(&d), own(Verdict::Deny, "default/default", None));
        let req = tcp("orders", 8080, ClientTls::None, "10.1.0.5");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!((d.verdict, d.route), (Verdict::Deny, None));

        // Restricted probe networks: probes from elsewhere fall through to the default policy.
        let settings = Settings {
            probe_networks: crate::policy::defaults::parse_networks("10.1.0.0/16").unwrap(),
            ..Settings::default()
        };
        let ix = index_with("", PROBED, settings);
        let req = get("/ready", "10.1.0.5");
        assert_eq!(
            ix.evaluate(&req).unwrap().authorization,
            Some(&Meta::new("default", "probe"))
        );
        let req = get("/ready", "10.2.0.5");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(names(&d), own(Verdict::Deny, "default/probe", None));
        let tried: Vec<_> = d.tried.iter().map(|t| t.authz.meta.to_string()).collect();
        assert_eq!(tried, ["default/probe", "default/localhost"]);
        // With an allow default the default policy still admits what the probe route does not.
        let allow = PROBED.replace("deny", "all-unauthenticated");
        let settings = Settings {
            probe_networks: crate::policy::defaults::parse_networks("10.1.0.0/16").unwrap(),
            ..Settings::default()
        };
        let ix = index_with("", &allow, settings);
        let req = get("/ready", "10.2.0.5");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            (d.route, d.authorization),
            (
                Some(&Meta::new("default", "probe")),
                Some(&Meta::new("default", "all-unauthenticated"))
            )
        );
    }

    #[test]
    fn probe_route_exists_on_servers_without_routes_and_disappears_with_one() {
        let server = "
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: s, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: http, proxyProtocol: HTTP/1}
";
        let ix = index_with(server, PROBED, Settings::default());
        let req = http("orders", 8080, ClientTls::None, "8.8.8.8", "GET", "/ready");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            names(&d),
            (
                Verdict::Allow,
                "server/s".into(),
                Some("default/probe".into()),
                Some("default/probe".into())
            )
        );
        let req = http("orders", 8080, ClientTls::None, "8.8.8.8", "GET", "/");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            (d.verdict, d.route),
            (Verdict::Deny, Some(&Meta::new("default", "default")))
        );
        // Any attached route removes the automatic probe route: /ready has no route now.
        let with_route = format!(
            "{server}---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {{name: api, namespace: shop}}
spec: {{parentRefs: [{{group: policy.linkerd.io, kind: Server, name: s}}], rules: [{{matches: [{{path: {{value: /v1}}}}]}}]}}
"
        );
        let ix = index_with(&with_route, PROBED, Settings::default());
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(d.verdict, Verdict::NoRoute);
        let req = http("orders", 8080, ClientTls::None, "8.8.8.8", "GET", "/ready");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!((d.verdict, d.http_status()), (Verdict::NoRoute, Some(404)));
        // gRPC servers get no probe route.
        let grpc = server.replace("HTTP/1", "gRPC");
        let ix = index_with(&grpc, PROBED, Settings::default());
        let req = http("orders", 8080, ClientTls::None, "8.8.8.8", "GET", "/ready");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            (d.verdict, d.route),
            (Verdict::Deny, Some(&Meta::new("default", "default")))
        );
    }

    #[test]
    fn require_identity_ports_upgrade_allow_defaults_only_on_those_ports() {
        let workloads = |policy: &str| {
            format!(
                "- {{namespace: shop, name: orders, labels: {{app: orders}}, ports: [{{name: http, port: 8080}}],
   probes: [{{path: /ready, port: 8080}}],
   annotations: {{config.linkerd.io/default-inbound-policy: {policy},
                 config.linkerd.io/proxy-require-identity-inbound-ports: '8080,9000-9010'}}}}
"
            )
        };
        let decide = |ix: &Index, port: u16, tls: ClientTls, ip: &str| {
            let req = tcp("orders", port, tls, ip);
            let d = ix.evaluate(&req).unwrap();
            (d.verdict, d.server.name.clone())
        };
        let ix = index_with("", &workloads("all-unauthenticated"), Settings::default());
        for port in [8080, 9000, 9010] {
            assert_eq!(
                decide(&ix, port, ClientTls::None, "8.8.8.8"),
                (Verdict::Deny, "all-authenticated".into()),
                "{port}"
            );
            assert_eq!(
                decide(&ix, port, id("web", "shop"), "8.8.8.8"),
                (Verdict::Allow, "all-authenticated".into())
            );
        }
        assert_eq!(
            decide(&ix, 9011, ClientTls::None, "8.8.8.8"),
            (Verdict::Allow, "all-unauthenticated".into())
        );
        // The probe route still admits plaintext probes on an upgraded port.
        let req = http("orders", 8080, ClientTls::None, "8.8.8.8", "GET", "/ready");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            (
                d.verdict,
                d.server.name.as_str(),
                d.authorization.unwrap().name.as_str()
            ),
            (Verdict::Allow, "all-authenticated", "probe")
        );
        let req = http("orders", 8080, ClientTls::None, "8.8.8.8", "GET", "/");
        assert_eq!(ix.evaluate(&req).unwrap().verdict, Verdict::Deny);
        let req = tcp("orders", 9000, ClientTls::None, "8.8.8.8");
        let reason = ix.evaluate(&req).unwrap().reason();
        assert!(
            reason.contains("port 9000, so the default policy all-authenticated applies (the workload's all-unauthenticated, made authenticated by config.linkerd.io/proxy-require-identity-inbound-ports); "),
            "{reason}"
        );
        let req = tcp("orders", 9011, ClientTls::None, "8.8.8.8");
        assert_eq!(ix.evaluate(&req).unwrap().upgraded_from, None);

        let ix = index_with(
            "",
            &workloads("cluster-unauthenticated"),
            Settings::default(),
        );
        assert_eq!(
            decide(&ix, 9005, ClientTls::None, "10.0.0.1"),
            (Verdict::Deny, "cluster-authenticated".into())
        );
        assert_eq!(
            decide(&ix, 9005, id("web", "shop"), "10.0.0.1"),
            (Verdict::Allow, "cluster-authenticated".into())
        );
        assert_eq!(
            decide(&ix, 9005, id("web", "shop"), "8.8.8.8").0,
            Verdict::Deny
        );
        // deny stays deny, audit stays audit.
        let ix = index_with("", &workloads("deny"), Settings::default());
        assert_eq!(
            decide(&ix, 9000, id("web", "shop"), "10.0.0.1"),
            (Verdict::Deny, "deny".into())
        );
        let ix = index_with("", &workloads("audit"), Settings::default());
        assert_eq!(
            decide(&ix, 9000, ClientTls::None, "8.8.8.8"),
            (Verdict::Allow, "audit".into())
        );
        // A real Server on the port keeps its own accessPolicy.
        let server = "
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: s, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: 8080, accessPolicy: all-unauthenticated}
";
        let ix = index_with(
            server,
            &workloads("all-unauthenticated"),
            Settings::default(),
        );
        assert_eq!(
            decide(&ix, 8080, ClientTls::None, "8.8.8.8"),
            (Verdict::Allow, "s".into())
        );
    }

    #[test]
    fn opaque_ports_make_unknown_and_default_servers_per_connection() {
        let policies = "
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {config.linkerd.io/opaque-ports: '5432,8000-8100'}}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: detect, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: 8080, accessPolicy: all-unauthenticated}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: http1, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: 8081, proxyProtocol: HTTP/1, accessPolicy: all-unauthenticated}
";
        let workloads = "
- {namespace: shop, name: orders, labels: {app: orders}, ports: [{name: http, port: 8080}],
   probes: [{path: /ready, port: 8090}]}
- {namespace: shop, name: web, labels: {app: web}, ports: [{name: web, port: 7000}],
   annotations: {config.linkerd.io/opaque-ports: web}}
";
        let ix = index_with(policies, workloads, Settings::default());
        let look = |name: &str, port: u16| {
            let req = http(name, port, ClientTls::None, "10.0.0.1", "GET", "/ready");
            let d = ix.evaluate(&req).unwrap();
            (d.protocol, d.per_connection, d.route.is_some(), d.verdict)
        };
        use ProxyProtocol::*;
        // Namespace annotation: a Server with proxyProtocol unknown and a default server.
        assert_eq!(look("orders", 8080), (Opaque, true, false, Verdict::Allow));
        assert_eq!(look("orders", 5432), (Opaque, true, false, Verdict::Allow));
        // Even a probed default port: the proxy never sees the HTTP request there.
        assert_eq!(look("orders", 8090), (Opaque, true, false, Verdict::Allow));
        // An explicit proxyProtocol wins over the annotation.
        assert_eq!(look("orders", 8081), (Http1, false, true, Verdict::Allow));
        // Ports outside the list keep detecting HTTP.
        assert_eq!(look("orders", 9000), (Unknown, false, true, Verdict::Allow));
        // The workload's own annotation (a port name) replaces the namespace's.
        assert_eq!(look("web", 7000), (Opaque, true, false, Verdict::Allow));
        assert_eq!(look("web", 5432), (Unknown, false, true, Verdict::Allow));
        let req = http("web", 7000, ClientTls::None, "10.0.0.1", "GET", "/");
        assert!(ix.evaluate(&req).unwrap().to_text().contains("(opaque)"));
    }

    #[test]
    fn oldest_server_wins_an_overlapping_port() {
        let servers = "
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: a-newer, namespace: shop, creationTimestamp: '2026-02-01T00:00:00Z'}
spec: {podSelector: {matchLabels: {app: orders}}, port: 8080, accessPolicy: all-unauthenticated}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: z-older, namespace: shop, creationTimestamp: '2026-01-01T00:00:00Z'}
spec: {podSelector: {matchLabels: {app: orders}}, port: http, accessPolicy: deny}
";
        let ix = index(servers, Settings::default());
        let req = tcp("orders", 8080, ClientTls::None, "10.0.0.1");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(d.server.name, "z-older");
        assert_eq!(d.verdict, Verdict::Deny);
        let w = ix.workload("shop", "orders").unwrap();
        assert_eq!(w.overlaps[0].loser, "a-newer");
        // Without timestamps the name decides.
        let ix = index(
            &servers
                .replace("creationTimestamp", "x-ts")
                .replace(", x-ts: '2026-02-01T00:00:00Z'", "")
                .replace(", x-ts: '2026-01-01T00:00:00Z'", ""),
            Settings::default(),
        );
        let req = tcp("orders", 8080, ClientTls::None, "10.0.0.1");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(d.server.name, "a-newer");
    }

    #[test]
    fn route_precedence_and_ties_keep_the_older_route() {
        let p = "
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: s, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: 8080, accessPolicy: all-unauthenticated}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: b-catch-all, namespace: shop, creationTimestamp: '2026-01-01T00:00:00Z'}
spec: {parentRefs: [{group: policy.linkerd.io, kind: Server, name: s}], rules: [{matches: [{path: {value: /v1}}]}]}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: a-same, namespace: shop, creationTimestamp: '2026-01-02T00:00:00Z'}
spec: {parentRefs: [{group: policy.linkerd.io, kind: Server, name: s}], rules: [{matches: [{path: {value: /v1}}]}]}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: c-orders, namespace: shop, creationTimestamp: '2026-01-03T00:00:00Z'}
spec: {parentRefs: [{group: policy.linkerd.io, kind: Server, name: s}], rules: [{matches: [{path: {value: /v1/orders}}]}]}
";
        let ix = index(p, Settings::default());
        let route = |path| {
            let req = http("orders", 8080, ClientTls::None, "10.0.0.1", "GET", path);
            ix.evaluate(&req).unwrap().route.unwrap().name.clone()
        };
        assert_eq!(route("/v1/orders/1"), "c-orders");
        assert_eq!(route("/v1/items"), "b-catch-all");
        let req = http("orders", 8080, ClientTls::None, "10.0.0.1", "GET", "/v2");
        assert_eq!(ix.evaluate(&req).unwrap().verdict, Verdict::NoRoute);
    }

    #[test]
    fn authorization_order_is_route_then_server_then_namespace_then_access_then_localhost() {
        let p = "
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: s, namespace: shop, labels: {tier: internal}}
spec: {podSelector: {matchLabels: {app: orders}}, port: 8080, proxyProtocol: HTTP/2, accessPolicy: all-authenticated}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec: {parentRefs: [{group: policy.linkerd.io, kind: Server, name: s}]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: ns-wide, namespace: shop}
spec:
  targetRef: {kind: Namespace, name: shop}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: ns-caller}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: z-on-route, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: r}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: route-caller}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: on-server, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: s}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: server-caller}]
---
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: legacy, namespace: shop}
spec:
  server: {selector: {matchLabels: {tier: internal}}}
  client: {meshTLS: {serviceAccounts: [{name: legacy-caller}]}}
";
        let ix = index(p, Settings::default());
        let req = http("orders", 8080, ClientTls::None, "8.8.8.8", "GET", "/");
        let d = ix.evaluate(&req).unwrap();
        let order: Vec<_> = d.tried.iter().map(|t| t.authz.meta.to_string()).collect();
        assert_eq!(
            order,
            [
                "authorizationpolicy/z-on-route",
                "serverauthorization/legacy",
                "authorizationpolicy/on-server",
                "authorizationpolicy/ns-wide",
                "default/all-authenticated",
                "default/localhost"
            ]
        );
        let who = |sa: &str, ip: &str| {
            let req = http("orders", 8080, id(sa, "shop"), ip, "GET", "/x");
            ix.evaluate(&req)
                .unwrap()
                .authorization
                .unwrap()
                .name
                .clone()
        };
        assert_eq!(who("route-caller", "10.0.0.1"), "z-on-route");
        // ServerAuthorization without networks: only the cluster networks.
        assert_eq!(who("legacy-caller", "10.0.0.1"), "legacy");
        assert_eq!(who("legacy-caller", "8.8.8.8"), "all-authenticated");
        assert_eq!(who("ns-caller", "8.8.8.8"), "ns-wide");
        assert_eq!(who("someone", "8.8.8.8"), "all-authenticated");
        let local = http("orders", 8080, ClientTls::None, "127.0.0.1", "GET", "/");
        assert_eq!(
            ix.evaluate(&local).unwrap().authorization.unwrap().name,
            "localhost"
        );
        // Namespace-wide policies do not reach default servers.
        let req = tcp("orders", 9990, id("ns-caller", "shop"), "8.8.8.8");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(d.server, &Meta::new("default", "all-unauthenticated"));
        assert_eq!(d.authorization.unwrap().name, "all-unauthenticated");
    }

    #[test]
    fn default_policies_by_workload_namespace_and_cluster() {
        let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: quiet, annotations: {config.linkerd.io/default-inbound-policy: deny}}\n";
        let settings = Settings {
            default_policy: DefaultPolicy::AllAuthenticated,
            ..Settings::default()
        };
        let ix = index(ns, settings);
        // Cluster default: all-authenticated.
        let req = tcp("orders", 8080, ClientTls::None, "8.8.8.8");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            (d.verdict, d.server.name.as_str()),
            (Verdict::Deny, "all-authenticated")
        );
        assert!(d.reason().contains("default policy all-authenticated"));
        assert_eq!(
            ix.evaluate(&tcp("orders", 8080, id("web", "shop"), "8.8.8.8"))
                .unwrap()
                .verdict,
            Verdict::Allow
        );
        // Workload annotation: cluster-authenticated needs mTLS from the cluster networks.
        assert_eq!(
            ix.evaluate(&tcp("web", 8080, id("orders", "shop"), "8.8.8.8"))
                .unwrap()
                .verdict,
            Verdict::Deny
        );
        let req = tcp("web", 8080, id("orders", "shop"), "192.168.1.1");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(d.authorization.unwrap().name, "cluster-authenticated");
        // Namespace annotation: deny, but localhost still works.
        let mut req = tcp("batch", 8080, id("orders", "shop"), "10.0.0.1");
        req.namespace = "quiet".into();
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            (d.verdict, d.server.name.as_str(), d.tried.len()),
            (Verdict::Deny, "deny", 1)
        );
        req.client_ip = "::1".parse().unwrap();
        assert_eq!(ix.evaluate(&req).unwrap().verdict, Verdict::Allow);
    }

    #[test]
    fn cluster_networks_are_configurable() {
        let settings = Settings {
            default_policy: DefaultPolicy::ClusterUnauthenticated,
            cluster_networks: crate::policy::defaults::parse_networks("172.20.0.0/16").unwrap(),
            ..Settings::default()
        };
        let ix = index("", settings);
        assert_eq!(
            ix.evaluate(&tcp("orders", 8080, ClientTls::None, "172.20.1.1"))
                .unwrap()
                .verdict,
            Verdict::Allow
        );
        assert_eq!(
            ix.evaluate(&tcp("orders", 8080, ClientTls::None, "10.0.0.1"))
                .unwrap()
                .verdict,
            Verdict::Deny
        );
    }

    #[test]
    fn grpc_denials_are_status_7_and_missing_routes_not_found() {
        let p = "
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: orders-grpc, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: grpc, proxyProtocol: gRPC}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: orders-api, namespace: shop}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: orders-grpc}]
  rules: [{matches: [{method: {service: shop.Orders, method: Get}}]}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: orders-api-web, namespace: shop}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: GRPCRoute, name: orders-api}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: web}]
";
        let ix = index(p, Settings::default());
        let grpc = |tls, path: &str| {
            let mut r = http("orders", 9090, tls, "10.0.0.1", "POST", path);
            if let Some(h) = r.http.as_mut() {
                h.grpc = true;
            }
            r
        };
        let req = grpc(id("web", "shop"), "/shop.Orders/Get");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(d.route, Some(&Meta::new("GRPCRoute", "orders-api")));
        assert_eq!(
            (d.verdict, d.http_status(), d.grpc_status()),
            (Verdict::Allow, None, None)
        );
        let req = grpc(id("orders", "shop"), "/shop.Orders/Get");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            (d.verdict, d.http_status(), d.grpc_status()),
            (Verdict::Deny, Some(200), Some(7))
        );
        let req = grpc(id("web", "shop"), "/shop.Orders/Delete");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(
            (d.verdict, d.http_status(), d.grpc_status()),
            (Verdict::NoRoute, Some(200), Some(5))
        );
        let json = d.to_json();
        assert_eq!(json["decision"], "no_route");
        assert_eq!(json["route"], Json::Null);
    }

    #[test]
    fn tcp_is_decided_per_connection_with_server_level_authorizations_only() {
        let p = "
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: s, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: 8080, proxyProtocol: opaque}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec: {parentRefs: [{group: policy.linkerd.io, kind: Server, name: s}]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: on-route, namespace: shop}
spec: {targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: r}}
";
        let ix = index(p, Settings::default());
        // Even with HTTP details, an opaque port is judged per connection: the route's
        // authorization does not apply, and a denial closes the connection.
        let req = http("orders", 8080, ClientTls::None, "10.0.0.1", "GET", "/");
        let d = ix.evaluate(&req).unwrap();
        assert!(d.per_connection);
        assert_eq!(
            (d.verdict, d.http_status(), d.grpc_status()),
            (Verdict::Deny, None, None)
        );
        assert!(
            d.reason().contains("closes the connection"),
            "{}",
            d.reason()
        );
        assert_eq!(d.to_json()["route"], Json::Null);
        assert!(d.to_text().contains("(connection closed)"));
    }

    #[test]
    fn unresolved_references_never_match_and_say_why() {
        let p = "
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: s, namespace: shop}
spec: {podSelector: {matchLabels: {app: orders}}, port: 8080}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: broken, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: s}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: gone}]
";
        let ix = index(p, Settings::default());
        let req = tcp("orders", 8080, id("web", "shop"), "10.0.0.1");
        let d = ix.evaluate(&req).unwrap();
        assert_eq!(d.verdict, Verdict::Deny);
        let j = d.to_json();
        assert_eq!(j["tried"][0]["matched"], false);
        assert!(
            j["tried"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("MeshTLSAuthentication shop/gone does not exist")
        );
        assert!(
            ix.evaluate(&tcp("nobody", 1, ClientTls::None, "10.0.0.1"))
                .is_err()
        );
    }
}
