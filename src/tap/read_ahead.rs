//! Reading a recording ahead of whoever folds it: a thread of its own reads, decompresses
//! and decodes whole blocks while the caller applies the previous ones, so a replay uses two
//! cores. Blocks travel as [`Batch`]es over a channel a few blocks deep (one message per
//! block, not per event) and come back to the reader when dropped, so once warm it fills
//! the same buffers instead of allocating events anew.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::batch::Batch;
use super::recording::{Recording, RecordingError};

/// Blocks decoded ahead of the consumer: enough to ride out a slow block, few enough that a
/// paused replay holds little.
const DEPTH: usize = 4;

type Read = Result<Batch, RecordingError>;

pub struct ReadAhead {
    batches: mpsc::Receiver<Read>,
    thread: JoinHandle<Recording>,
    path: PathBuf,
}

impl ReadAhead {
    /// Starts reading `recording` from block `first` (past the last block: nothing to read)
    /// to its end, or to the first block that does not read, which comes as an error.
    pub fn start(mut recording: Recording, first: usize) -> Result<ReadAhead, RecordingError> {
        let (tx, batches) = mpsc::channel(DEPTH);
        let path = recording.path().to_path_buf();
        let thread = std::thread::Builder::new()
            .name("meshlens-read-ahead".into())
            .spawn(move || {
                let (home, returned) = std_mpsc::channel();
                for index in first..recording.blocks().len() {
                    let mut batch = returned
                        .try_recv()
                        .unwrap_or_else(|_| Batch::homed(home.clone()));
                    let read = recording.read_batch(index, &mut batch).map(|()| batch);
                    let failed = read.is_err();
                    if tx.blocking_send(read).is_err() || failed {
                        break;
                    }
                }
                recording
            })
            .map_err(|error| RecordingError::Io {
                path: path.clone(),
                error,
            })?;
        Ok(ReadAhead {
            batches,
            thread,
            path,
        })
    }

    /// The next block; `None` after the last (or after one that did not read).
    pub async fn next(&mut self) -> Option<Read> {
        self.batches.recv().await
    }

    /// [`next`](Self::next) for a caller outside an async runtime.
    pub fn blocking_next(&mut self) -> Option<Read> {
        self.batches.blocking_recv()
    }

    /// Stops reading and hands the recording back, knowing the times of every block read.
    /// Waits for the block being read, if any.
    pub fn finish(mut self) -> Result<Recording, RecordingError> {
        self.batches.close();
        while self.batches.try_recv().is_ok() {}
        self.thread.join().map_err(|_| RecordingError::Format {
            path: self.path,
            message: "the thread reading the recording failed".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::event::{Event, EventKind};
    use crate::tap::recording::Recorder;

    const T0: i64 = 1_767_225_600_000_000;

    /// Blocks of 10, 3, 7, 1 and 9 events, so a reused batch is refilled with fewer events
    /// than it held.
    fn record(path: &std::path::Path) -> Vec<Event> {
        let mut r = Recorder::create(path, false).unwrap();
        let mut events = Vec::new();
        for (b, n) in [10, 3, 7, 1, 9].into_iter().enumerate() {
            for i in 0..n {
                let mut e = Event::lost(0, T0 + events.len() as i64);
                e.kind = EventKind::TcpOpen;
                e.stream = events.len() as u64;
                e.proxy = format!("ns/proxy-{b}-{}", "x".repeat(i));
                r.push(&e).unwrap();
                events.push(e);
            }
            r.flush().unwrap();
        }
        r.finish().unwrap();
        events
    }

    fn read_all(ahead: &mut ReadAhead) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(batch) = ahead.blocking_next() {
            out.extend(batch.unwrap().into_events());
        }
        out
    }

    #[test]
    fn it_reads_every_event_in_order_and_learns_every_block_s_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let events = record(&path);
        let mut ahead = ReadAhead::start(Recording::open(&path).unwrap(), 0).unwrap();
        let mut read = Vec::new();
        let mut blocks = Vec::new();
        while let Some(batch) = ahead.blocking_next() {
            let batch = batch.unwrap();
            blocks.push(batch.block());
            read.extend(batch.iter().map(|(e, datum)| {
                assert_eq!(datum.map(crate::tap::codec::decode).unwrap().unwrap(), *e);
                e.clone()
            }));
        }
        assert_eq!(blocks, [0, 1, 2, 3, 4]);
        assert_eq!(read, events);
        let mut rec = ahead.finish().unwrap();
        assert_eq!(rec.timed_blocks(), 5);
        assert_eq!(rec.events_from(T0 + 12).unwrap(), events[12..]);
    }

    #[test]
    fn it_starts_at_a_block_and_past_the_end_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let events = record(&path);
        let mut ahead = ReadAhead::start(Recording::open(&path).unwrap(), 2).unwrap();
        assert_eq!(read_all(&mut ahead), events[13..]);
        let rec = ahead.finish().unwrap();
        assert_eq!(rec.timed_blocks(), 3);
        let mut ahead = ReadAhead::start(rec, 99).unwrap();
        assert!(read_all(&mut ahead).is_empty());
    }

    #[test]
    fn finishing_early_hands_the_recording_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let events = record(&path);
        let mut ahead = ReadAhead::start(Recording::open(&path).unwrap(), 0).unwrap();
        let first = ahead.blocking_next().unwrap().unwrap();
        assert_eq!(first.events(), &events[..10]);
        let mut rec = ahead.finish().unwrap();
        drop(first);
        assert_eq!(rec.events_from(T0).unwrap(), events);
    }

    #[test]
    fn a_cut_off_recording_reads_up_to_its_last_complete_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let events = record(&path);
        let bytes = std::fs::read(&path).unwrap();
        let last = *Recording::open(&path).unwrap().blocks().last().unwrap();
        let cut = dir.path().join("cut.avro");
        for len in [
            last.offset + 1,
            last.offset + last.len / 2,
            last.offset + last.len - 1,
        ] {
            std::fs::write(&cut, &bytes[..len as usize]).unwrap();
            let rec = Recording::open(&cut).unwrap();
            assert_eq!(rec.ignored_bytes(), len - last.offset);
            let mut ahead = ReadAhead::start(rec, 0).unwrap();
            assert_eq!(read_all(&mut ahead), events[..21], "cut at {len}");
        }
    }

    #[test]
    fn a_block_that_does_not_read_ends_the_reading_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        record(&path);
        crate::tap::recording::damage_block(&path, 1);
        let mut ahead = ReadAhead::start(Recording::open(&path).unwrap(), 0).unwrap();
        assert_eq!(ahead.blocking_next().unwrap().unwrap().len(), 10);
        let err = ahead.blocking_next().unwrap().err().unwrap().to_string();
        assert!(err.contains("block 1 at byte"), "{err}");
        assert!(ahead.blocking_next().is_none());
    }
}
