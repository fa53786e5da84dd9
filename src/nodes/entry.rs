//! The process entry of a built-in node: read the identity and the validated options from
//! the environment (a spawned `procnet node`), or take them from the launcher (a forked
//! replica), then join, run, finish.

use super::Kind;
use crate::runtime::{vars, Identity, Node, NodeError};

/// How a node run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// The stream ended and `done` was sent.
    Finished,
    /// The node failed and the launcher was told why (it prints the reason).
    FailedReported,
}

/// Run the built-in node described by the environment. Errors after joining are sent to the
/// launcher in a `failed` message; an `Err` is one the launcher could not be told about.
pub fn run_builtin_from_env() -> Result<Ending, NodeError> {
    let identity = Identity::from_env()?;
    let config = std::env::var(vars::CONFIG).map_err(|_| NodeError::Env(format!("{} is not set", vars::CONFIG)))?;
    let kind: Kind = serde_json::from_str(&config)
        .map_err(|e| NodeError::Env(format!("{} is not a valid node config: {e}", vars::CONFIG)))?;
    run_builtin(&identity, &kind)
}

/// Join the network as `identity` and run `kind`.
pub fn run_builtin(identity: &Identity, kind: &Kind) -> Result<Ending, NodeError> {
    let service = kind.start_service()?;
    let publish = service.as_ref().map(|s| s.publish.clone()).unwrap_or_default();
    let mut node = Node::join_publishing(identity, publish)?;
    match kind.run(&mut node).and_then(|()| node.finish()) {
        Ok(()) => Ok(Ending::Finished),
        Err(e) => {
            // The launcher prints it; if even that fails, the caller prints it on stderr.
            node.fail(&e).map_err(|_| e)?;
            Ok(Ending::FailedReported)
        }
    }
}
