//! `command` with `stdio`: any program as a node, over its stdin and stdout. The replica is
//! a built-in adapter that starts the program and owns its three pipes: input records go to
//! the program's stdin, one line each; every line the program writes on stdout becomes a
//! record on the node's `out` port; its stderr is passed on, line by line, as the node's
//! (and its last lines are kept for the error if it fails). The program needs no library.
//!
//! Four threads, none sharing a socket: this one speaks ZeroMQ (input, output, control); a
//! writer feeds stdin from a bounded queue; a reader takes stdout in chunks through a bounded
//! channel; a third passes stderr on. Backpressure runs through the pipes both ways, and the
//! node never blocks on stdin while stdout waits (a program that reads all its input before
//! writing anything, like `sort`, cannot deadlock it). The end of stream is exact: stdin is
//! closed at the end of the input, stdout is read to its end, the program's exit is awaited,
//! then `done`.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::record::text;
use crate::runtime::{BatchEvent, Node, NodeError, Waker};

/// How records and lines map onto each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StdioFormat {
    /// Text lines both ways: a record's `field` is written as a line; a line read becomes
    /// `{field: "<the line>"}`.
    Lines,
    /// A JSON object per line, both ways.
    Jsonl,
}

impl StdioFormat {
    /// The values of `stdio`, in order.
    pub const NAMES: &'static [&'static str] = &["lines", "jsonl"];
}

/// Options of a `command` node with `stdio`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdioConfig {
    /// The program and its arguments (a path with a slash resolved against the topology's
    /// directory; a bare name looked up on PATH).
    pub command: Vec<String>,
    /// How records and lines map onto each other.
    pub format: StdioFormat,
    /// With `lines`: the field a line is read from and written to.
    pub field: String,
    /// Variables added to the program's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The program's working directory (the topology's, unless its `cwd` says otherwise).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// How many bytes of lines may wait for the program's stdin: past it, no input is taken.
const FEED_BYTES: usize = 256 << 10;
/// How much of stdout is read at once.
const CHUNK: usize = 64 << 10;
/// Chunks of stdout waiting for this thread: with [`CHUNK`], what is read ahead.
const CHUNKS: usize = 8;
/// stderr lines kept for the error of a failed program.
const LAST_LINES: usize = 10;
/// The longest stderr line kept (the rest is cut, not the line passed on).
const LAST_LINE_BYTES: usize = 300;
/// How long a program's last stderr lines may take to arrive after its exit.
const STDERR_WAIT: Duration = Duration::from_secs(1);
/// Without `PROCNET_GRACE_MS`: how long the program has to end once its stdin is closed.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);

impl StdioConfig {
    /// Run the program and pump records through it until its stdout ends.
    pub fn run(&self, node: &mut Node) -> Result<(), NodeError> {
        let grace = node.identity().grace_ms.map_or(DEFAULT_GRACE, Duration::from_millis);
        let mut program = Program::start(self, node.has_port("out"))?;
        let pumped = self.pump(node, &mut program, grace);
        if pumped.is_err() {
            program.kill();
        }
        let status = program.wait();
        pumped?;
        let status = status?;
        if !status.success() {
            return Err(program.failure(&describe(status)));
        }
        if let Some(unread) = program.feed.unread() {
            return Err(program.failure(&format!("exited before reading all its input ({unread})")));
        }
        Ok(())
    }

    /// Feed the program its input and send on what it writes, until its stdout ends.
    fn pump(&self, node: &mut Node, program: &mut Program, grace: Duration) -> Result<(), NodeError> {
        let max_line = crate::record::raw::text_limit(node.identity().max_message_bytes);
        let mut lines = Lines { carry: Vec::new(), carried: 0, lineno: 0, max: max_line };
        // Closed: when the input ended (at once for a source), or the program was stopped.
        let mut closed_at: Option<Instant> = None;
        let source = !node.has_input();
        let mut chunk = Vec::new();
        let mut stdout_ended = false;
        loop {
            // What the program wrote, first: it may be waiting for room on its stdout.
            while !stdout_ended {
                match program.stdout.try_recv() {
                    Ok(Ok(bytes)) if bytes.is_empty() => {
                        lines.end(|line, n| self.emit(node, program, line, n))?;
                        // Done once its input is, too: input still coming is fed to it, so
                        // a program that exited without reading it is found out.
                        stdout_ended = true;
                    }
                    Ok(Ok(bytes)) => lines.split(&bytes, |line, n| self.emit(node, program, line, n))?,
                    Ok(Err(e)) => return Err(NodeError::Io { what: "read the program's stdout".into(), source: e }),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        return Err(NodeError::Protocol("the stdout reader stopped".into()));
                    }
                }
            }
            if closed_at.is_none() && (source || program.feed.broken()) {
                program.feed.close();
                closed_at = Some(Instant::now());
            }
            if stdout_ended && closed_at.is_some() {
                return Ok(());
            }
            if source && node.stop_requested()? && !program.stopped {
                // A source stops early: its program is asked to end, what it wrote stands.
                program.stop();
            }
            if let Some(at) = closed_at {
                if at.elapsed() > grace {
                    program.kill();
                    return Err(program.failure(&format!(
                        "did not end within {} s of the end of its input (`--grace`): killed",
                        grace.as_secs_f64()
                    )));
                }
            }
            if closed_at.is_none() && program.feed.has_room() {
                match node.next_batch(&program.waker)? {
                    BatchEvent::Batch(batch) => {
                        for rec in batch.records() {
                            if let Err(why) = self.line_of(rec, &mut chunk, max_line) {
                                node.bad_record(why);
                            }
                        }
                        program.feed.push(std::mem::take(&mut chunk));
                    }
                    BatchEvent::Ended => {
                        program.feed.close();
                        closed_at = Some(Instant::now());
                    }
                    BatchEvent::Woken => {}
                }
            } else {
                node.wait_woken(&program.waker)?;
            }
        }
    }

    /// Append `rec` as one line to `out`, or say why it cannot be one.
    fn line_of(&self, rec: crate::record::RawRecord<'_>, out: &mut Vec<u8>, max: usize) -> Result<(), String> {
        let start = out.len();
        match self.format {
            StdioFormat::Jsonl => {
                if let Err(e) = text::write_json(rec.bytes(), out) {
                    // Nothing of a record that failed half-way reaches the program.
                    out.truncate(start);
                    return Err(format!("a record could not be written as JSON: {e}"));
                }
            }
            StdioFormat::Lines => {
                let Some(value) = rec.get(&self.field).filter(|v| !v.is_nil()) else {
                    return Err(format!("a record without field `{}` cannot be a line", self.field));
                };
                let text = match value.str_bytes() {
                    Some(bytes) => std::borrow::Cow::Borrowed(bytes),
                    None => match value.text_within(max) {
                        Ok(t) => std::borrow::Cow::Owned(t.into_owned().into_bytes()),
                        Err(e) => return Err(format!("field `{}`: {e}", self.field)),
                    },
                };
                if memchr::memchr2(b'\n', b'\r', &text).is_some() {
                    return Err(format!("field `{}` holds a line break, so it cannot be one line", self.field));
                }
                out.extend_from_slice(&text);
            }
        }
        out.push(b'\n');
        Ok(())
    }

    /// Send on line `n` of the program's stdout (without its newline), or count it as bad.
    fn emit(&self, node: &mut Node, program: &Program, line: Line<'_>, n: u64) -> Result<(), NodeError> {
        let line = match line {
            Line::Read(line) => line,
            Line::TooLong(len) => {
                node.bad_record(format!("line {n} of its stdout: {len} bytes, more than a message may carry"));
                return Ok(());
            }
        };
        if !program.emits {
            // Nobody reads this node's records: its stdout is its output, as a program's is.
            let mut out = std::io::stdout().lock();
            return out
                .write_all(line)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(NodeError::io("write the program's output"));
        }
        let max = node.identity().max_message_bytes.map_or(usize::MAX, |m| m as usize);
        let sent = match self.format {
            StdioFormat::Jsonl => {
                // Blank lines separate nothing in JSON lines: skipped, as readers of the format do.
                if line.iter().all(u8::is_ascii_whitespace) {
                    return Ok(());
                }
                node.send_with("out", |out| crate::record::json_to_record_bytes(line, out, max))?
            }
            StdioFormat::Lines => {
                node.send_with("out", |out| super::lines::text_record(&self.field, line, out, max))?
            }
        };
        if let Err(why) = sent {
            node.bad_record(format!("line {n} of its stdout: {why}"));
        }
        Ok(())
    }
}

/// `status` in words.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    }
}

/// A line of stdout: its bytes, or only its length past what a record may hold.
enum Line<'a> {
    Read(&'a [u8]),
    TooLong(usize),
}

/// Splits stdout's chunks into lines, assembling a line that spans chunks.
struct Lines {
    /// The start of a line that spans chunks, kept up to one byte past `max`.
    carry: Vec<u8>,
    /// Its length, kept or not.
    carried: usize,
    lineno: u64,
    max: usize,
}

impl Lines {
    /// Each complete line of `bytes` (with what came before) to `each`.
    fn split(
        &mut self,
        mut bytes: &[u8],
        mut each: impl FnMut(Line<'_>, u64) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        while let Some(i) = memchr::memchr(b'\n', bytes) {
            self.lineno += 1;
            let part = &bytes[..i];
            if self.carried == 0 {
                each(line_of(part, self.max), self.lineno)?;
            } else {
                let n = self.carried + part.len();
                let line = if n > self.max + 1 {
                    Line::TooLong(n)
                } else {
                    self.carry.extend_from_slice(part);
                    line_of(&self.carry, self.max)
                };
                each(line, self.lineno)?;
                self.carry.clear();
                self.carried = 0;
            }
            bytes = &bytes[i + 1..];
        }
        self.carried += bytes.len();
        let room = (self.max + 1).saturating_sub(self.carry.len());
        self.carry.extend_from_slice(&bytes[..bytes.len().min(room)]);
        Ok(())
    }

    /// stdout ended: a last line without a newline is a line too.
    fn end(&mut self, mut each: impl FnMut(Line<'_>, u64) -> Result<(), NodeError>) -> Result<(), NodeError> {
        if self.carried == 0 {
            return Ok(());
        }
        self.lineno += 1;
        let (line, n) = (std::mem::take(&mut self.carry), std::mem::take(&mut self.carried));
        let line = if n > self.max + 1 { Line::TooLong(n) } else { line_of(&line, self.max) };
        each(line, self.lineno)
    }
}

/// A line without its `\r`, if it ends with one.
fn line_of(line: &[u8], max: usize) -> Line<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > max {
        Line::TooLong(line.len())
    } else {
        Line::Read(line)
    }
}

/// The program and the threads around its pipes.
struct Program {
    child: Child,
    /// Its command line, for messages.
    name: String,
    feed: Arc<Feed>,
    stdout: Receiver<std::io::Result<Vec<u8>>>,
    waker: Arc<Waker>,
    /// Its last stderr lines.
    last: Arc<Mutex<VecDeque<String>>>,
    /// Says when stderr reached its end.
    stderr_done: Receiver<()>,
    /// Whether its output becomes records (someone reads them).
    emits: bool,
    /// Asked to stop (SIGTERM), for a source told `stop`.
    stopped: bool,
}

impl Program {
    /// Start `c`'s program with its three pipes and their threads.
    fn start(c: &StdioConfig, emits: bool) -> Result<Program, NodeError> {
        // On one line and short: a script given inline can be long.
        let name: String = c.command.join(" ").replace('\n', "\\n");
        let name = match name.char_indices().nth(60) {
            Some((at, _)) => format!("{} ...", &name[..at]),
            None => name,
        };
        let mut cmd = Command::new(&c.command[0]);
        cmd.args(&c.command[1..]).envs(&c.env).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(dir) = &c.cwd {
            cmd.current_dir(dir);
        }
        // SAFETY: prctl is async-signal-safe; the program dies with this adapter (a
        // rollback kills the adapter's process group, which the program is in too).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            NodeError::Env(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("program `{}` not found (is it installed, and on PATH?)", c.command[0])
                }
                _ => format!("could not start program `{}`: {e}", c.command[0]),
            })
        })?;
        let waker = Arc::new(Waker::new()?);
        let feed = Arc::new(Feed::default());
        let last = Arc::new(Mutex::new(VecDeque::new()));
        let (stdin, out, err) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (stdin, out, err) = (stdin.expect("piped"), out.expect("piped"), err.expect("piped"));
        let (tx, stdout) = mpsc::sync_channel(CHUNKS);
        let spawn = |what: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("stdio-{what}"))
                .spawn(f)
                .map_err(NodeError::io(format!("start the {what} thread")))
        };
        let (stderr_end, stderr_done) = mpsc::sync_channel(1);
        let _threads = [
            spawn("stdin", {
                let (feed, waker) = (feed.clone(), waker.clone());
                Box::new(move || feed.write_all(stdin, &waker))
            })?,
            spawn("stdout", {
                let waker = waker.clone();
                Box::new(move || read_stdout(out, &tx, &waker))
            })?,
            spawn("stderr", {
                let last = last.clone();
                Box::new(move || {
                    pass_stderr(err, &last);
                    let _ = stderr_end.send(());
                })
            })?,
        ];
        Ok(Program { child, name, feed, stdout, waker, last, stderr_done, emits, stopped: false })
    }

    /// Ask the program to end (SIGTERM).
    fn stop(&mut self) {
        self.stopped = true;
        // SAFETY: kill(2) of our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
    }

    /// End the program now.
    fn kill(&mut self) {
        self.feed.close();
        let _ = self.child.kill();
    }

    /// Wait for the program's exit, and a moment for its last stderr lines. The threads are
    /// not joined: a process the program left behind may hold its pipes open (the launcher
    /// kills what is left in the replica's process group once it exits).
    fn wait(&mut self) -> Result<ExitStatus, NodeError> {
        let status = self.child.wait().map_err(NodeError::io("wait for the program"))?;
        self.feed.close();
        let _ = self.stderr_done.recv_timeout(STDERR_WAIT);
        Ok(status)
    }

    /// The error for the program failing `how`, with its last stderr lines.
    fn failure(&self, how: &str) -> NodeError {
        let last = self.last.lock().expect("stderr lines");
        let mut text = format!("program `{}` {how}", self.name);
        if last.is_empty() {
            text.push_str(" (it wrote nothing on stderr)");
        } else {
            text.push_str("; its last lines on stderr:");
            for line in last.iter() {
                text.push_str("\n    ");
                text.push_str(line);
            }
        }
        NodeError::Env(text)
    }
}

/// Lines waiting for the program's stdin, and how the writing went.
#[derive(Default)]
struct Feed {
    state: Mutex<FeedState>,
    ready: Condvar,
}

#[derive(Default)]
struct FeedState {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    /// No more input: stdin is closed once the chunks are written.
    closed: bool,
    /// The program closed its stdin before everything was written.
    broken: Option<std::io::Error>,
    /// Bytes not written because it did.
    unwritten: usize,
}

impl Feed {
    fn has_room(&self) -> bool {
        self.state.lock().expect("feed").bytes < FEED_BYTES
    }

    fn push(&self, chunk: Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        let mut s = self.state.lock().expect("feed");
        if s.broken.is_some() {
            s.unwritten += chunk.len();
            return;
        }
        s.bytes += chunk.len();
        s.chunks.push_back(chunk);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.state.lock().expect("feed").closed = true;
        self.ready.notify_one();
    }

    fn broken(&self) -> bool {
        self.state.lock().expect("feed").broken.is_some()
    }

    /// What was not written, in words, if the program stopped reading.
    fn unread(&self) -> Option<String> {
        let s = self.state.lock().expect("feed");
        let e = s.broken.as_ref()?;
        Some(format!("{} bytes of input were not written: {e}", s.unwritten))
    }

    /// The writer thread: write every chunk to `stdin`, then close it.
    fn write_all(&self, mut stdin: ChildStdin, waker: &Waker) {
        loop {
            let chunk = {
                let mut s = self.state.lock().expect("feed");
                while s.chunks.is_empty() && !s.closed {
                    s = self.ready.wait(s).expect("feed");
                }
                let Some(chunk) = s.chunks.pop_front() else { break };
                s.bytes -= chunk.len();
                chunk
            };
            // Room for more: the node may take input again.
            waker.wake();
            if let Err(e) = stdin.write_all(&chunk) {
                let mut s = self.state.lock().expect("feed");
                s.unwritten += chunk.len() + s.chunks.iter().map(Vec::len).sum::<usize>();
                s.chunks.clear();
                s.bytes = 0;
                s.broken = Some(e);
                waker.wake();
                break;
            }
        }
        // Dropping stdin closes it: the program sees the end of its input.
        drop(stdin);
    }
}

/// The stdout thread: chunks to the node (an empty one at the end), waking it for each.
fn read_stdout(mut out: impl Read, tx: &SyncSender<std::io::Result<Vec<u8>>>, waker: &Waker) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let read = match out.read(&mut buf) {
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let last = !matches!(&read, Ok(b) if !b.is_empty());
        if tx.send(read).is_err() {
            return;
        }
        waker.wake();
        if last {
            return;
        }
    }
}

/// The stderr thread: each line on this node's stderr as it comes (the launcher prefixes
/// it with the replica's name), the last few kept for an error.
fn pass_stderr(err: impl Read, last: &Mutex<VecDeque<String>>) {
    let mut reader = std::io::BufReader::new(err);
    let mut line = Vec::new();
    loop {
        line.clear();
        match std::io::BufRead::read_until(&mut reader, b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let _ = std::io::stderr().lock().write_all(&line);
        let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line));
        let mut kept: String = text.chars().take(LAST_LINE_BYTES).collect();
        if kept.len() < text.len() {
            kept.push_str(" ...");
        }
        let mut last = last.lock().expect("stderr lines");
        if last.len() == LAST_LINES {
            last.pop_front();
        }
        last.push_back(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut lines = Lines { carry: Vec::new(), carried: 0, lineno: 0, max };
        let mut got = Vec::new();
        let mut each = |line: Line<'_>, n: u64| {
            got.push(match line {
                Line::Read(l) => format!("{n}:{}", String::from_utf8_lossy(l)),
                Line::TooLong(len) => format!("{n}:too long ({len})"),
            });
            Ok(())
        };
        for c in chunks {
            lines.split(c, &mut each).expect("split");
        }
        lines.end(&mut each).expect("end");
        got
    }

    #[test]
    fn lines_are_assembled_across_chunks_and_the_last_needs_no_newline() {
        assert_eq!(split_all(&[b"a\nb", b"c\r\n\nd"], 100), ["1:a", "2:bc", "3:", "4:d"]);
        assert_eq!(split_all(&[b"", b"x\n"], 100), ["1:x"]);
        assert!(split_all(&[], 100).is_empty());
    }

    #[test]
    fn a_line_longer_than_a_record_may_be_is_named_not_kept() {
        assert_eq!(split_all(&[b"12345", b"678\nok\n"], 4), ["1:too long (8)", "2:ok"]);
        assert_eq!(split_all(&[b"123456789"], 4), ["1:too long (9)"]);
        assert_eq!(split_all(&[b"12", b"345\n"], 4), ["1:too long (5)"]);
    }
}
