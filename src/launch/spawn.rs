//! Starting one node replica as an OS process: the procnet binary itself for a built-in kind,
//! the declared command otherwise; in its own process group, with stdin from /dev/null, its
//! identity in the environment, and a death signal so it never outlives the launcher.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::runtime::vars;
use crate::topology::{NodeId, Runner, Topology};

/// What the launcher tells one replica through its environment.
pub struct Launch<'a> {
    /// The node.
    pub node: NodeId,
    /// The replica index.
    pub replica: u32,
    /// The launcher's control endpoint.
    pub control: &'a str,
    /// Where the replica binds its input, if it has push inputs.
    pub bind: Option<&'a str>,
    /// Where it binds its pub ports, as JSON, if it has any.
    pub pub_ports: Option<&'a str>,
    /// The run's private directory.
    pub run_dir: &'a Path,
    /// How many times this replica was restarted mid-stream before (`PROCNET_RESTART`).
    pub restart: u32,
    /// The run's secret (`PROCNET_SECRET`), if it has one.
    pub secret: Option<&'a str>,
}

/// Start the replica, its stdout and stderr piped (for the launcher to prefix). The child
/// leads its own process group, so a terminal's Ctrl-C reaches only the launcher, which
/// decides, and the launcher can kill the node with everything it started by signalling the
/// group.
pub fn spawn(t: &Topology, node: NodeId, env: &[(String, String)]) -> io::Result<Child> {
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
    cmd.current_dir(&t.base_dir)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .envs(env.iter().map(|(k, v)| (k, v)))
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

/// The `PROCNET_*` variables of a replica (docs/protocol.md, section 2.2), whatever its start
/// method: a spawned replica gets them from `exec`, a forked one sets them itself.
pub fn node_env(t: &Topology, l: &Launch<'_>) -> Vec<(&'static str, String)> {
    let node = &t.nodes[l.node];
    let mut env = vec![
        (vars::PROTOCOL, crate::wire::VERSION.to_string()),
        (vars::NODE, node.name.clone()),
        (vars::REPLICA, l.replica.to_string()),
        (vars::REPLICAS, node.replicas.to_string()),
        (vars::CONTROL, l.control.to_string()),
        (vars::TOPOLOGY, t.name.clone()),
        (vars::RUN_DIR, l.run_dir.display().to_string()),
        (vars::RESTART, l.restart.to_string()),
        (vars::MAX_MESSAGE_BYTES, node.max_message_bytes.to_string()),
    ];
    if let Some(bind) = l.bind {
        env.push((vars::BIND, bind.to_string()));
    }
    if let Some(ports) = l.pub_ports {
        env.push((vars::PUB, ports.to_string()));
    }
    if let Runner::Builtin(kind) = &node.runner {
        env.push((vars::CONFIG, serde_json::to_string(kind).expect("a kind serializes")));
    }
    if let Some(secret) = l.secret {
        env.push((vars::SECRET, secret.to_string()));
    }
    let allow = allowed_peers(t);
    if !allow.is_empty() {
        env.push((vars::ALLOW, allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")));
    }
    env
}

/// Who may connect to the nodes' tcp sockets (and a coordinating launcher's control
/// socket): with `[hosts]`, the hosts' addresses (with `--local`, every one is the loopback
/// address); without, anyone (empty).
pub fn allowed_peers(t: &Topology) -> Vec<std::net::IpAddr> {
    let mut allow: Vec<std::net::IpAddr> = Vec::new();
    for h in &t.hosts {
        if !allow.contains(&h.address) {
            allow.push(h.address);
        }
    }
    allow
}

/// Why a program could not be started, in words.
pub fn describe_spawn_error(t: &Topology, node: NodeId, e: &io::Error) -> String {
    let program = match &t.nodes[node].runner {
        Runner::Command(argv) => argv[0].clone(),
        Runner::Builtin(_) => "the procnet binary".to_string(),
        Runner::External => "an external node".to_string(),
    };
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

/// A process's exit status in words: "exited with status 3", "was killed by SIGSEGV".
pub fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(sig) => format!("was killed by {}", signal_name(sig)),
        None => format!("ended with {status}"),
    }
}

/// A signal's conventional name.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}
