//! The Schemas & drift view against our registry served in-process on loopback with the
//! demo's order schemas v1..v3, and drift events folded into the model, and a registry that
//! never answers (progress in place); driven headless through egui_kittest with its
//! accessibility check on.
#![cfg(feature = "gui")]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use meshlens::avro::Level;
use meshlens::registry::{Store, server};
use meshlens::tap::{Event, Inspection, MessageSide};
use meshlens::ui::shell::{Shell, Tab};

#[path = "common/events.rs"]
mod events;

use events::{T0, http, response_end, workload};

const SUBJECT: &str = "shop.orders-value";

/// Our registry on 127.0.0.1 with the demo's three order versions (its level NONE, as in
/// the demo, so the breaking v3 gets in).
fn registry(rt: &tokio::runtime::Runtime, dir: &Path) -> SocketAddr {
    let store = Store::open(dir).unwrap();
    store.set_subject_level(SUBJECT, Level::None).unwrap();
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sandboxes/shop/schemas");
    for v in 1..=3 {
        let text = std::fs::read_to_string(schemas.join(format!("order-v{v}.avsc"))).unwrap();
        assert_eq!(store.register(SUBJECT, &text, &[]).unwrap().version, v);
    }
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(server::serve(
        listener,
        Arc::new(store),
        std::future::pending(),
    ));
    addr
}

/// web posts an order written with `writer` to orders, which reads with `reader`.
fn order(stream: u64, writer: u32, reader: u32, drift: &str) -> Event {
    let (web, orders) = (workload("web", "shop", 1), workload("orders", "shop", 1));
    let mut e = response_end(stream, T0 + stream as i64 * 100_000, &web, &orders);
    let h = http(&mut e);
    h.path = "/v1/orders".into();
    h.status = Some(201);
    e.avro.push(Inspection {
        side: Some(MessageSide::Request),
        framing: "confluent".into(),
        subject: Some(SUBJECT.into()),
        version: Some(writer),
        reader_version: Some(reader),
        drift: Some(drift.into()),
        valid: drift != "incompatible",
        ..Inspection::default()
    });
    e
}

fn harness(shell: Shell) -> Harness<'static, Shell> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, shell: &mut Shell| shell.ui(ui), shell)
}

/// Steps until `done` holds, for answers that come from the worker thread.
fn step_until(h: &mut Harness<'_, Shell>, what: &str, done: impl Fn(&Shell) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(h.state()) {
        let s = &h.state().schemas;
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; registry {:?}, error {:?}",
            s.registry_text,
            s.error
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run();
}

fn pick(h: &mut Harness<'_, Shell>, combo: &str, option: &str) {
    h.get_by_label(combo).click();
    h.run();
    h.get_by_label(option).click();
    h.run();
}

#[test]
fn registry_versions_diff_matrix_and_drift() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let addr = registry(&rt, dir.path());

    let mut shell = Shell::new("test events");
    shell.welcome = false;
    shell.tab = Tab::Schemas;
    let mut h = harness(shell);
    h.run();
    h.get_by_label("no registry loaded");

    // A wrong directory is explained in place.
    h.get_by_label("Registry").focus();
    h.get_by_label("Registry")
        .type_text("/nonexistent/registry");
    h.get_by_label("Load").click();
    step_until(&mut h, "the error", |s| s.schemas.error.is_some());
    h.get_by_label_contains("not a registry directory");

    // Our registry over HTTP.
    h.state_mut().schemas.registry_text.clear();
    h.run();
    h.get_by_label("Registry").focus();
    h.get_by_label("Registry")
        .type_text(&format!("http://{addr}"));
    h.get_by_label("Load").click();
    step_until(&mut h, "the snapshot", |s| s.schemas.snapshot.is_some());
    assert!(h.state().schemas.error.is_none());
    h.get_by_label_contains(": 1 subjects");
    h.get_by_label(&format!("{SUBJECT}  (3)")).click();
    h.run();

    // The viewer: newest version with its id and fingerprint, fields collapsible.
    h.get_by_label("Schema").click();
    h.run();
    h.get_by_label("id 3");
    h.get_by_label_contains("fingerprint (CRC-64-AVRO)");
    h.get_by_label("total: string").click();
    h.run();
    h.get_by_label_contains("Breaking in v3");

    // The diff: v2 → v3 breaks both ways at `total`; v1 → v2 is compatible both ways.
    h.get_by_label("Diff").click();
    h.run();
    h.get_by_label("v3 reads v2 data (backward): incompatible (1)");
    h.get_by_label("v2 reads v3 data (forward): incompatible (1)");
    assert_eq!(
        h.query_all_by_label_contains("TYPE_MISMATCH at /fields/3/type")
            .count(),
        2,
        "one reason per direction, each at the field's type"
    );
    h.get_by_label_contains(".total: type changed from long to string");
    pick(&mut h, "Old version", "v1 (id 1)");
    pick(&mut h, "New version", "v2 (id 2)");
    h.get_by_label("v2 reads v1 data (backward): compatible");
    h.get_by_label("v1 reads v2 data (forward): compatible");
    h.get_by_label_contains(".coupon: field \"coupon\" added with default null");
    assert!(h.query_by_label_contains("TYPE_MISMATCH").is_none());

    // The matrix: v2 passes every level, v3 fails every level.
    h.get_by_label("Compatibility matrix").click();
    h.run();
    h.get_by_label("first version");
    assert_eq!(h.query_all_by_label("ok").count(), 6);
    let breaks: Vec<String> = h
        .query_all_by_label_contains("breaks (")
        .map(|n| n.accesskit_node().value().unwrap_or_default())
        .collect();
    // Transitive levels also check v3 against v1; FULL checks both directions.
    assert_eq!(
        breaks,
        vec![
            "breaks (1)",
            "breaks (2)",
            "breaks (1)",
            "breaks (2)",
            "breaks (2)",
            "breaks (4)"
        ]
    );

    // Drift: web ships v2 then v3 to orders reading v2: red, naming the versions.
    for (i, (writer, drift)) in [(2, "same"), (2, "same"), (3, "incompatible")]
        .into_iter()
        .enumerate()
    {
        h.state_mut().apply(&order(i as u64, writer, 2, drift));
    }
    h.get_by_label("Drift").click();
    h.run();
    h.get_by_label("Status: red");
    h.get_by_label_contains("sends writer v3 incompatible with reader v2 to orders.shop");
    h.get_by_label("v2 / v2");
    h.get_by_label("v3 / v2").hover();
    h.run();
    h.get_by_label_contains("newest message: web.shop writes v3 and orders.shop reads with v2");
    h.get_by_label("Writer versions in traffic (messages/s)");
}

/// A registry that takes the connection and never answers: the view shows a spinner and
/// says what it is loading, in the Schemas view and in the tap inspector, until the
/// connection drops and the error replaces them.
#[test]
fn a_slow_registry_shows_progress_until_it_answers() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut shell = Shell::new("test events");
    shell.welcome = false;
    shell.tab = Tab::Schemas;
    let mut e = order(1, 2, 2, "same");
    e.avro[0].value_json = Some(r#"{"id":"o-1"}"#.into());
    shell.apply(&e);
    let mut h = harness(shell);
    h.run();
    h.state_mut().schemas.registry_text = url.clone();
    h.get_by_label("Load").click();
    // A spinner animates, so step rather than run until settled.
    for _ in 0..5 {
        h.step();
    }
    h.get_by_label(&format!("loading {url}…"));
    assert!(
        h.query_by_role(egui::accesskit::Role::ProgressIndicator)
            .is_some()
    );

    // The tap inspector waits for the same registry.
    h.state_mut().tab = Tab::Tap;
    h.step();
    h.get_by_label("#0").click();
    for _ in 0..5 {
        h.step();
    }
    h.get_by_label("loading the registry for the writer schema…");

    drop(silent);
    step_until(&mut h, "the error", |s| !s.schemas.is_loading());
    assert!(h.state().schemas.error.is_some());
    h.get_by_label_contains("No registry loaded");
    assert!(
        h.query_by_role(egui::accesskit::Role::ProgressIndicator)
            .is_none()
    );
}
