//! The Avro inspector view, driven headless through egui_kittest.
#![cfg(feature = "gui")]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use meshlens::ui::inspector::{Inspector, View};

fn harness() -> Harness<'static, Inspector> {
    Harness::builder()
        .with_size(egui::vec2(1100.0, 700.0))
        .build_ui_state(
            |ui, inspector: &mut Inspector| inspector.ui(ui),
            Inspector::default(),
        )
}

#[test]
fn example_payload_is_decoded_and_described() {
    let mut h = harness();
    h.run();
    let text = h.state().output.clone().unwrap();
    assert!(
        text.contains("\"placed_at\": \"2026-11-26T12:00:00.000Z\""),
        "{text}"
    );
    h.get_by_label_contains("Confluent v0 (schema id) · schema id 1");
}

#[test]
fn switching_to_avro_json_shows_union_labels() {
    let mut h = harness();
    h.run();
    h.get_by_label("Avro JSON").click();
    h.run();
    assert!(h.state().view == View::AvroJson);
    let text = h.state().output.clone().unwrap();
    assert!(
        text.contains("\"coupon\": {\n    \"string\": \"SPRING\"\n  }"),
        "{text}"
    );
}

#[test]
fn editing_the_payload_reports_errors_in_place() {
    let mut h = harness();
    h.run();
    h.get_by_label("Payload (hex)").focus();
    h.get_by_label("Payload (hex)").type_text(" zz");
    h.run();
    let err = h.state().output.clone().unwrap_err();
    assert!(err.contains("is not hex"), "{err}");
    h.get_by_label_contains("is not hex");
}
