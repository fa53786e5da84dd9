//! The decisions of a host's launcher that joins another's coordinator (`--host`, a host
//! other than the first): wait for `welcome`, report every exit of its own replicas (and of
//! the external ones it watches) until the coordinator takes each, kill and start its
//! replicas again when a rollback asks, pass a signal on, and end with the coordinator's
//! `end`, or when the coordinator falls silent. Like
//! [`super::machine`], it holds no socket and no process: `super::joiner` drives it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::link::{Link, BEAT, HOST_TIMEOUT};
use super::notice::Notice;
use super::outcome::RunError;
use super::plan::{Plan, ReplicaId};
use crate::topology::Topology;

/// Something that happened on a joining host.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberEvent {
    /// A message from the coordinator.
    Link(Link),
    /// A frame from the coordinator that does not decode, and why.
    Invalid(String),
    /// One of this host's replicas ended, with this raw wait status.
    Exited(ReplicaId, i32),
    /// An external replica this host watches (by `name.replica`) is gone.
    Gone(String),
    /// SIGINT or SIGTERM.
    Signal(i32),
    /// Time passed.
    Tick,
}

/// What a joining host does.
#[derive(Debug)]
pub enum MemberAction {
    /// Send the coordinator a message.
    Send(Link),
    /// Ask an external replica's process to end (`name.replica`, its pid), if that pid is
    /// still the replica's (it came over the network).
    Terminate(String, u32),
    /// Start attempt `attempt` of replica `0` (a rollback), after `restart` restarts
    /// mid-stream, binding its input at `bind` and its pub ports at `pub_ports`.
    Start {
        /// The replica.
        replica: ReplicaId,
        /// `PROCNET_RESTART`.
        restart: u32,
        /// `PROCNET_ATTEMPT`.
        attempt: u32,
        /// Where it binds its input.
        bind: Option<String>,
        /// Where it binds its pub ports.
        pub_ports: BTreeMap<String, String>,
    },
    /// Kill replica `0`'s process now (a rollback).
    Kill(ReplicaId),
    /// Say a line on stderr.
    Say(Notice),
    /// The run is over for this host: exit with the run's status, or fail.
    Finish(Box<Result<u8, RunError>>),
}

/// The state of a joining host's launcher.
pub struct Member<'t> {
    t: &'t Topology,
    plan: &'t Plan,
    host: usize,
    run: u32,
    /// This launcher's process id, which its `join` carries.
    pid: u32,
    startup_timeout: Duration,
    /// Where it reaches the coordinator, for messages.
    endpoint: String,
    started: Instant,
    welcomed: bool,
    last_heard: Instant,
    last_beat: Option<Instant>,
    interrupted: bool,
    /// External replicas on this host the coordinator asked to watch: id -> pid.
    watched: BTreeMap<String, u32>,
    gone: BTreeSet<String>,
    /// What this host reported, repeated with every heartbeat (the coordinator takes each
    /// once): a message lost to a reconnection must not hang the run.
    reported: Vec<Link>,
    /// The attempt of each replica's current process (by plan index): the coordinator's
    /// `start` and `kill` are repeated with every heartbeat, and each is done once.
    attempts: Vec<u32>,
    actions: Vec<MemberAction>,
    over: bool,
}

impl<'t> Member<'t> {
    /// Host `host`'s launcher (process `pid`) in run `run`, reaching the coordinator at
    /// `endpoint`, from `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        t: &'t Topology,
        plan: &'t Plan,
        host: usize,
        run: u32,
        pid: u32,
        startup_timeout: Duration,
        endpoint: String,
        now: Instant,
    ) -> Member<'t> {
        Member {
            t,
            plan,
            host,
            run,
            pid,
            startup_timeout,
            endpoint,
            started: now,
            welcomed: false,
            last_heard: now,
            last_beat: None,
            interrupted: false,
            watched: BTreeMap::new(),
            gone: BTreeSet::new(),
            reported: Vec::new(),
            attempts: vec![0; plan.replicas.len()],
            actions: Vec::new(),
            over: false,
        }
    }

    /// The external replicas to watch (id, pid).
    pub fn watched(&self) -> impl Iterator<Item = (&String, u32)> {
        self.watched.iter().map(|(id, &pid)| (id, pid))
    }

    /// Handle `event`, which happened at `now`; what to do.
    #[must_use]
    pub fn handle(&mut self, now: Instant, event: MemberEvent) -> Vec<MemberAction> {
        if self.over {
            return Vec::new();
        }
        let result = match event {
            MemberEvent::Link(link) => self.on_link(now, link),
            MemberEvent::Invalid(e) => Err(self.lost(format!("the coordinator sent an invalid message: {e}"))),
            MemberEvent::Exited(r, status) => {
                let (id, attempt) = (self.plan.get(r).id.clone(), self.attempts[r.0]);
                self.report(Link::Exited { id, status, attempt });
                Ok(None)
            }
            MemberEvent::Gone(id) => {
                self.watched.remove(&id);
                self.gone.insert(id.clone());
                self.report(Link::Exited { id, status: 0, attempt: 0 });
                Ok(None)
            }
            MemberEvent::Signal(signal) => self.on_signal(signal),
            MemberEvent::Tick => self.on_tick(now),
        };
        match result {
            Ok(None) => {}
            Ok(Some(code)) => self.finish(Ok(code)),
            Err(e) => self.finish(Err(e)),
        }
        std::mem::take(&mut self.actions)
    }

    fn finish(&mut self, result: Result<u8, RunError>) {
        self.over = true;
        self.actions.push(MemberAction::Finish(Box::new(result)));
    }

    fn say(&mut self, notice: Notice) {
        self.actions.push(MemberAction::Say(notice));
    }

    /// Send `msg` now and with every heartbeat after.
    fn report(&mut self, msg: Link) {
        self.actions.push(MemberAction::Send(msg.clone()));
        self.reported.push(msg);
    }

    /// Replica `id`, if this launcher starts it.
    fn mine(&self, id: &str) -> Option<ReplicaId> {
        self.plan.find(id).filter(|&r| self.plan.get(r).starter == super::plan::Starter::Here)
    }

    fn coordinator(&self) -> &str {
        &self.t.hosts[Topology::COORDINATOR].name
    }

    /// The error for losing the coordinator.
    fn lost(&self, cause: String) -> RunError {
        RunError::Host { host: self.coordinator().to_string(), cause }
    }

    fn on_signal(&mut self, signal: i32) -> Result<Option<u8>, RunError> {
        if self.interrupted || !self.welcomed {
            return Err(RunError::Interrupted { signal, drained: false });
        }
        // The coordinator stops the whole run gracefully and ends this host with it.
        self.interrupted = true;
        let text = format!(
            "{}: asking the coordinator (host `{}`) to stop the run (send it again to kill this host's nodes at once)",
            super::status::signal_name(signal),
            self.coordinator()
        );
        self.say(Notice::warn("signal", text));
        self.report(Link::Interrupt { signal });
        Ok(None)
    }

    fn on_link(&mut self, now: Instant, link: Link) -> Result<Option<u8>, RunError> {
        self.last_heard = now;
        match link {
            // Once: every repeated `join` that got through is answered.
            Link::Welcome { run } if self.welcomed || run != self.run => {}
            Link::Welcome { .. } => {
                self.welcomed = true;
                let (me, coordinator) = (&self.t.hosts[self.host].name, self.coordinator());
                let text =
                    format!("host `{me}` joined the run coordinated by host `{coordinator}` ({})", self.endpoint);
                let me = me.clone();
                self.say(Notice::info("host-joined", text).on_host(me));
            }
            Link::Watch { id, pid } if !self.gone.contains(&id) => {
                self.watched.insert(id, pid);
            }
            Link::Start { id, restart, attempt, bind, pub_ports } => {
                if let Some(r) = self.mine(&id).filter(|r| attempt > self.attempts[r.0]) {
                    // One line per rollback, at its first start on this host.
                    if self.attempts.iter().all(|&a| a < attempt) {
                        let coordinator = self.coordinator();
                        let text = format!(
                            "host `{coordinator}` rolled the run back: starting this host's nodes again (attempt \
                             {attempt})"
                        );
                        self.say(Notice::warn("rollback", text));
                    }
                    self.attempts[r.0] = attempt;
                    self.actions.push(MemberAction::Start { replica: r, restart, attempt, bind, pub_ports });
                }
            }
            Link::Kill { id, attempt } => {
                if let Some(r) = self.mine(&id).filter(|r| attempt == self.attempts[r.0]) {
                    self.actions.push(MemberAction::Kill(r));
                }
            }
            // The end of an earlier run (`--repeat`), resent while this host moved on.
            Link::End { run, .. } if run != self.run => {}
            Link::End { code, error, .. } => {
                // External processes are not ours to kill, but after a failed run they would
                // wait for `bye` forever: ask them to end.
                if code != crate::exit_codes::OK {
                    let watched: Vec<_> = self.watched.iter().map(|(id, &pid)| (id.clone(), pid)).collect();
                    for (id, pid) in watched {
                        self.actions.push(MemberAction::Terminate(id, pid));
                    }
                }
                self.actions.push(MemberAction::Send(Link::Ended));
                if let Some(error) = error {
                    let text = format!("the run failed (reported by host `{}`): {error}", self.coordinator());
                    self.say(Notice::error("run-failed", text));
                }
                return Ok(Some(code));
            }
            _ => {}
        }
        Ok(None)
    }

    fn on_tick(&mut self, now: Instant) -> Result<Option<u8>, RunError> {
        if self.last_beat.is_none_or(|at| now.duration_since(at) >= BEAT) {
            self.last_beat = Some(now);
            // Until welcomed, `join` again: the first may have reached the socket of an
            // earlier run (`--repeat`) just as it closed.
            let msg = if self.welcomed { Link::Beat } else { join_link(self.t, self.host, self.run, self.pid) };
            self.actions.push(MemberAction::Send(msg));
            for msg in &self.reported {
                self.actions.push(MemberAction::Send(msg.clone()));
            }
        }
        if !self.welcomed && now.duration_since(self.started) > self.startup_timeout {
            return Err(coordinator_silent(self.t, self.startup_timeout, &self.endpoint));
        }
        if self.welcomed && now.duration_since(self.last_heard) > HOST_TIMEOUT {
            let address = self.t.hosts[Topology::COORDINATOR].address;
            return Err(self.lost(format!(
                "the coordinator at {address} stopped answering ({} s without a heartbeat): its host or launcher \
                 died, or the network to it failed; this host's nodes are killed",
                HOST_TIMEOUT.as_secs()
            )));
        }
        Ok(None)
    }
}

/// Host `host`'s `join` for run `run`, from the launcher of process `pid`.
pub fn join_link(t: &Topology, host: usize, run: u32, pid: u32) -> Link {
    Link::Join {
        host: t.hosts[host].name.clone(),
        topology: t.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid,
        run,
    }
}

/// The coordinator never answered a host's `join` at `endpoint` within `timeout`.
pub fn coordinator_silent(t: &Topology, timeout: Duration, endpoint: &str) -> RunError {
    let coordinator = &t.hosts[Topology::COORDINATOR];
    RunError::Host {
        host: coordinator.name.clone(),
        cause: format!(
            "the coordinator did not answer within {} s at {endpoint} (run `procnet run {} --host {}` on the machine \
             at {})",
            timeout.as_secs_f64(),
            t.path.display(),
            coordinator.name,
            coordinator.address
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::options::Placement;

    use crate::launch::testing::cluster;

    /// Host b's launcher in a run of `t` (planned as `plan`), as of `now`.
    fn host_b<'t>(t: &'t Topology, plan: &'t Plan, now: Instant) -> Member<'t> {
        Member::new(t, plan, 1, 1, 42, Duration::from_secs(30), "tcp://127.0.0.1:7360".into(), now)
    }

    /// The plan of host b's launcher.
    fn plan_of_b(t: &Topology) -> Plan {
        Plan::new(
            t,
            Placement::Host { host: 1, control_port: 7360 },
            std::path::Path::new("/run/x"),
            String::new(),
            None,
        )
    }

    fn sent(actions: &[MemberAction]) -> Vec<&Link> {
        actions.iter().filter_map(|a| if let MemberAction::Send(l) = a { Some(l) } else { None }).collect()
    }

    fn finish(actions: Vec<MemberAction>) -> Option<Result<u8, String>> {
        actions.into_iter().find_map(|a| match a {
            MemberAction::Finish(r) => Some(r.map_err(|e| e.to_string())),
            _ => None,
        })
    }

    #[test]
    fn a_host_joins_reports_exits_until_taken_and_ends_with_the_coordinator() {
        let t = cluster();
        let plan = plan_of_b(&t);
        let now = Instant::now();
        let mut m = host_b(&t, &plan, now);
        let first = m.handle(now, MemberEvent::Tick);
        assert!(matches!(sent(&first)[..], [Link::Join { pid: 42, run: 1, .. }]), "{first:?}");
        let welcome = m.handle(now, MemberEvent::Link(Link::Welcome { run: 1 }));
        assert!(
            matches!(&welcome[..], [MemberAction::Say(s)] if s.message.contains("host `b` joined the run coordinated by host `a`"))
        );
        let src = plan.find("src.0").expect("src.0");
        let exited = m.handle(now, MemberEvent::Exited(src, 0));
        assert_eq!(sent(&exited), [&Link::Exited { id: "src.0".into(), status: 0, attempt: 0 }]);
        // Repeated with every heartbeat: a message lost to a reconnection cannot hang the run.
        let beat = m.handle(now + BEAT, MemberEvent::Tick);
        assert_eq!(sent(&beat), [&Link::Beat, &Link::Exited { id: "src.0".into(), status: 0, attempt: 0 }]);
        let end = m.handle(now + BEAT, MemberEvent::Link(Link::End { code: 0, error: None, run: 1 }));
        assert_eq!(sent(&end), [&Link::Ended]);
        assert_eq!(finish(end), Some(Ok(0)));
    }

    #[test]
    fn a_rollbacks_kill_and_start_are_done_once_each_and_exits_name_their_attempt() {
        let t = cluster();
        let plan = plan_of_b(&t);
        let now = Instant::now();
        let mut m = host_b(&t, &plan, now);
        let _ = m.handle(now, MemberEvent::Link(Link::Welcome { run: 1 }));
        let src = plan.find("src.0").expect("src.0");
        let kill = |attempt| MemberEvent::Link(Link::Kill { id: "src.0".into(), attempt });
        let kills = |actions: &[MemberAction]| actions.iter().filter(|a| matches!(a, MemberAction::Kill(_))).count();
        assert_eq!(kills(&m.handle(now, kill(0))), 1);
        // Another host's replica is not this one's to kill.
        assert_eq!(kills(&m.handle(now, MemberEvent::Link(Link::Kill { id: "count.0".into(), attempt: 0 }))), 0);
        let _ = m.handle(now, MemberEvent::Exited(src, 9));
        let start = |attempt| {
            MemberEvent::Link(Link::Start {
                id: "src.0".into(),
                restart: 0,
                attempt,
                bind: None,
                pub_ports: BTreeMap::new(),
            })
        };
        let started = m.handle(now, start(1));
        assert!(
            matches!(&started[..], [MemberAction::Say(s), MemberAction::Start { attempt: 1, .. }]
            if s.message.contains("rolled the run back") && s.event == "rollback"),
            "{started:?}"
        );
        // Repeated with heartbeats: started once; the old attempt's kill is stale.
        assert!(m.handle(now, start(1)).is_empty());
        assert_eq!(kills(&m.handle(now, kill(0))), 0);
        let exited = m.handle(now, MemberEvent::Exited(src, 9));
        assert_eq!(sent(&exited), [&Link::Exited { id: "src.0".into(), status: 9, attempt: 1 }]);
    }

    #[test]
    fn a_silent_coordinator_fails_the_host_naming_it() {
        let t = cluster();
        let plan = plan_of_b(&t);
        let now = Instant::now();
        let mut m = host_b(&t, &plan, now);
        let _ = m.handle(now, MemberEvent::Link(Link::Welcome { run: 1 }));
        assert_eq!(finish(m.handle(now + HOST_TIMEOUT, MemberEvent::Tick)), None);
        let why =
            finish(m.handle(now + HOST_TIMEOUT + BEAT, MemberEvent::Tick)).expect("the end").expect_err("a failure");
        assert!(why.starts_with("host `a`: the coordinator at 127.0.0.1 stopped answering"), "{why}");
    }

    #[test]
    fn a_signal_is_passed_on_once_and_a_second_kills() {
        let t = cluster();
        let plan = plan_of_b(&t);
        let now = Instant::now();
        let mut m = host_b(&t, &plan, now);
        let _ = m.handle(now, MemberEvent::Link(Link::Welcome { run: 1 }));
        let first = m.handle(now, MemberEvent::Signal(2));
        assert_eq!(sent(&first), [&Link::Interrupt { signal: 2 }]);
        let second = finish(m.handle(now, MemberEvent::Signal(2))).expect("the end");
        assert_eq!(second.expect_err("killed"), "interrupted by SIGINT: nodes killed");
    }
}
