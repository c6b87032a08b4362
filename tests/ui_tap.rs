//! The tap view over synthetic events, driven headless through egui_kittest with its
//! accessibility check on: the filter query, its errors, the inspector, follow and pause,
//! writer schemas from the registry, and export to a real file.
#![cfg(feature = "gui")]

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use meshlens::mesh::{Budget, Mesh};
use meshlens::tap::{Endpoint, Event, Inspection, MessageSide, TriedAuthz};
use meshlens::ui::shell::{Shell, Tab};

#[path = "common/events.rs"]
mod events;

use events::{T0, decision, deny, http, response_end, workload};

/// A `POST /orders` from `client` to `server`; `stream` picks its shape: multiples of 10
/// fail with 503, multiples of 7 are denied, 13 carries an invalid body.
fn request(stream: u64, client: &Endpoint, server: &Endpoint) -> Event {
    let denied = stream.is_multiple_of(7);
    let mut e = response_end(stream, T0 + stream as i64 * 10_000, client, server);
    let h = http(&mut e);
    h.path = "/orders".into();
    h.authority = "orders:8080".into();
    let d = decision(&mut e);
    d.server_name = "orders-http".into();
    d.route_kind = Some("httproute".into());
    d.route_name = Some("orders-post".into());
    d.authz_kind = Some("authorizationpolicy".into());
    d.authz_name = Some("orders-from-web".into());
    d.tried = vec![
        TriedAuthz {
            kind: "authorizationpolicy".into(),
            name: "orders-from-admin".into(),
            matched: false,
            miss: Some("client identity is not admin".into()),
        },
        TriedAuthz {
            kind: "authorizationpolicy".into(),
            name: "orders-from-web".into(),
            matched: !denied,
            miss: denied.then(|| "client identity is not web".into()),
        },
    ];
    if denied {
        deny(&mut e, "no authorization matched the client");
    }
    if stream.is_multiple_of(10) {
        http(&mut e).status = Some(503);
    }
    let invalid = stream == 13;
    e.avro.push(Inspection {
        side: Some(MessageSide::Request),
        framing: "confluent".into(),
        subject: Some("OrderPlaced-value".into()),
        version: Some(2),
        schema_id: Some(7),
        fingerprint: Some(0x1234_5678_9abc_def0),
        valid: !invalid,
        errors: if invalid {
            vec!["qty must be positive at byte 31 (in .lines[1].qty)".into()]
        } else {
            Vec::new()
        },
        value_json: Some(format!(
            r#"{{"order_id":"o-{stream}","customer":{{"email":"***","address":{{"zip":"1012"}}}},"lines":[{{"sku":"A-1","qty":2}},{{"sku":"B-2","qty":-1}}],"coupon":{{"string":"SAVE"}}}}"#
        )),
        redacted: vec!["customer.email".into()],
        ..Inspection::default()
    });
    e
}

/// 40 requests web → orders and 40 orders → payments.
fn shell() -> Shell {
    let mut shell = Shell::new("test events");
    let web = workload("web", "shop", 1);
    let orders = workload("orders", "shop", 2);
    let payments = workload("payments", "billing", 3);
    for i in 0..40 {
        shell.apply(&request(i, &web, &orders));
        shell.apply(&request(100 + i, &orders, &payments));
    }
    shell.welcome = false;
    shell.tab = Tab::Tap;
    shell
}

/// The Tap tab over `mesh` with `n` requests web → orders.
fn web_to_orders(mesh: Mesh, n: u64) -> Shell {
    let mut shell = Shell::new("test events");
    shell.mesh = mesh;
    shell.welcome = false;
    shell.tab = Tab::Tap;
    let web = workload("web", "shop", 1);
    let orders = workload("orders", "shop", 2);
    for i in 0..n {
        shell.apply(&request(i, &web, &orders));
    }
    shell
}

fn harness(shell: Shell) -> Harness<'static, Shell> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, shell: &mut Shell| shell.ui(ui), shell)
}

fn type_query(h: &mut Harness<'static, Shell>, text: &str) {
    h.get_by_label("Filter").focus();
    h.run();
    h.get_by_label("Filter").type_text(text);
    h.run_steps(3);
}

/// The streams of the shown rows.
fn shown_streams(h: &Harness<'static, Shell>) -> Vec<u64> {
    let s = h.state();
    s.tap
        .shown(&s.mesh)
        .into_iter()
        .map(|seq| s.mesh.log().get(seq).map_or(u64::MAX, |e| e.stream))
        .collect()
}

#[test]
fn a_query_narrows_the_rows() {
    let mut h = harness(shell());
    h.run_steps(3);
    h.get_by_label("80 events held");
    type_query(&mut h, "to:orders status:5xx");
    assert_eq!(shown_streams(&h), vec![0, 10, 20, 30]);
    h.get_by_label("4 of 80 events");
    // The table shows the matching rows only: seq 0 is stream 0, seq 2 is stream 1.
    h.get_by_label("#0");
    assert!(h.query_by_label("#2").is_none());

    // Negation and free text: denied calls into payments.
    h.get_by_label("Filter").focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Filter")
        .type_text("payments deny -status:5xx");
    h.run_steps(3);
    assert_eq!(shown_streams(&h), vec![105, 112, 119, 126, 133]);

    // New events are matched as they arrive.
    let web = workload("web", "shop", 1);
    let payments = workload("payments", "billing", 3);
    h.state_mut().apply(&request(147, &web, &payments));
    h.state_mut().apply(&request(148, &web, &payments));
    h.run_steps(2);
    assert_eq!(shown_streams(&h), vec![105, 112, 119, 126, 133, 147]);
}

#[test]
fn a_bad_query_says_why_in_place_and_keeps_the_last_good_one() {
    let mut h = harness(shell());
    h.run_steps(3);
    type_query(&mut h, "invalid");
    assert_eq!(shown_streams(&h), vec![13]);
    type_query(&mut h, " stauts:5xx");
    h.get_by_label("unknown key `stauts` — try status:");
    assert_eq!(
        shown_streams(&h),
        vec![13],
        "the last query that parsed stays"
    );
    // Fixing the typo clears the message.
    for _ in 0.." stauts:5xx".len() {
        h.key_press(egui::Key::Backspace);
    }
    h.run_steps(2);
    assert!(h.query_by_label_contains("unknown key").is_none());
    assert_eq!(h.state().tap.query_text, "invalid");
}

#[test]
fn selecting_a_row_opens_the_inspector() {
    let mut h = harness(shell());
    h.run_steps(3);
    type_query(&mut h, "invalid");
    h.get_by_label("#26").click();
    h.run_steps(3);
    assert_eq!(h.state().tap.selected, Some(26));
    assert!(!h.state().tap.follow, "selecting pauses following");

    // Identities, TLS and the policy decision with the authorizations tried in order.
    h.get_by_label_contains("source: web.shop.serviceaccount.identity");
    h.get_by_label_contains("destination: orders.shop.serviceaccount.identity");
    h.get_by_label("TLS: mTLS, both identities proven");
    h.get_by_label("allow: authorized");
    h.get_by_label("route httproute/orders-post");
    h.get_by_label("authorized by authorizationpolicy/orders-from-web");
    h.get_by_label(
        "1. authorizationpolicy/orders-from-admin — no match: client identity is not admin",
    );
    h.get_by_label("2. authorizationpolicy/orders-from-web — matched");

    // The schema reference and the error.
    h.get_by_label("Avro OrderPlaced-value (confluent)");
    h.get_by_label("123456789abcdef0");
    h.get_by_label("qty must be positive at byte 31 (in .lines[1].qty)");

    // The value as a tree: the error's field is open and marked, a union is unwrapped,
    // nested records are reachable, redaction is noted.
    h.get_by_label("qty: -1");
    h.get_by_label("error here");
    h.get_by_label("coupon: \"SAVE\"");
    h.get_by_label("(redacted)");
    let detail = h.state().tap.detail().expect("a selected event");
    let tree = detail.trees[0].as_ref().expect("a decoded value");
    assert_eq!(tree.error_paths(), [".lines[1].qty"]);
    assert!(
        h.query_by_label("zip: \"1012\"").is_none(),
        "deeper records start closed"
    );
    h.get_by_label("address").click();
    h.run_steps(3);
    h.get_by_label("zip: \"1012\"");

    h.get_by_label("Close").click();
    h.run_steps(2);
    assert_eq!(h.state().tap.selected, None);
    assert!(h.query_by_label("error here").is_none());
}

#[test]
fn scrolling_up_pauses_and_jump_to_newest_resumes() {
    let mut h = harness(shell());
    h.run_steps(3);
    assert!(h.state().tap.follow);
    h.get_by_label("#79");
    assert!(
        h.query_by_label("#0").is_none(),
        "only visible rows are built"
    );
    h.hover_at(egui::pos2(500.0, 500.0));
    h.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, 400.0),
        phase: egui::TouchPhase::Move,
        modifiers: egui::Modifiers::NONE,
        source: egui::MouseWheelSource::Wheel,
    });
    h.run_steps(10);
    assert!(!h.state().tap.follow, "scrolling up paused following");
    // While paused, new events do not move the view.
    let web = workload("web", "shop", 1);
    let orders = workload("orders", "shop", 2);
    for i in 200..240 {
        h.state_mut().apply(&request(i, &web, &orders));
    }
    h.run_steps(3);
    assert!(h.query_by_label("#119").is_none());
    h.get_by_label("Jump to newest").click();
    h.run_steps(3);
    assert!(h.state().tap.follow);
    h.get_by_label("#119");
    // The toggle pauses too.
    h.get_by_label("Follow newest").click();
    h.run_steps(2);
    assert!(!h.state().tap.follow);
}

#[test]
fn a_followed_flood_shows_at_each_step_the_rows_laid_out_at_the_step_before() {
    let mut h = harness(shell());
    h.run_steps(3);
    h.get_by_label("#79");
    let web = workload("web", "shop", 1);
    let orders = workload("orders", "shop", 2);
    for i in 200..600 {
        h.state_mut().apply(&request(i, &web, &orders));
    }
    h.step();
    assert_eq!(
        h.state().tap.following_through(),
        Some(79),
        "a flood's newest rows are laid out for a step before they show"
    );
    h.step();
    assert_eq!(h.state().tap.following_through(), Some(479));
    h.step();
    h.get_by_label("#479");
    // A few new events show at the next step.
    h.state_mut().apply(&request(600, &web, &orders));
    h.run_steps(2);
    assert_eq!(h.state().tap.following_through(), Some(480));
    h.get_by_label("#480");
}

#[test]
fn a_followed_full_log_keeps_the_shown_rows_on_screen_while_it_drops_the_oldest() {
    let s = web_to_orders(
        Mesh::new(Budget {
            log_capacity: 300,
            ..Budget::default()
        }),
        300,
    );
    let (web, orders) = (workload("web", "shop", 1), workload("orders", "shop", 2));
    let mut h = harness(s);
    h.run_steps(3);
    h.get_by_label("#299");
    for round in 0..4u64 {
        let shown = h.state().tap.following_through().expect("following");
        for i in 0..150 {
            h.state_mut()
                .apply(&request(1000 + round * 150 + i, &web, &orders));
        }
        // The log dropped 150 rows from the top: the rows shown until the next step
        // stay where they were.
        h.step();
        h.get_by_label(&format!("#{shown}"));
        h.run_steps(2);
        let newest = h.state().mesh.log().next_seq() - 1;
        assert_eq!(h.state().tap.following_through(), Some(newest));
        h.get_by_label(&format!("#{newest}"));
    }
}

#[test]
fn export_writes_the_shown_rows_as_csv() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("denied.csv");
    let mut h = harness(shell());
    h.run_steps(3);
    type_query(&mut h, "to:orders deny");
    h.get_by_label("Export…").click();
    h.run_steps(2);
    h.get_by_label("Save to").focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Save to")
        .type_text(&path.display().to_string());
    h.run_steps(2);
    h.get_by_label("Save 6 rows").click();
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.state().tap.export.outcome.is_none() && Instant::now() < deadline {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run_steps(2);
    let message = format!("Saved 6 events to {}", path.display());
    assert_eq!(h.state().tap.export.outcome, Some(Ok(message.clone())));
    h.get_by_label(&message);
    let csv = std::fs::read_to_string(&path).expect("the export was written");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "seq,time,source,destination,method,path,status,latency_ms,decision,subjects,valid"
    );
    assert_eq!(
        lines[1],
        "0,2025-11-24T16:00:00Z,shop/web,shop/orders,POST,/orders,503,2.500,deny,OrderPlaced-value@2,valid"
    );
    let streams: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    assert_eq!(
        streams,
        ["0", "14", "28", "42", "56", "70"],
        "seq = 2 × stream"
    );

    // A path that cannot be written is reported in place.
    h.get_by_label("Save to").focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Save to")
        .type_text(&dir.path().join("missing/x.csv").display().to_string());
    h.run_steps(2);
    h.get_by_label("Save 6 rows").click();
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.state().tap.export.outcome.is_none() && Instant::now() < deadline {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run_steps(2);
    h.get_by_label_contains("Could not write");
}

#[test]
fn a_full_log_of_200k_events_is_shown_and_filtered_a_slice_per_frame() {
    let s = web_to_orders(Mesh::default(), 200_000);
    assert_eq!(s.mesh.log().len(), 200_000);
    let mut h = harness(s);
    h.run_steps(2);
    h.get_by_label("200000 events held");
    // Following: the newest row is built, the oldest is not.
    h.get_by_label("#199999");
    assert!(h.query_by_label("#0").is_none());

    h.get_by_label("Filter").focus();
    h.get_by_label("Filter").type_text("status:5xx");
    h.step();
    h.step();
    // No frame matches the whole log: the first ones show part of the answer and say so.
    let shown = shown_streams(&h);
    assert!(
        !shown.is_empty() && shown.len() < 20_000,
        "{} rows",
        shown.len()
    );
    assert!(shown.iter().all(|s| s.is_multiple_of(10)));
    assert!(shown.windows(2).all(|w| w[0] < w[1]), "oldest first");
    h.get_by_label_contains("Filtering…");
    assert!(
        h.query_by_role(egui::accesskit::Role::ProgressIndicator)
            .is_some(),
        "a spinner while filtering"
    );
    h.step();
    assert!(
        shown_streams(&h).len() > shown.len(),
        "the next frame goes on"
    );
}

const ORDER_SCHEMA: &str = r#"{"type": "record", "name": "Order", "fields": [
  {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
  {"name": "coupon", "type": ["null", "string"]}
]}"#;

/// The registry snapshot the Schemas view would hold: `OrderPlaced-value` version 2, id 7.
fn registry() -> std::sync::Arc<meshlens::sources::registry_watch::Snapshot> {
    use meshlens::sources::registry_watch::{Snapshot, VersionInfo};
    use std::sync::Arc;
    let schema = meshlens::avro::Schema::parse(ORDER_SCHEMA).unwrap();
    let version = VersionInfo {
        version: 2,
        id: 7,
        text: ORDER_SCHEMA.into(),
        schema: Ok(Arc::new(schema)),
        fingerprint: None,
    };
    let mut snapshot = Snapshot {
        source: "test registry".into(),
        ..Snapshot::default()
    };
    snapshot
        .subjects
        .insert("OrderPlaced-value".into(), vec![Arc::new(version)]);
    Arc::new(snapshot)
}

#[test]
fn the_writer_schema_from_the_registry_shows_logical_types_as_values() {
    let mut shell = Shell::new("test events");
    let mut e = request(
        1,
        &workload("web", "shop", 1),
        &workload("orders", "shop", 2),
    );
    e.avro[0].value_json = Some(
        r#"{"placed":1764000000123,"total":"\u0004\u00e2","coupon":{"string":"SAVE"}}"#.into(),
    );
    e.avro[0].redacted.clear();
    shell.apply(&e);
    shell.welcome = false;
    shell.tab = Tab::Tap;
    let mut h = harness(shell);
    h.run_steps(3);
    h.get_by_label("#0").click();
    h.run_steps(3);

    // Without a registry the value is as encoded, and the inspector says why.
    h.get_by_label("placed: 1764000000123");
    h.get_by_label_contains("No registry loaded");

    // The Schemas view loads the registry: the detail is read again with the writer schema.
    h.state_mut().schemas.snapshot = Some(registry());
    h.run_steps(3);
    h.get_by_label("placed: \"2025-11-24T16:00:00.123Z\"");
    h.get_by_label("total: \"12.50\"");
    h.get_by_label("coupon: \"SAVE\"");
    assert!(h.query_by_label_contains("No registry loaded").is_none());
    h.get_by_label("writer schema: version 2, id 7").click();
    h.run_steps(3);
    h.get_by_label(ORDER_SCHEMA);

    // A registry without the message's schema id says so.
    let other = meshlens::sources::registry_watch::Snapshot {
        source: "elsewhere".into(),
        ..Default::default()
    };
    h.state_mut().schemas.snapshot = Some(std::sync::Arc::new(other));
    h.run_steps(3);
    h.get_by_label_contains("schema id 7 is not in the registry");
    h.get_by_label("placed: 1764000000123");
}

#[test]
fn a_caller_known_only_by_identity_is_named_like_its_workload() {
    let (web, orders) = (workload("web", "shop", 1), workload("orders", "shop", 2));
    let unnamed = Endpoint {
        workload: None,
        namespace: None,
        ..web.clone()
    };
    let mut shell = Shell::new("test events");
    shell.welcome = false;
    shell.tab = Tab::Tap;
    shell.apply(&request(1, &web, &orders));
    shell.apply(&request(2, &unnamed, &orders));
    let mut h = harness(shell);
    h.run_steps(3);
    assert_eq!(
        h.query_all_by_label("shop/web -> shop/orders").count(),
        2,
        "both rows name the caller the same way"
    );
    assert!(h.query_by_label_contains("web.shop ->").is_none());
}
