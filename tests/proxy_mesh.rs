//! The data plane over real loopback sockets and real certificates: what an allowed call, a
//! denial, a missing or foreign certificate, an unreachable upstream and an opaque connection
//! look like — to the client and in tap.

mod proxy_support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meshlens::identity::{Ca, ControlPlane, CurrentCert, LeafPolicy, TrustBundle};
use meshlens::tap::{Direction, EventKind};
use proxy_support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const WEB: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";
const ORDERS: &str = "orders.shop.serviceaccount.identity.linkerd.cluster.local";

#[tokio::test]
async fn an_allowed_call_shows_both_identities_in_tap() {
    let mesh = Mesh::start().await;
    let mut sub = mesh.tap.subscribe();
    let r = http1(
        mesh.web.addrs.outbound,
        get("orders.shop:80", "/v1/orders/7"),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Carried over HTTP/2 between the proxies, handed to the app as the HTTP/1.1 it was.
    assert_eq!(r.headers()["x-app-version"], "HTTP/1.1");
    assert_eq!(r.headers()["x-app-host"], "orders.shop:80");

    let end = wait_event(&mut sub, |e| {
        e.kind == EventKind::ResponseEnd && e.direction == Direction::Inbound
    })
    .await;
    assert_eq!(end.source.identity.as_deref(), Some(WEB));
    assert_eq!(end.destination.identity.as_deref(), Some(ORDERS));
    assert!(end.tls.secured);
    let http = end.http.as_ref().unwrap();
    assert_eq!(
        (http.method.as_str(), http.path.as_str(), http.status),
        ("GET", "/v1/orders/7", Some(200))
    );
    let d = end.decision.as_ref().unwrap();
    assert_eq!(d.verdict, "allow");
    assert_eq!(d.authz_name.as_deref(), Some("web-reads-orders"));
    assert_eq!(d.route_name.as_deref(), Some("orders-read"));
    assert_eq!(d.server_name, "orders-http");

    let out = wait_event(&mut sub, |e| {
        e.kind == EventKind::ResponseEnd && e.direction == Direction::Outbound
    })
    .await;
    assert_eq!(out.destination.identity.as_deref(), Some(ORDERS));
    assert_eq!(out.destination.workload.as_deref(), Some("orders"));
}

#[tokio::test]
async fn a_denied_call_gets_403_and_tap_names_the_authorizations_tried() {
    let mesh = Mesh::start().await;
    let mut sub = mesh.tap.subscribe();
    let r = http1(
        mesh.web.addrs.outbound,
        post(
            "orders.shop:80",
            "/v1/orders",
            "application/json",
            b"{}".to_vec(),
        ),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["l5d-proxy-error"],
        "unauthorized request on route"
    );
    assert!(r.body().is_empty());

    let end = wait_event(&mut sub, |e| {
        e.kind == EventKind::ResponseEnd && e.direction == Direction::Inbound
    })
    .await;
    let d = end.decision.as_ref().unwrap();
    assert_eq!(
        (d.verdict.as_str(), d.route_name.as_deref()),
        ("deny", Some("orders-write"))
    );
    assert_eq!(d.authz_name, None);
    let tried: Vec<&str> = d.tried.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tried[0], "billing-writes-orders", "{tried:?}");
    assert!(
        d.tried[0].miss.as_deref().unwrap().contains(WEB),
        "{:?}",
        d.tried[0].miss
    );
    assert!(
        d.reason.contains("orders-write") || d.reason.contains("orders-http"),
        "{}",
        d.reason
    );
}

#[tokio::test]
async fn an_unmatched_request_gets_404_no_route() {
    let mesh = Mesh::start().await;
    let mut req = get("orders.shop:80", "/v1/orders");
    *req.method_mut() = hyper::Method::DELETE;
    let r = http1(mesh.web.addrs.outbound, req).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["l5d-proxy-error"], "no route found for request");
}

#[tokio::test]
async fn a_denied_grpc_call_gets_permission_denied() {
    let mesh = Mesh::start().await;
    let mut req = post(
        "orders.shop:80",
        "/orders.Orders/Get",
        "application/grpc",
        vec![0, 0, 0, 0, 0],
    );
    *req.uri_mut() = "http://orders.shop:80/orders.Orders/Get".parse().unwrap();
    req.headers_mut().remove("host");
    let (r, trailers) = http2(mesh.web.addrs.outbound, req).await;
    assert_eq!(r.status(), 200);
    let status = r
        .headers()
        .get("grpc-status")
        .or(trailers.as_ref().and_then(|t| t.get("grpc-status")))
        .expect("grpc-status");
    assert_eq!(status, "7");
}

#[tokio::test]
async fn http2_from_the_app_reaches_the_app_as_http2() {
    let mesh = Mesh::start().await;
    let mut req = get("orders.shop:80", "/v1/orders");
    *req.uri_mut() = "http://orders.shop:80/v1/orders".parse().unwrap();
    req.headers_mut().remove("host");
    let (r, _) = http2(mesh.web.addrs.outbound, req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-app-version"], "HTTP/2.0");
}

#[tokio::test]
async fn an_unreachable_upstream_gets_502_saying_why() {
    let mesh = Mesh::start().await;
    let r = http1(mesh.web.addrs.outbound, get("payments.shop:80", "/")).await;
    assert_eq!(r.status(), 502);
    let why = r.headers()["l5d-proxy-error"].to_str().unwrap();
    assert!(why.contains("cannot connect to 127.0.0.1:1"), "{why}");
    let body = String::from_utf8_lossy(r.body());
    assert!(body.contains("payments.shop:80"), "{body}");

    let r = http1(mesh.web.addrs.outbound, get("nowhere.shop:80", "/")).await;
    assert_eq!(r.status(), 502);
    assert!(
        r.headers()["l5d-proxy-error"]
            .to_str()
            .unwrap()
            .contains("no destination for nowhere.shop:80")
    );
}

#[tokio::test]
async fn an_app_that_is_down_gets_502_from_the_inbound_proxy() {
    // A declared port nothing listens on: the inbound proxy cannot reach its app.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mesh = Mesh::start().await;
    let pki = &mesh.pki;
    let (cert, key) = pki.write_leaf("ghost", &pki.issue("ghost"));
    let yaml = format!(
        "workload: {}\nidentity: {{trustAnchors: {}, cert: {}, key: {}}}\ninbound: {{listen: 127.0.0.1:0, port: {closed}}}\noutbound: {{listen: 127.0.0.1:0}}\nadmin: {{listen: 127.0.0.4:0}}\n",
        workload_yaml("ghost", &[("http", closed)]),
        pki.anchors().display(),
        cert.display(),
        key.display(),
    );
    let ghost = meshlens::proxy::sidecar::Sidecar::start(
        config(std::path::Path::new("g.yaml"), &yaml),
        mesh.tap.clone(),
    )
    .await
    .unwrap();
    // Plaintext straight to the inbound: the default policy (all-unauthenticated) allows it.
    let r = http1(ghost.addrs.inbound, get("ghost.shop:80", "/")).await;
    assert_eq!(r.status(), 502);
    let why = r.headers()["l5d-proxy-error"].to_str().unwrap();
    assert!(why.contains(&format!("app at 127.0.0.1:{closed}")), "{why}");
}

#[tokio::test]
async fn a_slow_app_gets_504_after_the_configured_timeout() {
    let mesh = Mesh::start_with(POLICY, "timeouts: {response: 200ms}\n").await;
    let started = std::time::Instant::now();
    let r = http1(
        mesh.web.addrs.outbound,
        get("orders.shop:80", "/sleep/3000"),
    )
    .await;
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        r.headers()["l5d-proxy-error"]
            .to_str()
            .unwrap()
            .contains("timed out after 200ms")
    );
}

/// A raw mTLS client to the orders inbound proxy, speaking HTTP/1.1.
async fn tls_get(
    addr: std::net::SocketAddr,
    bundle: &TrustBundle,
    cert: Option<Arc<CurrentCert>>,
) -> Result<u16, String> {
    let config = match cert {
        Some(cert) => meshlens::identity::client_config(bundle, cert).unwrap(),
        None => Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(bundle.root_store().unwrap())
            .with_no_client_auth(),
        ),
    };
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = meshlens::identity::server_name(&id("orders")).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET /v1/orders HTTP/1.1\r\nhost: orders.shop:80\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tokio::time::timeout(STEP, tls.read_to_end(&mut out))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out);
    text.get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP response: {text:?}"))
}

#[tokio::test]
async fn clients_without_a_valid_certificate_are_refused() {
    let mesh = Mesh::start().await;
    let inbound = mesh.orders.addrs.inbound;
    let bundle = mesh.pki.ca.bundle().clone();

    // The real web identity is served (a control for the refusals below).
    let web = CurrentCert::new(&mesh.pki.issue("web")).unwrap();
    assert_eq!(tls_get(inbound, &bundle, Some(web)).await, Ok(200));

    let none = tls_get(inbound, &bundle, None).await;
    assert!(none.is_err(), "no client certificate: {none:?}");

    let foreign = Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap();
    let stranger = foreign
        .issue(&id("web"), &LeafPolicy::default(), SystemTime::now())
        .unwrap();
    let r = tls_get(inbound, &bundle, Some(CurrentCert::new(&stranger).unwrap())).await;
    assert!(r.is_err(), "foreign trust anchor: {r:?}");

    let day = Duration::from_secs(86_400);
    let old_ca = Ca::from_pem(
        mesh.pki.ca.bundle().to_pem().as_bytes(),
        mesh.pki.ca.issuer_pem().as_bytes(),
        mesh.pki.ca.issuer_key_pem().as_bytes(),
        SystemTime::now(),
    )
    .unwrap();
    let expired = old_ca
        .issue(
            &id("web"),
            &LeafPolicy {
                lifetime: day,
                clock_skew: Duration::from_secs(1),
            },
            SystemTime::now() - 3 * day,
        )
        .unwrap();
    let r = tls_get(inbound, &bundle, Some(CurrentCert::new(&expired).unwrap())).await;
    assert!(r.is_err(), "expired certificate: {r:?}");

    // The proxy is still serving after every refusal.
    let web = CurrentCert::new(&mesh.pki.issue("web")).unwrap();
    assert_eq!(tls_get(inbound, &bundle, Some(web)).await, Ok(200));
}

// As the proxy runs: the peer connection's task and the request's on different threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_certificate_expired_gets_the_peers_alert_on_its_first_request() {
    let mesh = Mesh::start().await;
    let day = Duration::from_secs(86_400);
    let expired = mesh
        .pki
        .ca
        .issue(
            &id("web"),
            &LeafPolicy {
                lifetime: day,
                clock_skew: Duration::from_secs(1),
            },
            SystemTime::now() - 3 * day,
        )
        .unwrap();
    mesh.pki.write_leaf("web", &expired);
    mesh.web.shared.credentials.reload().unwrap();
    for attempt in ["first", "second"] {
        let r = http1(mesh.web.addrs.outbound, get("orders.shop:80", "/v1/orders")).await;
        assert_eq!(r.status(), 502, "{attempt}");
        let why = r.headers()["l5d-proxy-error"].to_str().unwrap();
        // The connection's own error, never hyper's "operation was canceled". Which error
        // that is races: usually the peer's alert, but a write can meet the closed socket
        // (a broken pipe) before the alert is read.
        assert!(
            why.ends_with("connection error: received fatal alert: CertificateExpired")
                || why.ends_with("connection error: stream closed because of a broken pipe"),
            "{attempt}: {why}"
        );
    }
}

/// Log lines written through `tracing` while it is alive, at WARN and above.
#[derive(Clone, Default)]
struct Warnings(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Warnings {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Warnings {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().map(str::to_string).collect()
    }
}

// One thread: the sidecar's tasks log through this test's subscriber, and a refusal is
// logged before the refused client sees the alert.
#[tokio::test(flavor = "current_thread")]
async fn a_refused_handshake_is_said_once_at_warn_with_the_reason() {
    let warnings = Warnings::default();
    let sink = warnings.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    let mesh = Mesh::start().await;
    let inbound = mesh.orders.addrs.inbound;
    let bundle = mesh.pki.ca.bundle().clone();
    let day = Duration::from_secs(86_400);
    let expired = mesh
        .pki
        .ca
        .issue(
            &id("web"),
            &LeafPolicy {
                lifetime: day,
                clock_skew: Duration::from_secs(1),
            },
            SystemTime::now() - 3 * day,
        )
        .unwrap();
    for _ in 0..3 {
        let r = tls_get(inbound, &bundle, Some(CurrentCert::new(&expired).unwrap())).await;
        assert!(r.is_err(), "expired certificate: {r:?}");
    }
    let web = CurrentCert::new(&mesh.pki.issue("web")).unwrap();
    assert_eq!(tls_get(inbound, &bundle, Some(web)).await, Ok(200));
    let refused: Vec<String> = warnings
        .lines()
        .into_iter()
        .filter(|l| l.contains("TLS handshake refused"))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert!(
        refused[0].contains("WARN") && refused[0].contains("expired"),
        "{}",
        refused[0]
    );
}

#[tokio::test]
async fn opaque_tcp_is_denied_by_closing_then_allowed_after_a_policy_change_then_terminated() {
    let mesh = Mesh::start().await;
    let mut sub = mesh.tap.subscribe();
    let tcp = mesh.web.addrs.tcp[0];

    let mut s = TcpStream::connect(tcp).await.unwrap();
    let _ = s.write_all(b"hello").await;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(STEP, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "a denied connection is closed without forwarding");
    let close = wait_event(&mut sub, |e| {
        e.kind == EventKind::TcpClose && e.direction == Direction::Inbound
    })
    .await;
    assert_eq!(close.decision.as_ref().unwrap().verdict, "deny");
    assert_eq!(close.decision.as_ref().unwrap().server_name, "orders-tcp");

    // Let web in: the policy directory is reloaded while serving.
    let allow = POLICY.replace(
        "requiredAuthenticationRefs: [{kind: ServiceAccount, name: billing}]\n\"#",
        "",
    );
    let policy = format!(
        "{}\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {{name: web-tcp, namespace: shop}}\nspec:\n  targetRef: {{group: policy.linkerd.io, kind: Server, name: orders-tcp}}\n  requiredAuthenticationRefs: [{{kind: ServiceAccount, name: web}}]\n",
        allow.trim_end()
    );
    std::fs::write(mesh.policy_dir.join("orders.yaml"), &policy).unwrap();
    let mut s = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut c = TcpStream::connect(tcp).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        if let Ok(Ok(4)) =
            tokio::time::timeout(Duration::from_secs(1), c.read_exact(&mut buf)).await
        {
            assert_eq!(&buf, b"ping");
            s = Some(c);
            break;
        }
    }
    let mut s = s.expect("the new policy lets web through within 5 s");

    // Tighten it again: the open connection is terminated.
    std::fs::write(mesh.policy_dir.join("orders.yaml"), POLICY).unwrap();
    let n = tokio::time::timeout(STEP, s.read(&mut buf))
        .await
        .expect("terminated in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn malformed_traffic_never_takes_a_proxy_down() {
    let mesh = Mesh::start().await;
    for addr in [mesh.web.addrs.outbound, mesh.orders.addrs.inbound] {
        for junk in [
            &b"GET / HTTP/1.1\r\nhost: \x01\x02\r\nbad header\r\n\r\n"[..],
            b"\x16\x03\x01\x00\x05hello",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00garbage",
            &[0xffu8; 2048],
            b"",
        ] {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let _ = s.write_all(junk).await;
            let _ = s.shutdown().await;
            let mut sink = Vec::new();
            let _ = tokio::time::timeout(STEP, s.read_to_end(&mut sink)).await;
        }
    }
    let r = http1(mesh.web.addrs.outbound, get("orders.shop:80", "/v1/orders")).await;
    assert_eq!(r.status(), 200);
}

const ORDER_SCHEMA: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"string"},
  {"name":"amount","type":"long"},
  {"name":"customer","type":{"type":"record","name":"Customer","fields":[
    {"name":"name","type":"string"},
    {"name":"address","type":"string"}]}}]}"#;

/// Zig-zag varint, as Avro writes ints and longs.
fn long(v: i64, out: &mut Vec<u8>) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn string(s: &str, out: &mut Vec<u8>) {
    long(s.len() as i64, out);
    out.extend_from_slice(s.as_bytes());
}

/// A Confluent-framed Order written with schema `id`.
fn order(schema_id: u32) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&schema_id.to_be_bytes());
    string("o-17", &mut out);
    long(4200, &mut out);
    string("Ada", &mut out);
    string("1 Analytical Way", &mut out);
    out
}

/// The test policy plus: web may POST orders, and a contract in `mode` on that route.
async fn contract_mesh(mode: &str) -> (Mesh, u32, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path();
    let store = meshlens::registry::Store::open(registry).unwrap();
    let id = store
        .register("shop.orders-value", ORDER_SCHEMA, &[])
        .unwrap()
        .id;
    let policy = format!(
        r#"{POLICY}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {{name: web-writes-orders, namespace: shop}}
spec:
  targetRef: {{group: policy.linkerd.io, kind: HTTPRoute, name: orders-write}}
  requiredAuthenticationRefs: [{{kind: ServiceAccount, name: web}}]
---
apiVersion: policy.meshlens.io/v1alpha1
kind: SchemaContract
metadata: {{name: orders-events, namespace: shop}}
spec:
  targetRef: {{group: policy.linkerd.io, kind: HTTPRoute, name: orders-write}}
  mode: {mode}
  subjects:
  - subject: shop.orders-value
    producers: {{serviceAccounts: [{{name: web}}]}}
    readerSchema: '{}'
    redact: {{paths: [customer.address]}}
"#,
        ORDER_SCHEMA.replace('\n', " ")
    );
    let mesh = Mesh::start_with(&policy, &format!("registry: {}\n", registry.display())).await;
    (mesh, id, dir)
}

fn inbound_end(e: &meshlens::tap::Event) -> bool {
    e.kind == EventKind::ResponseEnd && e.direction == Direction::Inbound
}

#[tokio::test]
async fn an_enforced_contract_passes_valid_messages_and_rejects_invalid_ones_with_422() {
    let (mesh, id, _registry) = contract_mesh("enforce").await;
    let mut sub = mesh.tap.subscribe();
    let out = mesh.web.addrs.outbound;

    let r = http1(
        out,
        post(
            "orders.shop:80",
            "/v1/orders",
            "application/vnd.kafka.avro.v2+avro",
            order(id),
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.body().as_ref(),
        order(id).as_slice(),
        "the app got the message whole"
    );
    let end = wait_event(&mut sub, inbound_end).await;
    let i = &end.avro[0];
    assert!(i.valid, "{:?}", i.errors);
    assert_eq!(
        (i.subject.as_deref(), i.version, i.schema_id),
        (Some("shop.orders-value"), Some(1), Some(id))
    );
    assert_eq!(i.contract.as_deref(), Some("shop/orders-events"));
    let value = i.value_json.as_deref().unwrap();
    assert!(
        value.contains("\"Ada\"") && !value.contains("Analytical"),
        "{value}"
    );

    // Cut short: the decoder runs out of bytes inside customer.address.
    let mut bad = order(id);
    bad.truncate(bad.len() - 5);
    let r = http1(
        out,
        post("orders.shop:80", "/v1/orders", "avro/binary", bad),
    )
    .await;
    assert_eq!(r.status(), 422);
    let body = String::from_utf8_lossy(r.body()).to_string();
    assert!(body.contains("shop/orders-events"), "{body}");
    assert!(
        body.contains("address"),
        "the error points at the field: {body}"
    );
    let end = wait_event(&mut sub, inbound_end).await;
    assert_eq!(end.http.as_ref().unwrap().status, Some(422));
    assert!(!end.avro[0].valid);

    // A schema the registry does not have.
    let r = http1(
        out,
        post(
            "orders.shop:80",
            "/v1/orders",
            "avro/binary",
            order(id + 40),
        ),
    )
    .await;
    assert_eq!(r.status(), 422);

    // Over the enforce limit (1 MiB by default): 413, without reading it all.
    let big = vec![0u8; 2 << 20];
    let r = http1(
        out,
        post("orders.shop:80", "/v1/orders", "avro/binary", big),
    )
    .await;
    assert_eq!(r.status(), 413);
    assert!(
        r.headers()["l5d-proxy-error"]
            .to_str()
            .unwrap()
            .contains("maxBody")
    );
}

#[tokio::test]
async fn an_audited_contract_lets_invalid_messages_through_and_flags_them() {
    let (mesh, id, _registry) = contract_mesh("audit").await;
    let mut sub = mesh.tap.subscribe();
    let mut bad = order(id);
    bad.truncate(bad.len() - 5);
    let r = http1(
        mesh.web.addrs.outbound,
        post("orders.shop:80", "/v1/orders", "avro/binary", bad.clone()),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.body().as_ref(), bad.as_slice());
    let end = wait_event(&mut sub, inbound_end).await;
    let i = end
        .avro
        .iter()
        .find(|i| i.side == Some(meshlens::tap::MessageSide::Request))
        .expect("the request was inspected");
    assert!(!i.valid);
    assert_eq!(i.mode.as_deref(), Some("audit"));
    assert!(!i.errors.is_empty());

    let metrics = scrape(mesh.orders.addrs.admin).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("meshlens_avro_invalid_total{")
                && l.contains("subject=\"shop.orders-value\"")),
        "{metrics}"
    );
}

/// GET /metrics from an admin endpoint.
async fn scrape(admin: std::net::SocketAddr) -> String {
    let r = http1(admin, get("admin", "/metrics")).await;
    assert_eq!(r.status(), 200);
    String::from_utf8(r.body().to_vec()).unwrap()
}

#[tokio::test]
async fn metrics_use_linkerds_names_and_labels() {
    let mesh = Mesh::start().await;
    let out = mesh.web.addrs.outbound;
    for _ in 0..3 {
        assert_eq!(
            http1(out, get("orders.shop:80", "/v1/orders"))
                .await
                .status(),
            200
        );
    }
    let denied = post(
        "orders.shop:80",
        "/v1/orders",
        "application/json",
        Vec::new(),
    );
    assert_eq!(http1(out, denied).await.status(), 403);

    let inbound = scrape(mesh.orders.addrs.admin).await;
    let line = |name: &str, parts: &[&str]| {
        inbound
            .lines()
            .find(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
            .unwrap_or_else(|| panic!("no {name} with {parts:?} in\n{inbound}"))
            .to_string()
    };
    let requests = line(
        "request_total{",
        &[
            "direction=\"inbound\"",
            "tls=\"true\"",
            &format!("client_id=\"{WEB}\""),
            "srv_name=\"orders-http\"",
            "route_name=\"orders-read\"",
            "authz_kind=\"authorizationpolicy\"",
            "authz_name=\"web-reads-orders\"",
        ],
    );
    assert!(requests.ends_with(" 3"), "{requests}");
    let deny = line(
        "inbound_http_authz_deny_total{",
        &["route_name=\"orders-write\""],
    );
    assert!(deny.ends_with(" 1"), "{deny}");
    line(
        "response_latency_ms_bucket{",
        &["direction=\"inbound\"", "le=\"+Inf\""],
    );
    line("tcp_open_connections{", &["direction=\"inbound\""]);
    line("control_identity_cert_expiration_timestamp_seconds", &[]);

    let outbound = scrape(mesh.web.addrs.admin).await;
    assert!(
        outbound.lines().any(|l| l.starts_with("request_total{")
            && l.contains("direction=\"outbound\"")
            && l.contains("authority=\"orders.shop:80\"")
            && l.contains(&format!("server_id=\"{ORDERS}\""))
            && l.contains("dst_namespace=\"shop\"")
            && l.ends_with(" 4")),
        "{outbound}"
    );
    let r = http1(mesh.orders.addrs.admin, get("admin", "/identity")).await;
    assert!(String::from_utf8_lossy(r.body()).contains(ORDERS));
    assert_eq!(
        http1(mesh.orders.addrs.admin, get("admin", "/ready"))
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_load_without_a_failed_request() {
    let mesh = Arc::new(Mesh::start().await);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (mesh, stop) = (mesh.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http1(mesh.web.addrs.outbound, get("orders.shop:80", "/v1/orders")).await;
                if r.status() == 200 {
                    ok += 1;
                } else {
                    failed.push(r.status());
                }
            }
            (ok, failed)
        }));
    }
    // New handshakes during the rotation too: a fresh mTLS connection per request.
    let direct = {
        let (mesh, stop) = (mesh.clone(), stop.clone());
        tokio::spawn(async move {
            let bundle = mesh.pki.ca.bundle().clone();
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let web = CurrentCert::new(&mesh.pki.issue("web")).unwrap();
                match tls_get(mesh.orders.addrs.inbound, &bundle, Some(web)).await {
                    Ok(200) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        })
    };
    let before = mesh.orders.shared.credentials.not_after();
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        for sa in ["orders", "web"] {
            let leaf = mesh
                .pki
                .ca
                .issue(
                    &id(sa),
                    &LeafPolicy {
                        lifetime: Duration::from_secs(3600 + round),
                        clock_skew: Duration::from_secs(1),
                    },
                    SystemTime::now(),
                )
                .unwrap();
            mesh.pki.write_leaf(sa, &leaf);
        }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for task in load {
        let (ok, failed) = task.await.unwrap();
        assert!(
            failed.is_empty(),
            "failed requests during rotation: {failed:?}"
        );
        total += ok;
    }
    let (direct_ok, direct_failed) = direct.await.unwrap();
    assert!(direct_failed.is_empty(), "{direct_failed:?}");
    assert!(
        total > 50 && direct_ok > 5,
        "{total} proxied, {direct_ok} direct"
    );
    assert_ne!(
        mesh.orders.shared.credentials.not_after(),
        before,
        "the new certificate is in service"
    );
}
