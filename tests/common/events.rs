//! Synthetic tap events for the UI tests, the frame bench and the scale example: one
//! ordinary request that each caller bends to the case it is about, so no test repeats the
//! whole `Event` literal.
#![allow(dead_code)] // each including crate uses a different subset

use meshlens::tap::{Decision, Direction, Endpoint, Event, EventKind, Http, Tls};

/// 2025-11-24 in µs: a multiple of every bucket width the model uses.
pub const T0: i64 = 1_764_000_000_000_000;

/// A meshed workload with a Linkerd identity; `n` makes its pod address unique.
pub fn workload(name: &str, ns: &str, n: u32) -> Endpoint {
    Endpoint {
        addr: format!("10.{}.{}.{}:8080", n >> 16, (n >> 8) & 255, n & 255),
        namespace: Some(ns.into()),
        workload: Some(name.into()),
        identity: Some(format!(
            "{name}.{ns}.serviceaccount.identity.linkerd.cluster.local"
        )),
    }
}

/// The response end of an allowed `POST /` from `client` to `server` over mTLS, answered
/// 200 in 2.5 ms, as the server's inbound proxy reports it.
pub fn response_end(stream: u64, time_us: i64, client: &Endpoint, server: &Endpoint) -> Event {
    let name = server.workload.as_deref().unwrap_or("server");
    Event {
        stream,
        kind: EventKind::ResponseEnd,
        time_us,
        proxy: format!("{}/{name}", server.namespace.as_deref().unwrap_or_default()),
        direction: Direction::Inbound,
        source: client.clone(),
        destination: server.clone(),
        tls: Tls {
            secured: true,
            reason: None,
        },
        http: Some(Http {
            protocol: "HTTP/1.1".into(),
            method: "POST".into(),
            authority: format!("{name}:8080"),
            path: "/".into(),
            status: Some(200),
            latency_us: Some(2_500),
            ..Http::default()
        }),
        tcp: None,
        decision: Some(Decision {
            verdict: "allow".into(),
            server_kind: "server".into(),
            server_name: format!("{name}-http"),
            route_kind: None,
            route_name: None,
            authz_kind: None,
            authz_name: None,
            reason: "authorized".into(),
            tried: Vec::new(),
        }),
        avro: Vec::new(),
        lost: 0,
    }
}

/// The HTTP part of an event built by [`response_end`].
pub fn http(e: &mut Event) -> &mut Http {
    e.http.as_mut().expect("built with HTTP")
}

/// The decision of an event built by [`response_end`].
pub fn decision(e: &mut Event) -> &mut Decision {
    e.decision.as_mut().expect("built with a decision")
}

/// Turns the request into a denial (403), the way an inbound proxy reports one.
pub fn deny(e: &mut Event, reason: &str) {
    http(e).status = Some(403);
    let d = decision(e);
    d.verdict = "deny".into();
    d.authz_kind = None;
    d.authz_name = None;
    d.reason = reason.into();
}
