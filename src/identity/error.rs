//! The one error type of `identity`. Handshake rejections get their own variants, worded for a
//! person reading a log line, because "why did mTLS fail between these two workloads" is the
//! question the app exists to answer.

use std::path::PathBuf;
use std::time::SystemTime;

use humantime::format_rfc3339_seconds as at;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{name:?} is not a valid identity name: {reason}")]
    InvalidName { name: String, reason: String },

    /// Wraps an error about a file's contents so the message names the file.
    #[error("{}: {inner}", path.display())]
    File {
        path: PathBuf,
        inner: Box<IdentityError>,
    },
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    #[error("{what} is larger than {limit} bytes; is this really a PEM file?")]
    TooLarge { what: &'static str, limit: usize },
    #[error("malformed PEM: {0}")]
    Pem(pem::PemError),
    #[error("no PEM block {expected} found")]
    NoPem { expected: &'static str },
    #[error("more than {limit} certificates; refusing to read further")]
    TooManyCertificates { limit: usize },
    #[error("certificate #{index} is malformed: {reason}")]
    BadCertificate { index: usize, reason: String },

    #[error("{found}; Linkerd identities need an ECDSA P-256 key")]
    UnsupportedKey { found: String },
    #[error("the private key does not belong to the certificate {subject}")]
    KeyMismatch { subject: String },
    #[error(
        "{subject} is not a CA certificate (BasicConstraints CA is not set), so it cannot be a {role}"
    )]
    NotCa { subject: String, role: &'static str },
    #[error("the issuer {issuer} is not signed by any trust anchor in the bundle")]
    IssuerNotTrusted { issuer: String },
    #[error("{subject} expired at {}; generate a new one (meshlens identity init)", at(*not_after))]
    CaExpired {
        subject: String,
        not_after: SystemTime,
    },
    #[error("{subject} is not valid until {}; check this machine's clock", at(*not_before))]
    CaNotYetValid {
        subject: String,
        not_before: SystemTime,
    },
    #[error("a certificate lifetime must be longer than zero")]
    ZeroLifetime,
    #[error("cannot sign the certificate: {0}")]
    Signing(rcgen::Error),
    #[error("cannot build the TLS configuration: {0}")]
    TlsConfig(String),

    // Handshake rejections, as seen by the side that made the decision.
    #[error(
        "the peer's certificate does not chain to any trust anchor in the bundle (unknown CA); \
         both sides must share a trust anchor"
    )]
    UnknownCa,
    #[error("the peer's certificate expired{}; it must be renewed", window("at", *not_after, *now))]
    Expired {
        not_after: Option<SystemTime>,
        now: Option<SystemTime>,
    },
    #[error("the peer's certificate is not valid yet{}; check both clocks", window("until", *not_before, *now))]
    NotYetValid {
        not_before: Option<SystemTime>,
        now: Option<SystemTime>,
    },
    #[error(
        "the server is not {expected}: its certificate names {}",
        presented_names(presented)
    )]
    WrongIdentity {
        expected: String,
        presented: Vec<String>,
    },
    #[error(
        "the client sent no certificate; this server requires mutual TLS with a client identity"
    )]
    NoClientCertificate,
    #[error("the peer rejected the handshake with a {alert} alert")]
    RejectedByPeer { alert: String },
    #[error("TLS handshake failed: {0}")]
    Handshake(rustls::Error),
    #[error("connection failed: {0}")]
    Io(std::io::Error),
    #[error(
        "the peer's certificate has no DNS or URI subject alternative name, so it names no identity"
    )]
    NoPeerIdentity,
}

/// " at T (checked at N)", or what part of it rustls told us.
fn window(word: &str, limit: Option<SystemTime>, now: Option<SystemTime>) -> String {
    let mut out = String::new();
    if let Some(limit) = limit {
        out = format!(" {word} {}", at(limit));
    }
    if let Some(now) = now {
        out.push_str(&format!(" (checked at {})", at(now)));
    }
    out
}

fn presented_names(names: &[String]) -> String {
    if names.is_empty() {
        "no DNS name".to_string()
    } else {
        names.join(", ")
    }
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

impl IdentityError {
    /// Names the file an error came from.
    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        IdentityError::File {
            path: path.to_path_buf(),
            inner: Box::new(self),
        }
    }
}
