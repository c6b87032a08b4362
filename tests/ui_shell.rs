//! The shell's keyboard: shortcuts, the command palette, and the log panel, driven headless
//! through egui_kittest with its accessibility check on.
#![cfg(feature = "gui")]

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use meshlens::ui::log_panel::{self, Line};
use meshlens::ui::shell::{Shell, Tab};

fn harness() -> Harness<'static, Shell> {
    let mut shell = Shell::new("test");
    shell.welcome = false;
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(|ui, shell: &mut Shell| shell.ui(ui), shell)
}

#[test]
fn ctrl_digit_switches_tabs() {
    let mut h = harness();
    h.run_steps(2);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num2);
    h.run_steps(2);
    assert_eq!(h.state().tab, Tab::Tap);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num1);
    h.run_steps(2);
    assert_eq!(h.state().tab, Tab::Graph);
}

#[test]
fn the_palette_finds_a_command_by_a_few_letters() {
    let mut h = harness();
    h.run_steps(2);
    h.key_press_modifiers(Modifiers::COMMAND, Key::K);
    h.run_steps(2);
    assert!(h.state().palette.open);
    h.get_by_label("Command").type_text("avro");
    h.run_steps(2);
    // Only matching commands are listed, with their shortcut beside them.
    h.get_by_label("Show Avro inspector");
    assert!(h.query_by_label("Show Graph").is_none());
    h.key_press(Key::Enter);
    h.run_steps(2);
    assert_eq!(h.state().tab, Tab::Inspector);
    assert!(!h.state().palette.open);
}

#[test]
fn the_palette_says_when_nothing_matches_and_escape_closes_it() {
    let mut h = harness();
    h.run_steps(2);
    h.get_by_label("Commands").click();
    // A window spends its first frame measuring itself.
    h.run_steps(3);
    assert!(h.state().palette.open);
    h.get_by_label("Command").type_text("zzzz");
    h.run_steps(2);
    h.get_by_label("No command matches.");
    h.key_press(Key::Escape);
    h.run_steps(2);
    assert!(!h.state().palette.open);
    assert_eq!(h.state().tab, Tab::Graph);
}

#[test]
fn the_log_panel_shows_what_was_logged_and_filters_problems() {
    log_panel::buffer().push(Line {
        time: "12:00:00".into(),
        level: tracing::Level::INFO,
        target: "meshlens::sandbox".into(),
        message: "shop demo is up".into(),
    });
    log_panel::buffer().push(Line {
        time: "12:00:01".into(),
        level: tracing::Level::WARN,
        target: "meshlens::proxy".into(),
        message: "handshake from 127.0.0.9 failed: unknown issuer".into(),
    });
    let mut h = harness();
    h.run_steps(2);
    h.get_by_label_contains("warnings)").click();
    h.run_steps(3);
    assert!(h.state().log.open);
    h.get_by_label("shop demo is up");
    h.get_by_label("handshake from 127.0.0.9 failed: unknown issuer");
    h.get_by_label("Only warnings and errors").click();
    h.run_steps(3);
    assert!(h.query_by_label("shop demo is up").is_none());
    h.get_by_label("handshake from 127.0.0.9 failed: unknown issuer");
}
