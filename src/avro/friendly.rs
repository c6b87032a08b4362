//! The friendly view of a decoded value: what a person wants to read. Unions are unwrapped,
//! enums are their symbol, bytes and fixed are hex, and logical types are shown as values:
//! decimals as exact decimal text, dates, times and timestamps (down to nanoseconds) as
//! ISO 8601, UUIDs in their usual form and durations as ISO 8601 periods. A value a logical
//! type cannot represent (a date out of range, a malformed decimal) falls back to its
//! underlying value rather than failing.

use std::fmt::Write as _;

use num_bigint::BigInt;

use super::decode::{Cursor, Limits};
use super::json_out::JsonOut;
use super::logical::Logical;
use super::schema::{Kind, NodeId, Schema};
use super::value::Value;

/// Renders `value` (decoded against `schema`'s root) in the friendly view.
pub fn to_friendly_json(schema: &Schema, value: &Value, indent: Option<usize>) -> String {
    let mut out = JsonOut::new(indent);
    write(schema, schema.root(), value, &mut out);
    out.finish()
}

/// The friendly text of a scalar with a logical type, or `None` when the type has none or
/// the value does not fit it. Shared by the JSON view and the app's value tree.
pub fn logical_text(logical: Logical, value: &Value) -> Option<String> {
    match (logical, value) {
        (Logical::Decimal { scale, .. }, Value::Bytes(b) | Value::Fixed(b)) => {
            decimal_text(b, scale as i64)
        }
        (Logical::BigDecimal, Value::Bytes(b)) => big_decimal_text(b),
        (Logical::Uuid, Value::String(s)) => Some(s.clone()),
        (Logical::Uuid, Value::Fixed(b)) => Some(uuid_text(b)),
        (Logical::Date, Value::Int(days)) => date_text(*days as i64),
        (Logical::TimeMillis, Value::Int(ms)) => time_of_day(*ms as i64 * 1_000_000, 3),
        (Logical::TimeMicros, Value::Long(us)) => time_of_day(us.checked_mul(1_000)?, 6),
        (Logical::TimestampMillis, Value::Long(v)) => timestamp(*v as i128 * 1_000_000, 3, true),
        (Logical::TimestampMicros, Value::Long(v)) => timestamp(*v as i128 * 1_000, 6, true),
        (Logical::TimestampNanos, Value::Long(v)) => timestamp(*v as i128, 9, true),
        (Logical::LocalTimestampMillis, Value::Long(v)) => {
            timestamp(*v as i128 * 1_000_000, 3, false)
        }
        (Logical::LocalTimestampMicros, Value::Long(v)) => timestamp(*v as i128 * 1_000, 6, false),
        (Logical::LocalTimestampNanos, Value::Long(v)) => timestamp(*v as i128, 9, false),
        (Logical::Duration, Value::Fixed(b)) if b.len() == 12 => Some(duration_text(b)),
        _ => None,
    }
}

fn write(schema: &Schema, id: NodeId, value: &Value, out: &mut JsonOut) {
    let node = schema.node(id);
    if let Some(text) = node.logical.and_then(|l| logical_text(l, value)) {
        out.string(&text);
        return;
    }
    match (&node.kind, value) {
        (_, Value::Null) => out.null(),
        (_, Value::Boolean(b)) => out.bool(*b),
        (_, Value::Int(v)) => out.int(*v as i64),
        (_, Value::Long(v)) => out.int(*v),
        (_, Value::Float(v)) => out.f32(*v),
        (_, Value::Double(v)) => out.f64(*v),
        (_, Value::Bytes(b) | Value::Fixed(b)) => out.string(&hex(b)),
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
        (Kind::Union(branches), Value::Union(i, v)) => write(schema, branches[*i as usize], v, out),
        (kind, v) => out.string(&format!("<{v:?} does not fit {}>", kind.type_name())),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Exact decimal text of a big-endian two's-complement unscaled value. A negative scale
/// (Java writes `1E+3` as unscaled 1, scale -3) multiplies by a power of ten.
fn decimal_text(unscaled: &[u8], scale: i64) -> Option<String> {
    if unscaled.is_empty() {
        return None;
    }
    let n = BigInt::from_signed_bytes_be(unscaled);
    let digits = n.magnitude().to_string();
    let sign = if n.sign() == num_bigint::Sign::Minus {
        "-"
    } else {
        ""
    };
    if scale <= 0 {
        let zeros = if digits == "0" {
            0
        } else {
            scale.unsigned_abs() as usize
        };
        return Some(format!("{sign}{digits}{}", "0".repeat(zeros)));
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    Some(format!("{sign}{int}.{frac}"))
}

/// big-decimal: the bytes hold an Avro `bytes` (unscaled) followed by an Avro `int` (scale).
fn big_decimal_text(payload: &[u8]) -> Option<String> {
    let mut c = Cursor::new(payload, &Limits::default());
    let unscaled = c.bytes().ok()?;
    let scale = c.int().ok()?;
    // Bounded so a hostile scale cannot ask for a huge string.
    if !c.is_empty() || scale.unsigned_abs() > 10_000 {
        return None;
    }
    decimal_text(unscaled, scale as i64)
}

pub(crate) fn uuid_text(b: &[u8]) -> String {
    let h = hex(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn date_text(days: i64) -> Option<String> {
    let date = time::Date::from_julian_day(i32::try_from(days + 2_440_588).ok()?).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        date.month() as u8,
        date.day()
    ))
}

fn fraction(nanos: u32, digits: usize) -> String {
    let s = format!("{nanos:09}");
    s[..digits].to_string()
}

fn time_of_day(nanos: i64, digits: usize) -> Option<String> {
    if !(0..86_400_000_000_000).contains(&nanos) {
        return None;
    }
    let secs = nanos / 1_000_000_000;
    Some(format!(
        "{:02}:{:02}:{:02}.{}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        fraction((nanos % 1_000_000_000) as u32, digits)
    ))
}

fn timestamp(nanos: i128, digits: usize, utc: bool) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    if !(0..=9999).contains(&t.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{}{}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        fraction(t.nanosecond(), digits),
        if utc { "Z" } else { "" }
    ))
}

/// duration: three little-endian u32 (months, days, milliseconds) as an ISO 8601 period.
fn duration_text(b: &[u8]) -> String {
    let part = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (months, days, millis) = (part(0), part(4), part(8));
    format!("P{months}M{days}DT{}.{:03}S", millis / 1000, millis % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal_text(&[0x30, 0x39], 2).as_deref(), Some("123.45"));
        assert_eq!(decimal_text(&[0xcf, 0xc7], 2).as_deref(), Some("-123.45"));
        assert_eq!(decimal_text(&[0x05], 3).as_deref(), Some("0.005"));
        assert_eq!(decimal_text(&[0xff], 0).as_deref(), Some("-1"));
        assert_eq!(decimal_text(&[], 0), None);
        // 2^127 - 1 needs 39 digits; no float could show it.
        let max = [
            0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff,
        ];
        assert_eq!(
            decimal_text(&max, 10).as_deref(),
            Some("17014118346046923173168730371.5884105727")
        );
    }

    #[test]
    fn big_decimal_carries_its_scale() {
        // bytes(len 2: 0x30 0x39) then int scale 3 (zig-zag 6).
        assert_eq!(
            big_decimal_text(&[0x04, 0x30, 0x39, 0x06]).as_deref(),
            Some("12.345")
        );
        assert_eq!(big_decimal_text(&[0x04, 0x30]), None);
        // Negative scales, as Java writes BigDecimal("1E+3") and ("-7E+1").
        assert_eq!(
            big_decimal_text(&[0x02, 0x01, 0x05]).as_deref(),
            Some("1000")
        );
        assert_eq!(
            big_decimal_text(&[0x02, 0xf9, 0x01]).as_deref(),
            Some("-70")
        );
        assert_eq!(big_decimal_text(&[0x02, 0x00, 0x05]).as_deref(), Some("0"));
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(date_text(0).as_deref(), Some("1970-01-01"));
        assert_eq!(date_text(-1).as_deref(), Some("1969-12-31"));
        assert_eq!(date_text(19_753).as_deref(), Some("2024-01-31"));
        assert_eq!(date_text(i32::MAX as i64), None);
        assert_eq!(
            time_of_day(45_296_789_000_000, 3).as_deref(),
            Some("12:34:56.789")
        );
        assert_eq!(time_of_day(-1, 3), None);
        assert_eq!(
            timestamp(1_706_704_496_789_123_456, 9, true).as_deref(),
            Some("2024-01-31T12:34:56.789123456Z")
        );
        assert_eq!(
            timestamp(-1_000_000, 3, false).as_deref(),
            Some("1969-12-31T23:59:59.999")
        );
    }

    #[test]
    fn uuid_and_duration() {
        let u: Vec<u8> = (0u8..16).collect();
        assert_eq!(uuid_text(&u), "00010203-0405-0607-0809-0a0b0c0d0e0f");
        let mut d = Vec::new();
        for v in [14u32, 3, 4_005] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(duration_text(&d), "P14M3DT4.005S");
    }
}
