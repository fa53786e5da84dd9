//! The validated topology: every name resolved, every option checked. The launcher and the
//! nodes only ever see this form.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::port::{Pattern, Port};
use crate::nodes::Kind;

/// Index of a node in [`Topology::nodes`].
pub type NodeId = usize;

/// A validated process network.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The `name` key, or the file stem.
    pub name: String,
    /// The topology file as the user named it.
    pub path: PathBuf,
    /// The directory relative paths resolve against (the file's own directory), absolute.
    pub base_dir: PathBuf,
    /// The hosts of `[hosts]`, in file order (empty: everything runs on this machine).
    pub hosts: Vec<Host>,
    /// Nodes in file order.
    pub nodes: Vec<Node>,
    /// What a failure may cost: `delivery = "exactly-once"` (the default) or `"at-most-once"`.
    pub delivery: Delivery,
    /// The environment variables the file refers to (`${VAR}`), each with its value when it
    /// was loaded (None: unset, so its defaults applied). Another process that loads the
    /// same file (the coordinator of `procnet export k8s`) needs the same values.
    pub variables: BTreeMap<String, Option<String>>,
    /// The `--set PATH=VALUE` overrides it was loaded with, in order, as given.
    pub overrides: Vec<String>,
}

/// What the run promises when a replica fails mid-stream and is restarted
/// (docs/guarantees.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// The run rolls back: every replica of the data path starts again, and the result is
    /// exactly that of an undisturbed run, or the run fails naming why it could not be.
    #[default]
    ExactlyOnce,
    /// The failed replica alone is restarted; records it had in flight may be lost (and a
    /// source starts over), and the run says so and exits 1.
    AtMostOnce,
}

impl Delivery {
    /// The values of `delivery`, in order.
    pub const NAMES: &'static [&'static str] = &["exactly-once", "at-most-once"];
}

/// One declared host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name (the key in `[hosts]`).
    pub name: String,
    /// The address the other hosts reach it at (an IP address, not a name, so that the
    /// topology says exactly who may connect).
    pub address: IpAddr,
    /// The address its nodes bind their tcp sockets to: `address` unless `bind` says
    /// otherwise (`0.0.0.0` behind NAT, where `address` is not one of the host's own). Peers
    /// are always given `address`.
    pub bind: IpAddr,
}

/// One declared node: a built-in kind or a command, run as `replicas` processes.
#[derive(Debug, Clone)]
pub struct Node {
    /// The node's name (its table key).
    pub name: String,
    /// What each replica runs.
    pub runner: Runner,
    /// How many processes run this node; records from upstream are load-balanced over them.
    pub replicas: u32,
    /// What this node reads, in the order listed.
    pub inputs: Vec<Input>,
    /// The node's output ports, in declaration order.
    pub ports: Vec<Port>,
    /// How this node's input socket is reached.
    pub transport: Transport,
    /// How the launcher starts its processes.
    pub start: StartMethod,
    /// What the launcher does when one of its processes fails.
    pub restart: Restart,
    /// The largest message its input sockets accept (ZMQ_MAXMSGSIZE), in bytes.
    pub max_message_bytes: u64,
    /// The hosts its replicas run on, round-robin (indices in [`Topology::hosts`]); empty
    /// for the local host.
    pub host: Vec<usize>,
    /// Variables added to the environment of its program (`env`), after the `PROCNET_*`
    /// ones, none of which it may name. Only a node whose program procnet starts has them (a
    /// `command`): a built-in runs procnet's own code, and an external node is started by
    /// hand.
    pub env: BTreeMap<String, String>,
    /// The directory its program runs in (`cwd`, resolved against the topology's directory
    /// and checked to be one when loaded); None: the topology's directory. A `command` node's
    /// only, like `env`.
    pub cwd: Option<PathBuf>,
}

/// The default of `max_message_bytes`: far above any batch (64 KiB plus one record) and a
/// fetched page (10 MiB by default), far below what would hurt the machine.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;

/// How the launcher starts a node's processes; the meanings follow Python multiprocessing's
/// start methods (see `docs/start-methods.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartMethod {
    /// A fresh process executes the procnet binary (built-in kinds) or the command.
    Spawn,
    /// The launcher forks the replica before it has any thread or ZeroMQ context; the child
    /// runs the built-in node's code without exec. Built-in kinds only.
    Fork,
    /// A small single-threaded server, started first, forks the replica on request (also
    /// later, for restarts). Built-in kinds only.
    Forkserver,
}

impl StartMethod {
    /// The names used in topology files.
    pub const NAMES: &'static [&'static str] = &["spawn", "fork", "forkserver"];

    /// The name used in topology files.
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Spawn => "spawn",
            StartMethod::Fork => "fork",
            StartMethod::Forkserver => "forkserver",
        }
    }

    /// The method named `name` (one of [`StartMethod::NAMES`]).
    pub fn from_name(name: &str) -> Option<StartMethod> {
        match name {
            "spawn" => Some(StartMethod::Spawn),
            "fork" => Some(StartMethod::Fork),
            "forkserver" => Some(StartMethod::Forkserver),
            _ => None,
        }
    }
}

/// The restart policy of a node: `restart = "never" | "on-failure"` and `max_restarts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    /// Restart a replica that exits non-zero or is killed (`restart = "on-failure"`).
    pub on_failure: bool,
    /// How many times one replica may be restarted before the run fails.
    pub max_restarts: u32,
}

impl Restart {
    /// The default: never restart (`max_restarts` is 3 once `on-failure` is chosen).
    pub const NEVER: Restart = Restart { on_failure: false, max_restarts: 3 };
    /// The delay before restart number `n` (from 1): 100 ms, doubling, at most 5 s.
    pub fn backoff(n: u32) -> std::time::Duration {
        let ms = 100u64.saturating_mul(1 << n.saturating_sub(1).min(16));
        std::time::Duration::from_millis(ms.min(5000))
    }
}

/// One input of a node: a port of an upstream node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The upstream node.
    pub node: NodeId,
    /// The index of its port in [`Node::ports`].
    pub port: usize,
    /// For a pub port: the topic prefixes subscribed to (empty means everything).
    pub topics: Vec<String>,
    /// For a pub port: records may be dropped instead of slowing the publisher.
    pub drop: bool,
}

/// What a node's processes execute.
#[derive(Debug, Clone)]
pub enum Runner {
    /// A built-in node kind with its validated options.
    Builtin(Kind),
    /// An executable and its arguments; it speaks the wire protocol.
    Command(Vec<String>),
    /// A process the launcher does not start (`external = true`): started by hand, in any
    /// language, with what `procnet run` prints; it speaks the wire protocol.
    External,
}

/// How a node's input endpoint is reached by its upstream peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Unix domain sockets in the run's private directory.
    Ipc,
    /// TCP on 127.0.0.1, port chosen by the OS.
    Tcp,
}

impl Transport {
    /// The name used in topology files.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ipc => "ipc",
            Transport::Tcp => "tcp",
        }
    }
}

impl Runner {
    /// The kind name, or the command line, for summaries.
    pub fn describe(&self) -> String {
        match self {
            Runner::Builtin(kind) => kind.name().to_string(),
            Runner::Command(argv) => argv.join(" "),
            Runner::External => "external".to_string(),
        }
    }
}

/// The key of a pub port's socket in `PROCNET_PUB`, `hello.ports` and `done.published`: the
/// port, or `<port>!drop` for its lossy socket (`!` cannot be in a port name, so the two never
/// collide).
pub fn socket_key(port: &str, drop: bool) -> String {
    if drop {
        format!("{port}!drop")
    } else {
        port.to_string()
    }
}

impl Topology {
    /// The nodes that read port `port` of node `id`, in file order.
    pub fn readers(&self, id: NodeId, port: usize) -> Vec<NodeId> {
        (0..self.nodes.len()).filter(|&n| self.nodes[n].inputs.iter().any(|i| i.node == id && i.port == port)).collect()
    }

    /// Whether node `id` is a service (`serve`): it serves the other nodes, outside the data
    /// path, and is asked to stop once they are done.
    pub fn is_service(&self, id: NodeId) -> bool {
        matches!(&self.nodes[id].runner, Runner::Builtin(k) if k.is_service())
    }

    /// Whether a failure may roll the run back and so start any replica again
    /// (`delivery = "exactly-once"` and some node restarts on failure).
    pub fn may_roll_back(&self) -> bool {
        self.delivery == Delivery::ExactlyOnce && self.nodes.iter().any(|n| n.restart.on_failure)
    }

    /// Whether node `id` reads a push port: then each of its replicas binds one PULL socket
    /// for all of them (`PROCNET_BIND`).
    pub fn binds_push_input(&self, id: NodeId) -> bool {
        self.nodes[id].inputs.iter().any(|i| self.port(i.node, i.port).pattern == Pattern::Push)
    }

    /// Whether node `id` reads a pub port.
    pub fn reads_pub(&self, id: NodeId) -> bool {
        self.nodes[id].inputs.iter().any(|i| self.port(i.node, i.port).pattern == Pattern::Pub)
    }

    /// The pub sockets each replica of node `id` binds, by key (`PROCNET_PUB`): one per pub
    /// port, and the port's lossy one (`<port>!drop`, [`socket_key`]) when some node reads
    /// it with `drop = true`.
    pub fn pub_sockets(&self, id: NodeId) -> Vec<String> {
        let mut keys = Vec::new();
        for (p, port) in self.nodes[id].ports.iter().enumerate().filter(|(_, p)| p.pattern == Pattern::Pub) {
            keys.push(port.name.clone());
            if self.readers(id, p).into_iter().any(|d| self.reads_dropping(d, id, p)) {
                keys.push(socket_key(&port.name, true));
            }
        }
        keys
    }

    /// What node `id` sends on its push ports, in the order of `wire.outputs`: for each push
    /// port (in the node's order of ports), each node that reads it (in file order).
    pub fn push_outputs(&self, id: NodeId) -> Vec<(usize, NodeId)> {
        let node = &self.nodes[id];
        let push = (0..node.ports.len()).filter(|&p| node.ports[p].pattern == Pattern::Push);
        push.flat_map(|p| self.readers(id, p).into_iter().map(move |d| (p, d))).collect()
    }

    /// Whether node `reader` reads port `port` of node `id` with `drop = true`.
    pub fn reads_dropping(&self, reader: NodeId, id: NodeId, port: usize) -> bool {
        self.nodes[reader].inputs.iter().any(|i| i.node == id && i.port == port && i.drop)
    }

    /// The name of port `port` of node `id`.
    pub fn port(&self, id: NodeId, port: usize) -> &Port {
        &self.nodes[id].ports[port]
    }

    /// The number of processes a run starts.
    pub fn process_count(&self) -> u32 {
        self.nodes.iter().map(|n| n.replicas).sum()
    }

    /// The edges, as (downstream node, its input) pairs in file order of the downstream node.
    pub fn edges(&self) -> Vec<(NodeId, &Input)> {
        self.nodes.iter().enumerate().flat_map(|(d, n)| n.inputs.iter().map(move |i| (d, i))).collect()
    }

    /// The host replica `replica` of node `node` runs on (round-robin over its `host` list);
    /// None for a node without `host`, which runs with the coordinating launcher.
    pub fn replica_host(&self, node: NodeId, replica: u32) -> Option<usize> {
        let hosts = &self.nodes[node].host;
        (!hosts.is_empty()).then(|| hosts[replica as usize % hosts.len()])
    }

    /// The host whose launcher coordinates a run over several hosts: the first declared.
    pub const COORDINATOR: usize = 0;

    /// The address a replica on `host` binds its tcp sockets to: its host's, or for a node
    /// without `host`, the coordinator's (or the loopback address without `[hosts]`).
    pub fn bind_address(&self, host: Option<usize>) -> std::net::IpAddr {
        match host.or((!self.hosts.is_empty()).then_some(Self::COORDINATOR)) {
            Some(h) => self.hosts[h].bind,
            None => std::net::IpAddr::from([127, 0, 0, 1]),
        }
    }

    /// This topology with every host mapped to the loopback address (`procnet run --local`):
    /// every host's nodes run on this machine, edges between hosts still over tcp.
    pub fn localized(&self) -> Topology {
        let mut t = self.clone();
        for h in &mut t.hosts {
            h.address = std::net::IpAddr::from([127, 0, 0, 1]);
            h.bind = h.address;
        }
        t
    }

    /// Whether any replica of the topology is placed on `host`.
    pub fn runs_on(&self, host: usize) -> bool {
        self.nodes.iter().enumerate().any(|(n, node)| (0..node.replicas).any(|r| self.replica_host(n, r) == Some(host)))
            || (host == Self::COORDINATOR && self.nodes.iter().any(|n| n.host.is_empty()))
    }
}
