//! Binary decoding of untrusted bytes along a resolution [`Plan`].
//!
//! Every length is checked against the bytes that remain before anything is allocated, every
//! collection is charged against a per-message allocation budget, and nesting is bounded, so
//! a hostile or truncated payload yields a [`DecodeError`] naming the byte offset and the
//! path of the value — never a panic, an abort or an unbounded allocation.

use std::sync::Arc;

use super::error::DecodeError;
use super::resolve::{FieldOp, Plan, Step, StepId};
use super::schema::{Kind, NodeId, Schema};
use super::value::Value;

/// Bounds applied to every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of records, arrays, maps and unions.
    pub max_depth: u32,
    /// Bytes a single message may make the decoder allocate.
    pub max_allocation: usize,
    /// Items in one array or map.
    pub max_items: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 128,
            max_allocation: 64 << 20,
            max_items: 10_000_000,
        }
    }
}

/// Decodes datums written with one schema into values of another, resolved once.
#[derive(Debug, Clone)]
pub struct Decoder {
    writer: Arc<Schema>,
    reader: Arc<Schema>,
    plan: Plan,
    limits: Limits,
}

impl Decoder {
    /// A decoder that reads `writer` data as `reader` (pass the same schema for no resolution).
    pub fn new(writer: Arc<Schema>, reader: Arc<Schema>) -> Decoder {
        let plan = Plan::new(&writer, &reader);
        Decoder {
            writer,
            reader,
            plan,
            limits: Limits::default(),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Decoder {
        self.limits = limits;
        self
    }

    pub fn writer(&self) -> &Arc<Schema> {
        &self.writer
    }

    pub fn reader(&self) -> &Arc<Schema> {
        &self.reader
    }

    /// Decodes one datum that must span all of `bytes`.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, DecodeError> {
        let mut cursor = Cursor::new(bytes, &self.limits);
        let value = self.decode_next(&mut cursor)?;
        if cursor.pos != bytes.len() {
            return Err(DecodeError::new(
                cursor.pos,
                format!(
                    "{} unexpected bytes after the datum",
                    bytes.len() - cursor.pos
                ),
            ));
        }
        Ok(value)
    }

    /// Decodes the next datum from a cursor over a stream of datums (a container block),
    /// under this decoder's limits whatever the cursor was made with.
    pub fn decode_next(&self, cursor: &mut Cursor<'_>) -> Result<Value, DecodeError> {
        cursor.limits = self.limits;
        cursor.budget = self.limits.max_allocation;
        cursor.depth = 0;
        self.read(self.plan.root(), cursor)
    }

    fn read(&self, id: StepId, c: &mut Cursor<'_>) -> Result<Value, DecodeError> {
        Ok(match self.plan.step(id) {
            Step::Null => Value::Null,
            Step::Boolean => Value::Boolean(c.boolean()?),
            Step::Int => Value::Int(c.int()?),
            Step::Long => Value::Long(c.long()?),
            Step::Float => Value::Float(c.float()?),
            Step::Double => Value::Double(c.double()?),
            Step::Bytes => Value::Bytes(c.bytes()?.to_vec()),
            Step::String => Value::String(c.string()?.to_owned()),
            Step::IntAsLong => Value::Long(c.int()? as i64),
            Step::IntAsFloat => Value::Float(c.int()? as f32),
            Step::IntAsDouble => Value::Double(c.int()? as f64),
            Step::LongAsFloat => Value::Float(c.long()? as f32),
            Step::LongAsDouble => Value::Double(c.long()? as f64),
            Step::FloatAsDouble => Value::Double(c.float()? as f64),
            Step::BytesAsString => Value::String(c.string()?.to_owned()),
            Step::StringAsBytes => Value::Bytes(c.bytes()?.to_vec()),
            Step::Fixed(size) => Value::Fixed(c.take(*size)?.to_vec()),
            Step::Enum(map, names) => {
                let at = c.pos;
                let index = c.int()?;
                let symbol = usize::try_from(index)
                    .ok()
                    .filter(|i| *i < map.len())
                    .ok_or_else(|| {
                        DecodeError::new(
                            at,
                            format!("enum index {index} is out of range (0..{})", map.len()),
                        )
                    })?;
                match map[symbol] {
                    Some(r) => Value::Enum(r),
                    None => {
                        return Err(DecodeError::new(
                            at,
                            format!(
                                "symbol \"{}\" is unknown to the reader enum, which has no default",
                                names[symbol]
                            ),
                        ));
                    }
                }
            }
            Step::Array(items) => {
                c.enter()?;
                let mut out = Vec::new();
                c.blocks(std::mem::size_of::<Value>(), |c| {
                    let value = self
                        .read(*items, c)
                        .map_err(|e| e.within(format!("[{}]", out.len())))?;
                    out.push(value);
                    Ok(())
                })?;
                c.leave();
                Value::Array(out)
            }
            Step::Map(values) => {
                c.enter()?;
                let mut out: Vec<(String, Value)> = Vec::new();
                c.blocks(std::mem::size_of::<(String, Value)>(), |c| {
                    let key = c.string()?.to_owned();
                    let value = self
                        .read(*values, c)
                        .map_err(|e| e.within(format!("[{key:?}]")))?;
                    out.push((key, value));
                    Ok(())
                })?;
                c.leave();
                Value::Map(out)
            }
            Step::Record {
                fields,
                reader_len,
                defaults,
                in_order,
            } => {
                c.enter()?;
                c.charge(*reader_len * std::mem::size_of::<Value>())?;
                if *in_order {
                    let mut out = Vec::with_capacity(*reader_len);
                    for f in fields.iter() {
                        if let FieldOp::Read { step, .. } = &f.op {
                            out.push(
                                self.read(*step, c)
                                    .map_err(|e| e.within(format!(".{}", f.name)))?,
                            );
                        }
                    }
                    c.leave();
                    return Ok(Value::Record(out));
                }
                let mut out = vec![Value::Null; *reader_len];
                for f in fields.iter() {
                    match &f.op {
                        FieldOp::Read { target, step } => {
                            out[*target] = self
                                .read(*step, c)
                                .map_err(|e| e.within(format!(".{}", f.name)))?;
                        }
                        FieldOp::Skip(node) => {
                            self.skip(*node, c)
                                .map_err(|e| e.within(format!(".{}", f.name)))?;
                        }
                    }
                }
                for (i, v) in defaults.iter() {
                    out[*i] = v.clone();
                }
                c.leave();
                Value::Record(out)
            }
            Step::WriterUnion(branches) => {
                let at = c.pos;
                let index = c.long()?;
                let branch = usize::try_from(index)
                    .ok()
                    .filter(|i| *i < branches.len())
                    .ok_or_else(|| {
                        DecodeError::new(
                            at,
                            format!(
                                "union branch {index} is out of range (0..{})",
                                branches.len()
                            ),
                        )
                    })?;
                c.enter()?;
                let value = self.read(branches[branch], c)?;
                c.leave();
                value
            }
            Step::ReaderUnion { branch, step } => {
                c.charge(std::mem::size_of::<Value>())?;
                Value::Union(*branch, Box::new(self.read(*step, c)?))
            }
            Step::Fail(reason) => return Err(DecodeError::new(c.pos, reason.to_string())),
        })
    }

    /// Skips a writer value the reader does not want, without building it.
    fn skip(&self, node: NodeId, c: &mut Cursor<'_>) -> Result<(), DecodeError> {
        match self.writer.kind(node) {
            Kind::Null => {}
            Kind::Boolean => {
                c.take(1)?;
            }
            Kind::Int | Kind::Long | Kind::Enum(_) => {
                c.long()?;
            }
            Kind::Float => {
                c.take(4)?;
            }
            Kind::Double => {
                c.take(8)?;
            }
            Kind::Bytes | Kind::String => {
                c.bytes()?;
            }
            Kind::Fixed(f) => {
                c.take(f.size)?;
            }
            Kind::Array(items) => {
                c.enter()?;
                c.skip_blocks(|c| self.skip(*items, c))?;
                c.leave();
            }
            Kind::Map(values) => {
                c.enter()?;
                c.skip_blocks(|c| {
                    c.bytes()?;
                    self.skip(*values, c)
                })?;
                c.leave();
            }
            Kind::Record(r) => {
                c.enter()?;
                for f in &r.fields {
                    self.skip(f.schema, c)?;
                }
                c.leave();
            }
            Kind::Union(branches) => {
                let at = c.pos;
                let index = c.long()?;
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or_else(|| {
                        DecodeError::new(at, format!("union branch {index} is out of range"))
                    })?;
                c.enter()?;
                self.skip(*branch, c)?;
                c.leave();
            }
        }
        Ok(())
    }
}

/// A position in untrusted bytes, with the budgets of the message being decoded.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    budget: usize,
    depth: u32,
    limits: Limits,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], limits: &Limits) -> Cursor<'a> {
        Cursor {
            buf,
            pos: 0,
            budget: limits.max_allocation,
            depth: 0,
            limits: *limits,
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes read since `start` (an earlier [`position`](Self::position)): the datum
    /// just decoded, for a caller that keeps it as it came.
    pub fn read_since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    /// Starts the next datum of a stream (a container block): the allocation budget and
    /// depth are per message, not per block.
    pub fn start_message(&mut self) {
        self.budget = self.limits.max_allocation;
        self.depth = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(DecodeError::new(
                self.pos,
                format!("nesting deeper than the limit of {}", self.limits.max_depth),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn charge(&mut self, bytes: usize) -> Result<(), DecodeError> {
        match self.budget.checked_sub(bytes) {
            Some(rest) => {
                self.budget = rest;
                Ok(())
            }
            None => Err(DecodeError::new(
                self.pos,
                format!(
                    "message needs more than the allocation limit of {} bytes",
                    self.limits.max_allocation
                ),
            )),
        }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| {
                DecodeError::end_of_input(
                    self.pos,
                    format!(
                        "needs {n} bytes but only {} remain",
                        self.buf.len() - self.pos
                    ),
                )
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// A zig-zag varint of at most 10 bytes.
    #[inline]
    pub fn long(&mut self) -> Result<i64, DecodeError> {
        // Most varints (lengths, union branches, small numbers) are one byte.
        if let Some(&byte) = self.buf.get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            return Ok((byte >> 1) as i64 ^ -((byte & 1) as i64));
        }
        self.long_multibyte()
    }

    fn long_multibyte(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(DecodeError::end_of_input(start, "truncated varint"));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(DecodeError::new(start, "varint overflows 64 bits"));
            }
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
            shift += 7;
        }
    }

    pub fn int(&mut self) -> Result<i32, DecodeError> {
        let start = self.pos;
        let v = self.long()?;
        i32::try_from(v).map_err(|_| DecodeError::new(start, format!("{v} does not fit in an int")))
    }

    pub fn boolean(&mut self) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::new(
                at,
                format!("invalid boolean byte {b:#04x}"),
            )),
        }
    }

    fn float(&mut self) -> Result<f32, DecodeError> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn double(&mut self) -> Result<f64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    /// A length-prefixed byte string, charged against the budget.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let len = self.long()?;
        let len = usize::try_from(len)
            .map_err(|_| DecodeError::new(at, format!("negative length {len}")))?;
        self.charge(len)?;
        self.take(len)
    }

    /// A length-prefixed UTF-8 string, charged against the budget.
    pub fn string(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map_err(|e| DecodeError::new(at, format!("string is not valid UTF-8 ({e})")))
    }

    /// Reads array or map blocks, calling `item` once per item. A negative block count is
    /// followed by the block's byte size, which is read and ignored. Each item is charged
    /// `item_size` bytes against the budget before it is read.
    pub fn blocks(
        &mut self,
        item_size: usize,
        mut item: impl FnMut(&mut Cursor<'a>) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let mut total: u64 = 0;
        loop {
            let count = self.block_count()?;
            if count == 0 {
                return Ok(());
            }
            total += count;
            if total > self.limits.max_items {
                return Err(DecodeError::new(
                    self.pos,
                    format!(
                        "more than the limit of {} items in one collection",
                        self.limits.max_items
                    ),
                ));
            }
            self.charge(count as usize * item_size)?;
            for _ in 0..count {
                item(self)?;
            }
        }
    }

    fn skip_blocks(
        &mut self,
        mut item: impl FnMut(&mut Cursor<'a>) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let mut total: u64 = 0;
        loop {
            let at = self.pos;
            let count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                // The writer told us the block's size: jump over it.
                let size = self.long()?;
                let size = usize::try_from(size)
                    .map_err(|_| DecodeError::new(at, format!("negative block size {size}")))?;
                self.take(size)?;
                continue;
            }
            total += count as u64;
            if total > self.limits.max_items {
                return Err(DecodeError::new(
                    at,
                    format!(
                        "more than the limit of {} items in one collection",
                        self.limits.max_items
                    ),
                ));
            }
            for _ in 0..count {
                item(self)?;
            }
        }
    }

    fn block_count(&mut self) -> Result<u64, DecodeError> {
        let at = self.pos;
        let count = self.long()?;
        if count < 0 {
            let size = self.long()?;
            if size < 0 {
                return Err(DecodeError::new(at, format!("negative block size {size}")));
            }
        }
        Ok(count.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder(schema: &str) -> Decoder {
        let s = Arc::new(Schema::parse(schema).unwrap());
        Decoder::new(s.clone(), s)
    }

    fn resolving(writer: &str, reader: &str) -> Decoder {
        Decoder::new(
            Arc::new(Schema::parse(writer).unwrap()),
            Arc::new(Schema::parse(reader).unwrap()),
        )
    }

    #[test]
    fn varints_follow_the_specification() {
        let d = decoder("\"long\"");
        for (bytes, v) in [
            (&[0x00][..], 0i64),
            (&[0x01], -1),
            (&[0x02], 1),
            (&[0x7f], -64),
            (&[0x80, 0x01], 64),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                i64::MIN,
            ),
            (
                &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                i64::MAX,
            ),
        ] {
            assert_eq!(d.decode(bytes).unwrap(), Value::Long(v));
        }
        let err = d.decode(&[0xff; 11]).unwrap_err();
        assert!(err.message.contains("overflows"), "{err}");
    }

    #[test]
    fn negative_block_counts_carry_a_size() {
        let d = decoder(r#"{"type":"array","items":"int"}"#);
        // -2 items, 2 bytes, then 1 and 2, then end.
        assert_eq!(
            d.decode(&[0x03, 0x04, 0x02, 0x04, 0x00]).unwrap(),
            Value::Array(vec![Value::Int(1), Value::Int(2)])
        );
    }

    #[test]
    fn truncated_input_names_offset_and_path() {
        let d = decoder(
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"lines","type":{"type":"array","items":{"type":"record","name":"l","fields":[{"name":"sku","type":"string"}]}}}]}"#,
        );
        let err = d.decode(&[0x02, 0x04, 0x02, b'x', 0x08, b'a']).unwrap_err();
        assert_eq!(err.path, ".lines[1].sku");
        assert_eq!(err.offset, 5);
        assert!(err.end_of_input);
        let damaged = d.decode(&[0x02, 0x04, 0x02, b'x', 0x03]).unwrap_err();
        assert!(
            !damaged.end_of_input,
            "a negative length is damage: {damaged}"
        );
        assert!(
            err.message.contains("needs 4 bytes but only 1 remain"),
            "{err}"
        );
    }

    #[test]
    fn huge_counts_of_empty_items_hit_the_budget_not_the_allocator() {
        let d = decoder(r#"{"type":"array","items":"null"}"#);
        // A count of 2^62 null items in five bytes.
        let err = d
            .decode(&[
                0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00,
            ])
            .unwrap_err();
        assert!(err.message.contains("limit"), "{err}");
    }

    #[test]
    fn deep_recursion_is_bounded() {
        let d = decoder(
            r#"{"type":"record","name":"n","fields":[{"name":"next","type":["null","n"]}]}"#,
        );
        let mut bytes = vec![0x02; 100_000];
        bytes.push(0);
        let err = d.decode(&bytes).unwrap_err();
        assert!(err.message.contains("nesting deeper"), "{err}");
    }

    #[test]
    fn a_stream_is_decoded_under_the_decoders_limits() {
        let tight = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let d = decoder(
            r#"{"type":"record","name":"n","fields":[{"name":"next","type":["null","n"]}]}"#,
        )
        .with_limits(tight);
        let bytes = [0x02, 0x02, 0x02, 0x00];
        let mut cursor = Cursor::new(&bytes, &Limits::default());
        let err = d.decode_next(&mut cursor).unwrap_err();
        assert!(err.message.contains("limit of 2"), "{err}");
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let err = decoder("\"int\"").decode(&[0x02, 0x00]).unwrap_err();
        assert_eq!(err.offset, 1);
    }

    #[test]
    fn resolution_promotes_skips_and_fills_defaults() {
        let d = resolving(
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"gone","type":{"type":"map","values":"string"}},{"name":"b","type":"string"}]}"#,
            r#"{"type":"record","name":"r","fields":[{"name":"b","type":"bytes"},{"name":"a","type":"double"},{"name":"c","type":["null","long"],"default":null},{"name":"d","type":"int","default":7}]}"#,
        );
        let bytes = [0x04, 0x02, 0x02, b'k', 0x02, b'v', 0x00, 0x04, b'h', b'i'];
        assert_eq!(
            d.decode(&bytes).unwrap(),
            Value::Record(vec![
                Value::Bytes(b"hi".to_vec()),
                Value::Double(2.0),
                Value::Union(0, Box::new(Value::Null)),
                Value::Int(7),
            ])
        );
    }

    #[test]
    fn field_aliases_and_enum_defaults_resolve() {
        let d = resolving(
            r#"{"type":"record","name":"r","fields":[{"name":"old","type":{"type":"enum","name":"e","symbols":["A","B","C"]}}]}"#,
            r#"{"type":"record","name":"r","fields":[{"name":"new","aliases":["old"],"type":{"type":"enum","name":"e","symbols":["B","X"],"default":"X"}}]}"#,
        );
        assert_eq!(
            d.decode(&[0x00]).unwrap(),
            Value::Record(vec![Value::Enum(1)])
        );
        assert_eq!(
            d.decode(&[0x02]).unwrap(),
            Value::Record(vec![Value::Enum(0)])
        );
    }

    #[test]
    fn unreadable_union_branch_fails_only_when_written() {
        let d = resolving(r#"["null","string"]"#, r#""null""#);
        assert_eq!(d.decode(&[0x00]).unwrap(), Value::Null);
        let err = d.decode(&[0x02, 0x00]).unwrap_err();
        assert!(
            err.message
                .contains("writer type string cannot be read as reader type null"),
            "{err}"
        );
    }

    #[test]
    fn missing_reader_field_without_default_fails() {
        let d = resolving(
            r#"{"type":"record","name":"r","fields":[]}"#,
            r#"{"type":"record","name":"r","fields":[{"name":"x","type":"int"}]}"#,
        );
        let err = d.decode(&[]).unwrap_err();
        assert!(err.message.contains("\"x\""), "{err}");
    }

    #[test]
    fn writer_union_to_reader_union_picks_matching_branches() {
        let d = resolving(r#"["int","string","null"]"#, r#"["null","string","long"]"#);
        assert_eq!(
            d.decode(&[0x00, 0x04]).unwrap(),
            Value::Union(2, Box::new(Value::Long(2)))
        );
        assert_eq!(
            d.decode(&[0x04]).unwrap(),
            Value::Union(0, Box::new(Value::Null))
        );
    }
}
