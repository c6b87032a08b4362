//! Parsing Canonical Form and schema fingerprints, exactly as the Java reference computes
//! them (`SchemaNormalization`): the form is built from the parsed schema, so logical types,
//! field order, docs, aliases, defaults and decimal attributes never appear.

use std::collections::HashSet;
use std::fmt::Write as _;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::schema::{Kind, NodeId, Schema};

/// The schema's Parsing Canonical Form.
pub fn canonical_form(schema: &Schema) -> String {
    let mut out = String::new();
    let mut seen = HashSet::new();
    write_node(schema, schema.root(), &mut out, &mut seen);
    out
}

fn write_node(schema: &Schema, id: NodeId, out: &mut String, seen: &mut HashSet<NodeId>) {
    let kind = schema.kind(id);
    match kind {
        Kind::Record(_) | Kind::Enum(_) | Kind::Fixed(_) if !seen.insert(id) => {
            let name = kind.name().map(|n| n.full()).unwrap_or_default();
            let _ = write!(out, "\"{name}\"");
        }
        Kind::Record(r) => {
            let _ = write!(
                out,
                "{{\"name\":\"{}\",\"type\":\"record\",\"fields\":[",
                r.name
            );
            for (i, f) in r.fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{{\"name\":\"{}\",\"type\":", f.name);
                write_node(schema, f.schema, out, seen);
                out.push('}');
            }
            out.push_str("]}");
        }
        Kind::Enum(e) => {
            let _ = write!(
                out,
                "{{\"name\":\"{}\",\"type\":\"enum\",\"symbols\":[",
                e.name
            );
            for (i, s) in e.symbols.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "\"{s}\"");
            }
            out.push_str("]}");
        }
        Kind::Fixed(f) => {
            let _ = write!(
                out,
                "{{\"name\":\"{}\",\"type\":\"fixed\",\"size\":{}}}",
                f.name, f.size
            );
        }
        Kind::Array(items) => {
            out.push_str("{\"type\":\"array\",\"items\":");
            write_node(schema, *items, out, seen);
            out.push('}');
        }
        Kind::Map(values) => {
            out.push_str("{\"type\":\"map\",\"values\":");
            write_node(schema, *values, out, seen);
            out.push('}');
        }
        Kind::Union(branches) => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_node(schema, *b, out, seen);
            }
            out.push(']');
        }
        primitive => {
            let _ = write!(out, "\"{}\"", primitive.type_name());
        }
    }
}

const EMPTY: u64 = 0xc15d_213a_a4d7_a795;

const RABIN_TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut j = 0;
        while j < 8 {
            fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
            j += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
};

/// CRC-64-AVRO ("Rabin") of some bytes, as the unsigned 64-bit value.
pub fn rabin(bytes: &[u8]) -> u64 {
    bytes.iter().fold(EMPTY, |fp, b| {
        (fp >> 8) ^ RABIN_TABLE[((fp ^ *b as u64) & 0xff) as usize]
    })
}

/// The 64-bit fingerprint that single-object encoding carries, as Java's signed `long`.
pub fn rabin_fingerprint(schema: &Schema) -> i64 {
    rabin(canonical_form(schema).as_bytes()) as i64
}

pub fn sha256_fingerprint(schema: &Schema) -> [u8; 32] {
    Sha256::digest(canonical_form(schema).as_bytes()).into()
}

pub fn md5_fingerprint(schema: &Schema) -> [u8; 16] {
    Md5::digest(canonical_form(schema).as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rabin_of_null_matches_the_specification() {
        let s = Schema::parse("\"null\"").unwrap();
        assert_eq!(rabin_fingerprint(&s), 7195948357588979594);
        assert_eq!(
            rabin_fingerprint(&s).to_le_bytes(),
            [0x8a, 0x8f, 0x25, 0xcc, 0xe7, 0x24, 0xdd, 0x63]
        );
    }

    #[test]
    fn logical_types_and_attributes_are_stripped() {
        let s = Schema::parse(
            r#"{"type":"record","name":"r","namespace":"n","fields":[
                {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"},"order":"descending"},
                {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
                {"name":"u","type":{"type":"string","logicalType":"uuid"},"doc":"x","default":"a"}]}"#,
        )
        .unwrap();
        assert_eq!(
            canonical_form(&s),
            r#"{"name":"n.r","type":"record","fields":[{"name":"t","type":"long"},{"name":"d","type":"bytes"},{"name":"u","type":"string"}]}"#
        );
    }

    #[test]
    fn named_types_appear_in_full_only_once() {
        let s = Schema::parse(
            r#"{"type":"record","name":"r","fields":[
                {"name":"a","type":{"type":"fixed","name":"F","size":2}},
                {"name":"b","type":"F"}]}"#,
        )
        .unwrap();
        assert_eq!(
            canonical_form(&s),
            r#"{"name":"r","type":"record","fields":[{"name":"a","type":{"name":"F","type":"fixed","size":2}},{"name":"b","type":"F"}]}"#
        );
    }

    #[test]
    fn digests_are_of_the_canonical_form() {
        let s = Schema::parse(r#"{"type":"int"}"#).unwrap();
        assert_eq!(
            sha256_fingerprint(&s),
            <[u8; 32]>::from(Sha256::digest(b"\"int\""))
        );
        assert_eq!(
            md5_fingerprint(&s),
            <[u8; 16]>::from(Md5::digest(b"\"int\""))
        );
    }
}
