//! Why a frame could not be decoded: the one error of [`decode`](super::decode), of the
//! readers beside it, and of the field reader under them (`fields.rs`), which all share it
//! from here rather than importing each other.

use std::fmt;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}
