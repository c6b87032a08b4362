//! Frame timing for measuring the real app: with `MESHLENS_FRAME_LOG` set, stderr gets when
//! the first frame ran (milliseconds since the app started, and the Unix time in ms so a
//! script can subtract its own launch time) and, every 300 frames, the p50/p99/max CPU time
//! per frame as eframe reports it (egui pass, tessellation and painting).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

const WINDOW: usize = 300;

pub struct FrameLog {
    started: Instant,
    first_seen: bool,
    cpu_ms: Vec<f32>,
}

impl FrameLog {
    /// `None` unless `MESHLENS_FRAME_LOG` is set.
    pub fn from_env(started: Instant) -> Option<FrameLog> {
        std::env::var_os("MESHLENS_FRAME_LOG").map(|_| FrameLog {
            started,
            first_seen: false,
            cpu_ms: Vec::with_capacity(WINDOW),
        })
    }

    /// Call once per frame with the previous frame's CPU seconds, if known.
    pub fn frame(&mut self, previous_cpu_s: Option<f32>) {
        if !self.first_seen {
            self.first_seen = true;
            let unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            eprintln!(
                "frame-log: first frame {:.0} ms after start (unix ms {unix_ms})",
                self.started.elapsed().as_secs_f64() * 1e3
            );
        }
        if let Some(s) = previous_cpu_s {
            self.cpu_ms.push(s * 1e3);
        }
        if self.cpu_ms.len() >= WINDOW {
            self.cpu_ms.sort_unstable_by(f32::total_cmp);
            let at = |q: f32| self.cpu_ms[((self.cpu_ms.len() - 1) as f32 * q) as usize];
            eprintln!(
                "frame-log: {} frames, cpu p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                self.cpu_ms.len(),
                at(0.5),
                at(0.99),
                at(1.0)
            );
            self.cpu_ms.clear();
        }
    }
}
