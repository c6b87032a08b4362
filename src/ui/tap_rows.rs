//! Which log events the tap table shows: the sequence numbers a query keeps, cached across
//! frames. New events are matched as they arrive; a new query re-reads the log a few
//! milliseconds per frame, so typing into the filter never stalls a frame even with 200,000
//! events held.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::mesh::log::EventLog;
use crate::mesh::query::Query;

/// How long one frame may spend matching events.
const FRAME_BUDGET: Duration = Duration::from_millis(6);

/// A table following a flood moves on at most this often (seconds). Every step brings a
/// screenful of new rows, and no one reads 6,000 rows a second; between steps the rows on
/// screen are the same and cost little to draw.
pub const FOLLOW_STEP_S: f64 = 0.1;
/// New events a step shows at once, without laying them out a step ahead.
const FEW: u64 = 8;

/// Paces a followed table. Under a flood it runs one step behind: at each step it shows the
/// rows that were newest at the step before, whose text was laid out in between
/// (`tap_cells`). A quiet stream shows each event at once.
#[derive(Debug, Default)]
pub struct FollowPace {
    /// The newest event shown, and when (egui time) the table last moved on.
    shown: Option<(u64, f64)>,
    /// The newest event when the table last moved on: what the next step shows.
    next: Option<u64>,
}

/// What a followed table shows this frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paced {
    /// The newest event to show.
    pub shown: Option<u64>,
    /// The newest event of the next step, when that will be a newer one: lay out its rows.
    pub next: Option<u64>,
    /// The table moved on this frame.
    pub moved: bool,
    /// Seconds until the next step, when one is due (for a repaint then).
    pub wait: Option<f64>,
}

impl FollowPace {
    /// The newest event the table shows.
    pub fn shown(&self) -> Option<u64> {
        self.shown.map(|(seq, _)| seq)
    }

    /// `newest`: the newest matching event at `now`.
    pub fn step(&mut self, newest: Option<u64>, now: f64) -> Paced {
        let Some(newest) = newest else {
            *self = FollowPace::default();
            return Paced {
                shown: None,
                next: None,
                moved: false,
                wait: None,
            };
        };
        let mut moved = false;
        match self.shown {
            Some((shown, _)) if shown == newest => {}
            Some((shown, at)) if now - at < FOLLOW_STEP_S => {
                // Too soon: the same rows again.
                let next = self.next.filter(|&n| n > shown);
                return Paced {
                    shown: Some(shown),
                    next,
                    moved,
                    wait: Some(FOLLOW_STEP_S - (now - at)),
                };
            }
            Some((shown, _)) => match self.next.filter(|&n| n > shown) {
                // A flood: show what was newest a step ago, laid out since.
                Some(prepared) => {
                    self.shown = Some((prepared, now));
                    self.next = Some(newest);
                    moved = true;
                }
                // A few new events (or fewer, after a new query): show them at once.
                None if newest.saturating_sub(shown) <= FEW => {
                    self.shown = Some((newest, now));
                    self.next = Some(newest);
                    moved = true;
                }
                // A flood begins: lay out its newest rows for a step first.
                None => {
                    self.shown = Some((shown, now));
                    self.next = Some(newest);
                }
            },
            None => {
                self.shown = Some((newest, now));
                self.next = Some(newest);
                moved = true;
            }
        }
        let shown = self.shown.map(|(s, _)| s);
        let next = self.next.filter(|&n| Some(n) > shown);
        Paced {
            shown,
            next,
            moved,
            wait: next.map(|_| FOLLOW_STEP_S),
        }
    }
}

#[derive(Debug, Default)]
pub struct FilteredRows {
    query: Query,
    /// Sequence numbers that matched, oldest first.
    rows: VecDeque<u64>,
    /// The next sequence number to match.
    scanned_to: u64,
}

impl FilteredRows {
    /// Starts over with `query`; the rows fill in over the next frames.
    pub fn set_query(&mut self, query: Query) {
        self.query = query;
        self.rows.clear();
        self.scanned_to = 0;
    }

    pub fn query(&self) -> &Query {
        &self.query
    }

    /// Forgets evicted events and matches new ones for at most a frame's budget; returns
    /// whether events are left to match (the caller repaints to continue).
    pub fn update(&mut self, log: &EventLog) -> bool {
        let first = log.first_seq();
        while self.rows.front().is_some_and(|&s| s < first) {
            self.rows.pop_front();
        }
        if self.query.is_empty() {
            self.scanned_to = log.next_seq();
            return false;
        }
        let deadline = Instant::now() + FRAME_BUDGET;
        let mut n = 0u32;
        let (query, rows) = (&self.query, &mut self.rows);
        self.scanned_to = log.scan(self.scanned_to, |seq, e| {
            if query.matches(e) {
                rows.push_back(seq);
            }
            n += 1;
            !n.is_multiple_of(64) || Instant::now() < deadline
        });
        self.scanned_to < log.next_seq()
    }

    /// How many rows the table has (all held events for the empty query).
    pub fn len(&self, log: &EventLog) -> usize {
        if self.query.is_empty() {
            log.len()
        } else {
            self.rows.len()
        }
    }

    pub fn is_empty(&self, log: &EventLog) -> bool {
        self.len(log) == 0
    }

    /// The sequence number of row `i`.
    pub fn seq(&self, log: &EventLog, i: usize) -> Option<u64> {
        if self.query.is_empty() {
            (i < log.len()).then(|| log.first_seq() + i as u64)
        } else {
            self.rows.get(i).copied()
        }
    }

    /// The row showing event `seq`, if it is shown.
    pub fn row_of(&self, log: &EventLog, seq: u64) -> Option<usize> {
        if self.query.is_empty() {
            let i = seq.checked_sub(log.first_seq())?;
            (i < log.len() as u64).then_some(i as usize)
        } else {
            self.rows.binary_search(&seq).ok()
        }
    }

    /// Share of the held events matched so far, for a progress note while re-reading.
    pub fn progress(&self, log: &EventLog) -> f32 {
        // Nothing left to read (an empty log among others) is done, not 0 %.
        if self.scanned_to >= log.next_seq() {
            return 1.0;
        }
        let held = log.len().max(1) as f32;
        let done = self.scanned_to.saturating_sub(log.first_seq()) as f32;
        (done / held).min(1.0)
    }

    /// How many rows show events up to and including `seq`.
    pub fn len_through(&self, log: &EventLog, seq: u64) -> usize {
        if self.query.is_empty() {
            (seq + 1)
                .saturating_sub(log.first_seq())
                .min(log.len() as u64) as usize
        } else {
            self.rows.partition_point(|&s| s <= seq)
        }
    }

    /// All shown sequence numbers, oldest first (for export).
    pub fn all(&self, log: &EventLog) -> Vec<u64> {
        (0..self.len(log))
            .filter_map(|i| self.seq(log, i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::testing::request;
    use crate::tap::Direction;

    #[test]
    fn a_followed_flood_runs_one_step_behind_and_a_quiet_stream_does_not() {
        let mut pace = FollowPace::default();
        assert_eq!(pace.step(None, 0.0).shown, None);
        let at = |p: Paced| (p.shown, p.next, p.moved);
        assert_eq!(at(pace.step(Some(10), 1.0)), (Some(10), None, true));
        // A quiet stream: a few new events show as soon as a step is due.
        let soon = pace.step(Some(13), 1.015625);
        assert_eq!(at(soon), (Some(10), None, false), "too soon");
        assert!((soon.wait.unwrap() - (FOLLOW_STEP_S - 0.015625)).abs() < 1e-9);
        assert_eq!(at(pace.step(Some(13), 1.25)), (Some(13), None, true));
        // A flood: its newest rows are laid out for a step, then shown.
        let begins = pace.step(Some(300), 1.5);
        assert_eq!(at(begins), (Some(13), Some(300), false));
        assert_eq!(begins.wait, Some(FOLLOW_STEP_S));
        assert_eq!(
            at(pace.step(Some(400), 1.515625)),
            (Some(13), Some(300), false)
        );
        assert_eq!(at(pace.step(Some(700), 1.75)), (Some(300), Some(700), true));
        assert_eq!(at(pace.step(Some(900), 2.0)), (Some(700), Some(900), true));
        // The flood stops: the last rows show one step later, then nothing is due.
        assert_eq!(at(pace.step(Some(900), 2.25)), (Some(900), None, true));
        let after = pace.step(Some(900), 2.5);
        assert_eq!((at(after), after.wait), ((Some(900), None, false), None));
    }

    #[test]
    fn rows_follow_the_query_new_events_and_eviction() {
        let mut log = EventLog::new(30);
        for i in 0..10u64 {
            let status = if i % 2 == 0 { 200 } else { 503 };
            for e in request(Direction::Inbound, i, 0, "web", "api", status, None) {
                log.push(&e);
            }
        }
        let mut rows = FilteredRows::default();
        assert!(!rows.update(&log));
        assert_eq!(rows.len(&log), 30);
        assert_eq!(rows.seq(&log, 0), Some(0));
        rows.set_query(Query::parse("status:5xx").unwrap());
        while rows.update(&log) {}
        // Response start and end of the five failing requests.
        assert_eq!(rows.len(&log), 10);
        assert_eq!(rows.seq(&log, 0), Some(4));
        assert_eq!(rows.row_of(&log, 5), Some(1));
        assert_eq!(rows.row_of(&log, 6), None);
        for (stream, status) in [(11, 500), (12, 200)] {
            for e in request(Direction::Inbound, stream, 0, "web", "api", status, None) {
                log.push(&e);
            }
        }
        rows.update(&log);
        assert_eq!(rows.len(&log), 10, "two old matches evicted, two new ones");
        assert_eq!(rows.all(&log).last(), Some(&32));
        assert_eq!(rows.progress(&log), 1.0);
    }

    #[test]
    fn an_empty_log_is_fully_filtered() {
        let log = EventLog::new(30);
        let mut rows = FilteredRows::default();
        rows.update(&log);
        assert_eq!(rows.progress(&log), 1.0);
        rows.set_query(Query::parse("status:5xx").unwrap());
        rows.update(&log);
        assert_eq!(rows.progress(&log), 1.0);
    }
}
