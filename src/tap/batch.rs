//! A recording's block, decoded: its events and each one's datum as read. Replays move whole
//! batches between threads instead of one message per event, and a batch that came from a
//! reader goes back to it when dropped, so its events' buffers are filled again rather than
//! allocated anew.

use std::ops::Range;
use std::sync::mpsc::Sender;

use super::event::Event;

pub struct Batch {
    block: usize,
    /// Only `start..len` are this batch's events; the rest are buffers kept for reuse.
    events: Vec<Event>,
    start: usize,
    len: usize,
    /// The block's decompressed data, where the datums lie.
    data: Vec<u8>,
    /// Each event's datum in `data`; empty when the file's schema is another version's, so
    /// its datums are not this schema's bytes.
    datums: Vec<Range<usize>>,
    /// Where the buffers go when the batch is dropped.
    home: Option<Sender<Batch>>,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch::new(Vec::new(), Vec::new(), Vec::new(), None)
    }
}

impl Batch {
    /// A batch of all of `events`.
    fn new(
        events: Vec<Event>,
        data: Vec<u8>,
        datums: Vec<Range<usize>>,
        home: Option<Sender<Batch>>,
    ) -> Batch {
        Batch {
            block: 0,
            start: 0,
            len: events.len(),
            events,
            data,
            datums,
            home,
        }
    }

    /// An empty batch that goes back to `home` when dropped.
    pub(super) fn homed(home: Sender<Batch>) -> Batch {
        Batch::new(Vec::new(), Vec::new(), Vec::new(), Some(home))
    }

    /// Marks the batch as block `block`, whose data is `data` and whose first `len` events
    /// (and their datums) were just decoded into [`buffers`](Self::buffers).
    pub(super) fn fill(&mut self, block: usize, len: usize, data: Vec<u8>) {
        self.block = block;
        self.start = 0;
        self.len = len;
        self.data = data;
    }

    /// The buffers [`BlockDecoder::decode_into`](super::codec::BlockDecoder::decode_into)
    /// fills.
    pub(super) fn buffers(&mut self) -> (&mut Vec<Event>, &mut Vec<Range<usize>>) {
        (&mut self.events, &mut self.datums)
    }

    /// The index of the block the events came from.
    pub fn block(&self) -> usize {
        self.block
    }

    pub fn len(&self) -> usize {
        self.len - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn events(&self) -> &[Event] {
        &self.events[self.start..self.len]
    }

    /// Each event with its datum as read (`None` for another version's schema), as
    /// [`Mesh::apply_read`](crate::mesh::Mesh::apply_read) takes them.
    pub fn iter(&self) -> impl Iterator<Item = (&Event, Option<&[u8]>)> {
        let datums = (!self.datums.is_empty()).then_some(&self.datums[self.start..self.len]);
        self.events().iter().enumerate().map(move |(i, e)| {
            let datum = datums.map(|d| &self.data[d[i].clone()]);
            (e, datum)
        })
    }

    /// Drops the leading events older than `time_us`: where a seek lands inside a block.
    pub fn skip_before(&mut self, time_us: i64) {
        let older = self
            .events()
            .iter()
            .take_while(|e| e.time_us < time_us)
            .count();
        self.start += older;
    }

    /// The first `n` events (at most all) as a batch of their own, taken off this one: what a
    /// paced replay sends when only some of a block is due.
    pub fn take_front(&mut self, n: usize) -> Batch {
        let end = self.start + n.min(self.len());
        let range = self.start..end;
        let events = self.events[range.clone()].to_vec();
        let (mut data, mut datums) = (Vec::new(), Vec::new());
        let taken =
            &self.datums[range.start.min(self.datums.len())..range.end.min(self.datums.len())];
        if let (Some(first), Some(last)) = (taken.first(), taken.last()) {
            let base = first.start;
            data = self.data[base..last.end].to_vec();
            datums = taken.iter().map(|d| d.start - base..d.end - base).collect();
        }
        let mut part = Batch::new(events, data, datums, None);
        part.block = self.block;
        self.start = end;
        part
    }

    /// The events, moved out.
    pub fn into_events(mut self) -> Vec<Event> {
        let events = self.events.drain(self.start..self.len).collect();
        self.len = self.start;
        events
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let Some(home) = self.home.take() else {
            return;
        };
        let mut buffers = Batch::new(
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.data),
            std::mem::take(&mut self.datums),
            Some(home.clone()),
        );
        buffers.len = 0;
        // A reader that has stopped takes nothing back; the returned batch must not try again.
        if let Err(std::sync::mpsc::SendError(mut back)) = home.send(buffers) {
            back.home = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::codec;

    /// A batch of `n` events at 100, 101, ..., with their datums, as a reader fills it.
    fn batch(n: u64) -> Batch {
        batch_at(&(0..n).map(|i| 100 + i as i64).collect::<Vec<_>>())
    }

    /// A batch of events at `times`, each one's `lost` its index.
    fn batch_at(times: &[i64]) -> Batch {
        let events: Vec<Event> = (0..).zip(times).map(|(i, t)| Event::lost(i, *t)).collect();
        let mut data = Vec::new();
        let mut datums = Vec::new();
        for e in &events {
            let start = data.len();
            codec::encode(e, &mut data);
            datums.push(start..data.len());
        }
        Batch::new(events, data, datums, None)
    }

    fn lost(b: &Batch) -> Vec<u64> {
        b.iter()
            .map(|(e, datum)| {
                assert_eq!(codec::decode(datum.unwrap()).unwrap(), *e);
                e.lost
            })
            .collect()
    }

    #[test]
    fn a_front_taken_off_keeps_its_datums_and_the_rest_goes_on() {
        let mut b = batch(5);
        b.skip_before(101);
        assert_eq!(lost(&b), [1, 2, 3, 4]);
        let front = b.take_front(2);
        assert_eq!((lost(&front), lost(&b)), (vec![1, 2], vec![3, 4]));
        let rest = b.take_front(9);
        assert_eq!((lost(&rest), b.len()), (vec![3, 4], 0));
        assert!(b.take_front(1).is_empty());
    }

    #[test]
    fn skipping_stops_at_the_first_event_late_enough() {
        let mut b = batch_at(&[100, 101, 50, 103]);
        b.skip_before(101);
        assert_eq!(lost(&b), [1, 2, 3], "an older event after a late one stays");
        assert_eq!(
            b.into_events().iter().map(|e| e.lost).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn a_dropped_batch_goes_home_with_its_buffers_and_no_events() {
        let (home, returned) = std::sync::mpsc::channel();
        let mut b = Batch::homed(home);
        let full = batch(3);
        b.events = full.events.clone();
        b.fill(7, 3, full.data.clone());
        assert_eq!(b.events().len(), 3);
        drop(b);
        let back = returned.try_recv().unwrap();
        assert!(back.is_empty());
        assert_eq!(back.events.len(), 3, "the events' buffers come back");
        drop(returned);
        drop(back);
    }
}
