//! Prometheus metrics under linkerd2-proxy's own names, labels and label order, so that one
//! parser (ours, Linkerd's dashboards, `linkerd viz`-style queries) reads a meshlens proxy and
//! a real Linkerd proxy alike.
//!
//! The proxy's hot path pays one hash lookup per label set and then only atomics: a lookup
//! returns an `Arc` handle that the caller keeps for as long as the labels stay the same (a
//! connection, or a connection's route and authorization). A scrape copies the handles out
//! under a short read lock and formats without holding any lock that updates wait on.

use std::collections::HashMap;
use std::fmt::{Display, Write as _};
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::identity::{CertInfo, CurrentCert};
use crate::tap::{Direction, Publisher};

/// Linkerd's `LINKERD2_PROXY_METRICS_RETAIN_IDLE` default: a series nobody updated for this
/// long is left out of the scrape, so the output of a long-running proxy does not grow with
/// every client it ever saw.
pub const RETAIN_IDLE: Duration = Duration::from_secs(10 * 60);

/// `response_latency_ms` upper bounds (`linkerd/metrics/src/latency.rs`); `+Inf` follows.
pub const LATENCY_BUCKETS_MS: [u64; 25] = [
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1_000, 2_000, 3_000, 4_000, 5_000,
    10_000, 20_000, 30_000, 40_000, 50_000,
];

// ---------------------------------------------------------------------------------------------
// Label sets. Strings are `Arc<str>` so that a caller building the same labels for every
// request of a connection clones reference counts, not text.

/// The address a connection was made to: `target_addr`, `target_ip`, `target_port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target(pub SocketAddr);

/// Linkerd's `no_tls_reason` values, inbound and outbound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoTlsReason {
    NoTlsFromRemote,
    Loopback,
    PortSkipped,
    NotProvidedByServiceDiscovery,
    IngressWithoutOverride,
}

impl NoTlsReason {
    pub fn as_str(self) -> &'static str {
        match self {
            NoTlsReason::NoTlsFromRemote => "no_tls_from_remote",
            NoTlsReason::Loopback => "loopback",
            NoTlsReason::PortSkipped => "port_skipped",
            NoTlsReason::NotProvidedByServiceDiscovery => "not_provided_by_service_discovery",
            NoTlsReason::IngressWithoutOverride => "ingress_without_override",
        }
    }
}

/// How the inbound proxy accepted a connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TlsAccept {
    /// `tls="true",client_id=...`; the id is empty when the client sent no certificate.
    Established { client_id: Arc<str> },
    /// `tls="no_identity",no_tls_reason=...`.
    NoIdentity(NoTlsReason),
    /// `tls="disabled"`.
    Disabled,
}

/// How the outbound proxy connected to its endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TlsConnect {
    /// `tls="true",server_id=...`.
    Established { server_id: Arc<str> },
    /// `tls="no_identity",no_tls_reason=...`.
    NoIdentity(NoTlsReason),
    /// `tls="disabled"`.
    Disabled,
}

const POLICY_GROUP: &str = "policy.linkerd.io";

/// The inbound Server (or default policy) a connection was matched to. Its group follows
/// from its kind, as in Linkerd: `policy.linkerd.io` for `server`, empty for `default`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Srv {
    kind: Arc<str>,
    name: Arc<str>,
    port: u16,
}

impl Srv {
    /// `kind` is the policy engine's lower-case kind: `server` or `default`.
    pub fn new(kind: &str, name: &str, port: u16) -> Srv {
        Srv {
            kind: kind.into(),
            name: name.into(),
            port,
        }
    }

    fn group(&self) -> &'static str {
        if &*self.kind == "server" {
            POLICY_GROUP
        } else {
            ""
        }
    }
}

/// The route a request matched. Unlike servers and authorizations, an `HTTPRoute` exists in
/// two API groups (`policy.linkerd.io` and `gateway.networking.k8s.io`), so the group is
/// given, not derived.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    group: Arc<str>,
    kind: Arc<str>,
    name: Arc<str>,
}

impl Route {
    pub fn new(group: &str, kind: &str, name: &str) -> Route {
        Route {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    /// A route the proxy synthesized (`default` or `probe`): group empty, kind `default`.
    pub fn synthesized(name: &str) -> Route {
        Route::new("", "default", name)
    }
}

/// The authorization that allowed a request or connection; group `policy.linkerd.io` for
/// `authorizationpolicy` and `serverauthorization`, empty for `default`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Authz {
    kind: Arc<str>,
    name: Arc<str>,
}

impl Authz {
    pub fn new(kind: &str, name: &str) -> Authz {
        Authz {
            kind: kind.into(),
            name: name.into(),
        }
    }

    fn group(&self) -> &'static str {
        match &*self.kind {
            "authorizationpolicy" | "serverauthorization" => POLICY_GROUP,
            _ => "",
        }
    }
}

/// The destination's metadata, each rendered as `dst_<key>`, sorted by key as the
/// destination API's label map is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Dst(Vec<(Arc<str>, Arc<str>)>);

impl Dst {
    /// Keys like `namespace`, `service`, `deployment` (a `dst_` prefix is accepted too);
    /// characters a label name cannot hold become `_`. A repeated key keeps its last value.
    pub fn new<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Dst {
        let mut map = std::collections::BTreeMap::new();
        for (key, value) in labels {
            let key = key.strip_prefix("dst_").unwrap_or(key);
            let key: String = key
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            map.insert(key, value);
        }
        Dst(map
            .into_iter()
            .map(|(k, v)| (Arc::from(k), Arc::from(v)))
            .collect())
    }
}

/// The inbound side of a connection: what every `inbound_*` family is labelled with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InboundServer {
    pub target: Target,
    pub tls: TlsAccept,
    pub srv: Srv,
}

/// The outbound side of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OutboundEndpoint {
    /// The logical name the application asked for (`host:port`). HTTP series always carry
    /// the label (empty when unknown); TCP series only when it is known.
    pub authority: Option<Arc<str>>,
    pub target: Target,
    pub tls: TlsConnect,
    pub dst: Dst,
}

/// Labels of `request_total`, `response_total` and `response_latency_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HttpLabels {
    /// An authorized inbound request. Linkerd labels it with the route and authorization,
    /// which is why denied requests are counted elsewhere (`inbound_http_authz_deny_total`).
    Inbound {
        server: InboundServer,
        route: Route,
        authz: Authz,
    },
    Outbound(OutboundEndpoint),
}

/// Labels of the `tcp_*` families.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TcpLabels {
    Inbound(InboundServer),
    Outbound(OutboundEndpoint),
}

/// Labels of meshlens's Avro families.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AvroLabels {
    pub direction: Direction,
    pub subject: Arc<str>,
}

/// How a message's writer schema relates to the consumer's reader schema, when it differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Drift {
    Compatible,
    Incompatible,
    Unregistered,
}

impl Drift {
    pub fn as_str(self) -> &'static str {
        match self {
            Drift::Compatible => "compatible",
            Drift::Incompatible => "incompatible",
            Drift::Unregistered => "unregistered",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Series handles.

/// When a series was last updated, in milliseconds since the first series was created; an
/// `Instant` cannot live in an atomic.
#[derive(Debug)]
struct Touched(AtomicU64);

fn clock_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn millis_at(now: Instant) -> u64 {
    let ms = now.saturating_duration_since(clock_start()).as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}

impl Touched {
    fn now() -> Touched {
        Touched(AtomicU64::new(millis_at(Instant::now())))
    }

    fn touch(&self) {
        self.0.store(millis_at(Instant::now()), Relaxed);
    }

    fn is_idle(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.0.load(Relaxed)) > RETAIN_IDLE.as_millis() as u64
    }
}

/// What decides whether a series is still rendered.
trait Retain {
    fn touched(&self) -> &Touched;

    /// A gauge that is not zero describes the present, however long ago it last changed.
    fn holds_gauge(&self) -> bool {
        false
    }

    fn retained(&self, now_ms: u64) -> bool {
        self.holds_gauge() || !self.touched().is_idle(now_ms)
    }
}

/// A counter without a handle of its own: the rare paths (denials, terminations).
#[derive(Debug)]
struct Counter {
    value: AtomicU64,
    touched: Touched,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            value: AtomicU64::new(0),
            touched: Touched::now(),
        }
    }
}

impl Counter {
    fn incr(&self) {
        self.value.fetch_add(1, Relaxed);
        self.touched.touch();
    }
}

impl Retain for Counter {
    fn touched(&self) -> &Touched {
        &self.touched
    }
}

/// What a response looked like, for `response_total`. The error is a `&'static str` so the
/// label can only take values from the proxy's own fixed vocabulary: a label fed from the
/// network would let any peer grow the registry without bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Response {
    pub status: u16,
    pub grpc_status: Option<u16>,
    pub error: Option<&'static str>,
}

impl Response {
    /// Linkerd's default classifier: an error, a 5xx, or a gRPC status other than OK.
    pub fn is_failure(&self) -> bool {
        self.error.is_some() || self.status >= 500 || self.grpc_status.is_some_and(|s| s != 0)
    }

    fn sort_key(&self) -> (u16, bool, Option<u16>, Option<&'static str>) {
        (self.status, self.is_failure(), self.grpc_status, self.error)
    }
}

#[derive(Debug)]
struct Histogram {
    /// Not cumulative: one slot per bucket, `+Inf` last; summed up when rendered.
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    sum_ms: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ms: AtomicU64::new(0),
        }
    }

    /// Whole milliseconds, truncated, as Linkerd's `Ms` converts a `Duration`: 5.9 ms is
    /// counted in `le="5"`.
    fn observe(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let slot = LATENCY_BUCKETS_MS.partition_point(|&le| le < ms);
        self.buckets[slot].fetch_add(1, Relaxed);
        self.sum_ms.fetch_add(ms, Relaxed);
    }

    fn snapshot(&self) -> ([u64; LATENCY_BUCKETS_MS.len() + 1], u64) {
        (
            std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            self.sum_ms.load(Relaxed),
        )
    }
}

/// The HTTP counters of one label set. Responses are kept in short lists (a handful of
/// status codes per label set), scanned under a read lock; only a status never seen before
/// takes the write lock.
#[derive(Debug)]
pub struct HttpSeries {
    touched: Touched,
    requests: AtomicU64,
    responses: RwLock<Responses>,
}

#[derive(Debug, Default)]
struct Responses {
    totals: Vec<(Response, AtomicU64)>,
    latencies: Vec<(u16, Histogram)>,
}

impl Default for HttpSeries {
    fn default() -> Self {
        HttpSeries {
            touched: Touched::now(),
            requests: AtomicU64::new(0),
            responses: RwLock::default(),
        }
    }
}

impl Retain for HttpSeries {
    fn touched(&self) -> &Touched {
        &self.touched
    }
}

impl HttpSeries {
    /// A request entered the proxy. On inbound it is also the count of
    /// `inbound_http_authz_allow_total`: only authorized requests get an inbound series.
    pub fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
        self.touched.touch();
    }

    /// A response completed after `latency`.
    pub fn response(&self, response: Response, latency: Duration) {
        self.touched.touch();
        {
            let r = read(&self.responses);
            let total = r.totals.iter().find(|(k, _)| *k == response);
            let hist = r.latencies.iter().find(|(s, _)| *s == response.status);
            if let (Some((_, count)), Some((_, hist))) = (total, hist) {
                count.fetch_add(1, Relaxed);
                hist.observe(latency);
                return;
            }
        }
        let mut w = write(&self.responses);
        let w = &mut *w;
        let count = match w.totals.iter().position(|(k, _)| *k == response) {
            Some(i) => &w.totals[i].1,
            None => {
                w.totals.push((response, AtomicU64::new(0)));
                &w.totals[w.totals.len() - 1].1
            }
        };
        count.fetch_add(1, Relaxed);
        let hist = match w.latencies.iter().position(|(s, _)| *s == response.status) {
            Some(i) => &w.latencies[i].1,
            None => {
                w.latencies.push((response.status, Histogram::new()));
                &w.latencies[w.latencies.len() - 1].1
            }
        };
        hist.observe(latency);
    }
}

/// The connection counters of one label set.
#[derive(Debug)]
pub struct TcpSeries {
    touched: Touched,
    opened: AtomicU64,
    open: AtomicI64,
    read_bytes: AtomicU64,
    write_bytes: AtomicU64,
    /// Per `errno` name; empty name for a clean close.
    closes: RwLock<Vec<(Option<&'static str>, AtomicU64)>>,
}

impl Default for TcpSeries {
    fn default() -> Self {
        TcpSeries {
            touched: Touched::now(),
            opened: AtomicU64::new(0),
            open: AtomicI64::new(0),
            read_bytes: AtomicU64::new(0),
            write_bytes: AtomicU64::new(0),
            closes: RwLock::default(),
        }
    }
}

impl Retain for TcpSeries {
    fn touched(&self) -> &Touched {
        &self.touched
    }

    fn holds_gauge(&self) -> bool {
        self.open.load(Relaxed) != 0
    }
}

impl TcpSeries {
    pub fn open(&self) {
        self.opened.fetch_add(1, Relaxed);
        self.open.fetch_add(1, Relaxed);
        self.touched.touch();
    }

    /// Bytes the proxy read from this peer.
    pub fn read(&self, bytes: u64) {
        self.read_bytes.fetch_add(bytes, Relaxed);
        self.touched.touch();
    }

    /// Bytes the proxy wrote to this peer.
    pub fn write(&self, bytes: u64) {
        self.write_bytes.fetch_add(bytes, Relaxed);
        self.touched.touch();
    }

    /// Closes one connection opened with [`open`](Self::open). `errno` is the OS error's
    /// name (`ECONNRESET`), `None` for a clean close; `'static` for the reason given at
    /// [`Response`].
    pub fn close(&self, errno: Option<&'static str>) {
        self.open.fetch_sub(1, Relaxed);
        self.touched.touch();
        {
            let r = read(&self.closes);
            if let Some((_, n)) = r.iter().find(|(e, _)| *e == errno) {
                n.fetch_add(1, Relaxed);
                return;
            }
        }
        let mut w = write(&self.closes);
        match w.iter().find(|(e, _)| *e == errno) {
            Some((_, n)) => {
                n.fetch_add(1, Relaxed);
            }
            None => w.push((errno, AtomicU64::new(1))),
        }
    }
}

/// The Avro inspection counters of one subject and direction.
#[derive(Debug)]
pub struct AvroSeries {
    touched: Touched,
    decoded: AtomicU64,
    invalid: AtomicU64,
    drift: RwLock<Vec<(DriftKey, AtomicU64)>>,
}

/// A kind of drift and the writer's schema version.
type DriftKey = (Drift, Option<u32>);

impl Default for AvroSeries {
    fn default() -> Self {
        AvroSeries {
            touched: Touched::now(),
            decoded: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            drift: RwLock::default(),
        }
    }
}

impl Retain for AvroSeries {
    fn touched(&self) -> &Touched {
        &self.touched
    }
}

impl AvroSeries {
    /// A message decoded and conformed to its contract.
    pub fn decoded(&self) {
        self.decoded.fetch_add(1, Relaxed);
        self.touched.touch();
    }

    /// A message did not decode, or broke its contract.
    pub fn invalid(&self) {
        self.invalid.fetch_add(1, Relaxed);
        self.touched.touch();
    }

    /// A message was written with a schema other than the consumer's; `schema_version` is
    /// the writer's registered version, `None` when it is not registered.
    pub fn drift(&self, drift: Drift, schema_version: Option<u32>) {
        self.touched.touch();
        let key = (drift, schema_version);
        {
            let r = read(&self.drift);
            if let Some((_, n)) = r.iter().find(|(k, _)| *k == key) {
                n.fetch_add(1, Relaxed);
                return;
            }
        }
        let mut w = write(&self.drift);
        match w.iter().find(|(k, _)| *k == key) {
            Some((_, n)) => {
                n.fetch_add(1, Relaxed);
            }
            None => w.push((key, AtomicU64::new(1))),
        }
    }
}

/// A poisoned lock still holds whole values: every writer only pushes complete entries.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// One metric family's series by label set.
#[derive(Debug)]
struct Family<K, V> {
    map: RwLock<HashMap<K, Arc<V>>>,
}

impl<K, V> Default for Family<K, V> {
    fn default() -> Self {
        Family {
            map: RwLock::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Retain + Default> Family<K, V> {
    fn get(&self, key: &K) -> Arc<V> {
        if let Some(series) = read(&self.map).get(key) {
            return series.clone();
        }
        write(&self.map).entry(key.clone()).or_default().clone()
    }

    /// The series to render. Idle ones are left out, and forgotten when no caller still
    /// holds their handle (a held handle may be updated again, and must not count into a
    /// series the registry no longer knows).
    fn live(&self, now_ms: u64) -> Vec<(K, Arc<V>)> {
        let mut stale = false;
        let live = read(&self.map)
            .iter()
            .filter(|(_, v)| {
                let keep = v.retained(now_ms);
                stale |= !keep;
                keep
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if stale {
            write(&self.map).retain(|_, v| v.retained(now_ms) || Arc::strong_count(v) > 1);
        }
        live
    }
}

// ---------------------------------------------------------------------------------------------
// The registry.

/// Every metric one proxy exposes. Share it as `Arc<Metrics>` between the proxy's tasks and
/// its admin server.
#[derive(Debug, Default)]
pub struct Metrics {
    http: Family<HttpLabels, HttpSeries>,
    tcp: Family<TcpLabels, TcpSeries>,
    http_deny: Family<(InboundServer, Route), Counter>,
    http_no_route: Family<InboundServer, Counter>,
    tcp_allow: Family<(InboundServer, Authz), Counter>,
    tcp_deny: Family<InboundServer, Counter>,
    tcp_terminate: Family<InboundServer, Counter>,
    avro: Family<AvroLabels, AvroSeries>,
    identity: Option<Arc<CurrentCert>>,
    tap: Option<Publisher>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Reports the expiry of whatever leaf `cert` serves at scrape time, so a renewal shows
    /// up without anyone telling the registry.
    pub fn with_identity(mut self, cert: Arc<CurrentCert>) -> Metrics {
        self.identity = Some(cert);
        self
    }

    /// Reports the publisher's own counters at scrape time.
    pub fn with_tap(mut self, publisher: Publisher) -> Metrics {
        self.tap = Some(publisher);
        self
    }

    /// The handle for one HTTP label set; keep it while the labels stay the same.
    pub fn http(&self, labels: &HttpLabels) -> Arc<HttpSeries> {
        self.http.get(labels)
    }

    /// The handle for one connection's label set; keep it for the connection's lifetime.
    pub fn tcp(&self, labels: &TcpLabels) -> Arc<TcpSeries> {
        self.tcp.get(labels)
    }

    pub fn avro(&self, labels: &AvroLabels) -> Arc<AvroSeries> {
        self.avro.get(labels)
    }

    /// An inbound HTTP request matched `route` but no authorization allowed it.
    pub fn http_authz_deny(&self, server: &InboundServer, route: &Route) {
        self.http_deny.get(&(server.clone(), route.clone())).incr();
    }

    /// An inbound HTTP request matched no route of its Server.
    pub fn http_route_not_found(&self, server: &InboundServer) {
        self.http_no_route.get(server).incr();
    }

    /// An inbound opaque/TCP connection was allowed by `authz`.
    pub fn tcp_authz_allow(&self, server: &InboundServer, authz: &Authz) {
        self.tcp_allow.get(&(server.clone(), authz.clone())).incr();
    }

    /// An inbound opaque/TCP connection was refused.
    pub fn tcp_authz_deny(&self, server: &InboundServer) {
        self.tcp_deny.get(server).incr();
    }

    /// An established inbound connection was closed because a policy update no longer
    /// allows it.
    pub fn tcp_authz_terminate(&self, server: &InboundServer) {
        self.tcp_terminate.get(server).incr();
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        self.render_at(Instant::now())
    }

    fn render_at(&self, now: Instant) -> String {
        let now_ms = millis_at(now);
        let mut out = Text::default();

        let http_live = self.http.live(now_ms);
        let allowed = sorted(
            http_live
                .iter()
                .filter(|(k, _)| matches!(k, HttpLabels::Inbound { .. }))
                .cloned()
                .collect(),
            allow_labels,
        );
        let http = sorted(http_live, http_labels);
        if !http.is_empty() {
            out.family("request_total", "Total count of HTTP requests.", "counter");
            for (labels, s) in &http {
                out.sample("request_total", labels, "", s.requests.load(Relaxed));
            }
            let responses: Vec<_> = http
                .iter()
                .map(|(labels, s)| (labels, response_snapshot(s)))
                .collect();
            if responses.iter().any(|(_, (totals, _))| !totals.is_empty()) {
                out.family(
                    "response_latency_ms",
                    "Elapsed times between a request's headers being received and its response \
                     stream completing",
                    "histogram",
                );
                for (labels, (_, latencies)) in &responses {
                    for (status, (buckets, sum)) in latencies {
                        out.histogram(labels, *status, buckets, *sum);
                    }
                }
                out.family(
                    "response_total",
                    "Total count of HTTP responses.",
                    "counter",
                );
                for (labels, (totals, _)) in &responses {
                    for (response, count) in totals {
                        let mut extra = Labels::default();
                        extra.display("status_code", response.status);
                        extra.str(
                            "classification",
                            if response.is_failure() {
                                "failure"
                            } else {
                                "success"
                            },
                        );
                        match response.grpc_status {
                            Some(code) => extra.display("grpc_status", code),
                            None => extra.str("grpc_status", ""),
                        };
                        extra.str("error", response.error.unwrap_or(""));
                        out.sample("response_total", labels, &extra.0, *count);
                    }
                }
            }
        }

        let tcp = sorted(self.tcp.live(now_ms), tcp_labels);
        if !tcp.is_empty() {
            type Reading = fn(&TcpSeries) -> i64;
            let families: [(&str, &str, &str, Reading); 4] = [
                (
                    "tcp_open_total",
                    "Total count of opened connections",
                    "counter",
                    |s| s.opened.load(Relaxed) as i64,
                ),
                (
                    "tcp_open_connections",
                    "Number of currently-open connections",
                    "gauge",
                    |s| s.open.load(Relaxed),
                ),
                (
                    "tcp_read_bytes_total",
                    "Total count of bytes read from peers",
                    "counter",
                    |s| s.read_bytes.load(Relaxed) as i64,
                ),
                (
                    "tcp_write_bytes_total",
                    "Total count of bytes written to peers",
                    "counter",
                    |s| s.write_bytes.load(Relaxed) as i64,
                ),
            ];
            for (name, help, kind, value) in families {
                out.family(name, help, kind);
                for (labels, s) in &tcp {
                    out.sample(name, labels, "", value(s));
                }
            }
            out.family(
                "tcp_close_total",
                "Total count of closed connections",
                "counter",
            );
            for (labels, s) in &tcp {
                let mut closes: Vec<_> = read(&s.closes)
                    .iter()
                    .map(|(errno, n)| (errno.unwrap_or(""), n.load(Relaxed)))
                    .collect();
                closes.sort_unstable();
                for (errno, n) in closes {
                    let mut extra = Labels::default();
                    extra.str("errno", errno);
                    out.sample("tcp_close_total", labels, &extra.0, n);
                }
            }
        }

        out.counters(
            "inbound_http_authz_allow_total",
            "The total number of inbound HTTP requests that were authorized",
            allowed
                .iter()
                .map(|(l, s)| (l.as_str(), s.requests.load(Relaxed))),
        );
        let deny = sorted(self.http_deny.live(now_ms), |(server, route), l| {
            server.target.write(l);
            server.srv.write(l);
            route.write(l);
            server.tls.write(l);
        });
        out.counters(
            "inbound_http_authz_deny_total",
            "The total number of inbound HTTP requests that could not be processed due to a \
             proxy error.",
            counts(&deny),
        );
        let no_route = sorted(self.http_no_route.live(now_ms), server_labels);
        out.counters(
            "inbound_http_route_not_found_total",
            "The total number of inbound HTTP requests that could not be associated with a route",
            counts(&no_route),
        );
        let tcp_allow = sorted(self.tcp_allow.live(now_ms), |(server, authz), l| {
            server.target.write(l);
            server.srv.write(l);
            authz.write(l);
            server.tls.write(l);
        });
        out.counters(
            "inbound_tcp_authz_allow_total",
            "The total number of inbound TCP connections that were authorized",
            counts(&tcp_allow),
        );
        let tcp_deny = sorted(self.tcp_deny.live(now_ms), server_labels);
        out.counters(
            "inbound_tcp_authz_deny_total",
            "The total number of inbound TCP connections that were denied",
            counts(&tcp_deny),
        );
        let terminate = sorted(self.tcp_terminate.live(now_ms), server_labels);
        out.counters(
            "inbound_tcp_authz_terminate_total",
            "The total number of inbound TCP connections that were terminated due to an \
             authorization change",
            counts(&terminate),
        );

        if let Some(expiry) = self.identity.as_deref().and_then(leaf_not_after) {
            let name = "control_identity_cert_expiration_timestamp_seconds";
            out.family(
                name,
                "Time when this proxy's current mTLS identity certificate will expire (in \
                 seconds since the UNIX epoch).",
                "gauge",
            );
            out.sample(name, "", "", expiry);
        }

        let avro = sorted(self.avro.live(now_ms), |k, l| {
            l.str("direction", direction(k.direction));
            l.str("subject", &k.subject);
        });
        out.counters(
            "meshlens_avro_decoded_total",
            "Avro messages decoded and conforming to their contract",
            avro.iter()
                .map(|(l, s)| (l.as_str(), s.decoded.load(Relaxed))),
        );
        out.counters(
            "meshlens_avro_invalid_total",
            "Avro messages that did not decode or broke their contract",
            avro.iter()
                .map(|(l, s)| (l.as_str(), s.invalid.load(Relaxed))),
        );
        let mut drift = Vec::new();
        for (labels, s) in &avro {
            let mut kinds: Vec<_> = read(&s.drift)
                .iter()
                .map(|(k, n)| (*k, n.load(Relaxed)))
                .collect();
            kinds.sort_unstable();
            for ((kind, version), n) in kinds {
                let mut l = Labels(labels.clone());
                l.str("drift", kind.as_str());
                match version {
                    Some(v) => l.display("schema_version", v),
                    None => l.str("schema_version", ""),
                };
                drift.push((l.0, n));
            }
        }
        out.counters(
            "meshlens_avro_drift_total",
            "Avro messages written with a schema other than the consumer's, by kind of drift",
            drift.iter().map(|(l, n)| (l.as_str(), *n)),
        );

        if let Some(tap) = &self.tap {
            out.counters(
                "meshlens_tap_events_published_total",
                "Tap events handed to at least one subscriber",
                [("", tap.published())],
            );
            out.counters(
                "meshlens_tap_events_lost_total",
                "Tap events dropped because a subscriber fell behind",
                [("", tap.lost())],
            );
        }
        out.0
    }
}

type LatencySnapshot = Vec<(u16, ([u64; LATENCY_BUCKETS_MS.len() + 1], u64))>;

/// Copies a series' responses out from under its lock, sorted.
fn response_snapshot(s: &HttpSeries) -> (Vec<(Response, u64)>, LatencySnapshot) {
    let r = read(&s.responses);
    let mut totals: Vec<_> = r
        .totals
        .iter()
        .map(|(k, n)| (*k, n.load(Relaxed)))
        .collect();
    let mut latencies: Vec<_> = r
        .latencies
        .iter()
        .map(|(status, h)| (*status, h.snapshot()))
        .collect();
    drop(r);
    totals.sort_unstable_by_key(|(k, _)| k.sort_key());
    latencies.sort_unstable_by_key(|(status, _)| *status);
    (totals, latencies)
}

fn leaf_not_after(cert: &CurrentCert) -> Option<i64> {
    let key = cert.get();
    let info = CertInfo::parse(key.cert.first()?, 0).ok()?;
    Some(match info.not_after.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    })
}

/// Renders each series' labels with `labels` and sorts by them, which is the stable order
/// the scrape promises.
fn sorted<K, V>(
    series: Vec<(K, Arc<V>)>,
    labels: impl Fn(&K, &mut Labels),
) -> Vec<(String, Arc<V>)> {
    let mut out: Vec<_> = series
        .into_iter()
        .map(|(k, v)| {
            let mut l = Labels::default();
            labels(&k, &mut l);
            (l.0, v)
        })
        .collect();
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

fn counts(series: &[(String, Arc<Counter>)]) -> impl Iterator<Item = (&str, u64)> {
    series
        .iter()
        .map(|(l, c)| (l.as_str(), c.value.load(Relaxed)))
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

fn http_labels(k: &HttpLabels, l: &mut Labels) {
    match k {
        HttpLabels::Inbound {
            server,
            route,
            authz,
        } => {
            l.str("direction", "inbound");
            server.target.write(l);
            server.tls.write(l);
            server.srv.write(l);
            route.write(l);
            authz.write(l);
        }
        HttpLabels::Outbound(endpoint) => {
            l.str("direction", "outbound");
            l.str("authority", endpoint.authority.as_deref().unwrap_or(""));
            endpoint.target.write(l);
            endpoint.tls.write(l);
            endpoint.dst.write(l);
        }
    }
}

fn tcp_labels(k: &TcpLabels, l: &mut Labels) {
    match k {
        TcpLabels::Inbound(server) => {
            l.str("direction", "inbound");
            l.str("peer", "src");
            server.target.write(l);
            server.tls.write(l);
            server.srv.write(l);
        }
        TcpLabels::Outbound(endpoint) => {
            l.str("direction", "outbound");
            l.str("peer", "dst");
            if let Some(authority) = &endpoint.authority {
                l.str("authority", authority);
            }
            endpoint.target.write(l);
            endpoint.tls.write(l);
            endpoint.dst.write(l);
        }
    }
}

/// `inbound_http_authz_allow_total` orders the same labels differently and has no
/// `direction`.
fn allow_labels(k: &HttpLabels, l: &mut Labels) {
    if let HttpLabels::Inbound {
        server,
        route,
        authz,
    } = k
    {
        server.target.write(l);
        server.srv.write(l);
        route.write(l);
        authz.write(l);
        server.tls.write(l);
    }
}

/// The label order of the `inbound_*` families that carry no route or authorization.
fn server_labels(server: &InboundServer, l: &mut Labels) {
    server.target.write(l);
    server.srv.write(l);
    server.tls.write(l);
}

impl Target {
    fn write(&self, l: &mut Labels) {
        l.display("target_addr", self.0);
        l.display("target_ip", self.0.ip());
        l.display("target_port", self.0.port());
    }
}

impl TlsAccept {
    fn write(&self, l: &mut Labels) {
        match self {
            TlsAccept::Established { client_id } => {
                l.str("tls", "true");
                l.str("client_id", client_id);
            }
            TlsAccept::NoIdentity(reason) => {
                l.str("tls", "no_identity");
                l.str("no_tls_reason", reason.as_str());
            }
            TlsAccept::Disabled => l.str("tls", "disabled"),
        }
    }
}

impl TlsConnect {
    fn write(&self, l: &mut Labels) {
        match self {
            TlsConnect::Established { server_id } => {
                l.str("tls", "true");
                l.str("server_id", server_id);
            }
            TlsConnect::NoIdentity(reason) => {
                l.str("tls", "no_identity");
                l.str("no_tls_reason", reason.as_str());
            }
            TlsConnect::Disabled => l.str("tls", "disabled"),
        }
    }
}

impl Srv {
    fn write(&self, l: &mut Labels) {
        l.str("srv_group", self.group());
        l.str("srv_kind", &self.kind);
        l.str("srv_name", &self.name);
        l.display("srv_port", self.port);
    }
}

impl Route {
    fn write(&self, l: &mut Labels) {
        l.str("route_group", &self.group);
        l.str("route_kind", &self.kind);
        l.str("route_name", &self.name);
    }
}

impl Authz {
    fn write(&self, l: &mut Labels) {
        l.str("authz_group", self.group());
        l.str("authz_kind", &self.kind);
        l.str("authz_name", &self.name);
    }
}

impl Dst {
    fn write(&self, l: &mut Labels) {
        for (key, value) in &self.0 {
            l.sep();
            l.0.push_str("dst_");
            l.0.push_str(key);
            l.0.push_str("=\"");
            escape_into(&mut l.0, value);
            l.0.push('"');
        }
    }
}

/// A comma-separated `key="value"` list being built.
#[derive(Default)]
struct Labels(String);

impl Labels {
    fn sep(&mut self) {
        if !self.0.is_empty() {
            self.0.push(',');
        }
    }

    fn str(&mut self, key: &str, value: &str) {
        self.sep();
        self.0.push_str(key);
        self.0.push_str("=\"");
        escape_into(&mut self.0, value);
        self.0.push('"');
    }

    /// For values whose `Display` cannot contain a quote, backslash or newline (numbers,
    /// addresses), written without escaping.
    fn display(&mut self, key: &str, value: impl Display) {
        self.sep();
        let _ = write!(self.0, "{key}=\"{value}\"");
    }
}

/// The text format's label-value escapes: backslash, double quote, newline.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The exposition text being written.
#[derive(Default)]
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    /// `name{labels,extra} value`. Values are integers, which Rust prints as Linkerd's f64
    /// `Display` prints whole numbers: no decimal point.
    fn sample(&mut self, name: &str, labels: &str, extra: &str, value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() || !extra.is_empty() {
            self.0.push('{');
            self.0.push_str(labels);
            if !labels.is_empty() && !extra.is_empty() {
                self.0.push(',');
            }
            self.0.push_str(extra);
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A counter family, left out entirely when it has no series (as Linkerd does).
    fn counters<'a>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        let mut series = series.into_iter().peekable();
        if series.peek().is_none() {
            return;
        }
        self.family(name, help, "counter");
        for (labels, value) in series {
            self.sample(name, labels, "", value);
        }
    }

    fn histogram(
        &mut self,
        labels: &str,
        status: u16,
        buckets: &[u64; LATENCY_BUCKETS_MS.len() + 1],
        sum: u64,
    ) {
        let mut status_label = Labels::default();
        status_label.display("status_code", status);
        let base = if labels.is_empty() {
            status_label.0
        } else {
            format!("{labels},{}", status_label.0)
        };
        let mut cumulative = 0;
        for (i, n) in buckets.iter().enumerate() {
            cumulative += n;
            let mut le = Labels::default();
            match LATENCY_BUCKETS_MS.get(i) {
                Some(bound) => le.display("le", bound),
                None => le.str("le", "+Inf"),
            }
            self.sample("response_latency_ms_bucket", &base, &le.0, cumulative);
        }
        self.sample("response_latency_ms_count", &base, "", cumulative);
        self.sample("response_latency_ms_sum", &base, "", sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    use crate::identity::{Ca, ControlPlane, LeafPolicy};

    /// Linkerd's exposition of one `orders` pod, hand-written after linkerd2-proxy's source.
    const LINKERD_SAMPLE: &str = include_str!("../../tests/data/linkerd/proxy-metrics.txt");

    fn target(addr: &str) -> Target {
        Target(addr.parse().unwrap())
    }

    fn mtls(id: &str) -> TlsAccept {
        TlsAccept::Established {
            client_id: id.into(),
        }
    }

    fn api_server(tls: TlsAccept) -> InboundServer {
        InboundServer {
            target: target("10.0.0.1:8080"),
            tls,
            srv: Srv::new("server", "api", 8080),
        }
    }

    fn inbound_read(tls: TlsAccept) -> HttpLabels {
        HttpLabels::Inbound {
            server: api_server(tls),
            route: Route::new("gateway.networking.k8s.io", "HTTPRoute", "read"),
            authz: Authz::new("authorizationpolicy", "read-authz"),
        }
    }

    const MS: Duration = Duration::from_millis(1);

    /// Expands `{T}`, `{TLS}`, ... so expected lines stay readable.
    fn expand(text: &str) -> String {
        text.replace(
            "{T}",
            r#"target_addr="10.0.0.1:8080",target_ip="10.0.0.1",target_port="8080""#,
        )
        .replace("{TLS}", r#"tls="true",client_id="web.shop""#)
        .replace(
            "{NOTLS}",
            r#"tls="no_identity",no_tls_reason="no_tls_from_remote""#,
        )
        .replace(
            "{SRV}",
            r#"srv_group="policy.linkerd.io",srv_kind="server",srv_name="api",srv_port="8080""#,
        )
        .replace(
            "{ROUTE}",
            r#"route_group="gateway.networking.k8s.io",route_kind="HTTPRoute",route_name="read""#,
        )
        .replace(
            "{AUTHZ}",
            r#"authz_group="policy.linkerd.io",authz_kind="authorizationpolicy",authz_name="read-authz""#,
        )
    }

    fn assert_lines(actual: &str, expected: &str) {
        let (a, e): (Vec<_>, Vec<_>) = (actual.lines().collect(), expected.lines().collect());
        for (i, (a, e)) in a.iter().zip(&e).enumerate() {
            assert_eq!(a, e, "line {}", i + 1);
        }
        assert_eq!(a.len(), e.len(), "line count; got:\n{actual}");
    }

    #[test]
    fn renders_every_family_line_by_line() {
        let publisher = Publisher::new(4);
        let _subscriber = publisher.subscribe();
        let m = Metrics::new().with_tap(publisher.clone());

        let http = m.http(&inbound_read(mtls("web.shop")));
        http.request();
        http.request();
        let ok = Response {
            status: 200,
            grpc_status: None,
            error: None,
        };
        http.response(ok, 3 * MS);
        http.response(ok, Duration::from_micros(7_500));

        // Inserted out of order: the output is sorted by labels.
        let secure = m.tcp(&TcpLabels::Inbound(api_server(mtls("web.shop"))));
        let plain = m.tcp(&TcpLabels::Inbound(api_server(TlsAccept::NoIdentity(
            NoTlsReason::NoTlsFromRemote,
        ))));
        secure.open();
        secure.open();
        secure.read(100);
        secure.write(2048);
        secure.close(Some("ECONNRESET"));
        plain.open();
        plain.close(None);

        let denied = api_server(TlsAccept::NoIdentity(NoTlsReason::NoTlsFromRemote));
        let read_route = Route::new("gateway.networking.k8s.io", "HTTPRoute", "read");
        m.http_authz_deny(&denied, &read_route);
        m.http_authz_deny(&denied, &read_route);
        m.http_route_not_found(&api_server(mtls("web.shop")));
        m.tcp_authz_allow(
            &api_server(mtls("web.shop")),
            &Authz::new("default", "audit"),
        );
        m.tcp_authz_deny(&denied);
        m.tcp_authz_terminate(&api_server(mtls("web.shop")));

        let avro = m.avro(&AvroLabels {
            direction: Direction::Inbound,
            subject: "orders-value".into(),
        });
        avro.decoded();
        avro.decoded();
        avro.invalid();
        avro.drift(Drift::Unregistered, None);
        avro.drift(Drift::Incompatible, Some(3));
        avro.drift(Drift::Incompatible, Some(3));
        for _ in 0..3 {
            publisher.publish(crate::tap::Event::lost(0, 0));
        }

        let expected = expand(
            r#"# HELP request_total Total count of HTTP requests.
# TYPE request_total counter
request_total{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ}} 2
# HELP response_latency_ms Elapsed times between a request's headers being received and its response stream completing
# TYPE response_latency_ms histogram
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="1"} 0
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="2"} 0
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="3"} 1
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="4"} 1
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="5"} 1
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="10"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="20"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="30"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="40"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="50"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="100"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="200"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="300"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="400"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="500"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="1000"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="2000"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="3000"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="4000"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="5000"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="10000"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="20000"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="30000"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="40000"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="50000"} 2
response_latency_ms_bucket{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",le="+Inf"} 2
response_latency_ms_count{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200"} 2
response_latency_ms_sum{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200"} 10
# HELP response_total Total count of HTTP responses.
# TYPE response_total counter
response_total{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ},status_code="200",classification="success",grpc_status="",error=""} 2
# HELP tcp_open_total Total count of opened connections
# TYPE tcp_open_total counter
tcp_open_total{direction="inbound",peer="src",{T},{NOTLS},{SRV}} 1
tcp_open_total{direction="inbound",peer="src",{T},{TLS},{SRV}} 2
# HELP tcp_open_connections Number of currently-open connections
# TYPE tcp_open_connections gauge
tcp_open_connections{direction="inbound",peer="src",{T},{NOTLS},{SRV}} 0
tcp_open_connections{direction="inbound",peer="src",{T},{TLS},{SRV}} 1
# HELP tcp_read_bytes_total Total count of bytes read from peers
# TYPE tcp_read_bytes_total counter
tcp_read_bytes_total{direction="inbound",peer="src",{T},{NOTLS},{SRV}} 0
tcp_read_bytes_total{direction="inbound",peer="src",{T},{TLS},{SRV}} 100
# HELP tcp_write_bytes_total Total count of bytes written to peers
# TYPE tcp_write_bytes_total counter
tcp_write_bytes_total{direction="inbound",peer="src",{T},{NOTLS},{SRV}} 0
tcp_write_bytes_total{direction="inbound",peer="src",{T},{TLS},{SRV}} 2048
# HELP tcp_close_total Total count of closed connections
# TYPE tcp_close_total counter
tcp_close_total{direction="inbound",peer="src",{T},{NOTLS},{SRV},errno=""} 1
tcp_close_total{direction="inbound",peer="src",{T},{TLS},{SRV},errno="ECONNRESET"} 1
# HELP inbound_http_authz_allow_total The total number of inbound HTTP requests that were authorized
# TYPE inbound_http_authz_allow_total counter
inbound_http_authz_allow_total{{T},{SRV},{ROUTE},{AUTHZ},{TLS}} 2
# HELP inbound_http_authz_deny_total The total number of inbound HTTP requests that could not be processed due to a proxy error.
# TYPE inbound_http_authz_deny_total counter
inbound_http_authz_deny_total{{T},{SRV},{ROUTE},{NOTLS}} 2
# HELP inbound_http_route_not_found_total The total number of inbound HTTP requests that could not be associated with a route
# TYPE inbound_http_route_not_found_total counter
inbound_http_route_not_found_total{{T},{SRV},{TLS}} 1
# HELP inbound_tcp_authz_allow_total The total number of inbound TCP connections that were authorized
# TYPE inbound_tcp_authz_allow_total counter
inbound_tcp_authz_allow_total{{T},{SRV},authz_group="",authz_kind="default",authz_name="audit",{TLS}} 1
# HELP inbound_tcp_authz_deny_total The total number of inbound TCP connections that were denied
# TYPE inbound_tcp_authz_deny_total counter
inbound_tcp_authz_deny_total{{T},{SRV},{NOTLS}} 1
# HELP inbound_tcp_authz_terminate_total The total number of inbound TCP connections that were terminated due to an authorization change
# TYPE inbound_tcp_authz_terminate_total counter
inbound_tcp_authz_terminate_total{{T},{SRV},{TLS}} 1
# HELP meshlens_avro_decoded_total Avro messages decoded and conforming to their contract
# TYPE meshlens_avro_decoded_total counter
meshlens_avro_decoded_total{direction="inbound",subject="orders-value"} 2
# HELP meshlens_avro_invalid_total Avro messages that did not decode or broke their contract
# TYPE meshlens_avro_invalid_total counter
meshlens_avro_invalid_total{direction="inbound",subject="orders-value"} 1
# HELP meshlens_avro_drift_total Avro messages written with a schema other than the consumer's, by kind of drift
# TYPE meshlens_avro_drift_total counter
meshlens_avro_drift_total{direction="inbound",subject="orders-value",drift="incompatible",schema_version="3"} 2
meshlens_avro_drift_total{direction="inbound",subject="orders-value",drift="unregistered",schema_version=""} 1
# HELP meshlens_tap_events_published_total Tap events handed to at least one subscriber
# TYPE meshlens_tap_events_published_total counter
meshlens_tap_events_published_total 3
# HELP meshlens_tap_events_lost_total Tap events dropped because a subscriber fell behind
# TYPE meshlens_tap_events_lost_total counter
meshlens_tap_events_lost_total 0
"#,
        );
        assert_lines(&m.render(), &expected);
    }

    #[test]
    fn an_empty_registry_renders_nothing() {
        assert_eq!(Metrics::new().render(), "");
    }

    #[test]
    fn families_without_samples_are_left_out() {
        let m = Metrics::new();
        m.http(&inbound_read(mtls("web.shop"))).request();
        let text = m.render();
        let types: Vec<_> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        assert_eq!(
            types,
            [
                "# TYPE request_total counter",
                "# TYPE inbound_http_authz_allow_total counter"
            ]
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.avro(&AvroLabels {
            direction: Direction::Outbound,
            subject: "a\"b\\c\nd".into(),
        })
        .decoded();
        let dst = Dst::new([("dst_namespace", "x\"y"), ("pod-template-hash", "h")]);
        m.tcp(&TcpLabels::Outbound(OutboundEndpoint {
            authority: None,
            target: target("[::1]:80"),
            tls: TlsConnect::NoIdentity(NoTlsReason::Loopback),
            dst,
        }))
        .open();
        let text = m.render();
        assert!(
            text.contains(
                r#"meshlens_avro_decoded_total{direction="outbound",subject="a\"b\\c\nd"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"tcp_open_total{direction="outbound",peer="dst",target_addr="[::1]:80",target_ip="::1",target_port="80",tls="no_identity",no_tls_reason="loopback",dst_namespace="x\"y",dst_pod_template_hash="h"} 1"#
            ),
            "{text}"
        );
        parse_exposition(&text).unwrap();
    }

    #[test]
    fn latency_buckets_are_inclusive_upper_bounds_in_whole_milliseconds() {
        let bucket_of = |latency: Duration| {
            let h = Histogram::new();
            h.observe(latency);
            let (buckets, sum) = h.snapshot();
            let slot = buckets.iter().position(|&n| n == 1).unwrap();
            (LATENCY_BUCKETS_MS.get(slot).copied(), sum)
        };
        assert_eq!(bucket_of(Duration::ZERO), (Some(1), 0));
        assert_eq!(bucket_of(Duration::from_micros(999)), (Some(1), 0));
        assert_eq!(bucket_of(MS), (Some(1), 1));
        assert_eq!(bucket_of(Duration::from_micros(1_001)), (Some(1), 1));
        assert_eq!(bucket_of(2 * MS), (Some(2), 2));
        assert_eq!(bucket_of(5 * MS), (Some(5), 5));
        assert_eq!(bucket_of(Duration::from_micros(5_999)), (Some(5), 5));
        assert_eq!(bucket_of(6 * MS), (Some(10), 6));
        assert_eq!(bucket_of(50_000 * MS), (Some(50_000), 50_000));
        assert_eq!(bucket_of(50_001 * MS), (None, 50_001));
        assert_eq!(bucket_of(Duration::MAX).0, None);

        let m = Metrics::new();
        m.http(&inbound_read(mtls("web.shop"))).response(
            Response {
                status: 204,
                grpc_status: None,
                error: None,
            },
            5 * MS,
        );
        let text = m.render();
        let le = |bound: &str| {
            let needle = format!(r#",status_code="204",le="{bound}"}} "#);
            let line = text.lines().find(|l| l.contains(&needle)).unwrap();
            line.rsplit(' ').next().unwrap().to_string()
        };
        assert_eq!(
            (le("4"), le("5"), le("+Inf")),
            ("0".into(), "1".into(), "1".into())
        );
    }

    #[test]
    fn responses_are_classified_as_linkerd_does() {
        let r = |status, grpc_status, error| Response {
            status,
            grpc_status,
            error,
        };
        assert!(!r(200, None, None).is_failure());
        assert!(!r(404, None, None).is_failure());
        assert!(r(503, None, None).is_failure());
        assert!(!r(200, Some(0), None).is_failure());
        assert!(r(200, Some(14), None).is_failure());
        assert!(r(200, None, Some("i/o")).is_failure());
    }

    #[test]
    fn idle_series_are_dropped_but_open_connections_and_held_handles_survive() {
        let m = Metrics::new();
        let held = m.http(&inbound_read(mtls("web.shop")));
        held.request();
        m.http(&inbound_read(mtls("other"))).request();
        let conn = m.tcp(&TcpLabels::Inbound(api_server(mtls("web.shop"))));
        conn.open();
        drop(conn);
        m.tcp_authz_deny(&api_server(mtls("web.shop")));

        let later = Instant::now() + RETAIN_IDLE + Duration::from_secs(1);
        let text = m.render_at(later);
        assert!(!text.contains("request_total"), "{text}");
        assert!(!text.contains("inbound_tcp_authz_deny_total"), "{text}");
        assert!(
            text.contains(r#"tcp_open_connections{direction="inbound""#),
            "{text}"
        );
        // The unheld idle series is forgotten; the held one is kept and counts on.
        assert_eq!(read(&m.http.map).len(), 1);
        assert_eq!(read(&m.tcp_deny.map).len(), 0);
        held.request();
        assert!(m.render().contains(r#"client_id="web.shop""#));
        assert!(m.render().contains(&expand(
            r#"request_total{direction="inbound",{T},{TLS},{SRV},{ROUTE},{AUTHZ}} 2"#
        )));
    }

    #[test]
    fn reports_the_current_leafs_expiry() {
        let now = std::time::SystemTime::now();
        let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
        let name = ControlPlane::default().identity("web", "shop").unwrap();
        let leaf = ca.issue(&name, &LeafPolicy::default(), now).unwrap();
        let cert = CurrentCert::new(&leaf).unwrap();
        let m = Metrics::new().with_identity(cert.clone());
        let expiry = |leaf: &crate::identity::Leaf| {
            let secs = leaf
                .not_after()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            format!("control_identity_cert_expiration_timestamp_seconds {secs}\n")
        };
        assert!(m.render().ends_with(&expiry(&leaf)), "{}", m.render());

        let policy = LeafPolicy {
            lifetime: Duration::from_secs(3600),
            ..LeafPolicy::default()
        };
        let renewed = ca.issue(&name, &policy, now).unwrap();
        assert_ne!(renewed.not_after(), leaf.not_after());
        cert.swap(&renewed).unwrap();
        assert!(m.render().ends_with(&expiry(&renewed)));
    }

    /// The series of the Linkerd sample, recorded through our API.
    fn linkerd_sample_fixture() -> Metrics {
        let m = Metrics::new();
        let frontend = "frontend.shop.serviceaccount.identity.linkerd.cluster.local";
        let orders = |tls| InboundServer {
            target: target("10.42.0.17:8080"),
            tls,
            srv: Srv::new("server", "orders-http", 8080),
        };
        let ok = Response {
            status: 200,
            grpc_status: None,
            error: None,
        };
        let read = m.http(&HttpLabels::Inbound {
            server: orders(mtls(frontend)),
            route: Route::new("gateway.networking.k8s.io", "HTTPRoute", "orders-read"),
            authz: Authz::new("authorizationpolicy", "orders-read-authz"),
        });
        read.request();
        read.response(ok, 3 * MS);
        let probes = m.http(&HttpLabels::Inbound {
            server: orders(TlsAccept::NoIdentity(NoTlsReason::NoTlsFromRemote)),
            route: Route::new("policy.linkerd.io", "HTTPRoute", "orders-probes"),
            authz: Authz::new("authorizationpolicy", "orders-probes-authz"),
        });
        probes.request();
        probes.response(ok, MS);
        let payments = OutboundEndpoint {
            authority: Some("payments.shop.svc.cluster.local:9090".into()),
            target: target("10.42.1.9:9090"),
            tls: TlsConnect::Established {
                server_id: "payments.shop.serviceaccount.identity.linkerd.cluster.local".into(),
            },
            dst: Dst::new([
                ("namespace", "shop"),
                ("service", "payments"),
                ("pod", "payments-5f6b7d8c9-q4zr2"),
                ("deployment", "payments"),
                ("serviceaccount", "payments"),
                ("pod_template_hash", "5f6b7d8c9"),
                ("control_plane_ns", "linkerd"),
                ("zone_locality", "unknown"),
            ]),
        };
        let out = m.http(&HttpLabels::Outbound(payments.clone()));
        out.request();
        for grpc in [0, 14] {
            let r = Response {
                status: 200,
                grpc_status: Some(grpc),
                error: None,
            };
            out.response(r, 20 * MS);
        }
        for labels in [
            TcpLabels::Inbound(orders(mtls(frontend))),
            TcpLabels::Inbound(orders(TlsAccept::NoIdentity(NoTlsReason::NoTlsFromRemote))),
            TcpLabels::Outbound(payments),
        ] {
            let conn = m.tcp(&labels);
            conn.open();
            conn.open();
            conn.close(None);
        }
        let billing = "billing.shop.serviceaccount.identity.linkerd.cluster.local";
        let read_route = Route::new("gateway.networking.k8s.io", "HTTPRoute", "orders-read");
        m.http_authz_deny(&orders(mtls(billing)), &read_route);
        m.http_route_not_found(&orders(mtls(frontend)));
        let pg = InboundServer {
            target: target("10.42.0.21:5432"),
            tls: mtls("reports.analytics.serviceaccount.identity.linkerd.cluster.local"),
            srv: Srv::new("server", "pg", 5432),
        };
        m.tcp_authz_allow(&pg, &Authz::new("default", "audit"));
        m.tcp_authz_deny(&InboundServer {
            target: target("10.42.0.17:9091"),
            tls: TlsAccept::NoIdentity(NoTlsReason::NoTlsFromRemote),
            srv: Srv::new("default", "deny", 9091),
        });
        m
    }

    /// `name{labels}` of every sample line.
    fn series_ids(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').map(|(id, _)| id))
            .collect()
    }

    /// What a series is compared to Linkerd's by: its name, `direction` and `tls` values,
    /// and the label keys in order.
    type Shape = ((String, String, String), Vec<String>);

    fn shape(id: &str) -> Shape {
        let (name, labels) = id.split_once('{').unwrap_or((id, ""));
        let labels = parse_labels(labels.strip_suffix('}').unwrap_or(labels)).unwrap();
        let value = |key: &str| {
            labels
                .iter()
                .find(|(k, _)| k == key)
                .map_or(String::new(), |(_, v)| v.clone())
        };
        let kind = (name.to_string(), value("direction"), value("tls"));
        (kind, labels.into_iter().map(|(k, _)| k).collect())
    }

    #[test]
    fn names_labels_and_label_order_match_a_linkerd_proxy() {
        let ours = linkerd_sample_fixture().render();
        let theirs: HashSet<&str> = series_ids(LINKERD_SAMPLE).into_iter().collect();
        // Series that exist in both expositions are identical up to their values.
        let identical = [
            r#"request_total{direction="inbound",target_addr="10.42.0.17:8080",target_ip="10.42.0.17",target_port="8080",tls="true",client_id="frontend.shop.serviceaccount.identity.linkerd.cluster.local",srv_group="policy.linkerd.io",srv_kind="server",srv_name="orders-http",srv_port="8080",route_group="gateway.networking.k8s.io",route_kind="HTTPRoute",route_name="orders-read",authz_group="policy.linkerd.io",authz_kind="authorizationpolicy",authz_name="orders-read-authz"}"#,
            r#"response_latency_ms_bucket{direction="inbound",target_addr="10.42.0.17:8080",target_ip="10.42.0.17",target_port="8080",tls="true",client_id="frontend.shop.serviceaccount.identity.linkerd.cluster.local",srv_group="policy.linkerd.io",srv_kind="server",srv_name="orders-http",srv_port="8080",route_group="gateway.networking.k8s.io",route_kind="HTTPRoute",route_name="orders-read",authz_group="policy.linkerd.io",authz_kind="authorizationpolicy",authz_name="orders-read-authz",status_code="200",le="+Inf"}"#,
            r#"response_total{direction="outbound",authority="payments.shop.svc.cluster.local:9090",target_addr="10.42.1.9:9090",target_ip="10.42.1.9",target_port="9090",tls="true",server_id="payments.shop.serviceaccount.identity.linkerd.cluster.local",dst_control_plane_ns="linkerd",dst_deployment="payments",dst_namespace="shop",dst_pod="payments-5f6b7d8c9-q4zr2",dst_pod_template_hash="5f6b7d8c9",dst_service="payments",dst_serviceaccount="payments",dst_zone_locality="unknown",status_code="200",classification="failure",grpc_status="14",error=""}"#,
            r#"tcp_close_total{direction="inbound",peer="src",target_addr="10.42.0.17:8080",target_ip="10.42.0.17",target_port="8080",tls="no_identity",no_tls_reason="no_tls_from_remote",srv_group="policy.linkerd.io",srv_kind="server",srv_name="orders-http",srv_port="8080",errno=""}"#,
            r#"inbound_tcp_authz_deny_total{target_addr="10.42.0.17:9091",target_ip="10.42.0.17",target_port="9091",srv_group="",srv_kind="default",srv_name="deny",srv_port="9091",tls="no_identity",no_tls_reason="no_tls_from_remote"}"#,
        ];
        let our_ids: HashSet<&str> = series_ids(&ours).into_iter().collect();
        for id in identical {
            assert!(theirs.contains(id), "not in the Linkerd sample: {id}");
            assert!(our_ids.contains(id), "not in ours: {id}\n{ours}");
        }
        // Every series we render that has a counterpart in the sample (same name, direction
        // and TLS state) has the same label keys in the same order.
        let their_shapes: HashSet<Shape> = theirs.iter().map(|id| shape(id)).collect();
        let their_kinds: HashSet<_> = their_shapes.iter().map(|(k, _)| k.clone()).collect();
        let mut compared = HashSet::new();
        for id in &our_ids {
            let ours = shape(id);
            if their_kinds.contains(&ours.0) {
                assert!(
                    their_shapes.contains(&ours),
                    "label keys differ from Linkerd's: {id}"
                );
                compared.insert(ours.0.0);
            }
        }
        // ... and that covers every metric both expositions have.
        let shared: HashSet<String> = our_ids
            .iter()
            .map(|id| shape(id).0.0)
            .filter(|name| their_kinds.iter().any(|(n, _, _)| n == name))
            .collect();
        assert_eq!(compared, shared);
        assert!(shared.len() >= 12, "{shared:?}");
        // And the same families appear, in the same order.
        let families = |text: &str| -> Vec<String> {
            text.lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .filter_map(|l| l.split(' ').next())
                .map(str::to_string)
                .collect()
        };
        let ours_families = families(&ours);
        let theirs_families: Vec<_> = families(LINKERD_SAMPLE)
            .into_iter()
            .filter(|f| ours_families.contains(f))
            .collect();
        assert_eq!(
            ours_families
                .iter()
                .filter(|f| theirs_families.contains(f))
                .collect::<Vec<_>>(),
            theirs_families.iter().collect::<Vec<_>>()
        );
        assert!(theirs_families.len() >= 10, "{theirs_families:?}");
    }

    #[test]
    fn output_parses_as_prometheus_text() {
        let m = linkerd_sample_fixture();
        m.avro(&AvroLabels {
            direction: Direction::Outbound,
            subject: "payments-value".into(),
        })
        .drift(Drift::Compatible, Some(2));
        let samples = parse_exposition(&m.render()).unwrap();
        assert!(samples.len() > 100, "{}", samples.len());
    }

    #[test]
    fn the_parser_rejects_what_prometheus_would() {
        for bad in [
            "x 1\n",                                     // no TYPE
            "# TYPE x counter\nx{a=\"b} 1\n",            // unterminated value
            "# TYPE x counter\nx{a=\"\\t\"} 1\n",        // bad escape
            "# TYPE x counter\nx{1a=\"b\"} 1\n",         // bad label name
            "# TYPE x counter\nx 1.2.3\n",               // bad value
            "# TYPE x counter\nx 1\nx 2\n",              // duplicate series
            "# TYPE x counter\n# TYPE x counter\nx 1\n", // TYPE twice
            "# TYPE x counter\ny 1\n",                   // sample outside its family
        ] {
            assert!(parse_exposition(bad).is_err(), "{bad:?}");
        }
    }

    type Sample = (String, Vec<(String, String)>, f64);

    /// Text format 0.0.4, strictly: a `# TYPE` before each family's samples and only once,
    /// samples of a family together, valid names and escapes, no duplicate series, and
    /// cumulative histogram buckets whose `+Inf` equals `_count`.
    fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
        let mut samples: Vec<Sample> = Vec::new();
        let mut typed = HashSet::new();
        let mut family: Option<(String, String)> = None;
        let mut seen = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let err = |what: &str| Err(format!("line {}: {what}: {line}", n + 1));
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let Some((name, kind)) = rest.split_once(' ') else {
                    return err("TYPE without a type");
                };
                if !is_name(name) || !["counter", "gauge", "histogram"].contains(&kind) {
                    return err("bad TYPE");
                }
                if !typed.insert(name.to_string()) {
                    return err("TYPE repeated");
                }
                family = Some((name.to_string(), kind.to_string()));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let Some((id, value)) = line.rsplit_once(' ') else {
                return err("no value");
            };
            let Ok(value) = value.parse::<f64>() else {
                return err("bad value");
            };
            let (name, labels) = match id.split_once('{') {
                Some((name, rest)) => match rest.strip_suffix('}') {
                    Some(labels) => (
                        name,
                        parse_labels(labels).map_err(|e| format!("line {}: {e}: {line}", n + 1))?,
                    ),
                    None => return err("unclosed labels"),
                },
                None => (id, Vec::new()),
            };
            let Some((fam, kind)) = &family else {
                return err("sample before TYPE");
            };
            let allowed = if kind == "histogram" {
                ["_bucket", "_count", "_sum"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(fam))
            } else {
                name == fam
            };
            if !is_name(name) || !allowed {
                return err("sample outside its family");
            }
            if !seen.insert(id.to_string()) {
                return err("duplicate series");
            }
            samples.push((name.to_string(), labels, value));
        }
        check_histograms(&samples)?;
        Ok(samples)
    }

    fn check_histograms(samples: &[Sample]) -> Result<(), String> {
        let mut last: Option<(Vec<(String, String)>, f64)> = None;
        for (name, labels, value) in samples {
            if name.ends_with("_bucket") {
                let base: Vec<_> = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
                if let Some((prev_base, prev)) = &last
                    && *prev_base == base
                    && value < prev
                {
                    return Err(format!("buckets not cumulative: {labels:?}"));
                }
                last = Some((base, *value));
            } else if name.ends_with("_count") {
                match &last {
                    Some((base, inf)) if base == labels && inf == value => {}
                    _ => return Err(format!("_count does not equal le=\"+Inf\": {labels:?}")),
                }
            }
        }
        Ok(())
    }

    fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").ok_or("label without =\"")?;
            if !is_name(key) {
                return Err(format!("bad label name {key:?}"));
            }
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().ok_or("unterminated label value")? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    (_, c) => value.push(c),
                }
            };
            out.push((key.to_string(), value));
            rest = &after[end + 1..];
            rest = match rest.strip_prefix(',') {
                Some(r) if !r.is_empty() => r,
                Some(_) => return Err("trailing comma".into()),
                None if rest.is_empty() => rest,
                None => return Err("labels not separated by a comma".into()),
            };
        }
        Ok(out)
    }
}
