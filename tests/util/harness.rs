//! The test harness: runs the real `procnet` binary with a deadline, captures its output,
//! and checks that no process of the run is left behind. Every test binary that runs
//! procnet uses all of it; `control.rs` adds what only some tests do to a run.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::scratch::Scratch;

/// How long a run may take before the harness kills it and fails the test.
const DEADLINE: Duration = Duration::from_secs(60);

/// The environment variable that marks every process of one test run (children inherit it).
pub const TAG_VAR: &str = "PROCNET_TEST_TAG";

/// Path of the built `procnet` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_procnet"))
}

/// Path of the misbehaving test node of tests/nodes/rogue.rs, which cargo builds (the
/// binary target `procnet-rogue`) before the integration tests, as it does `procnet`. Text,
/// as the tests write it into a topology's `command`.
pub fn rogue() -> &'static str {
    env!("CARGO_BIN_EXE_procnet-rogue")
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

    /// Panic with the output, and what the run took, unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        let Usage { cpu, max_rss_kib } = self.usage;
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code (after {:.1?}, {cpu:.1?} of CPU, peak {max_rss_kib} KiB)\n--- stdout\n{}\n--- stderr\n{}",
            self.elapsed,
            self.stdout,
            self.stderr
        );
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
    pub(super) cmd: Command,
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
    Procnet { cmd, timeout: DEADLINE, tag }
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

/// `procnet run` on the topology `toml`, written as `t.toml` in `s`, to its end within the
/// default deadline (see [`Procnet::run`]).
pub fn run(s: &Scratch, toml: &str) -> Run {
    run_within(s, toml, DEADLINE)
}

/// [`run`], which must exit 0.
pub fn run_ok(s: &Scratch, toml: &str) -> Run {
    let run = run(s, toml);
    run.expect_code(0);
    run
}

/// [`run`], within `deadline`.
pub fn run_within(s: &Scratch, toml: &str, deadline: Duration) -> Run {
    let file = s.write("t.toml", toml);
    procnet(["run".as_ref(), file.as_os_str()]).timeout(deadline).run()
}

/// A `procnet` process started by [`Procnet::start`].
pub struct Running {
    pub pid: u32,
    pub tag: String,
    pub(super) deadline: Instant,
    pub(super) started: Instant,
    status: mpsc::Receiver<(ExitStatus, Usage)>,
    waiter: std::thread::JoinHandle<()>,
    out_path: PathBuf,
    pub(super) err_path: PathBuf,
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
