//! The launcher's one event loop: start every replica, run the start barrier over the
//! control channel (hello -> wire -> ready -> start), watch for `done`, `failed` and exits,
//! restart what may be restarted, and on any failure or interrupt kill every process group
//! and reap every child. Nothing of a run outlives `run`.
//!
//! `run` works in two phases, in this order, and the order is what makes forking safe:
//! 1. the fork phase: one thread, no ZeroMQ context. The watchdog, the zygote (for restarts
//!    of `fork` nodes) and every `fork` replica are forked here;
//! 2. everything else: the output relay thread, the forkserver (spawned: fork + exec), the
//!    control socket and its context, and every `spawn` replica.
//!
//! Signals are only counted by their handlers (`super::signals`), so no thread waits for them.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::fork::{fork_node, reap_with_group, single_threaded, Forked};
use super::forker::Forker;
use super::logs::{Dest, RelayThread, Style};
use super::outcome::{Outcome, ReplicaReport, RunError};
use super::progress::Progress;
use super::spawn::{describe_spawn_error, describe_status, node_env, signal_group, spawn, Launch};
use super::watchdog::Watchdog;
use crate::runtime::Identity;
use crate::topology::{socket_key, NodeId, Pattern, Restart, Runner, StartMethod, TopicRule, Topology, Transport};
use crate::wire::{self, Downstream, Flows, Message, PubPort, Stats, Subscribe, Upstream};

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How long every replica may take to join and get ready.
    pub startup_timeout: Duration,
    /// After a first Ctrl-C or SIGTERM, how long nodes may take to finish their streams
    /// before they are killed.
    pub grace: Duration,
    /// Where to write, as JSON, what each replica of an external node needs to join.
    pub endpoints_file: Option<PathBuf>,
    /// Which replicas this launcher starts.
    pub placement: Placement,
    /// Which run of a `--repeat` this is, from 1 (launchers of several hosts must agree).
    pub run: u32,
    /// The secret the run's tcp sockets ask for (`runtime/zap.rs`).
    pub secret: Secret,
}

/// Where a run's secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// A new one for every run: one launcher runs every replica, and tells each.
    PerRun,
    /// The one every launcher of a run over several hosts was given (`PROCNET_SECRET`).
    Shared(String),
    /// None: the nodes are started by another engine, which has no way to be told one
    /// (`--coordinate` without `PROCNET_SECRET`; a network policy keeps strangers out).
    Off,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            startup_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(5),
            endpoints_file: None,
            placement: Placement::All,
            run: 1,
            secret: Secret::PerRun,
        }
    }
}

/// Which replicas a launcher starts, and who coordinates (see `super::link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Every replica, here (a topology without `[hosts]`, or one run with `--local`).
    All,
    /// `--host`: the replicas placed on host `host` (index in `[hosts]`). The first host's
    /// launcher coordinates ([`run`]); the others join it ([`join`]).
    Host {
        /// This launcher's host.
        host: usize,
        /// The coordinator's tcp control port.
        control_port: u16,
    },
    /// `--coordinate`: no replica here. Every node is started by another engine (Kubernetes)
    /// with `PROCNET_CONTROL` pointing at `tcp://address:control_port`.
    Coordinate {
        /// The address to bind the control socket to.
        address: std::net::IpAddr,
        /// Its port.
        control_port: u16,
    },
}

impl Placement {
    /// Whether this launcher starts replica `replica` of node `node`.
    pub fn here(self, t: &Topology, node: NodeId, replica: u32) -> bool {
        match self {
            Placement::All => true,
            Placement::Host { host, .. } => t.replica_host(node, replica).unwrap_or(Topology::COORDINATOR) == host,
            Placement::Coordinate { .. } => false,
        }
    }

    /// Whether this launcher coordinates the run (rather than joining another).
    fn coordinates(self) -> bool {
        !matches!(self, Placement::Host { host, .. } if host != Topology::COORDINATOR)
    }

    /// The tcp endpoint of the coordinator's control socket, if the run has one: where the
    /// coordinator binds it (`bind`), or where the others connect.
    fn tcp_control(self, t: &Topology, bind: bool) -> Option<String> {
        match self {
            Placement::All => None,
            Placement::Host { control_port, .. } => {
                let h = &t.hosts[Topology::COORDINATOR];
                Some(format!("tcp://{}:{control_port}", in_url(if bind { h.bind } else { h.address })))
            }
            Placement::Coordinate { address, control_port } => {
                Some(format!("tcp://{}:{control_port}", in_url(address)))
            }
        }
    }
}

/// Where a replica is in its life; the supervisor owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Dead, to be started again at `Replica::restart_at`.
    Restarting,
    Spawned,
    Joined,
    Ready,
    Started,
    Done,
    /// `bye` sent: every consumer finished, so the replica may close its sockets and exit.
    Released,
    Exited,
}

/// Who reaps a replica's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parent {
    /// The launcher: a spawned or forked child.
    Launcher,
    /// The zygote.
    Zygote,
    /// The forkserver.
    Forkserver,
    /// Nobody: an external node's process, started by hand (its pid comes in `hello`).
    External,
    /// Another host's launcher (which reports its exit), or with no host, another engine.
    Remote(Option<usize>),
}

struct Replica {
    node: NodeId,
    index: u32,
    id: String,
    pid: libc::pid_t,
    parent: Parent,
    phase: Phase,
    /// Where it binds its input and its pub ports: as planned, then as bound (a restarted
    /// replica binds the same endpoints, so its peers reconnect to it).
    bind: Option<String>,
    pub_ports: BTreeMap<String, String>,
    endpoint: Option<String>,
    published: BTreeMap<String, String>,
    ports: BTreeMap<String, String>,
    latest: Stats,
    report: Option<Finished>,
    /// When it exited (since the run started) and with what status.
    exit: Option<(Duration, i32)>,
    restarts: u32,
    /// Restarts after `start`: what `PROCNET_RESTART` says (a replica restarted during
    /// start-up still checks its counts).
    midstream_restarts: u32,
    restart_at: Option<Instant>,
    /// When its current process was started.
    spawned_at: Instant,
    /// What it said in `failed`, kept until its exit decides on a restart.
    failed: Option<String>,
    /// An external replica on another host: its pid there, watched by that host's launcher.
    remote_pid: Option<u32>,
}

/// What a replica said in `done`.
struct Finished {
    stats: Stats,
    notes: Vec<String>,
    result: Option<String>,
    flows: Flows,
}

/// The control socket and every replica of one run.
struct Supervisor<'t> {
    topology: &'t Topology,
    control: zmq::Socket,
    control_ep: String,
    dir: PathBuf,
    replicas: Vec<Replica>,
    by_id: HashMap<String, usize>,
    started: Instant,
    ready_at: Option<Duration>,
    wired: bool,
    services_stopped: bool,
    progress: Option<Progress>,
    style: Style,
    relay: Option<RelayThread>,
    watchdog: Option<Watchdog>,
    zygote: Option<Forker>,
    forkserver: Option<Forker>,
    /// What went wrong without failing the run at once: replicas that died mid-stream.
    incomplete: Vec<String>,
    /// Edges that delivered fewer records than were sent, explained by invalid frames.
    unreceived: Vec<String>,
    /// After a first Ctrl-C or SIGTERM: which one, and when the grace period ends.
    stopping: Option<(i32, Instant)>,
    /// The output pipes of the replicas forked before the relay existed.
    forked_output: Vec<(usize, OwnedFd, OwnedFd)>,
    /// Which replicas are started here, and who coordinates.
    placement: Placement,
    /// The coordinator: the other hosts' launchers. Empty on one host.
    members: Vec<Member>,
    /// Exits the other hosts reported and `reap_exited` has not taken yet.
    remote_exits: HashMap<usize, i32>,
    /// A SIGINT or SIGTERM another host's launcher passed on.
    remote_signal: Option<i32>,
    /// When this launcher last sent a heartbeat.
    last_beat: Instant,
    /// Allows only the declared hosts onto the coordinator's tcp control socket.
    zap: Option<crate::runtime::zap::Zap>,
    /// The control socket's context.
    ctx: zmq::Context,
    /// Which run of a `--repeat` this is.
    run: u32,
    /// The run's secret, asked of every peer of a tcp socket (`runtime/zap.rs`).
    secret: Option<String>,
    /// The run's private directory, removed last.
    _dir: tempfile::TempDir,
}

/// The coordinator's view of another host's launcher.
struct Member {
    /// Index in `[hosts]`.
    host: usize,
    /// When it joined, and when it was last heard from.
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

/// Run `topology` to the end. The first SIGINT or SIGTERM stops it gracefully (within
/// `opts.grace`), a second kills it. With `--host`, this is the coordinator's side: the
/// other hosts' launchers [`join`] it.
pub fn run(topology: &Topology, opts: &RunOptions) -> Result<Outcome, RunError> {
    let mut sup = Supervisor::start(topology, opts)?;
    let result = sup.setup(opts).and_then(|()| sup.supervise(opts));
    if let Some(p) = &sup.progress {
        p.clear();
    }
    sup.kill_and_reap();
    let incomplete = std::mem::take(&mut sup.incomplete);
    let result = result.map(|mut outcome| {
        outcome.incomplete = incomplete;
        outcome
    });
    let ok = result.as_ref().is_ok_and(|o| crate::exit_codes::result_stands(o.exit_code()));
    let result = match sup.settle_outputs(ok) {
        Err(e) if ok => Err(e),
        _ => result,
    };
    match &result {
        Ok(outcome) => sup.end_members(outcome.exit_code(), None),
        Err(e) => sup.end_members(e.exit_code(), Some(e.to_string())),
    }
    result
}

/// Run host `opts.placement`'s share of `topology`, joined to the coordinating launcher of
/// the first host: start, relay and reap this host's replicas, report their exits, and end
/// when the coordinator says the run is over (its exit status) or stops answering.
pub fn join(topology: &Topology, opts: &RunOptions) -> Result<u8, RunError> {
    // Not a node is started before this run's coordinator answered: after a `--repeat`
    // run, the previous coordinator's socket may still be open, and a node's one `hello`
    // must not reach it.
    if let Some(code) = await_coordinator(topology, opts)? {
        return Ok(code);
    }
    let mut sup = Supervisor::start(topology, opts)?;
    let result = sup.setup(opts).and_then(|()| sup.supervise_member(opts));
    if let Err(e) = &result {
        sup.leave(e);
    }
    sup.kill_and_reap();
    let ok = result.as_ref().is_ok_and(|&code| crate::exit_codes::result_stands(code));
    match sup.settle_outputs(ok) {
        Err(e) if ok => Err(e),
        _ => result,
    }
}

/// Host `host`'s `join` for run `run`, from this launcher.
fn join_link(t: &Topology, host: usize, run: u32) -> super::link::Link {
    super::link::Link::Join {
        host: t.hosts[host].name.clone(),
        topology: t.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        run,
    }
}

/// The coordinator never answered a host's `join` at `endpoint`.
fn coordinator_silent(t: &Topology, opts: &RunOptions, endpoint: &str) -> RunError {
    let coordinator = &t.hosts[Topology::COORDINATOR];
    RunError::Host {
        host: coordinator.name.clone(),
        cause: format!(
            "the coordinator did not answer within {} s at {endpoint} (run `procnet run {} --host {}` on the machine \
             at {})",
            opts.startup_timeout.as_secs_f64(),
            t.path.display(),
            coordinator.name,
            coordinator.address
        ),
    }
}

/// Join this run's coordinator with a socket of its own, then close it (and its context,
/// whose threads end with it, so the fork phase can follow). Some(code) if the run ended
/// before this host joined.
fn await_coordinator(t: &Topology, opts: &RunOptions) -> Result<Option<u8>, RunError> {
    use super::link::{routing_id, Link, BEAT};
    let Placement::Host { host, .. } = opts.placement else { return Ok(None) };
    let endpoint = opts.placement.tcp_control(t, false).expect("a host has a tcp control endpoint");
    let coordinator = &t.hosts[Topology::COORDINATOR];
    let setup = |e: zmq::Error| RunError::Setup(format!("failed to reach the coordinator at `{endpoint}`: {e}"));
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::DEALER).map_err(setup)?;
    socket.set_linger(0).map_err(setup)?;
    socket.set_ipv6(true).map_err(setup)?;
    socket.set_identity(routing_id(&t.hosts[host].name).as_bytes()).map_err(setup)?;
    if let Secret::Shared(secret) = &opts.secret {
        let access = crate::runtime::zap::Access { allow: Vec::new(), secret: Some(secret.clone()) };
        access.client(&socket, &endpoint).map_err(setup)?;
    }
    socket.connect(&endpoint).map_err(setup)?;
    let join = join_link(t, host, opts.run);
    let started = Instant::now();
    let mut sent: Option<Instant> = None;
    loop {
        if let Some(signal) = super::signals::take() {
            return Err(RunError::Interrupted { signal, drained: false });
        }
        if started.elapsed() > opts.startup_timeout {
            return Err(coordinator_silent(t, opts, &endpoint));
        }
        if sent.is_none_or(|at| at.elapsed() >= BEAT) {
            sent = Some(Instant::now());
            let _ = socket.send(join.encode(), zmq::DONTWAIT);
        }
        if socket.poll(zmq::POLLIN, 50).unwrap_or(0) == 0 {
            continue;
        }
        match socket.recv_bytes(0).ok().map(|f| Link::decode(&f)) {
            Some(Ok(Link::Welcome { run })) if run == opts.run => return Ok(None),
            Some(Ok(Link::End { code, error, run })) if run == opts.run => {
                if let Some(error) = error {
                    eprintln!("procnet: the run failed (reported by host `{}`): {error}", coordinator.name);
                }
                return Ok(Some(code));
            }
            _ => {}
        }
    }
}

impl<'t> Supervisor<'t> {
    /// The fork phase, then the supervisor with its control socket (not bound yet).
    fn start(topology: &'t Topology, opts: &RunOptions) -> Result<Supervisor<'t>, RunError> {
        let started = Instant::now();
        sane_process_state();
        crate::limits::raise_open_files();
        let dir = run_dir()?;
        let placement = opts.placement;
        let secret = match &opts.secret {
            Secret::PerRun => Some(
                crate::runtime::zap::new_secret()
                    .map_err(|e| RunError::Setup(format!("failed to make the run's secret: {e}")))?,
            ),
            Secret::Shared(s) => Some(s.clone()),
            Secret::Off => None,
        };
        let replicas = plan(topology, dir.path());
        let width = replicas.iter().map(|r| r.id.len()).max().unwrap_or(0);
        let style = Style::detect(width);
        // Counted from now on, so a signal during the fork phase is seen as soon as the loop runs.
        super::signals::install()
            .map_err(|e| RunError::Setup(format!("failed to install the signal handlers: {e}")))?;

        // The fork phase. Fork safety rests on this: here the launcher has one thread and no
        // ZeroMQ context, so what it forks starts clean.
        match single_threaded() {
            Ok(true) => {}
            Ok(false) => return Err(RunError::Setup("refusing to fork: the launcher already has threads".into())),
            Err(e) => return Err(RunError::Setup(format!("failed to count the launcher's threads: {e}"))),
        }
        let watchdog =
            Watchdog::fork(dir.path()).map_err(|e| RunError::Setup(format!("failed to start the watchdog: {e}")))?;
        let mut early = Early { watchdog: Some(watchdog), zygote: None, forked: Vec::new() };
        // Only the coordinator restarts replicas (its own host's).
        let needs_zygote = placement.coordinates()
            && replicas.iter().any(|r| {
                let n = &topology.nodes[r.node];
                n.start == StartMethod::Fork && n.restart.on_failure && placement.here(topology, r.node, r.index)
            });
        if needs_zygote {
            let z = Forker::fork_zygote(&style).map_err(|e| early.fail(format!("failed to fork the zygote: {e}")))?;
            early.guard(z.pid);
            early.zygote = Some(z);
        }
        // A host that joins a coordinator gives its replicas the coordinator's tcp endpoint;
        // the coordinator's own replicas use its ipc endpoint.
        let control_ep = match placement.tcp_control(topology, false) {
            Some(tcp) if !placement.coordinates() => tcp,
            _ => crate::topology::ipc::control_endpoint(dir.path()),
        };
        for (i, r) in replicas.iter().enumerate() {
            let node = &topology.nodes[r.node];
            if !placement.here(topology, r.node, r.index) {
                continue;
            }
            if let (StartMethod::Fork, Runner::Builtin(kind)) = (node.start, &node.runner) {
                let identity = identity(topology, r, &control_ep, dir.path(), secret.as_deref());
                let env = env_of(topology, r, &control_ep, dir.path(), secret.as_deref());
                let f = fork_node(&identity, kind, &topology.base_dir, &env)
                    .map_err(|e| early.fail(format!("failed to fork node `{}`: {e}", r.id)))?;
                early.guard(f.pid);
                early.forked.push((i, f));
            }
        }

        // From here on: threads and a ZeroMQ context.
        let kind = if placement.coordinates() { zmq::ROUTER } else { zmq::DEALER };
        let ctx = zmq::Context::new();
        let control = match ctx.socket(kind) {
            Ok(socket) => socket,
            Err(e) => return Err(early.fail(format!("failed to create the control socket: {e}"))),
        };
        let Early { watchdog, zygote, forked } = early;
        let members = match placement {
            Placement::Host { host, .. } if host == Topology::COORDINATOR => (0..topology.hosts.len())
                .filter(|&h| h != Topology::COORDINATOR && topology.runs_on(h))
                .map(|host| Member {
                    host,
                    joined: None,
                    pid: None,
                    nodes_seen: None,
                    lost: false,
                    interrupted: false,
                    last_heard: Instant::now(),
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut sup = Supervisor {
            topology,
            control,
            control_ep,
            dir: dir.path().to_path_buf(),
            replicas,
            by_id: HashMap::new(),
            started,
            ready_at: None,
            wired: false,
            services_stopped: false,
            progress: None,
            style,
            relay: None,
            watchdog,
            zygote,
            forkserver: None,
            incomplete: Vec::new(),
            unreceived: Vec::new(),
            stopping: None,
            forked_output: Vec::new(),
            placement,
            members,
            remote_exits: HashMap::new(),
            remote_signal: None,
            last_beat: Instant::now(),
            zap: None,
            ctx,
            run: opts.run,
            secret,
            _dir: dir,
        };
        // Known before anything can fail, so that every path kills and reaps them.
        for (i, f) in forked {
            sup.replicas[i].pid = f.pid;
            sup.replicas[i].spawned_at = Instant::now();
            sup.forked_output.push((i, f.stdout, f.stderr));
        }
        Ok(sup)
    }
}

/// What the fork phase made, cleaned up if it fails half-way.
struct Early {
    watchdog: Option<Watchdog>,
    zygote: Option<Forker>,
    forked: Vec<(usize, Forked)>,
}

impl Early {
    fn guard(&self, pid: libc::pid_t) {
        if let Some(w) = &self.watchdog {
            w.guard(pid);
        }
    }

    /// Kill and reap everything forked so far; the error to return.
    fn fail(&mut self, message: String) -> RunError {
        let mut pids: Vec<libc::pid_t> = self.forked.iter().map(|(_, f)| f.pid).collect();
        pids.extend(self.zygote.take().map(|z| z.pid));
        for &pid in &pids {
            signal_group(pid as u32, libc::SIGKILL);
        }
        for pid in pids {
            waitpid(pid, 0);
        }
        if let Some(w) = self.watchdog.take() {
            w.end();
        }
        RunError::Setup(message)
    }
}

/// Every replica of the topology, not started yet, with the endpoints it will bind.
fn plan(t: &Topology, dir: &Path) -> Vec<Replica> {
    let mut replicas = Vec::new();
    for (node_id, node) in t.nodes.iter().enumerate() {
        for index in 0..node.replicas {
            let id = format!("{}.{index}", node.name);
            // With `[hosts]`, tcp binds on the replica's host's address (or its `bind`).
            let address = t.bind_address(t.replica_host(node_id, index));
            let endpoint = |suffix: &str| match node.transport {
                Transport::Ipc => crate::topology::ipc::endpoint(dir, &id, suffix),
                Transport::Tcp => format!("tcp://{}:*", in_url(address)),
            };
            let bind =
                node.inputs.iter().any(|i| t.port(i.node, i.port).pattern == Pattern::Push).then(|| endpoint(""));
            // `!` cannot be in a port name, so `<port>!drop` never collides.
            let pub_ports =
                pub_sockets(t, node_id).into_iter().map(|key| (key.clone(), endpoint(&format!(".{key}")))).collect();
            replicas.push(Replica {
                node: node_id,
                index,
                id,
                pid: 0,
                parent: Parent::Launcher,
                phase: Phase::Spawned,
                bind,
                pub_ports,
                endpoint: None,
                published: BTreeMap::new(),
                ports: BTreeMap::new(),
                latest: Stats::default(),
                report: None,
                exit: None,
                restarts: 0,
                midstream_restarts: 0,
                restart_at: None,
                spawned_at: Instant::now(),
                failed: None,
                remote_pid: None,
            });
        }
    }
    replicas
}

/// Whether process `pid` is replica `id` of this topology (by its environment): a pid that
/// came over the network is checked before it is signalled.
fn is_replica(pid: u32, t: &Topology, id: &str) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    let has = |key: &str, value: &str| {
        let want = format!("{key}={value}");
        environ.split(|&b| b == 0).any(|kv| kv == want.as_bytes())
    };
    let (node, replica) = id.rsplit_once('.').unwrap_or((id, ""));
    has(crate::runtime::vars::NODE, node)
        && has(crate::runtime::vars::REPLICA, replica)
        && has(crate::runtime::vars::TOPOLOGY, &t.name)
}

/// An IP address as the host part of a tcp endpoint (IPv6 in brackets).
fn in_url(address: std::net::IpAddr) -> String {
    match address {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// What a replica reported binding, as its peers must connect to it: a wildcard bind (a
/// host with `bind = "0.0.0.0"`) becomes the declared address of the replica's host.
fn advertised(t: &Topology, host: Option<usize>, endpoint: String) -> String {
    let Some((ip, port)) = endpoint.strip_prefix("tcp://").and_then(|rest| rest.rsplit_once(':')) else {
        return endpoint;
    };
    match ip.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
        Ok(a) if a.is_unspecified() && !t.hosts.is_empty() => {
            let h = host.unwrap_or(Topology::COORDINATOR);
            format!("tcp://{}:{port}", in_url(t.hosts[h].address))
        }
        _ => endpoint,
    }
}

/// The identity replica `r` gets.
fn identity(t: &Topology, r: &Replica, control: &str, dir: &Path, secret: Option<&str>) -> Identity {
    Identity {
        node: t.nodes[r.node].name.clone(),
        replica: r.index,
        replicas: t.nodes[r.node].replicas,
        control: control.to_string(),
        bind: r.bind.clone(),
        pub_ports: r.pub_ports.clone(),
        restart: r.midstream_restarts,
        max_message_bytes: Some(t.nodes[r.node].max_message_bytes),
        allow: super::spawn::allowed_peers(t),
        run_dir: Some(dir.to_path_buf()),
        secret: secret.map(str::to_string),
    }
}

/// The `PROCNET_*` variables replica `r` gets.
fn env_of(t: &Topology, r: &Replica, control: &str, dir: &Path, secret: Option<&str>) -> Vec<(String, String)> {
    let pub_ports =
        (!r.pub_ports.is_empty()).then(|| serde_json::to_string(&r.pub_ports).expect("endpoints serialize"));
    let launch = Launch {
        node: r.node,
        replica: r.index,
        control,
        bind: r.bind.as_deref(),
        pub_ports: pub_ports.as_deref(),
        run_dir: dir,
        restart: r.midstream_restarts,
        secret,
    };
    node_env(t, &launch).into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Descriptors 0 to 2 open (so no pipe of ours takes their numbers) and SIGCHLD at its
/// default (so children can be waited for), whatever the launcher was started with.
fn sane_process_state() {
    // SAFETY: opening /dev/null and setting a signal disposition in this process.
    unsafe {
        loop {
            let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if fd < 0 {
                break;
            }
            if fd > 2 {
                libc::close(fd);
                break;
            }
        }
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
}

/// Whether process `pid` exists (and is not a zombie).
fn process_alive(pid: libc::pid_t) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Wait for `pid` (`flags`: 0 or WNOHANG); its raw wait status once it has ended.
fn waitpid(pid: libc::pid_t, flags: i32) -> Option<i32> {
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

/// `text` quoted for a POSIX shell, if it needs to be.
fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:*,=+@".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Create (or truncate) `path`, readable and writable by this user only, whatever the umask.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

fn run_dir() -> Result<tempfile::TempDir, RunError> {
    let base = crate::topology::ipc::run_dir_parent();
    use std::os::unix::fs::PermissionsExt;
    let failed =
        |e: std::io::Error| RunError::Setup(format!("failed to create a run directory in `{}`: {e}", base.display()));
    // Private whatever the umask: its sockets are the run's, and no other user may reach them.
    let dir = tempfile::Builder::new()
        .prefix(crate::topology::ipc::RUN_DIR_PREFIX)
        .rand_bytes(crate::topology::ipc::RUN_DIR_RANDOM)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(failed)?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    Ok(dir)
}

impl Supervisor<'_> {
    /// Print `text` on stderr as the launcher's, above the live view if there is one.
    fn say(&self, text: &str) {
        match &self.progress {
            Some(p) => p.handle().suspend(|| eprintln!("procnet: {text}")),
            None => eprintln!("procnet: {text}"),
        }
    }

    /// Bind the control socket, start the relay, the forkserver and every replica not forked
    /// in the fork phase.
    fn setup(&mut self, opts: &RunOptions) -> Result<(), RunError> {
        let configure = |e| RunError::Setup(format!("failed to configure the control socket: {e}"));
        self.control.set_linger(0).map_err(configure)?;
        self.control.set_ipv6(true).map_err(configure)?;
        if self.placement.coordinates() {
            // A restarted replica connects with its predecessor's identity: it takes it over.
            self.control.set_router_handover(true).map_err(configure)?;
            self.control
                .bind(&self.control_ep)
                .map_err(|e| RunError::Setup(format!("failed to bind `{}`: {e}", self.control_ep)))?;
            crate::runtime::private_socket(&self.control_ep)
                .map_err(|e| RunError::Setup(format!("failed to make `{}` private: {e}", self.control_ep)))?;
            if let Some(tcp) = self.placement.tcp_control(self.topology, true) {
                self.bind_tcp_control(&tcp)?;
            }
        } else {
            let Placement::Host { host, .. } = self.placement else { unreachable!("only a host joins") };
            let me = &self.topology.hosts[host].name;
            self.control.set_identity(super::link::routing_id(me).as_bytes()).map_err(configure)?;
            self.access().client(&self.control, &self.control_ep).map_err(configure)?;
            self.control
                .connect(&self.control_ep)
                .map_err(|e| RunError::Setup(format!("failed to connect to `{}`: {e}", self.control_ep)))?;
            self.control.send(self.join_message().encode(), 0).map_err(configure)?;
        }
        for r in &mut self.replicas {
            if matches!(self.topology.nodes[r.node].runner, Runner::External) {
                r.parent = Parent::External;
            } else if !self.placement.here(self.topology, r.node, r.index) {
                r.parent = Parent::Remote(self.topology.replica_host(r.node, r.index));
            }
        }
        self.announce_external(opts)?;
        if self.placement.coordinates() {
            self.progress = Progress::for_terminal(self.topology);
        }
        let relay = RelayThread::start(self.progress.as_ref().map(Progress::handle))
            .map_err(|e| RunError::Setup(format!("failed to start the log relay: {e}")))?;
        self.relay = Some(relay);
        for (i, out, err) in std::mem::take(&mut self.forked_output) {
            self.relay_output(i, out, err);
        }
        for i in 0..self.replicas.len() {
            self.by_id.insert(self.replicas[i].id.clone(), i);
        }
        let (t, placement) = (self.topology, self.placement);
        let forkserved = |r: &Replica| t.nodes[r.node].start == StartMethod::Forkserver && r.parent == Parent::Launcher;
        if self.replicas.iter().any(|r| forkserved(r) && placement.here(t, r.node, r.index)) {
            let server = Forker::spawn_server(&self.style)
                .map_err(|e| RunError::Setup(format!("failed to start the forkserver: {e}")))?;
            self.guard(server.pid);
            self.forkserver = Some(server);
        }
        // The fork servers' output is their nodes', prefixed already: pass it on as it is.
        let relay = self.relay.as_ref().expect("started above");
        for server in self.zygote.iter_mut().chain(self.forkserver.iter_mut()) {
            if let Some((out, err)) = server.output.take() {
                relay.add(out, Vec::new(), Dest::Stdout);
                relay.add(err, Vec::new(), Dest::Stderr);
            }
        }
        for i in 0..self.replicas.len() {
            if self.replicas[i].pid == 0 && self.replicas[i].parent == Parent::Launcher {
                self.start_replica(i)?;
            }
        }
        Ok(())
    }

    /// Say what each replica of an external node needs to join (on stderr, and as JSON in
    /// `--endpoints FILE`): its `PROCNET_*` environment.
    fn announce_external(&self, opts: &RunOptions) -> Result<(), RunError> {
        let external: Vec<&Replica> = self.replicas.iter().filter(|r| r.parent == Parent::External).collect();
        // The coordinator says it, for every host.
        if external.is_empty() || !self.placement.coordinates() {
            return Ok(());
        }
        let mut json = Vec::new();
        for r in &external {
            // On another host, it reaches the coordinator over tcp.
            let control = match self.placement.tcp_control(self.topology, false) {
                Some(tcp) if !self.placement.here(self.topology, r.node, r.index) => tcp,
                _ => self.control_ep.clone(),
            };
            let env = env_of(self.topology, r, &control, &self.dir, self.secret.as_deref());
            let line: Vec<String> = env.iter().map(|(k, v)| format!("{k}={}", shell_quote(v))).collect();
            eprintln!("procnet: waiting for external node `{}`; start it with this environment:", r.id);
            eprintln!("  {}", line.join(" "));
            json.push(serde_json::json!({
                "id": r.id,
                "node": self.topology.nodes[r.node].name,
                "replica": r.index,
                "env": env.into_iter().map(|(k, v)| (k, serde_json::Value::from(v))).collect::<serde_json::Map<String, serde_json::Value>>(),
            }));
        }
        if let Some(path) = &opts.endpoints_file {
            let doc = serde_json::json!({ "topology": self.topology.name, "replicas": json });
            // Written whole, then renamed: a reader polling for the file never sees half of it.
            // Readable by this user only: it holds the run's secret.
            let tmp = path.with_extension("tmp");
            let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
            private_file(&tmp)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| RunError::Setup(format!("failed to write `{}`: {e}", path.display())))?;
        }
        Ok(())
    }

    fn guard(&self, pid: libc::pid_t) {
        if let Some(w) = &self.watchdog {
            w.guard(pid);
        }
    }

    fn relay_output(&self, i: usize, stdout: OwnedFd, stderr: OwnedFd) {
        let r = &self.replicas[i];
        if let Some(relay) = &self.relay {
            relay.add(stdout, self.style.prefix(&r.id, r.node, Dest::Stdout), Dest::Stdout);
            relay.add(stderr, self.style.prefix(&r.id, r.node, Dest::Stderr), Dest::Stderr);
        }
    }

    /// Start replica `i` (again, after a restart) by its node's start method.
    fn start_replica(&mut self, i: usize) -> Result<(), RunError> {
        let t = self.topology;
        let r = &self.replicas[i];
        let node = &t.nodes[r.node];
        let restarted = r.restarts > 0;
        let (pid, parent) = match (&node.runner, node.start) {
            (Runner::Builtin(kind), StartMethod::Fork | StartMethod::Forkserver) => {
                let (forker, parent) = match node.start {
                    StartMethod::Forkserver => (self.forkserver.as_mut(), Parent::Forkserver),
                    _ => (self.zygote.as_mut(), Parent::Zygote),
                };
                let forker = forker.expect("started in the fork phase or setup when a node needs it");
                let identity = identity(t, r, &self.control_ep, &self.dir, self.secret.as_deref());
                let env = env_of(t, r, &self.control_ep, &self.dir, self.secret.as_deref());
                let pid = forker
                    .fork(&identity, kind, &t.base_dir, env, r.node)
                    .map_err(|e| RunError::Spawn { id: r.id.clone(), cause: format!("the fork server failed: {e}") })?;
                (pid, parent)
            }
            _ => {
                let env = env_of(t, r, &self.control_ep, &self.dir, self.secret.as_deref());
                let mut child = spawn(t, r.node, &env)
                    .map_err(|e| RunError::Spawn { id: r.id.clone(), cause: describe_spawn_error(t, r.node, &e) })?;
                let (out, err) = (child.stdout.take(), child.stderr.take());
                let pid = child.id() as libc::pid_t;
                if let (Some(out), Some(err)) = (out, err) {
                    self.relay_output(i, out.into(), err.into());
                }
                (pid, Parent::Launcher)
            }
        };
        self.guard(pid);
        let r = &mut self.replicas[i];
        r.pid = pid;
        r.parent = parent;
        r.phase = Phase::Spawned;
        r.restart_at = None;
        r.spawned_at = Instant::now();
        if restarted {
            eprintln!(
                "procnet: restarted node `{}` (restart {} of {})",
                r.id, r.restarts, t.nodes[r.node].restart.max_restarts
            );
        }
        Ok(())
    }

    fn supervise(&mut self, opts: &RunOptions) -> Result<Outcome, RunError> {
        loop {
            self.tend_members(opts)?;
            if let Some(signal) = super::signals::take().or_else(|| self.remote_signal.take()) {
                if self.stopping.is_some() || self.ready_at.is_none() {
                    // A second signal, or one before the network started: stop at once.
                    return Err(RunError::Interrupted { signal, drained: false });
                }
                // The first: ask every node to stop. Sources end their streams, the rest
                // drains, sinks and tallies flush; nodes that do not finish in time are killed.
                self.stopping = Some((signal, Instant::now() + opts.grace));
                self.say(&format!(
                    "{}: stopping gracefully within {} s (send it again to kill at once)",
                    super::spawn::signal_name(signal),
                    opts.grace.as_secs_f64()
                ));
                for i in 0..self.replicas.len() {
                    if self.replicas[i].phase == Phase::Started {
                        self.tell(i, &Message::Stop)?;
                    }
                }
            }
            if let Some((signal, deadline)) = self.stopping {
                if Instant::now() > deadline {
                    return Err(RunError::Interrupted { signal, drained: false });
                }
            }
            let all_done = self.replicas.iter().all(|r| r.phase >= Phase::Released);
            self.receive(if all_done { 5 } else { 50 })?;
            self.reap_exited()?;
            self.restart_due()?;
            if let Some(p) = &self.progress {
                p.update(|n| sum_stats(self.replicas.iter().filter(|r| r.node == n).map(|r| &r.latest)));
            }
            if self.replicas.iter().all(|r| r.phase == Phase::Exited) {
                return match self.stopping {
                    // Every node finished, but the run was cut short: not a complete result.
                    Some((signal, _)) => Err(RunError::Interrupted { signal, drained: true }),
                    None => Ok(self.outcome()),
                };
            }
            if self.ready_at.is_none() && self.started.elapsed() > opts.startup_timeout {
                // A host whose launcher never came explains its nodes' absence.
                self.tend_members(opts)?;
                let waiting = self.replicas.iter().filter(|r| r.phase < Phase::Ready).map(|r| r.id.clone()).collect();
                return Err(RunError::Startup { waiting, timeout: opts.startup_timeout });
            }
            // A replica restarted mid-stream has the same time to join as the first ones had.
            if self.ready_at.is_some() {
                let late: Vec<String> = self
                    .replicas
                    .iter()
                    .filter(|r| matches!(r.phase, Phase::Spawned | Phase::Joined | Phase::Ready))
                    .filter(|r| r.spawned_at.elapsed() > opts.startup_timeout)
                    .map(|r| r.id.clone())
                    .collect();
                if !late.is_empty() {
                    return Err(RunError::Startup { waiting: late, timeout: opts.startup_timeout });
                }
            }
        }
    }

    /// Handle every control message that arrives within `timeout_ms`, and what the fork
    /// servers report.
    fn receive(&mut self, timeout_ms: i64) -> Result<(), RunError> {
        let mut timeout = timeout_ms;
        loop {
            let Some(control_ready) = self.poll_io(timeout)? else { return Ok(()) };
            timeout = 0;
            if !control_ready {
                continue;
            }
            let parts = self
                .control
                .recv_multipart(0)
                .map_err(|e| RunError::Setup(format!("failed to read the control socket: {e}")))?;
            let [identity, frame] = parts.as_slice() else { continue };
            if let Some(host) = identity.strip_prefix(b"@") {
                self.on_link(host, frame)?;
                continue;
            }
            let Some(&i) = std::str::from_utf8(identity).ok().and_then(|id| self.by_id.get(id)) else {
                continue;
            };
            if let Parent::Remote(Some(h)) = self.replicas[i].parent {
                if let Some(m) = self.members.iter_mut().find(|m| m.host == h) {
                    m.nodes_seen.get_or_insert_with(Instant::now);
                }
            }
            // Messages from a replica that died (and may be restarting) are stale.
            if self.replicas[i].phase <= Phase::Restarting || self.replicas[i].phase == Phase::Exited {
                continue;
            }
            let msg = wire::decode_control(frame).map_err(|e| RunError::NodeFailed {
                id: self.replicas[i].id.clone(),
                cause: format!("sent an invalid control message: {e}"),
            })?;
            self.handle(i, msg)?;
        }
    }

    /// Wait up to `timeout_ms` for the control socket or a fork server; handle what the fork
    /// servers report. None if nothing arrived (or a signal did: the loop picks it up from
    /// the interrupt channel); else whether the control socket is readable.
    fn poll_io(&mut self, timeout_ms: i64) -> Result<Option<bool>, RunError> {
        let servers: Vec<i32> = self.zygote.iter().chain(&self.forkserver).map(Forker::fd).collect();
        let mut items = vec![self.control.as_poll_item(zmq::POLLIN)];
        items.extend(servers.iter().map(|&fd| zmq::PollItem::from_fd(fd, zmq::POLLIN)));
        let n = match zmq::poll(&mut items, timeout_ms) {
            Err(zmq::Error::EINTR) => return Ok(None),
            other => other.map_err(|e| RunError::Setup(format!("failed to poll the control socket: {e}")))?,
        };
        let control_ready = items[0].is_readable();
        let servers_ready = items[1..].iter().any(zmq::PollItem::is_readable);
        drop(items);
        if n == 0 {
            return Ok(None);
        }
        if servers_ready {
            for (name, server) in [("zygote", &mut self.zygote), ("forkserver", &mut self.forkserver)] {
                if let Some(s) = server {
                    s.poll().map_err(|e| RunError::Setup(format!("the {name} failed: {e}")))?;
                }
            }
        }
        Ok(Some(control_ready))
    }

    fn handle(&mut self, i: usize, msg: Message) -> Result<(), RunError> {
        let push_inputs = self.has_push_inputs(self.replicas[i].node);
        let r = &mut self.replicas[i];
        match msg {
            Message::Hello { input: None, .. } if push_inputs => {
                return Err(RunError::NodeFailed {
                    id: r.id.clone(),
                    cause: "said hello without an input endpoint, but it has inputs (bind PROCNET_BIND first)".into(),
                });
            }
            Message::Hello { ref ports, .. }
                if r.phase == Phase::Spawned
                    && pub_sockets(self.topology, r.node).iter().any(|key| !ports.contains_key(key)) =>
            {
                return Err(RunError::NodeFailed {
                    id: r.id.clone(),
                    cause: "said hello without the endpoint of each of its pub ports (bind each port of PROCNET_PUB)"
                        .into(),
                });
            }
            Message::Hello { ref publish, .. }
                if r.phase == Phase::Spawned && self.wired && !r.published.is_empty() && *publish != r.published =>
            {
                return Err(RunError::NodeFailed {
                    id: r.id.clone(),
                    cause: format!(
                        "was restarted and published different values ({publish:?}, before {:?}); \
                         the other nodes were given the old ones",
                        r.published
                    ),
                });
            }
            Message::Hello { input, publish, ports, pid, .. } if r.phase == Phase::Spawned => {
                let mut watch = None;
                r.phase = Phase::Joined;
                // An external replica on another host has a pid of another machine: not
                // ours to watch.
                if r.parent == Parent::External && self.placement.here(self.topology, r.node, r.index) {
                    // Watched by its pid from now on (it runs on this host).
                    r.pid = pid as libc::pid_t;
                } else if r.parent == Parent::External {
                    let h = self.topology.replica_host(r.node, r.index);
                    if self.members.iter().any(|m| Some(m.host) == h) {
                        // Watched by its host's launcher, told now and with every heartbeat.
                        r.remote_pid = Some(pid);
                        watch = h.map(|h| (self.topology.hosts[h].name.clone(), r.id.clone(), pid));
                    }
                }
                // A restart binds what this one bound, so peers reconnect to it.
                if input.is_some() {
                    r.bind.clone_from(&input);
                }
                for (key, ep) in &ports {
                    r.pub_ports.insert(key.clone(), ep.clone());
                }
                // Peers are given the host's declared address for a wildcard bind.
                let host = self.topology.replica_host(r.node, r.index);
                r.endpoint = input.map(|ep| advertised(self.topology, host, ep));
                r.ports = ports.into_iter().map(|(k, ep)| (k, advertised(self.topology, host, ep))).collect();
                r.published = publish;
                if let Some((host, id, pid)) = watch {
                    self.link_send(&host, &super::link::Link::Watch { id, pid });
                }
                if self.wired {
                    // A restarted replica, after the others were wired: the same wiring.
                    let msg = self.wiring(i);
                    self.tell(i, &msg)?;
                } else if self.replicas.iter().all(|r| r.phase >= Phase::Joined) {
                    self.send_wiring()?;
                }
            }
            Message::Ready if r.phase == Phase::Joined => {
                r.phase = Phase::Ready;
                if self.ready_at.is_some() {
                    // A replica restarted mid-stream: it starts at once, and its upstream
                    // replicas send it their `eos` again, in case its predecessor took them.
                    self.replicas[i].phase = Phase::Started;
                    self.tell(i, &Message::Start)?;
                    if self.stopping.is_some() {
                        // Restarted while the run stops: it stops like the others did.
                        self.tell(i, &Message::Stop)?;
                    }
                    let to = self.replicas[i].id.clone();
                    for u in self.upstream_replicas(self.replicas[i].node) {
                        if matches!(self.replicas[u].phase, Phase::Started | Phase::Done) {
                            self.tell(u, &Message::Resend { to: to.clone() })?;
                        }
                    }
                } else if self.replicas.iter().all(|r| r.phase >= Phase::Ready) {
                    self.ready_at = Some(self.started.elapsed());
                    for j in 0..self.replicas.len() {
                        self.replicas[j].phase = self.replicas[j].phase.max(Phase::Started);
                        self.tell(j, &Message::Start)?;
                    }
                    self.stop_idle_services()?;
                }
            }
            Message::Stats(stats) if r.phase == Phase::Started => r.latest = stats,
            Message::Done { stats, notes, result, flows } if r.phase == Phase::Started => {
                r.phase = Phase::Done;
                r.latest = stats.clone();
                r.report = Some(Finished { stats, notes, result, flows });
                self.release_finished()?;
                self.stop_idle_services()?;
            }
            // Counters that crossed a `done` or a restart in flight.
            Message::Stats(_) => {}
            // Restartable: its exit decides (see `reap_exited`), with this as the cause.
            Message::Failed { error } if self.topology.nodes[r.node].restart.on_failure && r.phase < Phase::Done => {
                r.failed = Some(error);
            }
            Message::Failed { error } => return Err(RunError::NodeFailed { id: r.id.clone(), cause: error }),
            other => {
                return Err(RunError::NodeFailed {
                    id: r.id.clone(),
                    cause: format!("sent `{}` out of turn (it was {:?})", other.type_name(), r.phase),
                })
            }
        }
        Ok(())
    }

    /// The replicas of every node that `node` reads from.
    fn upstream_replicas(&self, node: NodeId) -> Vec<usize> {
        let t = self.topology;
        (0..self.replicas.len())
            .filter(|&u| t.nodes[node].inputs.iter().any(|i| i.node == self.replicas[u].node))
            .collect()
    }

    /// The replicas of every node that reads `node`.
    fn downstream_replicas(&self, node: NodeId) -> Vec<usize> {
        let t = self.topology;
        (0..self.replicas.len())
            .filter(|&d| t.nodes[self.replicas[d].node].inputs.iter().any(|i| i.node == node))
            .collect()
    }

    /// Once every node but the services is done, nothing needs the services any more: ask
    /// them to stop (they then finish like any node).
    fn stop_idle_services(&mut self) -> Result<(), RunError> {
        let is_service =
            |r: &Replica| matches!(&self.topology.nodes[r.node].runner, Runner::Builtin(k) if k.is_service());
        if self.services_stopped || !self.replicas.iter().filter(|r| !is_service(r)).all(|r| r.phase >= Phase::Done) {
            return Ok(());
        }
        self.services_stopped = true;
        let services: Vec<usize> = (0..self.replicas.len()).filter(|&i| is_service(&self.replicas[i])).collect();
        for i in services {
            self.tell(i, &Message::Stop)?;
        }
        Ok(())
    }

    fn has_push_inputs(&self, node: NodeId) -> bool {
        let t = self.topology;
        t.nodes[node].inputs.iter().any(|i| t.port(i.node, i.port).pattern == Pattern::Push)
    }

    /// Once every replica is done, and every edge delivered what was sent (see
    /// `super::conservation`), send `bye` to all of them at once.
    ///
    /// Why all at once, at the end: a replica that leaves early can no longer read what its
    /// upstream replicas still send it (after a forged or mistaken `eos`, say), and they would
    /// block on it forever; and a producer must not close its connections before its
    /// consumers have read everything. Until `bye`, a finished replica keeps reading its
    /// input, and anything that arrives fails it.
    fn release_finished(&mut self) -> Result<(), RunError> {
        if !self.replicas.iter().all(|r| r.phase >= Phase::Done) {
            return Ok(());
        }
        // After a restart mid-stream, the counts cannot add up: the run reports it already.
        if self.incomplete.is_empty() {
            let reports: Vec<super::conservation::Reported<'_>> = self
                .replicas
                .iter()
                .filter_map(|r| {
                    let f = r.report.as_ref()?;
                    Some(super::conservation::Reported { node: r.node, stats: &f.stats, flows: &f.flows })
                })
                .collect();
            let (explained, lost): (Vec<_>, Vec<_>) =
                super::conservation::check(self.topology, &reports).into_iter().partition(|i| i.explained());
            if !lost.is_empty() {
                return Err(RunError::Imbalance(lost.iter().map(ToString::to_string).collect()));
            }
            self.unreceived = explained.iter().map(ToString::to_string).collect();
        }
        for i in 0..self.replicas.len() {
            if self.replicas[i].phase == Phase::Done {
                self.replicas[i].phase = Phase::Released;
                self.tell(i, &Message::Bye)?;
            }
        }
        Ok(())
    }

    /// Every replica has bound its input: tell each whom it reads from and where to send.
    fn send_wiring(&mut self) -> Result<(), RunError> {
        self.wired = true;
        for i in 0..self.replicas.len() {
            let msg = self.wiring(i);
            self.tell(i, &msg)?;
        }
        Ok(())
    }

    /// The `wire` message of replica `i`.
    fn wiring(&self, i: usize) -> Message {
        let t = self.topology;
        let endpoints = |node: NodeId| -> Vec<String> {
            self.replicas.iter().filter(|r| r.node == node).map(|r| r.endpoint.clone().unwrap_or_default()).collect()
        };
        // Replicas are in spawn order, so replica 0's value of a replicated node wins.
        let mut vars = BTreeMap::new();
        for r in &self.replicas {
            for (key, value) in &r.published {
                vars.entry(format!("{}.{key}", t.nodes[r.node].name)).or_insert_with(|| value.clone());
            }
        }
        let port_endpoints = |node: NodeId, port: &str| -> Vec<String> {
            self.replicas
                .iter()
                .filter(|r| r.node == node)
                .map(|r| r.ports.get(port).cloned().unwrap_or_default())
                .collect()
        };
        let r = &self.replicas[i];
        let node = &t.nodes[r.node];
        let inputs = node
            .inputs
            .iter()
            .map(|i| {
                let (up, port) = (&t.nodes[i.node], t.port(i.node, i.port));
                Upstream {
                    node: up.name.clone(),
                    replicas: up.replicas,
                    port: port.name.clone(),
                    subscribe: (port.pattern == Pattern::Pub).then(|| Subscribe {
                        topics: i.topics.clone(),
                        endpoints: port_endpoints(i.node, &socket_key(&port.name, i.drop)),
                    }),
                }
            })
            .collect();
        let mut outputs = Vec::new();
        let mut ports = Vec::new();
        for (p, port) in node.ports.iter().enumerate() {
            let readers = t.readers(r.node, p);
            match port.pattern {
                Pattern::Push => outputs.extend(readers.into_iter().map(|d| Downstream {
                    node: t.nodes[d].name.clone(),
                    endpoints: endpoints(d),
                    port: port.name.clone(),
                })),
                Pattern::Pub => ports.push(PubPort {
                    name: port.name.clone(),
                    subscribers: readers
                        .iter()
                        .filter(|&&d| !t.reads_dropping(d, r.node, p))
                        .map(|&d| t.nodes[d].replicas)
                        .sum(),
                    drop_subscribers: readers
                        .iter()
                        .filter(|&&d| t.reads_dropping(d, r.node, p))
                        .map(|&d| t.nodes[d].replicas)
                        .sum(),
                    topic_field: match &port.topic {
                        TopicRule::Field(f) => Some(f.clone()),
                        _ => None,
                    },
                    topic: match &port.topic {
                        TopicRule::Fixed(f) => Some(f.clone()),
                        _ => None,
                    },
                }),
            }
        }
        Message::Wire { inputs, outputs, vars, ports }
    }

    fn tell(&self, i: usize, msg: &Message) -> Result<(), RunError> {
        let id = self.replicas[i].id.as_bytes();
        self.control.send_multipart([id, &wire::encode(msg)], 0).map_err(|e| {
            RunError::Setup(format!("failed to send `{}` to node `{}`: {e}", msg.type_name(), self.replicas[i].id))
        })
    }

    /// The raw wait status of replica `i` if its process has ended.
    fn try_wait(&mut self, i: usize) -> Option<i32> {
        let r = &self.replicas[i];
        match r.parent {
            // Not our child any more (Err) counts as ended: nothing to wait for.
            Parent::Launcher => match reap_with_group(Some(r.pid)) {
                Ok(ended) => ended.map(|(_, status)| status),
                Err(_) => Some(0),
            },
            Parent::Zygote => self.zygote.as_mut().and_then(|z| z.take_exit(r.pid)),
            Parent::Forkserver => self.forkserver.as_mut().and_then(|z| z.take_exit(r.pid)),
            // Not ours to wait for: it is gone when its pid is (it exits 0 after `bye`).
            Parent::External if r.pid > 0 && !process_alive(r.pid) => Some(0),
            // On another host: its launcher reports when the process is gone.
            Parent::External if r.remote_pid.is_some() => self.remote_exits.remove(&i),
            // Started by another engine (`--coordinate`): released is as good as gone.
            Parent::External if r.pid == 0 && !self.placement.here(self.topology, r.node, r.index) => {
                (r.phase == Phase::Released).then_some(0)
            }
            Parent::External => None,
            // Its host's launcher reports the exit.
            Parent::Remote(Some(_)) => self.remote_exits.remove(&i),
            // Started by another engine, which tells nothing: released is as good as gone.
            Parent::Remote(None) => (r.phase == Phase::Released).then_some(0),
        }
    }

    /// Notice replicas that exited. Exit 0 after `bye` is the normal end; anything else
    /// restarts the replica (`restart = "on-failure"`, not while stopping, not after `done`)
    /// or fails the run.
    fn reap_exited(&mut self) -> Result<(), RunError> {
        let stopping = self.stopping.is_some();
        for i in 0..self.replicas.len() {
            if matches!(self.replicas[i].phase, Phase::Exited | Phase::Restarting) {
                continue;
            }
            let Some(raw) = self.try_wait(i) else { continue };
            // Its group is dead (the fork servers kill it too before they report an exit).
            if let Some(w) = &self.watchdog {
                w.forget(self.replicas[i].pid);
            }
            let status = <std::process::ExitStatus as std::os::unix::process::ExitStatusExt>::from_raw(raw);
            self.replicas[i].exit = Some((self.started.elapsed(), status.code().unwrap_or(-1)));
            if status.success() && self.replicas[i].phase == Phase::Released {
                self.replicas[i].phase = Phase::Exited;
                continue;
            }
            // A failing node sends `failed` just before it exits: give the message a moment
            // to arrive so the cause, not just the status, is reported.
            let failed = match self.replicas[i].failed.take() {
                Some(error) => Some(error),
                None => self.await_failed(i)?,
            };
            let r = &self.replicas[i];
            let how = match (&failed, status.success(), r.phase) {
                (Some(error), _, _) => error.clone(),
                (None, true, Phase::Done) => "exited before the launcher's `bye`".to_string(),
                (None, true, _) => {
                    "exited before finishing its stream (status 0 without `done`: does it speak the procnet protocol?)"
                        .to_string()
                }
                (None, false, _) => describe_status(status),
            };
            let policy: Restart = self.topology.nodes[r.node].restart;
            let mid_stream = self.ready_at.is_some() && r.phase < Phase::Done;
            // Only the coordinator's own replicas: another host's launcher does not restart.
            let own = matches!(r.parent, Parent::Launcher | Parent::Zygote | Parent::Forkserver);
            let restartable = policy.on_failure && !stopping && r.phase < Phase::Done && own;
            if mid_stream {
                let mut note = format!(
                    "node `{}` died mid-stream ({how}); records in flight may be lost; tally may be incomplete",
                    r.id
                );
                if self.topology.nodes[r.node].inputs.is_empty() {
                    note.push_str(" (a restarted source starts over, so records may also repeat)");
                }
                if restartable && self.reads_pub(r.node) {
                    self.replicas[i].phase = Phase::Exited;
                    return Err(RunError::NodeFailed {
                        id: self.replicas[i].id.clone(),
                        cause: format!("died mid-stream ({how}); it reads a pub port, and a restarted subscriber cannot be given what its predecessor missed, so it is not restarted; records in flight may be lost"),
                    });
                }
                if restartable && r.restarts < policy.max_restarts {
                    self.say(&note);
                    self.incomplete.push(note);
                }
            }
            if !restartable {
                let reported_done = self.replicas[i].report.is_some();
                self.replicas[i].phase = Phase::Exited;
                let cause = if mid_stream {
                    format!("{how}; records in flight may be lost")
                } else if reported_done && failed.is_none() {
                    format!("{how}: records it sent may be lost")
                } else {
                    how
                };
                return Err(RunError::NodeFailed { id: self.replicas[i].id.clone(), cause });
            }
            let r = &mut self.replicas[i];
            if r.restarts >= policy.max_restarts {
                r.phase = Phase::Exited;
                let n = policy.max_restarts;
                return Err(RunError::NodeFailed {
                    id: r.id.clone(),
                    cause: format!("{how}; gave up after {n} restart{}", if n == 1 { "" } else { "s" }),
                });
            }
            r.restarts += 1;
            if mid_stream {
                r.midstream_restarts += 1;
            }
            let delay = Restart::backoff(r.restarts);
            r.phase = Phase::Restarting;
            r.restart_at = Some(Instant::now() + delay);
            r.latest = Stats::default();
            let text = format!(
                "node `{}` {how}; restarting it in {} ms ({} of {})",
                r.id,
                delay.as_millis(),
                r.restarts,
                policy.max_restarts
            );
            let r_node = r.node;
            let from = r.id.clone();
            self.say(&text);
            if mid_stream {
                // Its consumers stop checking its counts: what it had in flight is gone.
                for d in self.downstream_replicas(r_node) {
                    if self.replicas[d].phase < Phase::Exited && self.replicas[d].phase > Phase::Restarting {
                        self.tell(d, &Message::Restarted { from: from.clone() })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `node` reads any pub port.
    fn reads_pub(&self, node: NodeId) -> bool {
        let t = self.topology;
        t.nodes[node].inputs.iter().any(|i| t.port(i.node, i.port).pattern == Pattern::Pub)
    }

    /// Wait up to 200 ms for a `failed` from replica `i` (which just exited); its text.
    fn await_failed(&mut self, i: usize) -> Result<Option<String>, RunError> {
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            if self.control.poll(zmq::POLLIN, 20).unwrap_or(0) == 0 {
                continue;
            }
            let Ok(parts) = self.control.recv_multipart(0) else { return Ok(None) };
            let [identity, frame] = parts.as_slice() else { continue };
            if let Some(host) = identity.strip_prefix(b"@") {
                self.on_link(host, frame)?;
                continue;
            }
            let Some(&j) = std::str::from_utf8(identity).ok().and_then(|id| self.by_id.get(id)) else { continue };
            let live = !matches!(self.replicas[j].phase, Phase::Restarting | Phase::Exited);
            match wire::decode_control(frame) {
                Ok(Message::Failed { error }) if j == i => return Ok(Some(error)),
                // Another replica's message: handled as usual, failures included.
                Ok(msg) if j != i && live => self.handle(j, msg)?,
                _ => {}
            }
        }
        Ok(None)
    }

    /// Start every replica whose restart delay has passed.
    fn restart_due(&mut self) -> Result<(), RunError> {
        let now = Instant::now();
        for i in 0..self.replicas.len() {
            if self.replicas[i].phase == Phase::Restarting && self.replicas[i].restart_at.is_some_and(|at| at <= now) {
                self.start_replica(i)?;
            }
        }
        Ok(())
    }

    fn outcome(&mut self) -> Outcome {
        let t = self.topology;
        let replicas = self
            .replicas
            .iter_mut()
            .map(|r| {
                let Finished { stats, notes, result, .. } =
                    r.report.take().expect("every exited replica reported done");
                let (wall, exit_code) = r.exit.expect("every replica exited");
                ReplicaReport {
                    id: r.id.clone(),
                    node: t.nodes[r.node].name.clone(),
                    wall,
                    exit_code,
                    restarts: r.restarts,
                    stats,
                    notes,
                    result,
                }
            })
            .collect();
        Outcome {
            elapsed: self.started.elapsed(),
            startup: self.ready_at.unwrap_or_default(),
            replicas,
            incomplete: Vec::new(),
            unreceived: std::mem::take(&mut self.unreceived),
        }
    }

    /// Move the output files of this host's replicas into place (the run succeeded: `ok`)
    /// or aside, saying so.
    fn settle_outputs(&self, ok: bool) -> Result<(), RunError> {
        let (t, placement) = (self.topology, self.placement);
        let (notes, errors) = super::outputs::settle(t, |n, r| placement.here(t, n, r), &self.dir, ok);
        for note in notes {
            eprintln!("procnet: {note}");
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RunError::Setup(errors.join("; ")))
        }
    }

    /// Kill every replica's process group (what a command node started goes with it) and
    /// reap every child; then the fork servers, the relay (the last lines) and the watchdog.
    fn kill_and_reap(&mut self) {
        // The launcher's own children not reaped yet (those reaped had their groups killed
        // then). A fork server's children are its to kill, below.
        let own: Vec<libc::pid_t> = self
            .replicas
            .iter()
            .filter(|r| {
                r.pid > 0 && r.parent == Parent::Launcher && !matches!(r.phase, Phase::Exited | Phase::Restarting)
            })
            .map(|r| r.pid)
            .collect();
        for &pid in &own {
            signal_group(pid as u32, libc::SIGKILL);
        }
        for pid in own {
            waitpid(pid, 0);
        }
        // External processes are not ours to kill, but after a failed run they would wait
        // for `bye` forever: ask them to end.
        for r in &self.replicas {
            if r.parent == Parent::External && r.pid > 0 && r.phase != Phase::Exited && process_alive(r.pid) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(r.pid, libc::SIGTERM) };
            }
        }
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
}

/// The other hosts: the coordinator's side of `super::link`.
impl Supervisor<'_> {
    /// Who may connect to the coordinator's tcp control socket: whoever has the run's secret,
    /// from a declared host (`--host`; under `--coordinate`, pods come from anywhere).
    fn access(&self) -> crate::runtime::zap::Access {
        let allow = match self.placement {
            Placement::Host { .. } => super::spawn::allowed_peers(self.topology),
            _ => Vec::new(),
        };
        crate::runtime::zap::Access { allow, secret: self.secret.clone() }
    }

    /// Bind the coordinator's tcp control socket, for the other hosts' nodes and launchers,
    /// guarded so that only the run's processes (with the secret) from the declared hosts get
    /// in.
    fn bind_tcp_control(&mut self, endpoint: &str) -> Result<(), RunError> {
        let access = self.access();
        if access.guards() {
            // The handler answers in the control socket's own context.
            let zap = crate::runtime::zap::Zap::start(&self.ctx, &access, "procnet")
                .map_err(|e| RunError::Setup(format!("failed to start the launcher's ZAP handler: {e}")))?;
            self.zap = Some(zap);
            access
                .server(&self.control, endpoint)
                .map_err(|e| RunError::Setup(format!("failed to guard the control socket: {e}")))?;
        }
        self.control.bind(endpoint).map_err(|e| {
            let hint = match self.placement {
                Placement::Host { .. } => format!(
                    " (is this host `{}`? Its address, {}, must be one of this machine's)",
                    self.topology.hosts[Topology::COORDINATOR].name,
                    self.topology.hosts[Topology::COORDINATOR].address
                ),
                _ => String::new(),
            };
            RunError::Setup(format!("failed to bind the control socket at `{endpoint}`: {e}{hint}"))
        })
    }

    /// A message from another host's launcher (routing id `@<host>`).
    fn on_link(&mut self, host: &[u8], frame: &[u8]) -> Result<(), RunError> {
        use super::link::Link;
        let t = self.topology;
        let Some(m) = self.members.iter().position(|m| t.hosts[m.host].name.as_bytes() == host) else {
            return Ok(());
        };
        let name = t.hosts[self.members[m].host].name.clone();
        let fail = |cause: String| RunError::Host { host: name.clone(), cause };
        let msg = Link::decode(frame).map_err(|e| fail(format!("its launcher sent an invalid message: {e}")))?;
        self.members[m].last_heard = Instant::now();
        match msg {
            // A late one for an earlier run, or an early one for the next: not this run's.
            Link::Join { run, .. } if run != self.run => {}
            Link::Join { topology, version, pid, .. } => {
                match self.members[m].pid {
                    // The same launcher, repeating itself until it hears `welcome`.
                    Some(known) if known == pid => {
                        self.link_send(&name, &Link::Welcome { run: self.run });
                        return Ok(());
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
                self.members[m].joined = Some(Instant::now());
                self.members[m].pid = Some(pid);
                self.link_send(&name, &Link::Welcome { run: self.run });
            }
            Link::Exited { id, status } => {
                if let Some(&i) = self.by_id.get(&id) {
                    let r = &self.replicas[i];
                    let theirs = r.parent == Parent::Remote(Some(self.members[m].host))
                        || (r.remote_pid.is_some() && t.replica_host(r.node, r.index) == Some(self.members[m].host));
                    // Exits are repeated with every heartbeat: take each once.
                    if theirs && r.phase != Phase::Exited {
                        self.remote_exits.insert(i, status);
                    }
                }
            }
            // Repeated with every heartbeat: one signal per host.
            Link::Interrupt { signal } if !self.members[m].interrupted => {
                self.members[m].interrupted = true;
                self.say(&format!("host `{name}` got {}", super::spawn::signal_name(signal)));
                self.remote_signal = Some(signal);
            }
            Link::Interrupt { .. } => {}
            Link::Left { error } => {
                self.members[m].lost = true;
                return Err(fail(format!("its launcher stopped: {error}")));
            }
            Link::Beat | Link::Welcome { .. } | Link::End { .. } | Link::Ended | Link::Watch { .. } => {}
        }
        Ok(())
    }

    /// Send `msg` to host `name`'s launcher; a host that is gone is noticed by its silence.
    fn link_send(&self, name: &str, msg: &super::link::Link) {
        let id = super::link::routing_id(name);
        let _ = self.control.send_multipart([id.as_bytes(), &msg.encode()], zmq::DONTWAIT);
    }

    /// Heartbeats, and the two ways a host fails the run: its launcher never joined, or it
    /// stopped answering.
    fn tend_members(&mut self, opts: &RunOptions) -> Result<(), RunError> {
        use super::link::{Link, BEAT, HOST_TIMEOUT};
        if self.members.is_empty() {
            return Ok(());
        }
        let t = self.topology;
        if self.last_beat.elapsed() >= BEAT {
            self.last_beat = Instant::now();
            for m in self.members.iter().filter(|m| m.joined.is_some()) {
                self.link_send(&t.hosts[m.host].name, &Link::Beat);
            }
            // External replicas on other hosts: their launchers watch the pids.
            for r in self.replicas.iter().filter(|r| r.phase < Phase::Exited) {
                if let (Some(pid), Some(h)) = (r.remote_pid, t.replica_host(r.node, r.index)) {
                    self.link_send(&t.hosts[h].name, &Link::Watch { id: r.id.clone(), pid });
                }
            }
        }
        for m in &mut self.members {
            let h = &t.hosts[m.host];
            // Its nodes are here, but not the launcher that started them: it died since.
            if m.joined.is_none() && m.nodes_seen.is_some_and(|at| at.elapsed() > HOST_TIMEOUT) {
                m.lost = true;
                return Err(RunError::Host {
                    host: h.name.clone(),
                    cause: format!(
                        "its nodes joined the run, but its launcher at {} did not within {} s: it died, or the \
                         network to it failed",
                        h.address,
                        HOST_TIMEOUT.as_secs()
                    ),
                });
            }
            if m.joined.is_none() && self.started.elapsed() >= opts.startup_timeout {
                m.lost = true;
                return Err(RunError::Host {
                    host: h.name.clone(),
                    cause: format!(
                        "its launcher did not join within {} s (run `procnet run {} --host {}` on the machine at {})",
                        opts.startup_timeout.as_secs_f64(),
                        t.path.display(),
                        h.name,
                        h.address
                    ),
                });
            }
            if m.joined.is_some() && m.last_heard.elapsed() > HOST_TIMEOUT {
                m.lost = true;
                return Err(RunError::Host {
                    host: h.name.clone(),
                    cause: format!(
                        "its launcher at {} stopped answering ({} s without a heartbeat): the host or its launcher \
                         died, or the network to it failed",
                        h.address,
                        HOST_TIMEOUT.as_secs()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The run is over: tell every host's launcher that joined and was not lost, with the
    /// run's status, and wait (up to the heartbeat timeout) until each says it heard.
    fn end_members(&mut self, code: u8, error: Option<String>) {
        use super::link::{Link, BEAT, HOST_TIMEOUT};
        let t = self.topology;
        let msg = Link::End { code, error, run: self.run };
        // Also to a host that has not joined yet: it may be waiting for `welcome`.
        for m in self.members.iter().filter(|m| m.joined.is_none() && !m.lost) {
            self.link_send(&t.hosts[m.host].name, &msg);
        }
        let mut waiting: Vec<usize> =
            self.members.iter().filter(|m| m.joined.is_some() && !m.lost).map(|m| m.host).collect();
        let deadline = Instant::now() + HOST_TIMEOUT;
        let mut last_sent: Option<Instant> = None;
        while !waiting.is_empty() && Instant::now() < deadline {
            if last_sent.is_none_or(|at| at.elapsed() >= BEAT) {
                last_sent = Some(Instant::now());
                for &h in &waiting {
                    self.link_send(&t.hosts[h].name, &msg);
                }
            }
            if self.control.poll(zmq::POLLIN, 50).unwrap_or(0) == 0 {
                continue;
            }
            let Ok(parts) = self.control.recv_multipart(0) else { break };
            if let [id, frame] = parts.as_slice() {
                let host =
                    id.strip_prefix(b"@").and_then(|h| waiting.iter().position(|&w| t.hosts[w].name.as_bytes() == h));
                if let (Some(k), Ok(Link::Ended)) = (host, Link::decode(frame)) {
                    waiting.swap_remove(k);
                }
            }
        }
        for h in waiting {
            self.say(&format!(
                "host `{}` did not confirm the end of the run within {} s: its launcher may have stopped on its own",
                t.hosts[h].name,
                HOST_TIMEOUT.as_secs()
            ));
        }
    }
}

/// A host that joins the coordinator: the member's side of `super::link`.
impl Supervisor<'_> {
    /// This host's `join`.
    fn join_message(&self) -> super::link::Link {
        let Placement::Host { host, .. } = self.placement else { unreachable!("only a host joins") };
        join_link(self.topology, host, self.run)
    }

    /// This launcher stops on its own: tell the coordinator why, so that it fails the run
    /// naming this host with the cause rather than waiting out the silence.
    fn leave(&self, e: &RunError) {
        let _ = self.control.set_linger(2000);
        let _ = self.control.send(super::link::Link::Left { error: e.to_string() }.encode(), zmq::DONTWAIT);
    }

    /// Until the coordinator ends the run: relay and reap this host's replicas and report
    /// each exit; pass a signal on; give up if the coordinator falls silent.
    fn supervise_member(&mut self, opts: &RunOptions) -> Result<u8, RunError> {
        use super::link::{Link, BEAT, HOST_TIMEOUT};
        let t = self.topology;
        let coordinator = &t.hosts[Topology::COORDINATOR];
        let lost = |cause: String| RunError::Host { host: coordinator.name.clone(), cause };
        let mut welcomed = false;
        let mut last_heard = Instant::now();
        let mut interrupted = false;
        // External replicas on this host the coordinator asked to watch: id -> pid.
        let mut watched: BTreeMap<String, u32> = BTreeMap::new();
        let mut gone: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        // What this host reported, repeated with every heartbeat (the coordinator takes each
        // once): a message lost to a reconnection must not hang the run.
        let mut reported: Vec<Link> = Vec::new();
        loop {
            if let Some(signal) = super::signals::take() {
                if interrupted || !welcomed {
                    return Err(RunError::Interrupted { signal, drained: false });
                }
                // The coordinator stops the whole run gracefully and ends this host with it.
                interrupted = true;
                self.say(&format!(
                    "{}: asking the coordinator (host `{}`) to stop the run (send it again to kill this host's nodes at once)",
                    super::spawn::signal_name(signal),
                    coordinator.name
                ));
                let _ = self.control.send(Link::Interrupt { signal }.encode(), zmq::DONTWAIT);
                reported.push(Link::Interrupt { signal });
            }
            // Every message waiting, when there is one.
            let mut more = self.poll_io(50)? == Some(true);
            while more {
                let frame = match self.control.recv_bytes(zmq::DONTWAIT) {
                    Ok(frame) => frame,
                    Err(zmq::Error::EAGAIN) => {
                        more = false;
                        continue;
                    }
                    Err(e) => return Err(RunError::Setup(format!("failed to read the control socket: {e}"))),
                };
                last_heard = Instant::now();
                match Link::decode(&frame) {
                    // Once: every repeated `join` that got through is answered.
                    Ok(Link::Welcome { run }) if welcomed || run != self.run => {}
                    Ok(Link::Welcome { .. }) => {
                        welcomed = true;
                        self.say(&format!(
                            "host `{}` joined the run coordinated by host `{}` ({})",
                            match self.placement {
                                Placement::Host { host, .. } => t.hosts[host].name.as_str(),
                                _ => "?",
                            },
                            coordinator.name,
                            self.control_ep
                        ));
                    }
                    Ok(Link::Watch { id, pid }) => {
                        if !gone.contains(&id) {
                            watched.insert(id, pid);
                        }
                    }
                    // The end of an earlier run (`--repeat`), resent while this host moved on.
                    Ok(Link::End { run, .. }) if run != self.run => {}
                    Ok(Link::End { code, error, .. }) => {
                        // External processes are not ours to kill, but after a failed run
                        // they would wait for `bye` forever: ask them to end, if the pid is
                        // still theirs (it came over the network).
                        if code != crate::exit_codes::OK {
                            for (id, &pid) in &watched {
                                if is_replica(pid, t, id) {
                                    // SAFETY: kill has no memory-safety preconditions.
                                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                                }
                            }
                        }
                        let _ = self.control.set_linger(2000);
                        let _ = self.control.send(Link::Ended.encode(), zmq::DONTWAIT);
                        if let Some(error) = error {
                            self.say(&format!("the run failed (reported by host `{}`): {error}", coordinator.name));
                        }
                        return Ok(code);
                    }
                    Ok(_) => {}
                    Err(e) => return Err(lost(format!("the coordinator sent an invalid message: {e}"))),
                }
            }
            for i in 0..self.replicas.len() {
                let r = &self.replicas[i];
                if !matches!(r.parent, Parent::Launcher | Parent::Forkserver) || r.pid == 0 || r.phase == Phase::Exited
                {
                    continue;
                }
                let Some(status) = self.try_wait(i) else { continue };
                if let Some(w) = &self.watchdog {
                    w.forget(self.replicas[i].pid);
                }
                self.replicas[i].phase = Phase::Exited;
                let msg = Link::Exited { id: self.replicas[i].id.clone(), status };
                let _ = self.control.send(msg.encode(), zmq::DONTWAIT);
                reported.push(msg);
            }
            // Not ours to wait for: it is gone when its pid is (it exits 0 after `bye`).
            watched.retain(|id, &mut pid| {
                if process_alive(pid as libc::pid_t) {
                    return true;
                }
                gone.insert(id.clone());
                let msg = Link::Exited { id: id.clone(), status: 0 };
                let _ = self.control.send(msg.encode(), zmq::DONTWAIT);
                reported.push(msg);
                false
            });
            if self.last_beat.elapsed() >= BEAT {
                self.last_beat = Instant::now();
                // Until welcomed, `join` again: the first may have reached the socket of an
                // earlier run (`--repeat`) just as it closed.
                let msg = if welcomed { Link::Beat } else { self.join_message() };
                let _ = self.control.send(msg.encode(), zmq::DONTWAIT);
                for msg in &reported {
                    let _ = self.control.send(msg.encode(), zmq::DONTWAIT);
                }
            }
            if !welcomed && self.started.elapsed() > opts.startup_timeout {
                return Err(coordinator_silent(t, opts, &self.control_ep));
            }
            if welcomed && last_heard.elapsed() > HOST_TIMEOUT {
                return Err(lost(format!(
                    "the coordinator at {} stopped answering ({} s without a heartbeat): its host or launcher died, \
                     or the network to it failed; this host's nodes are killed",
                    coordinator.address,
                    HOST_TIMEOUT.as_secs()
                )));
            }
        }
    }
}

/// Counters summed over replicas.
fn sum_stats<'a>(all: impl Iterator<Item = &'a Stats>) -> Stats {
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

/// The pub sockets node `n` binds: one per pub port, and a lossy one (`<port>!drop`) for a
/// port that some node reads with `drop = true`.
fn pub_sockets(t: &Topology, n: NodeId) -> Vec<String> {
    let mut keys = Vec::new();
    for (p, port) in t.nodes[n].ports.iter().enumerate().filter(|(_, p)| p.pattern == Pattern::Pub) {
        keys.push(port.name.clone());
        if t.readers(n, p).into_iter().any(|d| t.reads_dropping(d, n, p)) {
            keys.push(socket_key(&port.name, true));
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_hosts() -> Topology {
        let text = r#"
            [hosts.a]
            address = "10.77.0.1"
            [hosts.b]
            address = "fd00::2"
            bind = "::"
            [nodes.src]
            kind = "lines"
            path = "Cargo.toml"
            host = "a"
            [nodes.count]
            kind = "tally"
            inputs = ["src"]
            host = "b"
        "#;
        let base_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = crate::topology::compile::Source { path: std::path::Path::new("t.toml"), text, base_dir };
        crate::topology::compile::compile(&source).map(|(t, _)| t).expect("a valid topology")
    }

    #[test]
    fn a_wildcard_bind_is_advertised_as_the_hosts_address() {
        let t = two_hosts();
        assert_eq!(advertised(&t, Some(1), "tcp://[::]:4000".into()), "tcp://[fd00::2]:4000");
        assert_eq!(advertised(&t, Some(0), "tcp://0.0.0.0:4000".into()), "tcp://10.77.0.1:4000");
        // Nodes without `host` run with the coordinator, the first host.
        assert_eq!(advertised(&t, None, "tcp://0.0.0.0:4000".into()), "tcp://10.77.0.1:4000");
        assert_eq!(advertised(&t, Some(0), "tcp://10.77.0.1:4000".into()), "tcp://10.77.0.1:4000");
        assert_eq!(advertised(&t, Some(0), "ipc:///run/x".into()), "ipc:///run/x");
    }

    #[test]
    fn replicas_bind_on_their_hosts_bind_address() {
        let t = two_hosts();
        let dir = std::path::Path::new("/run/x");
        let plan = plan(&t, dir);
        let count = plan.iter().find(|r| r.id == "count.0").expect("count.0");
        assert_eq!(count.bind.as_deref(), Some("tcp://[::]:*"));
        let t = t.localized();
        let count = plan_of(&t, "count.0");
        assert_eq!(count.as_deref(), Some("tcp://127.0.0.1:*"));
    }

    fn plan_of(t: &Topology, id: &str) -> Option<String> {
        plan(t, std::path::Path::new("/run/x")).into_iter().find(|r| r.id == id).and_then(|r| r.bind)
    }
}
