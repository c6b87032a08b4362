//! Schema drift per subject: which writer versions each producer ships, which reader versions
//! each consumer decodes with, and a red/amber/green status with the reason.
//!
//! The status is the worst of the newest outcome per (producer, consumer) pair, so it turns
//! red the moment a producer ships an incompatible version and back to green once every pair
//! it broke has seen a compatible message again: incompatible or unregistered = red,
//! compatible drift = amber, same version = green.
//!
//! Producer and consumer: for a request body the client writes and the server reads; for a
//! response body the other way round. Each is named by identity, else workload, else address.
//! An inspection without a subject is filed under its contract, else under `(no subject)`.
//!
//! Each subject also keeps its writer versions per time bucket over the last few minutes
//! (`Subject::traffic`), so a rollout and its rollback can be plotted.

use std::collections::BTreeMap;

use foldhash::HashMap;

use super::window::Window;
use crate::tap::{Endpoint, Event, Inspection, MessageSide};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Green,
    Amber,
    Red,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drift {
    Same,
    Compatible,
    Incompatible,
    Unregistered,
}

impl Drift {
    fn parse(s: &str) -> Option<Drift> {
        Some(match s {
            "same" => Drift::Same,
            "compatible" => Drift::Compatible,
            "incompatible" => Drift::Incompatible,
            "unregistered" => Drift::Unregistered,
            _ => return None,
        })
    }

    pub fn status(self) -> Status {
        match self {
            Drift::Same => Status::Green,
            Drift::Compatible => Status::Amber,
            Drift::Incompatible | Drift::Unregistered => Status::Red,
        }
    }
}

/// Caps that bound one subject's memory.
pub const MAX_PARTIES: usize = 64;
pub const MAX_PAIRS: usize = 256;
pub const MAX_VERSIONS: usize = 32;
/// The versions-in-traffic window: 150 buckets of 2 s, five minutes.
pub const TRAFFIC_BUCKETS: usize = 150;
pub const TRAFFIC_BUCKET_US: i64 = 2_000_000;

/// Messages per writer version in one bucket of a subject's traffic window; at most
/// `MAX_VERSIONS` versions, later ones are not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionCounts(Vec<(u32, u64)>);

impl VersionCounts {
    fn add(&mut self, version: u32) {
        if let Some((_, n)) = self.0.iter_mut().find(|(v, _)| *v == version) {
            *n += 1;
        } else if self.0.len() < MAX_VERSIONS {
            self.0.push((version, 1));
        }
    }

    /// (version, messages), in the order first seen in the bucket.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.0.iter().copied()
    }

    pub fn get(&self, version: u32) -> u64 {
        self.0
            .iter()
            .find(|(v, _)| *v == version)
            .map_or(0, |(_, n)| *n)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionSeen {
    pub messages: u64,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
}

/// Versions one producer wrote or one consumer read with.
#[derive(Debug, Clone, Default)]
pub struct Party {
    pub versions: BTreeMap<u32, VersionSeen>,
    /// Messages whose version was not known (e.g. unregistered schemas).
    pub unversioned: u64,
    pub last_seen_us: i64,
}

impl Party {
    fn saw(&mut self, version: Option<u32>, t: i64) {
        self.last_seen_us = self.last_seen_us.max(t);
        let Some(v) = version else {
            self.unversioned += 1;
            return;
        };
        if !self.versions.contains_key(&v) && self.versions.len() >= MAX_VERSIONS {
            let oldest = self.versions.iter().min_by_key(|(_, s)| s.last_seen_us);
            if let Some(&old) = oldest.map(|(k, _)| k) {
                self.versions.remove(&old);
            }
        }
        let seen = self.versions.entry(v).or_insert(VersionSeen {
            messages: 0,
            first_seen_us: t,
            last_seen_us: t,
        });
        seen.messages += 1;
        seen.last_seen_us = seen.last_seen_us.max(t);
    }
}

/// The newest message between one producer and one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub producer: String,
    pub consumer: String,
    pub writer_version: Option<u32>,
    pub reader_version: Option<u32>,
    pub drift: Drift,
    pub time_us: i64,
}

#[derive(Debug, Clone)]
pub struct Subject {
    pub producers: HashMap<String, Party>,
    pub consumers: HashMap<String, Party>,
    pairs: HashMap<(String, String), Outcome>,
    pub last_seen_us: i64,
    traffic: Window<VersionCounts>,
}

impl Default for Subject {
    fn default() -> Self {
        Subject {
            producers: HashMap::default(),
            consumers: HashMap::default(),
            pairs: HashMap::default(),
            last_seen_us: 0,
            traffic: Window::new(TRAFFIC_BUCKETS, TRAFFIC_BUCKET_US),
        }
    }
}

impl Subject {
    /// Writer versions per `TRAFFIC_BUCKET_US` over the last `TRAFFIC_BUCKETS` buckets.
    pub fn traffic(&self) -> &Window<VersionCounts> {
        &self.traffic
    }

    /// Each writer version in the window with its messages per second in every bucket
    /// ending with the one holding `end_us` (oldest first, as (bucket start µs, rate)).
    pub fn versions_over_time(&self, end_us: i64) -> BTreeMap<u32, Vec<(i64, f64)>> {
        let buckets: Vec<(i64, Option<&VersionCounts>)> = self.traffic.iter(end_us).collect();
        let mut versions: Vec<u32> = buckets
            .iter()
            .filter_map(|(_, c)| *c)
            .flat_map(|c| c.iter().map(|(v, _)| v))
            .collect();
        versions.sort_unstable();
        versions.dedup();
        let seconds = self.traffic.bucket_us() as f64 / 1e6;
        versions
            .into_iter()
            .map(|v| {
                let points = buckets
                    .iter()
                    .map(|(t, c)| (*t, c.map_or(0, |c| c.get(v)) as f64 / seconds))
                    .collect();
                (v, points)
            })
            .collect()
    }

    /// The worst pair's status and why; green with no reason when nothing drifted (or no
    /// message said).
    pub fn status(&self) -> (Status, Option<String>) {
        let worst = self
            .pairs
            .values()
            .max_by_key(|o| (o.drift.status(), o.time_us));
        match worst {
            Some(o) if o.drift != Drift::Same => {
                let v = |v: Option<u32>| v.map_or("?".to_string(), |v| format!("v{v}"));
                let what = match o.drift {
                    Drift::Unregistered => "an unregistered schema".to_string(),
                    Drift::Incompatible => format!(
                        "writer {} incompatible with reader {}",
                        v(o.writer_version),
                        v(o.reader_version)
                    ),
                    _ => format!(
                        "writer {} differs from reader {} (compatible)",
                        v(o.writer_version),
                        v(o.reader_version)
                    ),
                };
                let why = format!("{} sends {what} to {}", o.producer, o.consumer);
                (o.drift.status(), Some(why))
            }
            _ => (Status::Green, None),
        }
    }

    pub fn pairs(&self) -> impl Iterator<Item = &Outcome> {
        self.pairs.values()
    }
}

#[derive(Debug)]
pub struct DriftBoard {
    max_subjects: usize,
    subjects: HashMap<String, Subject>,
}

impl DriftBoard {
    pub fn new(max_subjects: usize) -> Self {
        DriftBoard {
            max_subjects: max_subjects.max(1),
            subjects: HashMap::default(),
        }
    }

    pub fn subjects(&self) -> impl Iterator<Item = (&str, &Subject)> {
        self.subjects.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn subject(&self, name: &str) -> Option<&Subject> {
        self.subjects.get(name)
    }

    pub(crate) fn observe(&mut self, e: &Event) {
        for i in &e.avro {
            self.inspection(e, i);
        }
    }

    fn inspection(&mut self, e: &Event, i: &Inspection) {
        let t = e.time_us;
        let name = i
            .subject
            .as_deref()
            .or(i.contract.as_deref())
            .unwrap_or("(no subject)");
        let (producer, consumer) = match i.side {
            Some(MessageSide::Response) => (&e.destination, &e.source),
            _ => (&e.source, &e.destination),
        };
        let (producer, consumer) = (party_name(producer), party_name(consumer));
        if !self.subjects.contains_key(name) {
            if self.subjects.len() >= self.max_subjects {
                evict_oldest(&mut self.subjects, |s| s.last_seen_us);
            }
            self.subjects.insert(name.to_string(), Subject::default());
        }
        let s = self.subjects.get_mut(name).expect("inserted");
        s.last_seen_us = s.last_seen_us.max(t);
        party(&mut s.producers, &producer).saw(i.version, t);
        if let (Some(v), Some(bucket)) = (i.version, s.traffic.at(t)) {
            bucket.add(v);
        }
        party(&mut s.consumers, &consumer).saw(i.reader_version, t);
        if let Some(drift) = i.drift.as_deref().and_then(Drift::parse) {
            let key = (producer, consumer);
            if !s.pairs.contains_key(&key) && s.pairs.len() >= MAX_PAIRS {
                evict_oldest(&mut s.pairs, |o| o.time_us);
            }
            s.pairs.insert(
                key.clone(),
                Outcome {
                    producer: key.0,
                    consumer: key.1,
                    writer_version: i.version,
                    reader_version: i.reader_version,
                    drift,
                    time_us: t,
                },
            );
        }
    }
}

fn party<'a>(map: &'a mut HashMap<String, Party>, name: &str) -> &'a mut Party {
    if !map.contains_key(name) {
        if map.len() >= MAX_PARTIES {
            evict_oldest(map, |p| p.last_seen_us);
        }
        map.insert(name.to_string(), Party::default());
    }
    map.get_mut(name).expect("inserted")
}

fn evict_oldest<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    seen: impl Fn(&V) -> i64,
) {
    let oldest = map
        .iter()
        .min_by_key(|(_, v)| seen(v))
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        map.remove(&k);
    }
}

fn party_name(ep: &Endpoint) -> String {
    match (&ep.identity, &ep.workload) {
        (Some(id), _) => id.clone(),
        (None, Some(w)) => format!("{}/{w}", ep.namespace.as_deref().unwrap_or("")),
        (None, None) => ep.addr.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::testing::*;
    use crate::tap::Direction;

    fn message(board: &mut DriftBoard, t: i64, producer: &str, i: Inspection) {
        let mut e = request(Direction::Inbound, 1, t, producer, "billing", 200, None).remove(2);
        e.avro = vec![i];
        board.observe(&e);
    }

    #[test]
    fn status_follows_the_newest_message_of_each_pair() {
        let mut b = DriftBoard::new(10);
        message(
            &mut b,
            S,
            "orders",
            inspection("orders-value", 2, 2, "same"),
        );
        assert_eq!(
            b.subject("orders-value").unwrap().status(),
            (Status::Green, None)
        );

        message(
            &mut b,
            2 * S,
            "orders",
            inspection("orders-value", 3, 2, "compatible"),
        );
        let (status, why) = b.subject("orders-value").unwrap().status();
        assert_eq!(status, Status::Amber);
        assert!(why.unwrap().contains("writer v3 differs from reader v2"));

        // A second producer ships a breaking version: red, naming it.
        message(
            &mut b,
            3 * S,
            "refunds",
            inspection("orders-value", 4, 2, "incompatible"),
        );
        let (status, why) = b.subject("orders-value").unwrap().status();
        assert_eq!(status, Status::Red);
        let why = why.unwrap();
        assert!(why.starts_with(&id("refunds")), "{why}");
        assert!(why.contains("incompatible with reader v2"), "{why}");

        // It rolls back; the first producer's compatible drift remains.
        message(
            &mut b,
            4 * S,
            "refunds",
            inspection("orders-value", 2, 2, "same"),
        );
        assert_eq!(b.subject("orders-value").unwrap().status().0, Status::Amber);
        message(
            &mut b,
            5 * S,
            "orders",
            inspection("orders-value", 2, 2, "same"),
        );
        assert_eq!(b.subject("orders-value").unwrap().status().0, Status::Green);

        let s = b.subject("orders-value").unwrap();
        let writers: Vec<u32> = s.producers[&id("orders")]
            .versions
            .keys()
            .copied()
            .collect();
        assert_eq!(writers, vec![2, 3]);
        let readers: Vec<u32> = s.consumers[&id("billing")]
            .versions
            .keys()
            .copied()
            .collect();
        assert_eq!(readers, vec![2]);
    }

    #[test]
    fn an_unregistered_schema_is_red() {
        let mut b = DriftBoard::new(10);
        let mut i = inspection("x", 0, 1, "unregistered");
        i.subject = None;
        i.version = None;
        i.contract = Some("demo/orders".into());
        message(&mut b, S, "orders", i);
        let s = b.subject("demo/orders").unwrap();
        assert_eq!(s.status().0, Status::Red);
        assert!(s.status().1.unwrap().contains("unregistered"));
        assert_eq!(s.producers[&id("orders")].unversioned, 1);
    }

    #[test]
    fn a_response_body_is_written_by_the_server() {
        let mut b = DriftBoard::new(10);
        let mut i = inspection("quote", 1, 1, "same");
        i.side = Some(MessageSide::Response);
        message(&mut b, S, "web", i);
        let s = b.subject("quote").unwrap();
        assert!(s.producers.contains_key(&id("billing")));
        assert!(s.consumers.contains_key(&id("web")));
    }

    #[test]
    fn versions_in_traffic_are_counted_per_bucket() {
        let mut b = DriftBoard::new(10);
        for k in 0..4 {
            message(&mut b, 10 * S + k, "orders", inspection("o", 1, 1, "same"));
        }
        message(&mut b, 12 * S, "orders", inspection("o", 1, 1, "same"));
        message(
            &mut b,
            12 * S,
            "orders",
            inspection("o", 3, 1, "incompatible"),
        );
        let s = b.subject("o").unwrap();
        let series = s.versions_over_time(12 * S);
        assert_eq!(series.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        let tail =
            |v: u32| -> Vec<f64> { series[&v].iter().rev().take(2).rev().map(|p| p.1).collect() };
        // Two-second buckets: 4 messages at 10 s are 2/s, one at 12 s is 0.5/s.
        assert_eq!(tail(1), vec![2.0, 0.5]);
        assert_eq!(tail(3), vec![0.0, 0.5]);
        assert_eq!(series[&1].len(), TRAFFIC_BUCKETS);
        // Five minutes on, the window has forgotten both.
        message(
            &mut b,
            400 * S,
            "orders",
            inspection("o", 2, 1, "compatible"),
        );
        let series = b.subject("o").unwrap().versions_over_time(400 * S);
        assert_eq!(series.keys().copied().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_bucket_counts_at_most_max_versions() {
        let mut c = VersionCounts::default();
        for v in 0..(MAX_VERSIONS as u32 + 3) {
            c.add(v);
        }
        c.add(0);
        assert_eq!(c.iter().count(), MAX_VERSIONS);
        assert_eq!(c.get(0), 2);
        assert_eq!(c.get(MAX_VERSIONS as u32), 0);
    }

    #[test]
    fn caps_evict_the_oldest_subjects_and_versions() {
        let mut b = DriftBoard::new(2);
        for (t, subject) in ["a", "b", "c"].into_iter().enumerate() {
            message(
                &mut b,
                t as i64 * S,
                "orders",
                inspection(subject, 1, 1, "same"),
            );
        }
        assert!(b.subject("a").is_none());
        assert_eq!(b.subjects().count(), 2);
        for v in 0..(MAX_VERSIONS as u32 + 5) {
            message(
                &mut b,
                10 * S + i64::from(v),
                "orders",
                inspection("c", v, 1, "compatible"),
            );
        }
        let versions = &b.subject("c").unwrap().producers[&id("orders")].versions;
        assert_eq!(versions.len(), MAX_VERSIONS);
        assert!(!versions.contains_key(&0));
    }
}
