//! Which nodes and edges the graph view shows: the filters, and the visible set derived from
//! the model when its shape or the filter changes (not once per frame).

use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashSet};

use super::bundle::{Bundle, Inside, Pair, bundle, pairs};
use crate::mesh::Mesh;
use crate::mesh::drift::Status;
use crate::mesh::graph::{Edge, Node, NodeId};

/// The name nodes without a namespace are grouped under.
pub const NO_NAMESPACE: &str = "(outside the mesh)";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Namespaces unticked in the namespace menu.
    pub hidden_namespaces: BTreeSet<String>,
    /// Case-insensitive text a node's name or identity must contain.
    pub identity: String,
    /// Only edges with a request denied by policy, and their ends.
    pub only_denies: bool,
    /// Only workloads that produce or consume a drifting schema, and edges between them.
    pub only_drift: bool,
}

pub fn namespace(n: &Node) -> &str {
    n.namespace.as_deref().unwrap_or(NO_NAMESPACE)
}

/// Ordered from fine to most alarming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Ok,
    Failing,
    Denied,
}

impl Health {
    fn of(e: &Edge) -> Health {
        Health::of_counts(e.requests, e.successes, e.denied)
    }

    /// Denied when at least one request in twenty was denied, failing under 95 % success.
    pub fn of_counts(requests: u64, successes: u64, denied: u64) -> Health {
        if denied > 0 && denied * 20 >= requests {
            Health::Denied
        } else if requests > 0 && (successes as f64) < 0.95 * requests as f64 {
            Health::Failing
        } else {
            Health::Ok
        }
    }
}

/// One drawn edge with what its picture needs: which edges are drawn is derived once per
/// model shape and filter, their counts refreshed a slice at a time (see `Visible`).
#[derive(Debug, Clone)]
pub struct ShownEdge {
    pub client: NodeId,
    pub server: NodeId,
    /// The namespaces of its client and server, as indexes into `Visible::namespaces`;
    /// `None` for a node outside the mesh.
    pub namespaces: [Option<usize>; 2],
    pub rps: f32,
    pub requests: u64,
    pub successes: u64,
    pub health: Health,
    /// Every request and connection was mTLS.
    pub secured: bool,
    pub denied: u64,
    /// The namespace-to-namespace bundle it is drawn in at the overview level.
    pub bundle: Option<usize>,
    /// Both ends are in one namespace: the overview counts it on the namespace's box.
    pub inside: bool,
}

impl ShownEdge {
    fn new(e: &Edge, namespaces: [Option<usize>; 2], now_us: i64) -> ShownEdge {
        let mut shown = ShownEdge {
            client: e.client,
            server: e.server,
            namespaces,
            rps: 0.0,
            requests: 0,
            successes: 0,
            health: Health::Ok,
            secured: false,
            denied: 0,
            bundle: None,
            inside: false,
        };
        shown.count(e, now_us);
        shown
    }

    fn count(&mut self, e: &Edge, now_us: i64) {
        self.rps = e.rps(now_us) as f32;
        self.requests = e.requests;
        self.successes = e.successes;
        self.health = Health::of(e);
        self.secured = e.tls_share().is_some_and(|s| s >= 1.0);
        self.denied = e.denied;
    }
}

/// What the graph view draws. Which nodes and edges are in it is derived when the graph's
/// shape or the filter changes; under steady traffic only the counts and rates move, and
/// reading them for thousands of edges at once is a slow frame four times a second (each
/// edge's rate window is a cache miss), so `refresh` reads them a slice per frame.
#[derive(Debug, Default)]
pub struct Visible {
    pub nodes: Vec<NodeId>,
    pub edges: Vec<ShownEdge>,
    /// The edges between namespaces, one per ordered pair, for the overview.
    pub bundles: Vec<Bundle>,
    /// The bundles' directions paired up: one link each in the overview.
    pub pairs: Vec<Pair>,
    /// The edges inside each namespace, which the overview counts instead of drawing.
    pub inside: BTreeMap<String, Inside>,
    /// Every namespace in the model, for the menu, sorted.
    pub namespaces: Vec<String>,
    /// Nodes that produce or consume a schema whose newest message drifted.
    pub drifting: HashSet<NodeId>,
}

impl Visible {
    pub fn compute(mesh: &Mesh, filter: &Filter) -> Visible {
        let graph = mesh.graph();
        let now = mesh.now_us().unwrap_or(0);
        let drifting = drifting_nodes(mesh);
        let namespaces: Vec<String> = graph
            .nodes()
            .map(namespace)
            .collect::<BTreeSet<&str>>()
            .into_iter()
            .map(str::to_string)
            .collect();
        let text = filter.identity.trim().to_lowercase();
        let kept: HashMap<NodeId, Option<usize>> = graph
            .nodes()
            .filter(|n| !filter.hidden_namespaces.contains(namespace(n)))
            .filter(|n| text.is_empty() || matches(n, &text))
            .filter(|n| !filter.only_drift || drifting.contains(&n.id))
            .map(|n| {
                let index = n
                    .namespace
                    .as_deref()
                    .and_then(|ns| namespaces.binary_search_by(|x| x.as_str().cmp(ns)).ok());
                (n.id, index)
            })
            .collect();
        let edges: Vec<ShownEdge> = graph
            .edges()
            .filter(|e| !filter.only_denies || e.denied > 0)
            .filter_map(|e| {
                let ends = [*kept.get(&e.client)?, *kept.get(&e.server)?];
                Some(ShownEdge::new(e, ends, now))
            })
            .collect();
        let nodes = if filter.only_denies {
            let ends: HashSet<NodeId> = edges.iter().flat_map(|e| [e.client, e.server]).collect();
            graph
                .nodes()
                .map(|n| n.id)
                .filter(|id| ends.contains(id))
                .collect()
        } else {
            graph
                .nodes()
                .map(|n| n.id)
                .filter(|id| kept.contains_key(id))
                .collect()
        };
        let mut visible = Visible {
            nodes,
            edges,
            namespaces,
            drifting,
            ..Visible::default()
        };
        visible.fold();
        visible
    }

    /// Reads the counts and rates of the edges from `start` on, at most `count` of them,
    /// and folds them into the bundles again; returns where the next slice starts, `None`
    /// after the last. An edge gone from the model keeps its last counts until the next
    /// `compute`, which a change of shape brings.
    pub fn refresh(&mut self, mesh: &Mesh, start: usize, count: usize) -> Option<usize> {
        let graph = mesh.graph();
        let now = mesh.now_us().unwrap_or(0);
        if start == 0 {
            self.drifting = drifting_nodes(mesh);
        }
        let end = start.saturating_add(count).min(self.edges.len());
        for shown in self.edges.get_mut(start..end).unwrap_or_default() {
            if let Some(e) = graph.edge(shown.client, shown.server) {
                shown.count(e, now);
            }
        }
        self.fold();
        (end < self.edges.len()).then_some(end)
    }

    fn fold(&mut self) {
        let folded = bundle(&mut self.edges, &self.namespaces);
        self.pairs = pairs(&folded.bundles);
        self.bundles = folded.bundles;
        self.inside = folded.inside;
    }
}

fn matches(n: &Node, text: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(text);
    has(&super::node_label(n)) || n.identity.as_deref().is_some_and(has)
}

/// Producers and consumers (named as the drift board names them: identity, else
/// `namespace/workload`, else address) of every pair whose newest message drifted.
fn drifting_nodes(mesh: &Mesh) -> HashSet<NodeId> {
    let graph = mesh.graph();
    mesh.drift()
        .subjects()
        .flat_map(|(_, s)| s.pairs())
        .filter(|o| o.drift.status() != Status::Green)
        .flat_map(|o| [o.producer.as_str(), o.consumer.as_str()])
        .filter_map(|name| graph.find(name).map(|n| n.id))
        .collect()
}
