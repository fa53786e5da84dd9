//! The JSON Schema for editors (`procnet schema`, shipped as `topology.schema.json`) against a
//! real validator: Python's `jsonschema` (draft-07) in the test virtualenv, on each file read by
//! Python's `tomllib`, much as an editor reads it. Every shipped topology, every complete
//! example in the docs and topologies using every key and form (each one also passing `procnet
//! check`) validate; the cases of `tests/invalid/` whose mistake is in the shape of the file
//! (an unknown key, a wrong type, a value not in its list) are rejected.

use std::path::{Path, PathBuf};

use crate::util::{self, procnet, program, root, shipped_topologies, venv_bin, Scratch};

/// Prints, for each TOML file given after the schema, one JSON line: the file and the errors
/// of the document against the schema (or why it is no TOML).
const VALIDATE: &str = r#"
import json, sys, tomllib
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    errors = ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in validator.iter_errors(doc)]
    print(json.dumps({"file": path, "errors": errors}))
"#;

/// The schema's errors for each of `files`, in order.
fn validate(files: &[PathBuf]) -> Vec<(PathBuf, Vec<String>)> {
    assert!(!files.is_empty());
    let schema = root().join("topology.schema.json");
    let args =
        ["-c".as_ref(), VALIDATE.as_ref(), schema.as_os_str()].into_iter().chain(files.iter().map(|f| f.as_os_str()));
    let run = program(venv_bin().join("python3"), args).run();
    assert!(
        run.code() == 0,
        "the validator failed (is `jsonschema` in target/venv? `make venv` installs it):\n{}",
        run.stderr
    );
    let results: Vec<(PathBuf, Vec<String>)> = run
        .stdout
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let errors = v["errors"].as_array().expect("errors").iter().map(|e| e.as_str().expect("text").to_string());
            (PathBuf::from(v["file"].as_str().expect("file")), errors.collect())
        })
        .collect();
    assert_eq!(results.len(), files.len(), "one result per file:\n{}", run.stdout);
    results
}

/// Fail, naming each file the schema rejected and why.
fn assert_all_valid(files: &[PathBuf]) {
    let rejected: Vec<String> = validate(files)
        .into_iter()
        .filter(|(_, errors)| !errors.is_empty())
        .map(|(file, errors)| format!("{}:\n  {}", file.display(), errors.join("\n  ")))
        .collect();
    assert!(rejected.is_empty(), "the schema rejects valid topologies:\n{}", rejected.join("\n"));
}

#[test]
fn procnet_schema_prints_the_shipped_schema() {
    let run = procnet(["schema"]).run();
    run.expect_code(0);
    let shipped = std::fs::read_to_string(root().join("topology.schema.json")).expect("topology.schema.json");
    assert!(run.stdout == shipped, "`procnet schema` differs from topology.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
}

#[test]
fn the_shipped_topologies_validate() {
    assert_all_valid(&shipped_topologies());
}

/// The ```toml blocks of the README and docs/: they show valid files, or parts of them. A
/// block that leaves required keys out says so with a `# ...` line, and is not a whole node.
#[test]
fn the_examples_of_the_docs_validate() {
    let s = Scratch::new();
    let mut docs = vec![root().join("README.md")];
    docs.extend(std::fs::read_dir(root().join("docs")).expect("docs/").map(|e| e.expect("entry").path()));
    let mut blocks = Vec::new();
    for doc in docs.iter().filter(|p| p.extension().is_some_and(|e| e == "md")) {
        let text = std::fs::read_to_string(doc).expect("a doc");
        let name = doc.file_name().expect("a name").to_string_lossy().into_owned();
        for (i, block) in text.split("```toml\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap_or_default();
            if !block.lines().any(|l| l.trim() == "# ...") {
                blocks.push(s.write(&format!("{name}.{i}.toml"), block));
            }
        }
    }
    assert!(blocks.len() >= 10, "only {} examples found", blocks.len());
    assert_all_valid(&blocks);
}

/// Topologies using every key of the format, and each form of `inputs`, `outputs`, `host` and
/// `${VAR}`: valid for procnet, so for the schema too.
const EVERY_KEY: &[(&str, &str)] = &[
    (
        "builtins.toml",
        r#"name = "every-${RUN_NAME:-key}"
delivery = "at-most-once"

[defaults]
transport = "tcp"
start = "fork"
restart = "on-failure"
max_restarts = 5
max_message_bytes = 2097152

[nodes.site]
kind = "serve"
dir = "site"
latency_ms = 5
forbidden = ["a.test/private/"]
slow = ["a.test/slow"]
slow_ms = 100

[nodes.urls]
kind = "lines"
path = "urls.txt"
format = "text"
field = "url"
start = "spawn"

[nodes.docs]
kind = "lines"
path = "docs.jsonl"
format = "jsonl"
transport = "ipc"

[nodes.fetch]
kind = "fetch"
inputs = ["urls"]
replicas = 2
url_field = "url"
concurrency = 4
timeout_ms = 1000
retries = 0
max_body_bytes = 1024
user_agent = "procnet-test"
max_redirects = 3
connect_to = "${site.url}"

[nodes.keep]
kind = "filter"
inputs = ["fetch", "docs.out"]
field = "body"
regex = "python$"
ignore_case = true
invert = false
outputs = { out = { pattern = "pub", topic_field = "host" } }
restart = "never"
max_restarts = 0
max_message_bytes = 1048576
external = false

[nodes.count]
kind = "tally"
inputs = [{ from = "keep", topics = ["a.", ""], drop = false }]
by = "host"
by_host = false
output = "count.json"
template = "{count} {by}"
outputs = { progress = { pattern = "pub", topic = "counts" } }

[nodes.watch]
kind = "sink"
inputs = [{ from = "count.progress", drop = true }]
template = "{count}"

[nodes.out]
kind = "sink"
inputs = [{ from = "keep.out", topics = [] }]
path = "out.jsonl"
"#,
    ),
    (
        "commands.toml",
        r#"[defaults]
start = "${START:-spawn}"
transport = "${TRANSPORT:-ipc}"
restart = "${RESTART:-on-failure}"

[nodes.numbers]
command = ["seq", "1", "10"]
stdio = "lines"
field = "n"
env = { MODE = "${MODE:-fast}", LITERAL = "$${NOT_A_VARIABLE}" }
cwd = "work"
start = "fork"

[nodes.echo]
command = ["cat"]
stdio = "jsonl"
inputs = ["numbers"]
replicas = 2
outputs = { out = "pub" }

[nodes.split]
command = ["python3", "split.py", "--price", "$${PRICE}"]
inputs = [{ from = "echo", topics = ["1", "2"] }]
outputs = { out = "push", copies = { pattern = "pub", topic = "copy" } }
env = { PYTHONPATH = "lib" }
cwd = "."

[nodes.ext]
external = true
inputs = ["split.copies"]
replicas = 2
transport = "tcp"

[nodes.last]
command = ["./last.sh"]
inputs = ["split", "ext.out"]
outputs = { out = "push" }
"#,
    ),
    (
        "hosts.toml",
        r#"[hosts.a]
address = "10.77.0.1"

[hosts.b]
address = "10.77.0.2"
bind = "0.0.0.0"

[nodes.src]
kind = "lines"
path = "in.txt"
host = "a"

[nodes.keep]
kind = "filter"
inputs = ["src"]
field = "line"
contains = "x"
replicas = 2
host = ["a", "b"]
transport = "tcp"

[nodes.count]
kind = "tally"
inputs = ["keep"]
host = "b"
"#,
    ),
];

#[test]
fn topologies_with_every_key_validate() {
    let s = Scratch::new();
    for (name, text) in [("urls.txt", "http://a.test/\n"), ("docs.jsonl", "{}\n"), ("in.txt", "x\n")] {
        s.write(name, text);
    }
    s.write("site/a.test/index.html", "python");
    s.write("work/.keep", "");
    let mut files = Vec::new();
    for (name, text) in EVERY_KEY {
        let file = s.write(name, text);
        let run = procnet(["check", name]).current_dir(s.dir.path()).run();
        assert_eq!(run.code(), 0, "`procnet check {name}` refuses it:\n{}", run.stderr);
        files.push(file);
    }
    assert_all_valid(&files);
}

/// Cases of `tests/invalid/` whose every error is in the shape of the file, so an editor can
/// show it as it is typed. (The others need what only procnet knows: the other nodes, cycles,
/// ports, the machine.)
const STRUCTURAL: &[&str] = &[
    "bad_node_name",
    "bad_transport",
    "command_empty",
    "command_wrong_type",
    "comments_only",
    "cwd_bad",
    "defaults_not_table",
    "delivery_bad",
    "empty_file",
    "env_bad",
    "env_cwd_builtin",
    "external_bad",
    "fetch_options",
    "filter_contains_and_regex",
    "filter_missing_field",
    "filter_no_pattern",
    "filter_wrong_types",
    "hosts_bad_address",
    "hosts_list",
    "inline_tables",
    "inputs_not_array",
    "kind_and_command",
    "kind_wrong_type",
    "lines_bad_format",
    "lines_jsonl_with_field",
    "lines_missing_path",
    "name_too_long",
    "name_wrong_type",
    "neither_kind_nor_command",
    "newline_in_a_value",
    "node_not_table",
    "nodes_empty",
    "nodes_not_table",
    "ports",
    "replicas_boundary",
    "replicas_negative",
    "replicas_too_many",
    "replicas_wrong_type",
    "replicas_zero",
    "restart_bad",
    "unknown_defaults_key",
    "unknown_key_other_kind",
    "unknown_key_replica",
    "unknown_kind",
    "unknown_top_level_key",
];

#[test]
fn structural_mistakes_are_rejected() {
    let dir = util::root().join("tests/invalid");
    let files: Vec<PathBuf> = STRUCTURAL.iter().map(|case| dir.join(format!("{case}.toml"))).collect();
    let accepted: Vec<String> = validate(&files)
        .into_iter()
        .filter(|(_, errors)| errors.is_empty())
        .map(|(file, _)| Path::new(&file).file_name().expect("a name").to_string_lossy().into_owned())
        .collect();
    assert!(accepted.is_empty(), "the schema accepts invalid topologies: {}", accepted.join(", "));
}
