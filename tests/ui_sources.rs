//! The Sources view driven headless through egui_kittest with a real source hub: forms say
//! what is wrong under the field, a recording opens into rows and a timeline that seeks, and
//! a stopped source says so.
#![cfg(feature = "gui")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use meshlens::sources::hub::{Hub, State};
use meshlens::tap::recording::Recorder;
use meshlens::ui::ingest;
use meshlens::ui::shell::{Shell, Tab};

#[path = "common/events.rs"]
mod events;

use events::{T0, http, response_end, workload};

struct App {
    shell: Shell,
    hub: Hub,
}

fn harness() -> Harness<'static, App> {
    let mut shell = Shell::new("no source");
    shell.tab = Tab::Sources;
    shell.welcome = false;
    let app = App {
        shell,
        hub: Hub::new(Arc::new(|| {})).unwrap(),
    };
    // A source's row fills in over a few frames (state, then its replay timeline), and each
    // new widget asks for one more frame to be styled.
    Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .with_max_steps(8)
        .build_ui_state(
            |ui, app: &mut App| {
                ingest::pump(&mut app.shell, &mut app.hub, Duration::from_millis(4));
                app.shell.ui(ui);
            },
            app,
        )
}

/// Steps frames until `done`, or fails after 20 s.
fn step_until(h: &mut Harness<'static, App>, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(h.state()) {
        let a = h.state();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {} events in the model, {:?}",
            a.shell.mesh.log().len(),
            a.shell
                .sources
                .statuses
                .first()
                .map(|s| (&s.replay, s.state))
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.run();
}

/// 60 requests from web to orders, one a second.
fn write_recording(path: &std::path::Path) {
    let (web, orders) = (workload("web", "shop", 1), workload("orders", "shop", 2));
    let mut r = Recorder::create(path, false).unwrap();
    for i in 0..60u64 {
        let mut e = response_end(i, T0 + i as i64 * 1_000_000, &web, &orders);
        http(&mut e).path = "/orders".into();
        r.push(&e).unwrap();
    }
    r.finish().unwrap();
}

fn type_into(h: &mut Harness<'static, App>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.run();
    h.get_by_label(label).type_text(text);
    h.run();
}

#[test]
fn remote_tap_form_says_which_file_is_missing() {
    let mut h = harness();
    h.get_by_label("Remote tap").click();
    h.run();
    type_into(&mut h, "Admin addresses", "127.0.0.1");
    type_into(&mut h, "Trust anchors (CA)", "/no/such/ca.pem");
    h.get_by_label("Connect").click();
    h.run();
    h.get_by_label("`127.0.0.1` is not host:port (like 10.0.0.7:4191)");
    h.get_by_label("no file at /no/such/ca.pem");
    assert_eq!(
        h.query_all_by_label("give a file").count(),
        2,
        "certificate and key are empty"
    );
    assert!(
        h.state().shell.sources.statuses.is_empty(),
        "nothing started"
    );
}

#[test]
fn a_recording_opens_into_rows_and_its_scrubber_seeks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.tap");
    write_recording(&path);
    let mut h = harness();
    h.get_by_label("Recording").click();
    h.run();
    type_into(&mut h, "Recording file", &path.display().to_string());
    h.get_by_label("Open recording").click();
    h.run();
    step_until(&mut h, "the replay to start", |a| {
        a.shell
            .sources
            .statuses
            .first()
            .is_some_and(|s| s.replay.is_some())
    });
    h.get_by_label("recording shop.tap");
    h.get_by_label("connected");
    h.get_by_label("max").click();
    h.run();
    step_until(&mut h, "all 60 events", |a| a.shell.mesh.log().len() == 60);
    // Seek to 50 s into the recording: the model starts over from there.
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "Position")
        .set_value_accesskit(50.0);
    h.run();
    step_until(&mut h, "the seek", |a| {
        let n = a.shell.mesh.log().len();
        (1..=10).contains(&n)
            && a.shell.sources.statuses[0]
                .replay
                .as_ref()
                .unwrap()
                .position
                == Some(T0 + 59_000_000)
    });
    assert!(h.state().shell.mesh.log().len() <= 10);
    h.state_mut().shell.tab = Tab::Tap;
    h.run_steps(5);
    assert!(
        h.query_all_by_label_contains("/orders").count() >= 1,
        "the tap table shows the replayed requests"
    );
}

#[test]
fn a_stopped_source_says_stopped_and_can_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.tap");
    write_recording(&path);
    let mut h = harness();
    h.get_by_label("Recording").click();
    h.run();
    type_into(&mut h, "Recording file", &path.display().to_string());
    h.get_by_label("Open recording").click();
    step_until(&mut h, "the replay to start", |a| {
        a.shell
            .sources
            .statuses
            .first()
            .is_some_and(|s| s.state == State::Connected)
    });
    h.get_by_label("Stop").click();
    step_until(&mut h, "the stop", |a| {
        a.shell.sources.statuses[0].state == State::Stopped
    });
    h.get_by_label("stopped");
    assert!(h.query_by_label("Stop").is_none());
    h.get_by_label("Reconnect").click();
    step_until(&mut h, "the restart", |a| {
        a.shell.sources.statuses[0].state == State::Connected
    });
}
