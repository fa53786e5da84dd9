//! `tally`: counts its input and, at end of stream, writes one JSON object
//! `{"count": N, "by": {"<value>": n, ...}}` (`by` only when configured), keys sorted. Its
//! `progress` port (pub) publishes the running counts as a record at most every second, and
//! the final counts at the end.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::template::{template_option, Template};
use crate::record::{text_of, Record, Value};
use crate::runtime::{Node, NodeError};
use crate::topology::compile::resolve;
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::Table;

/// How often a tally publishes its running counts on its `progress` port, at most.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The group of records that lack the `by` field.
pub const MISSING: &str = "(missing)";

/// Options of a `tally` node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TallyConfig {
    /// Group counts by this field's value.
    pub by: Option<String>,
    /// Where to write the result; None means stdout.
    pub output: Option<PathBuf>,
    /// Write the result as this template (`{count}`, `{by}`) instead of as JSON.
    pub template: Option<Template>,
}

/// The result a tally writes.
#[derive(Debug, Serialize)]
struct Tally {
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<BTreeMap<String, u64>>,
}

impl Tally {
    /// The counts as a record, for the `progress` port: `{"count": N, "by": {...}}`.
    fn record(&self) -> Record {
        let mut r = Record::new();
        r.insert("count", self.count);
        if let Some(by) = &self.by {
            r.insert("by", Value::Map(by.iter().map(|(k, v)| (Value::from(k.as_str()), Value::from(*v))).collect()));
        }
        r
    }
}

impl TallyConfig {
    /// Option keys this kind accepts.
    pub const KEYS: &'static [&'static str] = &["by", "output", "template"];

    /// Validate the options in `t`.
    pub fn from_table(t: &Table<'_, '_>, base_dir: &std::path::Path, diags: &mut Diagnostics) -> Option<Self> {
        let by = t.str("by", diags).map(|s| s.into_inner());
        let output = t
            .non_empty_str("output", diags)
            .map(|s| s.into_inner())
            .filter(|p| p != "-")
            .map(|p| resolve(base_dir, &p));
        let template = template_option(t, "template", diags);
        if let (Some(tpl), Some(s)) = (&template, t.get("template")) {
            if let Some(bad) = tpl.fields().find(|f| !["count", "by"].contains(f)) {
                diags.error(
                    s.span(),
                    format!("`template` in {} uses `{{{bad}}}`; a tally has `{{count}}` and `{{by}}`", t.what()),
                );
            }
        }
        Some(TallyConfig { by, output, template })
    }

    /// Count everything, then write the result once.
    pub fn run(&self, node: &mut Node) -> Result<(), NodeError> {
        let mut out: Box<dyn Write> = match &self.output {
            Some(p) => Box::new(File::create(p).map_err(NodeError::io(format!("create `{}`", p.display())))?),
            None => Box::new(std::io::stdout()),
        };
        let mut tally = Tally { count: 0, by: self.by.as_ref().map(|_| BTreeMap::new()) };
        let mut last_progress = Instant::now();
        while let Some(rec) = node.recv()? {
            tally.count += 1;
            if let (Some(field), Some(groups)) = (&self.by, &mut tally.by) {
                let key = rec.get(field).map_or_else(|| MISSING.to_string(), |v| text_of(v).into_owned());
                *groups.entry(key).or_default() += 1;
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                node.send_to("progress", &tally.record())?;
            }
        }
        // The final counts, so a subscriber always ends with the result.
        node.send_to("progress", &tally.record())?;
        let line = match &self.template {
            Some(t) => t.render(|f| match f {
                "count" => Some(tally.count.to_string().into()),
                _ => tally.by.as_ref().map(|by| serde_json::to_string(by).expect("counts serialize").into()),
            }),
            None => serde_json::to_string(&tally).expect("a tally serializes"),
        };
        writeln!(out, "{line}").and_then(|()| out.flush()).map_err(NodeError::io("write the tally"))
    }
}
