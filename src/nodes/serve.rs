//! `serve`: a service node that serves a directory over HTTP on 127.0.0.1 for the others
//! (an offline site to fetch), and publishes its URL as `<node>.url` (`"${site.url}"` in a
//! `fetch` node's `connect_to`). It neither reads nor sends records; the launcher stops it once
//! every other node is done.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::site::{Site, SiteConfig};
use crate::runtime::{Node, NodeError};
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::{resolve, Table};

/// Options of a `serve` node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The directory served, resolved.
    pub dir: PathBuf,
    /// A delay before every answer.
    pub latency_ms: u64,
    /// Prefixes of `host/path` answered with 403.
    pub forbidden: Vec<String>,
    /// Prefixes of `host/path` answered after `slow_ms` more.
    pub slow: Vec<String>,
    /// The extra delay of slow pages.
    pub slow_ms: u64,
}

impl ServeConfig {
    /// Option keys this kind accepts.
    pub const KEYS: &'static [&'static str] = &["dir", "latency_ms", "forbidden", "slow", "slow_ms"];

    /// Validate the options in `t`.
    pub fn from_table(t: &Table<'_, '_>, base_dir: &std::path::Path, diags: &mut Diagnostics) -> Option<Self> {
        t.require("dir", "give the directory to serve, relative to the topology file", diags);
        let dir = t.non_empty_str("dir", diags).map(|d| resolve(base_dir, d.get_ref()));
        let ms = |key: &str, default: u64, diags: &mut Diagnostics| match t.int(key, diags) {
            Some(v) if (0..=600_000).contains(v.get_ref()) => *v.get_ref() as u64,
            Some(v) => {
                diags.error(v.span(), format!("`{key}` in {} must be between 0 and 600000", t.what()));
                default
            }
            None => default,
        };
        let list = |key: &str, diags: &mut Diagnostics| -> Vec<String> {
            t.str_list(key, diags)
                .map(|l| l.into_inner().into_iter().map(|s| s.into_inner()).collect())
                .unwrap_or_default()
        };
        Some(ServeConfig {
            latency_ms: ms("latency_ms", 0, diags),
            forbidden: list("forbidden", diags),
            slow: list("slow", diags),
            slow_ms: ms("slow_ms", 1000, diags),
            dir: dir?,
        })
    }

    /// Start serving; the site stops when the returned value is dropped.
    pub fn start(&self) -> Result<Site, NodeError> {
        if !self.dir.is_dir() {
            return Err(NodeError::Io {
                what: format!("serve `{}`", self.dir.display()),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
            });
        }
        Site::start(SiteConfig {
            dir: self.dir.clone(),
            latency: Duration::from_millis(self.latency_ms),
            forbidden: self.forbidden.clone(),
            slow: self.slow.clone(),
            slow_delay: Duration::from_millis(self.slow_ms),
        })
        .map_err(NodeError::io("start the HTTP server"))
    }

    /// Serve until the launcher says stop.
    pub fn run(&self, node: &mut Node) -> Result<(), NodeError> {
        node.wait_for_stop()
    }
}
