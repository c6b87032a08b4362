//! The Linkerd policy engine: Linkerd's policy resources read from YAML and checked as its
//! admission webhook does, an index per workload and port, and evaluation of one request or
//! connection into a decision carrying the same server/route/authorization names Linkerd's
//! metrics use. Also meshlens's own `SchemaContract` kind.

pub mod authz;
pub mod contract;
pub mod defaults;
pub mod error;
pub mod eval;
pub mod ids;
pub mod index;
pub mod lint;
pub mod load;
pub mod resources;
pub mod route;
pub mod validate;
pub mod workload;
