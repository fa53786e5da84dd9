//! The launcher: starts one process per node replica, wires them over the control channel,
//! supervises them, and leaves nothing behind.

mod conservation;
mod fork;
mod forker;
mod link;
mod logs;
mod outcome;
mod outputs;
mod progress;
pub mod report;
mod signals;
mod spawn;
mod supervisor;
mod watchdog;

pub use forker::forkserver_main;
pub use link::DEFAULT_CONTROL_PORT;
pub use outcome::{Outcome, ReplicaReport, RunError};
pub use progress::report_table;
pub use signals::install as catch_signals;
pub use supervisor::{join, run, Placement, RunOptions, Secret};
