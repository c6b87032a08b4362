//! Mutual TLS between sandbox identities over real loopback sockets: who sees whom, each way a
//! handshake is refused and the error that says why, certificate swaps while serving, and trust
//! bundles holding two anchors during a rotation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use meshlens::identity::{
    Ca, ControlPlane, CurrentCert, IdentityError, IdentityName, Leaf, LeafPolicy, TrustBundle,
    client_config, handshake_error, peer_identity, server_config, server_name,
};
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// Every network step is bounded, so a broken test fails instead of hanging.
const STEP: Duration = Duration::from_secs(10);

fn id(sa: &str) -> IdentityName {
    ControlPlane::default().identity(sa, "shop").unwrap()
}

fn leaf(ca: &Ca, sa: &str) -> Leaf {
    ca.issue(&id(sa), &LeafPolicy::default(), SystemTime::now())
        .unwrap()
}

fn server(bundle: &TrustBundle, leaf: &Leaf) -> (Arc<ServerConfig>, Arc<CurrentCert>) {
    let cert = CurrentCert::new(leaf).unwrap();
    (server_config(bundle, cert.clone()).unwrap(), cert)
}

fn client(bundle: &TrustBundle, leaf: &Leaf) -> Arc<ClientConfig> {
    client_config(bundle, CurrentCert::new(leaf).unwrap()).unwrap()
}

/// An echo server: reports each handshake (the client's identity, or why it was refused) on
/// the channel, then echoes bytes until the client hangs up. It dies with the test's runtime.
async fn serve(
    config: Arc<ServerConfig>,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Result<String, IdentityError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        let _ = tx.send(Err(handshake_error(e)));
                        return;
                    }
                };
                let _ = tx.send(peer_identity(tls.get_ref().1.peer_certificates()));
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = tls.read(&mut buf).await {
                    if tls.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, rx)
}

async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    expect: &IdentityName,
) -> Result<TlsStream<TcpStream>, IdentityError> {
    let tcp = TcpStream::connect(addr).await.map_err(IdentityError::Io)?;
    let connect = TlsConnector::from(config).connect(server_name(expect).unwrap(), tcp);
    timeout(STEP, connect)
        .await
        .expect("handshake timed out")
        .map_err(handshake_error)
}

/// One round trip through the echo server. In TLS 1.3 the server judges the client's
/// certificate after the client thinks the handshake is done, so a refusal shows up here.
async fn ping(tls: &mut TlsStream<TcpStream>) -> Result<(), IdentityError> {
    tls.write_all(b"ping").await.map_err(handshake_error)?;
    let mut buf = [0u8; 4];
    timeout(STEP, tls.read_exact(&mut buf))
        .await
        .expect("echo timed out")
        .map_err(handshake_error)?;
    assert_eq!(&buf, b"ping");
    Ok(())
}

async fn next(
    rx: &mut mpsc::UnboundedReceiver<Result<String, IdentityError>>,
) -> Result<String, IdentityError> {
    timeout(STEP, rx.recv())
        .await
        .expect("server reported nothing")
        .expect("server stopped")
}

fn peer_leaf(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[tokio::test]
async fn mutual_tls_and_both_sides_see_the_peer_identity() {
    let ca = Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap();
    let (config, _) = server(ca.bundle(), &leaf(&ca, "web"));
    let (addr, mut seen) = serve(config).await;

    let mut tls = connect(addr, client(ca.bundle(), &leaf(&ca, "api")), &id("web"))
        .await
        .unwrap();
    ping(&mut tls).await.unwrap();

    assert_eq!(
        next(&mut seen).await.unwrap(),
        "api.shop.serviceaccount.identity.linkerd.cluster.local"
    );
    let conn = tls.get_ref().1;
    assert_eq!(
        peer_identity(conn.peer_certificates()).unwrap(),
        "web.shop.serviceaccount.identity.linkerd.cluster.local"
    );
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

#[tokio::test]
async fn a_client_from_another_ca_is_refused_as_unknown_ca() {
    let ca = Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap();
    let stranger = Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap();
    let (config, _) = server(ca.bundle(), &leaf(&ca, "web"));
    let (addr, mut seen) = serve(config).await;

    // The client trusts the server, but its own certificate comes from elsewhere.
    let mut tls = connect(
        addr,
        client(ca.bundle(), &leaf(&stranger, "api")),
        &id("web"),
    )
    .await
    .unwrap();
    let err = next(&mut seen).await.unwrap_err();
    assert!(matches!(err, IdentityError::UnknownCa), "{err}");
    assert!(err.to_string().contains("unknown CA"), "{err}");
    let err = ping(&mut tls).await.unwrap_err();
    assert!(matches!(err, IdentityError::RejectedByPeer { .. }), "{err}");
}

#[tokio::test]
async fn a_server_from_another_ca_is_refused_as_unknown_ca() {
    let ca = Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap();
    let stranger = Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap();
    let (config, _) = server(ca.bundle(), &leaf(&stranger, "web"));
    let (addr, _seen) = serve(config).await;

    let err = connect(addr, client(ca.bundle(), &leaf(&ca, "api")), &id("web"))
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::UnknownCa), "{err}");
}

#[tokio::test]
async fn an_expired_client_certificate_is_refused() {
    let now = SystemTime::now();
    let ca = Ca::generate(&ControlPlane::default(), now - 4 * DAY).unwrap();
    let (config, _) = server(ca.bundle(), &leaf(&ca, "web"));
    let (addr, mut seen) = serve(config).await;

    let old = ca
        .issue(&id("api"), &LeafPolicy::default(), now - 3 * DAY)
        .unwrap();
    let _tls = connect(addr, client(ca.bundle(), &old), &id("web"))
        .await
        .unwrap();
    let err = next(&mut seen).await.unwrap_err();
    let IdentityError::Expired {
        not_after: Some(not_after),
        now: Some(checked),
    } = err
    else {
        panic!("expected Expired, got {err}");
    };
    assert_eq!(not_after, old.not_after());
    // Certificates and webpki count whole seconds.
    assert!(checked + Duration::from_secs(1) >= now);
    assert!(err.to_string().contains("expired at"), "{err}");
}

#[tokio::test]
async fn a_client_certificate_from_the_future_is_refused() {
    let now = SystemTime::now();
    let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
    let (config, _) = server(ca.bundle(), &leaf(&ca, "web"));
    let (addr, mut seen) = serve(config).await;

    let early = ca
        .issue(&id("api"), &LeafPolicy::default(), now + DAY)
        .unwrap();
    let _tls = connect(addr, client(ca.bundle(), &early), &id("web"))
        .await
        .unwrap();
    let err = next(&mut seen).await.unwrap_err();
    assert!(
        matches!(err, IdentityError::NotYetValid { not_before: Some(t), .. } if t == early.not_before()),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_with_the_wrong_identity_is_refused() {
    let ca = Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap();
    let (config, _) = server(ca.bundle(), &leaf(&ca, "web"));
    let (addr, _seen) = serve(config).await;

    let err = connect(
        addr,
        client(ca.bundle(), &leaf(&ca, "api")),
        &id("payments"),
    )
    .await
    .unwrap_err();
    let IdentityError::WrongIdentity {
        ref expected,
        ref presented,
    } = err
    else {
        panic!("expected WrongIdentity, got {err}");
    };
    assert_eq!(expected, id("payments").as_str());
    assert_eq!(presented, &vec![id("web").as_str().to_string()]);
    assert_eq!(
        err.to_string(),
        "the server is not payments.shop.serviceaccount.identity.linkerd.cluster.local: \
         its certificate names web.shop.serviceaccount.identity.linkerd.cluster.local"
    );
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let ca = Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap();
    let (config, _) = server(ca.bundle(), &leaf(&ca, "web"));
    let (addr, mut seen) = serve(config).await;

    let anonymous =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(ca.bundle().root_store().unwrap())
            .with_no_client_auth();
    let mut tls = connect(addr, Arc::new(anonymous), &id("web"))
        .await
        .unwrap();
    let err = next(&mut seen).await.unwrap_err();
    assert!(matches!(err, IdentityError::NoClientCertificate), "{err}");
    let err = ping(&mut tls).await.unwrap_err();
    assert!(err.to_string().contains("certificate required"), "{err}");
}

#[tokio::test]
async fn swapping_the_server_certificate_keeps_open_connections() {
    let ca = Ca::generate(&ControlPlane::default(), SystemTime::now()).unwrap();
    let first = leaf(&ca, "web");
    let (config, current) = server(ca.bundle(), &first);
    let (addr, mut seen) = serve(config).await;
    let client = client(ca.bundle(), &leaf(&ca, "api"));

    let mut open = connect(addr, client.clone(), &id("web")).await.unwrap();
    ping(&mut open).await.unwrap();
    next(&mut seen).await.unwrap();
    assert_eq!(peer_leaf(&open), first.chain()[0]);

    let renewed = leaf(&ca, "web");
    current.swap(&renewed).unwrap();

    ping(&mut open).await.unwrap();
    let mut fresh = connect(addr, client, &id("web")).await.unwrap();
    ping(&mut fresh).await.unwrap();
    assert_eq!(peer_leaf(&fresh), renewed.chain()[0]);
    assert_ne!(renewed.chain()[0], first.chain()[0]);
    ping(&mut open).await.unwrap();
}

#[tokio::test]
async fn a_two_anchor_bundle_accepts_leaves_of_either() {
    let now = SystemTime::now();
    let old = Ca::generate(&ControlPlane::default(), now).unwrap();
    let new = Ca::generate(&ControlPlane::default(), now).unwrap();
    let both = old.bundle().merged(new.bundle());
    let (config, current) = server(&both, &leaf(&old, "web"));
    let (addr, mut seen) = serve(config).await;

    for (ca, sa) in [(&old, "api"), (&new, "billing")] {
        let mut tls = connect(addr, client(&both, &leaf(ca, sa)), &id("web"))
            .await
            .unwrap();
        ping(&mut tls).await.unwrap();
        assert_eq!(next(&mut seen).await.unwrap(), id(sa).as_str());
    }

    // The server moves to the new issuer; a client still trusting only the old anchor is out.
    current.swap(&leaf(&new, "web")).unwrap();
    let mut tls = connect(addr, client(&both, &leaf(&new, "api")), &id("web"))
        .await
        .unwrap();
    ping(&mut tls).await.unwrap();
    let err = connect(addr, client(old.bundle(), &leaf(&old, "api")), &id("web"))
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::UnknownCa), "{err}");
}
