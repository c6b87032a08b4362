//! Continuous animation at a display's rate. With vsync the buffer swap paces frames;
//! without it (Xvfb, llvmpipe in a virtual machine, some remote desktops) an immediate
//! repaint every frame redraws as fast as the CPU allows: frames no display shows, each one
//! competing with the last one's rasterizing and the X server's copy of it. Animating views
//! ask for the next frame on a 60 Hz beat instead.

use std::time::{Duration, Instant};

/// 60 frames a second.
pub const PERIOD: Duration = Duration::from_nanos(16_666_667);

/// Asks for the next frame on the beat: one `PERIOD` after the frame due last, or now when
/// that has passed. Views may ask more than once a frame: the first answer stands.
pub fn request_animation_frame(ctx: &egui::Context) {
    let pass = ctx.cumulative_pass_nr();
    let now = Instant::now();
    let due = ctx.data_mut(|d| {
        let beat = d.get_temp_mut_or_default::<Option<Beat>>(egui::Id::unique("frame_pacing"));
        match *beat {
            Some(b) if b.pass == pass => b.due,
            last => {
                let due = next_due(last.map(|b| b.due), now);
                *beat = Some(Beat { pass, due });
                due
            }
        }
    });
    ctx.request_repaint_after(due.saturating_duration_since(now));
}

/// The frame asked for in pass `pass`, and when it is due.
#[derive(Clone, Copy)]
struct Beat {
    pass: u64,
    due: Instant,
}

/// How early a frame may wake and still count as the one due.
const SLACK: Duration = Duration::from_millis(1);

/// When the frame after the one due at `last` is due, asked at `now`: a frame that ran
/// early (input, new events) leaves the beat where it is; on the beat, the next is a
/// period after the last one, so the time between waking and asking does not add up; a
/// late frame asks for the next at once; animation that begins waits one period.
fn next_due(last: Option<Instant>, now: Instant) -> Instant {
    match last {
        None => now + PERIOD,
        Some(last) if last > now + SLACK => last,
        Some(last) => (last + PERIOD).max(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_due_on_a_beat_and_at_once_after_a_late_one_and_extra_frames_do_not_move_it() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        // Woken a little after the frame was due: the next is still a period after it.
        assert_eq!(next_due(Some(now - ms(2)), now), now - ms(2) + PERIOD);
        assert_eq!(next_due(Some(now - ms(40)), now), now);
        assert_eq!(next_due(None, now), now + PERIOD);
        // A frame between beats (the pointer moved) does not push the beat on.
        assert_eq!(next_due(Some(now + ms(9)), now), now + ms(9));
    }

    #[test]
    fn one_frame_asks_once_however_many_views_animate() {
        let ctx = egui::Context::default();
        let delays = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = delays.clone();
        ctx.set_repaint_observer(move |info| seen.lock().unwrap().push(info.delay));
        let mut output = ctx.run_ui(egui::RawInput::default(), |ui| {
            request_animation_frame(ui.ctx());
            std::thread::sleep(Duration::from_millis(2));
            request_animation_frame(ui.ctx());
        });
        output.textures_delta.clear();
        // egui itself asks for an immediate second pass after the first.
        let ours: Vec<_> = delays
            .lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|d| !d.is_zero())
            .collect();
        assert_eq!(ours.len(), 2, "{ours:?}");
        assert!(ours[0] <= PERIOD && ours[0] > PERIOD - Duration::from_millis(1));
        assert!(ours[1] < ours[0] - Duration::from_millis(1), "{ours:?}");
    }
}
