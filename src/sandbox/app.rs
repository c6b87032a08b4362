//! A workload's simulated app: an HTTP server answering its routes with the manifest's status
//! mix, latency and Avro bodies, and one loop per call sending requests at a steady rate
//! through its outbound proxy (or, unmeshed, straight to the peer). Scenario steps change
//! its behaviour through `Control`, which outlives restarts.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::error::{Result, SandboxError};
use super::manifest::{CallSpec, RouteSpec, WorkloadSpec};
use super::payload::{Generator, Shape, stream_seed};
use crate::avro::{Schema, encode};

/// The content type of the Avro bodies the apps send: Confluent's, which proxies inspect.
pub const AVRO_CONTENT_TYPE: &str = "application/vnd.kafka.avro.v2+avro";
/// A request that takes longer than this counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The registered schemas apps write with: (subject, version) → schema and registry id.
#[derive(Debug, Default)]
pub struct Catalog {
    pub schemas: HashMap<(String, u32), (Arc<Schema>, u32)>,
}

impl Catalog {
    /// A random value of the subject version, Confluent-framed (magic 0, 4-byte id, datum).
    fn message(&self, subject: &str, version: u32, g: &mut Generator) -> Option<Vec<u8>> {
        let (schema, id) = self.schemas.get(&(subject.to_string(), version))?;
        let value = g.value(schema);
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        encode(schema, &value, &mut out).ok()?;
        Some(out)
    }
}

/// What the scenario may change while the app runs.
#[derive(Debug, Default)]
pub struct Control {
    /// Route name (or `*` for every route) → added latency and share of 503s.
    injections: Mutex<HashMap<String, (Duration, f64)>>,
    /// Call name → the schema version it writes.
    versions: Mutex<HashMap<String, u32>>,
    pub stats: Stats,
}

/// Outcomes of the app's calls, as its callers saw them.
#[derive(Debug, Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    /// 403 from the peer's policy.
    pub denied: AtomicU64,
    /// Other 4xx: no route, a contract's 422, ...
    pub rejected: AtomicU64,
    /// 5xx from the app itself (its status mix, injected errors).
    pub app_errors: AtomicU64,
    /// Failures of the mesh: no connection, a proxy error (`l5d-proxy-error` with a 5xx),
    /// timeouts. What a certificate rotation must never cause.
    pub mesh_failures: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> [u64; 6] {
        [
            &self.sent,
            &self.ok,
            &self.denied,
            &self.rejected,
            &self.app_errors,
            &self.mesh_failures,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

impl Control {
    pub fn new(spec: &WorkloadSpec) -> Control {
        let versions = spec
            .calls
            .iter()
            .filter(|c| c.subject.is_some())
            .map(|c| (c.name.clone(), c.version.unwrap_or(1)))
            .collect();
        Control {
            versions: Mutex::new(versions),
            ..Control::default()
        }
    }

    pub fn set_version(&self, call: &str, version: u32) {
        lock(&self.versions).insert(call.to_string(), version);
    }

    pub fn version(&self, call: &str) -> Option<u32> {
        lock(&self.versions).get(call).copied()
    }

    /// Zero latency and errors clear the injection.
    pub fn inject(&self, route: Option<&str>, latency: Duration, errors: f64) {
        let key = route.unwrap_or("*").to_string();
        let mut map = lock(&self.injections);
        if latency.is_zero() && errors <= 0.0 {
            map.remove(&key);
        } else {
            map.insert(key, (latency, errors));
        }
    }

    fn injection(&self, route: Option<&str>) -> (Duration, f64) {
        let map = lock(&self.injections);
        let (mut latency, mut errors) = map.get("*").copied().unwrap_or_default();
        if let Some((l, e)) = route.and_then(|r| map.get(r)) {
            latency += *l;
            errors = errors.max(*e);
        }
        (latency, errors)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where an app's calls go: through its own outbound proxy, or (unmeshed) straight to each
/// target's inbound proxy from the workload's own address.
#[derive(Debug, Clone)]
pub enum Egress {
    Proxy(SocketAddr),
    Direct {
        source: IpAddr,
        targets: HashMap<String, SocketAddr>,
    },
}

/// One running app instance.
pub struct App {
    pub addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// What an app needs to run.
pub struct AppSetup {
    pub spec: Arc<WorkloadSpec>,
    /// `namespace/name/replica`, for seeds.
    pub instance: String,
    pub seed: u64,
    /// Serve here (`None`: a client only).
    pub listen: Option<SocketAddr>,
    pub egress: Egress,
    pub catalog: Arc<Catalog>,
    pub control: Arc<Control>,
    /// Calls begin once this is true: when every server and proxy of the cluster listens.
    pub go: watch::Receiver<bool>,
}

impl App {
    pub async fn start(setup: AppSetup) -> Result<App> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut addr = None;
        if let Some(listen) = setup.listen {
            let listener =
                TcpListener::bind(listen)
                    .await
                    .map_err(|source| SandboxError::Listen {
                        addr: listen,
                        source,
                    })?;
            addr = Some(
                listener
                    .local_addr()
                    .map_err(|source| SandboxError::Listen {
                        addr: listen,
                        source,
                    })?,
            );
            let server = Arc::new(Server {
                routes: setup.spec.routes.clone(),
                catalog: setup.catalog.clone(),
                control: setup.control.clone(),
                generator: Mutex::new(Generator::new(
                    stream_seed(setup.seed, &format!("{}:serve", setup.instance)),
                    Shape::default(),
                )),
            });
            tasks.spawn(serve(listener, server, stopped.clone()));
        }
        let client = client(&setup.egress);
        for call in &setup.spec.calls {
            let target = match &setup.egress {
                Egress::Proxy(addr) => Some(*addr),
                Egress::Direct { targets, .. } => targets.get(&call.target).copied(),
            };
            let Some(target) = target else {
                return Err(SandboxError::Workload {
                    workload: setup.instance.clone(),
                    message: format!("call {}: no address for {}", call.name, call.target),
                });
            };
            let caller = Caller {
                call: call.clone(),
                via: target,
                client: client.clone(),
                catalog: setup.catalog.clone(),
                control: setup.control.clone(),
                generator: Generator::new(
                    stream_seed(setup.seed, &format!("{}:{}", setup.instance, call.name)),
                    Shape {
                        max_items: call.payload.max_items,
                        max_string: call.payload.max_string,
                    },
                ),
            };
            tasks.spawn(caller.run(setup.go.clone(), stopped.clone()));
        }
        Ok(App { addr, stop, tasks })
    }

    /// Stops serving and calling; returns once every task ended.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client(egress: &Egress) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(1)));
    if let Egress::Direct { source, .. } = egress {
        connector.set_local_address(Some(*source));
    }
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

struct Caller {
    call: CallSpec,
    via: SocketAddr,
    client: HttpClient,
    catalog: Arc<Catalog>,
    control: Arc<Control>,
    generator: Generator,
}

impl Caller {
    async fn run(mut self, mut go: watch::Receiver<bool>, mut stop: watch::Receiver<bool>) {
        tokio::select! {
            ready = go.wait_for(|go| *go) => if ready.is_err() { return },
            _ = stop.changed() => return,
        }
        let period = Duration::from_secs_f64(1.0 / self.call.rate);
        // Callers start spread over one period, not all at once.
        let offset = period.mul_f64(self.generator.rng().f64());
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut in_flight = JoinSet::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            while in_flight.try_join_next().is_some() {}
            let Some(req) = self.request() else { continue };
            let client = self.client.clone();
            let control = self.control.clone();
            in_flight.spawn(async move { send(client, req, &control).await });
        }
        in_flight.abort_all();
    }

    fn request(&mut self) -> Option<Request<Full<Bytes>>> {
        let c = &self.call;
        let mut req = Request::builder()
            .method(c.method.as_str())
            .uri(format!("http://{}{}", self.via, c.path))
            .header(hyper::header::HOST, c.target.as_str());
        let body = match &c.subject {
            Some(subject) => {
                let version = self.control.version(&c.name).unwrap_or(1);
                req = req.header(hyper::header::CONTENT_TYPE, AVRO_CONTENT_TYPE);
                self.catalog
                    .message(subject, version, &mut self.generator)?
            }
            None => Vec::new(),
        };
        req.body(Full::new(Bytes::from(body))).ok()
    }
}

async fn send(client: HttpClient, req: Request<Full<Bytes>>, control: &Control) {
    let stats = &control.stats;
    stats.sent.fetch_add(1, Ordering::Relaxed);
    let counter = match tokio::time::timeout(REQUEST_TIMEOUT, client.request(req)).await {
        Ok(Ok(resp)) => {
            let status = resp.status();
            let proxy_error = resp.headers().contains_key("l5d-proxy-error");
            // Read the body so the connection goes back to the pool.
            let _ = resp.into_body().collect().await;
            match status.as_u16() {
                403 => &stats.denied,
                s if s >= 500 && proxy_error => &stats.mesh_failures,
                s if s >= 500 => &stats.app_errors,
                s if s >= 400 => &stats.rejected,
                _ => &stats.ok,
            }
        }
        Ok(Err(e)) => {
            tracing::debug!("sandbox call failed: {e}");
            &stats.mesh_failures
        }
        Err(_) => &stats.mesh_failures,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Server {
    routes: Vec<RouteSpec>,
    catalog: Arc<Catalog>,
    control: Arc<Control>,
    generator: Mutex<Generator>,
}

async fn serve(listener: TcpListener, server: Arc<Server>, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("sandbox app: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let server = server.clone();
        connections.spawn(async move {
            let mut first = [0u8; 3];
            let h2 = matches!(stream.peek(&mut first).await, Ok(3) if &first == b"PRI");
            let io = TokioIo::new(stream);
            let service = service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.answer(req).await) }
            });
            if h2 {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service)
                    .await;
            } else {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

impl Server {
    /// The route a request is for: the longest path prefix among those whose method matches.
    fn route(&self, method: &hyper::Method, path: &str) -> Option<&RouteSpec> {
        self.routes
            .iter()
            .filter(|r| r.method.as_deref().is_none_or(|m| m == method.as_str()))
            .filter(|r| path.starts_with(&r.path))
            .max_by_key(|r| r.path.len())
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let route = self.route(req.method(), req.uri().path()).cloned();
        let _ = req.into_body().collect().await;
        let Some(route) = route else {
            return respond(StatusCode::NOT_FOUND, Vec::new(), None);
        };
        let (extra, errors) = self.control.injection(route.name.as_deref());
        let (status, delay, body) = {
            let mut g = lock(&self.generator);
            let delay = latency(g.rng(), route.latency.median, route.latency.p99) + extra;
            let status = if errors > 0.0 && g.rng().f64() < errors {
                503
            } else {
                pick_status(g.rng(), &route.status)
            };
            let body = match &route.response {
                Some(m) if (200..300).contains(&status) => {
                    self.catalog.message(&m.subject, m.version, &mut g)
                }
                _ => None,
            };
            (status, delay, body)
        };
        tokio::time::sleep(delay).await;
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        let avro = body.is_some();
        respond(
            status,
            body.unwrap_or_default(),
            avro.then_some(AVRO_CONTENT_TYPE),
        )
    }
}

fn respond(status: StatusCode, body: Vec<u8>, content_type: Option<&str>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Some(ct) = content_type.and_then(|c| c.parse().ok()) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, ct);
    }
    r
}

/// A status drawn by weight; 200 when the route gives none.
fn pick_status(rng: &mut fastrand::Rng, mix: &std::collections::BTreeMap<u16, u32>) -> u16 {
    let total: u64 = mix.values().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return 200;
    }
    let mut x = rng.u64(0..total);
    for (status, w) in mix {
        if x < u64::from(*w) {
            return *status;
        }
        x -= u64::from(*w);
    }
    200
}

/// A log-normal latency with this median and 99th percentile, capped at 3 × p99.
fn latency(rng: &mut fastrand::Rng, median: Duration, p99: Duration) -> Duration {
    let m = median.as_secs_f64();
    if m <= 0.0 {
        return Duration::ZERO;
    }
    // z of the 99th percentile of a standard normal.
    let sigma = (p99.as_secs_f64() / m).max(1.0).ln() / 2.326;
    // Box–Muller.
    let (u1, u2) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let secs = (m * (sigma * z).exp()).min(3.0 * p99.as_secs_f64());
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(p99)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_their_weights() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mix = std::collections::BTreeMap::from([(200, 9), (503, 1)]);
        let errors = (0..10_000)
            .filter(|_| pick_status(&mut rng, &mix) == 503)
            .count();
        assert!((800..1200).contains(&errors), "{errors}");
    }

    #[test]
    fn latency_has_its_median_and_p99() {
        let mut rng = fastrand::Rng::with_seed(2);
        let (m, p99) = (Duration::from_millis(10), Duration::from_millis(50));
        let mut samples: Vec<Duration> = (0..10_000).map(|_| latency(&mut rng, m, p99)).collect();
        samples.sort();
        let median = samples[5_000].as_secs_f64() * 1000.0;
        let top = samples[9_900].as_secs_f64() * 1000.0;
        assert!((9.0..11.0).contains(&median), "{median}");
        assert!((40.0..60.0).contains(&top), "{top}");
    }

    #[test]
    fn injections_add_to_a_route_and_clear_with_zeros() {
        let c = Control::default();
        c.inject(Some("charge"), Duration::from_millis(200), 0.5);
        assert_eq!(
            c.injection(Some("charge")),
            (Duration::from_millis(200), 0.5)
        );
        assert_eq!(c.injection(Some("refund")), (Duration::ZERO, 0.0));
        c.inject(Some("charge"), Duration::ZERO, 0.0);
        assert_eq!(c.injection(Some("charge")), (Duration::ZERO, 0.0));
    }
}
