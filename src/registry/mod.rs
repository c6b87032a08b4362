//! The schema registry: a directory-backed store that reads well in git, a server for
//! Confluent's REST API v1 over it, a client for remote Confluent-compatible registries, and
//! `SchemaSource`s over both for payload decoding. Uses `avro`, never `ui` or `cli`.

pub mod api;
pub mod client;
pub mod error;
mod json_text;
pub mod server;
pub mod source;
pub mod store;

pub use client::{Auth, RegistryClient, RemoteSchema};
pub use error::RegistryError;
pub use source::{ClientSource, StoreSource};
pub use store::{Reference, Store, StoredSchema, SubjectVersion, VersionSpec};

/// Whether a registry given as `DIR|URL` names a remote registry rather than a directory.
pub fn is_url(spec: &str) -> bool {
    spec.starts_with("http://") || spec.starts_with("https://")
}
