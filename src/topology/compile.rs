//! The one raw-to-validated conversion: reads the spanned TOML tree node by node, runs the
//! cross-node checks in [`super::checks`], and either returns a [`Topology`] or every problem
//! found, each with its position.

use std::path::Path;

use toml::de::DeValue;
use toml::Spanned;

use super::checks;
use super::diagnostic::{Diagnostic, Diagnostics, Flag};
use super::draft::Draft;
use super::expand::{self, Lookup};
use super::hosts;
use super::ipc;
use super::model::{
    Delivery, Host, Node, Restart, Runner, StartMethod, Topology, Transport, DEFAULT_MAX_MESSAGE_BYTES,
};
use super::names;
use super::overrides::{self, Override};
use super::port::Port;
use super::ports::{read_inputs, read_outputs};
use super::process::{self, read_process};
use super::raw::{resolve, Span, Table};
use super::suggest::{did_you_mean, elide};
use super::syntax;
use crate::nodes::{Kind, StdioConfig, StdioFormat, BUILTINS};

/// Keys a `command` node accepts besides [`NODE_KEYS`] when it has `stdio`.
pub(super) const STDIO_KEYS: &[&str] = &["stdio", "field"];

/// Keys every node accepts, whatever it runs.
pub(super) const NODE_KEYS: &[&str] = &[
    "kind",
    "command",
    "external",
    "inputs",
    "outputs",
    "replicas",
    "transport",
    "start",
    "restart",
    "max_restarts",
    "max_message_bytes",
    "host",
];
/// Keys of the file's top level.
pub(super) const TOP_KEYS: &[&str] = &["name", "delivery", "defaults", "hosts", "nodes"];
/// Keys of `[defaults]`.
pub(super) const DEFAULT_KEYS: &[&str] = &["transport", "start", "restart", "max_restarts", "max_message_bytes"];
/// Bounds of `max_message_bytes`: a full batch (64 KiB, closed after the record that reaches
/// it) with its last record must fit, and libzmq takes an int64.
pub(super) const MESSAGE_BYTES: (i64, i64) = (1 << 20, 1 << 40);
/// The values of `restart`.
pub(super) const RESTARTS: &[&str] = &["never", "on-failure"];
/// More restarts than this is a crash loop, not a policy.
pub const MAX_RESTARTS: i64 = 100;
/// The values of `transport`.
pub(super) const TRANSPORTS: &[&str] = &["ipc", "tcp"];
/// More replicas than this is almost certainly a typo, and would exhaust the machine.
pub const MAX_REPLICAS: i64 = crate::limits::MAX_REPLICAS as i64;

/// Where relative paths resolve and what the file is called; given by the caller. With what
/// the command line adds: `--set` overrides, and where `${VAR}` looks.
pub struct Source<'a> {
    /// The path as the user gave it.
    pub path: &'a Path,
    /// The file's text.
    pub text: &'a str,
    /// The absolute directory relative paths resolve against.
    pub base_dir: &'a Path,
    /// `--set PATH=VALUE`, applied in order once the file's variables are expanded.
    pub overrides: &'a [Override],
    /// Where `${VAR}` looks variables up.
    pub env: Lookup<'a>,
}

impl<'a> Source<'a> {
    /// The file `path` with text `text`, relative paths resolving against `base_dir`; no
    /// override, variables from the launcher's environment.
    pub fn new(path: &'a Path, text: &'a str, base_dir: &'a Path) -> Source<'a> {
        Source { path, text, base_dir, overrides: &[], env: &expand::process_env }
    }
}

/// Why a source did not compile: its problems, and the flags some of them point into (for
/// [`Diagnostics::into_report`] and [`super::diagnostic::Report::with_flags`]).
pub struct Failed {
    /// Every error found.
    pub errors: Diagnostics,
    /// The `--set` flags, as sources of diagnostics.
    pub flags: Vec<Flag>,
}

/// What `[defaults]` gives every node that does not say otherwise.
#[derive(Clone)]
struct Defaults {
    transport: Transport,
    /// The start method, with the span of its value in `[defaults]` if set there.
    start: (StartMethod, Option<Span>),
    restart: Restart,
    max_message_bytes: u64,
}
/// Compile `source` into a topology. On success, also returns warnings; on failure, every
/// error. Warnings are only computed for an otherwise valid file, so an error never brings
/// a misleading warning along.
pub fn compile(source: &Source<'_>) -> Result<(Topology, Diagnostics), Diagnostics> {
    compile_with_flags(source).map(|(t, warnings, _)| (t, warnings)).map_err(|failed| failed.errors)
}

/// [`compile`], also giving the flags the diagnostics may point into.
pub fn compile_with_flags(source: &Source<'_>) -> Result<(Topology, Diagnostics, Vec<Flag>), Failed> {
    let mut doc = syntax::parse(source.text).map_err(|errors| Failed { errors, flags: Vec::new() })?;
    let mut diags = Diagnostics::default();
    // The file's variables first: a `--set` value is not expanded (the shell did).
    let variables = expand::expand_document(&mut doc, source.text, source.env, &mut diags);
    let doc_span = doc.span();
    let mut doc = doc.into_inner();
    let flags = overrides::apply(&mut doc, source.overrides, source.text.len(), &mut diags);
    let failed = |errors| Failed { errors, flags: flags.clone() };
    let top_value = Spanned::new(doc_span, DeValue::Table(doc));
    let top = Table::new(&top_value, "the topology".into(), &mut diags).expect("a document is a table");
    top.deny_unknown(TOP_KEYS, &mut diags);
    let name = read_name(&top, source.path, &mut diags);
    let delivery = match top.choice("delivery", Delivery::NAMES, &mut diags) {
        Some(d) if d.get_ref() == "at-most-once" => Delivery::AtMostOnce,
        _ => Delivery::ExactlyOnce,
    };
    let defaults = read_defaults(&top, &mut diags);
    let hosts = hosts::read_hosts(&top, &mut diags);
    let mut drafts = read_nodes(&top, source, &defaults, &hosts, &mut diags);
    // Everything is read out of the TOML tree: free it before the checks, as it holds about a
    // kilobyte per table (a file of 70,000 nodes is a valid one).
    drop(top);
    drop(top_value);
    let inputs = checks::resolve_inputs(&drafts, &mut diags);
    hosts::place_edges(&mut drafts, &inputs, &hosts, &mut diags);
    checks::check_roles(&drafts, &mut diags);
    checks::check_cycles(&drafts, &inputs, &mut diags);
    checks::check_sockets(&drafts, &inputs, &mut diags);
    checks::check_references(&drafts, &mut diags);
    checks::check_files(&drafts, source.base_dir.join(source.path.file_name().unwrap_or_default()), &mut diags);
    if diags.has_errors() {
        return Err(failed(diags));
    }
    checks::warnings(&drafts, &inputs, &mut diags);
    hosts::placement_warnings(&drafts, &hosts, delivery, &mut diags);
    let spans: Vec<Span> = drafts.iter().map(|d| d.name.span()).collect();
    let nodes = drafts
        .into_iter()
        .zip(inputs)
        .map(|(d, ins)| Node {
            name: d.name.into_inner(),
            runner: d.runner.expect("no errors, so every node has a runner"),
            replicas: d.replicas,
            inputs: ins.into_iter().map(|(input, _)| input).collect(),
            ports: d.ports,
            transport: d.transport,
            start: d.start,
            restart: d.restart,
            max_message_bytes: d.max_message_bytes,
            host: d.host,
            env: d.env,
            cwd: d.cwd,
        })
        .collect();
    let topology = Topology {
        name,
        path: source.path.to_path_buf(),
        base_dir: source.base_dir.to_path_buf(),
        hosts,
        nodes,
        delivery,
        variables,
        overrides: source.overrides.iter().map(|o| o.text().to_string()).collect(),
    };
    // Checked on the otherwise valid topology: which sockets a node binds depends on its
    // resolved inputs and on who reads its ports.
    let mut paths = Diagnostics::default();
    ipc::check_paths(&topology, &spans, &ipc::run_dir_parent(), &mut paths);
    if paths.has_errors() {
        return Err(failed(paths));
    }
    Ok((topology, diags, flags))
}

fn read_name(top: &Table<'_, '_>, path: &Path, diags: &mut Diagnostics) -> String {
    match top.non_empty_str("name", diags).filter(|name| names::check_length("the topology's name", name, diags)) {
        Some(name) => name.into_inner(),
        None => path.file_stem().map_or("topology".into(), |s| s.to_string_lossy().into_owned()),
    }
}

fn read_defaults(top: &Table<'_, '_>, diags: &mut Diagnostics) -> Defaults {
    let mut d = Defaults {
        transport: Transport::Ipc,
        start: (StartMethod::Spawn, None),
        restart: Restart::NEVER,
        max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
    };
    let Some(value) = top.get("defaults") else {
        return d;
    };
    let Some(t) = Table::new(value, "`[defaults]`".into(), diags) else {
        return d;
    };
    t.deny_unknown(DEFAULT_KEYS, diags);
    d.transport = transport(&t, diags).unwrap_or(Transport::Ipc);
    if let Some(start) = start_method(&t, diags) {
        d.start = (*start.get_ref(), Some(start.span()));
    }
    d.restart = restart(&t, Restart::NEVER, diags);
    d.max_message_bytes = max_message_bytes(&t, diags).unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    d
}

fn max_message_bytes(t: &Table<'_, '_>, diags: &mut Diagnostics) -> Option<u64> {
    let n = t.int("max_message_bytes", diags)?;
    let (lo, hi) = MESSAGE_BYTES;
    if (lo..=hi).contains(n.get_ref()) {
        return Some(*n.get_ref() as u64);
    }
    diags.push(
        Diagnostic::error(
            n.span(),
            format!("`max_message_bytes` in {} is {}; it must be between {lo} and {hi}", t.what(), n.get_ref()),
        )
        .with_help("the default, 67108864 (64 MiB), holds any batch and a 10 MiB fetched page"),
    );
    None
}

fn start_method(t: &Table<'_, '_>, diags: &mut Diagnostics) -> Option<Spanned<StartMethod>> {
    let name = t.choice("start", StartMethod::NAMES, diags)?;
    let method = StartMethod::from_name(name.get_ref()).expect("choice checked the name");
    Some(Spanned::new(name.span(), method))
}

/// `restart` and `max_restarts` of table `t`, over `base`.
fn restart(t: &Table<'_, '_>, base: Restart, diags: &mut Diagnostics) -> Restart {
    let mut r = base;
    if let Some(policy) = t.choice("restart", RESTARTS, diags) {
        r.on_failure = policy.get_ref() == "on-failure";
    }
    if let Some(max) = t.int("max_restarts", diags) {
        match u32::try_from(*max.get_ref()) {
            Ok(n) if i64::from(n) <= MAX_RESTARTS => r.max_restarts = n,
            _ => diags.push(
                Diagnostic::error(
                    max.span(),
                    format!(
                        "`max_restarts` in {} is {}; it must be between 0 and {MAX_RESTARTS}",
                        t.what(),
                        max.get_ref()
                    ),
                )
                .with_help(if *max.get_ref() < 0 {
                    "0 restarts is the least: the first failure fails the run"
                } else {
                    "a node that needs more restarts than that is failing, not flaky"
                }),
            ),
        }
    }
    r
}

fn transport(t: &Table<'_, '_>, diags: &mut Diagnostics) -> Option<Transport> {
    t.choice("transport", TRANSPORTS, diags).map(|s| match s.get_ref().as_str() {
        "tcp" => Transport::Tcp,
        _ => Transport::Ipc,
    })
}

fn read_nodes(
    top: &Table<'_, '_>,
    source: &Source<'_>,
    defaults: &Defaults,
    hosts: &[Host],
    diags: &mut Diagnostics,
) -> Vec<Draft> {
    let Some(value) = top.get("nodes") else {
        // A misspelt `nodes` key already has its own error, with the suggestion.
        let misspelt = top.entries().iter().any(|(k, _)| did_you_mean(k.get_ref(), ["nodes"]).is_some());
        if !misspelt {
            diags.push(
                Diagnostic::error(0..0, "the topology declares no nodes")
                    .with_help("declare one per table, like `[nodes.source]` with `kind = \"lines\"`"),
            );
        }
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
        .map(|(key, value)| {
            let name = Spanned::new(key.span(), key.get_ref().to_string());
            check_node_name(&name, diags);
            match Table::new(value, format!("node `{}`", elide(name.get_ref())), diags) {
                Some(table) => read_node(name, &table.anchored_at(key.span()), source, defaults, hosts, diags),
                None => Draft {
                    name,
                    runner: None,
                    replicas: 1,
                    inputs: Vec::new(),
                    ports: Vec::new(),
                    declared: Vec::new(),
                    inputs_span: None,
                    inputs_malformed: false,
                    transport: defaults.transport,
                    transport_span: None,
                    start: defaults.start.0,
                    restart: defaults.restart,
                    max_message_bytes: defaults.max_message_bytes,
                    host: Vec::new(),
                    env: Default::default(),
                    cwd: None,
                },
            }
        })
        .collect()
}

fn check_node_name(name: &Spanned<String>, diags: &mut Diagnostics) {
    let text = name.get_ref();
    if text.is_empty() {
        diags.error(name.span(), "a node name cannot be empty");
    } else if !names::is_plain(text) {
        diags.push(
            Diagnostic::error(name.span(), format!("node name `{}` is not allowed", elide(text)))
                .with_help("use letters, digits, `_` and `-`"),
        );
    }
    names::check_length("node name", name, diags);
}

fn read_node(
    name: Spanned<String>,
    t: &Table<'_, '_>,
    source: &Source<'_>,
    defaults: &Defaults,
    hosts: &[Host],
    diags: &mut Diagnostics,
) -> Draft {
    let replicas = read_replicas(t, diags);
    let count = replicas.as_ref().map_or(1, |r| u32::try_from(*r.get_ref()).unwrap_or(1));
    let host = hosts::read_host(t, hosts, count, diags);
    let runner = read_runner(t, source, diags);
    let mut runner = runner;
    let (env, cwd) = read_process(t, &runner, source.base_dir, diags);
    // A program over stdio is started by its adapter, which may be forked: it carries them,
    // and runs the program in the topology's directory unless `cwd` says otherwise, as a
    // spawned command node is.
    if let Some(Runner::Builtin(Kind::Stdio(c))) = &mut runner {
        c.env.clone_from(&env);
        c.cwd = Some(cwd.clone().unwrap_or_else(|| source.base_dir.to_path_buf()));
    }
    let start = read_start(&name, t, &runner, defaults, diags);
    let restart = read_restart(&name, t, &runner, defaults, diags);
    let (ports, declared) = match &runner {
        Some(Runner::Builtin(kind)) => read_outputs(t, kind.ports(), true, diags),
        Some(Runner::Command(_) | Runner::External) => read_outputs(t, vec![Port::out()], false, diags),
        None => (Vec::new(), Vec::new()),
    };
    if let (Some(Runner::Builtin(kind)), StartMethod::Forkserver) = (&runner, start) {
        if kind.reads_stdin() {
            let at = t.key_span("start").or_else(|| t.key_span("path")).unwrap_or_else(|| name.span());
            diags.push(
                Diagnostic::error(
                    at,
                    format!("node `{}` reads stdin, which a fork server cannot pass on", name.get_ref()),
                )
                .with_help("use `start = \"spawn\"` or `\"fork\"` for a node with `path = \"-\"`"),
            );
        }
    }
    if let (Some(Runner::Builtin(kind)), Some(replicas)) = (&runner, &replicas) {
        match kind.single_replica_reason() {
            Some(reason) if *replicas.get_ref() > 1 => diags.push(
                Diagnostic::error(
                    replicas.span(),
                    format!("node `{}` cannot have {} replicas", name.get_ref(), replicas.get_ref()),
                )
                .with_help(reason),
            ),
            _ => {}
        }
    }
    Draft {
        name,
        runner,
        replicas: replicas.map_or(1, |r| u32::try_from(*r.get_ref()).unwrap_or(1)),
        inputs: read_inputs(t, diags),
        ports,
        declared,
        inputs_span: t.get("inputs").map(Spanned::span),
        inputs_malformed: t.get("inputs").is_some_and(|v| !matches!(v.get_ref(), DeValue::Array(_))),
        transport: transport(t, diags).unwrap_or(defaults.transport),
        transport_span: t.key_span("transport"),
        start,
        restart,
        max_message_bytes: max_message_bytes(t, diags).unwrap_or(defaults.max_message_bytes),
        host,
        env,
        cwd,
    }
}

/// The node's restart policy; an external node cannot be restarted by the launcher.
fn read_restart(
    name: &Spanned<String>,
    t: &Table<'_, '_>,
    runner: &Option<Runner>,
    defaults: &Defaults,
    diags: &mut Diagnostics,
) -> Restart {
    let policy = restart(t, defaults.restart, diags);
    if let (Some(Runner::External), Some(span)) = (runner, t.get("restart").map(Spanned::span)) {
        if policy.on_failure {
            diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "node `{}` is external: the launcher does not start it, so it cannot restart it",
                        name.get_ref()
                    ),
                )
                .with_help("remove `restart`; restart the process yourself, or make it a `command` node"),
            );
        }
    }
    if matches!(runner, Some(Runner::External)) {
        return Restart::NEVER;
    }
    policy
}

/// The node's start method; only built-in kinds can be forked (a command must be executed).
fn read_start(
    name: &Spanned<String>,
    t: &Table<'_, '_>,
    runner: &Option<Runner>,
    defaults: &Defaults,
    diags: &mut Diagnostics,
) -> StartMethod {
    let (method, span, from_defaults) = match start_method(t, diags) {
        Some(s) => (*s.get_ref(), Some(s.span()), false),
        None => (defaults.start.0, defaults.start.1.clone(), true),
    };
    if let (Some(Runner::Command(_)), Some(span), true) = (runner, span, method != StartMethod::Spawn) {
        let node = name.get_ref();
        let d = if from_defaults {
            Diagnostic::error(
                span,
                format!(
                    "node `{node}` runs a command, which can only be spawned, but `[defaults]` gives it start = \"{}\"",
                    method.name()
                ),
            )
            .with_help(format!(
                "add `start = \"spawn\"` to node `{node}`; `fork` and `forkserver` are for built-in kinds"
            ))
        } else {
            Diagnostic::error(
                span,
                format!("node `{node}` runs a command, which can only be spawned, not started with `{}`", method.name()),
            )
            .with_help("a command is a program of its own: it must be executed; `fork` and `forkserver` run built-in kinds without exec")
        };
        diags.push(d);
    }
    method
}

fn read_replicas(t: &Table<'_, '_>, diags: &mut Diagnostics) -> Option<Spanned<i64>> {
    let r = t.int("replicas", diags)?;
    let n = *r.get_ref();
    let help = match n {
        ..=0 => "remove the node, or give it at least one replica",
        1..=MAX_REPLICAS => return Some(r),
        _ => "a node may have at most 1024 replicas",
    };
    diags.push(
        Diagnostic::error(
            r.span(),
            format!("`replicas` in {} is {n}; it must be between 1 and {MAX_REPLICAS}", t.what()),
        )
        .with_help(help),
    );
    None
}

fn read_runner(t: &Table<'_, '_>, source: &Source<'_>, diags: &mut Diagnostics) -> Option<Runner> {
    let all = all_node_keys();
    if let Some(external) = t.bool("external", diags) {
        if *external.get_ref() {
            if let Some(span) = t.key_span("kind").or_else(|| t.key_span("command")) {
                diags.push(
                    Diagnostic::error(span, format!("{} is external, but also has `kind` or `command`", t.what()))
                        .with_help("an external node is started by hand, not by the launcher: remove `kind` and `command`, or `external`"),
                );
                t.deny_unknown(all, diags);
                return None;
            }
            t.deny_unknown_with(
                NODE_KEYS,
                |key| {
                    process::belongs(key, "the launcher does not start an external node; set it where you start it")
                        .or_else(|| owner(key).map(|k| format!("`{key}` is an option of `{k}`")))
                },
                diags,
            );
            return Some(Runner::External);
        }
    }
    match (t.key_span("kind"), t.key_span("command")) {
        (Some(_), Some(cmd)) => {
            diags.push(
                Diagnostic::error(cmd, format!("{} has both `kind` and `command`", t.what()))
                    .with_help("a node is either a built-in kind or a command; remove one of them"),
            );
            t.deny_unknown(all, diags);
            None
        }
        (None, None) => {
            diags.push(
                Diagnostic::error(t.anchor(), format!("{} has neither `kind` nor `command`", t.what())).with_help(
                    format!(
                        "give `kind` (one of: {}), `command = [\"program\", \"arg\"]`, or `external = true`",
                        BUILTINS.join(", ")
                    ),
                ),
            );
            t.deny_unknown(all, diags);
            None
        }
        (None, Some(_)) if t.get("stdio").is_some() => {
            let keys: Vec<&str> = NODE_KEYS.iter().chain(STDIO_KEYS).chain(process::KEYS).copied().collect();
            t.deny_unknown_with(&keys, |key| owner(key).map(|k| format!("`{key}` is an option of `{k}`")), diags);
            let command = read_command(t, source.base_dir, diags);
            read_stdio(t, command?, diags).map(|c| Runner::Builtin(Kind::Stdio(c)))
        }
        (None, Some(_)) => {
            let keys: Vec<&str> = NODE_KEYS.iter().chain(process::KEYS).copied().collect();
            t.deny_unknown_with(&keys, |key| owner(key).map(|k| format!("`{key}` is an option of `{k}`")), diags);
            read_command(t, source.base_dir, diags).map(Runner::Command)
        }
        (Some(_), None) => {
            let Some(kind) = t.choice("kind", BUILTINS, diags) else {
                t.deny_unknown(all, diags);
                return None;
            };
            let kind = kind.get_ref().as_str();
            let keys: Vec<&str> = NODE_KEYS.iter().chain(Kind::keys(kind)).copied().collect();
            t.deny_unknown_with(
                &keys,
                |key| {
                    process::belongs(
                        key,
                        "a built-in runs inside procnet, with the launcher's environment and directory",
                    )
                    .or_else(|| owner(key).map(|k| format!("`{key}` is an option of `{k}`, not `{kind}`")))
                },
                diags,
            );
            Kind::from_table(kind, t, source.base_dir, diags).map(Runner::Builtin)
        }
    }
}

/// The built-in kind an option key belongs to, if any.
fn owner(key: &str) -> Option<&'static str> {
    BUILTINS.iter().copied().find(|k| Kind::keys(k).contains(&key))
}

/// Every key a node may have, whatever it runs: computed once, not once per node.
fn all_node_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys: Vec<&str> = NODE_KEYS.iter().chain(process::KEYS).copied().collect();
        for kind in BUILTINS {
            for key in Kind::keys(kind) {
                if !keys.contains(key) {
                    keys.push(key);
                }
            }
        }
        keys
    })
}

/// A `command` node with `stdio`: its program's lines are its records.
fn read_stdio(t: &Table<'_, '_>, command: Vec<String>, diags: &mut Diagnostics) -> Option<StdioConfig> {
    let format = match t.choice("stdio", StdioFormat::NAMES, diags)?.get_ref().as_str() {
        "jsonl" => StdioFormat::Jsonl,
        _ => StdioFormat::Lines,
    };
    let field = t.non_empty_str("field", diags);
    if let (Some(f), StdioFormat::Jsonl) = (&field, format) {
        diags.push(
            Diagnostic::error(f.span(), format!("`field` in {} applies to `stdio = \"lines\"` only", t.what()))
                .with_help("with `stdio = \"jsonl\"` each line is a whole record: remove `field`"),
        );
        return None;
    }
    let field = field.map_or_else(|| "line".to_string(), Spanned::into_inner);
    Some(StdioConfig { command, format, field, env: Default::default(), cwd: None })
}

fn read_command(t: &Table<'_, '_>, base_dir: &Path, diags: &mut Diagnostics) -> Option<Vec<String>> {
    if let Some(DeValue::String(line)) = t.get("command").map(Spanned::get_ref) {
        let words: Vec<String> = line.split_whitespace().map(|w| format!("{w:?}")).collect();
        diags.push(
            Diagnostic::error(
                t.get("command").map_or(t.anchor(), Spanned::span),
                format!("`command` in {} must be an array of strings", t.what()),
            )
            .with_help(format!("write the program and its arguments apart: `command = [{}]`", words.join(", "))),
        );
        return None;
    }
    let argv = t.str_list("command", diags)?;
    if argv.get_ref().is_empty() {
        diags.error(argv.span(), format!("`command` in {} is empty; give the program and its arguments", t.what()));
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
