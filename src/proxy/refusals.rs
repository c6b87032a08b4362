//! Refused mTLS handshakes, said once at WARN: the default log level shows why a client is
//! refused (an expired or foreign certificate), while a client retrying in a loop, or a flood
//! from many addresses, cannot fill the log. Repeats go to DEBUG.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a peer's refusals stay quiet after one was logged at WARN.
const QUIET: Duration = Duration::from_secs(60);
/// Peers remembered at once; past that, refusals from new peers wait for old ones to expire.
const MAX_PEERS: usize = 256;

/// When each peer address last had a refusal logged at WARN.
#[derive(Default)]
pub struct Refusals {
    warned: Mutex<HashMap<IpAddr, Instant>>,
}

impl Refusals {
    /// Whether a refusal of `peer` at `now` is the one to log at WARN: the first from that
    /// address in `QUIET`, while fewer than `MAX_PEERS` addresses are being remembered.
    pub fn should_warn(&self, peer: IpAddr, now: Instant) -> bool {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        let quiet = |last: &Instant| now.saturating_duration_since(*last) < QUIET;
        if warned.get(&peer).is_some_and(quiet) {
            return false;
        }
        if warned.len() >= MAX_PEERS && !warned.contains_key(&peer) {
            warned.retain(|_, last| quiet(last));
            if warned.len() >= MAX_PEERS {
                return false;
            }
        }
        warned.insert(peer, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn once_per_peer_a_minute() {
        let r = Refusals::default();
        let t = Instant::now();
        assert!(r.should_warn(ip(1), t));
        assert!(!r.should_warn(ip(1), t + Duration::from_secs(59)));
        assert!(r.should_warn(ip(2), t + Duration::from_secs(1)));
        assert!(r.should_warn(ip(1), t + QUIET));
    }

    #[test]
    fn a_flood_from_many_addresses_is_bounded() {
        let r = Refusals::default();
        let t = Instant::now();
        let warned = (0..10 * MAX_PEERS as u32)
            .filter(|&i| r.should_warn(ip(i), t))
            .count();
        assert_eq!(warned, MAX_PEERS);
        // Once the quiet period has passed, new addresses are said again.
        assert!(r.should_warn(ip(u32::MAX >> 8), t + QUIET));
    }
}
