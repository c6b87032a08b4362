//! Requests by route — (source, destination, method, path) — with count, best, worst and
//! last latency and success rate, as `linkerd viz top` shows them. Pure: fed events, it
//! keeps at most `max_routes` routes, evicting the least recently seen tenth at the cap.
//!
//! Each request counts once, as in the identity graph: a meshed request is reported by the
//! client's outbound proxy and the server's inbound proxy; the inbound report counts, and an
//! outbound one only for a server no inbound proxy has reported for (an unmeshed server, or
//! one whose proxy is not tapped). Streams merged from several proxies are only roughly in
//! time order, so a server's first request can count twice when the client's report
//! arrives before any inbound report for that server.

use foldhash::{HashMap, HashSet};

use crate::tap::{Direction, Endpoint, Event, EventKind};

/// Routes kept by default: a screen needs a few dozen, paths with ids can make thousands.
pub const DEFAULT_MAX_ROUTES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    pub source: String,
    pub destination: String,
    pub method: String,
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteStats {
    pub count: u64,
    pub successes: u64,
    /// Time to the response's last byte: the lowest, highest and latest seen.
    pub best_us: u64,
    pub worst_us: u64,
    pub last_us: u64,
    /// When the route was last seen (event time).
    pub seen_us: i64,
}

impl RouteStats {
    /// Successes over requests: not a 5xx, no gRPC error, not answered by the proxy itself.
    pub fn success_rate(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.successes as f64 / self.count as f64
    }
}

#[derive(Debug)]
pub struct Routes {
    routes: HashMap<RouteKey, RouteStats>,
    /// Servers an inbound proxy reported for (see the module docs).
    inbound_servers: HashSet<String>,
    max_routes: usize,
    evicted: u64,
}

impl Default for Routes {
    fn default() -> Self {
        Routes::new(DEFAULT_MAX_ROUTES)
    }
}

impl Routes {
    pub fn new(max_routes: usize) -> Self {
        Routes {
            routes: HashMap::default(),
            inbound_servers: HashSet::default(),
            max_routes: max_routes.max(1),
            evicted: 0,
        }
    }

    /// Folds one event in; returns whether it counted a request (HTTP response ends only).
    pub fn observe(&mut self, e: &Event) -> bool {
        if e.kind == EventKind::Lost {
            return false;
        }
        let server = server_key(&e.destination);
        let counted = match e.direction {
            Direction::Inbound => {
                if !self.inbound_servers.contains(server) {
                    self.inbound_servers.insert(server.to_string());
                }
                true
            }
            Direction::Outbound => !self.inbound_servers.contains(server),
        };
        let (EventKind::ResponseEnd, Some(http), true) = (e.kind, &e.http, counted) else {
            return false;
        };
        let key = RouteKey {
            source: label(&e.source, true),
            destination: label(&e.destination, false),
            method: http.method.clone(),
            path: http.path.clone(),
        };
        if !self.routes.contains_key(&key) && self.routes.len() >= self.max_routes {
            self.evict();
        }
        let latency = http.latency_us.unwrap_or(0);
        let success = http.status.is_some_and(|s| s < 500)
            && http.grpc_status.is_none_or(|g| g == 0)
            && http.proxy_error.is_none();
        let s = self.routes.entry(key).or_insert(RouteStats {
            count: 0,
            successes: 0,
            best_us: latency,
            worst_us: latency,
            last_us: latency,
            seen_us: e.time_us,
        });
        s.count += 1;
        s.successes += u64::from(success);
        s.best_us = s.best_us.min(latency);
        s.worst_us = s.worst_us.max(latency);
        if e.time_us >= s.seen_us {
            s.last_us = latency;
            s.seen_us = e.time_us;
        }
        true
    }

    /// The `n` busiest routes, most requests first (ties by route, for a stable screen).
    pub fn top(&self, n: usize) -> Vec<(&RouteKey, &RouteStats)> {
        let mut all: Vec<_> = self.routes.iter().collect();
        all.sort_unstable_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        all.truncate(n);
        all
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Routes dropped at the cap so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn evict(&mut self) {
        let mut seen: Vec<i64> = self.routes.values().map(|s| s.seen_us).collect();
        let tenth = (seen.len() / 10).max(1);
        let (_, cutoff, _) = seen.select_nth_unstable(tenth - 1);
        let cutoff = *cutoff;
        let before = self.routes.len();
        self.routes.retain(|_, s| s.seen_us > cutoff);
        self.evicted += (before - self.routes.len()) as u64;
    }
}

/// Who a server is, for telling whether an inbound proxy reports for it: its proven
/// identity, else the address it was called on.
fn server_key(ep: &Endpoint) -> &str {
    ep.identity.as_deref().unwrap_or(&ep.addr)
}

/// How `top` names a side: `namespace/workload`, else the identity's service account and
/// namespace, else the address (a client's IP only: its port changes per connection).
fn label(ep: &Endpoint, client: bool) -> String {
    if let Some(w) = &ep.workload {
        return match &ep.namespace {
            Some(ns) => format!("{ns}/{w}"),
            None => w.clone(),
        };
    }
    if let Some(id) = &ep.identity {
        let mut parts = id.split('.');
        if let (Some(sa), Some(ns), Some("serviceaccount")) =
            (parts.next(), parts.next(), parts.next())
        {
            return format!("{ns}/{sa}");
        }
        return id.clone();
    }
    if client && let Some((ip, _port)) = ep.addr.rsplit_once(':') {
        return ip.trim_start_matches('[').trim_end_matches(']').to_string();
    }
    ep.addr.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::testing::{S, request};

    fn fold(events: &[Event]) -> Routes {
        let mut r = Routes::default();
        events.iter().for_each(|e| {
            r.observe(e);
        });
        r
    }

    fn with(mut events: Vec<Event>, path: &str, latency: u64) -> Vec<Event> {
        for e in &mut events {
            let h = e.http.as_mut().unwrap();
            h.path = path.into();
            if e.kind == EventKind::ResponseEnd {
                h.latency_us = Some(latency);
            }
        }
        events
    }

    #[test]
    fn requests_group_by_route_with_latency_and_success() {
        let mut events = Vec::new();
        for (i, (status, latency)) in [(200, 3_000), (200, 1_000), (503, 9_000), (200, 2_000)]
            .into_iter()
            .enumerate()
        {
            let t = i as i64 * S;
            events.extend(with(
                request(Direction::Inbound, i as u64, t, "web", "api", status, None),
                "/orders",
                latency,
            ));
        }
        events.extend(with(
            request(Direction::Inbound, 9, 10 * S, "web", "api", 200, None),
            "/users",
            500,
        ));
        let r = fold(&events);
        let top = r.top(10);
        assert_eq!(top.len(), 2);
        let (key, s) = top[0];
        assert_eq!(
            (
                key.source.as_str(),
                key.destination.as_str(),
                key.method.as_str(),
                key.path.as_str()
            ),
            ("demo/web", "demo/api", "GET", "/orders")
        );
        assert_eq!(
            (s.count, s.best_us, s.worst_us, s.last_us),
            (4, 1_000, 9_000, 2_000)
        );
        assert_eq!(s.success_rate(), 0.75);
        assert_eq!(top[1].0.path, "/users");
        assert_eq!(r.top(1).len(), 1);
    }

    #[test]
    fn a_meshed_request_counts_once() {
        let mut events = request(Direction::Inbound, 1, S, "web", "api", 200, None);
        events.extend(request(Direction::Outbound, 2, S, "web", "api", 200, None));
        // The server's inbound proxy reports first (its request start precedes the client's
        // response end), so the outbound report is not counted.
        events.sort_by_key(|e| e.time_us);
        let r = fold(&events);
        assert_eq!(r.top(10)[0].1.count, 1);
        // A server with no inbound proxy in view: the outbound report counts.
        let r = fold(&request(Direction::Outbound, 2, S, "web", "db", 500, None));
        assert_eq!(r.top(10)[0].1.count, 1);
        assert_eq!(r.top(10)[0].1.success_rate(), 0.0);
    }

    #[test]
    fn sides_are_named_by_workload_identity_or_address() {
        let mut e = request(Direction::Inbound, 1, S, "web", "api", 200, None).remove(2);
        e.source.workload = None;
        e.destination.workload = None;
        e.destination.identity = None;
        e.destination.addr = "10.0.0.2:8080".into();
        let r = fold(&[e.clone()]);
        let key = r.top(1)[0].0.clone();
        assert_eq!(
            (key.source.as_str(), key.destination.as_str()),
            ("demo/web", "10.0.0.2:8080")
        );
        e.source.identity = None;
        let r = fold(&[e]);
        assert_eq!(r.top(1)[0].0.source, "10.0.0.1");
    }

    #[test]
    fn the_cap_evicts_the_least_recently_seen() {
        let mut r = Routes::new(10);
        for i in 0..25u64 {
            for e in with(
                request(Direction::Inbound, i, i as i64 * S, "web", "api", 200, None),
                &format!("/orders/{i}"),
                1,
            ) {
                r.observe(&e);
            }
        }
        assert!(r.len() <= 10);
        assert_eq!(r.evicted(), 25 - r.len() as u64);
        assert!(r.top(10).iter().any(|(k, _)| k.path == "/orders/24"));
        assert!(!r.top(10).iter().any(|(k, _)| k.path == "/orders/0"));
    }
}
