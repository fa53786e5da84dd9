//! Topology files: the spanned raw stage, the one compile step into a validated
//! [`Topology`], and diagnostics with file:line:column.
//!
//! The stages, in order; each file imports only the ones above it, so there is no import
//! circle (`use super::` a later stage is a mistake):
//! 1. `lines`, `suggest`: line and column of a byte offset; "did you mean" and elided names.
//! 2. `diagnostic`: errors and warnings with their positions, rendered with the source line.
//! 3. `syntax`, `names`, `raw`: the TOML grammar pass, the rules for names, and typed reads
//!    from the spanned tree ([`raw::Table`], and [`raw::resolve`] for paths).
//! 4. `port`: the output port vocabulary ([`Port`], [`Pattern`], [`TopicRule`]).
//!    The built-in kinds of [`crate::nodes`] come here: they read their options with `raw`
//!    and `diagnostic` and declare their ports with `port`, and import nothing later.
//! 5. `model`: the validated [`Topology`], which holds each built-in's [`crate::nodes::Kind`].
//! 6. `draft`: the topology as read, before names resolve (`Draft` and its friends).
//! 7. `ports`, `process`, `checks`, `hosts`: reading a node's outputs and inputs, and its
//!    program's `env` and `cwd`, into drafts; the cross-node checks; `[hosts]` and the
//!    placement of edges on them.
//! 8. `ipc`: the run's private directory and its socket paths, checked on a valid model.
//! 9. `expand`, `overrides`: the parsed document before it is read: `${VAR}` from the
//!    launcher's environment, then the command line's `--set PATH=VALUE`, each a source of
//!    diagnostics of its own.
//! 10. `compile`: the one raw-to-validated conversion, calling all of the above.
//! 11. `load`, `summary`: reading a file and compiling it; the summary and graph of a model.
//! 12. `schema`: the JSON Schema of topology files, for editors, from the compiler's key lists.

mod checks;
pub mod compile;
pub mod diagnostic;
mod draft;
pub mod expand;
pub mod hosts;
pub mod ipc;
mod lines;
mod load;
mod model;
mod names;
mod overrides;
mod port;
mod ports;
mod process;
pub mod raw;
mod schema;
mod suggest;
mod summary;
mod syntax;

pub use load::{load, load_bytes, load_with, LoadError, MAX_FILE_BYTES};
pub use model::{
    socket_key, Delivery, Host, Input, Node, NodeId, Restart, Runner, StartMethod, Topology, Transport,
    DEFAULT_MAX_MESSAGE_BYTES,
};
pub use names::MAX_NAME_CHARS;
pub use overrides::Override;
pub use port::{Pattern, Port, TopicRule};
pub use schema::{json_schema, json_schema_text};
pub use summary::{dot, summary};
