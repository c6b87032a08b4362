//! The app's shell, graph and tap views over a model fed with synthetic events (no sockets),
//! driven headless through egui_kittest with its accessibility check on.
#![cfg(feature = "gui")]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

#[path = "common/events.rs"]
mod events;

use events::{T0, decision, response_end, workload};
use meshlens::sources::hub::{SourceId, Spec, State, Status};
use meshlens::tap::{Endpoint, Event, Inspection, MessageSide};
use meshlens::ui::shell::{Shell, Tab};

/// A request from `client` to `server`, authorized by `orders-from-web`, carrying a valid
/// `orders-value` message.
fn request(stream: u64, client: &Endpoint, server: &Endpoint) -> Event {
    let mut e = response_end(stream, T0 + stream as i64 * 10_000, client, server);
    let d = decision(&mut e);
    d.authz_kind = Some("authorizationpolicy".into());
    d.authz_name = Some("orders-from-web".into());
    e.avro.push(Inspection {
        side: Some(MessageSide::Request),
        framing: "confluent".into(),
        subject: Some("orders-value".into()),
        version: Some(2),
        valid: true,
        value_json: Some("{\"order_id\": \"o-42\"}".into()),
        ..Inspection::default()
    });
    e
}

fn shell() -> Shell {
    let mut shell = Shell::new("test events");
    let web = workload("web", "shop", 1);
    let orders = workload("orders", "shop", 2);
    let payments = workload("payments", "billing", 3);
    for i in 0..20 {
        shell.apply(&request(i, &web, &orders));
        shell.apply(&request(100 + i, &orders, &payments));
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
    h.get_by_label_contains("Nothing feeds the app yet");
    let demo = Spec::Sandbox { manifest: None };
    h.state_mut().sources.statuses = vec![Status::new(SourceId(1), demo, State::Connected)];
    h.run_steps(2);
    h.get_by_label_contains("a small storefront mesh running inside this app");
    assert!(h.query_by_label_contains("Nothing feeds").is_none());
    h.get_by_label("Got it").click();
    h.run_steps(5);
    assert!(!h.state().welcome);
    assert!(
        h.query_by_label_contains("To look at a real mesh, open Sources")
            .is_none()
    );
}
