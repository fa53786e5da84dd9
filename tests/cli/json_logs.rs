//! `--log-format json`: every line a run writes (the launcher's on stderr, the nodes' on the
//! stream they wrote) is a JSON object with the documented fields, through a start, restarts,
//! a rollback after a kill, a failure and the end.

use std::time::Duration;

use serde_json::Value;

use crate::util::{self, procnet, rogue, Run, Scratch};

/// Every line of `text` as JSON, each checked for the documented fields: `ts` (RFC 3339 UTC
/// with milliseconds), `level`, `event`; an `output` event's `stream`, `node`, `replica` and
/// `line`; any other's `message`, and `node` with `replica` when it names one.
fn json_lines(text: &str) -> Vec<Value> {
    let ts = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").expect("a regex");
    let event = regex::Regex::new(r"^[a-z]+(-[a-z]+)*$").expect("a regex");
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{text}"));
            assert!(v["ts"].as_str().is_some_and(|t| ts.is_match(t)), "ts: {line}");
            assert!(["info", "warn", "error"].contains(&v["level"].as_str().unwrap_or_default()), "level: {line}");
            assert!(v["event"].as_str().is_some_and(|e| event.is_match(e)), "event: {line}");
            if v["event"] == "output" {
                assert!(["stdout", "stderr"].contains(&v["stream"].as_str().unwrap_or_default()), "stream: {line}");
                assert!(v["line"].is_string() && v["node"].is_string() && v["replica"].is_u64(), "{line}");
            } else {
                assert!(v["message"].is_string(), "message: {line}");
                assert_eq!(v["node"].is_string(), v["replica"].is_u64(), "node and replica go together: {line}");
            }
            v
        })
        .collect()
}

/// The launcher's own lines of `r` (stderr, but for the nodes' output).
fn launcher_lines(r: &Run) -> Vec<Value> {
    json_lines(&r.stderr).into_iter().filter(|v| v["event"] != "output").collect()
}

/// The first line of event `event` in `lines`.
fn first<'a>(lines: &'a [Value], event: &str) -> &'a Value {
    lines.iter().find(|v| v["event"] == event).unwrap_or_else(|| panic!("no `{event}` in {lines:#?}"))
}

/// `procnet run --log-format json` on `toml`, written in `s`.
fn run_json(s: &Scratch, toml: &str) -> util::Procnet {
    let file = s.write("t.toml", toml);
    procnet(["run".as_ref(), file.as_os_str(), "--log-format".as_ref(), "json".as_ref()])
        .timeout(Duration::from_secs(60))
}

#[test]
fn json_logs_of_a_run_with_restarts_name_each_event_and_replica() {
    let s = Scratch::new();
    s.write("in.txt", &(0..3000).map(|i| format!("{i}\n")).collect::<String>());
    // Each attempt counts itself in `attempts` and says so on stderr; the first two exit 3.
    let r = run_json(
        &s,
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.txt"
            [nodes.flaky]
            command = ["sh", "-c", "echo x >> attempts; echo attempt >&2; [ $(wc -l < attempts) -ge 3 ] || exit 3; exec {} sleepy 0"]
            inputs = ["src"]
            restart = "on-failure"
            [nodes.count]
            kind = "tally"
            inputs = ["flaky"]
            "#,
            rogue()
        ),
    )
    .run();
    r.expect_code(0);
    let lines = launcher_lines(&r);
    let events: Vec<&str> = lines.iter().map(|v| v["event"].as_str().unwrap_or_default()).collect();
    assert_eq!(events.first(), Some(&"run-started"), "{events:?}");
    assert_eq!(events.last(), Some(&"run-finished"), "{events:?}");
    for want in ["restart-scheduled", "replica-restarted", "network-wired", "network-started"] {
        assert!(events.contains(&want), "no `{want}` in {events:?}");
    }
    let scheduled = first(&lines, "restart-scheduled");
    assert_eq!(
        (&scheduled["level"], &scheduled["node"], &scheduled["replica"]),
        (&"warn".into(), &"flaky".into(), &0.into())
    );
    assert_eq!(scheduled["message"], "node `flaky.0` exited with status 3; restarting it in 100 ms (1 of 3)");
    assert_eq!(events.iter().filter(|e| **e == "replica-restarted").count(), 2, "{events:?}");
    // The nodes' lines, on their own streams: three attempts said so on stderr; the tally's
    // result is on stdout.
    let said: Vec<Value> = json_lines(&r.stderr).into_iter().filter(|v| v["event"] == "output").collect();
    assert_eq!(said.iter().filter(|v| v["line"] == "attempt" && v["node"] == "flaky").count(), 3, "{said:#?}");
    assert!(said.iter().all(|v| v["stream"] == "stderr"), "{said:#?}");
    let out = json_lines(&r.stdout);
    assert_eq!(out.len(), 1, "{}", r.stdout);
    assert_eq!(
        (&out[0]["event"], &out[0]["stream"], &out[0]["node"]),
        (&"output".into(), &"stdout".into(), &"count".into())
    );
    assert_eq!(serde_json::from_str::<Value>(out[0]["line"].as_str().expect("a line")).expect("JSON")["count"], 3000);
}

#[test]
fn json_logs_of_a_failed_run_end_with_the_failure_as_an_error() {
    let s = Scratch::new();
    s.write("in.txt", "a\nb\n");
    let r = run_json(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.txt"
        [nodes.broken]
        command = ["sh", "-c", "echo 'cannot start' >&2; exit 4"]
        inputs = ["src"]
        restart = "on-failure"
        max_restarts = 1
        [nodes.count]
        kind = "tally"
        inputs = ["broken"]
        "#,
    )
    .run();
    r.expect_code(1);
    let lines = launcher_lines(&r);
    let last = lines.last().expect("a line");
    assert_eq!(
        (&last["level"], &last["event"], &last["node"], &last["replica"]),
        (&"error".into(), &"node-failed".into(), &"broken".into(), &0.into()),
        "{lines:#?}"
    );
    assert_eq!(last["message"], "node `broken.0` failed: exited with status 4; gave up after 1 restart");
    assert_eq!(first(&lines, "restart-scheduled")["level"], "warn");
    let said = json_lines(&r.stderr);
    assert!(said.iter().any(|v| v["event"] == "output" && v["line"] == "cannot start"), "{said:#?}");
    // An invalid topology is an error line too, its diagnostics as detail.
    let r = run_json(&s, "[nodes.a]\nkind = \"lines\"\nreplica = 2\n").run();
    r.expect_code(78);
    let lines = json_lines(&r.stderr);
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert_eq!((&lines[0]["level"], &lines[0]["event"]), (&"error".into(), &"invalid-topology".into()));
    let detail: Vec<&str> = lines[0]["detail"].as_array().expect("detail").iter().filter_map(Value::as_str).collect();
    assert!(detail.contains(&"error: unknown key `replica` in node `a`"), "{detail:?}");
}

// A replica killed mid-stream under exactly once: the rollback and the recovery are events
// naming the replica, and the run still ends as an undisturbed one would.
#[test]
fn json_logs_of_a_killed_replica_say_the_rollback() {
    let s = Scratch::new();
    s.write("in.txt", &(0..100_000).map(|i| format!("{i}\n")).collect::<String>());
    let running = run_json(
        &s,
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.txt"
            [nodes.keep]
            kind = "filter"
            inputs = ["src"]
            replicas = 2
            field = "line"
            regex = "."
            restart = "on-failure"
            [nodes.slow]
            command = ["{}", "sleepy", "20"]
            inputs = ["keep"]
            [nodes.out]
            kind = "sink"
            inputs = ["slow"]
            path = "out.txt"
            "#,
            rogue()
        ),
    )
    .start();
    running.wait_until("records reaching the sink", || s.partial_written("out.txt"));
    let victim = util::tagged_pids(&running.tag)
        .into_iter()
        .find(|&p| util::environ_var(p, "PROCNET_NODE").as_deref() == Some("keep"))
        .expect("a filter replica");
    // SAFETY: kill(2) of a process of this test's run.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let r = running.finish();
    r.expect_code(0);
    let lines = launcher_lines(&r);
    let rollback = first(&lines, "rollback");
    assert_eq!((&rollback["level"], &rollback["node"]), (&"warn".into(), &"keep".into()), "{lines:#?}");
    assert!(rollback["message"].as_str().is_some_and(|m| m.contains("was killed by SIGKILL; rolling the run back")));
    assert_eq!(first(&lines, "rollback-done")["message"], "rollback 1: every node started again from the beginning");
    assert_eq!(lines.last().map(|v| &v["event"]), Some(&"run-finished".into()), "{lines:#?}");
    assert_eq!(std::fs::read_to_string(s.path("out.txt")).expect("the sink's output").lines().count(), 100_000);
}
