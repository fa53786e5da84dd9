//! `procnet export k8s FILE`: a validated topology as Kubernetes manifests, so that it runs
//! on an existing cluster instead of one machine. Multi-document YAML (see the emitter in
//! [`super`]), one object per document, in this order:
//!
//! 1. **ConfigMap `T-topology`**, where `T` is the topology's name made a DNS label
//!    ([`topology_label`]). It holds the topology file's text under `topology.toml`, and
//!    every file a built-in node reads (a `lines` node's `path`) that lies under the
//!    topology's directory, is UTF-8 and under [`MAX_FILE_BYTES`], while the whole stays
//!    under [`MAX_CONFIGMAP_BYTES`] (Kubernetes refuses objects over 1 MiB). Every pod mounts
//!    each of these files on its own (`subPath`) at its place under [`ROOT`], which stands
//!    for the topology's directory: the topology at `/etc/procnet/<its file name>` (so the
//!    name it defaults to, the file stem, stays the same), `data/pages.jsonl` at
//!    `/etc/procnet/data/pages.jsonl`. Mounting file by file leaves whatever else the image
//!    has under `/etc/procnet` visible: what is not in the ConfigMap (a `serve` node's
//!    directory, large or binary files, the programs of `command` nodes) must be in the
//!    image at the same relative place. The annotation `procnet.dev/note` says which is
//!    which, and so do the notes on stderr.
//! 2. **NetworkPolicy `T`**: the pods of the topology (`app.kubernetes.io/part-of: T`) accept
//!    connections only from each other, the cluster's version of `PROCNET_ALLOW`
//!    (docs/protocol.md, section 3.6), which the export does not set.
//! 3. **The coordinator**: a headless Service `T-launcher` (port 7360, `control`) and a
//!    StatefulSet `T-launcher` of one pod running `procnet run /etc/procnet/<file>
//!    --coordinate $(POD_IP) --startup-timeout 600`: the launcher binds its control ROUTER on
//!    `tcp://<pod IP>:7360` and starts no node, since Kubernetes starts them all; it runs
//!    the start barrier, `wire`, end of stream and the report as on one machine. It reads
//!    the file again, so it is given what made the topology exported: the export's `--set`
//!    flags, and the value of every variable the file's `${VAR}`s found set.
//! 4. **Per node** `N` (whatever its `host`: `[hosts]` is ignored, Kubernetes places pods;
//!    `transport` too, every edge is tcp between pods): a headless Service `T-N` and a
//!    StatefulSet `T-N` of the node's replica count (`podManagementPolicy: Parallel`), one
//!    container `node` running `procnet node` (a built-in kind) or the node's `command`
//!    (a program with a `/` resolved under [`ROOT`], as the launcher resolves it against the
//!    topology's directory, which is also the working directory). The environment is the
//!    launcher's (docs/protocol.md, section 2.2, [`node_env`]), with the replica index from
//!    the label `apps.kubernetes.io/pod-index` (Kubernetes 1.28 and later set it on
//!    StatefulSet pods), the control endpoint `tcp://T-launcher-0.T-launcher:7360`, the run
//!    directory an `emptyDir` at [`RUN_DIR`], and the input (port 7400) and pub sockets
//!    (7401 and up, one per socket key, named `pub-0`, `pub-1`, ...) bound on the pod's IP.
//!    Paths in a built-in node's options are moved under [`ROOT`] too. A `command` node's
//!    `env` follows the launcher's variables, and its `cwd` is the container's
//!    `workingDir` (under [`ROOT`] when it is under the topology's directory). An `external`
//!    node is skipped (it is started by hand), with a note on stderr.
//!
//! Every object is labelled `app.kubernetes.io/part-of: T`, `app.kubernetes.io/name` (the
//! node, `launcher`, or `T`) and `app.kubernetes.io/managed-by: procnet`; `--namespace`
//! sets `metadata.namespace` on each.
//!
//! Names: `T` is at most [`TOPOLOGY_NAME_MAX`] characters and a node's part at most
//! [`NODE_NAME_MAX`], so that `T-N` stays within 52, the longest StatefulSet name whose
//! pods (`T-N-<index>`) and revision label (`T-N-<hash>`) still fit Kubernetes' 63. Two
//! nodes whose names become the same label (`a_b` and `a-b`), or a node called `launcher`,
//! cannot be exported: the error says so.
//!
//! A run is one-shot, and Kubernetes does not know it: StatefulSet pods always restart
//! (`restartPolicy: Always` is the only policy they allow), so once the coordinator's log
//! says the run ended, delete the objects. A node pod that dies mid-run and is restarted
//! says `hello` again, and the run fails loudly rather than silently lose records.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::nodes::Kind;
use crate::runtime::{vars, Identity};
use crate::topology::{NodeId, Runner, Topology};

/// Where the topology's directory is in every pod.
pub const ROOT: &str = "/etc/procnet";
/// The run directory of every node pod (an `emptyDir`).
pub const RUN_DIR: &str = "/run/procnet";
/// The coordinator's control port.
pub const CONTROL_PORT: u16 = 7360;
/// Where a node binds its push input; its pub sockets follow.
pub const INPUT_PORT: u16 = 7400;
/// The ConfigMap key of the topology file.
pub const TOPOLOGY_KEY: &str = "topology.toml";
/// A file a node reads goes in the ConfigMap only below this size...
pub const MAX_FILE_BYTES: u64 = 512 * 1024;
/// ... and only while the ConfigMap's data stays below this (Kubernetes' limit for an object
/// is 1 MiB, metadata included).
pub const MAX_CONFIGMAP_BYTES: u64 = 900 * 1024;
/// The longest topology part of a name.
pub const TOPOLOGY_NAME_MAX: usize = 20;
/// The longest node part of a name.
pub const NODE_NAME_MAX: usize = 31;
/// The downward API field that holds a StatefulSet pod's index.
pub const POD_INDEX_FIELD: &str = "metadata.labels['apps.kubernetes.io/pod-index']";
/// The name part of the coordinator's objects (no node may take it).
const LAUNCHER: &str = "launcher";

/// What the user chose.
#[derive(Debug, Clone)]
pub struct Options {
    /// The container image of every pod: it has `procnet` on its `PATH`.
    pub image: String,
    /// The namespace of every object, if any.
    pub namespace: Option<String>,
}

/// Why a topology could not be exported.
#[derive(Debug)]
pub enum ExportError {
    /// An option of the command line is not valid (`--namespace`): a usage error.
    Usage(String),
    /// The topology cannot be rendered as it is (two nodes would get one name).
    Topology(String),
    /// The topology file could not be read.
    Read {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::Usage(why) | ExportError::Topology(why) => f.write_str(why),
            ExportError::Read { path, .. } => write!(f, "failed to read `{}`", path.display()),
        }
    }
}

impl std::error::Error for ExportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExportError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl ExportError {
    /// The exit status for this error (`crate::exit_codes`).
    pub fn exit_code(&self) -> u8 {
        match self {
            ExportError::Usage(_) => crate::exit_codes::USAGE,
            _ => crate::exit_codes::NODE_FAILED,
        }
    }
}

/// The manifests, and what the user should know about them.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Multi-document YAML.
    pub yaml: String,
    /// Lines for stderr, each starting with `# `: skipped nodes, files to put in the image.
    pub notes: Vec<String>,
}

/// `s` as a DNS-1123 label part of at most `max` characters: lowercase letters, digits and
/// single `-`s, no `-` at either end; possibly empty.
pub fn dns_label(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(max);
    out.trim_end_matches('-').to_string()
}

/// The topology's name as the first part of every object name: a DNS label that starts with
/// a letter (Service names must), never empty.
pub fn topology_label(name: &str) -> String {
    let label = dns_label(name, TOPOLOGY_NAME_MAX);
    if label.is_empty() {
        "procnet".to_string()
    } else if label.starts_with(|c: char| c.is_ascii_digit()) {
        dns_label(&format!("p-{label}"), TOPOLOGY_NAME_MAX)
    } else {
        label
    }
}

/// A node's name as the second part of its objects' names, never empty.
pub fn node_label(name: &str) -> String {
    let label = dns_label(name, NODE_NAME_MAX);
    if label.is_empty() {
        "node".to_string()
    } else {
        label
    }
}

/// Whether `s` is a DNS-1123 label (what a namespace must be).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `p`, a path resolved against the topology's directory, moved under [`ROOT`]; a path
/// elsewhere stays as it is.
fn relocate(t: &Topology, p: &Path) -> PathBuf {
    match p.strip_prefix(&t.base_dir) {
        Ok(rel) => Path::new(ROOT).join(rel),
        Err(_) => p.to_path_buf(),
    }
}

/// The options of a built-in node with its paths moved under [`ROOT`].
pub fn relocated_kind(t: &Topology, kind: &Kind) -> Kind {
    let mut kind = kind.clone();
    match &mut kind {
        Kind::Lines(c) => c.path = c.path.as_deref().map(|p| relocate(t, p)),
        Kind::Sink(c) => c.path = c.path.as_deref().map(|p| relocate(t, p)),
        Kind::Tally(c) => c.output = c.output.as_deref().map(|p| relocate(t, p)),
        Kind::Serve(c) => c.dir = relocate(t, &c.dir),
        Kind::Stdio(c) => {
            if c.command[0].contains('/') {
                c.command[0] = relocate(t, Path::new(&c.command[0])).display().to_string();
            }
            c.cwd = c.cwd.as_deref().map(|p| relocate(t, p));
        }
        Kind::Filter(_) | Kind::Fetch(_) => {}
    }
    kind
}

/// A literal value for the Kubernetes environment or arguments, where `$(VAR)` expands and
/// `$$` stands for `$`: every `$` doubled.
fn literal(s: &str) -> String {
    s.replace('$', "$$")
}

/// The control endpoint every node connects to: the coordinator pod's stable DNS name.
pub fn control_endpoint(topology_label: &str) -> String {
    format!("tcp://{topology_label}-{LAUNCHER}-0.{topology_label}-{LAUNCHER}:{CONTROL_PORT}")
}

/// The environment of node `n`'s container (docs/protocol.md, section 2.2): the replica
/// contract ([`Identity::env`]) of a replica in a pod, with its replica index taken from the
/// pod's index label and its endpoints on the pod's address. `POD_IP` comes first, as
/// Kubernetes expands `$(POD_IP)` only in the variables after it.
pub fn node_env(t: &Topology, n: NodeId, topology_label: &str) -> Vec<Value> {
    let node = &t.nodes[n];
    let pub_ports = t
        .pub_sockets(n)
        .into_iter()
        .enumerate()
        .map(|(i, key)| (key, format!("tcp://$(POD_IP):{}", pub_port(i))))
        .collect();
    let identity = Identity {
        node: node.name.clone(),
        replica: 0,
        replicas: node.replicas,
        control: control_endpoint(topology_label),
        topology: t.name.clone(),
        run_dir: Some(RUN_DIR.into()),
        restart: 0,
        attempt: 0,
        max_message_bytes: Some(node.max_message_bytes),
        grace_ms: None,
        bind: t.binds_push_input(n).then(|| format!("tcp://$(POD_IP):{INPUT_PORT}")),
        pub_ports,
        config: match &node.runner {
            Runner::Builtin(kind) => Some(serde_json::to_string(&relocated_kind(t, kind)).expect("a kind serializes")),
            _ => None,
        },
        secret: None,
        allow: Vec::new(),
    };
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    let mut env = vec![field("POD_IP", "status.podIP")];
    for (name, value) in identity.env() {
        env.push(match name {
            vars::REPLICA => field(name, POD_INDEX_FIELD),
            // These refer to the pod's address on purpose.
            vars::BIND | vars::PUB => json!({"name": name, "value": value}),
            _ => json!({"name": name, "value": literal(&value)}),
        });
    }
    // The node's own, after the launcher's, as a run adds them.
    for (name, value) in &node.env {
        env.push(json!({"name": name, "value": literal(value)}));
    }
    env
}

/// The coordinator's environment: `POD_IP`, and the value of every variable the topology's
/// `${VAR}`s found set, so that it reads the file as the export did (one left unset gets its
/// default there too, unless the image sets it).
fn coordinator_env(t: &Topology) -> Vec<Value> {
    let mut env = vec![json!({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})];
    for (name, value) in &t.variables {
        // The pod's own address is the one it must bind.
        if let (Some(value), false) = (value, name == "POD_IP") {
            env.push(json!({"name": name, "value": literal(value)}));
        }
    }
    env
}

/// The coordinator's arguments: run the mounted topology with the export's `--set` flags.
fn coordinator_args(topology_file: &str, t: &Topology) -> Vec<String> {
    let mut args = vec!["run".to_string(), literal(topology_file)];
    args.extend(["--coordinate", "$(POD_IP)", "--startup-timeout", "600"].map(String::from));
    for o in &t.overrides {
        args.extend(["--set".to_string(), literal(o)]);
    }
    args
}

/// The port of pub socket number `i`.
fn pub_port(i: usize) -> u16 {
    INPUT_PORT + 1 + i as u16
}

/// A file of the ConfigMap: its key and where it is mounted, relative to [`ROOT`].
struct File {
    key: String,
    rel: PathBuf,
}

/// The ConfigMap's content and what the note says.
struct Files {
    data: Map<String, Value>,
    mounted: Vec<File>,
    note: Vec<String>,
}

/// `p` relative to the topology's directory, if it is inside it (no `..`).
fn inside(t: &Topology, p: &Path) -> Option<PathBuf> {
    let rel = p.strip_prefix(&t.base_dir).ok()?;
    (rel.components().count() > 0 && rel.components().all(|c| matches!(c, Component::Normal(_))))
        .then(|| rel.to_path_buf())
}

/// A ConfigMap key for `rel`: its file name in the allowed characters, numbered.
fn file_key(i: usize, rel: &Path) -> String {
    let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    format!("file{i}-{name}")
}

/// The topology file and the files built-in nodes read, what goes in the ConfigMap, and
/// the notes for the rest.
fn files(t: &Topology, notes: &mut Vec<String>) -> Result<Files, ExportError> {
    let text = std::fs::read_to_string(&t.path).map_err(|source| ExportError::Read { path: t.path.clone(), source })?;
    let topology_rel = PathBuf::from(
        t.path.file_name().ok_or_else(|| ExportError::Topology(format!("`{}` is not a file", t.path.display())))?,
    );
    let mut total = text.len() as u64;
    let mut data = Map::new();
    data.insert(TOPOLOGY_KEY.to_string(), Value::String(text));
    let mut mounted = vec![File { key: TOPOLOGY_KEY.to_string(), rel: topology_rel.clone() }];
    let mut included = vec![topology_rel.display().to_string()];
    let mut image = Vec::new();
    let mut seen = BTreeSet::from([topology_rel]);
    for node in &t.nodes {
        let Runner::Builtin(kind) = &node.runner else { continue };
        let (path, directory) = match kind {
            Kind::Lines(c) => match &c.path {
                Some(p) => (p, false),
                None => continue,
            },
            Kind::Serve(c) => (&c.dir, true),
            Kind::Filter(_) | Kind::Fetch(_) | Kind::Tally(_) | Kind::Sink(_) | Kind::Stdio(_) => continue,
        };
        let shown = relocate(t, path);
        let Some(rel) = inside(t, path) else {
            image.push(format!("`{}` (node `{}`, outside the topology's directory)", shown.display(), node.name));
            continue;
        };
        if !seen.insert(rel.clone()) {
            continue;
        }
        let why_not = if directory {
            Some("a directory".to_string())
        } else {
            match std::fs::metadata(path) {
                Err(e) => Some(format!("unreadable here: {e}")),
                Ok(m) if !m.is_file() => Some("not a regular file".to_string()),
                Ok(m) if m.len() >= MAX_FILE_BYTES => Some(format!("{} bytes, over {MAX_FILE_BYTES}", m.len())),
                Ok(m) if total + m.len() >= MAX_CONFIGMAP_BYTES => {
                    Some(format!("the ConfigMap would pass {MAX_CONFIGMAP_BYTES} bytes"))
                }
                Ok(_) => match std::fs::read(path).map(String::from_utf8) {
                    Err(e) => Some(format!("unreadable here: {e}")),
                    Ok(Err(_)) => Some("not UTF-8".to_string()),
                    Ok(Ok(content)) => {
                        total += content.len() as u64;
                        let key = file_key(mounted.len(), &rel);
                        data.insert(key.clone(), Value::String(content));
                        included.push(rel.display().to_string());
                        mounted.push(File { key, rel });
                        None
                    }
                },
            }
        };
        if let Some(why) = why_not {
            image.push(format!("`{}` (node `{}`: {why})", shown.display(), node.name));
        }
    }
    let mut note = vec![format!(
        "Mounted file by file under {ROOT}, which stands for the topology's directory: {}.",
        included.join(", ")
    )];
    if !image.is_empty() {
        note.push(format!("Not in this ConfigMap, so the image must have them: {}.", image.join("; ")));
        for what in &image {
            notes.push(format!("# not in the ConfigMap, put it in the image: {what}"));
        }
    }
    note.push(format!(
        "Anything else a node reads (a command node's program and files) must be in the image under {ROOT} too."
    ));
    Ok(Files { data, mounted, note })
}

/// The standard labels of an object.
fn labels(topology_label: &str, name: &str, component: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("app.kubernetes.io/part-of".into(), topology_label.into());
    m.insert("app.kubernetes.io/name".into(), name.into());
    if let Some(c) = component {
        m.insert("app.kubernetes.io/component".into(), c.into());
    }
    m.insert("app.kubernetes.io/managed-by".into(), "procnet".into());
    m
}

/// `metadata` of an object.
fn metadata(
    name: &str,
    labels: &Map<String, Value>,
    annotations: Option<Map<String, Value>>,
    ns: Option<&str>,
) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    if let Some(ns) = ns {
        m.insert("namespace".into(), ns.into());
    }
    m.insert("labels".into(), Value::Object(labels.clone()));
    if let Some(a) = annotations {
        m.insert("annotations".into(), Value::Object(a));
    }
    Value::Object(m)
}

/// A headless Service named `name` for the pods labelled `labels`.
fn service(
    name: &str,
    labels: &Map<String, Value>,
    ports: &[Value],
    ns: Option<&str>,
    annotations: Option<Map<String, Value>>,
) -> Value {
    let mut spec = Map::new();
    spec.insert("clusterIP".into(), "None".into());
    // The DNS name works before the pod is ready: nodes may start before the coordinator.
    spec.insert("publishNotReadyAddresses".into(), true.into());
    spec.insert("selector".into(), Value::Object(labels.clone()));
    if !ports.is_empty() {
        spec.insert(
            "ports".into(),
            ports
                .iter()
                .map(|p| json!({"name": p["name"], "port": p["containerPort"], "targetPort": p["name"]}))
                .collect(),
        );
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata(name, labels, annotations, ns), "spec": spec})
}

/// What differs between the StatefulSets of the coordinator and of the nodes.
struct Pods<'a> {
    name: &'a str,
    labels: Map<String, Value>,
    annotations: Option<Map<String, Value>>,
    replicas: u32,
    parallel: bool,
    container: Map<String, Value>,
    run_dir: bool,
}

/// A StatefulSet of `p`, its pods mounting the ConfigMap's files.
fn stateful_set(p: Pods<'_>, configmap: &str, files: &Files, ns: Option<&str>) -> Value {
    let mut mounts: Vec<Value> = files
        .mounted
        .iter()
        .map(|f| {
            json!({
                "name": "topology",
                "mountPath": Path::new(ROOT).join(&f.rel).display().to_string(),
                "subPath": f.key,
                "readOnly": true,
            })
        })
        .collect();
    let mut volumes = vec![json!({"name": "topology", "configMap": {"name": configmap}})];
    if p.run_dir {
        mounts.push(json!({"name": "run", "mountPath": RUN_DIR}));
        volumes.push(json!({"name": "run", "emptyDir": {}}));
    }
    let mut container = p.container;
    container.entry("workingDir").or_insert_with(|| ROOT.into());
    container.insert("volumeMounts".into(), mounts.into());
    let mut spec = Map::new();
    spec.insert("replicas".into(), p.replicas.into());
    spec.insert("serviceName".into(), p.name.into());
    if p.parallel {
        spec.insert("podManagementPolicy".into(), "Parallel".into());
    }
    spec.insert("selector".into(), json!({"matchLabels": p.labels}));
    spec.insert(
        "template".into(),
        json!({
            "metadata": {"labels": p.labels},
            "spec": {
                // The only policy a StatefulSet allows: a run is one-shot (see the module doc).
                "restartPolicy": "Always",
                // No `<SERVICE>_PORT` variables: the environment is the launcher's, exactly.
                "enableServiceLinks": false,
                "containers": [container],
                "volumes": volumes,
            },
        }),
    );
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(p.name, &p.labels, p.annotations, ns),
        "spec": spec,
    })
}

/// Render `t` as Kubernetes manifests.
pub fn render(t: &Topology, opts: &Options) -> Result<Rendered, ExportError> {
    let ns = opts.namespace.as_deref();
    if let Some(ns) = ns {
        if !is_dns_label(ns) {
            return Err(ExportError::Usage(format!(
                "namespace `{ns}` is not a DNS label (lowercase letters, digits and `-`, at most 63)"
            )));
        }
    }
    let tl = topology_label(&t.name);
    let launcher = format!("{tl}-{LAUNCHER}");
    let mut notes = Vec::new();

    // Object names of the nodes, checked for collisions first.
    let mut names: Vec<Option<String>> = Vec::new();
    let mut taken: Vec<(String, &str)> = Vec::new();
    for node in &t.nodes {
        if matches!(node.runner, Runner::External) {
            notes.push(format!(
                "# skipped node `{}`: external, start its replicas by hand with the environment `procnet run` prints",
                node.name
            ));
            names.push(None);
            continue;
        }
        let nl = node_label(&node.name);
        if nl == LAUNCHER {
            return Err(ExportError::Topology(format!(
                "node `{}` would be named `{launcher}`, the coordinator's name: rename the node to export it",
                node.name
            )));
        }
        if let Some((_, other)) = taken.iter().find(|(l, _)| *l == nl) {
            return Err(ExportError::Topology(format!(
                "nodes `{other}` and `{}` would both be named `{tl}-{nl}` in Kubernetes: rename one to export them",
                node.name
            )));
        }
        taken.push((nl.clone(), &node.name));
        names.push(Some(nl));
    }

    let files = files(t, &mut notes)?;
    let configmap = format!("{tl}-topology");
    let topology_file = Path::new(ROOT).join(&files.mounted[0].rel).display().to_string();
    let mut docs = Vec::new();

    let mut note = Map::new();
    note.insert("procnet.dev/note".into(), files.note.join(" ").into());
    docs.push(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(&configmap, &labels(&tl, &tl, None), Some(note), ns),
        "data": files.data,
    }));

    let part_of = json!({"matchLabels": {"app.kubernetes.io/part-of": tl}});
    docs.push(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(&tl, &labels(&tl, &tl, None), None, ns),
        "spec": {
            "podSelector": part_of,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": part_of}]}],
        },
    }));

    // The coordinator.
    let launcher_labels = labels(&tl, LAUNCHER, Some("coordinator"));
    let control_port = json!({"name": "control", "containerPort": CONTROL_PORT});
    docs.push(service(&launcher, &launcher_labels, std::slice::from_ref(&control_port), ns, None));
    let mut container = Map::new();
    container.insert("name".into(), LAUNCHER.into());
    container.insert("image".into(), opts.image.clone().into());
    container.insert("command".into(), json!(["procnet"]));
    container.insert("args".into(), coordinator_args(&topology_file, t).into());
    container.insert("env".into(), coordinator_env(t).into());
    container.insert("ports".into(), json!([control_port]));
    let pods = Pods {
        name: &launcher,
        labels: launcher_labels,
        annotations: None,
        replicas: 1,
        parallel: false,
        container,
        run_dir: false,
    };
    docs.push(stateful_set(pods, &configmap, &files, ns));

    // The nodes.
    for (n, node) in t.nodes.iter().enumerate() {
        let Some(nl) = &names[n] else { continue };
        let name = format!("{tl}-{nl}");
        let node_labels = labels(&tl, nl, Some("node"));
        let mut ports = Vec::new();
        if t.binds_push_input(n) {
            ports.push(json!({"name": "input", "containerPort": INPUT_PORT}));
        }
        let keys = t.pub_sockets(n);
        for i in 0..keys.len() {
            ports.push(json!({"name": format!("pub-{i}"), "containerPort": pub_port(i)}));
        }
        let mut annotations = Map::new();
        annotations.insert("procnet.dev/node".into(), node.name.clone().into());
        if !keys.is_empty() {
            let by_port: Map<String, Value> =
                keys.iter().enumerate().map(|(i, k)| (format!("pub-{i}"), Value::String(k.clone()))).collect();
            annotations.insert("procnet.dev/pub-sockets".into(), Value::Object(by_port).to_string().into());
        }
        docs.push(service(&name, &node_labels, &ports, ns, Some(annotations.clone())));

        // Its `cwd`, where the image has the topology's directory (Kubernetes does not
        // expand `$(VAR)` in `workingDir`: no escaping).
        let working_dir = node.cwd.as_ref().map(|cwd| relocate(t, cwd).display().to_string());
        let command: Vec<String> = match &node.runner {
            Runner::Builtin(kind) => {
                match kind {
                    Kind::Serve(_) => notes.push(format!(
                        "# node `{}` (serve) listens on 127.0.0.1 in its own pod: nodes in other pods cannot reach it",
                        node.name
                    )),
                    Kind::Sink(c) if c.path.is_some() => notes.push(write_note(t, &node.name, c.path.as_deref())),
                    Kind::Tally(c) if c.output.is_some() => notes.push(write_note(t, &node.name, c.output.as_deref())),
                    _ => {}
                }
                vec!["procnet".into(), "node".into()]
            }
            Runner::Command(argv) => {
                let mut argv = argv.clone();
                argv[0] = relocate(t, Path::new(&argv[0])).display().to_string();
                let note = match &working_dir {
                    Some(dir) => format!(
                        "in `{dir}`: the image must have that directory, its program and the files it names (relative to it)"
                    ),
                    None => format!("the image must have its program and the files it names (relative to {ROOT})"),
                };
                notes.push(format!("# node `{}` runs `{}` {note}", node.name, argv.join(" ")));
                argv.iter().map(|a| literal(a)).collect()
            }
            Runner::External => unreachable!("external nodes were skipped"),
        };
        let mut container = Map::new();
        container.insert("name".into(), "node".into());
        container.insert("image".into(), opts.image.clone().into());
        container.insert("command".into(), command.into());
        container.insert("env".into(), node_env(t, n, &tl).into());
        if let Some(dir) = working_dir {
            container.insert("workingDir".into(), dir.into());
        }
        if !ports.is_empty() {
            container.insert("ports".into(), ports.into());
        }
        let pods = Pods {
            name: &name,
            labels: node_labels,
            annotations: Some(annotations),
            replicas: node.replicas,
            parallel: true,
            container,
            run_dir: true,
        };
        docs.push(stateful_set(pods, &configmap, &files, ns));
    }

    let header = format!(
        "# Kubernetes manifests of topology `{}`, from `procnet export k8s` (docs/cluster.md).\n\
         # Apply with `kubectl apply -f`; a run is one-shot: delete them once it has ended.\n",
        t.name.replace('\n', " ")
    );
    Ok(Rendered { yaml: header + &super::to_yaml_documents(&docs), notes })
}

/// The note for a node that writes a file.
fn write_note(t: &Topology, node: &str, path: Option<&Path>) -> String {
    let path = path.map(|p| relocate(t, p).display().to_string()).unwrap_or_default();
    let run = crate::runtime::outfile::run_name(Some(Path::new(RUN_DIR)));
    let partial = crate::runtime::outfile::partial_path(Path::new(&path), &run);
    format!(
        "# node `{node}` writes `{}` inside its pod (no launcher there moves it into place): it is lost with the pod \
         (write to stdout to read it with `kubectl logs`)",
        partial.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("My_Topology.v2", 63), "my-topology-v2");
        assert_eq!(dns_label("__a__b__", 63), "a-b");
        assert_eq!(dns_label("abc-def", 4), "abc");
        assert_eq!(dns_label("___", 63), "");
        assert_eq!(topology_label("Demo"), "demo");
        assert_eq!(topology_label("2024 run"), "p-2024-run");
        assert_eq!(topology_label("--"), "procnet");
        assert_eq!(topology_label(&"x".repeat(100)).len(), TOPOLOGY_NAME_MAX);
        assert_eq!(node_label("show_errors"), "show-errors");
        assert_eq!(node_label("_"), "node");
        assert_eq!(node_label(&"Y".repeat(100)), "y".repeat(NODE_NAME_MAX));
        for l in [topology_label("x_-_y"), node_label("9-lives-"), topology_label("ÜBER")] {
            assert!(is_dns_label(&l), "{l}");
        }
        assert!(!is_dns_label("Upper") && !is_dns_label("-a") && !is_dns_label("") && !is_dns_label("a_b"));
        assert!(is_dns_label("team-a"));
        assert_eq!(literal("${site.url} $(X) $$"), "$${site.url} $$(X) $$$$");
    }

    fn topology(text: &str) -> (tempfile::TempDir, Topology) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.toml");
        std::fs::write(&path, text).expect("write");
        let (t, _) = crate::topology::load(&path).expect("a valid topology");
        (dir, t)
    }

    fn env_map(env: &[Value]) -> Vec<(String, Value)> {
        env.iter()
            .map(|e| {
                let v = e.get("value").cloned().unwrap_or_else(|| e["valueFrom"]["fieldRef"]["fieldPath"].clone());
                (e["name"].as_str().expect("a name").to_string(), v)
            })
            .collect()
    }

    #[test]
    fn the_env_of_one_node() {
        let (dir, t) = topology(
            r#"
            name = "Env Test"
            [nodes.src]
            kind = "lines"
            path = "data/in.txt"
            [nodes.keep]
            kind = "filter"
            inputs = ["src"]
            replicas = 3
            field = "line"
            contains = "x"
            [nodes.count]
            kind = "tally"
            inputs = ["keep"]
            [nodes.watch]
            command = ["./watch.sh", "$(HOME)"]
            inputs = [{ from = "count.progress", drop = true }]
            "#,
        );
        let tl = topology_label(&t.name);
        assert_eq!(tl, "env-test");
        let env = env_map(&node_env(&t, 2, &tl));
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "POD_IP",
                "PROCNET_PROTOCOL",
                "PROCNET_NODE",
                "PROCNET_REPLICA",
                "PROCNET_REPLICAS",
                "PROCNET_CONTROL",
                "PROCNET_TOPOLOGY",
                "PROCNET_RUN_DIR",
                "PROCNET_RESTART",
                "PROCNET_MAX_MESSAGE_BYTES",
                "PROCNET_BIND",
                "PROCNET_PUB",
                "PROCNET_CONFIG",
            ]
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).expect(k);
        assert_eq!(get("POD_IP"), "status.podIP");
        assert_eq!(get("PROCNET_REPLICA"), POD_INDEX_FIELD);
        assert_eq!(get("PROCNET_REPLICAS"), "1");
        assert_eq!(get("PROCNET_NODE"), "count");
        assert_eq!(get("PROCNET_TOPOLOGY"), "Env Test");
        assert_eq!(get("PROCNET_CONTROL"), "tcp://env-test-launcher-0.env-test-launcher:7360");
        assert_eq!(get("PROCNET_RUN_DIR"), RUN_DIR);
        assert_eq!(get("PROCNET_RESTART"), "0");
        assert_eq!(get("PROCNET_BIND"), "tcp://$(POD_IP):7400");
        let pubs: Value = serde_json::from_str(get("PROCNET_PUB").as_str().expect("text")).expect("JSON");
        assert_eq!(pubs, json!({"progress": "tcp://$(POD_IP):7401", "progress!drop": "tcp://$(POD_IP):7402"}));
        let config: Value = serde_json::from_str(get("PROCNET_CONFIG").as_str().expect("text")).expect("JSON");
        assert_eq!(config["kind"], "tally");

        // A source: no input, no pub, its path moved under /etc/procnet.
        let src = env_map(&node_env(&t, 0, &tl));
        assert!(src.iter().all(|(k, _)| k != "PROCNET_BIND" && k != "PROCNET_PUB" && k != "PROCNET_ALLOW"));
        let config = src.iter().find(|(k, _)| k == "PROCNET_CONFIG").expect("config").1.clone();
        let config: Value = serde_json::from_str(config.as_str().expect("text")).expect("JSON");
        assert_eq!(config["path"], "/etc/procnet/data/in.txt");
        assert!(!config.to_string().contains(&dir.path().display().to_string()));

        // A command node: no config; its program under /etc/procnet.
        let watch = env_map(&node_env(&t, 3, &tl));
        assert!(watch.iter().all(|(k, _)| k != "PROCNET_CONFIG" && k != "PROCNET_PUB"));
        assert!(watch.iter().all(|(k, _)| k != "PROCNET_BIND"), "a node that reads only pub ports binds no input");
        let keep = env_map(&node_env(&t, 1, &tl));
        assert!(keep.contains(&("PROCNET_REPLICAS".to_string(), json!("3"))));
        assert!(keep.contains(&("PROCNET_BIND".to_string(), json!("tcp://$(POD_IP):7400"))));
    }

    #[test]
    fn colliding_names_are_refused() {
        let (_dir, t) = topology(
            r#"
            [nodes.a_b]
            kind = "lines"
            path = "x"
            [nodes.a-b]
            kind = "sink"
            inputs = ["a_b"]
            "#,
        );
        let opts = Options { image: "procnet:latest".into(), namespace: None };
        let e = render(&t, &opts).expect_err("a collision").to_string();
        assert!(e.contains("`a_b` and `a-b`"), "{e}");
        let opts = Options { image: "procnet:latest".into(), namespace: Some("Bad_NS".into()) };
        let e = render(&t, &opts).expect_err("a bad namespace");
        assert!(e.to_string().contains("Bad_NS"));
        // A bad option is a usage error, like clap's.
        assert_eq!(e.exit_code(), crate::exit_codes::USAGE);
    }
}
