//! Errors of the Avro engine. Each says what was wrong and where: a JSON pointer into the
//! schema, or a byte offset and a data path into the payload.

use thiserror::Error;

/// A schema that is not valid Avro.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("invalid schema{}: {message}", location(path))]
pub struct SchemaError {
    /// JSON pointer of the offending part (empty for the whole document).
    pub path: String,
    pub message: String,
}

fn location(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

impl SchemaError {
    pub fn new(path: &str, message: impl Into<String>) -> SchemaError {
        SchemaError {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// Bytes that do not decode with the schema they claim to be written with.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{message} at byte {offset}{}", at_path(path))]
pub struct DecodeError {
    /// Offset into the datum (or the whole payload, once framing has added its header length).
    pub offset: usize,
    /// Where in the value the error happened, e.g. `.lines[3].price`; empty at the root.
    pub path: String,
    pub message: String,
    /// The bytes ran out before the value did: the same bytes with more after them might
    /// decode, so a caller that only kept a prefix can tell "cut short" from "damaged".
    pub end_of_input: bool,
}

fn at_path(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" (in {path})")
    }
}

impl DecodeError {
    pub fn new(offset: usize, message: impl Into<String>) -> DecodeError {
        DecodeError {
            offset,
            path: String::new(),
            message: message.into(),
            end_of_input: false,
        }
    }

    pub(crate) fn end_of_input(offset: usize, message: impl Into<String>) -> DecodeError {
        DecodeError {
            end_of_input: true,
            ..DecodeError::new(offset, message)
        }
    }

    /// Prepends one path segment while the error travels out of nested values.
    pub(crate) fn within(mut self, segment: impl AsRef<str>) -> DecodeError {
        self.path.insert_str(0, segment.as_ref());
        self
    }

    pub(crate) fn shifted(mut self, by: usize) -> DecodeError {
        self.offset += by;
        self
    }
}

/// A value that does not fit the schema it is encoded with.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("value does not fit the schema{}: {message}", at_path(path))]
pub struct EncodeError {
    /// Where in the value, e.g. `.lines[3].price`; empty at the root.
    pub path: String,
    pub message: String,
}

impl EncodeError {
    pub fn new(message: impl Into<String>) -> EncodeError {
        EncodeError {
            path: String::new(),
            message: message.into(),
        }
    }

    /// Prepends one path segment while the error travels out of nested values.
    pub(crate) fn within(mut self, segment: impl AsRef<str>) -> EncodeError {
        self.path.insert_str(0, segment.as_ref());
        self
    }
}

/// Everything the Avro engine can report.
#[derive(Debug, Error)]
pub enum AvroError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A payload whose framing is broken or whose schema reference cannot be satisfied.
    #[error("{0}")]
    Framing(String),
    /// An object container file that is damaged or uses something unsupported.
    #[error("container file: {0}")]
    Container(String),
    /// The destination a container file is written to failed.
    #[error("writing a container file: {0}")]
    Write(#[from] std::io::Error),
}
