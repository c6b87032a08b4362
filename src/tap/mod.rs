//! Tap: the event every picture in meshlens is folded from, its Avro encoding, and how
//! proxies publish it.

pub mod codec;
pub mod error;
pub mod event;
pub mod publish;

pub use error::TapError;
pub use event::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, MessageSide, Tcp, Tls,
    TriedAuthz,
};
pub use publish::{Publisher, Subscriber};
