//! Reading a topology file from disk and compiling it, with the command line's `--set`
//! overrides and the launcher's environment for `${VAR}`.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::compile::{compile_with_flags, Source};
use super::diagnostic::{Diagnostic, Diagnostics, Report};
use super::model::Topology;
use super::overrides::Override;

/// Why a topology could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read; these are its problems (errors and warnings).
    Invalid(Report),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, source } => write!(f, "failed to read topology `{}`: {source}", path.display()),
            LoadError::Invalid(report) => {
                let n = report.error_count();
                write!(f, "invalid topology `{}`: {n} error{}", report.path.display(), if n == 1 { "" } else { "s" })
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// The largest topology file read: far above any real one (a 70,000-node chain takes about
/// 5 MiB), and a bound on what `check` spends on a hostile one.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Read and compile the topology at `path`. On success, also returns a report of warnings
/// (possibly empty) for the caller to print.
pub fn load(path: &Path) -> Result<(Topology, Report), LoadError> {
    load_with(path, &[])
}

/// [`load`], with `overrides` (`--set PATH=VALUE`) applied to the file before it is checked.
pub fn load_with(path: &Path, overrides: &[Override]) -> Result<(Topology, Report), LoadError> {
    let read_error = |source| LoadError::Read { path: path.to_path_buf(), source };
    let bytes = read(path).map_err(read_error)?;
    let abs = std::path::absolute(path).map_err(read_error)?;
    let base_dir = abs.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    load_bytes_with(path, bytes, &base_dir, overrides)
}

/// [`load`] for `bytes`, the content of the file at `path` (named in messages), relative
/// paths resolving against `base_dir`: whatever the bytes, a topology or a report.
pub fn load_bytes(path: &Path, bytes: Vec<u8>, base_dir: &Path) -> Result<(Topology, Report), LoadError> {
    load_bytes_with(path, bytes, base_dir, &[])
}

fn load_bytes_with(
    path: &Path,
    bytes: Vec<u8>,
    base_dir: &Path,
    overrides: &[Override],
) -> Result<(Topology, Report), LoadError> {
    let (text, not_utf8) = match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bad = e.as_bytes()[at];
            (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some((at, bad)))
        }
    };
    if let Some((at, bad)) = not_utf8 {
        // Up to the first bad byte, the text with replacement characters is the file itself.
        let mut diags = Diagnostics::default();
        diags.push(
            Diagnostic::error(
                at..at + char::REPLACEMENT_CHARACTER.len_utf8(),
                format!("the file is not UTF-8 text: byte 0x{bad:02x} here"),
            )
            .with_help("a topology is TOML, which is UTF-8; save the file as UTF-8"),
        );
        return Err(LoadError::Invalid(diags.into_report(path, text)));
    }
    let source = Source { overrides, ..Source::new(path, &text, base_dir) };
    match compile_with_flags(&source) {
        Ok((topology, warnings, flags)) => Ok((topology, warnings.into_report(path, text).with_flags(flags))),
        Err(failed) => Err(LoadError::Invalid(failed.errors.into_report(path, text).with_flags(failed.flags))),
    }
}

/// The bytes of the file at `path`, refused past [`MAX_FILE_BYTES`] (also for a file that
/// never ends, such as `/dev/zero`).
fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB; a topology file is at most that",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(bytes)
}
