//! A small force layout for the graph view, kept free of egui so it can be tested alone.
//! Nodes repel, edges pull, and each node is drawn towards its group's anchor, so a
//! namespace stays together. New nodes start next to a placed neighbour (a warm start), so
//! the picture does not jump when the mesh grows.

use std::collections::HashMap;

/// Ideal edge length, in layout units.
const K: f32 = 90.0;
/// Below this temperature the layout is settled and stops asking for frames.
const COLD: f32 = 0.02;

#[derive(Debug, Default)]
pub struct Layout {
    pos: HashMap<u64, [f32; 2]>,
    group: HashMap<u64, usize>,
    groups: usize,
    edges: Vec<(u64, u64)>,
    heat: f32,
}

impl Layout {
    /// Takes the current nodes (with their group index) and edges; places new nodes and
    /// forgets gone ones. Heats up only when something was added or removed.
    pub fn sync(&mut self, nodes: &[(u64, usize)], edges: &[(u64, u64)]) {
        self.groups = nodes.iter().map(|&(_, g)| g + 1).max().unwrap_or(0);
        let before = self.pos.len();
        self.pos
            .retain(|id, _| nodes.iter().any(|&(n, _)| n == *id));
        let mut changed = before != self.pos.len();
        self.group = nodes.iter().copied().collect();
        self.edges = edges.to_vec();
        for &(id, g) in nodes {
            if self.pos.contains_key(&id) {
                continue;
            }
            let neighbour = edges
                .iter()
                .filter_map(|&(a, b)| match (a == id, b == id) {
                    (true, _) => self.pos.get(&b),
                    (_, true) => self.pos.get(&a),
                    _ => None,
                })
                .next()
                .copied();
            let [ax, ay] = neighbour.unwrap_or_else(|| self.anchor(g));
            let (jx, jy) = jitter(id);
            self.pos.insert(id, [ax + jx * K * 0.5, ay + jy * K * 0.5]);
            changed = true;
        }
        if changed {
            self.heat = 1.0;
        }
    }

    /// Where a group's nodes gather: groups sit on a circle.
    fn anchor(&self, group: usize) -> [f32; 2] {
        if self.groups <= 1 {
            return [0.0, 0.0];
        }
        let a = group as f32 / self.groups as f32 * std::f32::consts::TAU;
        let r = K * 2.5;
        [r * a.cos(), r * a.sin()]
    }

    pub fn is_hot(&self) -> bool {
        self.heat > COLD
    }

    /// The mean position, which the view centres on.
    pub fn centre(&self) -> [f32; 2] {
        let n = self.pos.len().max(1) as f32;
        let (x, y) = self
            .pos
            .values()
            .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
        [x / n, y / n]
    }

    pub fn position(&self, id: u64) -> Option<[f32; 2]> {
        self.pos.get(&id).copied()
    }

    /// One iteration; moves are capped by the temperature, which cools each step.
    pub fn step(&mut self) {
        if !self.is_hot() {
            return;
        }
        let ids: Vec<u64> = self.pos.keys().copied().collect();
        let mut force: HashMap<u64, [f32; 2]> = ids.iter().map(|&i| (i, [0.0, 0.0])).collect();
        for (n, &a) in ids.iter().enumerate() {
            for &b in &ids[n + 1..] {
                let (pa, pb) = (self.pos[&a], self.pos[&b]);
                let (dx, dy) = (pa[0] - pb[0], pa[1] - pb[1]);
                let d2 = (dx * dx + dy * dy).max(1.0);
                let f = K * K / d2;
                add(&mut force, a, [dx * f, dy * f]);
                add(&mut force, b, [-dx * f, -dy * f]);
            }
        }
        for &(a, b) in &self.edges {
            let (Some(pa), Some(pb)) = (self.pos.get(&a), self.pos.get(&b)) else {
                continue;
            };
            let (dx, dy) = (pb[0] - pa[0], pb[1] - pa[1]);
            let d = (dx * dx + dy * dy).sqrt().max(1.0);
            let f = d / K * 0.5;
            add(&mut force, a, [dx * f / d * K, dy * f / d * K]);
            add(&mut force, b, [-dx * f / d * K, -dy * f / d * K]);
        }
        let max_move = K * 0.5 * self.heat;
        for (id, [fx, fy]) in force {
            let [ax, ay] = self.anchor(self.group.get(&id).copied().unwrap_or(0));
            let Some(p) = self.pos.get_mut(&id) else {
                continue;
            };
            let (fx, fy) = (fx + (ax - p[0]) * 0.3, fy + (ay - p[1]) * 0.3);
            let len = (fx * fx + fy * fy).sqrt();
            if len > 0.0 {
                let m = len.min(max_move) / len;
                p[0] += fx * m;
                p[1] += fy * m;
            }
        }
        self.heat *= 0.96;
    }
}

fn add(force: &mut HashMap<u64, [f32; 2]>, id: u64, [x, y]: [f32; 2]) {
    if let Some(f) = force.get_mut(&id) {
        f[0] += x;
        f[1] += y;
    }
}

/// A fixed offset per node in [-1, 1]², so the same mesh lays out the same way each time.
fn jitter(id: u64) -> (f32, f32) {
    let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
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

    #[test]
    fn settles_and_keeps_nodes_apart() {
        let mut l = Layout::default();
        l.sync(&[(1, 0), (2, 0), (3, 0)], &[(1, 2), (2, 3)]);
        for _ in 0..200 {
            l.step();
        }
        assert!(!l.is_hot());
        assert!(dist(&l, 1, 2) > 20.0 && dist(&l, 1, 3) > 20.0);
    }

    #[test]
    fn a_new_node_starts_near_its_neighbour_and_old_ones_stay() {
        let mut l = Layout::default();
        l.sync(&[(1, 0), (2, 0)], &[(1, 2)]);
        for _ in 0..200 {
            l.step();
        }
        let before = l.position(1).unwrap();
        l.sync(&[(1, 0), (2, 0), (3, 0)], &[(1, 2), (2, 3)]);
        assert_eq!(l.position(1), Some(before));
        assert!(dist(&l, 2, 3) <= K);
        assert!(l.is_hot());
    }
}
