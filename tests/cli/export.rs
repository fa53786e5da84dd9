//! `procnet export k8s`, through the real binary: every shipped topology renders to manifests
//! that the Kubernetes schemas accept (kubernetes-validate, offline, strict), read back by a
//! real YAML parser (PyYAML) with the objects, replicas and environment a run needs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{self, free_port, procnet, program, root, shipped_topologies, venv_bin, Scratch};
use serde_json::Value;

/// The Kubernetes version whose schemas the manifests are checked against (bundled with
/// kubernetes-validate, which reads no network).
const K8S_VERSION: &str = "1.30.0";
/// No command here should take long; past this, something hangs.
const TIMEOUT: Duration = Duration::from_secs(60);

/// `procnet export k8s ARGS...`, expected to succeed; its stdout.
fn export(args: &[&str]) -> util::Run {
    let mut all = vec!["export", "k8s"];
    all.extend_from_slice(args);
    procnet(all).timeout(TIMEOUT).run()
}

/// Validate `file` with kubernetes-validate in strict mode (unknown fields fail); panics
/// with its output unless every one of `docs` objects passed, with no warning.
fn validate(file: &Path, docs: usize) {
    let kv = venv_bin().join("kubernetes-validate");
    let run =
        program(&kv, [Path::new("-k"), Path::new(K8S_VERSION), Path::new("--strict"), file]).timeout(TIMEOUT).run();
    let out = format!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    assert_eq!(run.code(), 0, "kubernetes-validate failed on {}\n{out}", file.display());
    assert!(!run.stdout.contains("WARN") && !run.stdout.contains("ERROR"), "{out}");
    let passed = run.stdout.lines().filter(|l| l.starts_with("INFO") && l.contains(" passed ")).count();
    assert_eq!(passed, docs, "not every object was validated\n{out}");
}

/// The YAML documents of `file`, as PyYAML reads them.
fn parse_yaml(file: &Path) -> Vec<Value> {
    let script = "import json, sys, yaml\n\
                  print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1], encoding='utf-8'))]))";
    let run = program(venv_bin().join("python3"), [Path::new("-c"), Path::new(script), file]).timeout(TIMEOUT).run();
    run.expect_code(0);
    let docs: Vec<Value> = serde_json::from_str(&run.stdout).expect("JSON from python");
    assert!(docs.iter().all(Value::is_object), "every document is an object: {docs:?}");
    docs
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The StatefulSet of node `node` (its `procnet.dev/node` annotation).
fn stateful_set<'a>(docs: &'a [Value], node: &str) -> &'a Value {
    of_kind(docs, "StatefulSet")
        .into_iter()
        .find(|s| s["metadata"]["annotations"]["procnet.dev/node"] == node)
        .unwrap_or_else(|| panic!("no StatefulSet for node `{node}`"))
}

fn container(set: &Value) -> &Value {
    let containers = set["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    &containers[0]
}

/// The `env` entry `name` of a container.
fn env<'a>(c: &'a Value, name: &str) -> &'a Value {
    c["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {}", c["env"]))
}

fn has_env(c: &Value, name: &str) -> bool {
    c["env"].as_array().expect("env").iter().any(|e| e["name"] == name)
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Export `topology` to a scratch file, validate it, and check what every export must hold;
/// the documents.
fn export_and_check(topology: &Path, extra: &[&str]) -> (Vec<Value>, util::Run) {
    let scratch = Scratch::new();
    let mut args = vec![topology.to_str().expect("UTF-8 path")];
    args.extend_from_slice(extra);
    let run = export(&args);
    run.expect_code(0);
    assert!(run.stdout.starts_with("# "), "a header comment first:\n{}", run.stdout);
    let file = scratch.write("manifests.yaml", &run.stdout);
    let docs = parse_yaml(&file);
    validate(&file, docs.len());

    let (t, _) = procnet::topology::load(topology).expect("a valid topology");
    let started: Vec<_> = t.nodes.iter().filter(|n| !matches!(n.runner, procnet::topology::Runner::External)).collect();
    assert_eq!(of_kind(&docs, "ConfigMap").len(), 1);
    assert_eq!(of_kind(&docs, "NetworkPolicy").len(), 1);
    assert_eq!(of_kind(&docs, "Service").len(), started.len() + 1, "one Service per node and the launcher");
    assert_eq!(of_kind(&docs, "StatefulSet").len(), started.len() + 1, "one StatefulSet per node and the launcher");
    assert_eq!(docs.len(), 2 * started.len() + 4, "nothing else");

    // The ConfigMap holds the topology byte for byte.
    let cm = of_kind(&docs, "ConfigMap")[0];
    let text = std::fs::read_to_string(topology).expect("read the topology");
    assert_eq!(cm["data"]["topology.toml"].as_str(), Some(text.as_str()));

    // The coordinator.
    let launchers: Vec<&Value> = of_kind(&docs, "StatefulSet")
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["app.kubernetes.io/component"] == "coordinator")
        .collect();
    assert_eq!(launchers.len(), 1);
    let launcher = launchers[0]["metadata"]["name"].as_str().expect("a name");
    assert_eq!(launchers[0]["spec"]["replicas"], 1);
    assert_eq!(launchers[0]["spec"]["serviceName"], launcher);
    let lc = container(launchers[0]);
    let file_name = topology.file_name().expect("a file name").to_str().expect("UTF-8");
    let args: Vec<&str> = lc["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("text")).collect();
    assert_eq!(
        args,
        ["run", &format!("/etc/procnet/{file_name}"), "--coordinate", "$(POD_IP)", "--startup-timeout", "600"]
    );
    assert_eq!(env(lc, "POD_IP")["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP");
    let service = of_kind(&docs, "Service").into_iter().find(|s| s["metadata"]["name"] == launcher).expect("launcher");
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(service["spec"]["ports"][0]["port"], 7360);
    let control = format!("tcp://{launcher}-0.{launcher}:7360");

    // Every node.
    for node in &started {
        let set = stateful_set(&docs, &node.name);
        let name = set["metadata"]["name"].as_str().expect("a name");
        assert_eq!(set["spec"]["replicas"], node.replicas, "replicas of `{}`", node.name);
        assert_eq!(set["spec"]["serviceName"], name);
        assert_eq!(set["spec"]["podManagementPolicy"], "Parallel");
        assert!(of_kind(&docs, "Service").iter().any(|s| s["metadata"]["name"] == name), "no Service `{name}`");
        let c = container(set);
        let env_names: Vec<&str> =
            c["env"].as_array().expect("env").iter().map(|e| e["name"].as_str().expect("a name")).collect();
        assert_eq!(env_names[0], "POD_IP", "POD_IP first, so later variables can use it");
        assert_eq!(env(c, "PROCNET_CONTROL")["value"], control.as_str());
        assert_eq!(env(c, "PROCNET_NODE")["value"], node.name.as_str());
        assert_eq!(env(c, "PROCNET_REPLICAS")["value"], node.replicas.to_string());
        assert_eq!(env(c, "PROCNET_TOPOLOGY")["value"], t.name.as_str());
        assert_eq!(
            env(c, "PROCNET_REPLICA")["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.labels['apps.kubernetes.io/pod-index']"
        );
        assert!(!has_env(c, "PROCNET_ALLOW"), "the NetworkPolicy replaces PROCNET_ALLOW");
        if let procnet::topology::Runner::Builtin(_) = node.runner {
            assert_eq!(c["command"], serde_json::json!(["procnet", "node"]));
            let config = env(c, "PROCNET_CONFIG")["value"].as_str().expect("text");
            assert!(
                !config.contains(&*root().to_string_lossy()),
                "a path of this machine in the config of `{}`: {config}",
                node.name
            );
        }
    }

    // Names Kubernetes accepts, labels on everything.
    for d in &docs {
        let name = d["metadata"]["name"].as_str().expect("a name");
        assert!(is_dns_label(name) && name.len() <= 52, "bad name `{name}`");
        let labels = &d["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/part-of"], t.name.as_str(), "{name}");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "procnet", "{name}");
        assert!(labels["app.kubernetes.io/name"].is_string(), "{name}");
    }
    (docs, run)
}

fn topologies() -> Vec<PathBuf> {
    let files = shipped_topologies();
    assert!(files.len() >= 5, "the shipped topologies: {files:?}");
    files
}

#[test]
fn every_shipped_topology_exports_to_valid_manifests() {
    for file in topologies() {
        let (docs, run) = export_and_check(&file, &[]);
        assert!(
            docs.iter().all(|d| d["metadata"].get("namespace").is_none()),
            "{}: no namespace unless asked",
            file.display()
        );
        assert!(!run.stderr.contains("skipped"), "{}: no external node to skip:\n{}", file.display(), run.stderr);
    }
}

#[test]
fn pages_in_detail() {
    let file = root().join("topologies/pages.toml");
    let (docs, _) = export_and_check(&file, &["--image", "registry.example/procnet:1.2", "--namespace", "team-a"]);
    assert!(docs.iter().all(|d| d["metadata"]["namespace"] == "team-a"));
    let names: Vec<&str> = docs.iter().map(|d| d["metadata"]["name"].as_str().expect("a name")).collect();
    assert_eq!(
        names,
        [
            "pages-topology",
            "pages",
            "pages-launcher",
            "pages-launcher",
            "pages-pages",
            "pages-pages",
            "pages-python",
            "pages-python",
            "pages-count",
            "pages-count"
        ]
    );
    let replicas: Vec<u64> =
        of_kind(&docs, "StatefulSet").iter().map(|s| s["spec"]["replicas"].as_u64().expect("n")).collect();
    assert_eq!(replicas, [1, 1, 3, 1], "launcher, pages, python x3, count");
    for set in of_kind(&docs, "StatefulSet") {
        assert_eq!(container(set)["image"], "registry.example/procnet:1.2");
    }

    // The source reads data/pages.jsonl: in the ConfigMap, mounted at its relative place.
    let cm = of_kind(&docs, "ConfigMap")[0];
    let data = std::fs::read_to_string(root().join("topologies/data/pages.jsonl")).expect("pages.jsonl");
    let key = cm["data"]
        .as_object()
        .expect("data")
        .iter()
        .find(|(_, v)| v.as_str() == Some(data.as_str()))
        .map(|(k, _)| k.clone())
        .expect("pages.jsonl in the ConfigMap");
    let pages = container(stateful_set(&docs, "pages"));
    let mount = pages["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["subPath"] == key.as_str())
        .expect("mounted");
    assert_eq!(mount["mountPath"], "/etc/procnet/data/pages.jsonl");
    let config: Value =
        serde_json::from_str(env(pages, "PROCNET_CONFIG")["value"].as_str().expect("text")).expect("JSON");
    assert_eq!(config["path"], "/etc/procnet/data/pages.jsonl");
    assert!(!has_env(pages, "PROCNET_BIND"), "a source binds no input");

    // The filter binds its input on the pod's IP; the tally also its `progress` pub port.
    let python = container(stateful_set(&docs, "python"));
    assert_eq!(env(python, "PROCNET_BIND")["value"], "tcp://$(POD_IP):7400");
    assert!(!has_env(python, "PROCNET_PUB"));
    let count = container(stateful_set(&docs, "count"));
    let pubs: Value = serde_json::from_str(env(count, "PROCNET_PUB")["value"].as_str().expect("text")).expect("JSON");
    assert_eq!(pubs, serde_json::json!({"progress": "tcp://$(POD_IP):7401"}));
    let service = of_kind(&docs, "Service").into_iter().find(|s| s["metadata"]["name"] == "pages-count").expect("svc");
    assert_eq!(
        service["spec"]["ports"],
        serde_json::json!([
            {"name": "input", "port": 7400, "targetPort": "input"},
            {"name": "pub-0", "port": 7401, "targetPort": "pub-0"}
        ])
    );

    // Only the topology's own pods get in.
    let policy = of_kind(&docs, "NetworkPolicy")[0];
    assert_eq!(policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/part-of"], "pages");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/part-of"],
        "pages"
    );
}

#[test]
fn awkward_strings_survive_and_external_nodes_are_skipped() {
    let scratch = Scratch::new();
    // Indented lines, tabs, a line break YAML 1.1 knows (U+2028), `$` that Kubernetes would
    // expand, words YAML 1.1 reads as booleans, and two trailing blank lines.
    let text = "name = \"Weird: Yes\"\n\
                \n\
                [nodes.src]\n\
                \tkind = \"lines\"\n\
                path = \"in.txt\"  # é \u{2028} ünïcode\n\
                \n\
                [nodes.keep]\n\
                command = [\"./bin/keep.sh\", \"yes\", \"1\", \"a: b\", \"$(HOME)\", \"$${x}\", \"#c\"]\n\
                inputs = [\"src\"]\n\
                replicas = 2\n\
                \n\
                [nodes.ext]\n\
                external = true\n\
                inputs = [\"keep\"]\n\
                \n\n";
    let topology = scratch.write("weird.toml", text);
    scratch.write("in.txt", "a\nb\n");
    let out = scratch.path("out.yaml");
    let run = export(&[topology.to_str().expect("UTF-8"), "-o", out.to_str().expect("UTF-8")]);
    run.expect_code(0);
    assert_eq!(run.stdout, "", "with -o, nothing on stdout");
    assert!(run.stderr.contains("# skipped node `ext`"), "{}", run.stderr);
    let docs = parse_yaml(&out);
    validate(&out, docs.len());
    assert_eq!(docs.len(), 2 * 2 + 4, "no objects for the external node");

    let cm = of_kind(&docs, "ConfigMap")[0];
    assert_eq!(cm["metadata"]["name"], "weird-yes-topology");
    assert_eq!(cm["data"]["topology.toml"].as_str(), Some(text), "the topology, byte for byte");
    assert!(cm["data"].as_object().expect("data").values().any(|v| v == "a\nb\n"), "in.txt is in the ConfigMap");
    let keep = container(stateful_set(&docs, "keep"));
    // Kubernetes turns `$$` into `$`: the program gets its arguments as written.
    assert_eq!(
        keep["command"],
        serde_json::json!(["/etc/procnet/bin/keep.sh", "yes", "1", "a: b", "$$(HOME)", "$${x}", "#c"])
    );
    assert_eq!(keep["workingDir"], "/etc/procnet");
    assert_eq!(env(keep, "PROCNET_TOPOLOGY")["value"], "Weird: Yes");
    assert!(!has_env(keep, "PROCNET_CONFIG"), "a command node gets no PROCNET_CONFIG");
    assert_eq!(stateful_set(&docs, "keep")["spec"]["replicas"], 2);
    assert_eq!(env(keep, "PROCNET_CONTROL")["value"], "tcp://weird-yes-launcher-0.weird-yes-launcher:7360");
}

/// A command node's `env` follows the launcher's variables and its `cwd` is the pod's working
/// directory; the coordinator, which reads the file again, gets the export's `--set` flags and
/// the values its `${VAR}`s found.
#[test]
fn env_cwd_overrides_and_variables_reach_the_pods() {
    let scratch = Scratch::new();
    scratch.write("in.txt", "a\n");
    scratch.write("work/keep.py", "");
    let topology = scratch.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.txt"
        [nodes.keep]
        command = ["python3", "keep.py"]
        inputs = ["src"]
        env = { MODE = "${PROCNET_TEST_MODE:-fast}", PRICE = "$5" }
        cwd = "work"
        "#,
    );
    let out = scratch.path("out.yaml");
    let args = ["export", "k8s", topology.to_str().expect("UTF-8"), "-o", out.to_str().expect("UTF-8")];
    let run = procnet(args.into_iter().chain(["--set", "nodes.keep.replicas=3"]))
        .env("PROCNET_TEST_MODE", "slow")
        .timeout(TIMEOUT)
        .run();
    run.expect_code(0);
    assert!(run.stderr.contains("# node `keep` runs `python3 keep.py` in `/etc/procnet/work`"), "{}", run.stderr);
    let docs = parse_yaml(&out);
    validate(&out, docs.len());

    let set = stateful_set(&docs, "keep");
    assert_eq!(set["spec"]["replicas"], 3, "the override");
    let keep = container(set);
    assert_eq!(env(keep, "MODE")["value"], "slow");
    assert_eq!(env(keep, "PRICE")["value"], "$$5", "Kubernetes turns `$$` into `$`");
    let names: Vec<&str> = keep["env"].as_array().expect("env").iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.ends_with(&["MODE", "PRICE"]), "the node's own last: {names:?}");
    assert_eq!(keep["workingDir"], "/etc/procnet/work");
    assert_eq!(container(stateful_set(&docs, "src"))["workingDir"], "/etc/procnet");

    let launcher = of_kind(&docs, "StatefulSet")
        .into_iter()
        .find(|s| s["metadata"]["labels"]["app.kubernetes.io/component"] == "coordinator")
        .expect("the coordinator");
    let lc = container(launcher);
    let args: Vec<&str> = lc["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("text")).collect();
    assert_eq!(args[args.len() - 2..], ["--set", "nodes.keep.replicas=3"]);
    assert_eq!(env(lc, "PROCNET_TEST_MODE")["value"], "slow", "the coordinator reads the file as the export did");
}

#[test]
fn an_invalid_topology_exits_78_with_nothing_on_stdout() {
    let run = export(&["tests/invalid/cycle_2.toml"]);
    assert_eq!(run.code(), 78, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("invalid topology"), "{}", run.stderr);
}

#[test]
fn names_that_collide_in_kubernetes_are_refused() {
    let scratch = Scratch::new();
    let topology = scratch.write(
        "t.toml",
        "[nodes.a_b]\nkind = \"lines\"\npath = \"x\"\n\n[nodes.a-b]\nkind = \"sink\"\ninputs = [\"a_b\"]\n",
    );
    let run = export(&[topology.to_str().expect("UTF-8")]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("`a_b` and `a-b` would both be named `t-a-b`"), "{}", run.stderr);
}

#[test]
fn the_yaml_emitter_round_trips_awkward_values_through_pyyaml() {
    let strings = [
        "",
        " ",
        "a",
        "yes",
        "No",
        "ON",
        "off",
        "y",
        "n",
        "~",
        "null",
        "true",
        "1",
        "-1",
        "0x1f",
        "1e3",
        "1_000",
        "12:30",
        "2024-01-01",
        ".inf",
        ".nan",
        "-",
        "- a",
        "? a",
        ": a",
        "a: b",
        "a #b",
        "#a",
        "&a",
        "*a",
        "!a",
        "|",
        ">",
        "%a",
        "@a",
        "`a",
        "'a'",
        "\"a\"",
        "{a}",
        "[a]",
        "a,b",
        "/etc/procnet",
        "tab\there",
        "cr\rlf",
        "nul\0",
        "del\u{7f}",
        "nel\u{85}",
        "ls\u{2028}ps\u{2029}",
        "bom\u{feff}",
        "nbsp\u{a0}",
        "é ü 日本 🦀",
        "back\\slash",
        "$(POD_IP)",
        "a\nb",
        "a\nb\n",
        "a\nb\n\n\n",
        "\na",
        "a\n b",
        "a\n\tb",
        "a\n\n  \nb",
        "a \nb  \n",
        "---\n...\n",
        "a\n# b\n",
        "\u{2028}\n",
        "x\r\ny\n",
    ];
    let mut map = serde_json::Map::new();
    for (i, s) in strings.iter().enumerate() {
        map.insert(format!("k{i}"), Value::String(s.to_string()));
        map.insert(s.to_string(), Value::from(i));
    }
    let docs = vec![
        Value::Object(map),
        serde_json::json!({"list": &strings[..], "nested": [[strings[0], {"a": &strings[..]}], [], {}], "n": [1, -2, 3.5, true, null]}),
        serde_json::json!([{"a": 1}, ["b"], "c"]),
    ];
    let scratch = Scratch::new();
    let file = scratch.write("round-trip.yaml", &procnet::export::to_yaml_documents(&docs));
    assert_eq!(parse_yaml_any(&file), docs);
}

/// The YAML documents of `file`, whatever they hold, as PyYAML reads them.
fn parse_yaml_any(file: &Path) -> Vec<Value> {
    let script = "import json, sys, yaml\n\
                  print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1], encoding='utf-8')))))";
    let run = program(venv_bin().join("python3"), [Path::new("-c"), Path::new(script), file]).timeout(TIMEOUT).run();
    run.expect_code(0);
    serde_json::from_str(&run.stdout).expect("JSON from python")
}

/// How long a simulated pod or the coordinator may live: past the coordinator's startup
/// timeout (60 s), so that a start-up failure is reported by it rather than by the deadline.
const POD_TIMEOUT: Duration = Duration::from_secs(90);

/// A value as Kubernetes expands it in a container's `env`, `command` and `args`: `$(VAR)`
/// is the value of a variable defined before (left as it is otherwise), `$$` is `$`.
fn k8s_expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some((name, r)) = after.strip_prefix('(').and_then(|r| r.split_once(')')) {
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = r;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// One simulated pod: what its container runs, where, and with which environment.
struct Pod {
    name: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
}

/// Pod `index` of StatefulSet `set` with IP `ip`, as the kubelet would start its one
/// container: the downward API resolved, `$(VAR)` expanded, `/etc/procnet` (the mounted
/// ConfigMap) standing for the topology's directory `dir`, the `emptyDir` for `run_dir`, and
/// `dns` resolving in-cluster endpoints (`tcp://NAME:PORT`) to this machine's.
fn pod(set: &Value, cm: &Value, index: u64, ip: &str, dir: &Path, run_dir: &Path, dns: &[(String, String)]) -> Pod {
    let name = format!("{}-{index}", set["metadata"]["name"].as_str().expect("a name"));
    let c = container(set);
    assert_eq!(c["workingDir"], "/etc/procnet", "{name}: the working directory stands for the topology's");
    let local = |s: &str| match s.strip_prefix("/etc/procnet/") {
        Some(rel) => dir.join(rel).display().to_string(),
        None => s.to_string(),
    };
    // What the pod sees under /etc/procnet is the ConfigMap, file by file: it must be what the
    // topology's directory holds here, or this simulation would not be Kubernetes.
    for m in c["volumeMounts"].as_array().expect("mounts") {
        let mount = m["mountPath"].as_str().expect("a path");
        if let Some(key) = m["subPath"].as_str() {
            let here = std::fs::read_to_string(local(mount)).expect("a mounted file is in the topology's directory");
            assert!(mount.starts_with("/etc/procnet/"), "{name}: {mount}");
            assert_eq!(cm["data"][key], here.as_str(), "{name}: {mount}");
        }
    }
    let empty_dirs: Vec<&str> = set["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter(|v| v.get("emptyDir").is_some())
        .map(|v| v["name"].as_str().expect("a name"))
        .collect();
    let run_mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter(|m| empty_dirs.contains(&m["name"].as_str().expect("a name")))
        .map(|m| m["mountPath"].as_str().expect("a path"))
        .collect();

    let mut env: Vec<(String, String)> = Vec::new();
    for e in c["env"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let key = e["name"].as_str().expect("a name").to_string();
        let value = match e.get("value") {
            Some(v) => k8s_expand(v.as_str().expect("a string value"), &env),
            None => match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("status.podIP") => ip.to_string(),
                Some("metadata.labels['apps.kubernetes.io/pod-index']") => index.to_string(),
                other => panic!("{name}: {key} from {other:?}, which this simulation does not know"),
            },
        };
        env.push((key, value));
    }
    for (key, value) in &mut env {
        if key == "PROCNET_RUN_DIR" {
            assert!(run_mounts.contains(&value.as_str()), "{name}: {value} is not an emptyDir of the pod");
            *value = run_dir.display().to_string();
        } else if key == "PROCNET_CONFIG" {
            let mut config: Value = serde_json::from_str(value).expect("PROCNET_CONFIG is JSON");
            if let Some(o) = config.as_object_mut() {
                for v in o.values_mut() {
                    if let Some(s) = v.as_str() {
                        *v = Value::String(local(s));
                    }
                }
            }
            *value = config.to_string();
        } else if let Some((from, to)) = dns.iter().find(|(from, _)| value == from) {
            assert!(from.starts_with("tcp://"), "{from}");
            value.clone_from(to);
        }
    }
    let mut argv: Vec<String> = Vec::new();
    for part in ["command", "args"] {
        for a in c[part].as_array().map(Vec::as_slice).unwrap_or_default() {
            argv.push(local(&k8s_expand(a.as_str().expect("a string"), &env)));
        }
    }
    assert_eq!(argv.first().map(String::as_str), Some("procnet"), "{name}: the image's procnet");
    Pod { name, argv, env }
}

impl Pod {
    /// Start the pod's container: the built binary for the image's `procnet`, the topology's
    /// directory for `/etc/procnet`, the pod's environment and none of this process's
    /// `PROCNET_*` variables (a pod gets only what its manifest says).
    fn start(&self, dir: &Path) -> util::Running {
        let mut args: Vec<String> = Vec::new();
        for var in procnet::runtime::vars::ALL {
            if !self.env.iter().any(|(k, _)| k == var) {
                args.extend(["-u".to_string(), var.to_string()]);
            }
        }
        args.push(util::bin().display().to_string());
        args.extend(self.argv[1..].iter().cloned());
        let mut p = program("env", &args).current_dir(dir).timeout(POD_TIMEOUT);
        for (k, v) in &self.env {
            p = p.env(k, v);
        }
        p.start()
    }
}

/// Kubernetes simulated on this machine, without mocks: the manifests of `pages.toml` as
/// PyYAML reads them, every StatefulSet's pods started as real processes with what their
/// container says (each pod its own loopback address, the in-cluster name of the coordinator
/// resolved to it), and the coordinator as its own pod says, with `--control-port`. The run
/// ends as a plain `procnet run` does, with the same tally.
#[test]
fn the_exported_environment_runs_the_job_with_a_coordinator() {
    let topology = root().join("topologies/pages.toml");
    let dir = topology.parent().expect("the topology's directory").to_path_buf();
    let plain = procnet(["run", topology.to_str().expect("UTF-8")]).timeout(TIMEOUT).run();
    plain.expect_code(0);
    let expected = plain.json();

    let scratch = Scratch::new();
    let exported = export(&[topology.to_str().expect("UTF-8")]);
    exported.expect_code(0);
    let docs = parse_yaml(&scratch.write("manifests.yaml", &exported.stdout));
    let cm = of_kind(&docs, "ConfigMap")[0];

    // The cluster's DNS: the coordinator pod `<set>-0.<service>`, on its control port, is
    // 127.0.0.1 on a free port (given to it with --control-port).
    let sets = of_kind(&docs, "StatefulSet");
    let is_launcher = |s: &Value| s["metadata"]["labels"]["app.kubernetes.io/component"] == "coordinator";
    let launcher = sets.iter().copied().find(|s| is_launcher(s)).expect("the coordinator's StatefulSet");
    let control_port = free_port();
    let in_cluster = format!(
        "tcp://{}-0.{}:{}",
        launcher["metadata"]["name"].as_str().expect("a name"),
        launcher["spec"]["serviceName"].as_str().expect("a service"),
        container(launcher)["ports"][0]["containerPort"]
    );
    let dns = [(in_cluster, format!("tcp://127.0.0.1:{control_port}"))];

    // Every node pod, each on an address of its own, as Kubernetes starts them: all at once,
    // before the coordinator is up.
    let mut pods = Vec::new();
    for set in sets.iter().filter(|s| !is_launcher(s)) {
        for index in 0..set["spec"]["replicas"].as_u64().expect("replicas") {
            let ip = format!("127.0.0.{}", 10 + pods.len());
            let run_dir = scratch.path(&format!("run-{}", pods.len()));
            std::fs::create_dir(&run_dir).expect("the pod's emptyDir");
            let pod = pod(set, cm, index, &ip, &dir, &run_dir, &dns);
            assert_eq!(pod.argv, ["procnet", "node"], "{}", pod.name);
            assert!(pod.env.iter().all(|(_, v)| !v.contains("$(") && !v.contains(".pages-launcher")), "{:?}", pod.env);
            let running = pod.start(&dir);
            pods.push((pod, running));
        }
    }
    assert_eq!(pods.len(), 5, "pages, python x3, count");

    // The coordinator, as its pod says, on 127.0.0.1 and the free port; a shorter start-up
    // timeout than the manifests' (600 s), so that a failure is reported before the deadline.
    let coordinator = pod(launcher, cm, 0, "127.0.0.1", &dir, &scratch.path("unused"), &dns);
    let mut args = coordinator.argv[1..].to_vec();
    let timeout = args.iter().position(|a| a == "--startup-timeout").expect("--startup-timeout") + 1;
    args[timeout] = "60".to_string();
    assert_eq!(
        args,
        ["run", topology.to_str().expect("UTF-8"), "--coordinate", "127.0.0.1", "--startup-timeout", "60"]
    );
    args.extend(["--control-port".to_string(), control_port.to_string()]);
    let mut p = procnet(&args).current_dir(&dir).timeout(POD_TIMEOUT);
    for (k, v) in &coordinator.env {
        p = p.env(k, v);
    }
    let run = p.start().finish();
    // On failure, the pods are killed as they are dropped.
    run.expect_code(0);

    let mut tally = None;
    for (pod, running) in pods {
        let out = running.finish();
        assert_eq!(
            out.code(),
            0,
            "pod {} failed\n--- its stderr\n{}\n--- the coordinator's\n{}",
            pod.name,
            out.stderr,
            run.stderr
        );
        if pod.name.starts_with("pages-count-") {
            tally = out.stdout.lines().last().map(|l| serde_json::from_str::<Value>(l).expect("the tally is JSON"));
        }
    }
    assert_eq!(tally.as_ref(), Some(&expected), "the tally on the pod's stdout is the plain run's");
}
