//! How tap-stream commands (`tap`, `top`, `record`, `edges`) reach proxies' admin ports:
//! client certificate files or a bearer token, shared so every command spells them alike.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::tap::Event;
use crate::tap::Filter;
use crate::tap::client::{Auth, ConnState, Connection, TapClient, TapTarget};

#[derive(Args, Debug, Clone)]
pub struct TapAuthArgs {
    /// Trust anchors (PEM) the proxies' certificates chain to; with --cert and --key, tap
    /// over mTLS. The proxies allow the operator identity by default:
    /// `meshlens identity issue --sa meshlens-operator --ns meshlens` issues it.
    #[arg(long, value_name = "FILE", requires_all = ["cert", "key"], conflicts_with = "token")]
    pub ca: Option<PathBuf>,
    /// The client certificate chain (PEM), from `meshlens identity issue`.
    #[arg(long, value_name = "FILE", requires = "ca")]
    pub cert: Option<PathBuf>,
    /// The client key (PEM).
    #[arg(long, value_name = "FILE", requires = "ca")]
    pub key: Option<PathBuf>,
    /// A file holding an OIDC bearer token (a JWT), sent over plain HTTP; the proxies must
    /// have admin.tapTokens.
    #[arg(long, value_name = "FILE")]
    pub token: Option<PathBuf>,
}

impl TapAuthArgs {
    pub fn auth(&self) -> anyhow::Result<Auth> {
        Ok(match (&self.ca, &self.cert, &self.key, &self.token) {
            (Some(ca), Some(cert), Some(key), None) => Auth::mtls_from_files(ca, cert, key)?,
            (None, None, None, Some(token)) => Auth::token_from_file(token)?,
            _ => anyhow::bail!("give either --ca, --cert and --key (mTLS) or --token"),
        })
    }
}

/// The runtime the tap commands run their clients on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Starts merged tap streams from `addrs`; events arrive on the returned channel and each
/// connection's state changes are printed on stderr until the client stops.
pub fn start(
    addrs: &[String],
    auth: Auth,
    filter: Filter,
) -> (
    TapClient,
    tokio::sync::mpsc::Receiver<Event>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let client = TapClient::start(
        TapTarget {
            addrs: addrs.to_vec(),
            auth,
            filter,
        },
        tx,
    );
    let status = tokio::spawn(report(client.status()));
    (client, rx, status)
}

/// Prints each connection's state when it changes, on stderr.
async fn report(mut status: tokio::sync::watch::Receiver<Vec<Connection>>) {
    let mut last: Vec<Option<String>> = Vec::new();
    loop {
        {
            let all = status.borrow_and_update();
            last.resize(all.len(), None);
            for (i, c) in all.iter().enumerate() {
                let line = match &c.state {
                    ConnState::Retrying { .. } | ConnState::Streaming { .. } => {
                        format!("tap: {}: {}", c.addr, c.state)
                    }
                    _ => continue,
                };
                if last[i].as_ref() != Some(&line) {
                    eprintln!("{line}");
                    last[i] = Some(line);
                }
            }
        }
        if status.changed().await.is_err() {
            return;
        }
    }
}
