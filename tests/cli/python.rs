//! Python nodes in the same network as Rust ones, through the real binary and real Python
//! processes (the `procnet` package in python/, installed in target/venv by `make venv`, which
//! `make test` runs first): topologies/mixed.toml, a Python node in place of a built-in one,
//! and an external Python process started by hand.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{self, path_with_venv, procnet, python_pages_per_host, read_json, root, venv_bin, Scratch};

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
    let doc = read_json(&endpoints);
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

/// The minimal node of docs/protocol.md §12, run as the document prints it: a node written from
/// the document alone must work against the real launcher, exactly.
#[test]
fn the_minimal_node_of_the_protocol_document_runs_exactly() {
    let doc = std::fs::read_to_string(root().join("docs/protocol.md")).expect("docs/protocol.md");
    let section = doc.split("## 12. A minimal node in Python").nth(1).expect("section 12");
    let code = section.split("```python\n").nth(1).and_then(|c| c.split("```").next()).expect("its code");
    let s = Scratch::new();
    s.write("passthrough.py", code);
    s.write("in.txt", &(0..5000).map(|i| format!("{i}\n")).collect::<String>());
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.txt"
        [nodes.py]
        command = ["python3", "passthrough.py"]
        inputs = ["src"]
        replicas = 2
        [nodes.count]
        kind = "tally"
        inputs = ["py"]
        by = "line"
        "#,
    );
    let r = procnet(["run".as_ref(), file.as_os_str()])
        .env("PATH", path_with_venv())
        .timeout(Duration::from_secs(60))
        .run();
    r.expect_code(0);
    let line = r.stdout.lines().find_map(|l| l.strip_prefix("count.0 | ")).expect("the tally");
    let tally: serde_json::Value = serde_json::from_str(line).expect("json");
    assert_eq!(tally["count"], 5000);
    assert_eq!(tally["by"].as_object().expect("by").len(), 5000, "each line once");
}

/// The JSON text of docs/protocol.md section 7 is the same in Rust and in the Python package,
/// float by float: topics and groups must not depend on the language of the node. Random bit
/// patterns (seed printed), plus the edges of the plain and exponent forms.
#[test]
fn rust_and_python_write_the_same_json_text_for_floats() {
    let seed = util::seed("PROCNET_FUZZ_SEED");
    eprintln!("json text of floats: seed {seed}");
    let mut dice = util::Dice::new(seed);
    let mut floats: Vec<f64> = (0..20_000).map(|_| f64::from_bits(dice.next())).collect();
    floats.extend((0..2_000).map(|i| dice.below(1000) as f64 * 10f64.powi(i % 40 - 20)));
    floats.extend([1e-5, 1e16, 9.999999999999998e15, 1e-4, 0.0, -0.0, 5e-324, f64::MAX, f64::NAN, f64::INFINITY]);
    let input: String = floats.iter().map(|f| format!("{:016x}\n", f.to_bits())).collect();
    let script = "import struct, sys\nfrom procnet.wire import text_of\nfor line in sys.stdin:\n    \
                  print(text_of(struct.unpack('>d', bytes.fromhex(line.strip()))[0]))\n";
    let mut child = Command::new(venv_bin().join("python3"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the virtualenv's python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
    let out = child.wait_with_output().expect("python's answers");
    writer.join().expect("writer").expect("write the floats");
    let python: Vec<String> = String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_string).collect();
    assert_eq!(python.len(), floats.len());
    for (f, p) in floats.iter().zip(&python) {
        let rust = procnet::record::text_of(&procnet::record::Value::F64(*f)).into_owned();
        assert_eq!(&rust, p, "{f:e} (bits {:016x}, seed {seed})", f.to_bits());
    }
}

/// topologies/polyglot.toml: Rust, a Python protocol node and a jq stage over stdio, exact.
#[test]
fn polyglot_topology_counts_exactly() {
    if std::process::Command::new("jq").arg("--version").output().is_err() {
        eprintln!("skipped: jq is not installed (`make test` installs it as root)");
        return;
    }
    let r = procnet(["run", "topologies/polyglot.toml"])
        .env("PATH", path_with_venv())
        .timeout(Duration::from_secs(60))
        .run();
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
}
