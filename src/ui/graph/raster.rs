//! The graph as a PNG: the SVG export rasterized with resvg. Labels are set in egui's own
//! bundled font, so the picture has its text on a machine without any system fonts.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

/// Pixels per SVG unit: twice the screen size, so labels stay sharp when zoomed.
const SCALE: f32 = 2.0;
/// The longest side of the picture; a huge layout is scaled down to fit, so the pixmap
/// stays under 64 MiB.
const MAX_SIDE: f32 = 4096.0;

/// The font database: egui's default proportional font, as the SVG's `sans-serif`.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_font_data(epaint_default_fonts::UBUNTU_LIGHT.to_vec());
            let family = db
                .faces()
                .next()
                .and_then(|f| f.families.first())
                .map(|(family, _)| family.clone());
            if let Some(family) = family {
                db.set_sans_serif_family(family);
            }
            Arc::new(db)
        })
        .clone()
}

/// The pixel size of an SVG of `width` × `height` units.
pub fn png_size(width: f32, height: f32) -> (u32, u32) {
    let scale = SCALE.min(MAX_SIDE / width.max(height).max(1.0));
    let px = |v: f32| ((v * scale).round() as u32).max(1);
    (px(width), px(height))
}

/// Renders `svg` to PNG bytes.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, String> {
    let options = usvg::Options {
        fontdb: fonts(),
        ..usvg::Options::default()
    };
    let tree =
        usvg::Tree::from_str(svg, &options).map_err(|e| format!("cannot read the SVG: {e}"))?;
    let size = tree.size();
    let (w, h) = png_size(size.width(), size.height());
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| format!("cannot make a {w}×{h} picture"))?;
    let transform =
        tiny_skia::Transform::from_scale(w as f32 / size.width(), h as f32 / size.height());
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| format!("cannot encode the PNG: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_drawn_with_the_bundled_font() {
        let with = r#"<svg xmlns="http://www.w3.org/2000/svg" width="80" height="30" font-family="sans-serif"><rect width="80" height="30" fill="white"/><text x="4" y="20" font-size="14" fill="black">shop/web</text></svg>"#;
        let without = with.replace("shop/web", "");
        let dark = |svg: &str| {
            let png = svg_to_png(svg).unwrap();
            let pixmap = tiny_skia::Pixmap::decode_png(&png).unwrap();
            assert_eq!((pixmap.width(), pixmap.height()), (160, 60));
            pixmap.pixels().iter().filter(|p| p.red() < 128).count()
        };
        assert_eq!(dark(&without), 0);
        assert!(dark(with) > 50, "the label was not drawn");
    }

    #[test]
    fn a_huge_layout_is_scaled_to_fit() {
        assert_eq!(png_size(100.0, 50.0), (200, 100));
        assert_eq!(png_size(20_000.0, 10_000.0), (4096, 2048));
    }

    #[test]
    fn bad_svg_is_an_error_in_words() {
        assert!(
            svg_to_png("not svg")
                .unwrap_err()
                .starts_with("cannot read the SVG")
        );
    }
}
