//! Nodes and traffic dots as tinted squares cut from one anti-aliased disc texture: two
//! triangles each, where a tessellated disc with an outline and a soft edge takes fifty. On
//! a software renderer triangles are what a crowded graph costs: 500 tessellated nodes took
//! about 10 ms of CPU per frame under llvmpipe.

use egui::epaint::Mesh;
use egui::{Color32, ColorImage, Pos2, Rect, TextureHandle, TextureId, TextureOptions, Vec2};

/// The texture's side, in texels; the disc's radius is `RADIUS` of them.
const SIDE: usize = 64;
const RADIUS: f32 = 31.0;

/// The disc texture, loaded once per view.
pub struct DiscTexture(TextureHandle);

impl DiscTexture {
    pub fn load(ctx: &egui::Context) -> DiscTexture {
        let options = TextureOptions {
            // Nodes are drawn at a tenth of the texture's size when zoomed out. Sampling the
            // nearest level (not blending two) halves the texture reads a software renderer
            // makes per pixel; a soft-edged disc looks the same either way.
            mipmap_mode: Some(egui::TextureFilter::Nearest),
            ..TextureOptions::LINEAR
        };
        DiscTexture(ctx.load_texture("graph-disc", disc_image(), options))
    }

    pub fn id(&self) -> TextureId {
        self.0.id()
    }
}

/// White, with the disc's edge a texel of coverage wide.
fn disc_image() -> ColorImage {
    let centre = SIDE as f32 / 2.0;
    let pixels = (0..SIDE * SIDE)
        .map(|i| {
            let (x, y) = ((i % SIDE) as f32 + 0.5, (i / SIDE) as f32 + 0.5);
            let d = Vec2::new(x - centre, y - centre).length();
            let coverage = (RADIUS + 0.5 - d).clamp(0.0, 1.0);
            Color32::from_white_alpha((coverage * 255.0).round() as u8)
        })
        .collect();
    ColorImage::new([SIDE, SIDE], pixels)
}

/// Discs for one frame, in one mesh on the disc texture.
pub struct Sprites {
    pub mesh: Mesh,
}

impl Sprites {
    pub fn new(texture: TextureId) -> Sprites {
        Sprites {
            mesh: Mesh::with_texture(texture),
        }
    }

    /// A disc of radius `r` points.
    pub fn disc(&mut self, c: Pos2, r: f32, color: Color32) {
        if r.is_nan() || r <= 0.0 || !c.is_finite() {
            return;
        }
        let half = r * (SIDE as f32 / 2.0) / RADIUS;
        let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        self.mesh.add_rect_with_uv(
            Rect::from_center_size(c, Vec2::splat(2.0 * half)),
            uv,
            color,
        );
    }

    /// A disc of radius `r` (outline included) filled with `fill`, its outline `ring` wide.
    pub fn ringed(&mut self, c: Pos2, r: f32, fill: Color32, ring: f32, ring_color: Color32) {
        if ring > 0.0 {
            self.disc(c, r, ring_color);
        }
        self.disc(c, r - ring, fill);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_texture_is_a_soft_edged_disc() {
        let image = disc_image();
        let at = |x: usize, y: usize| image.pixels[y * SIDE + x].a();
        assert_eq!(at(SIDE / 2, SIDE / 2), 255, "opaque inside");
        assert_eq!(at(0, 0), 0, "clear in the corners");
        let rim: Vec<u8> = (0..SIDE).map(|x| at(x, SIDE / 2)).collect();
        assert!(
            rim.iter().any(|&a| a > 0 && a < 255),
            "partly covered at the rim: {rim:?}"
        );
        assert_eq!(rim.iter().filter(|&&a| a > 0).count(), 2 * RADIUS as usize);
    }

    #[test]
    fn a_ringed_node_is_two_squares_and_a_bad_position_is_none() {
        let mut s = Sprites::new(TextureId::Managed(7));
        s.ringed(
            Pos2::new(10.0, 10.0),
            5.0,
            Color32::RED,
            1.0,
            Color32::WHITE,
        );
        assert_eq!(s.mesh.indices.len(), 2 * 2 * 3);
        assert!(s.mesh.is_valid());
        let xs: Vec<f32> = s.mesh.vertices.iter().map(|v| v.pos.x).collect();
        let outer = xs[..4].iter().copied().fold(f32::MIN, f32::max) - 10.0;
        assert!(
            (outer - 5.0 * 32.0 / 31.0).abs() < 1e-4,
            "the disc's rim at r"
        );
        s.disc(Pos2::new(f32::NAN, 0.0), 5.0, Color32::RED);
        s.disc(Pos2::ZERO, 0.0, Color32::RED);
        assert_eq!(s.mesh.indices.len(), 12);
    }
}
