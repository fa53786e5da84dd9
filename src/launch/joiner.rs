//! The driver of a host's launcher that joins another's coordinator (`--host`, a host other
//! than the first): join before anything starts, start and relay this host's replicas, and
//! turn the coordinator's messages, exits and the clock into events for [`Member`].

use std::time::Instant;

use super::control::{Control, Incoming};
use super::executor::{process_alive, Executor};
use super::link::{Link, BEAT};
use super::logs::Style;
use super::member::{coordinator_silent, join_link, Member, MemberAction, MemberEvent};
use super::options::{Placement, RunOptions};
use super::outcome::RunError;
use super::plan::Plan;
use crate::runtime::zap::Access;
use crate::topology::Topology;

/// Run host `opts.placement`'s share of `t`, joined to the coordinating launcher of the first
/// host: start, relay and reap this host's replicas, report their exits, and end when the
/// coordinator says the run is over (its exit status) or stops answering.
pub fn join(t: &Topology, opts: &RunOptions) -> Result<u8, RunError> {
    let Placement::Host { host, .. } = opts.placement else {
        return Err(RunError::Setup("only a host of `[hosts]` joins a coordinator".into()));
    };
    let endpoint = opts.placement.tcp_control(t, false).expect("a host has a tcp control endpoint");
    let access = Access { allow: Vec::new(), secret: opts.secret.resolve()? };
    // Not a node is started before this run's coordinator answered: after a `--repeat` run,
    // the previous coordinator's socket may still be open, and a node's one `hello` must not
    // reach it.
    if let Some(code) = await_coordinator(t, opts, host, &endpoint, &access)? {
        return Ok(code);
    }
    let started = Instant::now();
    super::os::sane_process_state();
    crate::limits::raise_open_files();
    super::signals::install().map_err(RunError::system("install the signal handlers"))?;
    let dir = super::os::run_dir()?;
    let mut plan = Plan::new(t, opts.placement, dir.path(), endpoint.clone(), access.secret.clone());
    plan.grace = Some(opts.grace);
    let width = plan.replicas.iter().map(|r| r.id.len()).max().unwrap_or(0);
    // A rollback starts this host's replicas again (`fork` ones from a zygote); only the
    // coordinator restarts a replica alone.
    let mut exec = Executor::fork_phase(t, &plan, Style::detect(width), t.may_roll_back())?;
    let ctx = zmq::Context::new();
    let result = drive(t, opts, &plan, &mut exec, &ctx, host, &endpoint, &access, started);
    exec.kill_and_reap();
    let ok = result.as_ref().is_ok_and(|&code| crate::exit_codes::result_stands(code));
    match super::outputs::settle_here(t, opts.placement, dir.path(), ok) {
        Err(e) if ok => Err(e),
        _ => result,
    }
}

/// Join this run's coordinator at `endpoint` with a socket of its own, then close it (and
/// its context, whose threads end with it, so the fork phase can follow). Some(code) if the
/// run ended before this host joined.
fn await_coordinator(
    t: &Topology,
    opts: &RunOptions,
    host: usize,
    endpoint: &str,
    access: &Access,
) -> Result<Option<u8>, RunError> {
    let ctx = zmq::Context::new();
    let control = Control::member(&ctx, &t.hosts[host].name, endpoint, access)?;
    let join = join_link(t, host, opts.run, std::process::id());
    let started = Instant::now();
    let mut sent: Option<Instant> = None;
    let empty = Plan::new(t, opts.placement, std::path::Path::new(""), String::new(), None);
    loop {
        if let Some(signal) = super::signals::take() {
            return Err(RunError::Interrupted { signal, drained: false });
        }
        if started.elapsed() > opts.startup_timeout {
            return Err(coordinator_silent(t, opts.startup_timeout, endpoint));
        }
        if sent.is_none_or(|at| at.elapsed() >= BEAT) {
            sent = Some(Instant::now());
            control.link("", &join);
        }
        if !control.wait(50, &[])?.control {
            continue;
        }
        while let Some(incoming) = control.read(t, &empty)? {
            match incoming {
                Incoming::Host(_, Ok(Link::Welcome { run })) if run == opts.run => return Ok(None),
                Incoming::Host(_, Ok(Link::End { code, error, run })) if run == opts.run => {
                    if let Some(error) = error {
                        let coordinator = &t.hosts[Topology::COORDINATOR].name;
                        let text = format!("the run failed (reported by host `{coordinator}`): {error}");
                        super::notice::say(&super::notice::Notice::error("run-failed", text));
                    }
                    return Ok(Some(code));
                }
                _ => {}
            }
        }
    }
}

/// Until the coordinator ends the run: events in, actions out.
#[allow(clippy::too_many_arguments)]
fn drive(
    t: &Topology,
    opts: &RunOptions,
    plan: &Plan,
    exec: &mut Executor,
    ctx: &zmq::Context,
    host: usize,
    endpoint: &str,
    access: &Access,
    started: Instant,
) -> Result<u8, RunError> {
    let control = Control::member(ctx, &t.hosts[host].name, endpoint, access)?;
    control.link("", &join_link(t, host, opts.run, std::process::id()));
    exec.setup(t, plan, None)?;
    for r in plan.ids().filter(|&r| plan.get(r).starter == super::plan::Starter::Here) {
        exec.start(t, plan, r, &plan.identity(t, r, endpoint, 0, 0))?;
    }
    let pid = std::process::id();
    let mut member = Member::new(t, plan, host, opts.run, pid, opts.startup_timeout, endpoint.to_string(), started);
    let result = loop {
        let mut events = Vec::new();
        while let Some(signal) = super::signals::take() {
            events.push(MemberEvent::Signal(signal));
        }
        let ready = control.wait(50, &exec.fds())?;
        if ready.fds {
            exec.poll_servers()?;
        }
        if ready.control {
            while let Some(incoming) = control.read(t, plan)? {
                match incoming {
                    Incoming::Host(_, Ok(link)) => events.push(MemberEvent::Link(link)),
                    Incoming::Host(_, Err(e)) => events.push(MemberEvent::Invalid(e)),
                    _ => {}
                }
            }
        }
        events.extend(exec.exits().into_iter().map(|(r, status)| MemberEvent::Exited(r, status)));
        // Not ours to wait for: it is gone when its pid is (it exits 0 after `bye`).
        let gone: Vec<String> =
            member.watched().filter(|&(_, pid)| !process_alive(pid as libc::pid_t)).map(|(id, _)| id.clone()).collect();
        events.extend(gone.into_iter().map(MemberEvent::Gone));
        events.push(MemberEvent::Tick);
        let mut end = None;
        for e in events {
            let actions = member.handle(Instant::now(), e);
            end = apply(t, plan, exec, endpoint, &control, actions);
            if end.is_some() {
                break;
            }
        }
        if let Some(end) = end {
            break end;
        }
    };
    if let Err(e) = &result {
        // This launcher stops on its own: tell the coordinator why, so that it fails the run
        // naming this host with the cause rather than waiting out the silence.
        control.linger();
        control.link("", &Link::Left { error: e.chain() });
    }
    result
}

/// Apply a joining host's actions (its replicas reach the coordinator at `endpoint`); its
/// end, if one of them is.
fn apply(
    t: &Topology,
    plan: &Plan,
    exec: &mut Executor,
    endpoint: &str,
    control: &Control,
    actions: Vec<MemberAction>,
) -> Option<Result<u8, RunError>> {
    for action in actions {
        match action {
            MemberAction::Start { replica, restart, attempt, bind, pub_ports } => {
                let mut identity = plan.identity(t, replica, endpoint, restart, attempt);
                (identity.bind, identity.pub_ports) = (bind, pub_ports);
                if let Err(e) = exec.start(t, plan, replica, &identity) {
                    return Some(Err(e));
                }
            }
            MemberAction::Kill(r) => exec.kill(r),
            MemberAction::Send(msg) => {
                if msg == Link::Ended {
                    control.linger();
                }
                control.link("", &msg);
            }
            MemberAction::Terminate(id, pid) => {
                if super::os::is_replica(pid, t, &id) {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                }
            }
            MemberAction::Say(notice) => super::notice::say(&notice),
            MemberAction::Finish(result) => return Some(*result),
        }
    }
    None
}
