//! `proxy.yaml`: one sidecar — who it is, where it listens, where its app is, how to reach its
//! peers, and where identity, policy and schemas come from. Relative paths are relative to the
//! file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::{ProxyError, Result};
use crate::identity::IdentityName;
use crate::policy::defaults::{DefaultPolicy, Settings};
use crate::policy::ids::IdentityDomain;
use crate::policy::workload::Workload;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyConfig {
    /// The pod as policy sees it: namespace, name, service account, labels, named ports,
    /// annotations, probes.
    pub workload: Workload,
    /// Trust domain and control-plane namespace of identity names.
    #[serde(default)]
    pub trust_domain: Option<String>,
    #[serde(default)]
    pub control_namespace: Option<String>,
    pub identity: IdentityFiles,
    pub inbound: InboundConfig,
    #[serde(default)]
    pub outbound: OutboundConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub destinations: Vec<Destination>,
    #[serde(default)]
    pub policy: Option<PolicyFiles>,
    /// A registry directory or `http(s)://` URL, for decoding Avro bodies.
    #[serde(default)]
    pub registry: Option<String>,
    /// Credentials for a registry URL, read from files so they stay out of the config.
    #[serde(default)]
    pub registry_auth: Option<RegistryAuth>,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub inspection: InspectionLimits,
}

/// Basic auth (`username` + `passwordFile`) or a bearer token (`tokenFile`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryAuth {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl RegistryAuth {
    /// Reads the secret files; whitespace around a secret (a trailing newline) is dropped.
    pub fn load(&self) -> Result<crate::registry::Auth> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|source| ProxyError::Read {
                    path: path.clone(),
                    source,
                })
        };
        match (&self.username, &self.password_file, &self.token_file) {
            (Some(user), Some(password), None) => Ok(crate::registry::Auth::Basic {
                user: user.clone(),
                password: read(password)?,
            }),
            (None, None, Some(token)) => Ok(crate::registry::Auth::Bearer(read(token)?)),
            _ => Err(ProxyError::Registry(
                "registryAuth: give username and passwordFile, or tokenFile".into(),
            )),
        }
    }
}

/// PEM files, watched and reloaded when they change.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityFiles {
    pub trust_anchors: PathBuf,
    /// The leaf, then its issuer chain.
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundConfig {
    #[serde(default = "default_inbound_listen")]
    pub listen: SocketAddr,
    /// Where the app listens; requests go to the port their authority names when the workload
    /// declares it, else to `port`.
    #[serde(default = "loopback")]
    pub app_host: IpAddr,
    pub port: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundConfig {
    #[serde(default = "default_outbound_listen")]
    pub listen: SocketAddr,
    /// Opaque TCP: connections to `listen` go to `destination` (an authority in the table).
    #[serde(default)]
    pub tcp: Vec<TcpRoute>,
    /// The local address connections to peers come from — the pod IP peers' policies see.
    /// On one host, give each workload its own loopback address (`127.0.0.2`, ...): policy
    /// authorizes `127.0.0.1` as the pod's own `localhost`.
    #[serde(default)]
    pub source_ip: Option<IpAddr>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            listen: default_outbound_listen(),
            tcp: Vec::new(),
            source_ip: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRoute {
    pub listen: SocketAddr,
    pub destination: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    /// mTLS identities that may `GET /tap`: exact, or `*.suffix`. Absent: only the operator
    /// identity, `meshlens-operator.meshlens.serviceaccount.identity.<control-ns>.<trust-domain>`.
    #[serde(default)]
    pub tap_allow: Option<Vec<String>>,
    /// OIDC bearer tokens that may tap too (over mTLS or plain HTTP).
    #[serde(default)]
    pub tap_tokens: Option<crate::tap::token::TokenConfig>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
            tap_allow: None,
            tap_tokens: None,
        }
    }
}

/// One service the app may call, as the destination controller would resolve it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// `host:port` names clients use (`orders.shop.svc.cluster.local:8080`, `orders:8080`).
    pub authorities: Vec<String>,
    /// The peer's inbound proxy (or, without `identity`, the plain endpoint itself).
    pub address: SocketAddr,
    /// The identity the peer must prove; absent for an unmeshed endpoint (plaintext).
    #[serde(default)]
    pub identity: Option<String>,
    /// Labels for metrics and tap (`namespace`, `workload`/`deployment`, `serviceaccount`).
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub workload: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyFiles {
    /// A directory of Linkerd policy YAML (and SchemaContracts), reloaded when it changes.
    pub dir: PathBuf,
    /// Cluster-wide default inbound policy (`all-unauthenticated` unless set).
    #[serde(default)]
    pub default_policy: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default = "default_connect", with = "humantime_serde_compat")]
    pub connect: Duration,
    /// Until the response head; `0s` for none (streams, long polls).
    #[serde(default = "default_response", with = "humantime_serde_compat")]
    pub response: Duration,
    /// For a client's first bytes (protocol detection and TLS handshake).
    #[serde(default = "default_detect", with = "humantime_serde_compat")]
    pub detect: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: default_connect(),
            response: default_response(),
            detect: default_detect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InspectionLimits {
    /// The most an `enforce` contract buffers before answering 413.
    #[serde(default = "default_max_body")]
    pub max_body: usize,
    /// The most of a streamed body `audit` copies for decoding.
    #[serde(default = "default_audit_copy")]
    pub audit_copy: usize,
}

impl Default for InspectionLimits {
    fn default() -> Self {
        InspectionLimits {
            max_body: default_max_body(),
            audit_copy: default_audit_copy(),
        }
    }
}

fn default_inbound_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 4143))
}
fn default_outbound_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4140))
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4191))
}
fn loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}
fn default_connect() -> Duration {
    Duration::from_secs(1)
}
fn default_response() -> Duration {
    Duration::from_secs(10)
}
fn default_detect() -> Duration {
    Duration::from_secs(10)
}
fn default_max_body() -> usize {
    1024 * 1024
}
fn default_audit_copy() -> usize {
    64 * 1024
}

/// Durations as `humantime` strings (`250ms`, `10s`, `1m`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration (like 500ms or 10s): {e}"
            ))
        })
    }
}

impl ProxyConfig {
    /// Reads and checks a config file; paths inside it become absolute.
    pub fn load(path: &Path) -> Result<ProxyConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| ProxyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = ProxyConfig::parse(path, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    pub fn parse(path: &Path, text: &str) -> Result<ProxyConfig> {
        let err = |message: String| ProxyError::Config {
            path: path.to_path_buf(),
            message,
        };
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let config: ProxyConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner().to_string();
            if at == "." {
                err(inner)
            } else {
                err(format!("{at}: {inner}"))
            }
        })?;
        config.check().map_err(err)?;
        Ok(config)
    }

    /// The control-plane namespace and trust domain identities are minted in (Linkerd's
    /// defaults unless the config sets them).
    pub fn domain(&self) -> IdentityDomain {
        let defaults = IdentityDomain::default();
        IdentityDomain {
            control_namespace: self
                .control_namespace
                .clone()
                .unwrap_or(defaults.control_namespace),
            trust_domain: self.trust_domain.clone().unwrap_or(defaults.trust_domain),
        }
    }

    /// The identity this workload's certificate must carry: its service account's name.
    pub fn local_identity(&self) -> Result<IdentityName> {
        let w = &self.workload;
        let name = self
            .domain()
            .service_account(&w.namespace, &w.service_account);
        Ok(IdentityName::parse(&name)?)
    }

    /// The policy settings the sidecar evaluates with: the default policy and the domain.
    pub fn policy_settings(&self) -> Result<Settings> {
        let default_policy = match self
            .policy
            .as_ref()
            .and_then(|p| p.default_policy.as_deref())
        {
            Some(p) => p
                .parse::<DefaultPolicy>()
                .map_err(|e| ProxyError::Policy(e.to_string()))?,
            None => DefaultPolicy::default(),
        };
        Ok(Settings {
            default_policy,
            domain: self.domain(),
            ..Settings::default()
        })
    }

    fn check(&self) -> Result<(), String> {
        for (i, d) in self.destinations.iter().enumerate() {
            if d.authorities.is_empty() {
                return Err(format!(
                    "destinations[{i}].authorities: give at least one host:port"
                ));
            }
            for a in &d.authorities {
                if super::destinations::split_authority(a).is_none() {
                    return Err(format!(
                        "destinations[{i}].authorities: `{a}` is not host:port"
                    ));
                }
            }
            if let Some(id) = &d.identity {
                crate::identity::IdentityName::parse(id)
                    .map_err(|e| format!("destinations[{i}].identity: {e}"))?;
            }
        }
        for (i, t) in self.outbound.tcp.iter().enumerate() {
            if !self
                .destinations
                .iter()
                .any(|d| d.authorities.iter().any(|a| a == &t.destination))
            {
                return Err(format!(
                    "outbound.tcp[{i}].destination: `{}` is not an authority of any destination",
                    t.destination
                ));
            }
        }
        for (i, p) in self.admin.tap_allow.iter().flatten().enumerate() {
            crate::tap::server::IdentityPattern::parse(p)
                .map_err(|e| format!("admin.tapAllow[{i}]: {e}"))?;
        }
        if let Some(t) = &self.admin.tap_tokens
            && t.allow.is_empty()
        {
            return Err(
                "admin.tapTokens.allow: list the token subjects or e-mails that may tap".into(),
            );
        }
        if self.inspection.max_body == 0 || self.inspection.audit_copy == 0 {
            return Err("inspection: maxBody and auditCopy must be above 0".into());
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.identity.trust_anchors);
        abs(&mut self.identity.cert);
        abs(&mut self.identity.key);
        if let Some(p) = &mut self.policy {
            abs(&mut p.dir);
        }
        if let Some(a) = &mut self.registry_auth {
            a.password_file.iter_mut().for_each(abs);
            a.token_file.iter_mut().for_each(abs);
        }
        if let Some(t) = &mut self.admin.tap_tokens {
            abs(&mut t.jwks);
        }
        if let Some(r) = &mut self.registry
            && !crate::registry::is_url(r)
        {
            let p = Path::new(r.as_str());
            if p.is_relative() {
                *r = base.join(p).to_string_lossy().into_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "workload: {namespace: shop, name: web}\nidentity: {trustAnchors: ca.pem, cert: web.crt, key: web.key}\ninbound: {port: 8080}\n";

    #[test]
    fn relative_paths_follow_the_file_and_secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let path = dir.path().join("proxy.yaml");
        let yaml = format!(
            "{BASE}registry: http://registry:8081\nregistryAuth: {{username: ci, passwordFile: pw}}\n"
        );
        std::fs::write(&path, yaml).unwrap();
        let config = ProxyConfig::load(&path).unwrap();
        assert_eq!(config.identity.cert, dir.path().join("web.crt"));
        assert_eq!(config.registry.as_deref(), Some("http://registry:8081"));
        match config.registry_auth.unwrap().load().unwrap() {
            crate::registry::Auth::Basic { user, password } => {
                assert_eq!((user.as_str(), password.as_str()), ("ci", "s3cret"));
            }
            other => panic!("expected basic auth, got {other:?}"),
        }
    }

    #[test]
    fn mistakes_name_the_field() {
        let p = Path::new("proxy.yaml");
        let err =
            ProxyConfig::parse(p, &format!("{BASE}timeouts: {{response: soon}}\n")).unwrap_err();
        assert!(err.to_string().contains("timeouts.response"), "{err}");
        let err = ProxyConfig::parse(
            p,
            &format!("{BASE}destinations: [{{authorities: [orders], address: 127.0.0.1:1}}]\n"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("`orders` is not host:port"),
            "{err}"
        );
        let err = ProxyConfig::parse(p, &format!("{BASE}colour: blue\n")).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let half = RegistryAuth {
            username: Some("ci".into()),
            password_file: None,
            token_file: None,
        };
        assert!(
            half.load()
                .unwrap_err()
                .to_string()
                .contains("passwordFile")
        );
    }
}
