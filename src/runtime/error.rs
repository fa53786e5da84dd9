//! Why a node could not go on.

use std::fmt;
use std::io;

/// An error inside a node process; reported to the launcher in a `failed` message.
#[derive(Debug)]
pub enum NodeError {
    /// A ZeroMQ call failed; `what` reads after "failed to".
    Zmq {
        /// What was being done.
        what: String,
        /// The ZeroMQ error.
        source: zmq::Error,
    },
    /// A file or stream failed; `what` reads after "failed to".
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The environment the launcher sets is missing or malformed.
    Env(String),
    /// A peer or the launcher broke the protocol, or records went missing.
    Protocol(String),
}

impl NodeError {
    /// Wrap a ZeroMQ error with what was being done.
    pub fn zmq(what: impl Into<String>) -> impl FnOnce(zmq::Error) -> NodeError {
        let what = what.into();
        move |source| NodeError::Zmq { what, source }
    }

    /// Wrap an I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> NodeError {
        let what = what.into();
        move |source| NodeError::Io { what, source }
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Zmq { what, source } => write!(f, "failed to {what}: {source}"),
            NodeError::Io { what, source } => write!(f, "failed to {what}: {source}"),
            NodeError::Env(msg) | NodeError::Protocol(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for NodeError {}
