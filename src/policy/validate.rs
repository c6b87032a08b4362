//! The checks Linkerd's admission webhook (and the CRDs' schemas) apply to one resource on its
//! own. Cross-resource checks (does the target exist?) are in `lint`.

use regex::Regex;

use super::defaults::{DefaultPolicy, parse_cidr};
use super::ids::{IdentityMatch, is_dns_label, is_dns_name};
use super::resources::{
    GATEWAY_GROUP, LINKERD_GROUP, LabelSelector, Network, ObjectRef, PortRef, Resource, Spec,
    ValueMatch,
};

/// A rejected field: its path in the document and what is wrong.
pub type Problem = (String, String);

/// Every problem of one resource (contracts are checked in `contract`, where they compile).
pub fn validate(r: &Resource) -> Vec<Problem> {
    let mut p = Vec::new();
    let name = r.name();
    if name.is_empty() {
        p.push(("metadata.name".into(), "missing".into()));
    } else if !is_dns_name(name) {
        p.push((
            "metadata.name".into(),
            format!("`{name}` is not a DNS-1123 name (lower-case letters, digits, `-`, `.`)"),
        ));
    }
    if let Some(ns) = &r.metadata.namespace
        && !is_dns_label(ns)
    {
        p.push((
            "metadata.namespace".into(),
            format!("`{ns}` is not a DNS-1123 label"),
        ));
    }
    if let Some(ts) = &r.metadata.creation_timestamp
        && !is_timestamp(ts)
    {
        p.push((
            "metadata.creationTimestamp".into(),
            format!("`{ts}` is not an RFC 3339 UTC time such as 2026-01-02T03:04:05Z"),
        ));
    }
    let version = r.api_version.rsplit('/').next().unwrap_or("");
    match &r.spec {
        Spec::Server(s) => {
            match (&s.pod_selector, &s.external_workload_selector) {
                (Some(sel), None) => selector(&mut p, "spec.podSelector", sel),
                (None, Some(sel)) => {
                    if version == "v1beta1" {
                        p.push((
                            "spec.externalWorkloadSelector".into(),
                            "needs policy.linkerd.io/v1beta2 or later".into(),
                        ));
                    }
                    selector(&mut p, "spec.externalWorkloadSelector", sel)
                }
                _ => p.push((
                    "spec.podSelector".into(),
                    "exactly one of podSelector and externalWorkloadSelector must be set".into(),
                )),
            }
            match &s.port {
                PortRef::Number(n) if !(1..=65535).contains(n) => {
                    p.push(("spec.port".into(), format!("{n} is not a port (1-65535)")))
                }
                PortRef::Name(n) if !is_port_name(n) => p.push((
                    "spec.port".into(),
                    format!("`{n}` is not a port name (1-15 lower-case letters, digits, `-`, with a letter)"),
                )),
                _ => {}
            }
            if let Some(ap) = &s.access_policy {
                if version != "v1beta3" {
                    p.push((
                        "spec.accessPolicy".into(),
                        "needs policy.linkerd.io/v1beta3".into(),
                    ));
                }
                if let Err(e) = ap.parse::<DefaultPolicy>() {
                    p.push(("spec.accessPolicy".into(), e));
                }
            }
        }
        Spec::ServerAuthorization(s) => {
            match (&s.server.name, &s.server.selector) {
                (Some(_), None) => {}
                (None, Some(sel)) => selector(&mut p, "spec.server.selector", sel),
                _ => p.push((
                    "spec.server".into(),
                    "exactly one of name and selector must be set".into(),
                )),
            }
            let c = &s.client;
            match (&c.mesh_tls, c.unauthenticated) {
                (Some(_), true) => p.push((
                    "spec.client".into(),
                    "`unauthenticated` and `meshTLS` cannot both be set".into(),
                )),
                (None, false) => p.push((
                    "spec.client".into(),
                    "set either `unauthenticated: true` or `meshTLS`".into(),
                )),
                (Some(m), false) => {
                    let has_ids = !m.identities.is_empty() || !m.service_accounts.is_empty();
                    if m.unauthenticated_tls && has_ids {
                        p.push((
                            "spec.client.meshTLS".into(),
                            "`unauthenticatedTLS` cannot be combined with identities or serviceAccounts".into(),
                        ));
                    } else if !m.unauthenticated_tls && !has_ids {
                        p.push((
                            "spec.client.meshTLS".into(),
                            "set `unauthenticatedTLS: true`, identities or serviceAccounts".into(),
                        ));
                    }
                    identities(&mut p, "spec.client.meshTLS.identities", &m.identities);
                    for (i, sa) in m.service_accounts.iter().enumerate() {
                        label(
                            &mut p,
                            &format!("spec.client.meshTLS.serviceAccounts[{i}].name"),
                            &sa.name,
                        );
                    }
                }
                (None, true) => {}
            }
            if let Some(nets) = &c.networks {
                networks(&mut p, "spec.client.networks", nets);
            }
        }
        Spec::AuthorizationPolicy(s) => {
            let t = &s.target_ref;
            let target_ok = (t.is("Server") && t.group() == LINKERD_GROUP)
                || (t.is("HTTPRoute")
                    && (t.group() == LINKERD_GROUP || t.group() == GATEWAY_GROUP))
                || (t.is("GRPCRoute") && t.group() == GATEWAY_GROUP)
                || (t.is("Namespace") && t.group().is_empty());
            if !target_ok {
                p.push((
                    "spec.targetRef".into(),
                    format!(
                        "cannot target {}{}{}: use a policy.linkerd.io Server, an HTTPRoute, a GRPCRoute or the Namespace",
                        t.group(),
                        if t.group().is_empty() { "" } else { "/" },
                        t.kind
                    ),
                ));
            }
            if t.name().is_empty() {
                p.push(("spec.targetRef.name".into(), "missing".into()));
            }
            if t.namespace.as_deref().is_some_and(|ns| ns != r.namespace()) {
                p.push((
                    "spec.targetRef.namespace".into(),
                    "an AuthorizationPolicy may only target resources in its own namespace".into(),
                ));
            }
            if t.is("Namespace") && t.name() != r.namespace() {
                p.push((
                    "spec.targetRef.name".into(),
                    format!(
                        "a Namespace target must be the policy's own namespace `{}`",
                        r.namespace()
                    ),
                ));
            }
            let (mut mtls, mut sa, mut net) = (0, 0, 0);
            for (i, a) in s.required_authentication_refs.iter().enumerate() {
                let field = format!("spec.requiredAuthenticationRefs[{i}]");
                if a.is("MeshTLSAuthentication") && a.group() == LINKERD_GROUP {
                    mtls += 1;
                } else if a.is("NetworkAuthentication") && a.group() == LINKERD_GROUP {
                    net += 1;
                } else if a.is("ServiceAccount") && a.group().is_empty() {
                    sa += 1;
                } else {
                    p.push((
                        format!("{field}.kind"),
                        format!(
                            "unsupported authentication kind `{}` (group `{}`): use policy.linkerd.io MeshTLSAuthentication or NetworkAuthentication, or a core ServiceAccount",
                            a.kind,
                            a.group()
                        ),
                    ));
                }
                if a.name().is_empty() {
                    p.push((format!("{field}.name"), "missing".into()));
                }
            }
            if mtls > 1 {
                p.push((
                    "spec.requiredAuthenticationRefs".into(),
                    "only one MeshTLSAuthentication may be set".into(),
                ));
            }
            if sa > 1 {
                p.push((
                    "spec.requiredAuthenticationRefs".into(),
                    "only one ServiceAccount may be set".into(),
                ));
            }
            if mtls > 0 && sa > 0 {
                p.push((
                    "spec.requiredAuthenticationRefs".into(),
                    "a MeshTLSAuthentication and a ServiceAccount cannot both be set".into(),
                ));
            }
            if net > 1 {
                p.push((
                    "spec.requiredAuthenticationRefs".into(),
                    "only one NetworkAuthentication may be set".into(),
                ));
            }
        }
        Spec::MeshTlsAuthentication(s) => {
            if s.identities.is_empty() && s.identity_refs.is_empty() {
                p.push((
                    "spec".into(),
                    "set identities or identityRefs (at least one)".into(),
                ));
            }
            identities(&mut p, "spec.identities", &s.identities);
            for (i, r) in s.identity_refs.iter().enumerate() {
                identity_ref(&mut p, &format!("spec.identityRefs[{i}]"), r);
            }
        }
        Spec::NetworkAuthentication(s) => {
            if s.networks.is_empty() {
                p.push((
                    "spec.networks".into(),
                    "at least one network is needed".into(),
                ));
            }
            networks(&mut p, "spec.networks", &s.networks);
        }
        Spec::HttpRoute(s) => {
            hostnames(&mut p, &s.hostnames);
            for (i, rule) in s.rules.iter().enumerate() {
                for (j, m) in rule.matches.iter().enumerate() {
                    let at = format!("spec.rules[{i}].matches[{j}]");
                    if let Some(path) = &m.path {
                        match path.kind.as_str() {
                            "Exact" | "PathPrefix" => {
                                if !path.value.starts_with('/') {
                                    p.push((format!("{at}.path.value"), format!("`{}` must start with /", path.value)));
                                }
                            }
                            "RegularExpression" => regex(&mut p, &format!("{at}.path.value"), &path.value),
                            other => p.push((
                                format!("{at}.path.type"),
                                format!("`{other}` is not a path match type: use Exact, PathPrefix or RegularExpression"),
                            )),
                        }
                    }
                    values(&mut p, &format!("{at}.headers"), &m.headers);
                    values(&mut p, &format!("{at}.queryParams"), &m.query_params);
                    if let Some(method) = &m.method
                        && !is_method(method)
                    {
                        p.push((
                            format!("{at}.method"),
                            format!("`{method}` is not an HTTP method"),
                        ));
                    }
                }
            }
        }
        Spec::GrpcRoute(s) => {
            hostnames(&mut p, &s.hostnames);
            for (i, rule) in s.rules.iter().enumerate() {
                for (j, m) in rule.matches.iter().enumerate() {
                    let at = format!("spec.rules[{i}].matches[{j}]");
                    if let Some(mm) = &m.method {
                        if mm.service.is_none() && mm.method.is_none() {
                            p.push((format!("{at}.method"), "set service, method or both".into()));
                        }
                        match mm.kind.as_str() {
                            "Exact" => {
                                for v in mm.service.iter().chain(&mm.method) {
                                    if v.contains('/') || v.is_empty() {
                                        p.push((format!("{at}.method"), format!("`{v}` may not be empty or contain /")));
                                    }
                                }
                            }
                            "RegularExpression" => {
                                for v in mm.service.iter().chain(&mm.method) {
                                    regex(&mut p, &format!("{at}.method"), v);
                                }
                            }
                            other => p.push((
                                format!("{at}.method.type"),
                                format!("`{other}` is not a method match type: use Exact or RegularExpression"),
                            )),
                        }
                    }
                    values(&mut p, &format!("{at}.headers"), &m.headers);
                }
            }
        }
        Spec::SchemaContract(_) | Spec::Namespace => {}
    }
    p
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() == 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'Z'
}

/// Kubernetes' IANA_SVC_NAME.
pub fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn is_method(m: &str) -> bool {
    matches!(
        m,
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE" | "PATCH"
    )
}

fn label(p: &mut Vec<Problem>, field: &str, v: &str) {
    if !is_dns_label(v) {
        p.push((field.into(), format!("`{v}` is not a DNS-1123 label")));
    }
}

fn selector(p: &mut Vec<Problem>, field: &str, s: &LabelSelector) {
    for (i, e) in s.match_expressions.iter().enumerate() {
        let at = format!("{field}.matchExpressions[{i}]");
        match e.operator.as_str() {
            "In" | "NotIn" if e.values.is_empty() => p.push((
                format!("{at}.values"),
                format!("{} needs values", e.operator),
            )),
            "Exists" | "DoesNotExist" if !e.values.is_empty() => p.push((
                format!("{at}.values"),
                format!("{} takes no values", e.operator),
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => p.push((
                format!("{at}.operator"),
                format!("`{other}` is not an operator: use In, NotIn, Exists or DoesNotExist"),
            )),
        }
    }
}

fn identities(p: &mut Vec<Problem>, field: &str, ids: &[String]) {
    for (i, id) in ids.iter().enumerate() {
        if let Err(e) = IdentityMatch::parse(id) {
            p.push((format!("{field}[{i}]"), e));
        }
    }
}

fn identity_ref(p: &mut Vec<Problem>, field: &str, r: &ObjectRef) {
    if !r.group().is_empty() || !(r.is("ServiceAccount") || r.is("Namespace")) {
        p.push((
            format!("{field}.kind"),
            format!(
                "`{}` cannot name identities: use ServiceAccount or Namespace",
                r.kind
            ),
        ));
    }
    match r.name.as_deref() {
        None | Some("") => p.push((format!("{field}.name"), "missing".into())),
        Some("*") => {}
        Some(n) => label(p, &format!("{field}.name"), n),
    }
}

fn networks(p: &mut Vec<Problem>, field: &str, nets: &[Network]) {
    for (i, n) in nets.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match parse_cidr(&n.cidr) {
            Err(e) => p.push((format!("{at}.cidr"), e)),
            Ok(net) => {
                for (j, e) in n.except.iter().enumerate() {
                    match parse_cidr(e) {
                        Err(msg) => p.push((format!("{at}.except[{j}]"), msg)),
                        Ok(ex) if !net.contains(&ex) => p.push((
                            format!("{at}.except[{j}]"),
                            format!("{ex} is not inside {net}"),
                        )),
                        Ok(_) => {}
                    }
                }
            }
        }
    }
}

fn hostnames(p: &mut Vec<Problem>, hosts: &[String]) {
    for (i, h) in hosts.iter().enumerate() {
        let name = h.strip_prefix("*.").unwrap_or(h);
        if !is_dns_name(name) {
            p.push((
                format!("spec.hostnames[{i}]"),
                format!("`{h}` is not a hostname (a wildcard may only be a leading `*.`)"),
            ));
        }
    }
}

fn values(p: &mut Vec<Problem>, field: &str, ms: &[ValueMatch]) {
    for (i, m) in ms.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if m.name.is_empty() {
            p.push((format!("{at}.name"), "missing".into()));
        }
        match m.kind.as_str() {
            "Exact" => {}
            "RegularExpression" => regex(p, &format!("{at}.value"), &m.value),
            other => p.push((
                format!("{at}.type"),
                format!("`{other}` is not a match type: use Exact or RegularExpression"),
            )),
        }
    }
}

fn regex(p: &mut Vec<Problem>, field: &str, re: &str) {
    if let Err(e) = Regex::new(re) {
        let first = e
            .to_string()
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string();
        p.push((
            field.into(),
            format!("`{re}` is not a regular expression: {first}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load::{PolicySet, load_str};
    use std::path::Path;

    fn problems(yaml: &str) -> Vec<String> {
        let mut set = PolicySet::default();
        let mut errors = Vec::new();
        load_str(Path::new("t.yaml"), yaml, &mut set, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        validate(&set.resources[0].resource)
            .into_iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect()
    }

    #[test]
    fn server_rules() {
        let p = problems(
            "apiVersion: policy.linkerd.io/v1beta1\nkind: Server\nmetadata: {name: s}\n\
             spec: {port: -70000, accessPolicy: everyone}\n",
        );
        assert!(p[0].starts_with("spec.podSelector: exactly one"), "{p:?}");
        assert!(p[1].starts_with("spec.port: -70000 is not a port"), "{p:?}");
        assert!(
            p[2].starts_with("spec.accessPolicy: needs policy.linkerd.io/v1beta3"),
            "{p:?}"
        );
        assert!(
            p[3].starts_with("spec.accessPolicy: unknown default policy"),
            "{p:?}"
        );
    }

    #[test]
    fn authorization_policy_rules() {
        let p = problems(
            "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: shop}\n\
             spec:\n  targetRef: {kind: Namespace, name: other}\n  requiredAuthenticationRefs:\n\
             \x20 - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: m}\n  - {kind: ServiceAccount, name: web}\n\
             \x20 - {group: policy.linkerd.io, kind: NetworkAuthentication, name: n1}\n  - {group: policy.linkerd.io, kind: NetworkAuthentication, name: n2}\n\
             \x20 - {kind: Secret, name: s}\n",
        );
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].starts_with("spec.targetRef.name: a Namespace target must be"));
        assert!(p[1].starts_with("spec.requiredAuthenticationRefs[4].kind: unsupported"));
        assert!(p[2].contains("cannot both be set"));
        assert!(p[3].contains("only one NetworkAuthentication"));
    }

    #[test]
    fn server_authorization_rules() {
        let p = problems(
            "apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: a}\n\
             spec:\n  server: {name: s, selector: {}}\n  client:\n    unauthenticated: true\n    \
             meshTLS: {unauthenticatedTLS: true, identities: ['*']}\n    networks: [{cidr: 10.0.0.0/8, except: [192.168.0.0/16]}]\n",
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("spec.server: exactly one"));
        assert!(p[1].starts_with("spec.client: `unauthenticated` and `meshTLS`"));
        assert!(
            p[2].starts_with("spec.client.networks[0].except[0]: 192.168.0.0/16 is not inside")
        );
    }

    #[test]
    fn authentication_and_route_rules() {
        let p = problems(
            "apiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {name: m}\n\
             spec: {identities: ['Bad_Name'], identityRefs: [{kind: Pod, name: x}]}\n",
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("spec.identities[0]: `Bad_Name` is not a valid identity"));
        let p = problems(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n\
             spec:\n  hostnames: ['a.*.com']\n  rules:\n  - matches:\n    - {path: {type: Exact, value: orders}, method: FETCH}\n    \
             - {path: {type: RegularExpression, value: '(['}, headers: [{name: x, value: y, type: Glob}]}\n",
        );
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(
            p[1].starts_with("spec.rules[0].matches[0].path.value: `orders` must start with /")
        );
        assert!(p[2].starts_with("spec.rules[0].matches[0].method"));
        assert!(
            p[3].starts_with(
                "spec.rules[0].matches[1].path.value: `([` is not a regular expression"
            )
        );
        assert!(p[4].starts_with("spec.rules[0].matches[1].headers[0].type"));
    }
}
