//! The drift grid of one subject, without egui: a row per producer and writer version in
//! traffic, a column per consumer, each cell red/amber/green with the reason. The newest
//! message of a (producer, consumer) pair sets its cell from the model; the producer's other
//! versions are judged against the consumer's reader with the registry's schemas, when known.

use std::collections::BTreeSet;

use crate::avro::Schema;
use crate::avro::compat::check;
use crate::mesh::drift::{Drift, Outcome, Status, Subject};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// `None`: not known (no registry schema to judge by).
    pub status: Option<Status>,
    /// e.g. `v3 / v2`: writer / reader.
    pub text: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub producer: String,
    /// `None` for messages without a known version.
    pub version: Option<u32>,
    pub messages: u64,
    /// One per `Board::consumers`; `None` where the producer does not send to it.
    pub cells: Vec<Option<Cell>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Board {
    pub consumers: Vec<String>,
    pub rows: Vec<Row>,
}

/// `schema(version)` finds a registry version of this subject.
pub fn board<'s>(subject: &Subject, schema: impl Fn(u32) -> Option<&'s Schema>) -> Board {
    let mut outcomes: Vec<&Outcome> = subject.pairs().collect();
    outcomes.sort_by(|a, b| (&a.producer, &a.consumer).cmp(&(&b.producer, &b.consumer)));
    let consumers: Vec<String> = outcomes
        .iter()
        .map(|o| o.consumer.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut producers: Vec<&String> = subject.producers.keys().collect();
    producers.sort();
    let mut rows = Vec::new();
    for producer in producers {
        let party = &subject.producers[producer];
        let mut versions: Vec<(Option<u32>, u64)> = party
            .versions
            .iter()
            .map(|(v, seen)| (Some(*v), seen.messages))
            .collect();
        if party.unversioned > 0 {
            versions.push((None, party.unversioned));
        }
        for (version, messages) in versions {
            let cells = consumers
                .iter()
                .map(|consumer| {
                    let o = outcomes
                        .iter()
                        .find(|o| &o.producer == producer && &o.consumer == consumer)?;
                    Some(cell(o, version, &schema))
                })
                .collect();
            rows.push(Row {
                producer: producer.clone(),
                version,
                messages,
                cells,
            });
        }
    }
    Board { consumers, rows }
}

fn v(version: Option<u32>) -> String {
    version.map_or_else(|| "?".to_string(), |v| format!("v{v}"))
}

fn cell<'s>(
    o: &Outcome,
    version: Option<u32>,
    schema: &impl Fn(u32) -> Option<&'s Schema>,
) -> Cell {
    let text = format!("{} / {}", v(version), v(o.reader_version));
    let (producer, consumer) = (short_party(&o.producer), short_party(&o.consumer));
    if version == o.writer_version {
        let what = match o.drift {
            Drift::Same => "the reader's own version".to_string(),
            Drift::Compatible => "a different version the reader resolves (compatible)".into(),
            Drift::Incompatible => "a version the reader cannot read (incompatible)".into(),
            Drift::Unregistered => "a schema the registry does not know".into(),
        };
        return Cell {
            status: Some(o.drift.status()),
            text,
            reason: format!(
                "newest message: {producer} writes {} and {consumer} reads with {}: {what}",
                v(version),
                v(o.reader_version)
            ),
        };
    }
    let prefix = format!(
        "{producer} also wrote {} earlier; {consumer} reads with {}",
        v(version),
        v(o.reader_version)
    );
    let judged = match (version, o.reader_version) {
        (Some(w), Some(r)) if w == r => Some((Status::Green, "the same version".to_string())),
        (Some(w), Some(r)) => match (schema(w), schema(r)) {
            (Some(writer), Some(reader)) => {
                let c = check(reader, writer);
                Some(match c.incompatibilities.first() {
                    None => (Status::Amber, "compatible by the registry's schemas".into()),
                    Some(i) => (Status::Red, format!("incompatible: {i}")),
                })
            }
            _ => None,
        },
        _ => None,
    };
    match judged {
        Some((status, why)) => Cell {
            status: Some(status),
            text,
            reason: format!("{prefix}: {why}"),
        },
        None => Cell {
            status: None,
            text,
            reason: format!("{prefix}; the registry has no schema to judge it by"),
        },
    }
}

/// A party's name as the grid shows it: an identity becomes `<sa>.<ns>`.
pub fn short_party(name: &str) -> &str {
    name.find(".serviceaccount.identity.")
        .map_or(name, |i| &name[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::Mesh;
    use crate::mesh::testing::{inspection, request};
    use crate::tap::Direction;

    fn send(mesh: &mut Mesh, t: i64, producer: &str, writer: u32, reader: u32, drift: &str) {
        let mut events = request(Direction::Inbound, 1, t, producer, "orders", 201, None);
        events[2].avro = vec![inspection("orders-value", writer, reader, drift)];
        events.iter().for_each(|e| mesh.apply(e));
    }

    fn record(fields: &str) -> Schema {
        Schema::parse(&format!(
            r#"{{"type":"record","name":"r","fields":[{fields}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn newest_message_sets_its_cell_and_older_versions_are_judged_by_the_registry() {
        let mut mesh = Mesh::default();
        send(&mut mesh, 1_000_000, "web", 1, 1, "same");
        send(&mut mesh, 2_000_000, "web", 2, 1, "compatible");
        send(&mut mesh, 3_000_000, "web", 3, 1, "incompatible");
        let v1 = record(r#"{"name":"total","type":"long"}"#);
        let v2 = record(r#"{"name":"total","type":"long"},{"name":"c","type":"int","default":0}"#);
        let subject = mesh.drift().subject("orders-value").unwrap();
        let b = board(subject, |v| match v {
            1 => Some(&v1),
            2 => Some(&v2),
            _ => None,
        });
        assert_eq!(b.consumers.len(), 1);
        assert_eq!(short_party(&b.consumers[0]), "orders.demo");
        let cells: Vec<(Option<u32>, Option<Status>)> = b
            .rows
            .iter()
            .map(|r| (r.version, r.cells[0].as_ref().unwrap().status))
            .collect();
        assert_eq!(
            cells,
            vec![
                (Some(1), Some(Status::Green)),
                (Some(2), Some(Status::Amber)),
                (Some(3), Some(Status::Red)),
            ]
        );
        let newest = b.rows[2].cells[0].as_ref().unwrap();
        assert_eq!(newest.text, "v3 / v1");
        assert!(
            newest.reason.contains("web.demo writes v3"),
            "{}",
            newest.reason
        );
        assert!(newest.reason.contains("incompatible"), "{}", newest.reason);
        assert!(
            b.rows[1].cells[0]
                .as_ref()
                .unwrap()
                .reason
                .contains("compatible by the registry")
        );
        // Without the registry an older version cannot be judged.
        let b = board(subject, |_| None);
        assert_eq!(b.rows[1].cells[0].as_ref().unwrap().status, None);
    }

    #[test]
    fn short_names_cut_the_identity_suffix() {
        assert_eq!(
            short_party("web.shop.serviceaccount.identity.linkerd.cluster.local"),
            "web.shop"
        );
        assert_eq!(short_party("10.0.0.1:80"), "10.0.0.1:80");
    }
}
