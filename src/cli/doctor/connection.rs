//! The checks of a connection to a proxy's tap, one step at a time so a failure names its
//! step: your credentials, the TCP connection, the TLS handshake (both directions: the proxy's
//! certificate against your --ca, yours against its trust anchors) and the tap authorization.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{Check, Report, expiry};
use crate::cli::connect::TapAuthArgs;
use crate::identity::{CertInfo, IdentityError, Leaf, TrustBundle, peer_identity};
use crate::tap::client::Auth;
use crate::tap::server::CONTENT_TYPE_AVRO;

/// Each network step: connect, handshake, answer.
const STEP: Duration = Duration::from_secs(5);
/// The most of a refusal's text kept.
const MAX_ANSWER: usize = 4096;

/// Who the client is: its identity (mTLS) and how it authenticates.
struct Credentials {
    identity: Option<String>,
    auth: Auth,
}

pub(super) fn check(
    addr: &str,
    args: &TapAuthArgs,
    report: &mut Report,
    now: SystemTime,
) -> anyhow::Result<()> {
    let Some(credentials) = credentials(args, report, now)? else {
        return Ok(());
    };
    let rt = crate::cli::connect::runtime()?;
    let checks = rt.block_on(probe(addr, &credentials));
    for check in checks {
        report.add(check)?;
    }
    Ok(())
}

fn credentials(
    args: &TapAuthArgs,
    report: &mut Report,
    now: SystemTime,
) -> anyhow::Result<Option<Credentials>> {
    if let Some(token) = &args.token {
        return Ok(match Auth::token_from_file(token) {
            Ok(auth) => {
                report.add(Check::pass(
                    "--token",
                    format!("{} holds a bearer token", token.display()),
                ))?;
                Some(Credentials {
                    identity: None,
                    auth,
                })
            }
            Err(e) => {
                report.add(Check::fail(
                    "--token",
                    e.to_string(),
                    "give a file holding one OIDC token (a JWT) from the identity provider admin.tapTokens trusts",
                ))?;
                None
            }
        });
    }
    let (Some(ca), Some(cert), Some(key)) = (&args.ca, &args.cert, &args.key) else {
        anyhow::bail!("give either --ca, --cert and --key (mTLS) or --token");
    };
    let bundle = std::fs::read(ca)
        .map_err(|e| format!("cannot read {}: {e}", ca.display()))
        .and_then(|pem| TrustBundle::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display())));
    let bundle = match bundle {
        Ok(b) => {
            report.add(Check::pass(
                "--ca",
                format!("{}: {} trust anchor(s)", ca.display(), b.len()),
            ))?;
            Some(b)
        }
        Err(e) => {
            report.add(Check::fail(
                "--ca",
                e,
                "give the mesh's trust anchors (PEM), the file its proxies have as identity.trustAnchors",
            ))?;
            None
        }
    };
    let leaf = match Leaf::load(cert, key) {
        Ok(leaf) => leaf,
        Err(e) => {
            report.add(Check::fail(
                "--cert/--key",
                e.to_string(),
                "issue a tap identity with `meshlens identity issue --dir CA --sa meshlens-operator --ns meshlens --out operator` and pass operator.crt and operator.key",
            ))?;
            return Ok(None);
        }
    };
    report.add(Check::pass(
        "--cert/--key",
        format!("you are {}", leaf.name().as_str()),
    ))?;
    if let Ok(info) = CertInfo::parse(&leaf.chain()[0], 0) {
        report.add(expiry(
            "--cert expiry",
            &info,
            now,
            "issue a new one with `meshlens identity issue` from the mesh's CA",
        ))?;
    }
    let Some(bundle) = bundle else {
        return Ok(None);
    };
    Ok(match Auth::mtls(&bundle, &leaf) {
        Ok(auth) => Some(Credentials {
            identity: Some(leaf.name().as_str().to_string()),
            auth,
        }),
        Err(e) => {
            report.add(Check::fail(
                "credentials",
                e.to_string(),
                "check --ca, --cert and --key",
            ))?;
            None
        }
    })
}

/// Connect, handshake and ask for the tap stream; the checks in order, ending at the first
/// step that failed.
async fn probe(addr: &str, credentials: &Credentials) -> Vec<Check> {
    let mut checks = Vec::new();
    let tcp = match tokio::time::timeout(STEP, TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            checks.push(Check::fail(
                "connect",
                format!("cannot connect to {addr}: {e}"),
                "is the proxy running, and is this its admin.listen address? The default 127.0.0.1:4191 takes local connections only: forward it (`kubectl port-forward POD 4191`)",
            ));
            return checks;
        }
        Err(_) => {
            checks.push(Check::fail(
                "connect",
                format!("no connection to {addr} within {STEP:?}"),
                "check the address, and that no firewall or network policy drops the port",
            ));
            return checks;
        }
    };
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| addr.to_string(), |p| p.to_string());
    checks.push(Check::pass("connect", format!("TCP to {peer}")));
    let _ = tcp.set_nodelay(true);

    let answer = match &credentials.auth {
        Auth::Mtls(config) => {
            let Ok(ip) = tcp.peer_addr().map(|p| p.ip()) else {
                checks.push(Check::fail("tls", "the connection closed", "try again"));
                return checks;
            };
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let handshake = tokio::time::timeout(
                STEP,
                connector.connect(ServerName::IpAddress(ip.into()), tcp),
            )
            .await;
            let tls = match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    checks.push(tls_failure(crate::identity::handshake_error(e)));
                    return checks;
                }
                Err(_) => {
                    checks.push(Check::fail(
                        "tls",
                        format!("no TLS handshake within {STEP:?}"),
                        "is this a meshlens proxy's admin address?",
                    ));
                    return checks;
                }
            };
            let server = peer_identity(tls.get_ref().1.peer_certificates())
                .unwrap_or_else(|_| "a certificate without an identity".into());
            // In TLS 1.3 the proxy judges our certificate after our side has finished, so its
            // refusal arrives as an alert on the first read: the request tells.
            let answer = request(tls, addr, None).await;
            if let Some(refused) = answer.as_ref().err().and_then(rejected_by_peer) {
                checks.push(tls_failure(refused));
                return checks;
            }
            checks.push(Check::pass(
                "tls",
                format!("TLS 1.3 with {server}, whose certificate chains to your --ca"),
            ));
            answer
        }
        Auth::Token(token) => request(tcp, addr, Some(token)).await,
    };
    checks.push(match answer {
        Ok(response) => authorization(response, credentials).await,
        Err(e) => Check::fail(
            "tap",
            format!("GET /tap failed: {e}"),
            "is this a meshlens proxy's admin address?",
        ),
    });
    checks
}

/// A handshake failure in words, with what to do.
fn tls_failure(error: IdentityError) -> Check {
    let what = "tls";
    match error {
        IdentityError::UnknownCa => Check::fail(
            what,
            "the proxy's certificate is not signed by your --ca (trust anchors differ)",
            "pass the trust anchors of the proxy's mesh as --ca (its identity.trustAnchors)",
        ),
        IdentityError::RejectedByPeer { alert } => Check::fail(
            what,
            format!(
                "the proxy refused your certificate ({alert} alert): --cert is not signed by the proxy's trust anchors, or has expired"
            ),
            "issue your certificate from the proxy's mesh CA (`meshlens identity issue --dir CA --sa meshlens-operator --ns meshlens --out operator`)",
        ),
        e @ (IdentityError::Expired { .. } | IdentityError::NotYetValid { .. }) => Check::fail(
            what,
            e.to_string().replace("the peer's", "the proxy's"),
            "renew the proxy's certificate (`meshlens doctor` on its config shows it), and check both clocks",
        ),
        IdentityError::Io(e) => Check::fail(
            what,
            format!("the connection failed during the handshake: {e}"),
            "is this a meshlens proxy's admin address? Its /tap needs TLS with a client certificate",
        ),
        e => Check::fail(what, e.to_string(), "check --ca, --cert and --key"),
    }
}

/// The proxy's refusal of our certificate, found in the error chain of a failed request.
fn rejected_by_peer(error: &hyper::Error) -> Option<IdentityError> {
    let mut cause = error.source();
    while let Some(e) = cause {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls @ rustls::Error::AlertReceived(_)) = tls {
            return Some(IdentityError::from(tls.clone()));
        }
        cause = e.source();
    }
    None
}

/// `GET /tap` over an open connection (the stream is dropped once its head arrived).
async fn request<IO>(
    io: IO,
    addr: &str,
    token: Option<&str>,
) -> Result<Response<Incoming>, hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let conn = tokio::spawn(conn);
    let mut req = Request::get("/tap")
        .header(HOST, addr)
        .body(Empty::<Bytes>::new())
        .expect("a static request is valid");
    if let Some(token) = token
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        req.headers_mut().insert(AUTHORIZATION, value);
    }
    match sender.send_request(req).await {
        Ok(response) => Ok(response),
        // The connection's own error says why (a TLS alert, say); the request only sees it end.
        Err(e) => match tokio::time::timeout(STEP, conn).await {
            Ok(Ok(Err(cause))) => Err(cause),
            _ => Err(e),
        },
    }
}

/// The answer to `GET /tap`: a stream, or a refusal in words.
async fn authorization(response: Response<Incoming>, credentials: &Credentials) -> Check {
    let what = "tap";
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if status == StatusCode::OK {
        return if content_type == CONTENT_TYPE_AVRO {
            Check::pass(what, "GET /tap is allowed: the tap stream opened")
        } else {
            Check::fail(
                what,
                format!("GET /tap answered `{content_type}`, not a tap stream"),
                "is this a meshlens proxy's admin address?",
            )
        };
    }
    let said = first_line(response.into_body()).await;
    let code = status.as_u16();
    match (status, &credentials.identity) {
        (StatusCode::FORBIDDEN, Some(identity)) => Check::fail(
            what,
            format!("403: identity {identity} is not allowed to tap (the proxy said: {said})"),
            format!(
                "add it to admin.tapAllow in the proxy config (exact, or `*.{}`-style suffix), or tap with the operator identity",
                identity
                    .split_once('.')
                    .map_or(identity.as_str(), |(_, rest)| rest)
            ),
        ),
        (StatusCode::FORBIDDEN, None) => Check::fail(
            what,
            format!("403: {said}"),
            "add the token's subject or e-mail to admin.tapTokens.allow in the proxy config",
        ),
        (StatusCode::UNAUTHORIZED, _) => Check::fail(
            what,
            format!("401: the token was refused: {said}"),
            "get a fresh token from the identity provider admin.tapTokens names (issuer, audience, expiry)",
        ),
        (StatusCode::NOT_FOUND, _) => Check::fail(
            what,
            format!("404: there is no /tap here ({said})"),
            "point --tap at a meshlens proxy's admin address (Linkerd's own proxies have no /tap: use `meshlens edges --metrics`)",
        ),
        _ => Check::fail(
            what,
            format!("{code}: {said}"),
            "see the proxy's log (RUST_LOG=info)",
        ),
    }
}

/// The first line of a refusal's body, bounded in size and time.
async fn first_line(mut body: Incoming) -> String {
    let mut out = Vec::new();
    let read = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                out.extend_from_slice(&data);
                if out.len() >= MAX_ANSWER {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(STEP, read).await;
    let text = String::from_utf8_lossy(&out[..out.len().min(MAX_ANSWER)]).into_owned();
    text.lines().next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_ca_is_said_in_words() {
        let check = tls_failure(IdentityError::UnknownCa);
        assert!(
            check
                .found
                .contains("not signed by your --ca (trust anchors differ)"),
            "{}",
            check.found
        );
    }
}
