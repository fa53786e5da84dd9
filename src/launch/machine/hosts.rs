//! The other hosts' launchers, as the coordinator sees them (`super::super::link`): who
//! joined, who is still heard from, and the three ways a host fails the run: its launcher
//! never joins, its nodes come without it, or it falls silent.

use std::time::{Duration, Instant};

use super::Action;
use crate::launch::link::{Link, BEAT, HOST_TIMEOUT};
use crate::launch::notice::Notice;
use crate::launch::outcome::RunError;
use crate::launch::plan::HostId;
use crate::topology::Topology;

/// The coordinator's view of another host's launcher.
#[derive(Debug, Clone)]
struct Member {
    host: HostId,
    /// When it joined.
    joined: Option<Instant>,
    /// Its launcher's process id, once joined.
    pid: Option<u32>,
    /// When the first message from one of its nodes arrived: its launcher started them, so
    /// it should have joined by then.
    nodes_seen: Option<Instant>,
    /// Given up on (silent, or left): not waited for at the end of the run.
    lost: bool,
    /// It passed a signal on already.
    interrupted: bool,
    last_heard: Instant,
}

/// What a message from a host means for the rest of the run.
#[derive(Debug)]
pub enum Heard {
    /// Nothing more than the host's own state.
    Nothing,
    /// One of its replicas ended (reported again with every heartbeat).
    Exited {
        /// `name.replica`.
        id: String,
        /// The raw wait status.
        status: i32,
        /// Which of the replica's processes.
        attempt: u32,
    },
    /// It got a signal, first time: the run stops as on a local one.
    Signal(i32),
}

/// Every other host's launcher of a run, and when they were last sent a heartbeat.
#[derive(Debug, Clone, Default)]
pub struct Members {
    list: Vec<Member>,
    last_beat: Option<Instant>,
    run: u32,
}

impl Members {
    /// The launchers of `hosts`, none joined yet, for run `run` of a `--repeat`.
    pub fn new(hosts: impl IntoIterator<Item = HostId>, run: u32, now: Instant) -> Members {
        let list = hosts
            .into_iter()
            .map(|host| Member {
                host,
                joined: None,
                pid: None,
                nodes_seen: None,
                lost: false,
                interrupted: false,
                last_heard: now,
            })
            .collect();
        Members { list, last_beat: Some(now), run }
    }

    /// Whether host `h` has a launcher of this run.
    pub fn has(&self, h: HostId) -> bool {
        self.list.iter().any(|m| m.host == h)
    }

    /// The hosts whose launchers joined and were not given up on: to be told the run's end.
    pub fn to_end(&self) -> Vec<HostId> {
        self.list.iter().filter(|m| !m.lost).map(|m| m.host).collect()
    }

    /// Whether host `h`'s launcher joined.
    pub fn joined(&self, h: HostId) -> bool {
        self.list.iter().any(|m| m.host == h && m.joined.is_some())
    }

    /// A node of host `h` spoke, at `now`.
    pub fn nodes_seen(&mut self, h: HostId, now: Instant) {
        if let Some(m) = self.list.iter_mut().find(|m| m.host == h) {
            m.nodes_seen.get_or_insert(now);
        }
    }

    fn member(&mut self, h: HostId) -> Option<&mut Member> {
        self.list.iter_mut().find(|m| m.host == h)
    }

    /// The error for host `h`'s launcher sending what does not decode.
    pub fn invalid(&self, t: &Topology, h: HostId, error: &str) -> RunError {
        RunError::Host {
            host: t.hosts[h.0].name.clone(),
            cause: format!("its launcher sent an invalid message: {error}"),
        }
    }

    /// A message from host `h`'s launcher, at `now`; answers go to `out`.
    pub fn on_link(
        &mut self,
        t: &Topology,
        now: Instant,
        h: HostId,
        msg: Link,
        out: &mut Vec<Action>,
    ) -> Result<Heard, RunError> {
        let run = self.run;
        let name = t.hosts[h.0].name.clone();
        let fail = |cause: String| RunError::Host { host: name.clone(), cause };
        let Some(m) = self.member(h) else { return Ok(Heard::Nothing) };
        m.last_heard = now;
        match msg {
            // A late one for an earlier run, or an early one for the next: not this run's.
            Link::Join { run: theirs, .. } if theirs != run => {}
            Link::Join { topology, version, pid, .. } => {
                match m.pid {
                    // The same launcher, repeating itself until it hears `welcome`.
                    Some(known) if known == pid => {
                        out.push(Action::Link(h, Link::Welcome { run }));
                        return Ok(Heard::Nothing);
                    }
                    Some(_) => {
                        return Err(fail(
                            "a new launcher joined for it mid-run: was it restarted? A run cannot take a host back"
                                .into(),
                        ))
                    }
                    None => {}
                }
                if topology != t.name || version != env!("CARGO_PKG_VERSION") {
                    return Err(fail(format!(
                        "its launcher runs topology `{topology}` with procnet {version}; this run is `{}` with procnet {}",
                        t.name,
                        env!("CARGO_PKG_VERSION")
                    )));
                }
                m.joined = Some(now);
                m.pid = Some(pid);
                out.push(Action::Link(h, Link::Welcome { run }));
                let text = format!("host `{name}` joined the run (its launcher's pid is {pid})");
                out.push(Action::Say(Notice::info("host-joined", text).on_host(name.clone()).json_only()));
            }
            Link::Exited { id, status, attempt } => return Ok(Heard::Exited { id, status, attempt }),
            // Repeated with every heartbeat: one signal per host.
            Link::Interrupt { signal } if !m.interrupted => {
                m.interrupted = true;
                return Ok(Heard::Signal(signal));
            }
            Link::Interrupt { .. } => {}
            Link::Left { error } => {
                m.lost = true;
                return Err(fail(format!("its launcher stopped: {error}")));
            }
            Link::Beat
            | Link::Welcome { .. }
            | Link::End { .. }
            | Link::Ended
            | Link::Watch { .. }
            | Link::Start { .. }
            | Link::Kill { .. } => {}
        }
        Ok(Heard::Nothing)
    }

    /// Heartbeats every [`BEAT`], each followed by the messages in `repeated` (the pids of
    /// external replicas to watch, a rollback's kills and starts), into `out`; and the two
    /// ways a host fails the run: its launcher never joined, or it stopped answering. The run
    /// started at `started`.
    pub fn tend(
        &mut self,
        t: &Topology,
        now: Instant,
        started: Instant,
        startup_timeout: Duration,
        repeated: &[(HostId, Link)],
        out: &mut Vec<Action>,
    ) -> Result<(), RunError> {
        if self.list.is_empty() {
            return Ok(());
        }
        if self.last_beat.is_none_or(|at| now.duration_since(at) >= BEAT) {
            self.last_beat = Some(now);
            for m in self.list.iter().filter(|m| m.joined.is_some()) {
                out.push(Action::Link(m.host, Link::Beat));
            }
            for (h, msg) in repeated {
                out.push(Action::Link(*h, msg.clone()));
            }
        }
        for m in &mut self.list {
            let h = &t.hosts[m.host.0];
            let fail = |m: &mut Member, cause: String| {
                m.lost = true;
                Err(RunError::Host { host: h.name.clone(), cause })
            };
            // Its nodes are here, but not the launcher that started them: it died since.
            if m.joined.is_none() && m.nodes_seen.is_some_and(|at| now.duration_since(at) > HOST_TIMEOUT) {
                let cause = format!(
                    "its nodes joined the run, but its launcher at {} did not within {} s: it died, or the network to \
                     it failed",
                    h.address,
                    HOST_TIMEOUT.as_secs()
                );
                return fail(m, cause);
            }
            if m.joined.is_none() && now.duration_since(started) >= startup_timeout {
                let cause = format!(
                    "its launcher did not join within {} s (run `procnet run {} --host {}` on the machine at {})",
                    startup_timeout.as_secs_f64(),
                    t.path.display(),
                    h.name,
                    h.address
                );
                return fail(m, cause);
            }
            if m.joined.is_some() && now.duration_since(m.last_heard) > HOST_TIMEOUT {
                let cause = format!(
                    "its launcher at {} stopped answering ({} s without a heartbeat): the host or its launcher died, \
                     or the network to it failed",
                    h.address,
                    HOST_TIMEOUT.as_secs()
                );
                return fail(m, cause);
            }
        }
        Ok(())
    }
}
