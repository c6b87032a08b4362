//! Route matching, compiled once: hostnames, path (segment-wise prefixes), headers, query
//! parameters, method, gRPC service/method. A route's score orders matches the way Linkerd
//! does — host, then path, then header count, query count, method — so the best one wins.

use regex::Regex;

use super::resources::{GrpcRouteSpec, HttpRouteMatch, HttpRouteSpec, ValueMatch};

#[derive(Debug, Clone)]
pub enum HostMatch {
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Suffix(String),
}

#[derive(Debug, Clone)]
enum PathRule {
    Exact(String),
    /// Kept without a trailing `/` (so `/` itself is the empty string).
    Prefix(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
enum ValueRule {
    Exact(String),
    Regex(Regex),
}

impl ValueRule {
    fn new(kind: &str, value: &str) -> Option<ValueRule> {
        Some(if kind == "RegularExpression" {
            ValueRule::Regex(anchored(value)?)
        } else {
            ValueRule::Exact(value.to_string())
        })
    }

    fn matches(&self, v: &str) -> bool {
        match self {
            ValueRule::Exact(e) => e == v,
            ValueRule::Regex(r) => r.is_match(v),
        }
    }
}

/// Gateway API regular expressions must match the whole value.
fn anchored(re: &str) -> Option<Regex> {
    Regex::new(&format!("^(?:{re})$")).ok()
}

#[derive(Debug, Clone)]
struct NamedRule {
    /// Header names are lower-cased (they compare case-insensitively).
    name: String,
    value: ValueRule,
}

fn named(ms: &[ValueMatch], lower: bool) -> Option<Vec<NamedRule>> {
    ms.iter()
        .map(|m| {
            Some(NamedRule {
                name: if lower {
                    m.name.to_ascii_lowercase()
                } else {
                    m.name.clone()
                },
                value: ValueRule::new(&m.kind, &m.value)?,
            })
        })
        .collect()
}

#[derive(Debug, Clone)]
enum RuleMatch {
    Http {
        path: PathRule,
        headers: Vec<NamedRule>,
        query: Vec<NamedRule>,
        method: Option<String>,
    },
    Grpc {
        service: Option<ValueRule>,
        method: Option<ValueRule>,
        headers: Vec<NamedRule>,
    },
}

/// A request as routes see it.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Without the query string.
    pub path: &'a str,
    pub query: &'a str,
    /// Without a port.
    pub host: Option<&'a str>,
    pub headers: &'a [(String, String)],
}

/// How well a route matched; greater is better (compared field by field, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Score {
    /// 2 exact hostname, 1 wildcard, 0 the route names no hostnames.
    host_kind: u8,
    host_len: usize,
    /// Path: the matched length; gRPC: how many of service/method the rule names.
    path_len: usize,
    /// Exact 2, regular expression 1, prefix 0 (breaks ties of equal length).
    path_kind: u8,
    headers: usize,
    query: usize,
    method: bool,
}

/// The matching part of an HTTPRoute or GRPCRoute.
#[derive(Debug, Clone)]
pub struct RouteMatcher {
    hosts: Vec<HostMatch>,
    rules: Vec<RuleMatch>,
}

impl RouteMatcher {
    /// Compiles an HTTPRoute; `None` if a regular expression does not compile (validation
    /// reports it; such a route is not served).
    pub fn http(spec: &HttpRouteSpec) -> Option<RouteMatcher> {
        let mut rules = Vec::new();
        for rule in &spec.rules {
            let default = [HttpRouteMatch::default()];
            let matches = if rule.matches.is_empty() {
                &default[..]
            } else {
                &rule.matches
            };
            for m in matches {
                let path = match &m.path {
                    None => PathRule::Prefix(String::new()),
                    Some(p) => match p.kind.as_str() {
                        "Exact" => PathRule::Exact(p.value.clone()),
                        "RegularExpression" => PathRule::Regex(anchored(&p.value)?),
                        _ => PathRule::Prefix(p.value.trim_end_matches('/').to_string()),
                    },
                };
                rules.push(RuleMatch::Http {
                    path,
                    headers: named(&m.headers, true)?,
                    query: named(&m.query_params, false)?,
                    method: m.method.clone(),
                });
            }
        }
        if spec.rules.is_empty() {
            rules.push(RuleMatch::Http {
                path: PathRule::Prefix(String::new()),
                headers: Vec::new(),
                query: Vec::new(),
                method: None,
            });
        }
        Some(RouteMatcher {
            hosts: hosts(&spec.hostnames),
            rules,
        })
    }

    pub fn grpc(spec: &GrpcRouteSpec) -> Option<RouteMatcher> {
        let mut rules = Vec::new();
        for rule in &spec.rules {
            if rule.matches.is_empty() {
                rules.push(RuleMatch::Grpc {
                    service: None,
                    method: None,
                    headers: Vec::new(),
                });
            }
            for m in &rule.matches {
                let (kind, service, method) = m
                    .method
                    .as_ref()
                    .map(|mm| {
                        (
                            mm.kind.as_str(),
                            mm.service.as_deref(),
                            mm.method.as_deref(),
                        )
                    })
                    .unwrap_or(("Exact", None, None));
                let rule = |v: Option<&str>| match v {
                    None => Some(None),
                    Some(v) => ValueRule::new(kind, v).map(Some),
                };
                rules.push(RuleMatch::Grpc {
                    service: rule(service)?,
                    method: rule(method)?,
                    headers: named(&m.headers, true)?,
                });
            }
        }
        if spec.rules.is_empty() {
            rules.push(RuleMatch::Grpc {
                service: None,
                method: None,
                headers: Vec::new(),
            });
        }
        Some(RouteMatcher {
            hosts: hosts(&spec.hostnames),
            rules,
        })
    }

    /// Linkerd's automatic `default` route: every request, scored lowest (prefix `/`).
    pub fn match_all() -> RouteMatcher {
        RouteMatcher {
            hosts: Vec::new(),
            rules: vec![RuleMatch::Http {
                path: PathRule::Prefix(String::new()),
                headers: Vec::new(),
                query: Vec::new(),
                method: None,
            }],
        }
    }

    /// Linkerd's automatic `probe` route: `GET` on exactly one of the workload's probe paths.
    /// An exact path with a method outscores the match-all route, so probes land here.
    pub fn probe(paths: &[String]) -> RouteMatcher {
        RouteMatcher {
            hosts: Vec::new(),
            rules: paths
                .iter()
                .map(|p| RuleMatch::Http {
                    path: PathRule::Exact(p.clone()),
                    headers: Vec::new(),
                    query: Vec::new(),
                    method: Some("GET".into()),
                })
                .collect(),
        }
    }

    /// The best score of any of the route's matches, or `None` if none matches.
    pub fn score(&self, req: &RequestView<'_>) -> Option<Score> {
        let (host_kind, host_len) = if self.hosts.is_empty() {
            (0, 0)
        } else {
            let host = req.host?;
            self.hosts
                .iter()
                .filter_map(|h| match h {
                    HostMatch::Exact(e) => e.eq_ignore_ascii_case(host).then_some((2, e.len())),
                    // Bytes, not str slicing: a non-ASCII host must not split a character.
                    HostMatch::Suffix(s) => (host.len() > s.len()
                        && host.as_bytes()[host.len() - s.len()..]
                            .eq_ignore_ascii_case(s.as_bytes()))
                    .then_some((1, s.len())),
                })
                .max()?
        };
        self.rules
            .iter()
            .filter_map(|r| rule_score(r, req))
            .max()
            .map(|s| Score {
                host_kind,
                host_len,
                ..s
            })
    }
}

fn hosts(names: &[String]) -> Vec<HostMatch> {
    names
        .iter()
        .map(|h| match h.strip_prefix('*') {
            Some(suffix) => HostMatch::Suffix(suffix.to_string()),
            None => HostMatch::Exact(h.clone()),
        })
        .collect()
}

fn header<'a>(req: &RequestView<'a>, name: &str) -> impl Iterator<Item = &'a str> {
    req.headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn all_headers(rules: &[NamedRule], req: &RequestView<'_>) -> bool {
    rules
        .iter()
        .all(|r| header(req, &r.name).any(|v| r.value.matches(v)))
}

fn rule_score(rule: &RuleMatch, req: &RequestView<'_>) -> Option<Score> {
    match rule {
        RuleMatch::Http {
            path,
            headers,
            query,
            method,
        } => {
            let (path_len, path_kind) = match path {
                PathRule::Exact(e) => (e == req.path).then_some((e.len(), 2))?,
                PathRule::Regex(r) => r.is_match(req.path).then_some((req.path.len(), 1))?,
                PathRule::Prefix(p) => {
                    let segment_wise = req.path.strip_prefix(p.as_str()).is_some_and(|rest| {
                        rest.is_empty() || rest.starts_with('/') || p.is_empty()
                    });
                    segment_wise.then_some((p.len().max(1), 0))?
                }
            };
            if method.as_deref().is_some_and(|m| m != req.method) || !all_headers(headers, req) {
                return None;
            }
            let all_query = query.iter().all(|q| {
                req.query
                    .split('&')
                    .filter_map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (k == q.name).then_some(v)
                    })
                    .any(|v| q.value.matches(v))
            });
            all_query.then_some(Score {
                path_len,
                path_kind,
                headers: headers.len(),
                query: query.len(),
                method: method.is_some(),
                ..Score::default()
            })
        }
        RuleMatch::Grpc {
            service,
            method,
            headers,
        } => {
            let (svc, m) = req.path.strip_prefix('/')?.split_once('/')?;
            let ok = |rule: &Option<ValueRule>, v: &str| rule.as_ref().is_none_or(|r| r.matches(v));
            if !ok(service, svc) || !ok(method, m) || !all_headers(headers, req) {
                return None;
            }
            let exact = [service, method]
                .iter()
                .any(|r| matches!(r, Some(ValueRule::Exact(_))));
            Some(Score {
                path_len: usize::from(service.is_some()) + usize::from(method.is_some()),
                path_kind: if exact { 2 } else { 1 },
                headers: headers.len(),
                ..Score::default()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(yaml: &str) -> RouteMatcher {
        RouteMatcher::http(&serde_yaml_ng::from_str(yaml).unwrap()).unwrap()
    }

    fn req<'a>(method: &'a str, path: &'a str, host: Option<&'a str>) -> RequestView<'a> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        RequestView {
            method,
            path,
            query,
            host,
            headers: &[],
        }
    }

    #[test]
    fn probe_route_is_get_on_exact_paths_and_beats_match_all() {
        let probe = RouteMatcher::probe(&["/ready".into(), "/live".into()]);
        let all = RouteMatcher::match_all();
        let ready = req("GET", "/ready", None);
        assert!(probe.score(&ready) > all.score(&ready));
        assert!(probe.score(&req("GET", "/live?x=1", None)).is_some());
        assert!(probe.score(&req("POST", "/ready", None)).is_none());
        assert!(probe.score(&req("GET", "/ready/more", None)).is_none());
        assert!(all.score(&req("DELETE", "/anything", None)).is_some());
        assert!(RouteMatcher::probe(&[]).score(&ready).is_none());
    }

    #[test]
    fn path_prefixes_match_whole_segments() {
        let r = http("rules: [{matches: [{path: {type: PathPrefix, value: /v1/orders}}]}]");
        assert!(r.score(&req("GET", "/v1/orders", None)).is_some());
        assert!(r.score(&req("GET", "/v1/orders/7", None)).is_some());
        assert!(r.score(&req("GET", "/v1/ordersx", None)).is_none());
        assert!(r.score(&req("GET", "/v1", None)).is_none());
        let slash = http("rules: [{matches: [{path: {type: PathPrefix, value: /v1/}}]}]");
        assert!(slash.score(&req("GET", "/v1", None)).is_some());
        assert!(slash.score(&req("GET", "/v1/x", None)).is_some());
        let root = http("rules: [{matches: [{path: {value: /}}]}]");
        assert!(root.score(&req("GET", "/anything", None)).is_some());
    }

    #[test]
    fn a_rule_without_matches_is_prefix_root() {
        let r = http("rules: [{}]");
        assert!(r.score(&req("DELETE", "/x/y", None)).is_some());
    }

    #[test]
    fn scores_rank_host_then_path_then_headers_query_method() {
        let longer = http("rules: [{matches: [{path: {value: /v1/orders}}]}]");
        let shorter = http(
            "rules: [{matches: [{path: {value: /v1}, method: GET, headers: [{name: x, value: y}]}]}]",
        );
        let r = RequestView {
            headers: &[("X".into(), "y".into())],
            ..req("GET", "/v1/orders/1", None)
        };
        assert!(longer.score(&r) > shorter.score(&r));
        let exact_host =
            http("hostnames: [api.shop.example]\nrules: [{matches: [{path: {value: /}}]}]");
        let wild_host = http(
            "hostnames: ['*.shop.example']\nrules: [{matches: [{path: {value: /v1/orders/1}}]}]",
        );
        let h = req("GET", "/v1/orders/1", Some("api.shop.example"));
        assert!(exact_host.score(&h) > wild_host.score(&h));
        assert!(wild_host.score(&h) > longer.score(&h));
        assert!(exact_host.score(&req("GET", "/", None)).is_none());
        assert!(
            wild_host
                .score(&req("GET", "/v1/orders/1", Some("é.shop.example")))
                .is_some()
        );
        assert!(
            wild_host
                .score(&req("GET", "/v1/orders/1", Some("ééééééééééééé")))
                .is_none()
        );
        let exact = http("rules: [{matches: [{path: {type: Exact, value: /v1}}]}]");
        let prefix = http("rules: [{matches: [{path: {value: /v1}}]}]");
        assert!(exact.score(&req("GET", "/v1", None)) > prefix.score(&req("GET", "/v1", None)));
        let q = http("rules: [{matches: [{queryParams: [{name: page, value: '2'}]}]}]");
        assert!(q.score(&req("GET", "/x?a=1&page=2", None)).is_some());
        assert!(q.score(&req("GET", "/x?page=3", None)).is_none());
        let m = http("rules: [{matches: [{method: POST}]}]");
        assert!(m.score(&req("GET", "/", None)).is_none());
    }

    #[test]
    fn grpc_matches_service_and_method() {
        let g = RouteMatcher::grpc(
            &serde_yaml_ng::from_str(
                "rules: [{matches: [{method: {service: shop.Payments, method: Charge}}]}]",
            )
            .unwrap(),
        )
        .unwrap();
        assert!(
            g.score(&req("POST", "/shop.Payments/Charge", None))
                .is_some()
        );
        assert!(
            g.score(&req("POST", "/shop.Payments/Refund", None))
                .is_none()
        );
        let svc = RouteMatcher::grpc(
            &serde_yaml_ng::from_str(
                "rules: [{matches: [{method: {type: RegularExpression, service: 'shop\\..*'}}]}]",
            )
            .unwrap(),
        )
        .unwrap();
        assert!(
            svc.score(&req("POST", "/shop.Payments/Refund", None))
                .is_some()
        );
        assert!(svc.score(&req("POST", "/Payments", None)).is_none());
    }
}
