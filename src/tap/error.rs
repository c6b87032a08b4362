//! Errors of the tap module.

use thiserror::Error;

use crate::avro::DecodeError;

#[derive(Debug, Error)]
pub enum TapError {
    /// Bytes that are not a datum of the tap event schema.
    #[error("tap event: {0}")]
    Decode(#[from] DecodeError),
    /// A value that does not have the shape of the tap event schema (from elsewhere than our
    /// decoder, or a number out of its Rust type's range).
    #[error("tap event{}: {message}", at_path(path))]
    Shape {
        /// Where in the event, e.g. `.http.status`; empty at the root.
        path: String,
        message: String,
    },
}

fn at_path(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

impl TapError {
    pub(crate) fn shape(message: impl Into<String>) -> TapError {
        TapError::Shape {
            path: String::new(),
            message: message.into(),
        }
    }

    /// Prepends one path segment while the error travels out of nested values.
    pub(crate) fn within(mut self, segment: &str) -> TapError {
        if let TapError::Shape { path, .. } = &mut self {
            path.insert_str(0, segment);
        }
        self
    }
}
