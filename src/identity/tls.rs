//! rustls configurations that behave like Linkerd's proxies on the wire: TLS 1.3 only with its
//! three AEAD suites; the server presents its leaf and requires a client certificate that
//! chains to the bundle; the client sends SNI = the identity it expects and accepts the server
//! only if that identity is among the certificate's DNS SANs (webpki's name check); each side
//! reads the other's identity from the first SAN. Failures map to [`IdentityError`] variants a
//! person can act on.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig,
    SignatureScheme,
};

use super::bundle::TrustBundle;
use super::cert::CertInfo;
use super::error::{IdentityError, Result};
use super::name::IdentityName;
use super::resolver::CurrentCert;

/// ring with only the TLS 1.3 suites Linkerd's proxy offers.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
            ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
            ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        ..ring::default_provider()
    })
}

fn config_error(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::TlsConfig(e.to_string())
}

/// A server that presents `cert` and admits only clients whose certificate chains to `bundle`.
///
/// Session resumption is off on both sides: a resumed session carries the identity proven when
/// it was created, so a swapped or expired certificate would go unnoticed.
pub fn server_config(bundle: &TrustBundle, cert: Arc<CurrentCert>) -> Result<Arc<ServerConfig>> {
    let verifier = WebPkiClientVerifier::builder_with_provider(bundle.root_store()?, provider())
        .build()
        .map_err(config_error)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A client that presents `cert` and trusts servers whose certificate chains to `bundle`.
/// Connect with [`server_name`] of the expected identity so SNI carries it and the name check
/// enforces it.
pub fn client_config(bundle: &TrustBundle, cert: Arc<CurrentCert>) -> Result<Arc<ClientConfig>> {
    let verifier = WebPkiServerVerifier::builder_with_provider(bundle.root_store()?, provider())
        .build()
        .map_err(config_error)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerIdentityVerifier(verifier)))
        .with_client_cert_resolver(cert);
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// webpki's verification, with a name mismatch reported as the certificate's own SANs rather
/// than webpki's debug rendering of them, so [`IdentityError::WrongIdentity`] reads cleanly.
#[derive(Debug)]
struct ServerIdentityVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ServerIdentityVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|err| match err {
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                    expected: server_name.to_owned(),
                    presented: CertInfo::parse(end_entity, 0)
                        .map(|info| info.sans)
                        .unwrap_or_default(),
                }),
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The SNI and verification name for connecting to `identity`.
pub fn server_name(identity: &IdentityName) -> Result<ServerName<'static>> {
    ServerName::try_from(identity.as_str().to_string()).map_err(config_error)
}

/// The peer's identity: the first DNS or URI SAN of its leaf, as Linkerd's proxy reads it.
/// Not parsed as a Linkerd name: peers from other meshes (SPIFFE ids) are identities too.
pub fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Result<String> {
    let leaf = certs
        .and_then(|c| c.first())
        .ok_or(IdentityError::NoPeerIdentity)?;
    CertInfo::parse(leaf, 0)?
        .identity()
        .map(str::to_string)
        .ok_or(IdentityError::NoPeerIdentity)
}

/// Classifies a failed handshake or read from tokio-rustls, which carries the rustls error
/// inside the `io::Error`.
pub fn handshake_error(err: io::Error) -> IdentityError {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => IdentityError::from(tls.clone()),
        None => IdentityError::Io(err),
    }
}

impl From<rustls::Error> for IdentityError {
    fn from(err: rustls::Error) -> Self {
        use CertificateError as C;
        let rustls::Error::InvalidCertificate(cert) = err else {
            return match err {
                rustls::Error::NoCertificatesPresented => IdentityError::NoClientCertificate,
                rustls::Error::AlertReceived(alert) => IdentityError::RejectedByPeer {
                    alert: alert_name(alert),
                },
                other => IdentityError::Handshake(other),
            };
        };
        match cert {
            C::UnknownIssuer | C::BadSignature => IdentityError::UnknownCa,
            C::ExpiredContext { time, not_after } => IdentityError::Expired {
                not_after: Some(system_time(not_after)),
                now: Some(system_time(time)),
            },
            C::Expired => IdentityError::Expired {
                not_after: None,
                now: None,
            },
            C::NotValidYetContext { time, not_before } => IdentityError::NotYetValid {
                not_before: Some(system_time(not_before)),
                now: Some(system_time(time)),
            },
            C::NotValidYet => IdentityError::NotYetValid {
                not_before: None,
                now: None,
            },
            C::NotValidForNameContext {
                expected,
                presented,
            } => IdentityError::WrongIdentity {
                expected: expected.to_str().into_owned(),
                presented,
            },
            C::NotValidForName => IdentityError::WrongIdentity {
                expected: "the expected identity".into(),
                presented: Vec::new(),
            },
            other => IdentityError::Handshake(rustls::Error::InvalidCertificate(other)),
        }
    }
}

fn system_time(t: UnixTime) -> SystemTime {
    super::cert::system_time(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
}

fn alert_name(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::UnknownCA => "unknown CA".into(),
        AlertDescription::CertificateExpired => "certificate expired".into(),
        AlertDescription::BadCertificate => "bad certificate".into(),
        AlertDescription::CertificateRequired => "certificate required".into(),
        AlertDescription::HandshakeFailure => "handshake failure".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_rustls_cause() {
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert!(matches!(handshake_error(tls), IdentityError::UnknownCa));
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(matches!(handshake_error(refused), IdentityError::Io(_)));
        let alert = rustls::Error::AlertReceived(AlertDescription::CertificateExpired);
        assert_eq!(
            IdentityError::from(alert).to_string(),
            "the peer rejected the handshake with a certificate expired alert"
        );
    }
}
