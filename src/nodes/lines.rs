//! `lines`: a source that reads a file (or stdin) and emits one record per non-empty line,
//! as `{field: line}` (text) or the line's JSON object (jsonl). Replicas share the file: the
//! replica `r` of `n` reads lines `r, r+n, r+2n, ...`, so parsing scales with replicas.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::record::{json_to_record_bytes, Record};
use crate::runtime::{Node, NodeError};
use crate::topology::compile::resolve;
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::Table;

/// A stop request is looked for at least this often (in lines read).
const STOP_CHECK_LINES: u64 = 256;
/// A mapped file's pages are released from the process this often (in bytes read).
const RELEASE_BYTES: usize = 8 << 20;
/// The page size that offsets given to `madvise` are rounded to (a multiple of any).
const PAGE: usize = 64 << 10;

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
        let Some(path) = &self.path else {
            return self.run_stream(node, io::stdin(), "stdin");
        };
        let name = path.display().to_string();
        let file = File::open(path).map_err(NodeError::io(format!("open `{name}`")))?;
        match map(&file) {
            Some(map) => self.run_mapped(node, &map, &name),
            None => self.run_stream(node, file, &name),
        }
    }

    /// Read a regular file mapped into memory: lines are parsed where they lie, with no copy
    /// into a buffer first.
    fn run_mapped(&self, node: &mut Node, map: &memmap2::Mmap, name: &str) -> Result<(), NodeError> {
        let data: &[u8] = map;
        let mut share = Share::new(node);
        let mut pos = 0;
        // The pages read so far are released every RELEASE_BYTES: they stay in the page
        // cache but leave this process, so its memory does not grow with the file.
        let mut released = 0;
        while pos < data.len() {
            if share.lineno.is_multiple_of(STOP_CHECK_LINES) && node.stop_requested()? {
                return Ok(());
            }
            let end = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i);
            self.line(node, &mut share, &data[pos..end], name)?;
            pos = end + 1;
            if pos - released >= RELEASE_BYTES {
                let upto = pos / PAGE * PAGE;
                // SAFETY: a read-only file mapping: a released page would be read again from
                // the file if touched, and nothing before `pos` is touched again.
                let _ = unsafe {
                    map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, released, upto - released)
                };
                released = upto;
            }
        }
        Ok(())
    }

    /// Read a stream (stdin, a pipe, anything that cannot be mapped), sending what was read
    /// before each read that may block.
    fn run_stream(&self, node: &mut Node, source: impl Read, name: &str) -> Result<(), NodeError> {
        let mut reader = BufReader::with_capacity(1 << 20, source);
        let mut share = Share::new(node);
        // A line that spans two reads of the buffer, assembled here; most lines are read
        // where they lie in the buffer.
        let mut carry = Vec::new();
        loop {
            if reader.buffer().is_empty() {
                // About to block on a read: send what we have.
                node.flush()?;
            }
            // Honour a stop request promptly, even while a full buffer drains slowly.
            if (reader.buffer().is_empty() || share.lineno.is_multiple_of(STOP_CHECK_LINES)) && node.stop_requested()? {
                return Ok(());
            }
            let buf = match reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) => return Err(NodeError::io(format!("read `{name}`"))(e)),
            };
            let (line, used) = match memchr::memchr(b'\n', buf) {
                Some(i) if carry.is_empty() => (&buf[..i], i + 1),
                Some(i) => {
                    carry.extend_from_slice(&buf[..i]);
                    (&carry[..], i + 1)
                }
                None if buf.is_empty() && carry.is_empty() => return Ok(()),
                // The last line, without a newline.
                None if buf.is_empty() => (&carry[..], 0),
                None => {
                    carry.extend_from_slice(buf);
                    let n = buf.len();
                    reader.consume(n);
                    continue;
                }
            };
            self.line(node, &mut share, line, name)?;
            let at_end = used == 0;
            reader.consume(used);
            carry.clear();
            if at_end {
                return Ok(());
            }
        }
    }

    /// Count one line (without its newline) and send its record if it is this replica's.
    fn line(&self, node: &mut Node, share: &mut Share, line: &[u8], name: &str) -> Result<(), NodeError> {
        share.lineno += 1;
        if (share.lineno - 1) % share.replicas != share.replica {
            return Ok(());
        }
        let text = trim_newline(line);
        if text.is_empty() {
            return Ok(());
        }
        // Encoded straight into the outgoing batch. serde_json refuses JSON nested deeper
        // than 128 levels, so every record is within what receivers accept (raw::MAX_DEPTH).
        if let Err(why) = node.send_with("out", |out| self.record(text, out))? {
            node.bad_record(format!("{name}:{}: {why}", share.lineno));
        }
        Ok(())
    }

    /// Append the record of one line to `out`.
    fn record(&self, text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        match self.format {
            Format::Text => {
                let mut rec = Record::new();
                rec.insert(self.field.as_str(), String::from_utf8_lossy(text).into_owned());
                crate::wire::write_record(out, &rec);
                Ok(())
            }
            Format::Jsonl => json_to_record_bytes(text, out),
        }
    }
}

/// Which lines are this replica's, and the number of the last line read.
struct Share {
    replica: u64,
    replicas: u64,
    lineno: u64,
}

impl Share {
    fn new(node: &Node) -> Share {
        let id = node.identity();
        Share { replica: u64::from(id.replica), replicas: u64::from(id.replicas), lineno: 0 }
    }
}

/// A regular, non-empty file mapped read-only, or None to read it as a stream.
///
/// The file must not shrink while it is read (a mapped page past the new end faults with
/// SIGBUS, which the launcher reports as the node killed by a signal); growing is harmless:
/// the lines present at the start are read.
fn map(file: &File) -> Option<memmap2::Mmap> {
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    // SAFETY: the mapping is read-only and private to this process; the one hazard, the file
    // shrinking meanwhile, is documented above and ends the node loudly, not wrongly.
    let map = unsafe { memmap2::MmapOptions::new().map(file) }.ok()?;
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(map)
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
