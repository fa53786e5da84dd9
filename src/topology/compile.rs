//! The one raw-to-validated conversion: reads the spanned TOML tree, checks everything, and
//! either returns a [`Topology`] or every problem found, each with its position.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::de::DeTable;
use toml::Spanned;

use super::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use super::model::{Node, NodeId, Runner, Topology, Transport};
use super::raw::{Span, Table};
use crate::nodes::{Kind, BUILTINS};

/// Keys every node accepts, whatever it runs.
const NODE_KEYS: &[&str] = &["kind", "command", "inputs", "replicas", "transport"];
const TOP_KEYS: &[&str] = &["name", "defaults", "nodes"];
const DEFAULT_KEYS: &[&str] = &["transport"];
const TRANSPORTS: &[&str] = &["ipc", "tcp"];
/// More replicas than this is almost certainly a typo, and would exhaust the machine.
const MAX_REPLICAS: i64 = 1024;

/// Where relative paths resolve and what the file is called; given by the caller.
pub struct Source<'a> {
    /// The path as the user gave it.
    pub path: &'a Path,
    /// The file's text.
    pub text: &'a str,
    /// The absolute directory relative paths resolve against.
    pub base_dir: &'a Path,
}

/// A node as read, before its inputs are resolved.
struct Draft {
    name: Spanned<String>,
    runner: Option<Runner>,
    replicas: u32,
    inputs: Vec<Spanned<String>>,
    transport: Transport,
}

/// Compile `source` into a topology. On success, also returns warnings; on failure, every
/// diagnostic (errors and warnings).
pub fn compile(source: &Source<'_>) -> Result<(Topology, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut diags = Diagnostics::default();
    let (doc, syntax) = DeTable::parse_recoverable(source.text);
    if !syntax.is_empty() {
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            diags.error(span, format!("TOML syntax: {}", e.message().trim_end()));
        }
        return Err(diags.into_sorted());
    }
    let top_value = Spanned::new(doc.span(), toml::de::DeValue::Table(doc.into_inner()));
    let top = Table::new(&top_value, "the topology".into(), &mut diags).expect("a document is a table");
    top.deny_unknown(TOP_KEYS, &mut diags);

    let name = top.str("name", &mut diags).map(Spanned::into_inner).unwrap_or_else(|| {
        source
            .path
            .file_stem()
            .map_or("topology".into(), |s| s.to_string_lossy().into_owned())
    });
    let default_transport = read_defaults(&top, &mut diags);
    let drafts = read_nodes(&top, source, default_transport, &mut diags);
    let inputs = resolve_inputs(&drafts, &mut diags);
    check_roles(&drafts, &inputs, &mut diags);
    check_cycles(&drafts, &inputs, &mut diags);
    if diags.has_errors() {
        return Err(diags.into_sorted());
    }
    let nodes = drafts
        .into_iter()
        .zip(inputs)
        .map(|(d, ins)| Node {
            name: d.name.into_inner(),
            runner: d.runner.expect("no errors, so every node has a runner"),
            replicas: d.replicas,
            inputs: ins.into_iter().map(|(id, _)| id).collect(),
            transport: d.transport,
        })
        .collect();
    let topology = Topology {
        name,
        path: source.path.to_path_buf(),
        base_dir: source.base_dir.to_path_buf(),
        nodes,
    };
    Ok((topology, diags.into_sorted()))
}

fn read_defaults(top: &Table<'_, '_>, diags: &mut Diagnostics) -> Transport {
    let Some(value) = top.get("defaults") else {
        return Transport::Ipc;
    };
    let Some(t) = Table::new(value, "`[defaults]`".into(), diags) else {
        return Transport::Ipc;
    };
    t.deny_unknown(DEFAULT_KEYS, diags);
    transport(&t, diags).unwrap_or(Transport::Ipc)
}

fn transport(t: &Table<'_, '_>, diags: &mut Diagnostics) -> Option<Transport> {
    t.choice("transport", TRANSPORTS, diags)
        .map(|s| match s.get_ref().as_str() {
            "tcp" => Transport::Tcp,
            _ => Transport::Ipc,
        })
}

fn read_nodes(top: &Table<'_, '_>, source: &Source<'_>, default: Transport, diags: &mut Diagnostics) -> Vec<Draft> {
    let Some(value) = top.get("nodes") else {
        diags.push(
            Diagnostic::error(0..0, "the topology declares no nodes")
                .with_help("declare one per table, like `[nodes.source]` with `kind = \"lines\"`"),
        );
        return Vec::new();
    };
    let Some(nodes) = Table::new(value, "`nodes`".into(), diags) else {
        return Vec::new();
    };
    let entries = nodes.entries();
    if entries.is_empty() {
        let span = top.key_span("nodes").unwrap_or(0..0);
        diags.push(
            Diagnostic::error(span, "the topology declares no nodes").with_help("add a table like `[nodes.source]`"),
        );
    }
    entries
        .into_iter()
        .filter_map(|(key, value)| {
            let name = Spanned::new(key.span(), key.get_ref().to_string());
            check_node_name(&name, diags);
            let table = Table::new(value, format!("node `{}`", name.get_ref()), diags)?;
            Some(read_node(name, &table, source, default, diags))
        })
        .collect()
}

fn check_node_name(name: &Spanned<String>, diags: &mut Diagnostics) {
    let ok = !name.get_ref().is_empty()
        && name
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        diags.push(
            Diagnostic::error(name.span(), format!("node name `{}` is not allowed", name.get_ref()))
                .with_help("use letters, digits, `_` and `-` (a `.` separates a node from its port)"),
        );
    }
}

fn read_node(
    name: Spanned<String>,
    t: &Table<'_, '_>,
    source: &Source<'_>,
    default: Transport,
    diags: &mut Diagnostics,
) -> Draft {
    let replicas = read_replicas(t, diags);
    let runner = read_runner(t, source, diags);
    if let (Some(Runner::Builtin(kind)), Some(replicas)) = (&runner, &replicas) {
        if let Some(reason) = kind.single_replica_reason() {
            if *replicas.get_ref() > 1 {
                diags.push(
                    Diagnostic::error(
                        replicas.span(),
                        format!("node `{}` cannot have {} replicas", name.get_ref(), replicas.get_ref()),
                    )
                    .with_help(reason),
                );
            }
        }
    }
    Draft {
        name,
        runner,
        replicas: replicas.map_or(1, |r| u32::try_from(*r.get_ref()).unwrap_or(1)),
        inputs: t.str_list("inputs", diags).map(Spanned::into_inner).unwrap_or_default(),
        transport: transport(t, diags).unwrap_or(default),
    }
}

fn read_replicas(t: &Table<'_, '_>, diags: &mut Diagnostics) -> Option<Spanned<i64>> {
    let r = t.int("replicas", diags)?;
    if !(1..=MAX_REPLICAS).contains(r.get_ref()) {
        diags.push(
            Diagnostic::error(
                r.span(),
                format!(
                    "`replicas` in {} is {}; it must be between 1 and {MAX_REPLICAS}",
                    t.what(),
                    r.get_ref()
                ),
            )
            .with_help("remove the node, or give it at least one replica"),
        );
        return None;
    }
    Some(r)
}

fn read_runner(t: &Table<'_, '_>, source: &Source<'_>, diags: &mut Diagnostics) -> Option<Runner> {
    let kind_span = t.key_span("kind");
    match (kind_span, t.key_span("command")) {
        (Some(_), Some(cmd)) => {
            diags.push(
                Diagnostic::error(cmd, format!("{} has both `kind` and `command`", t.what()))
                    .with_help("a node is either a built-in kind or a command; remove one of them"),
            );
            t.deny_unknown(&all_node_keys(), diags);
            None
        }
        (None, None) => {
            t.require(
                "kind",
                &format!(
                    "give exactly one of `kind` (one of: {}) or `command`",
                    BUILTINS.join(", ")
                ),
                diags,
            );
            t.deny_unknown(&all_node_keys(), diags);
            None
        }
        (None, Some(_)) => {
            t.deny_unknown(NODE_KEYS, diags);
            read_command(t, source.base_dir, diags).map(Runner::Command)
        }
        (Some(_), None) => {
            let Some(kind) = t.choice("kind", BUILTINS, diags) else {
                t.deny_unknown(&all_node_keys(), diags);
                return None;
            };
            let keys: Vec<&str> = NODE_KEYS.iter().chain(Kind::keys(kind.get_ref())).copied().collect();
            t.deny_unknown(&keys, diags);
            Kind::from_table(kind.get_ref(), t, source.base_dir, diags).map(Runner::Builtin)
        }
    }
}

fn all_node_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = NODE_KEYS.to_vec();
    for kind in BUILTINS {
        keys.extend(
            Kind::keys(kind)
                .iter()
                .filter(|k| !keys.contains(k))
                .collect::<Vec<_>>(),
        );
    }
    keys
}

fn read_command(t: &Table<'_, '_>, base_dir: &Path, diags: &mut Diagnostics) -> Option<Vec<String>> {
    let argv = t.str_list("command", diags)?;
    if argv.get_ref().is_empty() {
        diags.error(
            argv.span(),
            format!("`command` in {} is empty; give the program and its arguments", t.what()),
        );
        return None;
    }
    let mut argv: Vec<String> = argv.into_inner().into_iter().map(Spanned::into_inner).collect();
    // A program path with a slash is relative to the topology file, like every other path;
    // a bare name is looked up on PATH.
    if argv[0].contains('/') {
        argv[0] = resolve(base_dir, &argv[0]).to_string_lossy().into_owned();
    }
    Some(argv)
}

/// `path` resolved against `base`, unless it is absolute.
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Resolve each node's input names to ids, reporting unknown, repeated and self references.
fn resolve_inputs(drafts: &[Draft], diags: &mut Diagnostics) -> Vec<Vec<(NodeId, Span)>> {
    let ids: HashMap<&str, NodeId> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.get_ref().as_str(), i))
        .collect();
    let known: Vec<&str> = drafts.iter().map(|d| d.name.get_ref().as_str()).collect();
    drafts
        .iter()
        .map(|d| {
            let mut resolved: Vec<(NodeId, Span)> = Vec::new();
            for input in &d.inputs {
                let wanted = input.get_ref().as_str();
                match ids.get(wanted) {
                    Some(&id) if resolved.iter().any(|(r, _)| *r == id) => diags.push(
                        Diagnostic::error(
                            input.span(),
                            format!("node `{}` lists input `{wanted}` twice", d.name.get_ref()),
                        )
                        .with_help("each upstream node's records reach this node once; remove the repeat"),
                    ),
                    Some(&id) => resolved.push((id, input.span())),
                    None => {
                        let mut diag = Diagnostic::error(
                            input.span(),
                            format!(
                                "node `{}` reads from `{wanted}`, which is not declared",
                                d.name.get_ref()
                            ),
                        );
                        let list = format!("known nodes: {}", known.join(", "));
                        diag = match did_you_mean(wanted, known.iter().copied()) {
                            Some(m) => diag.with_help(format!("did you mean `{m}`? {list}")),
                            None => diag.with_help(list),
                        };
                        diags.push(diag);
                    }
                }
            }
            resolved
        })
        .collect()
}

/// Built-in sources take no inputs; every other built-in needs one. Records that no node
/// reads are dropped, which is worth a warning.
fn check_roles(drafts: &[Draft], inputs: &[Vec<(NodeId, Span)>], diags: &mut Diagnostics) {
    for (i, d) in drafts.iter().enumerate() {
        let Some(Runner::Builtin(kind)) = &d.runner else {
            continue;
        };
        let name = d.name.get_ref();
        if kind.is_source() && !d.inputs.is_empty() {
            diags.push(
                Diagnostic::error(
                    d.inputs[0].span(),
                    format!("node `{name}` is a `{}` source and takes no inputs", kind.name()),
                )
                .with_help("remove `inputs`, or use a kind that reads records (filter, tally, sink)"),
            );
        }
        if !kind.is_source() && d.inputs.is_empty() {
            diags.push(
                Diagnostic::error(
                    d.name.span(),
                    format!("node `{name}` (`{}`) has no inputs", kind.name()),
                )
                .with_help("add `inputs = [\"<upstream node>\"]`"),
            );
        }
        let read = inputs.iter().any(|ins| ins.iter().any(|(id, _)| *id == i));
        if kind.emits() && !read {
            diags.push(Diagnostic::warning(
                d.name.span(),
                format!("no node reads the records of node `{name}`; they are dropped"),
            ));
        }
    }
}

/// Report each cycle once, at the input entry that closes it.
fn check_cycles(drafts: &[Draft], inputs: &[Vec<(NodeId, Span)>], diags: &mut Diagnostics) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    fn visit(
        n: NodeId,
        inputs: &[Vec<(NodeId, Span)>],
        marks: &mut [Mark],
        stack: &mut Vec<NodeId>,
        found: &mut Vec<(Vec<NodeId>, Span)>,
    ) {
        marks[n] = Mark::OnStack;
        stack.push(n);
        for (up, span) in &inputs[n] {
            match marks[*up] {
                Mark::New => visit(*up, inputs, marks, stack, found),
                Mark::OnStack => {
                    let from = stack.iter().position(|x| x == up).expect("on the stack");
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
        let mut names: Vec<&str> = cycle.iter().rev().map(|&i| drafts[i].name.get_ref().as_str()).collect();
        names.push(names[0]);
        diags.push(
            Diagnostic::error(span, format!("cycle: {}", names.join(" -> ")))
                .with_help("records must flow one way; a cycle would never reach end of stream"),
        );
    }
}
