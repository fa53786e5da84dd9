//! Starting one node replica as an OS process: the procnet binary itself for a built-in kind,
//! the declared command otherwise; in its own process group, with stdin from /dev/null, its
//! identity in the environment (then the node's own `env`), in the node's `cwd` or the
//! topology's directory, and a death signal so it never outlives the launcher.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use crate::runtime::vars;
use crate::topology::{NodeId, Runner, Topology};

/// Start the replica, its stdout and stderr piped (for the launcher to prefix). The child
/// leads its own process group, so a terminal's Ctrl-C reaches only the launcher, which
/// decides, and the launcher can kill the node with everything it started by signalling the
/// group.
pub fn spawn(t: &Topology, node: NodeId, identity: &crate::runtime::Identity) -> io::Result<Child> {
    let node = &t.nodes[node];
    let mut cmd = match &node.runner {
        Runner::Builtin(_) => {
            let mut c = Command::new(std::env::current_exe()?);
            c.arg("node");
            c
        }
        Runner::Command(argv) => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        Runner::External => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "an external node is started by hand"))
        }
    };
    // Nothing of the launcher's own environment may pose as this node's identity.
    for key in vars::ALL {
        cmd.env_remove(key);
    }
    let stdin = match &node.runner {
        Runner::Builtin(kind) if kind.reads_stdin() => Stdio::inherit(),
        _ => Stdio::null(),
    };
    // The node's `env` never names a PROCNET_* variable (refused when the topology is
    // loaded), so it adds to the identity and cannot replace any of it.
    cmd.current_dir(node.cwd.as_ref().unwrap_or(&t.base_dir))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .envs(identity.env())
        .envs(&node.env)
        .process_group(0);
    let launcher = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // If the launcher dies, even by SIGKILL, the kernel kills this node.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The launcher may have died before prctl took effect.
            if libc::getppid() != launcher {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Why a program could not be started, in words.
pub fn describe_spawn_error(t: &Topology, node: NodeId, e: &io::Error) -> String {
    let program = match &t.nodes[node].runner {
        Runner::Command(argv) => argv[0].clone(),
        Runner::Builtin(_) => "the procnet binary".to_string(),
        Runner::External => "an external node".to_string(),
    };
    // `cwd` was a directory when the topology was loaded; it may have gone since.
    if let Some(dir) = t.nodes[node].cwd.as_ref().filter(|dir| e.kind() == io::ErrorKind::NotFound && !dir.is_dir()) {
        return format!("its working directory `{}` (`cwd`) is gone", dir.display());
    }
    match e.kind() {
        io::ErrorKind::NotFound => format!("command `{program}` not found"),
        io::ErrorKind::PermissionDenied => format!("command `{program}` is not executable"),
        _ => format!("failed to start `{program}`: {e}"),
    }
}

/// Send `signal` to the process group led by `pid`, and to `pid` itself (in case it has
/// not made its group yet); a group that is gone already is fine. `pid` must not have been
/// reaped (it could be another process's by now).
pub fn signal_group(pid: u32, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(-(pid as libc::pid_t), signal);
        libc::kill(pid as libc::pid_t, signal);
    }
}
