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
use crate::topology::diagnostic::Diagnostic;
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
    /// Group by the host of the URL in `by` instead of the whole value.
    #[serde(default)]
    pub by_host: bool,
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
    pub const KEYS: &'static [&'static str] = &["by", "by_host", "output", "template"];

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
        let by_host = t.bool("by_host", diags).is_some_and(|b| *b.get_ref());
        if let (true, None, Some(span)) = (by_host, &by, t.key_span("by_host")) {
            diags.push(
                Diagnostic::error(span, format!("`by_host` in {} needs `by`: the field holding the URL", t.what()))
                    .with_help("add `by = \"url\"` (or the name of your URL field)"),
            );
        }
        Some(TallyConfig { by, by_host, output, template })
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
                let key = if self.by_host { host_of(&key).to_string() } else { key };
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

/// The host of `url` as written: what lies between `//` and the next `/`
/// (`http://site-7.test/page/3` gives `site-7.test`); the whole text if it has no `//`.
pub fn host_of(url: &str) -> &str {
    match url.split_once("//") {
        Some((_, rest)) => rest.split('/').next().unwrap_or(rest),
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_takes_what_lies_between_the_slashes() {
        assert_eq!(host_of("http://site-7.test/page/3"), "site-7.test");
        assert_eq!(host_of("https://a.test"), "a.test");
        assert_eq!(host_of("http://a.test:8080/x"), "a.test:8080");
        assert_eq!(host_of("not a url"), "not a url");
    }
}
