//! Continuous animation at a display's rate. With vsync the buffer swap paces frames;
//! without it (Xvfb, llvmpipe in a virtual machine, some remote desktops) an immediate
//! repaint every frame redraws as fast as the CPU allows: frames no display shows, each one
//! competing with the last one's rasterizing and the X server's copy of it. Animating views
//! ask for the next frame one period after this one began instead.

use std::time::{Duration, Instant};

/// 60 frames a second.
pub const PERIOD: Duration = Duration::from_nanos(16_666_667);

fn start_id() -> egui::Id {
    egui::Id::unique("frame_pacing_start")
}

/// Marks when this frame began; call first in a frame (eframe's `App::logic`).
pub fn begin_frame(ctx: &egui::Context) {
    ctx.data_mut(|d| d.insert_temp(start_id(), Instant::now()));
}

/// Asks for the next frame one `PERIOD` after this one began, or now when that has passed.
pub fn request_animation_frame(ctx: &egui::Context) {
    let start = ctx.data(|d| d.get_temp::<Instant>(start_id()));
    ctx.request_repaint_after(delay(start, Instant::now()));
}

/// Without a marked start (a view outside the app, as in tests), one period from `now`.
fn delay(start: Option<Instant>, now: Instant) -> Duration {
    start.map_or(PERIOD, |s| (s + PERIOD).saturating_duration_since(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_frame_is_due_one_period_after_this_one_began() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(delay(Some(start), start + ms(6)), PERIOD - ms(6));
        assert_eq!(delay(Some(start), start + ms(20)), Duration::ZERO);
        assert_eq!(delay(None, start), PERIOD);
    }

    #[test]
    fn a_frame_that_animates_asks_for_its_successor_a_period_after_it_began() {
        let ctx = egui::Context::default();
        let delays = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = delays.clone();
        ctx.set_repaint_observer(move |info| seen.lock().unwrap().push(info.delay));
        begin_frame(&ctx);
        let mut output = ctx.run_ui(egui::RawInput::default(), |ui| {
            request_animation_frame(ui.ctx())
        });
        output.textures_delta.clear();
        let asked = delays.lock().unwrap().clone();
        // egui itself asks for an immediate second pass after the first.
        assert!(
            asked.iter().any(|d| *d > Duration::ZERO && *d <= PERIOD),
            "{asked:?}"
        );
    }
}
