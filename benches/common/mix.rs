//! The realistic event mix the model and replay benches share: 8 workloads, 20 client →
//! server edges, three events per request (request start, response start, response end, as
//! an inbound proxy reports them), 10 % of responses with a decoded Avro inspection, 5 %
//! denied.

use meshlens::tap::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, MessageSide, Tls, TriedAuthz,
};

const WORKLOADS: usize = 8;
const EDGES: usize = 20;

fn endpoint(w: usize, addr: String) -> Endpoint {
    Endpoint {
        addr,
        namespace: Some("shop".into()),
        workload: Some(format!("svc-{w}")),
        identity: Some(format!(
            "svc-{w}.shop.serviceaccount.identity.linkerd.cluster.local"
        )),
    }
}

/// Three events for each of `requests` requests, in time order.
pub fn events(requests: usize) -> Vec<Event> {
    // 20 distinct (client, server) pairs over 8 workloads.
    let pairs: Vec<(usize, usize)> = (0..WORKLOADS)
        .flat_map(|c| (1..=3).map(move |d| (c, (c + d) % WORKLOADS)))
        .take(EDGES)
        .collect();
    let mut out = Vec::with_capacity(requests * 3);
    for r in 0..requests {
        let (c, s) = pairs[r % EDGES];
        let t = 1_700_000_000_000_000 + r as i64 * 1_000;
        let deny = r % 20 == 7;
        let decision = Decision {
            verdict: if deny { "deny" } else { "allow" }.into(),
            server_kind: "server".into(),
            server_name: format!("svc-{s}-http"),
            route_kind: Some("route".into()),
            route_name: Some("default".into()),
            authz_kind: (!deny).then(|| "authorizationpolicy".into()),
            authz_name: (!deny).then(|| format!("svc-{s}-clients")),
            reason: if deny {
                "no authorization matched"
            } else {
                "authorized"
            }
            .into(),
            tried: vec![TriedAuthz {
                kind: "authorizationpolicy".into(),
                name: format!("svc-{s}-clients"),
                matched: !deny,
                miss: deny.then(|| "client identity not in the list".into()),
            }],
        };
        let start = Event {
            stream: r as u64,
            kind: EventKind::RequestStart,
            time_us: t,
            proxy: format!("shop/svc-{s}"),
            direction: Direction::Inbound,
            source: endpoint(c, format!("10.1.0.{c}:{}", 40_000 + r % 20_000)),
            destination: endpoint(s, format!("10.1.1.{s}:8080")),
            tls: Tls {
                secured: true,
                reason: None,
            },
            http: Some(Http {
                protocol: "HTTP/2".into(),
                method: "POST".into(),
                authority: format!("svc-{s}.shop.svc.cluster.local:8080"),
                path: "/orders".into(),
                content_type: Some("application/vnd.kafka.avro.v2+json".into()),
                ..Http::default()
            }),
            tcp: None,
            decision: Some(decision),
            avro: Vec::new(),
            lost: 0,
        };
        let status = if deny {
            403
        } else if r % 50 == 3 {
            503
        } else {
            200
        };
        let latency = 200 + (r as u64 * 7919) % 20_000;
        let mut head = start.clone();
        head.kind = EventKind::ResponseStart;
        head.time_us = t + latency as i64 / 2;
        let http = head.http.as_mut().expect("http");
        http.status = Some(status);
        http.latency_us = Some(latency / 2);
        let mut end = head.clone();
        end.kind = EventKind::ResponseEnd;
        end.time_us = t + latency as i64;
        let http = end.http.as_mut().expect("http");
        http.latency_us = Some(latency);
        http.request_bytes = 512;
        http.response_bytes = 2048;
        if r % 10 == 0 {
            end.avro.push(Inspection {
                side: Some(MessageSide::Request),
                framing: "confluent".into(),
                subject: Some(format!("svc-{s}-value")),
                version: Some(1 + (r % 30 == 0) as u32),
                schema_id: Some(42),
                reader_version: Some(1),
                drift: Some(if r % 30 == 0 { "compatible" } else { "same" }.into()),
                valid: true,
                value_json: Some(r#"{"id":"o-1","amount":12.5}"#.into()),
                ..Inspection::default()
            });
        }
        out.extend([start, head, end]);
    }
    out
}

/// A decoded order as the proxy renders it (Avro JSON, ~450 bytes): what a retained event
/// carries when its body was inspected.
pub const ORDER_JSON: &str = r#"{"order_id":"7b0d8a52-4c1e-4f7e-9a51-2f0c6d1e9b3a","customer":{"id":"c-104223","email":"***","tier":"GOLD"},"placed_at":1764201600123,"currency":"EUR","total":{"bytes":"\u0001\u00e2\u0040"},"lines":[{"sku":"SKU-18822","quantity":2,"unit_price":"\u0000\u00c3\u0050"},{"sku":"SKU-20031","quantity":1,"unit_price":"\u0004\u00b0"}],"shipping":{"country":"DE","postcode":"10115","express":false},"channel":"web","coupon":null}"#;

/// Gives every event a decoded Avro inspection with `ORDER_JSON`: the worst case for the
/// model's memory budget.
pub fn with_payload_on_every_event(events: &mut [Event]) {
    for (i, e) in events.iter_mut().enumerate() {
        e.avro = vec![Inspection {
            side: Some(if i % 3 == 0 {
                MessageSide::Request
            } else {
                MessageSide::Response
            }),
            framing: "confluent".into(),
            subject: Some("shop.orders.OrderPlaced-value".into()),
            version: Some(3),
            schema_id: Some(17),
            fingerprint: Some(-4_214_411_390_012_356_123),
            contract: Some("shop/orders-contract".into()),
            mode: Some("audit".into()),
            valid: true,
            drift: Some("compatible".into()),
            reader_version: Some(2),
            value_json: Some(ORDER_JSON.into()),
            redacted: vec!["customer.email".into()],
            ..Inspection::default()
        }];
    }
}
