//! Test harness: runs the real `procnet` binary with a deadline, captures its output, and
//! checks that no process of the run is left behind.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The environment variable that marks every process of one test run (children inherit it).
pub const TAG_VAR: &str = "PROCNET_TEST_TAG";

/// Path of the built `procnet` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_procnet"))
}

/// The misbehaving test node of tests/nodes/rogue.rs, which cargo builds (the binary target
/// `procnet-rogue`) before the integration tests, as it does `procnet`.
pub fn rogue() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_procnet-rogue"))
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A unique tag for this test process and call.
fn new_tag() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// What a finished run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// From the start to the launcher's exit (not counting the harness's checks after it).
    pub elapsed: Duration,
    /// What the procnet process used, with every descendant it reaped (its nodes), as
    /// wait4(2) reports it: CPU summed, peak memory the largest process's.
    pub usage: Usage,
    pub tag: String,
}

/// The resources a process used, as wait4(2) reports them when it is reaped.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User and system CPU time.
    pub cpu: Duration,
    /// Peak resident memory, in KiB.
    pub max_rss_kib: u64,
}

/// Reap `child` with wait4(2), for its exit status and its resource usage.
fn wait4(child: &std::process::Child) -> (ExitStatus, Usage) {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4(2) on our own child, with valid pointers.
        let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
        if pid == child.id() as i32 {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "wait4 for procnet: {e}");
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let usage = Usage { cpu: time(usage.ru_utime) + time(usage.ru_stime), max_rss_kib: usage.ru_maxrss as u64 };
    (ExitStatus::from_raw(status), usage)
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Panic with the output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// What the nodes printed on stdout, line by line, without the `name.replica | `
    /// prefix the launcher puts before each line.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .map(|l| match l.split_once(" | ") {
                Some((id, rest)) if id.trim_end().rsplit_once('.').is_some_and(|(_, r)| r.parse::<u32>().is_ok()) => {
                    rest
                }
                _ => panic!("stdout line without a `name.replica | ` prefix: {l:?}"),
            })
            .collect()
    }

    /// The last stdout line (without its prefix) parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        let lines = self.lines();
        let line = lines.last().unwrap_or_else(|| panic!("no stdout; stderr:\n{}", self.stderr));
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {line}\nstderr:\n{}", self.stderr))
    }
}

/// A `procnet` invocation under construction.
pub struct Procnet {
    cmd: Command,
    timeout: Duration,
    tag: String,
}

/// Start building `procnet ARGS...`, run from the repository root.
pub fn procnet<I, S>(args: I) -> Procnet
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    program(bin(), args)
}

/// Like [`procnet`], for another program (a wrapper such as `script` that runs procnet).
pub fn program<I, S>(program: impl AsRef<OsStr>, args: I) -> Procnet
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let tag = new_tag();
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(root()).env(TAG_VAR, &tag).stdin(Stdio::null());
    Procnet { cmd, timeout: Duration::from_secs(60), tag }
}

impl Procnet {
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Give the launcher this file as its stdin (instead of /dev/null).
    pub fn stdin_file(mut self, path: impl AsRef<Path>) -> Self {
        self.cmd.stdin(fs::File::open(path).expect("the stdin file"));
        self
    }

    /// Start with this umask (as a user's shell may have it).
    pub fn umask(mut self, mask: libc::mode_t) -> Self {
        // SAFETY: umask(2) is async-signal-safe.
        unsafe {
            self.cmd.pre_exec(move || {
                libc::umask(mask);
                Ok(())
            });
        }
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    /// Run to completion; panic (after killing the whole process group) past the deadline,
    /// and if any process carrying this run's tag is still alive afterwards.
    pub fn run(self) -> Run {
        self.start().finish()
    }

    /// Start in the background; [`Running::finish`] waits with the same guarantees as `run`.
    pub fn start(mut self) -> Running {
        let dir = tempfile::tempdir().expect("temp dir");
        let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
        self.cmd
            .stdout(fs::File::create(&out_path).expect("stdout file"))
            .stderr(fs::File::create(&err_path).expect("stderr file"))
            .process_group(0);
        let started = Instant::now();
        // Reaped by wait4 in the waiter thread, for its resource usage too.
        #[allow(clippy::zombie_processes)]
        let child = self.cmd.spawn().expect("spawn procnet");
        let pid = child.id();
        let guard = KillOnDrop { tag: self.tag.clone(), pid, armed: true };
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = tx.send(wait4(&child));
        });
        Running {
            pid,
            tag: self.tag,
            deadline: started + self.timeout,
            started,
            status: rx,
            waiter,
            out_path,
            err_path,
            _dir: dir,
            guard,
        }
    }
}

/// A `procnet` process started by [`Procnet::start`].
pub struct Running {
    pub pid: u32,
    pub tag: String,
    deadline: Instant,
    started: Instant,
    status: mpsc::Receiver<(ExitStatus, Usage)>,
    waiter: std::thread::JoinHandle<()>,
    out_path: PathBuf,
    err_path: PathBuf,
    _dir: tempfile::TempDir,
    guard: KillOnDrop,
}

/// Kills a run left behind by a test that panicked before `finish` (a failed `wait_until`).
struct KillOnDrop {
    tag: String,
    pid: u32,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            kill_tagged(&self.tag);
            // SAFETY: plain kill(2) of the test's own child process group.
            unsafe { libc::kill(-(self.pid as i32), libc::SIGKILL) };
        }
    }
}

impl Running {
    /// Send `signal` to the procnet process itself (not its group: like a terminal's Ctrl-C
    /// reaching the launcher, whose nodes are in groups of their own).
    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(self.pid as i32, signal) };
    }

    /// Wait until `n` processes of the run other than the launcher are alive, by watching
    /// /proc (the condition itself, not a guess at how long it takes).
    pub fn wait_for_nodes(&self, n: usize) {
        loop {
            let alive = tagged_pids(&self.tag).into_iter().filter(|&p| p != self.pid).count();
            if alive >= n {
                return;
            }
            assert!(Instant::now() < self.deadline, "only {alive} of {n} nodes started before the deadline");
            std::thread::yield_now();
        }
    }

    /// Wait until `cond` holds, checking it over and over (the condition itself, not a guess
    /// at how long it takes); panic at the run's deadline.
    pub fn wait_until(&self, what: &str, cond: impl Fn() -> bool) {
        while !cond() {
            assert!(Instant::now() < self.deadline, "{what} did not happen before the deadline");
            std::thread::yield_now();
        }
    }

    /// Open `fifo` for writing once its reader, a source of this run, has opened it
    /// (until then opening fails with ENXIO); the writer then blocks as usual.
    pub fn fifo_writer(&self, fifo: &Path) -> fs::File {
        use std::os::unix::fs::OpenOptionsExt;
        let writer = std::cell::RefCell::new(None);
        self.wait_until("the source opens its FIFO", || {
            *writer.borrow_mut() = fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(fifo).ok();
            writer.borrow().is_some()
        });
        let w = writer.into_inner().expect("opened above");
        // SAFETY: fcntl(2) on a descriptor we own.
        unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&w), libc::F_SETFL, 0) };
        w
    }

    /// Time since the launcher started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What the launcher has written on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        fs::read_to_string(&self.err_path).unwrap_or_default()
    }

    /// Wait for the run to end (see [`Procnet::run`]).
    pub fn finish(mut self) -> Run {
        self.guard.armed = false;
        let left = self.deadline.saturating_duration_since(Instant::now());
        let (status, usage) = match self.status.recv_timeout(left) {
            Ok(ended) => ended,
            Err(_) => {
                kill_tagged(&self.tag);
                // SAFETY: plain kill(2) of the test's own child process group.
                unsafe { libc::kill(-(self.pid as i32), libc::SIGKILL) };
                let _ = self.waiter.join();
                panic!(
                    "procnet did not finish before its deadline\n--- stderr\n{}",
                    fs::read_to_string(&self.err_path).unwrap_or_default()
                );
            }
        };
        let _ = self.waiter.join();
        let run = Run {
            status,
            stdout: fs::read_to_string(&self.out_path).expect("read stdout"),
            stderr: fs::read_to_string(&self.err_path).expect("read stderr"),
            elapsed: self.started.elapsed(),
            usage,
            tag: self.tag.clone(),
        };
        // A process already sent SIGKILL (by the launcher, or by the kernel when the launcher
        // itself was killed) may take a moment to die; one still alive after that was left.
        let gone_by = Instant::now() + Duration::from_secs(3);
        let mut left = tagged_pids(&self.tag);
        while !left.is_empty() && Instant::now() < gone_by {
            std::thread::yield_now();
            left = tagged_pids(&self.tag);
        }
        if !left.is_empty() {
            kill_tagged(&self.tag);
            panic!("processes of the run are still alive after it ended: {left:?}\n--- stderr\n{}", run.stderr);
        }
        run
    }
}

/// The virtualenv's `bin`, where `python3` is the one with the procnet package.
pub fn venv_bin() -> PathBuf {
    let bin = root().join("target/venv/bin");
    assert!(bin.join("python3").exists(), "{} is missing: run `make venv` (`make test` does it first)", bin.display());
    bin
}

/// PATH with the virtualenv first, so `python3` in a topology is the venv's.
pub fn path_with_venv() -> String {
    format!("{}:{}", venv_bin().display(), std::env::var("PATH").unwrap_or_default())
}

/// The value of `key` in the environment process `pid` started with.
pub fn environ_var(pid: u32, key: &str) -> Option<String> {
    let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{key}=");
    env.split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// The name of process `pid` (`/proc/PID/comm`: forked nodes are named `name.replica`).
pub fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim_end().to_string()
}

/// The arguments of process `pid`.
pub fn cmdline(pid: u32) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// Pids of live (non-zombie) processes whose environment carries `TAG_VAR=tag`.
pub fn tagged_pids(tag: &str) -> Vec<u32> {
    let needle = format!("{TAG_VAR}={tag}");
    let mut pids = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) {
            let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit(')').next().map(|rest| rest.trim_start().starts_with('Z')))
                .unwrap_or(true);
            if !zombie {
                pids.push(pid);
            }
        }
    }
    pids
}

fn kill_tagged(tag: &str) {
    for pid in tagged_pids(tag) {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

/// The tcp ports processes `pids` listen on (from /proc: their socket descriptors, matched
/// against the kernel's table of listening sockets).
pub fn listening_ports(pids: &[u32]) -> Vec<u16> {
    let mut inodes = std::collections::HashSet::new();
    for pid in pids {
        for fd in fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
            let link = fs::read_link(fd.path()).unwrap_or_default().to_string_lossy().into_owned();
            if let Some(inode) = link.strip_prefix("socket:[").and_then(|l| l.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local address, state (0A: listening), ..., inode
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                if let Some(port) = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) {
                    ports.push(port);
                }
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Make a FIFO (named pipe) at `path`.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("a path without NUL");
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A temporary directory holding a topology file and its data.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The file a running `sink` or `tally` writes for its target `name` until the run
    /// succeeds (`name.<run>.partial`), if it exists yet.
    pub fn partial(&self, name: &str) -> Option<PathBuf> {
        let prefix = format!("{name}.procnet-");
        fs::read_dir(self.dir.path()).ok()?.flatten().map(|e| e.path()).find(|p| {
            let file = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            file.starts_with(&prefix) && file.ends_with(".partial")
        })
    }

    /// Whether the running `sink` or `tally` writing target `name` has written something.
    pub fn partial_written(&self, name: &str) -> bool {
        self.partial(name).is_some_and(|p| fs::metadata(p).is_ok_and(|m| m.len() > 0))
    }

    /// Write `name` with `text`; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&p, text).expect("write scratch file");
        p
    }
}
