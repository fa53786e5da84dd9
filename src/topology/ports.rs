//! Reading a node's `outputs` (its ports, each push or pub, with a topic rule) and its
//! `inputs` (each `"node"`, `"node.port"`, or a table with topics).
//!
//! A port's value is a pattern name or a table, and an input a string or a table: read from
//! the spanned tree by hand, so every problem keeps its position (no untagged serde enums).

use toml::de::DeValue;
use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::draft::{DeclaredPort, DraftInput};
use super::names;
use super::port::{Pattern, Port, TopicRule};
use super::raw::{Span, Table};
use super::suggest::{did_you_mean, elide};

/// The values of a port's pattern.
pub(super) const PATTERNS: &[&str] = &["push", "pub"];
/// Keys of a port written as a table.
pub(super) const PORT_KEYS: &[&str] = &["pattern", "topic_field", "topic"];
/// Keys of an input written as a table.
pub(super) const INPUT_KEYS: &[&str] = &["from", "topics", "drop"];

/// The ports of a node: `defaults` (its kind's, or `out` for a command), changed or, for a
/// command node, replaced by `outputs`. Returns the ports and those declared in `outputs`.
pub fn read_outputs(
    t: &Table<'_, '_>,
    defaults: Vec<Port>,
    fixed_set: bool,
    diags: &mut Diagnostics,
) -> (Vec<Port>, Vec<DeclaredPort>) {
    let Some(value) = t.get("outputs") else { return (defaults, Vec::new()) };
    let Some(table) = Table::new(value, format!("`outputs` of {}", t.what()), diags) else {
        return (defaults, Vec::new());
    };
    let mut declared = Vec::new();
    for (key, value) in table.entries() {
        let name = key.get_ref().to_string();
        if !names::is_plain(&name) {
            diags.error(
                key.span(),
                format!("port name `{}` is not allowed; use letters, digits, `_` and `-`", elide(&name)),
            );
            continue;
        }
        // Too long is an error of its own; the port is still declared, for its readers.
        names::check_length("port name", &Spanned::new(key.span(), name.clone()), diags);
        if fixed_set && !defaults.iter().any(|p| p.name == name) {
            let known: Vec<&str> = defaults.iter().map(|p| p.name.as_str()).collect();
            let list =
                if known.is_empty() { "it has none".to_string() } else { format!("its ports: {}", known.join(", ")) };
            diags.push(
                Diagnostic::error(key.span(), format!("{} has no port `{name}`", t.what()))
                    .with_help(format!("a built-in's ports are fixed; {list}")),
            );
            continue;
        }
        if let Some(port) = read_port(&name, value, &table, diags) {
            declared.push(DeclaredPort { port, span: key.span() });
        }
    }
    let ports = if fixed_set {
        defaults
            .into_iter()
            .map(|d| declared.iter().find(|x| x.port.name == d.name).map_or(d, |x| x.port.clone()))
            .collect()
    } else {
        declared.iter().map(|d| d.port.clone()).collect()
    };
    (ports, declared)
}

fn read_port(
    name: &str,
    value: &Spanned<DeValue<'_>>,
    outputs: &Table<'_, '_>,
    diags: &mut Diagnostics,
) -> Option<Port> {
    let pattern_of = |text: &str, span: Span, diags: &mut Diagnostics| match text {
        "push" => Some(Pattern::Push),
        "pub" => Some(Pattern::Pub),
        other => {
            let mut d = Diagnostic::error(
                span,
                format!("port `{name}` has pattern `{other}`; expected one of: {}", PATTERNS.join(", ")),
            );
            if let Some(m) = did_you_mean(other, PATTERNS.iter().copied()) {
                d = d.with_help(format!("did you mean `{m}`?"));
            }
            diags.push(d);
            None
        }
    };
    match value.get_ref() {
        DeValue::String(s) => {
            Some(Port { name: name.to_string(), pattern: pattern_of(s, value.span(), diags)?, topic: TopicRule::Empty })
        }
        DeValue::Table(_) => {
            let t = Table::new(value, format!("port `{name}`"), diags)?;
            t.deny_unknown(PORT_KEYS, diags);
            t.require("pattern", "give `pattern = \"push\"` or `pattern = \"pub\"`", diags);
            let pattern = t.str("pattern", diags).and_then(|p| pattern_of(p.get_ref(), p.span(), diags));
            let topic = match (t.str("topic_field", diags), t.str("topic", diags)) {
                (Some(_), Some(fixed)) => {
                    diags.error(fixed.span(), format!("port `{name}` has both `topic_field` and `topic`; give one"));
                    TopicRule::Empty
                }
                (Some(field), None) => TopicRule::Field(field.into_inner()),
                (None, Some(fixed)) => TopicRule::Fixed(fixed.into_inner()),
                (None, None) => TopicRule::Empty,
            };
            let pattern = pattern?;
            if pattern == Pattern::Push && topic != TopicRule::Empty {
                let span = t.key_span("topic_field").or_else(|| t.key_span("topic")).unwrap_or(t.span());
                diags.push(
                    Diagnostic::error(span, format!("port `{name}` is a push port; topics are for pub ports"))
                        .with_help("use `pattern = \"pub\"`, or remove the topic"),
                );
            }
            Some(Port { name: name.to_string(), pattern, topic })
        }
        other => {
            diags.error(
                value.span(),
                format!(
                    "port `{name}` in {} must be a pattern name or a table, found {}",
                    outputs.what(),
                    other.type_str()
                ),
            );
            None
        }
    }
}

/// Read `inputs`: an array of `"node"`, `"node.port"`, or
/// `{ from = "node.port", topics = [...], drop = true }`.
pub fn read_inputs(t: &Table<'_, '_>, diags: &mut Diagnostics) -> Vec<DraftInput> {
    let Some(value) = t.get("inputs") else { return Vec::new() };
    let DeValue::Array(items) = value.get_ref() else {
        diags.error(
            value.span(),
            format!("`inputs` in {} must be an array, found {}", t.what(), value.get_ref().type_str()),
        );
        return Vec::new();
    };
    // Sized to fit: a file may hold tens of thousands of nodes.
    let mut inputs = Vec::with_capacity(items.len());
    for item in items.iter() {
        match item.get_ref() {
            DeValue::String(s) => inputs.push(split_reference(s, item.span(), None)),
            DeValue::Table(_) => {
                let Some(entry) = Table::new(item, format!("an input of {}", t.what()), diags) else { continue };
                entry.deny_unknown(INPUT_KEYS, diags);
                entry.require("from", "name the upstream as `from = \"node\"` or `from = \"node.port\"`", diags);
                let topics = entry
                    .str_list("topics", diags)
                    .map(|l| Spanned::new(l.span(), l.into_inner().into_iter().map(Spanned::into_inner).collect()));
                let drop = entry.bool("drop", diags);
                if let Some(from) = entry.str("from", diags) {
                    let mut input = split_reference(from.get_ref(), from.span(), topics);
                    input.drop = drop;
                    inputs.push(input);
                }
            }
            other => diags.error(
                item.span(),
                format!("an input of {} must be a node name or a table, found {}", t.what(), other.type_str()),
            ),
        }
    }
    inputs
}

/// `"node"` or `"node.port"` at `span`.
fn split_reference(text: &str, span: Span, topics: Option<Spanned<Vec<String>>>) -> DraftInput {
    match text.split_once('.') {
        Some((node, port)) => DraftInput {
            node: Spanned::new(span.clone(), node.to_string()),
            port: Some(Spanned::new(span.clone(), port.to_string())),
            topics,
            drop: None,
            span,
        },
        None => DraftInput { node: Spanned::new(span.clone(), text.to_string()), port: None, topics, drop: None, span },
    }
}
