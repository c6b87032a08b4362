//! Signing keys: generating ECDSA P-256 keys and reading the ones teams already have.
//! Linkerd's CA refuses anything but P-256, and so do we, with a message that says what was
//! found instead. Keys made by `openssl ecparam -genkey` or `step` come as SEC1
//! (`EC PRIVATE KEY`); ring only reads PKCS#8, so those are rewrapped.

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::PrivatePkcs8KeyDer;

use super::cert::{MAX_PEM_BYTES, pem_block};
use super::error::{IdentityError, Result};

pub(crate) fn generate() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(IdentityError::Signing)
}

/// The key as PKCS#8 PEM (`PRIVATE KEY`), the form Linkerd's proxies write.
pub(crate) fn to_pem(key: &KeyPair) -> String {
    pem_block("PRIVATE KEY", key.serialized_der())
}

/// Reads the first private key block of a PEM text; other blocks (`EC PARAMETERS`) are skipped.
pub(crate) fn from_pem(text: &[u8]) -> Result<KeyPair> {
    if text.len() > MAX_PEM_BYTES {
        return Err(IdentityError::TooLarge {
            what: "the key file",
            limit: MAX_PEM_BYTES,
        });
    }
    let blocks = pem::parse_many(text).map_err(IdentityError::Pem)?;
    let unsupported = |found: &str| IdentityError::UnsupportedKey {
        found: found.to_string(),
    };
    for block in blocks {
        let der = block.contents();
        return match block.tag() {
            "PRIVATE KEY" => from_pkcs8(der),
            "EC PRIVATE KEY" => {
                from_pkcs8(&sec1_to_pkcs8(der)?).map_err(|_| unsupported("not a P-256 EC key"))
            }
            "RSA PRIVATE KEY" => Err(unsupported("an RSA key")),
            "ENCRYPTED PRIVATE KEY" => Err(unsupported(
                "an encrypted key (decrypt it first: openssl pkcs8 -in KEY -out PLAIN.key)",
            )),
            _ => continue,
        };
    }
    Err(IdentityError::NoPem {
        expected: "PRIVATE KEY or EC PRIVATE KEY",
    })
}

fn from_pkcs8(der: &[u8]) -> Result<KeyPair> {
    let key = KeyPair::try_from(&PrivatePkcs8KeyDer::from(der)).map_err(|e| {
        IdentityError::UnsupportedKey {
            found: format!("unreadable or unsupported private key ({e})"),
        }
    })?;
    if key.algorithm() == &PKCS_ECDSA_P256_SHA256 {
        return Ok(key);
    }
    let found = if key.is_compatible(&rcgen::PKCS_RSA_SHA256) {
        "an RSA key"
    } else if key.is_compatible(&rcgen::PKCS_ECDSA_P384_SHA384) {
        "an ECDSA P-384 key"
    } else {
        "an Ed25519 key"
    };
    Err(IdentityError::UnsupportedKey {
        found: found.to_string(),
    })
}

/// SEC1 `ECPrivateKey` wrapped in PKCS#8 with the P-256 algorithm identifier (RFC 5915 §3).
/// If the key is on another curve its own parameters disagree and ring rejects it.
fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>> {
    // INTEGER 0, SEQUENCE { id-ecPublicKey, prime256v1 }
    const PREFIX: &[u8] = b"\x02\x01\x00\x30\x13\
        \x06\x07\x2a\x86\x48\xce\x3d\x02\x01\
        \x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07";
    let mut body = PREFIX.to_vec();
    body.extend(der_tlv(0x04, sec1)?);
    der_tlv(0x30, &body)
}

fn der_tlv(tag: u8, content: &[u8]) -> Result<Vec<u8>> {
    let len = content.len();
    let mut out = vec![tag];
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend([0x81, len as u8]),
        0x100..=0xffff => out.extend([0x82, (len >> 8) as u8, len as u8]),
        _ => {
            return Err(IdentityError::UnsupportedKey {
                found: "an oversized EC key".into(),
            });
        }
    }
    out.extend_from_slice(content);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem() {
        let key = generate().unwrap();
        let back = from_pem(to_pem(&key).as_bytes()).unwrap();
        assert_eq!(back.public_key_raw(), key.public_key_raw());
    }

    #[test]
    fn rejects_what_linkerd_rejects() {
        let rsa = pem_block("RSA PRIVATE KEY", b"\x30\x00");
        let err = from_pem(rsa.as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("an RSA key;"), "{err}");
        let junk = pem_block("PRIVATE KEY", b"\x30\x00");
        assert!(matches!(
            from_pem(junk.as_bytes()),
            Err(IdentityError::UnsupportedKey { .. })
        ));
        assert!(matches!(
            from_pem(b"no pem here"),
            Err(IdentityError::NoPem { .. })
        ));
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_tlv(4, &[1; 3]).unwrap()[..2], [4, 3]);
        assert_eq!(der_tlv(4, &[1; 200]).unwrap()[..3], [4, 0x81, 200]);
        assert_eq!(der_tlv(4, &[1; 300]).unwrap()[..4], [4, 0x82, 1, 44]);
    }
}
