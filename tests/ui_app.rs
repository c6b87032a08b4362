//! The app's shell, graph and tap views over a model fed with synthetic events (no sockets),
//! driven headless through egui_kittest with its accessibility check on.
#![cfg(feature = "gui")]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use meshlens::tap::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, MessageSide, Tls,
};
use meshlens::ui::shell::{Shell, Tab};

const T0: i64 = 1_764_000_000_000_000;

fn workload(name: &str, ns: &str, port: u16) -> Endpoint {
    Endpoint {
        addr: format!("10.0.0.{port}:8080"),
        namespace: Some(ns.into()),
        workload: Some(name.into()),
        identity: Some(format!(
            "{name}.{ns}.serviceaccount.identity.linkerd.cluster.local"
        )),
    }
}

/// The response-end event of one inbound request from `client` to `server`.
fn request(stream: u64, client: Endpoint, server: Endpoint, status: u16, verdict: &str) -> Event {
    Event {
        stream,
        kind: EventKind::ResponseEnd,
        time_us: T0 + stream as i64 * 10_000,
        proxy: "shop/orders".into(),
        direction: Direction::Inbound,
        source: client,
        destination: server,
        tls: Tls {
            secured: true,
            reason: None,
        },
        http: Some(Http {
            protocol: "HTTP/1.1".into(),
            method: "POST".into(),
            authority: "orders:8080".into(),
            path: "/orders".into(),
            status: Some(status),
            latency_us: Some(2_500),
            ..Http::default()
        }),
        tcp: None,
        decision: Some(Decision {
            verdict: verdict.into(),
            server_kind: "server".into(),
            server_name: "orders-http".into(),
            route_kind: None,
            route_name: None,
            authz_kind: Some("authorizationpolicy".into()),
            authz_name: Some("orders-from-web".into()),
            reason: "authorized".into(),
            tried: Vec::new(),
        }),
        avro: vec![Inspection {
            side: Some(MessageSide::Request),
            framing: "confluent".into(),
            subject: Some("orders-value".into()),
            version: Some(2),
            valid: true,
            value_json: Some("{\"order_id\": \"o-42\"}".into()),
            ..Inspection::default()
        }],
        lost: 0,
    }
}

fn shell() -> Shell {
    let mut shell = Shell::new("test events");
    let web = workload("web", "shop", 1);
    let orders = workload("orders", "shop", 2);
    let payments = workload("payments", "billing", 3);
    for i in 0..20 {
        shell.apply(&request(i, web.clone(), orders.clone(), 200, "allow"));
        shell.apply(&request(
            100 + i,
            orders.clone(),
            payments.clone(),
            200,
            "allow",
        ));
    }
    shell.welcome = false;
    shell
}

fn harness(shell: Shell) -> Harness<'static, Shell> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(|ui, shell: &mut Shell| shell.ui(ui), shell)
}

#[test]
fn graph_shows_each_workload_and_clicking_one_selects_it() {
    let mut h = harness(shell());
    h.run_steps(10);
    h.get_by_label("shop/web");
    h.get_by_label("shop/orders");
    h.get_by_label("billing/payments");
    h.get_by_label("3 workloads, 2 edges");
    h.get_by_label("billing/payments").click();
    h.run_steps(3);
    let payments = h
        .state()
        .mesh
        .graph()
        .nodes()
        .find(|n| n.workload.as_deref() == Some("payments"))
        .map(|n| n.id);
    assert!(payments.is_some());
    assert_eq!(h.state().graph.selected, payments);
    h.get_by_label_contains("identity payments.billing.serviceaccount");
}

#[test]
fn tabs_switch_views() {
    let mut h = harness(shell());
    h.run_steps(3);
    h.get_by_label("Tap").click();
    h.run_steps(3);
    assert_eq!(h.state().tab, Tab::Tap);
    h.get_by_label("40 events held");
    h.get_by_label("Avro inspector").click();
    h.run_steps(3);
    assert_eq!(h.state().tab, Tab::Inspector);
    h.get_by_label("Writer schema");
    h.get_by_label("Graph").click();
    h.run_steps(3);
    assert_eq!(h.state().tab, Tab::Graph);
}

#[test]
fn tap_rows_select_into_details() {
    let mut s = shell();
    s.tab = Tab::Tap;
    let mut h = harness(s);
    h.run_steps(3);
    // Following: the newest row is on screen, and not every row is built.
    h.get_by_label("#39");
    assert!(h.query_by_label("#0").is_none());
    h.get_by_label("#39").click();
    h.run_steps(3);
    assert_eq!(h.state().tap.selected, Some(39));
    assert!(!h.state().tap.follow);
    h.get_by_label_contains("authorized by authorizationpolicy/orders-from-web");
    h.get_by_label_contains("source: orders.shop.serviceaccount");
    h.get_by_label_contains("Avro orders-value (confluent)");
}

#[test]
fn the_welcome_explains_and_can_be_dismissed() {
    let mut s = shell();
    s.welcome = true;
    let mut h = harness(s);
    h.run_steps(5);
    h.get_by_label_contains("To look at a real mesh, open Sources");
    h.get_by_label("Got it").click();
    h.run_steps(5);
    assert!(!h.state().welcome);
    assert!(
        h.query_by_label_contains("To look at a real mesh, open Sources")
            .is_none()
    );
}
