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
