//! Identity names as Linkerd spells them:
//! `<sa>.<ns>.serviceaccount.identity.<control-ns>.<trust-domain>`. A DNS-like name rather than
//! a SPIFFE URI, because that is what Linkerd's CA puts in a leaf's one DNS SAN and what
//! policies (`MeshTLSAuthentication.identities`) match against, so the same policy files work
//! in the sandbox and in a real mesh.

use std::fmt;

use super::error::{IdentityError, Result};

pub const DEFAULT_CONTROL_NS: &str = "linkerd";
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";
const MARKER: &str = ".serviceaccount.identity.";
/// The longest DNS name.
const MAX_NAME: usize = 253;

/// Where identities are minted: the control plane's namespace and the trust domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ControlPlane {
    ns: String,
    trust_domain: String,
}

impl Default for ControlPlane {
    fn default() -> Self {
        ControlPlane {
            ns: DEFAULT_CONTROL_NS.to_string(),
            trust_domain: DEFAULT_TRUST_DOMAIN.to_string(),
        }
    }
}

impl ControlPlane {
    pub fn new(ns: &str, trust_domain: &str) -> Result<Self> {
        let invalid = |reason: String| IdentityError::InvalidName {
            name: format!("{ns}.{trust_domain}"),
            reason,
        };
        check_label(ns).map_err(|r| invalid(format!("control-plane namespace {ns:?}: {r}")))?;
        check_domain(trust_domain)
            .map_err(|r| invalid(format!("trust domain {trust_domain:?}: {r}")))?;
        Ok(ControlPlane {
            ns: ns.to_string(),
            trust_domain: trust_domain.to_string(),
        })
    }

    /// Reads the control plane back from an issuer's name, `identity.<control-ns>.<trust-domain>`,
    /// the name Linkerd's CLI expects on the issuer certificate.
    pub fn from_issuer_name(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("identity.")?;
        let (ns, trust_domain) = rest.split_once('.')?;
        ControlPlane::new(ns, trust_domain).ok()
    }

    pub fn ns(&self) -> &str {
        &self.ns
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The issuer's common name, as in Linkerd's certificate recipe.
    pub fn issuer_name(&self) -> String {
        format!("identity.{}.{}", self.ns, self.trust_domain)
    }

    /// The trust anchor's common name, as in Linkerd's certificate recipe.
    pub fn anchor_name(&self) -> String {
        format!("root.{}.{}", self.ns, self.trust_domain)
    }

    /// The identity of service account `sa` in namespace `ns`.
    pub fn identity(&self, sa: &str, ns: &str) -> Result<IdentityName> {
        let full = format!("{sa}.{ns}{MARKER}{}.{}", self.ns, self.trust_domain);
        let invalid = |reason: String| IdentityError::InvalidName {
            name: full.clone(),
            reason,
        };
        check_label(sa).map_err(|r| invalid(format!("service account {sa:?}: {r}")))?;
        check_label(ns).map_err(|r| invalid(format!("namespace {ns:?}: {r}")))?;
        if full.len() > MAX_NAME {
            return Err(invalid(format!("longer than {MAX_NAME} characters")));
        }
        Ok(IdentityName {
            sa_len: sa.len(),
            ns_len: ns.len(),
            control_plane: self.clone(),
            full,
        })
    }
}

/// A workload identity: one service account in one namespace under one control plane.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdentityName {
    full: String,
    sa_len: usize,
    ns_len: usize,
    control_plane: ControlPlane,
}

impl IdentityName {
    /// Parses a full identity name, e.g. the first SAN of a peer's certificate.
    pub fn parse(name: &str) -> Result<Self> {
        let invalid = |reason: &str| IdentityError::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let (workload, control) = name.split_once(MARKER).ok_or_else(|| {
            invalid("expected <sa>.<ns>.serviceaccount.identity.<control-ns>.<trust-domain>")
        })?;
        let (sa, ns) = workload
            .split_once('.')
            .ok_or_else(|| invalid("expected <sa>.<ns> before .serviceaccount.identity."))?;
        let (cp_ns, trust_domain) = control
            .split_once('.')
            .ok_or_else(|| invalid("expected <control-ns>.<trust-domain> after .identity."))?;
        ControlPlane::new(cp_ns, trust_domain)?.identity(sa, ns)
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }

    pub fn service_account(&self) -> &str {
        &self.full[..self.sa_len]
    }

    pub fn namespace(&self) -> &str {
        &self.full[self.sa_len + 1..self.sa_len + 1 + self.ns_len]
    }

    pub fn control_plane(&self) -> &ControlPlane {
        &self.control_plane
    }
}

impl fmt::Display for IdentityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// A DNS-1123 label, as Kubernetes requires of namespaces and Linkerd of every identity label.
fn check_label(label: &str) -> std::result::Result<(), String> {
    if label.is_empty() {
        return Err("is empty".into());
    }
    if label.len() > 63 {
        return Err("is longer than 63 characters".into());
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "contains {c:?}; only lower-case letters, digits and '-' are allowed"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

fn check_domain(domain: &str) -> std::result::Result<(), String> {
    domain.split('.').try_for_each(check_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_follow_linkerd() {
        let cp = ControlPlane::default();
        let id = cp.identity("web", "shop").unwrap();
        assert_eq!(
            id.as_str(),
            "web.shop.serviceaccount.identity.linkerd.cluster.local"
        );
        assert_eq!(cp.issuer_name(), "identity.linkerd.cluster.local");
        assert_eq!(cp.anchor_name(), "root.linkerd.cluster.local");
    }

    #[test]
    fn parse_gives_back_the_parts() {
        let id = IdentityName::parse("tap.linkerd-viz.serviceaccount.identity.linkerd.example.org")
            .unwrap();
        assert_eq!(id.service_account(), "tap");
        assert_eq!(id.namespace(), "linkerd-viz");
        assert_eq!(id.control_plane().ns(), "linkerd");
        assert_eq!(id.control_plane().trust_domain(), "example.org");
        assert_eq!(IdentityName::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn rejects_names_linkerd_rejects() {
        for bad in [
            "web.shop.cluster.local",
            "web.serviceaccount.identity.linkerd.cluster.local",
            "a.b.c.serviceaccount.identity.linkerd.cluster.local",
            "Web.shop.serviceaccount.identity.linkerd.cluster.local",
            "web.shop.serviceaccount.identity.linkerd",
            "web.shop.serviceaccount.identity.linkerd.cluster..local",
            "-web.shop.serviceaccount.identity.linkerd.cluster.local",
        ] {
            assert!(IdentityName::parse(bad).is_err(), "{bad}");
        }
        let err = ControlPlane::default()
            .identity("web_1", "shop")
            .unwrap_err();
        assert!(err.to_string().contains("'_'"), "{err}");
        assert!(
            ControlPlane::default()
                .identity(&"a".repeat(64), "shop")
                .is_err()
        );
        assert!(ControlPlane::new("linkerd", "Cluster.local").is_err());
    }

    #[test]
    fn control_plane_from_issuer_name() {
        let cp = ControlPlane::from_issuer_name("identity.linkerd.cluster.local").unwrap();
        assert_eq!(cp, ControlPlane::default());
        assert!(ControlPlane::from_issuer_name("root.linkerd.cluster.local").is_none());
        assert!(ControlPlane::from_issuer_name("identity.linkerd").is_none());
    }
}
