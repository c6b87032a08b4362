//! The tap stream over real sockets and real certificates: who may tap a proxy's admin port
//! (the operator identity over mTLS, a bearer token where configured) and who may not, what
//! arrives (filtered events in an Avro container file, a Lost notice for a client that does
//! not keep up), and `meshlens tap` printing it.

mod proxy_support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use meshlens::avro::{Container, Decoder};
use meshlens::identity::{ControlPlane, Leaf, LeafPolicy};
use meshlens::tap::client::{Auth, TapStream};
use meshlens::tap::{Direction, Event, EventKind, Inspection, Publisher, codec};
use proxy_support::*;
use tokio::net::TcpStream;

const WEB: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";
const ORDERS: &str = "orders.shop.serviceaccount.identity.linkerd.cluster.local";
const OPERATOR: &str = "meshlens-operator.meshlens.serviceaccount.identity.linkerd.cluster.local";

fn operator(pki: &Pki) -> Leaf {
    let name = ControlPlane::default()
        .identity("meshlens-operator", "meshlens")
        .unwrap();
    pki.ca
        .issue(&name, &LeafPolicy::default(), SystemTime::now())
        .unwrap()
}

fn mtls(pki: &Pki, leaf: &Leaf) -> Auth {
    Auth::mtls(pki.ca.bundle(), leaf).unwrap()
}

/// Reads batches until `done` says so; every event read is returned. Bounded by `STEP`.
async fn read_until(stream: &mut TapStream, done: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    tokio::time::timeout(STEP, async {
        loop {
            let batch = stream
                .next_batch()
                .await
                .unwrap()
                .expect("the stream goes on");
            for e in batch {
                let stop = done(&e);
                seen.push(e);
                if stop {
                    return;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the awaited event in time; saw {seen:#?}"));
    seen
}

async fn call(mesh: &Mesh, path: &str) -> u16 {
    http1(mesh.web.addrs.outbound, get("orders.shop:80", path))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_operator_taps_a_request_with_both_identities() {
    let mesh = Mesh::start().await;
    let auth = mtls(&mesh.pki, &operator(&mesh.pki));
    let mut stream = TapStream::open(
        &mesh.orders.addrs.admin.to_string(),
        &auth,
        "to=shop/orders",
    )
    .await
    .unwrap();
    assert_eq!(stream.server.as_deref(), Some(ORDERS));
    assert_eq!(call(&mesh, "/v1/orders/7").await, 200);
    let seen = read_until(&mut stream, |e| {
        e.kind == EventKind::ResponseEnd && e.direction == Direction::Inbound
    })
    .await;
    let end = seen.last().unwrap();
    assert_eq!(end.source.identity.as_deref(), Some(WEB));
    assert_eq!(end.destination.identity.as_deref(), Some(ORDERS));
    assert_eq!(end.http.as_ref().unwrap().path, "/v1/orders/7");
    assert_eq!(end.decision.as_ref().unwrap().verdict, "allow");
    assert!(seen.iter().any(|e| e.kind == EventKind::RequestStart));
}

#[tokio::test]
async fn another_identity_is_refused_with_who_may() {
    let mesh = Mesh::start().await;
    let auth = mtls(&mesh.pki, &mesh.pki.issue("web"));
    let admin = mesh.orders.addrs.admin.to_string();
    let err = TapStream::open(&admin, &auth, "").await.err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("{admin}: HTTP 403: tap: {WEB} may not tap shop/orders; allowed: {OPERATOR}")
    );
}

#[tokio::test]
async fn tap_allow_admits_a_suffix() {
    let mesh = Mesh::start_full(
        POLICY,
        "",
        ", tapAllow: ['*.shop.serviceaccount.identity.linkerd.cluster.local']",
        Publisher::default(),
    )
    .await;
    let admin = mesh.orders.addrs.admin.to_string();
    let web = mtls(&mesh.pki, &mesh.pki.issue("web"));
    assert!(TapStream::open(&admin, &web, "").await.is_ok());
    let op = mtls(&mesh.pki, &operator(&mesh.pki));
    let err = TapStream::open(&admin, &op, "").await.err().unwrap();
    assert!(err.to_string().contains("HTTP 403"), "{err}");
}

/// Trusts any server: the test is about what the server does without a client certificate.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[tokio::test]
async fn no_client_certificate_no_tap_and_plain_http_is_told_mtls_is_required() {
    let mesh = Mesh::start().await;
    let admin = mesh.orders.addrs.admin;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(admin).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(admin.ip().into());
    // TLS 1.3 finishes the client's side of the handshake before the server checks; the
    // refusal shows on the first exchange.
    let outcome = tokio::time::timeout(STEP, async {
        let tls = connector.connect(name, tcp).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        let req = hyper::Request::get("/tap")
            .header("host", "admin")
            .body(Empty::<Bytes>::new())
            .unwrap();
        sender
            .send_request(req)
            .await
            .map(|r| r.status())
            .map_err(std::io::Error::other)
    })
    .await
    .expect("refused in time");
    assert!(
        outcome.is_err(),
        "answered without a client certificate: {outcome:?}"
    );

    let plain = http1(admin, get("admin", "/tap")).await;
    assert_eq!(plain.status(), 403);
    let text = String::from_utf8(plain.body().to_vec()).unwrap();
    assert!(
        text.starts_with("tap: mTLS is required to tap shop/orders"),
        "{text}"
    );
    // The rest of the admin port still answers plain HTTP.
    assert_eq!(http1(admin, get("admin", "/live")).await.status(), 200);
}

#[tokio::test]
async fn only_events_that_match_the_filter_arrive() {
    let mesh = Mesh::start().await;
    let auth = mtls(&mesh.pki, &operator(&mesh.pki));
    let mut stream = TapStream::open(&mesh.orders.addrs.admin.to_string(), &auth, "status=4xx")
        .await
        .unwrap();
    assert_eq!(call(&mesh, "/v1/orders/1").await, 200);
    assert_eq!(call(&mesh, "/status/404").await, 404);
    let seen = read_until(&mut stream, |e| {
        e.kind == EventKind::ResponseEnd && e.direction == Direction::Inbound
    })
    .await;
    assert!(!seen.is_empty());
    for e in &seen {
        let status = e.http.as_ref().and_then(|h| h.status);
        assert!(
            status.is_some_and(|s| (400..500).contains(&s)),
            "{:?} {status:?}",
            e.kind
        );
        assert_eq!(e.http.as_ref().unwrap().path, "/status/404");
    }
}

#[tokio::test]
async fn a_client_that_does_not_read_gets_a_lost_notice_in_its_stream() {
    let mesh = Mesh::start_full(POLICY, "", "", Publisher::new(64)).await;
    let auth = mtls(&mesh.pki, &operator(&mesh.pki));
    // Uncompressed, so the bytes pile up in the socket buffers while nobody reads.
    let mut stream = TapStream::open(&mesh.orders.addrs.admin.to_string(), &auth, "codec=null")
        .await
        .unwrap();
    let mut big = Event::lost(0, 1);
    big.kind = EventKind::TcpOpen;
    big.proxy = "shop/orders".into();
    big.avro = vec![Inspection {
        value_json: Some("x".repeat(8 * 1024)),
        ..Inspection::default()
    }];
    // ~32 MiB: more than loopback socket buffers hold.
    for i in 0..4000 {
        big.stream = i;
        mesh.tap.publish(big.clone());
        if i % 500 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let seen = read_until(&mut stream, |e| e.kind == EventKind::Lost).await;
    let lost = seen.last().unwrap();
    assert!(lost.lost > 0);
    assert_eq!(lost.proxy, "shop/orders");
    assert!(mesh.tap.lost() >= lost.lost);
}

#[tokio::test]
async fn the_stream_is_an_avro_container_file_our_reader_decodes() {
    let mesh = Mesh::start().await;
    let Auth::Mtls(config) = mtls(&mesh.pki, &operator(&mesh.pki)) else {
        unreachable!()
    };
    let admin = mesh.orders.addrs.admin;
    let tcp = TcpStream::connect(admin).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(
            rustls::pki_types::ServerName::IpAddress(admin.ip().into()),
            tcp,
        )
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/tap?to=shop/orders")
        .header("host", "admin")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(STEP, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apache.avro.file"
    );
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let mut body = response.into_body();
    assert_eq!(call(&mesh, "/v1/orders/3").await, 200);
    let mut bytes = Vec::new();
    let events = tokio::time::timeout(STEP, async {
        loop {
            let frame = body.frame().await.unwrap().unwrap();
            bytes.extend_from_slice(&frame.into_data().unwrap());
            let Ok((c, _rest)) = Container::open_complete(&bytes) else {
                continue;
            };
            let d = Decoder::new(c.schema().clone(), codec::schema().clone());
            let events: Vec<Event> = c
                .blocks()
                .flat_map(|b| c.records(&d, &b.unwrap()).unwrap())
                .map(|v| codec::from_value(&v).unwrap())
                .collect();
            if events.iter().any(|e| e.kind == EventKind::ResponseEnd) {
                assert_eq!(c.codec(), meshlens::avro::Codec::Deflate);
                return events;
            }
        }
    })
    .await
    .expect("a response end in time");
    assert!(
        events
            .iter()
            .all(|e| e.http.as_ref().unwrap().path == "/v1/orders/3")
    );
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_bearer_token_from_the_identity_provider_may_tap_over_plain_http() {
    meshlens::tap::token::install_crypto();
    // The identity provider: an RSA key (a fixture; ring cannot generate RSA keys) and a
    // P-256 key, both in the JWKS.
    let rsa_pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/tap/jwt-signing-rsa.pem"
    ))
    .unwrap();
    let rsa_der = pem::parse(&rsa_pem).unwrap().into_contents();
    let rsa = ring::signature::RsaKeyPair::from_pkcs8(&rsa_der).unwrap();
    let parts = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(rsa.public());
    let rng = ring::rand::SystemRandom::new();
    let ec_der = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let ec = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        ec_der.as_ref(),
        &rng,
    )
    .unwrap();
    let point = ring::signature::KeyPair::public_key(&ec).as_ref().to_vec();
    let jwks = serde_json::json!({"keys": [
        {"kty": "RSA", "kid": "r1", "alg": "RS256", "n": b64(&parts.n), "e": b64(&parts.e)},
        {"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])},
    ]});
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    let admin_yaml = format!(
        ", tapTokens: {{jwks: {}, issuer: 'https://idp.test', audience: meshlens, allow: [alice@example.com]}}",
        jwks_path.display()
    );
    let mesh = Mesh::start_full(POLICY, "", &admin_yaml, Publisher::default()).await;
    let admin = mesh.orders.addrs.admin.to_string();

    let now = jsonwebtoken::get_current_timestamp();
    let claims = |email: &str, aud: &str| {
        serde_json::json!({"iss": "https://idp.test", "aud": aud, "sub": "u-1",
            "email": email, "exp": now + 300, "nbf": now - 10})
    };
    let mint = |alg, kid: &str, der: &[u8], c: &serde_json::Value| {
        let mut h = jsonwebtoken::Header::new(alg);
        h.kid = Some(kid.into());
        let key = match alg {
            jsonwebtoken::Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_der(der),
            _ => jsonwebtoken::EncodingKey::from_ec_der(der),
        };
        jsonwebtoken::encode(&h, c, &key).unwrap()
    };
    let alice = claims("alice@example.com", "meshlens");
    for token in [
        mint(jsonwebtoken::Algorithm::RS256, "r1", &rsa_der, &alice),
        mint(
            jsonwebtoken::Algorithm::ES256,
            "e1",
            ec_der.as_ref(),
            &alice,
        ),
    ] {
        let mut stream = TapStream::open(&admin, &Auth::Token(token), "to=shop/orders")
            .await
            .unwrap();
        assert_eq!(call(&mesh, "/v1/orders/9").await, 200);
        read_until(&mut stream, |e| e.kind == EventKind::ResponseEnd).await;
    }

    let bob = mint(
        jsonwebtoken::Algorithm::ES256,
        "e1",
        ec_der.as_ref(),
        &claims("bob@example.com", "meshlens"),
    );
    let err = TapStream::open(&admin, &Auth::Token(bob), "")
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{admin}: HTTP 403: tap: token subject u-1 (bob@example.com) may not tap shop/orders; allowed: alice@example.com"
        )
    );
    let other_audience = mint(
        jsonwebtoken::Algorithm::RS256,
        "r1",
        &rsa_der,
        &claims("alice@example.com", "someone-else"),
    );
    let err = TapStream::open(&admin, &Auth::Token(other_audience), "")
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{admin}: HTTP 401: tap: the bearer token's audience (aud) does not include meshlens"
        )
    );
}

/// Kills the child when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meshlens_tap_prints_json_lines_and_stops_at_max() {
    let mesh = Mesh::start().await;
    let leaf = operator(&mesh.pki);
    let (cert, key) = mesh.pki.write_leaf("operator", &leaf);
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_meshlens"))
            .args(["tap", &mesh.orders.addrs.admin.to_string()])
            .arg("--ca")
            .arg(mesh.pki.anchors())
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .args(["--to", "shop/orders", "--output", "json", "--max", "3"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "meshlens tap did not stop after 3 events"
        );
        // Until the tap connects, requests go unseen; keep sending.
        call(&mesh, "/v1/orders/5").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read as _;
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for line in lines {
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(json["destination"]["workload"], "orders");
        assert!(
            json["kind"].is_string() && json["http"]["method"] == "GET",
            "{line}"
        );
        // jq and JavaScript hold numbers as doubles: the id must survive one exactly.
        let stream = json["stream"].as_u64().unwrap();
        assert!(stream < 1 << 53, "{line}");
        assert_eq!(stream as f64 as u64, stream, "{line}");
    }
}

#[tokio::test]
async fn the_client_merges_proxies_and_reports_each_connection() {
    use meshlens::tap::client::{ConnState, TapClient, TapTarget};
    let mesh = Mesh::start().await;
    // A port nobody listens on: bound, then released.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let client = TapClient::start(
        TapTarget {
            addrs: vec![
                mesh.orders.addrs.admin.to_string(),
                mesh.web.addrs.admin.to_string(),
                dead.clone(),
            ],
            auth: mtls(&mesh.pki, &operator(&mesh.pki)),
            filter: meshlens::tap::Filter::from_query("path=/v1/orders/4").unwrap(),
        },
        tx,
    );
    let mut status = client.status();
    let states = tokio::time::timeout(STEP, async {
        loop {
            {
                let s = status.borrow_and_update();
                let streaming = s[..2]
                    .iter()
                    .all(|c| matches!(c.state, ConnState::Streaming { .. }));
                if streaming && matches!(s[2].state, ConnState::Retrying { .. }) {
                    return s.clone();
                }
            }
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("two streaming, one retrying");
    assert_eq!(
        states[0].state,
        ConnState::Streaming {
            server: Some(ORDERS.into())
        }
    );
    let retry = states[2].state.to_string();
    assert!(
        retry.starts_with("retrying in ")
            && retry.contains(&dead)
            && retry.contains("cannot connect"),
        "{retry}"
    );
    assert_eq!(call(&mesh, "/v1/orders/4").await, 200);
    // Both proxies publish to the shared ring, so each stream carries the request: six
    // events (three per direction) from each of the two proxies' streams.
    let mut got = Vec::new();
    while got.len() < 12 {
        let e = tokio::time::timeout(STEP, rx.recv())
            .await
            .unwrap()
            .unwrap();
        got.push(e);
    }
    assert!(
        got.iter()
            .all(|e| e.http.as_ref().unwrap().path == "/v1/orders/4")
    );
    client.stop().await;
}
