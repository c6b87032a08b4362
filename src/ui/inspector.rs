//! The Avro inspector: paste a writer schema and a payload (hex), see how it is framed,
//! which schema wrote it, and the decoded value in the friendly or Avro JSON view.

use std::sync::Arc;

use egui::{RichText, TextEdit};

use crate::avro::{
    Decoded, PayloadDecoder, Schema, SniffOptions, friendly::hex, to_avro_json, to_friendly_json,
};

const EXAMPLE_SCHEMA: &str = r#"{
  "type": "record", "name": "OrderPlaced", "namespace": "shop.orders",
  "fields": [
    {"name": "order_id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "coupon", "type": ["null", "string"], "default": null}
  ]
}"#;

/// Confluent v0 frame (schema id 1) of an OrderPlaced.
const EXAMPLE_PAYLOAD: &str = "00 00 00 00 01 48 31 62 30 30 63 63 30 30 2d 30 30 30 30 2d 34 30 30 30 2d 38 30 30 30 2d 30 30 30 30 30 30 30 30 30 30 30 31 04 30 39 80 c8 d0 fb c2 68 02 0c 53 50 52 49 4e 47";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum View {
    Friendly,
    AvroJson,
}

pub struct Inspector {
    pub schema_text: String,
    pub payload_text: String,
    pub view: View,
    pub output: Result<String, String>,
    pub summary: String,
}

impl Default for Inspector {
    fn default() -> Inspector {
        let mut inspector = Inspector {
            schema_text: EXAMPLE_SCHEMA.to_string(),
            payload_text: EXAMPLE_PAYLOAD.to_string(),
            view: View::Friendly,
            output: Ok(String::new()),
            summary: String::new(),
        };
        inspector.decode();
        inspector
    }
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("the payload has an odd number of hex digits".into());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("\"{}\" at digit {i} is not hex", &digits[i..i + 2]))
        })
        .collect()
}

impl Inspector {
    /// Decodes the current inputs; runs only when an input changed, never per frame.
    pub fn decode(&mut self) {
        self.summary.clear();
        self.output = self.try_decode().map(|d| {
            self.summary = format!(
                "{} · {} · writer {} · fingerprint {}",
                d.framing,
                d.reference,
                d.writer.schema.display_name(),
                hex(&d.writer.fingerprint.to_le_bytes())
            );
            d.values
                .iter()
                .map(|v| match self.view {
                    View::Friendly => to_friendly_json(&d.reader, v, Some(2)),
                    View::AvroJson => to_avro_json(&d.reader, v, Some(2)),
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
    }

    fn try_decode(&self) -> Result<Decoded, String> {
        let schema = Schema::parse(&self.schema_text).map_err(|e| format!("schema: {e}"))?;
        let payload = parse_hex(&self.payload_text).map_err(|e| format!("payload: {e}"))?;
        PayloadDecoder::new(SniffOptions::default())
            .with_schema(Arc::new(schema))
            .decode(&payload, &[])
            .map_err(|e| e.to_string())
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let mut changed = false;
        ui.columns(2, |cols| {
            let label = cols[0].label(RichText::new("Writer schema").strong());
            changed |= cols[0]
                .add(
                    TextEdit::multiline(&mut self.schema_text)
                        .code_editor()
                        .desired_rows(18)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id)
                .changed();
            let label = cols[0].label(RichText::new("Payload (hex)").strong());
            changed |= cols[0]
                .add(
                    TextEdit::multiline(&mut self.payload_text)
                        .code_editor()
                        .desired_rows(5)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id)
                .changed();

            cols[1].horizontal(|ui| {
                changed |= ui
                    .selectable_value(&mut self.view, View::Friendly, "Friendly")
                    .changed();
                changed |= ui
                    .selectable_value(&mut self.view, View::AvroJson, "Avro JSON")
                    .changed();
            });
            match &self.output {
                Ok(text) => {
                    cols[1].label(RichText::new(&self.summary).weak());
                    cols[1].separator();
                    // Read-only, but selectable and copyable, with indentation kept.
                    egui::ScrollArea::vertical().show(&mut cols[1], |ui| {
                        ui.add(
                            TextEdit::multiline(&mut text.as_str())
                                .code_editor()
                                .desired_width(f32::INFINITY),
                        );
                    });
                }
                Err(e) => {
                    cols[1].colored_label(egui::Color32::from_rgb(220, 80, 80), e);
                }
            }
        });
        if changed {
            self.decode();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_decodes() {
        let i = Inspector::default();
        let text = i.output.clone().unwrap();
        assert!(text.contains("\"total\": \"123.45\""), "{text}");
        assert!(i.summary.contains("Confluent v0"), "{}", i.summary);
    }
}
