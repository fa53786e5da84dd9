//! Forking a built-in node replica without exec: the `fork` and `forkserver` start methods.
//!
//! Fork safety, the rule of the Python docs and the ZeroMQ guide: a process that has threads
//! or a ZeroMQ context must not fork and go on running code in the child (locks held by
//! other threads stay locked forever; a context's I/O threads do not exist in the child).
//! procnet never does. [`fork_node`] is only called by
//! - the launcher in its fork phase, before it starts its first thread or creates its
//!   ZeroMQ context (`supervisor::run` does them in that order, and [`single_threaded`]
//!   checks it at run time), and
//! - the forkserver and the zygote ([`super::forker`]), which are single-threaded and never
//!   create a context.
//!
//! The child creates its own context when it joins the network (`Node::join`).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::logs::pipe;
use crate::nodes::{run_builtin, Ending, Kind};
use crate::runtime::{vars, Identity};

/// A forked replica: its pid (which leads its process group) and the read ends of its
/// stdout and stderr.
pub struct Forked {
    /// The child's pid.
    pub pid: libc::pid_t,
    /// Its stdout.
    pub stdout: OwnedFd,
    /// Its stderr.
    pub stderr: OwnedFd,
}

/// Whether this process has exactly one thread (read from `/proc/self/task`).
pub fn single_threaded() -> io::Result<bool> {
    Ok(std::fs::read_dir("/proc/self/task")?.count() == 1)
}

/// Fork a child that runs `kind` as `identity`, in `base_dir`, with the `PROCNET_*`
/// variables of `identity`, and exits. The caller must be single-threaded and have no
/// ZeroMQ context (see the module docs).
pub fn fork_node(identity: &Identity, kind: &Kind, base_dir: &Path) -> io::Result<Forked> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let dir = CString::new(base_dir.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the base directory contains a NUL byte"))?;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: fork in a single-threaded process (the caller's contract); the child never
    // returns from this function.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            set_process_name(&identity.id());
            // Never unwind or return into the parent's code (its destructors would run here:
            // the launcher's would delete the run directory): a panic ends this process.
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child(identity, kind, &dir, parent, out_w.as_raw_fd(), err_w.as_raw_fd())
            }))
            .unwrap_or(101);
            use std::io::Write;
            let _ = std::io::stdout().flush();
            // SAFETY: _exit ends the process at once, without the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        pid => {
            // Also here, so the group exists before the parent may signal it.
            // SAFETY: setpgid on our own child.
            unsafe { libc::setpgid(pid, pid) };
            Ok(Forked { pid, stdout: out_r, stderr: err_r })
        }
    }
}

/// Reap a child that has ended (`pid`, or any child with None) after killing what it left in
/// its process group. The child is looked at first without being reaped (waitid WNOWAIT):
/// while the ended leader is a zombie, its group id cannot be reused, so the kill hits only
/// what it left behind. Ok(None) if none has ended yet; Err if there is no such child.
pub fn reap_with_group(pid: Option<libc::pid_t>) -> io::Result<Option<(libc::pid_t, i32)>> {
    let (idtype, id) = match pid {
        Some(p) => (libc::P_PID, p as libc::id_t),
        None => (libc::P_ALL, 0),
    };
    // SAFETY: waitid and waitpid write into locals; kill has no memory-safety preconditions.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        if libc::waitid(idtype, id, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) != 0 {
            return Err(io::Error::last_os_error());
        }
        let ended = info.si_pid();
        if ended == 0 {
            return Ok(None);
        }
        libc::kill(-ended, libc::SIGKILL);
        let mut status = 0;
        while libc::waitpid(ended, &mut status, 0) < 0
            && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
        {}
        Ok(Some((ended, status)))
    }
}

/// Close every descriptor from `first` up: `close_range(2)`, or one by one where the kernel
/// is older than 5.9. Only for a single-threaded process (it reads `/proc/self/fd`).
pub fn close_from(first: i32) {
    // SAFETY: closing descriptors of this process; the caller owns none of them any more.
    unsafe {
        if libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0u32) == 0 {
            return;
        }
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    for fd in fds.into_iter().filter(|&fd| fd >= first) {
        // SAFETY: as above.
        unsafe { libc::close(fd) };
    }
}

/// Name this process `text` (a forked one still carries its parent's name): a forked node
/// shows as `name.replica` in `ps`, `top` and `/proc/PID/comm` (at most 15 bytes of it).
pub fn set_process_name(text: &str) {
    let mut end = text.len().min(15);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let name = CString::new(text[..end].replace('\0', "")).expect("no NUL bytes left");
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// The child's side: become a node process like a spawned one, then run the node.
fn child(identity: &Identity, kind: &Kind, dir: &CString, parent: libc::pid_t, out: i32, err: i32) -> i32 {
    let reads_stdin = kind.reads_stdin();
    // SAFETY: plain system calls on descriptors and signal dispositions of this process,
    // which is single-threaded (it was forked from a single-threaded process).
    unsafe {
        // Its own process group, like a spawned node: the terminal's Ctrl-C goes to the
        // launcher alone, and the launcher kills the group.
        libc::setpgid(0, 0);
        // If the forking process dies, even by SIGKILL, the kernel kills this one.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        // The parent's handlers and blocked signals are not the node's.
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGCHLD] {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // Stdin stays the launcher's for a node that reads it (`lines` with `path = "-"`).
        if !reads_stdin {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            libc::dup2(null, 0);
        }
        libc::dup2(out, 1);
        libc::dup2(err, 2);
        // Nothing else of the parent's: its other pipes, sockets and the watchdog's pipe
        // (which must see end of file when the launcher dies).
        close_from(3);
        if libc::chdir(dir.as_ptr()) != 0 {
            eprintln!("procnet: node `{}`: cannot enter `{}`", identity.id(), dir.to_string_lossy());
            return 1;
        }
    }
    // The same identity a spawned node has, for anything that looks (a child process).
    for key in vars::ALL {
        std::env::remove_var(key);
    }
    for (key, value) in identity.env() {
        std::env::set_var(key, value);
    }
    match run_builtin(identity, kind) {
        Ok(Ending::Finished) => crate::exit_codes::OK as i32,
        Ok(Ending::FailedReported) => crate::exit_codes::NODE_FAILED as i32,
        Err(e) => {
            eprintln!("procnet: node failed: {e}");
            crate::exit_codes::NODE_FAILED as i32
        }
    }
}
