//! A property test of the topology loader (`procnet::topology::load_bytes`, then what
//! `check` and `graph` print), on the stable toolchain: structured inputs (topologies built
//! from the real keys and kinds, then mutated: long names, deep chains, junk bytes, bytes
//! that are not UTF-8, duplicated tables and lines, huge numbers, deep nesting).
//!
//! For every input: no panic, a bounded time, and a verdict: a topology (whose summary and
//! graph render), or a report in which every diagnostic names `fuzz.toml:line:column`
//! within the file.
//!
//! `PROCNET_FUZZ_CASES` sets the number of inputs (default 1000: about two seconds in debug, as
//! part of `make test`), `PROCNET_FUZZ_SEED` the seed (default: a new one, printed, so that
//! a failure can be run again; see `tests/util/fuzz.rs`). A long run:
//! `PROCNET_FUZZ_CASES=100000 cargo test --release --test formats fuzz_topology -- --nocapture`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use crate::util::fuzz;

/// How long one input may take: far above the usual milliseconds, far below a hang.
const MAX_TIME: Duration = Duration::from_secs(2);

/// Node names: the usual, and the hostile (long, dotted, empty, quoted, not ASCII).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["src", "a", "b", "keep", "count", "out", "site"]).prop_map(str::to_string),
        1 => (1usize..200).prop_map(|n| "n".repeat(n)),
        1 => "[a-z.\\- é\"\\\\]{0,12}",
    ]
}

/// A TOML key for `name`: bare when it can be, else quoted.
fn key(name: &str) -> String {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

/// Values: mostly plausible ones, and every TOML type, huge numbers, long strings.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "\"in.txt\"", "\"line\"", "\"x\"", "\"-\"", "\"out.txt\"", "\"{line}\"", "\"a|b(\"", "\"push\"",
            "\"pub\"", "\"tcp\"", "\"ipc\"", "\"fork\"", "\"spawn\"", "\"forkserver\"", "\"on-failure\"",
            "\"never\"", "\"json\"", "\"${site.url}\"", "\"127.0.0.1:1\"", "\"10.0.0.1\"", "\"0.0.0.0\"",
        ])
        .prop_map(str::to_string),
        1 => prop::sample::select(vec![
            "0", "1", "3", "1024", "1025", "-1", "99999999999999999999", "1e400", "nan", "true", "false",
            "1979-05-27T07:32:00Z", "[]", "[\"src\"]", "[\"src\", \"src\"]", "[\"src.out\"]", "[1, \"a\"]", "{}",
            "{ from = \"src\", topics = [\"a\"], drop = true }", "{ pattern = \"pub\", topic_field = \"line\" }",
            "[{ from = \"keep.out\" }]", "\"\\u0000\"", "\"\\uD800\"", "'''\n'''",
        ])
        .prop_map(str::to_string),
        1 => (1usize..3000).prop_map(|n| format!("\"{}\"", "v".repeat(n))),
        1 => "\"[ -~]{0,20}\"",
    ]
}

/// Keys of a node: the real ones of every kind and of every node, and a few that are not.
fn node_key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "kind",
        "command",
        "external",
        "inputs",
        "outputs",
        "replicas",
        "transport",
        "start",
        "restart",
        "max_restarts",
        "max_message_bytes",
        "host",
        "path",
        "format",
        "field",
        "contains",
        "regex",
        "ignore_case",
        "invert",
        "by",
        "by_host",
        "output",
        "template",
        "url_field",
        "concurrency",
        "timeout_ms",
        "retries",
        "max_body_bytes",
        "user_agent",
        "max_redirects",
        "connect_to",
        "dir",
        "latency_ms",
        "forbidden",
        "slow",
        "slow_ms",
        "replica",
        "kinds",
        "",
    ])
}

/// One `[nodes.NAME]` table: a kind or a command, inputs, and some other keys.
fn node() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec![
        "kind = \"lines\"\npath = \"in.txt\"",
        "kind = \"filter\"\nfield = \"line\"\ncontains = \"x\"",
        "kind = \"filter\"\nfield = \"line\"\nregex = \"(a+)+$\"",
        "kind = \"tally\"",
        "kind = \"sink\"\npath = \"out.txt\"",
        "kind = \"fetch\"",
        "kind = \"serve\"\ndir = \".\"",
        "command = [\"cat\"]",
        "external = true",
        "",
    ]);
    let inputs = prop::collection::vec(name(), 0..3);
    let extra = prop::collection::vec((node_key(), value()), 0..4);
    (name(), kind, inputs, extra).prop_map(|(n, kind, inputs, extra)| {
        let mut t = format!("[nodes.{}]\n{kind}\n", key(&n));
        if !inputs.is_empty() {
            let list: Vec<String> = inputs.iter().map(|i| format!("{i:?}")).collect();
            let _ = writeln!(t, "inputs = [{}]", list.join(", "));
        }
        for (k, v) in extra {
            let _ = writeln!(t, "{} = {v}", key(k));
        }
        t
    })
}

/// A topology that is mostly valid: `n0` a command with a push and a pub port, each later
/// node reading an earlier one that sends records, with the options that change what
/// `check` prints (replicas, start, transport, subscriptions with topics and drops, hosts).
fn coherent() -> impl Strategy<Value = String> {
    let node = (
        0usize..5,
        any::<Index>(),
        prop::sample::select(vec![
            "",
            "replicas = 3\n",
            "replicas = 1024\n",
            "transport = \"tcp\"\n",
            "host = [\"a\", \"b\"]\nreplicas = 2\n",
        ]),
        any::<bool>(),
    );
    prop::collection::vec(node, 1..10).prop_map(|nodes| {
        let mut t = String::from("[nodes.n0]\ncommand = [\"cat\"]\noutputs = { out = \"push\", news = \"pub\" }\n");
        let mut senders = vec![0];
        for (i, (kind, from, extra, subscribe)) in nodes.into_iter().enumerate() {
            let n = i + 1;
            let (kind, sends) = match kind {
                0 => ("kind = \"filter\"\nfield = \"line\"\ncontains = \"x\"\nstart = \"fork\"".to_string(), true),
                1 => ("kind = \"tally\"".to_string(), false),
                2 => (format!("kind = \"sink\"\npath = \"out{n}.txt\""), false),
                3 => ("command = [\"cat\"]".to_string(), true),
                _ => ("external = true".to_string(), true),
            };
            let input = if subscribe {
                "{ from = \"n0.news\", topics = [\"a\"], drop = true }".to_string()
            } else {
                format!("\"n{}\"", senders[from.index(senders.len())])
            };
            let extra = if sends { extra } else { "" };
            let _ = write!(t, "[nodes.n{n}]\n{kind}\ninputs = [{input}]\n{extra}");
            if sends {
                senders.push(n);
            }
        }
        t
    })
}

/// A chain of `n` nodes, each reading the one before (closed into a cycle, or not).
fn chain(n: usize, cycle: bool) -> String {
    let mut t = String::from("[nodes.c0]\nkind = \"lines\"\npath = \"in.txt\"\n");
    for i in 1..n {
        let _ = write!(
            t,
            "[nodes.c{i}]\nkind = \"filter\"\ninputs = [\"c{}\"]\nfield = \"line\"\ncontains = \"a\"\n",
            i - 1
        );
    }
    if cycle {
        t = t.replacen(
            "kind = \"lines\"\npath = \"in.txt\"",
            &format!("command = [\"cat\"]\ninputs = [\"c{}\"]", n - 1),
            1,
        );
    }
    t
}

/// A whole topology: an optional name, `[defaults]`, `[hosts]`, and nodes or a long chain.
fn topology() -> impl Strategy<Value = String> {
    let head = prop::sample::subsequence(
        vec![
            "name = \"fuzz\"\n",
            "[defaults]\nrestart = \"on-failure\"\nmax_restarts = 5\n",
            "[hosts.a]\naddress = \"10.0.0.1\"\n[hosts.b]\naddress = \"10.0.0.2\"\nbind = \"0.0.0.0\"\n",
        ],
        0..=3,
    );
    let body = prop_oneof![
        4 => prop::collection::vec(node(), 1..8).prop_map(|nodes| nodes.concat()),
        4 => coherent(),
        1 => (1usize..3000, any::<bool>()).prop_map(|(n, cycle)| chain(n, cycle)),
    ];
    (head, body).prop_map(|(head, body)| head.concat() + &body)
}

/// What may happen to a topology's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// Junk (any bytes, UTF-8 or not) inserted somewhere.
    Insert(Index, Vec<u8>),
    /// Some bytes taken out.
    Delete(Index, usize),
    /// A line repeated (a duplicated key or table header).
    RepeatLine(Index, usize),
    /// The whole text repeated (every table twice).
    Twice,
    /// The file cut short.
    Truncate(Index),
    /// A number replaced by a huge one.
    HugeNumber(Index),
    /// Arrays or inline tables nested deep.
    Nest(Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), prop::sample::select(vec![&b"\xff"[..], b"\xc3", b"\0", b"\r", b"\t", b"\"", b"[", b"]", b"=", b"\n\n["]))
            .prop_map(|(i, b)| Mutation::Insert(i, b.to_vec())),
        2 => (any::<Index>(), 1usize..20).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => (any::<Index>(), 1usize..50).prop_map(|(i, n)| Mutation::RepeatLine(i, n)),
        1 => Just(Mutation::Twice),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => any::<Index>().prop_map(Mutation::HugeNumber),
        1 => (any::<Index>(), 1usize..200).prop_map(|(i, n)| Mutation::Nest(i, n)),
    ]
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    let at = |i: &Index, len: usize| i.index(len + 1);
    match m {
        Mutation::Insert(i, bytes) => {
            let p = at(i, text.len());
            text.splice(p..p, bytes.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let p = at(i, text.len());
            text.drain(p..(p + n).min(text.len()));
        }
        Mutation::RepeatLine(i, n) => {
            let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
            if lines.is_empty() {
                return;
            }
            let k = i.index(lines.len());
            let mut out = Vec::new();
            for (j, l) in lines.iter().enumerate() {
                out.extend_from_slice(l);
                if j == k {
                    let l = if l.ends_with(b"\n") { l.to_vec() } else { [*l, b"\n"].concat() };
                    out.extend(l.repeat(*n));
                }
            }
            *text = out;
        }
        Mutation::Twice => *text = text.repeat(2),
        Mutation::Truncate(i) => text.truncate(at(i, text.len())),
        Mutation::HugeNumber(i) => {
            let digits: Vec<usize> = (0..text.len()).filter(|&p| text[p].is_ascii_digit()).collect();
            if !digits.is_empty() {
                let p = digits[i.index(digits.len())];
                text.splice(p..p, b"99999999999999999999999".iter().copied());
            }
        }
        Mutation::Nest(i, n) => {
            let p = at(i, text.len());
            let nested = format!("deep = {}1{}\n", "[".repeat(*n), "]".repeat(*n));
            text.splice(p..p, nested.into_bytes());
        }
    }
}

/// What the inputs came to: valid topologies, reports of errors, the slowest input.
#[derive(Default)]
struct Tally {
    valid: u64,
    invalid: u64,
    slowest: Duration,
    largest: usize,
}

/// Load `bytes` as `fuzz.toml` and judge the outcome.
fn judge(bytes: Vec<u8>, tally: &std::cell::RefCell<Tally>) -> Result<(), TestCaseError> {
    let lines = bytes.split(|&b| b == b'\n').count();
    {
        let mut t = tally.borrow_mut();
        t.largest = t.largest.max(bytes.len());
    }
    let started = Instant::now();
    let outcome = procnet::topology::load_bytes(Path::new("fuzz.toml"), bytes, Path::new("/nonexistent"));
    let rendered = match &outcome {
        Ok((t, warnings)) => {
            let _ = procnet::topology::summary(t);
            let _ = procnet::topology::dot(t);
            warnings.to_string()
        }
        Err(procnet::topology::LoadError::Invalid(report)) => {
            prop_assert!(report.error_count() > 0, "an invalid topology without an error");
            report.to_string()
        }
        Err(e) => return Err(TestCaseError::fail(format!("not a verdict on the bytes: {e}"))),
    };
    let elapsed = started.elapsed();
    {
        let mut t = tally.borrow_mut();
        t.slowest = t.slowest.max(elapsed);
        if outcome.is_ok() {
            t.valid += 1;
        } else {
            t.invalid += 1;
        }
    }
    prop_assert!(elapsed < MAX_TIME, "took {elapsed:?}");
    let mut report_lines = rendered.lines();
    while let Some(line) = report_lines.next() {
        if line.starts_with("error: ") || line.starts_with("warning: ") {
            let at = report_lines.next().unwrap_or("");
            let position = at.strip_prefix("  --> fuzz.toml:").and_then(|lc| lc.split_once(':'));
            let Some((l, c)) = position.and_then(|(l, c)| Some((l.parse::<usize>().ok()?, c.parse::<usize>().ok()?)))
            else {
                return Err(TestCaseError::fail(format!("`{line}` names no fuzz.toml:line:column, but `{at}`")));
            };
            prop_assert!(l >= 1 && l <= lines && c >= 1, "{line} at {l}:{c}, in a file of {lines} lines");
        }
    }
    Ok(())
}

#[test]
fn the_loader_gives_a_verdict_on_any_input() {
    let mutations = prop_oneof![1 => Just(Vec::new()), 2 => prop::collection::vec(mutation(), 1..4)];
    let input = (topology(), mutations).prop_map(|(text, mutations)| {
        let mut bytes = text.into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        bytes
    });
    let tally = std::cell::RefCell::new(Tally::default());
    fuzz::run("topology", 1000, input, |bytes| judge(bytes, &tally));
    let t = tally.into_inner();
    println!(
        "fuzz topology: {} valid, {} invalid (with shrinking, if any), largest input {} bytes, slowest {} ms",
        t.valid,
        t.invalid,
        t.largest,
        t.slowest.as_millis()
    );
}
