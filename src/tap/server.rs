//! The tap stream a proxy serves at `GET /tap?filters` on its admin port.
//!
//! Who may tap: a client that proved a mesh identity over mTLS (the admin port terminates
//! TLS when a connection starts with a ClientHello, and requires a client certificate from
//! the workload's trust anchors) and whose identity is on the proxy's `admin.tapAllow`
//! list — by default only the operator identity
//! `meshlens-operator.meshlens.serviceaccount.identity.<control-ns>.<trust-domain>`, as
//! Linkerd serves tap only to its own tap service. Where `admin.tapTokens` is configured, a
//! bearer token (an OIDC JWT) is accepted instead, over mTLS or plain HTTP: the token is
//! the credential, and the admin port is loopback unless the operator chose otherwise.
//! Without `tapTokens` a plain-HTTP request is refused, saying mTLS is required.
//!
//! What is sent: an Avro object container file of `tap::Event` (schema in the header, so any
//! Avro tool reads it; deflate unless `codec=null` is asked), in chunked transfer: the header
//! at once, then a block per batch — at 64 events, or 100 ms after the first event of a batch
//! — until the client goes away or the proxy stops. Payload values are already redacted per
//! contract when the proxy inspects them (`Inspection.value_json`), so the stream carries
//! nothing the inspector did not redact; this server adds no second redaction.
//!
//! A slow client does not slow the proxy: its subscriber's ring drops the oldest events and
//! the stream carries a `Lost` event saying how many, as does the rate limit of the filter.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body as HttpBody, Frame};
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::codec::{self, SCHEMA_JSON};
use super::event::{Event, EventKind, now_us};
use super::filter::{Filter, RateLimiter, query_pairs};
use super::publish::{Publisher, Subscriber};
use super::token::TokenVerifier;
use crate::avro::{Codec, ContainerWriter};

/// The media type of an Avro object container file.
pub const CONTENT_TYPE_AVRO: &str = "application/vnd.apache.avro.file";
/// Events per block at most.
pub const BATCH_EVENTS: usize = 64;
/// How long the first event of a batch waits for company before its block is sent.
pub const BATCH_WAIT: Duration = Duration::from_millis(100);
/// Blocks queued for a client before the stream stops taking events from the ring (which
/// then drops the oldest for this client alone).
const QUEUED_BLOCKS: usize = 4;

/// The operator's service account and namespace: `meshlens identity issue --sa
/// meshlens-operator --ns meshlens` issues its certificate.
pub const OPERATOR_SA: &str = "meshlens-operator";
pub const OPERATOR_NS: &str = "meshlens";

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

/// The identity allowed to tap when a proxy's config names none.
pub fn operator_identity(control_namespace: &str, trust_domain: &str) -> String {
    format!(
        "{OPERATOR_SA}.{OPERATOR_NS}.serviceaccount.identity.{control_namespace}.{trust_domain}"
    )
}

/// The connection a request came on, as the admin server puts it in the request's
/// extensions.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// Whether the connection is mTLS (a client certificate was verified).
    pub tls: bool,
    /// The client's identity (first SAN of its certificate).
    pub identity: Option<String>,
}

/// An entry of `admin.tapAllow`: an exact identity or `*.suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityPattern {
    Exact(String),
    /// Stored with its leading dot: `*.shop.serviceaccount...` matches anything ending in
    /// `.shop.serviceaccount...`.
    Suffix(String),
}

impl IdentityPattern {
    pub fn parse(text: &str) -> Result<IdentityPattern, String> {
        let bad = |why: &str| Err(format!("`{text}` {why}"));
        if text.is_empty() {
            return bad("is empty; give an identity or *.suffix");
        }
        if let Some(suffix) = text.strip_prefix('*') {
            if !suffix.starts_with('.') || suffix.len() < 2 || suffix[1..].contains('*') {
                return bad("is not an identity or *.suffix (a * stands only for leading labels)");
            }
            return Ok(IdentityPattern::Suffix(suffix.to_string()));
        }
        if text.contains('*') || text.contains(char::is_whitespace) {
            return bad("is not an identity or *.suffix");
        }
        Ok(IdentityPattern::Exact(text.to_string()))
    }

    pub fn matches(&self, identity: &str) -> bool {
        match self {
            IdentityPattern::Exact(e) => e == identity,
            IdentityPattern::Suffix(s) => {
                identity.len() > s.len() && identity.ends_with(s.as_str())
            }
        }
    }
}

impl fmt::Display for IdentityPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityPattern::Exact(e) => f.write_str(e),
            IdentityPattern::Suffix(s) => write!(f, "*{s}"),
        }
    }
}

/// Who may tap this proxy.
#[derive(Debug)]
pub struct Authorization {
    /// mTLS identities.
    pub allow: Vec<IdentityPattern>,
    /// Bearer tokens, when configured.
    pub tokens: Option<TokenVerifier>,
}

pub struct TapServer {
    publisher: Publisher,
    /// `namespace/name` of the workload, for messages and Lost notices.
    proxy: String,
    auth: Authorization,
    stop: watch::Receiver<bool>,
}

impl TapServer {
    /// `stop` ends every stream (cleanly, as a complete file) when it turns true.
    pub fn new(
        publisher: Publisher,
        proxy: String,
        auth: Authorization,
        stop: watch::Receiver<bool>,
    ) -> TapServer {
        TapServer {
            publisher,
            proxy,
            auth,
            stop,
        }
    }

    /// Answers one `/tap` request: an error in one line of text, or the stream.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body> {
        if req.method() != Method::GET {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("tap: {} is not allowed on /tap; use GET", req.method()),
            );
            r.headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("GET"));
            return r;
        }
        let peer = req.extensions().get::<Peer>().cloned();
        if let Err((status, message)) = self.authorize(peer.as_ref(), req.headers()) {
            let mut r = text(status, message);
            if status == StatusCode::UNAUTHORIZED {
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            return r;
        }
        let (filter, codec) = match parse_query(req.uri().query().unwrap_or("")) {
            Ok(v) => v,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("tap: {e}")),
        };
        let writer = match ContainerWriter::new(SCHEMA_JSON, codec) {
            Ok(w) => w,
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("tap: {e}")),
        };
        let (tx, rx) = mpsc::channel(QUEUED_BLOCKS);
        let stream = Stream {
            subscriber: self.publisher.subscribe(),
            limiter: filter.limiter(),
            filter,
            writer,
            tx,
            proxy: self.proxy.clone(),
            datums: Vec::new(),
            count: 0,
            rate_dropped: 0,
        };
        tokio::spawn(stream.run(self.stop.clone()));
        let mut r = Response::new(ChannelBody(rx).boxed());
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_AVRO));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    fn authorize(
        &self,
        peer: Option<&Peer>,
        headers: &hyper::HeaderMap,
    ) -> Result<(), (StatusCode, String)> {
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let forbidden = |m: String| Err((StatusCode::FORBIDDEN, m));
        if let Some(token) = bearer {
            let Some(tokens) = &self.auth.tokens else {
                return forbidden(format!(
                    "tap: bearer tokens are not accepted by {} (no admin.tapTokens); use mTLS with a client certificate from the mesh's trust anchors",
                    self.proxy
                ));
            };
            let principal = tokens
                .verify(token)
                .map_err(|e| (StatusCode::UNAUTHORIZED, format!("tap: {e}")))?;
            if tokens.allows(&principal) {
                return Ok(());
            }
            return forbidden(format!(
                "tap: {} may not tap {}; allowed: {}",
                principal.name(),
                self.proxy,
                tokens.allowed().join(", ")
            ));
        }
        let Some(Peer {
            tls: true,
            identity: Some(identity),
            ..
        }) = peer
        else {
            let or_token = if self.auth.tokens.is_some() {
                ", or send a bearer token"
            } else {
                ""
            };
            return forbidden(format!(
                "tap: mTLS is required to tap {}: connect over TLS with a client certificate from the mesh's trust anchors{or_token}",
                self.proxy
            ));
        };
        if self.auth.allow.iter().any(|p| p.matches(identity)) {
            return Ok(());
        }
        let allowed: Vec<String> = self.auth.allow.iter().map(|p| p.to_string()).collect();
        forbidden(format!(
            "tap: {identity} may not tap {}; allowed: {}",
            self.proxy,
            if allowed.is_empty() {
                "nobody".to_string()
            } else {
                allowed.join(", ")
            }
        ))
    }
}

/// The filter and the codec from the query (`codec` is the stream's, not a filter).
fn parse_query(query: &str) -> Result<(Filter, Codec), String> {
    let mut filter = Filter::default();
    let mut codec = Codec::Deflate;
    for (key, value) in query_pairs(query).map_err(|e| e.to_string())? {
        if key == "codec" {
            codec = match value.as_str() {
                "deflate" => Codec::Deflate,
                "null" => Codec::Null,
                other => {
                    return Err(format!(
                        "codec `{other}` is not offered; give deflate or null"
                    ));
                }
            };
            continue;
        }
        filter.set(&key, &value).map_err(|e| e.to_string())?;
    }
    Ok((filter, codec))
}

struct Stream {
    subscriber: Subscriber,
    filter: Filter,
    limiter: Option<RateLimiter>,
    writer: ContainerWriter,
    tx: mpsc::Sender<Bytes>,
    proxy: String,
    datums: Vec<u8>,
    count: usize,
    /// Events the rate limit held back since the last notice.
    rate_dropped: u64,
}

impl Stream {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        if self
            .tx
            .send(Bytes::from(self.writer.header()))
            .await
            .is_err()
        {
            return;
        }
        let mut deadline: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                self.flush().await;
                return;
            }
            tokio::select! {
                biased;
                () = self.tx.closed() => return,
                _ = stop.changed() => {
                    self.flush().await;
                    return;
                }
                () = sleep_until(deadline) => {
                    deadline = None;
                    if !self.flush().await {
                        return;
                    }
                }
                event = self.subscriber.recv() => {
                    let Some(event) = event else {
                        self.flush().await;
                        return;
                    };
                    if !self.take(&event) {
                        continue;
                    }
                    if self.count >= BATCH_EVENTS {
                        deadline = None;
                        if !self.flush().await {
                            return;
                        }
                    } else if deadline.is_none() {
                        deadline = Some(Instant::now() + BATCH_WAIT);
                    }
                }
            }
        }
    }

    /// Adds the event to the batch if the filter and rate allow; whether the batch changed
    /// or a loss is pending.
    fn take(&mut self, event: &Event) -> bool {
        if !self.filter.matches(event) {
            return false;
        }
        if event.kind == EventKind::Lost {
            let mut notice = event.clone();
            notice.proxy = self.proxy.clone();
            self.push(&notice);
            return true;
        }
        if let Some(l) = &mut self.limiter
            && !l.admit(std::time::Instant::now())
        {
            self.rate_dropped += 1;
            return true;
        }
        self.push(event);
        true
    }

    fn push(&mut self, event: &Event) {
        codec::encode(event, &mut self.datums);
        self.count += 1;
    }

    /// Sends what is batched (with a notice of rate-limited events); false once the client
    /// is gone.
    async fn flush(&mut self) -> bool {
        if self.rate_dropped > 0 {
            let mut notice = Event::lost(self.rate_dropped, now_us());
            notice.proxy = self.proxy.clone();
            self.push(&notice);
            self.rate_dropped = 0;
        }
        if self.count == 0 {
            return true;
        }
        let block = self.writer.block(&self.datums, self.count as u64);
        self.datums.clear();
        self.count = 0;
        match block {
            Ok(bytes) => self.tx.send(Bytes::from(bytes)).await.is_ok(),
            Err(e) => {
                tracing::warn!("tap: cannot write a block: {e}");
                false
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A response body fed by a channel; ends when the sender does.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    let body = http_body_util::Full::new(Bytes::from(message + "\n"))
        .map_err(|never| match never {})
        .boxed();
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::{Container, Decoder};

    const OP: &str = "meshlens-operator.meshlens.serviceaccount.identity.linkerd.cluster.local";

    fn server(allow: &[&str]) -> (TapServer, Publisher, watch::Sender<bool>) {
        let publisher = Publisher::new(1024);
        let (stop_tx, stop) = watch::channel(false);
        let auth = Authorization {
            allow: allow
                .iter()
                .map(|a| IdentityPattern::parse(a).unwrap())
                .collect(),
            tokens: None,
        };
        (
            TapServer::new(publisher.clone(), "shop/orders".into(), auth, stop),
            publisher,
            stop_tx,
        )
    }

    fn request(query: &str, identity: Option<&str>) -> Request<()> {
        let mut req = Request::get(format!("/tap?{query}")).body(()).unwrap();
        req.extensions_mut().insert(Peer {
            addr: "127.0.0.1:1".parse().unwrap(),
            tls: identity.is_some(),
            identity: identity.map(str::to_string),
        });
        req
    }

    async fn body_text(r: Response<Body>) -> (u16, String) {
        let status = r.status().as_u16();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[test]
    fn patterns_are_exact_or_suffixes() {
        let p = IdentityPattern::parse("*.meshlens.serviceaccount.identity.linkerd.cluster.local")
            .unwrap();
        assert!(p.matches(OP));
        assert!(!p.matches(".meshlens.serviceaccount.identity.linkerd.cluster.local"));
        assert!(!p.matches("web.shop.serviceaccount.identity.linkerd.cluster.local"));
        assert!(IdentityPattern::parse(OP).unwrap().matches(OP));
        for bad in ["", "*", "*x", "a.*.b", "*.a*"] {
            assert!(IdentityPattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(operator_identity("linkerd", "cluster.local"), OP);
    }

    #[tokio::test]
    async fn refusals_say_who_and_what_is_allowed() {
        let (s, _p, _stop) = server(&[OP, "*.ops.serviceaccount.identity.linkerd.cluster.local"]);
        let web = "web.shop.serviceaccount.identity.linkerd.cluster.local";
        assert_eq!(
            body_text(s.handle(request("", Some(web))).await).await,
            (
                403,
                format!(
                    "tap: {web} may not tap shop/orders; allowed: {OP}, *.ops.serviceaccount.identity.linkerd.cluster.local\n"
                )
            )
        );
        let (status, message) = body_text(s.handle(request("", None)).await).await;
        assert_eq!(status, 403);
        assert!(
            message.starts_with("tap: mTLS is required to tap shop/orders"),
            "{message}"
        );
        let mut bearer = request("", None);
        bearer
            .headers_mut()
            .insert(AUTHORIZATION, HeaderValue::from_static("Bearer x.y.z"));
        let (status, message) = body_text(s.handle(bearer).await).await;
        assert_eq!(status, 403);
        assert!(message.contains("no admin.tapTokens"), "{message}");
        assert_eq!(
            body_text(s.handle(request("status=9xx", Some(OP))).await).await,
            (400, "tap: filter `status`: `9xx` is not a status class; give 1xx, 2xx, 3xx, 4xx or 5xx\n".into())
        );
        assert_eq!(
            body_text(s.handle(request("codec=lz4", Some(OP))).await)
                .await
                .0,
            400
        );
    }

    #[tokio::test]
    async fn the_stream_is_a_container_of_the_filtered_events_and_ends_on_stop() {
        let (s, publisher, stop) = server(&[OP]);
        let r = s.handle(request("status=5xx&codec=null", Some(OP))).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[CONTENT_TYPE], CONTENT_TYPE_AVRO);
        // The subscription exists once the handler returned.
        for status in [200, 503, 404, 500] {
            let mut e = Event::lost(0, 1);
            e.kind = EventKind::ResponseStart;
            e.http = Some(crate::tap::Http {
                status: Some(status),
                ..Default::default()
            });
            publisher.publish(e);
        }
        tokio::time::sleep(BATCH_WAIT * 3).await;
        stop.send(true).unwrap();
        let bytes = tokio::time::timeout(Duration::from_secs(5), r.into_body().collect())
            .await
            .expect("the stream ends on stop")
            .unwrap()
            .to_bytes();
        let c = Container::open(&bytes).unwrap();
        assert_eq!(c.codec(), Codec::Null);
        let d = Decoder::new(c.schema().clone(), codec::schema().clone());
        let statuses: Vec<u16> = c
            .blocks()
            .flat_map(|b| c.records(&d, &b.unwrap()).unwrap())
            .map(|v| codec::from_value(&v).unwrap().http.unwrap().status.unwrap())
            .collect();
        assert_eq!(statuses, vec![503, 500]);
    }

    #[tokio::test]
    async fn the_rate_limit_turns_excess_into_a_lost_notice() {
        let (s, publisher, stop) = server(&[OP]);
        let r = s.handle(request("rate=1", Some(OP))).await;
        for _ in 0..5 {
            let mut e = Event::lost(0, 1);
            e.kind = EventKind::TcpOpen;
            publisher.publish(e);
        }
        tokio::time::sleep(BATCH_WAIT * 3).await;
        stop.send(true).unwrap();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        let c = Container::open(&bytes).unwrap();
        let d = Decoder::new(c.schema().clone(), codec::schema().clone());
        let events: Vec<Event> = c
            .blocks()
            .flat_map(|b| c.records(&d, &b.unwrap()).unwrap())
            .map(|v| codec::from_value(&v).unwrap())
            .collect();
        let kinds: Vec<(EventKind, u64, &str)> = events
            .iter()
            .map(|e| (e.kind, e.lost, e.proxy.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (EventKind::TcpOpen, 0, ""),
                (EventKind::Lost, 4, "shop/orders")
            ]
        );
    }
}
