//! The launcher: start methods (spawn, fork, forkserver) give the same results, stopping by
//! signal is graceful then forced, nothing outlives a run (not even after `kill -9` of the
//! launcher), restarts follow the policy, and node output comes prefixed.

use std::time::Duration;

use crate::util::{self, numbers, procnet, read_json, rogue, run, Scratch};

/// `n` JSON records with unique ids, a third of them mentioning python.
fn records(s: &Scratch, n: usize) {
    let text: String = (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"r{i}\",\"site\":\"s{}\",\"body\":\"{}\"}}\n",
                i % 7,
                if i % 3 == 0 { "Python" } else { "rust" }
            )
        })
        .collect();
    s.write("in.jsonl", &text);
}

/// The canonical shape, read -> filter x3 -> tally by site, under one start method.
fn pipeline(method: &str, transport: &str) -> String {
    format!(
        r#"
        [defaults]
        start = "{method}"
        transport = "{transport}"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.keep]
        kind = "filter"
        inputs = ["src"]
        replicas = 3
        field = "body"
        contains = "python"
        ignore_case = true
        [nodes.count]
        kind = "tally"
        inputs = ["keep"]
        by = "site"
        "#
    )
}

#[test]
fn every_start_method_gives_the_same_exact_tally() {
    let s = Scratch::new();
    records(&s, 30_000);
    let mut tallies = Vec::new();
    for transport in ["ipc", "tcp"] {
        for method in ["spawn", "fork", "forkserver"] {
            let r = run(&s, &pipeline(method, transport));
            r.expect_code(0);
            let tally = r.json();
            assert_eq!(tally["count"], 10_000, "{method} over {transport}: {tally}");
            tallies.push((method, transport, tally));
        }
    }
    for (method, transport, tally) in &tallies[1..] {
        assert_eq!(tally, &tallies[0].2, "{method} over {transport} differs from spawn over ipc");
    }
}

/// Forked nodes are real, separate processes, each leading its own group, and not
/// executions of `procnet node`: their command line is the launcher's (fork) or the fork
/// server's, and they carry their replica's name.
#[test]
fn forked_nodes_are_processes_of_their_own_without_exec() {
    for (method, parent_arg) in [("fork", "run"), ("forkserver", "forkserver")] {
        let s = Scratch::new();
        records(&s, 10);
        let file = s.write(
            "t.toml",
            &format!(
                r#"
                [defaults]
                start = "{method}"
                [nodes.src]
                kind = "lines"
                path = "in.jsonl"
                format = "jsonl"
                [nodes.keep]
                kind = "filter"
                inputs = ["src"]
                replicas = 2
                field = "body"
                contains = "python"
                [nodes.slow]
                command = ["{}", "sleepy", "100000000"]
                inputs = ["keep"]
                start = "spawn"
                "#,
                rogue()
            ),
        );
        let running = procnet(["run".as_ref(), file.as_os_str()]).timeout(Duration::from_secs(30)).start();
        running.wait_until("both filter replicas", || named(&running, "keep.").len() == 2);
        for pid in named(&running, "keep.") {
            let args = util::cmdline(pid);
            assert_eq!(
                args.get(1).map(String::as_str),
                Some(parent_arg),
                "{method}: pid {pid} ({}) has arguments {args:?}\n{}",
                util::comm(pid),
                running.stderr_so_far()
            );
            assert_eq!(pgid(pid), Some(pid as i32), "{method}: a forked node leads its own process group");
        }
        let tagged = util::tagged_pids(&running.tag);
        assert!(
            !tagged.iter().any(|&p| util::cmdline(p).get(1).is_some_and(|a| a == "node")),
            "{method}: a `procnet node` process was executed"
        );
        running.signal(libc::SIGKILL);
        let _ = running.finish();
    }
}

/// Processes of the run whose name starts with `prefix`.
fn named(running: &util::Running, prefix: &str) -> Vec<u32> {
    util::tagged_pids(&running.tag).into_iter().filter(|&p| util::comm(p).starts_with(prefix)).collect()
}

fn pgid(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (in parentheses): state, ppid, pgrp.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(2)?.parse().ok()
}

/// A network mid-stream: a source of a million lines, a pass-through `slow` running
/// `command` (2 replicas; `ROGUE` stands for the rogue node), and a sink. Returns once a
/// record reached `slow` (`command` must run `ROGUE sleepy`).
fn start_mid_stream(s: &Scratch, command: &str) -> util::Running {
    numbers(s, 1_000_000);
    let toml = format!(
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.slow]
        command = {}
        inputs = ["src"]
        replicas = 2
        [nodes.out]
        kind = "sink"
        inputs = ["slow"]
        path = "out.jsonl"
        "#,
        command.replace("ROGUE", rogue())
    );
    let file = s.write("t.toml", &toml);
    let running = procnet(["run".as_ref(), file.as_os_str(), "--grace".as_ref(), "2s".as_ref()])
        .timeout(Duration::from_secs(60))
        .start();
    running.wait_until("a record reaching `slow`", || running.stderr_so_far().contains("| sleepy: first record"));
    running
}

/// A pass-through so slow (0.2 s per record) that the records in flight cannot drain
/// within the grace period.
const TOO_SLOW: &str = r#"["ROGUE", "sleepy", "200000"]"#;

#[test]
fn sigint_mid_run_exits_130_within_the_grace_period() {
    let s = Scratch::new();
    let running = start_mid_stream(&s, TOO_SLOW);
    let signalled = running.elapsed();
    running.signal(libc::SIGINT);
    let r = running.finish();
    let took = r.elapsed - signalled;
    r.expect_code(130);
    assert!(took < Duration::from_secs(3), "stopping took {took:?}, more than grace + 1 s");
    assert!(took >= Duration::from_secs(2), "killed after {took:?}, before the grace period ended");
    assert!(r.stderr.contains("interrupted by SIGINT: nodes killed"), "{}", r.stderr);
}

#[test]
fn a_second_sigint_kills_at_once() {
    let s = Scratch::new();
    let running = start_mid_stream(&s, TOO_SLOW);
    running.signal(libc::SIGINT);
    // Two signals sent at once are one to the kernel: wait until the launcher took the first.
    running.wait_until("the launcher stopping", || running.stderr_so_far().contains("SIGINT: stopping gracefully"));
    let signalled = running.elapsed();
    running.signal(libc::SIGINT);
    let r = running.finish();
    r.expect_code(130);
    let took = r.elapsed - signalled;
    assert!(took < Duration::from_secs(1), "a second Ctrl-C took {took:?} (grace is 2 s)\n{}", r.stderr);
}

#[test]
fn sigint_during_start_up_stops_at_once() {
    let s = Scratch::new();
    // `late` never joins, so the network never starts.
    let file = s.write(
        "t.toml",
        r#"
        [nodes.late]
        command = ["sleep", "300"]
        [nodes.count]
        kind = "tally"
        inputs = ["late"]
        start = "forkserver"
        "#,
    );
    let running = procnet(["run".as_ref(), file.as_os_str()]).timeout(Duration::from_secs(20)).start();
    running.wait_until("the node that never joins", || find(&running, "sleep 300").is_some());
    running.signal(libc::SIGINT);
    let r = running.finish();
    r.expect_code(130);
}

/// The grandchildren of a command node (here a shell's background `sleep`) are not children
/// of the launcher: after `kill -9` of the launcher, the watchdog kills their group.
#[test]
fn kill_9_of_the_launcher_leaves_no_grandchild() {
    let s = Scratch::new();
    let running = start_mid_stream(&s, r#"["sh", "-c", "sleep 300 & exec ROGUE sleepy 100"]"#);
    running.wait_until("the shells' background sleeps", || {
        util::tagged_pids(&running.tag)
            .into_iter()
            .filter(|&p| util::cmdline(p).first().is_some_and(|a| a == "sleep"))
            .count()
            == 2
    });
    running.signal(libc::SIGKILL);
    // finish() fails the test if any process of the run is still alive afterwards.
    let r = running.finish();
    assert_eq!(r.status.code(), None, "the launcher was killed by a signal");
}

/// The pid of the first tagged process whose command line contains `needle`.
fn find(running: &util::Running, needle: &str) -> Option<u32> {
    util::tagged_pids(&running.tag)
        .into_iter()
        .filter(|&p| p != running.pid)
        .find(|&p| util::cmdline(p).join(" ").contains(needle))
}

#[test]
fn kill_9_of_a_worker_without_restarts_fails_the_run_naming_it() {
    let s = Scratch::new();
    let running = start_mid_stream(&s, r#"["ROGUE", "sleepy", "100"]"#);
    let victim = find(&running, "sleepy").expect("a worker");
    // SAFETY: kill(2) of a process of this test's run.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let r = running.finish();
    r.expect_code(1);
    assert!(r.stderr.contains("node `slow."), "{}", r.stderr);
    assert!(r.stderr.contains("was killed by SIGKILL"), "{}", r.stderr);
    assert!(r.stderr.contains("records in flight may be lost"), "{}", r.stderr);
}

/// The topology of the kill tests below: 200,000 records through `keep` (2 replicas, started
/// with `method`, restarted on failure), a slow pass-through and a sink, under `delivery`.
fn kill_topology(s: &Scratch, method: &str, delivery: &str) -> std::path::PathBuf {
    let text: String = (0..200_000).map(|i| format!("{{\"id\":\"n{i}\",\"body\":\"python\"}}\n")).collect();
    s.write("in.jsonl", &text);
    s.write(
        "t.toml",
        &format!(
            r#"
            delivery = "{delivery}"
            [nodes.src]
            kind = "lines"
            path = "in.jsonl"
            format = "jsonl"
            [nodes.keep]
            kind = "filter"
            inputs = ["src"]
            replicas = 2
            field = "body"
            contains = "python"
            start = "{method}"
            restart = "on-failure"
            [nodes.slow]
            command = ["{}", "sleepy", "20"]
            inputs = ["keep"]
            [nodes.out]
            kind = "sink"
            inputs = ["slow"]
            path = "out.jsonl"
            "#,
            rogue()
        ),
    )
}

/// Exactly once (the default): a worker killed mid-stream under `on-failure` rolls the run
/// back, whatever its start method; the run ends with exit 0 and every record once.
#[test]
fn a_worker_killed_mid_stream_rolls_the_run_back_and_the_result_is_exact() {
    for method in ["spawn", "fork", "forkserver"] {
        let s = Scratch::new();
        let file = kill_topology(&s, method, "exactly-once");
        let report = s.path("r.json");
        let running = procnet(["run".as_ref(), file.as_os_str(), "--report".as_ref(), report.as_os_str()])
            .timeout(Duration::from_secs(90))
            .start();
        running.wait_until("records reaching the sink", || s.partial_written("out.jsonl"));
        let victim = keep_replicas(&running, method).first().copied().expect("a filter replica");
        // SAFETY: kill(2) of a process of this test's run.
        unsafe { libc::kill(victim as i32, libc::SIGKILL) };
        let r = running.finish();
        r.expect_code(0);
        assert!(r.stderr.contains("rolling the run back"), "{method}: {}", r.stderr);
        let mut ids: Vec<String> = std::fs::read_to_string(s.path("out.jsonl"))
            .expect("sink output")
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["id"].as_str().expect("id").to_string()
            })
            .collect();
        ids.sort();
        let mut want: Vec<String> = (0..200_000).map(|i| format!("n{i}")).collect();
        want.sort();
        assert!(ids == want, "{method}: {} records written, not each of 200,000 once", ids.len());
        assert_eq!(read_json(&report)["rollbacks"], 1, "{method}");
    }
}

/// At most once: a worker killed mid-stream under `on-failure` is restarted, the run goes on
/// to the end, and then fails: the result may be incomplete, and the run says so.
#[test]
fn a_worker_killed_mid_stream_is_restarted_and_the_run_says_records_may_be_lost() {
    for method in ["spawn", "fork", "forkserver"] {
        let s = Scratch::new();
        let file = kill_topology(&s, method, "at-most-once");
        let out = s.path("out.jsonl");
        let report = s.path("r.json");
        let running = procnet(["run".as_ref(), file.as_os_str(), "--report".as_ref(), report.as_os_str()])
            .timeout(Duration::from_secs(60))
            .start();
        running.wait_until("records reaching the sink", || s.partial_written("out.jsonl"));
        let victim = keep_replicas(&running, method).first().copied().expect("a filter replica");
        // SAFETY: kill(2) of a process of this test's run.
        unsafe { libc::kill(victim as i32, libc::SIGKILL) };
        let r = running.finish();
        r.expect_code(1);
        for want in [
            "died mid-stream (was killed by SIGKILL); records in flight may be lost; tally may be incomplete",
            "was killed by SIGKILL; restarting it in 100 ms (1 of 3)",
            "died mid-stream: the result may be incomplete",
        ] {
            assert!(r.stderr.contains(want), "{method}: no `{want}` in\n{}", r.stderr);
        }
        let report = read_json(&report);
        let restarts: u64 = report["replicas"]
            .as_array()
            .expect("replicas")
            .iter()
            .map(|r| r["restarts"].as_u64().expect("restarts"))
            .sum();
        assert_eq!(restarts, 1, "{method}: {report}");
        // The run failed: its sink's output was kept aside, the target never written.
        assert!(!out.exists(), "{method}: a failed run wrote its sink's target");
        let written = std::fs::read_to_string(s.path("out.jsonl.partial")).expect("sink output").lines().count();
        assert!(written > 0 && written <= 200_000, "{method}: {written}");
    }
}

/// The pids of the `keep` replicas started with `method`.
fn keep_replicas(running: &util::Running, method: &str) -> Vec<u32> {
    if method == "spawn" {
        util::tagged_pids(&running.tag)
            .into_iter()
            .filter(|&p| util::environ_var(p, "PROCNET_NODE").as_deref() == Some("keep"))
            .collect()
    } else {
        named(running, "keep.")
    }
}

#[test]
fn a_command_that_fails_twice_then_succeeds_completes_under_on_failure() {
    let s = Scratch::new();
    records(&s, 3000);
    // Each attempt counts itself in `attempts`; the first two exit 3 before joining.
    let r = run(
        &s,
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.jsonl"
            format = "jsonl"
            [nodes.flaky]
            command = ["sh", "-c", "echo x >> attempts; [ $(wc -l < attempts) -ge 3 ] || exit 3; exec {} sleepy 0"]
            inputs = ["src"]
            restart = "on-failure"
            [nodes.count]
            kind = "tally"
            inputs = ["flaky"]
            "#,
            rogue()
        ),
    );
    r.expect_code(0);
    assert_eq!(r.json()["count"], 3000, "exact after restarts at start-up");
    assert_eq!(std::fs::read_to_string(s.path("attempts")).expect("attempts").lines().count(), 3);
    assert!(r.stderr.contains("node `flaky.0` exited with status 3; restarting it in 100 ms (1 of 3)"), "{}", r.stderr);
    assert!(r.stderr.contains("restarting it in 200 ms (2 of 3)"), "backoff doubles: {}", r.stderr);
}

/// Each attempt also leaves a background `sleep` in its process group: the harness checks
/// that none of the three survives.
#[test]
fn a_command_that_always_fails_gives_up_after_max_restarts() {
    let s = Scratch::new();
    records(&s, 10);
    let r = run(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.broken]
        command = ["sh", "-c", "sleep 300 & echo x >> attempts; echo 'cannot start' >&2; exit 4"]
        inputs = ["src"]
        restart = "on-failure"
        max_restarts = 2
        [nodes.count]
        kind = "tally"
        inputs = ["broken"]
        "#,
    );
    r.expect_code(1);
    assert_eq!(
        std::fs::read_to_string(s.path("attempts")).expect("attempts").lines().count(),
        3,
        "1 start + 2 restarts"
    );
    assert!(
        r.stderr.contains("node `broken.0` failed: exited with status 4; gave up after 2 restarts"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("broken.0 | cannot start"), "the node's own words, prefixed: {}", r.stderr);
}

#[test]
fn node_output_is_prefixed_and_stdin_is_dev_null() {
    let s = Scratch::new();
    records(&s, 5);
    // `cat` would wait forever on a terminal's stdin; with /dev/null it ends at once.
    let r = run(
        &s,
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.jsonl"
            format = "jsonl"
            [nodes.talk]
            command = ["sh", "-c", "cat; echo 'to stdout'; echo 'to stderr' >&2; {} sleepy 0; printf 'no newline' >&2"]
            inputs = ["src"]
            replicas = 2
            [nodes.count]
            kind = "tally"
            inputs = ["talk"]
            "#,
            rogue()
        ),
    );
    r.expect_code(0);
    for id in ["talk.0", "talk.1"] {
        assert!(r.stdout.contains(&format!("{id}  | to stdout\n")), "{}", r.stdout);
        assert!(r.stderr.contains(&format!("{id}  | to stderr\n")), "{}", r.stderr);
        assert!(r.stderr.contains(&format!("{id}  | no newline\n")), "{}", r.stderr);
    }
    assert!(r.stdout.contains("count.0 | {\"count\":5"), "{}", r.stdout);
    assert!(!r.stdout.contains('\x1b'), "no colour when stdout is not a terminal");
}
