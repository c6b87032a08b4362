//! The model every view is a fold of: `Mesh::apply` takes each `tap::Event` into the identity
//! graph, the per-second traffic plot, per-edge series, the policy hits, the schema drift
//! board and the event log. Pure: no clock (time is the events' `time_us`, so a replayed
//! recording rebuilds exactly what was seen live), no I/O, no async.
//!
//! Memory budget (`Budget::default()`, worst case, all caps reached):
//! - graph: 10,000 nodes (~0.3 KiB each) and 50,000 edges (~0.3 KiB each plus a 1.8 KiB
//!   latency histogram for edges that carried requests): ~110 MiB; the least recently seen
//!   tenth is evicted in one pass when a cap is hit.
//! - traffic: 300 one-second buckets, each with a histogram: ~0.6 MiB.
//! - series: 256 edges × 180 five-second buckets with a coarse latency histogram: ~9 MiB.
//! - policy hits: 2,000 (server, route, authorization) keys × ~1 KiB of plot, plus the
//!   newest 1,000 denials: ~3 MiB.
//! - drift: 1,000 subjects, each with at most 64 producers and 64 consumers of 32 versions
//!   and 256 pairs, and a 150-bucket versions-in-traffic window (~5 KiB empty): typically
//!   a few KiB per subject, tens of MiB at the caps.
//! - log: 200,000 events (`EventLog` capacity) kept as Avro datums, ~0.45 KiB each, ~1 KiB
//!   with a decoded payload: ~90–200 MB (`tests/model_memory.rs` holds the worst case under
//!   300 MB). The budget's largest item; lower `log_capacity` on small machines.

pub mod drift;
pub mod graph;
pub mod histogram;
pub mod log;
pub mod metrics;
pub mod policy_hits;
pub mod query;
pub mod routes;
pub mod series;
pub mod window;

use crate::tap::{Event, EventKind};
use drift::DriftBoard;
use graph::Graph;
use histogram::Histogram;
use log::EventLog;
use policy_hits::PolicyHits;
use series::EdgeSeries;
use window::Window;

/// Caps on everything the model keeps; see the module docs for what each costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_nodes: usize,
    pub max_edges: usize,
    pub log_capacity: usize,
    pub max_policy_keys: usize,
    pub max_denials: usize,
    pub max_subjects: usize,
    /// One-second buckets of the traffic plot.
    pub traffic_seconds: usize,
    /// Edges with a 15-minute series for the metrics charts.
    pub max_series_edges: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_nodes: 10_000,
            max_edges: 50_000,
            log_capacity: log::DEFAULT_CAPACITY,
            max_policy_keys: 2_000,
            max_denials: 1_000,
            max_subjects: 1_000,
            traffic_seconds: 300,
            max_series_edges: 256,
        }
    }
}

/// One second of the whole mesh, for plots: counted requests (see `graph`), their outcome
/// and latency, and TCP connections opened.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    pub requests: u64,
    pub successes: u64,
    pub denied: u64,
    pub tcp_opened: u64,
    pub bytes: u64,
    pub latency: Histogram,
}

#[derive(Debug)]
pub struct Mesh {
    budget: Budget,
    generation: u64,
    now_us: i64,
    lost: u64,
    graph: Graph,
    traffic: Window<Traffic>,
    series: EdgeSeries,
    policy: PolicyHits,
    drift: DriftBoard,
    log: EventLog,
}

impl Default for Mesh {
    fn default() -> Self {
        Mesh::new(Budget::default())
    }
}

impl Mesh {
    pub fn new(budget: Budget) -> Self {
        Mesh {
            budget,
            generation: 0,
            now_us: i64::MIN,
            lost: 0,
            graph: Graph::new(budget.max_nodes, budget.max_edges),
            traffic: Window::new(budget.traffic_seconds, 1_000_000),
            series: EdgeSeries::new(budget.max_series_edges),
            policy: PolicyHits::new(budget.max_policy_keys, budget.max_denials),
            drift: DriftBoard::new(budget.max_subjects),
            log: EventLog::new(budget.log_capacity),
        }
    }

    /// Folds `event` in and keeps its encoded copy in the log.
    pub fn apply(&mut self, event: &Event) {
        self.count(event);
        self.log.push(event);
    }

    /// Folds in an event read from `datum` (its `tap-event.avsc` encoding, as in a
    /// recording block) and keeps those bytes in the log rather than encoding it again.
    pub fn apply_read(&mut self, event: &Event, datum: Option<&[u8]>) {
        self.count(event);
        match datum {
            Some(datum) => self.log.push_datum(datum),
            None => self.log.push(event),
        };
    }

    fn count(&mut self, event: &Event) {
        self.generation += 1;
        self.now_us = self.now_us.max(event.time_us);
        match event.kind {
            EventKind::Lost => self.lost += event.lost,
            _ => self.fold(event),
        }
    }

    fn fold(&mut self, e: &Event) {
        self.policy.observe(e);
        let Some(edge) = self.graph.observe(e) else {
            return;
        };
        match e.kind {
            EventKind::ResponseEnd => {
                self.drift.observe(e);
                let Some(http) = &e.http else { return };
                let success = http.status.is_some_and(|s| s < 500)
                    && http.grpc_status.is_none_or(|g| g == 0)
                    && http.proxy_error.is_none();
                let denied = e.decision.as_ref().is_some_and(|d| d.verdict != "allow");
                self.series
                    .record(edge, e.time_us, success, denied, http.latency_us);
                let Some(t) = self.traffic.at(e.time_us) else {
                    return;
                };
                t.requests += 1;
                t.successes += u64::from(success);
                t.denied += u64::from(denied);
                t.bytes += http.request_bytes + http.response_bytes;
                if let Some(l) = http.latency_us {
                    t.latency.record(l);
                }
            }
            EventKind::TcpOpen => {
                if let Some(t) = self.traffic.at(e.time_us) {
                    t.tcp_opened += 1;
                }
            }
            _ => {}
        }
    }

    /// Folds counts read from proxies' metrics into the same graph, traffic plot and policy
    /// hits as `apply`, so a mesh known only by its metrics looks like a tapped one (minus
    /// the event log, the denial list and schema drift, which need events).
    pub fn apply_metrics(&mut self, delta: &metrics::MetricsDelta) {
        self.generation += 1;
        self.now_us = self.now_us.max(delta.time_us);
        let seconds = delta.interval_us.map(|us| {
            (us.max(1) as u64)
                .div_ceil(1_000_000)
                .clamp(1, self.budget.traffic_seconds as u64) as usize
        });
        for e in &delta.edges {
            let counted = self.graph.observe_counts(e, delta.time_us, seconds);
            if let (true, Some(seconds)) = (counted, seconds) {
                metrics::fold_traffic(&mut self.traffic, e, delta.time_us, seconds);
            }
        }
        for p in &delta.policy {
            self.policy
                .add_counts(&p.key, p.allowed, p.denied, delta.time_us);
        }
    }

    /// Bumped by every `apply`; views cache what they derive by it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The newest event time seen: the model's clock. `None` before the first event.
    pub fn now_us(&self) -> Option<i64> {
        (self.now_us != i64::MIN).then_some(self.now_us)
    }

    /// Events the sources reported lost (slow subscriber) — the views are missing them.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Per-second traffic of the whole mesh over the last `traffic_seconds`.
    pub fn traffic(&self) -> &Window<Traffic> {
        &self.traffic
    }

    /// Per-edge 5 s buckets over the last 15 minutes, for the most recently seen edges.
    pub fn series(&self) -> &EdgeSeries {
        &self.series
    }

    pub fn policy_hits(&self) -> &PolicyHits {
        &self.policy
    }

    pub fn drift(&self) -> &DriftBoard {
        &self.drift
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }
}

/// Event builders for the model's tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::tap::{
        Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, MessageSide, Tcp, Tls,
    };

    pub const S: i64 = 1_000_000;

    pub fn id(sa: &str) -> String {
        format!("{sa}.demo.serviceaccount.identity.linkerd.cluster.local")
    }

    pub fn workload(name: &str, addr: &str) -> Endpoint {
        Endpoint {
            addr: addr.to_string(),
            namespace: Some("demo".into()),
            workload: Some(name.into()),
            identity: Some(id(name)),
        }
    }

    pub fn decision(verdict: &str, authz: Option<&str>) -> Decision {
        Decision {
            verdict: verdict.into(),
            server_kind: "server".into(),
            server_name: "api-http".into(),
            route_kind: Some("route".into()),
            route_name: Some("orders".into()),
            authz_kind: authz.map(|_| "authorizationpolicy".into()),
            authz_name: authz.map(str::to_string),
            reason: if verdict == "allow" {
                "authorized".into()
            } else {
                "no authorization matched the client".into()
            },
            tried: Vec::new(),
        }
    }

    /// The three events of one request from `client` to `server` seen by one proxy.
    pub fn request(
        direction: Direction,
        stream: u64,
        t: i64,
        client: &str,
        server: &str,
        status: u16,
        verdict: Option<&str>,
    ) -> Vec<Event> {
        let proxy = match direction {
            Direction::Inbound => server,
            Direction::Outbound => client,
        };
        let base = Event {
            stream,
            kind: EventKind::RequestStart,
            time_us: t,
            proxy: format!("demo/{proxy}"),
            direction,
            source: workload(client, "10.0.0.1:41234"),
            destination: workload(server, "10.0.0.2:8080"),
            tls: Tls {
                secured: true,
                reason: None,
            },
            http: Some(Http {
                protocol: "HTTP/1.1".into(),
                method: "GET".into(),
                authority: format!("{server}:8080"),
                path: "/orders".into(),
                ..Http::default()
            }),
            tcp: None,
            decision: match direction {
                Direction::Inbound => {
                    Some(decision(verdict.unwrap_or("allow"), Some("allow-clients")))
                }
                Direction::Outbound => None,
            },
            avro: Vec::new(),
            lost: 0,
        };
        let mut start = base.clone();
        start.kind = EventKind::ResponseStart;
        start.time_us = t + 1_000;
        let http = start.http.as_mut().unwrap();
        http.status = Some(status);
        http.latency_us = Some(1_000);
        let mut end = start.clone();
        end.kind = EventKind::ResponseEnd;
        end.time_us = t + 2_000;
        let http = end.http.as_mut().unwrap();
        http.latency_us = Some(2_000);
        http.request_bytes = 100;
        http.response_bytes = 400;
        vec![base, start, end]
    }

    pub fn tcp(kind: EventKind, stream: u64, t: i64, client: &str, server: &str) -> Event {
        let mut e = request(Direction::Inbound, stream, t, client, server, 200, None).remove(0);
        e.kind = kind;
        e.http = None;
        e.tcp = Some(Tcp {
            bytes_in: if kind == EventKind::TcpClose { 10 } else { 0 },
            bytes_out: if kind == EventKind::TcpClose { 20 } else { 0 },
            duration_us: None,
            error: None,
        });
        e
    }

    pub fn inspection(subject: &str, writer: u32, reader: u32, drift: &str) -> Inspection {
        Inspection {
            side: Some(MessageSide::Request),
            framing: "confluent".into(),
            subject: Some(subject.into()),
            version: Some(writer),
            reader_version: Some(reader),
            drift: Some(drift.into()),
            valid: drift != "incompatible",
            ..Inspection::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::tap::Direction;

    #[test]
    fn a_replayed_recording_gives_the_same_model_and_log_as_its_events() {
        use crate::tap::recording::{Recorder, Recording};
        let mut events = Vec::new();
        for i in 0..50 {
            let denied = (i % 7 == 0).then_some("orders-http");
            events.extend(request(
                Direction::Inbound,
                i,
                S + i as i64 * 1000,
                "web",
                "api",
                200,
                denied,
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let mut recorder = Recorder::create(&path, false).unwrap();
        for (i, e) in events.iter().enumerate() {
            recorder.push(e).unwrap();
            // Blocks of different sizes, so the reader refills batches unevenly.
            if i % 17 == 16 || i % 40 == 3 {
                recorder.flush().unwrap();
            }
        }
        recorder.finish().unwrap();

        let mut applied = Mesh::default();
        for e in &events {
            applied.apply(e);
        }
        let mut read = Mesh::default();
        let mut recording = Recording::open(&path).unwrap();
        let mut with_datum = 0;
        for i in 0..recording.blocks().len() {
            recording
                .for_each_in_block(i, |e, datum| {
                    with_datum += usize::from(datum.is_some());
                    read.apply_read(e, datum);
                })
                .unwrap();
        }
        assert_eq!(with_datum, events.len());
        assert_eq!(read.generation(), applied.generation());
        let logged = |m: &Mesh| m.log().since(0).map(|(_, e)| e).collect::<Vec<_>>();
        assert_eq!(logged(&read), events);
        assert_eq!(logged(&read), logged(&applied));
        assert_eq!(
            read.policy_hits().denials().count(),
            applied.policy_hits().denials().count()
        );

        // Read ahead on another thread, folded here: the same model as the fold on one.
        let mut ahead = Mesh::default();
        let recording = Recording::open(&path).unwrap();
        assert!(recording.blocks().len() > 5);
        let mut reader = crate::tap::read_ahead::ReadAhead::start(recording, 0).unwrap();
        while let Some(batch) = reader.blocking_next() {
            for (e, datum) in batch.unwrap().iter() {
                assert!(datum.is_some());
                ahead.apply_read(e, datum);
            }
        }
        let edges = |m: &Mesh| {
            m.graph()
                .edges()
                .map(|e| {
                    let p99 = e.latency().map(|l| l.p99());
                    (e.requests, e.successes, e.denied, p99)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ahead.generation(), read.generation());
        assert_eq!(ahead.now_us(), read.now_us());
        assert_eq!(logged(&ahead), logged(&read));
        assert_eq!(edges(&ahead), edges(&read));
        assert_eq!(edges(&ahead), edges(&applied));
        assert_eq!(
            ahead.policy_hits().denials().count(),
            read.policy_hits().denials().count()
        );
    }

    #[test]
    fn generation_and_clock_follow_the_events() {
        let mut m = Mesh::default();
        assert_eq!(m.now_us(), None);
        for e in request(Direction::Inbound, 1, 5 * S, "web", "api", 200, None) {
            m.apply(&e);
        }
        m.apply(&Event::lost(7, 4 * S));
        assert_eq!(m.generation(), 4);
        assert_eq!(
            m.now_us(),
            Some(5 * S + 2_000),
            "an older event does not rewind it"
        );
        assert_eq!(m.lost(), 7);
        assert_eq!(m.log().len(), 4);
    }

    #[test]
    fn traffic_plot_counts_each_request_once_per_second() {
        let mut m = Mesh::default();
        for (i, t) in [10 * S, 10 * S + 500_000, 11 * S].into_iter().enumerate() {
            for e in request(Direction::Inbound, i as u64, t, "web", "api", 200, None) {
                m.apply(&e);
            }
            for e in request(
                Direction::Outbound,
                100 + i as u64,
                t,
                "web",
                "api",
                200,
                None,
            ) {
                m.apply(&e);
            }
        }
        let per_second: Vec<u64> = m
            .traffic()
            .iter(11 * S)
            .skip(298)
            .map(|(_, t)| t.map_or(0, |t| t.requests))
            .collect();
        assert_eq!(per_second, vec![2, 1]);
    }

    #[test]
    fn an_allowed_and_a_denied_request_reach_the_edge_and_the_policy_hits() {
        let mut m = Mesh::default();
        let allowed = request(Direction::Inbound, 1, 10 * S, "web", "api", 200, None);
        let denied = request(
            Direction::Inbound,
            2,
            11 * S,
            "web",
            "api",
            403,
            Some("deny"),
        );
        allowed.iter().chain(&denied).for_each(|e| m.apply(e));
        let g = m.graph();
        let web = g.find(&id("web")).unwrap().id;
        let api = g.find(&id("api")).unwrap().id;
        let edge = g.edge(web, api).unwrap();
        assert_eq!((edge.requests, edge.successes, edge.denied), (2, 2, 1));
        let hits: Vec<(u64, u64)> = m
            .policy_hits()
            .hits()
            .map(|h| (h.allowed, h.denied))
            .collect();
        assert_eq!(hits, vec![(1, 1)], "same server, route and authorization");
        let denial = m.policy_hits().denials().next().unwrap();
        assert_eq!((denial.stream, denial.verdict.as_str()), (2, "deny"));
        let second = m.traffic().iter(11 * S).last().unwrap().1.unwrap();
        assert_eq!((second.requests, second.denied), (1, 1));
        let series = m.series().get(web, api).unwrap();
        let bucket = series.window.iter(11 * S).last().unwrap().1.unwrap();
        assert_eq!(
            (bucket.requests, bucket.successes, bucket.denied),
            (2, 2, 1)
        );
    }

    #[test]
    fn the_budget_bounds_every_part() {
        let budget = Budget {
            max_nodes: 10,
            max_edges: 5,
            log_capacity: 50,
            max_policy_keys: 3,
            max_denials: 4,
            max_subjects: 2,
            traffic_seconds: 10,
            max_series_edges: 3,
        };
        let mut m = Mesh::new(budget);
        for i in 0..40u64 {
            let (c, s) = (format!("c{i}"), format!("s{i}"));
            let mut events = request(
                Direction::Inbound,
                i,
                i as i64 * S,
                &c,
                &s,
                403,
                Some("deny"),
            );
            for e in &mut events {
                let d = e.decision.as_mut().unwrap();
                d.server_name = format!("srv-{i}");
            }
            events[2].avro = vec![inspection(&format!("subject-{i}"), 1, 1, "same")];
            events.iter().for_each(|e| m.apply(e));
        }
        assert!(m.graph().nodes().count() <= 10);
        assert_eq!(m.series().iter().count(), 3);
        assert!(m.graph().edges().count() <= 5);
        assert_eq!(m.log().len(), 50);
        assert_eq!(m.log().next_seq(), 120);
        assert_eq!(m.policy_hits().hits().count(), 3);
        assert_eq!(m.policy_hits().denials().count(), 4);
        assert_eq!(m.drift().subjects().count(), 2);
        assert!(m.drift().subject("subject-39").is_some());
        assert_eq!(m.traffic().buckets(), 10);
    }

    #[test]
    fn a_replay_rebuilds_the_same_model() {
        let mut events = Vec::new();
        for i in 0..50u64 {
            let status = if i % 7 == 0 { 503 } else { 200 };
            let verdict = (i % 5 == 0).then_some("deny");
            events.extend(request(
                Direction::Inbound,
                i,
                i as i64 * S / 10,
                "web",
                "api",
                status,
                verdict,
            ));
        }
        let fold = |events: &[Event]| {
            let mut m = Mesh::default();
            events.iter().for_each(|e| m.apply(e));
            let e = m.graph().edges().next().unwrap().clone();
            (
                e.requests,
                e.successes,
                e.denied,
                e.latency().unwrap().p99(),
                m.generation(),
            )
        };
        assert_eq!(fold(&events), fold(&events));
        assert_eq!(fold(&events).0, 50);
        assert_eq!(fold(&events).2, 10);
    }
}
