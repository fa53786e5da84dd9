//! `lines` never sends a record that could not be delivered: a line, or the record made of
//! it, larger than a message may carry (`max_message_bytes`, less room for a batch and a
//! header) is dropped as a bad record, named by its line number, and the lines around it go
//! on. Read from a mapped file and from a stream (stdin) alike. docs/nodes.md, "Long lines".

use std::time::Duration;

use crate::util::{self, procnet, Scratch};

/// max_message_bytes of these topologies: the least allowed, so the lines stay small.
const LIMIT: usize = 1 << 20;
/// What a record may take: LIMIT less a batch (64 KiB) and 64 bytes of header.
const MAX_RECORD: usize = LIMIT - 65_536 - 64;

fn topology(s: &Scratch, path: &str, format: &str) -> std::path::PathBuf {
    s.write(
        "t.toml",
        &format!(
            "[defaults]\nmax_message_bytes = {LIMIT}\n\
             [nodes.src]\nkind = \"lines\"\npath = \"{path}\"\nformat = \"{format}\"\n\
             [nodes.count]\nkind = \"tally\"\ninputs = [\"src\"]\n"
        ),
    )
}

fn run(file: &std::path::Path, stdin: Option<&std::path::Path>) -> util::Run {
    let p = procnet(["run".as_ref(), file.as_os_str()]).timeout(Duration::from_secs(60));
    match stdin {
        Some(input) => p.stdin_file(input).run(),
        None => p.run(),
    }
}

#[test]
fn a_text_line_longer_than_a_message_may_carry_is_dropped_and_named() {
    let s = Scratch::new();
    let long = "x".repeat(2 * LIMIT);
    let input = s.write("in.txt", &format!("first\n{long}\nthird\n"));
    for stdin in [None, Some(input.as_path())] {
        let file = topology(&s, if stdin.is_some() { "-" } else { "in.txt" }, "text");
        let r = run(&file, stdin);
        r.expect_code(65);
        assert_eq!(r.json(), serde_json::json!({"count": 2}));
        let name = if stdin.is_some() { "stdin" } else { "in.txt" };
        let why =
            format!("{name}:2: a line of {} bytes, more than a message may carry ({MAX_RECORD} bytes)", 2 * LIMIT);
        assert!(r.stderr.contains(&why), "{}", r.stderr);
    }
}

#[test]
fn a_json_line_whose_record_would_not_fit_is_dropped_and_named() {
    let s = Scratch::new();
    // 4 bytes of JSON per element, 9 of MessagePack (a float 64): the line fits, its record
    // does not.
    let floats = vec!["1e5"; 200_000].join(",");
    s.write("in.jsonl", &format!("{{\"a\":1}}\n{{\"f\":[{floats}]}}\n{{\"b\":2}}\n"));
    let r = run(&topology(&s, "in.jsonl", "jsonl"), None);
    r.expect_code(65);
    assert_eq!(r.json(), serde_json::json!({"count": 2}));
    let why = format!("in.jsonl:2: the record would be larger than {MAX_RECORD} bytes");
    assert!(r.stderr.contains(&why), "{}", r.stderr);
}
