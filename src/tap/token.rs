//! OIDC bearer tokens for tap: a JWT signed by a key of a JWKS file (RS256 or ES256), with
//! its issuer, audience and validity window checked, and its subject or e-mail on an allow
//! list. For people who tap through an identity provider rather than with a mesh
//! certificate.
//!
//! Parsing and claim checks are `jsonwebtoken`'s; its signatures are computed by `ring`, the
//! library rustls already uses here, through the small [`CryptoProvider`] below, instead of
//! pulling in a second crypto stack. `exp`, `iss` and `aud` are required claims, and `nbf` is
//! checked when present.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Once;

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature as rs;
use serde::Deserialize;

/// The largest JWKS file read.
pub const MAX_JWKS_BYTES: u64 = 1024 * 1024;
/// The longest token looked at.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// `admin.tapTokens` in a sidecar's config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenConfig {
    /// A JWKS file (`{"keys": [...]}`) with the identity provider's signing keys.
    pub jwks: PathBuf,
    /// The `iss` tokens must carry.
    pub issuer: String,
    /// An `aud` tokens must carry.
    pub audience: String,
    /// Subjects (`sub`) or e-mail addresses (`email`) that may tap.
    pub allow: Vec<String>,
}

/// Why a token was not accepted: one line for the 401 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    /// Only when the provider did not say it is unverified.
    pub email: Option<String>,
}

impl Principal {
    /// How the principal is named in messages: `sub` (and e-mail).
    pub fn name(&self) -> String {
        match &self.email {
            Some(e) => format!("token subject {} ({e})", self.subject),
            None => format!("token subject {}", self.subject),
        }
    }
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

pub struct TokenVerifier {
    keys: Vec<Key>,
    issuer: String,
    audience: String,
    allow: HashSet<String>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
}

impl TokenVerifier {
    /// Reads the JWKS file; keys other than RSA and P-256 EC signing keys are skipped, and a
    /// file without any usable key is an error.
    pub fn load(config: &TokenConfig) -> Result<TokenVerifier, TokenError> {
        let path = &config.jwks;
        let text = read_bounded(path)?;
        let keys = parse_jwks(&text).map_err(|e| TokenError(format!("{}: {e}", path.display())))?;
        if config.allow.is_empty() {
            return Err(TokenError(format!(
                "tapTokens.allow for {} is empty: list the subjects or e-mails that may tap",
                path.display()
            )));
        }
        Ok(TokenVerifier {
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            allow: config.allow.iter().cloned().collect(),
        })
    }

    /// Checks the signature and claims; the principal is returned even when it is not on
    /// the allow list, so the caller can say who was refused (see [`allows`](Self::allows)).
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        install_crypto();
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError(format!(
                "the bearer token is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError(format!("the bearer token is not a JWT: {e}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenError(format!(
                "the bearer token is signed with {:?}; only RS256 and ES256 are accepted",
                header.alg
            )));
        }
        let candidates: Vec<&Key> = self
            .keys
            .iter()
            .filter(|k| k.alg == header.alg)
            .filter(|k| header.kid.is_none() || k.kid == header.kid)
            .collect();
        if candidates.is_empty() {
            return Err(TokenError(format!(
                "no {:?} key{} in the JWKS",
                header.alg,
                header
                    .kid
                    .as_ref()
                    .map(|k| format!(" with kid `{k}`"))
                    .unwrap_or_default()
            )));
        }
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        let mut last = None;
        for k in candidates {
            match jsonwebtoken::decode::<Claims>(token, &k.key, &validation) {
                Ok(data) => {
                    let c = data.claims;
                    let subject = c.sub.unwrap_or_default();
                    return Ok(Principal {
                        subject,
                        email: c.email.filter(|_| c.email_verified != Some(false)),
                    });
                }
                Err(e) => {
                    let signature = matches!(e.kind(), ErrorKind::InvalidSignature);
                    last = Some(e);
                    if !signature {
                        break;
                    }
                }
            }
        }
        Err(TokenError(describe(
            last.as_ref(),
            &self.issuer,
            &self.audience,
        )))
    }

    /// Whether the principal's subject or e-mail is on the allow list.
    pub fn allows(&self, p: &Principal) -> bool {
        (!p.subject.is_empty() && self.allow.contains(&p.subject))
            || p.email.as_ref().is_some_and(|e| self.allow.contains(e))
    }

    /// The allow list, sorted, for messages.
    pub fn allowed(&self) -> Vec<String> {
        let mut v: Vec<String> = self.allow.iter().cloned().collect();
        v.sort();
        v
    }
}

fn describe(e: Option<&JwtError>, issuer: &str, audience: &str) -> String {
    let Some(e) = e else {
        return "the bearer token was not verified".into();
    };
    match e.kind() {
        ErrorKind::InvalidSignature => {
            "the bearer token's signature does not verify with any key of the JWKS".into()
        }
        ErrorKind::ExpiredSignature => "the bearer token has expired (exp)".into(),
        ErrorKind::ImmatureSignature => "the bearer token is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => format!("the bearer token's issuer (iss) is not {issuer}"),
        ErrorKind::InvalidAudience => {
            format!("the bearer token's audience (aud) does not include {audience}")
        }
        ErrorKind::MissingRequiredClaim(c) => format!("the bearer token has no `{c}` claim"),
        ErrorKind::InvalidClaimFormat(c) => {
            format!("the bearer token's `{c}` claim has the wrong type")
        }
        other => format!("the bearer token is not valid: {other:?}"),
    }
}

fn read_bounded(path: &Path) -> Result<String, TokenError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .map_err(|e| TokenError(format!("cannot read the JWKS {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(MAX_JWKS_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| TokenError(format!("cannot read the JWKS {}: {e}", path.display())))?;
    if text.len() as u64 > MAX_JWKS_BYTES {
        return Err(TokenError(format!(
            "the JWKS {} is larger than {MAX_JWKS_BYTES} bytes",
            path.display()
        )));
    }
    Ok(text)
}

fn parse_jwks(text: &str) -> Result<Vec<Key>, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let list = json
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("not a JWKS: no `keys` array")?;
    let mut keys = Vec::new();
    for (i, k) in list.iter().enumerate() {
        let field = |name: &str| k.get(name).and_then(|v| v.as_str());
        if field("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let kid = field("kid").map(str::to_string);
        let parsed = match (field("kty"), field("crv")) {
            (Some("RSA"), _) => match (field("n"), field("e")) {
                (Some(n), Some(e)) => DecodingKey::from_rsa_components(n, e)
                    .map(|key| (Algorithm::RS256, key))
                    .map_err(|e| format!("keys[{i}]: bad RSA key: {e}"))?,
                _ => return Err(format!("keys[{i}]: an RSA key needs `n` and `e`")),
            },
            (Some("EC"), Some("P-256")) => match (field("x"), field("y")) {
                (Some(x), Some(y)) => DecodingKey::from_ec_components(x, y)
                    .map(|key| (Algorithm::ES256, key))
                    .map_err(|e| format!("keys[{i}]: bad EC key: {e}"))?,
                _ => return Err(format!("keys[{i}]: an EC key needs `x` and `y`")),
            },
            _ => continue,
        };
        let (alg, key) = parsed;
        if field("alg").is_some_and(|a| a != format!("{alg:?}")) {
            continue;
        }
        keys.push(Key { kid, alg, key });
    }
    if keys.is_empty() {
        return Err("no RS256 or ES256 signing key among its keys".into());
    }
    Ok(keys)
}

/// Installs the ring-backed provider for `jsonwebtoken` once per process (a provider someone
/// installed before stays).
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = RING.install_default();
    });
}

static RING: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

fn unsupported() -> JwtError {
    ErrorKind::UnsupportedAlgorithm.into()
}

struct RingVerifier {
    alg: Algorithm,
    kind: DecodingKeyKind,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let ok = match (&self.kind, self.alg) {
            (DecodingKeyKind::RsaModulusExponent { n, e }, Algorithm::RS256) => {
                rs::RsaPublicKeyComponents { n, e }
                    .verify(&rs::RSA_PKCS1_2048_8192_SHA256, msg, sig)
                    .is_ok()
            }
            (DecodingKeyKind::SecretOrDer(der), Algorithm::RS256) => {
                rs::UnparsedPublicKey::new(&rs::RSA_PKCS1_2048_8192_SHA256, der)
                    .verify(msg, sig)
                    .is_ok()
            }
            (DecodingKeyKind::SecretOrDer(point), Algorithm::ES256) => {
                rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, sig)
                    .is_ok()
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, JwtError> {
    let family = match alg {
        Algorithm::RS256 => AlgorithmFamily::Rsa,
        Algorithm::ES256 => AlgorithmFamily::Ec,
        _ => return Err(unsupported()),
    };
    if key.family() != family {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingVerifier {
        alg: *alg,
        kind: key.kind().clone(),
    }))
}

enum RingSigner {
    Rsa(rs::RsaKeyPair),
    Ec(rs::EcdsaKeyPair),
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let rng = ring::rand::SystemRandom::new();
        match self {
            RingSigner::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&rs::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .map_err(|_| signature::Error::new())?;
                Ok(sig)
            }
            RingSigner::Ec(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        match self {
            RingSigner::Rsa(_) => Algorithm::RS256,
            RingSigner::Ec(_) => Algorithm::ES256,
        }
    }
}

/// Signing, for minting tokens in tests and tools: RS256 from a PKCS#1 or PKCS#8 DER key,
/// ES256 from a PKCS#8 DER key.
fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, JwtError> {
    let der = key.as_bytes();
    match alg {
        Algorithm::RS256 => rs::RsaKeyPair::from_der(der)
            .or_else(|_| rs::RsaKeyPair::from_pkcs8(der))
            .map(|k| Box::new(RingSigner::Rsa(k)) as Box<dyn JwtSigner>)
            .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()).into()),
        Algorithm::ES256 => rs::EcdsaKeyPair::from_pkcs8(
            &rs::ECDSA_P256_SHA256_FIXED_SIGNING,
            der,
            &ring::rand::SystemRandom::new(),
        )
        .map(|k| Box::new(RingSigner::Ec(k)) as Box<dyn JwtSigner>)
        .map_err(|_| ErrorKind::InvalidEcdsaKey.into()),
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rs::KeyPair as _;

    fn b64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    struct Provider {
        dir: tempfile::TempDir,
        ec: Vec<u8>,
    }

    impl Provider {
        fn new() -> Provider {
            install_crypto();
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 =
                rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .unwrap();
            let pair = rs::EcdsaKeyPair::from_pkcs8(
                &rs::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
                &rng,
            )
            .unwrap();
            let point = pair.public_key().as_ref();
            let jwks = serde_json::json!({"keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
                {"kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig",
                 "x": b64(&point[1..33]), "y": b64(&point[33..])},
            ]});
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
            Provider {
                dir,
                ec: pkcs8.as_ref().to_vec(),
            }
        }

        fn verifier(&self) -> TokenVerifier {
            TokenVerifier::load(&TokenConfig {
                jwks: self.dir.path().join("jwks.json"),
                issuer: "https://idp.example".into(),
                audience: "meshlens".into(),
                allow: vec!["alice@example.com".into()],
            })
            .unwrap()
        }

        fn mint(&self, claims: serde_json::Value) -> String {
            let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
            header.kid = Some("ec1".into());
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&self.ec)).unwrap()
        }
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn a_good_token_names_its_principal_and_bad_ones_say_why() {
        let p = Provider::new();
        let v = p.verifier();
        let good = serde_json::json!({"iss": "https://idp.example", "aud": "meshlens",
            "sub": "u1", "email": "alice@example.com", "exp": now() + 600});
        let principal = v.verify(&p.mint(good.clone())).unwrap();
        assert_eq!(principal.subject, "u1");
        assert!(v.allows(&principal));

        let with = |k: &str, val: serde_json::Value| {
            let mut c = good.clone();
            c[k] = val;
            v.verify(&p.mint(c)).unwrap_err().to_string()
        };
        assert_eq!(
            with("exp", (now() - 3600).into()),
            "the bearer token has expired (exp)"
        );
        assert_eq!(
            with("nbf", (now() + 3600).into()),
            "the bearer token is not valid yet (nbf)"
        );
        // A string where a number belongs is refused, not skipped.
        assert!(with("nbf", "99999999999".into()).contains("nbf"));
        assert_eq!(
            with("iss", "https://evil.example".into()),
            "the bearer token's issuer (iss) is not https://idp.example"
        );
        assert_eq!(
            with("aud", "other".into()),
            "the bearer token's audience (aud) does not include meshlens"
        );
        let mut no_exp = good.clone();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            v.verify(&p.mint(no_exp)).unwrap_err().to_string(),
            "the bearer token has no `exp` claim"
        );
        let mut c = good.clone();
        c["email_verified"] = false.into();
        let p2 = v.verify(&p.mint(c)).unwrap();
        assert!(!v.allows(&p2), "an unverified e-mail does not count");

        // Signed by another key.
        let other = Provider::new();
        assert_eq!(
            v.verify(&other.mint(good)).unwrap_err().to_string(),
            "the bearer token's signature does not verify with any key of the JWKS"
        );
        assert!(v.verify("not.a.jwt").is_err());
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &serde_json::json!({}),
            &EncodingKey::from_secret(b"k"),
        );
        // Our provider refuses to sign HS256 at all, so nothing can even mint one here.
        assert!(hs.is_err());
    }

    #[test]
    fn a_jwks_without_usable_keys_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, r#"{"keys": [{"kty": "oct", "k": "AA"}]}"#).unwrap();
        let config = TokenConfig {
            jwks: path.clone(),
            issuer: "i".into(),
            audience: "a".into(),
            allow: vec!["x".into()],
        };
        let err = TokenVerifier::load(&config).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: no RS256 or ES256 signing key among its keys",
                path.display()
            )
        );
        std::fs::write(&path, "[]").unwrap();
        let err = TokenVerifier::load(&config).unwrap_err().to_string();
        assert!(err.ends_with("not a JWKS: no `keys` array"), "{err}");
    }
}
