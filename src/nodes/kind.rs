//! The registry of built-in node kinds: names, option keys, validation and dispatch.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{FilterConfig, LinesConfig, SinkConfig, TallyConfig};
use crate::runtime::{Node, NodeError};
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::Table;

/// Names of the built-in kinds, as written in `kind = "..."`.
pub const BUILTINS: &[&str] = &["lines", "filter", "tally", "sink"];

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
}

impl Kind {
    /// The option keys of kind `name` (empty for an unknown kind).
    pub fn keys(name: &str) -> &'static [&'static str] {
        match name {
            "lines" => LinesConfig::KEYS,
            "filter" => FilterConfig::KEYS,
            "tally" => TallyConfig::KEYS,
            "sink" => SinkConfig::KEYS,
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
        }
    }

    /// Whether the kind produces records without reading any.
    pub fn is_source(&self) -> bool {
        matches!(self, Kind::Lines(_))
    }

    /// Whether the kind sends records downstream (so records nobody reads are lost).
    pub fn emits(&self) -> bool {
        matches!(self, Kind::Lines(_) | Kind::Filter(_))
    }

    /// The files the node reads (false) or writes (true), resolved.
    pub fn files(&self) -> Vec<(&Path, bool)> {
        match self {
            Kind::Lines(c) => c.path.iter().map(|p| (p.as_path(), false)).collect(),
            Kind::Tally(c) => c.output.iter().map(|p| (p.as_path(), true)).collect(),
            Kind::Sink(c) => c.path.iter().map(|p| (p.as_path(), true)).collect(),
            Kind::Filter(_) => Vec::new(),
        }
    }

    /// Why this configuration must run as one replica, if it must.
    pub fn single_replica_reason(&self) -> Option<&'static str> {
        match self {
            Kind::Lines(c) => c.single_replica_reason(),
            Kind::Tally(_) => Some("a tally counts the whole stream in one process; replicas would each print a part"),
            Kind::Sink(c) => c.single_replica_reason(),
            Kind::Filter(_) => None,
        }
    }

    /// Run the node until its input ends (or, for a source, its data ends).
    pub fn run(&self, node: &mut Node) -> Result<(), NodeError> {
        match self {
            Kind::Lines(c) => c.run(node),
            Kind::Filter(c) => c.run(node),
            Kind::Tally(c) => c.run(node),
            Kind::Sink(c) => c.run(node),
        }
    }
}
