//! The specification's JSON encoding of a decoded value: unions as `{"full.name": value}`
//! (or `null`), bytes and fixed as strings of code points 0–255, enums as their symbol, and
//! logical types as their underlying type. This is what Java's `JsonEncoder` writes.

use super::json_out::JsonOut;
use super::schema::{Kind, NodeId, Schema};
use super::value::Value;

/// Renders `value` (decoded against `schema`'s root) as Avro JSON.
pub fn to_avro_json(schema: &Schema, value: &Value, indent: Option<usize>) -> String {
    let mut out = JsonOut::new(indent);
    write(schema, schema.root(), value, &mut out);
    out.finish()
}

fn write(schema: &Schema, id: NodeId, value: &Value, out: &mut JsonOut) {
    match (schema.kind(id), value) {
        (_, Value::Null) => out.null(),
        (_, Value::Boolean(b)) => out.bool(*b),
        (_, Value::Int(v)) => out.int(*v as i64),
        (_, Value::Long(v)) => out.int(*v),
        (_, Value::Float(v)) => out.f32(*v),
        (_, Value::Double(v)) => out.f64(*v),
        (_, Value::Bytes(b) | Value::Fixed(b)) => out.latin1(b),
        (_, Value::String(s)) => out.string(s),
        (Kind::Enum(e), Value::Enum(i)) => out.string(&e.symbols[*i as usize]),
        (Kind::Array(items), Value::Array(values)) => {
            out.begin_array();
            for v in values {
                write(schema, *items, v, out);
            }
            out.end_array();
        }
        (Kind::Map(values), Value::Map(entries)) => {
            out.begin_object();
            for (k, v) in entries {
                out.key(k);
                write(schema, *values, v, out);
            }
            out.end_object();
        }
        (Kind::Record(r), Value::Record(fields)) => {
            out.begin_object();
            for (f, v) in r.fields.iter().zip(fields) {
                out.key(&f.name);
                write(schema, f.schema, v, out);
            }
            out.end_object();
        }
        (Kind::Union(branches), Value::Union(i, v)) => {
            let branch = branches[*i as usize];
            if matches!(**v, Value::Null) {
                out.null();
            } else {
                out.begin_object();
                out.key(schema.branch_label(branch));
                write(schema, branch, v, out);
                out.end_object();
            }
        }
        // A value always comes from decoding against this schema; anything else is a bug
        // upstream, shown rather than hidden.
        (kind, v) => out.string(&format!("<{v:?} does not fit {}>", kind.type_name())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::avro::Decoder;

    fn render(schema: &str, bytes: &[u8]) -> String {
        let s = Arc::new(Schema::parse(schema).unwrap());
        let v = Decoder::new(s.clone(), s.clone()).decode(bytes).unwrap();
        to_avro_json(&s, &v, None)
    }

    #[test]
    fn unions_are_labelled_with_full_names() {
        let schema = r#"{"type":"record","name":"r","namespace":"n","fields":[
            {"name":"a","type":["null",{"type":"record","name":"Inner","fields":[{"name":"x","type":"int"}]}]},
            {"name":"b","type":["null","string"]},
            {"name":"c","type":["null","string"]}]}"#;
        assert_eq!(
            render(schema, &[0x02, 0x06, 0x02, 0x02, b'z', 0x00]),
            r#"{"a":{"n.Inner":{"x":3}},"b":{"string":"z"},"c":null}"#
        );
    }

    #[test]
    fn bytes_fixed_enum_and_logical_types_use_the_underlying_encoding() {
        let schema = r#"{"type":"record","name":"r","fields":[
            {"name":"b","type":"bytes"},
            {"name":"f","type":{"type":"fixed","name":"F","size":2}},
            {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
            {"name":"d","type":{"type":"int","logicalType":"date"}},
            {"name":"m","type":{"type":"map","values":"long"}}]}"#;
        assert_eq!(
            render(
                schema,
                &[
                    0x04, 0x00, 0xff, 0x41, 0x7f, 0x02, 0x02, 0x04, 0x02, b'z', 0x02, 0x02, b'a',
                    0x04, 0x00
                ]
            ),
            "{\"b\":\"\\u0000\u{ff}\",\"f\":\"A\u{7f}\",\"e\":\"B\",\"d\":1,\"m\":{\"z\":1,\"a\":2}}"
        );
    }
}
