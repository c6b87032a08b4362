//! Object container files: the header (metadata with the writer schema, codec, sync marker)
//! and data blocks in every codec of the specification — null, deflate, snappy, zstandard,
//! bzip2 and xz. Decompression is bounded, sync markers are checked, and a damaged block is
//! reported with its number and byte offset.

use std::borrow::Cow;
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

fn decompress(codec: Codec, data: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    Ok(match codec {
        Codec::Null => Cow::Borrowed(data),
        Codec::Deflate => Cow::Owned(read_bounded(
            flate2::read::DeflateDecoder::new(data),
            "deflate",
        )?),
        Codec::Zstandard => {
            let decoder =
                zstd::stream::read::Decoder::new(data).map_err(|e| format!("zstandard: {e}"))?;
            Cow::Owned(read_bounded(decoder, "zstandard")?)
        }
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
}
