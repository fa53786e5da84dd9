//! Node output: every line a node writes on stdout or stderr reaches the launcher's own
//! stdout or stderr prefixed with `name.replica |` (coloured on a terminal), or with
//! `--log-format json` as a JSON object (`"event": "output"`, its stream, node, replica and
//! line), whole lines at a time, so the output of many processes interleaves only between
//! lines.
//!
//! [`Relay`] is a set of pipes being read; it is driven by `poll(2)` and needs no thread, so
//! the forkserver (single-threaded by design) relays its children's output with it, and the
//! launcher runs one in a thread of its own ([`RelayThread`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which of the launcher's outputs a pipe goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Dest {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

impl Dest {
    fn fd(self) -> RawFd {
        match self {
            Dest::Stdout => 1,
            Dest::Stderr => 2,
        }
    }
}

/// How node lines look: prefixes padded to the longest replica id, coloured or not per
/// destination; or JSON objects.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Style {
    /// The width ids are padded to.
    pub width: usize,
    /// Colour prefixes on stdout.
    pub colour_stdout: bool,
    /// Colour prefixes on stderr.
    pub colour_stderr: bool,
    /// Each line a JSON object instead (`--log-format json`).
    #[serde(default)]
    pub json: bool,
}

impl Style {
    /// The style for this launcher's outputs: JSON in the JSON log format; else colour
    /// where they are terminals (and `NO_COLOR` is unset).
    pub fn detect(width: usize) -> Style {
        use std::io::IsTerminal;
        let json = super::notice::format() == super::notice::LogFormat::Json;
        let colour = !json && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Style {
            width,
            colour_stdout: colour && io::stdout().is_terminal(),
            colour_stderr: colour && io::stderr().is_terminal(),
            json,
        }
    }

    /// What goes around each line of replica `id` of the `node_index`-th node, for `dest`.
    pub fn framing(&self, id: &str, node_index: usize, dest: Dest) -> Framing {
        if self.json {
            let (node, replica) = super::notice::split_id(Some(id));
            let stream = match dest {
                Dest::Stdout => "stdout",
                Dest::Stderr => "stderr",
            };
            let fields = serde_json::json!({ "stream": stream, "node": node, "replica": replica });
            // The object's fields without its braces, to go between the time and the line.
            let fields = fields.to_string();
            return Framing::Json(fields.as_bytes()[1..fields.len() - 1].to_vec());
        }
        let colour = match dest {
            Dest::Stdout => self.colour_stdout,
            Dest::Stderr => self.colour_stderr,
        };
        let text = format!("{id:<width$} |", width = self.width);
        if colour {
            // Six distinct ANSI colours, one per node in turn.
            let code = 31 + (node_index % 6);
            Framing::Prefix(format!("\x1b[{code}m{text}\x1b[0m ").into_bytes())
        } else {
            Framing::Prefix(format!("{text} ").into_bytes())
        }
    }
}

/// What goes around each line of a relayed pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// This prefix before it (none: the lines are passed on as they are, from a fork server
    /// that framed them already).
    Prefix(Vec<u8>),
    /// A JSON object around it, with these fields (`"stream":...,"node":...,"replica":...`)
    /// beside the time, the level, the event and the line.
    Json(Vec<u8>),
}

impl Framing {
    /// Lines passed on as they are.
    pub fn none() -> Framing {
        Framing::Prefix(Vec::new())
    }
}

struct Stream {
    fd: OwnedFd,
    framing: Framing,
    partial: Vec<u8>,
    dest: Dest,
}

/// Pipes being relayed.
#[derive(Default)]
pub struct Relay {
    streams: Vec<Stream>,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// Live progress lines on the terminal, hidden while node lines are written.
    progress: Option<indicatif::MultiProgress>,
}

impl Relay {
    /// Relay what arrives on `fd` (the read end of a pipe) to `dest`, each line framed so.
    pub fn add(&mut self, fd: OwnedFd, framing: Framing, dest: Dest) {
        self.streams.push(Stream { fd, framing, partial: Vec::new(), dest });
    }

    /// Hide `progress` while writing node lines, so they do not garble it.
    pub fn set_progress(&mut self, progress: Option<indicatif::MultiProgress>) {
        self.progress = progress;
    }

    /// Write `self.out` to `dest` and clear it.
    fn write_out(&mut self, dest: Dest) {
        match &self.progress {
            Some(p) => p.suspend(|| write_all(dest.fd(), &self.out)),
            None => write_all(dest.fd(), &self.out),
        }
        self.out.clear();
    }

    /// Whether every pipe has ended.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// `pollfd`s for every pipe, in order; pass the ones that are ready to [`Relay::service`].
    pub fn pollfds(&self) -> impl Iterator<Item = libc::pollfd> + '_ {
        self.streams.iter().map(|s| libc::pollfd { fd: s.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 })
    }

    /// Read from every pipe whose `pollfd` (as from [`Relay::pollfds`], same order) is ready,
    /// write out the complete lines, and forget pipes that ended.
    pub fn service(&mut self, ready: &[libc::pollfd]) {
        if self.buf.is_empty() {
            self.buf = vec![0; 64 * 1024];
        }
        let mut ended = Vec::new();
        for (i, p) in ready.iter().enumerate().take(self.streams.len()) {
            if p.revents == 0 {
                continue;
            }
            let s = &mut self.streams[i];
            // SAFETY: reading into a buffer we own, of its length.
            let n = unsafe { libc::read(s.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len()) };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                // End of file (or an error, which ends the pipe just the same).
                let dest = s.dest;
                if !s.partial.is_empty() {
                    s.partial.push(b'\n');
                    emit(&mut self.out, &s.framing, &s.partial);
                    s.partial.clear();
                    self.write_out(dest);
                }
                ended.push(i);
                continue;
            }
            s.partial.extend_from_slice(&self.buf[..n as usize]);
            let dest = s.dest;
            if let Some(last) = s.partial.iter().rposition(|&b| b == b'\n') {
                emit(&mut self.out, &s.framing, &s.partial[..=last]);
                s.partial.drain(..=last);
            }
            // A line longer than this goes out in pieces rather than growing without bound.
            if s.partial.len() >= 1 << 20 {
                s.partial.push(b'\n');
                emit(&mut self.out, &s.framing, &s.partial);
                s.partial.clear();
            }
            if !self.out.is_empty() {
                self.write_out(dest);
            }
        }
        for i in ended.into_iter().rev() {
            self.streams.remove(i);
        }
    }
}

/// Append each line of `lines` (which ends in a newline) to `out`, framed.
fn emit(out: &mut Vec<u8>, framing: &Framing, lines: &[u8]) {
    let ts = match framing {
        Framing::Prefix(_) => String::new(),
        Framing::Json(_) => super::notice::rfc3339_millis(std::time::SystemTime::now()),
    };
    for line in lines.split_inclusive(|&b| b == b'\n') {
        match framing {
            Framing::Prefix(prefix) => {
                out.extend_from_slice(prefix);
                out.extend_from_slice(line);
            }
            Framing::Json(fields) => {
                let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
                let text = serde_json::Value::from(text.into_owned()).to_string();
                out.extend_from_slice(format!("{{\"ts\":\"{ts}\",\"level\":\"info\",\"event\":\"output\",").as_bytes());
                out.extend_from_slice(fields);
                out.extend_from_slice(b",\"line\":");
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"}\n");
            }
        }
    }
}

/// Write all of `buf` to `fd`; a closed or broken output loses the text, never the run.
pub fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a buffer we own, of its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// A pipe whose ends close on exec: (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The launcher's relay: a thread polling every node's pipes, with a channel to add more.
pub struct RelayThread {
    add: mpsc::Sender<(OwnedFd, Framing, Dest)>,
    wake: OwnedFd,
    handle: JoinHandle<()>,
    done: mpsc::Receiver<()>,
}

impl RelayThread {
    /// Start the thread; it hides `progress` (if any) while it writes.
    pub fn start(progress: Option<indicatif::MultiProgress>) -> io::Result<RelayThread> {
        let (wake_r, wake_w) = pipe()?;
        let (add, rx) = mpsc::channel::<(OwnedFd, Framing, Dest)>();
        let (done_tx, done) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new().name("relay".into()).spawn(move || {
            // Dropped when the thread ends, however it ends: `finish` waits for that.
            let _done = done_tx;
            super::signals::block_in_this_thread();
            let mut relay = Relay::default();
            relay.set_progress(progress);
            let mut closing: Option<Instant> = None;
            loop {
                // Once closing, the wake pipe is at end of file: poll ignores a negative fd.
                let wake_fd = if closing.is_some() { -1 } else { wake_r.as_raw_fd() };
                let mut fds = vec![libc::pollfd { fd: wake_fd, events: libc::POLLIN, revents: 0 }];
                fds.extend(relay.pollfds());
                // Once the launcher is finishing, wait at most a second for the last lines: a
                // process that escaped its group may hold a pipe open forever.
                let timeout = match closing {
                    Some(at) => {
                        let left = Duration::from_secs(1).saturating_sub(at.elapsed());
                        if left.is_zero() || relay.is_empty() {
                            return;
                        }
                        left.as_millis() as i32
                    }
                    None => -1,
                };
                // SAFETY: fds is a valid array of pollfd of the given length.
                let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
                if n < 0 {
                    continue;
                }
                if fds[0].revents != 0 {
                    let mut b = [0u8; 64];
                    // SAFETY: reading into a local buffer.
                    let r = unsafe { libc::read(wake_r.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
                    loop {
                        match rx.try_recv() {
                            Ok((fd, framing, dest)) => relay.add(fd, framing, dest),
                            Err(mpsc::TryRecvError::Empty) => break,
                            Err(mpsc::TryRecvError::Disconnected) => {
                                closing.get_or_insert_with(Instant::now);
                                break;
                            }
                        }
                    }
                    if r == 0 {
                        closing.get_or_insert_with(Instant::now);
                    }
                    // Pipes added now are polled from the next round.
                    continue;
                }
                relay.service(&fds[1..]);
            }
        })?;
        Ok(RelayThread { add, wake: wake_w, handle, done })
    }

    /// Relay `fd` from now on, each line framed so.
    pub fn add(&self, fd: OwnedFd, framing: Framing, dest: Dest) {
        if self.add.send((fd, framing, dest)).is_ok() {
            write_all(self.wake.as_raw_fd(), b"+");
        }
    }

    /// Relay what is left (every node has exited) and stop, within about a second. If the
    /// launcher's own output is stuck (a reader that does not read), give up on it after two
    /// seconds rather than hang: the thread is left to die with the process.
    pub fn finish(self) {
        let RelayThread { add, wake, handle, done } = self;
        drop(add);
        drop(wake);
        if let Err(mpsc::RecvTimeoutError::Disconnected) = done.recv_timeout(Duration::from_secs(2)) {
            let _ = handle.join();
        }
    }
}
