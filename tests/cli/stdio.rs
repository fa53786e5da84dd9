//! Any program as a node (`command` with `stdio`): real programs of the machine (awk, sed,
//! grep, perl, jq, node, a Python script of the standard library only) in the middle of a
//! pipeline, as a source and as a sink, and the ways a program goes wrong: invalid lines,
//! a failure mid-stream, a hang after its input ends, a flood on stderr, a program that
//! reads everything before it writes, records of a megabyte.

use std::time::Duration;

use crate::util::{procnet, run, Scratch};

/// `n` text lines; every third mentions Python (in varying case), the rest Rust.
fn text_corpus(s: &Scratch, n: usize) -> Vec<String> {
    let lines: Vec<String> = (0..n)
        .map(|i| match i % 6 {
            0 => format!("line {i} is about Python"),
            3 => format!("line {i} is about PYTHON and more"),
            _ => format!("line {i} is about Rust"),
        })
        .collect();
    s.write("corpus.txt", &(lines.join("\n") + "\n"));
    lines
}

/// The lines of `path` (a sink's JSON lines), each record's `field`, sorted.
fn field_lines(s: &Scratch, path: &str, field: &str) -> Vec<String> {
    let text = std::fs::read_to_string(s.path(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut got: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            match &v[field] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        })
        .collect();
    got.sort();
    got
}

/// Whether `program` is on PATH; if not, the test says it skips.
fn have(program: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    if !found {
        eprintln!("skipped: `{program}` is not installed");
    }
    found
}

/// A text pipeline: `lines` -> the stage (`stage` is its TOML body, without inputs or
/// replicas) x `replicas` -> sink; the sink's lines must be exactly `want`.
fn text_stage(stage: &str, replicas: u32, want: &[String]) {
    let s = Scratch::new();
    text_corpus(&s, 3000);
    let toml = format!(
        r#"
        [nodes.src]
        kind = "lines"
        path = "corpus.txt"
        [nodes.stage]
        {stage}
        inputs = ["src"]
        replicas = {replicas}
        [nodes.out]
        kind = "sink"
        inputs = ["stage"]
        path = "out.jsonl"
        "#
    );
    let r = run(&s, &toml);
    r.expect_code(0);
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(field_lines(&s, "out.jsonl", "line"), want, "stage {stage} x{replicas}\n{}", r.stderr);
}

/// The lines of the text corpus that mention python in any case.
fn pythonic() -> Vec<String> {
    let s = Scratch::new();
    text_corpus(&s, 3000).into_iter().filter(|l| l.to_lowercase().contains("python")).collect()
}

#[test]
fn awk_sed_grep_and_perl_are_stages_of_a_replicated_pipeline() {
    let want = pythonic();
    let stages = [
        r#"command = ["awk", "tolower($0) ~ /python/"]"#,
        r#"command = ["sed", "-n", "/[Pp][Yy][Tt][Hh][Oo][Nn]/p"]"#,
        r#"command = ["grep", "-i", "python"]"#,
        r#"command = ["perl", "-ne", "print if /python/i"]"#,
    ];
    for stage in stages {
        let program = stage.split('"').nth(1).expect("a program");
        if !have(program) {
            continue;
        }
        for replicas in [1, 3] {
            text_stage(&format!("{stage}\n        stdio = \"lines\""), replicas, &want);
        }
    }
}

/// A JSON pipeline: `lines` (jsonl) -> the stage x `replicas` -> sink; the sink must hold
/// exactly the records whose `body` mentions python, by their `n`.
fn json_stage(stage: &str, replicas: u32) {
    let s = Scratch::new();
    let mut corpus = String::new();
    let mut want = Vec::new();
    for n in 0..2000 {
        let body = if n % 4 == 0 { "all about Python, and ünïcödé" } else { "all about Rust" };
        corpus.push_str(&format!("{{\"n\":{n},\"body\":\"{body}\",\"tags\":[1,2,{{\"deep\":null}}]}}\n"));
        if n % 4 == 0 {
            want.push(n.to_string());
        }
    }
    s.write("corpus.jsonl", &corpus);
    let toml = format!(
        r#"
        [nodes.src]
        kind = "lines"
        path = "corpus.jsonl"
        format = "jsonl"
        [nodes.stage]
        {stage}
        stdio = "jsonl"
        inputs = ["src"]
        replicas = {replicas}
        [nodes.out]
        kind = "sink"
        inputs = ["stage"]
        path = "out.jsonl"
        "#
    );
    let r = run(&s, &toml);
    r.expect_code(0);
    want.sort();
    assert_eq!(field_lines(&s, "out.jsonl", "n"), want, "stage {stage} x{replicas}\n{}", r.stderr);
    // The records come back whole, nested values and Unicode included.
    let first = std::fs::read_to_string(s.path("out.jsonl")).expect("out");
    assert!(first.contains(r#""tags":[1,2,{"deep":null}]"#) && first.contains("ünïcödé"), "{first}");
}

#[test]
fn jq_node_and_a_python_script_are_json_stages_of_a_replicated_pipeline() {
    let python = "import json, sys\n\
                  for line in sys.stdin:\n    \
                      rec = json.loads(line)\n    \
                      if 'python' in rec['body'].lower():\n        \
                          print(json.dumps(rec, ensure_ascii=False), flush=True)\n";
    let node = "const rl = require('readline').createInterface({ input: process.stdin });\n\
                rl.on('line', (line) => { const r = JSON.parse(line); \
                if (r.body.toLowerCase().includes('python')) console.log(JSON.stringify(r)); });\n";
    let stages = [
        ("jq", r#"command = ["jq", "-c", "select(.body | test(\"python\"; \"i\"))"]"#.to_string()),
        ("python3", format!("command = [\"python3\", \"-c\", {python:?}]")),
        ("node", format!("command = [\"node\", \"-e\", {node:?}]")),
    ];
    for (program, stage) in stages {
        if !have(program) {
            continue;
        }
        for replicas in [1, 3] {
            json_stage(&stage, replicas);
        }
    }
}

#[test]
fn a_program_is_a_source_and_a_program_is_a_sink() {
    let s = Scratch::new();
    let toml = r#"
        [nodes.numbers]
        command = ["seq", "1", "10000"]
        stdio = "lines"
        field = "n"
        [nodes.odd]
        command = ["awk", "$0 % 2 == 1"]
        stdio = "lines"
        field = "n"
        inputs = ["numbers"]
        replicas = 2
        [nodes.total]
        command = ['awk', '{ s += $0 } END { printf "sum %d\n", s }']
        stdio = "lines"
        field = "n"
        inputs = ["odd"]
    "#;
    let r = run(&s, toml);
    r.expect_code(0);
    // Nobody reads the sink's records: its stdout is its output, as a program's is.
    assert!(r.stdout.trim().ends_with("| sum 25000000"), "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn a_program_that_writes_invalid_lines_has_them_counted_and_named() {
    let s = Scratch::new();
    let toml = r#"
        [nodes.src]
        command = ["seq", "1", "1000"]
        stdio = "lines"
        [nodes.mid]
        command = ['python3', '-c', '''
import json, sys
for line in sys.stdin:
    n = int(json.loads(line)["line"])
    print("not json" if n % 100 == 0 else json.dumps({"n": n}))
''']
        stdio = "jsonl"
        inputs = ["src"]
        [nodes.count]
        kind = "tally"
        inputs = ["mid"]
        output = "count.json"
    "#;
    let r = run(&s, toml);
    r.expect_code(65);
    assert!(r.stderr.contains("node `mid.0` dropped 10 bad records"), "{}", r.stderr);
    assert!(r.stderr.contains("line 100 of its stdout: not JSON"), "{}", r.stderr);
}

#[test]
fn a_program_that_exits_3_mid_stream_fails_the_run_with_its_status_and_last_words() {
    let s = Scratch::new();
    let toml = r#"
        [nodes.src]
        command = ["seq", "1", "100000"]
        stdio = "lines"
        [nodes.mid]
        command = ["awk", "{ print } NR == 5000 { print \"bad input near line 5000\" > \"/dev/stderr\"; exit 3 }"]
        stdio = "lines"
        inputs = ["src"]
        [nodes.count]
        kind = "tally"
        inputs = ["mid"]
    "#;
    let r = run(&s, toml);
    r.expect_code(1);
    assert!(r.stderr.contains("node `mid.0` failed: program `awk"), "{}", r.stderr);
    assert!(
        r.stderr.contains("exited with status 3; its last lines on stderr:\n    bad input near line 5000"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_program_that_hangs_after_its_input_ends_is_killed_after_the_grace_and_named() {
    let s = Scratch::new();
    let toml = r#"
        [nodes.src]
        command = ["seq", "1", "100"]
        stdio = "lines"
        [nodes.mid]
        command = ["sh", "-c", "cat; echo 'input read, now waiting' >&2; sleep 600"]
        stdio = "lines"
        inputs = ["src"]
        [nodes.count]
        kind = "tally"
        inputs = ["mid"]
    "#;
    let file = s.write("t.toml", toml);
    let r = procnet(["run".as_ref(), file.as_os_str(), "--grace".as_ref(), "1".as_ref()])
        .timeout(Duration::from_secs(30))
        .run();
    r.expect_code(1);
    assert!(r.stderr.contains("did not end within 1 s of the end of its input (`--grace`): killed"), "{}", r.stderr);
    assert!(r.stderr.contains("input read, now waiting"), "{}", r.stderr);
}

#[test]
fn a_program_flooding_stderr_neither_blocks_nor_loses_records() {
    let s = Scratch::new();
    let toml = r#"
        [nodes.src]
        command = ["seq", "1", "20000"]
        stdio = "lines"
        [nodes.noisy]
        command = ['perl', '-ne', 'print STDERR ("x" x 300) . "\n" for 1..5; print']
        stdio = "lines"
        inputs = ["src"]
        replicas = 2
        [nodes.count]
        kind = "tally"
        inputs = ["noisy"]
        output = "count.json"
    "#;
    let r = run(&s, toml);
    r.expect_code(0);
    assert_eq!(std::fs::read_to_string(s.path("count.json")).expect("count").trim(), r#"{"count":20000}"#);
    let relayed = r.stderr.lines().filter(|l| l.starts_with("noisy.")).count();
    assert_eq!(relayed, 100_000, "every stderr line is passed on, prefixed");
}

#[test]
fn a_program_that_reads_everything_before_writing_does_not_deadlock() {
    let s = Scratch::new();
    // 400,000 lines, far more than the pipes hold: sort writes nothing until its input ends.
    let toml = r#"
        [nodes.src]
        command = ["seq", "1", "400000"]
        stdio = "lines"
        [nodes.sorted]
        command = ["sort", "-n", "-r"]
        stdio = "lines"
        inputs = ["src"]
        [nodes.first]
        command = ["head", "-n", "1"]
        stdio = "lines"
        inputs = ["sorted"]
    "#;
    let r = run(&s, toml);
    // `head` stops reading after one line: the run fails, naming it, rather than dropping
    // the rest silently.
    r.expect_code(1);
    assert!(
        r.stderr.contains("node `first.0` failed: program `head -n 1` exited before reading all its input"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.trim().ends_with("| 400000"), "{}", r.stdout);
    let toml = toml.replace(r#"["head", "-n", "1"]"#, r#"["awk", "NR == 1 { print } END { print NR }"]"#);
    let r = run(&s, &toml);
    r.expect_code(0);
    let printed: Vec<&str> = r.stdout.lines().filter_map(|l| l.split('|').nth(1)).map(str::trim).collect();
    assert_eq!(printed, ["400000", "400000"], "{}", r.stderr);
}

#[test]
fn records_of_a_megabyte_pass_through_a_program() {
    let s = Scratch::new();
    let mut corpus = String::new();
    for i in 0..8 {
        corpus.push_str(&format!("{{\"n\":{i},\"blob\":\"{}\"}}\n", "x".repeat(1 << 20)));
    }
    s.write("big.jsonl", &corpus);
    let toml = r#"
        [nodes.src]
        kind = "lines"
        path = "big.jsonl"
        format = "jsonl"
        [nodes.copy]
        command = ["cat"]
        stdio = "jsonl"
        inputs = ["src"]
        replicas = 2
        [nodes.out]
        kind = "sink"
        inputs = ["copy"]
        path = "out.jsonl"
    "#;
    let r = run(&s, toml);
    r.expect_code(0);
    let out = std::fs::read_to_string(s.path("out.jsonl")).expect("out");
    let (mut got, mut want): (Vec<&str>, Vec<&str>) = (out.lines().collect(), corpus.lines().collect());
    got.sort_unstable();
    want.sort_unstable();
    assert!(got == want, "the 8 records of 1 MiB must come back whole ({} lines)", got.len());
}

#[test]
fn stdio_keys_are_checked_with_their_location() {
    let s = Scratch::new();
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        command = ["seq", "1", "3"]
        stdio = "csv"
        [nodes.mid]
        command = ["cat"]
        stdio = "jsonl"
        field = "text"
        inputs = ["src"]
        "#,
    );
    let r = procnet(["check".as_ref(), file.as_os_str()]).run();
    r.expect_code(78);
    assert!(r.stderr.contains("t.toml:4:17"), "{}", r.stderr);
    assert!(r.stderr.contains("`field` in node `mid` applies to `stdio = \"lines\"` only"), "{}", r.stderr);
}

#[test]
fn a_programs_env_and_cwd_reach_it_whatever_starts_its_adapter() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("work")).expect("mkdir");
    s.write("work/words.txt", "one\ntwo\n");
    for start in ["spawn", "fork", "forkserver"] {
        let toml = format!(
            r#"
            [nodes.src]
            command = ["sh", "-c", "cat words.txt; echo \"$GREETING\""]
            stdio = "lines"
            env = {{ GREETING = "${{PROCNET_TEST_WHO:-hello}}" }}
            cwd = "work"
            start = "{start}"
            [nodes.out]
            kind = "sink"
            inputs = ["src"]
            path = "out.jsonl"
            "#
        );
        let file = s.write("t.toml", &toml);
        let r = procnet(["run".as_ref(), file.as_os_str()]).env("PROCNET_TEST_WHO", "bonjour").run();
        r.expect_code(0);
        assert_eq!(field_lines(&s, "out.jsonl", "line"), ["bonjour", "one", "two"], "start = {start}\n{}", r.stderr);
    }
}
