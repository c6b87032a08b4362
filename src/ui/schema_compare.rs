//! What the Schemas view derives from registry versions, without egui: the structural diff
//! and both reading directions between two versions, the compatibility matrix of a subject
//! by level, changed lines for the side-by-side texts, and a schema's fields for the viewer.

use serde_json::Value as Json;

use crate::avro::compat::{Compatibility, check};
use crate::avro::diff::{Change, diff};
use crate::avro::{Level, LevelReport, Schema, check_level};

/// Two versions of a subject compared.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub changes: Vec<Change>,
    /// The new schema reading data written with the old one.
    pub backward: Compatibility,
    /// The old schema reading data written with the new one.
    pub forward: Compatibility,
}

pub fn compare(old: &Schema, new: &Schema) -> Comparison {
    Comparison {
        changes: diff(old, new),
        backward: check(new, old),
        forward: check(old, new),
    }
}

/// The levels a matrix shows (NONE always passes).
pub const LEVELS: [Level; 6] = [
    Level::Backward,
    Level::BackwardTransitive,
    Level::Forward,
    Level::ForwardTransitive,
    Level::Full,
    Level::FullTransitive,
];

/// One version checked at each of `LEVELS` against the versions before it.
#[derive(Debug, Clone)]
pub struct MatrixRow {
    pub version: u32,
    /// Per level; empty for the first version (nothing to check against) or a schema that
    /// does not parse (`problem` says why).
    pub cells: Vec<LevelReport>,
    pub problem: Option<String>,
}

/// `versions` oldest first, as (version, parsed schema or why not).
pub fn matrix(versions: &[(u32, Result<&Schema, String>)]) -> Vec<MatrixRow> {
    let mut history: Vec<&Schema> = Vec::new();
    let mut rows = Vec::with_capacity(versions.len());
    for (version, schema) in versions {
        let row = match schema {
            Err(why) => MatrixRow {
                version: *version,
                cells: Vec::new(),
                problem: Some(why.clone()),
            },
            Ok(schema) => {
                let cells = if history.is_empty() {
                    Vec::new()
                } else {
                    LEVELS
                        .iter()
                        .map(|level| check_level(*level, schema, &history))
                        .collect()
                };
                history.push(schema);
                MatrixRow {
                    version: *version,
                    cells,
                    problem: None,
                }
            }
        };
        rows.push(row);
    }
    rows
}

/// Largest line-count product compared line by line; bigger texts are shown unmarked.
const MAX_LCS_CELLS: usize = 4_000_000;

/// Which lines of `a` and of `b` are not part of their longest common subsequence.
pub fn changed_lines(a: &[&str], b: &[&str]) -> (Vec<bool>, Vec<bool>) {
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) > MAX_LCS_CELLS {
        return (vec![false; n], vec![false; m]);
    }
    // lcs[i][j]: common subsequence length of a[i..] and b[j..].
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if a[i] == b[j] {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let (mut da, mut db) = (vec![true; n], vec![true; m]);
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            da[i] = false;
            db[j] = false;
            i += 1;
            j += 1;
        } else if lcs[at(i + 1, j)] >= lcs[at(i, j + 1)] {
            i += 1;
        } else {
            j += 1;
        }
    }
    (da, db)
}

/// A top-level field of a record schema for the viewer: a one-line title and its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldView {
    pub title: String,
    pub json: String,
}

/// The fields of a record schema's text (empty for other schemas or bad JSON).
pub fn fields(text: &str) -> Vec<FieldView> {
    let Ok(json) = serde_json::from_str::<Json>(text) else {
        return Vec::new();
    };
    let Some(fields) = json.get("fields").and_then(Json::as_array) else {
        return Vec::new();
    };
    fields
        .iter()
        .map(|f| {
            let name = f.get("name").and_then(Json::as_str).unwrap_or("?");
            let ty = f.get("type").map_or_else(|| "?".to_string(), type_summary);
            FieldView {
                title: format!("{name}: {ty}"),
                json: serde_json::to_string_pretty(f).unwrap_or_default(),
            }
        })
        .collect()
}

/// A type in a few words: `string`, `uuid`, `record Customer`, `array<record Line>`,
/// `null | string`.
pub fn type_summary(ty: &Json) -> String {
    match ty {
        Json::String(s) => s.clone(),
        Json::Array(branches) => branches
            .iter()
            .map(type_summary)
            .collect::<Vec<_>>()
            .join(" | "),
        Json::Object(o) => {
            if let Some(l) = o.get("logicalType").and_then(Json::as_str) {
                return l.to_string();
            }
            let kind = o.get("type").map_or_else(|| "?".to_string(), type_summary);
            match kind.as_str() {
                "array" => format!(
                    "array<{}>",
                    o.get("items").map_or_else(|| "?".into(), type_summary)
                ),
                "map" => format!(
                    "map<{}>",
                    o.get("values").map_or_else(|| "?".into(), type_summary)
                ),
                _ => match o.get("name").and_then(Json::as_str) {
                    Some(name) => format!("{kind} {name}"),
                    None => kind,
                },
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &str) -> Schema {
        Schema::parse(&format!(
            r#"{{"type":"record","name":"r","fields":[{fields}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_type_change_breaks_both_directions_and_names_the_field() {
        let old = record(r#"{"name":"total","type":"long"}"#);
        let new = record(r#"{"name":"total","type":"string"}"#);
        let c = compare(&old, &new);
        assert_eq!(c.changes.len(), 1);
        assert_eq!(c.changes[0].path, ".total");
        assert!(!c.backward.is_compatible() && !c.forward.is_compatible());
        assert_eq!(c.backward.incompatibilities[0].location, "/fields/0/type");
        let added = compare(
            &old,
            &record(r#"{"name":"total","type":"long"},{"name":"c","type":"int","default":0}"#),
        );
        assert!(added.backward.is_compatible() && added.forward.is_compatible());
    }

    #[test]
    fn the_matrix_checks_each_version_against_the_ones_before() {
        let v1 = record(r#"{"name":"a","type":"int"}"#);
        let v2 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#);
        let v3 = record(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#);
        let rows = matrix(&[
            (1, Ok(&v1)),
            (2, Ok(&v2)),
            (3, Ok(&v3)),
            (4, Err("a PROTOBUF schema".into())),
        ]);
        assert!(rows[0].cells.is_empty() && rows[0].problem.is_none());
        assert!(rows[1].cells.iter().all(LevelReport::is_compatible));
        let v3: Vec<bool> = rows[2].cells.iter().map(|r| r.is_compatible()).collect();
        // BACKWARD only looks at v2 (which has b's default); the transitive one sees v1.
        assert_eq!(v3, vec![true, false, true, true, true, false]);
        assert_eq!(rows[3].problem.as_deref(), Some("a PROTOBUF schema"));
    }

    #[test]
    fn changed_lines_are_those_outside_the_common_subsequence() {
        let a = ["{", "a", "b", "}"];
        let b = ["{", "a", "x", "b", "c", "}"];
        let (da, db) = changed_lines(&a, &b);
        assert_eq!(da, vec![false; 4]);
        assert_eq!(db, vec![false, false, true, false, true, false]);
        let (da, db) = changed_lines(&["x"], &[]);
        assert_eq!((da, db), (vec![true], vec![]));
    }

    #[test]
    fn fields_get_a_short_type_summary() {
        let text = r#"{"type":"record","name":"r","fields":[
            {"name":"id","type":{"type":"string","logicalType":"uuid"}},
            {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[]}}},
            {"name":"coupon","type":["null","string"],"default":null},
            {"name":"tags","type":{"type":"map","values":"int"}}]}"#;
        let titles: Vec<String> = fields(text).into_iter().map(|f| f.title).collect();
        assert_eq!(
            titles,
            vec![
                "id: uuid",
                "lines: array<record Line>",
                "coupon: null | string",
                "tags: map<int>"
            ]
        );
        assert!(fields("\"string\"").is_empty());
        assert!(fields("not json").is_empty());
    }
}
