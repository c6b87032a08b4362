//! The event log: a bounded ring of the newest events, each with a sequence number that only
//! grows, so a UI list can ask for what came `since` the last frame and a selection survives
//! eviction of older rows (its number simply stops resolving).

use std::collections::VecDeque;

use crate::avro::Limits;
use crate::avro::decode::Cursor;
use crate::tap::{Event, wire};

/// The default capacity: about five minutes of a busy sandbox.
pub const DEFAULT_CAPACITY: usize = 200_000;

/// Datums are appended to chunks of this size; a new chunk starts once less than
/// `CHUNK_ROOM` is left, so a chunk only grows (and moves) for an outsized datum.
const CHUNK_BYTES: usize = 1 << 20;
const CHUNK_ROOM: usize = 64 << 10;

/// Events are kept as their Avro datums, written straight into large chunks: a decoded event
/// is two dozen allocations and ~800 bytes of struct before its strings, its datum about the
/// size of its strings, and a chunk is one allocation for thousands of them. Evicting the
/// oldest events frees their chunk for reuse, so a full log stops allocating. A view decodes
/// only the rows it shows.
#[derive(Debug)]
pub struct EventLog {
    capacity: usize,
    /// Where each held event's datum is, oldest first.
    slots: VecDeque<Slot>,
    /// Chunks oldest first; the first is number `first_chunk`.
    chunks: VecDeque<Vec<u8>>,
    first_chunk: u64,
    /// An emptied chunk kept for the next one.
    spare: Option<Vec<u8>>,
    /// The sequence number the next pushed event gets; the oldest held is `next - len`.
    next: u64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    chunk: u64,
    start: usize,
    end: usize,
}

impl EventLog {
    /// A log holding at most `capacity` (at least 1) events.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        EventLog {
            capacity,
            slots: VecDeque::with_capacity(capacity.min(4096)),
            chunks: VecDeque::new(),
            first_chunk: 0,
            spare: None,
            next: 0,
        }
    }

    /// Appends `event`, evicting the oldest when full; returns its sequence number.
    pub fn push(&mut self, event: &Event) -> u64 {
        self.append(|bytes| wire::encode(event, bytes))
    }

    /// Appends an event as the datum it was read from (`tap-event.avsc`, as
    /// [`wire::encode`] writes it): a replay keeps the recording's bytes as they are.
    pub fn push_datum(&mut self, datum: &[u8]) -> u64 {
        self.append(|bytes| bytes.extend_from_slice(datum))
    }

    fn append(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> u64 {
        if self.slots.len() == self.capacity {
            self.evict_oldest();
        }
        if self
            .chunks
            .back()
            .is_none_or(|c| c.len() + CHUNK_ROOM > CHUNK_BYTES)
        {
            let chunk = self
                .spare
                .take()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES));
            self.chunks.push_back(chunk);
        }
        let chunk = self.first_chunk + self.chunks.len() as u64 - 1;
        let bytes = self.chunks.back_mut().expect("a chunk was just ensured");
        let start = bytes.len();
        write(bytes);
        self.slots.push_back(Slot {
            chunk,
            start,
            end: bytes.len(),
        });
        self.next += 1;
        self.next - 1
    }

    /// Drops the oldest event; its chunk goes spare once no held event is in it.
    fn evict_oldest(&mut self) {
        self.slots.pop_front();
        let oldest_needed = self.slots.front().map_or(u64::MAX, |s| s.chunk);
        while self.first_chunk < oldest_needed {
            let Some(mut chunk) = self.chunks.pop_front() else {
                break;
            };
            self.first_chunk += 1;
            chunk.clear();
            self.spare = Some(chunk);
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The sequence number of the oldest event still held.
    pub fn first_seq(&self) -> u64 {
        self.next - self.slots.len() as u64
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
        self.slots.iter().map(|s| s.end - s.start).sum()
    }

    pub fn get(&self, seq: u64) -> Option<Event> {
        let i = seq.checked_sub(self.first_seq())?;
        self.read(*self.slots.get(usize::try_from(i).ok()?)?)
    }

    /// Events numbered `seq` and later still held, oldest first, decoded as they are reached.
    pub fn since(&self, seq: u64) -> impl DoubleEndedIterator<Item = (u64, Event)> + '_ {
        let first = self.first_seq();
        let skip = seq.saturating_sub(first).min(self.slots.len() as u64) as usize;
        self.slots
            .range(skip..)
            .enumerate()
            .filter_map(move |(i, s)| Some((first + (skip + i) as u64, self.read(*s)?)))
    }

    /// Held events `keep` accepts, oldest first.
    pub fn filter<'a>(
        &'a self,
        mut keep: impl FnMut(&Event) -> bool + 'a,
    ) -> impl Iterator<Item = (u64, Event)> + 'a {
        self.since(0).filter(move |(_, e)| keep(e))
    }

    /// Calls `f` with each held event numbered `seq` and later, oldest first, until it returns
    /// false; returns the number to continue from. All are decoded into one reused `Event`,
    /// so a filter over the whole log allocates nothing per event.
    pub fn scan(&self, seq: u64, mut f: impl FnMut(u64, &Event) -> bool) -> u64 {
        let first = self.first_seq();
        let mut seq = seq.max(first);
        let mut event = Event::lost(0, 0);
        let limits = Limits::default();
        while let Some(slot) = usize::try_from(seq - first)
            .ok()
            .and_then(|i| self.slots.get(i))
        {
            let bytes = usize::try_from(slot.chunk - self.first_chunk)
                .ok()
                .and_then(|c| self.chunks.get(c))
                .and_then(|c| c.get(slot.start..slot.end));
            seq += 1;
            let Some(bytes) = bytes else { continue };
            if wire::decode_into(&mut Cursor::new(bytes, &limits), &mut event).is_ok()
                && !f(seq - 1, &event)
            {
                break;
            }
        }
        seq
    }

    /// A datum the log wrote itself always decodes (the tap codec tests hold the writer and
    /// the reader together); were one not to, it is skipped rather than taking the app down.
    fn read(&self, slot: Slot) -> Option<Event> {
        let chunk = self
            .chunks
            .get(usize::try_from(slot.chunk - self.first_chunk).ok()?)?;
        wire::decode_one(chunk.get(slot.start..slot.end)?).ok()
    }
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
    fn chunks_are_reused_once_their_events_are_evicted() {
        let mut log = EventLog::new(100);
        let big = |i: u64| {
            let mut e = event(i);
            e.proxy = format!("{i:>50000}");
            e
        };
        for i in 0..1_000 {
            log.push(&big(i));
            assert!(log.chunks.len() <= 6, "{} chunks at {i}", log.chunks.len());
        }
        assert_eq!(log.len(), 100);
        assert_eq!(log.get(899), None);
        for seq in [900, 950, 999] {
            assert_eq!(log.get(seq).unwrap(), big(seq));
        }
        let held: Vec<u64> = log
            .since(0)
            .map(|(s, e)| {
                assert_eq!(e.stream, s);
                s
            })
            .collect();
        assert_eq!(held, (900..1_000).collect::<Vec<_>>());
        assert_eq!(log.datum_bytes(), 100 * wire_len(&big(950)));
    }

    fn wire_len(e: &Event) -> usize {
        let mut out = Vec::new();
        wire::encode(e, &mut out);
        out.len()
    }

    #[test]
    fn scan_reuses_one_event_and_can_stop_and_resume() {
        let mut log = EventLog::new(4);
        (0..6).for_each(|i| {
            log.push(&event(i));
        });
        let mut seen = Vec::new();
        let next = log.scan(0, |seq, e| {
            seen.push((seq, e.stream));
            seq < 3
        });
        assert_eq!(seen, vec![(2, 2), (3, 3)], "starts at the oldest held");
        assert_eq!(next, 4);
        let next = log.scan(next, |seq, _| {
            seen.push((seq, 0));
            true
        });
        assert_eq!(next, 6);
        assert_eq!(seen.len(), 4);
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
