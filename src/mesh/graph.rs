//! The identity graph: nodes are workloads and identities, meshed or not; edges go from a
//! client to a server and carry request, TCP, TLS and latency stats.
//!
//! Node keys: the mTLS identity when known; else the workload (`namespace/name`) when a proxy
//! named it, resolved to the identity node already seen for that workload; else the address.
//! A client known only by address is keyed by its IP (its port is ephemeral, one node per
//! connection would flood the graph); a server by `host:port` (the port is the service).
//!
//! Counting each request once: a meshed request is reported by the client's outbound proxy
//! and by the server's inbound proxy, with unrelated stream ids. The inbound report is the
//! one kept (it alone carries the policy decision and the proven client identity). An
//! outbound report counts only when its server node has never been the destination of an
//! inbound event, i.e. no inbound proxy in view reports for it (an unmeshed server, or a
//! meshed one whose proxy is not tapped). An inbound proxy's request start precedes the
//! client's response end, so in a time-ordered stream even the first request counts once.
//! Known gap: a plaintext hop to a meshed server whose workload the client's discovery does
//! not name cannot be matched to the inbound report, and counts on both sides.

use foldhash::{HashMap, HashSet};

use super::histogram::Histogram;
use super::metrics::{EdgeCounts, bucket_value, spread};
use super::window::Window;
use crate::tap::{Direction, Endpoint, Event, EventKind};

/// Stable for a node's lifetime; never reused after eviction.
pub type NodeId = u64;

/// The RPS of an edge is its requests over the last this many one-second buckets.
pub const RATE_SECONDS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Identity,
    Workload,
    Address,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    pub kind: NodeKind,
    pub key: Box<str>,
    pub namespace: Option<String>,
    pub workload: Option<String>,
    pub identity: Option<String>,
    /// An inbound proxy reported requests or connections to it.
    pub inbound_proxy: bool,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
}

impl Node {
    /// Meshed: it has a proven mTLS identity.
    pub fn meshed(&self) -> bool {
        self.identity.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub client: NodeId,
    pub server: NodeId,
    /// Completed requests (counted once, see the module docs).
    pub requests: u64,
    /// Linkerd's classification: not 5xx, gRPC status OK if any, no proxy error.
    pub successes: u64,
    /// Requests the server's policy denied (also counted in `requests`).
    pub denied: u64,
    pub tcp_connections: u64,
    /// Opened and not yet closed; a closed connection keeps the edge.
    pub tcp_open: u64,
    /// Requests and connections over mTLS.
    pub secured: u64,
    /// Request plus response bytes, and TCP bytes both ways.
    pub bytes: u64,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    /// Allocated at the first completed request; TCP-only edges have none.
    latency: Option<Box<Histogram>>,
    rate: Window<u32>,
}

impl Edge {
    fn new(client: NodeId, server: NodeId, t: i64) -> Self {
        Edge {
            client,
            server,
            requests: 0,
            successes: 0,
            denied: 0,
            tcp_connections: 0,
            tcp_open: 0,
            secured: 0,
            bytes: 0,
            first_seen_us: t,
            last_seen_us: t,
            latency: None,
            rate: Window::new(RATE_SECONDS, 1_000_000),
        }
    }

    pub fn success_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.successes as f64 / self.requests as f64)
    }

    /// The share of requests and connections that were mTLS.
    pub fn tls_share(&self) -> Option<f64> {
        let n = self.requests + self.tcp_connections;
        (n > 0).then(|| self.secured as f64 / n as f64)
    }

    /// Time to the response's last byte, per request.
    pub fn latency(&self) -> Option<&Histogram> {
        self.latency.as_deref()
    }

    /// Requests per second over the `RATE_SECONDS` ending at `now_us` (the model's clock).
    pub fn rps(&self, now_us: i64) -> f64 {
        let n: u32 = self.rate.iter(now_us).filter_map(|(_, c)| c).sum();
        f64::from(n) / RATE_SECONDS as f64
    }

    fn add_counts(&mut self, c: &EdgeCounts, t: i64, seconds: Option<usize>) {
        self.requests += c.requests;
        self.successes += c.successes;
        self.denied += c.denied;
        self.tcp_connections += c.tcp_connections;
        if let Some(open) = c.tcp_open {
            self.tcp_open = open;
        }
        if c.secured {
            self.secured += c.requests + c.tcp_connections;
        }
        self.bytes += c.bytes;
        let mut previous = 0;
        for &(bound, n) in &c.latency {
            if n > 0 {
                self.latency
                    .get_or_insert_default()
                    .record_n(bucket_value(previous, bound), n);
            }
            previous = bound;
        }
        if let Some(seconds) = seconds {
            for (i, n) in spread(c.requests, seconds).enumerate() {
                let at = t - (seconds - 1 - i) as i64 * 1_000_000;
                if let Some(slot) = self.rate.at(at) {
                    *slot = slot.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
                }
            }
        }
    }

    fn record(&mut self, e: &Event) {
        match e.kind {
            EventKind::ResponseEnd => {
                let Some(http) = &e.http else { return };
                self.requests += 1;
                let ok = http.status.is_some_and(|s| s < 500)
                    && http.grpc_status.is_none_or(|g| g == 0)
                    && http.proxy_error.is_none();
                self.successes += u64::from(ok);
                self.denied += u64::from(e.decision.as_ref().is_some_and(|d| d.verdict != "allow"));
                self.secured += u64::from(e.tls.secured);
                self.bytes += http.request_bytes + http.response_bytes;
                if let Some(l) = http.latency_us {
                    self.latency.get_or_insert_default().record(l);
                }
                if let Some(c) = self.rate.at(e.time_us) {
                    *c += 1;
                }
            }
            EventKind::TcpOpen => {
                self.tcp_connections += 1;
                self.tcp_open += 1;
                self.secured += u64::from(e.tls.secured);
            }
            EventKind::TcpClose => {
                self.tcp_open = self.tcp_open.saturating_sub(1);
                if let Some(tcp) = &e.tcp {
                    self.bytes += tcp.bytes_in + tcp.bytes_out;
                }
            }
            _ => {}
        }
    }
}

#[derive(Debug)]
pub struct Graph {
    max_nodes: usize,
    max_edges: usize,
    nodes: HashMap<NodeId, Node>,
    by_key: HashMap<Box<str>, NodeId>,
    /// `namespace/name` to the node that workload is, so an endpoint named only by workload
    /// lands on the identity node an mTLS report created.
    by_workload: HashMap<Box<str>, NodeId>,
    edges: HashMap<(NodeId, NodeId), Edge>,
    next_id: NodeId,
    evicted_nodes: u64,
    evicted_edges: u64,
    /// Counts node and edge arrivals and evictions: see `shape`.
    shape: u64,
    scratch: String,
}

impl Graph {
    pub fn new(max_nodes: usize, max_edges: usize) -> Self {
        Graph {
            max_nodes: max_nodes.max(2),
            max_edges: max_edges.max(1),
            nodes: HashMap::default(),
            by_key: HashMap::default(),
            by_workload: HashMap::default(),
            edges: HashMap::default(),
            next_id: 0,
            evicted_nodes: 0,
            evicted_edges: 0,
            shape: 0,
            scratch: String::new(),
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    pub fn edges(&self) -> impl Iterator<Item = &Edge> {
        self.edges.values()
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// The node for an identity, a `namespace/name` workload, or an address key.
    pub fn find(&self, key: &str) -> Option<&Node> {
        let id = self.by_key.get(key).or_else(|| self.by_workload.get(key))?;
        self.nodes.get(id)
    }

    pub fn edge(&self, client: NodeId, server: NodeId) -> Option<&Edge> {
        self.edges.get(&(client, server))
    }

    /// Nodes and edges dropped to stay within the budget.
    pub fn evicted(&self) -> (u64, u64) {
        (self.evicted_nodes, self.evicted_edges)
    }

    /// Changes whenever a node or edge comes or goes, and only then: views that place nodes
    /// check it each frame instead of hashing every node and edge.
    pub fn shape(&self) -> u64 {
        self.shape
    }

    /// Folds one request or connection event in; returns the (client, server) edge when it
    /// counted (see the module docs) so the other views count the same requests.
    pub(crate) fn observe(&mut self, e: &Event) -> Option<(NodeId, NodeId)> {
        let (counted, edge) = self.edge_reported(&e.source, &e.destination, e.direction, e.time_us);
        if !counted {
            return None;
        }
        edge.record(e);
        Some((edge.client, edge.server))
    }

    /// Folds one edge's counts from a metrics source in, under the same rule as `observe`.
    /// `seconds` spreads the requests over the interval's last seconds for the rate; `None`
    /// (totals, no interval) leaves the rate alone. Returns whether the counts counted.
    pub(crate) fn observe_counts(
        &mut self,
        c: &EdgeCounts,
        t: i64,
        seconds: Option<usize>,
    ) -> bool {
        let (counted, edge) = self.edge_reported(&c.client, &c.server, c.reported_by, t);
        if counted {
            edge.add_counts(c, t, seconds);
        }
        counted
    }

    /// The edge between two endpoints seen at `t`, and whether a report from this side
    /// counts: an inbound proxy's report wins over the client's once the server is known to
    /// have one, so a meshed request is counted once.
    fn edge_reported(
        &mut self,
        client: &Endpoint,
        server: &Endpoint,
        reported_by: Direction,
        t: i64,
    ) -> (bool, &mut Edge) {
        let client = self.resolve(client, true, t, None);
        let server = self.resolve(server, false, t, Some(client));
        let node = self.nodes.get_mut(&server).expect("resolved");
        let counted = match reported_by {
            Direction::Inbound => {
                node.inbound_proxy = true;
                true
            }
            Direction::Outbound => !node.inbound_proxy,
        };
        if !self.edges.contains_key(&(client, server)) && self.edges.len() >= self.max_edges {
            self.evict_edges();
        }
        let shape = &mut self.shape;
        let edge = self.edges.entry((client, server)).or_insert_with(|| {
            *shape += 1;
            Edge::new(client, server, t)
        });
        edge.last_seen_us = edge.last_seen_us.max(t);
        (counted, edge)
    }

    fn resolve(&mut self, ep: &Endpoint, client: bool, t: i64, protect: Option<NodeId>) -> NodeId {
        // The common case, a known identity whose workload is known: two lookups, no key built.
        if let Some(identity) = &ep.identity
            && let Some(&id) = self.by_key.get(identity.as_str())
        {
            let node = self.nodes.get_mut(&id).expect("indexed nodes exist");
            if node.workload.is_some() || ep.workload.is_none() {
                node.last_seen_us = node.last_seen_us.max(t);
                return id;
            }
        }
        let mut wl = std::mem::take(&mut self.scratch);
        wl.clear();
        if let Some(w) = &ep.workload {
            wl.push_str(ep.namespace.as_deref().unwrap_or(""));
            wl.push('/');
            wl.push_str(w);
        }
        let found = match &ep.identity {
            Some(id) => self.by_key.get(id.as_str()).copied(),
            None if !wl.is_empty() => self.by_workload.get(wl.as_str()).copied(),
            None => self.by_key.get(address_key(&ep.addr, client)).copied(),
        };
        let id = match found {
            Some(id) => id,
            None => self.insert(ep, client, &wl, t, protect),
        };
        if ep.identity.is_some() && !wl.is_empty() && !self.by_workload.contains_key(wl.as_str()) {
            self.by_workload.insert(wl.as_str().into(), id);
        }
        let node = self.nodes.get_mut(&id).expect("indexed nodes exist");
        node.last_seen_us = node.last_seen_us.max(t);
        if node.workload.is_none() && ep.workload.is_some() {
            node.workload.clone_from(&ep.workload);
            node.namespace.clone_from(&ep.namespace);
        }
        self.scratch = wl;
        id
    }

    fn insert(
        &mut self,
        ep: &Endpoint,
        client: bool,
        wl: &str,
        t: i64,
        protect: Option<NodeId>,
    ) -> NodeId {
        if self.nodes.len() >= self.max_nodes {
            self.evict_nodes(protect);
        }
        let (kind, key): (_, Box<str>) = match &ep.identity {
            Some(id) => (NodeKind::Identity, id.as_str().into()),
            None if !wl.is_empty() => (NodeKind::Workload, wl.into()),
            None => (NodeKind::Address, address_key(&ep.addr, client).into()),
        };
        let id = self.next_id;
        self.next_id += 1;
        if kind == NodeKind::Workload {
            self.by_workload.insert(key.clone(), id);
        }
        self.by_key.insert(key.clone(), id);
        self.shape += 1;
        self.nodes.insert(
            id,
            Node {
                id,
                kind,
                key,
                namespace: ep.namespace.clone(),
                workload: ep.workload.clone(),
                identity: ep.identity.clone(),
                inbound_proxy: false,
                first_seen_us: t,
                last_seen_us: t,
            },
        );
        id
    }

    /// Drops the least recently seen tenth of the nodes (and their edges) in one pass, so a
    /// churning mesh pays for a sort once per many inserts rather than a scan per insert.
    fn evict_nodes(&mut self, protect: Option<NodeId>) {
        let mut order: Vec<(i64, NodeId)> = self
            .nodes
            .values()
            .filter(|n| Some(n.id) != protect)
            .map(|n| (n.last_seen_us, n.id))
            .collect();
        let n = (self.max_nodes / 10).max(1).min(order.len());
        if n == 0 {
            return;
        }
        order.select_nth_unstable(n - 1);
        let gone: HashSet<NodeId> = order[..n].iter().map(|&(_, id)| id).collect();
        for id in &gone {
            if let Some(node) = self.nodes.remove(id) {
                self.by_key.remove(&node.key);
                self.evicted_nodes += 1;
            }
        }
        self.by_workload.retain(|_, id| !gone.contains(id));
        let before = self.edges.len();
        let nodes = &self.nodes;
        self.edges
            .retain(|(c, s), _| nodes.contains_key(c) && nodes.contains_key(s));
        self.evicted_edges += (before - self.edges.len()) as u64;
        self.shape += 1;
    }

    fn evict_edges(&mut self) {
        let mut order: Vec<(i64, (NodeId, NodeId))> = self
            .edges
            .values()
            .map(|e| (e.last_seen_us, (e.client, e.server)))
            .collect();
        let n = (self.max_edges / 10).max(1).min(order.len());
        order.select_nth_unstable(n - 1);
        for (_, k) in &order[..n] {
            self.edges.remove(k);
        }
        self.evicted_edges += n as u64;
        self.shape += 1;
    }
}

/// A client's IP without its ephemeral port; a server's full `host:port`.
fn address_key(addr: &str, client: bool) -> &str {
    if client {
        match addr.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => addr,
        }
    } else {
        addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::testing::*;

    fn fold(g: &mut Graph, events: &[Event]) {
        for e in events {
            g.observe(e);
        }
    }

    fn edge<'a>(g: &'a Graph, client: &str, server: &str) -> &'a Edge {
        let c = g.find(&id(client)).expect("client node").id;
        let s = g.find(&id(server)).expect("server node").id;
        g.edge(c, s).expect("edge")
    }

    #[test]
    fn inbound_and_outbound_reports_of_one_request_count_once() {
        let mut g = Graph::new(100, 100);
        // The order a sandbox sees: inbound request start, then the client's view ends after
        // the server's.
        let inbound = request(Direction::Inbound, 1, 10 * S, "web", "api", 200, None);
        let outbound = request(Direction::Outbound, 9, 10 * S, "web", "api", 200, None);
        fold(&mut g, &[outbound[0].clone(), inbound[0].clone()]);
        fold(&mut g, &inbound[1..]);
        fold(&mut g, &outbound[1..]);
        let e = edge(&g, "web", "api");
        assert_eq!(e.requests, 1);
        assert_eq!(e.bytes, 500);
        assert_eq!(e.latency().unwrap().count(), 1);
        assert_eq!(g.nodes().count(), 2);
    }

    #[test]
    fn outbound_reports_count_when_no_inbound_proxy_reports_the_server() {
        let mut g = Graph::new(100, 100);
        let mut events = request(Direction::Outbound, 1, 10 * S, "web", "db", 503, None);
        for e in &mut events {
            e.destination = Endpoint {
                addr: "10.0.0.9:5432".into(),
                ..Endpoint::default()
            };
            e.tls.secured = false;
        }
        fold(&mut g, &events);
        let c = g.find(&id("web")).unwrap().id;
        let db = g.find("10.0.0.9:5432").unwrap();
        assert!(!db.meshed());
        let e = g.edge(c, db.id).unwrap();
        assert_eq!((e.requests, e.successes), (1, 0));
        assert_eq!(e.tls_share(), Some(0.0));
    }

    #[test]
    fn allowed_and_denied_requests_fold_into_the_edge() {
        let mut g = Graph::new(100, 100);
        fold(
            &mut g,
            &request(Direction::Inbound, 1, 10 * S, "web", "api", 200, None),
        );
        fold(
            &mut g,
            &request(
                Direction::Inbound,
                2,
                10 * S,
                "web",
                "api",
                403,
                Some("deny"),
            ),
        );
        fold(
            &mut g,
            &request(Direction::Inbound, 3, 11 * S, "web", "api", 500, None),
        );
        let e = edge(&g, "web", "api");
        assert_eq!((e.requests, e.successes, e.denied), (3, 2, 1));
        assert_eq!(e.tls_share(), Some(1.0));
        assert!((e.rps(11 * S) - 0.3).abs() < 1e-9);
        assert_eq!(
            e.rps(30 * S),
            0.0,
            "the rate decays once the edge goes quiet"
        );
        assert_eq!(e.last_seen_us, 11 * S + 2_000);
    }

    #[test]
    fn a_closed_tcp_connection_keeps_its_edge() {
        let mut g = Graph::new(100, 100);
        g.observe(&tcp(EventKind::TcpOpen, 1, 10 * S, "web", "redis"));
        assert_eq!(edge(&g, "web", "redis").tcp_open, 1);
        g.observe(&tcp(EventKind::TcpClose, 1, 20 * S, "web", "redis"));
        let e = edge(&g, "web", "redis");
        assert_eq!((e.tcp_connections, e.tcp_open, e.bytes), (1, 0, 30));
        assert_eq!(e.last_seen_us, 20 * S);
        assert!(e.latency().is_none());
    }

    #[test]
    fn a_workload_named_without_identity_lands_on_its_identity_node() {
        let mut g = Graph::new(100, 100);
        fold(
            &mut g,
            &request(Direction::Inbound, 1, 10 * S, "web", "api", 200, None),
        );
        let mut plain = request(Direction::Outbound, 2, 11 * S, "web", "api", 200, None);
        for e in &mut plain {
            e.destination.identity = None;
        }
        fold(&mut g, &plain);
        assert_eq!(g.nodes().count(), 2);
        assert_eq!(
            edge(&g, "web", "api").requests,
            1,
            "deduplicated by workload"
        );
    }

    #[test]
    fn unidentified_clients_are_one_node_per_ip() {
        let mut g = Graph::new(100, 100);
        for (i, port) in [40001, 40002, 40003].into_iter().enumerate() {
            let mut events = request(
                Direction::Inbound,
                i as u64,
                10 * S,
                "web",
                "api",
                200,
                None,
            );
            for e in &mut events {
                e.source = Endpoint {
                    addr: format!("10.0.0.7:{port}"),
                    ..Endpoint::default()
                };
            }
            fold(&mut g, &events);
        }
        assert_eq!(g.nodes().count(), 2);
        let client = g.find("10.0.0.7").unwrap().id;
        let server = g.find(&id("api")).unwrap().id;
        assert_eq!(g.edge(client, server).unwrap().requests, 3);
    }

    #[test]
    fn the_shape_changes_when_nodes_or_edges_come_or_go_and_only_then() {
        let mut g = Graph::new(100, 1);
        let shape = g.shape();
        fold(
            &mut g,
            &request(Direction::Inbound, 1, 10 * S, "web", "api", 200, None),
        );
        let with_one_edge = g.shape();
        assert_ne!(with_one_edge, shape);
        fold(
            &mut g,
            &request(Direction::Inbound, 2, 11 * S, "web", "api", 500, None),
        );
        assert_eq!(g.shape(), with_one_edge, "more traffic on the same edge");
        fold(
            &mut g,
            &request(Direction::Inbound, 3, 12 * S, "api", "db", 200, None),
        );
        assert_ne!(g.shape(), with_one_edge, "a new node and an edge evicted");
    }

    #[test]
    fn caps_evict_the_least_recently_seen() {
        let mut g = Graph::new(20, 5);
        for i in 0..10 {
            let client = format!("client-{i}");
            fold(
                &mut g,
                &request(
                    Direction::Inbound,
                    i,
                    i as i64 * S,
                    &client,
                    "api",
                    200,
                    None,
                ),
            );
        }
        assert!(g.edges().count() <= 5);
        assert!(g.evicted().1 >= 5);
        // The newest edge survives; the oldest is gone.
        let api = g.find(&id("api")).unwrap().id;
        let newest = g.find(&id("client-9")).unwrap().id;
        assert!(g.edge(newest, api).is_some());
        let oldest = g.find(&id("client-0")).unwrap().id;
        assert!(g.edge(oldest, api).is_none());

        let mut g = Graph::new(10, 100);
        for i in 0..30 {
            g.observe(&tcp(
                EventKind::TcpOpen,
                i,
                i as i64 * S,
                &format!("c{i}"),
                &format!("s{i}"),
            ));
        }
        assert!(g.nodes().count() <= 10);
        assert!(g.find(&id("s29")).is_some());
        assert!(g.find(&id("s0")).is_none());
        let nodes = g.nodes().map(|n| n.id).collect::<HashSet<_>>();
        assert!(
            g.edges()
                .all(|e| nodes.contains(&e.client) && nodes.contains(&e.server))
        );
    }
}
