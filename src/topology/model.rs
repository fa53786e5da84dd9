//! The validated topology: every name resolved, every option checked. The launcher and the
//! nodes only ever see this form.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// Nodes in file order.
    pub nodes: Vec<Node>,
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
    /// Upstream nodes, in the order listed.
    pub inputs: Vec<NodeId>,
    /// How this node's input socket is reached.
    pub transport: Transport,
}

/// What a node's processes execute.
#[derive(Debug, Clone)]
pub enum Runner {
    /// A built-in node kind with its validated options.
    Builtin(Kind),
    /// An executable and its arguments; it speaks the wire protocol.
    Command(Vec<String>),
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
        }
    }
}

impl Topology {
    /// The nodes that read from `id`, in file order.
    pub fn consumers(&self, id: NodeId) -> Vec<NodeId> {
        (0..self.nodes.len()).filter(|&n| self.nodes[n].inputs.contains(&id)).collect()
    }

    /// The number of processes a run starts.
    pub fn process_count(&self) -> u32 {
        self.nodes.iter().map(|n| n.replicas).sum()
    }

    /// The edges, as (upstream, downstream) pairs in file order of the downstream node.
    pub fn edges(&self) -> Vec<(NodeId, NodeId)> {
        self.nodes.iter().enumerate().flat_map(|(d, n)| n.inputs.iter().map(move |&u| (u, d))).collect()
    }
}
