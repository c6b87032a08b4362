//! Sniffing how a payload carries its writer schema.
//!
//! Producers in real meshes frame Avro in many ways: object container files, single-object
//! encoding, Confluent's wire formats (v0 id, v1 GUID), Apicurio (4- or 8-byte ids, or
//! headers), AWS Glue, ids in Kafka or HTTP headers, or nothing at all. Headers are checked
//! first (when a header names the schema, the payload is the bare datum), then the payload's
//! magic bytes. A `00` prefix means a Confluent id or an Apicurio id depending on the
//! registry the mesh uses, which the caller says.

use std::fmt;

use super::error::AvroError;
use super::friendly::{hex, uuid_text};

/// Whose ids a `00`-prefixed payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistryKind {
    /// `00` + 4-byte schema id (also Apicurio 3 with `as-confluent`).
    #[default]
    Confluent,
    /// Apicurio 3 defaults: `00` + 4-byte content id.
    Apicurio3,
    /// Apicurio 2 defaults: `00` + 8-byte global id.
    Apicurio2,
}

/// Whether the payload is a record's key or its value (Kafka headers differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Part {
    Key,
    #[default]
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    ContainerFile,
    SingleObject,
    ConfluentV0,
    ConfluentV1,
    ApicurioContentId,
    ApicurioGlobalId,
    Glue,
    /// The schema reference came from a header; the payload is the bare datum.
    Header,
    /// No framing: the datum alone, read with a configured schema.
    Bare,
}

impl Framing {
    /// A short stable name for machine-readable output (tap events, JSON).
    pub fn name(self) -> &'static str {
        match self {
            Framing::ContainerFile => "container",
            Framing::SingleObject => "single-object",
            Framing::ConfluentV0 => "confluent",
            Framing::ConfluentV1 => "confluent-v1",
            Framing::ApicurioContentId => "apicurio-content-id",
            Framing::ApicurioGlobalId => "apicurio-global-id",
            Framing::Glue => "glue",
            Framing::Header => "header",
            Framing::Bare => "bare",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Framing::ContainerFile => "object container file",
            Framing::SingleObject => "single-object encoding",
            Framing::ConfluentV0 => "Confluent v0 (schema id)",
            Framing::ConfluentV1 => "Confluent v1 (schema GUID)",
            Framing::ApicurioContentId => "Apicurio (content id)",
            Framing::ApicurioGlobalId => "Apicurio (global id)",
            Framing::Glue => "AWS Glue (schema version UUID)",
            Framing::Header => "schema reference in a header",
            Framing::Bare => "bare datum",
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a payload says about its writer schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchemaRef {
    ConfluentId(u32),
    Guid([u8; 16]),
    ApicurioContentId(i64),
    ApicurioGlobalId(i64),
    /// CRC-64-AVRO of the canonical form, as Java's signed long.
    Fingerprint(i64),
    GlueVersion([u8; 16]),
    /// A subject and a version (`None` = latest).
    Subject {
        subject: String,
        version: Option<u32>,
    },
    /// The schema travels with the data (container files).
    Embedded,
    /// Nothing in the payload: the caller's configured schema applies.
    Configured,
}

impl fmt::Display for SchemaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaRef::ConfluentId(id) => write!(f, "schema id {id}"),
            SchemaRef::Guid(g) => write!(f, "schema GUID {}", uuid_text(g)),
            SchemaRef::ApicurioContentId(id) => write!(f, "Apicurio content id {id}"),
            SchemaRef::ApicurioGlobalId(id) => write!(f, "Apicurio global id {id}"),
            SchemaRef::Fingerprint(fp) => {
                write!(f, "fingerprint {fp} ({})", hex(&fp.to_le_bytes()))
            }
            SchemaRef::GlueVersion(g) => write!(f, "Glue schema version {}", uuid_text(g)),
            SchemaRef::Subject {
                subject,
                version: Some(v),
            } => write!(f, "subject {subject} version {v}"),
            SchemaRef::Subject {
                subject,
                version: None,
            } => write!(f, "subject {subject} (latest)"),
            SchemaRef::Embedded => f.write_str("schema embedded in the file"),
            SchemaRef::Configured => f.write_str("configured schema"),
        }
    }
}

/// A payload split into its framing, schema reference and datum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed<'a> {
    pub framing: Framing,
    pub reference: SchemaRef,
    /// Bytes of framing before the datum (added to datum offsets in errors).
    pub header_len: usize,
    pub datum: &'a [u8],
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SniffOptions {
    pub registry: RegistryKind,
    pub part: Part,
}

pub const CONTAINER_MAGIC: [u8; 4] = *b"Obj\x01";
pub const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xc3, 0x01];

fn header<'h>(headers: &[(&str, &'h [u8])], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn be_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(b.try_into().ok()?))
}

fn text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok().map(str::trim)
}

/// Reads a schema reference from headers, if one is there.
fn from_headers(headers: &[(&str, &[u8])], part: Part) -> Result<Option<SchemaRef>, AvroError> {
    let (confluent, global, content) = match part {
        Part::Value => (
            "__value_schema_id",
            "apicurio.value.globalId",
            "apicurio.value.contentId",
        ),
        Part::Key => (
            "__key_schema_id",
            "apicurio.key.globalId",
            "apicurio.key.contentId",
        ),
    };
    let bad = |name: &str, why: &str| AvroError::Framing(format!("header {name}: {why}"));
    if let Some(v) = header(headers, confluent) {
        return match v {
            [0x00, id @ ..] if id.len() == 4 => Ok(Some(SchemaRef::ConfluentId(
                u32::from_be_bytes(id.try_into().unwrap_or_default()),
            ))),
            [0x01, guid @ ..] if guid.len() == 16 => {
                Ok(Some(SchemaRef::Guid(guid.try_into().unwrap_or_default())))
            }
            _ => Err(bad(
                confluent,
                "expected 00 + 4-byte id or 01 + 16-byte GUID",
            )),
        };
    }
    if let Some(v) = header(headers, global) {
        return be_i64(v)
            .map(|id| Some(SchemaRef::ApicurioGlobalId(id)))
            .ok_or_else(|| bad(global, "expected an 8-byte big-endian id"));
    }
    if let Some(v) = header(headers, content) {
        return be_i64(v)
            .map(|id| Some(SchemaRef::ApicurioContentId(id)))
            .ok_or_else(|| bad(content, "expected an 8-byte big-endian id"));
    }
    if let Some(v) = header(headers, "x-avro-schema-id") {
        return text(v)
            .and_then(|t| t.parse().ok())
            .map(|id| Some(SchemaRef::ConfluentId(id)))
            .ok_or_else(|| bad("x-avro-schema-id", "expected a decimal schema id"));
    }
    if let Some(v) = header(headers, "x-avro-fingerprint") {
        return text(v)
            .and_then(parse_fingerprint)
            .map(|fp| Some(SchemaRef::Fingerprint(fp)))
            .ok_or_else(|| {
                bad(
                    "x-avro-fingerprint",
                    "expected a signed decimal CRC-64-AVRO or its 8 little-endian bytes in hex",
                )
            });
    }
    if let Some(v) = header(headers, "x-avro-subject") {
        let subject = text(v)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("x-avro-subject", "empty or not UTF-8"))?;
        let version =
            match header(headers, "x-avro-version").and_then(text) {
                None | Some("latest") | Some("-1") => None,
                Some(v) => Some(v.parse().map_err(|_| {
                    bad("x-avro-version", "expected a version number or \"latest\"")
                })?),
            };
        return Ok(Some(SchemaRef::Subject {
            subject: subject.to_string(),
            version,
        }));
    }
    Ok(None)
}

/// A Rabin fingerprint written as the 16 hex digits of its single-object header bytes
/// (optionally `0x`-prefixed), or as Java's signed decimal. Exactly 16 hex digits always
/// read as hex, so a decimal of that length must carry its sign (`+1234567890123456`).
pub fn parse_fingerprint(s: &str) -> Option<i64> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    if h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut bytes = [0u8; 8];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok()?;
        }
        return Some(i64::from_le_bytes(bytes));
    }
    if h.len() != s.len() {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Splits a payload into framing, schema reference and datum.
pub fn sniff<'a>(
    payload: &'a [u8],
    headers: &[(&str, &[u8])],
    options: SniffOptions,
) -> Result<Framed<'a>, AvroError> {
    if let Some(reference) = from_headers(headers, options.part)? {
        return Ok(Framed {
            framing: Framing::Header,
            reference,
            header_len: 0,
            datum: payload,
        });
    }
    let framed = |framing, reference, header_len: usize| Framed {
        framing,
        reference,
        header_len,
        datum: &payload[header_len..],
    };
    let id16 = |at: usize| -> [u8; 16] { payload[at..at + 16].try_into().unwrap_or_default() };
    Ok(match payload {
        [b'O', b'b', b'j', 0x01, ..] => framed(Framing::ContainerFile, SchemaRef::Embedded, 0),
        [0xc3, 0x01, fp @ ..] if fp.len() >= 8 => {
            let fp = i64::from_le_bytes(fp[..8].try_into().unwrap_or_default());
            framed(Framing::SingleObject, SchemaRef::Fingerprint(fp), 10)
        }
        [0x00, rest @ ..] => match options.registry {
            RegistryKind::Confluent if rest.len() >= 4 => {
                let id = u32::from_be_bytes(rest[..4].try_into().unwrap_or_default());
                framed(Framing::ConfluentV0, SchemaRef::ConfluentId(id), 5)
            }
            RegistryKind::Apicurio3 if rest.len() >= 4 => {
                let id = u32::from_be_bytes(rest[..4].try_into().unwrap_or_default());
                framed(
                    Framing::ApicurioContentId,
                    SchemaRef::ApicurioContentId(id as i64),
                    5,
                )
            }
            RegistryKind::Apicurio2 if rest.len() >= 8 => {
                let id = be_i64(&rest[..8]).unwrap_or_default();
                framed(
                    Framing::ApicurioGlobalId,
                    SchemaRef::ApicurioGlobalId(id),
                    9,
                )
            }
            _ => framed(Framing::Bare, SchemaRef::Configured, 0),
        },
        [0x01, rest @ ..] if rest.len() >= 16 => {
            framed(Framing::ConfluentV1, SchemaRef::Guid(id16(1)), 17)
        }
        [0x03, 0x00, rest @ ..] if rest.len() >= 16 => {
            framed(Framing::Glue, SchemaRef::GlueVersion(id16(2)), 18)
        }
        _ => framed(Framing::Bare, SchemaRef::Configured, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniffed(payload: &[u8]) -> (Framing, SchemaRef, usize) {
        let f = sniff(payload, &[], SniffOptions::default()).unwrap();
        (f.framing, f.reference, f.header_len)
    }

    #[test]
    fn magic_bytes_select_the_framing() {
        assert_eq!(sniffed(b"Obj\x01rest").0, Framing::ContainerFile);
        assert_eq!(
            sniffed(&[0xc3, 0x01, 0x8a, 0x8f, 0x25, 0xcc, 0xe7, 0x24, 0xdd, 0x63]),
            (
                Framing::SingleObject,
                SchemaRef::Fingerprint(7195948357588979594),
                10
            )
        );
        assert_eq!(
            sniffed(&[0, 0, 0, 1, 2, 9]),
            (Framing::ConfluentV0, SchemaRef::ConfluentId(258), 5)
        );
        let mut v1 = vec![1u8];
        v1.extend(0u8..16);
        assert_eq!(sniffed(&v1).0, Framing::ConfluentV1);
        let mut glue = vec![3u8, 0];
        glue.extend(0u8..16);
        assert_eq!(sniffed(&glue).0, Framing::Glue);
        assert_eq!(sniffed(&[0x02, 0x04]).0, Framing::Bare);
        assert_eq!(sniffed(&[0x00, 0x01]).0, Framing::Bare);
    }

    #[test]
    fn registry_kind_decides_what_a_zero_prefix_means() {
        let payload = [0, 0, 0, 0, 0, 0, 0, 0, 7, 1];
        let apicurio2 = SniffOptions {
            registry: RegistryKind::Apicurio2,
            ..Default::default()
        };
        let f = sniff(&payload, &[], apicurio2).unwrap();
        assert_eq!(
            (f.framing, f.reference),
            (Framing::ApicurioGlobalId, SchemaRef::ApicurioGlobalId(7))
        );
        let apicurio3 = SniffOptions {
            registry: RegistryKind::Apicurio3,
            ..Default::default()
        };
        assert_eq!(
            sniff(&payload, &[], apicurio3).unwrap().reference,
            SchemaRef::ApicurioContentId(0)
        );
    }

    #[test]
    fn headers_win_and_leave_the_datum_bare() {
        let id = [0u8, 0, 0, 0, 42];
        let f = sniff(
            &[0, 1, 2],
            &[("__value_schema_id", &id)],
            SniffOptions::default(),
        )
        .unwrap();
        assert_eq!(
            (f.framing, f.reference, f.datum),
            (
                Framing::Header,
                SchemaRef::ConfluentId(42),
                &[0u8, 1, 2][..]
            )
        );
        let f = sniff(
            &[],
            &[
                ("X-Avro-Subject", b"orders-value"),
                ("x-avro-version", b"3"),
            ],
            SniffOptions::default(),
        )
        .unwrap();
        assert_eq!(
            f.reference,
            SchemaRef::Subject {
                subject: "orders-value".into(),
                version: Some(3)
            }
        );
        let f = sniff(
            &[],
            &[("x-avro-fingerprint", b"8a8f25cce724dd63")],
            SniffOptions::default(),
        )
        .unwrap();
        assert_eq!(f.reference, SchemaRef::Fingerprint(7195948357588979594));
        let gid = 9i64.to_be_bytes();
        let f = sniff(
            &[],
            &[("apicurio.value.globalId", &gid)],
            SniffOptions::default(),
        )
        .unwrap();
        assert_eq!(f.reference, SchemaRef::ApicurioGlobalId(9));
    }

    #[test]
    fn fingerprints_read_as_hex_bytes_or_signed_decimal() {
        assert_eq!(
            parse_fingerprint("8a8f25cce724dd63"),
            Some(7195948357588979594)
        );
        assert_eq!(
            parse_fingerprint("0x8a8f25cce724dd63"),
            Some(7195948357588979594)
        );
        assert_eq!(
            parse_fingerprint("7195948357588979594"),
            Some(7195948357588979594)
        );
        assert_eq!(
            parse_fingerprint("-8142146995180207161"),
            Some(-8142146995180207161)
        );
        // 16 digits are hex bytes; the same number as a decimal carries its sign.
        assert_eq!(
            parse_fingerprint("9201605266661512"),
            Some(1303060256848347538)
        );
        assert_eq!(
            parse_fingerprint("+9201605266661512"),
            Some(9201605266661512)
        );
        assert_eq!(parse_fingerprint("0x12"), None);
        assert_eq!(parse_fingerprint("abc"), None);
    }

    #[test]
    fn malformed_headers_are_reported() {
        let err = sniff(
            &[],
            &[("__value_schema_id", &[7u8])],
            SniffOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("__value_schema_id"));
        let err = sniff(
            &[],
            &[("x-avro-schema-id", b"abc")],
            SniffOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("decimal"));
    }
}
