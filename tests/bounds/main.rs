//! Bounds on what a run costs, measured on the run's own processes: memory flat under
//! backpressure and within the bound of docs/protocol.md §9 whatever a frame holds, `check`
//! within a CPU time and a memory on any file, and the largest topologies `check` allows
//! run.
//!
//! A test binary of its own, so that what these tests measure, and the load they put on the
//! machine (floods of 60 MB frames, 1,026 processes at once), stay away from the tests of
//! `tests/cli/`, some of which time a run. Their own process stays small: amplification.rs
//! checks that it does.

/// The parts of `tests/util/` these tests use: the harness that runs procnet.
#[path = "../util"]
mod util {
    pub mod harness;
    pub mod scratch;

    pub use harness::*;
    pub use scratch::*;
}

mod amplification;
mod hostile;
mod limits;
mod memory;
