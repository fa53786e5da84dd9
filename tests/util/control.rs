//! What some tests do to a run beyond running it to the end: start it with another stdin or
//! umask or on a terminal, signal it, wait for a condition while it runs, feed it through a FIFO, and look
//! at what it wrote so far.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::harness::{program, tagged_pids, Procnet, Running};
use super::scratch::Scratch;

impl Procnet {
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
}

/// Start building the shell command line `command`, run on a pseudo-terminal: `script`
/// runs it there and copies what it draws to its own stdout.
pub fn on_terminal(command: &str) -> Procnet {
    program("script", ["-qec", command, "/dev/null"])
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
}

impl Scratch {
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
}

/// Make a FIFO (named pipe) at `path`.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("a path without NUL");
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}
