//! Tapping proxies from elsewhere: one connection per admin address, each `GET /tap` with
//! the same filter, the container streams read block by block as they arrive, and every
//! event merged into one channel. A connection that fails or ends is retried with
//! exponential backoff (100 ms doubling to 10 s, back to 100 ms once a stream was open), and
//! its state — `connecting`, `streaming`, `retrying in Ns: <error>` — and the events it
//! reported lost are published on a watch channel.
//!
//! With mTLS the client presents a mesh certificate and accepts any proxy whose certificate
//! chains to the given trust anchors: addresses are dialled by IP, so there is no name to
//! pin, and the proxy's proven identity is shown in the connection's state instead.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::codec::{self, BlockDecoder};
use super::event::{Event, EventKind};
use super::filter::Filter;
use super::server::CONTENT_TYPE_AVRO;
use crate::avro::StreamReader;
use crate::avro::container::Block;
use crate::identity::{CurrentCert, Leaf, TrustBundle, peer_identity};

/// A block larger than this (compressed or not) ends the connection with an error.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;
/// The container header (it holds the schema) must fit in this.
pub const MAX_HEADER_BYTES: usize = 1 << 20;
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// TCP connect, TLS handshake and the response head, each.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an error answer's text kept for the message.
const MAX_ERROR_BODY: usize = 4096;

/// How the client proves who it is.
#[derive(Clone)]
pub enum Auth {
    /// mTLS with a mesh certificate (`meshlens identity issue`).
    Mtls(Arc<ClientConfig>),
    /// A bearer token over plain HTTP (the proxy must have `admin.tapTokens`).
    Token(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Mtls(_) => f.write_str("Auth::Mtls"),
            Auth::Token(_) => f.write_str("Auth::Token(..)"),
        }
    }
}

/// A client error: one line naming the address or file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

impl Auth {
    /// mTLS from PEM files: the trust anchors (`ca`), the client's certificate chain and key.
    pub fn mtls_from_files(
        ca: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<Auth, ClientError> {
        let anchors = std::fs::read(ca)
            .map_err(|e| ClientError(format!("cannot read {}: {e}", ca.display())))?;
        let bundle = TrustBundle::from_pem(&anchors)
            .map_err(|e| ClientError(format!("{}: {e}", ca.display())))?;
        let leaf = Leaf::load(cert, key).map_err(|e| ClientError(e.to_string()))?;
        Auth::mtls(&bundle, &leaf)
    }

    pub fn mtls(bundle: &TrustBundle, leaf: &Leaf) -> Result<Auth, ClientError> {
        let roots = bundle
            .root_store()
            .map_err(|e| ClientError(format!("trust anchors: {e}")))?;
        let cert = CurrentCert::new(leaf).map_err(|e| ClientError(e.to_string()))?;
        let provider = crate::identity::provider();
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClientError(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(MeshServer { roots, provider }))
            .with_client_cert_resolver(cert);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Auth::Mtls(Arc::new(config)))
    }

    /// A bearer token from a file (surrounding whitespace dropped).
    pub fn token_from_file(path: &std::path::Path) -> Result<Auth, ClientError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError(format!("cannot read {}: {e}", path.display())))?;
        let token = text.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(ClientError(format!(
                "{} does not hold one bearer token",
                path.display()
            )));
        }
        Ok(Auth::Token(token.to_string()))
    }
}

/// Accepts a server certificate that chains to the trust anchors, whatever its name.
#[derive(Debug)]
struct MeshServer {
    roots: Arc<RootCertStore>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for MeshServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The config offers TLS 1.3 only.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The state of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    Connecting,
    /// `server` is the proxy's proven identity (mTLS only).
    Streaming {
        server: Option<String>,
    },
    Retrying {
        after: Duration,
        error: String,
    },
    /// The events channel was closed: the client stopped.
    Stopped,
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnState::Connecting => f.write_str("connecting"),
            ConnState::Streaming { server: Some(id) } => write!(f, "streaming from {id}"),
            ConnState::Streaming { server: None } => f.write_str("streaming"),
            ConnState::Retrying { after, error } => {
                write!(f, "retrying in {}: {error}", seconds(*after))
            }
            ConnState::Stopped => f.write_str("stopped"),
        }
    }
}

fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// One address's connection, as the status channel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub addr: String,
    pub state: ConnState,
    /// Events this proxy reported dropped for this client (Lost notices), since start.
    pub lost: u64,
    /// Events received, since start.
    pub events: u64,
}

/// What to tap.
#[derive(Debug, Clone)]
pub struct TapTarget {
    /// `host:port` of each proxy's admin endpoint.
    pub addrs: Vec<String>,
    pub auth: Auth,
    pub filter: Filter,
}

/// A running client: drop it (or `stop`) to close every connection.
pub struct TapClient {
    status: watch::Receiver<Vec<Connection>>,
    tasks: JoinSet<()>,
}

impl TapClient {
    /// Starts one connection task per address; events go to `events` until it closes.
    pub fn start(target: TapTarget, events: mpsc::Sender<Event>) -> TapClient {
        let initial = target
            .addrs
            .iter()
            .map(|a| Connection {
                addr: a.clone(),
                state: ConnState::Connecting,
                lost: 0,
                events: 0,
            })
            .collect();
        let (status_tx, status) = watch::channel(initial);
        let status_tx = Arc::new(status_tx);
        let mut tasks = JoinSet::new();
        for (i, addr) in target.addrs.iter().enumerate() {
            tasks.spawn(run_connection(
                i,
                addr.clone(),
                target.auth.clone(),
                target.filter.to_query(),
                events.clone(),
                status_tx.clone(),
            ));
        }
        TapClient { status, tasks }
    }

    /// Each connection's state, updated as it changes.
    pub fn status(&self) -> watch::Receiver<Vec<Connection>> {
        self.status.clone()
    }

    pub async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn run_connection(
    index: usize,
    addr: String,
    auth: Auth,
    query: String,
    events: mpsc::Sender<Event>,
    status: Arc<watch::Sender<Vec<Connection>>>,
) {
    let set = |f: &dyn Fn(&mut Connection)| {
        status.send_modify(|all| {
            if let Some(c) = all.get_mut(index) {
                f(c);
            }
        });
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        set(&|c| c.state = ConnState::Connecting);
        let result = async {
            let mut stream = TapStream::open(&addr, &auth, &query).await?;
            let server = stream.server.clone();
            set(&|c| {
                c.state = ConnState::Streaming {
                    server: server.clone(),
                }
            });
            backoff = BACKOFF_MIN;
            while let Some(batch) = stream.next_batch().await? {
                for event in batch {
                    let lost = if event.kind == EventKind::Lost {
                        event.lost
                    } else {
                        0
                    };
                    set(&|c| {
                        c.events += 1;
                        c.lost += lost;
                    });
                    if events.send(event).await.is_err() {
                        return Ok(true);
                    }
                }
            }
            Err(ClientError(format!("{addr}: the proxy ended the stream")))
        }
        .await;
        match result {
            Ok(true) => {
                set(&|c| c.state = ConnState::Stopped);
                return;
            }
            Ok(false) => {}
            Err(ClientError(error)) => {
                let after = backoff;
                set(&|c| {
                    c.state = ConnState::Retrying {
                        after,
                        error: error.clone(),
                    }
                });
                tokio::select! {
                    () = tokio::time::sleep(after) => {}
                    () = events.closed() => {
                        set(&|c| c.state = ConnState::Stopped);
                        return;
                    }
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One open tap stream.
pub struct TapStream {
    addr: String,
    /// The proxy's identity, when it was proven over mTLS.
    pub server: Option<String>,
    body: Incoming,
    buf: BytesMut,
    reader: Option<StreamReader>,
    decoder: Option<BlockDecoder>,
}

impl TapStream {
    /// Connects, sends `GET /tap?query` and checks the answer; a refusal is an error with
    /// the proxy's own one-line message.
    pub async fn open(addr: &str, auth: &Auth, query: &str) -> Result<TapStream, ClientError> {
        let err = |what: String| ClientError(format!("{addr}: {what}"));
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| err(format!("connect timed out after {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| err(format!("cannot connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let path = if query.is_empty() {
            "/tap".to_string()
        } else {
            format!("/tap?{query}")
        };
        let mut req = Request::get(path)
            .header(HOST, addr)
            .body(Empty::<Bytes>::new())
            .map_err(|e| err(format!("bad request: {e}")))?;
        let (response, server) = match auth {
            Auth::Mtls(config) => {
                let ip = tcp.peer_addr().map_err(|e| err(e.to_string()))?.ip();
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    connector.connect(ServerName::IpAddress(ip.into()), tcp),
                )
                .await
                .map_err(|_| err("the TLS handshake timed out".into()))?
                .map_err(|e| {
                    err(format!(
                        "TLS handshake failed: {}",
                        crate::identity::handshake_error(e)
                    ))
                })?;
                let server = peer_identity(tls.get_ref().1.peer_certificates()).ok();
                (send(tls, req).await.map_err(err)?, server)
            }
            Auth::Token(token) => {
                let value = format!("Bearer {token}")
                    .parse()
                    .map_err(|_| err("the token is not a valid header value".into()))?;
                req.headers_mut().insert(AUTHORIZATION, value);
                (send(tcp, req).await.map_err(err)?, None)
            }
        };
        if response.status() != StatusCode::OK {
            let status = response.status();
            let text = error_text(response.into_body()).await;
            return Err(err(format!("HTTP {}: {text}", status.as_u16())));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type != CONTENT_TYPE_AVRO {
            return Err(err(format!(
                "the answer is `{content_type}`, not a tap stream ({CONTENT_TYPE_AVRO})"
            )));
        }
        Ok(TapStream {
            addr: addr.to_string(),
            server,
            body: response.into_body(),
            buf: BytesMut::new(),
            reader: None,
            decoder: None,
        })
    }

    /// The events of the next block; `None` when the stream ended cleanly.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<Event>>, ClientError> {
        let addr = self.addr.clone();
        let err = |what: String| ClientError(format!("{addr}: {what}"));
        loop {
            if let Some(block) = self.parse().map_err(err)? {
                let reader = self.reader.as_ref().expect("parse set the reader");
                let decoder = self
                    .decoder
                    .get_or_insert_with(|| BlockDecoder::new(reader.schema()));
                let events = decoder.events(&block).map_err(|e| err(e.to_string()))?;
                return Ok(Some(events));
            }
            match self.body.frame().await {
                None => {
                    if self.buf.is_empty() && self.reader.is_some() {
                        return Ok(None);
                    }
                    return Err(err(format!(
                        "the stream ended in the middle of {}",
                        if self.reader.is_some() {
                            "a block"
                        } else {
                            "the header"
                        }
                    )));
                }
                Some(Err(e)) => return Err(err(format!("reading the stream: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// A complete block from the buffer, reading the header first.
    fn parse(&mut self) -> Result<Option<Block<'static>>, String> {
        if self.reader.is_none() {
            match StreamReader::header(&self.buf, MAX_HEADER_BYTES, MAX_BLOCK_BYTES)
                .map_err(|e| format!("tap stream: {e}"))?
            {
                Some((reader, used)) => {
                    if **reader.schema() != **codec::schema() {
                        // Still readable through schema resolution, as long as it resolves.
                        tracing::debug!("tap stream from {} has another schema", self.addr);
                    }
                    self.buf.advance(used);
                    self.reader = Some(reader);
                }
                None => return Ok(None),
            }
        }
        let reader = self.reader.as_mut().expect("set above");
        match reader
            .block(&self.buf)
            .map_err(|e| format!("tap stream: {e}"))?
        {
            Some((block, used)) => {
                self.buf.advance(used);
                Ok(Some(block))
            }
            None => Ok(None),
        }
    }
}

async fn send<IO>(io: IO, req: Request<Empty<Bytes>>) -> Result<Response<Incoming>, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    tokio::time::timeout(CONNECT_TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| format!("no answer within {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("request failed: {e}"))
}

/// The first line of an error answer, bounded.
async fn error_text(mut body: Incoming) -> String {
    let mut out = Vec::new();
    let read = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                out.extend_from_slice(&data);
                if out.len() >= MAX_ERROR_BODY {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(CONNECT_TIMEOUT, read).await;
    let text = String::from_utf8_lossy(&out[..out.len().min(MAX_ERROR_BODY)]).into_owned();
    text.lines().next().unwrap_or("").trim().to_string()
}
