//! Reading a topology file from disk and compiling it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::compile::{compile, Source};
use super::diagnostic::{Diagnostic, Report};
use super::model::Topology;

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

/// Read and compile the topology at `path`. On success, also returns a report of warnings
/// (possibly empty) for the caller to print.
pub fn load(path: &Path) -> Result<(Topology, Report), LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    let abs = std::path::absolute(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    let base_dir = abs.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let report = |diagnostics: Vec<Diagnostic>| Report { path: path.to_path_buf(), source: text.clone(), diagnostics };
    match compile(&Source { path, text: &text, base_dir: &base_dir }) {
        Ok((topology, warnings)) => Ok((topology, report(warnings))),
        Err(diagnostics) => Err(LoadError::Invalid(report(diagnostics))),
    }
}
