//! The checks of a sidecar's `proxy.yaml`, in the order a person would fix them: the file,
//! the identity files, the policy, the registry, the tap settings, the ports. Each check reads
//! the files with the same loaders the proxy uses, so doctor and proxy never disagree.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;

use super::{Check, Report, expiry};
use crate::identity::{
    CertInfo, IdentityError, IdentityName, Leaf, TrustBundle, certs_from_pem, is_signed_by,
};
use crate::proxy::config::ProxyConfig;
use crate::proxy::policy_state::PolicyState;

/// How long a port or registry probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) fn check(path: &Path, report: &mut Report, now: SystemTime) -> anyhow::Result<()> {
    let config = match ProxyConfig::load(path) {
        Ok(config) => config,
        Err(e) => {
            return report.add(Check::fail(
                "config",
                e.to_string(),
                "give the sidecar's proxy.yaml and correct what is named; the README's \"Running a sidecar\" lists every key",
            ));
        }
    };
    report.add(Check::pass("config", format!("{} parses", path.display())))?;
    let expected = match config.local_identity() {
        Ok(name) => Some(name),
        Err(e) => {
            report.add(Check::fail(
                "workload",
                e.to_string(),
                "correct workload.namespace and workload.serviceAccount (Kubernetes names: lowercase letters, digits, '-')",
            ))?;
            None
        }
    };
    identity(&config, expected.as_ref(), report, now)?;
    policy(&config, report)?;
    registry(&config, report)?;
    tap(&config, report)?;
    ports(&config, expected.as_ref(), report)
}

/// The certificate files: each readable and parsing, the leaf valid for a while, the key its
/// own, the chain leading to a trust anchor, and the identity the workload's.
fn identity(
    config: &ProxyConfig,
    expected: Option<&IdentityName>,
    report: &mut Report,
    now: SystemTime,
) -> anyhow::Result<()> {
    let files = &config.identity;
    let renew = renew_hint(config);
    let bundle = match read_anchors(&files.trust_anchors) {
        Ok(bundle) => {
            let names: Vec<String> = bundle
                .anchors()
                .iter()
                .filter_map(|a| CertInfo::parse(a, 0).ok())
                .map(|info| info.subject)
                .collect();
            report.add(Check::pass(
                "identity.trustAnchors",
                format!(
                    "{}: {} anchor(s): {}",
                    files.trust_anchors.display(),
                    bundle.len(),
                    names.join(", ")
                ),
            ))?;
            for anchor in bundle.anchors() {
                if let Ok(info) = CertInfo::parse(anchor, 0) {
                    let check = expiry(
                        "trust anchor expiry",
                        &info,
                        now,
                        "rotate the trust anchor: add the new anchor to the bundle next to the old one, re-issue issuer and leaves, then drop the old one",
                    );
                    if check.mark != super::Mark::Pass {
                        report.add(check)?;
                    }
                }
            }
            Some(bundle)
        }
        Err(e) => {
            report.add(Check::fail(
                "identity.trustAnchors",
                e,
                "mount the mesh's trust anchors (PEM, the ca.crt of the identity secret); relative paths are relative to the config file",
            ))?;
            None
        }
    };

    let chain = match read_chain(&files.cert) {
        Ok(chain) => chain,
        Err(e) => {
            report.add(Check::fail(
                "identity.cert",
                e,
                "mount the workload's certificate chain (PEM, leaf first, then its issuer); relative paths are relative to the config file",
            ))?;
            return Ok(());
        }
    };
    let (leaf, issuers) = chain
        .split_first()
        .expect("certs_from_pem returns at least one");
    report.add(Check::pass(
        "identity.cert",
        format!(
            "{}: {} issued by {}, {} certificate(s) in the chain",
            files.cert.display(),
            leaf.1.subject,
            leaf.1.issuer,
            chain.len()
        ),
    ))?;
    report.add(key_matches(config))?;
    report.add(expiry("certificate expiry", &leaf.1, now, &renew))?;
    for (_, issuer) in issuers {
        let check = expiry(
            "issuer expiry",
            issuer,
            now,
            "rotate the issuer (a new one signed by the same trust anchor), then re-issue the leaves",
        );
        if check.mark != super::Mark::Pass {
            report.add(check)?;
        }
    }
    if let Some(bundle) = &bundle {
        report.add(chain_to_anchors(&chain, bundle, now))?;
    }
    report.add(identity_name(config, &leaf.1, expected))
}

fn read_anchors(path: &Path) -> Result<TrustBundle, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    TrustBundle::from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The certificates of a chain file, each parsed.
fn read_chain(path: &Path) -> Result<Vec<(CertificateDer<'static>, CertInfo)>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = certs_from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    certs
        .into_iter()
        .enumerate()
        .map(|(i, der)| {
            let info =
                CertInfo::parse(&der, i + 1).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((der, info))
        })
        .collect()
}

/// The key file through the proxy's own loader, which matches it against the certificate.
fn key_matches(config: &ProxyConfig) -> Check {
    let files = &config.identity;
    let error = match Leaf::load(&files.cert, &files.key) {
        Ok(_) => None,
        Err(IdentityError::File { inner, .. }) => Some(*inner),
        Err(e) => Some(e),
    };
    match error {
        // The loader checks the key before it reads the name, so a name problem means the
        // key matched; the name is the identity check's to report.
        None | Some(IdentityError::InvalidName { .. }) | Some(IdentityError::NoPeerIdentity) => {
            Check::pass(
                "identity.key",
                format!("{} belongs to the certificate", files.key.display()),
            )
        }
        Some(IdentityError::KeyMismatch { subject }) => Check::fail(
            "identity.key",
            format!(
                "the private key in {} does not belong to the certificate {subject} in {}",
                files.key.display(),
                files.cert.display()
            ),
            "mount the key that was issued together with this certificate (the same secret's tls.key)",
        ),
        Some(IdentityError::Read(e)) => Check::fail(
            "identity.key",
            format!("cannot read {}: {e}", files.key.display()),
            "mount the workload's private key (PEM); relative paths are relative to the config file",
        ),
        Some(e) => Check::fail(
            "identity.key",
            format!("{}: {e}", files.key.display()),
            "the key must be the ECDSA P-256 key issued with the certificate, in PEM",
        ),
    }
}

/// The chain's signatures lead to a trust anchor (whatever the dates, which the expiry checks
/// judge), and the certificate passes the verification a peer's inbound proxy makes (webpki,
/// client authentication) now.
fn chain_to_anchors(
    chain: &[(CertificateDer<'static>, CertInfo)],
    bundle: &TrustBundle,
    now: SystemTime,
) -> Check {
    let what = "chain";
    let differ = "issue the certificate from the mesh's issuer, or mount the trust anchors of the CA that issued it (during a rotation, both old and new in one bundle)";
    for pair in chain.windows(2) {
        if !is_signed_by(&pair[0].0, &pair[1].0) {
            return Check::fail(
                what,
                format!(
                    "{} is not signed by the next certificate in the file, {}",
                    pair[0].1.subject, pair[1].1.subject
                ),
                "put the chain in order: the leaf first, then the issuer that signed it",
            );
        }
    }
    let (last, last_info) = &chain[chain.len() - 1];
    let Some(anchor) = bundle
        .anchors()
        .iter()
        .find(|a| *a == last || is_signed_by(last, a))
    else {
        let anchors: Vec<String> = bundle
            .anchors()
            .iter()
            .filter_map(|a| CertInfo::parse(a, 0).ok().map(|i| i.subject))
            .collect();
        return Check::fail(
            what,
            format!(
                "the certificate is not signed by your trust anchors (trust anchors differ): its chain ends at {}, signed by {}, but the anchors are {}",
                last_info.subject,
                last_info.issuer,
                anchors.join(", ")
            ),
            differ,
        );
    };
    let anchor_name =
        CertInfo::parse(anchor, 0).map_or_else(|_| "a trust anchor".into(), |i| i.subject);
    let verifier = bundle
        .root_store()
        .map_err(|e| e.to_string())
        .and_then(|roots| {
            WebPkiClientVerifier::builder_with_provider(roots, crate::identity::provider())
                .build()
                .map_err(|e| e.to_string())
        });
    let verifier = match verifier {
        Ok(v) => v,
        Err(e) => return Check::fail(what, e, "check the trust anchors file"),
    };
    let at = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
    let intermediates: Vec<CertificateDer<'static>> =
        chain[1..].iter().map(|c| c.0.clone()).collect();
    let chains = Check::pass(
        what,
        format!(
            "{} chains to the trust anchor {anchor_name}",
            chain[0].1.subject
        ),
    );
    match verifier.verify_client_cert(&chain[0].0, &intermediates, at) {
        Ok(_) => chains,
        Err(e) => match IdentityError::from(e) {
            IdentityError::Expired { .. } | IdentityError::NotYetValid { .. } => chains,
            IdentityError::UnknownCa => Check::fail(
                what,
                "the certificate is not signed by your trust anchors (trust anchors differ)",
                differ,
            ),
            other => Check::fail(
                what,
                other.to_string(),
                "issue the certificate again from the mesh's issuer (meshlens identity issue)",
            ),
        },
    }
}

/// The leaf's one DNS SAN is a Linkerd identity, and the one this workload must present.
fn identity_name(config: &ProxyConfig, leaf: &CertInfo, expected: Option<&IdentityName>) -> Check {
    let what = "identity";
    let w = &config.workload;
    let issue = format!("issue it with `{}`", issue_command(config, None));
    let Some(san) = leaf.identity() else {
        return Check::fail(
            what,
            "the certificate has no DNS subject alternative name, so it names no identity",
            issue,
        );
    };
    let name = match IdentityName::parse(san) {
        Ok(name) => name,
        Err(e) => {
            return Check::fail(
                what,
                format!(
                    "{e}; Linkerd identities read <serviceaccount>.<namespace>.serviceaccount.identity.<control-namespace>.<trust-domain>"
                ),
                issue,
            );
        }
    };
    let Some(expected) = expected else {
        return Check::pass(what, format!("the certificate names {}", name.as_str()));
    };
    if &name == expected {
        return Check::pass(
            what,
            format!(
                "{}, the identity of {}/{} (service account {})",
                name.as_str(),
                w.namespace,
                w.name,
                w.service_account
            ),
        );
    }
    let found = format!(
        "the certificate is for {}, but workload {}/{} with service account {} is {}",
        name.as_str(),
        w.namespace,
        w.name,
        w.service_account,
        expected.as_str()
    );
    if name.control_plane() != expected.control_plane() {
        let cp = name.control_plane();
        return Check::fail(
            what,
            found,
            format!(
                "set controlNamespace: {} and trustDomain: {} in the config, or issue the certificate from this mesh's CA",
                cp.ns(),
                cp.trust_domain()
            ),
        );
    }
    Check::fail(
        what,
        found,
        format!(
            "{issue}, or correct workload.namespace and workload.serviceAccount (moving a workload to another namespace changes its identity, and policies naming the old one stop matching)"
        ),
    )
}

fn renew_hint(config: &ProxyConfig) -> String {
    format!(
        "issue a new certificate (`{}`, or let the mesh's issuer renew it) and write it over the old files: the proxy reloads them within a second",
        issue_command(config, Some("720h"))
    )
}

/// A `meshlens identity issue` command that can be pasted: `CA` stands for the directory
/// `identity init` made, and `--out` writes over the config's own files when they are
/// named `PREFIX.crt` and `PREFIX.key`.
fn issue_command(config: &ProxyConfig, lifetime: Option<&str>) -> String {
    let w = &config.workload;
    let files = &config.identity;
    let prefix = match (
        files.cert.to_str().and_then(|c| c.strip_suffix(".crt")),
        files.key.to_str().and_then(|k| k.strip_suffix(".key")),
    ) {
        (Some(cert), Some(key)) if cert == key => cert.to_string(),
        _ => "PREFIX".to_string(),
    };
    let lifetime = lifetime.map_or(String::new(), |l| format!(" --lifetime {l}"));
    format!(
        "meshlens identity issue --dir CA --sa {} --ns {}{lifetime} --out {prefix}",
        w.service_account, w.namespace
    )
}

/// The policy directory through the proxy's own loader: it loads, and nothing is left out.
fn policy(config: &ProxyConfig, report: &mut Report) -> anyhow::Result<()> {
    let settings = match config.policy_settings() {
        Ok(s) => s,
        Err(e) => {
            return report.add(Check::fail(
                "policy.defaultPolicy",
                e.to_string(),
                "use one of Linkerd's default policies: all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny or audit",
            ));
        }
    };
    let Some(files) = &config.policy else {
        return report.add(Check::pass(
            "policy",
            format!(
                "no policy.dir: every request gets the default policy, {}",
                settings.default_policy
            ),
        ));
    };
    let dir = files.dir.display();
    let lint = format!("run `meshlens policy lint {dir}` and fix what it lists");
    report.add(
        match PolicyState::load(&files.dir, &config.workload, &settings, 1) {
            Ok(state) if state.warnings.is_empty() => {
                Check::pass("policy", format!("{dir} loads and lints clean"))
            }
            Ok(state) => Check::warn(
                "policy",
                format!(
                    "{dir}: {} resource(s) left out, as Linkerd's admission would refuse them; the first: {}",
                    state.warnings.len(),
                    state.warnings[0]
                ),
                lint,
            ),
            Err(e) => Check::fail("policy", e, lint),
        },
    )
}

/// A directory registry opens; a URL answers `GET /subjects` with the configured credentials.
fn registry(config: &ProxyConfig, report: &mut Report) -> anyhow::Result<()> {
    let Some(spec) = &config.registry else {
        return Ok(());
    };
    if !crate::registry::is_url(spec) {
        return report.add(match crate::registry::Store::open_read_only(Path::new(spec)) {
            Ok(_) => Check::pass("registry", format!("the directory {spec} opens")),
            Err(e) => Check::fail(
                "registry",
                e.to_string(),
                "give a directory made by `meshlens registry serve --dir` or `registry import`, or an http(s):// URL",
            ),
        });
    }
    let auth = match &config.registry_auth {
        Some(a) => match a.load() {
            Ok(auth) => auth,
            Err(e) => {
                return report.add(Check::fail(
                    "registryAuth",
                    e.to_string(),
                    "mount the secret files registryAuth names",
                ));
            }
        },
        None => crate::registry::Auth::None,
    };
    let reached = crate::registry::RegistryClient::new(spec, auth)
        .map_err(|e| e.to_string())
        .and_then(|client| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            rt.block_on(async {
                tokio::time::timeout(PROBE_TIMEOUT, client.subjects(false))
                    .await
                    .map_err(|_| format!("no answer from {spec} within {PROBE_TIMEOUT:?}"))?
                    .map_err(|e| e.to_string())
            })
        });
    report.add(match reached {
        Ok(subjects) => Check::pass(
            "registry",
            format!("{spec} answers: {} subject(s)", subjects.len()),
        ),
        Err(e) => Check::fail(
            "registry",
            e,
            "check the URL, that the registry runs and is reachable from here, and registryAuth",
        ),
    })
}

/// Who may tap, so a 403 later is no surprise; a token setup loads.
fn tap(config: &ProxyConfig, report: &mut Report) -> anyhow::Result<()> {
    let allowed = match &config.admin.tap_allow {
        Some(list) if list.is_empty() => "nobody over mTLS (admin.tapAllow is empty)".to_string(),
        Some(list) => list.join(", "),
        None => {
            let d = config.domain();
            format!(
                "{} (the default operator identity)",
                crate::tap::server::operator_identity(&d.control_namespace, &d.trust_domain)
            )
        }
    };
    report.add(Check::pass("admin.tapAllow", format!("may tap: {allowed}")))?;
    if let Some(tokens) = &config.admin.tap_tokens {
        report.add(match crate::tap::token::TokenVerifier::load(tokens) {
            Ok(_) => Check::pass(
                "admin.tapTokens",
                format!("{} loads", tokens.jwks.display()),
            ),
            Err(e) => Check::fail(
                "admin.tapTokens",
                e.to_string(),
                "mount the identity provider's JWKS (its jwks_uri document) at admin.tapTokens.jwks",
            ),
        })?;
    }
    Ok(())
}

/// Every listen address is free (the proxy can start) or held by this very proxy (it runs);
/// the app answers on its port.
fn ports(
    config: &ProxyConfig,
    expected: Option<&IdentityName>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let running = running_identity(config.admin.listen)
        .is_some_and(|id| expected.is_some_and(|e| e.as_str() == id));
    let mut listens = vec![
        ("inbound.listen".to_string(), config.inbound.listen),
        ("outbound.listen".to_string(), config.outbound.listen),
        ("admin.listen".to_string(), config.admin.listen),
    ];
    for (i, t) in config.outbound.tcp.iter().enumerate() {
        listens.push((format!("outbound.tcp[{i}].listen"), t.listen));
    }
    for (what, addr) in listens {
        report.add(port(&what, addr, running))?;
    }
    let app = SocketAddr::new(config.inbound.app_host, config.inbound.port);
    report.add(
        match TcpStream::connect_timeout(&app, PROBE_TIMEOUT) {
            Ok(_) => Check::pass("app", format!("something listens on {app}")),
            Err(e) => Check::warn(
                "app",
                format!("nothing answers on {app} ({e})"),
                "start the app, or correct inbound.appHost and inbound.port; until then inbound requests get 502",
            ),
        },
    )
}

fn port(what: &str, addr: SocketAddr, proxy_running: bool) -> Check {
    if addr.port() == 0 {
        return Check::pass(what, format!("{addr}: any free port"));
    }
    let error = match TcpListener::bind(addr) {
        Ok(_) => return Check::pass(what, format!("{addr} is free")),
        Err(e) => e,
    };
    match error.kind() {
        std::io::ErrorKind::AddrInUse if proxy_running => Check::pass(
            what,
            format!("{addr} is in use by this proxy, which is running"),
        ),
        std::io::ErrorKind::AddrInUse => {
            match TcpStream::connect_timeout(&reachable(addr), PROBE_TIMEOUT) {
                Ok(_) => Check::warn(
                    what,
                    format!(
                        "{addr} is in use: something listens there, but not this proxy's admin endpoint"
                    ),
                    "stop what holds the port (`ss -ltnp`), or choose another port",
                ),
                Err(_) => Check::fail(
                    what,
                    format!("{addr} is in use"),
                    "stop what holds the port (`ss -ltnp`), or choose another port",
                ),
            }
        }
        std::io::ErrorKind::AddrNotAvailable => Check::fail(
            what,
            format!("{addr} is not an address of this machine"),
            "listen on 0.0.0.0, 127.0.0.1 or an address this host (pod) has",
        ),
        std::io::ErrorKind::PermissionDenied => Check::fail(
            what,
            format!("may not listen on {addr}: {error}"),
            "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a higher port",
        ),
        _ => Check::fail(
            what,
            format!("cannot listen on {addr}: {error}"),
            "choose another address",
        ),
    }
}

/// An address to connect to for a listen address (`0.0.0.0` means this host).
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// The identity a proxy serving on `admin` presents (`GET /identity`), if one answers there.
fn running_identity(admin: SocketAddr) -> Option<String> {
    if admin.port() == 0 {
        return None;
    }
    let mut stream = TcpStream::connect_timeout(&reachable(admin), PROBE_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    stream
        .write_all(b"GET /identity HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    json.get("identity")?.as_str().map(str::to_string)
}
