//! Errors of the registry. Each variant that a REST client can see carries Confluent's HTTP
//! status and `error_code` (`rest/exceptions/Errors.java`), so the server and the client
//! speak the same numbers.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {version} not found.")]
    VersionNotFound { subject: String, version: String },
    #[error("{0}")]
    SchemaNotFound(String),
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    #[error(
        "Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted { subject: String, version: u32 },
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted { subject: String, version: u32 },
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectLevelNotConfigured(String),
    /// A registration that the subject's compatibility level forbids.
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
        details.join(", ")
    )]
    Incompatible {
        subject: String,
        details: Vec<String>,
    },
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    #[error(
        "Invalid compatibility level \"{0}\". Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
    )]
    InvalidLevel(String),
    #[error("Invalid mode \"{0}\": this registry is always READWRITE")]
    InvalidMode(String),
    #[error("Operation not permitted: {0}")]
    NotPermitted(String),
    #[error("One or more references exist to the schema {{subject={subject},version={version}}}")]
    ReferenceExists { subject: String, version: u32 },
    #[error("{0}")]
    IdConflict(String),
    #[error("Invalid subject {0:?}: a subject is 1 to 1024 characters without control characters")]
    InvalidSubject(String),
    #[error("The request body is larger than {0} bytes")]
    TooLarge(usize),
    /// A request body that is not JSON at all.
    #[error("{0}")]
    BadRequest(String),
    /// A JSON request body of the wrong shape.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("HTTP 404 Not Found")]
    NoSuchPath,
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,

    /// The directory could not be read or written.
    #[error("{}: {message}", path.display())]
    Store { path: PathBuf, message: String },
    /// Another process holds the directory.
    #[error(
        "{} is in use by another meshlens process (lock file {}); stop it, or serve the directory from that process",
        dir.display(), lock.display()
    )]
    Locked { dir: PathBuf, lock: PathBuf },
    /// A registry opened for reading only was asked to write.
    #[error("{} is open read-only", .0.display())]
    ReadOnly(PathBuf),

    /// A remote registry answered with an error.
    #[error("{url}: HTTP {status}{}: {message}", code.map(|c| format!(" (error {c})")).unwrap_or_default())]
    Remote {
        url: String,
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// A remote registry could not be reached or answered something unreadable.
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
}

impl RegistryError {
    pub(crate) fn store(
        path: impl Into<PathBuf>,
        message: impl std::fmt::Display,
    ) -> RegistryError {
        RegistryError::Store {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// The HTTP status the REST API answers with.
    pub fn status(&self) -> u16 {
        use RegistryError as E;
        match self {
            E::SubjectNotFound(_)
            | E::VersionNotFound { .. }
            | E::SchemaNotFound(_)
            | E::SubjectSoftDeleted(_)
            | E::SubjectNotSoftDeleted(_)
            | E::VersionSoftDeleted { .. }
            | E::VersionNotSoftDeleted { .. }
            | E::SubjectLevelNotConfigured(_)
            | E::NoSuchPath => 404,
            E::Incompatible { .. } => 409,
            E::InvalidSchema(_)
            | E::InvalidVersion(_)
            | E::InvalidLevel(_)
            | E::InvalidMode(_)
            | E::NotPermitted(_)
            | E::ReadOnly(_)
            | E::ReferenceExists { .. }
            | E::IdConflict(_)
            | E::InvalidSubject(_)
            | E::TooLarge(_)
            | E::Unprocessable(_) => 422,
            E::BadRequest(_) => 400,
            E::MethodNotAllowed => 405,
            E::UnsupportedMediaType(_) => 415,
            E::Store { .. } | E::Locked { .. } | E::Transport { .. } => 500,
            E::Remote { status, .. } => *status,
        }
    }

    /// Confluent's `error_code`.
    pub fn code(&self) -> i64 {
        use RegistryError as E;
        match self {
            E::SubjectNotFound(_) => 40401,
            E::VersionNotFound { .. } => 40402,
            E::SchemaNotFound(_) => 40403,
            E::SubjectSoftDeleted(_) => 40404,
            E::SubjectNotSoftDeleted(_) => 40405,
            E::VersionSoftDeleted { .. } => 40406,
            E::VersionNotSoftDeleted { .. } => 40407,
            E::SubjectLevelNotConfigured(_) => 40408,
            // RestIncompatibleSchemaException.DEFAULT_ERROR_CODE, what clients look for.
            E::Incompatible { .. } => 409,
            E::InvalidSchema(_) => 42201,
            E::InvalidVersion(_) => 42202,
            E::InvalidLevel(_) => 42203,
            E::InvalidMode(_) => 42204,
            E::NotPermitted(_) | E::ReadOnly(_) => 42205,
            E::ReferenceExists { .. } => 42206,
            E::IdConflict(_) => 42207,
            E::InvalidSubject(_) => 42208,
            E::TooLarge(_) => 42209,
            E::Unprocessable(_) => 422,
            E::BadRequest(_) => 400,
            E::NoSuchPath => 404,
            E::MethodNotAllowed => 405,
            E::UnsupportedMediaType(_) => 415,
            E::Store { .. } | E::Locked { .. } | E::Transport { .. } => 50001,
            E::Remote { code, status, .. } => code.unwrap_or(i64::from(*status)),
        }
    }

    /// Whether a remote registry said "not found" (any 404).
    pub fn is_not_found(&self) -> bool {
        self.status() == 404
    }
}
