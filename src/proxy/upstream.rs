//! Connections the proxies open: to the local app (pooled HTTP/1 and HTTP/2 clients), and
//! to peers' inbound proxies over mTLS — one multiplexed HTTP/2 connection per peer, as
//! linkerd2-proxy keeps, so many client connections share one handshake.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::StatusCode;
use hyper::client::conn::http2;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::body::ProxyBody;
use super::counted::Counted;
use super::metrics::TcpSeries;
use super::pool::Http1Pool;
use crate::identity::{IdentityError, IdentityName};

/// Why the proxy got no response from upstream, and what it tells the client.
#[derive(Debug)]
pub enum UpstreamError {
    Connect {
        addr: SocketAddr,
        error: String,
    },
    Tls {
        addr: SocketAddr,
        error: IdentityError,
    },
    Timeout {
        what: &'static str,
        after: Duration,
    },
    Http(String),
}

impl UpstreamError {
    /// 502 when upstream failed or refused, 504 when it was too slow, as Linkerd answers.
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// Linkerd's `error` metric label.
    pub fn label(&self) -> &'static str {
        match self {
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::Tls { .. } => "tls",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Http(_) => "i/o",
        }
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Connect { addr, error } => {
                write!(f, "cannot connect to {addr}: {error}")
            }
            UpstreamError::Tls { addr, error } => write!(f, "mTLS with {addr} failed: {error}"),
            UpstreamError::Timeout { what, after } => {
                write!(
                    f,
                    "{what} timed out after {}",
                    humantime::format_duration(*after)
                )
            }
            UpstreamError::Http(e) => write!(f, "{e}"),
        }
    }
}

/// `send` bounded by the response timeout (`0s`: unbounded); `what` names what was awaited.
pub async fn within<T>(
    timeout: Duration,
    what: &'static str,
    send: impl std::future::Future<Output = Result<T, UpstreamError>>,
) -> Result<T, UpstreamError> {
    if timeout.is_zero() {
        return send.await;
    }
    tokio::time::timeout(timeout, send)
        .await
        .unwrap_or(Err(UpstreamError::Timeout {
            what,
            after: timeout,
        }))
}

/// Plaintext clients (to the local app, or to unmeshed endpoints): HTTP/1 connections the
/// proxy keeps itself, and hyper-util's pooled client for HTTP/2 (one multiplexed
/// connection per address).
#[derive(Clone)]
pub struct PlainClients {
    pub h1: Http1Pool,
    pub h2: Client<HttpConnector, ProxyBody>,
}

/// How long an unused connection to a plaintext endpoint stays open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

impl PlainClients {
    /// `source`: the local address to connect from (`None`: the system's choice).
    pub fn new(connect_timeout: Duration, source: Option<IpAddr>) -> PlainClients {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_local_address(source);
        connector.set_nodelay(true);
        let h2 = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .http2_only(true)
            .build(connector);
        PlainClients {
            h1: Http1Pool::new(connect_timeout, source, IDLE_TIMEOUT),
            h2,
        }
    }

    pub async fn send(
        &self,
        req: hyper::Request<ProxyBody>,
        addr: SocketAddr,
        h2: bool,
    ) -> Result<hyper::Response<hyper::body::Incoming>, UpstreamError> {
        if !h2 {
            return self.h1.send(req, addr).await;
        }
        self.h2.request(req).await.map_err(|e| {
            if e.is_connect() {
                let error =
                    std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
                UpstreamError::Connect { addr, error }
            } else {
                UpstreamError::Http(describe(&e))
            }
        })
    }
}

/// The innermost cause, which is what a person needs to read.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

type Slot = Arc<tokio::sync::Mutex<Option<PeerSender>>>;

/// A sender on a peer connection, with why the connection ended once it has.
#[derive(Clone)]
pub struct PeerSender {
    pub sender: http2::SendRequest<ProxyBody>,
    ended: tokio::sync::watch::Receiver<Option<String>>,
}

impl PeerSender {
    /// Says why a request failed. A TLS 1.3 server checks the client's certificate after
    /// the client considers the handshake done, so its refusal (an expired certificate)
    /// can reach a request only as "connection closed" while the connection's own error
    /// holds the peer's alert: say that one.
    pub async fn error(&mut self, e: hyper::Error) -> UpstreamError {
        if e.is_canceled() || e.is_closed() {
            let ended =
                tokio::time::timeout(Duration::from_secs(1), self.ended.wait_for(Option::is_some))
                    .await;
            if let Ok(Ok(why)) = ended
                && let Some(why) = why.as_ref()
            {
                return UpstreamError::Http(why.clone());
            }
        }
        UpstreamError::Http(describe(&e))
    }
}

/// HTTP/2 connections to peers' inbound proxies, one per (address, identity).
#[derive(Default)]
pub struct PeerPool {
    slots: Mutex<HashMap<(SocketAddr, String), Slot>>,
}

impl PeerPool {
    /// A sender on a live connection to `addr` proving `identity`, connecting if needed.
    pub async fn sender(
        &self,
        addr: SocketAddr,
        identity: &str,
        config: Arc<ClientConfig>,
        connect_timeout: Duration,
        source: Option<IpAddr>,
        series: impl FnOnce() -> Arc<TcpSeries>,
    ) -> Result<PeerSender, UpstreamError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .entry((addr, identity.to_string()))
                .or_default()
                .clone()
        };
        let mut guard = slot.lock().await;
        if let Some(peer) = guard.as_ref().filter(|p| !p.sender.is_closed()) {
            return Ok(peer.clone());
        }
        // Boxed: the handshakes' state is large and rarely needed, and it would otherwise
        // be part of every request's future.
        let peer = Box::pin(connect_peer(
            addr,
            identity,
            config,
            connect_timeout,
            source,
            series(),
        ))
        .await?;
        *guard = Some(peer.clone());
        Ok(peer)
    }

    /// Forgets every connection, so the next request handshakes again (after a trust change).
    pub fn clear(&self) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// A new HTTP/2 connection over mTLS to a peer, driven by a task of its own.
async fn connect_peer(
    addr: SocketAddr,
    identity: &str,
    config: Arc<ClientConfig>,
    connect_timeout: Duration,
    source: Option<IpAddr>,
    series: Arc<TcpSeries>,
) -> Result<PeerSender, UpstreamError> {
    let tls = connect_tls(addr, identity, config, connect_timeout, source, series).await?;
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(4 << 20)
        .keep_alive_interval(Duration::from_secs(10))
        .handshake(TokioIo::new(tls))
        .await
        .map_err(|e| UpstreamError::Http(format!("HTTP/2 with {addr}: {}", describe(&e))))?;
    let (ended_tx, ended) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(%addr, "peer connection ended: {e}");
            ended_tx.send_replace(Some(describe(&e)));
        }
    });
    Ok(PeerSender { sender, ended })
}

/// What one read from a peer connection may take. rustls reads at most 4 KiB per call, so
/// the batch of responses a peer writes at once took several `recvfrom`s to come in.
const READ_BUFFER: usize = 32 * 1024;

/// TCP then mTLS to `addr`, with SNI and verification name `identity`.
pub async fn connect_tls(
    addr: SocketAddr,
    identity: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
    source: Option<IpAddr>,
    series: Arc<TcpSeries>,
) -> Result<TlsStream<BufReader<Counted<TcpStream>>>, UpstreamError> {
    let name = IdentityName::parse(identity)
        .and_then(|n| crate::identity::server_name(&n))
        .map_err(|error| UpstreamError::Tls { addr, error })?;
    let connect = async {
        let tcp = connect_tcp(addr, source)
            .await
            .map_err(|e| UpstreamError::Connect {
                addr,
                error: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        tokio_rustls::TlsConnector::from(config)
            .connect(
                name,
                BufReader::with_capacity(READ_BUFFER, Counted::new(tcp, series)),
            )
            .await
            .map_err(|e| UpstreamError::Tls {
                addr,
                error: crate::identity::handshake_error(e),
            })
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| UpstreamError::Timeout {
            what: "connecting",
            after: timeout,
        })?
}

/// A TCP connection from `source` (any port) to `addr`.
pub async fn connect_tcp(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(addr).await
}
