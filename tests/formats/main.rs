//! The formats procnet reads from outside, tested in this process, without running it: wire
//! frames against the golden vectors (`tests/golden/`), and fuzzing of the wire decoder and
//! record reader, of the JSON reader of `lines`, and of the topology loader.
//!
//! A test binary of its own: every test here runs under the counting allocator below, and
//! `make fuzz` builds only this binary, in release mode, to run its `fuzz_` tests long
//! (`cargo test --release --test formats fuzz_`).

/// The parts of `tests/util/` these tests use.
#[path = "../util"]
mod util {
    pub mod fuzz;
    pub mod golden;
    pub mod seed;
}

mod fuzz_json;
mod fuzz_topology;
mod fuzz_wire;
mod golden;

/// Counts what each thread allocates, for `util::fuzz::peak_during`; it hands every call to
/// the system allocator.
#[global_allocator]
static COUNTING: util::fuzz::Counting = util::fuzz::Counting;
