//! Workload identity, issued exactly as Linkerd issues it so that the same policies, names and
//! certificates work in the sandbox and in a real mesh: a trust anchor, an issuer, per-workload
//! leaves, trust bundles for rotation, and rustls configurations for mutual TLS with typed
//! rejections. Depends on no sibling module.

mod bundle;
mod ca;
mod cert;
mod error;
mod key;
mod name;
mod resolver;
mod tls;

pub use bundle::TrustBundle;
pub use ca::{Ca, DEFAULT_CLOCK_SKEW, DEFAULT_LEAF_LIFETIME, Leaf, LeafPolicy, renew_at};
pub use cert::{CertInfo, certs_from_pem, certs_to_pem, is_signed_by};
pub use error::{IdentityError, Result};
pub use name::{ControlPlane, DEFAULT_CONTROL_NS, DEFAULT_TRUST_DOMAIN, IdentityName};
pub use resolver::CurrentCert;
pub(crate) use tls::provider;
pub use tls::{client_config, handshake_error, peer_identity, server_config, server_name};
