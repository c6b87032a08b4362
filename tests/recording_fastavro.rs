//! Runs `tests/recording_fastavro.py`: fastavro, an independent Avro implementation, reads a
//! recording written by `tap::recording::Recorder` — every event, block by block as the
//! recorder flushed them — and the same recording cut inside its last block, as a killed
//! recorder leaves it.

mod python_support;

use meshlens::tap::recording::{FLUSH_EVENTS, Recorder, Recording};
use meshlens::tap::{Direction, Endpoint, Event, EventKind, Http, Tls};
use serde_json::json;

const T0: i64 = 1_767_225_600_000_000;

fn event(i: u64) -> Event {
    Event {
        stream: i,
        kind: if i.is_multiple_of(3) {
            EventKind::RequestStart
        } else {
            EventKind::ResponseEnd
        },
        time_us: T0 + i as i64 * 1_003,
        proxy: "shop/orders".into(),
        direction: Direction::Inbound,
        source: Endpoint {
            addr: format!("10.0.0.{}:4143", i % 200),
            identity: Some("web.shop.serviceaccount.identity.linkerd.cluster.local".into()),
            ..Endpoint::default()
        },
        destination: Endpoint::default(),
        tls: Tls {
            secured: true,
            reason: None,
        },
        http: Some(Http {
            protocol: "HTTP/2".into(),
            method: "GET".into(),
            path: format!("/v1/orders/{i}"),
            status: (!i.is_multiple_of(3)).then_some(200),
            latency_us: Some(i * 7),
            ..Http::default()
        }),
        tcp: None,
        decision: None,
        avro: Vec::new(),
        lost: 0,
    }
}

#[test]
fn fastavro_reads_a_recording_and_its_cut_off_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recording.avro");
    let mut recorder = Recorder::create(&path, false).unwrap();
    let events: Vec<Event> = (0..600).map(event).collect();
    for (i, e) in events.iter().enumerate() {
        recorder.push(e).unwrap();
        // A flush of a few events, as the one-second timer makes on a quiet mesh.
        if i == 9 {
            recorder.flush().unwrap();
        }
    }
    let stats = recorder.finish().unwrap();
    let per_block = [10, FLUSH_EVENTS, FLUSH_EVENTS, 600 - 10 - 2 * FLUSH_EVENTS];
    assert_eq!(stats.blocks, per_block.len() as u64);

    let bytes = std::fs::read(&path).unwrap();
    let last = *Recording::open(&path).unwrap().blocks().last().unwrap();
    let cut_at = (last.offset + last.len / 2) as usize;
    std::fs::write(dir.path().join("cut.avro"), &bytes[..cut_at]).unwrap();
    let cut = Recording::open(&dir.path().join("cut.avro")).unwrap();
    assert_eq!(cut.ignored_bytes(), cut_at as u64 - last.offset);

    let expected = json!({
        "streams": events.iter().map(|e| e.stream).collect::<Vec<_>>(),
        "times": events.iter().map(|e| e.time_us).collect::<Vec<_>>(),
        "paths": events.iter().map(|e| &e.http.as_ref().unwrap().path).collect::<Vec<_>>(),
        "per_block": per_block,
        "complete_in_cut": cut.events(),
    });
    std::fs::write(
        dir.path().join("expected.json"),
        serde_json::to_vec(&expected).unwrap(),
    )
    .unwrap();
    python_support::run_script(
        "recording_fastavro.py",
        &["--dir", dir.path().to_str().unwrap()],
    );
}
