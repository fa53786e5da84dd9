//! The registry of built-in node kinds: names, option keys, validation and dispatch.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{FetchConfig, FilterConfig, LinesConfig, ServeConfig, SinkConfig, StdioConfig, TallyConfig};
use crate::http::site::Site;
use crate::runtime::{Node, NodeError};
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::Table;
use crate::topology::{Pattern, Port, TopicRule};

/// A service started before its node joins; it stops when dropped.
pub struct Service {
    _site: Site,
    /// What the node publishes in its `hello`.
    pub publish: BTreeMap<String, String>,
}

/// Names of the built-in kinds, as written in `kind = "..."`.
pub const BUILTINS: &[&str] = &["lines", "fetch", "filter", "tally", "sink", "serve"];

/// A built-in kind with its validated options. Serialized as JSON into the node's
/// environment, so a spawned replica runs exactly what was validated.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Kind {
    /// Read lines of a file.
    Lines(LinesConfig),
    /// Keep matching records.
    Filter(FilterConfig),
    /// Count records.
    Tally(TallyConfig),
    /// Write records as JSON lines.
    Sink(SinkConfig),
    /// Fetch each record's URL over HTTP.
    Fetch(FetchConfig),
    /// Serve a directory over HTTP for the other nodes.
    Serve(ServeConfig),
    /// Run a program over its stdin and stdout (`command` with `stdio`).
    Stdio(StdioConfig),
}

impl Kind {
    /// The option keys of kind `name` (empty for an unknown kind).
    pub fn keys(name: &str) -> &'static [&'static str] {
        match name {
            "lines" => LinesConfig::KEYS,
            "filter" => FilterConfig::KEYS,
            "tally" => TallyConfig::KEYS,
            "sink" => SinkConfig::KEYS,
            "fetch" => FetchConfig::KEYS,
            "serve" => ServeConfig::KEYS,
            _ => &[],
        }
    }

    /// Validate the options of kind `name` (one of [`BUILTINS`]) in `t`.
    pub fn from_table(name: &str, t: &Table<'_, '_>, base_dir: &Path, diags: &mut Diagnostics) -> Option<Kind> {
        match name {
            "lines" => LinesConfig::from_table(t, base_dir, diags).map(Kind::Lines),
            "filter" => FilterConfig::from_table(t, diags).map(Kind::Filter),
            "tally" => TallyConfig::from_table(t, base_dir, diags).map(Kind::Tally),
            "sink" => SinkConfig::from_table(t, base_dir, diags).map(Kind::Sink),
            "fetch" => FetchConfig::from_table(t, diags).map(Kind::Fetch),
            "serve" => ServeConfig::from_table(t, base_dir, diags).map(Kind::Serve),
            other => unreachable!("`{other}` was checked against BUILTINS"),
        }
    }

    /// The kind's name.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Lines(_) => "lines",
            Kind::Filter(_) => "filter",
            Kind::Tally(_) => "tally",
            Kind::Sink(_) => "sink",
            Kind::Fetch(_) => "fetch",
            Kind::Serve(_) => "serve",
            Kind::Stdio(_) => "stdio",
        }
    }

    /// Whether the kind takes no inputs (a source, or a service).
    pub fn is_source(&self) -> bool {
        matches!(self, Kind::Lines(_) | Kind::Serve(_))
    }

    /// Whether the kind needs inputs (a program over stdio may have none: it is a source).
    pub fn needs_inputs(&self) -> bool {
        !self.is_source() && !matches!(self, Kind::Stdio(_))
    }

    /// Whether the kind sends records downstream on `out` (so records nobody reads are lost).
    pub fn emits(&self) -> bool {
        matches!(self, Kind::Lines(_) | Kind::Filter(_) | Kind::Fetch(_))
    }

    /// The kind's output ports and their default patterns: `out` (push) for the kinds that
    /// send records, `progress` (pub) for `tally`, none for `sink` and `serve`. A topology's
    /// `outputs` may change their patterns and topics, not add ports.
    pub fn ports(&self) -> Vec<Port> {
        match self {
            Kind::Lines(_) | Kind::Filter(_) | Kind::Fetch(_) | Kind::Stdio(_) => vec![Port::out()],
            Kind::Tally(_) => {
                vec![Port { name: "progress".into(), pattern: Pattern::Pub, topic: TopicRule::Empty }]
            }
            Kind::Sink(_) | Kind::Serve(_) => Vec::new(),
        }
    }

    /// Whether the kind is a service: it serves the others until the launcher stops it,
    /// once every other node is done.
    pub fn is_service(&self) -> bool {
        matches!(self, Kind::Serve(_))
    }

    /// Published values this node refers to, as (node, key).
    pub fn references(&self) -> Vec<(String, String)> {
        match self {
            Kind::Fetch(c) => c.references(),
            _ => Vec::new(),
        }
    }

    /// Start what must run before the node joins (a service publishes its address in its
    /// `hello`); the returned value stops it when dropped.
    pub fn start_service(&self) -> Result<Option<Service>, NodeError> {
        match self {
            Kind::Serve(c) => {
                let site = c.start()?;
                let publish = BTreeMap::from([("url".to_string(), site.url().to_string())]);
                Ok(Some(Service { _site: site, publish }))
            }
            _ => Ok(None),
        }
    }

    /// The files the node reads (false) or writes (true), resolved.
    pub fn files(&self) -> Vec<(&Path, bool)> {
        match self {
            Kind::Lines(c) => c.path.iter().map(|p| (p.as_path(), false)).collect(),
            Kind::Tally(c) => c.output.iter().map(|p| (p.as_path(), true)).collect(),
            Kind::Sink(c) => c.path.iter().map(|p| (p.as_path(), true)).collect(),
            Kind::Filter(_) | Kind::Fetch(_) | Kind::Serve(_) | Kind::Stdio(_) => Vec::new(),
        }
    }

    /// Whether the node reads the launcher's stdin (`lines` with `path = "-"`): it is then
    /// started with the launcher's stdin rather than /dev/null.
    pub fn reads_stdin(&self) -> bool {
        matches!(self, Kind::Lines(c) if c.path.is_none())
    }

    /// Why this configuration must run as one replica, if it must.
    pub fn single_replica_reason(&self) -> Option<&'static str> {
        match self {
            Kind::Lines(c) => c.single_replica_reason(),
            Kind::Tally(_) => Some("a tally counts the whole stream in one process; replicas would each print a part"),
            Kind::Sink(c) => c.single_replica_reason(),
            Kind::Serve(_) => Some("other nodes reach one address; a serve node runs as one replica"),
            Kind::Filter(_) | Kind::Fetch(_) | Kind::Stdio(_) => None,
        }
    }

    /// Run the node until its input ends (or, for a source, its data ends).
    pub fn run(&self, node: &mut Node) -> Result<(), NodeError> {
        match self {
            Kind::Lines(c) => c.run(node),
            Kind::Filter(c) => c.run(node),
            Kind::Tally(c) => c.run(node),
            Kind::Sink(c) => c.run(node),
            Kind::Fetch(c) => c.run(node),
            Kind::Serve(c) => c.run(node),
            Kind::Stdio(c) => c.run(node),
        }
    }
}
