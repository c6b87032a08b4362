//! The tap event's Avro binary encoding, written and read field by field in the schema's
//! order without building a generic `avro::Value` tree: streams, recordings and the model's
//! event log encode and decode millions of events, and the tree costs more than the bytes.
//! `codec`'s value mapping stays the reference; the tests hold the two against each other.

use crate::avro::decode::Cursor;
use crate::avro::encode::{write_bytes, write_long};
use crate::avro::{DecodeError, Limits};

use super::error::TapError;
use super::event::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, MessageSide, Tcp, TriedAuthz,
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
    let mut event = Event::lost(0, 0);
    decode_into(c, &mut event)?;
    Ok(event)
}

/// Decodes one event datum into `event`, reusing its strings and lists: a reader that folds
/// events one at a time (replaying a recording, filtering the log) allocates nothing once the
/// buffers have grown. On error `event` holds a mix of old and new fields.
pub fn decode_into(c: &mut Cursor<'_>, event: &mut Event) -> Result<(), TapError> {
    c.start_message();
    Ok(read_event(c, event)?)
}

fn read_event(c: &mut Cursor<'_>, e: &mut Event) -> Read<()> {
    e.stream = c.long()? as u64;
    e.kind = read_enum(c, &KINDS)?;
    e.time_us = c.long()?;
    read_str(c, &mut e.proxy)?;
    e.direction = read_enum(c, &[Direction::Inbound, Direction::Outbound])?;
    read_endpoint(c, &mut e.source)?;
    read_endpoint(c, &mut e.destination)?;
    e.tls.secured = c.boolean()?;
    read_opt_str(c, &mut e.tls.reason)?;
    read_opt(c, &mut e.http, Http::default, read_http)?;
    read_opt(c, &mut e.tcp, Tcp::default, read_tcp)?;
    read_opt(c, &mut e.decision, empty_decision, read_decision)?;
    read_array(c, &mut e.avro, Inspection::default, read_inspection)?;
    e.lost = c.long()? as u64;
    Ok(())
}

/// Decodes a whole buffer holding exactly one event.
pub fn decode_one(bytes: &[u8]) -> Result<Event, TapError> {
    let mut c = Cursor::new(bytes, &Limits::default());
    let event = decode(&mut c)?;
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

/// `["null", T]`'s branch, checked.
fn branch(c: &mut Cursor<'_>) -> Read<bool> {
    let at = c.position();
    match c.long()? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(DecodeError::new(
            at,
            format!("union branch {b} of [null, _]"),
        )),
    }
}

fn read_str(c: &mut Cursor<'_>, s: &mut String) -> Read<()> {
    let text = c.string()?;
    s.clear();
    s.push_str(text);
    Ok(())
}

/// Reads an optional record into `slot`, reusing what it held.
fn read_opt<T>(
    c: &mut Cursor<'_>,
    slot: &mut Option<T>,
    empty: impl FnOnce() -> T,
    read: impl FnOnce(&mut Cursor<'_>, &mut T) -> Read<()>,
) -> Read<()> {
    if branch(c)? {
        read(c, slot.get_or_insert_with(empty))
    } else {
        *slot = None;
        Ok(())
    }
}

fn read_opt_str(c: &mut Cursor<'_>, slot: &mut Option<String>) -> Read<()> {
    read_opt(c, slot, String::new, read_str)
}

fn read_opt_long(c: &mut Cursor<'_>) -> Read<Option<i64>> {
    Ok(if branch(c)? { Some(c.long()?) } else { None })
}

fn read_opt_int(c: &mut Cursor<'_>) -> Read<Option<u32>> {
    Ok(if branch(c)? {
        Some(c.int()? as u32)
    } else {
        None
    })
}

/// Reads an array into `items`, reusing the items it held.
fn read_array<T>(
    c: &mut Cursor<'_>,
    items: &mut Vec<T>,
    empty: impl Fn() -> T,
    read: impl Fn(&mut Cursor<'_>, &mut T) -> Read<()>,
) -> Read<()> {
    let mut n = 0;
    c.blocks(std::mem::size_of::<T>(), |c| {
        if n == items.len() {
            items.push(empty());
        }
        read(c, &mut items[n])?;
        n += 1;
        Ok(())
    })?;
    items.truncate(n);
    Ok(())
}

fn read_strings(c: &mut Cursor<'_>, items: &mut Vec<String>) -> Read<()> {
    read_array(c, items, String::new, read_str)
}

fn read_endpoint(c: &mut Cursor<'_>, e: &mut Endpoint) -> Read<()> {
    read_str(c, &mut e.addr)?;
    read_opt_str(c, &mut e.namespace)?;
    read_opt_str(c, &mut e.workload)?;
    read_opt_str(c, &mut e.identity)
}

fn read_http(c: &mut Cursor<'_>, h: &mut Http) -> Read<()> {
    read_str(c, &mut h.protocol)?;
    read_str(c, &mut h.method)?;
    read_str(c, &mut h.authority)?;
    read_str(c, &mut h.path)?;
    read_opt_str(c, &mut h.content_type)?;
    let at = c.position();
    h.status =
        if branch(c)? {
            let s = c.int()?;
            Some(u16::try_from(s).map_err(|_| {
                DecodeError::new(at, format!("status {s} is out of range 0..=65535"))
            })?)
        } else {
            None
        };
    h.grpc_status = read_opt_int(c)?;
    h.latency_us = read_opt_long(c)?.map(|l| l as u64);
    h.request_bytes = c.long()? as u64;
    h.response_bytes = c.long()? as u64;
    read_opt_str(c, &mut h.proxy_error)
}

fn read_tcp(c: &mut Cursor<'_>, t: &mut Tcp) -> Read<()> {
    t.bytes_in = c.long()? as u64;
    t.bytes_out = c.long()? as u64;
    t.duration_us = read_opt_long(c)?.map(|d| d as u64);
    read_opt_str(c, &mut t.error)
}

fn empty_decision() -> Decision {
    Decision {
        verdict: String::new(),
        server_kind: String::new(),
        server_name: String::new(),
        route_kind: None,
        route_name: None,
        authz_kind: None,
        authz_name: None,
        reason: String::new(),
        tried: Vec::new(),
    }
}

fn empty_tried() -> TriedAuthz {
    TriedAuthz {
        kind: String::new(),
        name: String::new(),
        matched: false,
        miss: None,
    }
}

fn read_decision(c: &mut Cursor<'_>, d: &mut Decision) -> Read<()> {
    read_str(c, &mut d.verdict)?;
    read_str(c, &mut d.server_kind)?;
    read_str(c, &mut d.server_name)?;
    read_opt_str(c, &mut d.route_kind)?;
    read_opt_str(c, &mut d.route_name)?;
    read_opt_str(c, &mut d.authz_kind)?;
    read_opt_str(c, &mut d.authz_name)?;
    read_str(c, &mut d.reason)?;
    read_array(c, &mut d.tried, empty_tried, |c, t| {
        read_str(c, &mut t.kind)?;
        read_str(c, &mut t.name)?;
        t.matched = c.boolean()?;
        read_opt_str(c, &mut t.miss)
    })
}

fn read_inspection(c: &mut Cursor<'_>, i: &mut Inspection) -> Read<()> {
    i.side = if branch(c)? {
        Some(read_enum(
            c,
            &[MessageSide::Request, MessageSide::Response],
        )?)
    } else {
        None
    };
    read_str(c, &mut i.framing)?;
    read_opt_str(c, &mut i.subject)?;
    i.version = read_opt_int(c)?;
    i.schema_id = read_opt_int(c)?;
    i.fingerprint = read_opt_long(c)?;
    read_opt_str(c, &mut i.contract)?;
    read_opt_str(c, &mut i.mode)?;
    i.valid = c.boolean()?;
    read_strings(c, &mut i.errors)?;
    read_opt_str(c, &mut i.drift)?;
    i.reader_version = read_opt_int(c)?;
    read_opt_str(c, &mut i.value_json)?;
    read_strings(c, &mut i.redacted)?;
    i.truncated = c.boolean()?;
    Ok(())
}

/// Steps over one event datum at the cursor, checking its structure but allocating
/// nothing, and returns its time: indexing a recording by time needs no more.
pub fn skim_time(c: &mut Cursor<'_>) -> Result<i64, TapError> {
    c.start_message();
    Ok(skim_event(c)?)
}

fn skip_str(c: &mut Cursor<'_>) -> Read<()> {
    c.bytes().map(drop)
}

fn skip_opt(c: &mut Cursor<'_>, skip: impl FnOnce(&mut Cursor<'_>) -> Read<()>) -> Read<()> {
    if branch(c)? { skip(c) } else { Ok(()) }
}

fn skip_opt_str(c: &mut Cursor<'_>) -> Read<()> {
    skip_opt(c, skip_str)
}

fn skip_opt_long(c: &mut Cursor<'_>) -> Read<()> {
    skip_opt(c, |c| c.long().map(drop))
}

fn skip_array(c: &mut Cursor<'_>, skip: impl Fn(&mut Cursor<'_>) -> Read<()>) -> Read<()> {
    c.blocks(0, |c| skip(c))
}

fn skim_event(c: &mut Cursor<'_>) -> Read<i64> {
    c.long()?;
    read_enum(c, &KINDS)?;
    let time_us = c.long()?;
    skip_str(c)?;
    read_enum(c, &[Direction::Inbound, Direction::Outbound])?;
    for _ in 0..2 {
        skip_str(c)?;
        (0..3).try_for_each(|_| skip_opt_str(c))?;
    }
    c.boolean()?;
    skip_opt_str(c)?;
    skip_opt(c, |c| {
        (0..4).try_for_each(|_| skip_str(c))?;
        skip_opt_str(c)?;
        (0..3).try_for_each(|_| skip_opt_long(c))?;
        c.long()?;
        c.long()?;
        skip_opt_str(c)
    })?;
    skip_opt(c, |c| {
        c.long()?;
        c.long()?;
        skip_opt_long(c)?;
        skip_opt_str(c)
    })?;
    skip_opt(c, |c| {
        (0..3).try_for_each(|_| skip_str(c))?;
        (0..4).try_for_each(|_| skip_opt_str(c))?;
        skip_str(c)?;
        skip_array(c, |c| {
            skip_str(c)?;
            skip_str(c)?;
            c.boolean()?;
            skip_opt_str(c)
        })
    })?;
    skip_array(c, |c| {
        skip_opt(c, |c| {
            read_enum(c, &[MessageSide::Request, MessageSide::Response]).map(drop)
        })?;
        skip_str(c)?;
        skip_opt_str(c)?;
        (0..3).try_for_each(|_| skip_opt_long(c))?;
        skip_opt_str(c)?;
        skip_opt_str(c)?;
        c.boolean()?;
        skip_array(c, skip_str)?;
        skip_opt_str(c)?;
        skip_opt_long(c)?;
        skip_opt_str(c)?;
        skip_array(c, skip_str)?;
        c.boolean().map(drop)
    })?;
    c.long()?;
    Ok(time_us)
}
