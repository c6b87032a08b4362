//! The inbound proxy: accepts mTLS from peers' outbound proxies (and plaintext from unmeshed
//! clients), learns the client's identity, evaluates policy per HTTP request or per opaque
//! connection, and forwards what is allowed to the local app.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hyper::body::{Body as _, Incoming};
use hyper::header::{HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::body::{self, CollectError, Observed, ProxyBody, boxed, collect_limited, full};
use super::corked::corked;
use super::counted::Counted;
use super::detect::{Detected, peek_protocol};
use super::exchange::{Details, Exchange, ResponseEnd, tap_decision};
use super::http::{authority_of, is_grpc, protocol_name, strip_hop_by_hop};
use super::inspect::rejection_body;
use super::messages::{Message, Pending, maybe_avro, schema_headers};
use super::metrics::{
    self, Authz, HttpLabels, HttpSeries, InboundServer, NoTlsReason, Route, Srv, Target, TcpLabels,
    TlsAccept,
};
use super::refusals::Refusals;
use super::respond;
use super::shared::Shared;
use super::transport_header::{self, Header};
use super::upstream::{PlainClients, within};
use crate::policy::authz::{ClientTls, Meta};
use crate::policy::contract::{Contract, Mode};
use crate::policy::eval::{HttpRequest, Request as PolicyRequest, Verdict};
use crate::policy::resources::ProxyProtocol;
use crate::tap::{self, Direction, Endpoint, EventKind, MessageSide};

pub struct Inbound {
    shared: Arc<Shared>,
    app_host: IpAddr,
    default_port: u16,
    app: PlainClients,
    refusals: Refusals,
}

/// What is known about a connection once it is accepted.
struct Conn {
    peer: SocketAddr,
    tls: ClientTls,
    /// Linkerd's `no_tls_reason` for plaintext connections.
    no_tls_reason: Option<&'static str>,
    tls_label: TlsAccept,
    /// Request series by (policy generation, route, authorization, port): the metas are
    /// compared by address, stable while their generation is in force.
    series: std::sync::Mutex<Vec<(SeriesKey, Arc<HttpSeries>)>>,
}

type SeriesKey = (u64, usize, usize, u16);

impl Conn {
    fn new(peer: SocketAddr, tls: ClientTls) -> Conn {
        let (tls_label, no_tls_reason) = match &tls {
            ClientTls::Mtls(id) => (
                TlsAccept::Established {
                    client_id: id.as_deref().unwrap_or("").into(),
                },
                None,
            ),
            ClientTls::None => (
                TlsAccept::NoIdentity(NoTlsReason::NoTlsFromRemote),
                Some("no_tls_from_remote"),
            ),
        };
        Conn {
            peer,
            tls,
            no_tls_reason,
            tls_label,
            series: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl Inbound {
    pub fn new(shared: Arc<Shared>, app_host: IpAddr, default_port: u16) -> Inbound {
        let app = PlainClients::new(shared.timeouts.connect, None);
        Inbound {
            shared,
            app_host,
            default_port,
            app,
            refusals: Refusals::default(),
        }
    }

    /// Serves one accepted connection to its end. Never panics on what the client sends.
    pub async fn serve(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let detect_timeout = self.shared.timeouts.detect;
        let detected = match tokio::time::timeout(detect_timeout, peek_protocol(&tcp)).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "inbound: reading the first bytes: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "inbound: no bytes within {detect_timeout:?}; closing");
                return;
            }
        };
        if detected != Detected::Tls {
            let conn = Conn::new(peer, ClientTls::None);
            let port = self.default_port;
            let opaque = self.is_opaque(port) || detected == Detected::Opaque;
            return if opaque {
                self.opaque(tcp, conn, port).await
            } else {
                self.http(tcp, conn, detected == Detected::Http2).await
            };
        }
        let acceptor =
            tokio_rustls::TlsAcceptor::from(self.shared.credentials.configs().server.clone());
        let tls = match tokio::time::timeout(detect_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                // No client certificate, a foreign trust anchor, an expired certificate.
                let why = crate::identity::handshake_error(e);
                if self.refusals.should_warn(peer.ip(), Instant::now()) {
                    tracing::warn!(%peer, "inbound: TLS handshake refused: {why} (further refusals of {} this minute are logged at debug)", peer.ip());
                } else {
                    tracing::debug!(%peer, "inbound: TLS handshake refused: {why}");
                }
                return;
            }
            Err(_) => {
                tracing::info!(%peer, "inbound: TLS handshake timed out");
                return;
            }
        };
        let (_, session) = tls.get_ref();
        let client_id = crate::identity::peer_identity(session.peer_certificates()).ok();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let conn = Conn::new(peer, ClientTls::Mtls(client_id));
        match alpn.as_deref() {
            Some(transport_header::ALPN) => {
                let mut tls = tls;
                match tokio::time::timeout(detect_timeout, Header::read(&mut tls)).await {
                    Ok(Ok(header)) => self.opaque(tls, conn, header.port).await,
                    Ok(Err(e)) => tracing::info!(%peer, "inbound: bad transport header: {e}"),
                    Err(_) => tracing::info!(%peer, "inbound: no transport header in time"),
                }
            }
            Some(b"h2") => self.http(tls, conn, true).await,
            _ => self.http(tls, conn, false).await,
        }
    }

    fn is_opaque(&self, port: u16) -> bool {
        let policy = self.shared.policy();
        let w = &self.shared.workload;
        policy
            .index
            .workload(&w.namespace, &w.name)
            .is_some_and(|wp| wp.protocol(port) == ProxyProtocol::Opaque)
    }

    async fn http<IO>(self: Arc<Self>, io: IO, conn: Conn, h2: bool)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = Counted::new(
            io,
            self.shared.metrics.tcp(&TcpLabels::Inbound(
                self.server_labels(self.default_port, &conn.tls_label),
            )),
        );
        let conn = Arc::new(conn);
        let peer = conn.peer;
        let this = self.clone();
        let service = service_fn(move |req| {
            let this = this.clone();
            let conn = conn.clone();
            // Boxed: hyper moves the service future into a task per request, and this one
            // is large; moving a pointer instead of its whole state saves a copy each time.
            Box::pin(async move { Ok::<_, Infallible>(this.handle(req, &conn).await) })
        });
        let result = if h2 {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder.timer(TokioTimer::new());
            // Responses answered in one poll of the connection leave in one TLS write.
            corked(io, |io| builder.serve_connection(TokioIo::new(io), service)).await
        } else {
            hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.shared.timeouts.detect)
                .serve_connection(TokioIo::new(io), service)
                .await
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "inbound connection ended: {e}");
        }
    }

    /// `inbound_*` labels for a port: the app's address, how the client connected, and the
    /// Server (or default policy) that owns the port.
    fn server_labels(&self, port: u16, tls: &TlsAccept) -> InboundServer {
        let policy = self.shared.policy();
        let w = &self.shared.workload;
        let srv = match policy.index.workload(&w.namespace, &w.name) {
            Some(wp) => {
                let m = &wp.server(port).meta;
                Srv::new(&m.kind, &m.name, port)
            }
            None => Srv::new("default", "unknown", port),
        };
        InboundServer {
            target: Target(SocketAddr::new(self.app_host, port)),
            tls: tls.clone(),
            srv,
        }
    }

    /// The request series for an allowed request, from the connection's cache.
    fn series(
        &self,
        conn: &Conn,
        generation: u64,
        port: u16,
        route: Option<&Meta>,
        authz: Option<&Meta>,
    ) -> Arc<HttpSeries> {
        let key = (
            generation,
            route.map_or(0, |r| r as *const Meta as usize),
            authz.map_or(0, |a| a as *const Meta as usize),
            port,
        );
        let mut cache = conn.series.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, s)) = cache.iter().find(|(k, _)| *k == key) {
            return s.clone();
        }
        let labels = HttpLabels::Inbound {
            server: self.server_labels(port, &conn.tls_label),
            route: route_label(route),
            authz: authz.map_or_else(
                || Authz::new("default", "unknown"),
                |a| Authz::new(&a.kind, &a.name),
            ),
        };
        let series = self.shared.metrics.http(&labels);
        if cache.len() >= 16 {
            cache.remove(0);
        }
        cache.push((key, series.clone()));
        series
    }

    /// The app port a request is for: the one its authority names when the workload declares
    /// it, else the default.
    fn target_port(&self, authority: &str) -> u16 {
        authority
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .filter(|p| self.shared.workload.ports.iter().any(|np| np.port == *p))
            .unwrap_or(self.default_port)
    }

    async fn handle(&self, mut req: Request<Incoming>, conn: &Conn) -> Response<ProxyBody> {
        let shared = &self.shared;
        let started = Instant::now();
        let grpc = is_grpc(&req);
        let authority = authority_of(&req).unwrap_or_default();
        let port = self.target_port(&authority);
        // Set by a peer's outbound proxy that carried an HTTP/1 request over HTTP/2.
        let orig_h1 = req
            .headers_mut()
            .remove("l5d-orig-proto")
            .is_some_and(|v| v.as_bytes().starts_with(b"HTTP/1"));
        let to_app_h2 = !orig_h1 && req.version() == hyper::Version::HTTP_2;
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let policy = shared.policy();
        let w = &shared.workload;
        let preq = PolicyRequest {
            namespace: w.namespace.clone(),
            workload: w.name.clone(),
            port,
            client_ip: conn.peer.ip(),
            tls: conn.tls.clone(),
            http: Some(HttpRequest {
                method: req.method().as_str().to_string(),
                path: path.clone(),
                host: Some(authority.clone()),
                headers: req
                    .headers()
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))
                    })
                    .collect(),
                grpc,
            }),
        };
        let decision = match policy.index.evaluate(&preq) {
            Ok(d) => d,
            Err(e) => {
                return respond::error(
                    hyper::StatusCode::INTERNAL_SERVER_ERROR,
                    &e.to_string(),
                    grpc,
                );
            }
        };
        let client_id = match &conn.tls {
            ClientTls::Mtls(id) => id.clone(),
            ClientTls::None => None,
        };
        let request_type = req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let exchange = Exchange::new(&shared.tap, started, || Details {
            stream: shared.next_stream(),
            proxy: shared.proxy_name.clone(),
            direction: Direction::Inbound,
            source: Endpoint {
                addr: conn.peer.to_string(),
                identity: client_id.clone(),
                ..Endpoint::default()
            },
            destination: Endpoint {
                addr: SocketAddr::new(self.app_host, port).to_string(),
                namespace: Some(w.namespace.clone()),
                workload: Some(w.name.clone()),
                identity: Some(shared.local_identity().to_string()),
            },
            tls: tap::Tls {
                secured: client_id.is_some(),
                reason: conn.no_tls_reason.map(str::to_string),
            },
            http: tap::Http {
                protocol: protocol_name(req.version(), grpc).to_string(),
                method: req.method().as_str().to_string(),
                authority: authority.clone(),
                path: path.clone(),
                content_type: request_type.clone(),
                ..tap::Http::default()
            },
            decision: Some(tap_decision(&decision)),
        });
        exchange.request_start(&shared.tap);
        let allowed = match decision.verdict {
            Verdict::Allow => Ok(self.series(
                conn,
                policy.generation,
                port,
                decision.route,
                decision.authorization,
            )),
            Verdict::Deny => {
                let server = self.server_labels(port, &conn.tls_label);
                shared
                    .metrics
                    .http_authz_deny(&server, &route_label(decision.route));
                tracing::info!(
                    server = %decision.server, route = ?decision.route.map(|r| r.to_string()),
                    client.tls = ?conn.tls, client.ip = %conn.peer.ip(),
                    "Request denied"
                );
                Err((
                    respond::denied(grpc, client_id.is_some()),
                    respond::UNAUTHORIZED,
                ))
            }
            Verdict::NoRoute => {
                let server = self.server_labels(port, &conn.tls_label);
                shared.metrics.http_route_not_found(&server);
                Err((respond::no_route(grpc), respond::NO_ROUTE))
            }
        };
        let contract = policy
            .contracts
            .for_target(&w.namespace, decision.server, decision.route)
            .cloned();
        drop(decision);
        let series = match allowed {
            Ok(series) => series,
            Err((response, error)) => {
                return self.finish_local(&exchange, response, Some(error), None, Vec::new());
            }
        };
        series.request();

        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if !to_app_h2
            && !parts.headers.contains_key(HOST)
            && let Ok(v) = HeaderValue::from_str(&authority)
        {
            parts.headers.insert(HOST, v);
        }
        let app_addr = SocketAddr::new(self.app_host, port);
        // HTTP/1 names only the path (the Host header is set above); the HTTP/2 client
        // wants the whole URI.
        let uri = if to_app_h2 {
            Uri::builder()
                .scheme("http")
                .authority(app_addr.to_string())
        } else {
            Uri::builder()
        };
        parts.uri = match uri.path_and_query(path.as_str()).build() {
            Ok(uri) => uri,
            Err(e) => {
                let r = respond::error(
                    hyper::StatusCode::BAD_REQUEST,
                    &format!("bad request target: {e}"),
                    grpc,
                );
                return self.finish_local(
                    &exchange,
                    r,
                    Some("bad request target"),
                    Some((&series, "bad request")),
                    Vec::new(),
                );
            }
        };
        parts.version = if to_app_h2 {
            hyper::Version::HTTP_2
        } else {
            hyper::Version::HTTP_11
        };
        let inspections = shared.inspections();
        let message = |side, content_type: Option<String>, headers| Message {
            side,
            content_type,
            headers,
            contract: contract.clone(),
            client: conn.tls.clone(),
        };
        let request_bytes = Arc::new(AtomicU64::new(0));
        let enforce = contract.as_ref().is_some_and(|c| c.mode == Mode::Enforce);
        let (body, request_inspection) = if enforce && !body.is_end_stream() {
            let limit = shared.limits.max_body;
            let bytes = match collect_limited(body, limit).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    let (status, text) = match e {
                        CollectError::TooLarge => (
                            hyper::StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                "the request body is over {limit} bytes, the most the enforced schema contract {} reads (inspection.maxBody)",
                                contract_name(contract.as_deref())
                            ),
                        ),
                        CollectError::Failed(e) => (
                            hyper::StatusCode::BAD_REQUEST,
                            format!("could not read the request body: {e}"),
                        ),
                    };
                    let r = respond::error(status, &text, grpc);
                    return self.finish_local(
                        &exchange,
                        r,
                        Some(&text),
                        Some((&series, "request body")),
                        Vec::new(),
                    );
                }
            };
            request_bytes.store(bytes.len() as u64, Ordering::Relaxed);
            let headers = schema_headers(&parts.headers);
            let inspection = inspections
                .now(
                    message(MessageSide::Request, request_type, headers),
                    bytes.clone(),
                    false,
                )
                .await;
            if let Some(i) = inspection.as_ref().filter(|i| !i.valid) {
                let text = rejection_body(i);
                let r = respond::explained(hyper::StatusCode::UNPROCESSABLE_ENTITY, &text, grpc);
                let first = text.lines().next().unwrap_or("").to_string();
                return self.finish_local(
                    &exchange,
                    r,
                    Some(&first),
                    Some((&series, "schema contract")),
                    vec![i.clone()],
                );
            }
            (
                full(bytes),
                inspection.map_or(Pending::None, |i| Pending::Ready(Box::new(i))),
            )
        } else if !body.is_end_stream() && maybe_avro(request_type.as_deref(), contract.is_some()) {
            let (tx, rx) = oneshot::channel();
            let m = message(
                MessageSide::Request,
                request_type,
                schema_headers(&parts.headers),
            );
            let counted = request_bytes.clone();
            let i = inspections.clone();
            let body = Observed::new(body, shared.limits.audit_copy, move |s| {
                counted.store(s.bytes, Ordering::Relaxed);
                if s.error.is_none() {
                    i.spawn(m, s.copy, s.truncated, tx);
                }
            });
            (boxed(body), Pending::Running(rx))
        } else {
            let counted = request_bytes.clone();
            let body = Observed::new(body, 0, move |s| counted.store(s.bytes, Ordering::Relaxed));
            (boxed(body), Pending::None)
        };
        let upstream = Request::from_parts(parts, body);
        let timeout = shared.timeouts.response;
        let sent = self.app.send(upstream, app_addr, to_app_h2);
        let response = match within(timeout, "the app's response", sent).await {
            Ok(r) => r,
            Err(e) => {
                let message = format!("app at {app_addr}: {e}");
                tracing::info!("inbound: {message}");
                let r = respond::error(e.status(), &message, grpc);
                let avro = request_inspection.result().await.into_iter().collect();
                return self.finish_local(
                    &exchange,
                    r,
                    Some(&message),
                    Some((&series, e.label())),
                    avro,
                );
            }
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let status = parts.status.as_u16();
        let trailers_only = body::grpc_status(&parts.headers);
        exchange.response_start(&shared.tap, status, None);
        let head_latency = exchange.started.elapsed();
        let response_type = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let response_message = (!body.is_end_stream()
            && maybe_avro(response_type.as_deref(), contract.is_some()))
        .then(|| Message {
            side: MessageSide::Response,
            content_type: response_type,
            headers: schema_headers(&parts.headers),
            contract: contract.clone(),
            client: ClientTls::Mtls(Some(shared.local_identity().to_string())),
        });
        let copy = if response_message.is_some() {
            shared.limits.audit_copy
        } else {
            0
        };
        let shared = shared.clone();
        let body = Observed::new(body, copy, move |s| {
            let grpc_status = s.grpc_status.or(trailers_only);
            series.response(
                metrics::Response {
                    status,
                    grpc_status: grpc_status.and_then(|g| u16::try_from(g).ok()),
                    error: s.error.as_ref().map(|_| "i/o"),
                },
                head_latency,
            );
            let end = ResponseEnd {
                status,
                grpc_status,
                request_bytes: request_bytes.load(Ordering::Relaxed),
                response_bytes: s.bytes,
                proxy_error: s.error.clone(),
                avro: Vec::new(),
            };
            if matches!(request_inspection, Pending::None) && response_message.is_none() {
                return exchange.response_end(&shared.tap, end);
            }
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return exchange.response_end(&shared.tap, end);
            };
            rt.spawn(async move {
                let mut end = end;
                end.avro.extend(request_inspection.result().await);
                if let Some(m) = response_message
                    && s.error.is_none()
                {
                    end.avro
                        .extend(inspections.now(m, s.copy, s.truncated).await);
                }
                shared.record_avro(Direction::Inbound, &end.avro);
                exchange.response_end(&shared.tap, end);
            });
        });
        Response::from_parts(parts, boxed(body))
    }

    /// Tap for an answer the proxy gave itself.
    /// `series`: an allowed request's series and the `error` label of why the proxy answered.
    fn finish_local(
        &self,
        exchange: &Exchange,
        response: Response<ProxyBody>,
        error: Option<&str>,
        series: Option<(&Arc<HttpSeries>, &'static str)>,
        avro: Vec<tap::Inspection>,
    ) -> Response<ProxyBody> {
        let status = response.status().as_u16();
        let grpc_status = body::grpc_status(response.headers());
        if let Some((s, label)) = series {
            s.response(
                metrics::Response {
                    status,
                    grpc_status: grpc_status.and_then(|g| u16::try_from(g).ok()),
                    error: Some(label),
                },
                exchange.started.elapsed(),
            );
        }
        self.shared.record_avro(Direction::Inbound, &avro);
        let tap = &self.shared.tap;
        exchange.response_start(tap, status, error);
        exchange.response_end(
            tap,
            ResponseEnd {
                status,
                grpc_status,
                proxy_error: error.map(str::to_string),
                avro,
                ..ResponseEnd::default()
            },
        );
        response
    }

    /// An opaque connection: one decision for the whole connection, re-checked whenever the
    /// policy changes (a connection that becomes unauthorized is closed).
    async fn opaque<IO>(self: Arc<Self>, io: IO, conn: Conn, port: u16)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = &self.shared;
        let w = &shared.workload;
        let preq = PolicyRequest {
            namespace: w.namespace.clone(),
            workload: w.name.clone(),
            port,
            client_ip: conn.peer.ip(),
            tls: conn.tls.clone(),
            http: None,
        };
        let check = |policy: &super::policy_state::PolicyState| {
            policy
                .index
                .evaluate(&preq)
                .map(|d| (d.verdict, tap_decision(&d)))
        };
        let mut changes = shared.policy_changes();
        let Ok((verdict, decision)) = check(&shared.policy()) else {
            return;
        };
        let client_id = match &conn.tls {
            ClientTls::Mtls(id) => id.clone(),
            ClientTls::None => None,
        };
        let app_addr = SocketAddr::new(self.app_host, port);
        let mut event = tap::Event {
            stream: shared.next_stream(),
            kind: EventKind::TcpOpen,
            time_us: tap::event::now_us(),
            proxy: shared.proxy_name.clone(),
            direction: Direction::Inbound,
            source: Endpoint {
                addr: conn.peer.to_string(),
                identity: client_id.clone(),
                ..Endpoint::default()
            },
            destination: Endpoint {
                addr: app_addr.to_string(),
                namespace: Some(w.namespace.clone()),
                workload: Some(w.name.clone()),
                identity: Some(shared.local_identity().to_string()),
            },
            tls: tap::Tls {
                secured: client_id.is_some(),
                reason: conn.no_tls_reason.map(str::to_string),
            },
            http: None,
            tcp: Some(tap::Tcp::default()),
            decision: Some(decision),
            avro: Vec::new(),
            lost: 0,
        };
        let started = Instant::now();
        let publish = |event: &tap::Event| {
            if shared.tap.active() {
                shared.tap.publish(event.clone());
            }
        };
        publish(&event);
        let close = |event: &mut tap::Event, bytes: (u64, u64), error: Option<String>| {
            event.kind = EventKind::TcpClose;
            event.time_us = tap::event::now_us();
            event.tcp = Some(tap::Tcp {
                bytes_in: bytes.0,
                bytes_out: bytes.1,
                duration_us: Some(started.elapsed().as_micros() as u64),
                error,
            });
            publish(event);
        };
        let server = self.server_labels(port, &conn.tls_label);
        let metrics = &shared.metrics;
        if verdict != Verdict::Allow {
            metrics.tcp_authz_deny(&server);
            tracing::info!(%port, client.tls = ?conn.tls, client.ip = %conn.peer.ip(), "Connection denied");
            close(&mut event, (0, 0), Some("denied by policy".into()));
            return;
        }
        let connect = tokio::time::timeout(shared.timeouts.connect, TcpStream::connect(app_addr));
        let mut app = match connect.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                close(&mut event, (0, 0), Some(format!("app at {app_addr}: {e}")));
                return;
            }
            Err(_) => {
                close(
                    &mut event,
                    (0, 0),
                    Some(format!("app at {app_addr}: connect timed out")),
                );
                return;
            }
        };
        let _ = app.set_nodelay(true);
        if let Some(d) = &event.decision {
            let authz = Authz::new(
                d.authz_kind.as_deref().unwrap_or("default"),
                d.authz_name.as_deref().unwrap_or("unknown"),
            );
            metrics.tcp_authz_allow(&server, &authz);
        }
        let mut io = Counted::new(io, metrics.tcp(&TcpLabels::Inbound(server.clone())));
        let mut copy = std::pin::pin!(tokio::io::copy_bidirectional(&mut io, &mut app));
        let outcome = loop {
            tokio::select! {
                r = &mut copy => break r.map_err(|e| e.to_string()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    if !matches!(check(&shared.policy()), Ok((Verdict::Allow, _))) {
                        metrics.tcp_authz_terminate(&server);
                        break Err("closed: the policy no longer authorizes this connection".into());
                    }
                }
            }
        };
        match outcome {
            Ok(bytes) => close(&mut event, bytes, None),
            Err(e) => close(&mut event, (0, 0), Some(e)),
        }
    }
}

/// A route's metric labels: Linkerd's own (`default`, `probe`) have no group.
fn route_label(route: Option<&Meta>) -> Route {
    match route {
        Some(r) if r.kind != "default" => Route::new("policy.linkerd.io", &r.kind, &r.name),
        Some(r) => Route::synthesized(&r.name),
        None => Route::synthesized("default"),
    }
}

/// `namespace/name` of a contract, for messages.
fn contract_name(c: Option<&Contract>) -> String {
    c.map_or_else(String::new, |c| format!("{}/{}", c.namespace, c.meta.name))
}
