//! The outbound proxy: the app sends it plain HTTP/1.1 or HTTP/2; it resolves the authority
//! through the destination table and carries the request to the peer's inbound proxy over
//! mTLS (SNI = the peer's identity), HTTP/2 multiplexed as Linkerd does, with HTTP/1
//! requests marked `l5d-orig-proto` so the peer hands them to its app as HTTP/1. Opaque TCP
//! routes carry Linkerd's transport header instead.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::RwLock;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::body::{Observed, ProxyBody, boxed};
use super::corked::corked;
use super::destinations::{Destinations, Target, split_authority};
use super::detect::Detected;
use super::exchange::{Details, Exchange, ResponseEnd};
use super::http::{authority_of, is_grpc, strip_hop_by_hop};
use super::metrics::{
    self, Dst, HttpLabels, HttpSeries, NoTlsReason, OutboundEndpoint, Target as MetricTarget,
    TcpLabels, TlsConnect,
};
use super::respond;
use super::shared::Shared;
use super::transport_header::Header;
use super::upstream::{PeerPool, PlainClients, connect_tcp, connect_tls, within};
use crate::tap::{self, Direction, Endpoint, EventKind};

pub struct Outbound {
    shared: Arc<Shared>,
    source: Option<IpAddr>,
    /// Request series by authority.
    series: RwLock<HashMap<String, Arc<HttpSeries>>>,
    destinations: Destinations,
    peers: PeerPool,
    plain: PlainClients,
}

impl Outbound {
    pub fn new(
        shared: Arc<Shared>,
        destinations: Destinations,
        source: Option<IpAddr>,
    ) -> Outbound {
        let plain = PlainClients::new(shared.timeouts.connect, source);
        Outbound {
            shared,
            source,
            series: RwLock::default(),
            destinations,
            peers: PeerPool::default(),
            plain,
        }
    }

    /// `outbound` labels for a target: its authority, address, TLS and destination metadata.
    fn endpoint(&self, target: &Target) -> OutboundEndpoint {
        let mut dst = Vec::new();
        if let Some(ns) = &target.namespace {
            dst.push(("namespace", ns.as_str()));
        }
        if let Some(w) = &target.workload {
            dst.push(("deployment", w.as_str()));
        }
        let sa = target
            .identity
            .as_deref()
            .and_then(|id| id.split_once('.'))
            .map(|(sa, _)| sa);
        if let Some(sa) = sa {
            dst.push(("serviceaccount", sa));
        }
        OutboundEndpoint {
            authority: Some(target.authority.as_str().into()),
            target: MetricTarget(target.addr),
            tls: match &target.identity {
                Some(id) => TlsConnect::Established {
                    server_id: id.as_str().into(),
                },
                None => TlsConnect::NoIdentity(NoTlsReason::NotProvidedByServiceDiscovery),
            },
            dst: Dst::new(dst),
        }
    }

    fn http_series(&self, target: &Target) -> Arc<HttpSeries> {
        if let Some(s) = self
            .series
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&target.authority)
        {
            return s.clone();
        }
        let s = self
            .shared
            .metrics
            .http(&HttpLabels::Outbound(self.endpoint(target)));
        let mut map = self.series.write().unwrap_or_else(|p| p.into_inner());
        // Authorities the table does not list come from the app; bound what they can grow.
        if map.len() < 4096 {
            map.insert(target.authority.clone(), s.clone());
        }
        s
    }

    /// Forget pooled peer connections (after the trust anchors changed).
    pub fn reset_connections(&self) {
        self.peers.clear();
    }

    /// Serves one connection from the app (HTTP/1.1 or HTTP/2 with prior knowledge).
    pub async fn serve(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let detected = match tokio::time::timeout(
            self.shared.timeouts.detect,
            super::detect::peek_protocol(&tcp),
        )
        .await
        {
            Ok(Ok(d)) => d,
            _ => return,
        };
        let this = self.clone();
        let service = service_fn(move |req| {
            let this = this.clone();
            // Boxed for the same reason as the inbound proxy's (see there).
            Box::pin(async move { Ok::<_, Infallible>(this.handle(req, peer).await) })
        });
        let result = match detected {
            Detected::Http2 => {
                let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                builder.timer(TokioTimer::new());
                corked(tcp, |io| {
                    builder.serve_connection(TokioIo::new(io), service)
                })
                .await
            }
            Detected::Http1 => {
                hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(self.shared.timeouts.detect)
                    .serve_connection(TokioIo::new(tcp), service)
                    .await
            }
            _ => {
                tracing::info!(%peer, "outbound: not HTTP; opaque traffic needs an outbound.tcp route");
                return;
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "outbound connection ended: {e}");
        }
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        let shared = &self.shared;
        let started = Instant::now();
        let grpc = is_grpc(&req);
        let Some(authority) = authority_of(&req) else {
            return respond::error(
                hyper::StatusCode::BAD_REQUEST,
                "the request names no authority (Host header)",
                grpc,
            );
        };
        let target = match self.destinations.resolve(&authority, 80) {
            Some(t) => t,
            None => match unlisted(&authority) {
                Some(t) => Arc::new(t),
                None => {
                    return respond::error(
                        hyper::StatusCode::BAD_GATEWAY,
                        &format!(
                            "no destination for {authority}: add it to the proxy's destinations"
                        ),
                        grpc,
                    );
                }
            },
        };
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let exchange = Exchange::new(&shared.tap, started, || Details {
            stream: shared.next_stream(),
            proxy: shared.proxy_name.clone(),
            direction: Direction::Outbound,
            source: source(shared, peer),
            destination: destination(&target),
            tls: tls(&target),
            http: tap::Http {
                protocol: super::http::protocol_name(req.version(), grpc).to_string(),
                method: req.method().as_str().to_string(),
                authority: authority.clone(),
                path: path.clone(),
                content_type: req
                    .headers()
                    .get(hyper::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                ..tap::Http::default()
            },
            decision: None,
        });
        exchange.request_start(&shared.tap);
        let series = self.http_series(&target);
        series.request();

        let client_h2 = req.version() == hyper::Version::HTTP_2;
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.uri = match Uri::builder()
            .scheme("http")
            .authority(authority.as_str())
            .path_and_query(path.as_str())
            .build()
        {
            Ok(uri) => uri,
            Err(e) => {
                let r = respond::error(
                    hyper::StatusCode::BAD_REQUEST,
                    &format!("bad request target: {e}"),
                    grpc,
                );
                return self.finish_local(&exchange, r, "bad request target");
            }
        };
        let request_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = request_bytes.clone();
        let body = boxed(Observed::new(body, 0, move |s| {
            counted.store(s.bytes, std::sync::atomic::Ordering::Relaxed);
        }));
        let timeout = shared.timeouts.response;
        let send = async {
            match &target.identity {
                Some(identity) => {
                    if !client_h2 {
                        parts
                            .headers
                            .insert("l5d-orig-proto", HeaderValue::from_static("HTTP/1.1"));
                    }
                    parts.headers.remove(hyper::header::HOST);
                    parts.version = hyper::Version::HTTP_2;
                    let config = shared.credentials.configs().client_h2.clone();
                    let tcp = || {
                        shared
                            .metrics
                            .tcp(&TcpLabels::Outbound(self.endpoint(&target)))
                    };
                    let mut peer = self
                        .peers
                        .sender(
                            target.addr,
                            identity,
                            config,
                            shared.timeouts.connect,
                            self.source,
                            tcp,
                        )
                        .await?;
                    match peer
                        .sender
                        .send_request(Request::from_parts(parts, body))
                        .await
                    {
                        Ok(r) => Ok(r),
                        Err(e) => Err(peer.error(e).await),
                    }
                }
                None => {
                    if let Some(addr_uri) = plain_uri(&target.addr, &path) {
                        parts.uri = addr_uri;
                    }
                    self.plain
                        .send(Request::from_parts(parts, body), target.addr, client_h2)
                        .await
                }
            }
        };
        let response = match within(timeout, "the response", send).await {
            Ok(r) => r,
            Err(e) => {
                let message = format!("{authority} ({}): {e}", target.addr);
                tracing::info!("outbound: {message}");
                let r = respond::error(e.status(), &message, grpc);
                series.response(
                    metrics::Response {
                        status: r.status().as_u16(),
                        grpc_status: None,
                        error: Some(e.label()),
                    },
                    started.elapsed(),
                );
                return self.finish_local(&exchange, r, &message);
            }
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let status = parts.status.as_u16();
        let proxy_error = parts
            .headers
            .get(respond::PROXY_ERROR)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let trailers_only = super::body::grpc_status(&parts.headers);
        exchange.response_start(&shared.tap, status, proxy_error.as_deref());
        let head_latency = started.elapsed();
        let tap = shared.tap.clone();
        let body = Observed::new(body, 0, move |s| {
            series.response(
                metrics::Response {
                    status,
                    grpc_status: s
                        .grpc_status
                        .or(trailers_only)
                        .and_then(|g| u16::try_from(g).ok()),
                    error: s.error.as_ref().map(|_| "i/o"),
                },
                head_latency,
            );
            exchange.response_end(
                &tap,
                ResponseEnd {
                    status,
                    grpc_status: s.grpc_status.or(trailers_only),
                    request_bytes: request_bytes.load(std::sync::atomic::Ordering::Relaxed),
                    response_bytes: s.bytes,
                    proxy_error: s.error.or(proxy_error),
                    avro: Vec::new(),
                },
            )
        });
        Response::from_parts(parts, boxed(body))
    }

    fn finish_local(
        &self,
        exchange: &Exchange,
        response: Response<ProxyBody>,
        error: &str,
    ) -> Response<ProxyBody> {
        let status = response.status().as_u16();
        let tap = &self.shared.tap;
        exchange.response_start(tap, status, Some(error));
        exchange.response_end(
            tap,
            ResponseEnd {
                status,
                grpc_status: super::body::grpc_status(response.headers()),
                proxy_error: Some(error.to_string()),
                ..ResponseEnd::default()
            },
        );
        response
    }

    /// An opaque TCP route: every connection to its listener goes to `destination`, over
    /// mTLS with the transport header when the destination is meshed.
    pub async fn serve_tcp(
        self: Arc<Self>,
        mut client: TcpStream,
        peer: SocketAddr,
        destination: String,
    ) {
        let _ = client.set_nodelay(true);
        let shared = &self.shared;
        let Some(target) = self.destinations.resolve(&destination, 0) else {
            return;
        };
        let started = Instant::now();
        let mut event = tcp_event(shared, peer, &target);
        let publish = |e: &tap::Event| {
            if shared.tap.active() {
                shared.tap.publish(e.clone());
            }
        };
        publish(&event);
        let result = match &target.identity {
            Some(identity) => {
                let config = shared.credentials.configs().client_opaque.clone();
                let series = shared
                    .metrics
                    .tcp(&TcpLabels::Outbound(self.endpoint(&target)));
                match connect_tls(
                    target.addr,
                    identity,
                    config,
                    shared.timeouts.connect,
                    self.source,
                    series,
                )
                .await
                {
                    Ok(mut tls) => {
                        let header = Header {
                            port: split_authority(&destination).map_or(0, |(_, p)| p),
                            name: split_authority(&destination).map(|(h, _)| h.to_string()),
                        };
                        match tls.write_all(&header.encode()).await {
                            Ok(()) => copy(&mut client, &mut tls).await,
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            None => match connect_tcp(target.addr, self.source).await {
                Ok(mut s) => copy(&mut client, &mut s).await,
                Err(e) => Err(format!("cannot connect to {}: {e}", target.addr)),
            },
        };
        event.kind = EventKind::TcpClose;
        event.time_us = tap::event::now_us();
        let (bytes, error) = match result {
            Ok(b) => (b, None),
            Err(e) => {
                tracing::info!(%peer, "outbound tcp to {destination}: {e}");
                ((0, 0), Some(e))
            }
        };
        event.tcp = Some(tap::Tcp {
            bytes_in: bytes.0,
            bytes_out: bytes.1,
            duration_us: Some(started.elapsed().as_micros() as u64),
            error,
        });
        publish(&event);
    }
}

async fn copy(
    a: &mut (impl AsyncRead + AsyncWrite + Unpin),
    b: &mut (impl AsyncRead + AsyncWrite + Unpin),
) -> Result<(u64, u64), String> {
    tokio::io::copy_bidirectional(a, b)
        .await
        .map_err(|e| e.to_string())
}

/// The app's side of an outbound call, as tap names it.
fn source(shared: &Shared, peer: SocketAddr) -> Endpoint {
    Endpoint {
        addr: peer.to_string(),
        namespace: Some(shared.workload.namespace.clone()),
        workload: Some(shared.workload.name.clone()),
        identity: Some(shared.local_identity().to_string()),
    }
}

fn destination(target: &Target) -> Endpoint {
    Endpoint {
        addr: target.addr.to_string(),
        namespace: target.namespace.clone(),
        workload: target.workload.clone(),
        identity: target.identity.clone(),
    }
}

/// Secured when the destination table names the peer's identity.
fn tls(target: &Target) -> tap::Tls {
    tap::Tls {
        secured: target.identity.is_some(),
        reason: target
            .identity
            .is_none()
            .then(|| "not_provided_by_service_discovery".to_string()),
    }
}

fn tcp_event(shared: &Shared, peer: SocketAddr, target: &Target) -> tap::Event {
    tap::Event {
        stream: shared.next_stream(),
        kind: EventKind::TcpOpen,
        time_us: tap::event::now_us(),
        proxy: shared.proxy_name.clone(),
        direction: Direction::Outbound,
        source: source(shared, peer),
        destination: destination(target),
        tls: tls(target),
        http: None,
        tcp: Some(tap::Tcp::default()),
        decision: None,
        avro: Vec::new(),
        lost: 0,
    }
}

/// An authority the table does not list but that is an IP address and port: forwarded in
/// plaintext, as a mesh forwards traffic to endpoints it knows nothing about.
fn unlisted(authority: &str) -> Option<Target> {
    let addr: SocketAddr = authority.parse().ok()?;
    Some(Target {
        addr,
        identity: None,
        namespace: None,
        workload: None,
        authority: authority.to_string(),
    })
}

/// Plain requests go to the endpoint's address, keeping the Host header the app set.
fn plain_uri(addr: &SocketAddr, path: &str) -> Option<Uri> {
    Uri::builder()
        .scheme("http")
        .authority(addr.to_string())
        .path_and_query(path)
        .build()
        .ok()
}
