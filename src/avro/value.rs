//! Decoded Avro values.
//!
//! A value carries no names: records are their fields in the reader schema's order, enums
//! are symbol indices, unions keep the reader branch index. Names, logical types and labels
//! come from the reader schema the value was decoded against, so decoding allocates nothing
//! per field name and rendering can show branch names and logical values exactly.

use serde_json::Value as Json;

use super::schema::{Kind, NodeId, Schema};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Bytes(Vec<u8>),
    String(String),
    Fixed(Vec<u8>),
    /// Index into the reader enum's symbols.
    Enum(u32),
    Array(Vec<Value>),
    /// Entries in the order they were encoded.
    Map(Vec<(String, Value)>),
    /// Field values in the reader record's field order.
    Record(Vec<Value>),
    /// Reader branch index and the value of that branch.
    Union(u32, Box<Value>),
}

impl Value {
    /// The Avro type this value is for, to say what was found where something else was needed.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Int(_) => "int",
            Value::Long(_) => "long",
            Value::Float(_) => "float",
            Value::Double(_) => "double",
            Value::Bytes(_) => "bytes",
            Value::String(_) => "string",
            Value::Fixed(_) => "fixed",
            Value::Enum(_) => "enum",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Record(_) => "record",
            Value::Union(..) => "union",
        }
    }
}

fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(c as u32).ok()).collect()
}

fn float_from(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

impl Value {
    /// Converts a schema default (JSON) to the value it stands for; `None` if it does not fit.
    /// A union default takes the first branch it is valid for.
    pub fn from_default(schema: &Schema, id: NodeId, json: &Json) -> Option<Value> {
        Some(match (schema.kind(id), json) {
            (Kind::Null, Json::Null) => Value::Null,
            (Kind::Boolean, Json::Bool(b)) => Value::Boolean(*b),
            (Kind::Int, Json::Number(n)) => Value::Int(i32::try_from(n.as_i64()?).ok()?),
            (Kind::Long, Json::Number(n)) => Value::Long(n.as_i64()?),
            (Kind::Float, j) => Value::Float(float_from(j)? as f32),
            (Kind::Double, j) => Value::Double(float_from(j)?),
            (Kind::Bytes, Json::String(s)) => Value::Bytes(latin1_bytes(s)?),
            (Kind::String, Json::String(s)) => Value::String(s.clone()),
            (Kind::Fixed(f), Json::String(s)) => {
                let bytes = latin1_bytes(s)?;
                (bytes.len() == f.size).then_some(Value::Fixed(bytes))?
            }
            (Kind::Enum(e), Json::String(s)) => {
                Value::Enum(e.symbols.iter().position(|x| x == s)? as u32)
            }
            (Kind::Array(items), Json::Array(values)) => Value::Array(
                values
                    .iter()
                    .map(|v| Value::from_default(schema, *items, v))
                    .collect::<Option<_>>()?,
            ),
            (Kind::Map(values), Json::Object(obj)) => Value::Map(
                obj.iter()
                    .map(|(k, v)| Some((k.clone(), Value::from_default(schema, *values, v)?)))
                    .collect::<Option<_>>()?,
            ),
            (Kind::Record(r), Json::Object(obj)) => Value::Record(
                r.fields
                    .iter()
                    .map(|f| match obj.get(&f.name).or(f.default.as_ref()) {
                        Some(v) => Value::from_default(schema, f.schema, v),
                        None => None,
                    })
                    .collect::<Option<_>>()?,
            ),
            (Kind::Union(branches), j) => branches.iter().enumerate().find_map(|(i, b)| {
                Value::from_default(schema, *b, j).map(|v| Value::Union(i as u32, Box::new(v)))
            })?,
            _ => return None,
        })
    }
}
