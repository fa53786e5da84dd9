//! Output files that are whole or absent. A `sink` or a `tally` writing a file writes it under
//! a name of its own beside the target, `<target>.<run>.partial` (`<run>` names the run: its
//! private directory's name), and syncs it before it reports `done`. The launcher renames it
//! into place once the whole run succeeded (every edge balanced, status 0 or 65), and
//! otherwise to `<target>.partial`, leaving the target as it was. So two runs at once never
//! write into one file, and a failed or interrupted run never leaves a truncated result where
//! a complete one is expected.
//!
//! A target that exists and is not a regular file (`/dev/stdout`, a FIFO) is written in
//! place: there is nothing to rename.
//!
//! One naming, two sides: the built-in kinds create these files and the launcher settles
//! them, so it lives here in the runtime, which both import (and which imports neither).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Where a run names `run` writes `target` until it succeeds.
pub fn partial_path(target: &Path, run: &str) -> PathBuf {
    with_suffix(target, &format!(".{run}.partial"))
}

/// Where a failed or interrupted run leaves what it wrote of `target`.
pub fn kept_path(target: &Path) -> PathBuf {
    with_suffix(target, ".partial")
}

fn with_suffix(target: &Path, suffix: &str) -> PathBuf {
    let mut name = target.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether `target` is written in place rather than renamed: it exists and is not a regular
/// file.
pub fn in_place(target: &Path) -> bool {
    std::fs::metadata(target).is_ok_and(|m| !m.is_file())
}

/// Create the file that stands for `target` in run `run`: its partial file, or the target
/// itself when written in place.
pub fn create(target: &Path, run: &str) -> io::Result<File> {
    if in_place(target) {
        return std::fs::OpenOptions::new().write(true).open(target);
    }
    File::create(partial_path(target, run))
}

/// The name of the run whose private directory is `run_dir` (a node without one, started by
/// another engine, uses its process id).
pub fn run_name(run_dir: Option<&Path>) -> String {
    run_dir
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

/// What became of one output after a run.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    /// Renamed into place.
    Committed,
    /// Kept aside, at this path.
    Kept(PathBuf),
    /// Nothing to do: written in place, or never created (the node did not get that far).
    Untouched,
}

/// Move `target`'s partial file of run `run` into place (`ok`) or aside.
pub fn settle(target: &Path, run: &str, ok: bool) -> io::Result<Settled> {
    let partial = partial_path(target, run);
    if in_place(target) || !partial.exists() {
        return Ok(Settled::Untouched);
    }
    if ok {
        std::fs::rename(&partial, target)?;
        return Ok(Settled::Committed);
    }
    let kept = kept_path(target);
    std::fs::rename(&partial, &kept)?;
    Ok(Settled::Kept(kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_is_committed_or_kept_aside() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let target = dir.path().join("count.json");
        std::fs::write(&target, "old\n").expect("write");
        std::fs::write(
            create(&target, "procnet-a").map(|_| partial_path(&target, "procnet-a")).expect("create"),
            "new\n",
        )
        .expect("write");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "old\n");
        assert_eq!(settle(&target, "procnet-a", false).expect("settle"), Settled::Kept(kept_path(&target)));
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "old\n");
        assert_eq!(std::fs::read_to_string(kept_path(&target)).expect("read"), "new\n");
        std::fs::write(partial_path(&target, "procnet-b"), "newer\n").expect("write");
        assert_eq!(settle(&target, "procnet-b", true).expect("settle"), Settled::Committed);
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "newer\n");
        assert_eq!(settle(&target, "procnet-c", true).expect("settle"), Settled::Untouched);
    }

    #[test]
    fn a_device_is_written_in_place() {
        assert!(in_place(Path::new("/dev/null")));
        assert_eq!(settle(Path::new("/dev/null"), "procnet-a", true).expect("settle"), Settled::Untouched);
    }
}
