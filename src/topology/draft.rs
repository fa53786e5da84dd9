//! A topology as read, before its names are resolved: one [`Draft`] per node, with the
//! inputs ([`DraftInput`]) and declared ports ([`DeclaredPort`]) as written, each keeping its
//! position. The checks and the placement on hosts work on drafts; `compile` turns them into
//! the validated [`super::model`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml::Spanned;

use super::model::{Input, Restart, Runner, StartMethod, Transport};
use super::port::Port;
use super::raw::Span;

/// A node as read, before its inputs are resolved. `runner` is None when the node has an
/// error; the node still counts as declared, so readers of it get no false "not declared".
pub struct Draft {
    /// The node's name and where it is declared.
    pub name: Spanned<String>,
    /// What it runs, if that part is valid.
    pub runner: Option<Runner>,
    /// Replica count (1 if absent or invalid).
    pub replicas: u32,
    /// The inputs as written.
    pub inputs: Vec<DraftInput>,
    /// The node's ports (its kind's or declared), empty when the runner is invalid.
    pub ports: Vec<Port>,
    /// The ports declared in `outputs`, with their positions.
    pub declared: Vec<DeclaredPort>,
    /// The `inputs` value, if the key is present.
    pub inputs_span: Option<Span>,
    /// Whether `inputs` is present but not an array (already an error of its own).
    pub inputs_malformed: bool,
    /// The transport of its input socket.
    pub transport: Transport,
    /// The `transport` key, if set on the node itself.
    pub transport_span: Option<Span>,
    /// How its processes start.
    pub start: StartMethod,
    /// Its restart policy.
    pub restart: Restart,
    /// The largest message its inputs accept.
    pub max_message_bytes: u64,
    /// The declared hosts its replicas run on, round-robin (indices in `[hosts]`); empty
    /// for the local host.
    pub host: Vec<usize>,
    /// Variables added to its program's environment (`env`).
    pub env: BTreeMap<String, String>,
    /// The directory its program runs in (`cwd`), resolved.
    pub cwd: Option<PathBuf>,
}

/// An input as written, before the names are resolved.
#[derive(Debug, Clone)]
pub struct DraftInput {
    /// The upstream node's name.
    pub node: Spanned<String>,
    /// The port, if named (`"node.port"` or `from = "node.port"`).
    pub port: Option<Spanned<String>>,
    /// Topic prefixes, if given (`topics = [...]`).
    pub topics: Option<Spanned<Vec<String>>>,
    /// `drop = true`, if given: records may be dropped rather than slow the publisher.
    pub drop: Option<Spanned<bool>>,
    /// The whole entry.
    pub span: Span,
}

/// A port declared in `outputs`, with where it was declared.
#[derive(Debug, Clone)]
pub struct DeclaredPort {
    /// The port.
    pub port: Port,
    /// Its key in `outputs`.
    pub span: Span,
}

/// Each node's inputs resolved, with the span of each entry.
pub type Inputs = Vec<Vec<(Input, Span)>>;
