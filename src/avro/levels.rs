//! Compatibility levels over a subject's history, with Confluent's semantics: BACKWARD means
//! the new schema reads data written with the latest one; the `_TRANSITIVE` levels check
//! every earlier version, the others only the latest.

use std::fmt;
use std::str::FromStr;

use super::compat::{Incompatibility, Warning, check};
use super::schema::Schema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Level {
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
    None,
}

impl Level {
    pub const ALL: [Level; 7] = [
        Level::Backward,
        Level::BackwardTransitive,
        Level::Forward,
        Level::ForwardTransitive,
        Level::Full,
        Level::FullTransitive,
        Level::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
            Level::None => "NONE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }

    /// New schema as reader of old data.
    fn backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    /// Old schema as reader of new data.
    fn forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Level, String> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Level::ALL.iter().map(|l| l.as_str()).collect();
                format!(
                    "unknown compatibility level \"{s}\" (one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Which schema read which in a failed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The new schema cannot read data written with the old one.
    NewReadsOld,
    /// The old schema cannot read data written with the new one.
    OldReadsNew,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Index of the old schema in the history given (oldest first).
    pub old_index: usize,
    pub direction: Direction,
    pub incompatibility: Incompatibility,
}

impl Violation {
    /// Confluent's sentence for this violation ("new"/"old" instead of reader/writer).
    pub fn description(&self) -> String {
        use super::compat::IncompatibilityKind as K;
        let (reader, writer) = match self.direction {
            Direction::NewReadsOld => ("new", "old"),
            Direction::OldReadsNew => ("old", "new"),
        };
        let i = &self.incompatibility;
        let path = &i.location;
        match i.kind {
            K::NameMismatch => format!("The name of the schema has changed (path '{path}')"),
            K::FixedSizeMismatch => format!(
                "The size of FIXED type field at path '{path}' in the {reader} schema does not match with the {writer} schema"
            ),
            K::MissingEnumSymbols => format!(
                "The {reader} schema is missing enum symbols '{}' at path '{path}' in the {writer} schema",
                i.detail
            ),
            K::ReaderFieldMissingDefaultValue => format!(
                "The field '{}' at path '{path}' in the {reader} schema has no default value and is missing in the {writer} schema",
                i.detail
            ),
            K::TypeMismatch => format!(
                "The type (path '{path}') of a field in the {reader} schema does not match with the {writer} schema"
            ),
            K::MissingUnionBranch => format!(
                "The {reader} schema is missing a type inside a union field at path '{path}' in the {writer} schema"
            ),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LevelReport {
    pub violations: Vec<Violation>,
    pub warnings: Vec<Warning>,
}

impl LevelReport {
    pub fn is_compatible(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks `new` against a subject's `history` (oldest first) at `level`.
pub fn check_level(level: Level, new: &Schema, history: &[&Schema]) -> LevelReport {
    let mut report = LevelReport::default();
    let olds: Vec<usize> = if level.transitive() {
        (0..history.len()).rev().collect()
    } else {
        history.len().checked_sub(1).into_iter().collect()
    };
    for old_index in olds {
        let old = history[old_index];
        let mut run =
            |reader: &Schema, writer: &Schema, direction| {
                let result = check(reader, writer);
                report.warnings.extend(result.warnings);
                report
                    .violations
                    .extend(result.incompatibilities.into_iter().map(|incompatibility| {
                        Violation {
                            old_index,
                            direction,
                            incompatibility,
                        }
                    }));
            };
        if level.backward() {
            run(new, old, Direction::NewReadsOld);
        }
        if level.forward() {
            run(old, new, Direction::OldReadsNew);
        }
    }
    report.warnings.dedup();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Schema {
        Schema::parse(text).unwrap()
    }

    fn record(fields: &str) -> Schema {
        s(&format!(
            r#"{{"type":"record","name":"r","fields":[{fields}]}}"#
        ))
    }

    #[test]
    fn non_transitive_levels_compare_with_the_latest_only() {
        // v1 has a; v2 adds b with a default; v3 drops the default of b.
        let v1 = record(r#"{"name":"a","type":"int"}"#);
        let v2 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#);
        let v3 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#);
        assert!(check_level(Level::Backward, &v3, &[&v1, &v2]).is_compatible());
        let report = check_level(Level::BackwardTransitive, &v3, &[&v1, &v2]);
        assert_eq!(report.violations.len(), 1);
        assert_eq!(report.violations[0].old_index, 0);
        assert_eq!(
            report.violations[0].description(),
            "The field 'b' at path '/fields/1' in the new schema has no default value and is missing in the old schema"
        );
    }

    #[test]
    fn typical_outcomes() {
        let v1 = record(r#"{"name":"a","type":"int"}"#);
        let add_default =
            record(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#);
        let add_plain = record(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#);
        let removed = record("");
        for (level, new, ok) in [
            (Level::Backward, &add_default, true),
            (Level::Forward, &add_default, true),
            (Level::Full, &add_default, true),
            (Level::Backward, &add_plain, false),
            (Level::Forward, &add_plain, true),
            (Level::Backward, &removed, true),
            (Level::Forward, &removed, false),
            (Level::None, &removed, true),
        ] {
            assert_eq!(
                check_level(level, new, &[&v1]).is_compatible(),
                ok,
                "{level} {new:?}"
            );
        }
        let report = check_level(Level::Forward, &removed, &[&v1]);
        assert_eq!(report.violations[0].direction, Direction::OldReadsNew);
    }

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!(
            "full_transitive".parse::<Level>(),
            Ok(Level::FullTransitive)
        );
        assert!(
            "SIDEWAYS"
                .parse::<Level>()
                .unwrap_err()
                .contains("BACKWARD_TRANSITIVE")
        );
    }

    #[test]
    fn empty_history_is_compatible() {
        assert!(check_level(Level::FullTransitive, &record(""), &[]).is_compatible());
    }
}
