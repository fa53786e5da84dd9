//! The vocabulary of output ports: a named [`Port`], its [`Pattern`] (push or pub) and, on a
//! pub port, the [`TopicRule`] that gives each record its topic. Its own file, below the
//! built-in kinds (which declare their ports with it) and the model (which holds them), so
//! that neither imports the other to name a port.

use serde::{Deserialize, Serialize};

/// The socket pattern of an output port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// PUSH/PULL: each record goes to one replica of each reading node.
    Push,
    /// PUB/SUB: each record goes to every replica of every subscribing node whose topics match.
    Pub,
}

impl Pattern {
    /// The name used in topology files.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Push => "push",
            Pattern::Pub => "pub",
        }
    }
}

/// How a pub port chooses each record's topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicRule {
    /// No topic (the empty topic): only subscriptions to everything match.
    Empty,
    /// The text of this record field (empty when the field is missing).
    Field(String),
    /// This fixed topic for every record.
    Fixed(String),
}

/// A named output of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// The port's name (`out` by default).
    pub name: String,
    /// Push or pub.
    pub pattern: Pattern,
    /// For a pub port, how each record's topic is chosen.
    pub topic: TopicRule,
}

impl Port {
    /// The default port of nodes that send records: `out`, push.
    pub fn out() -> Port {
        Port { name: "out".into(), pattern: Pattern::Push, topic: TopicRule::Empty }
    }
}
