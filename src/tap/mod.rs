//! Tap: the event every picture in meshlens is folded from, and how proxies publish it.

pub mod event;
pub mod publish;

pub use event::{
    Decision, Direction, Endpoint, Event, EventKind, Http, Inspection, MessageSide, Tcp, Tls,
    TriedAuthz,
};
pub use publish::{Publisher, Subscriber};
