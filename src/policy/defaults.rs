//! Default inbound policies and cluster networks, with Linkerd's names and defaults. A default
//! policy applies to ports no Server selects, and a Server's `accessPolicy` uses the same names.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::ids::IdentityDomain;

/// The annotation (on a workload, else on its namespace) that picks a workload's default.
pub const DEFAULT_POLICY_ANNOTATION: &str = "config.linkerd.io/default-inbound-policy";

/// Ports (on the workload) where an allow-default demands a client identity.
pub const REQUIRE_IDENTITY_PORTS_ANNOTATION: &str =
    "config.linkerd.io/proxy-require-identity-inbound-ports";

/// Ports (on the workload, else on its namespace) the proxy treats as opaque TCP.
pub const OPAQUE_PORTS_ANNOTATION: &str = "config.linkerd.io/opaque-ports";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DefaultPolicy {
    /// The chart default (`proxy.defaultInboundPolicy`).
    #[default]
    AllUnauthenticated,
    AllAuthenticated,
    ClusterAuthenticated,
    ClusterUnauthenticated,
    Deny,
    /// Allows everyone like `all-unauthenticated`, but labels the decision `audit`.
    Audit,
}

impl DefaultPolicy {
    pub const ALL: [DefaultPolicy; 6] = [
        DefaultPolicy::AllUnauthenticated,
        DefaultPolicy::AllAuthenticated,
        DefaultPolicy::ClusterAuthenticated,
        DefaultPolicy::ClusterUnauthenticated,
        DefaultPolicy::Deny,
        DefaultPolicy::Audit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::AllUnauthenticated => "all-unauthenticated",
            DefaultPolicy::AllAuthenticated => "all-authenticated",
            DefaultPolicy::ClusterAuthenticated => "cluster-authenticated",
            DefaultPolicy::ClusterUnauthenticated => "cluster-unauthenticated",
            DefaultPolicy::Deny => "deny",
            DefaultPolicy::Audit => "audit",
        }
    }

    /// Whether the policy needs an mTLS client identity.
    pub fn authenticated(self) -> bool {
        matches!(
            self,
            DefaultPolicy::AllAuthenticated | DefaultPolicy::ClusterAuthenticated
        )
    }

    /// The policy on a port listed in `proxy-require-identity-inbound-ports`: an allow that
    /// accepts plaintext becomes its authenticated twin (same networks). `deny` and the
    /// authenticated ones are already at least that strict; `audit` is left alone because it
    /// is not an allow but a dry run whose purpose is to let everything through while
    /// labelling it — as Linkerd's controller, which only upgrades `Allow` defaults.
    pub fn require_identity(self) -> DefaultPolicy {
        match self {
            DefaultPolicy::AllUnauthenticated => DefaultPolicy::AllAuthenticated,
            DefaultPolicy::ClusterUnauthenticated => DefaultPolicy::ClusterAuthenticated,
            other => other,
        }
    }

    /// Whether the policy only admits clients from the cluster networks.
    pub fn cluster_only(self) -> bool {
        matches!(
            self,
            DefaultPolicy::ClusterAuthenticated | DefaultPolicy::ClusterUnauthenticated
        )
    }
}

impl fmt::Display for DefaultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DefaultPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<DefaultPolicy, String> {
        DefaultPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = DefaultPolicy::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown default policy `{s}`: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Linkerd's `clusterNetworks` default.
pub const DEFAULT_CLUSTER_NETWORKS: &str =
    "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8";

/// Linkerd's `policyController.probeNetworks` default: kubelet probes come from anywhere.
pub const DEFAULT_PROBE_NETWORKS: &str = "0.0.0.0/0,::/0";

/// Parses a comma-separated CIDR list; a bare address counts as a single host.
pub fn parse_networks(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_cidr)
        .collect()
}

/// One CIDR (`10.0.0.0/8`) or address (`10.1.2.3`, taken as /32 or /128), as Linkerd accepts.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{s}` is not a CIDR (such as 10.0.0.0/8) or an IP address"))
}

/// What evaluation needs besides the resources: the cluster-wide default policy, the
/// cluster networks, the networks probes may come from, and the identity domain.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_policy: DefaultPolicy,
    pub cluster_networks: Vec<IpNet>,
    /// Sources the automatic `probe` route authorizes (`policyController.probeNetworks`).
    pub probe_networks: Vec<IpNet>,
    pub domain: IdentityDomain,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            default_policy: DefaultPolicy::default(),
            cluster_networks: parse_networks(DEFAULT_CLUSTER_NETWORKS).unwrap_or_default(),
            probe_networks: parse_networks(DEFAULT_PROBE_NETWORKS).unwrap_or_default(),
            domain: IdentityDomain::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for p in DefaultPolicy::ALL {
            assert_eq!(p.as_str().parse::<DefaultPolicy>(), Ok(p));
        }
        let err = "allow".parse::<DefaultPolicy>().unwrap_err();
        assert!(err.contains("cluster-authenticated"), "{err}");
    }

    #[test]
    fn require_identity_upgrades_only_the_plaintext_allows() {
        use DefaultPolicy::*;
        let upgraded: Vec<_> = DefaultPolicy::ALL
            .iter()
            .map(|p| p.require_identity())
            .collect();
        assert_eq!(
            upgraded,
            [
                AllAuthenticated,
                AllAuthenticated,
                ClusterAuthenticated,
                ClusterAuthenticated,
                Deny,
                Audit
            ]
        );
        for p in DefaultPolicy::ALL {
            assert_eq!(p.require_identity().cluster_only(), p.cluster_only(), "{p}");
        }
    }

    #[test]
    fn default_probe_networks_are_everything() {
        let nets = Settings::default().probe_networks;
        for ip in ["8.8.8.8", "10.1.2.3", "2001:db8::1"] {
            let ip = ip.parse::<IpAddr>().unwrap();
            assert!(nets.iter().any(|n| n.contains(&ip)), "{ip}");
        }
    }

    #[test]
    fn default_cluster_networks_are_linkerds() {
        let nets = Settings::default().cluster_networks;
        assert_eq!(nets.len(), 5);
        assert!(
            nets.iter()
                .any(|n| n.contains(&"10.42.0.7".parse::<IpAddr>().unwrap()))
        );
        assert!(
            !nets
                .iter()
                .any(|n| n.contains(&"8.8.8.8".parse::<IpAddr>().unwrap()))
        );
        assert_eq!(parse_cidr("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert!(parse_cidr("10.0.0.0/33").is_err());
    }
}
