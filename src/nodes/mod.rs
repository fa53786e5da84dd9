//! Built-in node kinds. Each file holds one kind in the same shape: a config struct, a
//! `from_table` constructor that validates it, and a `run` over a [`crate::runtime::Node`].

mod fetch;
mod filter;
mod kind;
mod lines;
pub mod outfile;
mod serve;
mod sink;
mod tally;
mod template;

pub use fetch::FetchConfig;
pub use filter::{FilterConfig, Pattern};
pub use kind::{Kind, Service, BUILTINS};
pub use lines::{Format, LinesConfig};
pub use serve::ServeConfig;
pub use sink::SinkConfig;
pub use tally::{TallyConfig, MISSING};
pub use template::Template;
