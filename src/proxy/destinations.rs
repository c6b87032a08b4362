//! The outbound proxy's service discovery: which peer serves an authority and which identity
//! it must prove — what Linkerd's destination controller answers, from the config.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::config::Destination;

/// A resolved destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// `None`: an unmeshed endpoint, reached in plaintext.
    pub identity: Option<String>,
    pub namespace: Option<String>,
    pub workload: Option<String>,
    /// The authority the table knows it by (for metrics' `authority` label).
    pub authority: String,
}

#[derive(Debug, Default)]
pub struct Destinations {
    by_authority: HashMap<String, Arc<Target>>,
}

impl Destinations {
    pub fn new(list: &[Destination]) -> Destinations {
        let mut by_authority = HashMap::new();
        for d in list {
            for a in &d.authorities {
                let target = Arc::new(Target {
                    addr: d.address,
                    identity: d.identity.clone(),
                    namespace: d.namespace.clone(),
                    workload: d.workload.clone(),
                    authority: a.to_ascii_lowercase(),
                });
                by_authority.entry(a.to_ascii_lowercase()).or_insert(target);
            }
        }
        Destinations { by_authority }
    }

    /// The target for `authority` (case-insensitive; `default_port` completes one without a
    /// port, as HTTP does with port 80).
    pub fn resolve(&self, authority: &str, default_port: u16) -> Option<Arc<Target>> {
        let lower = authority.to_ascii_lowercase();
        if let Some(t) = self.by_authority.get(&lower) {
            return Some(t.clone());
        }
        if split_authority(&lower).is_none() {
            return self
                .by_authority
                .get(&format!("{lower}:{default_port}"))
                .cloned();
        }
        None
    }
}

/// `host:port` → (host, port); `None` without a valid port.
pub fn split_authority(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = authority.rsplit_once(':')?;
    if host.is_empty() || (host.contains(':') && !host.ends_with(']')) {
        return None;
    }
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_case_insensitively_and_completes_the_default_port() {
        let d = Destinations::new(&[Destination {
            authorities: vec!["Orders.shop:80".into(), "orders.shop.svc:8080".into()],
            address: "127.0.0.1:4143".parse().unwrap(),
            identity: Some("orders.shop.serviceaccount.identity.linkerd.cluster.local".into()),
            namespace: Some("shop".into()),
            workload: Some("orders".into()),
        }]);
        assert_eq!(
            d.resolve("orders.SHOP:80", 80).unwrap().authority,
            "orders.shop:80"
        );
        assert!(d.resolve("orders.shop", 80).is_some());
        assert!(d.resolve("orders.shop", 8080).is_none());
        assert!(d.resolve("orders.shop.svc:8080", 80).is_some());
        assert!(d.resolve("payments.shop:80", 80).is_none());
    }

    #[test]
    fn splits_authorities() {
        assert_eq!(split_authority("a.b:80"), Some(("a.b", 80)));
        assert_eq!(split_authority("[::1]:80"), Some(("[::1]", 80)));
        assert_eq!(split_authority("a.b"), None);
        assert_eq!(split_authority("a.b:http"), None);
        assert_eq!(split_authority("::1"), None);
    }
}
