//! Topology files: the spanned raw stage, the one compile step into a validated
//! [`Topology`], and diagnostics with file:line:column.

mod checks;
pub mod compile;
pub mod diagnostic;
mod draft;
pub mod hosts;
pub mod ipc;
mod lines;
mod load;
mod model;
mod names;
mod ports;
pub mod raw;
mod suggest;
mod summary;
mod syntax;

pub use load::{load, load_bytes, LoadError, MAX_FILE_BYTES};
pub use model::{
    socket_key, Host, Input, Node, NodeId, Pattern, Port, Restart, Runner, StartMethod, TopicRule, Topology, Transport,
    DEFAULT_MAX_MESSAGE_BYTES,
};
pub use names::MAX_NAME_CHARS;
pub use summary::{dot, summary};
