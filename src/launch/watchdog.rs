//! The watchdog: a tiny process, forked first, that kills every process group of the run if
//! the launcher dies without saying goodbye (even by `kill -9`).
//!
//! PR_SET_PDEATHSIG already kills the launcher's own children when it dies, but not what a
//! `command` node started: a shell script's children, a Python pool's workers. Those live in
//! the node's process group, and the watchdog knows every group: the launcher tells it each
//! one over a pipe. When the pipe reaches end of file (the launcher is gone) before the
//! launcher said `end`, the watchdog SIGKILLs every group it was told about, removes the
//! run's directory, and exits. The launcher tells it to forget a group once it has killed and
//! reaped its leader itself; Linux does not reuse a pid while a process group of that id has
//! members, so the groups it kills are the run's.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::logs::{pipe, write_all};

/// The launcher's end of the watchdog.
pub struct Watchdog {
    /// The watchdog's pid (a child of the launcher).
    pub pid: libc::pid_t,
    pipe: OwnedFd,
}

impl Watchdog {
    /// Fork the watchdog of the run whose directory is `dir`. Call in the launcher's fork
    /// phase (single-threaded).
    pub fn fork(dir: &std::path::Path) -> io::Result<Watchdog> {
        let (r, w) = pipe()?;
        let dir = dir.to_path_buf();
        // SAFETY: the caller is single-threaded; the child never returns.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                // SAFETY: plain system calls in the single-threaded child.
                unsafe {
                    // Out of the launcher's group and deaf to the terminal's signals: it must
                    // outlive the launcher to clean up after it.
                    libc::setpgid(0, 0);
                    super::fork::set_process_name("procnet-watch");
                    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                        libc::signal(sig, libc::SIG_IGN);
                    }
                    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                    libc::dup2(null, 0);
                    libc::dup2(null, 1);
                    libc::dup2(null, 2);
                    libc::dup2(r.as_raw_fd(), 3);
                    super::fork::close_from(4);
                    if !watch(OwnedFd::from_raw_fd(3)) {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    libc::_exit(0)
                }
            }
            pid => Ok(Watchdog { pid, pipe: w }),
        }
    }

    /// Kill process group `pgid` if the launcher dies.
    pub fn guard(&self, pgid: libc::pid_t) {
        write_all(self.pipe.as_raw_fd(), format!("+{pgid}\n").as_bytes());
    }

    /// Group `pgid` is dead and its leader reaped: forget it.
    pub fn forget(&self, pgid: libc::pid_t) {
        write_all(self.pipe.as_raw_fd(), format!("-{pgid}\n").as_bytes());
    }

    /// The launcher has killed and reaped everything itself: the watchdog may exit.
    pub fn end(self) {
        write_all(self.pipe.as_raw_fd(), b"end\n");
        drop(self.pipe);
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

/// Watch until `end` (true) or end of file (false, after killing every group).
fn watch(fd: OwnedFd) -> bool {
    let mut input = std::fs::File::from(fd);
    let mut groups: Vec<libc::pid_t> = Vec::new();
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        if n == 0 {
            break;
        }
        text.extend_from_slice(&chunk[..n]);
        while let Some(end) = text.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = text.drain(..=end).collect();
            match &line[..line.len() - 1] {
                b"end" => return true,
                [sign @ (b'+' | b'-'), pgid @ ..] => {
                    if let Some(p) = std::str::from_utf8(pgid).ok().and_then(|s| s.parse::<libc::pid_t>().ok()) {
                        groups.retain(|&g| g != p);
                        if *sign == b'+' {
                            groups.push(p);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for pgid in groups {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    false
}
