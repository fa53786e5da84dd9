//! `--set PATH=VALUE`: a value put into the parsed topology document before it is read, so
//! that it is checked exactly as if the file said it.
//!
//! PATH is dotted TOML keys (`nodes.filter.replicas`, `nodes."a.b".x`). VALUE is a TOML value
//! (`4`, `true`, `"x"`, `["a", "b"]`, `{ a = 1 }`), or, when it does not parse as one, the
//! string it is (`defaults.transport=tcp`). A missing table on the way is created
//! (`defaults`), but not a node or a host: `--set` changes what the file declares.
//!
//! Each flag is a source of its own ([`Flag`]): the spans of its keys and value are
//! numbered after the file's text, so that every check that finds a problem with them points
//! at the flag, not at a line of the file. `${VAR}` is not expanded in VALUE: the shell that
//! runs procnet already expands `$VAR`.

use std::borrow::Cow;
use std::ops::Range;
use std::str::FromStr;

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics, Flag};
use super::suggest::{did_you_mean, elide, list};

/// How a flag is shown in messages, before its `PATH=VALUE`.
const FLAG: &str = "--set ";

/// One `--set PATH=VALUE`, parsed as far as the command line can be: its path. Its value is
/// read against the document ([`apply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// `PATH=VALUE` as given.
    text: String,
    /// Each key of the path, with its bytes in `text`.
    path: Vec<(String, Range<usize>)>,
    /// Where VALUE starts in `text`.
    value_at: usize,
}

impl FromStr for Override {
    type Err = String;

    /// Parse `PATH=VALUE`; the error is a usage error, said by the command line's parser.
    fn from_str(text: &str) -> Result<Override, String> {
        let Some(eq) = split_at(text) else {
            return Err(format!("`{text}` is not PATH=VALUE, e.g. `nodes.filter.replicas=4`"));
        };
        let path = &text[..eq];
        if path.trim().is_empty() {
            return Err(format!("`{text}` has an empty key path before `=`; e.g. `nodes.filter.replicas=4`"));
        }
        let path = keys(path).ok_or_else(|| {
            format!(
                "`{path}` is not a key path: keys separated by dots, e.g. `nodes.filter.replicas` or `nodes.\"a.b\".x`"
            )
        })?;
        Ok(Override { text: text.to_string(), path, value_at: eq + 1 })
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Override {
    /// `PATH=VALUE` as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The keys of the path.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.path.iter().map(|(k, _)| k.as_str())
    }

    /// VALUE as given.
    pub fn value_text(&self) -> &str {
        &self.text[self.value_at..]
    }
}

/// The first `=` of `text` outside a quoted key.
fn split_at(text: &str) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '=') => return Some(i),
            _ => {}
        }
        escaped = false;
    }
    None
}

/// The keys of dotted key `path`, each with its bytes in it, read as TOML reads a key: the
/// document `PATH = 0` must be one chain of single keys.
fn keys(path: &str) -> Option<Vec<(String, Range<usize>)>> {
    let doc = format!("{path} = 0");
    let parsed = DeTable::parse(&doc).ok()?;
    let mut keys = Vec::new();
    let mut table = parsed.get_ref();
    loop {
        let mut entries = table.iter();
        let (key, value) = entries.next()?;
        if entries.next().is_some() {
            return None;
        }
        keys.push((key.get_ref().to_string(), key.span()));
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            DeValue::Integer(_) => return Some(keys),
            _ => return None,
        }
    }
}

/// Apply `overrides`, in order, to `doc`, whose text is `text_len` bytes long: each sets its
/// value, whose spans are numbered in its own [`Flag`] (the flags are returned for the
/// report). A path through a value that is not a table, or to a node or host the file does
/// not declare, is an error at the flag.
pub(super) fn apply<'a>(
    doc: &mut DeTable<'a>,
    overrides: &'a [Override],
    text_len: usize,
    diags: &mut Diagnostics,
) -> Vec<Flag> {
    let mut flags = Vec::new();
    let mut start = text_len + 1;
    for o in overrides {
        let flag = Flag { start, text: format!("{FLAG}{}", o.text) };
        start += flag.text.len() + 1;
        apply_one(doc, o, flag.start + FLAG.len(), diags);
        flags.push(flag);
    }
    flags
}

fn apply_one<'a>(doc: &mut DeTable<'a>, o: &'a Override, base: usize, diags: &mut Diagnostics) {
    let at = |span: &Range<usize>| base + span.start..base + span.end;
    let (leaf, parents) = o.path.split_last().expect("a path has a key");
    let mut table = doc;
    for (depth, (key, span)) in parents.iter().enumerate() {
        if !table.contains_key(key.as_str()) {
            if let Some(d) = undeclared(&o.path[..depth], key, at(span), table) {
                diags.push(d);
                return;
            }
            // Without `[nodes]` (or `[hosts]`), the next key names a node that is not declared.
            if let (0, "nodes" | "hosts") = (depth, key.as_str()) {
                let (next, next_span) = &o.path[1];
                if let Some(d) = undeclared(&o.path[..1], next, at(next_span), &DeTable::new()) {
                    diags.push(d);
                }
                return;
            }
            let new = Spanned::new(at(span), DeValue::Table(DeTable::new()));
            table.insert(Spanned::new(at(span), Cow::Borrowed(key.as_str())), new);
        }
        let value = table.get_mut(key.as_str()).expect("present or just inserted");
        match value.get_mut() {
            DeValue::Table(inner) => table = inner,
            other => {
                let so_far: Vec<&str> = o.path[..=depth].iter().map(|(k, _)| k.as_str()).collect();
                diags.push(
                    Diagnostic::error(
                        at(span),
                        format!("`{}` is {}, not a table", so_far.join("."), a(other.type_str())),
                    )
                    .with_help(format!("`--set` sets a key of a table; `{}` has no keys", so_far.join("."))),
                );
                return;
            }
        }
    }
    let (key, span) = leaf;
    // A key the file has keeps its place (the order of ports is the file's); a new one is the flag's.
    let key_span = match table.remove_entry(key.as_str()) {
        Some((k, _)) => k.span(),
        None => {
            if let Some(d) = undeclared(parents, key, at(span), table) {
                diags.push(d);
                return;
            }
            at(span)
        }
    };
    table.insert(Spanned::new(key_span, Cow::Borrowed(key.as_str())), value(o, base));
}

/// `what` with its indefinite article: `an integer`, `a string`.
fn a(what: &str) -> String {
    if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {what}")
    } else {
        format!("a {what}")
    }
}

/// The error for `--set` naming `key`, absent from `table` under `parents`, if that is a node
/// or a host: `--set` does not declare them.
fn undeclared(
    parents: &[(String, Range<usize>)],
    key: &str,
    span: Range<usize>,
    table: &DeTable<'_>,
) -> Option<Diagnostic> {
    let what = match parents {
        [(top, _)] if top == "nodes" => "node",
        [(top, _)] if top == "hosts" => "host",
        _ => return None,
    };
    let mut names: Vec<(usize, &str)> = table.iter().map(|(k, _)| (k.span().start, k.get_ref().as_ref())).collect();
    names.sort();
    let names: Vec<&str> = names.into_iter().map(|(_, n)| n).collect();
    let d = Diagnostic::error(span, format!("the topology declares no {what} `{}`", elide(key)));
    let known = if names.is_empty() {
        format!("`--set` changes the {what}s the file declares, and it declares none")
    } else {
        format!("known {what}s: {}", list(names.iter().copied()))
    };
    Some(match did_you_mean(key, names.iter().copied()) {
        Some(m) => d.with_help(format!("did you mean `{m}`? {known}")),
        None => d.with_help(known),
    })
}

/// The value of `o`, its spans numbered from `base` (where `PATH=VALUE` starts): VALUE as
/// TOML, or else as the string it is. Spaces around it are not part of it.
fn value<'a>(o: &'a Override, base: usize) -> Spanned<DeValue<'a>> {
    let raw = o.value_text();
    let trimmed = raw.trim();
    let start = o.value_at + (raw.len() - raw.trim_start().len());
    match DeValue::parse(trimmed) {
        Ok(v) => shifted(v, base + start),
        Err(_) => Spanned::new(base + start..base + start + trimmed.len(), DeValue::String(Cow::Borrowed(trimmed))),
    }
}

/// `v` with every span moved `by` bytes on.
fn shifted(v: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = v.span();
    let moved = |s: Range<usize>| s.start + by..s.end + by;
    let value = match v.into_inner() {
        DeValue::Array(items) => {
            let mut out = DeArray::new();
            for item in items.iter() {
                out.push(shifted(item.clone(), by));
            }
            DeValue::Array(out)
        }
        DeValue::Table(table) => {
            let mut out = DeTable::new();
            for (k, item) in table {
                out.insert(Spanned::new(moved(k.span()), k.into_inner()), shifted(item, by));
            }
            DeValue::Table(out)
        }
        other => other,
    };
    Spanned::new(moved(span), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_of(text: &str) -> Vec<String> {
        let o: Override = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        o.keys().map(str::to_string).collect()
    }

    #[test]
    fn paths_are_dotted_toml_keys() {
        assert_eq!(keys_of("nodes.filter.replicas=4"), ["nodes", "filter", "replicas"]);
        assert_eq!(keys_of("nodes.\"a.b\".x=1"), ["nodes", "a.b", "x"]);
        assert_eq!(keys_of("nodes.'a=b'.x=1"), ["nodes", "a=b", "x"]);
        assert_eq!(keys_of(" defaults . transport = tcp"), ["defaults", "transport"]);
        assert_eq!(keys_of("a=b=c"), ["a"]);
        let o: Override = "a=b=c".parse().expect("valid");
        assert_eq!(o.value_text(), "b=c");
    }

    #[test]
    fn malformed_flags_are_refused() {
        for bad in ["replicas", "=4", " =4", "a..b=1", "a b=1", "[a]=1", "a.=1", "\"a=1", "a\nb=1", "a#b=1"] {
            assert!(bad.parse::<Override>().is_err(), "{bad:?} accepted");
        }
        let e = "nodes.x".parse::<Override>().expect_err("no =");
        assert!(e.contains("PATH=VALUE"), "{e}");
    }

    /// The document `text` with `flags` applied, as TOML-ish text of its values, and the
    /// messages of the problems.
    fn applied(text: &str, flags: &[&str]) -> (DeTable<'static>, Vec<String>, Vec<Flag>) {
        let overrides: Vec<Override> = flags.iter().map(|f| f.parse().expect("a valid flag")).collect();
        let overrides: &'static [Override] = Box::leak(overrides.into_boxed_slice());
        let text: &'static str = Box::leak(text.to_string().into_boxed_str());
        let mut doc = DeTable::parse(text).expect("TOML").into_inner();
        let mut diags = Diagnostics::default();
        let flags = apply(&mut doc, overrides, text.len(), &mut diags);
        let report = diags.into_report(std::path::Path::new("t.toml"), text.to_string());
        (doc, report.diagnostics.into_iter().map(|d| d.message).collect(), flags)
    }

    fn at<'d>(doc: &'d DeTable<'_>, path: &[&str]) -> &'d Spanned<DeValue<'d>> {
        let (last, parents) = path.split_last().expect("a path");
        let mut t = doc;
        for p in parents {
            let DeValue::Table(inner) = t.get(*p).expect("present").get_ref() else { panic!("{p} is not a table") };
            t = inner;
        }
        t.get(*last).expect("present")
    }

    #[test]
    fn values_are_toml_or_strings() {
        let text = "[nodes.f]\nreplicas = 1\n";
        let (doc, problems, flags) = applied(
            text,
            &[
                "nodes.f.replicas=4",
                "defaults.transport=tcp",
                "nodes.f.command=[\"a\", \"b\"]",
                "nodes.f.outputs={ out = \"pub\" }",
                "nodes.f.x= \"quoted\" ",
                "nodes.f.y=",
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert!(matches!(at(&doc, &["nodes", "f", "replicas"]).get_ref(), DeValue::Integer(i) if i.as_str() == "4"));
        assert!(matches!(at(&doc, &["defaults", "transport"]).get_ref(), DeValue::String(s) if s == "tcp"));
        assert!(matches!(at(&doc, &["nodes", "f", "command"]).get_ref(), DeValue::Array(a) if a.len() == 2));
        assert!(matches!(at(&doc, &["nodes", "f", "outputs", "out"]).get_ref(), DeValue::String(s) if s == "pub"));
        assert!(matches!(at(&doc, &["nodes", "f", "x"]).get_ref(), DeValue::String(s) if s == "quoted"));
        assert!(matches!(at(&doc, &["nodes", "f", "y"]).get_ref(), DeValue::String(s) if s.is_empty()));

        // Every span is in its flag: the value `4` is the last byte of the first one.
        assert_eq!(flags[0], Flag { start: text.len() + 1, text: "--set nodes.f.replicas=4".into() });
        let four = at(&doc, &["nodes", "f", "replicas"]).span();
        assert_eq!(four, flags[0].start + 23..flags[0].start + 24);
        let out = at(&doc, &["nodes", "f", "outputs", "out"]).span();
        let flag = &flags[3];
        assert_eq!(&flag.text[out.start - flag.start..out.end - flag.start], "\"pub\"");
        // A key the file has keeps its position; the value is the flag's.
        let (doc, _, _) = applied(text, &["nodes.f.replicas=4"]);
        let (k, _) = match doc.get("nodes").expect("nodes").get_ref() {
            DeValue::Table(n) => match n.get("f").expect("f").get_ref() {
                DeValue::Table(f) => f.get_key_value("replicas").map(|(k, v)| (k.span(), v.span())).expect("replicas"),
                _ => unreachable!(),
            },
            _ => unreachable!(),
        };
        assert_eq!(k, text.find("replicas").expect("in the file")..text.find("replicas").expect("there") + 8);
    }

    #[test]
    fn nodes_and_hosts_are_not_declared_by_a_flag() {
        let text = "[nodes.filter]\nkind = \"filter\"\n[nodes.src]\nkind = \"lines\"\n";
        let (_, problems, _) = applied(text, &["nodes.filtr.replicas=2", "hosts.a.address=\"1.2.3.4\"", "nodes.new=1"]);
        assert_eq!(
            problems,
            [
                "the topology declares no node `filtr`",
                "the topology declares no host `a`",
                "the topology declares no node `new`"
            ]
        );
        let (_, problems, _) = applied(text, &["nodes.filter.kind.x=1"]);
        assert_eq!(problems, ["`nodes.filter.kind` is a string, not a table"]);
        // Nothing is created on the way to a node that is not declared.
        let (doc, problems, _) = applied("name = \"x\"\n", &["hosts.a.address=\"1.2.3.4\""]);
        assert_eq!(problems, ["the topology declares no host `a`"]);
        assert!(doc.get("hosts").is_none());
    }
}
