//! Topology files: the spanned raw stage, the one compile step into a validated
//! [`Topology`], and diagnostics with file:line:column.

mod checks;
pub mod compile;
pub mod diagnostic;
pub mod hosts;
mod load;
mod model;
mod ports;
pub mod raw;
mod summary;

pub use load::{load, LoadError};
pub use model::{
    socket_key, Host, Input, Node, NodeId, Pattern, Port, Restart, Runner, StartMethod, TopicRule, Topology, Transport,
    DEFAULT_MAX_MESSAGE_BYTES,
};
pub use summary::{dot, summary};
