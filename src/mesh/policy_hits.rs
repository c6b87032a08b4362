//! Policy hits: for each (server, route, authorization) the inbound policy decided with, how
//! many requests and connections it allowed and denied, in total and per 5 s over the last
//! five minutes, plus the newest denials with the reason and every authorization tried.
//!
//! A decision counts once, at the event that carries it first: the request start of an HTTP
//! request, the open of a TCP connection. Only inbound proxies decide, so there is nothing to
//! deduplicate against outbound reports.

use std::collections::VecDeque;

use foldhash::HashMap;

use super::window::Window;
use crate::tap::{Event, EventKind, TriedAuthz};

/// Buckets of the per-key plot: 60 × 5 s = 5 min.
pub const HIT_BUCKETS: usize = 60;
pub const HIT_BUCKET_US: i64 = 5_000_000;

/// What a decision was made with: `kind/name` of the server, route and authorization.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PolicyKey {
    pub server: String,
    pub route: Option<String>,
    pub authz: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub allowed: u32,
    pub denied: u32,
}

#[derive(Debug, Clone)]
pub struct Hits {
    pub key: PolicyKey,
    pub allowed: u64,
    /// `deny` and `no_route` verdicts.
    pub denied: u64,
    pub last_seen_us: i64,
    pub over_time: Window<Counts>,
}

/// One denied request or connection, as the UI lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    pub time_us: i64,
    pub proxy: String,
    pub stream: u64,
    /// The client's identity, else its address.
    pub client: String,
    pub key: PolicyKey,
    /// `deny` or `no_route`.
    pub verdict: String,
    pub reason: String,
    pub tried: Vec<TriedAuthz>,
    /// `METHOD path` for HTTP, `None` for a TCP connection.
    pub request: Option<String>,
}

#[derive(Debug)]
pub struct PolicyHits {
    max_keys: usize,
    max_denials: usize,
    /// Keyed by `server\0route\0authz` so a hit is looked up without allocating.
    hits: HashMap<Box<str>, Hits>,
    denials: VecDeque<Denial>,
    scratch: String,
}

impl PolicyHits {
    pub fn new(max_keys: usize, max_denials: usize) -> Self {
        PolicyHits {
            max_keys: max_keys.max(1),
            max_denials: max_denials.max(1),
            hits: HashMap::default(),
            denials: VecDeque::new(),
            scratch: String::new(),
        }
    }

    pub fn hits(&self) -> impl Iterator<Item = &Hits> {
        self.hits.values()
    }

    pub fn get(&self, key: &PolicyKey) -> Option<&Hits> {
        self.hits.get(join(key).as_str())
    }

    /// The newest denials, oldest first.
    pub fn denials(&self) -> impl DoubleEndedIterator<Item = &Denial> + ExactSizeIterator {
        self.denials.iter()
    }

    /// Adds decisions a metrics source counted for `key` by `time_us`. Counters carry no
    /// reasons, so no denial is listed.
    pub(crate) fn add_counts(&mut self, key: &PolicyKey, allowed: u64, denied: u64, time_us: i64) {
        if allowed == 0 && denied == 0 {
            return;
        }
        let hits = Self::entry_in(&mut self.hits, self.max_keys, &join(key), time_us);
        hits.last_seen_us = hits.last_seen_us.max(time_us);
        hits.allowed += allowed;
        hits.denied += denied;
        if let Some(c) = hits.over_time.at(time_us) {
            let add = |a: u32, n: u64| a.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
            c.allowed = add(c.allowed, allowed);
            c.denied = add(c.denied, denied);
        }
    }

    /// The hits under joined key `k`, made when new; at the cap, the key seen longest ago
    /// makes room.
    fn entry_in<'a>(
        hits: &'a mut HashMap<Box<str>, Hits>,
        max_keys: usize,
        k: &str,
        time_us: i64,
    ) -> &'a mut Hits {
        if !hits.contains_key(k) && hits.len() >= max_keys {
            let oldest = hits
                .iter()
                .min_by_key(|(_, h)| h.last_seen_us)
                .map(|(k, _)| k.clone());
            if let Some(old) = oldest {
                hits.remove(&old);
            }
        }
        hits.entry(k.into()).or_insert_with(|| Hits {
            key: split(k),
            allowed: 0,
            denied: 0,
            last_seen_us: time_us,
            over_time: Window::new(HIT_BUCKETS, HIT_BUCKET_US),
        })
    }

    pub(crate) fn observe(&mut self, e: &Event) {
        if !matches!(e.kind, EventKind::RequestStart | EventKind::TcpOpen) {
            return;
        }
        let Some(d) = &e.decision else { return };
        let allowed = d.verdict == "allow";
        let mut k = std::mem::take(&mut self.scratch);
        k.clear();
        push_kind_name(&mut k, Some(&d.server_kind), Some(&d.server_name));
        k.push('\0');
        push_kind_name(&mut k, d.route_kind.as_deref(), d.route_name.as_deref());
        k.push('\0');
        push_kind_name(&mut k, d.authz_kind.as_deref(), d.authz_name.as_deref());
        let hits = Self::entry_in(&mut self.hits, self.max_keys, &k, e.time_us);
        self.scratch = k;
        hits.last_seen_us = hits.last_seen_us.max(e.time_us);
        let slot = hits.over_time.at(e.time_us);
        if allowed {
            hits.allowed += 1;
            if let Some(c) = slot {
                c.allowed += 1;
            }
            return;
        }
        hits.denied += 1;
        if let Some(c) = slot {
            c.denied += 1;
        }
        if self.denials.len() == self.max_denials {
            self.denials.pop_front();
        }
        let key = hits.key.clone();
        self.denials.push_back(Denial {
            time_us: e.time_us,
            proxy: e.proxy.clone(),
            stream: e.stream,
            client: e
                .source
                .identity
                .clone()
                .unwrap_or_else(|| e.source.addr.clone()),
            key,
            verdict: d.verdict.clone(),
            reason: d.reason.clone(),
            tried: d.tried.clone(),
            request: e.http.as_ref().map(|h| format!("{} {}", h.method, h.path)),
        });
    }
}

fn push_kind_name(k: &mut String, kind: Option<&str>, name: Option<&str>) {
    if let Some(name) = name {
        k.push_str(kind.unwrap_or(""));
        k.push('/');
        k.push_str(name);
    }
}

fn join(key: &PolicyKey) -> String {
    format!(
        "{}\0{}\0{}",
        key.server,
        key.route.as_deref().unwrap_or(""),
        key.authz.as_deref().unwrap_or("")
    )
}

fn split(k: &str) -> PolicyKey {
    let mut parts = k.split('\0');
    let mut next = || parts.next().filter(|s| !s.is_empty()).map(str::to_string);
    PolicyKey {
        server: next().unwrap_or_default(),
        route: next(),
        authz: next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::testing::*;
    use crate::tap::Direction;

    fn key(authz: Option<&str>) -> PolicyKey {
        PolicyKey {
            server: "server/api-http".into(),
            route: Some("route/orders".into()),
            authz: authz.map(|a| format!("authorizationpolicy/{a}")),
        }
    }

    #[test]
    fn allowed_and_denied_requests_count_under_their_decision() {
        let mut p = PolicyHits::new(10, 10);
        for e in request(Direction::Inbound, 1, 10 * S, "web", "api", 200, None) {
            p.observe(&e);
        }
        let mut denied = request(Direction::Inbound, 2, 12 * S, "evil", "api", 403, None);
        for e in &mut denied {
            e.decision = Some(decision("deny", None));
        }
        denied.iter().for_each(|e| p.observe(e));
        // Outbound reports carry no decision.
        for e in request(Direction::Outbound, 3, 12 * S, "web", "api", 200, None) {
            p.observe(&e);
        }
        let allowed = p.get(&key(Some("allow-clients"))).unwrap();
        assert_eq!((allowed.allowed, allowed.denied), (1, 0));
        let d = p.get(&key(None)).unwrap();
        assert_eq!((d.allowed, d.denied), (0, 1), "counted once per request");
        let plot: u32 = d
            .over_time
            .iter(12 * S)
            .filter_map(|(_, c)| c)
            .map(|c| c.denied)
            .sum();
        assert_eq!(plot, 1);
        let denials: Vec<_> = p.denials().collect();
        assert_eq!(denials.len(), 1);
        assert_eq!(denials[0].client, id("evil"));
        assert_eq!(denials[0].reason, "no authorization matched the client");
        assert_eq!(denials[0].request.as_deref(), Some("GET /orders"));
    }

    #[test]
    fn keeps_only_the_newest_denials_and_keys() {
        let mut p = PolicyHits::new(2, 3);
        for i in 0..5u64 {
            let mut e =
                request(Direction::Inbound, i, i as i64 * S, "web", "api", 403, None).remove(0);
            e.decision = Some(decision("deny", Some(&format!("a{i}"))));
            p.observe(&e);
        }
        let streams: Vec<u64> = p.denials().map(|d| d.stream).collect();
        assert_eq!(streams, vec![2, 3, 4]);
        assert_eq!(p.hits().count(), 2);
        assert!(p.get(&key(Some("a4"))).is_some());
        assert!(p.get(&key(Some("a0"))).is_none());
    }
}
