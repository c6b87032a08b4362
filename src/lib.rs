//! meshlens: see a service mesh — identities, mTLS, policy decisions and the Avro messages
//! on every hop. See ARCHITECTURE in the repository's shared docs for the module map.

pub mod avro;
pub mod cli;
pub mod identity;
pub mod mesh;
pub mod policy;
pub mod proxy;
pub mod registry;
pub mod sandbox;
pub mod sources;
pub mod tap;
#[cfg(feature = "gui")]
pub mod ui;
