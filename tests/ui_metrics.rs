//! The Metrics view: the chart series computed from a model fed with synthetic events, and
//! the selector and window switches, driven headless through egui_kittest.
#![cfg(feature = "gui")]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use meshlens::mesh::Mesh;
use meshlens::mesh::graph::NodeId;
use meshlens::tap::Event;
use meshlens::ui::metrics_view::{MetricsView, Span, Subject, chart_series};

#[path = "common/events.rs"]
mod events;

use events::{T0, decision, http, response_end, workload};

const S: i64 = 1_000_000;

/// The response end of one `GET /v1/orders` within `shop`, as the server's proxy reports it.
fn request(
    t: i64,
    client: &str,
    server: &str,
    status: u16,
    verdict: &str,
    latency_us: u64,
) -> Event {
    let (c, s) = (workload(client, "shop", 7), workload(server, "shop", 7));
    let mut e = response_end(t as u64, t, &c, &s);
    let h = http(&mut e);
    h.method = "GET".into();
    h.path = "/v1/orders".into();
    h.status = Some(status);
    h.latency_us = Some(latency_us);
    decision(&mut e).verdict = verdict.into();
    e
}

/// One minute of traffic: web → orders at 2 req/s, 4 ms, one request in ten failing with
/// a 503 in the second half; analytics → orders at 1 req/s, 40 ms, half of them denied.
fn mesh() -> Mesh {
    let mut m = Mesh::default();
    for second in 0..60 {
        for half in 0..2 {
            let t = T0 + second * S + half * S / 2;
            let failing = second >= 30 && second % 5 == 0 && half == 0;
            let status = if failing { 503 } else { 200 };
            m.apply(&request(t, "web", "orders", status, "allow", 4_000));
        }
        let denied = second % 2 == 0;
        let (status, verdict) = if denied {
            (403, "deny")
        } else {
            (200, "allow")
        };
        m.apply(&request(
            T0 + second * S + 1,
            "analytics",
            "orders",
            status,
            verdict,
            40_000,
        ));
    }
    m
}

fn node(m: &Mesh, workload: &str) -> NodeId {
    m.graph()
        .nodes()
        .find(|n| n.workload.as_deref() == Some(workload))
        .map(|n| n.id)
        .unwrap()
}

fn ys(points: &[[f64; 2]]) -> Vec<f64> {
    points.iter().map(|p| p[1]).collect()
}

#[test]
fn edge_series_have_the_rates_and_latencies_of_the_events() {
    let m = mesh();
    let (web, orders) = (node(&m, "web"), node(&m, "orders"));
    let s = chart_series(
        &m,
        Subject::Edge {
            client: web,
            server: orders,
        },
        Span::OneMinute,
    );
    // Twelve 5 s buckets ending with the one holding the newest event (59.5 s), each at
    // its start in seconds before that event.
    assert_eq!(s.rps.len(), 12);
    assert_eq!(s.rps[0][0], -59.5);
    assert_eq!(s.rps[11][0], -4.5);
    assert_eq!(ys(&s.rps), vec![2.0; 12]);
    // One 503 in each 5 s bucket of the second half: 9 of 10 succeed.
    assert_eq!(ys(&s.success_rate)[..6], [100.0; 6]);
    assert_eq!(ys(&s.success_rate)[6..], [90.0; 6]);
    assert_eq!(ys(&s.deny_rate), vec![0.0; 12]);
    for p in s.p50.iter().chain(&s.p99) {
        assert!(
            (3.4..4.6).contains(&p[1]),
            "4 ms latency charted as {} ms",
            p[1]
        );
    }
}

#[test]
fn workload_series_sum_every_inbound_edge() {
    let m = mesh();
    let s = chart_series(&m, Subject::Workload(node(&m, "orders")), Span::OneMinute);
    assert_eq!(ys(&s.rps), vec![3.0; 12], "2 from web + 1 from analytics");
    // 5 requests from analytics per bucket, denied on even seconds: 3 or 2 of 15.
    for (i, d) in ys(&s.deny_rate).iter().enumerate() {
        assert!(
            [20.0, 100.0 * 2.0 / 15.0].contains(d),
            "bucket {i}: {d} % denied"
        );
    }
    // Two thirds of the requests take 4 ms, a third 40 ms.
    assert!((3.4..4.6).contains(&s.p50[0][1]), "{:?}", s.p50[0]);
    assert!((34.0..46.0).contains(&s.p99[0][1]), "{:?}", s.p99[0]);
    let longer = chart_series(
        &m,
        Subject::Workload(node(&m, "orders")),
        Span::FifteenMinutes,
    );
    assert_eq!(longer.rps.len(), 180);
    assert_eq!(longer.rps.iter().filter(|p| p[1] > 0.0).count(), 12);
}

#[test]
fn the_selector_and_window_switch_what_is_charted() {
    let m = mesh();
    let orders = node(&m, "orders");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 900.0))
        .build_ui_state(
            |ui, (view, mesh): &mut (MetricsView, Mesh)| view.ui(ui, mesh),
            (MetricsView::default(), m),
        );
    h.run();
    // A workload's inbound traffic is picked at start.
    assert_eq!(h.state().0.subject, Some(Subject::Workload(orders)));
    h.get_by_label("Requests per second");
    h.get_by_label("Latency (ms)");
    h.get_by_label("Show:").click();
    h.run();
    h.get_by_label("edge shop/web -> shop/orders").click();
    h.run();
    assert_eq!(
        h.state().0.subject,
        Some(Subject::Edge {
            client: node(&h.state().1, "web"),
            server: orders
        })
    );
    h.get_by_label("Show:").click();
    h.run();
    h.get_by_label("workload shop/orders (inbound)").click();
    h.run();
    assert_eq!(h.state().0.subject, Some(Subject::Workload(orders)));
    h.get_by_label("1 m").click();
    h.run();
    assert_eq!(h.state().0.span, Span::OneMinute);
    let (view, mesh) = h.state_mut();
    let series = view.series(mesh).unwrap();
    assert_eq!(ys(&series.rps), vec![3.0; 12]);
}
