//! A resolved authorization: who (authentication) from where (networks), and the kind/name
//! Linkerd's metrics give it. Every policy resource compiles to this one shape, so evaluation
//! is a walk over a list with no lookups.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::ids::IdentityMatch;

/// `kind`/`name` as they appear in Linkerd's metric labels (`authz_kind`, `srv_kind`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Meta {
    pub kind: String,
    pub name: String,
}

impl Meta {
    pub fn new(kind: &str, name: &str) -> Meta {
        Meta {
            kind: kind.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// A CIDR minus its exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkMatch {
    pub net: IpNet,
    pub except: Vec<IpNet>,
}

impl NetworkMatch {
    pub fn all(net: IpNet) -> NetworkMatch {
        NetworkMatch {
            net,
            except: Vec::new(),
        }
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.net.contains(ip) && !self.except.iter().any(|e| e.contains(ip))
    }
}

impl fmt::Display for NetworkMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.net)?;
        for e in &self.except {
            write!(f, " except {e}")?;
        }
        Ok(())
    }
}

/// What the client must prove, in Linkerd's three forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    Unauthenticated,
    /// mTLS established; an identity is optional (ServerAuthorization `unauthenticatedTLS`).
    TlsUnauthenticated,
    /// mTLS with an identity matching one of these.
    TlsAuthenticated(Vec<IdentityMatch>),
}

/// The client side of a connection as the inbound proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientTls {
    /// Plaintext (not meshed, or a skipped port).
    None,
    /// mTLS; the identity is the peer certificate's first SAN, if any.
    Mtls(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authz {
    pub meta: Meta,
    pub networks: Vec<NetworkMatch>,
    pub authentication: Authentication,
    /// Set when the resource refers to something that does not exist; Linkerd does not serve
    /// such an authorization, so it never matches.
    pub unresolved: Option<String>,
}

/// Why an authorization did not match a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    Unresolved,
    Network,
    NotTls,
    NoIdentity,
    Identity,
}

impl Authz {
    /// `Ok` if the client is authorized; else which condition failed (networks are checked
    /// first, as the proxy does).
    pub fn check(&self, ip: &IpAddr, tls: &ClientTls) -> Result<(), Miss> {
        if self.unresolved.is_some() {
            return Err(Miss::Unresolved);
        }
        if !self.networks.iter().any(|n| n.contains(ip)) {
            return Err(Miss::Network);
        }
        match (&self.authentication, tls) {
            (Authentication::Unauthenticated, _) => Ok(()),
            (_, ClientTls::None) => Err(Miss::NotTls),
            (Authentication::TlsUnauthenticated, ClientTls::Mtls(_)) => Ok(()),
            (Authentication::TlsAuthenticated(_), ClientTls::Mtls(None)) => Err(Miss::NoIdentity),
            (Authentication::TlsAuthenticated(ids), ClientTls::Mtls(Some(id))) => {
                if ids.iter().any(|m| m.matches(id)) {
                    Ok(())
                } else {
                    Err(Miss::Identity)
                }
            }
        }
    }

    /// One line saying why `check` gave `result`, for `tried` in a decision.
    pub fn explain(&self, result: Result<(), Miss>, ip: &IpAddr, tls: &ClientTls) -> String {
        let nets = || {
            self.networks
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ids = || match &self.authentication {
            Authentication::TlsAuthenticated(ids) => ids
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        match result {
            Ok(()) => match (&self.authentication, tls) {
                (Authentication::Unauthenticated, _) => {
                    format!("client {ip} is in {} (no authentication required)", nets())
                }
                (Authentication::TlsUnauthenticated, _) => {
                    format!("client {ip} is in {} and uses mTLS", nets())
                }
                (_, ClientTls::Mtls(Some(id))) => {
                    format!("client {id} from {ip} matches {}", ids())
                }
                _ => "matched".into(),
            },
            Err(Miss::Unresolved) => format!(
                "not in effect: {}",
                self.unresolved.as_deref().unwrap_or("unresolved reference")
            ),
            Err(Miss::Network) => format!("client {ip} is outside {}", nets()),
            Err(Miss::NotTls) => "requires mTLS but the client is not meshed".into(),
            Err(Miss::NoIdentity) => "requires a client identity but mTLS carried none".into(),
            Err(Miss::Identity) => match tls {
                ClientTls::Mtls(Some(id)) => {
                    format!("client identity {id} is not one of {}", ids())
                }
                _ => "client identity does not match".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn except_carves_holes_in_a_network() {
        let n = NetworkMatch {
            net: net("10.0.0.0/8"),
            except: vec![net("10.42.0.0/16")],
        };
        assert!(n.contains(&"10.1.2.3".parse().unwrap()));
        assert!(!n.contains(&"10.42.1.1".parse().unwrap()));
        assert!(!n.contains(&"11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn authentication_forms() {
        let ip: IpAddr = "10.1.1.1".parse().unwrap();
        let mk = |authentication| Authz {
            meta: Meta::new("default", "x"),
            networks: vec![NetworkMatch::all(net("0.0.0.0/0"))],
            authentication,
            unresolved: None,
        };
        let web = ClientTls::Mtls(Some(
            "web.shop.serviceaccount.identity.linkerd.cluster.local".into(),
        ));
        assert_eq!(
            mk(Authentication::Unauthenticated).check(&ip, &ClientTls::None),
            Ok(())
        );
        let tls = mk(Authentication::TlsUnauthenticated);
        assert_eq!(tls.check(&ip, &ClientTls::None), Err(Miss::NotTls));
        assert_eq!(tls.check(&ip, &ClientTls::Mtls(None)), Ok(()));
        let ids = mk(Authentication::TlsAuthenticated(vec![
            IdentityMatch::Exact(
                "orders.shop.serviceaccount.identity.linkerd.cluster.local".into(),
            ),
        ]));
        assert_eq!(ids.check(&ip, &web), Err(Miss::Identity));
        assert_eq!(
            ids.check(&ip, &ClientTls::Mtls(None)),
            Err(Miss::NoIdentity)
        );
        assert_eq!(
            mk(Authentication::TlsAuthenticated(vec![IdentityMatch::Any])).check(&ip, &web),
            Ok(())
        );
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(ids.check(&v6, &web), Err(Miss::Network));
    }
}
