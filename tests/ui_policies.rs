//! The Policies view over the demo's own policy files (`assets/sandboxes/shop`), loaded by
//! the real worker thread and evaluated by the real policy engine, driven headless through
//! egui_kittest with its accessibility check on.
#![cfg(feature = "gui")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use meshlens::tap::{Event, EventKind};
use meshlens::ui::policies_view::ClientKind;
use meshlens::ui::shell::{Shell, Tab};

#[path = "common/events.rs"]
mod events;

use events::{T0, decision, deny, http, response_end, workload};

fn shop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sandboxes/shop")
}

/// The request start an inbound proxy reports, carrying its policy decision.
fn decided(stream: u64, client: &str, verdict: &str, route: &str, authz: Option<&str>) -> Event {
    let (c, s) = (workload(client, "shop", 7), workload("orders", "shop", 7));
    let mut e = response_end(stream, T0 + stream as i64 * 100_000, &c, &s);
    e.kind = EventKind::RequestStart;
    let h = http(&mut e);
    h.method = "GET".into();
    h.path = "/v1/orders".into();
    h.status = None;
    h.latency_us = None;
    let d = decision(&mut e);
    d.route_kind = Some("HTTPRoute".into());
    d.route_name = Some(route.into());
    d.authz_kind = authz.map(|_| "authorizationpolicy".into());
    d.authz_name = authz.map(str::to_string);
    if verdict == "deny" {
        deny(&mut e, "no authorization matched the client");
        http(&mut e).status = None;
    }
    e
}

fn harness() -> Harness<'static, Shell> {
    let mut shell = Shell::new("test events");
    shell.welcome = false;
    shell.tab = Tab::Policies;
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, shell: &mut Shell| shell.ui(ui), shell)
}

/// Types `paths` (and a manifest) into the load bar, presses Load, and waits for the worker.
fn load(h: &mut Harness<'static, Shell>, paths: &Path, manifest: Option<&Path>) {
    h.run();
    h.get_by_label("Policy files:").focus();
    h.get_by_label("Policy files:")
        .type_text(&paths.display().to_string());
    if let Some(m) = manifest {
        h.get_by_label("Manifest:").focus();
        h.get_by_label("Manifest:")
            .type_text(&m.display().to_string());
    }
    h.run();
    h.get_by_label("Load").click();
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.state().policies.loaded.is_none() {
        assert!(
            Instant::now() < deadline,
            "the policy worker never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.run_steps(3);
}

#[test]
fn the_demo_policy_lists_servers_routes_and_authorizations_with_their_hits() {
    let mut h = harness();
    for i in 0..3 {
        h.state_mut().apply(&decided(
            i,
            "analytics",
            "allow",
            "orders-read",
            Some("analytics-reads-orders"),
        ));
    }
    h.state_mut()
        .apply(&decided(9, "legacy", "deny", "orders-read", None));
    load(
        &mut h,
        &shop().join("policy"),
        Some(&shop().join("sandbox.yaml")),
    );
    let loaded = h.state().policies.loaded.as_ref().unwrap();
    assert!(
        loaded.diagnostics.iter().all(|d| !d.error),
        "{:?}",
        loaded.diagnostics
    );
    h.get_by_label("shop/orders");
    h.get_by_label_contains("port 8080: server/orders-http");
    h.get_by_label_contains("route HTTPRoute/orders-read");
    h.get_by_label_contains("authorization authorizationpolicy/web-writes-orders");
    // The hits the model saw sit next to the server and route they were decided by.
    assert!(
        h.query_all_by_label("3 allowed").count() >= 2,
        "server and route"
    );
    assert!(
        h.query_all_by_label("1 denied").count() >= 2,
        "server and route"
    );
    h.get_by_label_contains("Recent denials (1)");
    h.get_by_label_contains("no authorization matched the client");
}

#[test]
fn what_if_allows_the_writer_and_denies_an_unauthenticated_reader_with_the_reason() {
    let mut h = harness();
    load(
        &mut h,
        &shop().join("policy"),
        Some(&shop().join("sandbox.yaml")),
    );
    {
        let w = &mut h.state_mut().policies.what_if;
        w.workload = "shop/orders".into();
        w.method = "POST".into();
        w.path = "/v1/orders".into();
    }
    h.run();
    // The identity buttons fill in a workload's mTLS identity.
    h.get_by_label("web.shop").click();
    h.run_steps(2);
    assert_eq!(
        h.state().policies.what_if.identity,
        "web.shop.serviceaccount.identity.linkerd.cluster.local"
    );
    h.get_by_label("Decision: allow");
    h.get_by_label("authorizationpolicy/web-writes-orders");

    h.get_by_label("unauthenticated").click();
    h.state_mut().policies.what_if.method = "GET".into();
    h.run_steps(2);
    assert_eq!(
        h.state().policies.what_if.client,
        ClientKind::Unauthenticated
    );
    h.get_by_label("Decision: deny");
    h.get_by_label_contains(
        "Why: no authorization on HTTPRoute/orders-read matches GET /v1/orders from unauthenticated 10.0.0.9: HTTP 403",
    );
    // Every authorization tried is listed, in order.
    h.get_by_label_contains("1. no authorizationpolicy/analytics-reads-orders");
}

#[test]
fn a_broken_policy_file_shows_its_lint_error_at_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: web\n  spec: [\n",
    )
    .unwrap();
    let mut h = harness();
    load(&mut h, dir.path(), None);
    let d = h.state().policies.loaded.as_ref().unwrap().diagnostics[0].clone();
    assert!(d.error);
    let at = format!("{}:", file.display());
    assert!(d.at.starts_with(&at), "{d:?}");
    let row = format!("error {}", d.at);
    h.get_by_label_contains(&row).click();
    h.run_steps(2);
    // Expanded: the whole message is shown.
    h.get_by_label_contains(&d.message);
    h.get_by_label_contains("no workloads to evaluate for");
}
