//! The proxy's admin server, shaped like linkerd2-proxy's on port 4191 so that Prometheus
//! scrape configs, kubelet probes and meshlens's own metrics source work against either:
//! `/metrics`, `/ready`, `/live`, plus `/identity` to see which certificate is being served.
//! Plain HTTP/1.1 on loopback by default: it exposes no secrets (the certificate chain is
//! public), and binding it elsewhere is the caller's deliberate choice.
//!
//! With [`Admin::with_tls`], a connection that starts with a TLS ClientHello (0x16) is
//! terminated with the workload's own certificate and must present a client certificate
//! from its trust anchors; every request then carries the client's identity as a
//! [`Peer`] extension, which is how the tap route authorizes. Plain connections are served
//! as before.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue, VARY,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use rustls::ServerConfig;

use super::credentials::{ALPN_HTTP1, Configs, Credentials};
use super::metrics::Metrics;
use crate::identity::{CertInfo, CurrentCert, certs_to_pem};
pub use crate::tap::server::Peer;

/// Linkerd's admin port, on loopback.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4191);

/// What Prometheus expects from a text scrape.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// A client that has not sent its request head by then is dropped, so idle or slow
/// connections cannot pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connections in flight may take to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Response bodies: whole ones here, a stream for the tap route.
pub type Body = BoxBody<Bytes, BoxError>;
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
/// The handler the tap server mounts at `/tap` (any method); the admin server only routes
/// to it.
pub type TapRoute = Arc<dyn Fn(Request<Incoming>) -> ResponseFuture + Send + Sync>;

/// The TLS side of the admin port: the sidecar's credentials, and the server config derived
/// from their current configs (same anchors and certificate, ALPN http/1.1 only), rebuilt
/// when a reload replaces them.
struct AdminTls {
    credentials: Arc<Credentials>,
    derived: std::sync::Mutex<Option<(Arc<Configs>, Arc<ServerConfig>)>>,
}

impl AdminTls {
    fn config(&self) -> Arc<ServerConfig> {
        let current = self.credentials.configs();
        let mut derived = self.derived.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((from, config)) = &*derived
            && Arc::ptr_eq(from, &current)
        {
            return config.clone();
        }
        let mut config = (*current.server).clone();
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        let config = Arc::new(config);
        *derived = Some((current, config.clone()));
        config
    }
}

/// What the admin endpoints read. Share as `Arc<Admin>` with the proxy, which flips
/// readiness through [`set_ready`](Admin::set_ready).
pub struct Admin {
    metrics: Arc<Metrics>,
    cert: Arc<CurrentCert>,
    ready: AtomicBool,
    tap: Option<TapRoute>,
    tls: Option<AdminTls>,
}

impl Admin {
    /// Starts not ready: kubelet must not send traffic before the proxy can forward it.
    pub fn new(metrics: Arc<Metrics>, cert: Arc<CurrentCert>) -> Admin {
        Admin {
            metrics,
            cert,
            ready: AtomicBool::new(false),
            tap: None,
            tls: None,
        }
    }

    /// Terminates TLS on connections that start with a ClientHello, requiring a client
    /// certificate that chains to the workload's trust anchors.
    pub fn with_tls(mut self, credentials: Arc<Credentials>) -> Admin {
        self.tls = Some(AdminTls {
            credentials,
            derived: std::sync::Mutex::new(None),
        });
        self
    }

    pub fn with_tap(mut self, route: TapRoute) -> Admin {
        self.tap = Some(route);
        self
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

/// Serves `admin` on `listener` until `shutdown` completes, then stops accepting and gives
/// requests in flight a few seconds. A connection that sends garbage is answered (or just
/// closed) by hyper and affects no other connection.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, shutdown: impl Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("admin: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let admin = admin.clone();
        let closing = closing_rx.clone();
        connections.spawn(async move {
            let tls = match &admin.tls {
                Some(tls) if starts_with_client_hello(&stream).await => tls.config(),
                _ => {
                    let peer = Peer {
                        addr: peer,
                        tls: false,
                        identity: None,
                    };
                    return serve_connection(TokioIo::new(stream), admin, peer, closing).await;
                }
            };
            let accept = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
            let stream = match tokio::time::timeout(HEADER_READ_TIMEOUT, accept).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    let e = crate::identity::handshake_error(e);
                    tracing::debug!(%peer, "admin: TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "admin: TLS handshake timed out");
                    return;
                }
            };
            let identity =
                crate::identity::peer_identity(stream.get_ref().1.peer_certificates()).ok();
            let peer = Peer {
                addr: peer,
                tls: true,
                identity,
            };
            serve_connection(TokioIo::new(stream), admin, peer, closing).await;
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = closing_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!("admin: connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

/// Whether the client's first byte is a TLS handshake record; waits at most as long as for a
/// request head.
async fn starts_with_client_hello(stream: &tokio::net::TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await,
        Ok(Ok(1)) if first[0] == 0x16
    )
}

/// Serves HTTP/1.1 on one connection until it ends or shutdown begins; every request
/// carries `peer`.
async fn serve_connection<I>(
    io: TokioIo<I>,
    admin: Arc<Admin>,
    peer: Peer,
    mut closing: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let service = service_fn(move |mut req: Request<Incoming>| {
        let admin = admin.clone();
        req.extensions_mut().insert(peer.clone());
        async move { Ok::<_, Infallible>(respond(&admin, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(peer = %addr, "admin: connection ended: {e}");
            }
        }
        _ = closing.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn respond(admin: &Admin, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/tap"
        && let Some(tap) = &admin.tap
    {
        return tap(req).await;
    }
    if !matches!(path, "/metrics" | "/ready" | "/live" | "/identity") {
        let message = format!("not found: {path} (try /metrics, /ready, /live or /identity)\n");
        return text(StatusCode::NOT_FOUND, message);
    }
    if req.method() != Method::GET {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed on {path}; use GET\n", req.method()),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match path {
        "/metrics" => metrics(admin, req.headers()),
        "/ready" if admin.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n"),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/live" => text(StatusCode::OK, "live\n"),
        _ => identity(&admin.cert),
    }
}

fn metrics(admin: &Admin, request: &HeaderMap) -> Response<Body> {
    let body = admin.metrics.render();
    let mut response = if accepts_gzip(request) {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(body.as_bytes());
        let mut response = Response::new(full(gz.finish().unwrap_or_default()));
        response
            .headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        Response::new(full(body))
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// Whether any `Accept-Encoding` lists `gzip` with a non-zero quality.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// The leaf being served right now, read at request time so a rotation shows immediately.
fn identity(cert: &CurrentCert) -> Response<Body> {
    let key = cert.get();
    let info = match key.cert.first().map(|leaf| CertInfo::parse(leaf, 0)) {
        Some(Ok(info)) => info,
        Some(Err(e)) => {
            let message = format!("the served certificate does not parse: {e}\n");
            return text(StatusCode::INTERNAL_SERVER_ERROR, message);
        }
        None => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no certificate is served\n",
            );
        }
    };
    let json = serde_json::json!({
        "identity": info.identity(),
        "subject": info.subject,
        "issuer": info.issuer,
        "serial": info.serial,
        "not_before": rfc3339(info.not_before),
        "not_after": rfc3339(info.not_after),
        "chain_pem": certs_to_pem(&key.cert),
    });
    let mut response = Response::new(full(format!("{json:#}\n")));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::identity::{Ca, ControlPlane, Leaf, LeafPolicy};
    use crate::proxy::metrics::{Authz, HttpLabels, InboundServer, Route, Srv, Target, TlsAccept};

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn text(&self) -> &str {
            std::str::from_utf8(&self.body).unwrap()
        }
    }

    /// Sends `raw` as is and reads until the server closes.
    async fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(raw).await.unwrap();
        let mut out = Vec::new();
        let read = stream.read_to_end(&mut out);
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("the server answers and closes")
            .unwrap();
        out
    }

    async fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Reply {
        let raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: admin\r\n{headers}Connection: close\r\n\r\n"
        );
        let bytes = exchange(addr, raw.as_bytes()).await;
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&bytes[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_string(), v.trim().to_string())
            })
            .collect();
        Reply {
            status: status.parse().unwrap(),
            headers,
            body: bytes[split + 4..].to_vec(),
        }
    }

    async fn get(addr: SocketAddr, path: &str) -> Reply {
        request(addr, "GET", path, "").await
    }

    fn leaf() -> Leaf {
        let now = SystemTime::now();
        let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
        let name = ControlPlane::default().identity("web", "shop").unwrap();
        ca.issue(&name, &LeafPolicy::default(), now).unwrap()
    }

    struct Running {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        task: JoinHandle<()>,
    }

    async fn start(admin: Admin) -> (Running, Arc<Admin>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin = Arc::new(admin);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, admin.clone(), async {
            let _ = stopped.await;
        }));
        (Running { addr, stop, task }, admin)
    }

    async fn stop(running: Running) {
        running.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), running.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
    }

    fn record_a_request(metrics: &Metrics) {
        metrics
            .http(&HttpLabels::Inbound {
                server: InboundServer {
                    target: Target("10.0.0.1:8080".parse().unwrap()),
                    tls: TlsAccept::Disabled,
                    srv: Srv::new("server", "api", 8080),
                },
                route: Route::synthesized("default"),
                authz: Authz::new("default", "all-unauthenticated"),
            })
            .request();
    }

    #[tokio::test]
    async fn serves_probes_metrics_and_identity() {
        let leaf = leaf();
        let metrics = Arc::new(Metrics::new());
        record_a_request(&metrics);
        let admin = Admin::new(metrics, CurrentCert::new(&leaf).unwrap());
        let (running, admin) = start(admin).await;
        let addr = running.addr;

        let live = get(addr, "/live").await;
        assert_eq!((live.status, live.text()), (200, "live\n"));
        let ready = get(addr, "/ready").await;
        assert_eq!((ready.status, ready.text()), (503, "not ready\n"));
        admin.set_ready(true);
        let ready = get(addr, "/ready").await;
        assert_eq!((ready.status, ready.text()), (200, "ready\n"));

        let metrics = get(addr, "/metrics").await;
        assert_eq!(metrics.status, 200);
        assert_eq!(metrics.header("content-type"), Some(METRICS_CONTENT_TYPE));
        assert_eq!(metrics.header("content-encoding"), None);
        assert!(
            metrics.text().starts_with("# HELP request_total "),
            "{}",
            metrics.text()
        );
        assert!(metrics.text().contains(r#"tls="disabled""#));

        let id = get(addr, "/identity").await;
        assert_eq!(id.status, 200);
        assert_eq!(id.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&id.body).unwrap();
        let info = CertInfo::parse(&leaf.chain()[0], 0).unwrap();
        assert_eq!(json["identity"], leaf.name().as_str());
        assert_eq!(json["issuer"], "identity.linkerd.cluster.local");
        assert_eq!(json["serial"], info.serial.as_str());
        assert_eq!(json["not_after"], rfc3339(leaf.not_after()).as_str());
        assert_eq!(json["not_before"], rfc3339(leaf.not_before()).as_str());
        assert!(json["not_after"].as_str().unwrap().ends_with('Z'));
        assert_eq!(json["chain_pem"], leaf.chain_pem().as_str());
        assert_eq!(leaf.chain_pem().matches("BEGIN CERTIFICATE").count(), 2);

        let missing = get(addr, "/nope").await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.text().lines().count(), 1);
        assert!(missing.text().starts_with("not found: /nope"));
        let post = request(addr, "POST", "/metrics", "Content-Length: 0\r\n").await;
        assert_eq!(post.status, 405);
        assert_eq!(post.header("allow"), Some("GET"));
        stop(running).await;
    }

    #[tokio::test]
    async fn identity_follows_a_certificate_swap() {
        let (first, second) = (leaf(), leaf());
        let cert = CurrentCert::new(&first).unwrap();
        let admin = Admin::new(Arc::new(Metrics::new()), cert.clone());
        let (running, _admin) = start(admin).await;
        let serial = |l: &Leaf| CertInfo::parse(&l.chain()[0], 0).unwrap().serial;
        let served = |r: Reply| {
            let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            json["serial"].as_str().unwrap().to_string()
        };
        assert_eq!(served(get(running.addr, "/identity").await), serial(&first));
        cert.swap(&second).unwrap();
        assert_eq!(
            served(get(running.addr, "/identity").await),
            serial(&second)
        );
        stop(running).await;
    }

    #[tokio::test]
    async fn metrics_are_gzipped_when_asked() {
        let metrics = Arc::new(Metrics::new());
        record_a_request(&metrics);
        let admin = Admin::new(metrics, CurrentCert::new(&leaf()).unwrap());
        let (running, _admin) = start(admin).await;
        let plain = get(running.addr, "/metrics").await;
        let gzipped = request(
            running.addr,
            "GET",
            "/metrics",
            "Accept-Encoding: deflate, gzip;q=0.5\r\n",
        )
        .await;
        assert_eq!(gzipped.status, 200);
        assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
        assert_eq!(gzipped.header("content-type"), Some(METRICS_CONTENT_TYPE));
        assert_ne!(gzipped.body, plain.body);
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&gzipped.body[..])
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain.text());
        stop(running).await;
    }

    #[test]
    fn gzip_must_be_listed_and_not_refused() {
        let accepts = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
            accepts_gzip(&headers)
        };
        assert!(accepts("gzip"));
        assert!(accepts("br, GZIP"));
        assert!(accepts("gzip; q=1"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("identity"));
        assert!(!accepts("xgzip"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn garbage_closes_one_connection_not_the_server() {
        let admin = Admin::new(Arc::new(Metrics::new()), CurrentCert::new(&leaf()).unwrap());
        let (running, _admin) = start(admin).await;
        let answer = exchange(running.addr, b"\x16\x03\x01 NOT HTTP\r\n\r\n").await;
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 400"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
        let answer = exchange(
            running.addr,
            b"GET /live HTTP/1.1\r\nHost: \x01\x02\r\n\r\n",
        )
        .await;
        assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 400"));
        // A client that goes away mid-request does not hurt either.
        drop(TcpStream::connect(running.addr).await.unwrap());
        let live = get(running.addr, "/live").await;
        assert_eq!((live.status, live.text()), (200, "live\n"));
        stop(running).await;
    }

    #[tokio::test]
    async fn tap_is_routed_to_the_mounted_handler() {
        let tap: TapRoute = Arc::new(|req: Request<Incoming>| {
            let method = req.method().to_string();
            Box::pin(async move { text(StatusCode::OK, format!("tap via {method}\n")) })
        });
        let without = Admin::new(Arc::new(Metrics::new()), CurrentCert::new(&leaf()).unwrap());
        let with =
            Admin::new(Arc::new(Metrics::new()), CurrentCert::new(&leaf()).unwrap()).with_tap(tap);
        let (running, _admin) = start(with).await;
        let reply = request(running.addr, "POST", "/tap", "Content-Length: 0\r\n").await;
        assert_eq!((reply.status, reply.text()), (200, "tap via POST\n"));
        stop(running).await;
        let (running, _admin) = start(without).await;
        assert_eq!(get(running.addr, "/tap").await.status, 404);
        stop(running).await;
    }
}
