//! The coordinating launcher's driver: sets a run up (run directory, fork phase, control
//! socket, relay), then loops, turning signals, control messages, exits and the clock into
//! events for the state machine ([`super::machine::Run`]) and applying what it answers; at
//! the end kills and reaps everything, settles the output files and tells the other hosts.

use std::time::Instant;

use super::control::{Control, Incoming};
use super::executor::Executor;
use super::link::{Link, BEAT, HOST_TIMEOUT};
use super::logs::Style;
use super::machine::{Action, Event, Limits, Members, Run};
use super::metrics::Server;
use super::notice::Notice;
use super::options::{Placement, RunOptions};
use super::outcome::{Outcome, RunError};
use super::plan::{allowed_peers, HostId, Plan, ReplicaId, Starter};
use super::progress::Progress;
use crate::nodes::Kind;
use crate::runtime::zap::Access;
use crate::topology::{Runner, Topology};

/// Run `t` to the end. The first SIGINT or SIGTERM stops it gracefully (within
/// `opts.grace`), a second kills it. With `--host`, this is the coordinator's side: the
/// other hosts' launchers [`super::join`] it.
pub fn run(t: &Topology, opts: &RunOptions) -> Result<Outcome, RunError> {
    let started = Instant::now();
    super::os::sane_process_state();
    crate::limits::raise_open_files();
    // Counted from now on, so a signal during the fork phase is seen as soon as the loop runs.
    super::signals::install().map_err(RunError::system("install the signal handlers"))?;
    let dir = super::os::run_dir()?;
    let control = crate::topology::ipc::control_endpoint(dir.path());
    let mut plan = Plan::new(t, opts.placement, dir.path(), control, opts.secret.resolve()?);
    plan.grace = Some(opts.grace);
    let width = plan.replicas.iter().map(|r| r.id.len()).max().unwrap_or(0);
    if let Some(m) = &opts.metrics {
        m.begin_run(opts.run, t, &plan, started);
    }
    // The fork phase, first: here the launcher has one thread and no ZeroMQ context.
    let exec = Executor::fork_phase(t, &plan, Style::detect(width), true)?;
    let ctx = zmq::Context::new();
    let mut c =
        Coordinator { t, opts, plan: &plan, exec, control: None, progress: None, metrics: None, run: None, ctx };
    let result = c.setup(started).and_then(|()| c.drive());
    if let Some(p) = &c.progress {
        p.clear();
    }
    c.exec.kill_and_reap();
    let ok = result.as_ref().is_ok_and(|o| crate::exit_codes::result_stands(o.exit_code()));
    let result = match super::outputs::settle_here(t, opts.placement, dir.path(), ok) {
        Err(e) if ok => Err(e),
        _ => result,
    };
    if let Some(m) = &opts.metrics {
        m.end_run(opts.run, &result);
    }
    match &result {
        Ok(outcome) => c.end_members(outcome.exit_code(), None),
        Err(e) => c.end_members(e.exit_code(), Some(e.chain())),
    }
    result
}

/// The coordinator of one run.
struct Coordinator<'t> {
    t: &'t Topology,
    opts: &'t RunOptions,
    plan: &'t Plan,
    exec: Executor,
    // Field order matters: the socket and the machine go before the context.
    control: Option<Control>,
    progress: Option<Progress>,
    /// The metrics thread, if the run's counters are served or written (stopped with the run,
    /// so that the next run of a `--repeat` forks with one thread).
    metrics: Option<Server>,
    run: Option<Run<'t>>,
    ctx: zmq::Context,
}

impl<'t> Coordinator<'t> {
    /// Bind the control socket, say what external replicas need, start the relay and the
    /// forkserver, and make the state machine.
    fn setup(&mut self, started: Instant) -> Result<(), RunError> {
        let (t, placement) = (self.t, self.opts.placement);
        let access = Access {
            // Under `--coordinate`, pods come from anywhere: the network policy guards.
            allow: if matches!(placement, Placement::Host { .. }) { allowed_peers(t) } else { Vec::new() },
            secret: self.plan.secret.clone(),
        };
        let tcp = placement.tcp_control(t, true);
        let hint = match placement {
            Placement::Host { .. } => {
                let h = &t.hosts[Topology::COORDINATOR];
                format!(" (is this host `{}`? Its address, {}, must be one of this machine's)", h.name, h.address)
            }
            _ => String::new(),
        };
        let guarded = tcp.as_deref().map(|ep| (ep, &access, hint));
        self.control = Some(Control::coordinator(&self.ctx, &self.plan.control, guarded)?);
        super::external::announce(t, self.plan, self.opts)?;
        self.progress = Progress::for_terminal(t);
        self.exec.setup(t, self.plan, self.progress.as_ref().map(Progress::handle))?;
        if let Some(m) = &self.opts.metrics {
            self.metrics = m.serve().map_err(RunError::system("start the metrics thread"))?;
        }
        let hosts = match placement {
            Placement::Host { .. } => {
                (0..t.hosts.len()).filter(|&h| h != Topology::COORDINATOR && t.runs_on(h)).map(HostId).collect()
            }
            _ => Vec::new(),
        };
        let limits = Limits { startup_timeout: self.opts.startup_timeout, grace: self.opts.grace };
        let members = Members::new(hosts, self.opts.run, started);
        let mut run = Run::new(t, self.plan, limits, members, started);
        if let Some(why) = unreadable_twice(t) {
            run.cannot_roll_back(why);
        }
        self.run = Some(run);
        Ok(())
    }

    /// Until the run is over: events in, actions out.
    fn drive(&mut self) -> Result<Outcome, RunError> {
        let actions = self.machine().begin(Instant::now());
        if let Some(end) = self.apply(actions) {
            return end;
        }
        loop {
            let mut events = Vec::new();
            while let Some(signal) = super::signals::take() {
                events.push(Event::Signal(signal));
            }
            let timeout = if self.machine().all_released() { 5 } else { 50 };
            let ready = self.control().wait(timeout, &self.exec.fds())?;
            if ready.fds {
                self.exec.poll_servers()?;
            }
            if ready.control {
                while let Some(incoming) = self.control().read(self.t, self.plan)? {
                    events.extend(event_of(incoming));
                }
            }
            events.extend(self.exec.exits().into_iter().map(|(r, status)| Event::Exited(r, status)));
            events.push(Event::Tick);
            for event in events {
                let actions = self.machine().handle(Instant::now(), event);
                if let Some(end) = self.apply(actions) {
                    return end;
                }
            }
            if let (Some(p), Some(run)) = (&self.progress, &self.run) {
                p.update(|n| run.latest(n));
            }
            if let (Some(m), Some(run)) = (&self.opts.metrics, &self.run) {
                m.update(self.opts.run, run);
            }
        }
    }

    fn machine(&mut self) -> &mut Run<'t> {
        self.run.as_mut().expect("made in setup")
    }

    fn control(&self) -> &Control {
        self.control.as_ref().expect("bound in setup")
    }

    /// Apply the machine's actions; the run's end if one of them ends it (or fails).
    fn apply(&mut self, actions: Vec<Action>) -> Option<Result<Outcome, RunError>> {
        for action in actions {
            let applied = match action {
                Action::Start(r, restart, attempt) => self.start(r, restart, attempt),
                Action::Kill(r) => {
                    self.exec.kill(r);
                    Ok(())
                }
                Action::Tell(r, msg) => {
                    let address = self.machine().address(r);
                    self.control().tell(&address, &msg)
                }
                Action::Watch(r, pid) => {
                    self.exec.watch(r, pid);
                    Ok(())
                }
                Action::Link(h, msg) => {
                    self.control().link(&self.t.hosts[h.0].name, &msg);
                    Ok(())
                }
                Action::Say(notice) => {
                    self.say(&notice);
                    Ok(())
                }
                Action::Finish(result) => return Some(*result),
            };
            if let Err(e) = applied {
                return Some(Err(e));
            }
        }
        None
    }

    /// Start replica `r`, which reaches the control socket here (its ipc endpoint), binding
    /// where its first process bound.
    fn start(&mut self, r: ReplicaId, restart: u32, attempt: u32) -> Result<(), RunError> {
        debug_assert_eq!(self.plan.get(r).starter, Starter::Here);
        let mut identity = self.plan.identity(self.t, r, &self.plan.control, restart, attempt);
        (identity.bind, identity.pub_ports) = self.machine().binds(r);
        self.exec.start(self.t, self.plan, r, &identity)
    }

    /// Say `notice` on stderr as the launcher's, above the live view if there is one.
    fn say(&self, notice: &Notice) {
        match &self.progress {
            Some(p) => p.handle().suspend(|| super::notice::say(notice)),
            None => super::notice::say(notice),
        }
    }

    /// The run is over: tell every host's launcher not given up on, with the run's status,
    /// and wait (up to the heartbeat timeout) until each that joined says it heard.
    fn end_members(&mut self, code: u8, error: Option<String>) {
        let (Some(run), Some(control)) = (&self.run, &self.control) else { return };
        let t = self.t;
        let msg = Link::End { code, error, run: self.opts.run };
        let members = run.members();
        // Also to a host that has not joined yet: it may be waiting for `welcome`.
        for h in members.to_end().into_iter().filter(|&h| !members.joined(h)) {
            control.link(&t.hosts[h.0].name, &msg);
        }
        let mut waiting: Vec<HostId> = members.to_end().into_iter().filter(|&h| members.joined(h)).collect();
        let deadline = Instant::now() + HOST_TIMEOUT;
        let mut last_sent: Option<Instant> = None;
        while !waiting.is_empty() && Instant::now() < deadline {
            if last_sent.is_none_or(|at| at.elapsed() >= BEAT) {
                last_sent = Some(Instant::now());
                for &h in &waiting {
                    control.link(&t.hosts[h.0].name, &msg);
                }
            }
            if !control.wait(50, &[]).is_ok_and(|ready| ready.control) {
                continue;
            }
            while let Ok(Some(incoming)) = control.read(t, self.plan) {
                if let Incoming::Host(h, Ok(Link::Ended)) = incoming {
                    waiting.retain(|&w| w != h);
                }
            }
        }
        for h in waiting {
            let name = &t.hosts[h.0].name;
            let text = format!(
                "host `{name}` did not confirm the end of the run within {} s: its launcher may have stopped on its own",
                HOST_TIMEOUT.as_secs()
            );
            self.say(&Notice::warn("host-unconfirmed", text).on_host(name.clone()));
        }
    }
}

/// A source of `t` whose file cannot be read a second time (a FIFO, a character device), so
/// a rollback could not replay it: why, naming it.
fn unreadable_twice(t: &Topology) -> Option<String> {
    t.nodes.iter().find_map(|node| match &node.runner {
        Runner::Builtin(Kind::Lines(c)) => {
            let path = c.path.as_ref()?;
            let regular = std::fs::metadata(path).map(|m| m.is_file()).unwrap_or(true);
            (!regular).then(|| format!("node `{}` reads `{}`, which is not a regular file", node.name, path.display()))
        }
        _ => None,
    })
}

/// The event a message from the control channel is.
fn event_of(incoming: Incoming) -> Option<Event> {
    match incoming {
        Incoming::Replica(r, attempt, Ok(msg)) => Some(Event::Message(r, attempt, msg)),
        Incoming::Replica(r, _, Err(e)) => Some(Event::Invalid(r, e)),
        Incoming::Host(h, Ok(link)) => Some(Event::Link(h, link)),
        Incoming::Host(h, Err(e)) => Some(Event::InvalidLink(h, e)),
        Incoming::Stray => None,
    }
}
