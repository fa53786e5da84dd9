//! Cross-node checks of a topology: input names resolve, sources and consumers are used as
//! such, no cycles, no two nodes writing one file; and, for a valid file, the warnings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::compile::Draft;
use super::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use super::model::{Input, NodeId, Pattern, Runner};
use super::raw::Span;

/// Each node's inputs resolved, with the span of each entry.
pub type Inputs = Vec<Vec<(Input, Span)>>;

/// Resolve each node's inputs to a node and one of its ports, reporting unknown nodes and
/// ports, topics on push ports, and repeats.
pub fn resolve_inputs(drafts: &[Draft], diags: &mut Diagnostics) -> Inputs {
    let ids: HashMap<&str, NodeId> = drafts.iter().enumerate().map(|(i, d)| (d.name.get_ref().as_str(), i)).collect();
    let known: Vec<&str> = drafts.iter().map(|d| d.name.get_ref().as_str()).collect();
    drafts
        .iter()
        .map(|d| {
            let me = d.name.get_ref();
            let mut resolved: Vec<(Input, Span)> = Vec::new();
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
                    let e = Diagnostic::error(
                        input.node.span(),
                        format!("node `{me}` reads from `{wanted}`, which is not declared"),
                    );
                    let list = format!("known nodes: {}", known.join(", "));
                    diags.push(match did_you_mean(wanted, known.iter().copied()) {
                        Some(m) => e.with_help(format!("did you mean `{m}`? {list}")),
                        None => e.with_help(list),
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
        if !kind.is_source() && d.inputs.is_empty() && !d.inputs_malformed {
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
pub fn check_cycles(drafts: &[Draft], inputs: &Inputs, diags: &mut Diagnostics) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    fn visit(
        n: NodeId,
        inputs: &Inputs,
        marks: &mut [Mark],
        stack: &mut Vec<NodeId>,
        found: &mut Vec<(Vec<NodeId>, Span)>,
    ) {
        marks[n] = Mark::OnStack;
        stack.push(n);
        for (input, span) in &inputs[n] {
            let up = input.node;
            match marks[up] {
                Mark::New => visit(up, inputs, marks, stack, found),
                Mark::OnStack => {
                    let from = stack.iter().position(|&x| x == up).expect("on the stack");
                    found.push((stack[from..].to_vec(), span.clone()));
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[n] = Mark::Done;
    }
    let mut marks = vec![Mark::New; drafts.len()];
    let mut found = Vec::new();
    for n in 0..drafts.len() {
        if marks[n] == Mark::New {
            visit(n, inputs, &mut marks, &mut Vec::new(), &mut found);
        }
    }
    for (cycle, span) in found {
        // The stack runs downstream to upstream; records flow the other way.
        let mut flow: Vec<NodeId> = cycle.into_iter().rev().collect();
        let first = flow.iter().enumerate().min_by_key(|(_, &id)| id).map_or(0, |(i, _)| i);
        flow.rotate_left(first);
        let mut names: Vec<&str> = flow.iter().map(|&i| drafts[i].name.get_ref().as_str()).collect();
        names.push(names[0]);
        diags.push(
            Diagnostic::error(span, format!("cycle: {}", names.join(" -> ")))
                .with_help("records must flow one way; a cycle would never reach end of stream"),
        );
    }
}

/// Every `${node.key}` a node refers to names a declared node that publishes `key`.
pub fn check_references(drafts: &[Draft], diags: &mut Diagnostics) {
    let publishers: Vec<&str> = drafts
        .iter()
        .filter(|d| matches!(&d.runner, Some(Runner::Builtin(k)) if k.is_service()))
        .map(|d| d.name.get_ref().as_str())
        .collect();
    for d in drafts {
        let Some(Runner::Builtin(kind)) = &d.runner else {
            continue;
        };
        for (node, key) in kind.references() {
            let target = drafts.iter().find(|t| *t.name.get_ref() == node);
            let problem = match target.map(|t| &t.runner) {
                None => Some(format!("no node `{node}` is declared")),
                Some(Some(Runner::Builtin(k))) if k.is_service() && key == "url" => None,
                Some(Some(Runner::Builtin(k))) if k.is_service() => {
                    Some(format!("`{node}` publishes `url`, not `{key}`"))
                }
                Some(_) => Some(format!("`{node}` publishes nothing (only `serve` nodes publish, their `url`)")),
            };
            if let Some(problem) = problem {
                let known = if publishers.is_empty() { "none".to_string() } else { publishers.join(", ") };
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
/// topology file itself.
pub fn check_files(drafts: &[Draft], topology_file: PathBuf, diags: &mut Diagnostics) {
    let mut seen: Vec<(PathBuf, bool, &str)> = vec![(topology_file, false, "")];
    for d in drafts {
        let Some(Runner::Builtin(kind)) = &d.runner else {
            continue;
        };
        let name = d.name.get_ref().as_str();
        for (path, writes) in kind.files() {
            let path = normalize(path);
            for (other, other_writes, other_name) in &seen {
                if *other != path || !(writes || *other_writes) {
                    continue;
                }
                let message = match (writes, other_writes, other_name.is_empty()) {
                    (true, _, true) => format!("node `{name}` would overwrite the topology file `{}`", path.display()),
                    (true, true, _) => format!("nodes `{other_name}` and `{name}` both write `{}`", path.display()),
                    (true, false, _) => {
                        format!("node `{name}` writes `{}`, which node `{other_name}` reads", path.display())
                    }
                    (false, _, _) => {
                        format!("node `{name}` reads `{}`, which node `{other_name}` writes", path.display())
                    }
                };
                diags.push(Diagnostic::error(d.name.span(), message).with_help("give each output its own file"));
            }
            seen.push((path, writes, name));
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
    for (i, d) in drafts.iter().enumerate() {
        let name = d.name.get_ref();
        let read = |port: usize| inputs.iter().any(|ins| ins.iter().any(|(x, _)| x.node == i && x.port == port));
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
