//! The node side of the protocol: identity from the environment, joining the network, and
//! the record loop (`recv`, `send`, `finish`) that built-in and Rust command nodes share.
//! It knows no built-in kind: [`crate::nodes`] builds on it, never the other way round.

mod batch;
mod endpoint;
mod error;
mod identity;
mod input;
mod node;
pub mod outfile;
mod output;
mod publisher;
mod waker;
pub(crate) mod zap;

pub use batch::{Batch, Records};
pub use endpoint::private_socket;
pub use error::NodeError;
pub use identity::{vars, Identity};
pub use node::{BatchEvent, Event, Node};
pub use output::{BATCH_BYTES, BATCH_RECORDS, HWM};
pub use waker::Waker;
