//! Exact or loud, against hostile and buggy peers: a forged or mistaken `eos` cannot end a
//! run with exit 0 and a wrong result (every edge's counts are checked at the end), only the
//! run's own processes get into its sockets, and outputs are whole or absent.

use std::time::Duration;

use crate::util::{self, procnet, rogue, run, Scratch};

// A buggy source replica ends its consumers' input early with an `eos` in another replica's
// name: it once exited 0 with a count of 0 instead of 50.
#[test]
fn an_eos_in_another_replicas_name_fails_the_run_instead_of_a_wrong_count() {
    for transport in ["ipc", "tcp"] {
        let s = Scratch::new();
        let r = run(
            &s,
            &format!(
                r#"
                [defaults]
                transport = "{transport}"
                [nodes.src]
                command = ["{}", "forge-eos", "25"]
                replicas = 2
                [nodes.keep]
                kind = "filter"
                inputs = ["src"]
                field = "id"
                regex = "."
                [nodes.count]
                kind = "tally"
                inputs = ["keep"]
                output = "count.json"
                "#,
                rogue()
            ),
        );
        assert_ne!(r.code(), 0, "{transport}: {}", r.stderr);
        assert!(
            r.stderr.contains("node `keep.0` failed") || r.stderr.contains("records lost on edge `src` -> `keep`"),
            "{transport}: {}",
            r.stderr
        );
        assert!(!s.path("count.json").exists(), "{transport}: a failed run wrote its result");
    }
}

/// Whether this test runs as root, and so may act as a second local user.
fn root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// Under umask 000 the run directory was 0777 and another local user injected frames, forged an
// `eos` and took over a replica's control identity. The directory is private now, its sockets
// too, and every tcp socket asks for the run's secret.
#[test]
fn only_the_runs_processes_get_in_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let fifo = s.path("in.fifo");
    util::mkfifo(&fifo);
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.fifo"
        [nodes.keep]
        kind = "filter"
        inputs = ["src"]
        replicas = 2
        transport = "tcp"
        field = "line"
        regex = "^7"
        [nodes.count]
        kind = "tally"
        inputs = ["keep"]
        output = "count.json"
        "#,
    );
    let running = procnet(["run".as_ref(), file.as_os_str()]).umask(0).timeout(Duration::from_secs(90)).start();
    let writer = running.fifo_writer(&fifo);
    let nodes: Vec<u32> = util::tagged_pids(&running.tag).into_iter().filter(|&p| p != running.pid).collect();
    let dir = nodes.iter().find_map(|&p| util::environ_var(p, "PROCNET_RUN_DIR")).expect("a node's run directory");
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(std::path::Path::new(&dir)), 0o700, "the run directory, under umask 000");
    let sockets: Vec<_> = std::fs::read_dir(&dir).expect("the run directory").flatten().map(|e| e.path()).collect();
    assert!(sockets.iter().any(|p| p.ends_with("control")) && sockets.iter().any(|p| p.ends_with("count.0")));
    for p in &sockets {
        assert_eq!(mode(p), 0o600, "{} under umask 000", p.display());
    }
    let ports = util::listening_ports(&nodes);
    assert_eq!(ports.len(), 2, "one tcp input per `keep` replica: {ports:?}");
    // A stranger: another user if this test may be one (root), else this user without the
    // run's secret, which only the run's processes have.
    let stranger = tempfile::Builder::new().prefix("procnet-stranger-").tempdir().expect("a directory");
    std::fs::set_permissions(stranger.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let rogue = stranger.path().join("rogue");
    std::fs::copy(util::rogue(), &rogue).expect("copy the rogue node");
    let mut knock = std::process::Command::new(&rogue);
    knock.arg("knock").arg(&dir).args(ports.iter().map(ToString::to_string)).current_dir(stranger.path());
    if root() {
        std::os::unix::process::CommandExt::uid(&mut knock, 54_321);
        std::os::unix::process::CommandExt::gid(&mut knock, 54_321);
    }
    let out = knock.output().expect("run the stranger");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    if root() {
        assert!(said.contains("dir: Permission denied"), "{said}");
        assert!(said.contains("control: Permission denied"), "{said}");
    }
    assert_eq!(said.matches(": refused").count(), 4, "every tcp handshake refused:\n{said}");
    std::io::Write::write_all(&mut { writer }, (0..1000).map(|i| format!("{i}\n")).collect::<String>().as_bytes())
        .expect("write the input");
    let r = running.finish();
    r.expect_code(0);
    assert!(
        r.stderr.contains("refused a connection from 127.0.0.1: it did not present this run's secret"),
        "{}",
        r.stderr
    );
    let count = std::fs::read_to_string(s.path("count.json")).expect("the tally");
    assert_eq!(count.trim(), r#"{"count":111}"#, "7, 70-79, 700-799: the run is exact");
}

/// A pipeline writing both kinds of output file: `out.jsonl` (a sink) and `count.json` (a
/// tally), from `n` numbered records, `good` of which pass the filter.
fn outputs_topology(s: &Scratch, n: usize, extra: &str) -> std::path::PathBuf {
    let text: String = (0..n)
        .map(|i| format!("{{\"id\":{i},\"body\":\"{}\"}}\n", if i % 3 == 0 { "python" } else { "rust" }))
        .collect();
    s.write("in.jsonl", &text);
    s.write(
        "t.toml",
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.jsonl"
            format = "jsonl"
            [nodes.keep]
            kind = "filter"
            inputs = ["src"]
            field = "body"
            contains = "python"
            {extra}
            [nodes.out]
            kind = "sink"
            inputs = ["keep"]
            path = "out.jsonl"
            [nodes.count]
            kind = "tally"
            inputs = ["keep"]
            output = "count.json"
            "#
        ),
    )
}

// Two runs of one topology at once both exited 0 with a corrupt sink file: both wrote into it.
#[test]
fn two_runs_of_one_topology_at_once_each_leave_one_whole_output() {
    let s = Scratch::new();
    let file = outputs_topology(&s, 200_000, "");
    let start = || procnet(["run".as_ref(), file.as_os_str()]).timeout(Duration::from_secs(120)).start();
    let (a, b) = (start(), start());
    let (a, b) = (a.finish(), b.finish());
    a.expect_code(0);
    b.expect_code(0);
    let out = std::fs::read_to_string(s.path("out.jsonl")).expect("the sink's file");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 66_667, "one run's records, not two runs' mixed");
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    let count = std::fs::read_to_string(s.path("count.json")).expect("the tally's file");
    assert_eq!(count, "{\"count\":66667}\n");
    let left: Vec<_> = std::fs::read_dir(s.path("")).expect("dir").flatten().map(|e| e.file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().contains("partial")), "{left:?}");
}

// A failed or interrupted run wiped the previous result: a 0-byte tally file, a sink file
// ending mid-record, and nothing said that the file was incomplete.
#[test]
fn a_failed_or_interrupted_run_leaves_the_previous_result_untouched() {
    let s = Scratch::new();
    let file = outputs_topology(&s, 3_000, "");
    procnet(["run".as_ref(), file.as_os_str()]).run().expect_code(0);
    let (out, count) = (s.path("out.jsonl"), s.path("count.json"));
    let before = (std::fs::read(&out).expect("out"), std::fs::read(&count).expect("count"));
    // Failed: the filter crashes mid-stream.
    let crash = format!("[nodes.crash]\ncommand = [\"{}\", \"crash-after\", \"500\"]\ninputs = [\"src\"]", rogue());
    let file = outputs_topology(&s, 300_000, &crash);
    let r = procnet(["run".as_ref(), file.as_os_str()]).timeout(Duration::from_secs(60)).run();
    r.expect_code(1);
    assert_eq!((std::fs::read(&out).expect("out"), std::fs::read(&count).expect("count")), before);
    assert!(r.stderr.contains("did not succeed, so `") && r.stderr.contains("out.jsonl.partial`"), "{}", r.stderr);
    let kept = std::fs::read_to_string(s.path("out.jsonl.partial")).expect("the sink's partial output");
    assert!(kept.lines().count() < 100_000, "the partial output is the failed run's");
    // Interrupted twice (killed at once): the same.
    let file = outputs_topology(&s, 1_000_000, "");
    let running = procnet(["run".as_ref(), file.as_os_str()]).timeout(Duration::from_secs(60)).start();
    running.wait_until("records reaching the sink", || s.partial_written("out.jsonl"));
    running.signal(libc::SIGINT);
    running.signal(libc::SIGINT);
    let r = running.finish();
    r.expect_code(130);
    assert_eq!((std::fs::read(&out).expect("out"), std::fs::read(&count).expect("count")), before);
    assert!(r.stderr.contains("out.jsonl.partial`"), "{}", r.stderr);
}
