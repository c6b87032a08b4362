//! The log panel: what the engine said (`tracing` records from the sandbox, proxies and
//! sources), kept in a bounded buffer so a window user sees warnings without a terminal.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use egui::{Color32, RichText};
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::Context;

/// Lines kept; older ones are dropped (and counted).
pub const CAPACITY: usize = 2000;

#[derive(Debug, Clone)]
pub struct Line {
    pub time: String,
    pub level: Level,
    pub target: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct LogBuffer {
    lines: Mutex<VecDeque<Line>>,
    /// Warnings and errors ever seen: the status bar's badge.
    problems: AtomicU64,
    /// Bumped on every line, so the panel knows when to repaint.
    version: AtomicU64,
}

impl LogBuffer {
    pub fn push(&self, line: Line) {
        if line.level <= Level::WARN {
            self.problems.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == CAPACITY {
                lines.pop_front();
            }
            lines.push_back(line);
        }
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    pub fn problems(&self) -> u64 {
        self.problems.load(Ordering::Relaxed)
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Vec<Line> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The process-wide buffer the capture layer fills and the panel reads.
pub fn buffer() -> &'static LogBuffer {
    static BUFFER: OnceLock<LogBuffer> = OnceLock::new();
    BUFFER.get_or_init(LogBuffer::default)
}

/// A `tracing` layer that copies each record into [`buffer`].
pub struct CaptureLayer;

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for CaptureLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let meta = event.metadata();
        let time = time::OffsetDateTime::now_utc();
        buffer().push(Line {
            time: format!(
                "{:02}:{:02}:{:02}",
                time.hour(),
                time.minute(),
                time.second()
            ),
            level: *meta.level(),
            target: meta.target().to_string(),
            message: visitor.message + &visitor.fields,
        });
    }
}

#[derive(Debug, Default)]
pub struct LogPanel {
    pub open: bool,
    /// Only warnings and errors.
    pub problems_only: bool,
    cache: Option<(u64, bool, Vec<Line>)>,
}

fn level_colour(level: Level, ui: &egui::Ui) -> Color32 {
    match level {
        Level::ERROR => ui.visuals().error_fg_color,
        Level::WARN => ui.visuals().warn_fg_color,
        Level::INFO => ui.visuals().text_color(),
        _ => ui.visuals().weak_text_color(),
    }
}

impl LogPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, buffer: &LogBuffer) {
        let version = buffer.version();
        let stale = self
            .cache
            .as_ref()
            .is_none_or(|(v, p, _)| *v != version || *p != self.problems_only);
        if stale {
            let mut lines = buffer.snapshot();
            if self.problems_only {
                lines.retain(|l| l.level <= Level::WARN);
            }
            self.cache = Some((version, self.problems_only, lines));
        }
        let lines = self.cache.as_ref().map(|c| c.2.as_slice()).unwrap_or(&[]);
        ui.horizontal(|ui| {
            ui.strong("Log");
            ui.checkbox(&mut self.problems_only, "Only warnings and errors");
            ui.weak(format!(
                "{} lines; RUST_LOG sets what is recorded",
                lines.len()
            ));
        });
        if lines.is_empty() {
            ui.weak("Nothing logged yet.");
            return;
        }
        let row = ui.text_style_height(&egui::TextStyle::Monospace);
        egui::ScrollArea::vertical()
            .stick_to_bottom(true)
            .auto_shrink([false, false])
            .show_rows(ui, row, lines.len(), |ui, range| {
                for line in &lines[range] {
                    ui.horizontal(|ui| {
                        ui.monospace(&line.time);
                        ui.label(
                            RichText::new(line.level.as_str())
                                .monospace()
                                .color(level_colour(line.level, ui)),
                        );
                        ui.weak(RichText::new(&line.target).monospace());
                        ui.label(RichText::new(&line.message).monospace());
                    });
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: Level, message: &str) -> Line {
        Line {
            time: "00:00:00".into(),
            level,
            target: "t".into(),
            message: message.into(),
        }
    }

    #[test]
    fn keeps_the_newest_lines_and_counts_problems() {
        let buffer = LogBuffer::default();
        for i in 0..CAPACITY + 5 {
            buffer.push(line(Level::INFO, &i.to_string()));
        }
        buffer.push(line(Level::WARN, "careful"));
        let lines = buffer.snapshot();
        assert_eq!(lines.len(), CAPACITY);
        assert_eq!(lines.last().unwrap().message, "careful");
        assert_eq!(lines[0].message, "6");
        assert_eq!(buffer.problems(), 1);
    }

    #[test]
    fn the_layer_records_message_and_fields() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(CaptureLayer);
        let before = buffer().version();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(peer = "127.0.0.1:9", "handshake failed");
        });
        assert!(buffer().version() > before);
        let last = buffer().snapshot().pop().unwrap();
        assert_eq!(last.level, Level::WARN);
        assert!(
            last.message.contains("handshake failed"),
            "{}",
            last.message
        );
        assert!(
            last.message.contains("peer=127.0.0.1:9"),
            "{}",
            last.message
        );
    }
}
