//! The Avro contract engine. Pure: no sockets, no threads, no UI.
//!
//! `Schema` parses once into an arena; `canonical` gives Java-exact canonical forms and
//! fingerprints; `framing` finds how a payload carries its schema; `Decoder` resolves
//! writer → reader once and decodes untrusted bytes within `Limits`; `avro_json` and
//! `friendly` render values; `PayloadDecoder` ties it together with a schema source.
//! `encode` and `container_write` go the other way, for the tap stream and recordings.

pub mod avro_json;
pub mod canonical;
pub mod compat;
pub mod container;
pub mod container_write;
pub mod decode;
pub mod diff;
pub mod drift;
pub mod encode;
pub mod error;
pub mod framing;
pub mod friendly;
pub mod friendly_json;
mod json_out;
pub mod levels;
pub mod logical;
pub mod payload;
pub mod resolve;
pub mod schema;
pub mod value;

pub use avro_json::to_avro_json;
pub use canonical::{canonical_form, md5_fingerprint, rabin_fingerprint, sha256_fingerprint};
pub use compat::{
    Compatibility, Incompatibility, IncompatibilityKind, check as check_compatibility,
};
pub use container::{Codec, Container, StreamReader};
pub use container_write::{ContainerFile, ContainerWriter};
pub use decode::{Decoder, Limits};
pub use encode::encode;
pub use error::{AvroError, DecodeError, EncodeError, SchemaError};
pub use framing::{Framing, Part, RegistryKind, SchemaRef, SniffOptions, sniff};
pub use friendly::to_friendly_json;
pub use friendly_json::friendly_from_avro_json;
pub use levels::{Level, LevelReport, check_level};
pub use logical::Logical;
pub use payload::{Decoded, KnownSchema, PayloadDecoder, SchemaSource};
pub use schema::{Kind, Name, NodeId, Schema};
pub use value::Value;
