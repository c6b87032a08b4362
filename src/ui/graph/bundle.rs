//! The overview of a big mesh: every edge between two namespaces folded into one bundle per
//! ordered pair of namespaces, and a pair's two directions drawn as one link. Thousands of
//! long crossing edges read as a grey mat and cost a software renderer most of a frame; a
//! few dozen links say which namespaces talk, how much, and whether any of it is denied or
//! failing.

use std::collections::BTreeMap;

use foldhash::HashMap;

use egui::{Pos2, Rect, Vec2};

use super::filter::{Health, ShownEdge};

/// The edges from one namespace to another.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub from: String,
    pub to: String,
    pub edges: usize,
    pub rps: f32,
    pub requests: u64,
    pub successes: u64,
    pub denied: u64,
    /// Judged like one edge carrying all its requests.
    pub health: Health,
    /// How many of its edges had a request denied, are failing, or are not all mTLS.
    pub denied_edges: usize,
    pub failing_edges: usize,
    pub plaintext_edges: usize,
}

/// The edges whose two ends are in one namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inside {
    pub edges: usize,
    /// Edges with a request denied.
    pub denied_edges: usize,
}

/// What `bundle` makes of the edges.
#[derive(Debug, Default)]
pub struct Folded {
    pub bundles: Vec<Bundle>,
    /// The edges inside each namespace, by namespace.
    pub inside: BTreeMap<String, Inside>,
}

/// Folds the edges whose ends are in two different namespaces into bundles, and marks
/// each such edge with its bundle's index; counts and marks the edges inside a namespace.
/// An edge's `namespaces` index `names`; an end outside the mesh (`None`) leaves the edge
/// single. Runs whenever counts are refreshed, so it only indexes: no names are compared.
pub fn bundle(edges: &mut [ShownEdge], names: &[String]) -> Folded {
    let mut index: HashMap<(usize, usize), usize> = HashMap::default();
    let mut bundles: Vec<Bundle> = Vec::new();
    let mut inside: BTreeMap<usize, Inside> = BTreeMap::new();
    let name = |ns: usize| names.get(ns).cloned().unwrap_or_default();
    for e in edges.iter_mut() {
        e.bundle = None;
        e.inside = false;
        let [Some(from), Some(to)] = e.namespaces else {
            continue;
        };
        if from == to {
            e.inside = true;
            let ns = inside.entry(from).or_default();
            ns.edges += 1;
            ns.denied_edges += usize::from(e.denied > 0);
            continue;
        }
        let k = *index.entry((from, to)).or_insert_with(|| {
            bundles.push(Bundle {
                from: name(from),
                to: name(to),
                edges: 0,
                rps: 0.0,
                requests: 0,
                successes: 0,
                denied: 0,
                health: Health::Ok,
                denied_edges: 0,
                failing_edges: 0,
                plaintext_edges: 0,
            });
            bundles.len() - 1
        });
        let b = &mut bundles[k];
        b.edges += 1;
        b.rps += e.rps;
        b.requests += e.requests;
        b.successes += e.successes;
        b.denied += e.denied;
        b.health = Health::of_counts(b.requests, b.successes, b.denied);
        if e.denied > 0 {
            b.denied_edges += 1;
        }
        if e.health == Health::Failing {
            b.failing_edges += 1;
        }
        if !e.secured {
            b.plaintext_edges += 1;
        }
        e.bundle = Some(k);
    }
    Folded {
        bundles,
        inside: inside
            .into_iter()
            .map(|(ns, counts)| (name(ns), counts))
            .collect(),
    }
}

/// The two directions between a pair of namespaces, drawn as one link: a pair of busy
/// namespaces usually talks both ways, and two long lines per pair cost a software renderer
/// twice as much for the same picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The two namespaces, in name order.
    pub namespaces: [String; 2],
    /// The bundles from the first namespace to the second and back, when there is traffic.
    pub ways: [Option<usize>; 2],
    pub rps: f32,
    /// The worse of the two directions.
    pub health: Health,
    pub denied_edges: usize,
    pub plaintext_edges: usize,
}

/// Pairs up the bundles of the two directions between each pair of namespaces.
pub fn pairs(bundles: &[Bundle]) -> Vec<Pair> {
    let mut index: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut pairs: Vec<Pair> = Vec::new();
    for (k, b) in bundles.iter().enumerate() {
        let (key, way) = if b.from <= b.to {
            ((b.from.as_str(), b.to.as_str()), 0)
        } else {
            ((b.to.as_str(), b.from.as_str()), 1)
        };
        let p = *index.entry(key).or_insert_with(|| {
            pairs.push(Pair {
                namespaces: [key.0.to_string(), key.1.to_string()],
                ways: [None, None],
                rps: 0.0,
                health: Health::Ok,
                denied_edges: 0,
                plaintext_edges: 0,
            });
            pairs.len() - 1
        });
        let p = &mut pairs[p];
        p.ways[way] = Some(k);
        p.rps += b.rps;
        p.health = p.health.max(b.health);
        p.denied_edges += b.denied_edges;
        p.plaintext_edges += b.plaintext_edges;
    }
    pairs
}

/// Where a link between two namespaces' boxes (on screen) starts and ends: on the boxes'
/// borders along the line between their centres; centre to centre when the boxes overlap.
pub fn link_ends(from: Rect, to: Rect) -> Option<(Pos2, Pos2)> {
    let d = to.center() - from.center();
    let len = d.length();
    if !len.is_finite() || len < 1.0 {
        return None;
    }
    let dir = d / len;
    let (a, b) = (border(from, dir), border(to, -dir));
    if (b - a).dot(dir) > 10.0 {
        Some((a, b))
    } else {
        Some((from.center(), to.center()))
    }
}

/// Where a ray from `r`'s centre along `dir` leaves `r`.
fn border(r: Rect, dir: Vec2) -> Pos2 {
    let half = r.size() / 2.0;
    let along = |h: f32, d: f32| if d == 0.0 { f32::INFINITY } else { h / d.abs() };
    r.center() + dir * along(half.x, dir.x).min(along(half.y, dir.y))
}

/// The links drawn this frame, to find the one under the pointer.
#[derive(Debug, Default)]
pub struct Links {
    drawn: Vec<(usize, Pos2, Pos2, f32)>,
}

impl Links {
    pub fn push(&mut self, bundle: usize, a: Pos2, b: Pos2, width: f32) {
        self.drawn.push((bundle, a, b, width));
    }

    pub fn count(&self) -> usize {
        self.drawn.len()
    }

    /// The bundle whose link passes nearest `p`, within a few points of its edge.
    pub fn under(&self, p: Pos2) -> Option<usize> {
        self.drawn
            .iter()
            .map(|&(k, a, b, width)| (k, distance(p, a, b) - width / 2.0))
            .filter(|&(_, d)| d <= 4.0)
            .min_by(|x, y| x.1.total_cmp(&y.1))
            .map(|(k, _)| k)
    }
}

/// From `p` to the segment `a`-`b`.
fn distance(p: Pos2, a: Pos2, b: Pos2) -> f32 {
    let ab = b - a;
    let t = if ab.length_sq() > 0.0 {
        ((p - a).dot(ab) / ab.length_sq()).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (p - (a + ab * t)).length()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::graph::NodeId;

    /// An edge with `counts`: requests, successes, denied.
    fn edge(client: NodeId, server: NodeId, counts: [u64; 3], secured: bool) -> ShownEdge {
        let [requests, successes, denied] = counts;
        ShownEdge {
            client,
            server,
            namespaces: [ns(client), ns(server)],
            rps: 2.0,
            requests,
            successes,
            health: Health::of_counts(requests, successes, denied),
            secured,
            denied,
            bundle: None,
            inside: false,
        }
    }

    /// Nodes 1-3 in `a`, 4-5 in `b`, 6 outside the mesh: indexes into `names()`.
    fn ns(id: NodeId) -> Option<usize> {
        match id {
            1..=3 => Some(0),
            4..=5 => Some(1),
            _ => None,
        }
    }

    fn names() -> Vec<String> {
        vec!["a".to_string(), "b".to_string()]
    }

    #[test]
    fn edges_between_two_namespaces_fold_into_one_bundle_per_direction() {
        let mut edges = vec![
            edge(1, 4, [100, 100, 0], true),
            edge(2, 5, [10, 10, 5], true),
            edge(3, 4, [10, 5, 0], false),
            edge(4, 1, [10, 10, 1], true),
            edge(1, 2, [10, 10, 10], true),
            edge(6, 1, [10, 10, 0], false),
        ];
        assert_eq!(edges[1].health, Health::Denied);
        assert_eq!(edges[2].health, Health::Failing);
        let Folded { bundles, inside } = bundle(&mut edges, &names());
        assert_eq!(bundles.len(), 2);
        let ab = &bundles[0];
        assert_eq!((ab.from.as_str(), ab.to.as_str()), ("a", "b"));
        assert_eq!(
            (ab.edges, ab.requests, ab.successes, ab.denied),
            (3, 120, 115, 5)
        );
        assert_eq!(ab.rps, 6.0);
        assert_eq!(
            ab.health,
            Health::Ok,
            "judged on all its requests: 4 % denied, 96 % succeeded"
        );
        assert_eq!(
            (ab.denied_edges, ab.failing_edges, ab.plaintext_edges),
            (1, 1, 1)
        );
        let ba = &bundles[1];
        assert_eq!((ba.from.as_str(), ba.to.as_str(), ba.edges), ("b", "a", 1));
        assert_eq!(ba.health, Health::Denied, "one request in ten denied");
        let marks: Vec<Option<usize>> = edges.iter().map(|e| e.bundle).collect();
        assert_eq!(
            marks,
            [Some(0), Some(0), Some(0), Some(1), None, None],
            "edges inside a namespace and edges of nodes outside the mesh stay single"
        );
        let inside_marks: Vec<bool> = edges.iter().map(|e| e.inside).collect();
        assert_eq!(inside_marks, [false, false, false, false, true, false]);
        assert_eq!(
            inside.into_iter().collect::<Vec<_>>(),
            [(
                "a".to_string(),
                Inside {
                    edges: 1,
                    denied_edges: 1
                }
            )]
        );
    }

    #[test]
    fn links_run_between_the_boxes_borders_or_centres() {
        let a = Rect::from_min_max(Pos2::new(0.0, 0.0), Pos2::new(100.0, 100.0));
        let b = Rect::from_min_max(Pos2::new(300.0, 0.0), Pos2::new(400.0, 100.0));
        assert_eq!(
            link_ends(a, b),
            Some((Pos2::new(100.0, 50.0), Pos2::new(300.0, 50.0)))
        );
        let overlapping = Rect::from_min_max(Pos2::new(50.0, 0.0), Pos2::new(150.0, 100.0));
        assert_eq!(
            link_ends(a, overlapping),
            Some((Pos2::new(50.0, 50.0), Pos2::new(100.0, 50.0)))
        );
        assert_eq!(link_ends(a, a), None, "no link from a box to itself");
    }

    #[test]
    fn the_two_directions_between_namespaces_pair_up_into_one_link() {
        let mut edges = vec![
            edge(1, 4, [100, 100, 0], true),
            edge(4, 1, [10, 10, 1], false),
            edge(6, 1, [10, 10, 0], false),
        ];
        let mut bundles = bundle(&mut edges, &names()).bundles;
        bundles.push(Bundle {
            from: "c".to_string(),
            to: "a".to_string(),
            ..bundles[0].clone()
        });
        let pairs = pairs(&bundles);
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].namespaces, ["a", "b"]);
        assert_eq!(pairs[0].ways, [Some(0), Some(1)], "a -> b, then b -> a");
        assert_eq!(pairs[0].rps, 4.0);
        assert_eq!(
            pairs[0].health,
            Health::Denied,
            "as bad as its worse direction"
        );
        assert_eq!((pairs[0].denied_edges, pairs[0].plaintext_edges), (1, 1));
        assert_eq!(pairs[1].namespaces, ["a", "c"]);
        assert_eq!(pairs[1].ways, [None, Some(2)], "only c -> a, named a, c");
    }

    #[test]
    fn the_link_under_the_pointer_is_the_nearest_within_reach() {
        let mut links = Links::default();
        links.push(0, Pos2::new(0.0, 0.0), Pos2::new(100.0, 0.0), 2.0);
        links.push(1, Pos2::new(0.0, 6.0), Pos2::new(100.0, 6.0), 2.0);
        assert_eq!(links.under(Pos2::new(50.0, 1.0)), Some(0));
        assert_eq!(links.under(Pos2::new(50.0, 5.0)), Some(1));
        assert_eq!(links.under(Pos2::new(50.0, 40.0)), None);
        assert_eq!(links.under(Pos2::new(120.0, 0.0)), None, "past its end");
    }

    #[test]
    fn bundling_again_forgets_the_old_marks() {
        let mut edges = vec![edge(1, 4, [1, 1, 0], true)];
        bundle(&mut edges, &names());
        assert_eq!(edges[0].bundle, Some(0));
        edges[0].namespaces = [Some(1), Some(1)];
        assert!(bundle(&mut edges, &names()).bundles.is_empty());
        assert_eq!((edges[0].bundle, edges[0].inside), (None, true));
        edges[0].namespaces = [Some(0), Some(1)];
        bundle(&mut edges, &names());
        assert!(!edges[0].inside);
    }
}
