//! A small mesh for proxy tests: a CA, certificate files per workload, a test app that says
//! what it received, and sidecars started in-process on loopback ports.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshlens::identity::{Ca, ControlPlane, IdentityName, Leaf, LeafPolicy};
use meshlens::proxy::config::ProxyConfig;
use meshlens::proxy::sidecar::Sidecar;
use meshlens::tap::Publisher;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Every network step is bounded, so a broken test fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(10);

pub fn id(sa: &str) -> IdentityName {
    ControlPlane::default().identity(sa, "shop").unwrap()
}

pub struct Pki {
    pub ca: Ca,
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        Pki {
            ca: Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn anchors(&self) -> PathBuf {
        let p = self.dir.path().join("ca.pem");
        if !p.exists() {
            std::fs::write(&p, self.ca.bundle().to_pem()).unwrap();
        }
        p
    }

    pub fn issue(&self, sa: &str) -> Leaf {
        self.ca
            .issue(&id(sa), &LeafPolicy::default(), SystemTime::now())
            .unwrap()
    }

    /// Writes `sa`'s certificate and key (replacing them atomically, as a secret volume does).
    pub fn write_leaf(&self, sa: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
        let cert = self.dir.path().join(format!("{sa}.crt"));
        let key = self.dir.path().join(format!("{sa}.key"));
        for (path, text) in [(&cert, leaf.chain_pem()), (&key, leaf.key_pem())] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        (cert, key)
    }
}

/// What the test app saw, echoed back in response headers.
pub async fn start_app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut first = [0u8; 3];
                let h2 = matches!(stream.peek(&mut first).await, Ok(3) if &first == b"PRI");
                let io = TokioIo::new(stream);
                let service = service_fn(app);
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
        }
    });
    addr
}

async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let version = format!("{:?}", req.version());
    let host = req
        .headers()
        .get("host")
        .map(|h| h.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let content_type = req.headers().get("content-type").cloned();
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if let Some(ms) = path.strip_prefix("/sleep/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let status = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    let h = r.headers_mut();
    h.insert("x-app-version", version.parse().unwrap());
    h.insert("x-app-host", host.parse().unwrap());
    if let Some(ct) = content_type {
        h.insert("content-type", ct);
    }
    Ok(r)
}

/// A TCP server that echoes every byte back.
pub async fn start_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

pub const POLICY: &str = r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: orders-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: orders}}
  port: http
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: orders-read, namespace: shop}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: orders-http}]
  rules: [{matches: [{method: GET, path: {type: PathPrefix, value: /}}]}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: orders-write, namespace: shop}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: orders-http}]
  rules: [{matches: [{method: POST, path: {type: PathPrefix, value: /v1/orders}}]}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: orders-grpc, namespace: shop}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: orders-http}]
  rules: [{matches: [{method: POST, path: {type: PathPrefix, value: /orders.Orders/}}]}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: web-only, namespace: shop}
spec:
  identities: ["web.shop.serviceaccount.identity.linkerd.cluster.local"]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-reads-orders, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: orders-read}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: web-only}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: billing-writes-orders, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: orders-write}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: billing}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: orders-tcp, namespace: shop}
spec:
  podSelector: {matchLabels: {app: orders}}
  port: tcp
  proxyProtocol: opaque
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: billing-tcp, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: orders-tcp}
  requiredAuthenticationRefs: [{kind: ServiceAccount, name: billing}]
"#;

/// Two sidecars: `web` (whose outbound calls orders) and `orders` (in front of the test app
/// and an echo server), sharing one tap publisher. Each has its own loopback address, as a
/// pod has its own IP: policy treats 127.0.0.1 as the pod itself (`localhost`).
pub struct Mesh {
    pub pki: Pki,
    pub tap: Publisher,
    pub web: Sidecar,
    pub orders: Sidecar,
    pub app: SocketAddr,
    pub echo: SocketAddr,
    pub policy_dir: PathBuf,
}

pub fn workload_yaml(name: &str, ports: &[(&str, u16)]) -> String {
    let ports: Vec<String> = ports
        .iter()
        .map(|(n, p)| format!("{{name: {n}, port: {p}}}"))
        .collect();
    format!(
        "{{namespace: shop, name: {name}, serviceAccount: {name}, labels: {{app: {name}}}, ports: [{}]}}",
        ports.join(", ")
    )
}

pub fn config(path: &Path, yaml: &str) -> ProxyConfig {
    ProxyConfig::parse(path, yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

impl Mesh {
    pub async fn start() -> Mesh {
        Mesh::start_with(POLICY, "").await
    }

    /// `orders_extra`: more YAML for the orders sidecar's config.
    pub async fn start_with(policy: &str, orders_extra: &str) -> Mesh {
        Mesh::start_full(policy, orders_extra, "", Publisher::default()).await
    }

    /// Also: more keys for the orders sidecar's `admin`, each after a comma (`, tapAllow: [..]`), and the tap
    /// publisher (a small ring makes slow subscribers lose events sooner).
    pub async fn start_full(
        policy: &str,
        orders_extra: &str,
        orders_admin: &str,
        tap: Publisher,
    ) -> Mesh {
        let pki = Pki::new();
        let app = start_app().await;
        let echo = start_echo().await;
        let policy_dir = pki.dir.path().join("policy");
        std::fs::create_dir_all(&policy_dir).unwrap();
        std::fs::write(policy_dir.join("orders.yaml"), policy).unwrap();
        let anchors = pki.anchors();

        let (cert, key) = pki.write_leaf("orders", &pki.issue("orders"));
        let orders_yaml = format!(
            "workload: {}\nidentity: {{trustAnchors: {}, cert: {}, key: {}}}\ninbound: {{listen: 127.0.0.3:0, port: {}}}\noutbound: {{listen: 127.0.0.3:0, sourceIp: 127.0.0.3}}\nadmin: {{listen: 127.0.0.3:0{orders_admin}}}\npolicy: {{dir: {}}}\n{orders_extra}",
            workload_yaml("orders", &[("http", app.port()), ("tcp", echo.port())]),
            anchors.display(),
            cert.display(),
            key.display(),
            app.port(),
            policy_dir.display(),
        );
        let orders = Sidecar::start(config(Path::new("orders.yaml"), &orders_yaml), tap.clone())
            .await
            .unwrap();

        let (cert, key) = pki.write_leaf("web", &pki.issue("web"));
        let inbound = orders.addrs.inbound;
        let web_yaml = format!(
            r#"workload: {}
identity: {{trustAnchors: {}, cert: {}, key: {}}}
inbound: {{listen: 127.0.0.2:0, port: 1}}
admin: {{listen: 127.0.0.2:0}}
outbound:
  listen: 127.0.0.2:0
  sourceIp: 127.0.0.2
  tcp: [{{listen: 127.0.0.2:0, destination: "orders.shop:{}"}}]
destinations:
- authorities: ["orders.shop:80", "orders.shop:{}"]
  address: {inbound}
  identity: {}
  namespace: shop
  workload: orders
- authorities: ["orders.shop:{}"]
  address: {inbound}
  identity: {}
- authorities: ["payments.shop:80"]
  address: 127.0.0.1:1
  identity: {}
"#,
            workload_yaml("web", &[("http", 1)]),
            anchors.display(),
            cert.display(),
            key.display(),
            echo.port(),
            app.port(),
            id("orders").as_str(),
            echo.port(),
            id("orders").as_str(),
            id("payments").as_str(),
        );
        let web = Sidecar::start(config(Path::new("web.yaml"), &web_yaml), tap.clone())
            .await
            .unwrap();
        Mesh {
            pki,
            tap,
            web,
            orders,
            app,
            echo,
            policy_dir,
        }
    }
}

/// One HTTP/1.1 request on a fresh connection; returns the response with its whole body.
pub async fn http1(addr: SocketAddr, req: Request<Full<Bytes>>) -> Response<Bytes> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = tokio::time::timeout(STEP, sender.send_request(req))
        .await
        .expect("response in time")
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, body)
}

/// One HTTP/2 (prior knowledge) request; returns the response head, body and trailers.
pub async fn http2(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> (Response<Bytes>, Option<hyper::HeaderMap>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = tokio::time::timeout(STEP, sender.send_request(req))
        .await
        .expect("response in time")
        .unwrap();
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (Response::from_parts(parts, collected.to_bytes()), trailers)
}

pub fn get(authority: &str, path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .uri(path)
        .header("host", authority)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

pub fn post(
    authority: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Request<Full<Bytes>> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header("host", authority)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// Waits for the first tap event `pick` accepts.
pub async fn wait_event(
    sub: &mut meshlens::tap::Subscriber,
    pick: impl Fn(&meshlens::tap::Event) -> bool,
) -> Arc<meshlens::tap::Event> {
    tokio::time::timeout(STEP, async {
        loop {
            let e = sub.recv().await.expect("tap publisher alive");
            if pick(&e) {
                return e;
            }
        }
    })
    .await
    .expect("the tap event in time")
}
