//! Where the model's facts come from besides a live tap stream. `replay` plays a recording
//! back as events. The metrics sources read linkerd2-proxy metrics from a proxy's
//! `/metrics`, a saved file, or a Prometheus server that already scrapes the mesh;
//! `metrics::derive` turns their samples into facts, and those into the model's
//! `mesh::metrics::MetricsDelta`, so the app shows a mesh known only by its metrics the way
//! it shows a tapped one.

pub mod check;
mod error;
pub mod fetch;
pub mod hub;
pub mod metrics;
pub mod policy_files;
pub mod poll;
pub mod prom_text;
pub mod prometheus;
pub mod registry_watch;
pub mod replay;
pub mod sandbox;

pub use error::SourceError;
