//! The event log: a bounded ring of the newest events, each with a sequence number that only
//! grows, so a UI list can ask for what came `since` the last frame and a selection survives
//! eviction of older rows (its number simply stops resolving).

use std::collections::VecDeque;

use crate::tap::{Event, wire};

/// The default capacity: about five minutes of a busy sandbox.
pub const DEFAULT_CAPACITY: usize = 200_000;

/// Events are kept as their Avro datums, one allocation each: a decoded event is two dozen
/// allocations and ~800 bytes of struct before its strings, its datum about the size of its
/// strings. A view decodes only the rows it shows.
#[derive(Debug)]
pub struct EventLog {
    capacity: usize,
    datums: VecDeque<Box<[u8]>>,
    /// The sequence number the next pushed event gets; the oldest held is `next - len`.
    next: u64,
    scratch: Vec<u8>,
}

impl EventLog {
    /// A log holding at most `capacity` (at least 1) events.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        EventLog {
            capacity,
            datums: VecDeque::with_capacity(capacity.min(4096)),
            next: 0,
            scratch: Vec::new(),
        }
    }

    /// Appends `event`, evicting the oldest when full; returns its sequence number.
    pub fn push(&mut self, event: &Event) -> u64 {
        if self.datums.len() == self.capacity {
            self.datums.pop_front();
        }
        self.scratch.clear();
        wire::encode(event, &mut self.scratch);
        self.datums.push_back(self.scratch.as_slice().into());
        self.next += 1;
        self.next - 1
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.datums.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datums.is_empty()
    }

    /// The sequence number of the oldest event still held.
    pub fn first_seq(&self) -> u64 {
        self.next - self.datums.len() as u64
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Events pushed and since evicted.
    pub fn evicted(&self) -> u64 {
        self.first_seq()
    }

    /// Bytes held by the events' datums (not counting the ring itself).
    pub fn datum_bytes(&self) -> usize {
        self.datums.iter().map(|d| d.len()).sum()
    }

    pub fn get(&self, seq: u64) -> Option<Event> {
        let i = seq.checked_sub(self.first_seq())?;
        self.datums
            .get(usize::try_from(i).ok()?)
            .and_then(|d| read(d))
    }

    /// Events numbered `seq` and later still held, oldest first, decoded as they are reached.
    pub fn since(&self, seq: u64) -> impl DoubleEndedIterator<Item = (u64, Event)> + '_ {
        let first = self.first_seq();
        let skip = seq.saturating_sub(first).min(self.datums.len() as u64) as usize;
        self.datums
            .range(skip..)
            .enumerate()
            .filter_map(move |(i, d)| Some((first + (skip + i) as u64, read(d)?)))
    }

    /// Held events `keep` accepts, oldest first.
    pub fn filter<'a>(
        &'a self,
        mut keep: impl FnMut(&Event) -> bool + 'a,
    ) -> impl Iterator<Item = (u64, Event)> + 'a {
        self.since(0).filter(move |(_, e)| keep(e))
    }
}

/// A datum the log wrote itself always decodes (the tap codec tests hold the writer and the
/// reader together); were one not to, it is skipped rather than taking the app down.
fn read(datum: &[u8]) -> Option<Event> {
    wire::decode_one(datum).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stream: u64) -> Event {
        let mut e = Event::lost(0, 0);
        e.stream = stream;
        e
    }

    #[test]
    fn evicts_the_oldest_and_keeps_numbering() {
        let mut log = EventLog::new(3);
        let seqs: Vec<u64> = (0..5).map(|i| log.push(&event(i))).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
        assert_eq!(log.len(), 3);
        assert_eq!(log.first_seq(), 2);
        assert_eq!(log.evicted(), 2);
        assert!(log.get(1).is_none(), "evicted");
        assert_eq!(log.get(3).unwrap().stream, 3);
        assert!(log.get(5).is_none(), "not yet pushed");
    }

    #[test]
    fn since_returns_only_newer_events_even_after_eviction() {
        let mut log = EventLog::new(3);
        (0..5).for_each(|i| {
            log.push(&event(i));
        });
        let got: Vec<(u64, u64)> = log.since(3).map(|(s, e)| (s, e.stream)).collect();
        assert_eq!(got, vec![(3, 3), (4, 4)]);
        let got: Vec<u64> = log.since(0).map(|(s, _)| s).collect();
        assert_eq!(got, vec![2, 3, 4], "what was evicted is skipped");
        assert_eq!(log.since(5).count(), 0);
        assert_eq!(log.since(u64::MAX).count(), 0);
    }

    #[test]
    fn filter_keeps_sequence_numbers() {
        let mut log = EventLog::new(10);
        (0..6).for_each(|i| {
            log.push(&event(i * 10));
        });
        let got: Vec<u64> = log.filter(|e| e.stream % 20 == 0).map(|(s, _)| s).collect();
        assert_eq!(got, vec![0, 2, 4]);
    }
}
