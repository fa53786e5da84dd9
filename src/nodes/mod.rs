//! Built-in node kinds. Each file holds one kind in the same shape: a config struct, a
//! `from_table` constructor that validates it, and a `run` over a [`crate::runtime::Node`].
//! `kind.rs` is the registry of them, and `entry.rs` the process entry of a built-in replica
//! (spawned as `procnet node`, or forked by the launcher).

mod entry;
mod fetch;
mod filter;
mod kind;
mod lines;
mod serve;
mod sink;
mod stdio;
mod tally;
mod template;

pub use entry::{run_builtin, run_builtin_from_env, Ending};
pub use fetch::FetchConfig;
pub use filter::{FilterConfig, Pattern};
pub use kind::{Kind, Service, BUILTINS};
pub use lines::{Format, LinesConfig};
pub use serve::ServeConfig;
pub use sink::SinkConfig;
pub use stdio::{StdioConfig, StdioFormat};
pub use tally::{TallyConfig, MISSING};
pub use template::Template;
