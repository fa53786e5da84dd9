//! The launcher: starts one process per node replica, wires them over the control channel,
//! supervises them, and leaves nothing behind.
//!
//! Module map, from what decides to what acts:
//! - [`options`]: what a run is asked to do ([`RunOptions`], [`Placement`], [`Secret`]);
//! - `plan`: every replica, where it runs, who starts it, what it binds and is told;
//! - `machine`: the decisions of a coordinating launcher, a state machine with no socket and
//!   no process (tested alone); `member`: those of a host that joins one;
//! - the drivers that turn the world into events and apply the answers: `control` (the one
//!   reader of the control channel), `executor` (processes: spawn, fork, fork servers, reaping,
//!   killing), `coordinator` and `joiner` (the two main loops);
//! - around them: `conservation` (every edge balances), `outcome` (what a run produced),
//!   `outputs` (output files into place or aside), `external` (what external replicas need),
//!   `link` (the messages between launchers), `logs` (node output), [`notice`] (the
//!   launcher's own lines, as text or JSON), `progress`, `report`, [`metrics`] (the counters
//!   for Prometheus), `signals`, `spawn`, `fork`, `forker`, `watchdog`, `os`; [`sweep`]: the
//!   points of `--sweep`.

mod conservation;
mod control;
mod coordinator;
mod executor;
mod external;
mod fork;
mod forker;
mod joiner;
mod link;
mod logs;
mod machine;
mod member;
pub mod metrics;
pub mod notice;
pub mod options;
mod os;
mod outcome;
mod outputs;
mod plan;
mod progress;
pub mod report;
pub mod session;
mod signals;
mod spawn;
mod status;
pub mod sweep;
#[cfg(test)]
mod testing;
mod watchdog;

pub use coordinator::run;
pub use forker::forkserver_main;
pub use joiner::join;
pub use link::DEFAULT_CONTROL_PORT;
pub use options::{Placement, RunOptions, Secret};
pub use outcome::{error_chain, Outcome, ReplicaReport, RunError};
pub use progress::report_table;
pub use signals::install as catch_signals;
