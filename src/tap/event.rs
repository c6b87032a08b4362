//! `tap::Event`: one thing a proxy saw. A request yields three events (request start,
//! response start, response end) correlated by `stream`; an opaque TCP connection yields
//! open and close. Its Avro schema is `assets/schemas/tap-event.avsc`.

/// Which side of the workload the proxy that saw the event sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    RequestStart,
    ResponseStart,
    ResponseEnd,
    TcpOpen,
    TcpClose,
    /// A slow subscriber missed `lost` events just before this one.
    Lost,
}

/// One end of a connection: its socket address and, when known, the workload and identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: String,
    pub namespace: Option<String>,
    pub workload: Option<String>,
    /// The mTLS identity (`<sa>.<ns>.serviceaccount.identity...`), `None` when not proven.
    pub identity: Option<String>,
}

/// How the hop between the proxies was secured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// mTLS with both identities proven.
    pub secured: bool,
    /// Linkerd's `no_tls_reason` when not secured (`no_tls_from_remote`, `loopback`,
    /// `not_provided_by_service_discovery`, ...).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Http {
    /// `HTTP/1.1`, `HTTP/2` or `gRPC`.
    pub protocol: String,
    pub method: String,
    pub authority: String,
    pub path: String,
    pub content_type: Option<String>,
    /// Set from response start on.
    pub status: Option<u16>,
    pub grpc_status: Option<u32>,
    /// Response start: time to the response head; response end: time to its last byte.
    pub latency_us: Option<u64>,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// The proxy's own error (`l5d-proxy-error`) when it answered instead of the app.
    pub proxy_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tcp {
    /// Bytes from the client (read by the proxy) and to it (written by the proxy).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Set on close.
    pub duration_us: Option<u64>,
    pub error: Option<String>,
}

/// One authorization the policy engine tried, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriedAuthz {
    pub kind: String,
    pub name: String,
    pub matched: bool,
    /// Why it did not match.
    pub miss: Option<String>,
}

/// The inbound policy decision, named as Linkerd's metrics name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `allow`, `deny` or `no_route`.
    pub verdict: String,
    pub server_kind: String,
    pub server_name: String,
    pub route_kind: Option<String>,
    pub route_name: Option<String>,
    pub authz_kind: Option<String>,
    pub authz_name: Option<String>,
    pub reason: String,
    pub tried: Vec<TriedAuthz>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageSide {
    Request,
    Response,
}

/// What the proxy found in an Avro body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    pub side: Option<MessageSide>,
    /// `confluent`, `single-object`, `container`, ... (`avro::Framing`'s names).
    pub framing: String,
    pub subject: Option<String>,
    pub version: Option<u32>,
    pub schema_id: Option<u32>,
    pub fingerprint: Option<i64>,
    /// The contract that applied (`namespace/name`) and its mode (`enforce`/`audit`).
    pub contract: Option<String>,
    pub mode: Option<String>,
    /// Decoded and conforming to the contract (if any).
    pub valid: bool,
    /// What was wrong, each naming the field or byte offset.
    pub errors: Vec<String>,
    /// `same`, `compatible`, `incompatible` or `unregistered`, against the consumer's reader.
    pub drift: Option<String>,
    pub reader_version: Option<u32>,
    /// The decoded value as Avro JSON, redacted per contract; `None` when it did not decode.
    pub value_json: Option<String>,
    /// Field paths whose values were replaced.
    pub redacted: Vec<String>,
    /// Only the first bytes were inspected (audit copies are bounded).
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Correlates the events of one request or connection; unique per proxy process.
    pub stream: u64,
    pub kind: EventKind,
    /// Unix time in microseconds.
    pub time_us: i64,
    /// The workload whose proxy saw this (`namespace/name`).
    pub proxy: String,
    pub direction: Direction,
    pub source: Endpoint,
    pub destination: Endpoint,
    pub tls: Tls,
    pub http: Option<Http>,
    pub tcp: Option<Tcp>,
    /// Inbound only; absent on outbound events.
    pub decision: Option<Decision>,
    pub avro: Vec<Inspection>,
    /// For `Lost`: how many events the subscriber missed.
    pub lost: u64,
}

impl Event {
    /// A notice that `lost` events were dropped for a slow subscriber.
    pub fn lost(lost: u64, time_us: i64) -> Event {
        Event {
            stream: 0,
            kind: EventKind::Lost,
            time_us,
            proxy: String::new(),
            direction: Direction::Inbound,
            source: Endpoint::default(),
            destination: Endpoint::default(),
            tls: Tls::default(),
            http: None,
            tcp: None,
            decision: None,
            avro: Vec::new(),
            lost,
        }
    }
}

/// The current Unix time in microseconds.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
