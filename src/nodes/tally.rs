//! `tally`: counts its input and, at end of stream, writes one JSON object
//! `{"count": N, "by": {"<value>": n, ...}}` (`by` only when configured), keys sorted. Its
//! `progress` port (pub) publishes the running counts as a record at most every second, and
//! the final counts at the end.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::template::{template_option, Template};
use crate::record::{Record, Value};
use crate::runtime::{outfile, Node, NodeError};
use crate::topology::diagnostic::Diagnostic;
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::{resolve, Table};

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
        // Whole or absent: written beside the target, renamed into place after the run.
        let file = match &self.output {
            Some(p) => Some(
                outfile::create(p, &node.identity().run_name())
                    .map_err(NodeError::io(format!("create `{}`", p.display())))?,
            ),
            None => None,
        };
        let mut count = 0u64;
        // Counted by the bytes of each group's text (a str as it lies in the record), made
        // text when published: the same groups as `text_of`, as bad UTF-8 is replaced.
        let mut groups: HashMap<Box<[u8]>, u64> = HashMap::new();
        let mut last_progress = Instant::now();
        // A group's text is kept and sent on: the JSON text of a field that is not a string
        // is refused past the size of a message, so a hostile value cannot multiply.
        let max_text = crate::record::raw::text_limit(node.identity().max_message_bytes);
        while let Some(batch) = node.recv_batch()? {
            count += batch.len() as u64;
            if let Some(field) = &self.by {
                for rec in batch.records() {
                    let value = rec.get(field);
                    let text;
                    let key = match value.and_then(|v| v.str_bytes()) {
                        Some(bytes) => bytes,
                        None => {
                            text = match value.map(|v| v.text_within(max_text)) {
                                None => Cow::Borrowed(MISSING),
                                Some(Ok(text)) => text,
                                Some(Err(e)) => {
                                    count -= 1;
                                    node.bad_record(format!("field `{field}`: {e}"));
                                    continue;
                                }
                            };
                            text.as_bytes()
                        }
                    };
                    let key = if self.by_host { host_of(key) } else { key };
                    match groups.get_mut(key) {
                        Some(n) => *n += 1,
                        None => {
                            groups.insert(key.into(), 1);
                        }
                    }
                }
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                node.send_to("progress", &self.tally(count, &groups).record())?;
            }
        }
        let tally = self.tally(count, &groups);
        // The final counts, so a subscriber always ends with the result; and for the run
        // report, as JSON whatever the template.
        node.send_to("progress", &tally.record())?;
        node.set_result(serde_json::to_string(&tally).expect("a tally serializes"));
        let line = match &self.template {
            Some(t) => t.render(|f| match f {
                "count" => Some(tally.count.to_string().into()),
                _ => tally.by.as_ref().map(|by| serde_json::to_string(by).expect("counts serialize").into()),
            }),
            None => serde_json::to_string(&tally).expect("a tally serializes"),
        };
        let written = match file {
            // On disk before `done`: a full disk shows here, not after the run succeeded.
            Some(mut f) => writeln!(f, "{line}").and_then(|()| f.sync_all()),
            None => writeln!(std::io::stdout(), "{line}").and_then(|()| std::io::stdout().flush()),
        };
        written.map_err(NodeError::io("write the tally"))
    }
}

impl TallyConfig {
    /// The counts so far, with the groups as text, sorted.
    fn tally(&self, count: u64, groups: &HashMap<Box<[u8]>, u64>) -> Tally {
        let by = self.by.as_ref().map(|_| {
            let mut by = BTreeMap::new();
            for (k, n) in groups {
                *by.entry(String::from_utf8_lossy(k).into_owned()).or_default() += n;
            }
            by
        });
        Tally { count, by }
    }
}

/// The host of `url` as written: what lies between `//` and the next `/`
/// (`http://site-7.test/page/3` gives `site-7.test`); the whole text if it has no `//`.
pub fn host_of(url: &[u8]) -> &[u8] {
    let Some(i) = url.windows(2).position(|w| w == b"//") else {
        return url;
    };
    let rest = &url[i + 2..];
    match memchr::memchr(b'/', rest) {
        Some(j) => &rest[..j],
        None => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_takes_what_lies_between_the_slashes() {
        assert_eq!(host_of(b"http://site-7.test/page/3"), b"site-7.test");
        assert_eq!(host_of(b"https://a.test"), b"a.test");
        assert_eq!(host_of(b"http://a.test:8080/x"), b"a.test:8080");
        assert_eq!(host_of(b"not a url"), b"not a url");
    }
}
