//! The friendly view of a value that arrives as Avro JSON (the tap's `value_json`) rather
//! than decoded: with the writer schema, unions are unwrapped, bytes and fixed become hex and
//! logical types become values, by the same rules as `friendly`. The tap keeps Avro JSON on
//! the wire because it is lossless and what Avro tools read; this is for showing it.
//!
//! Anything that does not fit the schema (a field a contract redacted to `"***"`, a value of
//! another schema) is kept as it is rather than failing.

use serde_json::Value as Json;

use super::friendly::{hex, logical_text};
use super::schema::{Kind, NodeId, Schema};
use super::value::Value;

/// `json` (Avro JSON of a value of `schema`'s root) in the friendly view.
pub fn friendly_from_avro_json(schema: &Schema, json: &Json) -> Json {
    convert(schema, schema.root(), json)
}

fn convert(schema: &Schema, id: NodeId, json: &Json) -> Json {
    let node = schema.node(id);
    if let Some(logical) = node.logical
        && let Some(value) = scalar(&node.kind, json)
        && let Some(text) = logical_text(logical, &value)
    {
        return Json::String(text);
    }
    match (&node.kind, json) {
        (Kind::Bytes | Kind::Fixed(_), Json::String(s)) => match latin1(s) {
            Some(bytes) => Json::String(hex(&bytes)),
            None => json.clone(),
        },
        (Kind::Record(r), Json::Object(map)) => Json::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match r.fields.iter().find(|f| &f.name == k) {
                        Some(f) => convert(schema, f.schema, v),
                        None => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        (Kind::Array(items), Json::Array(values)) => {
            Json::Array(values.iter().map(|v| convert(schema, *items, v)).collect())
        }
        (Kind::Map(inner), Json::Object(map)) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), convert(schema, *inner, v)))
                .collect(),
        ),
        (Kind::Union(branches), Json::Object(map)) if map.len() == 1 => {
            let (label, inner) = map.iter().next().expect("one entry");
            match branches.iter().find(|b| schema.branch_label(**b) == label) {
                Some(b) => convert(schema, *b, inner),
                None => json.clone(),
            }
        }
        _ => json.clone(),
    }
}

/// The decoded scalar an Avro JSON value stands for, when it fits `kind`.
fn scalar(kind: &Kind, json: &Json) -> Option<Value> {
    Some(match (kind, json) {
        (Kind::Int, Json::Number(n)) => Value::Int(i32::try_from(n.as_i64()?).ok()?),
        (Kind::Long, Json::Number(n)) => Value::Long(n.as_i64()?),
        (Kind::String, Json::String(s)) => Value::String(s.clone()),
        (Kind::Bytes, Json::String(s)) => Value::Bytes(latin1(s)?),
        (Kind::Fixed(f), Json::String(s)) => {
            let bytes = latin1(s)?;
            if bytes.len() != f.size {
                return None;
            }
            Value::Fixed(bytes)
        }
        _ => return None,
    })
}

/// Avro JSON writes bytes as code points 0–255; anything above is not bytes.
fn latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(c).ok()).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::avro::{Decoder, encode, to_avro_json};
    use serde_json::json;

    const SCHEMA: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
        {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "local", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "fee", "type": {"type": "fixed", "name": "Money", "size": 4, "logicalType": "decimal", "precision": 8, "scale": 2}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "ttl", "type": {"type": "fixed", "name": "Ttl", "size": 12, "logicalType": "duration"}},
        {"name": "note", "type": ["null", "string"]},
        {"name": "when", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}]},
        {"name": "raw", "type": "bytes"},
        {"name": "email", "type": "string"}
    ]}"#;

    /// Encodes a value through the real encoder and decoder, then to Avro JSON, so the test
    /// reads exactly what the proxy writes.
    fn avro_json(schema: &Arc<Schema>) -> Json {
        let value = Value::Record(vec![
            Value::Long(1_764_000_000_123),
            Value::Long(1_764_000_000_123_456),
            Value::Int(20_416),
            Value::Int(45_296_789),
            Value::Bytes(vec![0x04, 0xe2]),
            Value::Fixed(vec![0, 0, 0, 7]),
            Value::String("4b1c2f7e-8a55-4a8c-9a59-2f1e0b6d7c11".into()),
            Value::Fixed(vec![1, 0, 0, 0, 2, 0, 0, 0, 0xe8, 3, 0, 0]),
            Value::Union(1, Box::new(Value::String("leave at door".into()))),
            Value::Union(1, Box::new(Value::Long(1_764_000_000_000_001))),
            Value::Bytes(vec![0xca, 0xfe]),
            Value::String("ada@example.com".into()),
        ]);
        let mut bytes = Vec::new();
        encode(schema, &value, &mut bytes).unwrap();
        let decoded = Decoder::new(schema.clone(), schema.clone())
            .decode(&bytes)
            .unwrap();
        serde_json::from_str(&to_avro_json(schema, &decoded, None)).unwrap()
    }

    #[test]
    fn logical_types_become_values_and_unions_unwrap() {
        let schema = Arc::new(Schema::parse(SCHEMA).unwrap());
        let got = friendly_from_avro_json(&schema, &avro_json(&schema));
        assert_eq!(
            got,
            json!({
                "placed": "2025-11-24T16:00:00.123Z",
                "local": "2025-11-24T16:00:00.123456",
                "day": "2025-11-24",
                "at": "12:34:56.789",
                "total": "12.50",
                "fee": "0.07",
                "id": "4b1c2f7e-8a55-4a8c-9a59-2f1e0b6d7c11",
                "ttl": "P1M2DT1.000S",
                "note": "leave at door",
                "when": "2025-11-24T16:00:00.000001Z",
                "raw": "cafe",
                "email": "ada@example.com"
            })
        );
    }

    #[test]
    fn what_does_not_fit_the_schema_is_kept() {
        let schema = Arc::new(Schema::parse(SCHEMA).unwrap());
        let mut json = avro_json(&schema);
        json["placed"] = json!("***");
        json["total"] = json!("\u{263a}");
        json["note"] = json!({"shop.Other": 1});
        json["extra"] = json!(5);
        let got = friendly_from_avro_json(&schema, &json);
        assert_eq!(got["placed"], "***");
        assert_eq!(got["total"], "\u{263a}");
        assert_eq!(got["note"], json!({"shop.Other": 1}));
        assert_eq!(got["extra"], 5);
        assert_eq!(got["day"], "2025-11-24");
    }
}
