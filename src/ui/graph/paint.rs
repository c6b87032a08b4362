//! Edges, arrows and locks written into one `egui::Mesh` per frame: a single
//! shape for thousands of edges, instead of a shape (and a tessellation) per edge.
//! Lines get a one-point feather on each side so they look anti-aliased like egui's own.

use egui::epaint::{Mesh, Vertex, WHITE_UV};
use egui::{Color32, Pos2, Vec2};

const FEATHER: f32 = 1.0;

pub struct Batch {
    pub mesh: Mesh,
}

impl Batch {
    pub fn with_capacity(edges: usize) -> Batch {
        let mut mesh = Mesh::default();
        mesh.reserve_vertices(edges * 8);
        mesh.reserve_triangles(edges * 6);
        Batch { mesh }
    }

    fn vertex(&mut self, pos: Pos2, color: Color32) -> u32 {
        let i = self.mesh.vertices.len() as u32;
        self.mesh.vertices.push(Vertex {
            pos,
            uv: WHITE_UV,
            color,
        });
        i
    }

    /// A straight line of `width` points; with `feather`, its sides fade out over a point.
    pub fn line(&mut self, a: Pos2, b: Pos2, width: f32, color: Color32, feather: bool) {
        let len = (b - a).length();
        if !len.is_finite() || len <= 0.0 {
            return;
        }
        let dir = (b - a) / len;
        let (half, color) = if width < 1.0 {
            (0.5, color.gamma_multiply(width.max(0.0)))
        } else {
            (width / 2.0, color)
        };
        let n = dir.rot90();
        if !feather {
            let i = self.vertex(a + n * half, color);
            self.vertex(a - n * half, color);
            self.vertex(b + n * half, color);
            self.vertex(b - n * half, color);
            self.mesh.add_triangle(i, i + 1, i + 2);
            self.mesh.add_triangle(i + 1, i + 3, i + 2);
            return;
        }
        let clear = Color32::TRANSPARENT;
        let i = self.vertex(a + n * (half + FEATHER), clear);
        self.vertex(a + n * half, color);
        self.vertex(a - n * half, color);
        self.vertex(a - n * (half + FEATHER), clear);
        self.vertex(b + n * (half + FEATHER), clear);
        self.vertex(b + n * half, color);
        self.vertex(b - n * half, color);
        self.vertex(b - n * (half + FEATHER), clear);
        for k in 0..3 {
            self.mesh.add_triangle(i + k, i + k + 1, i + k + 4);
            self.mesh.add_triangle(i + k + 1, i + k + 5, i + k + 4);
        }
    }

    /// A dashed line: `dash` points drawn, `gap` skipped; `pattern` is `[dash, gap]`.
    pub fn dashed(
        &mut self,
        a: Pos2,
        b: Pos2,
        width: f32,
        color: Color32,
        pattern: [f32; 2],
        feather: bool,
    ) {
        let [dash, gap] = pattern;
        let len = (b - a).length();
        if !len.is_finite() || len <= 0.0 {
            return;
        }
        let dir = (b - a) / len;
        let mut t = 0.0;
        while t < len {
            let end = (t + dash).min(len);
            self.line(a + dir * t, a + dir * end, width, color, feather);
            t = end + gap;
        }
    }

    /// A filled triangle pointing along `dir` with its tip at `tip`.
    pub fn arrow(&mut self, tip: Pos2, dir: Vec2, size: f32, color: Color32) {
        let back = tip - dir * size;
        let n = dir.rot90() * size * 0.5;
        let i = self.vertex(tip, color);
        self.vertex(back + n, color);
        self.vertex(back - n, color);
        self.mesh.add_triangle(i, i + 1, i + 2);
    }

    pub fn rect(&mut self, min: Pos2, max: Pos2, color: Color32) {
        let i = self.vertex(min, color);
        self.vertex(Pos2::new(max.x, min.y), color);
        self.vertex(max, color);
        self.vertex(Pos2::new(min.x, max.y), color);
        self.mesh.add_triangle(i, i + 1, i + 2);
        self.mesh.add_triangle(i, i + 2, i + 3);
    }

    /// A padlock a few points tall centred on `c`: body and shackle, on a backdrop so it
    /// reads over the edge it sits on.
    pub fn lock(&mut self, c: Pos2, color: Color32, backdrop: Color32) {
        self.rect(c + Vec2::new(-5.0, -6.5), c + Vec2::new(5.0, 5.5), backdrop);
        self.rect(c + Vec2::new(-4.0, -1.0), c + Vec2::new(4.0, 4.5), color);
        self.rect(c + Vec2::new(-3.0, -5.5), c + Vec2::new(-1.6, -1.0), color);
        self.rect(c + Vec2::new(1.6, -5.5), c + Vec2::new(3.0, -1.0), color);
        self.rect(c + Vec2::new(-3.0, -5.5), c + Vec2::new(3.0, -4.1), color);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_edges_are_one_valid_mesh() {
        let mut b = Batch::with_capacity(1000);
        for i in 0..1000 {
            let a = Pos2::new(i as f32, 0.0);
            b.line(a, a + Vec2::new(50.0, 30.0), 2.0, Color32::RED, true);
            b.arrow(a, Vec2::X, 8.0, Color32::RED);
        }
        b.dashed(
            Pos2::ZERO,
            Pos2::new(100.0, 0.0),
            1.0,
            Color32::RED,
            [6.0, 4.0],
            true,
        );
        b.lock(Pos2::new(10.0, 10.0), Color32::RED, Color32::BLACK);
        assert!(b.mesh.is_valid());
        assert_eq!(b.mesh.vertices.len(), 1000 * 11 + 10 * 8 + 5 * 4);
    }

    #[test]
    fn a_zero_length_line_adds_nothing() {
        let mut b = Batch::with_capacity(1);
        b.line(Pos2::ZERO, Pos2::ZERO, 2.0, Color32::RED, true);
        b.dashed(Pos2::ZERO, Pos2::ZERO, 2.0, Color32::RED, [6.0, 4.0], true);
        assert!(b.mesh.is_empty());
    }
}
