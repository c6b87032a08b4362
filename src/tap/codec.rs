//! `tap::Event` in Avro, with the schema `assets/schemas/tap-event.avsc`: the bytes of a tap
//! stream and of a recording, readable by any Avro tool.
//!
//! Each record's fields are listed by name next to the Rust field they come from, so the
//! tests can hold every record of the schema against the Rust type; Rust structs are
//! destructured without `..`, so a new Rust field does not compile until it is mapped here.
//! Unsigned integers keep their bits in the Avro type of their width (u32 → int, u64 → long),
//! so every value round-trips; u16 widens to int and is range-checked on the way back.

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use crate::avro::container::Block;
use crate::avro::decode::Cursor;
use crate::avro::{DecodeError, Decoder, Limits, Schema, Value};

use super::error::TapError;
use super::event::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, MessageSide, Tcp, Tls,
    TriedAuthz,
};

/// The schema's JSON text, as it goes into a container file header.
pub const SCHEMA_JSON: &str = include_str!("../../assets/schemas/tap-event.avsc");

static SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| {
    Arc::new(
        Schema::parse(SCHEMA_JSON)
            .expect("assets/schemas/tap-event.avsc is valid Avro; the tap codec tests parse it"),
    )
});

/// The parsed tap event schema, parsed once.
pub fn schema() -> &'static Arc<Schema> {
    &SCHEMA
}

/// Appends the Avro binary encoding of `event` to `out` (the direct writer in `wire`).
pub fn encode(event: &Event, out: &mut Vec<u8>) {
    super::wire::encode(event, out);
}

/// Decodes one datum written with this schema (the direct reader in `wire`).
pub fn decode(bytes: &[u8]) -> Result<Event, TapError> {
    super::wire::decode_one(bytes)
}

/// Reads the events of container blocks (a tap stream's or a recording's) written with a
/// given schema: field by field when it is this schema, through a resolving decoder when it
/// is another (a recording from another meshlens version).
pub struct BlockDecoder {
    resolving: Option<Decoder>,
}

impl BlockDecoder {
    pub fn new(writer: &Arc<Schema>) -> BlockDecoder {
        BlockDecoder {
            resolving: (**writer != **schema())
                .then(|| Decoder::new(writer.clone(), schema().clone())),
        }
    }

    /// The events of one block; its data must hold exactly `block.count` datums.
    pub fn events(&self, block: &Block<'_>) -> Result<Vec<Event>, TapError> {
        self.each(block, |c| match &self.resolving {
            None => super::wire::decode(c),
            Some(d) => from_value(&d.decode_next(c)?),
        })
    }

    /// Calls `f` with each event of one block in turn, decoding every one into the same
    /// buffers: a fold over a recording allocates nothing per event. When the block is in
    /// this schema, `f` also gets the event's datum as read, so a log can keep those bytes
    /// instead of encoding the event again.
    pub fn for_each(
        &self,
        block: &Block<'_>,
        mut f: impl FnMut(&Event, Option<&[u8]>),
    ) -> Result<(), TapError> {
        let mut event = Event::lost(0, 0);
        self.each(block, |c| {
            match &self.resolving {
                None => {
                    let start = c.position();
                    super::wire::decode_into(c, &mut event)?;
                    f(&event, Some(c.read_since(start)));
                }
                Some(d) => {
                    event = from_value(&d.decode_next(c)?)?;
                    f(&event, None);
                }
            }
            Ok(())
        })
        .map(drop)
    }

    /// Decodes one block's events into `events`, reusing the events (and their buffers)
    /// already there, and, when the block is in this schema, each event's datum as a range
    /// of the block's data into `datums` (cleared first). Returns how many events it holds;
    /// `events` may hold more, left over from a bigger block.
    pub fn decode_into(
        &self,
        block: &Block<'_>,
        events: &mut Vec<Event>,
        datums: &mut Vec<Range<usize>>,
    ) -> Result<usize, TapError> {
        datums.clear();
        let mut n = 0;
        self.each(block, |c| {
            if events.len() == n {
                events.push(Event::lost(0, 0));
            }
            let event = &mut events[n];
            match &self.resolving {
                None => {
                    let start = c.position();
                    super::wire::decode_into(c, event)?;
                    datums.push(start..c.position());
                }
                Some(d) => *event = from_value(&d.decode_next(c)?)?,
            }
            n += 1;
            Ok(())
        })?;
        Ok(n)
    }

    /// The times of one block's events, in order: what a recording's index needs, read
    /// without building the events when the block is in this schema.
    pub fn times(&self, block: &Block<'_>) -> Result<Vec<i64>, TapError> {
        self.each(block, |c| match &self.resolving {
            None => super::wire::skim_time(c),
            Some(d) => Ok(from_value(&d.decode_next(c)?)?.time_us),
        })
    }

    fn each<T>(
        &self,
        block: &Block<'_>,
        mut read: impl FnMut(&mut Cursor<'_>) -> Result<T, TapError>,
    ) -> Result<Vec<T>, TapError> {
        let data: &[u8] = &block.data;
        let mut c = Cursor::new(data, &Limits::default());
        let mut out = Vec::with_capacity(block.count.min(1 << 16) as usize);
        for _ in 0..block.count {
            out.push(read(&mut c)?);
        }
        if !c.is_empty() {
            return Err(DecodeError::new(
                c.position(),
                format!(
                    "block {}: {} bytes left after its {} events",
                    block.index,
                    data.len() - c.position(),
                    block.count
                ),
            )
            .into());
        }
        Ok(out)
    }
}

pub fn to_value(event: &Event) -> Value {
    record(event_fields(event))
}

type Fields<const N: usize> = [(&'static str, Value); N];

fn record<const N: usize>(fields: Fields<N>) -> Value {
    Value::Record(fields.into_iter().map(|(_, v)| v).collect())
}

fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

fn long(v: u64) -> Value {
    Value::Long(v as i64)
}

fn optional<T>(o: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    match o {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(f(v))),
    }
}

fn optional_string(o: &Option<String>) -> Value {
    optional(o.as_deref(), string)
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().map(|s| string(s)).collect())
}

fn event_fields(e: &Event) -> Fields<13> {
    let Event {
        stream,
        kind,
        time_us,
        proxy,
        direction,
        source,
        destination,
        tls,
        http,
        tcp,
        decision,
        avro,
        lost,
    } = e;
    [
        ("stream", long(*stream)),
        ("kind", Value::Enum(event_kind_index(*kind))),
        ("time_us", Value::Long(*time_us)),
        ("proxy", string(proxy)),
        (
            "direction",
            Value::Enum(match direction {
                Direction::Inbound => 0,
                Direction::Outbound => 1,
            }),
        ),
        ("source", record(endpoint_fields(source))),
        ("destination", record(endpoint_fields(destination))),
        ("tls", record(tls_fields(tls))),
        ("http", optional(http.as_ref(), |h| record(http_fields(h)))),
        ("tcp", optional(tcp.as_ref(), |t| record(tcp_fields(t)))),
        (
            "decision",
            optional(decision.as_ref(), |d| record(decision_fields(d))),
        ),
        (
            "avro",
            Value::Array(avro.iter().map(|i| record(inspection_fields(i))).collect()),
        ),
        ("lost", long(*lost)),
    ]
}

fn event_kind_index(kind: EventKind) -> u32 {
    match kind {
        EventKind::RequestStart => 0,
        EventKind::ResponseStart => 1,
        EventKind::ResponseEnd => 2,
        EventKind::TcpOpen => 3,
        EventKind::TcpClose => 4,
        EventKind::Lost => 5,
    }
}

/// The variants in the order of the schema's symbols, for reading an enum index back.
const EVENT_KINDS: [EventKind; 6] = [
    EventKind::RequestStart,
    EventKind::ResponseStart,
    EventKind::ResponseEnd,
    EventKind::TcpOpen,
    EventKind::TcpClose,
    EventKind::Lost,
];
const DIRECTIONS: [Direction; 2] = [Direction::Inbound, Direction::Outbound];
const MESSAGE_SIDES: [MessageSide; 2] = [MessageSide::Request, MessageSide::Response];

fn endpoint_fields(e: &Endpoint) -> Fields<4> {
    let Endpoint {
        addr,
        namespace,
        workload,
        identity,
    } = e;
    [
        ("addr", string(addr)),
        ("namespace", optional_string(namespace)),
        ("workload", optional_string(workload)),
        ("identity", optional_string(identity)),
    ]
}

fn tls_fields(t: &Tls) -> Fields<2> {
    let Tls { secured, reason } = t;
    [
        ("secured", Value::Boolean(*secured)),
        ("reason", optional_string(reason)),
    ]
}

fn http_fields(h: &Http) -> Fields<11> {
    let Http {
        protocol,
        method,
        authority,
        path,
        content_type,
        status,
        grpc_status,
        latency_us,
        request_bytes,
        response_bytes,
        proxy_error,
    } = h;
    [
        ("protocol", string(protocol)),
        ("method", string(method)),
        ("authority", string(authority)),
        ("path", string(path)),
        ("content_type", optional_string(content_type)),
        ("status", optional(*status, |s| Value::Int(i32::from(s)))),
        (
            "grpc_status",
            optional(*grpc_status, |s| Value::Int(s as i32)),
        ),
        ("latency_us", optional(*latency_us, long)),
        ("request_bytes", long(*request_bytes)),
        ("response_bytes", long(*response_bytes)),
        ("proxy_error", optional_string(proxy_error)),
    ]
}

fn tcp_fields(t: &Tcp) -> Fields<4> {
    let Tcp {
        bytes_in,
        bytes_out,
        duration_us,
        error,
    } = t;
    [
        ("bytes_in", long(*bytes_in)),
        ("bytes_out", long(*bytes_out)),
        ("duration_us", optional(*duration_us, long)),
        ("error", optional_string(error)),
    ]
}

fn decision_fields(d: &Decision) -> Fields<9> {
    let Decision {
        verdict,
        server_kind,
        server_name,
        route_kind,
        route_name,
        authz_kind,
        authz_name,
        reason,
        tried,
    } = d;
    [
        ("verdict", string(verdict)),
        ("server_kind", string(server_kind)),
        ("server_name", string(server_name)),
        ("route_kind", optional_string(route_kind)),
        ("route_name", optional_string(route_name)),
        ("authz_kind", optional_string(authz_kind)),
        ("authz_name", optional_string(authz_name)),
        ("reason", string(reason)),
        (
            "tried",
            Value::Array(tried.iter().map(|t| record(tried_fields(t))).collect()),
        ),
    ]
}

fn tried_fields(t: &TriedAuthz) -> Fields<4> {
    let TriedAuthz {
        kind,
        name,
        matched,
        miss,
    } = t;
    [
        ("kind", string(kind)),
        ("name", string(name)),
        ("matched", Value::Boolean(*matched)),
        ("miss", optional_string(miss)),
    ]
}

fn inspection_fields(i: &Inspection) -> Fields<15> {
    let Inspection {
        side,
        framing,
        subject,
        version,
        schema_id,
        fingerprint,
        contract,
        mode,
        valid,
        errors,
        drift,
        reader_version,
        value_json,
        redacted,
        truncated,
    } = i;
    let int = |v: u32| Value::Int(v as i32);
    [
        (
            "side",
            optional(*side, |s| {
                Value::Enum(match s {
                    MessageSide::Request => 0,
                    MessageSide::Response => 1,
                })
            }),
        ),
        ("framing", string(framing)),
        ("subject", optional_string(subject)),
        ("version", optional(*version, int)),
        ("schema_id", optional(*schema_id, int)),
        ("fingerprint", optional(*fingerprint, Value::Long)),
        ("contract", optional_string(contract)),
        ("mode", optional_string(mode)),
        ("valid", Value::Boolean(*valid)),
        ("errors", strings(errors)),
        ("drift", optional_string(drift)),
        ("reader_version", optional(*reader_version, int)),
        ("value_json", optional_string(value_json)),
        ("redacted", strings(redacted)),
        ("truncated", Value::Boolean(*truncated)),
    ]
}

// Reading back. Each reader says what it expected; `at` adds the field to the error's path
// on the way out, so nothing is formatted unless something is wrong.

type Read<T> = Result<T, TapError>;

fn at<T>(segment: &str, r: Read<T>) -> Read<T> {
    r.map_err(|e| e.within(segment))
}

fn expected<T>(what: &str, found: &Value) -> Read<T> {
    Err(TapError::shape(format!(
        "expected {what}, found {}",
        found.type_name()
    )))
}

fn fields<'v, const N: usize>(v: &'v Value, name: &str) -> Read<&'v [Value; N]> {
    match v {
        Value::Record(f) => f.as_slice().try_into().map_err(|_| {
            TapError::shape(format!("record {name} needs {N} fields, found {}", f.len()))
        }),
        other => expected(&format!("record {name}"), other),
    }
}

fn read_string(v: &Value) -> Read<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => expected("string", other),
    }
}

fn read_long(v: &Value) -> Read<i64> {
    match v {
        Value::Long(n) => Ok(*n),
        other => expected("long", other),
    }
}

fn read_u64(v: &Value) -> Read<u64> {
    read_long(v).map(|n| n as u64)
}

fn read_int(v: &Value) -> Read<i32> {
    match v {
        Value::Int(n) => Ok(*n),
        other => expected("int", other),
    }
}

fn read_u32(v: &Value) -> Read<u32> {
    read_int(v).map(|n| n as u32)
}

fn read_u16(v: &Value) -> Read<u16> {
    let n = read_int(v)?;
    u16::try_from(n).map_err(|_| TapError::shape(format!("{n} is out of range 0..=65535")))
}

fn read_bool(v: &Value) -> Read<bool> {
    match v {
        Value::Boolean(b) => Ok(*b),
        other => expected("boolean", other),
    }
}

fn read_enum<T: Copy>(v: &Value, variants: &[T]) -> Read<T> {
    match v {
        Value::Enum(i) => variants.get(*i as usize).copied().ok_or_else(|| {
            TapError::shape(format!(
                "enum index {i} is out of range (0..{})",
                variants.len()
            ))
        }),
        other => expected("enum", other),
    }
}

fn read_optional<T>(v: &Value, read: impl FnOnce(&Value) -> Read<T>) -> Read<Option<T>> {
    match v {
        Value::Union(0, inner) if **inner == Value::Null => Ok(None),
        Value::Union(1, inner) => read(inner).map(Some),
        other => expected("union [null, _] of branch 0 (null) or 1", other),
    }
}

fn read_optional_string(v: &Value) -> Read<Option<String>> {
    read_optional(v, read_string)
}

fn read_list<T>(v: &Value, read: impl Fn(&Value) -> Read<T>) -> Read<Vec<T>> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| read(item).map_err(|e| e.within(&format!("[{i}]"))))
            .collect(),
        other => expected("array", other),
    }
}

fn read_strings(v: &Value) -> Read<Vec<String>> {
    read_list(v, read_string)
}

/// The event a value of the tap event schema stands for; a value of any other shape is an
/// error naming where it differs.
pub fn from_value(value: &Value) -> Result<Event, TapError> {
    let [
        stream,
        kind,
        time_us,
        proxy,
        direction,
        source,
        destination,
        tls,
        http,
        tcp,
        decision,
        avro,
        lost,
    ] = fields(value, "Event")?;
    Ok(Event {
        stream: at(".stream", read_u64(stream))?,
        kind: at(".kind", read_enum(kind, &EVENT_KINDS))?,
        time_us: at(".time_us", read_long(time_us))?,
        proxy: at(".proxy", read_string(proxy))?,
        direction: at(".direction", read_enum(direction, &DIRECTIONS))?,
        source: at(".source", read_endpoint(source))?,
        destination: at(".destination", read_endpoint(destination))?,
        tls: at(".tls", read_tls(tls))?,
        http: at(".http", read_optional(http, read_http))?,
        tcp: at(".tcp", read_optional(tcp, read_tcp))?,
        decision: at(".decision", read_optional(decision, read_decision))?,
        avro: at(".avro", read_list(avro, read_inspection))?,
        lost: at(".lost", read_u64(lost))?,
    })
}

fn read_endpoint(v: &Value) -> Read<Endpoint> {
    let [addr, namespace, workload, identity] = fields(v, "Endpoint")?;
    Ok(Endpoint {
        addr: at(".addr", read_string(addr))?,
        namespace: at(".namespace", read_optional_string(namespace))?,
        workload: at(".workload", read_optional_string(workload))?,
        identity: at(".identity", read_optional_string(identity))?,
    })
}

fn read_tls(v: &Value) -> Read<Tls> {
    let [secured, reason] = fields(v, "Tls")?;
    Ok(Tls {
        secured: at(".secured", read_bool(secured))?,
        reason: at(".reason", read_optional_string(reason))?,
    })
}

fn read_http(v: &Value) -> Read<Http> {
    let [
        protocol,
        method,
        authority,
        path,
        content_type,
        status,
        grpc_status,
        latency_us,
        request_bytes,
        response_bytes,
        proxy_error,
    ] = fields(v, "Http")?;
    Ok(Http {
        protocol: at(".protocol", read_string(protocol))?,
        method: at(".method", read_string(method))?,
        authority: at(".authority", read_string(authority))?,
        path: at(".path", read_string(path))?,
        content_type: at(".content_type", read_optional_string(content_type))?,
        status: at(".status", read_optional(status, read_u16))?,
        grpc_status: at(".grpc_status", read_optional(grpc_status, read_u32))?,
        latency_us: at(".latency_us", read_optional(latency_us, read_u64))?,
        request_bytes: at(".request_bytes", read_u64(request_bytes))?,
        response_bytes: at(".response_bytes", read_u64(response_bytes))?,
        proxy_error: at(".proxy_error", read_optional_string(proxy_error))?,
    })
}

fn read_tcp(v: &Value) -> Read<Tcp> {
    let [bytes_in, bytes_out, duration_us, error] = fields(v, "Tcp")?;
    Ok(Tcp {
        bytes_in: at(".bytes_in", read_u64(bytes_in))?,
        bytes_out: at(".bytes_out", read_u64(bytes_out))?,
        duration_us: at(".duration_us", read_optional(duration_us, read_u64))?,
        error: at(".error", read_optional_string(error))?,
    })
}

fn read_decision(v: &Value) -> Read<Decision> {
    let [
        verdict,
        server_kind,
        server_name,
        route_kind,
        route_name,
        authz_kind,
        authz_name,
        reason,
        tried,
    ] = fields(v, "Decision")?;
    Ok(Decision {
        verdict: at(".verdict", read_string(verdict))?,
        server_kind: at(".server_kind", read_string(server_kind))?,
        server_name: at(".server_name", read_string(server_name))?,
        route_kind: at(".route_kind", read_optional_string(route_kind))?,
        route_name: at(".route_name", read_optional_string(route_name))?,
        authz_kind: at(".authz_kind", read_optional_string(authz_kind))?,
        authz_name: at(".authz_name", read_optional_string(authz_name))?,
        reason: at(".reason", read_string(reason))?,
        tried: at(".tried", read_list(tried, read_tried))?,
    })
}

fn read_tried(v: &Value) -> Read<TriedAuthz> {
    let [kind, name, matched, miss] = fields(v, "TriedAuthz")?;
    Ok(TriedAuthz {
        kind: at(".kind", read_string(kind))?,
        name: at(".name", read_string(name))?,
        matched: at(".matched", read_bool(matched))?,
        miss: at(".miss", read_optional_string(miss))?,
    })
}

fn read_inspection(v: &Value) -> Read<Inspection> {
    let [
        side,
        framing,
        subject,
        version,
        schema_id,
        fingerprint,
        contract,
        mode,
        valid,
        errors,
        drift,
        reader_version,
        value_json,
        redacted,
        truncated,
    ] = fields(v, "Inspection")?;
    Ok(Inspection {
        side: at(
            ".side",
            read_optional(side, |s| read_enum(s, &MESSAGE_SIDES)),
        )?,
        framing: at(".framing", read_string(framing))?,
        subject: at(".subject", read_optional_string(subject))?,
        version: at(".version", read_optional(version, read_u32))?,
        schema_id: at(".schema_id", read_optional(schema_id, read_u32))?,
        fingerprint: at(".fingerprint", read_optional(fingerprint, read_long))?,
        contract: at(".contract", read_optional_string(contract))?,
        mode: at(".mode", read_optional_string(mode))?,
        valid: at(".valid", read_bool(valid))?,
        errors: at(".errors", read_strings(errors))?,
        drift: at(".drift", read_optional_string(drift))?,
        reader_version: at(".reader_version", read_optional(reader_version, read_u32))?,
        value_json: at(".value_json", read_optional_string(value_json))?,
        redacted: at(".redacted", read_strings(redacted))?,
        truncated: at(".truncated", read_bool(truncated))?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::avro::schema::Kind;
    use crate::avro::{Codec, Container, ContainerFile, ContainerWriter, NodeId};

    fn s(path: &str) -> String {
        path.to_string()
    }

    fn some(path: &str) -> Option<String> {
        Some(s(path))
    }

    /// Every field set; each string holds its own path, so the tests can tell that the value
    /// under a schema field name came from the Rust field of that name.
    fn full() -> Event {
        let endpoint = |side: &str| Endpoint {
            addr: format!("{side}.addr"),
            namespace: Some(format!("{side}.namespace")),
            workload: Some(format!("{side}.workload")),
            identity: Some(format!("{side}.identity")),
        };
        let inspection = |i: usize, side| Inspection {
            side: Some(side),
            framing: format!("avro[{i}].framing"),
            subject: Some(format!("avro[{i}].subject")),
            version: Some(u32::MAX),
            schema_id: Some(7 + i as u32),
            fingerprint: Some(i64::MIN),
            contract: Some(format!("avro[{i}].contract")),
            mode: Some(format!("avro[{i}].mode")),
            valid: i == 0,
            errors: vec![
                format!("avro[{i}].errors[0]"),
                format!("avro[{i}].errors[1]"),
            ],
            drift: Some(format!("avro[{i}].drift")),
            reader_version: Some(3),
            value_json: Some(format!("avro[{i}].value_json")),
            redacted: vec![format!("avro[{i}].redacted[0]")],
            truncated: i == 1,
        };
        Event {
            stream: u64::MAX,
            kind: EventKind::ResponseEnd,
            time_us: 1_767_225_600_123_456,
            proxy: s("proxy"),
            direction: Direction::Outbound,
            source: endpoint("source"),
            destination: endpoint("destination"),
            tls: Tls {
                secured: true,
                reason: some("tls.reason"),
            },
            http: Some(Http {
                protocol: s("http.protocol"),
                method: s("http.method"),
                authority: s("http.authority"),
                path: s("http.path"),
                content_type: some("http.content_type"),
                status: Some(u16::MAX),
                grpc_status: Some(14),
                latency_us: Some(1 << 40),
                request_bytes: 1,
                response_bytes: 2,
                proxy_error: some("http.proxy_error"),
            }),
            tcp: Some(Tcp {
                bytes_in: 3,
                bytes_out: 4,
                duration_us: Some(5),
                error: some("tcp.error"),
            }),
            decision: Some(Decision {
                verdict: s("decision.verdict"),
                server_kind: s("decision.server_kind"),
                server_name: s("decision.server_name"),
                route_kind: some("decision.route_kind"),
                route_name: some("decision.route_name"),
                authz_kind: some("decision.authz_kind"),
                authz_name: some("decision.authz_name"),
                reason: s("decision.reason"),
                tried: vec![TriedAuthz {
                    kind: s("decision.tried[0].kind"),
                    name: s("decision.tried[0].name"),
                    matched: true,
                    miss: some("decision.tried[0].miss"),
                }],
            }),
            avro: vec![
                inspection(0, MessageSide::Request),
                inspection(1, MessageSide::Response),
            ],
            lost: 9,
        }
    }

    /// Every optional record present, everything inside it absent or empty.
    fn inner_none() -> Event {
        let mut e = Event::lost(0, -1);
        e.http = Some(Http::default());
        e.tcp = Some(Tcp::default());
        e.decision = Some(Decision {
            verdict: String::new(),
            server_kind: String::new(),
            server_name: String::new(),
            route_kind: None,
            route_name: None,
            authz_kind: None,
            authz_name: None,
            reason: String::new(),
            tried: vec![TriedAuthz {
                kind: String::new(),
                name: String::new(),
                matched: false,
                miss: None,
            }],
        });
        e.avro = vec![Inspection::default()];
        e
    }

    fn samples() -> [Event; 3] {
        [full(), Event::lost(42, 0), inner_none()]
    }

    #[test]
    fn events_round_trip_through_binary() {
        for event in samples() {
            let mut bytes = Vec::new();
            encode(&event, &mut bytes);
            assert_eq!(decode(&bytes).unwrap(), event);
            assert_eq!(from_value(&to_value(&event)).unwrap(), event);
        }
    }

    #[test]
    fn events_round_trip_through_a_container_file() {
        let writer = ContainerWriter::new(SCHEMA_JSON, Codec::Deflate).unwrap();
        let mut file = ContainerFile::new(Vec::new(), writer).unwrap();
        for event in samples() {
            file.append(&to_value(&event)).unwrap();
            let mut datum = Vec::new();
            encode(&event, &mut datum);
            file.append_encoded(&datum).unwrap();
            file.flush_block().unwrap();
        }
        let bytes = file.finish().unwrap();
        let c = Container::open(&bytes).unwrap();
        assert_eq!(**c.schema(), **schema());
        let d = Decoder::new(c.schema().clone(), schema().clone());
        let mut events = Vec::new();
        for block in c.blocks() {
            for v in c.records(&d, &block.unwrap()).unwrap() {
                events.push(from_value(&v).unwrap());
            }
        }
        let expected: Vec<Event> = samples().into_iter().flat_map(|e| [e.clone(), e]).collect();
        assert_eq!(events, expected);
    }

    /// The fields `to_value` writes for each record, by the record's full name.
    fn rust_records() -> HashMap<&'static str, Vec<&'static str>> {
        let e = full();
        let names = |f: &[(&'static str, Value)]| f.iter().map(|(n, _)| *n).collect();
        HashMap::from([
            ("meshlens.tap.Event", names(&event_fields(&e))),
            ("meshlens.tap.Endpoint", names(&endpoint_fields(&e.source))),
            ("meshlens.tap.Tls", names(&tls_fields(&e.tls))),
            (
                "meshlens.tap.Http",
                names(&http_fields(e.http.as_ref().unwrap())),
            ),
            (
                "meshlens.tap.Tcp",
                names(&tcp_fields(e.tcp.as_ref().unwrap())),
            ),
            (
                "meshlens.tap.Decision",
                names(&decision_fields(e.decision.as_ref().unwrap())),
            ),
            (
                "meshlens.tap.TriedAuthz",
                names(&tried_fields(&e.decision.as_ref().unwrap().tried[0])),
            ),
            (
                "meshlens.tap.Inspection",
                names(&inspection_fields(&e.avro[0])),
            ),
        ])
    }

    #[test]
    fn every_schema_record_has_the_fields_to_value_writes_in_its_order() {
        let mut rust = rust_records();
        for (_, node) in schema().nodes() {
            if let Kind::Record(r) = &node.kind {
                let fields: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
                let written = rust
                    .remove(r.name.full())
                    .unwrap_or_else(|| panic!("record {} has no Rust counterpart", r.name));
                assert_eq!(fields, written, "fields of {}", r.name);
            }
        }
        assert!(rust.is_empty(), "records missing from the schema: {rust:?}");
    }

    fn upper_snake(variant: impl std::fmt::Debug) -> String {
        let mut out = String::new();
        for (i, c) in format!("{variant:?}").chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }

    fn symbols(name: &str) -> Vec<String> {
        match schema().kind(schema().named(name).unwrap()) {
            Kind::Enum(e) => e.symbols.clone(),
            other => panic!("{name} is a {}", other.type_name()),
        }
    }

    #[test]
    fn enum_symbols_are_the_rust_variants_in_order() {
        assert_eq!(
            symbols("meshlens.tap.EventKind"),
            EVENT_KINDS.iter().map(upper_snake).collect::<Vec<_>>()
        );
        for (i, k) in EVENT_KINDS.iter().enumerate() {
            assert_eq!(event_kind_index(*k), i as u32);
        }
        assert_eq!(
            symbols("meshlens.tap.Direction"),
            DIRECTIONS.iter().map(upper_snake).collect::<Vec<_>>()
        );
        assert_eq!(
            symbols("meshlens.tap.MessageSide"),
            MESSAGE_SIDES.iter().map(upper_snake).collect::<Vec<_>>()
        );
        for (i, d) in DIRECTIONS.iter().enumerate() {
            let mut e = full();
            e.direction = *d;
            e.avro[0].side = Some(MESSAGE_SIDES[i]);
            let Value::Record(f) = to_value(&e) else {
                panic!()
            };
            assert_eq!(f[4], Value::Enum(i as u32));
            assert_eq!(from_value(&to_value(&e)).unwrap(), e);
        }
    }

    /// Collects the strings of a value with the schema path they sit at.
    fn strings_by_path(id: NodeId, v: &Value, path: String, out: &mut Vec<(String, String)>) {
        match (schema().kind(id), v) {
            (Kind::String, Value::String(s)) => out.push((path, s.clone())),
            (Kind::Record(r), Value::Record(values)) => {
                for (f, v) in r.fields.iter().zip(values) {
                    let p = if path.is_empty() {
                        f.name.clone()
                    } else {
                        format!("{path}.{}", f.name)
                    };
                    strings_by_path(f.schema, v, p, out);
                }
            }
            (Kind::Union(b), Value::Union(i, v)) => strings_by_path(b[*i as usize], v, path, out),
            (Kind::Array(items), Value::Array(values)) => {
                for (i, v) in values.iter().enumerate() {
                    strings_by_path(*items, v, format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_string_sits_under_the_schema_field_of_its_rust_field() {
        let mut found = Vec::new();
        strings_by_path(
            schema().root(),
            &to_value(&full()),
            String::new(),
            &mut found,
        );
        assert_eq!(found.len(), 46);
        for (path, value) in found {
            assert_eq!(path, value);
        }
    }

    #[test]
    fn the_wire_format_of_the_smallest_event_is_pinned() {
        // The smallest event, byte by byte, so a change in the wire format is a visible diff.
        let mut bytes = Vec::new();
        encode(&Event::lost(1, 2), &mut bytes);
        assert_eq!(
            bytes,
            [
                0x00, // stream 0
                0x0a, // kind LOST (5)
                0x04, // time_us 2
                0x00, // proxy ""
                0x00, // direction INBOUND
                0x00, 0x00, 0x00, 0x00, // source: addr "", three nulls
                0x00, 0x00, 0x00, 0x00, // destination
                0x00, 0x00, // tls: not secured, no reason
                0x00, 0x00, 0x00, // no http, tcp, decision
                0x00, // avro: []
                0x02, // lost 1
            ]
        );
    }

    /// Every position of the value tree in pre-order.
    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Record(f) | Value::Array(f) => f.iter().map(count).sum(),
            Value::Union(_, v) => count(v),
            _ => 0,
        }
    }

    fn replace(v: &mut Value, mut k: usize, with: &Value) -> usize {
        if k == 0 {
            *v = with.clone();
            return usize::MAX;
        }
        k -= 1;
        match v {
            Value::Record(f) | Value::Array(f) => {
                for item in f {
                    k = replace(item, k, with);
                    if k == usize::MAX {
                        return k;
                    }
                }
                k
            }
            Value::Union(_, inner) => replace(inner, k, with),
            _ => k,
        }
    }

    #[test]
    fn any_value_of_the_wrong_shape_is_an_error_never_a_panic() {
        let good = to_value(&full());
        let n = count(&good);
        for k in 0..n {
            for wrong in [Value::Bytes(vec![]), Value::Union(3, Box::new(Value::Null))] {
                let mut v = good.clone();
                replace(&mut v, k, &wrong);
                assert!(
                    from_value(&v).is_err(),
                    "position {k} replaced by {wrong:?}"
                );
            }
        }
        let mut v = good.clone();
        if let Value::Record(f) = &mut v
            && let Value::Union(_, http) = &mut f[8]
            && let Value::Record(h) = &mut **http
        {
            h[5] = Value::Union(1, Box::new(Value::Int(70_000)));
        }
        let err = from_value(&v).unwrap_err().to_string();
        assert_eq!(
            err,
            "tap event at .http.status: 70000 is out of range 0..=65535"
        );
        let err = from_value(&Value::Record(vec![])).unwrap_err().to_string();
        assert!(
            err.contains("record Event needs 13 fields, found 0"),
            "{err}"
        );
        let mut v = good.clone();
        if let Value::Record(f) = &mut v {
            f[12] = Value::Int(1);
            f[11] = Value::Array(vec![Value::Null]);
        }
        let err = from_value(&v).unwrap_err().to_string();
        assert!(
            err.contains("at .avro[0]: expected record Inspection, found null"),
            "{err}"
        );
    }

    fn generic_bytes(e: &Event) -> Vec<u8> {
        let mut out = Vec::new();
        crate::avro::encode(schema(), &to_value(e), &mut out).unwrap();
        out
    }

    #[test]
    fn the_direct_writer_and_reader_agree_with_the_value_mapping() {
        let decoder = Decoder::new(schema().clone(), schema().clone());
        let mut lost = Event::lost(u64::MAX, i64::MIN);
        lost.stream = 1 << 63;
        for e in samples().into_iter().chain([lost]) {
            let generic = generic_bytes(&e);
            let mut direct = Vec::new();
            encode(&e, &mut direct);
            assert_eq!(direct, generic, "{e:?}");
            assert_eq!(decode(&direct).unwrap(), e);
            assert_eq!(from_value(&decoder.decode(&direct).unwrap()).unwrap(), e);
        }
    }

    #[test]
    fn decoding_into_a_used_event_leaves_nothing_of_the_old_one() {
        let mut two = full();
        two.avro.truncate(1);
        two.decision.as_mut().unwrap().tried.clear();
        let events: Vec<Event> = samples().into_iter().chain([two]).collect();
        for a in &events {
            for b in &events {
                let mut bytes = Vec::new();
                encode(a, &mut bytes);
                encode(b, &mut bytes);
                let mut c = Cursor::new(&bytes, &Limits::default());
                let mut reused = Event::lost(0, 0);
                super::super::wire::decode_into(&mut c, &mut reused).unwrap();
                assert_eq!(&reused, a);
                super::super::wire::decode_into(&mut c, &mut reused).unwrap();
                assert_eq!(&reused, b);
            }
        }
    }

    #[test]
    fn arrays_written_in_several_sized_blocks_are_read() {
        // Other writers may split an array into blocks with a negative count and a size.
        let mut e = Event::lost(0, 0);
        e.avro = vec![Inspection::default(), Inspection::default()];
        let mut bytes = Vec::new();
        encode(&Event::lost(0, 0), &mut bytes);
        // The empty avro array is the byte before `lost`; one item's bytes sit between the
        // count and the end marker of a one-item array.
        let avro_at = bytes.len() - 2;
        let mut with_one = Event::lost(0, 0);
        with_one.avro = vec![Inspection::default()];
        let mut single = Vec::new();
        encode(&with_one, &mut single);
        let one = single[avro_at + 1..single.len() - 2].to_vec();
        let mut split = bytes[..avro_at].to_vec();
        for _ in 0..2 {
            crate::avro::encode::write_long(&mut split, -1);
            crate::avro::encode::write_long(&mut split, one.len() as i64);
            split.extend_from_slice(&one);
        }
        split.extend_from_slice(&bytes[avro_at..]);
        assert_eq!(decode(&split).unwrap(), e);
    }

    #[test]
    fn bytes_that_are_not_an_event_are_an_error() {
        let mut bytes = Vec::new();
        encode(&full(), &mut bytes);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        let err = decode(&[0x00, 0x0c]).unwrap_err().to_string();
        assert!(err.contains("enum index 6 is out of range"), "{err}");
        let mut extra = bytes.clone();
        extra.push(0);
        let err = decode(&extra).unwrap_err().to_string();
        assert!(err.contains("1 bytes left after the event"), "{err}");
        let mut status = Event::lost(0, 0);
        status.http = Some(Http::default());
        let mut v = to_value(&status);
        if let Value::Record(f) = &mut v
            && let Value::Union(_, http) = &mut f[8]
            && let Value::Record(h) = &mut **http
        {
            h[5] = Value::Union(1, Box::new(Value::Int(70_000)));
        }
        let mut wide = Vec::new();
        crate::avro::encode(schema(), &v, &mut wide).unwrap();
        let err = decode(&wide).unwrap_err().to_string();
        assert!(err.contains("status 70000 is out of range"), "{err}");
    }
}
