//! Object container files: the header (metadata with the writer schema, codec, sync marker)
//! and data blocks in every codec of the specification — null, deflate, snappy, zstandard,
//! bzip2 and xz. Decompression is bounded, sync markers are checked, and a damaged block is
//! reported with its number and byte offset.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::Read;
use std::sync::Arc;

use super::decode::{Cursor, Decoder, Limits};
use super::error::AvroError;
use super::framing::CONTAINER_MAGIC;
use super::schema::Schema;
use super::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Null,
    Deflate,
    Snappy,
    Zstandard,
    Bzip2,
    Xz,
}

impl Codec {
    fn from_name(name: &str) -> Result<Codec, AvroError> {
        Ok(match name {
            "null" => Codec::Null,
            "deflate" => Codec::Deflate,
            "snappy" => Codec::Snappy,
            "zstandard" => Codec::Zstandard,
            "bzip2" => Codec::Bzip2,
            "xz" => Codec::Xz,
            other => {
                return Err(AvroError::Container(format!(
                    "unsupported codec \"{other}\""
                )));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Null => "null",
            Codec::Deflate => "deflate",
            Codec::Snappy => "snappy",
            Codec::Zstandard => "zstandard",
            Codec::Bzip2 => "bzip2",
            Codec::Xz => "xz",
        }
    }
}

/// Largest decompressed block accepted, so a small hostile block cannot expand without bound.
pub const MAX_BLOCK_BYTES: usize = 256 << 20;

/// A parsed container file header over the file's bytes.
pub struct Container<'a> {
    schema: Arc<Schema>,
    codec: Codec,
    metadata: Vec<(String, Vec<u8>)>,
    sync: [u8; 16],
    bytes: &'a [u8],
    /// Offset of the first data block.
    data_start: usize,
}

/// One data block, decompressed.
pub struct Block<'a> {
    /// 0-based block number.
    pub index: usize,
    /// File offset of the block's header.
    pub offset: usize,
    pub count: u64,
    pub data: Cow<'a, [u8]>,
}

fn damaged(what: impl Into<String>) -> AvroError {
    AvroError::Container(what.into())
}

impl<'a> Container<'a> {
    pub fn open(bytes: &'a [u8]) -> Result<Container<'a>, AvroError> {
        if !bytes.starts_with(&CONTAINER_MAGIC) {
            return Err(damaged("does not start with the magic bytes Obj\\x01"));
        }
        let limits = Limits::default();
        let mut c = Cursor::new(&bytes[4..], &limits);
        let mut metadata = Vec::new();
        loop {
            let at = 4 + c.position();
            let count = c
                .long()
                .map_err(|e| damaged(format!("header: {}", e.shifted(4))))?;
            if count == 0 {
                break;
            }
            if count < 0 {
                c.long()
                    .map_err(|e| damaged(format!("header: {}", e.shifted(4))))?;
            }
            if count.unsigned_abs() > 10_000 {
                return Err(damaged(format!(
                    "header at byte {at}: {count} metadata entries is implausible"
                )));
            }
            for _ in 0..count.unsigned_abs() {
                let key = c
                    .bytes()
                    .map_err(|e| damaged(format!("header: {}", e.shifted(4))))?;
                let key = String::from_utf8(key.to_vec())
                    .map_err(|_| damaged("header: a metadata key is not UTF-8"))?;
                let value = c
                    .bytes()
                    .map_err(|e| damaged(format!("header: {}", e.shifted(4))))?;
                metadata.push((key, value.to_vec()));
            }
        }
        let sync: [u8; 16] = c
            .take(16)
            .map_err(|e| damaged(format!("header: sync marker: {}", e.shifted(4))))?
            .try_into()
            .map_err(|_| damaged("header: sync marker"))?;
        let get = |k: &str| {
            metadata
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_slice())
        };
        let schema_text = get("avro.schema").ok_or_else(|| damaged("header has no avro.schema"))?;
        let schema_text =
            std::str::from_utf8(schema_text).map_err(|_| damaged("avro.schema is not UTF-8"))?;
        let schema =
            Schema::parse(schema_text).map_err(|e| damaged(format!("avro.schema: {e}")))?;
        let codec = match get("avro.codec") {
            None => Codec::Null,
            Some(name) => Codec::from_name(std::str::from_utf8(name).unwrap_or("?"))?,
        };
        Ok(Container {
            schema: Arc::new(schema),
            codec,
            metadata,
            sync,
            bytes,
            data_start: 4 + c.position(),
        })
    }

    /// Opens a file that may end in the middle of a block, as a recording does when its
    /// writer was killed: the container covers the complete blocks only, and the second
    /// value is how many bytes after them were left out (0 for a whole file). Damage other
    /// than a missing end is still reported by [`blocks`](Self::blocks).
    pub fn open_complete(bytes: &'a [u8]) -> Result<(Container<'a>, usize), AvroError> {
        let mut container = Container::open(bytes)?;
        let end = container.complete_end();
        container.bytes = &bytes[..end];
        Ok((container, bytes.len() - end))
    }

    /// Where the last block whose framing fits in the bytes ends. Only the framing is
    /// checked here; a block that runs past the end is taken for a cut, anything else is
    /// left for `blocks` to report.
    fn complete_end(&self) -> usize {
        let limits = Limits::default();
        let mut pos = self.data_start;
        while pos < self.bytes.len() {
            let mut c = Cursor::new(&self.bytes[pos..], &limits);
            let size = match c.long().and_then(|_| c.long()) {
                Ok(size) => size,
                Err(_) if c.is_empty() => return pos,
                Err(_) => break,
            };
            let Ok(size) = usize::try_from(size) else {
                break;
            };
            match (pos + c.position())
                .checked_add(size)
                .and_then(|e| e.checked_add(16))
            {
                Some(end) if end <= self.bytes.len() => pos = end,
                _ => return pos,
            }
        }
        self.bytes.len()
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// User metadata (keys not starting with `avro.`).
    pub fn user_metadata(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.metadata
            .iter()
            .filter(|(k, _)| !k.starts_with("avro."))
            .map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The data blocks in order; iteration stops after the first error.
    pub fn blocks(&self) -> Blocks<'_, 'a> {
        Blocks {
            container: self,
            pos: self.data_start,
            index: 0,
            failed: false,
        }
    }

    /// Decodes every record of a block with `decoder` (whose writer must be this file's schema).
    pub fn records(&self, decoder: &Decoder, block: &Block<'_>) -> Result<Vec<Value>, AvroError> {
        decode_records(decoder, block)
    }
}

pub struct Blocks<'c, 'a> {
    container: &'c Container<'a>,
    pos: usize,
    index: usize,
    failed: bool,
}

impl<'a> Iterator for Blocks<'_, 'a> {
    type Item = Result<Block<'a>, AvroError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.container.bytes.len() {
            return None;
        }
        let result = self.read_block();
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}

impl<'a> Blocks<'_, 'a> {
    fn read_block(&mut self) -> Result<Block<'a>, AvroError> {
        let bytes = self.container.bytes;
        let offset = self.pos;
        let index = self.index;
        let limits = Limits::default();
        let mut c = Cursor::new(&bytes[offset..], &limits);
        let here =
            |e: super::error::DecodeError| damaged(format!("block {index}: {}", e.shifted(offset)));
        let count = c.long().map_err(here)?;
        let size = c.long().map_err(here)?;
        let count = u64::try_from(count).map_err(|_| {
            damaged(format!(
                "block {index} at byte {offset}: negative record count {count}"
            ))
        })?;
        if count > limits.max_items {
            return Err(damaged(format!(
                "block {index} at byte {offset}: {count} records is more than the limit of {}",
                limits.max_items
            )));
        }
        let size = usize::try_from(size).map_err(|_| {
            damaged(format!(
                "block {index} at byte {offset}: negative size {size}"
            ))
        })?;
        let data = c
            .take(size)
            .map_err(|e| damaged(format!("block {index} is truncated: {}", e.shifted(offset))))?;
        let sync = c.take(16).map_err(|_| {
            damaged(format!(
                "block {index} at byte {offset}: file ends before the sync marker"
            ))
        })?;
        if sync != self.container.sync {
            return Err(damaged(format!(
                "block {index} at byte {offset}: sync marker does not match the header (the file is damaged)"
            )));
        }
        self.pos = offset + c.position();
        self.index += 1;
        let data = decompress(self.container.codec, data)
            .map_err(|e| damaged(format!("block {index} at byte {offset}: {e}")))?;
        Ok(Block {
            index,
            offset,
            count,
            data,
        })
    }
}

/// Where a block's parts lie, as [`StreamReader::frame`] found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// 0-based block number.
    pub index: usize,
    /// Stream offset of the block's header.
    pub offset: usize,
    pub count: u64,
    /// Where its (compressed) data lies in the bytes given to `frame`.
    pub data: std::ops::Range<usize>,
}

/// Reading a container as it arrives, as a tap client does: the header once it is whole,
/// then each block once its bytes are all there. Nothing is read ahead of a block, so a
/// caller can hand over whatever the socket gave and keep the rest for later. Every block is
/// bounded by `max_block` (compressed and expanded), so a hostile stream cannot make the
/// reader buffer without end.
pub struct StreamReader {
    schema: Arc<Schema>,
    codec: Codec,
    sync: [u8; 16],
    max_block: usize,
    index: usize,
    /// Stream offset of the next block, for error messages.
    offset: usize,
}

impl StreamReader {
    /// Parses the header at the start of `bytes`: `Ok(None)` while it is not all there yet,
    /// else the reader and the header's length. `max_header` bounds how long that may take.
    pub fn header(
        bytes: &[u8],
        max_header: usize,
        max_block: usize,
    ) -> Result<Option<(StreamReader, usize)>, AvroError> {
        let magic = &CONTAINER_MAGIC[..bytes.len().min(4)];
        if !bytes.starts_with(magic) {
            return Err(damaged("does not start with the magic bytes Obj\\x01"));
        }
        let Some(len) = header_len(bytes)? else {
            if bytes.len() > max_header {
                return Err(damaged(format!(
                    "header: longer than the limit of {max_header} bytes"
                )));
            }
            return Ok(None);
        };
        let c = Container::open(&bytes[..len])?;
        Ok(Some((
            StreamReader {
                schema: c.schema,
                codec: c.codec,
                sync: c.sync,
                max_block,
                index: 0,
                offset: len,
            },
            len,
        )))
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The block at the start of `bytes`, decompressed, and how many bytes it took:
    /// `Ok(None)` while it is not all there yet.
    pub fn block(&mut self, bytes: &[u8]) -> Result<Option<(Block<'static>, usize)>, AvroError> {
        let Some((frame, used)) = self.frame(bytes)? else {
            return Ok(None);
        };
        let (index, offset) = (frame.index, frame.offset);
        let data = decompress(self.codec, &bytes[frame.data])
            .map_err(|e| damaged(format!("block {index} at byte {offset}: {e}")))?;
        if data.len() > self.max_block {
            return Err(damaged(format!(
                "block {index} at byte {offset}: expands to {} bytes, over the limit of {}",
                data.len(),
                self.max_block
            )));
        }
        Ok(Some((
            Block {
                index,
                offset,
                count: frame.count,
                data: Cow::Owned(data.into_owned()),
            },
            used,
        )))
    }

    /// The framing of the block at the start of `bytes` (its count, where its data lies,
    /// its sync marker checked) without decompressing it, and how many bytes it took:
    /// `Ok(None)` while it is not all there yet. What a reader that indexes a file uses to
    /// step over blocks.
    pub fn frame(&mut self, bytes: &[u8]) -> Result<Option<(Frame, usize)>, AvroError> {
        let (index, offset) = (self.index, self.offset);
        let limits = Limits::default();
        let mut c = Cursor::new(bytes, &limits);
        let here =
            |e: super::error::DecodeError| damaged(format!("block {index}: {}", e.shifted(offset)));
        let (count, size) = match c.long().and_then(|count| Ok((count, c.long()?))) {
            Ok(v) => v,
            Err(e) if e.end_of_input => return Ok(None),
            Err(e) => return Err(here(e)),
        };
        let count = u64::try_from(count)
            .ok()
            .filter(|n| *n <= limits.max_items)
            .ok_or_else(|| {
                damaged(format!(
                    "block {index} at byte {offset}: record count {count} is out of range"
                ))
            })?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= self.max_block)
            .ok_or_else(|| {
                damaged(format!(
                    "block {index} at byte {offset}: size {size} is over the limit of {} bytes",
                    self.max_block
                ))
            })?;
        let start = c.position();
        let Some(end) = start.checked_add(size).and_then(|e| e.checked_add(16)) else {
            return Err(damaged(format!(
                "block {index} at byte {offset}: size overflows"
            )));
        };
        if bytes.len() < end {
            return Ok(None);
        }
        if bytes[end - 16..end] != self.sync {
            return Err(damaged(format!(
                "block {index} at byte {offset}: sync marker does not match the header (the stream is damaged)"
            )));
        }
        self.index += 1;
        self.offset += end;
        Ok(Some((
            Frame {
                index,
                offset,
                count,
                data: start..start + size,
            },
            end,
        )))
    }

    /// Decodes every record of a block with `decoder` (whose writer must be this schema).
    pub fn records(&self, decoder: &Decoder, block: &Block<'_>) -> Result<Vec<Value>, AvroError> {
        decode_records(decoder, block)
    }
}

/// The length of the header at the start of `bytes`, `None` if it is cut short.
fn header_len(bytes: &[u8]) -> Result<Option<usize>, AvroError> {
    if bytes.len() < 4 {
        return Ok(None);
    }
    let limits = Limits::default();
    let mut c = Cursor::new(&bytes[4..], &limits);
    let walk = |c: &mut Cursor<'_>| -> Result<(), super::error::DecodeError> {
        loop {
            let count = c.long()?;
            if count == 0 {
                break;
            }
            if count < 0 {
                c.long()?;
            }
            for _ in 0..count.unsigned_abs().min(10_001) {
                c.bytes()?;
                c.bytes()?;
            }
        }
        c.take(16)?;
        Ok(())
    };
    match walk(&mut c) {
        Ok(()) => Ok(Some(4 + c.position())),
        Err(e) if e.end_of_input => Ok(None),
        Err(e) => Err(damaged(format!("header: {}", e.shifted(4)))),
    }
}

fn decode_records(decoder: &Decoder, block: &Block<'_>) -> Result<Vec<Value>, AvroError> {
    let limits = Limits::default();
    let mut c = Cursor::new(&block.data, &limits);
    let mut out = Vec::new();
    for i in 0..block.count {
        let v = decoder.decode_next(&mut c).map_err(|e| {
            damaged(format!(
                "block {} (at byte {}), record {i}: {e}",
                block.index, block.offset
            ))
        })?;
        out.push(v);
    }
    if !c.is_empty() {
        return Err(damaged(format!(
            "block {} (at byte {}) has {} bytes left after its {} records",
            block.index,
            block.offset,
            block.data.len() - c.position(),
            block.count
        )));
    }
    Ok(out)
}

fn read_bounded(mut r: impl Read, codec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    r.by_ref()
        .take(MAX_BLOCK_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{codec} data is corrupt: {e}"))?;
    if out.len() > MAX_BLOCK_BYTES {
        return Err(format!(
            "{codec} block expands beyond {MAX_BLOCK_BYTES} bytes"
        ));
    }
    Ok(out)
}

/// A zstandard block whose frame states its size (ours, and most one-shot writers) is
/// decompressed in one call on a context kept per thread: creating a context for each block
/// was a quarter of replaying a recording (benches/replay). Anything else — a streamed frame
/// without a size, several frames — takes the streaming path.
fn zstd_block(data: &[u8]) -> Result<Vec<u8>, String> {
    thread_local! {
        static CONTEXT: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { RefCell::new(None) };
    }
    let size = zstd::zstd_safe::get_frame_content_size(data)
        .ok()
        .flatten()
        .filter(|&size| size <= MAX_BLOCK_BYTES as u64);
    if let Some(size) = size {
        let one_shot = CONTEXT.with(|context| {
            let mut context = context.borrow_mut();
            if context.is_none() {
                *context = zstd::bulk::Decompressor::new().ok();
            }
            context.as_mut()?.decompress(data, size as usize).ok()
        });
        if let Some(out) = one_shot.filter(|out| out.len() as u64 == size) {
            return Ok(out);
        }
    }
    let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| format!("zstandard: {e}"))?;
    read_bounded(decoder, "zstandard")
}

fn decompress(codec: Codec, data: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    Ok(match codec {
        Codec::Null => Cow::Borrowed(data),
        Codec::Deflate => Cow::Owned(read_bounded(
            flate2::read::DeflateDecoder::new(data),
            "deflate",
        )?),
        Codec::Zstandard => Cow::Owned(zstd_block(data)?),
        Codec::Bzip2 => Cow::Owned(read_bounded(bzip2::read::BzDecoder::new(data), "bzip2")?),
        Codec::Xz => Cow::Owned(read_bounded(liblzma::read::XzDecoder::new(data), "xz")?),
        Codec::Snappy => {
            // Snappy blocks end with a big-endian CRC-32 of the uncompressed bytes.
            let (body, crc) = data
                .split_last_chunk::<4>()
                .ok_or("snappy block is shorter than its checksum")?;
            let len = snap::raw::decompress_len(body).map_err(|e| format!("snappy: {e}"))?;
            if len > MAX_BLOCK_BYTES {
                return Err(format!(
                    "snappy block expands beyond {MAX_BLOCK_BYTES} bytes"
                ));
            }
            let out = snap::raw::Decoder::new()
                .decompress_vec(body)
                .map_err(|e| format!("snappy data is corrupt: {e}"))?;
            if crc32fast::hash(&out) != u32::from_be_bytes(*crc) {
                return Err("snappy block fails its CRC-32 check".into());
            }
            Cow::Owned(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zigzag(v: i64, out: &mut Vec<u8>) {
        let mut n = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn file(codec: &str, blocks: &[(i64, Vec<u8>)]) -> Vec<u8> {
        let mut f = CONTAINER_MAGIC.to_vec();
        zigzag(2, &mut f);
        for (k, v) in [("avro.schema", "\"long\""), ("avro.codec", codec)] {
            zigzag(k.len() as i64, &mut f);
            f.extend_from_slice(k.as_bytes());
            zigzag(v.len() as i64, &mut f);
            f.extend_from_slice(v.as_bytes());
        }
        f.push(0);
        f.extend_from_slice(&[7u8; 16]);
        for (count, data) in blocks {
            zigzag(*count, &mut f);
            zigzag(data.len() as i64, &mut f);
            f.extend_from_slice(data);
            f.extend_from_slice(&[7u8; 16]);
        }
        f
    }

    fn all_records(bytes: &[u8]) -> Result<Vec<Value>, AvroError> {
        let c = Container::open(bytes)?;
        let d = Decoder::new(c.schema().clone(), c.schema().clone());
        let mut out = Vec::new();
        for block in c.blocks() {
            out.extend(c.records(&d, &block?)?);
        }
        Ok(out)
    }

    #[test]
    fn reads_many_null_and_deflate_blocks() {
        let f = file("null", &[(2, vec![0x02, 0x04]), (1, vec![0x06])]);
        assert_eq!(
            all_records(&f).unwrap(),
            vec![Value::Long(1), Value::Long(2), Value::Long(3)]
        );
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &[0x02, 0x04]).unwrap();
        let f = file("deflate", &[(2, z.finish().unwrap())]);
        assert_eq!(
            all_records(&f).unwrap(),
            vec![Value::Long(1), Value::Long(2)]
        );
    }

    #[test]
    fn zstandard_reads_sized_streamed_and_concatenated_frames() {
        let longs = vec![Value::Long(1), Value::Long(2)];
        let sized = zstd::bulk::compress(&[0x02, 0x04], 0).unwrap();
        let mut streamed = zstd::stream::write::Encoder::new(Vec::new(), 0).unwrap();
        std::io::Write::write_all(&mut streamed, &[0x02, 0x04]).unwrap();
        let streamed = streamed.finish().unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&streamed).unwrap(),
            None
        );
        let two = [
            zstd::bulk::compress(&[0x02], 0).unwrap(),
            zstd::bulk::compress(&[0x04], 0).unwrap(),
        ]
        .concat();
        for data in [sized.clone(), streamed, two] {
            let f = file("zstandard", &[(2, data.clone()), (2, data)]);
            assert_eq!(
                all_records(&f).unwrap(),
                [longs.clone(), longs.clone()].concat()
            );
        }
        // A frame whose header claims more than it holds is corrupt, not a crash.
        let mut lying = sized;
        let last = lying.len() - 1;
        lying.truncate(last);
        let f = file("zstandard", &[(2, lying)]);
        let err = all_records(&f).unwrap_err().to_string();
        assert!(err.contains("zstandard"), "{err}");
    }

    #[test]
    fn snappy_checksum_is_verified() {
        let raw = [0x02u8, 0x04];
        let mut data = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        data.extend_from_slice(&crc32fast::hash(&raw).to_be_bytes());
        assert_eq!(
            all_records(&file("snappy", &[(2, data.clone())]))
                .unwrap()
                .len(),
            2
        );
        *data.last_mut().unwrap() ^= 1;
        let err = all_records(&file("snappy", &[(2, data)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CRC-32"), "{err}");
    }

    #[test]
    fn damage_is_reported_with_block_and_offset() {
        let mut f = file("null", &[(1, vec![0x02]), (1, vec![0x04])]);
        let last = f.len() - 1;
        f[last] = 0;
        let err = all_records(&f).unwrap_err().to_string();
        assert!(
            err.contains("block 1") && err.contains("sync marker"),
            "{err}"
        );
        let f = file("null", &[(3, vec![0x02])]);
        let err = all_records(&f).unwrap_err().to_string();
        assert!(err.contains("block 0") && err.contains("record 1"), "{err}");
        let err = all_records(&file("lz4", &[])).unwrap_err().to_string();
        assert!(err.contains("unsupported codec \"lz4\""), "{err}");
    }

    #[test]
    fn a_stream_reads_byte_by_byte_as_the_whole_file_does() {
        let f = file("null", &[(2, vec![0x02, 0x04]), (1, vec![0x06])]);
        let mut buf = Vec::new();
        let mut reader = None;
        let mut values = Vec::new();
        for byte in &f {
            buf.push(*byte);
            if reader.is_none() {
                if let Some((r, used)) = StreamReader::header(&buf, 1 << 20, 1 << 20).unwrap() {
                    buf.drain(..used);
                    reader = Some(r);
                }
                continue;
            }
            let r = reader.as_mut().unwrap();
            if let Some((block, used)) = r.block(&buf).unwrap() {
                buf.drain(..used);
                let d = Decoder::new(r.schema().clone(), r.schema().clone());
                values.extend(r.records(&d, &block).unwrap());
            }
        }
        assert!(buf.is_empty());
        assert_eq!(values, vec![Value::Long(1), Value::Long(2), Value::Long(3)]);
    }

    #[test]
    fn a_stream_refuses_big_blocks_bad_sync_and_bad_magic() {
        let f = file("null", &[(1, vec![0x02; 100])]);
        let (mut r, used) = StreamReader::header(&f, 1 << 20, 64).unwrap().unwrap();
        let err = r.block(&f[used..]).err().unwrap().to_string();
        assert!(
            err.contains("size 100 is over the limit of 64 bytes"),
            "{err}"
        );
        let mut f = file("null", &[(1, vec![0x02])]);
        let last = f.len() - 1;
        f[last] ^= 1;
        let (mut r, used) = StreamReader::header(&f, 1 << 20, 64).unwrap().unwrap();
        let err = r.block(&f[used..]).err().unwrap().to_string();
        assert!(err.contains("sync marker"), "{err}");
        assert!(StreamReader::header(b"Obx", 1 << 20, 64).is_err());
        assert!(StreamReader::header(b"Ob", 1 << 20, 64).unwrap().is_none());
        let err = StreamReader::header(&f[..40], 30, 64)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("longer than the limit of 30 bytes"), "{err}");
    }
}
