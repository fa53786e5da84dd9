//! The launcher's one event loop: spawn every replica, run the start barrier over the control
//! channel (hello -> wire -> ready -> start), watch for `done`, `failed` and exits, and on any
//! failure or interrupt kill every process group and reap every child. Nothing of a run
//! outlives `run`.

use std::collections::{BTreeMap, HashMap};
use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::outcome::{Outcome, ReplicaReport, RunError};
use super::progress::Progress;
use super::spawn::{describe_spawn_error, describe_status, signal_group, spawn, Launch};
use crate::topology::{NodeId, Pattern, Runner, TopicRule, Topology, Transport};
use crate::wire::{self, Downstream, Message, PubPort, Stats, Subscribe, Upstream};

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How long every replica may take to join and get ready.
    pub startup_timeout: Duration,
    /// After a first Ctrl-C or SIGTERM, how long nodes may take to finish their streams
    /// before they are killed.
    pub grace: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { startup_timeout: Duration::from_secs(30), grace: Duration::from_secs(5) }
    }
}

/// Where a replica is in its life; the supervisor owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Spawned,
    Joined,
    Ready,
    Started,
    Done,
    /// `bye` sent: every consumer finished, so the replica may close its sockets and exit.
    Released,
    Exited,
}

struct Replica {
    node: NodeId,
    id: String,
    child: Child,
    phase: Phase,
    endpoint: Option<String>,
    published: std::collections::BTreeMap<String, String>,
    ports: BTreeMap<String, String>,
    latest: Stats,
    report: Option<(Stats, Vec<String>)>,
    /// When it exited (since the run started) and with what status.
    exit: Option<(Duration, i32)>,
}

/// The control socket and every replica of one run.
struct Supervisor<'t> {
    topology: &'t Topology,
    control: zmq::Socket,
    replicas: Vec<Replica>,
    by_id: HashMap<String, usize>,
    started: Instant,
    ready_at: Option<Duration>,
    services_stopped: bool,
    progress: Option<Progress>,
}

/// Run `topology` to the end. `interrupt` delivers the signal number of a Ctrl-C or SIGTERM.
pub fn run(topology: &Topology, opts: &RunOptions, interrupt: &Receiver<i32>) -> Result<Outcome, RunError> {
    let dir = run_dir()?;
    let ctx = zmq::Context::new();
    let control_ep = format!("ipc://{}/control", dir.path().display());
    let control =
        ctx.socket(zmq::ROUTER).map_err(|e| RunError::Setup(format!("failed to create the control socket: {e}")))?;
    control.set_linger(0).map_err(|e| RunError::Setup(format!("failed to configure the control socket: {e}")))?;
    control.bind(&control_ep).map_err(|e| RunError::Setup(format!("failed to bind `{control_ep}`: {e}")))?;
    let mut sup = Supervisor {
        topology,
        control,
        replicas: Vec::new(),
        by_id: HashMap::new(),
        started: Instant::now(),
        ready_at: None,
        services_stopped: false,
        progress: Progress::for_terminal(topology),
    };
    let result = sup.spawn_all(&control_ep, dir.path()).and_then(|()| sup.supervise(opts, interrupt));
    if let Some(p) = &sup.progress {
        p.clear();
    }
    sup.kill_and_reap();
    result
}

fn run_dir() -> Result<tempfile::TempDir, RunError> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix("procnet-")
        .tempdir_in(&base)
        .map_err(|e| RunError::Setup(format!("failed to create a run directory in `{}`: {e}", base.display())))
}

impl Supervisor<'_> {
    fn spawn_all(&mut self, control: &str, dir: &std::path::Path) -> Result<(), RunError> {
        for (node_id, node) in self.topology.nodes.iter().enumerate() {
            for index in 0..node.replicas {
                let id = format!("{}.{index}", node.name);
                let endpoint = |suffix: &str| match node.transport {
                    Transport::Ipc => format!("ipc://{}/{id}{suffix}", dir.display()),
                    Transport::Tcp => "tcp://127.0.0.1:*".to_string(),
                };
                let t = self.topology;
                let bind =
                    node.inputs.iter().any(|i| t.port(i.node, i.port).pattern == Pattern::Push).then(|| endpoint(""));
                let pub_ports: BTreeMap<String, String> = pub_sockets(t, node_id)
                    .into_iter()
                    .map(|key| {
                        // `!` cannot be in a port name, so `<port>!drop` never collides.
                        let ep = endpoint(&format!(".{key}"));
                        (key, ep)
                    })
                    .collect();
                let pub_ports =
                    (!pub_ports.is_empty()).then(|| serde_json::to_string(&pub_ports).expect("endpoints serialize"));
                let launch = Launch {
                    node: node_id,
                    replica: index,
                    control,
                    bind: bind.as_deref(),
                    pub_ports: pub_ports.as_deref(),
                    run_dir: dir,
                };
                let child = spawn(self.topology, &launch).map_err(|e| RunError::Spawn {
                    id: id.clone(),
                    cause: describe_spawn_error(self.topology, node_id, &e),
                })?;
                self.by_id.insert(id.clone(), self.replicas.len());
                self.replicas.push(Replica {
                    node: node_id,
                    id,
                    child,
                    phase: Phase::Spawned,
                    endpoint: None,
                    published: Default::default(),
                    ports: BTreeMap::new(),
                    latest: Stats::default(),
                    report: None,
                    exit: None,
                });
            }
        }
        Ok(())
    }

    fn supervise(&mut self, opts: &RunOptions, interrupt: &Receiver<i32>) -> Result<Outcome, RunError> {
        // After a first signal: which one, and when the grace period ends.
        let mut stopping: Option<(i32, Instant)> = None;
        loop {
            if let Ok(signal) = interrupt.try_recv() {
                if stopping.is_some() || self.ready_at.is_none() {
                    // A second signal, or one before the network started: stop at once.
                    return Err(RunError::Interrupted { signal, drained: false });
                }
                // The first: ask every node to stop. Sources end their streams, the rest
                // drains, sinks and tallies flush; nodes that do not finish in time are killed.
                stopping = Some((signal, Instant::now() + opts.grace));
                for i in 0..self.replicas.len() {
                    if self.replicas[i].phase == Phase::Started {
                        self.tell(i, &Message::Stop)?;
                    }
                }
            }
            if let Some((signal, deadline)) = stopping {
                if Instant::now() > deadline {
                    return Err(RunError::Interrupted { signal, drained: false });
                }
            }
            let all_done = self.replicas.iter().all(|r| r.phase >= Phase::Released);
            self.receive(if all_done { 5 } else { 50 })?;
            self.reap_exited()?;
            if let Some(p) = &self.progress {
                p.update(|n| sum_stats(self.replicas.iter().filter(|r| r.node == n).map(|r| &r.latest)));
            }
            if self.replicas.iter().all(|r| r.phase == Phase::Exited) {
                return match stopping {
                    // Every node finished, but the run was cut short: not a complete result.
                    Some((signal, _)) => Err(RunError::Interrupted { signal, drained: true }),
                    None => Ok(self.outcome()),
                };
            }
            if self.ready_at.is_none() && self.started.elapsed() > opts.startup_timeout {
                let waiting = self.replicas.iter().filter(|r| r.phase < Phase::Ready).map(|r| r.id.clone()).collect();
                return Err(RunError::Startup { waiting, timeout: opts.startup_timeout });
            }
        }
    }

    /// Handle every control message that arrives within `timeout_ms`.
    fn receive(&mut self, timeout_ms: i64) -> Result<(), RunError> {
        let mut timeout = timeout_ms;
        loop {
            let n = match self.control.poll(zmq::POLLIN, timeout) {
                // A signal arrived; the loop picks it up from the interrupt channel.
                Err(zmq::Error::EINTR) => return Ok(()),
                other => other.map_err(|e| RunError::Setup(format!("failed to poll the control socket: {e}")))?,
            };
            if n == 0 {
                return Ok(());
            }
            timeout = 0;
            let parts = self
                .control
                .recv_multipart(0)
                .map_err(|e| RunError::Setup(format!("failed to read the control socket: {e}")))?;
            let [identity, frame] = parts.as_slice() else { continue };
            let Some(&i) = std::str::from_utf8(identity).ok().and_then(|id| self.by_id.get(id)) else {
                continue;
            };
            let msg = wire::decode(frame).map_err(|e| RunError::NodeFailed {
                id: self.replicas[i].id.clone(),
                cause: format!("sent an invalid control message: {e}"),
            })?;
            self.handle(i, msg)?;
        }
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
            Message::Hello { input, publish, ports, .. } if r.phase == Phase::Spawned => {
                r.phase = Phase::Joined;
                r.endpoint = input;
                r.published = publish;
                r.ports = ports;
                if self.replicas.iter().all(|r| r.phase >= Phase::Joined) {
                    self.send_wiring()?;
                }
            }
            Message::Ready if r.phase == Phase::Joined => {
                r.phase = Phase::Ready;
                if self.replicas.iter().all(|r| r.phase >= Phase::Ready) {
                    self.ready_at = Some(self.started.elapsed());
                    for j in 0..self.replicas.len() {
                        self.replicas[j].phase = self.replicas[j].phase.max(Phase::Started);
                        self.tell(j, &Message::Start)?;
                    }
                    self.stop_idle_services()?;
                }
            }
            Message::Stats(stats) if r.phase == Phase::Started => r.latest = stats,
            Message::Done { stats, notes } if r.phase == Phase::Started => {
                r.phase = Phase::Done;
                r.latest = stats.clone();
                r.report = Some((stats, notes));
                self.release_finished()?;
                self.stop_idle_services()?;
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

    /// Send `bye` to every replica that is done and whose consumers are all done too: they
    /// have read everything it sent, so its connections can close without losing records.
    fn release_finished(&mut self) -> Result<(), RunError> {
        let t = self.topology;
        let done =
            |node: NodeId, reps: &[Replica]| reps.iter().filter(|r| r.node == node).all(|r| r.phase >= Phase::Done);
        let releasable: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.replicas[i].phase == Phase::Done)
            .filter(|&i| {
                let node = self.replicas[i].node;
                (0..t.nodes[node].ports.len()).all(|p| t.readers(node, p).into_iter().all(|c| done(c, &self.replicas)))
            })
            .collect();
        for i in releasable {
            self.replicas[i].phase = Phase::Released;
            self.tell(i, &Message::Bye)?;
        }
        Ok(())
    }

    /// Every replica has bound its input: tell each whom it reads from and where to send.
    fn send_wiring(&mut self) -> Result<(), RunError> {
        let t = self.topology;
        let endpoints = |node: NodeId| -> Vec<String> {
            self.replicas.iter().filter(|r| r.node == node).map(|r| r.endpoint.clone().unwrap_or_default()).collect()
        };
        // Replicas are in spawn order, so replica 0's value of a replicated node wins.
        let mut vars = std::collections::BTreeMap::new();
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
        let wiring: Vec<Message> = self
            .replicas
            .iter()
            .map(|r| {
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
                Message::Wire { inputs, outputs, vars: vars.clone(), ports }
            })
            .collect();
        for (i, msg) in wiring.iter().enumerate() {
            self.tell(i, msg)?;
        }
        Ok(())
    }

    fn tell(&self, i: usize, msg: &Message) -> Result<(), RunError> {
        let id = self.replicas[i].id.as_bytes();
        self.control.send_multipart([id, &wire::encode(msg)], 0).map_err(|e| {
            RunError::Setup(format!("failed to send `{}` to node `{}`: {e}", msg.type_name(), self.replicas[i].id))
        })
    }

    /// Notice replicas that exited; any exit other than 0 after `done` fails the run.
    fn reap_exited(&mut self) -> Result<(), RunError> {
        for i in 0..self.replicas.len() {
            if self.replicas[i].phase == Phase::Exited {
                continue;
            }
            let status = match self.replicas[i].child.try_wait() {
                Ok(Some(status)) => status,
                Ok(None) => continue,
                Err(e) => {
                    return Err(RunError::Setup(format!("failed to wait for node `{}`: {e}", self.replicas[i].id)))
                }
            };
            self.replicas[i].exit = Some((self.started.elapsed(), status.code().unwrap_or(-1)));
            if status.success() && self.replicas[i].phase == Phase::Released {
                self.replicas[i].phase = Phase::Exited;
                continue;
            }
            // A failing node sends `failed` just before it exits: give the message a moment
            // to arrive so the cause, not just the status, is reported.
            self.receive(200)?;
            let r = &mut self.replicas[i];
            let cause = if status.success() && r.phase == Phase::Done {
                "exited before the launcher's `bye`: records it sent may be lost".to_string()
            } else if status.success() {
                "exited before finishing its stream (status 0 without `done`: does it speak the procnet protocol?)"
                    .to_string()
            } else {
                describe_status(status)
            };
            r.phase = Phase::Exited;
            return Err(RunError::NodeFailed { id: r.id.clone(), cause });
        }
        Ok(())
    }

    fn outcome(&mut self) -> Outcome {
        let t = self.topology;
        let replicas = self
            .replicas
            .iter_mut()
            .map(|r| {
                let (stats, notes) = r.report.take().expect("every exited replica reported done");
                let (wall, exit_code) = r.exit.expect("every replica exited");
                ReplicaReport { id: r.id.clone(), node: t.nodes[r.node].name.clone(), wall, exit_code, stats, notes }
            })
            .collect();
        Outcome { elapsed: self.started.elapsed(), startup: self.ready_at.unwrap_or_default(), replicas }
    }

    /// Kill every replica's process group (what a command node started goes with it) and
    /// reap every child. Groups of replicas that already exited are signalled too, for the
    /// grandchildren they may have left.
    fn kill_and_reap(&mut self) {
        for r in &self.replicas {
            signal_group(r.child.id(), libc::SIGKILL);
        }
        for r in &mut self.replicas {
            let _ = r.child.wait();
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

/// The key of a pub port's socket: the port, or `<port>!drop` for its lossy socket.
fn socket_key(port: &str, drop: bool) -> String {
    if drop {
        format!("{port}!drop")
    } else {
        port.to_string()
    }
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
