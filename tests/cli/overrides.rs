//! `--set PATH=VALUE` on every command that loads a topology: what it changes, that its
//! values are checked as the file's are (naming the flag; the exact messages are in
//! tests/invalid/set_errors.*), that a malformed flag is a usage error, and that a report says
//! which were used.

use std::ffi::OsStr;
use std::path::Path;

use crate::util::{procnet, read_json, Scratch};

const PIPELINE: &str = r#"
[nodes.src]
kind = "lines"
path = "in.txt"

[nodes.keep]
kind = "filter"
inputs = ["src"]
field = "line"
contains = "x"

[nodes.count]
kind = "tally"
inputs = ["keep"]
"#;

fn pipeline() -> (Scratch, std::path::PathBuf) {
    let s = Scratch::new();
    s.write("in.txt", "x1\ny\nx2\nx3\n");
    let file = s.write("t.toml", PIPELINE);
    (s, file)
}

/// `procnet <args...>` with the topology file after the first argument(s).
fn procnet_with(args: &[&str], file: &Path, set: &[&str]) -> crate::util::Run {
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    all.push(file.as_os_str());
    for s in set {
        all.extend([OsStr::new("--set"), OsStr::new(s)]);
    }
    procnet(all).run()
}

#[test]
fn set_changes_replicas_and_transport() {
    let (_s, file) = pipeline();
    let r = procnet_with(&["check"], &file, &["nodes.keep.replicas=4", "defaults.transport=tcp"]);
    r.expect_code(0);
    assert!(r.stdout.contains("  keep   x4  kind filter\n"), "{}", r.stdout);
    assert!(r.stdout.contains("PUSH x1 -> PULL x4 (load-balanced)  tcp://127.0.0.1:"), "{}", r.stdout);
    assert!(!r.stdout.contains("ipc://"), "every node on tcp:\n{}", r.stdout);
    assert!(r.stdout.contains("overrides: --set nodes.keep.replicas=4 --set defaults.transport=tcp\n"), "{}", r.stdout);
    // The later flag wins; a quoted TOML string and a bare word are the same string.
    let r = procnet_with(
        &["check"],
        &file,
        &["nodes.keep.replicas=2", "nodes.keep.replicas=3", "nodes.keep.contains=\"y\""],
    );
    r.expect_code(0);
    assert!(r.stdout.contains("  keep   x3  kind filter\n"), "{}", r.stdout);
    // A run with the overrides: 4 replicas of `keep`, over tcp, the same count.
    let r = procnet_with(&["run"], &file, &["nodes.keep.replicas=4", "defaults.transport=tcp"]);
    r.expect_code(0);
    assert_eq!(r.json()["count"], 3, "{}", r.stdout);
    let r = procnet_with(&["graph"], &file, &["nodes.keep.replicas=4"]);
    r.expect_code(0);
    assert!(r.stdout.contains("\"keep\" [label=\"keep\\nfilter\\nx4\"];"), "{}", r.stdout);
}

/// `${VAR}` is the file's: a `--set` value is taken as given (the shell expanded it already).
#[test]
fn set_values_are_not_expanded() {
    let s = Scratch::new();
    let file = s.write("t.toml", "[nodes.a]\ncommand = [\"./a.sh\"]\n");
    let r = procnet_with(&["check"], &file, &["nodes.a.command=[\"./a.sh\", \"${HOME}\"]"]);
    r.expect_code(0);
    assert!(r.stdout.contains("/a.sh ${HOME}\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("variables:"), "{}", r.stdout);
}

/// A bad value is a bad topology (78) on every command, and the message names the flag.
#[test]
fn a_bad_value_names_its_flag() {
    let (_s, file) = pipeline();
    for command in [&["check"][..], &["run"], &["graph"], &["export", "k8s"]] {
        let r = procnet_with(command, &file, &["nodes.keep.replicas=x"]);
        r.expect_code(78);
        assert_eq!(r.stdout, "", "{command:?}");
        assert!(
            r.stderr.starts_with(
                "error: `replicas` in node `keep` must be an integer, found string\n  --> --set nodes.keep.replicas=x\n"
            ),
            "{command:?}: {}",
            r.stderr
        );
        let r = procnet_with(command, &file, &["nodes.kep.replicas=2"]);
        r.expect_code(78);
        assert!(r.stderr.contains("error: the topology declares no node `kep`\n"), "{}", r.stderr);
        assert!(r.stderr.contains("help: did you mean `keep`?"), "{}", r.stderr);
    }
}

/// A flag that is not PATH=VALUE is a usage error (2), before anything is read.
#[test]
fn a_malformed_flag_is_a_usage_error() {
    let (_s, file) = pipeline();
    for command in [&["check"][..], &["run"], &["graph"], &["export", "k8s"]] {
        for bad in ["replicas", "=4", "nodes..keep=1", "nodes.keep replicas=1"] {
            let r = procnet_with(command, &file, &[bad]);
            r.expect_code(2);
            assert!(r.stderr.contains("'--set <PATH=VALUE>'"), "{command:?} {bad}: {}", r.stderr);
        }
    }
}

/// An experiment's report says which overrides its runs had: JSON and CSV.
#[test]
fn a_report_records_the_overrides() {
    let (s, file) = pipeline();
    let json = s.path("r.json");
    let csv = s.path("r.csv");
    let set = ["nodes.keep.replicas=2", "defaults.transport=tcp"];
    for report in [&json, &csv] {
        let report = report.to_str().expect("UTF-8");
        procnet_with(&["run", "--repeat", "2", "--report", report], &file, &set).expect_code(0);
    }
    let report = read_json(&json);
    assert_eq!(report["overrides"], serde_json::json!(set));
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert_eq!(run["overrides"], serde_json::json!(set));
        let keep = run["nodes"].as_array().expect("nodes").iter().find(|n| n["node"] == "keep").expect("keep");
        assert_eq!(keep["replicas"], 2);
    }
    let text = std::fs::read_to_string(&csv).expect("the CSV report");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("run,node,replicas,received,sent,elapsed_s,startup_s,records_per_s,overrides,result")
    );
    let column = r#","[""nodes.keep.replicas=2"",""defaults.transport=tcp""]","#;
    assert!(lines.clone().count() == 6 && lines.all(|l| l.contains(column)), "{text}");
    // Without overrides, an empty list.
    procnet_with(&["run", "--report", json.to_str().expect("UTF-8")], &file, &[]).expect_code(0);
    assert_eq!(read_json(&json)["overrides"], serde_json::json!([]));
}
