//! Frame timing for measuring the real app: with `MESHLENS_FRAME_LOG` set, stderr gets when
//! the first frame ran (milliseconds since the app started, and the Unix time in ms so a
//! script can subtract its own launch time) and, every 300 frames, the p50/p99/max CPU time
//! per frame as eframe reports it (egui pass and tessellation) and the wall time between
//! frames. eframe's figure ends when the frame is handed to the renderer, so a software
//! renderer's rasterizing shows only in the wall time, which is the frame time a user sees
//! while the window repaints continuously.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

const WINDOW: usize = 300;

pub struct FrameLog {
    started: Instant,
    last: Option<Instant>,
    cpu_ms: Vec<f32>,
    wall_ms: Vec<f32>,
}

impl FrameLog {
    /// `None` unless `MESHLENS_FRAME_LOG` is set.
    pub fn from_env(started: Instant) -> Option<FrameLog> {
        std::env::var_os("MESHLENS_FRAME_LOG").map(|_| FrameLog {
            started,
            last: None,
            cpu_ms: Vec::with_capacity(WINDOW),
            wall_ms: Vec::with_capacity(WINDOW),
        })
    }

    /// Call once per frame with the previous frame's CPU seconds, if known.
    pub fn frame(&mut self, previous_cpu_s: Option<f32>) {
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
            Some(last) => self.wall_ms.push((now - last).as_secs_f32() * 1e3),
        }
        if let Some(s) = previous_cpu_s {
            self.cpu_ms.push(s * 1e3);
        }
        if self.cpu_ms.len() >= WINDOW {
            let (cpu, wall) = (
                percentiles(&mut self.cpu_ms),
                percentiles(&mut self.wall_ms),
            );
            eprintln!(
                "frame-log: {WINDOW} frames, cpu p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
                 wall p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                cpu[0], cpu[1], cpu[2], wall[0], wall[1], wall[2]
            );
            self.cpu_ms.clear();
            self.wall_ms.clear();
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
