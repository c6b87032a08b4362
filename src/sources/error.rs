//! Errors of the metrics sources. Each names where it happened: the line of an exposition,
//! the URL of a scrape or query, the file read.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SourceError {
    /// A line of Prometheus text that does not parse.
    #[error("line {line}: {message}")]
    Parse { line: usize, message: String },
    /// Well-formed text whose samples do not fit together (a histogram's buckets).
    #[error("line {line}: {message}")]
    Inconsistent { line: usize, message: String },
    /// A scrape or query that failed: connect, timeout, status, body.
    #[error("{url}: {message}")]
    Fetch { url: String, message: String },
    /// An answer of the Prometheus HTTP API that is not what the API documents.
    #[error("{url}: {message}")]
    Api { url: String, message: String },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// A scrape target written wrongly on the command line or in a config.
    #[error("{0}")]
    Target(String),
}
