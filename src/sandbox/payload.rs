//! Random values that are valid for their schema — every primitive, complex and logical type
//! — from a seeded generator, so one seed gives the same messages every run.

use crate::avro::logical::max_decimal_digits;
use crate::avro::{Kind, Logical, NodeId, Schema, Value};

/// Below this depth anything goes; at it, unions take a branch that ends the recursion and
/// arrays and maps are empty, so recursive schemas give finite values.
const MAX_DEPTH: usize = 8;

/// Sizes of what the generator makes.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub max_items: usize,
    pub max_string: usize,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            max_items: 3,
            max_string: 12,
        }
    }
}

/// A seeded generator of valid values.
pub struct Generator {
    rng: fastrand::Rng,
    shape: Shape,
}

/// Mixes a run's seed with a name (a workload's call, a route) into a stream seed, so each
/// caller's sequence stays the same whatever else runs.
pub fn stream_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Generator {
    pub fn new(seed: u64, shape: Shape) -> Generator {
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            shape,
        }
    }

    /// The generator's own random numbers, for what goes with a value (latency, status).
    pub fn rng(&mut self) -> &mut fastrand::Rng {
        &mut self.rng
    }

    pub fn value(&mut self, schema: &Schema) -> Value {
        self.node(schema, schema.root(), 0)
    }

    fn node(&mut self, schema: &Schema, id: NodeId, depth: usize) -> Value {
        let node = schema.node(id);
        if let Some(logical) = node.logical
            && let Some(v) = self.logical(logical, &node.kind)
        {
            return v;
        }
        match &node.kind {
            Kind::Null => Value::Null,
            Kind::Boolean => Value::Boolean(self.rng.bool()),
            Kind::Int => Value::Int(self.rng.i32(-1000..=1000)),
            Kind::Long => Value::Long(self.rng.i64(-1_000_000..=1_000_000)),
            Kind::Float => Value::Float((self.rng.f32() - 0.5) * 2000.0),
            Kind::Double => Value::Double((self.rng.f64() - 0.5) * 2e6),
            Kind::Bytes => Value::Bytes(self.bytes(self.shape.max_string)),
            Kind::String => Value::String(self.string()),
            Kind::Fixed(f) => Value::Fixed(self.bytes_exact(f.size)),
            Kind::Enum(e) => Value::Enum(self.rng.u32(0..e.symbols.len().max(1) as u32)),
            Kind::Array(item) => {
                let n = self.count(depth);
                Value::Array(
                    (0..n)
                        .map(|_| self.node(schema, *item, depth + 1))
                        .collect(),
                )
            }
            Kind::Map(item) => {
                let n = self.count(depth);
                let mut entries: Vec<(String, Value)> = Vec::with_capacity(n);
                for i in 0..n {
                    // Distinct keys: a map with a repeated key is not one value.
                    let key = format!("{}{i}", self.string());
                    entries.push((key, self.node(schema, *item, depth + 1)));
                }
                Value::Map(entries)
            }
            Kind::Record(r) => Value::Record(
                r.fields
                    .iter()
                    .map(|f| self.node(schema, f.schema, depth + 1))
                    .collect(),
            ),
            Kind::Union(branches) => {
                let pick = if depth >= MAX_DEPTH {
                    branches
                        .iter()
                        .position(|b| !is_container(schema.kind(*b)))
                        .unwrap_or(0)
                } else {
                    self.rng.usize(0..branches.len().max(1))
                };
                match branches.get(pick) {
                    Some(b) => {
                        Value::Union(pick as u32, Box::new(self.node(schema, *b, depth + 1)))
                    }
                    None => Value::Null,
                }
            }
        }
    }

    /// A value of the logical type on `kind`; `None` when the pair is not one the
    /// specification defines (the underlying type is then generated).
    fn logical(&mut self, logical: Logical, kind: &Kind) -> Option<Value> {
        const DAY_MS: i64 = 86_400_000;
        // 2020-01-01 to 2030-01-01, in milliseconds.
        let ms = self.rng.i64(1_577_836_800_000..1_893_456_000_000);
        Some(match (logical, kind) {
            (Logical::Decimal { precision, .. }, Kind::Bytes) => {
                Value::Bytes(twos_complement(self.unscaled(precision), None))
            }
            (Logical::Decimal { precision, .. }, Kind::Fixed(f)) => {
                let p = precision.min(max_decimal_digits(f.size));
                Value::Fixed(twos_complement(self.unscaled(p), Some(f.size)))
            }
            (Logical::BigDecimal, Kind::Bytes) => {
                let mut out = Vec::new();
                let unscaled = twos_complement(self.unscaled(12), None);
                crate::avro::encode::write_bytes(&mut out, &unscaled);
                crate::avro::encode::write_long(&mut out, self.rng.i64(0..=6));
                Value::Bytes(out)
            }
            (Logical::Uuid, Kind::String) => Value::String(self.uuid_text()),
            (Logical::Uuid, Kind::Fixed(f)) if f.size == 16 => Value::Fixed(self.bytes_exact(16)),
            (Logical::Date, Kind::Int) => Value::Int((ms / DAY_MS) as i32),
            (Logical::TimeMillis, Kind::Int) => Value::Int(self.rng.i32(0..DAY_MS as i32)),
            (Logical::TimeMicros, Kind::Long) => Value::Long(self.rng.i64(0..DAY_MS * 1000)),
            (Logical::TimestampMillis | Logical::LocalTimestampMillis, Kind::Long) => {
                Value::Long(ms)
            }
            (Logical::TimestampMicros | Logical::LocalTimestampMicros, Kind::Long) => {
                Value::Long(ms * 1000 + self.rng.i64(0..1000))
            }
            (Logical::TimestampNanos | Logical::LocalTimestampNanos, Kind::Long) => {
                Value::Long(ms * 1_000_000 + self.rng.i64(0..1_000_000))
            }
            (Logical::Duration, Kind::Fixed(f)) if f.size == 12 => {
                let mut b = Vec::with_capacity(12);
                for max in [24u32, 31, DAY_MS as u32] {
                    b.extend_from_slice(&self.rng.u32(0..max).to_le_bytes());
                }
                Value::Fixed(b)
            }
            _ => return None,
        })
    }

    /// An unscaled decimal of at most `precision` digits (and at most 18).
    fn unscaled(&mut self, precision: u32) -> i64 {
        let bound = 10i64.pow(precision.clamp(1, 18)) - 1;
        self.rng.i64(-bound..=bound)
    }

    fn count(&mut self, depth: usize) -> usize {
        if depth >= MAX_DEPTH {
            0
        } else {
            self.rng.usize(0..=self.shape.max_items)
        }
    }

    fn string(&mut self) -> String {
        let n = self.rng.usize(1..=self.shape.max_string.max(1));
        (0..n).map(|_| self.rng.alphanumeric()).collect()
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.rng.usize(0..=max);
        self.bytes_exact(n)
    }

    fn bytes_exact(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.rng.u8(..)).collect()
    }

    fn uuid_text(&mut self) -> String {
        let mut b = self.bytes_exact(16);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

fn is_container(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Record(_) | Kind::Array(_) | Kind::Map(_) | Kind::Union(_)
    )
}

/// Big-endian two's complement: the fewest bytes, or sign-extended to `size`.
fn twos_complement(v: i64, size: Option<usize>) -> Vec<u8> {
    let full = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (full[start], full[start + 1]);
        let redundant = (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    let minimal = &full[start..];
    match size {
        Some(size) if size > minimal.len() => {
            let fill = if v < 0 { 0xff } else { 0 };
            let mut out = vec![fill; size - minimal.len()];
            out.extend_from_slice(minimal);
            out
        }
        _ => minimal.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::avro::{Decoder, encode, to_friendly_json};

    const EVERYTHING: &str = r#"{"type":"record","name":"All","namespace":"t","fields":[
      {"name":"n","type":"null"},{"name":"b","type":"boolean"},{"name":"i","type":"int"},
      {"name":"l","type":"long"},{"name":"f","type":"float"},{"name":"d","type":"double"},
      {"name":"by","type":"bytes"},{"name":"s","type":"string"},
      {"name":"fx","type":{"type":"fixed","name":"F4","size":4}},
      {"name":"e","type":{"type":"enum","name":"Colour","symbols":["RED","GREEN","BLUE"]}},
      {"name":"a","type":{"type":"array","items":"string"}},
      {"name":"m","type":{"type":"map","values":"long"}},
      {"name":"u","type":["null","string",{"type":"record","name":"Inner","fields":[{"name":"x","type":"int"}]}]},
      {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
      {"name":"decf","type":{"type":"fixed","name":"D8","size":8,"logicalType":"decimal","precision":18,"scale":4}},
      {"name":"bigd","type":{"type":"bytes","logicalType":"big-decimal"}},
      {"name":"uid","type":{"type":"string","logicalType":"uuid"}},
      {"name":"uidf","type":{"type":"fixed","name":"U16","size":16,"logicalType":"uuid"}},
      {"name":"date","type":{"type":"int","logicalType":"date"}},
      {"name":"tms","type":{"type":"int","logicalType":"time-millis"}},
      {"name":"tus","type":{"type":"long","logicalType":"time-micros"}},
      {"name":"tsms","type":{"type":"long","logicalType":"timestamp-millis"}},
      {"name":"tsus","type":{"type":"long","logicalType":"timestamp-micros"}},
      {"name":"tsns","type":{"type":"long","logicalType":"timestamp-nanos"}},
      {"name":"ltms","type":{"type":"long","logicalType":"local-timestamp-millis"}},
      {"name":"ltus","type":{"type":"long","logicalType":"local-timestamp-micros"}},
      {"name":"ltns","type":{"type":"long","logicalType":"local-timestamp-nanos"}},
      {"name":"dur","type":{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}},
      {"name":"next","type":["null","All"]}]}"#;

    #[test]
    fn every_type_encodes_decodes_and_renders_its_logical_type() {
        let schema = Arc::new(Schema::parse(EVERYTHING).unwrap());
        let mut g = Generator::new(7, Shape::default());
        let decoder = Decoder::new(schema.clone(), schema.clone());
        for _ in 0..200 {
            let v = g.value(&schema);
            let mut bytes = Vec::new();
            encode(&schema, &v, &mut bytes).unwrap();
            let back = decoder.decode(&bytes).unwrap();
            assert_eq!(back, v);
            let json: serde_json::Value =
                serde_json::from_str(&to_friendly_json(&schema, &back, None)).unwrap();
            // Logical values render as text, not as their raw underlying value.
            for field in ["dec", "decf", "bigd", "uidf", "date", "tsns", "dur"] {
                assert!(
                    json[field].is_string(),
                    "{field} did not render as its logical type: {json}"
                );
            }
        }
    }

    #[test]
    fn a_seed_gives_the_same_values_and_another_seed_others() {
        let schema = Schema::parse(EVERYTHING).unwrap();
        let run = |seed| {
            let mut g = Generator::new(seed, Shape::default());
            (0..20).map(|_| g.value(&schema)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        assert_ne!(
            stream_seed(1, "shop/web:place-order"),
            stream_seed(1, "shop/web:browse")
        );
    }

    #[test]
    fn decimals_fit_their_precision_and_size() {
        assert_eq!(twos_complement(-1, None), vec![0xff]);
        assert_eq!(twos_complement(128, None), vec![0x00, 0x80]);
        assert_eq!(twos_complement(-129, Some(4)), vec![0xff, 0xff, 0xff, 0x7f]);
    }
}
