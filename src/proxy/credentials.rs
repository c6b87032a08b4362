//! The sidecar's identity from files: trust anchors, certificate chain and key, turned into
//! the TLS configurations of both proxies and reloaded when the files change. A bad or
//! foreign file is refused and the current identity stays in service.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::UNIX_EPOCH;

use rustls::{ClientConfig, ServerConfig};

use super::config::IdentityFiles;
use super::error::{ProxyError, Result};
use super::transport_header;
use crate::identity::{CurrentCert, IdentityError, IdentityName, Leaf, TrustBundle};

pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// TLS configurations built from one trust bundle.
#[derive(Debug)]
pub struct Configs {
    pub server: Arc<ServerConfig>,
    /// For HTTP between proxies: ALPN h2.
    pub client_h2: Arc<ClientConfig>,
    /// For opaque TCP: ALPN `transport.l5d.io/v1`.
    pub client_opaque: Arc<ClientConfig>,
}

#[derive(Debug)]
pub struct Credentials {
    files: IdentityFiles,
    local: IdentityName,
    cert: Arc<CurrentCert>,
    anchors_pem: RwLock<Vec<u8>>,
    configs: RwLock<Arc<Configs>>,
    not_after: AtomicI64,
}

impl Credentials {
    /// Loads the files; the certificate must carry `local`, the workload's own identity.
    pub fn load(files: &IdentityFiles, local: IdentityName) -> Result<Credentials> {
        let (anchors_pem, bundle, leaf) = read(files, &local)?;
        let cert = CurrentCert::new(&leaf)?;
        let configs = build(&bundle, cert.clone())?;
        Ok(Credentials {
            files: files.clone(),
            local,
            cert,
            anchors_pem: RwLock::new(anchors_pem),
            configs: RwLock::new(Arc::new(configs)),
            not_after: AtomicI64::new(unix(leaf.not_after())),
        })
    }

    /// Re-reads the files and puts what changed in service for new connections.
    pub fn reload(&self) -> Result<()> {
        let (anchors_pem, bundle, leaf) = read(&self.files, &self.local)?;
        let anchors_changed =
            *self.anchors_pem.read().unwrap_or_else(|p| p.into_inner()) != anchors_pem;
        if anchors_changed {
            let configs = build(&bundle, self.cert.clone())?;
            *self.configs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(configs);
            *self.anchors_pem.write().unwrap_or_else(|p| p.into_inner()) = anchors_pem;
        }
        self.cert.swap(&leaf)?;
        self.not_after
            .store(unix(leaf.not_after()), Ordering::Relaxed);
        Ok(())
    }

    pub fn configs(&self) -> Arc<Configs> {
        self.configs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn local(&self) -> &IdentityName {
        &self.local
    }

    pub fn cert(&self) -> &Arc<CurrentCert> {
        &self.cert
    }

    /// The current leaf's expiry, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after.load(Ordering::Relaxed)
    }

    pub fn paths(&self) -> Vec<std::path::PathBuf> {
        vec![
            self.files.trust_anchors.clone(),
            self.files.cert.clone(),
            self.files.key.clone(),
        ]
    }
}

fn read(files: &IdentityFiles, local: &IdentityName) -> Result<(Vec<u8>, TrustBundle, Leaf)> {
    let path = &files.trust_anchors;
    let anchors_pem = std::fs::read(path).map_err(|e| IdentityError::Read(e).in_file(path))?;
    let bundle = TrustBundle::from_pem(&anchors_pem).map_err(|e| e.in_file(path))?;
    let leaf = Leaf::load(&files.cert, &files.key)?;
    if leaf.name() != local {
        return Err(ProxyError::Config {
            path: files.cert.clone(),
            message: format!(
                "the certificate is for {}, but this workload is {} (its namespace and serviceAccount)",
                leaf.name().as_str(),
                local.as_str()
            ),
        });
    }
    Ok((anchors_pem, bundle, leaf))
}

fn build(bundle: &TrustBundle, cert: Arc<CurrentCert>) -> Result<Configs> {
    let mut server = (*crate::identity::server_config(bundle, cert.clone())?).clone();
    server.alpn_protocols = vec![
        ALPN_H2.to_vec(),
        ALPN_HTTP1.to_vec(),
        transport_header::ALPN.to_vec(),
    ];
    let client = crate::identity::client_config(bundle, cert)?;
    let with_alpn = |alpn: &[u8]| {
        let mut c = (*client).clone();
        c.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(c)
    };
    Ok(Configs {
        server: Arc::new(server),
        client_h2: with_alpn(ALPN_H2),
        client_opaque: with_alpn(transport_header::ALPN),
    })
}

fn unix(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
