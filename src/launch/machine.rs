//! The run's decisions, and nothing else: the state machine of a coordinating launcher.
//!
//! Given the topology, the plan and events (a message from a replica, a replica's exit, a
//! signal, a message from another host's launcher, the passing of time), [`Run::handle`]
//! returns what to do ([`Action`]): tell a replica something, start or restart one, watch a
//! pid, send another host a message, say a line, or finish the run. It holds no socket and
//! no process and calls nothing of the operating system, so every decision is tested without
//! starting anything (`machine/tests.rs`); the drivers (`control`, `executor`, `coordinator`)
//! turn the world into events and apply the actions.
//!
//! What it decides, in the order of a run: the start barrier (`wire` once every replica has
//! said `hello`, `start` once every one is `ready`); `stop` to the services once the others
//! are done, and to everyone on a first signal; `bye` to everyone once all are done and every
//! edge balances (`super::conservation`); what an exit means (the normal end, a failure, or a
//! restart with its notices `restarted` and `resend`); the time limits (start-up, grace,
//! other hosts' heartbeats); and the outcome.

mod exits;
mod hosts;
mod messages;
mod replica;
mod rollback;
#[cfg(test)]
mod tests;
mod wiring;

use std::time::{Duration, Instant};

pub use hosts::Members;
pub use replica::{Life, Progress, Replica};

use super::link::Link;
use super::notice::Notice;
use super::outcome::{Outcome, ReplicaReport, RunError};
use super::plan::{HostId, Plan, ReplicaId, Starter};
use crate::topology::Topology;
use crate::wire::{Message, Stats};

/// Something that happened, for [`Run::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A control message from a replica; with the attempt its routing id names, if it does
    /// (`name.replica#n`).
    Message(ReplicaId, Option<u32>, Message),
    /// A frame from a replica that is not a valid control message, and why.
    Invalid(ReplicaId, String),
    /// A replica's process ended, with this raw wait status (for a process that is not ours,
    /// 0 once it is gone).
    Exited(ReplicaId, i32),
    /// SIGINT or SIGTERM.
    Signal(i32),
    /// A message from another host's launcher.
    Link(HostId, Link),
    /// A frame from another host's launcher that does not decode, and why.
    InvalidLink(HostId, String),
    /// Time passed: look at the clocks.
    Tick,
}

/// What to do, from [`Run::handle`].
#[derive(Debug)]
pub enum Action {
    /// Start replica `0` (again, after a restart), telling it `restart` in `PROCNET_RESTART`
    /// and its attempt in `PROCNET_ATTEMPT`.
    Start(ReplicaId, u32, u32),
    /// Kill replica `0`'s process now, to roll the run back; its exit follows as an event.
    Kill(ReplicaId),
    /// Send a message to a replica.
    Tell(ReplicaId, Message),
    /// Watch a pid: an external replica on this host said `hello` with it; report its end.
    Watch(ReplicaId, u32),
    /// Send a message to another host's launcher.
    Link(HostId, Link),
    /// Say a line on stderr, as the launcher's.
    Say(Notice),
    /// The run is over, with this result.
    Finish(Box<Result<Outcome, RunError>>),
}

/// The time limits of a run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Until every replica is ready; also for a replica restarted mid-stream.
    pub startup_timeout: Duration,
    /// After a first signal, until the nodes are killed.
    pub grace: Duration,
}

/// How long an exited replica's `failed` may take to arrive after its exit is seen.
pub const LAST_WORDS: Duration = Duration::from_millis(200);

/// The state of one run, as its coordinating launcher sees it.
pub struct Run<'t> {
    t: &'t Topology,
    plan: &'t Plan,
    limits: Limits,
    replicas: Vec<Replica>,
    started: Instant,
    /// When every replica was first ready, since the start.
    ready_at: Option<Duration>,
    /// Whether the replicas were sent their `wire`.
    wired: bool,
    services_stopped: bool,
    /// After a first signal: which one, and when the grace period ends.
    stopping: Option<(i32, Instant)>,
    /// Replicas that died mid-stream and were restarted, one line each.
    incomplete: Vec<(String, String)>,
    /// Edges that delivered fewer records than were sent, explained by invalid frames.
    unreceived: Vec<String>,
    members: Members,
    /// Why a failure mid-stream cannot be repaired by rolling the run back, if it cannot
    /// (`delivery = "at-most-once"`, a source that cannot be read again, ...).
    no_rollback: Option<String>,
    /// How many times the run was rolled back.
    rollbacks: u32,
    /// Whether a rollback is under way: its replicas are exiting or starting again.
    rolling_back: bool,
    /// Since a failure that rolled the run back (when its exit was seen, into the run), until
    /// every replica of the data path is started again.
    recovering: Option<Duration>,
    /// How long each recovery took: from the failed replica's exit to every replica of the
    /// data path started again.
    recoveries: Vec<Duration>,
    /// When the replicas of a rollback start again, once every one of them has exited.
    resume_at: Instant,
    /// When the event being handled happened.
    now: Instant,
    actions: Vec<Action>,
    over: bool,
}

impl<'t> Run<'t> {
    /// A run of `t` as `plan` says, starting at `now`; `members` are the other hosts'
    /// launchers it coordinates (none on one host), `run` which run of a `--repeat` it is.
    pub fn new(t: &'t Topology, plan: &'t Plan, limits: Limits, members: Members, now: Instant) -> Run<'t> {
        Run {
            t,
            plan,
            limits,
            replicas: plan.replicas.iter().map(Replica::new).collect(),
            started: now,
            ready_at: None,
            wired: false,
            services_stopped: false,
            stopping: None,
            incomplete: Vec::new(),
            unreceived: Vec::new(),
            members,
            no_rollback: rollback::blocker(t, plan),
            rollbacks: 0,
            rolling_back: false,
            recovering: None,
            recoveries: Vec::new(),
            resume_at: now,
            now,
            actions: Vec::new(),
            over: false,
        }
    }

    /// The first actions: start every replica this launcher starts (another host's launcher
    /// starts its own first processes unasked).
    #[must_use]
    pub fn begin(&mut self, now: Instant) -> Vec<Action> {
        self.now = now;
        for r in self.plan.ids() {
            let replica = self.replica_mut(r);
            if matches!(replica.starter, Starter::Host(_)) {
                replica.life = Life::Running { since: now };
                replica.starts = 1;
            } else if replica.own() {
                self.start(r, now);
            }
        }
        std::mem::take(&mut self.actions)
    }

    /// Handle `event`, which happened at `now`; what to do about it.
    #[must_use]
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        if self.over {
            return Vec::new();
        }
        self.now = now;
        let result = match event {
            Event::Message(r, attempt, msg) => self.on_message(now, r, attempt, msg),
            Event::Invalid(r, error) => self.on_invalid(r, error),
            Event::Exited(r, status) => self.on_exit(now, r, status),
            Event::Signal(signal) => self.on_signal(now, signal),
            Event::Link(h, link) => self.on_link(now, h, link),
            Event::InvalidLink(h, error) => Err(self.members.invalid(self.t, h, &error)),
            Event::Tick => self.on_tick(now),
        };
        match result {
            Err(e) => self.finish(Err(e)),
            Ok(()) if self.replicas.iter().all(Replica::exited) => {
                let result = match self.stopping {
                    // Every node finished, but the run was cut short: not a complete result.
                    Some((signal, _)) => Err(RunError::Interrupted { signal, drained: true }),
                    None => Ok(self.outcome(now)),
                };
                self.finish(result);
            }
            Ok(()) => {}
        }
        std::mem::take(&mut self.actions)
    }

    /// The latest counters of node `node`'s replicas, summed.
    pub fn latest(&self, node: crate::topology::NodeId) -> Stats {
        sum_stats(self.replicas.iter().filter(|r| r.node == node).map(|r| &r.latest))
    }

    /// Every replica, in the plan's order (for the metrics).
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// How many times the run rolled back so far.
    pub fn rollbacks(&self) -> u32 {
        self.rollbacks
    }

    /// The other hosts' launchers.
    pub fn members(&self) -> &Members {
        &self.members
    }

    /// The routing id of replica `r`'s current process, to send it a message.
    pub fn address(&self, r: ReplicaId) -> String {
        self.replica(r).address()
    }

    /// Where replica `r` binds its input and its pub ports: as planned, then where its first
    /// process bound them (a port the OS chose), so that a process started again binds there
    /// too and the peers that stayed reconnect to it.
    pub fn binds(&self, r: ReplicaId) -> (Option<String>, std::collections::BTreeMap<String, String>) {
        let replica = self.replica(r);
        (replica.bind.clone(), replica.pub_ports.clone())
    }

    /// Say that a failure mid-stream cannot be repaired by a rollback, and why (what the
    /// state machine cannot know: a source's file is a FIFO, say); the first reason stays.
    pub fn cannot_roll_back(&mut self, why: String) {
        self.no_rollback.get_or_insert(why);
    }

    /// Whether every replica has been told `bye` (the end is near: poll quickly).
    pub fn all_released(&self) -> bool {
        self.replicas.iter().all(Replica::released)
    }

    fn replica(&self, r: ReplicaId) -> &Replica {
        &self.replicas[r.0]
    }

    fn replica_mut(&mut self, r: ReplicaId) -> &mut Replica {
        &mut self.replicas[r.0]
    }

    fn tell(&mut self, r: ReplicaId, msg: Message) {
        self.actions.push(Action::Tell(r, msg));
    }

    fn say(&mut self, notice: Notice) {
        self.actions.push(Action::Say(notice));
    }

    fn finish(&mut self, result: Result<Outcome, RunError>) {
        self.over = true;
        self.actions.push(Action::Finish(Box::new(result)));
    }

    /// Start replica `r` now: here, or by asking its host's launcher.
    fn start(&mut self, r: ReplicaId, now: Instant) {
        let replica = self.replica_mut(r);
        replica.life = Life::Running { since: now };
        replica.progress = Progress::Spawned;
        replica.starts += 1;
        let (restart, attempt) = (replica.midstream_restarts, replica.attempt());
        match replica.starter {
            Starter::Host(h) => {
                let msg = self.start_link(r);
                debug_assert!(
                    matches!(msg, Link::Start { restart: r, attempt: a, .. } if r == restart && a == attempt)
                );
                self.actions.push(Action::Link(h, msg));
            }
            _ => self.actions.push(Action::Start(r, restart, attempt)),
        }
    }

    /// The `start` that asks replica `r`'s host to start its current attempt.
    fn start_link(&self, r: ReplicaId) -> Link {
        let replica = self.replica(r);
        let (bind, pub_ports) = self.binds(r);
        Link::Start {
            id: replica.id.clone(),
            restart: replica.midstream_restarts,
            attempt: replica.attempt(),
            bind,
            pub_ports,
        }
    }

    fn on_signal(&mut self, now: Instant, signal: i32) -> Result<(), RunError> {
        if self.stopping.is_some() || self.ready_at.is_none() {
            // A second signal, or one before the network started: stop at once.
            return Err(RunError::Interrupted { signal, drained: false });
        }
        // The first: ask every node to stop. Sources end their streams, the rest drains,
        // sinks and tallies flush; nodes that do not finish in time are killed.
        self.stopping = Some((signal, now + self.limits.grace));
        self.say(Notice::warn(
            "signal",
            format!(
                "{}: stopping gracefully within {} s (send it again to kill at once)",
                super::status::signal_name(signal),
                self.limits.grace.as_secs_f64()
            ),
        ));
        for r in self.plan.ids() {
            if self.replica(r).streaming() {
                self.tell(r, Message::Stop);
            }
        }
        Ok(())
    }

    fn on_tick(&mut self, now: Instant) -> Result<(), RunError> {
        let members = std::mem::take(&mut self.members);
        let tended = self.tend_members(members, now);
        tended?;
        if let Some((signal, deadline)) = self.stopping {
            if now > deadline {
                return Err(RunError::Interrupted { signal, drained: false });
            }
        }
        if self.ready_at.is_none() && now.duration_since(self.started) > self.limits.startup_timeout {
            let waiting = self.replicas.iter().filter(|r| !r.ready()).map(|r| r.id.clone()).collect();
            return Err(RunError::Startup { waiting, timeout: self.limits.startup_timeout });
        }
        // A replica restarted mid-stream has the same time to join as the first ones had.
        if self.ready_at.is_some() {
            let late: Vec<String> = self
                .replicas
                .iter()
                .filter(|r| !r.ready() || matches!(r.progress, Progress::Ready))
                .filter(|r| matches!(r.life, Life::Running { since } if now.duration_since(since) > self.limits.startup_timeout))
                .map(|r| r.id.clone())
                .collect();
            if !late.is_empty() {
                return Err(RunError::Startup { waiting: late, timeout: self.limits.startup_timeout });
            }
        }
        // After a rollback, nobody starts again before every recalled replica has exited.
        let recalling = self.replicas.iter().any(|r| matches!(r.life, Life::Recalled));
        for r in self.plan.ids() {
            match self.replica(r).life {
                Life::Restarting { at } if at <= now && !recalling && self.rolling_back => self.start(r, now),
                Life::Restarting { at } if at <= now && !recalling => {
                    self.start(r, now);
                    let replica = self.replica(r);
                    let max = self.t.nodes[replica.node].restart.max_restarts;
                    let text = format!("restarted node `{}` (restart {} of {max})", replica.id, replica.restarts);
                    let id = replica.id.clone();
                    self.say(Notice::info("replica-restarted", text).about(id));
                }
                Life::Dying { status, at, until } if until <= now => self.decide_exit(now, r, status, at, None)?,
                _ => {}
            }
        }
        if self.rolling_back
            && !self.replicas.iter().any(|r| matches!(r.life, Life::Restarting { .. } | Life::Recalled))
        {
            self.rolling_back = false;
            let text = format!("rollback {}: every node started again from the beginning", self.rollbacks);
            self.say(Notice::info("rollback-done", text));
        }
        Ok(())
    }

    /// Heartbeats to the other hosts, with what each beat repeats (watches; a rollback's
    /// kills and starts, until they took effect), and the hosts' failures; `members` is taken
    /// out of `self` meanwhile.
    fn tend_members(&mut self, mut members: Members, now: Instant) -> Result<(), RunError> {
        let mut repeated: Vec<(HostId, Link)> = self
            .replicas
            .iter()
            .filter(|r| !r.exited())
            .filter_map(|r| Some((r.host?, Link::Watch { id: r.id.clone(), pid: r.remote_pid? })))
            .collect();
        for r in self.plan.ids() {
            let replica = self.replica(r);
            let Starter::Host(h) = replica.starter else { continue };
            match replica.life {
                Life::Recalled => {
                    // The killed process's: `starts` counts on only at the next start.
                    let attempt = replica.attempt();
                    repeated.push((h, Link::Kill { id: replica.id.clone(), attempt }));
                }
                Life::Running { .. } if replica.starts > 1 && !replica.joined() => {
                    repeated.push((h, self.start_link(r)));
                }
                _ => {}
            }
        }
        let result = members.tend(self.t, now, self.started, self.limits.startup_timeout, &repeated, &mut self.actions);
        self.members = members;
        result
    }

    fn on_link(&mut self, now: Instant, h: HostId, link: Link) -> Result<(), RunError> {
        match self.members.on_link(self.t, now, h, link, &mut self.actions)? {
            hosts::Heard::Exited { id, status, attempt } => {
                let Some(r) = self.plan.find(&id) else { return Ok(()) };
                let replica = self.replica(r);
                let theirs =
                    replica.starter == Starter::Host(h) || (replica.remote_pid.is_some() && replica.host == Some(h));
                // Exits are repeated with every heartbeat: take each once, and only the current
                // process's (a killed one's while it is recalled).
                let current = attempt == replica.attempt() && (!replica.gone() || replica.life == Life::Recalled);
                if theirs && current {
                    self.on_exit(now, r, status)?;
                }
            }
            hosts::Heard::Signal(signal) => {
                let name = &self.t.hosts[h.0].name;
                let text = format!("host `{name}` got {}", super::status::signal_name(signal));
                self.say(Notice::warn("signal", text).on_host(name.clone()));
                self.on_signal(now, signal)?;
            }
            hosts::Heard::Nothing => {}
        }
        Ok(())
    }

    /// Send `bye` to every replica once all are done and every edge balances (see
    /// `super::conservation`).
    ///
    /// Why all at once, at the end: a replica that leaves early can no longer read what its
    /// upstream replicas still send it (after a forged or mistaken `eos`, say), and they would
    /// block on it forever; and a producer must not close its connections before its
    /// consumers have read everything. Until `bye`, a finished replica keeps reading its
    /// input, and anything that arrives fails it.
    fn release_finished(&mut self, now: Instant) -> Result<(), RunError> {
        if !self.replicas.iter().all(Replica::done) {
            return Ok(());
        }
        // After a restart mid-stream, the counts cannot add up: the run reports it already.
        if self.incomplete.is_empty() {
            let reports: Vec<super::conservation::Reported<'_>> = self
                .replicas
                .iter()
                .filter_map(|r| {
                    let f = r.finished()?;
                    Some(super::conservation::Reported { node: r.node, stats: &f.stats, flows: &f.flows })
                })
                .collect();
            let (explained, lost): (Vec<_>, Vec<_>) =
                super::conservation::check(self.t, &reports).into_iter().partition(|i| i.explained());
            if !lost.is_empty() {
                return Err(RunError::Imbalance(lost.iter().map(ToString::to_string).collect()));
            }
            self.unreceived = explained.iter().map(ToString::to_string).collect();
        }
        for r in self.plan.ids() {
            let at = now.duration_since(self.started);
            let replica = self.replica_mut(r);
            let Progress::Done(f) = std::mem::replace(&mut replica.progress, Progress::Spawned) else {
                continue;
            };
            replica.progress = Progress::Released(f);
            // Started by another engine, which tells nothing: released is as good as gone.
            let unwatched = matches!(replica.starter, Starter::Engine)
                || (matches!(replica.starter, Starter::External { here: false }) && replica.remote_pid.is_none());
            if unwatched {
                replica.life = Life::Exited { status: 0, at };
            }
            self.tell(r, Message::Bye);
        }
        Ok(())
    }

    /// Once every node but the services is done, nothing needs the services any more: ask
    /// them to stop (they then finish like any node).
    fn stop_idle_services(&mut self) {
        let t = self.t;
        let is_service = |r: &Replica| t.is_service(r.node);
        if self.services_stopped || !self.replicas.iter().filter(|r| !is_service(r)).all(Replica::done) {
            return;
        }
        self.services_stopped = true;
        for r in self.plan.ids() {
            if is_service(self.replica(r)) {
                self.tell(r, Message::Stop);
            }
        }
    }

    /// The outcome of a run in which every replica exited after `bye`.
    fn outcome(&self, now: Instant) -> Outcome {
        let replicas = self
            .replicas
            .iter()
            .map(|r| {
                let f = r.finished().cloned().unwrap_or_default();
                let (wall, exit_code) = match r.life {
                    Life::Exited { status, at } => (at, exit_code(status)),
                    _ => (Duration::ZERO, -1),
                };
                ReplicaReport {
                    id: r.id.clone(),
                    node: self.t.nodes[r.node].name.clone(),
                    wall,
                    exit_code,
                    restarts: r.restarts,
                    replayed: r.replayed,
                    stats: f.stats,
                    notes: f.notes,
                    result: f.result,
                }
            })
            .collect();
        Outcome {
            elapsed: now.duration_since(self.started),
            startup: self.ready_at.unwrap_or_default(),
            replicas,
            incomplete: self.incomplete.clone(),
            unreceived: self.unreceived.clone(),
            rollbacks: self.rollbacks,
            recoveries: self.recoveries.clone(),
        }
    }
}

/// The exit code in a raw wait status (-1 if killed by a signal).
pub fn exit_code(status: i32) -> i32 {
    let status = <std::process::ExitStatus as std::os::unix::process::ExitStatusExt>::from_raw(status);
    status.code().unwrap_or(-1)
}

/// Counters summed over replicas.
pub fn sum_stats<'a>(all: impl Iterator<Item = &'a Stats>) -> Stats {
    all.fold(Stats::default(), |a, s| Stats {
        received: a.received + s.received,
        sent: a.sent + s.sent,
        invalid_frames: a.invalid_frames + s.invalid_frames,
        bad_records: a.bad_records + s.bad_records,
        errors: a.errors + s.errors,
        dropped: a.dropped + s.dropped,
        blocked_ms: a.blocked_ms + s.blocked_ms,
    })
}
