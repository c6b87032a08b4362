//! Drift classification: a consumer reads with one schema, a producer was seen writing with
//! another. Is that the same schema, a compatible evolution (and in which direction), an
//! incompatible one, or a writer schema the registry has never seen?

use super::canonical::rabin_fingerprint;
use super::compat::{Incompatibility, Warning, check};
use super::levels::{Level, check_level};
use super::schema::Schema;

/// One registered version of a subject, with its fingerprint computed once by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    pub version: u32,
    pub schema: &'a Schema,
    pub fingerprint: i64,
}

impl<'a> Version<'a> {
    pub fn new(version: u32, schema: &'a Schema) -> Version<'a> {
        Version {
            version,
            schema,
            fingerprint: rabin_fingerprint(schema),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The producer writes exactly the consumer's schema.
    Same,
    /// The consumer can read the producer's data.
    Compatible {
        /// The producer's registered version is newer than the consumer's (`true`) or older.
        producer_ahead: bool,
        /// Resolved, but some values change meaning (logical type changes).
        warnings: Vec<Warning>,
    },
    /// The consumer cannot read the producer's data.
    Incompatible(Vec<Incompatibility>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftReport {
    pub drift: Drift,
    /// The writer's registered version, or `None` for a writer the subject does not know.
    pub writer_version: Option<u32>,
    pub reader_version: Option<u32>,
    /// Whether the writer's version passes the subject's compatibility level against the
    /// versions before it (`None` when the writer is unregistered).
    pub writer_passes_level: Option<bool>,
}

impl DriftReport {
    pub fn is_unregistered(&self) -> bool {
        self.writer_version.is_none()
    }

    /// A short verdict for tables: same / compatible / incompatible / unregistered.
    pub fn verdict(&self) -> &'static str {
        match (&self.drift, self.writer_version) {
            (Drift::Incompatible(_), _) => "incompatible",
            (_, None) => "unregistered",
            (Drift::Same, _) => "same",
            (Drift::Compatible { .. }, _) => "compatible",
        }
    }
}

/// Classifies what the consumer with `reader` sees when the producer writes with `writer`,
/// given the subject's `versions` (oldest first) and `level`.
pub fn classify(
    versions: &[Version<'_>],
    level: Level,
    reader: &Schema,
    writer: &Schema,
) -> DriftReport {
    let (rf, wf) = (rabin_fingerprint(reader), rabin_fingerprint(writer));
    let position = |fp: i64| versions.iter().position(|v| v.fingerprint == fp);
    let (wi, ri) = (position(wf), position(rf));
    let writer_passes_level = wi.map(|i| {
        let history: Vec<&Schema> = versions[..i].iter().map(|v| v.schema).collect();
        check_level(level, versions[i].schema, &history).is_compatible()
    });
    let drift = if rf == wf {
        Drift::Same
    } else {
        let result = check(reader, writer);
        if result.is_compatible() {
            Drift::Compatible {
                producer_ahead: match (wi, ri) {
                    (Some(w), Some(r)) => w > r,
                    _ => true,
                },
                warnings: result.warnings,
            }
        } else {
            Drift::Incompatible(result.incompatibilities)
        }
    };
    DriftReport {
        drift,
        writer_version: wi.map(|i| versions[i].version),
        reader_version: ri.map(|i| versions[i].version),
        writer_passes_level,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &str) -> Schema {
        Schema::parse(&format!(
            r#"{{"type":"record","name":"Order","fields":[{fields}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn classifies_each_case() {
        let v1 = record(r#"{"name":"id","type":"string"}"#);
        let v2 = record(
            r#"{"name":"id","type":"string"},{"name":"coupon","type":["null","string"],"default":null}"#,
        );
        let v3 = record(r#"{"name":"id","type":"long"}"#);
        let rogue = record(r#"{"name":"id","type":"string"},{"name":"x","type":"int"}"#);
        let versions = [
            Version::new(1, &v1),
            Version::new(2, &v2),
            Version::new(3, &v3),
        ];

        let same = classify(&versions, Level::Backward, &v1, &v1);
        assert_eq!((same.drift.clone(), same.verdict()), (Drift::Same, "same"));

        let ahead = classify(&versions, Level::Backward, &v1, &v2);
        assert!(matches!(
            ahead.drift,
            Drift::Compatible {
                producer_ahead: true,
                ..
            }
        ));
        assert_eq!(
            (ahead.writer_version, ahead.reader_version),
            (Some(2), Some(1))
        );
        assert_eq!(ahead.writer_passes_level, Some(true));

        let behind = classify(&versions, Level::Backward, &v2, &v1);
        assert!(matches!(
            behind.drift,
            Drift::Compatible {
                producer_ahead: false,
                ..
            }
        ));

        let breaking = classify(&versions, Level::Backward, &v2, &v3);
        assert_eq!(breaking.verdict(), "incompatible");
        assert_eq!(
            breaking.writer_passes_level,
            Some(false),
            "v3 was registered against the level's advice"
        );

        let unknown = classify(&versions, Level::Backward, &v1, &rogue);
        assert!(unknown.is_unregistered());
        assert_eq!(unknown.verdict(), "unregistered");
        assert_eq!(unknown.writer_passes_level, None);
    }
}
