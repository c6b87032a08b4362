//! Which nodes and edges the graph view shows: the filters, and the visible set derived from
//! the model once per generation and filter (not once per frame).

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashSet;

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

/// One drawn edge with what its picture needs, computed once per model generation.
#[derive(Debug, Clone)]
pub struct ShownEdge {
    pub client: NodeId,
    pub server: NodeId,
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
        let namespaces: BTreeSet<&str> = graph.nodes().map(namespace).collect();
        let text = filter.identity.trim().to_lowercase();
        let kept: HashSet<NodeId> = graph
            .nodes()
            .filter(|n| !filter.hidden_namespaces.contains(namespace(n)))
            .filter(|n| text.is_empty() || matches(n, &text))
            .filter(|n| !filter.only_drift || drifting.contains(&n.id))
            .map(|n| n.id)
            .collect();
        let mut edges: Vec<ShownEdge> = graph
            .edges()
            .filter(|e| kept.contains(&e.client) && kept.contains(&e.server))
            .filter(|e| !filter.only_denies || e.denied > 0)
            .map(|e| ShownEdge {
                client: e.client,
                server: e.server,
                rps: e.rps(now) as f32,
                requests: e.requests,
                successes: e.successes,
                health: Health::of(e),
                secured: e.tls_share().is_some_and(|s| s >= 1.0),
                denied: e.denied,
                bundle: None,
                inside: false,
            })
            .collect();
        let folded = bundle(&mut edges, |id| {
            graph.node(id).and_then(|n| n.namespace.as_deref())
        });
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
                .filter(|id| kept.contains(id))
                .collect()
        };
        Visible {
            nodes,
            edges,
            pairs: pairs(&folded.bundles),
            bundles: folded.bundles,
            inside: folded.inside,
            namespaces: namespaces.into_iter().map(str::to_string).collect(),
            drifting,
        }
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
