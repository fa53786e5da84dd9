//! One topology over several hosts: `[hosts]`, `host`, and `procnet run --local`, which runs
//! every host's nodes on this machine with the edges between hosts over tcp.

use std::path::Path;

use crate::util::{self, free_port, procnet, read_json, root, Run, Running};

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
    assert!(
        r.stderr.contains("topology `cluster` spans hosts `a`, `b`, `c`: run `procnet run")
            && r.stderr.contains("--host NAME` on each host, or `--local`"),
        "{}",
        r.stderr
    );
    let r = procnet(["run".as_ref(), "--host".as_ref(), "d".as_ref(), topology("cluster.toml").as_os_str()]).run();
    r.expect_code(2);
    assert!(r.stderr.contains("`--host d`: topology `cluster` declares hosts `a`, `b`, `c` only"), "{}", r.stderr);
    // Over several hosts, only the run's launchers may know its secret: they are given it.
    let r = procnet(["run".as_ref(), "--host".as_ref(), "b".as_ref(), topology("cluster.toml").as_os_str()])
        .env("PROCNET_SECRET", "")
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("set PROCNET_SECRET to the same value for the launcher on every host"), "{}", r.stderr);
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
    assert_eq!(
        lines.next(),
        Some("run,node,replicas,received,sent,elapsed_s,startup_s,records_per_s,overrides,result")
    );
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
    let report = read_json(&json);
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
            util::rogue()
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

/// Three hosts on one machine: 127.0.0.1, .2 and .3 are all loopback addresses, so three
/// launchers (`--host a`, `b`, `c`) make a real run over several hosts without root. The
/// job is `topologies/cluster.toml`'s, reading `source` (a file or a FIFO).
fn loopback_cluster(s: &util::Scratch, source: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(topology("cluster.toml")).expect("cluster.toml");
    let text = text.replace("10.77.0.", "127.0.0.").replace("data/pages.jsonl", &source.display().to_string());
    s.write("cluster.toml", &text)
}

/// `procnet run FILE --host NAME --control-port PORT`, with a deadline.
fn launcher(file: &std::path::Path, host: &str, port: u16, extra: &[&str]) -> util::Procnet {
    let mut args: Vec<std::ffi::OsString> =
        vec!["run".into(), file.into(), "--host".into(), host.into(), "--control-port".into(), port.to_string().into()];
    args.extend(extra.iter().map(Into::into));
    // Every launcher of a run over several hosts is given the run's secret.
    procnet(args).timeout(std::time::Duration::from_secs(60)).env("PROCNET_SECRET", format!("secret-of-{port}"))
}

/// The launchers of hosts a, b and c (the coordinator, a, last: the others wait for it, as
/// they would on their machines), each with `all`, and a with `coordinator` too.
fn start_three(file: &Path, port: u16, all: &[&str], coordinator: &[&str]) -> (Running, Running, Running) {
    let c = launcher(file, "c", port, all).start();
    let b = launcher(file, "b", port, all).start();
    let a = launcher(file, "a", port, &[all, coordinator].concat()).start();
    (a, b, c)
}

/// Wait for the three launchers, each of which must exit 0.
fn finish_three((a, b, c): (Running, Running, Running)) -> (Run, Run, Run) {
    let (a, b, c) = (a.finish(), b.finish(), c.finish());
    for (r, host) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        assert_eq!(r.code(), 0, "host {host}:\n{}", r.stderr);
    }
    (a, b, c)
}

/// Until hosts b and c say they joined the coordinator.
fn wait_joined(b: &Running, c: &Running) {
    for (r, host) in [(b, "b"), (c, "c")] {
        r.wait_until("the host joins", || r.stderr_so_far().contains(&format!("host `{host}` joined the run")));
    }
}

/// The tally of `topologies/cluster.toml` run on this machine (`--local`).
fn local_tally() -> serde_json::Value {
    let local = procnet(["run".as_ref(), "--local".as_ref(), topology("cluster.toml").as_os_str()]).run();
    local.expect_code(0);
    local.json()
}

/// The environment of replica 0 of an external node, from the coordinator's `--endpoints`.
fn external_env(endpoints: &Path) -> serde_json::Map<String, serde_json::Value> {
    let doc = read_json(endpoints);
    doc["replicas"][0]["env"].as_object().expect("the replica's environment").clone()
}

/// The Python filter node started by hand with `env`, keeping records whose `field`
/// contains `text`.
fn py_filter(env: &serde_json::Map<String, serde_json::Value>, field: &str, text: &str) -> util::Procnet {
    let filter = root().join("bin/py_filter.py").display().to_string();
    let args = [filter.as_str(), "--field", field, "--contains", text];
    let mut node = util::program(util::venv_bin().join("python3"), args).timeout(std::time::Duration::from_secs(60));
    for (k, v) in env {
        node = node.env(k, v.as_str().expect("a string"));
    }
    node
}

#[test]
fn three_launchers_on_three_hosts_give_the_one_host_tally() {
    let s = util::Scratch::new();
    let file = loopback_cluster(&s, &topology("data/pages.jsonl"));
    let report = s.path("report.json");
    let port = free_port();
    let (a, b, c) = finish_three(start_three(&file, port, &[], &["--report", report.to_str().expect("utf-8")]));
    let one_host = procnet(["run".as_ref(), topology("pages.toml").as_os_str()]).run();
    one_host.expect_code(0);
    // The tally runs on c: its line comes out of c's launcher.
    assert_eq!(c.json(), one_host.json(), "the same job over three launchers must count the same");
    assert!(a.stdout.is_empty() && b.stdout.is_empty(), "a: {}\nb: {}", a.stdout, b.stdout);
    assert!(b.stderr.contains("host `b` joined the run coordinated by host `a`"), "{}", b.stderr);
    // The coordinator's report spans the hosts: every replica, and the tally's result.
    let report = read_json(&report);
    let nodes = report["nodes"].as_array().expect("nodes");
    let python = nodes.iter().find(|n| n["node"] == "python").expect("the filter");
    assert_eq!(python["replicas"], 4);
    assert_eq!(python["received"], 400, "every line went through the four replicas on b and c");
    let count = nodes.iter().find(|n| n["node"] == "count").expect("the tally");
    assert_eq!(count["result"], one_host.json());
}

#[test]
fn a_host_whose_launcher_never_comes_is_named() {
    let s = util::Scratch::new();
    let file = loopback_cluster(&s, &topology("data/pages.jsonl"));
    let port = free_port();
    let c = launcher(&file, "c", port, &["--startup-timeout", "2"]).start();
    let a = launcher(&file, "a", port, &["--startup-timeout", "2"]).run();
    let c = c.finish();
    a.expect_code(1);
    assert!(a.stderr.contains("host `b`: its launcher did not join within 2 s"), "{}", a.stderr);
    // c hears it from the coordinator, and exits with the run's status.
    c.expect_code(1);
    assert!(
        c.stderr.contains("the run failed (reported by host `a`): host `b`: its launcher did not join"),
        "{}",
        c.stderr
    );
}

#[test]
fn a_joining_host_without_its_coordinator_gives_up_naming_it() {
    let s = util::Scratch::new();
    let file = loopback_cluster(&s, &topology("data/pages.jsonl"));
    let b = launcher(&file, "b", free_port(), &["--startup-timeout", "2"]).run();
    b.expect_code(1);
    assert!(b.stderr.contains("host `a`: the coordinator did not answer within 2 s"), "{}", b.stderr);
}

/// Host failure: SIGKILL one host's launcher mid-run. Its nodes die with it (their death
/// signal); the coordinator notices the silence within the heartbeat timeout, fails the
/// run naming the host, and ends the other host's launcher, which kills its nodes. No
/// process of the run is left on any host (`finish` checks each launcher's processes).
#[test]
fn killing_one_hosts_launcher_stops_every_other_naming_it() {
    use std::io::Write;
    let s = util::Scratch::new();
    let fifo = s.path("in.fifo");
    util::mkfifo(&fifo);
    let file = loopback_cluster(&s, &fifo);
    let port = free_port();
    let (a, b, c) = start_three(&file, port, &[], &[]);
    // The run is under way once both other hosts joined the coordinator, and the source
    // (on a) has opened its FIFO.
    wait_joined(&b, &c);
    let mut w = a.fifo_writer(&fifo);
    let line = r#"{"url": "http://site-1.example/", "body": "python"}"#;
    for _ in 0..50 {
        writeln!(w, "{line}").expect("write a record");
    }
    w.flush().expect("flush");
    b.signal(libc::SIGKILL);
    let killed_at = std::time::Instant::now();
    let (a, c) = (a.finish(), c.finish());
    let took = killed_at.elapsed();
    drop(w);
    b.finish();
    a.expect_code(1);
    c.expect_code(1);
    assert!(a.stderr.contains("host `b`: its launcher at 127.0.0.2 stopped answering"), "{}", a.stderr);
    assert!(c.stderr.contains("reported by host `a`): host `b`"), "{}", c.stderr);
    assert!(took < std::time::Duration::from_secs(30), "the others must stop within the heartbeat timeout: {took:?}");
}

/// A process cannot be forked onto another machine: `fork` applies per host, and `check`
/// says so where it matters, as it does for restarts of one replica alone (at most once),
/// which only the coordinator makes; a rollback (exactly once) restarts every host's.
#[test]
fn fork_and_restart_over_several_hosts_are_explained() {
    let s = util::Scratch::new();
    let file = s.write(
        "t.toml",
        r#"
        delivery = "at-most-once"
        [hosts.a]
        address = "10.77.0.1"
        [hosts.b]
        address = "10.77.0.2"
        [nodes.src]
        kind = "lines"
        path = "t.toml"
        host = "a"
        [nodes.keep]
        kind = "filter"
        inputs = ["src"]
        field = "line"
        contains = "x"
        replicas = 2
        host = ["a", "b"]
        start = "fork"
        restart = "on-failure"
        [nodes.count]
        kind = "tally"
        inputs = ["keep"]
        host = "a"
        "#,
    );
    let r = procnet(["check".as_ref(), file.as_os_str()]).run();
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("node `keep` uses `start = \"fork\"` on 2 hosts: each host's launcher forks its own replicas"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("only the coordinating launcher (host `a`) restarts replicas: on `b` a failure fails the run"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("t.toml:"), "warnings carry file:line:column: {}", r.stderr);
    let text = std::fs::read_to_string(&file).expect("t.toml").replace("delivery = \"at-most-once\"", "");
    let exactly_once = procnet(["check".as_ref(), s.write("t.toml", &text).as_os_str()]).run();
    exactly_once.expect_code(0);
    assert!(!exactly_once.stderr.contains("restarts replicas"), "{}", exactly_once.stderr);
}

/// Ctrl-C on any host stops the whole run gracefully: the host's launcher passes the signal
/// to the coordinator, which stops every node as on one machine, then ends every launcher
/// with the run's status.
#[test]
fn ctrl_c_on_one_host_stops_the_run_on_every_host() {
    let s = util::Scratch::new();
    let fifo = s.path("in.fifo");
    util::mkfifo(&fifo);
    let file = loopback_cluster(&s, &fifo);
    let port = free_port();
    let (a, b, c) = start_three(&file, port, &[], &[]);
    wait_joined(&b, &c);
    let _writer = a.fifo_writer(&fifo);
    // Every node of b and c is up. (Whether the signal lands before or after the start
    // barrier, every launcher ends with the interrupt's status.)
    a.wait_until("every node is up", || util::tagged_pids(&b.tag).len() + util::tagged_pids(&c.tag).len() >= 2 + 5);
    c.signal(libc::SIGINT);
    let (a, b, c) = (a.finish(), b.finish(), c.finish());
    for (r, host) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        assert_eq!(r.code(), 130, "host {host}:\n{}", r.stderr);
    }
    assert!(c.stderr.contains("SIGINT: asking the coordinator (host `a`) to stop the run"), "{}", c.stderr);
    assert!(a.stderr.contains("host `c` got SIGINT"), "{}", a.stderr);
    assert!(b.stderr.contains("reported by host `a`): interrupted by SIGINT"), "{}", b.stderr);
}

/// Start methods apply per host: the filter's replicas on b and c are forked by their own
/// host's launcher, the tally on c comes from c's fork server.
#[test]
fn fork_and_forkserver_work_on_every_host() {
    let s = util::Scratch::new();
    let file = loopback_cluster(&s, &topology("data/pages.jsonl"));
    let text = std::fs::read_to_string(&file).expect("the topology");
    let text = text
        .replace("ignore_case = true", "ignore_case = true\nstart = \"fork\"")
        .replace("by = \"host\"", "by = \"host\"\nstart = \"forkserver\"");
    assert!(text.contains("start = \"fork\"") && text.contains("start = \"forkserver\""), "{text}");
    std::fs::write(&file, text).expect("write the topology");
    let port = free_port();
    let (_, _, c) = finish_three(start_three(&file, port, &[], &[]));
    assert_eq!(c.json(), local_tally());
}

/// An experiment over hosts: every launcher is given the same `--repeat K`, and the
/// coordinator's report has every run.
#[test]
fn repeated_runs_span_the_hosts() {
    let s = util::Scratch::new();
    let file = loopback_cluster(&s, &topology("data/pages.jsonl"));
    let csv = s.path("runs.csv");
    let port = free_port();
    let (a, b, c) =
        finish_three(start_three(&file, port, &["--repeat", "3"], &["--report", csv.to_str().expect("utf-8")]));
    for (r, host) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        assert_eq!(r.stderr.matches("procnet: run ").count(), 3, "host {host}:\n{}", r.stderr);
    }
    let tallies: Vec<&str> = c.stdout.lines().filter(|l| l.starts_with("count.0")).collect();
    assert_eq!(tallies.len(), 3, "{}", c.stdout);
    assert!(tallies.iter().all(|t| *t == tallies[0]), "every run counts the same: {tallies:?}");
    let text = std::fs::read_to_string(&csv).expect("the CSV report");
    assert_eq!(text.lines().filter(|l| l.contains(",count,")).count(), 3, "{text}");
}

/// The coordinator's metrics span the hosts: every replica with its host, equal to the
/// report at the end; a joining host given `--metrics` says the coordinator serves them.
#[test]
fn metrics_of_a_run_over_three_hosts_are_the_coordinators() {
    let s = util::Scratch::new();
    let file = loopback_cluster(&s, &topology("data/pages.jsonl"));
    let (prom, report) = (s.path("procnet.prom"), s.path("report.json"));
    let port = free_port();
    let coordinator = ["--metrics-file", prom.to_str().expect("utf-8"), "--report", report.to_str().expect("utf-8")];
    // Only b is given `--metrics` too (the coordinator, a, last, as `start_three` does).
    let c = launcher(&file, "c", port, &["--repeat", "2"]).start();
    let b = launcher(&file, "b", port, &["--repeat", "2", "--metrics", "0"]).start();
    let a = launcher(&file, "a", port, &[&["--repeat", "2"][..], &coordinator].concat()).start();
    let (a, b, _) = finish_three((a, b, c));
    assert!(b.stderr.contains("the metrics are served and written by the coordinator (`--host a`)"), "{}", b.stderr);
    assert!(!a.stderr.contains("serving metrics"), "{}", a.stderr);
    let end = util::prometheus::parse(&s, &std::fs::read_to_string(&prom).expect("the metrics file"));
    let report = read_json(&report);
    for run in [1, 2] {
        end.assert_equals_report(run, &report["runs"][run as usize - 1]);
    }
    let mut placed: Vec<String> = end
        .samples("procnet_records_in")
        .iter()
        .filter(|(l, _)| l["run"] == "1")
        .map(|(l, _)| format!("{}@{}", l["node"].as_str().unwrap_or_default(), l["host"].as_str().unwrap_or_default()))
        .collect();
    placed.sort();
    let want = ["count@c", "pages@a", "python@b", "python@b", "python@c", "python@c"];
    assert_eq!(placed, want, "every replica of every host, with its host:\n{}", end.text);
}

/// `bind = "0.0.0.0"` (a host behind NAT, whose declared address is not its own): its
/// nodes bind every interface, and peers are still given the declared address.
#[test]
fn a_host_may_bind_every_interface_and_still_be_reached_at_its_address() {
    let s = util::Scratch::new();
    let file = loopback_cluster(&s, &topology("data/pages.jsonl"));
    let text = std::fs::read_to_string(&file).expect("the topology");
    let text = text.replace("address = \"127.0.0.3\"", "address = \"127.0.0.3\"\nbind = \"0.0.0.0\"");
    assert!(text.contains("bind = \"0.0.0.0\""), "{text}");
    std::fs::write(&file, text).expect("write the topology");
    let check = procnet(["check".as_ref(), file.as_os_str()]).run();
    check.expect_code(0);
    assert!(check.stdout.contains("c  127.0.0.3 (binds 0.0.0.0)  nodes:"), "{}", check.stdout);
    let port = free_port();
    let (_, _, c) = finish_three(start_three(&file, port, &[], &[]));
    assert_eq!(c.json(), local_tally());
}

/// An external node placed on another host than the coordinator's: it is told to reach the
/// coordinator over tcp and to bind on its host's address, and its pid (of another machine)
/// is not watched: it is done when released.
#[test]
fn an_external_node_on_another_host_joins_over_tcp() {
    let s = util::Scratch::new();
    let file = s.write(
        "t.toml",
        &format!(
            r#"
            [hosts.a]
            address = "127.0.0.1"
            [hosts.b]
            address = "127.0.0.2"
            [nodes.src]
            kind = "lines"
            path = "{}"
            format = "jsonl"
            host = "a"
            [nodes.ext]
            external = true
            inputs = ["src"]
            host = "b"
            [nodes.count]
            kind = "tally"
            inputs = ["ext"]
            host = "a"
            "#,
            topology("data/pages.jsonl").display()
        ),
    );
    let endpoints = s.path("endpoints.json");
    let port = free_port();
    let a = launcher(&file, "a", port, &["--endpoints", endpoints.to_str().expect("utf-8")]).start();
    let b = launcher(&file, "b", port, &[]).start();
    a.wait_until("the endpoints file", || endpoints.exists());
    let env = external_env(&endpoints);
    assert_eq!(env["PROCNET_CONTROL"], format!("tcp://127.0.0.1:{port}"), "{env:?}");
    assert_eq!(env["PROCNET_BIND"], "tcp://127.0.0.2:*", "{env:?}");
    let node = py_filter(&env, "body", "python").run();
    node.expect_code(0);
    let (a, b) = (a.finish(), b.finish());
    a.expect_code(0);
    b.expect_code(0);
    assert!(b.stderr.contains("host `b` joined the run"), "{}", b.stderr);
    let one_host = procnet(["run".as_ref(), topology("pages.toml").as_os_str()]).run();
    assert_eq!(a.json()["count"], one_host.json()["count"], "the Python filter counts what the built-in one does");
}

/// An external node on another host that dies mid-run fails the run, named: its host's
/// launcher watches its pid for the coordinator. Never a hang.
#[test]
fn an_external_node_dying_on_another_host_fails_the_run() {
    let s = util::Scratch::new();
    let fifo = s.path("in.fifo");
    util::mkfifo(&fifo);
    let file = s.write(
        "t.toml",
        &format!(
            r#"
            [hosts.a]
            address = "127.0.0.1"
            [hosts.b]
            address = "127.0.0.2"
            [nodes.src]
            kind = "lines"
            path = "{}"
            host = "a"
            [nodes.ext]
            external = true
            inputs = ["src"]
            host = "b"
            [nodes.count]
            kind = "tally"
            inputs = ["ext"]
            host = "a"
            "#,
            fifo.display()
        ),
    );
    let endpoints = s.path("endpoints.json");
    let port = free_port();
    let a = launcher(&file, "a", port, &["--endpoints", endpoints.to_str().expect("utf-8"), "--startup-timeout", "10"])
        .start();
    let b = launcher(&file, "b", port, &[]).start();
    a.wait_until("the endpoints file", || endpoints.exists());
    let node = py_filter(&external_env(&endpoints), "line", "x").start();
    // The run holds while the FIFO stays open: the source opened it, the node is up.
    let writer = a.fifo_writer(&fifo);
    node.wait_until("the external node is up", || !util::tagged_pids(&node.tag).is_empty());
    node.signal(libc::SIGKILL);
    node.finish();
    let (a, b) = (a.finish(), b.finish());
    drop(writer);
    a.expect_code(1);
    b.expect_code(1);
    assert!(a.stderr.contains("node `ext.0` failed"), "the run must name the dead external node:\n{}", a.stderr);
}

/// IPv6 hosts: every socket of the run, the launchers' and the nodes', speaks IPv6 (ZeroMQ
/// leaves it off by default). Three hosts on ::1.
#[test]
fn hosts_with_ipv6_addresses_run_the_job() {
    let s = util::Scratch::new();
    let file = loopback_cluster(&s, &topology("data/pages.jsonl"));
    let text = std::fs::read_to_string(&file).expect("the topology");
    let text = text
        .replace("\"127.0.0.1\"", "\"::1\"")
        .replace("\"127.0.0.2\"", "\"::1\"")
        .replace("\"127.0.0.3\"", "\"::1\"");
    assert_eq!(text.matches("\"::1\"").count(), 3, "{text}");
    std::fs::write(&file, text).expect("write the topology");
    let port = free_port();
    let (_, b, c) = finish_three(start_three(&file, port, &[], &[]));
    assert!(b.stderr.contains("coordinated by host `a` (tcp://[::1]:"), "{}", b.stderr);
    assert_eq!(c.json(), local_tally());
}
