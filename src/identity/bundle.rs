//! Trust bundles: the anchors a workload accepts peers from. Several at once, because rotating
//! a trust anchor means trusting old and new together until every proxy has rolled
//! (Linkerd's `LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS` is such a PEM bundle).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use super::cert::{CertInfo, certs_from_pem, certs_to_pem};
use super::error::{IdentityError, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustBundle {
    anchors: Vec<CertificateDer<'static>>,
}

impl TrustBundle {
    /// Every anchor must be a CA certificate; order is kept.
    pub fn new(anchors: Vec<CertificateDer<'static>>) -> Result<Self> {
        if anchors.is_empty() {
            return Err(IdentityError::NoPem {
                expected: "CERTIFICATE",
            });
        }
        for (index, anchor) in anchors.iter().enumerate() {
            let info = CertInfo::parse(anchor, index + 1)?;
            if !info.is_ca {
                return Err(IdentityError::NotCa {
                    subject: info.subject,
                    role: "trust anchor",
                });
            }
        }
        Ok(TrustBundle { anchors })
    }

    pub fn from_pem(text: &[u8]) -> Result<Self> {
        TrustBundle::new(certs_from_pem(text)?)
    }

    /// This bundle plus the other's anchors that it lacks: old + new during a rotation.
    pub fn merged(&self, other: &TrustBundle) -> TrustBundle {
        let mut anchors = self.anchors.clone();
        for anchor in &other.anchors {
            if !anchors.contains(anchor) {
                anchors.push(anchor.clone());
            }
        }
        TrustBundle { anchors }
    }

    pub fn anchors(&self) -> &[CertificateDer<'static>] {
        &self.anchors
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    pub fn to_pem(&self) -> String {
        certs_to_pem(&self.anchors)
    }

    /// The anchors as rustls roots, for the peer verifiers.
    pub fn root_store(&self) -> Result<Arc<RootCertStore>> {
        let mut store = RootCertStore::empty();
        for anchor in &self.anchors {
            store
                .add(anchor.clone())
                .map_err(|e| IdentityError::TlsConfig(format!("trust anchor: {e}")))?;
        }
        Ok(Arc::new(store))
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::identity::{Ca, ControlPlane, LeafPolicy};

    #[test]
    fn merging_keeps_order_and_drops_duplicates() {
        let now = SystemTime::now();
        let old = Ca::generate(&ControlPlane::default(), now).unwrap();
        let new = Ca::generate(&ControlPlane::default(), now).unwrap();
        let both = old.bundle().merged(new.bundle()).merged(old.bundle());
        assert_eq!(both.len(), 2);
        assert_eq!(both.anchors()[0], old.bundle().anchors()[0]);
        assert_eq!(
            TrustBundle::from_pem(both.to_pem().as_bytes()).unwrap(),
            both
        );
        assert_eq!(both.root_store().unwrap().len(), 2);
    }

    #[test]
    fn a_leaf_is_not_an_anchor() {
        let now = SystemTime::now();
        let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
        let name = ControlPlane::default().identity("web", "shop").unwrap();
        let leaf = ca.issue(&name, &LeafPolicy::default(), now).unwrap();
        let err = TrustBundle::from_pem(leaf.chain_pem().as_bytes()).unwrap_err();
        assert!(matches!(err, IdentityError::NotCa { .. }), "{err}");
    }
}
