//! Sandbox clusters: one command brings up a living mesh in this process — a CA and workload
//! identities, the schema registry, and for every workload a simulated app and its sidecar,
//! over real loopback sockets — then plays a scenario on it.
//!
//! `manifest` reads and checks `sandbox.yaml`; `cluster` brings it up and down; `app` is the
//! simulated workload; `payload` makes random valid Avro; `scenario` runs steps; `demo` is
//! the bundled storefront. The live line `sandbox up` prints is the CLI's
//! (`cli/sandbox/summary.rs`): this module stays below the model.

pub mod app;
pub mod cluster;
pub mod demo;
pub mod error;
pub mod manifest;
pub mod payload;
pub mod scenario;

pub use cluster::{Cluster, Options, Ready};
pub use error::{Result, SandboxError};
pub use manifest::Manifest;
