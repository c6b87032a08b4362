//! The workload's current certificate, swappable while serving. rustls asks the resolver once
//! per handshake, so a swap reaches new connections only; established ones keep the keys they
//! negotiated and are never dropped. This is how renewals and issuer rotations go live.

use std::sync::{Arc, RwLock};

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::ca::Leaf;
use super::error::{IdentityError, Result};
use super::tls::provider;

#[derive(Debug)]
pub struct CurrentCert {
    key: RwLock<Arc<CertifiedKey>>,
}

impl CurrentCert {
    pub fn new(leaf: &Leaf) -> Result<Arc<Self>> {
        Ok(Arc::new(CurrentCert {
            key: RwLock::new(certified_key(leaf)?),
        }))
    }

    /// Serves `leaf` from the next handshake on.
    pub fn swap(&self, leaf: &Leaf) -> Result<()> {
        let key = certified_key(leaf)?;
        // A poisoned lock still holds a whole Arc: a writer cannot leave it half-written.
        *self.key.write().unwrap_or_else(|p| p.into_inner()) = key;
        Ok(())
    }

    pub fn get(&self) -> Arc<CertifiedKey> {
        self.key.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

impl ResolvesClientCert for CurrentCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn certified_key(leaf: &Leaf) -> Result<Arc<CertifiedKey>> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_pkcs8_der().to_vec()));
    CertifiedKey::from_der(leaf.chain().to_vec(), key, &provider())
        .map(Arc::new)
        .map_err(|e| IdentityError::TlsConfig(format!("certificate and key: {e}")))
}
