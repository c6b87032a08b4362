//! Runs `tests/tap_fastavro.py`: fastavro, an independent Avro implementation, reads tap
//! events that meshlens wrote as a stream (header, then one block per message) and as a
//! recording file, and a stream cut in the middle of a block, as a killed process leaves it.

mod python_support;

use std::io::BufWriter;

use meshlens::avro::{Codec, Container, ContainerFile, ContainerWriter};
use meshlens::tap::codec::{self, SCHEMA_JSON};
use meshlens::tap::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, MessageSide, Tcp, Tls,
    TriedAuthz,
};
use serde_json::{Value as Json, json};

const KINDS: [EventKind; 6] = [
    EventKind::RequestStart,
    EventKind::ResponseStart,
    EventKind::ResponseEnd,
    EventKind::TcpOpen,
    EventKind::TcpClose,
    EventKind::Lost,
];

fn event(i: u64) -> Event {
    let opt = |on: bool, s: String| on.then_some(s);
    Event {
        stream: if i == 7 { u64::MAX } else { i },
        kind: KINDS[i as usize % KINDS.len()],
        time_us: 1_767_225_600_000_000 + i as i64 * 1_001,
        proxy: format!("shop/proxy-{i}"),
        direction: if i.is_multiple_of(2) {
            Direction::Inbound
        } else {
            Direction::Outbound
        },
        source: Endpoint {
            addr: format!("10.0.0.{i}:4143"),
            namespace: opt(i.is_multiple_of(2), "shop".into()),
            workload: opt(i.is_multiple_of(3), format!("web-{i}")),
            identity: opt(
                i % 2 == 1,
                format!("web-{i}.shop.serviceaccount.identity.linkerd.cluster.local"),
            ),
        },
        destination: Endpoint {
            addr: format!("10.0.1.{i}:8080"),
            ..Endpoint::default()
        },
        tls: Tls {
            secured: !i.is_multiple_of(3),
            reason: opt(i.is_multiple_of(3), "no_tls_from_remote".into()),
        },
        http: (i.is_multiple_of(2)).then(|| Http {
            protocol: "HTTP/2".into(),
            method: "POST".into(),
            authority: "orders.shop:8080".into(),
            path: format!("/orders/{i}"),
            content_type: Some("application/vnd.kafka.avro.v2+json".into()),
            status: (i.is_multiple_of(4)).then_some(200 + i as u16),
            grpc_status: None,
            latency_us: Some(i * 100),
            request_bytes: i * 10,
            response_bytes: i * 20,
            proxy_error: None,
        }),
        tcp: (i.is_multiple_of(3)).then(|| Tcp {
            bytes_in: i << 33,
            bytes_out: i,
            duration_us: Some(i + 1),
            error: None,
        }),
        decision: (i.is_multiple_of(4)).then(|| Decision {
            verdict: "allow".into(),
            server_kind: "server".into(),
            server_name: "orders-http".into(),
            route_kind: None,
            route_name: None,
            authz_kind: Some("authorizationpolicy".into()),
            authz_name: Some("orders-from-web".into()),
            reason: String::new(),
            tried: (0..i % 3)
                .map(|t| TriedAuthz {
                    kind: "authorizationpolicy".into(),
                    name: format!("policy-{t}"),
                    matched: t == 1,
                    miss: (t != 1).then(|| "identity not allowed".into()),
                })
                .collect(),
        }),
        avro: (0..i % 3)
            .map(|n| Inspection {
                side: Some(if n == 0 {
                    MessageSide::Request
                } else {
                    MessageSide::Response
                }),
                framing: "confluent".into(),
                schema_id: Some(n as u32 + 1),
                fingerprint: Some(-(i as i64)),
                valid: n == 0,
                errors: vec![format!("field .amount: {i}")],
                ..Inspection::default()
            })
            .collect(),
        lost: i * 3,
    }
}

fn symbol(variant: impl std::fmt::Debug) -> String {
    let mut out = String::new();
    for (i, c) in format!("{variant:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The fields the script checks, as fastavro should return them.
fn expected(e: &Event) -> Json {
    json!({
        "stream": e.stream as i64,
        "kind": symbol(e.kind),
        "time_us": e.time_us,
        "proxy": e.proxy,
        "direction": symbol(e.direction),
        "source_identity": e.source.identity,
        "destination_namespace": e.destination.namespace,
        "tls_reason": e.tls.reason,
        "http_status": e.http.as_ref().and_then(|h| h.status),
        "http_path": e.http.as_ref().map(|h| &h.path),
        "tcp_bytes_in": e.tcp.as_ref().map(|t| t.bytes_in),
        "tried": e.decision.as_ref().map(|d| d.tried.iter().map(|t| &t.name).collect::<Vec<_>>()),
        "avro_sides": e.avro.iter().map(|a| a.side.map(symbol)).collect::<Vec<_>>(),
        "avro_fingerprints": e.avro.iter().map(|a| a.fingerprint).collect::<Vec<_>>(),
        "lost": e.lost,
    })
}

#[test]
fn fastavro_reads_the_tap_events_meshlens_writes() {
    let dir = tempfile::tempdir().unwrap();
    eprintln!("DIR {}", dir.path().display());
    let dir = Box::leak(Box::new(dir));
    let events: Vec<Event> = (0..45).map(event).collect();

    // A stream: the header once, then a block of ten events at a time.
    let writer = ContainerWriter::new(SCHEMA_JSON, Codec::Deflate).unwrap();
    let mut stream = writer.header();
    let mut block_ends = Vec::new();
    for chunk in events.chunks(10) {
        let mut datums = Vec::new();
        for e in chunk {
            codec::encode(e, &mut datums);
        }
        stream.extend(writer.block(&datums, chunk.len() as u64).unwrap());
        block_ends.push(stream.len());
    }
    std::fs::write(dir.path().join("stream.avro"), &stream).unwrap();

    // A recording: the same events appended to a file.
    let file = std::fs::File::create(dir.path().join("recording.avro")).unwrap();
    let writer = ContainerWriter::new(SCHEMA_JSON, Codec::Deflate).unwrap();
    let mut recording = ContainerFile::new(BufWriter::new(file), writer).unwrap();
    for e in &events {
        recording.append(&codec::to_value(e)).unwrap();
    }
    recording.finish().unwrap();

    // The stream cut halfway through its last block.
    let cut_at = (block_ends[3] + block_ends[4]) / 2;
    let cut = &stream[..cut_at];
    let (container, cut_bytes) = Container::open_complete(cut).unwrap();
    assert_eq!(cut_bytes, cut_at - block_ends[3]);
    assert_eq!(container.blocks().count(), 4);
    std::fs::write(dir.path().join("cut.avro"), cut).unwrap();

    let expected = json!({
        "events": events.iter().map(expected).collect::<Vec<_>>(),
        "complete_in_cut": 40,
    });
    std::fs::write(
        dir.path().join("expected.json"),
        serde_json::to_vec_pretty(&expected).unwrap(),
    )
    .unwrap();
    python_support::run_script("tap_fastavro.py", &["--dir", dir.path().to_str().unwrap()]);
}
