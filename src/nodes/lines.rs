//! `lines`: a source that reads a file (or stdin) and emits one record per non-empty line,
//! as `{field: line}` (text) or the line's JSON object (jsonl). Replicas share the file: the
//! replica `r` of `n` reads lines `r, r+n, r+2n, ...`, so parsing scales with replicas.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::record::Record;
use crate::runtime::{Node, NodeError};
use crate::topology::compile::resolve;
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::Table;

/// A stop request is looked for at least this often (in lines read).
const STOP_CHECK_LINES: u64 = 256;

/// How each line becomes a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{field: "<the line>"}`.
    Text,
    /// The line is a JSON object, which becomes the record.
    Jsonl,
}

/// Options of a `lines` node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinesConfig {
    /// The file to read, resolved; None means stdin.
    pub path: Option<PathBuf>,
    /// Text or JSON lines.
    pub format: Format,
    /// The field a text line goes in.
    pub field: String,
}

impl LinesConfig {
    /// Option keys this kind accepts.
    pub const KEYS: &'static [&'static str] = &["path", "format", "field"];

    /// Validate the options in `t`.
    pub fn from_table(t: &Table<'_, '_>, base_dir: &std::path::Path, diags: &mut Diagnostics) -> Option<Self> {
        t.require("path", "give the file to read, relative to the topology file, or \"-\" for stdin", diags);
        let path = t.non_empty_str("path", diags);
        let format = match t.choice("format", &["text", "jsonl"], diags).as_ref().map(|s| s.get_ref().as_str()) {
            Some("jsonl") => Format::Jsonl,
            _ => Format::Text,
        };
        if format == Format::Jsonl {
            if let Some(key) = t.key_span("field") {
                diags.error(
                    key,
                    format!(
                        "`field` in {} applies to text lines; with `format = \"jsonl\"` each line is already a record",
                        t.what()
                    ),
                );
            }
        }
        let field = t.str("field", diags).map_or_else(|| "line".to_string(), |s| s.into_inner());
        let path = path?;
        let path = match path.get_ref().as_str() {
            "-" => None,
            p => Some(resolve(base_dir, p)),
        };
        Some(LinesConfig { path, format, field })
    }

    /// Stdin can be read by one process only.
    pub fn single_replica_reason(&self) -> Option<&'static str> {
        self.path.is_none().then_some("stdin (`path = \"-\"`) can be read by one replica only")
    }

    /// Read the lines of this replica's share and send them as records.
    pub fn run(&self, node: &mut Node) -> Result<(), NodeError> {
        let source: Box<dyn Read> = match &self.path {
            Some(p) => Box::new(File::open(p).map_err(NodeError::io(format!("open `{}`", p.display())))?),
            None => Box::new(io::stdin()),
        };
        let name = self.path.as_ref().map_or("stdin".to_string(), |p| p.display().to_string());
        let mut reader = BufReader::with_capacity(1 << 20, source);
        let (replica, replicas) = (u64::from(node.identity().replica), u64::from(node.identity().replicas));
        let mut line = Vec::new();
        let mut lineno = 0u64;
        loop {
            if reader.buffer().is_empty() {
                // About to block on a read: send what we have.
                node.flush()?;
            }
            // Honour a stop request promptly, even while a full buffer drains slowly.
            if (reader.buffer().is_empty() || lineno.is_multiple_of(STOP_CHECK_LINES)) && node.stop_requested()? {
                return Ok(());
            }
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(NodeError::io(format!("read `{name}`")))? == 0 {
                return Ok(());
            }
            lineno += 1;
            if (lineno - 1) % replicas != replica {
                continue;
            }
            let text = trim_newline(&line);
            if text.is_empty() {
                continue;
            }
            match self.record(text) {
                Ok(rec) => node.send(&rec)?,
                Err(why) => node.bad_record(format!("{name}:{lineno}: {why}")),
            }
        }
    }

    fn record(&self, text: &[u8]) -> Result<Record, String> {
        match self.format {
            Format::Text => {
                let mut rec = Record::new();
                rec.insert(self.field.as_str(), String::from_utf8_lossy(text).into_owned());
                Ok(rec)
            }
            Format::Jsonl => {
                let json: serde_json::Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
                Record::from_json(json)
            }
        }
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
