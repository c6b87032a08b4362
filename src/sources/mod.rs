//! Where the model's facts come from besides the tap stream: linkerd2-proxy metrics, read
//! from a proxy's `/metrics`, a saved file, or a Prometheus server that already scrapes the
//! mesh. Each gives samples that `metrics::derive` turns into the same facts, and those into
//! the model's `mesh::metrics::MetricsDelta`, so the app shows a mesh known only by its
//! metrics the way it shows a tapped one.

mod error;
pub mod fetch;
pub mod metrics;
pub mod poll;
pub mod prom_text;
pub mod prometheus;

pub use error::SourceError;
