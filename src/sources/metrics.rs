//! linkerd2-proxy metrics → mesh facts: edges, their golden metrics, and policy hits.
//!
//! A proxy's series say only half of each edge. Inbound series name the client by its
//! proven identity (`client_id`) and the server is the scraped proxy itself; outbound series
//! name the server (`server_id`, `dst_namespace`, `dst_deployment`, ...) and the client is
//! the scraped proxy. Who the scraped proxy is comes from its scrape target (`NS/NAME=URL`)
//! or from labels a Prometheus scrape config adds (`namespace`, `deployment`, ...); when
//! neither says, it is known by its `instance` address. The halves are joined by learning
//! identity ↔ workload pairs from the series themselves (an outbound `server_id` with its
//! `dst_*` workload; an inbound `client_id`, else Linkerd's `<sa>.<ns>` identity read as
//! workload `<sa>` in namespace `<ns>` — the tap filter's convention), and an edge reported
//! by both proxies keeps the server's inbound counts, as the tap fold does.
//!
//! Counts are whatever the samples hold: totals since the proxies started (one scrape), or
//! increases over an interval (`increase_since` between two scrapes, or PromQL `increase`).

use std::collections::{BTreeMap, HashMap};

use super::SourceError;
use super::prom_text::Sample;
use crate::mesh::metrics::{EdgeCounts, MetricsDelta, PolicyCounts};
use crate::mesh::policy_hits::PolicyKey;
use crate::tap::{Direction, Endpoint};

/// Kubernetes owner kinds, in the order a workload is named by: a Prometheus scrape config
/// copies them onto each series as `<kind>`; the destination API as `dst_<kind>`.
pub const OWNER_KINDS: [&str; 6] = [
    "deployment",
    "statefulset",
    "daemonset",
    "replicaset",
    "job",
    "cronjob",
];

/// A workload: `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
}

impl std::str::FromStr for Workload {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<Workload, SourceError> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Workload {
                    namespace: ns.into(),
                    name: name.into(),
                })
            }
            _ => Err(SourceError::Target(format!(
                "`{s}` is not a workload; write NAMESPACE/NAME"
            ))),
        }
    }
}

/// The samples of one proxy's scrape, or of a Prometheus query over many proxies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// The scraped proxy's workload, when the user said.
    pub workload: Option<Workload>,
    /// How to name the scraped proxy when nothing else does (its address).
    pub instance: String,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// What each counter (and histogram bucket) gained since `earlier`; a counter that went
    /// down was reset (the proxy restarted) and counts from zero. Gauges keep their value.
    pub fn increase_since(&self, earlier: &Scrape) -> Scrape {
        let before: HashMap<SeriesId, f64> = earlier
            .samples
            .iter()
            .map(|s| ((s.name.as_str(), sorted_labels(s)), s.value))
            .collect();
        let samples = self
            .samples
            .iter()
            .map(|s| {
                let mut s = s.clone();
                if !is_gauge(&s.name)
                    && let Some(&old) = before.get(&(s.name.as_str(), sorted_labels(&s)))
                    && s.value >= old
                {
                    s.value -= old;
                }
                s
            })
            .collect();
        Scrape {
            workload: self.workload.clone(),
            instance: self.instance.clone(),
            samples,
        }
    }

    /// The counters (and histogram buckets) times `factor`, gauges as they are: an increase
    /// over one window restated as the share of a shorter period at the same rate.
    pub fn scaled(&self, factor: f64) -> Scrape {
        let samples = self
            .samples
            .iter()
            .map(|s| {
                let mut s = s.clone();
                if !is_gauge(&s.name) {
                    s.value *= factor;
                }
                s
            })
            .collect();
        Scrape {
            workload: self.workload.clone(),
            instance: self.instance.clone(),
            samples,
        }
    }
}

/// A series: its family name and its labels in sorted order.
type SeriesId<'a> = (&'a str, Vec<&'a (String, String)>);

fn sorted_labels(s: &Sample) -> Vec<&(String, String)> {
    let mut l: Vec<_> = s.labels.iter().collect();
    l.sort_unstable();
    l
}

fn is_gauge(name: &str) -> bool {
    name == "tcp_open_connections"
}

/// One side of an edge as the metrics name it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    pub namespace: Option<String>,
    pub workload: Option<String>,
    /// When no workload is known: an address (`instance`, `authority`, `target_addr`).
    pub addr: Option<String>,
}

impl Peer {
    fn workload(w: &Workload) -> Peer {
        Peer {
            namespace: Some(w.namespace.clone()),
            workload: Some(w.name.clone()),
            addr: None,
        }
    }

    fn addr(addr: &str) -> Peer {
        Peer {
            addr: (!addr.is_empty()).then(|| addr.to_string()),
            ..Peer::default()
        }
    }

    fn has_workload(&self) -> bool {
        self.workload.is_some()
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.namespace, &self.workload, &self.addr) {
            (Some(ns), Some(w), _) => write!(f, "{ns}/{w}"),
            (None, Some(w), _) => f.write_str(w),
            (_, None, Some(a)) => f.write_str(a),
            _ => f.write_str("-"),
        }
    }
}

/// What an edge is keyed by: `linkerd viz edges`' columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeKey {
    pub src: Peer,
    pub dst: Peer,
    pub client_id: Option<String>,
    pub server_id: Option<String>,
    /// `true` for mTLS, else the `no_tls_reason` (or the `tls` label when there is none).
    pub tls: String,
}

impl EdgeKey {
    pub fn secured(&self) -> bool {
        self.tls == "true"
    }
}

/// Bucket bounds kept per edge; Linkerd's histograms have 26.
pub const MAX_BUCKETS: usize = 64;

/// A histogram's cumulative bucket counts by upper bound (`le`), in ascending order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, f64)>);

impl Buckets {
    fn add(&mut self, le: f64, count: f64) {
        let full = self.0.len() >= MAX_BUCKETS;
        match self.0.iter_mut().find(|(b, _)| *b == le) {
            Some((_, c)) => *c += count,
            // Bounds past the cap are a hostile or broken exporter; dropping them keeps
            // each add cheap.
            None if full => {}
            None => {
                let at = self.0.partition_point(|(b, _)| *b < le);
                self.0.insert(at, (le, count));
            }
        }
    }

    fn merge(&mut self, other: &Buckets) {
        for &(le, c) in &other.0 {
            self.add(le, c);
        }
    }

    /// The `q` quantile as Prometheus's `histogram_quantile` computes it: linear within the
    /// bucket holding the rank; the highest finite bound when that is the `+Inf` bucket.
    /// `None` without observations or without a `+Inf` bucket.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let (last_le, total) = *self.0.last()?;
        if last_le != f64::INFINITY || total <= 0.0 || !q.is_finite() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for &(le, count) in &self.0 {
            // Counts that go down (a broken exporter) are read as flat.
            let count = count.max(below);
            if count >= rank && count > 0.0 {
                if le == f64::INFINITY {
                    return Some(lower);
                }
                if count == below {
                    return Some(le);
                }
                return Some(lower + (le - lower) * (rank - below) / (count - below));
            }
            (lower, below) = (le, count);
        }
        Some(lower)
    }

    /// Counts per bucket alone (not cumulative), bounds in µs (`u64::MAX` for `+Inf`), for
    /// the model.
    fn per_bucket_us(&self) -> Vec<(u64, u64)> {
        let mut below = 0.0;
        self.0
            .iter()
            .map(|&(le, count)| {
                let count = count.max(below);
                let n = count - below;
                below = count;
                let bound = if le.is_finite() {
                    (le * 1000.0).clamp(0.0, u64::MAX as f64) as u64
                } else {
                    u64::MAX
                };
                (bound, whole(n))
            })
            .collect()
    }
}

/// A count as a whole number: `increase` gives fractions.
fn whole(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

/// What the metrics say about one edge.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeStats {
    pub reported_by: Direction,
    /// `request_total`: requests that entered the proxy.
    pub requests: f64,
    /// `response_total`: responses completed.
    pub responses: f64,
    /// `response_total{classification="success"}`.
    pub successes: f64,
    /// `inbound_http_authz_deny_total` (not in `response_total`).
    pub denied: f64,
    pub tcp_opened: f64,
    pub tcp_open: Option<f64>,
    /// Read plus written.
    pub bytes: f64,
    /// `response_latency_ms`, in milliseconds.
    pub latency: Buckets,
}

impl EdgeStats {
    fn new(reported_by: Direction) -> EdgeStats {
        EdgeStats {
            reported_by,
            requests: 0.0,
            responses: 0.0,
            successes: 0.0,
            denied: 0.0,
            tcp_opened: 0.0,
            tcp_open: None,
            bytes: 0.0,
            latency: Buckets::default(),
        }
    }

    fn merge(&mut self, o: &EdgeStats) {
        self.requests += o.requests;
        self.responses += o.responses;
        self.successes += o.successes;
        self.denied += o.denied;
        self.tcp_opened += o.tcp_opened;
        self.tcp_open = match (self.tcp_open, o.tcp_open) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.bytes += o.bytes;
        self.latency.merge(&o.latency);
    }

    /// Responses per second over an interval of `seconds`; `None` for totals (no interval).
    pub fn rps(&self, seconds: Option<f64>) -> Option<f64> {
        seconds
            .filter(|s| *s > 0.0)
            .map(|s| (self.responses + self.denied) / s)
    }

    /// The share of responses Linkerd classified as success.
    pub fn success_rate(&self) -> Option<f64> {
        (self.responses > 0.0).then(|| self.successes / self.responses)
    }
}

/// Decisions for one (server, route, authorization).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PolicyStats {
    pub allowed: f64,
    pub denied: f64,
}

/// Everything derived from a set of scrapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub edges: BTreeMap<EdgeKey, EdgeStats>,
    pub policy: Vec<(PolicyKey, PolicyStats)>,
}

impl Facts {
    /// The model's input: `time_us` is when the counts were read; `interval_us` `None` for
    /// totals.
    pub fn to_delta(&self, time_us: i64, interval_us: Option<i64>) -> MetricsDelta {
        let edges = self
            .edges
            .iter()
            .map(|(k, s)| EdgeCounts {
                client: endpoint(&k.src, &k.client_id),
                server: endpoint(&k.dst, &k.server_id),
                reported_by: s.reported_by,
                secured: k.secured(),
                requests: whole(s.responses + s.denied),
                successes: whole(s.successes + s.denied),
                denied: whole(s.denied),
                tcp_connections: whole(s.tcp_opened),
                tcp_open: s.tcp_open.map(whole),
                bytes: whole(s.bytes),
                latency: s.latency.per_bucket_us(),
            })
            .collect();
        let policy = self
            .policy
            .iter()
            .map(|(key, s)| PolicyCounts {
                key: key.clone(),
                allowed: whole(s.allowed),
                denied: whole(s.denied),
            })
            .collect();
        MetricsDelta {
            time_us,
            interval_us,
            edges,
            policy,
        }
    }
}

fn endpoint(p: &Peer, identity: &Option<String>) -> Endpoint {
    Endpoint {
        // A client the metrics do not name (plaintext, inbound) is one node, "-".
        addr: p.addr.clone().unwrap_or_else(|| "-".into()),
        namespace: p.namespace.clone(),
        workload: p.workload.clone(),
        identity: identity.clone(),
    }
}

/// One half-edge as a series states it, before the halves are joined.
struct Half {
    direction: Direction,
    key: EdgeKey,
    stats: EdgeStats,
}

/// Derives edges and policy hits from scrapes (see the module docs).
pub fn derive(scrapes: &[Scrape]) -> Result<Facts, SourceError> {
    let mut halves: HashMap<(bool, EdgeKey), Half> = HashMap::new();
    let mut policy: HashMap<PolicyKey, PolicyStats> = HashMap::new();
    for scrape in scrapes {
        for s in &scrape.samples {
            if !s.value.is_finite() || s.value < 0.0 {
                continue;
            }
            let name = s.name.as_str();
            let policy_entry = match name {
                "inbound_http_authz_allow_total" => Some((true, policy_key(s, true, true))),
                "inbound_http_authz_deny_total" => Some((false, policy_key(s, true, false))),
                "inbound_http_route_not_found_total" => Some((false, policy_key(s, false, false))),
                "inbound_tcp_authz_allow_total" => Some((true, policy_key(s, false, true))),
                "inbound_tcp_authz_deny_total" => Some((false, policy_key(s, false, false))),
                _ => None,
            };
            if let Some((allowed, key)) = policy_entry {
                let p = policy.entry(key).or_default();
                if allowed {
                    p.allowed += s.value;
                } else {
                    p.denied += s.value;
                }
            }
            let direction = match (name, s.label("direction")) {
                ("inbound_http_authz_deny_total", _) => Direction::Inbound,
                (_, Some("inbound")) => Direction::Inbound,
                (_, Some("outbound")) => Direction::Outbound,
                _ => continue,
            };
            let le = match name {
                "response_latency_ms_bucket" => Some(bucket_bound(s)?),
                "request_total"
                | "response_total"
                | "inbound_http_authz_deny_total"
                | "tcp_open_total"
                | "tcp_open_connections"
                | "tcp_read_bytes_total"
                | "tcp_write_bytes_total" => None,
                _ => continue,
            };
            let key = half_key(scrape, s, direction);
            let inbound = direction == Direction::Inbound;
            let half = halves
                .entry((inbound, key.clone()))
                .or_insert_with(|| Half {
                    direction,
                    key,
                    stats: EdgeStats::new(direction),
                });
            let st = &mut half.stats;
            match name {
                "request_total" => st.requests += s.value,
                "response_total" => {
                    st.responses += s.value;
                    if s.label("classification") == Some("success") {
                        st.successes += s.value;
                    }
                }
                "inbound_http_authz_deny_total" => st.denied += s.value,
                "tcp_open_total" => st.tcp_opened += s.value,
                "tcp_open_connections" => *st.tcp_open.get_or_insert(0.0) += s.value,
                "tcp_read_bytes_total" | "tcp_write_bytes_total" => st.bytes += s.value,
                _ => {
                    if let Some(le) = le {
                        st.latency.add(le, s.value);
                    }
                }
            }
        }
    }
    let mut halves: Vec<Half> = halves.into_values().collect();
    join(&mut halves);
    let mut edges: BTreeMap<EdgeKey, EdgeStats> = BTreeMap::new();
    for h in halves {
        match edges.get_mut(&h.key) {
            None => {
                edges.insert(h.key, h.stats);
            }
            Some(e) if e.reported_by == h.direction => e.merge(&h.stats),
            // The server's own report wins over the client's.
            Some(e) if h.direction == Direction::Inbound => *e = h.stats,
            Some(_) => {}
        }
    }
    let mut policy: Vec<_> = policy.into_iter().collect();
    policy.sort_by(|(a, _), (b, _)| {
        (&a.server, &a.route, &a.authz).cmp(&(&b.server, &b.route, &b.authz))
    });
    Ok(Facts { edges, policy })
}

fn bucket_bound(s: &Sample) -> Result<f64, SourceError> {
    let le = s.label("le").unwrap_or("");
    match le.parse::<f64>() {
        Ok(v) if !v.is_nan() => Ok(v),
        _ => Err(SourceError::Inconsistent {
            line: s.line,
            message: format!("{}: the bucket bound le=\"{le}\" is not a number", s.name),
        }),
    }
}

/// `kind/name` of the server, route and authorization, as the tap fold keys policy hits.
fn policy_key(s: &Sample, route: bool, authz: bool) -> PolicyKey {
    let kind_name = |prefix: &str| {
        let name = s.label(&format!("{prefix}_name")).unwrap_or("");
        let kind = s.label(&format!("{prefix}_kind")).unwrap_or("");
        (!name.is_empty()).then(|| format!("{kind}/{name}"))
    };
    PolicyKey {
        server: kind_name("srv").unwrap_or_default(),
        route: if route { kind_name("route") } else { None },
        authz: if authz { kind_name("authz") } else { None },
    }
}

/// The scraped proxy itself: as the user named it, as scrape-config labels name it, or by
/// its address.
fn own_peer(scrape: &Scrape, s: &Sample) -> Peer {
    if let Some(w) = &scrape.workload {
        return Peer::workload(w);
    }
    let owner = OWNER_KINDS
        .iter()
        .find_map(|k| s.label(k).filter(|v| !v.is_empty()));
    match (s.label("namespace").filter(|v| !v.is_empty()), owner) {
        (Some(ns), Some(name)) => Peer {
            namespace: Some(ns.into()),
            workload: Some(name.into()),
            addr: None,
        },
        _ => Peer::addr(s.label("instance").unwrap_or(&scrape.instance)),
    }
}

fn half_key(scrape: &Scrape, s: &Sample, direction: Direction) -> EdgeKey {
    let tls = match s.label("tls").unwrap_or("") {
        "true" => "true".to_string(),
        other => s
            .label("no_tls_reason")
            .filter(|r| !r.is_empty())
            .unwrap_or(if other.is_empty() { "unknown" } else { other })
            .to_string(),
    };
    let id = |label: &str| {
        s.label(label)
            .filter(|v| !v.is_empty() && tls == "true")
            .map(str::to_string)
    };
    match direction {
        Direction::Inbound => EdgeKey {
            src: Peer::default(),
            dst: own_peer(scrape, s),
            client_id: id("client_id"),
            server_id: None,
            tls,
        },
        Direction::Outbound => {
            let owner = OWNER_KINDS
                .iter()
                .find_map(|k| s.label(&format!("dst_{k}")).filter(|v| !v.is_empty()));
            let dst = match owner {
                Some(name) => Peer {
                    namespace: s.label("dst_namespace").map(str::to_string),
                    workload: Some(name.into()),
                    addr: None,
                },
                None => Peer::addr(
                    s.label("authority")
                        .filter(|a| !a.is_empty())
                        .or(s.label("target_addr"))
                        .unwrap_or(""),
                ),
            };
            EdgeKey {
                src: own_peer(scrape, s),
                dst,
                client_id: None,
                server_id: id("server_id"),
                tls,
            }
        }
    }
}

/// Fills in what each half does not state: the inbound client's workload and server's
/// identity, the outbound client's identity.
fn join(halves: &mut [Half]) {
    let mut workload_of: HashMap<String, Peer> = HashMap::new();
    let mut identity_of: HashMap<Peer, String> = HashMap::new();
    for h in halves.iter().filter(|h| h.direction == Direction::Outbound) {
        if let Some(id) = &h.key.server_id
            && h.key.dst.has_workload()
        {
            workload_of.insert(id.clone(), h.key.dst.clone());
            identity_of.insert(h.key.dst.clone(), id.clone());
        }
    }
    for h in halves
        .iter_mut()
        .filter(|h| h.direction == Direction::Inbound)
    {
        if let Some(id) = &h.key.client_id {
            let src = workload_of
                .get(id)
                .cloned()
                .or_else(|| identity_workload(id))
                .unwrap_or_default();
            identity_of.entry(src.clone()).or_insert_with(|| id.clone());
            h.key.src = src;
        }
    }
    for h in halves.iter_mut() {
        if !h.key.secured() {
            continue;
        }
        match h.direction {
            Direction::Inbound if h.key.server_id.is_none() => {
                h.key.server_id = identity_of.get(&h.key.dst).cloned();
            }
            Direction::Outbound if h.key.client_id.is_none() => {
                h.key.client_id = identity_of.get(&h.key.src).cloned();
            }
            _ => {}
        }
    }
}

/// Linkerd's `<sa>.<ns>.serviceaccount.identity...` read as workload `<sa>` in `<ns>`.
fn identity_workload(id: &str) -> Option<Peer> {
    let mut parts = id.split('.');
    let (sa, ns, marker) = (parts.next()?, parts.next()?, parts.next()?);
    (marker == "serviceaccount" && !sa.is_empty() && !ns.is_empty()).then(|| Peer {
        namespace: Some(ns.into()),
        workload: Some(sa.into()),
        addr: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::prom_text;

    const SAMPLE: &str = include_str!("../../tests/data/linkerd/proxy-metrics.txt");
    const FRONTEND: &str = "frontend.shop.serviceaccount.identity.linkerd.cluster.local";
    const PAYMENTS: &str = "payments.shop.serviceaccount.identity.linkerd.cluster.local";

    fn scrape(text: &str, workload: Option<&str>) -> Scrape {
        Scrape {
            workload: workload.map(|w| w.parse().unwrap()),
            instance: "10.42.0.17:4191".into(),
            samples: prom_text::parse(text).unwrap().samples,
        }
    }

    fn peer(ns: &str, name: &str) -> Peer {
        Peer {
            namespace: Some(ns.into()),
            workload: Some(name.into()),
            addr: None,
        }
    }

    #[test]
    fn the_linkerd_sample_yields_its_edges() {
        let facts = derive(&[scrape(SAMPLE, Some("shop/orders"))]).unwrap();
        let rows: Vec<String> = facts
            .edges
            .keys()
            .map(|k| {
                format!(
                    "{} -> {} client={} server={} tls={}",
                    k.src,
                    k.dst,
                    k.client_id.as_deref().unwrap_or("-"),
                    k.server_id.as_deref().unwrap_or("-"),
                    k.tls
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                "- -> shop/orders client=- server=- tls=no_tls_from_remote".to_string(),
                format!(
                    "shop/billing -> shop/orders client=billing.shop.serviceaccount.identity.linkerd.cluster.local server=- tls=true"
                ),
                format!("shop/frontend -> shop/orders client={FRONTEND} server=- tls=true"),
                format!("shop/orders -> shop/payments client=- server={PAYMENTS} tls=true"),
            ]
        );
    }

    #[test]
    fn the_linkerd_sample_yields_golden_metrics() {
        let facts = derive(&[scrape(SAMPLE, Some("shop/orders"))]).unwrap();
        let key = facts
            .edges
            .keys()
            .find(|k| k.client_id.as_deref() == Some(FRONTEND))
            .unwrap();
        let e = &facts.edges[key];
        assert_eq!(e.reported_by, Direction::Inbound);
        assert_eq!(
            (e.requests, e.responses, e.successes),
            (1512.0, 1512.0, 1512.0)
        );
        assert_eq!(e.success_rate(), Some(1.0));
        assert_eq!(e.rps(None), None, "one snapshot has no rate");
        assert_eq!((e.tcp_opened, e.tcp_open), (12.0, Some(3.0)));
        // 1512 observations: rank 756 falls in (2, 3] ms (640..910), rank 1436.4 in (10, 20]
        // (1420..1478), rank 1496.88 in (30, 40] (1492..1497).
        let p50 = e.latency.quantile(0.5).unwrap();
        assert!(
            (p50 - (2.0 + (756.0 - 640.0) / 270.0)).abs() < 1e-9,
            "{p50}"
        );
        let p95 = e.latency.quantile(0.95).unwrap();
        assert!(
            (p95 - (10.0 + 10.0 * (1436.4 - 1420.0) / 58.0)).abs() < 1e-9,
            "{p95}"
        );
        let p99 = e.latency.quantile(0.99).unwrap();
        assert!(
            (p99 - (30.0 + 10.0 * (1496.88 - 1492.0) / 5.0)).abs() < 1e-9,
            "{p99}"
        );

        let out = facts
            .edges
            .iter()
            .find(|(k, _)| k.server_id.as_deref() == Some(PAYMENTS))
            .unwrap()
            .1;
        assert_eq!(out.reported_by, Direction::Outbound);
        assert_eq!(out.success_rate(), Some(874.0 / 880.0));
        assert_eq!(
            out.latency.quantile(0.5),
            None,
            "no outbound histogram in the sample"
        );

        let billing = facts
            .edges
            .iter()
            .find(|(k, _)| k.src == peer("shop", "billing"))
            .unwrap()
            .1;
        assert_eq!((billing.denied, billing.responses), (7.0, 0.0));
    }

    #[test]
    fn the_linkerd_sample_yields_policy_hits() {
        let facts = derive(&[scrape(SAMPLE, None)]).unwrap();
        let hits: Vec<String> = facts
            .policy
            .iter()
            .map(|(k, s)| {
                format!(
                    "{} {} {} allow={} deny={}",
                    k.server,
                    k.route.as_deref().unwrap_or("-"),
                    k.authz.as_deref().unwrap_or("-"),
                    s.allowed,
                    s.denied
                )
            })
            .collect();
        assert_eq!(
            hits,
            vec![
                "default/deny - - allow=0 deny=5",
                "server/orders-http - - allow=0 deny=19",
                "server/orders-http HTTPRoute/orders-probes authorizationpolicy/orders-probes-authz allow=360 deny=0",
                "server/orders-http HTTPRoute/orders-read - allow=0 deny=48",
                "server/orders-http HTTPRoute/orders-read authorizationpolicy/orders-read-authz allow=1512 deny=0",
                "server/pg - authorizationpolicy/pg-orders-only allow=24 deny=0",
                "server/pg - default/audit allow=3 deny=0",
            ]
        );
    }

    #[test]
    fn without_a_workload_the_proxy_is_its_instance() {
        let facts = derive(&[scrape(SAMPLE, None)]).unwrap();
        assert!(
            facts
                .edges
                .keys()
                .any(|k| k.dst.to_string() == "10.42.0.17:4191")
        );
        assert!(
            facts
                .edges
                .keys()
                .any(|k| k.src.to_string() == "10.42.0.17:4191")
        );
    }

    const WEB_OUT: &str = r#"response_total{direction="outbound",authority="orders.shop:80",target_addr="127.0.0.3:4143",tls="true",server_id="orders.shop.serviceaccount.identity.linkerd.cluster.local",dst_deployment="orders",dst_namespace="shop",status_code="200",classification="success",grpc_status="",error=""} 10
"#;
    const ORDERS_IN: &str = r#"response_total{direction="inbound",target_addr="127.0.0.3:8080",tls="true",client_id="web.shop.serviceaccount.identity.linkerd.cluster.local",srv_kind="server",srv_name="http",status_code="200",classification="success",grpc_status="",error=""} 9
"#;

    #[test]
    fn both_proxies_of_an_edge_join_into_one_row_with_the_servers_counts() {
        let facts = derive(&[
            scrape(WEB_OUT, Some("shop/web")),
            scrape(ORDERS_IN, Some("shop/orders")),
        ])
        .unwrap();
        assert_eq!(facts.edges.len(), 1, "{:#?}", facts.edges);
        let (k, s) = facts.edges.iter().next().unwrap();
        assert_eq!(
            (&k.src, &k.dst),
            (&peer("shop", "web"), &peer("shop", "orders"))
        );
        assert_eq!(
            k.client_id.as_deref(),
            Some("web.shop.serviceaccount.identity.linkerd.cluster.local")
        );
        assert_eq!(
            k.server_id.as_deref(),
            Some("orders.shop.serviceaccount.identity.linkerd.cluster.local")
        );
        assert_eq!((s.reported_by, s.responses), (Direction::Inbound, 9.0));
    }

    #[test]
    fn increases_handle_counter_resets_and_keep_gauges() {
        let earlier = scrape(
            "a_total{x=\"1\"} 10\nb_total 50\ntcp_open_connections 4\n",
            None,
        );
        let later = scrape(
            "b_total 7\na_total{x=\"1\"} 25\nnew_total 3\ntcp_open_connections 2\n",
            None,
        );
        let inc = later.increase_since(&earlier);
        let values: Vec<(&str, f64)> = inc
            .samples
            .iter()
            .map(|s| (s.name.as_str(), s.value))
            .collect();
        assert_eq!(
            values,
            vec![
                ("b_total", 7.0),
                ("a_total", 15.0),
                ("new_total", 3.0),
                ("tcp_open_connections", 2.0)
            ]
        );
    }

    #[test]
    fn rps_comes_from_the_increase_over_the_interval() {
        let earlier = scrape(ORDERS_IN, Some("shop/orders"));
        let later = scrape(&ORDERS_IN.replace("} 9", "} 29"), Some("shop/orders"));
        let facts = derive(&[later.increase_since(&earlier)]).unwrap();
        let s = facts.edges.values().next().unwrap();
        assert_eq!(s.rps(Some(4.0)), Some(5.0));
    }

    #[test]
    fn a_bad_bucket_bound_names_its_line() {
        let text = "x 1\nresponse_latency_ms_bucket{direction=\"inbound\",le=\"fast\"} 1\n";
        let err = derive(&[scrape(text, None)]).unwrap_err().to_string();
        assert_eq!(
            err,
            "line 2: response_latency_ms_bucket: the bucket bound le=\"fast\" is not a number"
        );
    }

    #[test]
    fn an_edge_keeps_at_most_max_buckets_bounds() {
        let text: String = (0..200)
            .map(|i| {
                format!("response_latency_ms_bucket{{direction=\"inbound\",le=\"{i}\"}} {i}\n")
            })
            .collect();
        let facts = derive(&[scrape(&text, None)]).unwrap();
        let e = facts.edges.values().next().unwrap();
        assert_eq!(e.latency.0.len(), MAX_BUCKETS);
    }

    #[test]
    fn quantiles_follow_histogram_quantile() {
        let b = Buckets(vec![(1.0, 0.0), (2.0, 10.0), (f64::INFINITY, 10.0)]);
        assert_eq!(b.quantile(0.5), Some(1.5));
        let inf = Buckets(vec![(5.0, 1.0), (f64::INFINITY, 10.0)]);
        assert_eq!(
            inf.quantile(0.99),
            Some(5.0),
            "the +Inf bucket reads as the last bound"
        );
        assert_eq!(Buckets(vec![(5.0, 3.0)]).quantile(0.5), None, "no +Inf");
        assert_eq!(Buckets::default().quantile(0.5), None);
        let broken = Buckets(vec![(1.0, 5.0), (2.0, 3.0), (f64::INFINITY, 6.0)]);
        assert!(broken.quantile(0.9).is_some());
    }

    #[test]
    fn the_model_gets_the_same_edges() {
        let facts = derive(&[scrape(SAMPLE, Some("shop/orders"))]).unwrap();
        let delta = facts.to_delta(1_000_000, None);
        let mut mesh = crate::mesh::Mesh::default();
        mesh.apply_metrics(&delta);
        let g = mesh.graph();
        let frontend = g.find(FRONTEND).unwrap();
        let orders = g.find("shop/orders").unwrap();
        let e = g.edge(frontend.id, orders.id).unwrap();
        assert_eq!((e.requests, e.successes), (1512, 1512));
        assert_eq!(e.latency().unwrap().count(), 1512);
        assert_eq!(e.rps(1_000_000), 0.0, "totals carry no rate");
        let billing = g
            .find("billing.shop.serviceaccount.identity.linkerd.cluster.local")
            .unwrap();
        assert_eq!(g.edge(billing.id, orders.id).unwrap().denied, 7);
        let hits = mesh
            .policy_hits()
            .get(&PolicyKey {
                server: "server/orders-http".into(),
                route: Some("HTTPRoute/orders-read".into()),
                authz: Some("authorizationpolicy/orders-read-authz".into()),
            })
            .unwrap();
        assert_eq!(hits.allowed, 1512);
    }
}
