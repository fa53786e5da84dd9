//! Binding a node's sockets: the endpoint a socket actually got, and ipc socket files private
//! to their owner. Shared by the input (PULL and SUB) and the pub ports (XPUB), and by the
//! launcher for its control socket.

use super::error::NodeError;

/// Bind `socket` at `endpoint` and return the endpoint it got (with the OS-chosen port of
/// `tcp://127.0.0.1:*`). `what` reads after "failed to".
pub(super) fn bind(socket: &zmq::Socket, endpoint: &str, what: &str) -> Result<String, NodeError> {
    socket.bind(endpoint).map_err(NodeError::zmq(what))?;
    private_socket(endpoint).map_err(NodeError::io(format!("make `{endpoint}` private")))?;
    socket
        .get_last_endpoint()
        .map_err(NodeError::zmq("read the bound endpoint"))?
        .map_err(|_| NodeError::Protocol("bound endpoint is not UTF-8".into()))
}

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
