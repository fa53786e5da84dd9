//! procnet as its users drive it: the real binary (`check`, `run`, `graph`, `export`) on
//! topologies each test writes, with real nodes (the built-in ones, the rogue node of
//! `tests/nodes/rogue.rs`, Python processes), local HTTP servers, and several launchers at
//! once. Each test has a deadline and checks that no process of its run is left behind.
//!
//! The tests that measure a run's CPU time or memory, or load the whole machine, are in
//! `tests/bounds/`, so that these (some of which time a run) do not run beside them.

/// The parts of `tests/util/` these tests use: all but the fuzzing helpers.
#[path = "../util"]
mod util {
    pub mod control;
    pub mod data;
    pub mod dice;
    pub mod harness;
    pub mod http;
    pub mod os;
    pub mod prometheus;
    pub mod scratch;
    pub mod seed;
    pub mod venv;

    pub use control::*;
    pub use data::*;
    pub use dice::*;
    pub use harness::*;
    pub use os::*;
    pub use scratch::*;
    pub use seed::*;
    pub use venv::*;
}

mod chaos;
mod cluster;
mod exact;
mod export;
mod failures;
mod fetch;
mod hardening;
mod invalid;
mod json_logs;
mod launcher;
mod lines_limits;
mod metrics;
mod node_env;
mod overrides;
mod progress;
mod pubsub;
mod python;
mod schema;
mod shell;
mod stdio;
mod sweep;
mod topologies;
mod variables;
