//! Logical types (Avro 1.12) and the checks that decide whether one is valid on its type.

use serde_json::{Map, Value as Json};

use super::schema::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logical {
    Decimal { precision: u32, scale: u32 },
    BigDecimal,
    Uuid,
    Date,
    TimeMillis,
    TimeMicros,
    TimestampMillis,
    TimestampMicros,
    TimestampNanos,
    LocalTimestampMillis,
    LocalTimestampMicros,
    LocalTimestampNanos,
    Duration,
}

/// The most decimal digits a two's-complement value of `size` bytes can always hold:
/// floor(log10(2^(8·size−1) − 1)).
pub fn max_decimal_digits(size: usize) -> u32 {
    if size == 0 {
        return 0;
    }
    ((8 * size - 1) as f64 * std::f64::consts::LOG10_2).floor() as u32
}

impl Logical {
    pub fn name(self) -> &'static str {
        match self {
            Logical::Decimal { .. } => "decimal",
            Logical::BigDecimal => "big-decimal",
            Logical::Uuid => "uuid",
            Logical::Date => "date",
            Logical::TimeMillis => "time-millis",
            Logical::TimeMicros => "time-micros",
            Logical::TimestampMillis => "timestamp-millis",
            Logical::TimestampMicros => "timestamp-micros",
            Logical::TimestampNanos => "timestamp-nanos",
            Logical::LocalTimestampMillis => "local-timestamp-millis",
            Logical::LocalTimestampMicros => "local-timestamp-micros",
            Logical::LocalTimestampNanos => "local-timestamp-nanos",
            Logical::Duration => "duration",
        }
    }

    /// Reads `logicalType` (and decimal's `precision`/`scale`) from a type's attributes;
    /// `None` when absent, unknown, or invalid on `kind` — the type is then read as its
    /// underlying type, as the specification requires.
    pub fn from_props(props: &Map<String, Json>, kind: &Kind) -> Option<Logical> {
        let name = props.get("logicalType")?.as_str()?;
        let logical = match name {
            "decimal" => {
                let precision = u32::try_from(props.get("precision")?.as_u64()?).ok()?;
                let scale = match props.get("scale") {
                    None => 0,
                    Some(s) => u32::try_from(s.as_u64()?).ok()?,
                };
                if precision == 0 || scale > precision {
                    return None;
                }
                if let Kind::Fixed(f) = kind
                    && precision > max_decimal_digits(f.size)
                {
                    return None;
                }
                Logical::Decimal { precision, scale }
            }
            "big-decimal" => Logical::BigDecimal,
            "uuid" => Logical::Uuid,
            "date" => Logical::Date,
            "time-millis" => Logical::TimeMillis,
            "time-micros" => Logical::TimeMicros,
            "timestamp-millis" => Logical::TimestampMillis,
            "timestamp-micros" => Logical::TimestampMicros,
            "timestamp-nanos" => Logical::TimestampNanos,
            "local-timestamp-millis" => Logical::LocalTimestampMillis,
            "local-timestamp-micros" => Logical::LocalTimestampMicros,
            "local-timestamp-nanos" => Logical::LocalTimestampNanos,
            "duration" => Logical::Duration,
            _ => return None,
        };
        logical.valid_on(kind).then_some(logical)
    }

    fn valid_on(self, kind: &Kind) -> bool {
        match self {
            Logical::Decimal { .. } => matches!(kind, Kind::Bytes | Kind::Fixed(_)),
            Logical::BigDecimal => matches!(kind, Kind::Bytes),
            Logical::Uuid => {
                matches!(kind, Kind::String) || matches!(kind, Kind::Fixed(f) if f.size == 16)
            }
            Logical::Date | Logical::TimeMillis => matches!(kind, Kind::Int),
            Logical::TimeMicros
            | Logical::TimestampMillis
            | Logical::TimestampMicros
            | Logical::TimestampNanos
            | Logical::LocalTimestampMillis
            | Logical::LocalTimestampMicros
            | Logical::LocalTimestampNanos => matches!(kind, Kind::Long),
            Logical::Duration => matches!(kind, Kind::Fixed(f) if f.size == 12),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::avro::Schema;

    use super::*;

    fn logical(text: &str) -> Option<Logical> {
        let s = Schema::parse(text).unwrap();
        s.node(s.root()).logical
    }

    #[test]
    fn valid_logical_types_are_recognised() {
        assert_eq!(
            logical(r#"{"type":"int","logicalType":"date"}"#),
            Some(Logical::Date)
        );
        assert_eq!(
            logical(r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#),
            Some(Logical::Decimal {
                precision: 9,
                scale: 2
            })
        );
        assert_eq!(
            logical(r#"{"type":"fixed","name":"u","size":16,"logicalType":"uuid"}"#),
            Some(Logical::Uuid)
        );
    }

    #[test]
    fn invalid_logical_types_fall_back_to_the_underlying_type() {
        assert_eq!(logical(r#"{"type":"long","logicalType":"date"}"#), None);
        assert_eq!(
            logical(r#"{"type":"bytes","logicalType":"decimal","precision":2,"scale":3}"#),
            None
        );
        assert_eq!(
            logical(
                r#"{"type":"fixed","name":"d","size":2,"logicalType":"decimal","precision":5}"#
            ),
            None
        );
        assert_eq!(
            logical(r#"{"type":"string","logicalType":"made-up"}"#),
            None
        );
        let s = Schema::parse(r#"{"type":"long","logicalType":"date"}"#).unwrap();
        assert_eq!(s.node(s.root()).props["logicalType"], "date");
    }

    #[test]
    fn decimal_digits_per_fixed_size() {
        assert_eq!(max_decimal_digits(1), 2);
        assert_eq!(max_decimal_digits(4), 9);
        assert_eq!(max_decimal_digits(8), 18);
        assert_eq!(max_decimal_digits(16), 38);
    }
}
