//! Tap: the event every picture in meshlens is folded from, its Avro encoding, how proxies
//! publish it, and the stream that carries it off a proxy: filters, the mTLS (or token)
//! authorized server on the admin port, the client that merges many proxies' streams, and
//! recordings of a stream on disk.

pub mod batch;
pub mod client;
pub mod codec;
pub mod error;
pub mod event;
pub mod filter;
pub mod publish;
pub mod read_ahead;
pub mod recording;
pub mod server;
pub mod token;
pub mod wire;

pub use error::TapError;
pub use event::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, MessageSide, Tcp, Tls,
    TriedAuthz,
};
pub use filter::Filter;
pub use publish::{Publisher, Subscriber};
