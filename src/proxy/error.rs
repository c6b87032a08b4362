//! Errors of the data plane that reach a person: configuration, files, listeners.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("{path}: {message}", path = .path.display())]
    Config { path: PathBuf, message: String },
    #[error("cannot read {path}: {source}", path = .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source} (is another process using the port?)")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error("policy: {0}")]
    Policy(String),
    #[error("registry: {0}")]
    Registry(String),
}

pub type Result<T, E = ProxyError> = std::result::Result<T, E>;
