//! The live view (a line per node, with a bar where the total is known) and the run report
//! are drawn on a terminal, and only there.

use std::time::Duration;

use crate::util::{self, on_terminal, procnet, read_tally, Scratch};

/// A site answering after 50 ms, and 60 URLs fetched 2 at a time: long enough to draw.
fn slow_fetch(s: &Scratch) -> std::path::PathBuf {
    s.write("site/a.test/index.html", "python\n");
    // The errors come first, so frames drawn while the rest is fetched show them.
    s.write("urls.txt", &("http://a.test/missing\n".repeat(10) + &"http://a.test/\n".repeat(50)));
    s.write(
        "t.toml",
        r#"
        [nodes.site]
        kind = "serve"
        dir = "site"
        latency_ms = 50
        [nodes.urls]
        kind = "lines"
        path = "urls.txt"
        field = "url"
        [nodes.fetch]
        kind = "fetch"
        inputs = ["urls"]
        concurrency = 2
        connect_to = "${site.url}"
        [nodes.count]
        kind = "tally"
        inputs = ["fetch"]
        output = "tally.json"
        "#,
    )
}

#[test]
fn a_terminal_shows_done_over_total_and_errors() {
    let s = Scratch::new();
    let topology = slow_fetch(&s);
    let command = format!("{} run {}", util::bin().display(), topology.display());
    let r = on_terminal(&command).timeout(Duration::from_secs(60)).run();
    r.expect_code(0);
    assert!(r.stdout.contains("fetch ["), "no progress bar drawn:\n{}", r.stdout);
    assert!(r.stdout.contains("/60"), "no total shown:\n{}", r.stdout);
    assert!(r.stdout.contains("errors"), "no error count shown:\n{}", r.stdout);
    // The run report at the end: a line per node with its counters and exit status.
    // After the report's header (the last line naming its columns); its rows, unlike the
    // live view's lines (which a loaded machine may break anywhere), have no bar.
    let lines: Vec<&str> = r.stdout.lines().collect();
    let header = lines.iter().rposition(|l| l.contains("replicas") && l.contains("wall s"));
    let report = &lines[header.expect("no run report") + 1..];
    let fetch_line = report
        .iter()
        .find(|l| l.trim_start().starts_with("fetch ") && !l.contains('['))
        .unwrap_or_else(|| panic!("no fetch row in the report:\n{}", r.stdout));
    let cols: Vec<&str> = fetch_line.split_whitespace().collect();
    assert_eq!(cols[1..5], ["1", "60", "60", "10"], "fetch: replicas, in, out, errors: {fetch_line}");
    assert_eq!(cols.last(), Some(&"0"), "exit status: {fetch_line}");
    assert!(r.stdout.contains("processes, ready in"), "{}", r.stdout);
    let tally = read_tally(&s, "tally.json");
    assert_eq!(tally, serde_json::json!({"count": 60}));
}

#[test]
fn nothing_is_drawn_when_stderr_is_not_a_terminal() {
    let s = Scratch::new();
    let topology = slow_fetch(&s);
    let r = procnet(["run".as_ref(), topology.as_os_str()]).run();
    r.expect_code(0);
    assert_eq!(r.stderr, "", "progress output without a terminal");
}

/// On a terminal, each node's lines carry a coloured `name.replica |` prefix.
#[test]
fn a_terminal_gets_coloured_prefixes() {
    let s = Scratch::new();
    s.write("in.txt", "a\nb\n");
    let topology = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.txt"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        start = "fork"
        "#,
    );
    let command = format!("{} run {}", util::bin().display(), topology.display());
    let r = on_terminal(&command).timeout(Duration::from_secs(60)).run();
    r.expect_code(0);
    // The tally is the second node: the second of the six colours (ANSI 32, green).
    assert!(r.stdout.contains("\x1b[32mcount.0 |\x1b[0m {\"count\":2}"), "{:?}", r.stdout);
}
