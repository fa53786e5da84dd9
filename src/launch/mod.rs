//! The launcher: starts one process per node replica, wires them over the control channel,
//! supervises them, and leaves nothing behind.

mod outcome;
mod progress;
pub mod report;
mod spawn;
mod supervisor;

pub use outcome::{Outcome, ReplicaReport, RunError};
pub use progress::report_table;
pub use supervisor::{run, RunOptions};
