//! Exact end of stream across replica shapes: every record delivered exactly once, none lost,
//! none duplicated, no hang. Each run tallies by a unique id, so a lost or duplicated record
//! shows up as a missing key or a count of 2.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::util::{self, counters, on_terminal, procnet, read_json, read_tally, run_ok, Scratch};

const N: usize = 30_000;

/// Write `n` JSON lines with ids from `first`; every third mentions Python. Returns the ids
/// of those that do.
fn corpus(s: &Scratch, name: &str, first: usize, n: usize) -> Vec<usize> {
    let mut text = String::new();
    let mut hits = Vec::new();
    for i in first..first + n {
        let body = if i % 3 == 0 { "we like PYTHON here" } else { "nothing to see" };
        if i % 3 == 0 {
            hits.push(i);
        }
        let _ = writeln!(text, r#"{{"id":"r{i}","body":"{body} {i}"}}"#);
    }
    s.write(name, &text);
    hits
}

/// Assert the tally in `json` counts exactly the ids `expected`, each once.
fn assert_exactly_once(json: &serde_json::Value, expected: &[usize]) {
    assert_eq!(json["count"], expected.len() as u64, "count");
    let by: BTreeMap<String, u64> = serde_json::from_value(json["by"].clone()).expect("by is a map");
    let dup: Vec<_> = by.iter().filter(|(_, &n)| n != 1).take(5).collect();
    assert!(dup.is_empty(), "records delivered more than once: {dup:?}");
    let want: BTreeMap<String, u64> = expected.iter().map(|i| (format!("r{i}"), 1)).collect();
    let missing: Vec<_> = want.keys().filter(|k| !by.contains_key(*k)).take(5).collect();
    assert!(missing.is_empty(), "records lost: {missing:?} (and maybe more)");
    assert_eq!(by.len(), want.len());
}

fn shape_1_3_2_1(transport: &str) {
    let s = Scratch::new();
    let hits = corpus(&s, "in.jsonl", 0, N);
    let run = run_ok(
        &s,
        &format!(
            r#"
            [defaults]
            transport = "{transport}"
            [nodes.src]
            kind = "lines"
            path = "in.jsonl"
            format = "jsonl"
            [nodes.all]
            kind = "filter"
            inputs = ["src"]
            replicas = 3
            field = "id"
            regex = "^r"
            [nodes.py]
            kind = "filter"
            inputs = ["all"]
            replicas = 2
            field = "body"
            contains = "python"
            ignore_case = true
            [nodes.count]
            kind = "tally"
            inputs = ["py"]
            by = "id"
            "#
        ),
    );
    assert_exactly_once(&run.json(), &hits);
}

#[test]
fn one_three_two_one_over_ipc_delivers_each_record_once() {
    shape_1_3_2_1("ipc");
}

#[test]
fn one_three_two_one_over_tcp_delivers_each_record_once() {
    shape_1_3_2_1("tcp");
}

#[test]
fn fan_in_from_two_sources_delivers_each_record_once() {
    let s = Scratch::new();
    let mut hits = corpus(&s, "a.jsonl", 0, N / 2);
    hits.extend(corpus(&s, "b.jsonl", N / 2, N / 2));
    let run = run_ok(
        &s,
        r#"
        [nodes.a]
        kind = "lines"
        path = "a.jsonl"
        format = "jsonl"
        [nodes.b]
        kind = "lines"
        path = "b.jsonl"
        format = "jsonl"
        [nodes.py]
        kind = "filter"
        inputs = ["a", "b"]
        replicas = 2
        field = "body"
        regex = "(?i)python"
        [nodes.count]
        kind = "tally"
        inputs = ["py"]
        by = "id"
        "#,
    );
    assert_exactly_once(&run.json(), &hits);
}

#[test]
fn replicated_source_shares_the_file_without_overlap() {
    let s = Scratch::new();
    corpus(&s, "in.jsonl", 0, N);
    let all: Vec<usize> = (0..N).collect();
    let run = run_ok(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        replicas = 3
        [nodes.pass]
        kind = "filter"
        inputs = ["src"]
        replicas = 2
        field = "id"
        contains = "r"
        [nodes.count]
        kind = "tally"
        inputs = ["pass"]
        by = "id"
        "#,
    );
    assert_exactly_once(&run.json(), &all);
}

#[test]
fn fan_out_gives_every_consumer_node_the_whole_stream() {
    let s = Scratch::new();
    let hits = corpus(&s, "in.jsonl", 0, N);
    let all: Vec<usize> = (0..N).collect();
    run_ok(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.everything]
        kind = "tally"
        inputs = ["src"]
        by = "id"
        output = "everything.json"
        [nodes.py]
        kind = "filter"
        inputs = ["src"]
        replicas = 3
        field = "body"
        contains = "PYTHON"
        [nodes.matches]
        kind = "tally"
        inputs = ["py"]
        by = "id"
        output = "matches.json"
        "#,
    );
    let read = |name| read_tally(&s, name);
    assert_exactly_once(&read("everything.json"), &all);
    assert_exactly_once(&read("matches.json"), &hits);
}

#[test]
fn a_node_that_receives_no_records_still_ends() {
    let s = Scratch::new();
    s.write("empty.txt", "");
    let run = run_ok(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "empty.txt"
        [nodes.py]
        kind = "filter"
        inputs = ["src"]
        replicas = 3
        field = "line"
        contains = "python"
        [nodes.count]
        kind = "tally"
        inputs = ["py"]
        "#,
    );
    assert_eq!(run.json(), serde_json::json!({"count": 0}));
}

#[test]
fn filter_that_matches_nothing_ends_its_consumers() {
    let s = Scratch::new();
    corpus(&s, "in.jsonl", 0, 1000);
    let run = run_ok(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.none]
        kind = "filter"
        inputs = ["src"]
        replicas = 2
        field = "no_such_field"
        contains = "x"
        [nodes.count]
        kind = "tally"
        inputs = ["none"]
        "#,
    );
    assert_eq!(run.json(), serde_json::json!({"count": 0}));
}

#[test]
fn sink_writes_every_record_as_a_json_line() {
    let s = Scratch::new();
    s.write("in.txt", "alpha\n\nbeta\r\ngamma\n");
    let run = run_ok(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.txt"
        field = "word"
        [nodes.out]
        kind = "sink"
        inputs = ["src"]
        "#,
    );
    let lines: Vec<serde_json::Value> =
        run.lines().into_iter().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(
        lines,
        vec![
            serde_json::json!({"word": "alpha"}),
            serde_json::json!({"word": "beta"}),
            serde_json::json!({"word": "gamma"}),
        ]
    );
}

#[test]
fn inverted_filter_and_tally_by_group_count_exactly() {
    let s = Scratch::new();
    s.write("in.txt", "a python\nb\nc PYTHON\nd\ne\n");
    let run = run_ok(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.txt"
        [nodes.rest]
        kind = "filter"
        inputs = ["src"]
        field = "line"
        contains = "python"
        ignore_case = true
        invert = true
        [nodes.count]
        kind = "tally"
        inputs = ["rest"]
        by = "line"
        "#,
    );
    assert_eq!(run.json(), serde_json::json!({"count": 3, "by": {"b": 1, "d": 1, "e": 1}}));
}

/// Run `file` with `--report`; returns the run (which must succeed) and the report.
fn run_with_report(s: &Scratch, file: &std::path::Path) -> (util::Run, serde_json::Value) {
    let report = s.path("report.json");
    let run = procnet(["run".as_ref(), file.as_os_str(), "--report".as_ref(), report.as_os_str()]).run();
    run.expect_code(0);
    (run, read_json(&report))
}

/// Sources start only once every consumer replica is connected, so the first replica to
/// connect does not take the whole stream: each of 3 replicas gets a fair share.
#[test]
fn every_replica_gets_a_share_from_the_first_record_on() {
    let s = Scratch::new();
    corpus(&s, "in.jsonl", 0, 3000);
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.work]
        kind = "filter"
        inputs = ["src"]
        replicas = 3
        field = "id"
        contains = "r"
        [nodes.count]
        kind = "tally"
        inputs = ["work"]
        "#,
    );
    let (run, report) = run_with_report(&s, &file);
    assert_eq!(run.json(), serde_json::json!({"count": 3000}));
    let shares = counters(&report, "work", "received");
    assert_eq!(shares.len(), 3);
    assert_eq!(shares.iter().sum::<u64>(), 3000, "{shares:?}");
    assert!(shares.iter().all(|&n| n >= 500), "skewed shares: {shares:?}");
}

#[test]
fn report_counts_match_the_tally() {
    let s = Scratch::new();
    let hits = corpus(&s, "in.jsonl", 0, 2000);
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.py]
        kind = "filter"
        inputs = ["src"]
        replicas = 2
        field = "body"
        contains = "PYTHON"
        [nodes.count]
        kind = "tally"
        inputs = ["py"]
        "#,
    );
    let (run, report) = run_with_report(&s, &file);
    let sum = |node: &str, field: &str| -> u64 { counters(&report, node, field).iter().sum() };
    assert_eq!(sum("src", "sent"), 2000);
    assert_eq!(sum("py", "received"), 2000);
    assert_eq!(sum("py", "sent"), hits.len() as u64);
    assert_eq!(sum("count", "received"), hits.len() as u64);
    assert_eq!(run.json()["count"], hits.len() as u64);
}

/// Batches wait for nothing: a source that has read all there is for now sends its partial
/// batch before it blocks, and so does every node before it waits for input; the last
/// partial batch goes out before `eos`.
#[test]
fn a_trickle_arrives_as_it_comes_and_its_last_partial_batch_is_not_lost() {
    use std::io::Write;
    let s = Scratch::new();
    let echo = s.path("echo.txt");
    let (running, mut w) = run_on_fifo(
        &s,
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.fifo"
            format = "jsonl"
            [nodes.keep]
            kind = "filter"
            inputs = ["src"]
            field = "id"
            regex = "^r"
            [nodes.echo]
            command = ["{}", "echo", "{}"]
            inputs = ["keep"]
            "#,
            util::rogue(),
            echo.display()
        ),
    );
    let lines_in_echo = || std::fs::read_to_string(&echo).map_or(0, |t| t.lines().count());
    w.write_all(b"{\"id\":\"r1\"}\n{\"id\":\"r2\"}\n{\"id\":\"r3\"}\n").unwrap();
    // The stream is still open: these three must arrive without waiting for more.
    running.wait_until("three records reach the end of the pipeline", || lines_in_echo() == 3);
    w.write_all(b"{\"id\":\"r4\"}\n{\"id\":\"r5\"}").unwrap();
    drop(w);
    let run = running.finish();
    run.expect_code(0);
    let got = std::fs::read_to_string(&echo).unwrap();
    assert_eq!(got, "r1\nr2\nr3\nr4\nr5\n");
}

/// Start `procnet run` on `toml` whose source reads the FIFO `in.fifo` (created here), and
/// return the run and the FIFO's writing end, once the source has opened it.
fn run_on_fifo(s: &Scratch, toml: &str) -> (util::Running, std::fs::File) {
    let fifo = s.path("in.fifo");
    util::mkfifo(&fifo);
    let file = s.write("t.toml", toml);
    let running = procnet(["run".as_ref(), file.as_os_str()]).timeout(std::time::Duration::from_secs(30)).start();
    let w = running.fifo_writer(&fifo);
    (running, w)
}

#[test]
fn a_line_longer_than_the_read_buffer_arrives_whole() {
    use std::io::Write;
    let s = Scratch::new();
    let (running, mut w) = run_on_fifo(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.fifo"
        [nodes.all]
        kind = "tally"
        inputs = ["src"]
        output = "all.json"
        [nodes.long]
        kind = "filter"
        inputs = ["src"]
        field = "line"
        regex = "^x+$"
        [nodes.count]
        kind = "tally"
        inputs = ["long"]
        "#,
    );
    // 3 MB in one line, then a short last line without a newline: the source's buffer is
    // 1 MiB, so the long line is assembled from several reads.
    let writer = std::thread::spawn(move || {
        w.write_all(&vec![b'x'; 3_000_000]).unwrap();
        w.write_all(b"\nshort").unwrap();
    });
    let run = running.finish();
    writer.join().unwrap();
    run.expect_code(0);
    // Two lines, not pieces of one: a split line would count more and match `^x+$` twice.
    let all = std::fs::read_to_string(s.path("all.json")).unwrap();
    assert_eq!(all.trim(), r#"{"count":2}"#);
    assert_eq!(run.json(), serde_json::json!({"count": 1}));
}

#[test]
fn a_file_without_a_final_newline_is_read_whole_by_every_share() {
    let s = Scratch::new();
    s.write("in.txt", "a\nb\r\n\nc\nd");
    let run = run_ok(
        &s,
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.txt"
        replicas = 2
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        by = "line"
        "#,
    );
    assert_eq!(run.json(), serde_json::json!({"count": 4, "by": {"a": 1, "b": 1, "c": 1, "d": 1}}));
}

/// The smallest `max_message_bytes` allowed still holds a full batch of small records
/// (a batch closes once it reaches 64 KiB, with the record that took it there).
#[test]
fn the_smallest_max_message_bytes_holds_full_batches() {
    let s = Scratch::new();
    let hits = corpus(&s, "in.jsonl", 0, N);
    let run = run_ok(
        &s,
        r#"
        [defaults]
        max_message_bytes = 1048576
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.keep]
        kind = "filter"
        inputs = ["src"]
        field = "body"
        contains = "python"
        ignore_case = true
        [nodes.count]
        kind = "tally"
        inputs = ["keep"]
        by = "id"
        "#,
    );
    assert_exactly_once(&run.json(), &hits);
}

/// `path = "-"` reads the launcher's stdin: the one replica that reads it gets the
/// launcher's stdin (every other node gets /dev/null), whether spawned or forked.
#[test]
fn a_source_with_path_dash_reads_the_launchers_stdin() {
    let s = Scratch::new();
    let data: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    let input = s.write("in.txt", &data);
    for start in ["spawn", "fork"] {
        let file = s.write(
            "t.toml",
            &format!(
                r#"
                [nodes.src]
                kind = "lines"
                path = "-"
                start = "{start}"
                [nodes.count]
                kind = "tally"
                inputs = ["src"]
                "#
            ),
        );
        let r = procnet(["run".as_ref(), file.as_os_str()]).stdin_file(&input).run();
        r.expect_code(0);
        assert_eq!(r.json(), serde_json::json!({"count": 5000}), "start = {start}: {}", r.stderr);
    }
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "-"
        start = "forkserver"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        "#,
    );
    let r = procnet(["check".as_ref(), file.as_os_str()]).run();
    r.expect_code(78);
    assert!(r.stderr.contains("node `src` reads stdin, which a fork server cannot pass on"), "{}", r.stderr);
}

/// From a terminal, a node reading stdin would be stopped (it runs in its own process
/// group): the launcher refuses before starting anything, and says how to pipe input in.
#[test]
fn a_source_reading_a_terminal_is_refused_before_anything_starts() {
    let s = Scratch::new();
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "-"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        "#,
    );
    // `script` runs the command on a pseudo-terminal: its stdin is a terminal.
    let command = format!("{} run {}; echo \"exit=$?\"", util::bin().display(), file.display());
    let r = on_terminal(&command).timeout(std::time::Duration::from_secs(30)).run();
    assert!(r.stdout.contains("node `src` reads stdin (`path = \"-\"`), which is a terminal here"), "{}", r.stdout);
    assert!(r.stdout.contains("exit=2"), "{}", r.stdout);
    assert!(!r.stdout.contains("count.0"), "nothing may start: {}", r.stdout);
}

/// A regular file is split into byte ranges, one per replica: each line is read by exactly
/// one replica however long the lines are (one of 3 MB across several ranges), with or
/// without a final newline, with fewer lines than replicas, or none.
#[test]
fn a_replicated_source_splits_its_file_into_ranges_exactly() {
    let s = Scratch::new();
    let long = "x".repeat(3 << 20);
    let mut lines: Vec<String> = (0..500).map(|i| format!("short {i}")).collect();
    lines.insert(250, long.clone());
    let files = [
        ("long.txt", format!("{}\n", lines.join("\n"))),
        ("no-final-newline.txt", lines.join("\n")),
        ("one-line.txt", "only\n".to_string()),
        ("two-lines.txt", format!("{long}\nend")),
        ("empty.txt", String::new()),
    ];
    for (name, text) in &files {
        s.write(name, text);
        for replicas in [2, 3, 5] {
            let toml = format!(
                r#"
                [nodes.src]
                kind = "lines"
                path = "{name}"
                replicas = {replicas}
                [nodes.out]
                kind = "sink"
                inputs = ["src"]
                path = "out.jsonl"
                "#
            );
            run_ok(&s, &toml);
            let out = std::fs::read_to_string(s.path("out.jsonl")).expect("out");
            let mut got: Vec<String> = out
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).expect("json")["line"]
                        .as_str()
                        .expect("str")
                        .to_string()
                })
                .collect();
            let mut want: Vec<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
            got.sort();
            want.sort();
            assert!(got == want, "{name} over {replicas} replicas: {} lines, want {}", got.len(), want.len());
        }
    }
}
