//! One topology over several hosts: `[hosts]`, `host`, and `procnet run --local`, which runs
//! every host's nodes on this machine with the edges between hosts over tcp.

mod util;

use util::{procnet, root};

fn topology(name: &str) -> std::path::PathBuf {
    root().join("topologies").join(name)
}

#[test]
fn a_cluster_topology_run_locally_gives_the_one_host_tally() {
    let one_host = procnet(["run".as_ref(), topology("pages.toml").as_os_str()]).run();
    one_host.expect_code(0);
    let local = procnet(["run".as_ref(), "--local".as_ref(), topology("cluster.toml").as_os_str()]).run();
    local.expect_code(0);
    assert_eq!(local.json(), one_host.json(), "the same job, placed on three hosts, must count the same");
    assert!(local.json()["count"].as_u64().is_some_and(|n| n > 0));
}

#[test]
fn edges_between_hosts_are_tcp_on_the_declared_addresses() {
    let r = procnet(["check".as_ref(), topology("cluster.toml").as_os_str()]).run();
    r.expect_code(0);
    assert!(r.stdout.contains("a  10.77.0.1  nodes: pages.{0}"), "{}", r.stdout);
    assert!(r.stdout.contains("b  10.77.0.2  nodes: python.{0,2}"), "{}", r.stdout);
    assert!(r.stdout.contains("c  10.77.0.3  nodes: python.{1,3}, count.{0}"), "{}", r.stdout);
    assert!(
        r.stdout.contains("pages.out -> python  PUSH x1 -> PULL x4 (load-balanced)  tcp://10.77.0.2|10.77.0.3:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("python.out -> count  PUSH x4 -> PULL x1 (load-balanced)  tcp://10.77.0.3:"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_cluster_topology_is_not_run_without_saying_where() {
    let r = procnet(["run".as_ref(), topology("cluster.toml").as_os_str()]).run();
    r.expect_code(2);
    assert!(r.stdout.is_empty(), "nothing may start: {}", r.stdout);
    assert!(r.stderr.contains("topology `cluster` spans hosts `a`, `b`, `c`: run it with `--local`"), "{}", r.stderr);
}

/// Experiments: `--repeat K` runs the topology K times; the report (CSV or JSON by the file's
/// extension) has each run's wall time, each node's throughput and the tally.
#[test]
fn repeated_runs_are_reported_per_run_and_node_in_csv_and_json() {
    let s = util::Scratch::new();
    let csv = s.path("runs.csv");
    let r = procnet([
        "run".as_ref(),
        "--repeat".as_ref(),
        "3".as_ref(),
        "--report".as_ref(),
        csv.as_os_str(),
        topology("pages.toml").as_os_str(),
    ])
    .run();
    r.expect_code(0);
    assert_eq!(r.stderr.matches("procnet: run ").count(), 3, "{}", r.stderr);
    let text = std::fs::read_to_string(&csv).expect("the CSV report");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("run,node,replicas,received,sent,elapsed_s,startup_s,records_per_s,result"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 9, "3 runs x 3 nodes:\n{text}");
    let tally = r.lines().last().map(|l| l.to_string()).expect("the tally's line");
    for run in 1..=3 {
        let mine: Vec<&&str> = rows.iter().filter(|l| l.starts_with(&format!("{run},"))).collect();
        assert_eq!(mine.len(), 3, "{text}");
        let count = mine.iter().find(|l| l.starts_with(&format!("{run},count,"))).expect("the tally's row");
        // The result column: the tally's JSON, quoted with its quotes doubled.
        let quoted = format!("\"{}\"", tally.replace('"', "\"\""));
        assert!(count.ends_with(&quoted), "{count} should end with {quoted}");
        let fields: Vec<&str> = count.splitn(9, ',').collect();
        assert!(fields[5].parse::<f64>().is_ok_and(|s| s > 0.0), "elapsed_s: {count}");
        assert!(fields[7].parse::<f64>().is_ok_and(|x| x > 0.0), "records_per_s: {count}");
    }

    let json = s.path("runs.json");
    let r = procnet([
        "run".as_ref(),
        "--repeat".as_ref(),
        "2".as_ref(),
        "--report".as_ref(),
        json.as_os_str(),
        topology("pages.toml").as_os_str(),
    ])
    .run();
    r.expect_code(0);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for run in runs {
        let count = run["nodes"].as_array().expect("nodes").iter().find(|n| n["node"] == "count").expect("count");
        assert_eq!(count["result"], r.json(), "the report's tally is the tally printed");
        assert!(run["elapsed_s"].as_f64().is_some_and(|s| s > 0.0));
    }
}

#[test]
fn a_repeated_experiment_stops_at_the_first_failed_run() {
    let s = util::Scratch::new();
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "no-such-file.txt"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        "#,
    );
    let r = procnet(["run".as_ref(), "--repeat".as_ref(), "3".as_ref(), file.as_os_str()]).run();
    r.expect_code(1);
    assert_eq!(r.stderr.matches("procnet: run ").count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("node `src.0` failed"), "{}", r.stderr);
}

/// Only declared hosts get in: with `[hosts]`, a node's tcp sockets refuse any other address
/// (ZAP), and the run goes on undisturbed. Under `--local` the one allowed address is
/// 127.0.0.1, so the rogue source knocks from 127.0.0.2 (also loopback) before sending its
/// records the right way. The consumer is Rust, then Python.
/// `names_refused`: the consumer replica that says on stderr whom it refused (the Rust node
/// does; pyzmq's authenticator only logs).
fn intruder_is_refused(consumer: &str, path: Option<String>, names_refused: Option<&str>) {
    let s = util::Scratch::new();
    let file = s.write(
        "t.toml",
        &format!(
            r#"
            [hosts.a]
            address = "10.77.0.1"
            [hosts.b]
            address = "10.77.0.2"
            [nodes.intruder]
            command = ["{}", "intruder", "100"]
            host = "a"
            [nodes.keep]
            {consumer}
            inputs = ["intruder"]
            host = "b"
            [nodes.count]
            kind = "tally"
            inputs = ["keep"]
            host = "b"
            "#,
            util::rogue().display()
        ),
    );
    let mut cmd = procnet(["run".as_ref(), "--local".as_ref(), file.as_os_str()]);
    if let Some(path) = path {
        cmd = cmd.env("PATH", path);
    }
    let r = cmd.run();
    r.expect_code(0);
    assert!(r.stderr.contains("intruder: refused"), "the handshake from 127.0.0.2 must fail:\n{}", r.stderr);
    assert_eq!(r.json(), serde_json::json!({"count": 100}), "the intruder's record must not get in");
    if let Some(id) = names_refused {
        assert!(r.stderr.contains(&format!("{id}: refused a connection from 127.0.0.2")), "{}", r.stderr);
    }
}

#[test]
fn a_connection_from_an_undeclared_address_is_refused_by_a_rust_node() {
    intruder_is_refused(
        r#"kind = "filter"
            field = "id"
            regex = "^i""#,
        None,
        Some("keep.0"),
    );
}

#[test]
fn a_connection_from_an_undeclared_address_is_refused_by_a_python_node() {
    let filter = root().join("bin/py_filter.py");
    intruder_is_refused(
        &format!(r#"command = ["python3", "{}", "--field", "id", "--contains", "i"]"#, filter.display()),
        Some(util::path_with_venv()),
        None,
    );
}

#[test]
fn the_graph_draws_each_host_as_a_box_around_its_nodes() {
    let r = procnet(["graph".as_ref(), topology("cluster.toml").as_os_str()]).run();
    r.expect_code(0);
    assert!(
        r.stdout.contains("subgraph \"cluster_a\" {\n    label=\"a (10.77.0.1)\";\n    \"pages\";\n  }"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("subgraph \"cluster_c\" {\n    label=\"c (10.77.0.3)\";\n    \"count\";\n  }"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\"python\" [label=\"python\\nfilter\\nx4 on b, c\"];"), "{}", r.stdout);
}
