//! The tap event's Avro binary encoding, written and read field by field in the schema's
//! order without building a generic `avro::Value` tree: streams, recordings and the model's
//! event log encode and decode millions of events, and the tree costs more than the bytes.
//! `codec`'s value mapping stays the reference; the tests hold the two against each other.

use crate::avro::decode::Cursor;
use crate::avro::encode::{write_bytes, write_long};
use crate::avro::{DecodeError, Limits};

use super::error::TapError;
use super::event::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, MessageSide, Tcp, Tls,
    TriedAuthz,
};

/// Appends the Avro binary encoding of `event` (the tap event schema) to `out`.
pub fn encode(e: &Event, out: &mut Vec<u8>) {
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
    write_long(out, *stream as i64);
    write_long(out, kind_index(*kind));
    write_long(out, *time_us);
    write_str(out, proxy);
    write_long(
        out,
        match direction {
            Direction::Inbound => 0,
            Direction::Outbound => 1,
        },
    );
    write_endpoint(out, source);
    write_endpoint(out, destination);
    out.push(u8::from(tls.secured));
    write_opt_str(out, &tls.reason);
    write_opt(out, http.as_ref(), write_http);
    write_opt(out, tcp.as_ref(), write_tcp);
    write_opt(out, decision.as_ref(), write_decision);
    write_array(out, avro, write_inspection);
    write_long(out, *lost as i64);
}

/// Decodes one event datum at the cursor, leaving the cursor after it.
pub fn decode(c: &mut Cursor<'_>) -> Result<Event, TapError> {
    c.start_message();
    Ok(read_event(c)?)
}

fn read_event(c: &mut Cursor<'_>) -> Read<Event> {
    Ok(Event {
        stream: c.long()? as u64,
        kind: read_enum(c, &KINDS)?,
        time_us: c.long()?,
        proxy: c.string()?.to_owned(),
        direction: read_enum(c, &[Direction::Inbound, Direction::Outbound])?,
        source: read_endpoint(c)?,
        destination: read_endpoint(c)?,
        tls: Tls {
            secured: c.boolean()?,
            reason: read_opt_str(c)?,
        },
        http: read_opt(c, read_http)?,
        tcp: read_opt(c, read_tcp)?,
        decision: read_opt(c, read_decision)?,
        avro: read_array(c, read_inspection)?,
        lost: c.long()? as u64,
    })
}

/// Decodes a whole buffer holding exactly one event.
pub fn decode_one(bytes: &[u8]) -> Result<Event, TapError> {
    let mut c = Cursor::new(bytes, &Limits::default());
    let event = read_event(&mut c)?;
    if !c.is_empty() {
        return Err(DecodeError::new(
            c.position(),
            format!("{} bytes left after the event", bytes.len() - c.position()),
        )
        .into());
    }
    Ok(event)
}

const KINDS: [EventKind; 6] = [
    EventKind::RequestStart,
    EventKind::ResponseStart,
    EventKind::ResponseEnd,
    EventKind::TcpOpen,
    EventKind::TcpClose,
    EventKind::Lost,
];

fn kind_index(kind: EventKind) -> i64 {
    match kind {
        EventKind::RequestStart => 0,
        EventKind::ResponseStart => 1,
        EventKind::ResponseEnd => 2,
        EventKind::TcpOpen => 3,
        EventKind::TcpClose => 4,
        EventKind::Lost => 5,
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_bytes(out, s.as_bytes());
}

/// `["null", T]`: branch 0 for none, 1 then the value.
fn write_opt<T: ?Sized>(out: &mut Vec<u8>, v: Option<&T>, write: impl FnOnce(&mut Vec<u8>, &T)) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(2);
            write(out, v);
        }
    }
}

fn write_opt_str(out: &mut Vec<u8>, v: &Option<String>) {
    write_opt(out, v.as_deref(), |out, s: &str| write_str(out, s));
}

fn write_opt_long(out: &mut Vec<u8>, v: Option<i64>) {
    write_opt(out, v.as_ref(), |out, n| write_long(out, *n));
}

/// One block holding every item, then the empty block that ends the array.
fn write_array<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&mut Vec<u8>, &T)) {
    if !items.is_empty() {
        write_long(out, items.len() as i64);
        items.iter().for_each(|item| write(out, item));
    }
    out.push(0);
}

fn write_endpoint(out: &mut Vec<u8>, e: &Endpoint) {
    let Endpoint {
        addr,
        namespace,
        workload,
        identity,
    } = e;
    write_str(out, addr);
    write_opt_str(out, namespace);
    write_opt_str(out, workload);
    write_opt_str(out, identity);
}

fn write_http(out: &mut Vec<u8>, h: &Http) {
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
    write_str(out, protocol);
    write_str(out, method);
    write_str(out, authority);
    write_str(out, path);
    write_opt_str(out, content_type);
    write_opt_long(out, status.map(i64::from));
    write_opt_long(out, grpc_status.map(|g| i64::from(g as i32)));
    write_opt_long(out, latency_us.map(|l| l as i64));
    write_long(out, *request_bytes as i64);
    write_long(out, *response_bytes as i64);
    write_opt_str(out, proxy_error);
}

fn write_tcp(out: &mut Vec<u8>, t: &Tcp) {
    let Tcp {
        bytes_in,
        bytes_out,
        duration_us,
        error,
    } = t;
    write_long(out, *bytes_in as i64);
    write_long(out, *bytes_out as i64);
    write_opt_long(out, duration_us.map(|d| d as i64));
    write_opt_str(out, error);
}

fn write_decision(out: &mut Vec<u8>, d: &Decision) {
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
    write_str(out, verdict);
    write_str(out, server_kind);
    write_str(out, server_name);
    write_opt_str(out, route_kind);
    write_opt_str(out, route_name);
    write_opt_str(out, authz_kind);
    write_opt_str(out, authz_name);
    write_str(out, reason);
    write_array(out, tried, |out, t| {
        let TriedAuthz {
            kind,
            name,
            matched,
            miss,
        } = t;
        write_str(out, kind);
        write_str(out, name);
        out.push(u8::from(*matched));
        write_opt_str(out, miss);
    });
}

fn write_inspection(out: &mut Vec<u8>, i: &Inspection) {
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
    write_opt_long(
        out,
        side.map(|s| match s {
            MessageSide::Request => 0,
            MessageSide::Response => 1,
        }),
    );
    write_str(out, framing);
    write_opt_str(out, subject);
    write_opt_long(out, version.map(|v| i64::from(v as i32)));
    write_opt_long(out, schema_id.map(|v| i64::from(v as i32)));
    write_opt_long(out, *fingerprint);
    write_opt_str(out, contract);
    write_opt_str(out, mode);
    out.push(u8::from(*valid));
    write_array(out, errors, |out, s| write_str(out, s));
    write_opt_str(out, drift);
    write_opt_long(out, reader_version.map(|v| i64::from(v as i32)));
    write_opt_str(out, value_json);
    write_array(out, redacted, |out, s| write_str(out, s));
    out.push(u8::from(*truncated));
}

type Read<T> = Result<T, DecodeError>;

fn read_enum<T: Copy>(c: &mut Cursor<'_>, variants: &[T]) -> Read<T> {
    let at = c.position();
    let i = c.long()?;
    usize::try_from(i)
        .ok()
        .and_then(|i| variants.get(i).copied())
        .ok_or_else(|| {
            DecodeError::new(
                at,
                format!("enum index {i} is out of range (0..{})", variants.len()),
            )
        })
}

fn read_opt<T>(
    c: &mut Cursor<'_>,
    read: impl FnOnce(&mut Cursor<'_>) -> Read<T>,
) -> Read<Option<T>> {
    let at = c.position();
    match c.long()? {
        0 => Ok(None),
        1 => read(c).map(Some),
        b => Err(DecodeError::new(
            at,
            format!("union branch {b} of [null, _]"),
        )),
    }
}

fn read_opt_str(c: &mut Cursor<'_>) -> Read<Option<String>> {
    read_opt(c, |c| Ok(c.string()?.to_owned()))
}

fn read_opt_long(c: &mut Cursor<'_>) -> Read<Option<i64>> {
    read_opt(c, |c| c.long())
}

fn read_opt_int(c: &mut Cursor<'_>) -> Read<Option<u32>> {
    read_opt(c, |c| Ok(c.int()? as u32))
}

fn read_array<T>(c: &mut Cursor<'_>, read: impl Fn(&mut Cursor<'_>) -> Read<T>) -> Read<Vec<T>> {
    let mut items = Vec::new();
    c.blocks(std::mem::size_of::<T>(), |c| {
        items.push(read(c)?);
        Ok(())
    })?;
    Ok(items)
}

fn read_strings(c: &mut Cursor<'_>) -> Read<Vec<String>> {
    read_array(c, |c| Ok(c.string()?.to_owned()))
}

fn read_endpoint(c: &mut Cursor<'_>) -> Read<Endpoint> {
    Ok(Endpoint {
        addr: c.string()?.to_owned(),
        namespace: read_opt_str(c)?,
        workload: read_opt_str(c)?,
        identity: read_opt_str(c)?,
    })
}

fn read_http(c: &mut Cursor<'_>) -> Read<Http> {
    Ok(Http {
        protocol: c.string()?.to_owned(),
        method: c.string()?.to_owned(),
        authority: c.string()?.to_owned(),
        path: c.string()?.to_owned(),
        content_type: read_opt_str(c)?,
        status: {
            let at = c.position();
            read_opt(c, |c| c.int())?
                .map(|s| {
                    u16::try_from(s).map_err(|_| {
                        DecodeError::new(at, format!("status {s} is out of range 0..=65535"))
                    })
                })
                .transpose()?
        },
        grpc_status: read_opt_int(c)?,
        latency_us: read_opt_long(c)?.map(|l| l as u64),
        request_bytes: c.long()? as u64,
        response_bytes: c.long()? as u64,
        proxy_error: read_opt_str(c)?,
    })
}

fn read_tcp(c: &mut Cursor<'_>) -> Read<Tcp> {
    Ok(Tcp {
        bytes_in: c.long()? as u64,
        bytes_out: c.long()? as u64,
        duration_us: read_opt_long(c)?.map(|d| d as u64),
        error: read_opt_str(c)?,
    })
}

fn read_decision(c: &mut Cursor<'_>) -> Read<Decision> {
    Ok(Decision {
        verdict: c.string()?.to_owned(),
        server_kind: c.string()?.to_owned(),
        server_name: c.string()?.to_owned(),
        route_kind: read_opt_str(c)?,
        route_name: read_opt_str(c)?,
        authz_kind: read_opt_str(c)?,
        authz_name: read_opt_str(c)?,
        reason: c.string()?.to_owned(),
        tried: read_array(c, |c| {
            Ok(TriedAuthz {
                kind: c.string()?.to_owned(),
                name: c.string()?.to_owned(),
                matched: c.boolean()?,
                miss: read_opt_str(c)?,
            })
        })?,
    })
}

fn read_inspection(c: &mut Cursor<'_>) -> Read<Inspection> {
    Ok(Inspection {
        side: read_opt(c, |c| {
            read_enum(c, &[MessageSide::Request, MessageSide::Response])
        })?,
        framing: c.string()?.to_owned(),
        subject: read_opt_str(c)?,
        version: read_opt_int(c)?,
        schema_id: read_opt_int(c)?,
        fingerprint: read_opt_long(c)?,
        contract: read_opt_str(c)?,
        mode: read_opt_str(c)?,
        valid: c.boolean()?,
        errors: read_strings(c)?,
        drift: read_opt_str(c)?,
        reader_version: read_opt_int(c)?,
        value_json: read_opt_str(c)?,
        redacted: read_strings(c)?,
        truncated: c.boolean()?,
    })
}
