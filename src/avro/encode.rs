//! Binary encoding of a [`Value`] against a schema.
//!
//! Values carry no type names, so the schema decides the encoding and the value must match
//! it exactly: no promotion, unions name their branch, enums their symbol index. A value
//! that does not fit yields an [`EncodeError`] naming its path, and the output is left as
//! it was, so a caller appending many datums to one buffer never keeps half a datum.
//! Arrays and maps are written as one block and the end marker, as fastavro and Java do.

use super::error::EncodeError;
use super::schema::{Kind, NodeId, Schema};
use super::value::Value;

/// Appends the encoding of `value` as the schema's root type to `out`.
pub fn encode(schema: &Schema, value: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    encode_node(schema, schema.root(), value, out).inspect_err(|_| out.truncate(start))
}

/// A zig-zag varint, the encoding of Avro `int` and `long`.
pub fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Length-prefixed bytes, the encoding of Avro `bytes` and `string`.
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

fn encode_node(
    schema: &Schema,
    id: NodeId,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let kind = schema.kind(id);
    match (kind, value) {
        (Kind::Null, Value::Null) => {}
        (Kind::Boolean, Value::Boolean(b)) => out.push(u8::from(*b)),
        (Kind::Int, Value::Int(v)) => write_long(out, i64::from(*v)),
        (Kind::Long, Value::Long(v)) => write_long(out, *v),
        (Kind::Float, Value::Float(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Kind::Double, Value::Double(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Kind::Bytes, Value::Bytes(b)) => write_bytes(out, b),
        (Kind::String, Value::String(s)) => write_bytes(out, s.as_bytes()),
        (Kind::Fixed(f), Value::Fixed(b)) => {
            if b.len() != f.size {
                return Err(EncodeError::new(format!(
                    "{} bytes for fixed {} of size {}",
                    b.len(),
                    f.name,
                    f.size
                )));
            }
            out.extend_from_slice(b);
        }
        (Kind::Enum(e), Value::Enum(i)) => {
            if *i as usize >= e.symbols.len() {
                return Err(EncodeError::new(format!(
                    "symbol index {i} is out of range for enum {} (0..{})",
                    e.name,
                    e.symbols.len()
                )));
            }
            write_long(out, i64::from(*i));
        }
        (Kind::Array(items), Value::Array(values)) => {
            if !values.is_empty() {
                write_long(out, values.len() as i64);
                for (i, v) in values.iter().enumerate() {
                    encode_node(schema, *items, v, out).map_err(|e| e.within(format!("[{i}]")))?;
                }
            }
            out.push(0);
        }
        (Kind::Map(values), Value::Map(entries)) => {
            if !entries.is_empty() {
                write_long(out, entries.len() as i64);
                for (k, v) in entries {
                    write_bytes(out, k.as_bytes());
                    encode_node(schema, *values, v, out)
                        .map_err(|e| e.within(format!("[{k:?}]")))?;
                }
            }
            out.push(0);
        }
        (Kind::Record(r), Value::Record(values)) => {
            if values.len() != r.fields.len() {
                return Err(EncodeError::new(format!(
                    "{} values for record {} of {} fields",
                    values.len(),
                    r.name,
                    r.fields.len()
                )));
            }
            for (f, v) in r.fields.iter().zip(values) {
                encode_node(schema, f.schema, v, out)
                    .map_err(|e| e.within(format!(".{}", f.name)))?;
            }
        }
        (Kind::Union(branches), Value::Union(i, v)) => {
            let branch = branches.get(*i as usize).ok_or_else(|| {
                EncodeError::new(format!(
                    "union branch {i} is out of range (0..{})",
                    branches.len()
                ))
            })?;
            write_long(out, i64::from(*i));
            encode_node(schema, *branch, v, out)?;
        }
        (Kind::Union(_), v) => {
            return Err(EncodeError::new(format!(
                "found {}, but a union needs Value::Union naming its branch",
                v.type_name()
            )));
        }
        (_, v) => {
            return Err(EncodeError::new(format!(
                "found {}, but the schema has {}",
                v.type_name(),
                schema.branch_label(id)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::avro::Decoder;

    fn round_trip(schema: &str, value: Value) -> Vec<u8> {
        let s = Arc::new(Schema::parse(schema).unwrap());
        let mut out = Vec::new();
        encode(&s, &value, &mut out).unwrap();
        let back = Decoder::new(s.clone(), s).decode(&out).unwrap();
        assert_eq!(back, value, "{schema}");
        out
    }

    #[test]
    fn every_primitive_round_trips() {
        for (schema, value) in [
            ("\"null\"", Value::Null),
            ("\"boolean\"", Value::Boolean(true)),
            ("\"boolean\"", Value::Boolean(false)),
            ("\"int\"", Value::Int(i32::MIN)),
            ("\"int\"", Value::Int(i32::MAX)),
            ("\"long\"", Value::Long(i64::MIN)),
            ("\"long\"", Value::Long(i64::MAX)),
            ("\"long\"", Value::Long(-64)),
            ("\"float\"", Value::Float(-1.5e-38)),
            ("\"double\"", Value::Double(f64::INFINITY)),
            ("\"bytes\"", Value::Bytes(vec![0, 255, 7])),
            ("\"string\"", Value::String("žluť \u{1F600}".into())),
            ("\"string\"", Value::String(String::new())),
        ] {
            round_trip(schema, value);
        }
    }

    #[test]
    fn varints_match_the_specification() {
        assert_eq!(round_trip("\"long\"", Value::Long(-1)), [0x01]);
        assert_eq!(round_trip("\"long\"", Value::Long(64)), [0x80, 0x01]);
        assert_eq!(
            round_trip("\"long\"", Value::Long(i64::MIN)),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn complex_types_round_trip() {
        round_trip(
            r#"{"type":"fixed","name":"f","size":3}"#,
            Value::Fixed(vec![1, 2, 3]),
        );
        round_trip(
            r#"{"type":"enum","name":"e","symbols":["A","B","C"]}"#,
            Value::Enum(2),
        );
        let bytes = round_trip(
            r#"{"type":"array","items":"int"}"#,
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
        );
        assert_eq!(bytes, [0x04, 0x02, 0x04, 0x00], "one block, then the end");
        assert_eq!(
            round_trip(r#"{"type":"array","items":"int"}"#, Value::Array(vec![])),
            [0x00]
        );
        round_trip(
            r#"{"type":"map","values":"string"}"#,
            Value::Map(vec![
                ("z".into(), Value::String("first".into())),
                ("".into(), Value::String("second".into())),
            ]),
        );
        round_trip(r#"{"type":"map","values":"long"}"#, Value::Map(Vec::new()));
        round_trip(
            r#"["null","string",{"type":"record","name":"r","fields":[]}]"#,
            Value::Union(2, Box::new(Value::Record(vec![]))),
        );
    }

    #[test]
    fn nested_recursive_and_logical_types_round_trip() {
        let schema = r#"{"type":"record","name":"n","fields":[
            {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
            {"name":"day","type":{"type":"int","logicalType":"date"}},
            {"name":"id","type":{"type":"string","logicalType":"uuid"}},
            {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":5,"scale":2}},
            {"name":"span","type":{"type":"fixed","name":"d","size":12,"logicalType":"duration"}},
            {"name":"tags","type":{"type":"map","values":{"type":"array","items":"d"}}},
            {"name":"next","type":["null","n"]}]}"#;
        let leaf = Value::Record(vec![
            Value::Long(1_700_000_000_000_000),
            Value::Int(19_000),
            Value::String("6ba7b810-9dad-11d1-80b4-00c04fd430c8".into()),
            Value::Bytes(vec![0x30, 0x39]),
            Value::Fixed(vec![0; 12]),
            Value::Map(vec![(
                "k".into(),
                Value::Array(vec![Value::Fixed(vec![9; 12])]),
            )]),
            Value::Union(0, Box::new(Value::Null)),
        ]);
        let mut top = leaf.clone();
        if let Value::Record(f) = &mut top {
            f[6] = Value::Union(1, Box::new(leaf));
        }
        round_trip(schema, top);
    }

    #[test]
    fn a_value_that_does_not_fit_names_its_path_and_writes_nothing() {
        let s = Schema::parse(
            r#"{"type":"record","name":"r","fields":[
                {"name":"a","type":"int"},
                {"name":"lines","type":{"type":"array","items":{"type":"record","name":"l","fields":[
                    {"name":"sku","type":["null","string"]},
                    {"name":"kind","type":{"type":"enum","name":"k","symbols":["X"]}},
                    {"name":"raw","type":{"type":"fixed","name":"f","size":2}},
                    {"name":"attrs","type":{"type":"map","values":"long"}}]}}}]}"#,
        )
        .unwrap();
        let line = |sku: Value, kind: u32, raw: Vec<u8>, attr: Value| {
            Value::Record(vec![
                sku,
                Value::Enum(kind),
                Value::Fixed(raw),
                Value::Map(vec![("n".into(), attr)]),
            ])
        };
        let ok = || {
            line(
                Value::Union(1, Box::new(Value::String("x".into()))),
                0,
                vec![1, 2],
                Value::Long(1),
            )
        };
        for (bad, path, needle) in [
            (
                line(Value::String("x".into()), 0, vec![1, 2], Value::Long(1)),
                ".lines[1].sku",
                "found string, but a union needs Value::Union",
            ),
            (
                line(
                    Value::Union(2, Box::new(Value::Null)),
                    0,
                    vec![1, 2],
                    Value::Long(1),
                ),
                ".lines[1].sku",
                "union branch 2 is out of range (0..2)",
            ),
            (
                line(
                    Value::Union(0, Box::new(Value::Null)),
                    1,
                    vec![1, 2],
                    Value::Long(1),
                ),
                ".lines[1].kind",
                "symbol index 1 is out of range for enum k",
            ),
            (
                line(
                    Value::Union(0, Box::new(Value::Null)),
                    0,
                    vec![1],
                    Value::Long(1),
                ),
                ".lines[1].raw",
                "1 bytes for fixed f of size 2",
            ),
            (
                line(
                    Value::Union(0, Box::new(Value::Null)),
                    0,
                    vec![1, 2],
                    Value::Int(1),
                ),
                ".lines[1].attrs[\"n\"]",
                "found int, but the schema has long",
            ),
            (
                Value::Record(vec![]),
                ".lines[1]",
                "0 values for record l of 4 fields",
            ),
        ] {
            let value = Value::Record(vec![Value::Int(1), Value::Array(vec![ok(), bad])]);
            let mut out = vec![0xaa];
            let err = encode(&s, &value, &mut out).unwrap_err();
            assert_eq!(err.path, path, "{err}");
            assert!(err.to_string().contains(needle), "{err}");
            assert_eq!(out, [0xaa], "nothing of the failed datum is kept");
        }
    }
}
