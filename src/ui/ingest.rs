//! One frame's non-drawing work, shared by the app and its tests: hand the views' commands
//! to the source hub (starting a new model first when one asks for it), then fold queued
//! messages into the model until the time budget is spent.

use std::time::{Duration, Instant};

use super::shell::Shell;
use crate::sources::hub::{Hub, Message};

/// Returns whether messages are still queued (the caller asks for another frame).
pub fn pump(shell: &mut Shell, hub: &mut Hub, budget: Duration) -> bool {
    for command in shell.sources.take_commands() {
        if command.resets_model() {
            shell.reset_model();
        }
        hub.execute(command);
    }
    let deadline = Instant::now() + budget;
    let mut n = 0;
    let mut more = false;
    while let Some(message) = hub.try_recv() {
        match message {
            Message::Event(event) => shell.apply(&event),
            Message::Metrics(delta) => shell.mesh.apply_metrics(&delta),
        }
        n += 1;
        if Instant::now() >= deadline {
            more = true;
            break;
        }
    }
    shell.applied(n);
    shell.sources.statuses = hub.statuses();
    shell.sources.recorder = hub.recorder();
    shell.dropped = shell.sources.statuses.iter().map(|s| s.dropped).sum();
    more
}
