//! The graph as an SVG or PNG file: namespace boxes, edges (dashed when plaintext), nodes and
//! their names at the current layout. The SVG text is built in the frame (it is small); a
//! worker thread rasterizes it when the file name ends in `.png`, writes the file and reports
//! back over a channel.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use egui::Color32;

use super::raster;

pub struct SvgNode {
    pub pos: [f32; 2],
    pub label: String,
    pub fill: Color32,
    pub pinned: bool,
}

pub struct SvgEdge {
    pub from: [f32; 2],
    pub to: [f32; 2],
    pub width: f32,
    pub color: Color32,
    pub dashed: bool,
}

pub struct SvgBox {
    pub name: String,
    pub min: [f32; 2],
    pub max: [f32; 2],
    pub color: Color32,
}

/// What an export draws, in layout coordinates.
#[derive(Default)]
pub struct SvgScene {
    pub nodes: Vec<SvgNode>,
    pub edges: Vec<SvgEdge>,
    pub boxes: Vec<SvgBox>,
}

const MARGIN: f32 = 40.0;
const RADIUS: f32 = 12.0;

impl SvgScene {
    pub fn to_svg(&self) -> String {
        let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
        let points = self
            .nodes
            .iter()
            .map(|n| n.pos)
            .chain(self.boxes.iter().flat_map(|b| [b.min, b.max]));
        for p in points {
            lo = [lo[0].min(p[0]), lo[1].min(p[1])];
            hi = [hi[0].max(p[0]), hi[1].max(p[1])];
        }
        if lo[0] > hi[0] {
            (lo, hi) = ([0.0; 2], [0.0; 2]);
        }
        let (w, h) = (hi[0] - lo[0] + 2.0 * MARGIN, hi[1] - lo[1] + 2.0 * MARGIN);
        let (ox, oy) = (lo[0] - MARGIN, lo[1] - MARGIN);
        let mut s = String::with_capacity(200 + self.edges.len() * 120 + self.nodes.len() * 200);
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="{ox:.1} {oy:.1} {w:.1} {h:.1}" width="{w:.0}" height="{h:.0}" font-family="sans-serif">"#
        );
        let _ = writeln!(
            s,
            r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>"##
        );
        let _ = writeln!(
            s,
            r#"<rect x="{ox:.1}" y="{oy:.1}" width="{w:.1}" height="{h:.1}" fill="white"/>"#
        );
        for b in &self.boxes {
            let _ = writeln!(
                s,
                r#"<g class="namespace"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="10" fill="{}" fill-opacity="0.08" stroke="{}"/><text x="{:.1}" y="{:.1}" font-size="12" fill="{}">{}</text></g>"#,
                b.min[0],
                b.min[1],
                b.max[0] - b.min[0],
                b.max[1] - b.min[1],
                hex(b.color),
                hex(b.color),
                b.min[0] + 8.0,
                b.min[1] + 16.0,
                hex(b.color),
                escape(&b.name)
            );
        }
        for e in &self.edges {
            let (dx, dy) = (e.to[0] - e.from[0], e.to[1] - e.from[1]);
            let d = (dx * dx + dy * dy).sqrt();
            if !d.is_finite() || d <= 2.0 * RADIUS {
                continue;
            }
            let (ux, uy) = (dx / d, dy / d);
            let dash = if e.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="{:.1}"{dash} marker-end="url(#arrow)"/>"#,
                e.from[0] + ux * RADIUS,
                e.from[1] + uy * RADIUS,
                e.to[0] - ux * (RADIUS + 2.0),
                e.to[1] - uy * (RADIUS + 2.0),
                hex(e.color),
                e.width
            );
        }
        for n in &self.nodes {
            let pin = if n.pinned { " (pinned)" } else { "" };
            let _ = writeln!(
                s,
                r##"<g class="node"><title>{}{pin}</title><circle cx="{:.1}" cy="{:.1}" r="{RADIUS}" fill="{}" stroke="#333"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#222">{}</text></g>"##,
                escape(&n.label),
                n.pos[0],
                n.pos[1],
                hex(n.fill),
                n.pos[0],
                n.pos[1] + RADIUS + 14.0,
                escape(&n.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

fn hex(c: Color32) -> String {
    format!("#{:02x}{:02x}{:02x}", c.r(), c.g(), c.b())
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The export's path field, the write in flight and its outcome, shown next to the button.
pub struct Export {
    pub path: String,
    pending: Option<Receiver<Result<PathBuf, String>>>,
    pub outcome: Option<Result<String, String>>,
}

impl Default for Export {
    fn default() -> Self {
        Export {
            path: "meshlens-graph.svg".into(),
            pending: None,
            outcome: None,
        }
    }
}

impl Export {
    pub fn is_writing(&self) -> bool {
        self.pending.is_some()
    }

    /// Writes `svg` to the path on a worker thread, as a PNG when the name ends in `.png`;
    /// the UI is woken when it is done.
    pub fn start(&mut self, svg: String, ctx: &egui::Context) {
        let path = PathBuf::from(self.path.trim());
        let png = match path.extension().and_then(|e| e.to_str()) {
            _ if path.as_os_str().is_empty() => {
                self.outcome = Some(Err("type a file name to export to".into()));
                return;
            }
            Some(e) if e.eq_ignore_ascii_case("png") => true,
            Some(e) if e.eq_ignore_ascii_case("svg") => false,
            _ => {
                self.outcome = Some(Err("end the file name in .svg or .png".into()));
                return;
            }
        };
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("graph-export".into())
            .spawn(move || {
                let bytes = if png {
                    raster::svg_to_png(&svg)
                } else {
                    Ok(svg.into_bytes())
                };
                let result = bytes.and_then(|bytes| {
                    std::fs::write(&path, bytes)
                        .map(|()| std::fs::canonicalize(&path).unwrap_or(path.clone()))
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))
                });
                let _ = tx.send(result);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.pending = Some(rx);
                self.outcome = None;
            }
            Err(e) => self.outcome = Some(Err(format!("cannot start the export: {e}"))),
        }
    }

    /// Picks up the worker's result, if it has finished.
    pub fn poll(&mut self) {
        let Some(rx) = &self.pending else { return };
        match rx.try_recv() {
            Ok(result) => {
                self.outcome = Some(result.map(|p| format!("saved {}", p.display())));
                self.pending = None;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                self.outcome = Some(Err("the export stopped before it finished".into()));
                self.pending = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_every_part_is_drawn() {
        let scene = SvgScene {
            nodes: vec![
                SvgNode {
                    pos: [0.0, 0.0],
                    label: "shop/<web>&co".into(),
                    fill: Color32::RED,
                    pinned: true,
                },
                SvgNode {
                    pos: [200.0, 50.0],
                    label: "shop/orders".into(),
                    fill: Color32::BLUE,
                    pinned: false,
                },
            ],
            edges: vec![SvgEdge {
                from: [0.0, 0.0],
                to: [200.0, 50.0],
                width: 2.0,
                color: Color32::GREEN,
                dashed: true,
            }],
            boxes: vec![SvgBox {
                name: "shop".into(),
                min: [-30.0, -30.0],
                max: [230.0, 80.0],
                color: Color32::GRAY,
            }],
        };
        let svg = scene.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("shop/&lt;web&gt;&amp;co (pinned)"));
        assert!(svg.contains(">shop/orders</text>"));
        assert!(svg.contains(r#"stroke-dasharray="6 4""#));
        assert!(svg.contains(r#"class="namespace""#));
        assert!(!svg.contains("<web>"));
    }

    #[test]
    fn an_empty_graph_is_still_an_svg() {
        let svg = SvgScene::default().to_svg();
        assert!(svg.contains("viewBox=\"-40.0 -40.0 80.0 80.0\""));
    }
}
