//! The processes of a run, and nothing else: the executor starts replicas by their start
//! method (spawned, forked in the fork phase, or forked by the zygote or the forkserver),
//! relays their output, watches the pids of external replicas on this host, reaps what ended,
//! and at the end kills and reaps everything, leaving nothing behind. It decides nothing: the
//! state machine says what to start, and hears what ended.
//!
//! Fork safety rests on the order of [`Executor::fork_phase`] and [`Executor::setup`]: the
//! first runs while the launcher has one thread and no ZeroMQ context (the watchdog, the
//! zygote and every `fork` replica are forked there); threads and the forkserver come after.

use std::os::fd::{OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::fork::{fork_node, reap_with_group, single_threaded};
use super::forker::Forker;
use super::logs::{Dest, Framing, RelayThread, Style};
use super::outcome::RunError;
use super::plan::{Plan, ReplicaId, Starter};
use super::spawn::{describe_spawn_error, signal_group, spawn};
use super::watchdog::Watchdog;
use crate::runtime::Identity;
use crate::topology::{Runner, StartMethod, Topology};

/// Who reaps a replica's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parent {
    /// The launcher: a spawned or forked child.
    Launcher,
    /// The zygote.
    Zygote,
    /// The forkserver.
    Forkserver,
}

/// A replica's process, as far as this launcher knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proc {
    /// None running that this launcher knows of.
    None,
    /// A child, of the launcher or of a fork server.
    Child { pid: libc::pid_t, parent: Parent },
    /// An external replica's pid, watched until it is gone.
    Watched { pid: libc::pid_t },
}

/// The processes of one run.
pub struct Executor {
    style: Style,
    procs: Vec<Proc>,
    watchdog: Option<Watchdog>,
    zygote: Option<Forker>,
    forkserver: Option<Forker>,
    relay: Option<RelayThread>,
    /// The output pipes of the replicas forked before the relay existed.
    forked_output: Vec<(ReplicaId, OwnedFd, OwnedFd)>,
}

impl Executor {
    /// The fork phase: the watchdog, the zygote (for restarts of `fork` nodes, if this
    /// launcher `restarts` its replicas) and every `fork` replica of this host. Must run
    /// while this process has one thread and no ZeroMQ context.
    pub fn fork_phase(t: &Topology, plan: &Plan, style: Style, restarts: bool) -> Result<Executor, RunError> {
        match single_threaded() {
            Ok(true) => {}
            Ok(false) => return Err(RunError::Setup("refusing to fork: the launcher already has threads".into())),
            Err(e) => return Err(RunError::system("count the launcher's threads")(e)),
        }
        let watchdog = Watchdog::fork(&plan.dir).map_err(RunError::system("start the watchdog"))?;
        let mut exec = Executor {
            style,
            procs: vec![Proc::None; plan.replicas.len()],
            watchdog: Some(watchdog),
            zygote: None,
            forkserver: None,
            relay: None,
            forked_output: Vec::new(),
        };
        let forked_here = |r: ReplicaId| {
            let p = plan.get(r);
            p.starter == Starter::Here && t.nodes[p.node].start == StartMethod::Fork
        };
        // A launcher that restarts its replicas needs a zygote: for a `fork` node that restarts
        // on failure, or for any if a rollback restarts them all (on every host).
        let rollback = t.may_roll_back();
        if restarts && plan.ids().any(|r| forked_here(r) && (rollback || t.nodes[plan.get(r).node].restart.on_failure))
        {
            match Forker::fork_zygote(&exec.style) {
                Ok(z) => {
                    exec.guard(z.pid);
                    exec.zygote = Some(z);
                }
                Err(e) => return Err(exec.abort(format!("failed to fork the zygote: {e}"))),
            }
        }
        for r in plan.ids().filter(|&r| forked_here(r)) {
            let Runner::Builtin(kind) = &t.nodes[plan.get(r).node].runner else { continue };
            let identity = plan.identity(t, r, &plan.control, 0, 0);
            match fork_node(&identity, kind, &t.base_dir) {
                Ok(f) => {
                    exec.guard(f.pid);
                    exec.procs[r.0] = Proc::Child { pid: f.pid, parent: Parent::Launcher };
                    exec.forked_output.push((r, f.stdout, f.stderr));
                }
                Err(e) => return Err(exec.abort(format!("failed to fork node `{}`: {e}", plan.get(r).id))),
            }
        }
        Ok(exec)
    }

    /// After the fork phase: the output relay (showing above `progress`, a terminal's live
    /// view, if any) and, if a replica of this host needs it, the forkserver.
    pub fn setup(
        &mut self,
        t: &Topology,
        plan: &Plan,
        progress: Option<indicatif::MultiProgress>,
    ) -> Result<(), RunError> {
        let relay = RelayThread::start(progress).map_err(RunError::system("start the log relay"))?;
        self.relay = Some(relay);
        for (r, out, err) in std::mem::take(&mut self.forked_output) {
            self.relay_output(plan, r, out, err);
        }
        let forkserved = |r: ReplicaId| {
            let p = plan.get(r);
            p.starter == Starter::Here && t.nodes[p.node].start == StartMethod::Forkserver
        };
        if plan.ids().any(forkserved) {
            let server = Forker::spawn_server(&self.style).map_err(RunError::system("start the forkserver"))?;
            self.guard(server.pid);
            self.forkserver = Some(server);
        }
        // The fork servers' output is their nodes', prefixed already: pass it on as it is.
        let relay = self.relay.as_ref().expect("started above");
        for server in self.zygote.iter_mut().chain(self.forkserver.iter_mut()) {
            if let Some((out, err)) = server.output.take() {
                relay.add(out, Framing::none(), Dest::Stdout);
                relay.add(err, Framing::none(), Dest::Stderr);
            }
        }
        Ok(())
    }

    /// Start replica `r` as `identity` says, by its node's start method: nothing to do for a
    /// first start in the fork phase already.
    pub fn start(&mut self, t: &Topology, plan: &Plan, r: ReplicaId, identity: &Identity) -> Result<(), RunError> {
        if self.procs[r.0] != Proc::None {
            return Ok(());
        }
        let p = plan.get(r);
        let node = &t.nodes[p.node];
        let (pid, parent) = match (&node.runner, node.start) {
            (Runner::Builtin(kind), StartMethod::Fork | StartMethod::Forkserver) => {
                let (forker, parent) = match node.start {
                    StartMethod::Forkserver => (self.forkserver.as_mut(), Parent::Forkserver),
                    _ => (self.zygote.as_mut(), Parent::Zygote),
                };
                let forker = forker.expect("started in the fork phase or setup when a node needs it");
                let pid = forker
                    .fork(identity, kind, &t.base_dir, p.node)
                    .map_err(|e| RunError::Spawn { id: p.id.clone(), cause: format!("the fork server failed: {e}") })?;
                (pid, parent)
            }
            _ => {
                let mut child = spawn(t, p.node, identity)
                    .map_err(|e| RunError::Spawn { id: p.id.clone(), cause: describe_spawn_error(t, p.node, &e) })?;
                let (out, err) = (child.stdout.take(), child.stderr.take());
                if let (Some(out), Some(err)) = (out, err) {
                    self.relay_output(plan, r, out.into(), err.into());
                }
                (child.id() as libc::pid_t, Parent::Launcher)
            }
        };
        self.guard(pid);
        self.procs[r.0] = Proc::Child { pid, parent };
        Ok(())
    }

    /// Kill replica `r`'s process group now (a rollback); its exit is reaped and reported by
    /// [`Executor::exits`] like any other.
    pub fn kill(&mut self, r: ReplicaId) {
        if let Proc::Child { pid, .. } = self.procs[r.0] {
            signal_group(pid as u32, libc::SIGKILL);
        }
    }

    /// Watch external replica `r`'s process `pid` (on this host) until it is gone.
    pub fn watch(&mut self, r: ReplicaId, pid: u32) {
        self.procs[r.0] = Proc::Watched { pid: pid as libc::pid_t };
    }

    /// The fork servers' sockets, to wait on beside the control socket.
    pub fn fds(&self) -> Vec<RawFd> {
        self.zygote.iter().chain(&self.forkserver).map(Forker::fd).collect()
    }

    /// Read what the fork servers reported. Err if one is gone.
    pub fn poll_servers(&mut self) -> Result<(), RunError> {
        for (name, server) in [("zygote", &mut self.zygote), ("forkserver", &mut self.forkserver)] {
            if let Some(s) = server {
                s.poll().map_err(RunError::system(format!("hear from the {name}")))?;
            }
        }
        Ok(())
    }

    /// Every replica whose process ended since last asked, with its raw wait status (0 for a
    /// watched process that is gone: not ours to know how it ended).
    pub fn exits(&mut self) -> Vec<(ReplicaId, i32)> {
        let mut ended = Vec::new();
        for i in 0..self.procs.len() {
            let status = match self.procs[i] {
                Proc::None => continue,
                // Not our child any more (Err) counts as ended: nothing to wait for.
                Proc::Child { pid, parent: Parent::Launcher } => match reap_with_group(Some(pid)) {
                    Ok(ended) => ended.map(|(_, status)| status),
                    Err(_) => Some(0),
                },
                Proc::Child { pid, parent: Parent::Zygote } => self.zygote.as_mut().and_then(|z| z.take_exit(pid)),
                Proc::Child { pid, parent: Parent::Forkserver } => {
                    self.forkserver.as_mut().and_then(|z| z.take_exit(pid))
                }
                Proc::Watched { pid } => (!process_alive(pid)).then_some(0),
            };
            let Some(status) = status else { continue };
            if let (Proc::Child { pid, .. }, Some(w)) = (self.procs[i], &self.watchdog) {
                // Its group is dead (the fork servers kill it too before they report an exit).
                w.forget(pid);
            }
            self.procs[i] = Proc::None;
            ended.push((ReplicaId(i), status));
        }
        ended
    }

    /// Kill every replica's process group (what a command node started goes with it) and
    /// reap every child; ask external replicas still alive to end (after a failed run they
    /// would wait for `bye` forever); then the fork servers, the relay (the last lines) and
    /// the watchdog.
    pub fn kill_and_reap(&mut self) {
        let own: Vec<libc::pid_t> = self
            .procs
            .iter()
            .filter_map(|p| match *p {
                Proc::Child { pid, parent: Parent::Launcher } => Some(pid),
                _ => None,
            })
            .collect();
        for &pid in &own {
            signal_group(pid as u32, libc::SIGKILL);
        }
        for pid in own {
            waitpid(pid, 0);
        }
        for p in &self.procs {
            if let Proc::Watched { pid } = *p {
                if process_alive(pid) {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
            }
        }
        self.procs.fill(Proc::None);
        // Closing its socket tells a fork server to kill what it forked, relay their last
        // lines and exit.
        for server in [self.zygote.take(), self.forkserver.take()].into_iter().flatten() {
            let pid = server.pid;
            drop(server);
            let deadline = Instant::now() + Duration::from_secs(2);
            while waitpid(pid, libc::WNOHANG).is_none() {
                if Instant::now() > deadline {
                    signal_group(pid as u32, libc::SIGKILL);
                    waitpid(pid, 0);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if let Some(relay) = self.relay.take() {
            relay.finish();
        }
        if let Some(w) = self.watchdog.take() {
            w.end();
        }
    }

    /// Kill and reap what the fork phase made so far; the error to return.
    fn abort(&mut self, message: String) -> RunError {
        self.kill_and_reap();
        RunError::Setup(message)
    }

    fn guard(&self, pid: libc::pid_t) {
        if let Some(w) = &self.watchdog {
            w.guard(pid);
        }
    }

    fn relay_output(&self, plan: &Plan, r: ReplicaId, stdout: OwnedFd, stderr: OwnedFd) {
        let p = plan.get(r);
        if let Some(relay) = &self.relay {
            relay.add(stdout, self.style.framing(&p.id, p.node, Dest::Stdout), Dest::Stdout);
            relay.add(stderr, self.style.framing(&p.id, p.node, Dest::Stderr), Dest::Stderr);
        }
    }
}

/// Whether process `pid` exists (and is not a zombie).
pub fn process_alive(pid: libc::pid_t) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Wait for `pid` (`flags`: 0 or WNOHANG); its raw wait status once it has ended.
pub fn waitpid(pid: libc::pid_t, flags: i32) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes into a local.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r == pid {
            return Some(status);
        }
        if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        // Not ended yet (0), or not ours any more (-1: treat as ended, nothing to wait for).
        return (r < 0).then_some(0);
    }
}
