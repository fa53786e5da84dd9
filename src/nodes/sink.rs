//! `sink`: writes every record as one JSON object per line, to a file or stdout.

use std::io::{BufWriter, IsTerminal, LineWriter, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::template::{template_option, Template};
use crate::record::text;
use crate::runtime::{outfile, Node, NodeError};
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::{resolve, Table};

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

    /// Write each record as a JSON line (a map's entries as they are: a repeated key is
    /// written twice), or as the template says.
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
        // Records are read in place and written as JSON as they are read: no tree, so a
        // record of millions of nils costs its frame, not gigabytes (docs/protocol.md §9). A
        // template's line is built whole: the JSON text of a field that is not a string is
        // refused past the size of a message.
        let max_text = crate::record::raw::text_limit(node.identity().max_message_bytes);
        while let Some(batch) = node.recv_batch()? {
            for rec in batch.records() {
                let line = match &self.template {
                    None => text::write_json(rec.bytes(), &mut out).map(drop),
                    Some(t) => {
                        let refused = std::cell::RefCell::new(None);
                        let line = t.render(|f| {
                            let text = rec.get(f)?.text_within(max_text);
                            if let Err(e) = &text {
                                refused.borrow_mut().get_or_insert_with(|| format!("field `{f}`: {e}"));
                            }
                            text.ok()
                        });
                        if let Some(why) = refused.into_inner() {
                            node.bad_record(why);
                            continue;
                        }
                        out.write_all(line.as_bytes())
                    }
                };
                line.and_then(|()| out.write_all(b"\n")).map_err(failed)?;
            }
        }
        out.flush().map_err(NodeError::io(format!("write to {what}")))?;
        // On disk before `done`: a full disk shows here, not after the run says it succeeded.
        if let Some(f) = file {
            f.sync_all().map_err(NodeError::io(format!("write to {what}")))?;
        }
        Ok(())
    }
}
