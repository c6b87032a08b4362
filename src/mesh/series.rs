//! Per-edge time series for the metrics charts: requests, successes, denials and a coarse
//! latency histogram per 5 s over the last 15 minutes, for the edges seen most recently.
//!
//! The edge's own latency histogram (`graph::Edge::latency`) is 1.8 KiB; keeping one per
//! bucket would cost 330 KiB per edge. Here each bucket holds 48 log-scale bins (two per
//! power of two, so a quantile is within ~19 % of the true value): ~37 KiB per edge, and at
//! most `max_edges` edges, ~9 MiB at the default cap. When they are all taken, a new edge
//! gets a series only once the least recently seen one has been idle for a bucket: with
//! more busy edges than the cap, evicting on every new edge would keep each series for one
//! request, drop the history of all of them, and cost a 37 KiB allocation per request.

use foldhash::HashMap;

use super::graph::NodeId;
use super::window::Window;

/// Buckets of a series: 180 × 5 s = 15 min.
pub const SERIES_BUCKETS: usize = 180;
pub const SERIES_BUCKET_US: i64 = 5_000_000;
/// Latency bins: bin `i` holds `[2^(i/2), 2^((i+1)/2))` µs; the last also everything above
/// (~16 s).
pub const LATENCY_BINS: usize = 48;

/// One bucket of one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Completed requests (counted once, as the graph counts them).
    pub requests: u32,
    /// Linkerd's classification: not 5xx, gRPC OK if any, no proxy error.
    pub successes: u32,
    pub denied: u32,
    latency: [u32; LATENCY_BINS],
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            requests: 0,
            successes: 0,
            denied: 0,
            latency: [0; LATENCY_BINS],
        }
    }
}

fn bin(us: u64) -> usize {
    if us < 2 {
        return 0;
    }
    let log2 = 63 - us.leading_zeros() as usize;
    // Upper half of the octave: us >= 2^log2 * sqrt(2).
    let half = usize::from((us as f64) >= (1u64 << log2) as f64 * std::f64::consts::SQRT_2);
    (2 * log2 + half).min(LATENCY_BINS - 1)
}

/// The geometric middle of bin `i`, in µs.
fn bin_value(i: usize) -> f64 {
    2f64.powf((i as f64 + 0.5) / 2.0)
}

impl Sample {
    pub fn record(&mut self, success: bool, denied: bool, latency_us: Option<u64>) {
        self.requests = self.requests.saturating_add(1);
        self.successes = self.successes.saturating_add(u32::from(success));
        self.denied = self.denied.saturating_add(u32::from(denied));
        if let Some(us) = latency_us {
            let b = &mut self.latency[bin(us)];
            *b = b.saturating_add(1);
        }
    }

    /// Adds another bucket's counts, e.g. to sum a workload's inbound edges.
    pub fn merge(&mut self, other: &Sample) {
        self.requests = self.requests.saturating_add(other.requests);
        self.successes = self.successes.saturating_add(other.successes);
        self.denied = self.denied.saturating_add(other.denied);
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a = a.saturating_add(*b);
        }
    }

    /// The latency at quantile `q` (0..=1) in µs, to the bin's middle; `None` with no
    /// latency recorded.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().map(|&n| u64::from(n)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.latency.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return Some(bin_value(i));
            }
        }
        Some(bin_value(LATENCY_BINS - 1))
    }
}

#[derive(Debug, Clone)]
pub struct Series {
    pub last_seen_us: i64,
    pub window: Window<Sample>,
}

/// The series of the most recently seen edges, keyed (client, server) like the graph.
#[derive(Debug)]
pub struct EdgeSeries {
    max_edges: usize,
    series: HashMap<(NodeId, NodeId), Series>,
    /// No series was seen last before this (µs), as of the last scan: while it is not a
    /// bucket old, none is idle and the scan is skipped.
    seen_floor_us: i64,
}

impl EdgeSeries {
    pub fn new(max_edges: usize) -> Self {
        EdgeSeries {
            max_edges: max_edges.max(1),
            series: HashMap::default(),
            seen_floor_us: i64::MIN,
        }
    }

    pub fn get(&self, client: NodeId, server: NodeId) -> Option<&Series> {
        self.series.get(&(client, server))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&(NodeId, NodeId), &Series)> {
        self.series.iter()
    }

    /// Counts one completed request on the edge at `time_us`.
    pub(crate) fn record(
        &mut self,
        edge: (NodeId, NodeId),
        time_us: i64,
        success: bool,
        denied: bool,
        latency_us: Option<u64>,
    ) {
        if !self.series.contains_key(&edge)
            && self.series.len() >= self.max_edges
            && !self.make_room(time_us)
        {
            return;
        }
        let s = self.series.entry(edge).or_insert_with(|| Series {
            last_seen_us: time_us,
            window: Window::new(SERIES_BUCKETS, SERIES_BUCKET_US),
        });
        s.last_seen_us = s.last_seen_us.max(time_us);
        if let Some(sample) = s.window.at(time_us) {
            sample.record(success, denied, latency_us);
        }
    }

    /// Drops the least recently seen series if it has been idle for a bucket at `time_us`.
    fn make_room(&mut self, time_us: i64) -> bool {
        if time_us.saturating_sub(self.seen_floor_us) < SERIES_BUCKET_US {
            return false;
        }
        let Some((&oldest, s)) = self.series.iter().min_by_key(|(_, s)| s.last_seen_us) else {
            return true;
        };
        self.seen_floor_us = s.last_seen_us;
        if time_us.saturating_sub(s.last_seen_us) < SERIES_BUCKET_US {
            return false;
        }
        self.series.remove(&oldest);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn bins_are_half_octaves() {
        assert_eq!(bin(0), 0);
        assert_eq!(bin(1), 0);
        assert_eq!(bin(2), 2);
        assert_eq!(bin(3), 3);
        assert_eq!(bin(4), 4);
        assert_eq!(bin(1_000), 19);
        assert_eq!(bin(u64::MAX), LATENCY_BINS - 1);
        for us in [5u64, 100, 1_000, 20_000, 3_000_000] {
            let mid = bin_value(bin(us));
            let err = (mid - us as f64).abs() / us as f64;
            assert!(err < 0.2, "{us} µs lands in a bin centred at {mid}");
        }
    }

    #[test]
    fn quantiles_come_from_the_bins() {
        let mut s = Sample::default();
        assert_eq!(s.latency_quantile(0.5), None);
        for _ in 0..90 {
            s.record(true, false, Some(1_000));
        }
        for _ in 0..10 {
            s.record(false, true, Some(100_000));
        }
        assert_eq!((s.requests, s.successes, s.denied), (100, 90, 10));
        let p50 = s.latency_quantile(0.5).unwrap();
        let p95 = s.latency_quantile(0.95).unwrap();
        assert!((800.0..1_200.0).contains(&p50), "p50 {p50}");
        assert!((80_000.0..120_000.0).contains(&p95), "p95 {p95}");
        let mut twice = s.clone();
        twice.merge(&s);
        assert_eq!(twice.requests, 200);
        assert_eq!(twice.latency_quantile(0.5), s.latency_quantile(0.5));
    }

    #[test]
    fn an_idle_edge_makes_room_for_a_new_one() {
        let mut e = EdgeSeries::new(2);
        e.record((1, 2), 10 * S, true, false, Some(10));
        e.record((1, 3), 11 * S, true, false, None);
        e.record((1, 2), 15 * S, false, false, None);
        e.record((4, 2), 16 * S, true, false, None);
        assert!(e.get(1, 3).is_none(), "idle for 5 s, seen longest ago");
        let s = e.get(1, 2).unwrap();
        let total: u32 = s
            .window
            .iter(16 * S)
            .filter_map(|(_, c)| c)
            .map(|c| c.requests)
            .sum();
        assert_eq!(total, 2);
        assert!(e.get(4, 2).is_some());
        assert_eq!(e.iter().count(), 2);
    }

    #[test]
    fn more_busy_edges_than_the_cap_keep_the_series_they_have() {
        let mut e = EdgeSeries::new(2);
        for t in 0..100 {
            for (k, edge) in [(1, 2), (1, 3), (1, 4)].into_iter().enumerate() {
                e.record(edge, t * S / 10 + k as i64, true, false, None);
            }
        }
        let kept = |e: &EdgeSeries| [(1, 2), (1, 3), (1, 4)].map(|(c, s)| e.get(c, s).is_some());
        assert_eq!(kept(&e), [true, true, false]);
        let requests = |e: &EdgeSeries, c, s| {
            e.get(c, s)
                .unwrap()
                .window
                .iter(10 * S)
                .filter_map(|(_, c)| c)
                .map(|c| c.requests)
                .sum::<u32>()
        };
        assert_eq!(requests(&e, 1, 2), 100, "history kept, not reset by (1, 4)");
        // (1, 2) goes quiet; after a bucket, (1, 4) takes its place.
        for t in 100..200 {
            for (k, edge) in [(1, 3), (1, 4)].into_iter().enumerate() {
                e.record(edge, t * S / 10 + k as i64, true, false, None);
            }
        }
        assert_eq!(kept(&e), [false, true, true]);
    }
}
