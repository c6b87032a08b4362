//! Errors of the policy engine. Each names where the problem is: the file, the document's
//! index in it (from 1, as editors count `---` sections) and the field path inside it.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// Where a resource came from: a file and a document inside it (`item` for `kind: List`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    pub file: PathBuf,
    /// 1-based document index in a multi-document file.
    pub document: usize,
    /// 0-based index inside a `kind: List` document.
    pub item: Option<usize>,
    /// 1-based line of the document's start (or of the error), when known.
    pub line: Option<usize>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": document {}", self.document)?;
        if let Some(item) = self.item {
            write!(f, " item {item}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("cannot read {path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bytes are not YAML, or a document does not have the shape of its kind.
    #[error("{at}: {message}")]
    Syntax { at: Box<Source>, message: String },
    /// A document that parses but that Linkerd's admission webhook (or our contract rules)
    /// would reject.
    #[error("{at}: {kind} {name}: {field}: {message}")]
    Invalid {
        at: Box<Source>,
        kind: String,
        name: String,
        field: String,
        message: String,
    },
    /// The workloads file is malformed.
    #[error("{path}: {message}", path = .path.display())]
    Workloads { path: PathBuf, message: String },
    /// A request that cannot be evaluated (unknown workload, bad port, ...).
    #[error("{0}")]
    Request(String),
}

impl PolicyError {
    /// The file, document and item an error is about, for listing errors in file order.
    pub fn position(&self) -> Option<(&std::path::Path, usize, Option<usize>)> {
        match self {
            PolicyError::Syntax { at, .. } | PolicyError::Invalid { at, .. } => {
                Some((&at.file, at.document, at.item))
            }
            PolicyError::Io { path, .. } | PolicyError::Workloads { path, .. } => {
                Some((path, 0, None))
            }
            PolicyError::Request(_) => None,
        }
    }
}
