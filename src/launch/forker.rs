//! A fork server: a small single-threaded process that forks built-in node replicas on the
//! launcher's request, relays their output, reaps them and reports how they ended. It never
//! creates a thread or a ZeroMQ context, so forking from it is safe at any time, also after
//! the launcher has started threads (restarts).
//!
//! Two ways to get one, as in Python's multiprocessing:
//! - the `forkserver` start method spawns it: `procnet forkserver`, a fresh process image;
//! - for restarts of `fork` nodes, the launcher forks a *zygote* in its fork phase, a copy of
//!   itself from before its first thread.
//!
//! The launcher talks to it over a Unix socket, one JSON object per line each way.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fork::fork_node;
use super::logs::{Dest, Relay, Style};
use crate::nodes::Kind;
use crate::runtime::Identity;

/// The descriptor a spawned forkserver finds its socket on.
const SERVER_FD: RawFd = 3;
/// The environment variable a spawned forkserver reads its output style from.
pub const STYLE_VAR: &str = "PROCNET_LOG_STYLE";

/// Launcher to server.
#[derive(Serialize, Deserialize)]
struct Request {
    identity: Identity,
    kind: Kind,
    base_dir: PathBuf,
    /// For the colour of its output's prefix.
    node_index: usize,
}

/// Server to launcher.
#[derive(Serialize, Deserialize)]
enum Reply {
    Forked { id: String, pid: i32 },
    Failed { id: String, error: String },
    Exited { pid: i32, status: i32 },
}

/// The launcher's end of a fork server.
pub struct Forker {
    /// The server's pid (a child of the launcher, leading its own process group).
    pub pid: libc::pid_t,
    sock: UnixStream,
    buf: Vec<u8>,
    exits: Vec<(libc::pid_t, i32)>,
    /// The read ends of the server's stdout and stderr, where it writes its nodes' prefixed
    /// lines, until the launcher's relay takes them.
    pub output: Option<(OwnedFd, OwnedFd)>,
}

impl Forker {
    /// Spawn `procnet forkserver` (the `forkserver` start method).
    pub fn spawn_server(style: &Style) -> io::Result<Forker> {
        let (ours, theirs) = UnixStream::pair()?;
        let fd = theirs.as_raw_fd();
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("forkserver")
            .env(STYLE_VAR, serde_json::to_string(style).expect("a style serializes"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let launcher = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, SERVER_FD) < 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != launcher {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        drop(theirs);
        let mut server = Forker::new(child.id() as libc::pid_t, ours);
        if let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) {
            server.output = Some((out.into(), err.into()));
        }
        Ok(server)
    }

    /// Fork a zygote: a single-threaded copy of this process that forks nodes later. Call
    /// only in the launcher's fork phase (single-threaded, no ZeroMQ context).
    pub fn fork_zygote(style: &Style) -> io::Result<Forker> {
        let (ours, theirs) = UnixStream::pair()?;
        let (out_r, out_w) = super::logs::pipe()?;
        let (err_r, err_w) = super::logs::pipe()?;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the caller is single-threaded; the child never returns.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                // SAFETY: descriptor and signal calls in the single-threaded child.
                unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if libc::getppid() != parent {
                        libc::_exit(1);
                    }
                    // The launcher's signal counters are not the zygote's.
                    for sig in [libc::SIGINT, libc::SIGTERM] {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                    libc::dup2(null, 0);
                    libc::dup2(out_w.as_raw_fd(), 1);
                    libc::dup2(err_w.as_raw_fd(), 2);
                    libc::dup2(theirs.as_raw_fd(), SERVER_FD);
                }
                super::fork::close_from(SERVER_FD + 1);
                super::fork::set_process_name("procnet-zygote");
                // A copy of the launcher's stack is below: never unwind into it.
                let _ = std::panic::catch_unwind(|| serve(style.clone()));
                // SAFETY: _exit ends the process without the launcher's destructors.
                unsafe { libc::_exit(101) }
            }
            pid => {
                drop(theirs);
                // SAFETY: setpgid on our own child, so its group exists before we signal it.
                unsafe { libc::setpgid(pid, pid) };
                let mut zygote = Forker::new(pid, ours);
                zygote.output = Some((out_r, err_r));
                Ok(zygote)
            }
        }
    }

    fn new(pid: libc::pid_t, sock: UnixStream) -> Forker {
        Forker { pid, sock, buf: Vec::new(), exits: Vec::new(), output: None }
    }

    /// The socket, to poll for replies.
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Fork replica `identity` of node `node_index`; its pid.
    pub fn fork(
        &mut self,
        identity: &Identity,
        kind: &Kind,
        base_dir: &std::path::Path,
        node_index: usize,
    ) -> io::Result<libc::pid_t> {
        let id = identity.id();
        let request =
            Request { identity: identity.clone(), kind: kind.clone(), base_dir: base_dir.to_path_buf(), node_index };
        let mut line = serde_json::to_vec(&request).expect("a request serializes");
        line.push(b'\n');
        self.sock.set_nonblocking(false)?;
        self.sock.write_all(&line)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the fork server did not answer in 10 s"));
            }
            self.sock.set_read_timeout(Some(left))?;
            match self.next_reply(true)? {
                Some(Reply::Forked { id: got, pid }) if got == id => return Ok(pid),
                Some(Reply::Failed { id: got, error }) if got == id => return Err(io::Error::other(error)),
                Some(Reply::Exited { pid, status }) => self.exits.push((pid, status)),
                Some(_) => {}
                None => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the fork server is gone")),
            }
        }
    }

    /// Read what the server reported, without waiting. Err if the server is gone.
    pub fn poll(&mut self) -> io::Result<()> {
        self.sock.set_nonblocking(true)?;
        loop {
            match self.next_reply(false) {
                Ok(Some(Reply::Exited { pid, status })) => self.exits.push((pid, status)),
                Ok(Some(_)) => {}
                Ok(None) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the fork server is gone")),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// The wait status of `pid`, if the server reported its exit.
    pub fn take_exit(&mut self, pid: libc::pid_t) -> Option<i32> {
        let i = self.exits.iter().position(|&(p, _)| p == pid)?;
        Some(self.exits.swap_remove(i).1)
    }

    /// The next complete reply; None at end of file.
    fn next_reply(&mut self, blocking: bool) -> io::Result<Option<Reply>> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return serde_json::from_slice(&line).map(Some).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("bad reply from the fork server: {e}"))
                });
            }
            let mut chunk = [0u8; 4096];
            match self.sock.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if blocking && e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "the fork server did not answer"))
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// `procnet forkserver`: serve the launcher on descriptor 3.
pub fn forkserver_main() -> ! {
    super::fork::set_process_name("procnet-forksrv");
    let style = std::env::var(STYLE_VAR).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Style {
        width: 0,
        colour_stdout: false,
        colour_stderr: false,
        json: false,
    });
    serve(style)
}

/// The server loop, on descriptor 3, until the launcher closes its end; then kill every
/// node forked and exit. Single-threaded: poll(2) over the socket, a signalfd for SIGCHLD
/// and the nodes' output pipes.
fn serve(style: Style) -> ! {
    // SAFETY: descriptor 3 was handed to this process as its socket.
    let sock = unsafe { OwnedFd::from_raw_fd(SERVER_FD) };
    let mut sock = UnixStream::from(sock);
    // SAFETY: plain system calls in this single-threaded process.
    let sigfd = unsafe {
        // Its own process group: the terminal's Ctrl-C is the launcher's to handle.
        libc::setpgid(0, 0);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    let mut relay = Relay::default();
    let mut children: HashSet<libc::pid_t> = HashSet::new();
    let mut buf = Vec::new();
    loop {
        let mut fds = vec![
            libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sigfd, events: libc::POLLIN, revents: 0 },
        ];
        fds.extend(relay.pollfds());
        // SAFETY: a valid array of pollfd.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            let mut info = [0u8; 128];
            // SAFETY: draining the signalfd into a local buffer.
            while unsafe { libc::read(sigfd, info.as_mut_ptr().cast(), info.len()) } > 0 {}
            reap(&mut children, &mut sock);
        }
        relay.service(&fds[2..]);
        if fds[0].revents != 0 {
            let mut chunk = [0u8; 16 * 1024];
            let n = match sock.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                // The launcher is gone or done: nothing of the run may outlive it.
                for &pid in &children {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
                drain(&mut relay);
                // SAFETY: _exit ends the process.
                unsafe { libc::_exit(0) }
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let reply = match serde_json::from_slice::<Request>(&line) {
                    Ok(req) => {
                        let id = req.identity.id();
                        match fork_node(&req.identity, &req.kind, &req.base_dir) {
                            Ok(f) => {
                                children.insert(f.pid);
                                relay.add(f.stdout, style.framing(&id, req.node_index, Dest::Stdout), Dest::Stdout);
                                relay.add(f.stderr, style.framing(&id, req.node_index, Dest::Stderr), Dest::Stderr);
                                Reply::Forked { id, pid: f.pid }
                            }
                            Err(e) => Reply::Failed { id, error: format!("fork failed: {e}") },
                        }
                    }
                    Err(e) => Reply::Failed { id: String::new(), error: format!("bad request: {e}") },
                };
                send(&mut sock, &reply);
            }
        }
    }
}

/// Relay what the nodes' pipes still hold, for at most a second.
fn drain(relay: &mut Relay) {
    let until = Instant::now() + Duration::from_secs(1);
    while !relay.is_empty() && Instant::now() < until {
        let mut fds: Vec<libc::pollfd> = relay.pollfds().collect();
        // SAFETY: a valid array of pollfd.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) } > 0 {
            relay.service(&fds);
        }
    }
}

/// Reap every child that ended, with what it left in its process group, and tell the
/// launcher.
fn reap(children: &mut HashSet<libc::pid_t>, sock: &mut UnixStream) {
    while let Ok(Some((pid, status))) = super::fork::reap_with_group(None) {
        children.remove(&pid);
        send(sock, &Reply::Exited { pid, status });
    }
}

fn send(sock: &mut UnixStream, reply: &Reply) {
    let mut line = serde_json::to_vec(reply).expect("a reply serializes");
    line.push(b'\n');
    // If the launcher is gone, the next read sees it.
    let _ = sock.write_all(&line);
}
