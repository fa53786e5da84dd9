//! PUB/SUB edges: every replica of every subscribing node gets every record whose topic it
//! subscribed to, from the first record on, and end of stream reaches every subscriber of
//! every publisher replica. Each run tallies by a unique id, so a lost or duplicated record
//! shows up as a missing key or a wrong count.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::util::{self, counters, procnet, read_json, read_tally, Scratch};

const SITES: usize = 5;

/// `n` JSON lines `{"id": "r<i>", "site": "site-<i % 5>"}`.
fn corpus(s: &Scratch, n: usize) {
    let mut text = String::new();
    for i in 0..n {
        let _ = writeln!(text, r#"{{"id":"r{i}","site":"site-{}"}}"#, i % SITES);
    }
    s.write("in.jsonl", &text);
}

/// Assert `tally` counts each id of the records whose site is in `sites` exactly `times` times.
fn assert_ids(tally: &serde_json::Value, n: usize, sites: &[usize], times: u64, what: &str) {
    let want: BTreeMap<String, u64> =
        (0..n).filter(|i| sites.contains(&(i % SITES))).map(|i| (format!("r{i}"), times)).collect();
    let got: BTreeMap<String, u64> = serde_json::from_value(tally["by"].clone()).expect("by");
    assert_eq!(tally["count"], want.values().sum::<u64>(), "{what}: count");
    let wrong: Vec<_> = want.iter().filter(|(k, v)| got.get(*k) != Some(v)).take(5).collect();
    assert!(wrong.is_empty() && got.len() == want.len(), "{what}: ids not delivered exactly {times}x: {wrong:?}");
}

const FANOUT: &str = r#"
[nodes.src]
kind = "lines"
path = "in.jsonl"
format = "jsonl"

[nodes.pub]
kind = "filter"
inputs = ["src"]
replicas = 2
field = "id"
regex = "^r"
outputs = { out = { pattern = "pub", topic_field = "site" } }

[nodes.all]
kind = "tally"
inputs = ["pub"]
by = "id"
output = "all.json"

[nodes.one]
kind = "tally"
inputs = [{ from = "pub", topics = ["site-1"] }]
by = "id"
output = "one.json"

[nodes.pair]
kind = "filter"
inputs = [{ from = "pub.out", topics = ["site-2", "site-3"] }]
replicas = 2
field = "id"
regex = "^r"

[nodes.pairs]
kind = "tally"
inputs = ["pair"]
by = "id"
output = "pairs.json"
"#;

/// One publisher (2 replicas), three subscriber nodes with different topics, one of them
/// with 2 replicas (each of which gets every matching record): exact, 20 runs in a row.
#[test]
fn three_subscribers_get_exactly_their_topics_twenty_runs_in_a_row() {
    let s = Scratch::new();
    let n = 3000;
    corpus(&s, n);
    let file = s.write("t.toml", FANOUT);
    for run in 0..20 {
        let r = procnet(["run".as_ref(), file.as_os_str()]).run();
        r.expect_code(0);
        let what = |name: &str| format!("run {run}, {name}");
        assert_ids(&read_tally(&s, "all.json"), n, &[0, 1, 2, 3, 4], 1, &what("all"));
        assert_ids(&read_tally(&s, "one.json"), n, &[1], 1, &what("one"));
        assert_ids(&read_tally(&s, "pairs.json"), n, &[2, 3], 2, &what("pairs"));
    }
}

/// A node with a push port and a pub port feeds both kinds of reader exactly.
#[test]
fn a_node_with_a_push_and_a_pub_port_feeds_both() {
    let s = Scratch::new();
    let n = 5000;
    corpus(&s, n);
    let file = s.write(
        "t.toml",
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.jsonl"
            format = "jsonl"
            [nodes.split]
            command = ["{}", "split"]
            inputs = ["src"]
            outputs = {{ out = "push", copy = {{ pattern = "pub", topic_field = "site" }} }}
            [nodes.pushed]
            kind = "tally"
            inputs = ["split"]
            by = "id"
            output = "pushed.json"
            [nodes.copied]
            kind = "tally"
            inputs = [{{ from = "split.copy", topics = ["site-0", "site-4"] }}]
            by = "id"
            output = "copied.json"
            "#,
            util::rogue()
        ),
    );
    procnet(["run".as_ref(), file.as_os_str()]).run().expect_code(0);
    assert_ids(&read_tally(&s, "pushed.json"), n, &[0, 1, 2, 3, 4], 1, "pushed");
    assert_ids(&read_tally(&s, "copied.json"), n, &[0, 4], 1, "copied");
}

/// A slow subscriber slows the publisher down (XPUB_NODROP) instead of losing records, and
/// a fast subscriber of the same port still gets everything.
#[test]
fn a_slow_subscriber_loses_nothing() {
    let s = Scratch::new();
    let n = 20_000;
    corpus(&s, n);
    let file = s.write(
        "t.toml",
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.jsonl"
            format = "jsonl"
            [nodes.pub]
            kind = "filter"
            inputs = ["src"]
            field = "id"
            regex = "^r"
            outputs = {{ out = "pub" }}
            [nodes.slow]
            command = ["{}", "crash-after", "999999999"]
            inputs = ["pub"]
            [nodes.slow_count]
            kind = "tally"
            inputs = ["slow"]
            by = "id"
            output = "slow.json"
            [nodes.fast_count]
            kind = "tally"
            inputs = ["pub"]
            by = "id"
            output = "fast.json"
            "#,
            util::rogue()
        ),
    );
    procnet(["run".as_ref(), file.as_os_str()]).run().expect_code(0);
    assert_ids(&read_tally(&s, "slow.json"), n, &[0, 1, 2, 3, 4], 1, "slow");
    assert_ids(&read_tally(&s, "fast.json"), n, &[0, 1, 2, 3, 4], 1, "fast");
}

/// The tally's `progress` port publishes running counts, the last of them the result.
#[test]
fn tally_publishes_its_counts_on_its_progress_port() {
    let s = Scratch::new();
    corpus(&s, 1000);
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.jsonl"
        format = "jsonl"
        [nodes.count]
        kind = "tally"
        inputs = ["src"]
        by = "site"
        output = "count.json"
        [nodes.watch]
        kind = "sink"
        inputs = ["count.progress"]
        path = "progress.jsonl"
        "#,
    );
    procnet(["run".as_ref(), file.as_os_str()]).run().expect_code(0);
    let progress = std::fs::read_to_string(s.path("progress.jsonl")).expect("progress");
    let last: serde_json::Value =
        serde_json::from_str(progress.lines().last().expect("a progress record")).expect("json");
    assert_eq!(last, read_tally(&s, "count.json"));
    assert_eq!(last["count"], 1000);
}

/// Subscribers appear in the run report with exactly what they received.
#[test]
fn the_report_counts_what_each_subscriber_received() {
    let s = Scratch::new();
    let n = 3000;
    corpus(&s, n);
    let file = s.write("t.toml", FANOUT);
    let report = s.path("report.json");
    procnet(["run".as_ref(), file.as_os_str(), "--report".as_ref(), report.as_os_str()]).run().expect_code(0);
    let report = read_json(&report);
    let received = |node: &str| counters(&report, node, "received");
    assert_eq!(received("all"), vec![n as u64]);
    assert_eq!(received("one"), vec![(n / SITES) as u64]);
    assert_eq!(received("pair"), vec![(2 * n / SITES) as u64; 2]);
    assert_eq!(received("pub").iter().sum::<u64>(), n as u64);
}

/// A subscriber with `drop = true` does not slow the publisher: while it is full, records
/// meant for it are dropped and counted (never silently), everything it does receive ends
/// exactly, and the lossless subscriber of the same port still gets every record.
#[test]
fn a_dropping_subscriber_sheds_records_counted_while_the_others_get_all() {
    let s = Scratch::new();
    let n = 20_000;
    corpus(&s, n);
    let file = s.write(
        "t.toml",
        &format!(
            r#"
            [nodes.src]
            kind = "lines"
            path = "in.jsonl"
            format = "jsonl"
            [nodes.pub]
            kind = "filter"
            inputs = ["src"]
            field = "id"
            regex = "^r"
            outputs = {{ out = "pub" }}
            [nodes.all]
            kind = "tally"
            inputs = ["pub"]
            by = "id"
            output = "all.json"
            [nodes.slow]
            command = ["{}", "sleepy", "200"]
            inputs = [{{ from = "pub", drop = true }}]
            [nodes.some]
            kind = "tally"
            inputs = ["slow"]
            output = "some.json"
            "#,
            util::rogue()
        ),
    );
    let report = s.path("report.json");
    let r = procnet(["run".as_ref(), file.as_os_str(), "--report".as_ref(), report.as_os_str()]).run();
    r.expect_code(0);
    assert_ids(&read_tally(&s, "all.json"), n, &[0, 1, 2, 3, 4], 1, "lossless subscriber");
    let report = read_json(&report);
    let replica = |node: &str| {
        report["replicas"].as_array().expect("replicas").iter().find(|r| r["node"] == node).cloned().expect(node)
    };
    let dropped = replica("pub")["dropped"].as_u64().expect("dropped");
    let got = read_tally(&s, "some.json")["count"].as_u64().expect("count");
    assert!(dropped > 0, "a subscriber 200 us per record behind 20,000 records dropped nothing");
    assert_eq!(got + dropped, n as u64, "records received plus records dropped must be every record");
    assert_eq!(replica("slow")["received"], got);
    assert!(
        r.stderr.contains(&format!("node `pub.0` dropped {dropped} records for subscribers with `drop = true`")),
        "{}",
        r.stderr
    );
}
