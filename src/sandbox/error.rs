//! What can go wrong bringing up or driving a sandbox; each says where and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A manifest mistake, at a line when one is known.
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Manifest {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("schema {path}: {message}")]
    Schema { path: PathBuf, message: String },
    #[error("registry: {0}")]
    Registry(String),
    #[error("identity: {0}")]
    Identity(#[from] crate::identity::IdentityError),
    #[error("workload {workload}: {message}")]
    Workload { workload: String, message: String },
    #[error("scenario step {step}: {message}")]
    Step { step: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// Wraps an I/O error with the path it happened on.
pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}
