//! What a metrics source tells the model: counts per edge and per policy decision over an
//! interval, as read from proxies' counters rather than seen event by event. Plain data, so
//! the model stays pure; `Mesh::apply_metrics` folds it into the same graph, time windows and
//! policy hits the tap events feed.

use super::Traffic;
use super::policy_hits::PolicyKey;
use super::window::Window;
use crate::tap::{Direction, Endpoint};

/// Counts over one interval, from one or many proxies, already deduplicated between the
/// client's and the server's proxy by the source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsDelta {
    /// The end of the interval (µs since the epoch): the model's clock moves to it.
    pub time_us: i64,
    /// The interval's length; `None` when the counts are totals since the proxies started
    /// (one snapshot), which say nothing about rates, so they reach the totals but not the
    /// per-second windows.
    pub interval_us: Option<i64>,
    pub edges: Vec<EdgeCounts>,
    pub policy: Vec<PolicyCounts>,
}

/// One client → server edge's counts.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeCounts {
    pub client: Endpoint,
    pub server: Endpoint,
    /// Which proxy reported the counts: the server's (inbound) or the client's (outbound).
    /// The graph keeps the same rule for both sources: an inbound report wins.
    pub reported_by: Direction,
    /// The hop was mTLS.
    pub secured: bool,
    /// Completed requests, denied ones included (as the tap fold counts them).
    pub requests: u64,
    /// Linkerd's `classification="success"`, denied ones included (a 403 is not a failure).
    pub successes: u64,
    pub denied: u64,
    pub tcp_connections: u64,
    /// Open at the end of the interval (a gauge), when known.
    pub tcp_open: Option<u64>,
    pub bytes: u64,
    /// Response latencies: (bucket upper bound in µs, count in that bucket alone), in
    /// ascending order; `u64::MAX` for `+Inf`.
    pub latency: Vec<(u64, u64)>,
}

/// One (server, route, authorization) key's decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyCounts {
    pub key: PolicyKey,
    pub allowed: u64,
    pub denied: u64,
}

/// Spreads one edge's counts over the interval's last `seconds` of the traffic plot; its
/// bytes and latencies go to the newest second (one histogram per edge and interval).
pub(crate) fn fold_traffic(traffic: &mut Window<Traffic>, e: &EdgeCounts, t: i64, seconds: usize) {
    let shares = spread(e.requests, seconds)
        .zip(spread(e.successes, seconds))
        .zip(spread(e.denied, seconds))
        .zip(spread(e.tcp_connections, seconds));
    for (i, (((requests, successes), denied), tcp)) in shares.enumerate() {
        let newest = i + 1 == seconds;
        let Some(slot) = traffic.at(t - (seconds - 1 - i) as i64 * 1_000_000) else {
            continue;
        };
        slot.requests += requests;
        slot.successes += successes;
        slot.denied += denied;
        slot.tcp_opened += tcp;
        if newest {
            slot.bytes += e.bytes;
            let mut previous = 0;
            for &(bound, n) in &e.latency {
                slot.latency.record_n(bucket_value(previous, bound), n);
                previous = bound;
            }
        }
    }
}

/// Splits `n` over `parts` whole shares that add up to `n`, the larger ones last, so a count
/// spread over an interval's seconds keeps its total.
pub(crate) fn spread(n: u64, parts: usize) -> impl Iterator<Item = u64> {
    let parts = parts.max(1) as u64;
    let (base, extra) = (n / parts, n % parts);
    (0..parts).map(move |i| base + u64::from(i >= parts - extra))
}

/// The value a latency bucket's observations are recorded as: the middle of the bucket
/// (`previous bound`, `bound`]; the `+Inf` bucket's, at the last finite bound.
pub(crate) fn bucket_value(previous_us: u64, bound_us: u64) -> u64 {
    if bound_us == u64::MAX {
        return previous_us;
    }
    previous_us + (bound_us - previous_us.min(bound_us)) / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::Mesh;
    use crate::mesh::testing::{S, id, workload};

    fn counts(reported_by: Direction, requests: u64) -> EdgeCounts {
        EdgeCounts {
            client: workload("web", "10.0.0.1:0"),
            server: workload("api", "10.0.0.2:8080"),
            reported_by,
            secured: true,
            requests,
            successes: requests - 5,
            denied: 5,
            tcp_connections: 2,
            tcp_open: Some(1),
            bytes: 1000,
            latency: vec![(1_000, 30), (2_000, requests - 30), (u64::MAX, 0)],
        }
    }

    #[test]
    fn an_interval_feeds_the_edge_rate_the_traffic_plot_and_policy_hits() {
        let mut m = Mesh::default();
        let key = PolicyKey {
            server: "server/api-http".into(),
            route: None,
            authz: Some("authorizationpolicy/web".into()),
        };
        m.apply_metrics(&MetricsDelta {
            time_us: 100 * S,
            interval_us: Some(10 * S),
            edges: vec![counts(Direction::Inbound, 50)],
            policy: vec![PolicyCounts {
                key: key.clone(),
                allowed: 45,
                denied: 5,
            }],
        });
        // The client's report of the same interval does not count twice.
        m.apply_metrics(&MetricsDelta {
            time_us: 100 * S,
            interval_us: Some(10 * S),
            edges: vec![counts(Direction::Outbound, 50)],
            policy: Vec::new(),
        });
        let g = m.graph();
        let (web, api) = (g.find(&id("web")).unwrap(), g.find(&id("api")).unwrap());
        let e = g.edge(web.id, api.id).unwrap();
        assert_eq!((e.requests, e.successes, e.denied), (50, 45, 5));
        assert_eq!((e.tcp_connections, e.tcp_open, e.secured), (2, 1, 52));
        assert!((e.rps(100 * S) - 5.0).abs() < 1e-9, "{}", e.rps(100 * S));
        let h = e.latency().unwrap();
        assert_eq!(h.count(), 50);
        // 30 in (0, 1] ms read as 0.5 ms, 20 in (1, 2] ms as 1.5 ms.
        assert!(h.p50().unwrap().abs_diff(500) <= 16, "{:?}", h.p50());
        assert!(h.p95().unwrap().abs_diff(1_500) <= 47, "{:?}", h.p95());
        let plotted: u64 = m
            .traffic()
            .iter(100 * S)
            .filter_map(|(_, t)| t.map(|t| t.requests))
            .sum();
        assert_eq!(plotted, 50);
        let hits = m.policy_hits().get(&key).unwrap();
        assert_eq!((hits.allowed, hits.denied), (45, 5));
        assert_eq!(m.now_us(), Some(100 * S));
        assert_eq!(m.generation(), 2);
    }

    #[test]
    fn totals_reach_the_edge_but_not_the_rate() {
        let mut m = Mesh::default();
        m.apply_metrics(&MetricsDelta {
            time_us: 100 * S,
            interval_us: None,
            edges: vec![counts(Direction::Outbound, 40)],
            policy: Vec::new(),
        });
        let e = m.graph().edges().next().unwrap();
        assert_eq!(
            e.requests, 40,
            "no inbound report: the client's counts count"
        );
        assert_eq!(e.rps(100 * S), 0.0);
        assert!(m.traffic().iter(100 * S).all(|(_, t)| t.is_none()));
    }

    #[test]
    fn spreading_keeps_the_total() {
        assert_eq!(spread(7, 3).collect::<Vec<_>>(), vec![2, 2, 3]);
        assert_eq!(spread(2, 5).collect::<Vec<_>>(), vec![0, 0, 0, 1, 1]);
        assert_eq!(spread(4, 0).collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn bucket_values_sit_inside_their_bucket() {
        assert_eq!(bucket_value(0, 1_000), 500);
        assert_eq!(bucket_value(5_000, 10_000), 7_500);
        assert_eq!(bucket_value(50_000_000, u64::MAX), 50_000_000);
    }
}
