//! The node side of the protocol: identity from the environment, joining the network, and
//! the record loop (`recv`, `send`, `finish`) that built-in and Rust command nodes share.

mod batch;
mod entry;
mod error;
mod identity;
mod input;
mod node;
mod output;
mod publisher;
mod waker;
pub(crate) mod zap;

pub use batch::{Batch, Records};
pub use entry::{run_builtin, run_builtin_from_env, Ending};
pub use error::NodeError;
pub use identity::{vars, Identity};
pub use node::{Event, Node};
pub use output::{BATCH_BYTES, BATCH_RECORDS, HWM};
pub use waker::Waker;

/// Make the file of an ipc socket just bound at `endpoint` readable and writable by its owner
/// only (0600), whatever the umask; other endpoints are left alone. The run's directory is
/// private already; this keeps its sockets private too should it ever be opened.
pub fn private_socket(endpoint: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match endpoint.strip_prefix("ipc://") {
        Some(path) if !path.starts_with('@') => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)),
        _ => Ok(()),
    }
}
