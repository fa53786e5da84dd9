//! Cross-node checks of a topology: input names resolve, sources and consumers are used as
//! such, no cycles, no two nodes writing one file; and, for a valid file, the warnings.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::draft::{Draft, Inputs};
use super::model::{Input, NodeId, Runner};
use super::port::Pattern;
use super::raw::Span;
use super::suggest::{did_you_mean, elide, list, MAX_LISTED};

/// Resolve each node's inputs to a node and one of its ports, reporting unknown nodes and
/// ports, topics on push ports, and repeats.
pub fn resolve_inputs(drafts: &[Draft], diags: &mut Diagnostics) -> Inputs {
    let ids: HashMap<&str, NodeId> = drafts.iter().enumerate().map(|(i, d)| (d.name.get_ref().as_str(), i)).collect();
    let known: Vec<&str> = drafts.iter().map(|d| d.name.get_ref().as_str()).collect();
    // Spelled out once: a file may have thousands of nodes and of unknown inputs.
    let list = format!("known nodes: {}", list(known.iter().copied()));
    drafts
        .iter()
        .map(|d| {
            let me = elide(d.name.get_ref());
            let mut resolved: Vec<(Input, Span)> = Vec::with_capacity(d.inputs.len());
            let mut seen: Vec<(NodeId, &str)> = Vec::new();
            for input in &d.inputs {
                let wanted = input.node.get_ref().as_str();
                let full = match &input.port {
                    Some(port) => format!("{wanted}.{}", port.get_ref()),
                    None => wanted.to_string(),
                };
                if ids.contains_key(full.as_str()) && input.port.is_some() {
                    continue; // names a node whose name has a `.`, an error of its own
                }
                let Some(&id) = ids.get(wanted) else {
                    let span = input.node.span();
                    let e = Diagnostic::error(
                        span.clone(),
                        format!("node `{me}` reads from `{}`, which is not declared", elide(wanted)),
                    );
                    // A suggestion compares with every node: only for an error that is shown.
                    let near = if diags.shown(&span) { did_you_mean(wanted, known.iter().copied()) } else { None };
                    diags.push(match near {
                        Some(m) => e.with_help(format!("did you mean `{m}`? {list}")),
                        None => e.with_help(list.clone()),
                    });
                    continue;
                };
                let upstream = &drafts[id];
                let port_name = input.port.as_ref().map_or("out", |p| p.get_ref().as_str());
                if seen.contains(&(id, port_name)) {
                    diags.push(
                        Diagnostic::error(
                            input.span.clone(),
                            format!("node `{me}` lists input `{wanted}.{port_name}` twice"),
                        )
                        .with_help("each upstream port's records reach this node once; remove the repeat"),
                    );
                    continue;
                }
                seen.push((id, port_name));
                if upstream.runner.is_none() {
                    // The upstream node has errors of its own: keep the edge for the cycle
                    // check, without judging its ports.
                    resolved.push((Input { node: id, port: 0, topics: Vec::new(), drop: false }, input.span.clone()));
                    continue;
                }
                let Some(port) = upstream.ports.iter().position(|p| p.name == port_name) else {
                    let ports: Vec<&str> = upstream.ports.iter().map(|p| p.name.as_str()).collect();
                    let (message, help) = if ports.is_empty() {
                        let what = match &upstream.runner {
                            Some(Runner::Builtin(kind)) => format!("a `{}` node, which", kind.name()),
                            _ => "a node that".to_string(),
                        };
                        (
                            format!("node `{me}` reads from `{wanted}`, {what} sends no records"),
                            "read from a node that emits records (lines, fetch, filter, or a command)".to_string(),
                        )
                    } else {
                        (
                            format!("node `{me}` reads port `{port_name}` of `{wanted}`, which has no such port"),
                            format!("its ports: {}; name one as `\"{wanted}.<port>\"`", ports.join(", ")),
                        )
                    };
                    diags.push(Diagnostic::error(input.span.clone(), message).with_help(help));
                    continue;
                };
                let pattern = upstream.ports[port].pattern;
                if let (Pattern::Push, Some(topics)) = (pattern, &input.topics) {
                    diags.push(
                        Diagnostic::error(
                            topics.span(),
                            format!("port `{port_name}` of `{wanted}` is a push port; only pub ports have topics"),
                        )
                        .with_help(
                            "remove `topics`, or make the port `pub` in the outputs of `{wanted}`"
                                .replace("{wanted}", wanted),
                        ),
                    );
                }
                if let (Pattern::Push, Some(drop)) = (pattern, &input.drop) {
                    diags.push(
                        Diagnostic::error(
                            drop.span(),
                            format!("port `{port_name}` of `{wanted}` is a push port; only pub ports may drop"),
                        )
                        .with_help("a push edge always slows its producer down; remove `drop`"),
                    );
                }
                let topics = input.topics.as_ref().map(|t| t.get_ref().clone()).unwrap_or_default();
                let drop = input.drop.as_ref().is_some_and(|d| *d.get_ref());
                resolved.push((Input { node: id, port, topics, drop }, input.span.clone()));
            }
            resolved
        })
        .collect()
}

/// Built-in sources take no inputs; every other built-in needs at least one.
pub fn check_roles(drafts: &[Draft], diags: &mut Diagnostics) {
    for d in drafts {
        let Some(Runner::Builtin(kind)) = &d.runner else {
            continue;
        };
        let name = d.name.get_ref();
        if kind.is_source() && !d.inputs.is_empty() {
            diags.push(
                Diagnostic::error(d.inputs[0].span.clone(), format!("node `{name}` ({}) takes no inputs", kind.name()))
                    .with_help("remove `inputs`, or use a kind that reads records (fetch, filter, tally, sink)"),
            );
        }
        // An `inputs` of the wrong type has its own error already.
        if kind.needs_inputs() && d.inputs.is_empty() && !d.inputs_malformed {
            let span = d.inputs_span.clone().unwrap_or_else(|| d.name.span());
            diags.push(
                Diagnostic::error(span, format!("node `{name}` ({}) has no inputs", kind.name()))
                    .with_help("add `inputs = [\"<upstream node>\"]`"),
            );
        }
    }
}

/// Report each cycle once, at the input entry that closes it, starting from the node that
/// comes first in the file.
///
/// A depth-first search upstream, with its own stack rather than the call stack: a chain of
/// tens of thousands of nodes is a valid file.
pub fn check_cycles(drafts: &[Draft], inputs: &Inputs, diags: &mut Diagnostics) {
    const NEW: usize = usize::MAX;
    const DONE: usize = usize::MAX - 1;
    // Per node: NEW, DONE, or its position on the path of the search.
    let mut at = vec![NEW; drafts.len()];
    // The path from the root: each node with the index of its next input to follow.
    let mut path: Vec<(NodeId, usize)> = Vec::new();
    for root in 0..drafts.len() {
        if at[root] != NEW {
            continue;
        }
        at[root] = 0;
        path.push((root, 0));
        while let Some((n, next)) = path.last_mut() {
            let n = *n;
            let Some((input, span)) = inputs[n].get(*next) else {
                at[n] = DONE;
                path.pop();
                continue;
            };
            *next += 1;
            let up = input.node;
            match at[up] {
                NEW => {
                    at[up] = path.len();
                    path.push((up, 0));
                }
                DONE => {}
                from => report_cycle(drafts, path[from..].iter().map(|&(id, _)| id), span.clone(), diags),
            }
        }
    }
}

/// The cycle `stack` (from downstream to upstream) closed at `span`.
fn report_cycle(
    drafts: &[Draft],
    stack: impl DoubleEndedIterator<Item = NodeId> + ExactSizeIterator,
    span: Span,
    diags: &mut Diagnostics,
) {
    let help = "records must flow one way; a cycle would never reach end of stream";
    if !diags.shown(&span) {
        // Not printed: do not spell out a cycle through thousands of nodes.
        diags.push(Diagnostic::error(span, "cycle").with_help(help));
        return;
    }
    // The stack runs downstream to upstream; records flow the other way.
    let mut flow: Vec<NodeId> = stack.rev().collect();
    let first = flow.iter().enumerate().min_by_key(|(_, &id)| id).map_or(0, |(i, _)| i);
    flow.rotate_left(first);
    flow.push(flow[0]);
    let name = |id: NodeId| elide(drafts[id].name.get_ref());
    // A long cycle shows its first and last nodes.
    let names: Vec<String> = if flow.len() <= MAX_LISTED {
        flow.iter().map(|&id| name(id).into_owned()).collect()
    } else {
        let (head, tail) = (&flow[..MAX_LISTED / 2], &flow[flow.len() - MAX_LISTED / 2..]);
        let skipped = format!("({} more)", flow.len() - MAX_LISTED);
        head.iter()
            .map(|&id| name(id).into_owned())
            .chain([skipped])
            .chain(tail.iter().map(|&id| name(id).into_owned()))
            .collect()
    };
    diags.push(Diagnostic::error(span, format!("cycle: {}", names.join(" -> "))).with_help(help));
}

/// No node's processes need more ZeroMQ sockets than one process may open: one PUSH per
/// replica of every node reading its push ports, and a few of their own
/// ([`crate::limits::node_sockets`]).
pub fn check_sockets(drafts: &[Draft], inputs: &Inputs, diags: &mut Diagnostics) {
    let mut downstream = vec![0u64; drafts.len()];
    let mut pub_inputs = vec![0u64; drafts.len()];
    for (reader, ins) in inputs.iter().enumerate() {
        for (input, _) in ins {
            match drafts[input.node].ports.get(input.port).map(|p| p.pattern) {
                Some(Pattern::Push) => downstream[input.node] += u64::from(drafts[reader].replicas),
                Some(Pattern::Pub) => pub_inputs[reader] += 1,
                None => {}
            }
        }
    }
    let limit = crate::limits::MAX_NODE_SOCKETS as u64;
    for (n, d) in drafts.iter().enumerate() {
        let pub_ports = d.ports.iter().filter(|p| p.pattern == Pattern::Pub).count() as u64;
        let needed = crate::limits::node_sockets(downstream[n], pub_inputs[n], pub_ports);
        if needed > limit {
            diags.push(
                Diagnostic::error(
                    d.name.span(),
                    format!(
                        "node `{}` sends to {} replicas downstream: each of its processes would need {needed} ZeroMQ \
                         sockets, and one may have at most {limit}",
                        d.name.get_ref(),
                        downstream[n]
                    ),
                )
                .with_help(
                    "each process holds one socket per replica it sends to: give the nodes reading it fewer replicas",
                ),
            );
        }
    }
}

/// Every `${node.key}` a node refers to names a declared node that publishes `key`.
pub fn check_references(drafts: &[Draft], diags: &mut Diagnostics) {
    let publishers: Vec<&str> = drafts
        .iter()
        .filter(|d| matches!(&d.runner, Some(Runner::Builtin(k)) if k.is_service()))
        .map(|d| d.name.get_ref().as_str())
        .collect();
    let by_name: HashMap<&str, &Draft> = drafts.iter().rev().map(|d| (d.name.get_ref().as_str(), d)).collect();
    for d in drafts {
        let Some(Runner::Builtin(kind)) = &d.runner else {
            continue;
        };
        for (node, key) in kind.references() {
            let target = by_name.get(node.as_str());
            let problem = match target.map(|t| &t.runner) {
                None => Some(format!("no node `{node}` is declared")),
                Some(Some(Runner::Builtin(k))) if k.is_service() && key == "url" => None,
                Some(Some(Runner::Builtin(k))) if k.is_service() => {
                    Some(format!("`{node}` publishes `url`, not `{key}`"))
                }
                Some(_) => Some(format!("`{node}` publishes nothing (only `serve` nodes publish, their `url`)")),
            };
            if let Some(problem) = problem {
                let known = if publishers.is_empty() { "none".to_string() } else { list(publishers.iter().copied()) };
                diags.push(
                    Diagnostic::error(
                        d.name.span(),
                        format!("node `{}` refers to `${{{node}.{key}}}`, but {problem}", d.name.get_ref()),
                    )
                    .with_help(format!("nodes that publish a `url`: {known}")),
                );
            }
        }
    }
}

/// No file may be written by two nodes, written by one and read by another, or be the
/// topology file itself. Each node's conflict over a file is reported once, with the first
/// node it conflicts with.
pub fn check_files(drafts: &[Draft], topology_file: PathBuf, diags: &mut Diagnostics) {
    // Per file: the first node that reads it and the first that writes it ("" for the
    // topology file, which counts as read).
    let mut seen: HashMap<PathBuf, (Option<&str>, Option<&str>)> = HashMap::new();
    seen.insert(topology_file, (Some(""), None));
    for d in drafts {
        let Some(Runner::Builtin(kind)) = &d.runner else {
            continue;
        };
        let name = d.name.get_ref().as_str();
        for (path, writes) in kind.files() {
            let path = normalize(path);
            let (reader, writer) = seen.entry(path.clone()).or_default();
            let shown = path.display();
            let message = match (writes, *reader, *writer) {
                (true, Some(""), _) => Some(format!("node `{name}` would overwrite the topology file `{shown}`")),
                (true, _, Some(other)) => Some(format!("nodes `{other}` and `{name}` both write `{shown}`")),
                (true, Some(other), None) => {
                    Some(format!("node `{name}` writes `{shown}`, which node `{other}` reads"))
                }
                (false, _, Some(other)) => Some(format!("node `{name}` reads `{shown}`, which node `{other}` writes")),
                _ => None,
            };
            if writes {
                writer.get_or_insert(name);
            } else {
                reader.get_or_insert(name);
            }
            if let Some(message) = message {
                diags.push(Diagnostic::error(d.name.span(), message).with_help("give each output its own file"));
            }
        }
    }
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Warnings for a valid topology: records nobody reads, settings without effect.
pub fn warnings(drafts: &[Draft], inputs: &Inputs, diags: &mut Diagnostics) {
    let read_ports: HashSet<(NodeId, usize)> = inputs.iter().flatten().map(|(x, _)| (x.node, x.port)).collect();
    for (i, d) in drafts.iter().enumerate() {
        let name = d.name.get_ref();
        let read = |port: usize| read_ports.contains(&(i, port));
        if let Some(Runner::Builtin(kind)) = &d.runner {
            let out = d.ports.iter().position(|p| p.name == "out");
            if kind.emits() && out.is_some_and(|p| !read(p)) {
                diags.push(Diagnostic::warning(
                    d.name.span(),
                    format!("no node reads the records of node `{name}`; they are dropped"),
                ));
            }
        }
        for declared in &d.declared {
            let port = d.ports.iter().position(|p| p.name == declared.port.name);
            if declared.port.pattern == Pattern::Pub && port.is_some_and(|p| !read(p)) {
                diags.push(Diagnostic::warning(
                    declared.span.clone(),
                    format!("no node subscribes to port `{}` of node `{name}`", declared.port.name),
                ));
            }
        }
        let push_inputs =
            inputs[i].iter().any(|(x, _)| drafts[x.node].ports.get(x.port).is_some_and(|p| p.pattern == Pattern::Push));
        let binds = push_inputs || d.ports.iter().any(|p| p.pattern == Pattern::Pub);
        if let (Some(span), false) = (&d.transport_span, binds) {
            diags.push(
                Diagnostic::warning(span.clone(), format!("`transport` in node `{name}` has no effect"))
                    .with_help("the transport is that of the sockets a node binds (its input, its pub ports); this node binds none"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;
    use std::path::Path;

    use crate::topology::compile::{compile, Source};

    fn errors(text: &str) -> Vec<String> {
        let source = Source::new(Path::new("t.toml"), text, Path::new("/"));
        match compile(&source) {
            Ok(_) => Vec::new(),
            Err(d) => d
                .into_report(Path::new("t.toml"), text.to_string())
                .diagnostics
                .into_iter()
                .map(|d| d.message)
                .collect(),
        }
    }

    // A test thread has a 2 MiB stack: the recursive search overflowed it long before this.
    #[test]
    fn a_cycle_through_100000_nodes_is_found_without_recursion() {
        let mut text = String::from("[nodes]\n");
        for i in 0..100_000 {
            let _ = writeln!(text, "n{i} = {{ command = [\"cat\"], inputs = [\"n{}\"] }}", (i + 1) % 100_000);
        }
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("cycle: n0 -> n99999 -> n99998 -> "), "{}", errors[0]);
        assert!(errors[0].contains(" -> (99985 more) -> ") && errors[0].ends_with(" -> n1 -> n0"), "{}", errors[0]);
    }

    #[test]
    fn each_node_conflicting_over_a_file_is_reported_once() {
        let text = "[nodes.src]\nkind = \"lines\"\npath = \"in.txt\"\n".to_string()
            + &(0..3)
                .map(|i| format!("[nodes.s{i}]\nkind = \"sink\"\ninputs = [\"src\"]\npath = \"out.txt\"\n"))
                .collect::<String>();
        let errors = errors(&text);
        assert_eq!(errors, ["nodes `s0` and `s1` both write `/out.txt`", "nodes `s0` and `s2` both write `/out.txt`"]);
    }
}
