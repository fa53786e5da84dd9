//! Python nodes in the same network as Rust ones, through the real binary and real Python
//! processes (the `procnet` package in python/, installed in target/venv by `make venv`, which
//! `make test` runs first): topologies/mixed.toml, a Python node in place of a built-in one,
//! and an external Python process started by hand.

mod util;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use util::{path_with_venv, procnet, root, venv_bin, Scratch};

/// Pages of topologies/data/pages.jsonl mentioning "python" in any case, per host.
fn python_pages_per_host() -> BTreeMap<String, u64> {
    let pages = std::fs::read_to_string(root().join("topologies/data/pages.jsonl")).expect("pages data");
    let mut want = BTreeMap::new();
    for line in pages.lines() {
        let page: serde_json::Value = serde_json::from_str(line).expect("json");
        if page["body"].as_str().expect("body").to_lowercase().contains("python") {
            *want.entry(page["host"].as_str().expect("host").to_string()).or_default() += 1;
        }
    }
    want
}

fn tally_of(line: &serde_json::Value) -> BTreeMap<String, u64> {
    serde_json::from_value(line["by"].clone()).expect("a tally by host")
}

/// topologies/mixed.toml: a Rust source, a replicated Python filter, a Rust tally, and a
/// Python monitor subscribed to the tally's progress port. Exact, and the monitor's last
/// progress record is the result.
#[test]
fn mixed_topology_counts_exactly() {
    let r =
        procnet(["run", "topologies/mixed.toml"]).env("PATH", path_with_venv()).timeout(Duration::from_secs(60)).run();
    r.expect_code(0);
    let want = python_pages_per_host();
    let count: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("count.0 | "))
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(count.len(), 1, "{}", r.stdout);
    assert_eq!(tally_of(&count[0]), want);
    assert_eq!(count[0]["count"], want.values().sum::<u64>());
    let watched: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("watch.0 ")).collect();
    let last = watched.last().unwrap_or_else(|| panic!("the monitor printed nothing:\n{}", r.stdout));
    assert!(
        last.contains(&format!("\"count\": {}", want.values().sum::<u64>()))
            || last.contains(&format!("\"count\":{}", want.values().sum::<u64>())),
        "{last}"
    );
}

/// The same pipeline with the built-in filter and with the Python one: the same result.
#[test]
fn a_python_node_and_a_rust_node_are_interchangeable() {
    let s = Scratch::new();
    let pages = root().join("topologies/data/pages.jsonl");
    let filter = root().join("bin/py_filter.py");
    let topology = |keep: &str| {
        format!(
            r#"
            [nodes.pages]
            kind = "lines"
            path = "{}"
            format = "jsonl"
            [nodes.keep]
            {keep}
            inputs = ["pages"]
            replicas = 3
            [nodes.count]
            kind = "tally"
            inputs = ["keep"]
            by = "host"
            "#,
            pages.display()
        )
    };
    let rust = topology(
        r#"kind = "filter"
            field = "body"
            contains = "python"
            ignore_case = true"#,
    );
    let python = topology(&format!(
        r#"command = ["python3", "{}", "--field", "body", "--contains", "python"]"#,
        filter.display()
    ));
    let mut results = Vec::new();
    for (name, text) in [("rust", rust), ("python", python)] {
        let file = s.write(&format!("{name}.toml"), &text);
        let r = procnet(["run".as_ref(), file.as_os_str()])
            .env("PATH", path_with_venv())
            .timeout(Duration::from_secs(60))
            .run();
        r.expect_code(0);
        results.push(tally_of(&r.json()));
    }
    assert_eq!(results[0], python_pages_per_host());
    assert_eq!(results[1], results[0], "the Python filter and the built-in one disagree");
}

/// An external node: `procnet run` waits and writes what each replica needs; two Python
/// processes started by hand with that environment join, and the tally is exact.
#[test]
fn an_external_python_process_joins_by_hand_and_the_tally_is_exact() {
    let s = Scratch::new();
    let lines: String = (0..5000)
        .map(|i| format!("{{\"id\":{i},\"body\":\"{}\"}}\n", if i % 5 == 0 { "Python" } else { "Rust" }))
        .collect();
    s.write("in.jsonl", &lines);
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.ext]
        external = true
        inputs = ["src"]
        replicas = 2
        [nodes.count]
        kind = "tally"
        inputs = ["ext"]
        "#,
    );
    let endpoints = s.path("endpoints.json");
    let running = procnet(["run".as_ref(), file.as_os_str(), "--endpoints".as_ref(), endpoints.as_os_str()])
        .timeout(Duration::from_secs(60))
        .start();
    running.wait_until("the endpoints file", || endpoints.exists());
    assert!(running.stderr_so_far().contains("waiting for external node `ext.1`"), "{}", running.stderr_so_far());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&endpoints).expect("read")).expect("json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut children = Vec::new();
    for replica in doc["replicas"].as_array().expect("replicas") {
        let mut cmd = Command::new(venv_bin().join("python3"));
        cmd.arg(root().join("bin/py_filter.py")).args(["--field", "body", "--contains", "python"]);
        for (k, v) in replica["env"].as_object().expect("env") {
            cmd.env(k, v.as_str().expect("a string"));
        }
        // The harness's tag, so that its check for processes left behind covers these too.
        cmd.env(util::TAG_VAR, &running.tag);
        children.push(cmd.spawn().expect("start the Python node"));
    }
    for mut c in children {
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                assert!(status.success(), "the external Python node failed: {status}");
                break;
            }
            assert!(Instant::now() < deadline, "the external node did not finish");
            std::thread::yield_now();
        }
    }
    let r = running.finish();
    r.expect_code(0);
    assert_eq!(r.json()["count"], 1000);
}
