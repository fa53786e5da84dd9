//! The Python virtualenv (`target/venv`, made by `make venv`) that Python nodes run in.

use std::path::PathBuf;

use super::harness::root;

/// The virtualenv's `bin`, where `python3` is the one with the procnet package.
pub fn venv_bin() -> PathBuf {
    let bin = root().join("target/venv/bin");
    assert!(bin.join("python3").exists(), "{} is missing: run `make venv` (`make test` does it first)", bin.display());
    bin
}

/// PATH with the virtualenv first, so `python3` in a topology is the venv's.
pub fn path_with_venv() -> String {
    format!("{}:{}", venv_bin().display(), std::env::var("PATH").unwrap_or_default())
}
