//! Runtime failures are clear and leave nothing behind: the run exits non-zero, names the
//! node and the cause, and (checked by the harness after every run) no process remains.

use std::time::Duration;

use crate::util::{self, numbers, procnet, read_tally, rogue, run_within, Scratch};

/// The deadline of the runs here, which end in a second or two.
const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn missing_input_file_names_the_node_and_the_file() {
    let s = Scratch::new();
    let r = run_within(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "no-such-file.txt"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        "#,
        DEADLINE,
    );
    r.expect_code(1);
    assert!(r.stderr.contains("node `src.0` failed: failed to open `"), "{}", r.stderr);
    assert!(r.stderr.contains("no-such-file.txt`: No such file or directory"), "{}", r.stderr);
}

#[test]
fn command_that_does_not_exist_is_named() {
    let s = Scratch::new();
    let r = run_within(
        &s,
        r#"
        [nodes.ghost]
        command = ["procnet-test-no-such-program"]
        "#,
        DEADLINE,
    );
    r.expect_code(1);
    assert!(
        r.stderr.contains("failed to start node `ghost.0`: command `procnet-test-no-such-program` not found"),
        "{}",
        r.stderr
    );
}

#[test]
fn command_that_exits_non_zero_at_once_fails_the_run() {
    let s = Scratch::new();
    numbers(&s, 10);
    let r = run_within(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        [nodes.bad]
        command = ["sh", "-c", "exit 3"]
        inputs = ["src"]
        replicas = 2
        "#,
        DEADLINE,
    );
    r.expect_code(1);
    assert!(r.stderr.contains("failed: exited with status 3"), "{}", r.stderr);
    assert!(r.stderr.contains("node `bad."), "{}", r.stderr);
}

#[test]
fn node_that_crashes_mid_stream_fails_the_run_and_kills_the_rest() {
    let s = Scratch::new();
    numbers(&s, 20_000);
    let r = run_within(
        &s,
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.jsonl"
            format = "jsonl"
            [nodes.mid]
            command = ["{}", "crash-after", "100"]
            inputs = ["src"]
            [nodes.count]
            kind = "tally"
            inputs = ["mid"]
            "#,
            rogue()
        ),
        DEADLINE,
    );
    r.expect_code(1);
    assert!(r.stderr.contains("node `mid.0` failed: was killed by SIGABRT"), "{}", r.stderr);
    assert!(!r.stdout.contains("count"), "a failed run must not print a tally: {}", r.stdout);
}

#[test]
fn node_that_exits_zero_without_finishing_is_a_failure() {
    let s = Scratch::new();
    numbers(&s, 100);
    let r = run_within(
        &s,
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.jsonl"
            [nodes.quitter]
            command = ["{}", "exit-early", "0"]
            inputs = ["src"]
            "#,
            rogue()
        ),
        DEADLINE,
    );
    r.expect_code(1);
    assert!(r.stderr.contains("node `quitter.0` failed: exited before finishing its stream"), "{}", r.stderr);
}

#[test]
fn garbage_frames_are_dropped_counted_and_named_without_losing_good_records() {
    let s = Scratch::new();
    let r = run_within(
        &s,
        &format!(
            r#"
            [nodes.rogue]
            command = ["{}", "garbage", "500"]
            [nodes.count]
            kind = "tally"
            inputs = ["rogue"]
            "#,
            rogue()
        ),
        DEADLINE,
    );
    r.expect_code(65);
    assert_eq!(r.json(), serde_json::json!({"count": 500}));
    assert!(r.stderr.contains("node `count.0` dropped 4 invalid frames"), "{}", r.stderr);
    assert!(r.stderr.contains("not a MessagePack value"), "{}", r.stderr);
    assert!(r.stderr.contains("unsupported protocol version 2"), "{}", r.stderr);
    assert!(r.stderr.contains("message `eos` is missing field `from`"), "{}", r.stderr);
    assert!(r.stderr.contains("`eos` from `ghost.0` (port `out`), which is not an upstream replica"), "{}", r.stderr);
}

#[test]
fn frames_laid_out_otherwise_are_read_and_bad_nesting_is_refused() {
    // Records read in place (the filter and tally never decode them) must give what
    // decoding would, whatever valid layout a foreign sender chose.
    let s = Scratch::new();
    let r = run_within(
        &s,
        &format!(
            r#"
            [nodes.rogue]
            command = ["{}", "foreign"]
            [nodes.all]
            kind = "tally"
            inputs = ["rogue"]
            by = "url"
            by_host = true
            output = "all.json"
            [nodes.python]
            kind = "filter"
            inputs = ["rogue"]
            field = "body"
            contains = "python"
            ignore_case = true
            [nodes.count]
            kind = "tally"
            inputs = ["python"]
            by = "id"
            "#,
            rogue()
        ),
        DEADLINE,
    );
    r.expect_code(65);
    let all = read_tally(&s, "all.json");
    // The too-deep record (id 9) is dropped, alone: its frame's other record (10) gets in.
    assert_eq!(all, serde_json::json!({"count": 10, "by": {"h0.test": 6, "h1.test": 4}}));
    // 0 "Python here", 2 "PYTHON", 3 "python 3", 5 bin "bin python", 7 {1: "python"} as JSON.
    assert_eq!(r.json(), serde_json::json!({"count": 6, "by": {"0": 1, "10": 1, "2": 1, "3": 1, "5": 1, "7": 1}}));
    for node in ["all", "python"] {
        assert!(r.stderr.contains(&format!("node `{node}.0` dropped 1 invalid frame")), "{}", r.stderr);
    }
    assert!(r.stderr.contains("data record 0: nested deeper than 256 levels"), "{}", r.stderr);
}

#[test]
fn bad_json_lines_are_dropped_counted_and_located() {
    let s = Scratch::new();
    s.write("in.jsonl", "{\"a\":1}\nnot json\n[1,2]\n{\"a\":2}\n");
    let r = run_within(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        "#,
        DEADLINE,
    );
    r.expect_code(65);
    assert_eq!(r.json(), serde_json::json!({"count": 2}));
    assert!(r.stderr.contains("node `src.0` dropped 2 bad records"), "{}", r.stderr);
    assert!(r.stderr.contains("in.jsonl:2: not JSON"), "{}", r.stderr);
    assert!(r.stderr.contains("in.jsonl:3: expected a JSON object, found an array"), "{}", r.stderr);
}

#[test]
fn node_that_never_joins_times_out_and_its_children_are_reaped() {
    let s = Scratch::new();
    let file = s.write(
        "t.toml",
        r#"
        [nodes.mute]
        command = ["sh", "-c", "sleep 300 & sleep 300"]
        "#,
    );
    let r = procnet(["run".as_ref(), file.as_os_str(), "--startup-timeout".as_ref(), "1".as_ref()])
        .timeout(Duration::from_secs(20))
        .run();
    r.expect_code(1);
    assert!(r.stderr.contains("nodes did not join the network within 1 s: mute.0"), "{}", r.stderr);
}

#[test]
fn tally_that_cannot_write_its_output_fails() {
    let s = Scratch::new();
    numbers(&s, 10);
    let r = run_within(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        output = "no-such-dir/tally.json"
        "#,
        DEADLINE,
    );
    r.expect_code(1);
    assert!(r.stderr.contains("node `count.0` failed: failed to create `"), "{}", r.stderr);
}

fn interrupt(signal: i32) -> util::Run {
    let s = Scratch::new();
    let file = s.write(
        "t.toml",
        r#"
        [nodes.a]
        command = ["sleep", "300"]
        [nodes.b]
        command = ["sh", "-c", "sleep 300 & sleep 300"]
        replicas = 2
        "#,
    );
    let running = procnet(["run".as_ref(), file.as_os_str()]).timeout(Duration::from_secs(20)).start();
    // a.0, b.0, b.1 and the two background sleeps of b.
    running.wait_for_nodes(5);
    running.signal(signal);
    running.finish()
}

#[test]
fn ctrl_c_stops_the_run_with_130_and_leaves_nothing() {
    let r = interrupt(libc::SIGINT);
    r.expect_code(130);
    assert!(r.stderr.contains("interrupted by SIGINT"), "{}", r.stderr);
}

#[test]
fn sigterm_stops_the_run_with_143_and_leaves_nothing() {
    let r = interrupt(libc::SIGTERM);
    r.expect_code(143);
    assert!(r.stderr.contains("interrupted by SIGTERM"), "{}", r.stderr);
}

/// Start `src` (a million lines) -> `slow` (given in `middle`, `ROGUE` standing for the
/// rogue node) -> `out` (a sink writing out.jsonl), and return once records reach the sink:
/// the network is running, mid-stream.
fn start_mid_stream(s: &Scratch, middle: &str) -> (util::Running, std::path::PathBuf) {
    numbers(s, 1_000_000);
    let toml = format!(
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        [nodes.out]
        kind = "sink"
        inputs = ["slow"]
        path = "out.jsonl"
        {}
        "#,
        middle.replace("ROGUE", rogue())
    );
    let file = s.write("t.toml", &toml);
    let running = procnet(["run".as_ref(), file.as_os_str()]).timeout(Duration::from_secs(60)).start();
    // Until the run succeeds, the sink writes beside its target.
    running.wait_until("records reaching the sink", || s.partial_written("out.jsonl"));
    (running, s.path("out.jsonl"))
}

/// The first Ctrl-C stops gracefully: the source ends its stream early, the records in
/// flight drain, and the tally flushes an exact count of what went through.
#[test]
fn first_ctrl_c_drains_and_flushes_an_exact_tally() {
    let s = Scratch::new();
    let (running, out) = start_mid_stream(
        &s,
        r#"
        [nodes.slow]
        command = ["ROGUE", "crash-after", "999999999"]
        inputs = ["src"]
        [nodes.count]
        kind = "tally"
        inputs = ["slow"]
        "#,
    );
    running.signal(libc::SIGINT);
    let r = running.finish();
    r.expect_code(130);
    assert!(r.stderr.contains("interrupted by SIGINT: stopped gracefully"), "{}", r.stderr);
    // Interrupted: the target was never written, and the partial output was kept aside.
    assert!(!out.exists(), "an interrupted run wrote its sink's target");
    assert!(r.stderr.contains("did not succeed, so `"), "{}", r.stderr);
    let kept = s.path("out.jsonl.partial");
    let written = std::fs::read_to_string(&kept).expect("sink output").lines().count() as u64;
    let counted = r.json()["count"].as_u64().expect("a tally");
    assert_eq!(counted, written, "the tally and the sink saw different streams");
    assert!(counted < 1_000_000, "the source did not stop early ({counted} records)");
}

/// A launcher killed with SIGKILL cannot clean up: its nodes die with it anyway (each is
/// started with a parent-death signal), mid-stream, leaving nothing behind.
#[test]
fn kill_9_of_the_launcher_leaves_no_node() {
    let s = Scratch::new();
    let (running, _) = start_mid_stream(
        &s,
        r#"
        [nodes.slow]
        command = ["ROGUE", "sleepy", "100"]
        inputs = ["src"]
        replicas = 2
        "#,
    );
    running.signal(libc::SIGKILL);
    // finish() fails the test if any process of the run is still alive afterwards.
    let r = running.finish();
    assert_eq!(r.status.code(), None, "the launcher was killed by a signal");
}

/// A foreign process sends a 100 MB message: the receiving node's input refuses it (ZMQ_MAXMSGSIZE,
/// `max_message_bytes`, 64 MiB by default) without allocating it, goes on with the rest of
/// the stream, and the run names the node, counts what was dropped, and exits 65.
#[test]
fn a_message_over_max_message_bytes_is_dropped_counted_and_named() {
    let s = Scratch::new();
    let r = run_within(
        &s,
        &format!(
            r#"
            [nodes.src]
            command = ["{}", "huge", "100"]
            [nodes.count]
            kind = "tally"
            inputs = ["src"]
            "#,
            rogue()
        ),
        DEADLINE,
    );
    r.expect_code(65);
    assert!(r.stderr.contains("node `count.0` dropped 1 invalid frame"), "{}", r.stderr);
    assert!(
        r.stderr.contains("input connection was dropped mid-stream (a message over max_message_bytes, 67108864 bytes"),
        "{}",
        r.stderr
    );
    let count = r.json()["count"].as_u64().expect("a tally");
    // The 10 records before the huge one arrive; of the 10 after it, those already written to
    // the dropped connection are lost with it.
    assert!((10..=20).contains(&count), "{count}");
}
