//! The run's decisions, tested alone: topologies from TOML strings, events made up, time
//! moved by hand. No process or socket is involved.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Action, Event, Limits, Members, Run};
use crate::launch::link::{Link, HOST_TIMEOUT};
use crate::launch::options::Placement;
use crate::launch::outcome::{Outcome, RunError};
use crate::launch::plan::{HostId, Plan, ReplicaId};
use crate::launch::testing::{cluster, topology};
use crate::topology::Topology;
use crate::wire::{Message, Stats};

/// lines -> keep (2 replicas) -> count.
const PIPELINE: &str = r#"
    [nodes.src]
    kind = "lines"
    path = "Cargo.toml"
    [nodes.keep]
    kind = "filter"
    inputs = ["src"]
    replicas = 2
    field = "line"
    contains = "a"
    KEEP
    [nodes.count]
    kind = "tally"
    inputs = ["keep"]
"#;

const LIMITS: Limits = Limits { startup_timeout: Duration::from_secs(30), grace: Duration::from_secs(5) };

/// A run of `t` as one launcher plans it, and a clock.
struct Harness<'t> {
    run: Run<'t>,
    plan: &'t Plan,
    now: Instant,
    /// The attempt a replica's messages name in their routing id (none: `name.replica`).
    attempt: BTreeMap<String, u32>,
}

impl<'t> Harness<'t> {
    fn new(t: &'t Topology, plan: &'t Plan, members: Members, now: Instant) -> Harness<'t> {
        let mut run = Run::new(t, plan, LIMITS, members, now);
        let started = run.begin(now);
        assert!(started.iter().all(|a| matches!(a, Action::Start(..))), "{started:?}");
        Harness { run, plan, now, attempt: BTreeMap::new() }
    }

    fn id(&self, name: &str) -> ReplicaId {
        self.plan.find(name).unwrap_or_else(|| panic!("no replica `{name}`"))
    }

    fn on(&mut self, event: Event) -> Vec<Action> {
        self.run.handle(self.now, event)
    }

    fn say(&mut self, name: &str, msg: Message) -> Vec<Action> {
        let r = self.id(name);
        let attempt = self.attempt.get(name).copied();
        self.on(Event::Message(r, attempt, msg))
    }

    fn after(&mut self, d: Duration) -> Vec<Action> {
        self.now += d;
        self.on(Event::Tick)
    }

    fn hello(&mut self, name: &str) -> Vec<Action> {
        let p = self.plan.get(self.id(name));
        let input = p.bind.as_ref().map(|_| format!("ipc:///run/{name}"));
        let ports = p.pub_ports.keys().map(|k| (k.clone(), format!("ipc:///run/{name}.{k}"))).collect();
        self.say(
            name,
            Message::Hello { node: String::new(), replica: 0, pid: 1, input, publish: BTreeMap::new(), ports },
        )
    }

    fn ready(&mut self, name: &str) -> Vec<Action> {
        self.say(name, Message::Ready)
    }

    /// Every replica joins and gets ready: the start barrier passes.
    fn start_all(&mut self) -> Vec<Action> {
        let names: Vec<String> = self.plan.replicas.iter().map(|p| p.id.clone()).collect();
        for n in &names {
            let _ = self.hello(n);
        }
        let mut last = Vec::new();
        for n in &names {
            last = self.ready(n);
        }
        last
    }

    fn done(&mut self, name: &str, received: u64, sent: u64) -> Vec<Action> {
        let stats = Stats { received, sent, ..Default::default() };
        self.say(name, Message::Done { stats, notes: vec![], result: None, flows: Default::default() })
    }

    fn exit(&mut self, name: &str, status: i32) -> Vec<Action> {
        let r = self.id(name);
        self.on(Event::Exited(r, status))
    }
}

/// The replicas told `msg`'s type among `actions`, by name.
fn told(plan: &Plan, actions: &[Action], t: &str) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Tell(r, m) if m.type_name() == t => Some(plan.get(*r).id.clone()),
            _ => None,
        })
        .collect()
}

/// The end of the run among `actions`, if any.
fn finished(actions: Vec<Action>) -> Option<Result<Outcome, RunError>> {
    actions.into_iter().find_map(|a| match a {
        Action::Finish(result) => Some(*result),
        _ => None,
    })
}

fn failure(actions: Vec<Action>) -> String {
    match finished(actions) {
        Some(Err(e)) => e.to_string(),
        Some(Ok(_)) => panic!("the run succeeded"),
        None => panic!("the run goes on"),
    }
}

fn plan_of(t: &Topology) -> Plan {
    Plan::new(t, Placement::All, std::path::Path::new("/run/x"), "ipc:///run/x/control".into(), None)
}

fn pipeline(keep: &str) -> Topology {
    topology(&PIPELINE.replace("KEEP", keep))
}

/// [`pipeline`], where a failure costs what was in flight (`delivery = "at-most-once"`).
fn pipeline_at_most_once(keep: &str) -> Topology {
    topology(&format!("delivery = \"at-most-once\"\n{}", PIPELINE.replace("KEEP", keep)))
}

/// 16 exits with status 4, as a raw wait status.
const STATUS_4: i32 = 4 << 8;
/// Killed by SIGKILL.
const KILLED: i32 = 9;

#[test]
fn wire_only_after_every_hello_and_start_only_after_every_ready() {
    let t = pipeline("");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    for name in ["src.0", "keep.0", "keep.1"] {
        assert!(told(&plan, &h.hello(name), "wire").is_empty(), "wire before every hello ({name})");
    }
    assert_eq!(told(&plan, &h.hello("count.0"), "wire"), ["src.0", "keep.0", "keep.1", "count.0"]);
    for name in ["count.0", "src.0", "keep.1"] {
        assert!(told(&plan, &h.ready(name), "start").is_empty(), "start before every ready ({name})");
    }
    assert_eq!(told(&plan, &h.ready("keep.0"), "start"), ["src.0", "keep.0", "keep.1", "count.0"]);
}

#[test]
fn a_message_out_of_turn_fails_the_run_naming_the_replica() {
    let t = pipeline("");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.hello("keep.0");
    assert_eq!(failure(h.hello("keep.0")), "node `keep.0` failed: sent `hello` out of turn (it was Joined)");
}

#[test]
fn bye_only_once_every_replica_is_done() {
    let t = pipeline("");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    assert!(told(&plan, &h.done("src.0", 0, 10), "bye").is_empty());
    assert!(told(&plan, &h.done("keep.0", 6, 3), "bye").is_empty());
    assert!(told(&plan, &h.done("count.0", 5, 1), "bye").is_empty(), "keep.1 still streams to count");
    assert_eq!(told(&plan, &h.done("keep.1", 4, 2), "bye"), ["src.0", "keep.0", "keep.1", "count.0"]);
    for name in ["src.0", "keep.0", "keep.1"] {
        assert!(finished(h.exit(name, 0)).is_none());
    }
    let outcome = finished(h.exit("count.0", 0)).expect("the end").expect("a success");
    assert_eq!(outcome.exit_code(), 0);
}

#[test]
fn counts_that_disagree_fail_the_run_instead_of_bye() {
    let t = pipeline("");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    let _ = (h.done("src.0", 0, 10), h.done("keep.0", 6, 3), h.done("keep.1", 4, 2));
    let end = h.done("count.0", 4, 1);
    assert!(told(&plan, &end, "bye").is_empty());
    assert!(failure(end)
        .contains("records lost on edge `keep` -> `count`: the upstream replicas sent 5, the readers received 4"));
}

#[test]
fn a_replica_that_fails_without_restart_fails_the_run_with_its_words() {
    let t = pipeline("");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    let _ = h.exit("keep.1", STATUS_4);
    // Its last words may follow its exit: they are waited for a moment.
    let end = h.say("keep.1", Message::Failed { error: "bad input".into() });
    assert_eq!(failure(end), "node `keep.1` failed: bad input; records in flight may be lost");
}

#[test]
fn without_last_words_the_exit_status_is_the_cause() {
    let t = pipeline("");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    assert!(finished(h.exit("src.0", KILLED)).is_none(), "its last words are awaited first");
    assert!(finished(h.after(Duration::from_millis(100))).is_none());
    let end = h.after(Duration::from_millis(150));
    assert_eq!(failure(end), "node `src.0` failed: was killed by SIGKILL; records in flight may be lost");
}

#[test]
fn at_most_once_restarts_one_replica_mid_stream_with_notices_both_ways() {
    let t = pipeline_at_most_once("restart = \"on-failure\"");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    let _ = h.exit("keep.1", KILLED);
    let decided = h.after(super::LAST_WORDS);
    assert!(finished_none(&decided), "{decided:?}");
    // Its consumer stops checking its counts; the run says so.
    assert_eq!(told(&plan, &decided, "restarted"), ["count.0"]);
    assert!(decided.iter().any(|a| matches!(a, Action::Say(s) if s.message.contains("restarting it in 100 ms (1 of 3)") && s.event == "restart-scheduled")));
    // A stale message from the dead replica is ignored.
    assert!(h.done("keep.1", 1, 1).is_empty());
    let restarted = h.after(Duration::from_millis(100));
    assert!(restarted.iter().any(|a| matches!(a, Action::Start(r, 1, 1) if *r == h.id("keep.1"))), "{restarted:?}");
    let _ = h.hello("keep.1");
    // Ready again: it starts at once, and its producers send their `eos` again.
    let ready = h.ready("keep.1");
    assert_eq!(told(&plan, &ready, "start"), ["keep.1"]);
    assert_eq!(told(&plan, &ready, "resend"), ["src.0"]);
}

/// In a started run of `t`, `before` happens, then `keep.0` exits with `status`: the run's
/// error once that is decided (empty for a success), or None if the run goes on.
fn fate_of_keep_0(t: &Topology, before: &dyn Fn(&mut Harness<'_>), status: i32) -> Option<String> {
    let plan = plan_of(t);
    let mut h = Harness::new(t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    before(&mut h);
    let _ = h.exit("keep.0", status);
    let decided = h.after(super::LAST_WORDS);
    finished(decided).map(|r| r.err().map(|e| e.to_string()).unwrap_or_default())
}

fn finished_none(actions: &[Action]) -> bool {
    !actions.iter().any(|a| matches!(a, Action::Finish(_)))
}

#[test]
fn the_restart_matrix_at_most_once() {
    // (restart option, what happens first, status) -> the failure, or None for a restart.
    let start_and = |keep: &str, before: &dyn Fn(&mut Harness<'_>), status: i32| {
        fate_of_keep_0(&pipeline_at_most_once(keep), before, status)
    };
    let nothing = |_: &mut Harness<'_>| {};
    assert_eq!(
        start_and("", &nothing, STATUS_4).as_deref(),
        Some("node `keep.0` failed: exited with status 4; records in flight may be lost"),
        "never"
    );
    assert_eq!(start_and("restart = \"on-failure\"", &nothing, STATUS_4), None, "on failure");
    let exhausted = |h: &mut Harness<'_>| {
        for _ in 0..3 {
            let _ = h.exit("keep.0", KILLED);
            let _ = h.after(super::LAST_WORDS);
            let _ = h.after(Duration::from_secs(5));
            let _ = h.hello("keep.0");
            let _ = h.ready("keep.0");
        }
    };
    assert_eq!(
        start_and("restart = \"on-failure\"", &exhausted, STATUS_4).as_deref(),
        Some("node `keep.0` failed: exited with status 4; gave up after 3 restarts"),
        "max_restarts reached"
    );
    let stopping = |h: &mut Harness<'_>| {
        let _ = h.on(Event::Signal(2));
    };
    assert_eq!(
        start_and("restart = \"on-failure\"", &stopping, STATUS_4).as_deref(),
        Some("node `keep.0` failed: exited with status 4; records in flight may be lost"),
        "while stopping"
    );
    let done = |h: &mut Harness<'_>| {
        let _ = h.done("keep.0", 1, 1);
    };
    assert_eq!(
        start_and("restart = \"on-failure\"", &done, 0).as_deref(),
        Some("node `keep.0` failed: exited before the launcher's `bye`: records it sent may be lost"),
        "after done"
    );
}

#[test]
fn at_most_once_a_pub_reader_is_not_restarted_mid_stream() {
    let t = topology(
        r#"
        delivery = "at-most-once"
        [nodes.src]
        kind = "lines"
        path = "Cargo.toml"
        outputs = { out = "pub" }
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        restart = "on-failure"
        "#,
    );
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    let _ = h.exit("count.0", KILLED);
    let why = failure(h.after(super::LAST_WORDS));
    assert!(why.contains("it reads a pub port, and a restarted subscriber cannot be given what its predecessor missed"));
}

#[test]
fn a_failure_during_start_up_is_restarted_quietly() {
    let t = pipeline("restart = \"on-failure\"");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.hello("keep.0");
    let _ = h.exit("keep.0", STATUS_4);
    let decided = h.after(super::LAST_WORDS);
    assert!(told(&plan, &decided, "restarted").is_empty(), "nothing was in flight");
    let restarted = h.after(Duration::from_millis(100));
    assert!(restarted.iter().any(|a| matches!(a, Action::Start(_, 0, _))), "PROCNET_RESTART stays 0: {restarted:?}");
}

#[test]
fn a_first_signal_stops_gracefully_and_a_second_kills() {
    let t = pipeline("");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    let first = h.on(Event::Signal(2));
    assert_eq!(told(&plan, &first, "stop"), ["src.0", "keep.0", "keep.1", "count.0"]);
    assert!(first.iter().any(
        |a| matches!(a, Action::Say(s) if s.message == "SIGINT: stopping gracefully within 5 s (send it again to kill at once)")
    ));
    assert!(finished_none(&first));
    assert_eq!(failure(h.on(Event::Signal(2))), "interrupted by SIGINT: nodes killed");
}

#[test]
fn a_signal_before_the_start_kills_and_the_grace_period_ends() {
    let t = pipeline("");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    assert_eq!(failure(h.on(Event::Signal(15))), "interrupted by SIGTERM: nodes killed");
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    let _ = h.on(Event::Signal(2));
    assert!(finished_none(&h.after(Duration::from_secs(4))));
    assert_eq!(failure(h.after(Duration::from_secs(2))), "interrupted by SIGINT: nodes killed");
}

#[test]
fn services_stop_when_the_rest_is_done() {
    let t = topology(
        r#"
        [nodes.site]
        kind = "serve"
        dir = "topologies/site"
        [nodes.src]
        kind = "lines"
        path = "Cargo.toml"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        "#,
    );
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    assert!(told(&plan, &h.done("src.0", 0, 3), "stop").is_empty());
    let done = h.done("count.0", 3, 0);
    assert_eq!(told(&plan, &done, "stop"), ["site.0"]);
    assert!(told(&plan, &done, "bye").is_empty(), "the service is not done yet");
    assert_eq!(told(&plan, &h.done("site.0", 0, 0), "bye").len(), 3);
}

#[test]
fn the_start_up_timeout_names_who_is_not_ready() {
    let t = pipeline("");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.hello("src.0");
    let _ = h.ready("src.0");
    let why = failure(h.after(Duration::from_secs(31)));
    assert!(why.starts_with("nodes did not join the network within 30 s: keep.0, keep.1, count.0"), "{why}");
}

fn join(t: &Topology, host: &str, pid: u32) -> Link {
    Link::Join { host: host.into(), topology: t.name.clone(), version: env!("CARGO_PKG_VERSION").into(), pid, run: 1 }
}

#[test]
fn a_host_that_stops_answering_fails_the_run_naming_it() {
    let t = cluster();
    let placement = Placement::Host { host: 0, control_port: 7360 };
    let plan = Plan::new(&t, placement, std::path::Path::new("/run/x"), String::new(), None);
    let now = Instant::now();
    let mut h = Harness::new(&t, &plan, Members::new([HostId(1), HostId(2)], 1, now), now);
    for (host, name) in [(1, "b"), (2, "c")] {
        let welcome = h.on(Event::Link(HostId(host), join(&t, name, 40 + host as u32)));
        assert!(welcome.iter().any(|a| matches!(a, Action::Link(HostId(x), Link::Welcome { run: 1 }) if *x == host)));
    }
    let _ = h.after(HOST_TIMEOUT / 2);
    let _ = h.on(Event::Link(HostId(2), Link::Beat));
    let why = failure(h.after(HOST_TIMEOUT / 2 + Duration::from_secs(1)));
    assert_eq!(
        why,
        "host `b`: its launcher at 127.0.0.2 stopped answering (15 s without a heartbeat): the host or its launcher \
         died, or the network to it failed"
    );
}

#[test]
fn a_host_whose_launcher_never_joins_fails_the_run_at_the_start_up_timeout() {
    let t = cluster();
    let placement = Placement::Host { host: 0, control_port: 7360 };
    let plan = Plan::new(&t, placement, std::path::Path::new("/run/x"), String::new(), None);
    let now = Instant::now();
    let mut h = Harness::new(&t, &plan, Members::new([HostId(1), HostId(2)], 1, now), now);
    let _ = h.on(Event::Link(HostId(1), join(&t, "b", 41)));
    for _ in 0..3 {
        assert!(finished_none(&h.after(Duration::from_secs(9))));
        let _ = h.on(Event::Link(HostId(1), Link::Beat));
    }
    let why = failure(h.after(Duration::from_secs(4)));
    assert!(why.starts_with("host `c`: its launcher did not join within 30 s"), "{why}");
}

#[test]
fn a_hosts_replica_exit_and_signal_count_as_ours() {
    let t = cluster();
    let placement = Placement::Host { host: 0, control_port: 7360 };
    let plan = Plan::new(&t, placement, std::path::Path::new("/run/x"), String::new(), None);
    let now = Instant::now();
    let mut h = Harness::new(&t, &plan, Members::new([HostId(1), HostId(2)], 1, now), now);
    let _ = h.on(Event::Link(HostId(1), join(&t, "b", 41)));
    let _ = h.on(Event::Link(HostId(2), join(&t, "c", 42)));
    let _ = h.start_all();
    let signal = h.on(Event::Link(HostId(2), Link::Interrupt { signal: 2 }));
    assert!(signal
        .iter()
        .any(|a| matches!(a, Action::Say(s) if s.message == "host `c` got SIGINT" && s.host.as_deref() == Some("c"))));
    assert_eq!(told(&plan, &signal, "stop"), ["src.0", "count.0"]);
    let _ = h.on(Event::Link(HostId(1), Link::Exited { id: "src.0".into(), status: KILLED, attempt: 0 }));
    let why = failure(h.after(super::LAST_WORDS));
    assert_eq!(why, "node `src.0` failed: was killed by SIGKILL; records in flight may be lost");
}

/// The replicas among `actions` told to start (name, PROCNET_RESTART, PROCNET_ATTEMPT).
fn starts(plan: &Plan, actions: &[Action]) -> Vec<(String, u32, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Start(r, restart, attempt) => Some((plan.get(*r).id.clone(), *restart, *attempt)),
            _ => None,
        })
        .collect()
}

/// The replicas among `actions` to kill, by name.
fn kills(plan: &Plan, actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Kill(r) => Some(plan.get(*r).id.clone()),
            _ => None,
        })
        .collect()
}

/// The names of every replica of the plan.
fn names(plan: &Plan) -> Vec<String> {
    plan.replicas.iter().map(|p| p.id.clone()).collect()
}

/// `keep.1` dies mid-stream in a run of [`pipeline`]`(keep)`: the actions once its fate is
/// decided.
fn kill_keep_1(h: &mut Harness<'_>) -> Vec<Action> {
    let _ = h.start_all();
    let _ = h.exit("keep.1", KILLED);
    h.after(super::LAST_WORDS)
}

#[test]
fn exactly_once_a_failure_mid_stream_rolls_the_whole_run_back() {
    let t = pipeline("restart = \"on-failure\"");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let decided = kill_keep_1(&mut h);
    assert!(finished_none(&decided), "{decided:?}");
    // Every other replica of the data path is killed; nobody is told to relax its counts.
    assert_eq!(kills(&plan, &decided), ["src.0", "keep.0", "count.0"]);
    assert!(told(&plan, &decided, "restarted").is_empty());
    assert!(decided.iter().any(|a| matches!(a, Action::Say(s) if s.message.contains("rolling the run back") && s.event == "rollback" && s.replica.is_some())), "{decided:?}");
    // A stale message from a recalled replica is ignored.
    assert!(h.done("count.0", 1, 0).is_empty());
    // Nobody starts again before every recalled replica has exited, whatever the time.
    let _ = h.exit("src.0", KILLED);
    let _ = h.exit("keep.0", KILLED);
    assert!(starts(&plan, &h.after(Duration::from_secs(1))).is_empty());
    let _ = h.exit("count.0", KILLED);
    let restarted = h.after(Duration::from_millis(10));
    // All start again, as a second attempt, with nothing lost (PROCNET_RESTART 0).
    let want: Vec<(String, u32, u32)> = names(&plan).into_iter().map(|n| (n, 0, 1)).collect();
    assert_eq!(starts(&plan, &restarted), want);
    assert!(restarted
        .iter()
        .any(|a| matches!(a, Action::Say(s) if s.message.contains("rollback 1: every node started again"))));
}

#[test]
fn after_a_rollback_the_run_ends_as_an_undisturbed_one_with_the_replays_counted() {
    let t = pipeline("restart = \"on-failure\"");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    let _ = h.say("count.0", Message::Stats(Stats { received: 7, ..Default::default() }));
    let _ = h.exit("keep.1", KILLED);
    let _ = h.after(super::LAST_WORDS);
    for n in ["src.0", "keep.0", "count.0"] {
        let _ = h.exit(n, KILLED);
    }
    let _ = h.after(Duration::from_millis(100));
    for n in names(&plan) {
        h.attempt.insert(n, 1);
    }
    // The second attempt joins, and is wired and started at once, replica by replica.
    for n in names(&plan) {
        let hello = h.hello(&n);
        assert_eq!(told(&plan, &hello, "wire"), std::slice::from_ref(&n));
        assert_eq!(told(&plan, &h.ready(&n), "start"), std::slice::from_ref(&n));
    }
    // The counts must balance again: exactly, as in an undisturbed run.
    let _ = h.done("src.0", 0, 2);
    let _ = h.done("keep.0", 1, 1);
    let _ = h.done("keep.1", 1, 0);
    let bye = h.done("count.0", 1, 0);
    assert_eq!(told(&plan, &bye, "bye"), names(&plan));
    // The messages go to each process by its routing id, attempt included.
    assert_eq!(h.run.address(h.id("count.0")), "count.0#1");
    let mut end = Vec::new();
    for n in names(&plan) {
        end = h.exit(&n, 0);
    }
    let outcome = finished(end).expect("over").expect("a success");
    assert!(outcome.incomplete.is_empty(), "{:?}", outcome.incomplete);
    // From the exit to every replica started again: its last words, then the backoff.
    assert_eq!(outcome.recoveries, [super::LAST_WORDS + Duration::from_millis(100)]);
    let count = outcome.replicas.iter().find(|r| r.id == "count.0").expect("count.0");
    assert_eq!((count.restarts, count.replayed), (0, 7));
    let keep = outcome.replicas.iter().find(|r| r.id == "keep.1").expect("keep.1");
    assert_eq!(keep.restarts, 1);
}

#[test]
fn a_message_of_an_earlier_attempt_is_stale_even_after_the_new_one_joined() {
    let t = pipeline("restart = \"on-failure\"");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = kill_keep_1(&mut h);
    for n in ["src.0", "keep.0", "count.0"] {
        let _ = h.exit(n, KILLED);
    }
    let _ = h.after(Duration::from_millis(100));
    h.attempt.insert("keep.0".into(), 1);
    let _ = h.hello("keep.0");
    // A `ready` of attempt 0 arriving late is not the new process's.
    h.attempt.insert("keep.0".into(), 0);
    assert!(h.ready("keep.0").is_empty());
    h.attempt.insert("keep.0".into(), 1);
    assert_eq!(told(&plan, &h.ready("keep.0"), "start"), ["keep.0"]);
    // A node written for an earlier protocol names no attempt: it works, and the run says
    // that exactness after the restart rests on it.
    let hello = h.hello("count.0");
    assert!(
        hello.iter().any(|a| matches!(a, Action::Say(s) if s.message.starts_with("node `count.0` names no attempt"))),
        "{hello:?}"
    );
}

#[test]
fn exactly_once_the_restart_matrix() {
    // (restart option, what happens first, status) -> the failure, or None for a rollback.
    let start_and =
        |keep: &str, before: &dyn Fn(&mut Harness<'_>), status: i32| fate_of_keep_0(&pipeline(keep), before, status);
    let nothing = |_: &mut Harness<'_>| {};
    assert_eq!(
        start_and("", &nothing, STATUS_4).as_deref(),
        Some("node `keep.0` failed: exited with status 4; records in flight may be lost"),
        "never"
    );
    assert_eq!(start_and("restart = \"on-failure\"", &nothing, STATUS_4), None, "on failure");
    // Each rollback counts against the failed replica's `max_restarts`.
    let exhausted = |h: &mut Harness<'_>| {
        for attempt in 1..=3 {
            let _ = h.exit("keep.0", KILLED);
            let _ = h.after(super::LAST_WORDS);
            for n in ["src.0", "keep.1", "count.0"] {
                let _ = h.exit(n, KILLED);
            }
            let _ = h.after(Duration::from_secs(5));
            for n in names(h.plan) {
                h.attempt.insert(n, attempt);
            }
            let _ = h.start_all();
        }
    };
    assert_eq!(
        start_and("restart = \"on-failure\"", &exhausted, STATUS_4).as_deref(),
        Some("node `keep.0` failed: exited with status 4; gave up after 3 restarts"),
        "max_restarts reached"
    );
    let stopping = |h: &mut Harness<'_>| {
        let _ = h.on(Event::Signal(2));
    };
    assert_eq!(
        start_and("restart = \"on-failure\"", &stopping, STATUS_4).as_deref(),
        Some("node `keep.0` failed: exited with status 4; records in flight may be lost"),
        "while stopping"
    );
    // After `done` but before `bye`, what it sent may not all have been read: roll back.
    let done = |h: &mut Harness<'_>| {
        let _ = h.done("keep.0", 1, 1);
    };
    assert_eq!(start_and("restart = \"on-failure\"", &done, 0), None, "after done");
}

#[test]
fn exactly_once_a_pub_reader_rolls_back_with_its_publisher() {
    let t = topology(
        r#"
        [nodes.src]
        kind = "lines"
        path = "Cargo.toml"
        outputs = { out = "pub" }
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        restart = "on-failure"
        "#,
    );
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    let _ = h.exit("count.0", KILLED);
    let decided = h.after(super::LAST_WORDS);
    assert!(finished_none(&decided), "{decided:?}");
    assert_eq!(kills(&plan, &decided), ["src.0"]);
}

#[test]
fn a_run_that_cannot_roll_back_says_why_and_fails_as_at_most_once() {
    for (source, why) in [
        ("path = \"-\"", "node `src` reads stdin, which cannot be read again"),
        ("path = \"Cargo.toml\"\n[nodes.ext]\nexternal = true\ninputs = [\"src\"]", "node `ext` is external"),
    ] {
        let t = topology(&format!(
            "[nodes.src]\nkind = \"lines\"\n{source}\n[nodes.count]\nkind = \"tally\"\ninputs = [\"src\"]\nrestart = \
             \"on-failure\"\n"
        ));
        let plan = plan_of(&t);
        let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
        let _ = h.start_all();
        let _ = h.exit("count.0", KILLED);
        let decided = h.after(super::LAST_WORDS);
        assert!(kills(&plan, &decided).is_empty(), "{decided:?}");
        let said: Vec<&String> =
            decided.iter().filter_map(|a| if let Action::Say(s) = a { Some(&s.message) } else { None }).collect();
        assert!(said.iter().any(|s| s.contains("records in flight may be lost") && s.contains(why)), "{said:?}");
    }
}

#[test]
fn a_failure_in_start_up_after_wire_rolls_back_so_that_subscribers_join_again() {
    let t = topology(
        r#"
        [nodes.src]
        kind = "lines"
        path = "Cargo.toml"
        outputs = { out = "pub" }
        restart = "on-failure"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        "#,
    );
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.hello("src.0");
    let wired = h.hello("count.0");
    assert_eq!(told(&plan, &wired, "wire"), ["src.0", "count.0"]);
    let _ = h.exit("src.0", KILLED);
    let decided = h.after(super::LAST_WORDS);
    // Its subscriber would not subscribe again to a replacement: both start again.
    assert_eq!(kills(&plan, &decided), ["count.0"]);
    let _ = h.exit("count.0", KILLED);
    let restarted = h.after(Duration::from_millis(100));
    assert_eq!(starts(&plan, &restarted), [("src.0".to_string(), 0, 1), ("count.0".to_string(), 0, 1)]);
    for n in ["src.0", "count.0"] {
        h.attempt.insert(n.into(), 1);
        let _ = h.hello(n);
    }
    let _ = h.ready("src.0");
    let start = h.ready("count.0");
    assert_eq!(told(&plan, &start, "start"), ["src.0", "count.0"]);
}

#[test]
fn a_replica_released_while_its_last_words_are_awaited_leaves_the_result_whole() {
    let t = pipeline("restart = \"on-failure\"");
    let plan = plan_of(&t);
    let mut h = Harness::new(&t, &plan, Members::default(), Instant::now());
    let _ = h.start_all();
    let _ = h.done("src.0", 0, 2);
    let _ = h.done("keep.0", 1, 1);
    let _ = h.done("keep.1", 1, 0);
    // keep.1 is killed after its `done`, before `bye`: its fate waits for its last words...
    assert!(finished(h.exit("keep.1", KILLED)).is_none());
    // ...meanwhile every replica is done and every edge balances: all are released.
    let bye = h.done("count.0", 1, 0);
    assert_eq!(told(&plan, &bye, "bye"), names(&plan));
    let decided = h.after(super::LAST_WORDS);
    assert!(kills(&plan, &decided).is_empty(), "{decided:?}");
    assert!(
        decided.iter().any(|a| matches!(a, Action::Say(s) if s.message.contains("after its stream was complete"))),
        "{decided:?}"
    );
    let mut end = Vec::new();
    for n in ["src.0", "keep.0", "count.0"] {
        end = h.exit(n, 0);
    }
    assert!(finished(end).expect("over").is_ok());
}

/// The messages among `actions` to another host's launcher of type `kind` (`start`, `kill`),
/// as (host, replica, attempt).
fn links(actions: &[Action], kind: &str) -> Vec<(usize, String, u32)> {
    actions
        .iter()
        .filter_map(|a| match (a, kind) {
            (Action::Link(h, Link::Start { id, attempt, .. }), "start") => Some((h.0, id.clone(), *attempt)),
            (Action::Link(h, Link::Kill { id, attempt }), "kill") => Some((h.0, id.clone(), *attempt)),
            _ => None,
        })
        .collect()
}

#[test]
fn over_several_hosts_a_rollback_kills_and_starts_each_hosts_replicas_through_its_launcher() {
    let t = topology(
        r#"
        [hosts.a]
        address = "127.0.0.1"
        [hosts.b]
        address = "127.0.0.2"
        [hosts.c]
        address = "127.0.0.3"
        [defaults]
        restart = "on-failure"
        [nodes.src]
        kind = "lines"
        path = "Cargo.toml"
        host = "b"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        host = "c"
        "#,
    );
    let placement = Placement::Host { host: 0, control_port: 7360 };
    let plan = Plan::new(&t, placement, std::path::Path::new("/run/x"), String::new(), None);
    let now = Instant::now();
    let mut h = Harness::new(&t, &plan, Members::new([HostId(1), HostId(2)], 1, now), now);
    let _ = h.on(Event::Link(HostId(1), join(&t, "b", 41)));
    let _ = h.on(Event::Link(HostId(2), join(&t, "c", 42)));
    let _ = h.start_all();
    let exited = |attempt| Event::Link(HostId(1), Link::Exited { id: "src.0".into(), status: KILLED, attempt });
    let _ = h.on(exited(0));
    let decided = h.after(super::LAST_WORDS);
    assert!(finished_none(&decided), "{decided:?}");
    // The source is dead already; the tally is killed by its host's launcher, not here.
    assert_eq!(links(&decided, "kill"), [(2, "count.0".to_string(), 0)]);
    assert!(kills(&plan, &decided).is_empty());
    // Until its exit arrives, the kill is repeated with every heartbeat.
    assert_eq!(links(&h.after(BEAT_AND_A_BIT), "kill"), [(2, "count.0".to_string(), 0)]);
    let _ = h.on(Event::Link(HostId(2), Link::Exited { id: "count.0".into(), status: KILLED, attempt: 0 }));
    // The source's exit, repeated with a heartbeat, is not a second failure.
    assert!(h.on(exited(0)).is_empty());
    let restarted = h.after(Duration::from_secs(1));
    let want = [(1, "src.0".to_string(), 1), (2, "count.0".to_string(), 1)];
    assert_eq!(links(&restarted, "start"), want);
    assert!(links(&restarted, "kill").is_empty());
    // A restarted replica binds where its first process did (its peers reconnect there).
    let bind = restarted.iter().find_map(|a| match a {
        Action::Link(_, Link::Start { id, bind, .. }) if id == "count.0" => bind.clone(),
        _ => None,
    });
    assert_eq!(bind.as_deref(), Some("ipc:///run/count.0"));
    // Repeated until each says `hello` as its new attempt.
    assert_eq!(links(&h.after(BEAT_AND_A_BIT), "start"), want);
    h.attempt.insert("count.0".into(), 1);
    let _ = h.hello("count.0");
    assert_eq!(links(&h.after(BEAT_AND_A_BIT), "start"), [(1, "src.0".to_string(), 1)]);
    // An exit of the killed attempt, late, is stale; the new attempt's is a failure again.
    assert!(finished_none(
        &h.on(Event::Link(HostId(2), Link::Exited { id: "count.0".into(), status: KILLED, attempt: 0 }))
    ));
    let _ = h.on(Event::Link(HostId(2), Link::Exited { id: "count.0".into(), status: KILLED, attempt: 1 }));
    let again = h.after(super::LAST_WORDS);
    assert!(again.iter().any(|a| matches!(a, Action::Say(s) if s.message.contains("rollback 2"))), "{again:?}");
}

/// A little more than a heartbeat's interval.
const BEAT_AND_A_BIT: Duration = Duration::from_millis(510);
