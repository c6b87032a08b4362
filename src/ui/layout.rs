//! A force layout for the graph view, kept free of egui so it can be tested alone.
//!
//! Nodes repel their neighbours on a grid (only pairs within two edge lengths are compared,
//! so a step costs about O(n + m) instead of O(n²)), edges pull, and each node is drawn
//! towards its group's anchor so a namespace stays together. Groups whose bounding boxes
//! come too close are then moved apart, so namespaces never overlap. New nodes start next to a
//! placed neighbour and the heat added depends on how much changed (a warm start), so the
//! picture does not jump when the mesh grows. Pinned nodes feel forces but never move.
//! The layout cools each step and stops once cold, so a settled graph costs no frames.

use foldhash::HashMap;

/// Ideal edge length, in layout units.
pub const K: f32 = 90.0;
/// Below this temperature the layout is settled and stops asking for frames.
const COLD: f32 = 0.02;
/// Repulsion is cut off beyond this distance; it is also the grid's cell size.
const REACH: f32 = 2.0 * K;
/// Pull towards the group's anchor, per unit of distance.
const GRAVITY: f32 = 0.2;
/// Nodes of different groups push this much harder, so namespaces do not overlap.
const APART: f32 = 4.0;
/// Springs between groups pull this much of a spring inside one: calls across namespaces
/// would otherwise drag a small namespace into the big one it talks to.
const ACROSS: f32 = 0.1;
/// How far apart two groups' bounding boxes are kept: room for the box drawn around each
/// and a gap between them.
const GROUP_SPACING: f32 = K * 1.5;
/// The share of two groups' overlap made up in one step; all of it at once would make
/// groups that overlap several others jump about.
const PART: f32 = 0.5;
/// Heat kept per step.
const COOLING: f32 = 0.96;

#[derive(Debug, Default)]
pub struct Layout {
    ids: Vec<u64>,
    index: HashMap<u64, u32>,
    pos: Vec<[f32; 2]>,
    group: Vec<u32>,
    pinned: Vec<bool>,
    degree: Vec<u32>,
    edges: Vec<(u32, u32)>,
    anchors: Vec<[f32; 2]>,
    heat: f32,
    force: Vec<[f32; 2]>,
    cells: Vec<(i64, u32)>,
    cell_start: HashMap<i64, u32>,
}

impl Layout {
    /// Takes the current nodes (with their group index) and edges; keeps the positions and
    /// pins of known nodes, places new ones next to a placed neighbour and forgets gone
    /// ones. Heats up in proportion to what changed.
    pub fn sync(&mut self, nodes: &[(u64, usize)], edges: &[(u64, u64)]) {
        let old_index = std::mem::take(&mut self.index);
        let old_pos = std::mem::take(&mut self.pos);
        let old_pinned = std::mem::take(&mut self.pinned);
        let old_edges = std::mem::take(&mut self.edges);
        let old_ids = std::mem::take(&mut self.ids);

        self.ids = nodes.iter().map(|&(id, _)| id).collect();
        self.index = nodes
            .iter()
            .enumerate()
            .map(|(i, &(id, _))| (id, i as u32))
            .collect();
        self.group = nodes.iter().map(|&(_, g)| g as u32).collect();
        self.edges = edges
            .iter()
            .filter_map(|&(a, b)| Some((*self.index.get(&a)?, *self.index.get(&b)?)))
            .filter(|(a, b)| a != b)
            .collect();
        self.degree = vec![0; nodes.len()];
        for &(a, b) in &self.edges {
            self.degree[a as usize] += 1;
            self.degree[b as usize] += 1;
        }
        let old_anchors = std::mem::take(&mut self.anchors);
        self.place_anchors();
        // The anchors' circle also grows with the node count; only a namespace coming or
        // going moves them far enough to reheat everything.
        let new_group = old_anchors.len() != self.anchors.len();

        // A new node's first placed neighbour in its own group, by the old positions;
        // without one it starts at its group's anchor.
        let group_of = |id: &u64| self.index.get(id).map(|&i| self.group[i as usize]);
        let mut neighbour: HashMap<u64, [f32; 2]> = HashMap::default();
        for &(a, b) in edges {
            for (new, old) in [(a, b), (b, a)] {
                if !old_index.contains_key(&new)
                    && group_of(&new) == group_of(&old)
                    && let Some(&o) = old_index.get(&old)
                {
                    neighbour.entry(new).or_insert(old_pos[o as usize]);
                }
            }
        }
        let mut added = 0usize;
        self.pos = Vec::with_capacity(nodes.len());
        self.pinned = Vec::with_capacity(nodes.len());
        for &(id, g) in nodes {
            if let Some(&o) = old_index.get(&id) {
                self.pos.push(old_pos[o as usize]);
                self.pinned.push(old_pinned[o as usize]);
                continue;
            }
            added += 1;
            let [ax, ay] = neighbour
                .get(&id)
                .copied()
                .unwrap_or(self.anchors[g.min(self.anchors.len() - 1)]);
            let (jx, jy) = jitter(id);
            self.pos.push([ax + jx * K * 0.5, ay + jy * K * 0.5]);
            self.pinned.push(false);
        }
        let removed = old_ids.len() + added - nodes.len();
        let same_edges = old_edges.len() == self.edges.len() && {
            let remap = |&(a, b): &(u32, u32)| {
                Some((
                    *self.index.get(&old_ids[a as usize])?,
                    *self.index.get(&old_ids[b as usize])?,
                ))
            };
            let mut old: Vec<_> = old_edges.iter().map(remap).collect();
            let mut new: Vec<_> = self.edges.iter().copied().map(Some).collect();
            old.sort_unstable();
            new.sort_unstable();
            old == new
        };
        let changed = added + removed;
        if new_group && !old_anchors.is_empty() {
            // A namespace came or went: every group has a new place to travel to.
            self.heat = 1.0;
        } else if changed > 0 {
            let share = changed as f32 / nodes.len().max(1) as f32;
            self.heat = self.heat.max((0.3 + share).min(1.0));
        } else if !same_edges {
            self.heat = self.heat.max(0.25);
        }
        self.force = vec![[0.0; 2]; nodes.len()];
    }

    /// Groups sit on a circle big enough for their nodes.
    fn place_anchors(&mut self) {
        let groups = self
            .group
            .iter()
            .map(|&g| g as usize + 1)
            .max()
            .unwrap_or(1);
        self.anchors = vec![[0.0, 0.0]; groups];
        if groups <= 1 {
            return;
        }
        let per_group = self.ids.len() as f32 / groups as f32;
        let r = (groups as f32 * K * per_group.sqrt() * 0.8 / std::f32::consts::PI).max(K * 3.5);
        for (g, a) in self.anchors.iter_mut().enumerate() {
            let t = g as f32 / groups as f32 * std::f32::consts::TAU;
            *a = [r * t.cos(), r * t.sin()];
        }
    }

    pub fn is_hot(&self) -> bool {
        self.heat > COLD
    }

    /// The middle of the bounding box, which the view centres on.
    pub fn centre(&self) -> [f32; 2] {
        match self.bounds() {
            Some(([x0, y0], [x1, y1])) => [(x0 + x1) / 2.0, (y0 + y1) / 2.0],
            None => [0.0, 0.0],
        }
    }

    /// The smallest and largest coordinates of all nodes.
    pub fn bounds(&self) -> Option<([f32; 2], [f32; 2])> {
        let first = *self.pos.first()?;
        Some(self.pos.iter().fold((first, first), |(lo, hi), p| {
            (
                [lo[0].min(p[0]), lo[1].min(p[1])],
                [hi[0].max(p[0]), hi[1].max(p[1])],
            )
        }))
    }

    pub fn position(&self, id: u64) -> Option<[f32; 2]> {
        self.index.get(&id).map(|&i| self.pos[i as usize])
    }

    pub fn is_pinned(&self, id: u64) -> bool {
        self.index
            .get(&id)
            .is_some_and(|&i| self.pinned[i as usize])
    }

    /// Puts a node where the user dropped it and pins it there; its neighbours adjust.
    pub fn pin_at(&mut self, id: u64, p: [f32; 2]) {
        if let Some(&i) = self.index.get(&id) {
            self.pos[i as usize] = p;
            self.pinned[i as usize] = true;
            self.heat = self.heat.max(0.2);
        }
    }

    /// Lets the forces move a pinned node again.
    pub fn unpin(&mut self, id: u64) {
        if let Some(&i) = self.index.get(&id) {
            self.pinned[i as usize] = false;
            self.heat = self.heat.max(0.2);
        }
    }

    /// One iteration; moves are capped by the temperature, which cools each step.
    pub fn step(&mut self) {
        if !self.is_hot() {
            return;
        }
        self.force.iter_mut().for_each(|f| *f = [0.0, 0.0]);
        self.repel();
        for &(a, b) in &self.edges {
            let (pa, pb) = (self.pos[a as usize], self.pos[b as usize]);
            let (dx, dy) = (pb[0] - pa[0], pb[1] - pa[1]);
            // Linear springs, shared out by degree so hubs do not collapse their leaves.
            let k = if self.group[a as usize] == self.group[b as usize] {
                0.5
            } else {
                0.5 * ACROSS
            };
            let wa = k / (self.degree[a as usize] as f32).sqrt();
            let wb = k / (self.degree[b as usize] as f32).sqrt();
            let fa = &mut self.force[a as usize];
            fa[0] += dx * wa;
            fa[1] += dy * wa;
            let fb = &mut self.force[b as usize];
            fb[0] -= dx * wb;
            fb[1] -= dy * wb;
        }
        let max_move = K * 0.5 * self.heat;
        for i in 0..self.pos.len() {
            if self.pinned[i] {
                continue;
            }
            let [ax, ay] = self.anchors[self.group[i] as usize];
            let p = &mut self.pos[i];
            let [fx, fy] = self.force[i];
            let (fx, fy) = (fx + (ax - p[0]) * GRAVITY, fy + (ay - p[1]) * GRAVITY);
            let len = (fx * fx + fy * fy).sqrt();
            if len > 0.0 && len.is_finite() {
                let m = len.min(max_move) / len;
                p[0] += fx * m;
                p[1] += fy * m;
            }
        }
        self.part_groups();
        self.heat *= COOLING;
    }

    /// Moves groups whose bounding boxes are closer than `GROUP_SPACING` apart, along the
    /// axis where they overlap least. This is not a force capped by the heat: thousands of
    /// calls across namespaces pull harder than any repulsion between their nodes, so only
    /// a move that ignores them keeps namespaces from being dragged onto each other.
    fn part_groups(&mut self) {
        let groups = self.anchors.len();
        if groups < 2 {
            return;
        }
        let mut bounds = vec![([f32::MAX; 2], [f32::MIN; 2]); groups];
        for (p, &g) in self.pos.iter().zip(&self.group) {
            let (lo, hi) = &mut bounds[g as usize];
            *lo = [lo[0].min(p[0]), lo[1].min(p[1])];
            *hi = [hi[0].max(p[0]), hi[1].max(p[1])];
        }
        let mut shift = vec![[0.0f32; 2]; groups];
        for a in 0..groups {
            for b in a + 1..groups {
                let ((la, ha), (lb, hb)) = (bounds[a], bounds[b]);
                if la[0] > ha[0] || lb[0] > hb[0] {
                    continue; // a group with no nodes
                }
                let overlap = |k: usize| ha[k].min(hb[k]) - la[k].max(lb[k]) + GROUP_SPACING;
                let (ox, oy) = (overlap(0), overlap(1));
                if ox <= 0.0 || oy <= 0.0 {
                    continue;
                }
                let (k, depth) = if ox < oy { (0, ox) } else { (1, oy) };
                let (ca, cb) = (la[k] + ha[k], lb[k] + hb[k]);
                // Same centre: the later group goes the positive way.
                let way = if cb >= ca { 1.0 } else { -1.0 };
                let d = way * depth * PART / 2.0;
                shift[a][k] -= d;
                shift[b][k] += d;
            }
        }
        for (i, p) in self.pos.iter_mut().enumerate() {
            if !self.pinned[i] {
                let s = shift[self.group[i] as usize];
                p[0] += s[0];
                p[1] += s[1];
            }
        }
    }

    /// Pairs closer than `REACH` push apart with force K²/d (more across groups); the grid
    /// finds them.
    fn repel(&mut self) {
        self.cells.clear();
        self.cells.extend(
            self.pos
                .iter()
                .enumerate()
                .map(|(i, p)| (cell_key(cell_of(p[0]), cell_of(p[1])), i as u32)),
        );
        self.cells.sort_unstable();
        self.cell_start.clear();
        for (n, &(key, _)) in self.cells.iter().enumerate().rev() {
            self.cell_start.insert(key, n as u32);
        }
        for i in 0..self.pos.len() {
            let p = self.pos[i];
            let group = self.group[i];
            let (cx, cy) = (cell_of(p[0]), cell_of(p[1]));
            let mut f = [0.0f32; 2];
            for ny in cy - 1..=cy + 1 {
                for nx in cx - 1..=cx + 1 {
                    let key = cell_key(nx, ny);
                    let Some(&start) = self.cell_start.get(&key) else {
                        continue;
                    };
                    for &(k, j) in &self.cells[start as usize..] {
                        if k != key {
                            break;
                        }
                        if j as usize == i {
                            continue;
                        }
                        let q = self.pos[j as usize];
                        let (mut dx, mut dy) = (p[0] - q[0], p[1] - q[1]);
                        if dx == 0.0 && dy == 0.0 {
                            // Same spot: separate by index so they cannot stay stacked.
                            (dx, dy) = if i < j as usize {
                                (0.5, 0.3)
                            } else {
                                (-0.5, -0.3)
                            };
                        }
                        let d2 = dx * dx + dy * dy;
                        if d2 >= REACH * REACH {
                            continue;
                        }
                        let mut s = K * K / d2.max(1.0);
                        if self.group[j as usize] != group {
                            s *= APART;
                        }
                        f[0] += dx * s;
                        f[1] += dy * s;
                    }
                }
            }
            self.force[i] = f;
        }
    }
}

fn cell_of(x: f32) -> i32 {
    (x / REACH).floor().clamp(-1e6, 1e6) as i32
}

fn cell_key(x: i32, y: i32) -> i64 {
    (i64::from(x) << 32) | i64::from(y as u32)
}

/// A fixed offset per node in [-1, 1]², so the same mesh lays out the same way each time.
fn jitter(id: u64) -> (f32, f32) {
    let h = id.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let x = (h >> 40) as f32 / (1u64 << 24) as f32;
    let y = ((h >> 16) & 0xFF_FFFF) as f32 / (1u64 << 24) as f32;
    (x * 2.0 - 1.0, y * 2.0 - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(l: &Layout, a: u64, b: u64) -> f32 {
        let (pa, pb) = (l.position(a).unwrap(), l.position(b).unwrap());
        ((pa[0] - pb[0]).powi(2) + (pa[1] - pb[1]).powi(2)).sqrt()
    }

    fn settle(l: &mut Layout) -> usize {
        let mut steps = 0;
        while l.is_hot() {
            l.step();
            steps += 1;
            assert!(steps < 1000, "the layout never cooled");
        }
        steps
    }

    type Nodes = Vec<(u64, usize)>;
    type Edges = Vec<(u64, u64)>;

    /// `n` nodes in `groups` groups and `m` edges from a fixed-seed generator.
    fn random(n: u64, m: usize, groups: usize) -> (Nodes, Edges) {
        let nodes = (0..n).map(|i| (i, i as usize % groups)).collect();
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s % n
        };
        let edges = (0..m).map(|_| (next(), next())).collect();
        (nodes, edges)
    }

    /// The demo's shape: six workloads in shop, one each in payments and analytics, with
    /// most edges into shop.
    fn demo() -> (Nodes, Edges) {
        let nodes = vec![
            (1, 0),
            (2, 0),
            (3, 0),
            (4, 0),
            (5, 0),
            (6, 0),
            (7, 1),
            (8, 2),
        ];
        let edges = vec![
            (1, 2),
            (1, 3),
            (2, 7),
            (2, 4),
            (8, 2),
            (8, 3),
            (8, 7),
            (5, 2),
            (6, 4),
        ];
        (nodes, edges)
    }

    /// Each group's bounding box, grown by a node's drawn radius.
    fn group_boxes(l: &Layout, nodes: &Nodes) -> Vec<([f32; 2], [f32; 2])> {
        let groups = nodes.iter().map(|&(_, g)| g + 1).max().unwrap_or(0);
        (0..groups)
            .map(|g| {
                let ps: Vec<[f32; 2]> = nodes
                    .iter()
                    .filter(|&&(_, ng)| ng == g)
                    .map(|&(id, _)| l.position(id).unwrap())
                    .collect();
                let lo = ps
                    .iter()
                    .fold([f32::MAX; 2], |a, p| [a[0].min(p[0]), a[1].min(p[1])]);
                let hi = ps
                    .iter()
                    .fold([f32::MIN; 2], |a, p| [a[0].max(p[0]), a[1].max(p[1])]);
                ([lo[0] - 20.0, lo[1] - 20.0], [hi[0] + 20.0, hi[1] + 20.0])
            })
            .collect()
    }

    #[test]
    fn namespaces_do_not_overlap_whatever_order_workloads_appear_in() {
        let (nodes, edges) = demo();
        for rotation in 0..nodes.len() {
            let mut order = nodes.clone();
            order.rotate_left(rotation);
            let mut l = Layout::default();
            for n in 1..=order.len() {
                let seen = &order[..n];
                let known: Vec<(u64, u64)> = edges
                    .iter()
                    .filter(|(a, b)| {
                        seen.iter().any(|s| s.0 == *a) && seen.iter().any(|s| s.0 == *b)
                    })
                    .copied()
                    .collect();
                l.sync(seen, &known);
                for _ in 0..5 {
                    l.step();
                }
            }
            settle(&mut l);
            assert_groups_apart(&l, &nodes, &format!("rotation {rotation}"));
        }
    }

    fn assert_groups_apart(l: &Layout, nodes: &Nodes, case: &str) {
        let boxes = group_boxes(l, nodes);
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                let overlap =
                    a.0[0] < b.1[0] && b.0[0] < a.1[0] && a.0[1] < b.1[1] && b.0[1] < a.1[1];
                assert!(!overlap, "{case}: namespace boxes {a:?} and {b:?} overlap");
            }
        }
    }

    #[test]
    fn namespaces_stay_apart_when_most_calls_cross_them() {
        // Nine calls in ten go to another namespace: their springs drag the groups together.
        let (nodes, edges) = random(500, 5000, 10);
        let mut l = Layout::default();
        l.sync(&nodes, &edges);
        settle(&mut l);
        assert_groups_apart(&l, &nodes, "500 workloads in 10 namespaces, 5,000 calls");
    }

    #[test]
    fn one_more_workload_in_a_known_namespace_warms_rather_than_reheats() {
        let (mut nodes, mut edges) = random(300, 600, 5);
        let mut l = Layout::default();
        l.sync(&nodes, &edges);
        settle(&mut l);
        nodes.push((300, 2));
        edges.push((300, 2));
        l.sync(&nodes, &edges);
        assert!(l.is_hot());
        assert!(l.heat < 0.5, "heat {} after one new workload", l.heat);
    }

    #[test]
    fn settles_and_keeps_nodes_apart() {
        let mut l = Layout::default();
        l.sync(&[(1, 0), (2, 0), (3, 0)], &[(1, 2), (2, 3)]);
        settle(&mut l);
        assert!(!l.is_hot());
        assert!(dist(&l, 1, 2) > 20.0 && dist(&l, 1, 3) > 20.0);
        let before = l.position(1);
        l.step();
        assert_eq!(l.position(1), before, "a cold layout does not move");
    }

    #[test]
    fn a_new_node_starts_near_its_neighbour_and_old_ones_stay() {
        let mut l = Layout::default();
        l.sync(&[(1, 0), (2, 0)], &[(1, 2)]);
        settle(&mut l);
        let before = l.position(1).unwrap();
        l.sync(&[(1, 0), (2, 0), (3, 0)], &[(1, 2), (2, 3)]);
        assert_eq!(l.position(1), Some(before));
        assert!(dist(&l, 2, 3) <= K);
        assert!(l.is_hot());
    }

    #[test]
    fn a_warm_start_settles_sooner_than_a_cold_one() {
        let (mut nodes, edges) = random(60, 120, 3);
        let mut warm = Layout::default();
        warm.sync(&nodes[..59], &edges);
        settle(&mut warm);
        let mut cold = Layout::default();
        cold.sync(&nodes, &edges);
        let cold_steps = settle(&mut cold);
        nodes.truncate(60);
        warm.sync(&nodes, &edges);
        let warm_steps = settle(&mut warm);
        assert!(
            warm_steps < cold_steps,
            "warm {warm_steps} steps, cold {cold_steps}"
        );
    }

    #[test]
    fn the_same_topology_again_does_not_reheat() {
        let (nodes, edges) = random(30, 50, 2);
        let mut l = Layout::default();
        l.sync(&nodes, &edges);
        settle(&mut l);
        let mut reordered = edges.clone();
        reordered.reverse();
        l.sync(&nodes, &reordered);
        assert!(!l.is_hot());
    }

    #[test]
    fn pinned_nodes_do_not_move() {
        let (nodes, edges) = random(40, 80, 2);
        let mut l = Layout::default();
        l.sync(&nodes, &edges);
        l.pin_at(7, [500.0, -300.0]);
        assert!(l.is_pinned(7));
        settle(&mut l);
        assert_eq!(l.position(7), Some([500.0, -300.0]));
        // A resync keeps the pin.
        l.sync(&nodes, &edges);
        assert!(l.is_pinned(7));
        l.unpin(7);
        assert!(!l.is_pinned(7) && l.is_hot());
        settle(&mut l);
        assert_ne!(l.position(7), Some([500.0, -300.0]));
    }

    #[test]
    fn five_hundred_nodes_and_five_thousand_edges_stay_finite_and_settle() {
        let (nodes, edges) = random(500, 5000, 10);
        let mut l = Layout::default();
        l.sync(&nodes, &edges);
        let t = std::time::Instant::now();
        let steps = settle(&mut l);
        let per_step = t.elapsed() / steps as u32;
        for &(id, _) in &nodes {
            let p = l.position(id).unwrap();
            assert!(p[0].is_finite() && p[1].is_finite(), "node {id} at {p:?}");
        }
        let ([x0, y0], [x1, y1]) = l.bounds().unwrap();
        assert!(x1 - x0 > K && y1 - y0 > K, "spread out");
        // Generous for debug builds on a busy machine; the bench has the real figure.
        assert!(per_step.as_millis() < 100, "{per_step:?} per step");
    }

    #[test]
    fn nodes_on_the_same_spot_separate() {
        let mut l = Layout::default();
        l.sync(&[(1, 0), (2, 0)], &[]);
        l.pin_at(1, [0.0, 0.0]);
        l.pin_at(2, [0.0, 0.0]);
        l.unpin(1);
        l.unpin(2);
        l.heat = 1.0;
        settle(&mut l);
        assert!(dist(&l, 1, 2) > 10.0);
    }
}
