//! The data plane: per workload an outbound proxy (plain HTTP in, mTLS out to the peer's
//! inbound), an inbound proxy (mTLS in, policy per request or connection, Avro inspection,
//! forwarding to the local app) and an admin endpoint; every request is published as tap
//! events.

pub mod admin;
pub mod body;
pub mod config;
pub mod corked;
pub mod counted;
pub mod credentials;
pub mod destinations;
pub mod detect;
pub mod error;
pub mod exchange;
pub mod http;
pub mod inbound;
pub mod inspect;
pub mod messages;
pub mod metrics;
pub mod outbound;
pub mod policy_state;
pub mod pool;
pub mod refusals;
pub mod respond;
pub mod shared;
pub mod sidecar;
pub mod transport_header;
pub mod upstream;
pub mod watch;
