//! `lines`: a source that reads a file (or stdin) and emits one record per non-empty line,
//! as `{field: line}` (text) or the line's JSON object (jsonl). Replicas share the file: a
//! regular file is split into `n` byte ranges, and replica `r` reads the lines that start in
//! the `r`-th (so reading and parsing both scale with replicas); another file (a FIFO) is read
//! whole by each, replica `r` of `n` keeping lines `r, r+n, r+2n, ...`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::record::{json_to_record_bytes, Record};
use crate::runtime::{Node, NodeError, BATCH_BYTES};
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::{resolve, Table};

/// A stop request is looked for at least this often (in lines read).
const STOP_CHECK_LINES: u64 = 256;
/// A mapped file's pages are released from the process this often (in bytes read).
const RELEASE_BYTES: usize = 8 << 20;
/// The page size that offsets given to `madvise` are rounded to (a multiple of any).
const PAGE: usize = 64 << 10;
/// Bytes a frame takes besides its records: its header (`wire::DATA_HEADER` and the array's
/// length), with room to spare.
const RECORD_ROOM: usize = 64;

/// How each line becomes a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{field: "<the line>"}`.
    Text,
    /// The line is a JSON object, which becomes the record.
    Jsonl,
}

impl Format {
    /// The values of `format`, in order.
    pub const NAMES: &'static [&'static str] = &["text", "jsonl"];
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
        let format = match t.choice("format", Format::NAMES, diags).as_ref().map(|s| s.get_ref().as_str()) {
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
        // This replica's range: the lines that start in it, whole (docs/nodes.md).
        let (mut pos, stop) = split(data, share.replica, share.replicas);
        share.split = share.replicas > 1;
        share.replica = 0;
        share.replicas = 1;
        // The pages read so far are released every RELEASE_BYTES: they stay in the page
        // cache but leave this process, so its memory does not grow with the file.
        let mut released = pos / PAGE * PAGE;
        while pos < stop {
            if share.lineno.is_multiple_of(STOP_CHECK_LINES) && node.stop_requested()? {
                return Ok(());
            }
            // The end of the line, found a chunk at a time: the pages of a line too long to
            // send are released as they are read, so it is never held whole.
            let mut end = pos;
            let end = loop {
                let chunk = &data[end..(end + RELEASE_BYTES).min(data.len())];
                if let Some(i) = memchr::memchr(b'\n', chunk) {
                    break end + i;
                }
                end += chunk.len();
                if end == data.len() {
                    break end;
                }
                if end - pos > share.max_line {
                    release(map, &mut released, end);
                }
            };
            let line = if end - pos > share.max_line { Line::TooLong(end - pos) } else { Line::Read(&data[pos..end]) };
            share.at = pos;
            self.line(node, &mut share, line, name)?;
            pos = end + 1;
            if pos - released >= RELEASE_BYTES {
                release(map, &mut released, pos.min(data.len()));
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
        // where they lie in the buffer. `carried` counts its bytes, kept or not: past
        // `max_line` they are not kept, so a line without end never fills memory.
        let mut carry = Vec::new();
        let mut carried = 0;
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
            let max = share.max_line;
            let (line, used) = match memchr::memchr(b'\n', buf) {
                Some(i) if carried == 0 => (&buf[..i], i + 1),
                Some(i) => {
                    keep(&mut carry, &mut carried, &buf[..i], max);
                    (&carry[..], i + 1)
                }
                None if buf.is_empty() && carried == 0 => return Ok(()),
                // The last line, without a newline.
                None if buf.is_empty() => (&carry[..], 0),
                None => {
                    keep(&mut carry, &mut carried, buf, max);
                    let n = buf.len();
                    reader.consume(n);
                    continue;
                }
            };
            let length = carried.max(line.len());
            let line = if length > max { Line::TooLong(length) } else { Line::Read(line) };
            self.line(node, &mut share, line, name)?;
            let at_end = used == 0;
            reader.consume(used);
            carry.clear();
            carried = 0;
            if at_end {
                return Ok(());
            }
        }
    }

    /// Count one line (without its newline) and send its record if it is this replica's.
    fn line(&self, node: &mut Node, share: &mut Share, line: Line<'_>, name: &str) -> Result<(), NodeError> {
        share.lineno += 1;
        if (share.lineno - 1) % share.replicas != share.replica {
            return Ok(());
        }
        let text = match line {
            Line::Read(line) => trim_newline(line),
            Line::TooLong(n) => {
                let why = format!("a line of {n} bytes, more than a message may carry ({} bytes)", share.max_line);
                node.bad_record(format!("{}: {why}", share.place(name)));
                return Ok(());
            }
        };
        if text.is_empty() {
            return Ok(());
        }
        // Encoded straight into the outgoing batch. serde_json reads JSON to 127 levels, so
        // every record is within the 128 that receivers must accept (protocol.md §7).
        if let Err(why) = node.send_with("out", |out| self.record(text, out, share.max_line))? {
            node.bad_record(format!("{}: {why}", share.place(name)));
        }
        Ok(())
    }

    /// Append the record of one line to `out`, refused past `max_bytes`.
    fn record(&self, text: &[u8], out: &mut Vec<u8>, max_bytes: usize) -> Result<(), String> {
        match self.format {
            Format::Text => text_record(&self.field, text, out, max_bytes),
            Format::Jsonl => json_to_record_bytes(text, out, max_bytes),
        }
    }
}

/// Append the record `{field: text}` (invalid UTF-8 replaced) to `out`, refused past
/// `max_bytes`: a text line as a record, here and for a program over stdio.
pub(crate) fn text_record(field: &str, text: &[u8], out: &mut Vec<u8>, max_bytes: usize) -> Result<(), String> {
    let start = out.len();
    let mut rec = Record::new();
    rec.insert(field, String::from_utf8_lossy(text).into_owned());
    crate::wire::write_record(out, &rec);
    if out.len() - start > max_bytes {
        return Err(format!("the record would be larger than {max_bytes} bytes"));
    }
    Ok(())
}

/// A line as read: its bytes, or only its length when it is longer than a record may be.
enum Line<'a> {
    Read(&'a [u8]),
    TooLong(usize),
}

/// Add `part` to the line being assembled in `carry`, counting its bytes in `carried`; past
/// `max` bytes, nothing is kept.
fn keep(carry: &mut Vec<u8>, carried: &mut usize, part: &[u8], max: usize) {
    *carried += part.len();
    match *carried <= max {
        true => carry.extend_from_slice(part),
        false => *carry = Vec::new(),
    }
}

/// Release the pages of `map` from the last release up to `pos` (rounded down to a page)
/// from this process; they stay in the page cache.
fn release(map: &memmap2::Mmap, released: &mut usize, pos: usize) {
    let upto = pos / PAGE * PAGE;
    if upto > *released {
        // SAFETY: a read-only file mapping: a released page would be read again from the
        // file if touched, and nothing before `pos` is touched again.
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, *released, upto - *released) };
        *released = upto;
    }
}

/// Which lines are this replica's, the number of the last line read, and how long a line
/// (and the record made of it) may be.
struct Share {
    replica: u64,
    replicas: u64,
    lineno: u64,
    max_line: usize,
    /// Whether this replica reads a byte range of the file (its line numbers are then the
    /// range's, so a line is named by where it starts).
    split: bool,
    /// Where the line being read starts, in a mapped file.
    at: usize,
}

impl Share {
    /// Where the line being read is, for a message: `file:line`, or `file, byte N` in a split.
    fn place(&self, name: &str) -> String {
        if self.split {
            format!("{name}, the line at byte {}", self.at)
        } else {
            format!("{name}:{}", self.lineno)
        }
    }
}

/// Replica `r` of `n`'s share of `data`: (where its first line starts, where lines stop
/// starting for it). Range `r` is the bytes `len*r/n .. len*(r+1)/n`; a replica reads every
/// line that starts in its range (to that line's end, past the range if need be), so each line
/// is read by exactly one replica whatever the lengths of the lines: one longer than a range,
/// a file without a final newline, a file of one line.
fn split(data: &[u8], r: u64, n: u64) -> (usize, usize) {
    let len = data.len() as u128;
    let bound = |i: u64| (len * u128::from(i) / u128::from(n.max(1))) as usize;
    // The first line start at or after byte `at`: 0, or just after a newline.
    let line_start = |at: usize| match at {
        0 => 0,
        at => memchr::memchr(b'\n', &data[at - 1..]).map_or(data.len(), |i| at + i),
    };
    (line_start(bound(r)), line_start(bound(r + 1)))
}

impl Share {
    fn new(node: &Node) -> Share {
        let id = node.identity();
        // A record must fit in a frame of max_message_bytes with a batch's worth of records
        // before it (closed at BATCH_BYTES) and the frame's header: a bigger one could never
        // be delivered, and would only fill this node's memory.
        let max_line = id
            .max_message_bytes
            .map_or(usize::MAX, |b| usize::try_from(b).unwrap_or(usize::MAX).saturating_sub(BATCH_BYTES + RECORD_ROOM));
        Share {
            replica: u64::from(id.replica),
            replicas: u64::from(id.replicas),
            lineno: 0,
            max_line,
            split: false,
            at: 0,
        }
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

#[cfg(test)]
mod tests {
    use super::split;

    /// The lines each of `n` replicas reads of `data`, by where they start.
    fn shares(data: &[u8], n: u64) -> Vec<Vec<usize>> {
        (0..n)
            .map(|r| {
                let (mut pos, stop) = split(data, r, n);
                let mut starts = Vec::new();
                while pos < stop {
                    starts.push(pos);
                    pos = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i + 1);
                }
                starts
            })
            .collect()
    }

    #[test]
    fn every_line_is_read_by_exactly_one_replica_whatever_the_lengths() {
        let long = format!("{}\n", "x".repeat(3 << 20));
        let cases: Vec<Vec<u8>> = vec![
            b"a\nbb\nccc\ndddd\n".to_vec(),
            b"no final newline\nlast".to_vec(),
            b"one line".to_vec(),
            b"\n\n\n".to_vec(),
            format!("a\n{long}b\n{long}").into_bytes(),
            (0..1000).map(|i| format!("{}\n", "y".repeat(i % 37))).collect::<String>().into_bytes(),
        ];
        for data in &cases {
            let all: Vec<usize> = shares(data, 1).concat();
            for n in [2, 3, 4, 7, 16] {
                let split = shares(data, n);
                assert_eq!(split.concat(), all, "{n} replicas of {} bytes", data.len());
            }
        }
        // A line longer than a range: the replicas whose range it covers read nothing.
        let data = format!("a\n{long}b\n").into_bytes();
        let got = shares(&data, 4);
        assert_eq!(got.iter().filter(|s| s.is_empty()).count(), 2, "{got:?}");
    }
}
