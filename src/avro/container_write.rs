//! Writing object container files, in two shapes for the two ways meshlens ships them:
//! [`ContainerWriter`] turns a header and each block into bytes, for a tap stream that sends
//! the header once and then a block per message; [`ContainerFile`] writes the same bytes to
//! any `io::Write`, for recordings. Every flushed block is complete on its own, so a
//! recording whose process was killed still reads up to its last flush
//! ([`Container::open_complete`](super::Container::open_complete)).

use std::io::Write;
use std::sync::Arc;

use super::container::Codec;
use super::encode::{encode, write_bytes, write_long};
use super::error::AvroError;
use super::framing::CONTAINER_MAGIC;
use super::schema::Schema;
use super::value::Value;

/// Uncompressed bytes a [`ContainerFile`] gathers before it writes a block by itself: big
/// enough for compression to pay, small enough to lose little when a process dies.
pub const BLOCK_BYTES: usize = 64 << 10;

/// The header and block bytes of one container file.
#[derive(Debug, Clone)]
pub struct ContainerWriter {
    schema: Arc<Schema>,
    schema_json: String,
    codec: Codec,
    sync: [u8; 16],
}

impl ContainerWriter {
    /// A writer for datums of `schema_json`, with a fresh random sync marker (random so that
    /// it practically never occurs inside the data, which is what lets readers resynchronise).
    pub fn new(schema_json: &str, codec: Codec) -> Result<ContainerWriter, AvroError> {
        let schema = Arc::new(Schema::parse(schema_json)?);
        let mut sync = [0u8; 16];
        getrandom::fill(&mut sync)
            .map_err(|e| AvroError::Container(format!("no randomness for the sync marker: {e}")))?;
        Ok(ContainerWriter {
            schema,
            schema_json: schema_json.to_string(),
            codec,
            sync,
        })
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Magic, metadata (`avro.schema`, `avro.codec`) and sync marker: what precedes the blocks.
    pub fn header(&self) -> Vec<u8> {
        let mut out = CONTAINER_MAGIC.to_vec();
        write_long(&mut out, 2);
        for (key, value) in [
            ("avro.schema", self.schema_json.as_bytes()),
            ("avro.codec", self.codec.name().as_bytes()),
        ] {
            write_bytes(&mut out, key.as_bytes());
            write_bytes(&mut out, value);
        }
        out.push(0);
        out.extend_from_slice(&self.sync);
        out
    }

    /// One block: `count` datums already encoded with this writer's schema and laid end to
    /// end in `datums`, compressed with the codec and framed with the sync marker.
    pub fn block(&self, datums: &[u8], count: u64) -> Result<Vec<u8>, AvroError> {
        let data = compress(self.codec, datums).map_err(|e| {
            AvroError::Container(format!(
                "compressing a block with {}: {e}",
                self.codec.name()
            ))
        })?;
        let mut out = Vec::with_capacity(data.len() + 36);
        write_long(&mut out, i64::try_from(count).unwrap_or(i64::MAX));
        write_long(&mut out, data.len() as i64);
        out.extend_from_slice(&data);
        out.extend_from_slice(&self.sync);
        Ok(out)
    }
}

fn compress(codec: Codec, data: &[u8]) -> std::io::Result<Vec<u8>> {
    fn through<W: Write>(
        mut w: W,
        data: &[u8],
        finish: impl FnOnce(W) -> std::io::Result<Vec<u8>>,
    ) -> std::io::Result<Vec<u8>> {
        w.write_all(data)?;
        finish(w)
    }
    Ok(match codec {
        Codec::Null => data.to_vec(),
        Codec::Deflate => through(
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default()),
            data,
            |w| w.finish(),
        )?,
        Codec::Zstandard => zstd::bulk::compress(data, 0)?,
        Codec::Bzip2 => through(
            bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default()),
            data,
            |w| w.finish(),
        )?,
        Codec::Xz => through(liblzma::write::XzEncoder::new(Vec::new(), 6), data, |w| {
            w.finish()
        })?,
        Codec::Snappy => {
            let mut out = snap::raw::Encoder::new()
                .compress_vec(data)
                .map_err(std::io::Error::other)?;
            out.extend_from_slice(&crc32fast::hash(data).to_be_bytes());
            out
        }
    })
}

/// A container file being written to `W`: the header on creation, then a block whenever
/// [`BLOCK_BYTES`] have gathered or [`flush_block`](Self::flush_block) is called. Call
/// [`finish`](Self::finish) at the end: datums not yet in a block are not written on drop.
pub struct ContainerFile<W: Write> {
    inner: W,
    writer: ContainerWriter,
    pending: Vec<u8>,
    count: u64,
}

impl<W: Write> ContainerFile<W> {
    /// Writes the header to `inner`.
    pub fn new(mut inner: W, writer: ContainerWriter) -> Result<ContainerFile<W>, AvroError> {
        inner.write_all(&writer.header())?;
        Ok(ContainerFile {
            inner,
            writer,
            pending: Vec::new(),
            count: 0,
        })
    }

    /// Encodes `value` with the file's schema; a value that does not fit is refused and
    /// leaves the file as it was.
    pub fn append(&mut self, value: &Value) -> Result<(), AvroError> {
        encode(&self.writer.schema, value, &mut self.pending)?;
        self.appended()
    }

    /// Appends a datum the caller already encoded with the file's schema (a fast path that
    /// skips building a [`Value`]; the bytes are not checked).
    pub fn append_encoded(&mut self, datum: &[u8]) -> Result<(), AvroError> {
        self.pending.extend_from_slice(datum);
        self.appended()
    }

    fn appended(&mut self) -> Result<(), AvroError> {
        self.count += 1;
        if self.pending.len() >= BLOCK_BYTES {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Writes the datums gathered so far as one block and flushes `W`, so that everything
    /// appended before this call survives the process being killed.
    pub fn flush_block(&mut self) -> Result<(), AvroError> {
        if self.count > 0 {
            let block = self.writer.block(&self.pending, self.count)?;
            self.inner.write_all(&block)?;
            self.pending.clear();
            self.count = 0;
        }
        self.inner.flush()?;
        Ok(())
    }

    /// Writes the last block and hands back the destination.
    pub fn finish(mut self) -> Result<W, AvroError> {
        self.flush_block()?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::{Container, Decoder};

    const SCHEMA: &str = r#"{"type":"record","name":"r","fields":[
        {"name":"n","type":"long"},{"name":"s","type":"string"}]}"#;

    fn value(n: i64) -> Value {
        Value::Record(vec![
            Value::Long(n),
            Value::String(format!("record number {n} with some text to compress")),
        ])
    }

    fn read_all(bytes: &[u8]) -> Result<(Vec<Value>, usize), AvroError> {
        let (c, cut) = Container::open_complete(bytes)?;
        let d = Decoder::new(c.schema().clone(), c.schema().clone());
        let mut out = Vec::new();
        for block in c.blocks() {
            out.extend(c.records(&d, &block?)?);
        }
        Ok((out, cut))
    }

    #[test]
    fn every_codec_round_trips_through_our_reader() {
        for codec in [
            Codec::Null,
            Codec::Deflate,
            Codec::Snappy,
            Codec::Zstandard,
            Codec::Bzip2,
            Codec::Xz,
        ] {
            let mut f =
                ContainerFile::new(Vec::new(), ContainerWriter::new(SCHEMA, codec).unwrap())
                    .unwrap();
            for n in 0..10 {
                f.append(&value(n)).unwrap();
                if n % 4 == 3 {
                    f.flush_block().unwrap();
                }
            }
            let bytes = f.finish().unwrap();
            let c = Container::open(&bytes).unwrap();
            assert_eq!(c.codec(), codec);
            assert_eq!(c.blocks().count(), 3, "{codec:?}");
            let (values, cut) = read_all(&bytes).unwrap();
            assert_eq!(values, (0..10).map(value).collect::<Vec<_>>(), "{codec:?}");
            assert_eq!(cut, 0);
        }
    }

    #[test]
    fn header_then_blocks_as_separate_messages_make_a_file() {
        let w = ContainerWriter::new(SCHEMA, Codec::Deflate).unwrap();
        let mut stream = w.header();
        for chunk in [0..3, 3..4] {
            let mut datums = Vec::new();
            for n in chunk.clone() {
                encode(w.schema(), &value(n), &mut datums).unwrap();
            }
            stream.extend(w.block(&datums, chunk.count() as u64).unwrap());
        }
        let (values, _) = read_all(&stream).unwrap();
        assert_eq!(values, (0..4).map(value).collect::<Vec<_>>());
    }

    #[test]
    fn big_appends_write_blocks_by_themselves() {
        let mut f = ContainerFile::new(
            Vec::new(),
            ContainerWriter::new(SCHEMA, Codec::Null).unwrap(),
        )
        .unwrap();
        for n in 0..3000 {
            f.append(&value(n)).unwrap();
        }
        let bytes = f.finish().unwrap();
        let c = Container::open(&bytes).unwrap();
        assert!(c.blocks().count() > 1);
        assert_eq!(read_all(&bytes).unwrap().0.len(), 3000);
    }

    #[test]
    fn sync_markers_differ_between_writers() {
        let a = ContainerWriter::new(SCHEMA, Codec::Null).unwrap().header();
        let b = ContainerWriter::new(SCHEMA, Codec::Null).unwrap().header();
        assert_eq!(a.len(), b.len());
        assert_ne!(a[a.len() - 16..], b[b.len() - 16..]);
    }

    #[test]
    fn a_value_that_does_not_fit_is_refused_and_the_file_stays_valid() {
        let mut f = ContainerFile::new(
            Vec::new(),
            ContainerWriter::new(SCHEMA, Codec::Null).unwrap(),
        )
        .unwrap();
        f.append(&value(1)).unwrap();
        let err = f
            .append(&Value::Record(vec![
                Value::Int(1),
                Value::String("x".into()),
            ]))
            .unwrap_err();
        assert!(err.to_string().contains("(in .n)"), "{err}");
        f.append(&value(2)).unwrap();
        let (values, _) = read_all(&f.finish().unwrap()).unwrap();
        assert_eq!(values, vec![value(1), value(2)]);
    }

    #[test]
    fn a_file_cut_anywhere_in_a_block_reads_up_to_the_last_complete_block() {
        let mut f = ContainerFile::new(
            Vec::new(),
            ContainerWriter::new(SCHEMA, Codec::Deflate).unwrap(),
        )
        .unwrap();
        let mut ends = Vec::new();
        for n in 0..6 {
            f.append(&value(n)).unwrap();
            if n % 2 == 1 {
                f.flush_block().unwrap();
                ends.push(f.inner.len());
            }
        }
        let bytes = f.finish().unwrap();
        let header = ContainerWriter::new(SCHEMA, Codec::Deflate)
            .unwrap()
            .header()
            .len();
        for len in header..=bytes.len() {
            let complete = ends.iter().filter(|e| **e <= len).count();
            let start = if complete == 0 {
                header
            } else {
                ends[complete - 1]
            };
            let (values, cut) = read_all(&bytes[..len]).unwrap();
            assert_eq!(values.len(), 2 * complete, "cut at {len}");
            assert_eq!(cut, len - start, "cut at {len}");
        }
        let err = Container::open(&bytes[..bytes.len() - 3])
            .unwrap()
            .blocks()
            .find_map(Result::err)
            .unwrap();
        assert!(err.to_string().contains("block 2"), "{err}");
        let mut damaged = bytes[..bytes.len() - 3].to_vec();
        damaged[ends[0] - 1] ^= 1;
        let err = read_all(&damaged).unwrap_err().to_string();
        assert!(
            err.contains("block 0") && err.contains("sync marker"),
            "{err}"
        );
    }
}
