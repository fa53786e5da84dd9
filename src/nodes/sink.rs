//! `sink`: writes every record as one JSON object per line, to a file or stdout.

use std::io::{BufWriter, IsTerminal, LineWriter, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::outfile;
use super::template::{template_option, Template};
use crate::record::text_of;
use crate::runtime::{Node, NodeError};
use crate::topology::compile::resolve;
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::Table;

/// Options of a `sink` node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The file to write; None means stdout.
    pub path: Option<PathBuf>,
    /// Write each record as this template (`"{error}: {url}"`) instead of as JSON.
    pub template: Option<Template>,
}

impl SinkConfig {
    /// Option keys this kind accepts.
    pub const KEYS: &'static [&'static str] = &["path", "template"];

    /// Validate the options in `t`.
    pub fn from_table(t: &Table<'_, '_>, base_dir: &std::path::Path, diags: &mut Diagnostics) -> Option<Self> {
        let path =
            t.non_empty_str("path", diags).map(|s| s.into_inner()).filter(|p| p != "-").map(|p| resolve(base_dir, &p));
        let template = template_option(t, "template", diags);
        Some(SinkConfig { path, template })
    }

    /// Replicas writing one file would overwrite each other.
    pub fn single_replica_reason(&self) -> Option<&'static str> {
        self.path
            .is_some()
            .then_some("replicas of a sink would overwrite each other's file; write to stdout or use one replica")
    }

    /// Write each record as a JSON line.
    pub fn run(&self, node: &mut Node) -> Result<(), NodeError> {
        let what = self.path.as_ref().map_or("stdout".to_string(), |p| format!("`{}`", p.display()));
        // Whole or absent: written beside the target, renamed into place after the run.
        let file = match &self.path {
            Some(p) => {
                Some(outfile::create(p, &node.identity().run_name()).map_err(NodeError::io(format!("create {what}")))?)
            }
            None => None,
        };
        let out: Box<dyn Write> = match &file {
            Some(f) => Box::new(f.try_clone().map_err(NodeError::io(format!("open {what}")))?),
            None => Box::new(std::io::stdout().lock()),
        };
        // Line by line on a terminal, so a person sees records as they come.
        let mut out: Box<dyn Write> = if self.path.is_none() && std::io::stdout().is_terminal() {
            Box::new(LineWriter::new(out))
        } else {
            Box::new(BufWriter::new(out))
        };
        let failed = |e: std::io::Error| NodeError::Io { what: format!("write to {what}"), source: e };
        while let Some(rec) = node.recv()? {
            match &self.template {
                Some(t) => out.write_all(t.render(|f| rec.get(f).map(text_of)).as_bytes()).map_err(failed)?,
                None => serde_json::to_writer(&mut out, &rec.to_json()).map_err(|e| failed(e.into()))?,
            }
            out.write_all(b"\n").map_err(failed)?;
        }
        out.flush().map_err(NodeError::io(format!("write to {what}")))?;
        // On disk before `done`: a full disk shows here, not after the run says it succeeded.
        if let Some(f) = file {
            f.sync_all().map_err(NodeError::io(format!("write to {what}")))?;
        }
        Ok(())
    }
}
