//! Exit codes of the `procnet` binary, in one place (also listed in README.md).

/// The command did what was asked: for `run`, every node finished its stream and exited 0,
/// and no record or frame was dropped.
pub const OK: u8 = 0;
/// A node failed (an error, a non-zero exit, a crash, a start-up timeout), or the launcher
/// itself could not run.
pub const NODE_FAILED: u8 = 1;
/// The command line was wrong (clap's usage errors).
pub const USAGE: u8 = 2;
/// Every node finished, but some frames or records were dropped as invalid; each is named
/// and counted on stderr. The results are incomplete. (sysexits' EX_DATAERR.)
pub const DATA_DROPPED: u8 = 65;
/// The topology file is invalid or unreadable; nothing was started. (sysexits' EX_CONFIG.)
pub const INVALID_TOPOLOGY: u8 = 78;
/// Interrupted by Ctrl-C (SIGINT): 128 + 2.
pub const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM: 128 + 15.
pub const TERMINATED: u8 = 143;

/// Whether a run that ended with `code` produced its result: every record went through (0), or
/// every record but those dropped, counted and named (65). Only then are its output files
/// moved into place.
pub fn result_stands(code: u8) -> bool {
    code == OK || code == DATA_DROPPED
}
