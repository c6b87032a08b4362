//! Linkerd identity names, kept local and small: the policy engine only needs to build a
//! ServiceAccount's name, check a name's shape and match names against exact, suffix and `*`
//! patterns (the full identity machinery lives in `identity/`).

use std::fmt;

/// The part of every identity name after `<sa>.<ns>.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityDomain {
    pub control_namespace: String,
    pub trust_domain: String,
}

impl Default for IdentityDomain {
    fn default() -> IdentityDomain {
        IdentityDomain {
            control_namespace: "linkerd".into(),
            trust_domain: "cluster.local".into(),
        }
    }
}

impl IdentityDomain {
    fn suffix(&self) -> String {
        format!(
            "serviceaccount.identity.{}.{}",
            self.control_namespace, self.trust_domain
        )
    }

    /// `<sa>.<ns>.serviceaccount.identity.<control-ns>.<trust-domain>`.
    pub fn service_account(&self, namespace: &str, service_account: &str) -> String {
        format!("{service_account}.{namespace}.{}", self.suffix())
    }

    /// The wildcard for every ServiceAccount of a namespace.
    pub fn namespace_wildcard(&self, namespace: &str) -> IdentityMatch {
        IdentityMatch::Suffix(format!(".{namespace}.{}", self.suffix()))
    }

    /// `(namespace, service account)` of a name in this domain, for lint cross-checks.
    pub fn split<'a>(&self, id: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = id.strip_suffix(&self.suffix())?.strip_suffix('.')?;
        let (sa, ns) = rest.split_once('.')?;
        (!ns.contains('.')).then_some((ns, sa))
    }
}

/// One entry of an identity list: an exact name, `*.suffix`, or `*` (any authenticated client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityMatch {
    Exact(String),
    /// Stored with its leading dot: `.shop.serviceaccount.identity.linkerd.cluster.local`.
    Suffix(String),
    Any,
}

impl IdentityMatch {
    /// Parses and checks a name the way Linkerd's admission webhook does: DNS-1123 labels,
    /// an optional leading `*.` wildcard, or a `spiffe://` URI.
    pub fn parse(s: &str) -> Result<IdentityMatch, String> {
        if s == "*" {
            return Ok(IdentityMatch::Any);
        }
        if let Some(rest) = s.strip_prefix("spiffe://") {
            return if rest.is_empty() || rest.contains(char::is_whitespace) {
                Err(format!("`{s}` is not a valid SPIFFE id"))
            } else {
                Ok(IdentityMatch::Exact(s.to_string()))
            };
        }
        let (wild, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if !is_dns_name(name) {
            return Err(format!(
                "`{s}` is not a valid identity: expected DNS labels such as \
                 <sa>.<ns>.serviceaccount.identity.linkerd.cluster.local, `*.<suffix>` or `*`"
            ));
        }
        Ok(if wild {
            IdentityMatch::Suffix(format!(".{name}"))
        } else {
            IdentityMatch::Exact(name.to_string())
        })
    }

    pub fn matches(&self, id: &str) -> bool {
        match self {
            IdentityMatch::Exact(e) => e == id,
            IdentityMatch::Suffix(s) => id.len() > s.len() && id.ends_with(s.as_str()),
            IdentityMatch::Any => true,
        }
    }
}

impl fmt::Display for IdentityMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityMatch::Exact(e) => f.write_str(e),
            IdentityMatch::Suffix(s) => write!(f, "*{s}"),
            IdentityMatch::Any => f.write_str("*"),
        }
    }
}

/// A DNS-1123 label: 1–63 lower-case alphanumerics or `-`, not starting or ending with `-`.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Dot-separated DNS-1123 labels, at most 253 characters.
pub fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_splits_service_account_names() {
        let d = IdentityDomain::default();
        let id = d.service_account("shop", "web");
        assert_eq!(id, "web.shop.serviceaccount.identity.linkerd.cluster.local");
        assert_eq!(d.split(&id), Some(("shop", "web")));
        assert_eq!(d.split("web.shop.example.com"), None);
    }

    #[test]
    fn wildcards_match_only_below_their_suffix() {
        let ns = IdentityDomain::default().namespace_wildcard("shop");
        assert!(ns.matches("web.shop.serviceaccount.identity.linkerd.cluster.local"));
        assert!(!ns.matches("web.shop2.serviceaccount.identity.linkerd.cluster.local"));
        assert!(!ns.matches(".shop.serviceaccount.identity.linkerd.cluster.local"));
        assert_eq!(
            IdentityMatch::parse("*.shop.serviceaccount.identity.linkerd.cluster.local").unwrap(),
            ns
        );
        assert!(IdentityMatch::parse("*").unwrap().matches("anything"));
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in ["", "Web.shop", "a..b", "-a.b", "a b", "*.", "**"] {
            assert!(IdentityMatch::parse(bad).is_err(), "{bad}");
        }
        assert!(IdentityMatch::parse("spiffe://cluster.local/ns/shop/sa/web").is_ok());
    }
}
