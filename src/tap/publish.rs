//! Publishing never waits: events go into a bounded broadcast ring, a subscriber that falls
//! behind loses the oldest ones, and every loss is counted (per subscriber and in total).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;

use super::event::{Event, now_us};

/// Events buffered per subscriber before the oldest are dropped.
pub const DEFAULT_CAPACITY: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct Publisher {
    tx: broadcast::Sender<Arc<Event>>,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    lost: AtomicU64,
}

impl Default for Publisher {
    fn default() -> Self {
        Publisher::new(DEFAULT_CAPACITY)
    }
}

impl Publisher {
    pub fn new(capacity: usize) -> Publisher {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Publisher {
            tx,
            counters: Arc::default(),
        }
    }

    /// Whether anyone listens: proxies skip building events nobody will read.
    pub fn active(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn publish(&self, event: Event) {
        if self.tx.send(Arc::new(event)).is_ok() {
            self.counters.published.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn subscribe(&self) -> Subscriber {
        Subscriber {
            rx: self.tx.subscribe(),
            counters: self.counters.clone(),
            lost: 0,
        }
    }

    /// Events handed to at least one subscriber since start.
    pub fn published(&self) -> u64 {
        self.counters.published.load(Ordering::Relaxed)
    }

    /// Events dropped for slow subscribers since start, over all subscribers.
    pub fn lost(&self) -> u64 {
        self.counters.lost.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct Subscriber {
    rx: broadcast::Receiver<Arc<Event>>,
    counters: Arc<Counters>,
    lost: u64,
}

impl Subscriber {
    /// The next event; after a loss, first an [`Event::lost`] notice saying how many were
    /// missed. `None` once the publisher is gone.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        match self.rx.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(self.note_loss(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Like [`recv`](Self::recv) without waiting: `None` when nothing is queued.
    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        match self.rx.try_recv() {
            Ok(event) => Some(event),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(self.note_loss(n)),
            Err(_) => None,
        }
    }

    /// Events this subscriber missed so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    fn note_loss(&mut self, n: u64) -> Arc<Event> {
        self.lost += n;
        self.counters.lost.fetch_add(n, Ordering::Relaxed);
        Arc::new(Event::lost(n, now_us()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::EventKind;

    fn event(stream: u64) -> Event {
        let mut e = Event::lost(0, 0);
        e.kind = EventKind::TcpOpen;
        e.stream = stream;
        e
    }

    #[test]
    fn nobody_listening_is_cheap_and_counts_nothing() {
        let p = Publisher::new(4);
        assert!(!p.active());
        p.publish(event(1));
        assert_eq!(p.published(), 0);
    }

    #[test]
    fn a_slow_subscriber_loses_the_oldest_and_is_told_how_many() {
        let p = Publisher::new(4);
        let mut s = p.subscribe();
        for i in 0..10 {
            p.publish(event(i));
        }
        let notice = s.try_recv().unwrap();
        assert_eq!((notice.kind, notice.lost), (EventKind::Lost, 6));
        let rest: Vec<u64> = std::iter::from_fn(|| s.try_recv())
            .map(|e| e.stream)
            .collect();
        assert_eq!(rest, vec![6, 7, 8, 9]);
        assert_eq!((s.lost(), p.lost(), p.published()), (6, 6, 10));
    }
}
