//! Built-in node kinds. Each file holds one kind in the same shape: a config struct, a
//! `from_table` constructor that validates it, and a `run` over a [`crate::runtime::Node`].

mod filter;
mod kind;
mod lines;
mod sink;
mod tally;

pub use filter::{FilterConfig, Pattern};
pub use kind::{Kind, BUILTINS};
pub use lines::{Format, LinesConfig};
pub use sink::SinkConfig;
pub use tally::{TallyConfig, MISSING};
