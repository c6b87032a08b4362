//! Reading certificates: PEM files (with size limits, since they may come from anyone) and the
//! few facts about a certificate that identity cares about — names, validity, key type, CA bit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA256WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384,
};
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::X509Name;

use super::error::{IdentityError, Result};

/// A trust bundle or a chain is a few kilobytes; anything this big is not one.
pub const MAX_PEM_BYTES: usize = 1 << 20;
/// More anchors than any rotation needs, few enough to bound the work.
pub const MAX_CERTS: usize = 64;

/// Every `CERTIFICATE` block of a PEM text, in order. Other blocks are skipped.
pub fn certs_from_pem(text: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    if text.len() > MAX_PEM_BYTES {
        return Err(IdentityError::TooLarge {
            what: "the certificate file",
            limit: MAX_PEM_BYTES,
        });
    }
    let blocks = pem::parse_many(text).map_err(IdentityError::Pem)?;
    let mut certs = Vec::new();
    for block in blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE") {
        if certs.len() == MAX_CERTS {
            return Err(IdentityError::TooManyCertificates { limit: MAX_CERTS });
        }
        certs.push(CertificateDer::from(block.into_contents()));
    }
    if certs.is_empty() {
        return Err(IdentityError::NoPem {
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// PEM text for certificates, in the order given.
pub fn certs_to_pem<'a>(certs: impl IntoIterator<Item = &'a CertificateDer<'a>>) -> String {
    certs
        .into_iter()
        .map(|c| pem_block("CERTIFICATE", c.as_ref()))
        .collect()
}

pub(crate) fn pem_block(tag: &str, der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(tag, der), config)
}

/// What a certificate says, in owned, printable form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's common name, or the whole subject when it has none.
    pub subject: String,
    pub issuer: String,
    /// The serial number as colon-separated hex bytes (`01:a3:...`), as `openssl x509` prints it,
    /// so an operator can match it against what a CA logged.
    pub serial: String,
    /// DNS and URI subject alternative names, in certificate order.
    pub sans: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub is_ca: bool,
    /// "ECDSA P-256", "RSA 2048", ...
    pub key: String,
    /// "ECDSA with SHA-256", ...
    pub signature: String,
    /// The raw public key (for EC keys: the uncompressed point), to match a private key against.
    pub public_key: Vec<u8>,
    self_signed: bool,
}

impl CertInfo {
    /// Parses one DER certificate; `index` is its position in the file, for the message.
    pub fn parse(der: &[u8], index: usize) -> Result<Self> {
        let bad = |reason: String| IdentityError::BadCertificate { index, reason };
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the certificate".into()));
        }
        let sans = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(n) | GeneralName::URI(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(bad(format!("subject alternative names: {e}"))),
        };
        let is_ca = match cert.basic_constraints() {
            Ok(bc) => bc.is_some_and(|bc| bc.value.ca),
            Err(e) => return Err(bad(format!("basic constraints: {e}"))),
        };
        let validity = cert.validity();
        Ok(CertInfo {
            subject: display_name(cert.subject()),
            issuer: display_name(cert.issuer()),
            serial: cert.raw_serial_as_string(),
            sans,
            not_before: system_time(validity.not_before.timestamp()),
            not_after: system_time(validity.not_after.timestamp()),
            is_ca,
            key: key_kind(&cert),
            signature: signature_kind(&cert),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            self_signed: cert.subject() == cert.issuer(),
        })
    }

    /// The identity a certificate speaks for: its first DNS or URI SAN, as Linkerd's proxy reads it.
    pub fn identity(&self) -> Option<&str> {
        self.sans.first().map(String::as_str)
    }

    pub fn is_p256(&self) -> bool {
        self.key == P256
    }

    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }
}

const P256: &str = "ECDSA P-256";

/// Whether `child`'s signature verifies under `parent`'s public key. Malformed input is "no".
pub fn is_signed_by(child: &[u8], parent: &[u8]) -> bool {
    let (Ok((_, child)), Ok((_, parent))) = (
        X509Certificate::from_der(child),
        X509Certificate::from_der(parent),
    ) else {
        return false;
    };
    child.issuer() == parent.subject() && child.verify_signature(Some(parent.public_key())).is_ok()
}

fn display_name(name: &X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map_or_else(|| name.to_string(), str::to_string)
}

fn key_kind(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == OID_EC_P256 => P256.to_string(),
            Some(c) => format!("ECDSA on curve {c}"),
            None => "ECDSA (unknown curve)".to_string(),
        }
    } else if *alg == OID_PKCS1_RSAENCRYPTION {
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
            _ => "RSA".to_string(),
        }
    } else {
        format!("key type {alg}")
    }
}

fn signature_kind(cert: &X509Certificate<'_>) -> String {
    let alg = &cert.signature_algorithm.algorithm;
    if *alg == OID_SIG_ECDSA_WITH_SHA256 {
        "ECDSA with SHA-256".into()
    } else if *alg == OID_SIG_ECDSA_WITH_SHA384 {
        "ECDSA with SHA-384".into()
    } else if *alg == OID_PKCS1_SHA256WITHRSA {
        "RSA with SHA-256".into()
    } else {
        format!("signature {alg}")
    }
}

pub(crate) fn system_time(unix_seconds: i64) -> SystemTime {
    if unix_seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(unix_seconds.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(unix_seconds.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_limits_and_errors() {
        assert!(matches!(
            certs_from_pem(b"hello"),
            Err(IdentityError::NoPem { .. })
        ));
        assert!(matches!(
            certs_from_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            Err(IdentityError::Pem(_))
        ));
        let big = vec![b'a'; MAX_PEM_BYTES + 1];
        assert!(matches!(
            certs_from_pem(&big),
            Err(IdentityError::TooLarge { .. })
        ));
        let many = pem_block("CERTIFICATE", b"x").repeat(MAX_CERTS + 1);
        assert!(matches!(
            certs_from_pem(many.as_bytes()),
            Err(IdentityError::TooManyCertificates { .. })
        ));
    }

    #[test]
    fn garbage_der_is_an_error_not_a_panic() {
        let err = CertInfo::parse(b"\x30\x03\x02\x01\x00", 2).unwrap_err();
        assert!(
            err.to_string().starts_with("certificate #2 is malformed"),
            "{err}"
        );
    }
}
