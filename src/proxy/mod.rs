//! The data plane: per workload an outbound proxy (plain HTTP in, mTLS out to the peer's
//! inbound), an inbound proxy (mTLS in, policy per request or connection, Avro inspection,
//! forwarding to the local app) and an admin endpoint; every request is published as tap
//! events.

pub mod admin;
pub mod metrics;
