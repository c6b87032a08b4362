//! Frame timing for measuring the real app: with `MESHLENS_FRAME_LOG` set, stderr gets when
//! the first frame ran (milliseconds since the app started, and the Unix time in ms so a
//! script can subtract its own launch time) and, every 300 frames, the p50/p99/max of two
//! times. The frame time is eframe's, from the frame's start until it is handed to the
//! window, with the renderer waited for at the end of painting, so that a software
//! renderer's rasterizing counts (eframe leaves the buffer swap out, where it would happen).
//! The interval is the wall time from one frame's start to the next: the frame time plus
//! any wait, about 16.7 ms while animating at 60 frames a second.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::software_gl;

const WINDOW: usize = 300;

pub struct FrameLog {
    started: Instant,
    last: Option<Instant>,
    frame_ms: Vec<f32>,
    interval_ms: Vec<f32>,
}

impl FrameLog {
    /// `None` unless `MESHLENS_FRAME_LOG` is set.
    pub fn from_env(started: Instant) -> Option<FrameLog> {
        std::env::var_os("MESHLENS_FRAME_LOG").map(|_| FrameLog {
            started,
            last: None,
            frame_ms: Vec::with_capacity(WINDOW),
            interval_ms: Vec::with_capacity(WINDOW),
        })
    }

    /// Call once per frame with eframe's time for the previous frame, if known.
    pub fn frame(&mut self, ctx: &egui::Context, previous_frame_s: Option<f32>) {
        software_gl::finish_rasterizing_in_frame(ctx);
        let now = Instant::now();
        match self.last.replace(now) {
            None => {
                let unix_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                eprintln!(
                    "frame-log: first frame {:.0} ms after start (unix ms {unix_ms})",
                    self.started.elapsed().as_secs_f64() * 1e3
                );
            }
            Some(last) => self.interval_ms.push((now - last).as_secs_f32() * 1e3),
        }
        if let Some(s) = previous_frame_s {
            self.frame_ms.push(s * 1e3);
        }
        if self.frame_ms.len() >= WINDOW {
            let (frame, interval) = (
                percentiles(&mut self.frame_ms),
                percentiles(&mut self.interval_ms),
            );
            eprintln!(
                "frame-log: {WINDOW} frames, frame p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
                 interval p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                frame[0], frame[1], frame[2], interval[0], interval[1], interval[2]
            );
            self.frame_ms.clear();
            self.interval_ms.clear();
        }
    }
}

/// p50, p99 and max of `v` (sorted in place); zeros when empty.
fn percentiles(v: &mut [f32]) -> [f32; 3] {
    if v.is_empty() {
        return [0.0; 3];
    }
    v.sort_unstable_by(f32::total_cmp);
    let at = |q: f32| v[((v.len() - 1) as f32 * q) as usize];
    [at(0.5), at(0.99), at(1.0)]
}
