//! Recordings: a tap event stream saved to a file in the stream's own format, an Avro object
//! container file of tap events, so any Avro tool reads it and replaying it rebuilds what was
//! seen live.
//!
//! Writing: the header is written to a temporary file beside the destination and published
//! under the final name only once it is complete (a hard link, so an existing file is never
//! clobbered), so a reader never sees a torn header. Events then go out one block per flush,
//! at least every [`FLUSH_INTERVAL`] or [`FLUSH_EVENTS`], so a killed recorder loses at most
//! its last partial block.
//!
//! Reading: [`Recording::open`] steps over the file's blocks without decompressing them and
//! keeps each one's offset; the times of their events are learned as blocks are read (or all
//! at once when a seek needs them), so seeking by time skips whole blocks and a straight
//! replay reads each block once. A file cut off in the middle of a block reads up to its last
//! complete block; the bytes after it are counted in [`Recording::ignored_bytes`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::TapError;
use super::batch::Batch;
use super::codec::{self, BlockDecoder};
use super::event::{Event, EventKind};
use crate::avro::container::Block;
use crate::avro::{Codec, ContainerWriter, StreamReader};

/// A block is written at least this often while events arrive, bounding what a killed
/// recorder loses.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// ... and at least every this many events.
pub const FLUSH_EVENTS: u64 = 256;
/// Encoded bytes after which a block is written regardless of the two limits above.
pub const FLUSH_BYTES: usize = 64 << 10;
/// The largest block a reader accepts (compressed and expanded), as the tap client does.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;
/// The largest header a reader accepts.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

const READ_CHUNK: usize = 64 << 10;

#[derive(Debug, Error)]
pub enum RecordingError {
    /// The io error is in the message rather than a source, so it is said once.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{} already exists", path.display())]
    Exists { path: PathBuf },
    /// Not a recording, or damaged somewhere other than a cut-off end.
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> RecordingError + '_ {
    move |error| RecordingError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn format_error(path: &Path, message: impl std::fmt::Display) -> RecordingError {
    RecordingError::Format {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// What a recorder wrote so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub blocks: u64,
    /// File size, header included.
    pub bytes: u64,
    /// Events the tap streams reported lost (the sum of their `Lost` notices).
    pub lost: u64,
}

/// Writes a recording. Call [`finish`](Self::finish) at the end: events not yet in a block
/// are not written on drop.
pub struct Recorder {
    file: File,
    path: PathBuf,
    writer: ContainerWriter,
    pending: Vec<u8>,
    count: u64,
    /// When the oldest event not yet in a block arrived.
    oldest: Option<Instant>,
    stats: Stats,
}

impl Recorder {
    /// Creates the recording at `path` with its header. Blocks are zstandard: they inflate
    /// several times faster than deflate, which a long replay feels. An existing file is an
    /// error unless `overwrite`.
    pub fn create(path: &Path, overwrite: bool) -> Result<Recorder, RecordingError> {
        let writer = ContainerWriter::new(codec::SCHEMA_JSON, Codec::Zstandard)
            .map_err(|e| format_error(path, e))?;
        if !overwrite && path.exists() {
            return Err(RecordingError::Exists {
                path: path.to_path_buf(),
            });
        }
        let header = writer.header();
        let file = publish(path, &header, overwrite)?;
        Ok(Recorder {
            file,
            path: path.to_path_buf(),
            writer,
            pending: Vec::new(),
            count: 0,
            oldest: None,
            stats: Stats {
                bytes: header.len() as u64,
                ..Stats::default()
            },
        })
    }

    /// Adds `event`; writes a block when [`FLUSH_EVENTS`] or [`FLUSH_BYTES`] have gathered.
    pub fn push(&mut self, event: &Event) -> Result<(), RecordingError> {
        codec::encode(event, &mut self.pending);
        self.count += 1;
        self.stats.events += 1;
        if event.kind == EventKind::Lost {
            self.stats.lost += event.lost;
        }
        self.oldest.get_or_insert_with(Instant::now);
        if self.count >= FLUSH_EVENTS || self.pending.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// When the pending events must be written by ([`flush_due`](Self::flush_due)); `None`
    /// while nothing is pending.
    pub fn flush_deadline(&self) -> Option<Instant> {
        self.oldest.map(|t| t + FLUSH_INTERVAL)
    }

    /// Writes a block if the oldest pending event has waited [`FLUSH_INTERVAL`].
    pub fn flush_due(&mut self, now: Instant) -> Result<(), RecordingError> {
        if self.flush_deadline().is_some_and(|due| due <= now) {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending events as one block, in one write, so a killed process leaves at
    /// worst a cut-off last block that readers skip.
    pub fn flush(&mut self) -> Result<(), RecordingError> {
        if self.count == 0 {
            return Ok(());
        }
        let block = self
            .writer
            .block(&self.pending, self.count)
            .map_err(|e| format_error(&self.path, e))?;
        self.file.write_all(&block).map_err(io_error(&self.path))?;
        self.pending.clear();
        self.count = 0;
        self.oldest = None;
        self.stats.blocks += 1;
        self.stats.bytes += block.len() as u64;
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Writes the last block and syncs the file to disk.
    pub fn finish(mut self) -> Result<Stats, RecordingError> {
        self.flush()?;
        self.file.sync_all().map_err(io_error(&self.path))?;
        Ok(self.stats)
    }
}

/// Writes `header` to a temporary file next to `path`, syncs it, and gives it the name
/// `path`: by hard link when not overwriting (which fails if `path` appeared meanwhile),
/// else by rename. Returns the file, open for appending blocks.
fn publish(path: &Path, header: &[u8], overwrite: bool) -> Result<File, RecordingError> {
    let name = path
        .file_name()
        .ok_or_else(|| format_error(path, "not a file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.partial", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(io_error(&temp))?;
    let named = file
        .write_all(header)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temp))
        .and_then(|()| {
            if overwrite {
                return std::fs::rename(&temp, path).map_err(io_error(path));
            }
            match std::fs::hard_link(&temp, path) {
                Ok(()) => std::fs::remove_file(&temp).map_err(io_error(&temp)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(RecordingError::Exists {
                    path: path.to_path_buf(),
                }),
                // A file system without hard links: check, then rename.
                Err(_) if !path.exists() => std::fs::rename(&temp, path).map_err(io_error(path)),
                Err(_) => Err(RecordingError::Exists {
                    path: path.to_path_buf(),
                }),
            }
        });
    if let Err(e) = named {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(file)
}

/// Where a block sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// File offset of the block's header.
    pub offset: u64,
    /// Bytes from its header to the end of its sync marker.
    pub len: u64,
    pub events: u64,
}

/// The times of a block's events (all `i64::MIN` for a block without events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockTimes {
    /// Times of its first and last event, in file order.
    pub first_us: i64,
    pub last_us: i64,
    /// Its earliest and latest event (a merged stream is only roughly in time order).
    pub min_us: i64,
    pub max_us: i64,
}

impl BlockTimes {
    fn of(event_times: impl Iterator<Item = i64> + Clone) -> BlockTimes {
        BlockTimes {
            first_us: event_times.clone().next().unwrap_or(i64::MIN),
            last_us: event_times.clone().last().unwrap_or(i64::MIN),
            min_us: event_times.clone().min().unwrap_or(i64::MIN),
            max_us: event_times.max().unwrap_or(i64::MIN),
        }
    }
}

/// An open recording: where its blocks are, and the times of their events as far as they
/// have been read.
///
/// Opening steps over the blocks' framing without decompressing them. Their times, which
/// seeking and a timeline need, are learned as blocks are read, so a straight replay reads
/// every block once; [`span`](Self::span) and [`block_at`](Self::block_at) read whatever
/// blocks are still unknown (skimming each event's time) the first time they are asked.
pub struct Recording {
    path: PathBuf,
    file: File,
    reader: StreamReader,
    decoder: BlockDecoder,
    blocks: Vec<BlockInfo>,
    times: Vec<Option<BlockTimes>>,
    /// The latest event time in blocks `0..=i`: non-decreasing, so seeks binary-search it.
    /// Built once every block's times are known.
    latest_until: Option<Vec<i64>>,
    ignored: u64,
    /// The bytes of the block last read, kept for the next.
    raw: Vec<u8>,
}

impl Recording {
    /// Opens `path` and finds its blocks: a file cut off inside its last block opens with
    /// the complete blocks; any other damage to the framing, or a file that is not a
    /// recording of tap events, is one error naming the file and the byte offset. Damage
    /// inside a block is reported when that block is read.
    pub fn open(path: &Path) -> Result<Recording, RecordingError> {
        let mut file = File::open(path).map_err(io_error(path))?;
        let mut buf = Vec::new();
        let (mut reader, header_len) = loop {
            match StreamReader::header(&buf, MAX_HEADER_BYTES, MAX_BLOCK_BYTES) {
                Ok(Some(found)) => break found,
                Ok(None) => {}
                Err(e) => return Err(format_error(path, not_a_recording(e))),
            }
            if fill(&mut file, &mut buf).map_err(io_error(path))? == 0 {
                return Err(format_error(
                    path,
                    "the file ends inside its Avro header: not a complete recording",
                ));
            }
        };
        let writer = reader.schema().clone();
        let compat = crate::avro::compat::check(codec::schema(), &writer);
        if !compat.is_compatible() {
            return Err(format_error(
                path,
                "an Avro container file, but its records are not tap events (its schema does not resolve to assets/schemas/tap-event.avsc)",
            ));
        }
        let decoder = BlockDecoder::new(&writer);
        let mut pos = header_len;
        let mut offset = header_len as u64;
        let mut blocks = Vec::new();
        let ignored = loop {
            match reader.frame(&buf[pos..]) {
                Ok(Some((frame, used))) => {
                    blocks.push(BlockInfo {
                        offset,
                        len: used as u64,
                        events: frame.count,
                    });
                    pos += used;
                    offset += used as u64;
                }
                Ok(None) => {
                    buf.drain(..pos);
                    pos = 0;
                    if fill(&mut file, &mut buf).map_err(io_error(path))? == 0 {
                        break buf.len() as u64;
                    }
                }
                Err(e) => return Err(format_error(path, e)),
            }
        };
        Ok(Recording {
            path: path.to_path_buf(),
            file,
            reader,
            decoder,
            times: vec![None; blocks.len()],
            blocks,
            latest_until: None,
            ignored,
            raw: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn blocks(&self) -> &[BlockInfo] {
        &self.blocks
    }

    /// Bytes after the last complete block: a block cut off when the recorder was killed.
    pub fn ignored_bytes(&self) -> u64 {
        self.ignored
    }

    pub fn events(&self) -> u64 {
        self.blocks.iter().map(|b| b.events).sum()
    }

    /// How many blocks' times are known so far.
    pub fn timed_blocks(&self) -> usize {
        self.times.iter().flatten().count()
    }

    /// The times of block `index`'s events, reading the block if they are not known yet.
    pub fn times(&mut self, index: usize) -> Result<BlockTimes, RecordingError> {
        if let Some(Some(t)) = self.times.get(index) {
            return Ok(*t);
        }
        let times = self.with_block(index, |d, block| d.times(block))?;
        Ok(self.learned(index, times.iter().copied()))
    }

    fn learned(&mut self, index: usize, times: impl Iterator<Item = i64> + Clone) -> BlockTimes {
        let t = BlockTimes::of(times);
        self.times[index] = Some(t);
        t
    }

    /// The latest event time up to each block, reading every block whose times are unknown.
    fn latest_until(&mut self) -> Result<&[i64], RecordingError> {
        if self.latest_until.is_none() {
            let mut latest = i64::MIN;
            let mut until = Vec::with_capacity(self.blocks.len());
            for i in 0..self.blocks.len() {
                latest = latest.max(self.times(i)?.max_us);
                until.push(latest);
            }
            self.latest_until = Some(until);
        }
        Ok(self.latest_until.as_deref().unwrap_or_default())
    }

    /// The earliest and latest event time; `None` for a recording without events.
    pub fn span(&mut self) -> Result<Option<(i64, i64)>, RecordingError> {
        let Some(&latest) = self.latest_until()?.last() else {
            return Ok(None);
        };
        let min = (0..self.blocks.len())
            .filter(|&i| self.blocks[i].events > 0)
            .filter_map(|i| self.times[i].map(|t| t.min_us))
            .min();
        Ok(min.map(|min| (min, latest)))
    }

    /// The first block holding an event at or after `time_us`; every block before it holds
    /// only older events. `None` when no event is that late.
    pub fn block_at(&mut self, time_us: i64) -> Result<Option<usize>, RecordingError> {
        let latest = self.latest_until()?;
        let i = latest.partition_point(|latest| *latest < time_us);
        Ok((i < latest.len()).then_some(i))
    }

    /// The events of block `index`, in file order.
    pub fn read_block(&mut self, index: usize) -> Result<Vec<Event>, RecordingError> {
        let events = self.with_block(index, |d, block| d.events(block))?;
        self.learned(index, events.iter().map(|e| e.time_us));
        Ok(events)
    }

    /// Calls `f` with each event of block `index` in file order, without keeping them: how
    /// a model is rebuilt from a recording (a timeline seeking back) at full speed.
    pub fn for_each_in_block(
        &mut self,
        index: usize,
        mut f: impl FnMut(&Event, Option<&[u8]>),
    ) -> Result<(), RecordingError> {
        let mut times = Vec::new();
        self.with_block(index, |d, block| {
            d.for_each(block, |e, datum| {
                times.push(e.time_us);
                f(e, datum);
            })
        })?;
        self.learned(index, times.iter().copied());
        Ok(())
    }

    /// Reads and decodes block `index` into `batch`, reusing its buffers.
    pub fn read_batch(&mut self, index: usize, batch: &mut Batch) -> Result<(), RecordingError> {
        let block = self.raw_block(index)?;
        let (events, datums) = batch.buffers();
        let n = self
            .decoder
            .decode_into(&block, events, datums)
            .map_err(|e| self.damaged(index, in_block(&block, e)))?;
        self.learned(index, events[..n].iter().map(|e| e.time_us));
        batch.fill(index, n, block.data.into_owned());
        Ok(())
    }

    /// Reads block `index` and decodes it with `decode`.
    fn with_block<T>(
        &mut self,
        index: usize,
        decode: impl FnOnce(&BlockDecoder, &Block<'_>) -> Result<T, TapError>,
    ) -> Result<T, RecordingError> {
        let block = self.raw_block(index)?;
        decode(&self.decoder, &block).map_err(|e| self.damaged(index, in_block(&block, e)))
    }

    /// Block `index`, read and decompressed.
    fn raw_block(&mut self, index: usize) -> Result<Block<'static>, RecordingError> {
        let b = *self
            .blocks
            .get(index)
            .ok_or_else(|| format_error(&self.path, format!("no block {index}")))?;
        self.raw
            .resize(usize::try_from(b.len).unwrap_or(usize::MAX), 0);
        self.file
            .seek(SeekFrom::Start(b.offset))
            .and_then(|_| self.file.read_exact(&mut self.raw))
            .map_err(io_error(&self.path))?;
        match self.reader.block(&self.raw) {
            Ok(Some((block, _))) => Ok(block),
            Ok(None) => Err(self.damaged(index, "it is cut short")),
            Err(e) => Err(self.damaged(index, e)),
        }
    }

    fn damaged(&self, index: usize, e: impl std::fmt::Display) -> RecordingError {
        let offset = self.blocks.get(index).map_or(0, |b| b.offset);
        format_error(
            &self.path,
            format!("block {index} at byte {offset} does not read: {e}"),
        )
    }

    /// Every event from the first at or after `time_us` (in file order) to the end.
    pub fn events_from(&mut self, time_us: i64) -> Result<Vec<Event>, RecordingError> {
        let Some(first) = self.block_at(time_us)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for i in first..self.blocks.len() {
            let events = self.read_block(i)?;
            if i == first {
                out.extend(events.into_iter().skip_while(|e| e.time_us < time_us));
            } else {
                out.extend(events);
            }
        }
        Ok(out)
    }
}

/// The header did not parse: say whether this is an Avro file at all.
fn not_a_recording(e: crate::avro::AvroError) -> String {
    let text = e.to_string();
    if text.contains("magic bytes") {
        "not a recording: it does not start with the Avro container magic Obj\\x01".into()
    } else {
        format!("not a readable recording: {text}")
    }
}

/// Appends up to [`READ_CHUNK`] bytes; 0 at the end of the file.
fn fill(file: &mut File, buf: &mut Vec<u8>) -> io::Result<usize> {
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let n = loop {
        match file.read(&mut buf[start..]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    buf.truncate(start + *n.as_ref().unwrap_or(&0));
    n
}

fn in_block(block: &Block<'_>, e: TapError) -> String {
    format!("block {} (at byte {}): {e}", block.index, block.offset)
}

/// Damages block `index` of the recording at `path` inside: its zstandard frame's magic
/// number, so the framing around it still holds and only decompressing it fails.
#[cfg(test)]
pub(crate) fn damage_block(path: &Path, index: usize) {
    let block = Recording::open(path).unwrap().blocks()[index];
    let mut bytes = std::fs::read(path).unwrap();
    let range = block.offset as usize..(block.offset + block.len) as usize;
    let magic = bytes[range.clone()]
        .windows(4)
        .position(|w| w == [0x28, 0xb5, 0x2f, 0xfd])
        .unwrap();
    bytes[range.start + magic] ^= 0xff;
    std::fs::write(path, &bytes).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::{Direction, Endpoint, Http, Tls};

    const T0: i64 = 1_767_225_600_000_000;

    fn event(i: u64, time_us: i64) -> Event {
        Event {
            stream: i,
            kind: EventKind::ResponseEnd,
            time_us,
            proxy: "shop/orders".into(),
            direction: Direction::Inbound,
            source: Endpoint {
                addr: format!("10.0.0.{}:4143", i % 250),
                ..Endpoint::default()
            },
            destination: Endpoint::default(),
            tls: Tls::default(),
            http: Some(Http {
                method: "GET".into(),
                path: format!("/orders/{i}"),
                status: Some(200),
                latency_us: Some(i),
                ..Http::default()
            }),
            tcp: None,
            decision: None,
            avro: Vec::new(),
            lost: 0,
        }
    }

    /// Events 10 ms apart, flushed every `per_block`.
    fn record(path: &Path, n: u64, per_block: u64) -> Vec<Event> {
        let mut r = Recorder::create(path, false).unwrap();
        let events: Vec<Event> = (0..n).map(|i| event(i, T0 + i as i64 * 10_000)).collect();
        for (i, e) in events.iter().enumerate() {
            r.push(e).unwrap();
            if (i as u64 + 1).is_multiple_of(per_block) {
                r.flush().unwrap();
            }
        }
        r.finish().unwrap();
        events
    }

    fn all(r: &mut Recording) -> Vec<Event> {
        r.events_from(i64::MIN).unwrap()
    }

    #[test]
    fn a_recording_round_trips_with_its_stats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let mut r = Recorder::create(&path, false).unwrap();
        let mut events: Vec<Event> = (0..600).map(|i| event(i, T0 + i as i64)).collect();
        events[3] = Event::lost(17, T0 + 3);
        for e in &events {
            r.push(e).unwrap();
        }
        let stats = r.finish().unwrap();
        assert_eq!(
            (stats.events, stats.blocks, stats.lost),
            (600, 3, 17),
            "two full blocks of {FLUSH_EVENTS}, then the rest"
        );
        assert_eq!(stats.bytes, std::fs::metadata(&path).unwrap().len());
        let mut rec = Recording::open(&path).unwrap();
        assert_eq!(rec.blocks().len(), 3);
        assert_eq!(rec.blocks()[0].events, FLUSH_EVENTS);
        assert_eq!((rec.events(), rec.ignored_bytes()), (600, 0));
        assert_eq!(rec.span().unwrap(), Some((T0, T0 + 599)));
        assert_eq!(all(&mut rec), events);
        assert!(
            !dir.path().read_dir().unwrap().any(|f| f
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".partial")),
            "the temporary header file is gone"
        );
    }

    #[test]
    fn a_header_only_recording_has_no_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let r = Recorder::create(&path, false).unwrap();
        assert_eq!(r.flush_deadline(), None);
        r.finish().unwrap();
        let mut rec = Recording::open(&path).unwrap();
        assert_eq!(
            (rec.events(), rec.span().unwrap(), rec.block_at(0).unwrap()),
            (0, None, None)
        );
        assert!(all(&mut rec).is_empty());
    }

    #[test]
    fn pending_events_are_written_once_the_interval_passed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let mut r = Recorder::create(&path, false).unwrap();
        r.push(&event(1, T0)).unwrap();
        let due = r.flush_deadline().unwrap();
        r.flush_due(due - Duration::from_millis(1)).unwrap();
        assert_eq!(r.stats().blocks, 0);
        r.flush_due(due).unwrap();
        assert_eq!(r.stats().blocks, 1);
        assert_eq!(r.flush_deadline(), None);
        // Not finished: what was flushed is on disk already.
        assert_eq!(Recording::open(&path).unwrap().events(), 1);
    }

    #[test]
    fn an_existing_file_is_kept_unless_overwriting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        std::fs::write(&path, "precious").unwrap();
        let err = Recorder::create(&path, false).err().unwrap();
        assert!(matches!(err, RecordingError::Exists { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
        Recorder::create(&path, true).unwrap().finish().unwrap();
        assert_eq!(Recording::open(&path).unwrap().events(), 0);
        assert_eq!(dir.path().read_dir().unwrap().count(), 1);
    }

    #[test]
    fn a_file_cut_anywhere_in_its_last_block_reads_the_complete_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let events = record(&path, 30, 10);
        let bytes = std::fs::read(&path).unwrap();
        let last = *Recording::open(&path).unwrap().blocks().last().unwrap();
        assert_eq!(last.offset + last.len, bytes.len() as u64);
        let cut = dir.path().join("cut.avro");
        for len in last.offset..bytes.len() as u64 {
            std::fs::write(&cut, &bytes[..len as usize]).unwrap();
            let mut rec = Recording::open(&cut).unwrap_or_else(|e| panic!("cut at {len}: {e}"));
            assert_eq!(rec.ignored_bytes(), len - last.offset, "cut at {len}");
            assert_eq!(all(&mut rec), events[..20], "cut at {len}");
        }
    }

    #[test]
    fn a_file_cut_inside_its_header_is_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        record(&path, 3, 3);
        let first = Recording::open(&path).unwrap().blocks()[0].offset as usize;
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.avro");
        for len in (0..first).step_by(7).chain([first - 1]) {
            std::fs::write(&cut, &bytes[..len]).unwrap();
            let err = Recording::open(&cut).err().unwrap().to_string();
            assert!(
                err.contains("ends inside its Avro header"),
                "cut at {len}: {err}"
            );
        }
    }

    #[test]
    fn seeking_skips_whole_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let mut r = Recorder::create(&path, false).unwrap();
        // Three blocks; the second has an event out of time order, as a merged stream does.
        let times = [[0, 10, 20], [30, 25, 40], [50, 60, 70]];
        let mut events = Vec::new();
        for (b, block) in times.iter().enumerate() {
            for (i, t) in block.iter().enumerate() {
                let e = event((b * 3 + i) as u64, T0 + t);
                r.push(&e).unwrap();
                events.push(e);
            }
            r.flush().unwrap();
        }
        r.finish().unwrap();
        let mut rec = Recording::open(&path).unwrap();
        assert_eq!(
            rec.times(1).unwrap(),
            BlockTimes {
                first_us: T0 + 30,
                last_us: T0 + 40,
                min_us: T0 + 25,
                max_us: T0 + 40
            }
        );
        let mut at = |t| rec.block_at(t).unwrap();
        assert_eq!(at(T0 - 5), Some(0));
        assert_eq!(at(T0 + 21), Some(1));
        assert_eq!(at(T0 + 40), Some(1));
        assert_eq!(at(T0 + 41), Some(2));
        assert_eq!(at(T0 + 71), None);
        assert_eq!(rec.events_from(T0 + 21).unwrap(), events[3..]);
        assert_eq!(rec.events_from(T0 + 35).unwrap(), events[5..]);
        assert_eq!(rec.events_from(T0 + 60).unwrap(), events[7..]);
        assert!(rec.events_from(T0 + 71).unwrap().is_empty());
        assert_eq!(rec.read_block(2).unwrap(), events[6..]);
        assert!(rec.read_block(3).is_err());
    }

    #[test]
    fn opening_reads_no_block_and_reading_learns_the_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let events = record(&path, 95, 10);
        let mut rec = Recording::open(&path).unwrap();
        assert_eq!((rec.blocks().len(), rec.events()), (10, 95));
        assert_eq!(rec.timed_blocks(), 0, "open decompresses nothing");
        let mut batch = Batch::default();
        let mut read = Vec::new();
        for i in 0..rec.blocks().len() {
            rec.read_batch(i, &mut batch).unwrap();
            assert_eq!(batch.block(), i);
            read.extend(batch.events().iter().cloned());
        }
        assert_eq!(read, events);
        assert_eq!(rec.timed_blocks(), 10, "a straight read indexes as it goes");
        let mut eager = Recording::open(&path).unwrap();
        let span = eager.span().unwrap();
        assert_eq!(span, Some((T0, T0 + 94 * 10_000)));
        assert_eq!(rec.span().unwrap(), span);
        for i in 0..10 {
            assert_eq!(rec.times(i).unwrap(), eager.times(i).unwrap(), "block {i}");
        }
    }

    #[test]
    fn seeking_after_part_of_a_read_finds_what_an_eager_index_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let mut r = Recorder::create(&path, false).unwrap();
        // Roughly in time order, as a merged stream: each block reaches back a little.
        let mut events = Vec::new();
        for i in 0..60u64 {
            let jitter = if i % 10 == 0 { -15 } else { 0 };
            let e = event(i, T0 + i as i64 * 10 + jitter);
            r.push(&e).unwrap();
            events.push(e);
            if i % 10 == 9 {
                r.flush().unwrap();
            }
        }
        r.finish().unwrap();
        let mut eager = Recording::open(&path).unwrap();
        eager.span().unwrap();
        for read_first in [0, 1, 3, 6] {
            for t in (-20..620).step_by(7).map(|d| T0 + d) {
                let mut lazy = Recording::open(&path).unwrap();
                for i in 0..read_first {
                    lazy.for_each_in_block(i, |_, _| {}).unwrap();
                }
                assert_eq!(lazy.timed_blocks(), read_first);
                assert_eq!(
                    lazy.events_from(t).unwrap(),
                    eager.events_from(t).unwrap(),
                    "{read_first} blocks read, then a seek to {t}"
                );
            }
        }
        // Block 1 is the first to reach 95; its first event (85) is older and skipped.
        assert_eq!(eager.events_from(T0 + 95).unwrap(), events[11..]);
    }

    #[test]
    fn a_block_damaged_inside_is_an_error_when_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        record(&path, 30, 10);
        damage_block(&path, 1);
        let mut rec = Recording::open(&path).unwrap();
        assert_eq!(rec.read_block(0).unwrap().len(), 10);
        let err = rec.read_block(1).err().unwrap().to_string();
        assert!(err.contains("block 1 at byte"), "{err}");
        let err = rec.span().err().unwrap().to_string();
        assert!(err.contains("block 1 at byte"), "{err}");
    }

    #[test]
    fn bad_files_are_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.avro");
        let missing = Recording::open(&path).err().unwrap().to_string();
        assert!(
            missing.starts_with(&path.display().to_string()),
            "{missing}"
        );

        std::fs::write(&path, "time,event\n1,x\n").unwrap();
        let err = Recording::open(&path).err().unwrap().to_string();
        assert!(err.contains("not a recording"), "{err}");

        let other = ContainerWriter::new(
            r#"{"type":"record","name":"x","fields":[{"name":"a","type":"string"}]}"#,
            Codec::Null,
        )
        .unwrap();
        let mut bytes = other.header();
        bytes.extend(other.block(&[2, b'a'], 1).unwrap());
        std::fs::write(&path, bytes).unwrap();
        let err = Recording::open(&path).err().unwrap().to_string();
        assert!(err.contains("not tap events"), "{err}");

        std::fs::remove_file(&path).unwrap();
        record(&path, 20, 10);
        let first = Recording::open(&path).unwrap().blocks()[0];
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[(first.offset + first.len) as usize - 1] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Recording::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("block 0") && err.contains("sync marker"),
            "{err}"
        );
    }
}
