//! The command palette (Ctrl+K): every action the app offers, found by typing a few letters
//! of its name, so nobody has to remember where a button lives or what its shortcut is.

use egui::{Key, KeyboardShortcut, Modifiers};

/// One action as the palette lists it.
pub struct Entry<A> {
    pub label: String,
    pub shortcut: Option<KeyboardShortcut>,
    pub action: A,
}

/// Opens the palette.
pub const OPEN: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::K);

#[derive(Debug, Default)]
pub struct Palette {
    pub open: bool,
    pub query: String,
    selected: usize,
    /// Set when the palette opens, so the text box takes the keyboard at once.
    focus_pending: bool,
}

/// How well `query` matches `label`: its letters in order, case-insensitive; `None` when
/// they are not all there. Runs of letters, word starts and the label's start score higher,
/// so "tap" ranks "Tap" above "Toggle animation paused".
pub fn score(query: &str, label: &str) -> Option<i32> {
    let label: Vec<char> = label.chars().collect();
    let mut total = 0;
    let mut next = 0;
    let mut last: Option<usize> = None;
    for q in query.chars().flat_map(char::to_lowercase) {
        if q.is_whitespace() {
            continue;
        }
        let at = (next..label.len()).find(|&i| label[i].to_lowercase().eq(std::iter::once(q)))?;
        total += 1;
        if at == 0 {
            total += 2;
        }
        if at == 0 || !label[at - 1].is_alphanumeric() {
            total += 2;
        }
        if last.is_some_and(|l| l + 1 == at) {
            total += 4;
        }
        last = Some(at);
        next = at + 1;
    }
    Some(total)
}

impl Palette {
    pub fn toggle(&mut self) {
        self.open = !self.open;
        self.query.clear();
        self.selected = 0;
        self.focus_pending = self.open;
    }

    /// Shows the palette when open; returns the action the user picked (Enter or a click).
    pub fn ui<A: Clone>(&mut self, ctx: &egui::Context, entries: &[Entry<A>]) -> Option<A> {
        if !self.open {
            return None;
        }
        let mut ranked: Vec<(i32, usize)> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| score(&self.query, &e.label).map(|s| (s, i)))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        self.selected = self.selected.min(ranked.len().saturating_sub(1));

        let (up, down, enter, escape) = ctx.input_mut(|i| {
            (
                i.consume_key(Modifiers::NONE, Key::ArrowUp),
                i.consume_key(Modifiers::NONE, Key::ArrowDown),
                i.consume_key(Modifiers::NONE, Key::Enter),
                i.consume_key(Modifiers::NONE, Key::Escape),
            )
        });
        if escape {
            self.open = false;
            return None;
        }
        if down {
            self.selected = (self.selected + 1).min(ranked.len().saturating_sub(1));
        }
        if up {
            self.selected = self.selected.saturating_sub(1);
        }
        let mut picked = enter
            .then(|| ranked.get(self.selected))
            .flatten()
            .map(|&(_, i)| i);

        egui::Window::new("Command palette")
            .collapsible(false)
            .resizable(false)
            .title_bar(false)
            .anchor(egui::Align2::CENTER_TOP, [0.0, 60.0])
            .fixed_size([420.0, 0.0])
            .show(ctx, |ui| {
                let edit = ui
                    .horizontal(|ui| {
                        let label = ui.label("Command");
                        ui.add(
                            egui::TextEdit::singleline(&mut self.query)
                                .hint_text("type a few letters…")
                                .desired_width(f32::INFINITY),
                        )
                        .labelled_by(label.id)
                    })
                    .inner;
                if self.focus_pending {
                    edit.request_focus();
                    self.focus_pending = false;
                }
                if edit.changed() {
                    self.selected = 0;
                }
                ui.separator();
                if ranked.is_empty() {
                    ui.weak("No command matches.");
                }
                for (row, &(_, i)) in ranked.iter().enumerate() {
                    let entry = &entries[i];
                    ui.horizontal(|ui| {
                        let clicked = ui
                            .selectable_label(row == self.selected, &entry.label)
                            .clicked();
                        if let Some(shortcut) = &entry.shortcut {
                            ui.with_layout(
                                egui::Layout::right_to_left(egui::Align::Center),
                                |ui| ui.weak(ctx.format_shortcut(shortcut)),
                            );
                        }
                        if clicked {
                            picked = Some(i);
                        }
                    });
                }
            });
        if picked.is_some() {
            self.open = false;
        }
        picked.map(|i| entries[i].action.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::score;

    #[test]
    fn letters_must_appear_in_order() {
        assert!(score("tap", "Tap").is_some());
        assert!(score("gph", "Graph").is_some());
        assert!(score("pat", "Tap").is_none());
        assert!(score("", "Anything").is_some());
    }

    #[test]
    fn word_starts_and_runs_rank_higher() {
        let tap = score("tap", "Tap").unwrap();
        let scattered = score("tap", "Toggle animation paused").unwrap();
        assert!(tap > scattered, "{tap} vs {scattered}");
        let graph = score("gr", "Show Graph").unwrap();
        let scattered = score("gr", "Toggle rendering").unwrap();
        assert!(graph > scattered, "{graph} vs {scattered}");
    }

    #[test]
    fn case_does_not_matter() {
        assert_eq!(score("GRAPH", "graph"), score("graph", "Graph"));
    }
}
