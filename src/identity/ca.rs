//! The certificate authority: a trust anchor, an issuer signed by it, and per-workload leaves
//! with Linkerd's profile (`pkg/tls/ca.go` in linkerd2): ECDSA P-256 with SHA-256, subject CN
//! and exactly one DNS SAN equal to the identity, serverAuth + clientAuth, NotBefore backdated
//! by the clock-skew allowance and NotAfter clamped to the issuer chain's expiry, so a sandbox
//! leaf is indistinguishable from one a real control plane issues.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;

use super::bundle::TrustBundle;
use super::cert::{CertInfo, certs_from_pem, certs_to_pem, is_signed_by};
use super::error::{IdentityError, Result};
use super::key;
use super::name::{ControlPlane, IdentityName};

/// Chart defaults: `identity.issuer.issuanceLifetime` and `clockSkewAllowance`.
pub const DEFAULT_LEAF_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(20);
/// Linkerd's docs recipe: a ten-year root, a one-year issuer.
const ANCHOR_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
const ISSUER_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Proxies re-certify when this share of a leaf's lifetime has passed.
const RENEW_PERCENT: u32 = 70;

/// How long leaves live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafPolicy {
    pub lifetime: Duration,
    /// NotBefore is this much before issuance and NotAfter this much after the lifetime, so
    /// peers whose clocks are slightly off still accept the certificate.
    pub clock_skew: Duration,
}

impl Default for LeafPolicy {
    fn default() -> Self {
        LeafPolicy {
            lifetime: DEFAULT_LEAF_LIFETIME,
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }
}

/// A trust bundle plus an issuer that chains to it and can sign leaves.
pub struct Ca {
    bundle: TrustBundle,
    issuer_cert: CertificateDer<'static>,
    issuer_info: CertInfo,
    issuer: Issuer<'static, KeyPair>,
    /// The earliest NotAfter of the issuer and the anchor that signed it: no leaf outlives it.
    chain_not_after: SystemTime,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("issuer", &self.issuer_info.subject)
            .field("anchors", &self.bundle.len())
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// A fresh trust anchor (`root.<ns>.<td>`, ten years) and issuer (`identity.<ns>.<td>`,
    /// one year), valid from `now` minus the default clock skew.
    pub fn generate(control_plane: &ControlPlane, now: SystemTime) -> Result<Self> {
        let not_before = whole_seconds(now.checked_sub(DEFAULT_CLOCK_SKEW).unwrap_or(now));

        let anchor_key = key::generate()?;
        let mut anchor = ca_params(&control_plane.anchor_name(), not_before, ANCHOR_LIFETIME)?;
        anchor.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let anchor_cert = anchor
            .self_signed(&anchor_key)
            .map_err(IdentityError::Signing)?;

        let issuer_key = key::generate()?;
        let mut issuer = ca_params(&control_plane.issuer_name(), not_before, ISSUER_LIFETIME)?;
        issuer.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let issuer_cert = issuer
            .signed_by(&issuer_key, &Issuer::new(anchor, anchor_key))
            .map_err(IdentityError::Signing)?;

        let bundle = TrustBundle::new(vec![anchor_cert.der().clone()])?;
        Ca::assemble(bundle, issuer_cert.der().clone(), issuer_key, now)
    }

    /// An existing anchor bundle and issuer, as PEM texts (the files given to `linkerd install`).
    /// Checks what Linkerd's identity controller checks before it signs anything: the key is
    /// P-256 and belongs to the issuer certificate, the issuer is a CA signed by one of the
    /// anchors, and both are valid at `now`.
    pub fn from_pem(
        anchors: &[u8],
        issuer_cert: &[u8],
        issuer_key: &[u8],
        now: SystemTime,
    ) -> Result<Self> {
        let bundle = TrustBundle::from_pem(anchors)?;
        let issuer_cert = certs_from_pem(issuer_cert)?.swap_remove(0);
        let issuer_key = key::from_pem(issuer_key)?;
        Ca::assemble(bundle, issuer_cert, issuer_key, now)
    }

    /// [`Ca::from_pem`] over files; every error names the file it is about.
    pub fn load(
        anchors: &Path,
        issuer_cert: &Path,
        issuer_key: &Path,
        now: SystemTime,
    ) -> Result<Self> {
        let read =
            |path: &Path| read_limited(path).map_err(|e| IdentityError::Read(e).in_file(path));
        let bundle = TrustBundle::from_pem(&read(anchors)?).map_err(|e| e.in_file(anchors))?;
        let cert = certs_from_pem(&read(issuer_cert)?)
            .map_err(|e| e.in_file(issuer_cert))?
            .swap_remove(0);
        let key = key::from_pem(&read(issuer_key)?).map_err(|e| e.in_file(issuer_key))?;
        Ca::assemble(bundle, cert, key, now).map_err(|e| match e {
            IdentityError::KeyMismatch { .. } => e.in_file(issuer_key),
            IdentityError::IssuerNotTrusted { .. } => e.in_file(anchors),
            e => e.in_file(issuer_cert),
        })
    }

    fn assemble(
        bundle: TrustBundle,
        issuer_cert: CertificateDer<'static>,
        issuer_key: KeyPair,
        now: SystemTime,
    ) -> Result<Self> {
        let info = CertInfo::parse(&issuer_cert, 1)?;
        if !info.is_ca {
            return Err(IdentityError::NotCa {
                subject: info.subject,
                role: "issuer",
            });
        }
        if !info.is_p256() {
            return Err(IdentityError::UnsupportedKey {
                found: format!("the issuer certificate has an {} key", info.key),
            });
        }
        if info.public_key != issuer_key.public_key_raw() {
            return Err(IdentityError::KeyMismatch {
                subject: info.subject,
            });
        }
        let anchor = bundle
            .anchors()
            .iter()
            .find(|a| is_signed_by(&issuer_cert, a))
            .ok_or_else(|| IdentityError::IssuerNotTrusted {
                issuer: info.subject.clone(),
            })?;
        let anchor_info = CertInfo::parse(anchor, 1)?;
        for cert in [&anchor_info, &info] {
            if now < cert.not_before {
                return Err(IdentityError::CaNotYetValid {
                    subject: cert.subject.clone(),
                    not_before: cert.not_before,
                });
            }
            if now >= cert.not_after {
                return Err(IdentityError::CaExpired {
                    subject: cert.subject.clone(),
                    not_after: cert.not_after,
                });
            }
        }
        let issuer =
            Issuer::from_ca_cert_der(&issuer_cert, issuer_key).map_err(IdentityError::Signing)?;
        Ok(Ca {
            bundle,
            chain_not_after: info.not_after.min(anchor_info.not_after),
            issuer_cert,
            issuer_info: info,
            issuer,
        })
    }

    pub fn bundle(&self) -> &TrustBundle {
        &self.bundle
    }

    pub fn issuer_info(&self) -> &CertInfo {
        &self.issuer_info
    }

    pub fn issuer_pem(&self) -> String {
        certs_to_pem([&self.issuer_cert])
    }

    /// The issuer's private key as PKCS#8 PEM. Secret: write it with owner-only permissions.
    pub fn issuer_key_pem(&self) -> String {
        key::to_pem(self.issuer.key())
    }

    /// The control plane the issuer's name declares (`identity.<ns>.<td>`), if it follows
    /// Linkerd's naming.
    pub fn control_plane(&self) -> Option<ControlPlane> {
        ControlPlane::from_issuer_name(&self.issuer_info.subject)
    }

    /// Issues a leaf for `name` with a fresh key, as Linkerd's identity controller does.
    pub fn issue(&self, name: &IdentityName, policy: &LeafPolicy, now: SystemTime) -> Result<Leaf> {
        if policy.lifetime.is_zero() {
            return Err(IdentityError::ZeroLifetime);
        }
        if now >= self.chain_not_after {
            return Err(IdentityError::CaExpired {
                subject: self.issuer_info.subject.clone(),
                not_after: self.chain_not_after,
            });
        }
        let not_before = whole_seconds(now.checked_sub(policy.clock_skew).unwrap_or(now));
        let wanted = whole_seconds(now)
            .checked_add(policy.lifetime + policy.clock_skew)
            .unwrap_or(self.chain_not_after);
        let not_after = wanted.min(self.chain_not_after);

        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(name.as_str());
        params.subject_alt_names = vec![SanType::DnsName(
            name.as_str()
                .to_string()
                .try_into()
                .map_err(IdentityError::Signing)?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        params.not_before = OffsetDateTime::from(not_before);
        params.not_after = OffsetDateTime::from(not_after);

        let key = key::generate()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(IdentityError::Signing)?;
        Ok(Leaf {
            name: name.clone(),
            chain: vec![cert.der().clone(), self.issuer_cert.clone()],
            key,
            not_before,
            not_after,
        })
    }
}

/// A workload's certificate chain (leaf, then issuer) and its private key.
pub struct Leaf {
    name: IdentityName,
    chain: Vec<CertificateDer<'static>>,
    key: KeyPair,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("name", &self.name.as_str())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Leaf {
    /// A certificate chain (leaf first) and its PKCS#8 key from PEM, as a sidecar reads the
    /// files it was given. The identity is the leaf's first SAN, which must be a Linkerd name.
    pub fn from_pem(chain: &[u8], key_pem: &[u8]) -> Result<Self> {
        Leaf::assemble(certs_from_pem(chain)?, key::from_pem(key_pem)?)
    }

    /// [`Leaf::from_pem`] over files; errors name the file.
    pub fn load(chain: &Path, key_file: &Path) -> Result<Self> {
        let read =
            |path: &Path| read_limited(path).map_err(|e| IdentityError::Read(e).in_file(path));
        let certs = certs_from_pem(&read(chain)?).map_err(|e| e.in_file(chain))?;
        let key = key::from_pem(&read(key_file)?).map_err(|e| e.in_file(key_file))?;
        Leaf::assemble(certs, key).map_err(|e| match e {
            IdentityError::KeyMismatch { .. } => e.in_file(key_file),
            e => e.in_file(chain),
        })
    }

    fn assemble(chain: Vec<CertificateDer<'static>>, key: KeyPair) -> Result<Self> {
        let info = CertInfo::parse(&chain[0], 0)?;
        if info.public_key != key.public_key_raw() {
            return Err(IdentityError::KeyMismatch {
                subject: info.subject,
            });
        }
        let id = info.identity().ok_or(IdentityError::NoPeerIdentity)?;
        Ok(Leaf {
            name: IdentityName::parse(id)?,
            chain,
            key,
            not_before: info.not_before,
            not_after: info.not_after,
        })
    }

    pub fn name(&self) -> &IdentityName {
        &self.name
    }

    /// Leaf first, then the issuer: what the workload presents in a handshake.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub fn key_pkcs8_der(&self) -> &[u8] {
        self.key.serialized_der()
    }

    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// When to fetch the next certificate: 70 % into the validity window.
    pub fn renew_at(&self) -> SystemTime {
        renew_at(self.not_before, self.not_after)
    }

    pub fn chain_pem(&self) -> String {
        certs_to_pem(&self.chain)
    }

    /// Secret: write it with owner-only permissions.
    pub fn key_pem(&self) -> String {
        key::to_pem(&self.key)
    }
}

/// NotBefore + 70 % of (NotAfter − NotBefore); NotBefore itself for an empty window.
pub fn renew_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let window = not_after.duration_since(not_before).unwrap_or_default();
    not_before + window * RENEW_PERCENT / 100
}

fn ca_params(cn: &str, not_before: SystemTime, lifetime: Duration) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(cn);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(random_serial()?);
    params.not_before = OffsetDateTime::from(not_before);
    params.not_after = OffsetDateTime::from(not_before + lifetime);
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// Random 127-bit serials: reissuing with the same key (as proxies do on renewal) must not
/// repeat a serial, and rcgen's default derives it from the key.
fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| IdentityError::TlsConfig("no secure random source".into()))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Certificates carry whole seconds; truncating first keeps what we report equal to what is
/// encoded.
fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(super::cert::MAX_PEM_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn web() -> IdentityName {
        ControlPlane::default().identity("web", "shop").unwrap()
    }

    #[test]
    fn leaf_has_linkerds_profile() {
        let now = SystemTime::now();
        let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
        let leaf = ca.issue(&web(), &LeafPolicy::default(), now).unwrap();
        let info = CertInfo::parse(&leaf.chain()[0], 0).unwrap();
        assert_eq!(info.subject, web().as_str());
        assert_eq!(info.sans, vec![web().as_str().to_string()]);
        assert_eq!(info.issuer, "identity.linkerd.cluster.local");
        assert_eq!(info.key, "ECDSA P-256");
        assert_eq!(info.signature, "ECDSA with SHA-256");
        assert!(!info.is_ca);
        assert_eq!(info.not_before, leaf.not_before());
        assert_eq!(info.not_after, leaf.not_after());
        let window = info.not_after.duration_since(info.not_before).unwrap();
        assert_eq!(window, DEFAULT_LEAF_LIFETIME + 2 * DEFAULT_CLOCK_SKEW);
        assert!(is_signed_by(&leaf.chain()[0], &leaf.chain()[1]));
        assert_eq!(leaf.chain()[1], ca.issuer_cert);
        let issuer = ca.issuer_info();
        assert!(issuer.is_ca);
        assert_eq!(ca.control_plane(), Some(ControlPlane::default()));
    }

    #[test]
    fn serials_differ_between_leaves() {
        let now = SystemTime::now();
        let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
        let a = ca.issue(&web(), &LeafPolicy::default(), now).unwrap();
        let b = ca.issue(&web(), &LeafPolicy::default(), now).unwrap();
        assert_ne!(a.chain()[0], b.chain()[0]);
        let serial = |leaf: &Leaf| CertInfo::parse(&leaf.chain()[0], 0).unwrap().serial;
        let (sa, sb) = (serial(&a), serial(&b));
        assert_ne!(sa, sb);
        assert!(
            sa.split(':')
                .all(|byte| byte.len() == 2 && byte.bytes().all(|c| c.is_ascii_hexdigit())),
            "{sa}"
        );
    }

    #[test]
    fn renewal_at_seventy_percent() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(renew_at(start, start + 10 * HOUR), start + 7 * HOUR);
        assert_eq!(renew_at(start, start), start);
        assert_eq!(renew_at(start + HOUR, start), start + HOUR);
        let now = SystemTime::now();
        let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
        let leaf = ca.issue(&web(), &LeafPolicy::default(), now).unwrap();
        let window = leaf.not_after().duration_since(leaf.not_before()).unwrap();
        assert_eq!(
            leaf.renew_at().duration_since(leaf.not_before()).unwrap(),
            window * 7 / 10
        );
    }

    #[test]
    fn lifetime_is_clamped_to_the_issuer() {
        let now = SystemTime::now();
        let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
        let policy = LeafPolicy {
            lifetime: 20 * 365 * 24 * HOUR,
            ..LeafPolicy::default()
        };
        let leaf = ca.issue(&web(), &policy, now).unwrap();
        assert_eq!(leaf.not_after(), ca.issuer_info().not_after);
        // Near the end of the issuer's life a short leaf is cut short too.
        let late = ca.issuer_info().not_after - HOUR;
        let leaf = ca.issue(&web(), &LeafPolicy::default(), late).unwrap();
        assert_eq!(leaf.not_after(), ca.issuer_info().not_after);
        let err = ca
            .issue(&web(), &LeafPolicy::default(), ca.issuer_info().not_after)
            .unwrap_err();
        assert!(matches!(err, IdentityError::CaExpired { .. }), "{err}");
        let zero = LeafPolicy {
            lifetime: Duration::ZERO,
            ..LeafPolicy::default()
        };
        assert!(matches!(
            ca.issue(&web(), &zero, now),
            Err(IdentityError::ZeroLifetime)
        ));
    }

    #[test]
    fn a_leaf_round_trips_through_its_files() {
        let now = SystemTime::now();
        let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
        let leaf = ca.issue(&web(), &LeafPolicy::default(), now).unwrap();
        let back = Leaf::from_pem(leaf.chain_pem().as_bytes(), leaf.key_pem().as_bytes()).unwrap();
        assert_eq!(back.name(), leaf.name());
        assert_eq!(
            (back.not_before(), back.not_after()),
            (leaf.not_before(), leaf.not_after())
        );
        let other = ca.issue(&web(), &LeafPolicy::default(), now).unwrap();
        let err =
            Leaf::from_pem(leaf.chain_pem().as_bytes(), other.key_pem().as_bytes()).unwrap_err();
        assert!(matches!(err, IdentityError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn round_trips_through_pem_and_checks_the_chain() {
        let now = SystemTime::now();
        let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
        let anchors = ca.bundle().to_pem();
        let loaded = Ca::from_pem(
            anchors.as_bytes(),
            ca.issuer_pem().as_bytes(),
            ca.issuer_key_pem().as_bytes(),
            now,
        )
        .unwrap();
        let leaf = loaded.issue(&web(), &LeafPolicy::default(), now).unwrap();
        assert!(is_signed_by(&leaf.chain()[0], &ca.issuer_cert));

        let other = Ca::generate(&ControlPlane::default(), now).unwrap();
        let err = Ca::from_pem(
            other.bundle().to_pem().as_bytes(),
            ca.issuer_pem().as_bytes(),
            ca.issuer_key_pem().as_bytes(),
            now,
        )
        .unwrap_err();
        assert!(
            matches!(err, IdentityError::IssuerNotTrusted { .. }),
            "{err}"
        );
        let err = Ca::from_pem(
            anchors.as_bytes(),
            ca.issuer_pem().as_bytes(),
            other.issuer_key_pem().as_bytes(),
            now,
        )
        .unwrap_err();
        assert!(matches!(err, IdentityError::KeyMismatch { .. }), "{err}");
        let err = Ca::from_pem(
            anchors.as_bytes(),
            ca.issuer_pem().as_bytes(),
            ca.issuer_key_pem().as_bytes(),
            now + 2 * ISSUER_LIFETIME,
        )
        .unwrap_err();
        assert!(matches!(err, IdentityError::CaExpired { .. }), "{err}");
    }

    #[test]
    fn a_leaf_cannot_be_an_issuer() {
        let now = SystemTime::now();
        let ca = Ca::generate(&ControlPlane::default(), now).unwrap();
        let leaf = ca.issue(&web(), &LeafPolicy::default(), now).unwrap();
        let err = Ca::from_pem(
            ca.bundle().to_pem().as_bytes(),
            leaf.chain_pem().as_bytes(),
            leaf.key_pem().as_bytes(),
            now,
        )
        .unwrap_err();
        assert!(matches!(err, IdentityError::NotCa { .. }), "{err}");
    }
}
