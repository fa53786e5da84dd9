//! `procnet check` survives any file: each extreme below is generated in a temporary
//! directory and checked through the real binary, which must end with a verdict (no panic,
//! no signal), print a bounded report, and stay within 2 s of CPU and 200 MB of memory.
//!
//! Time is the child's CPU time (user + system, from wait4), not the wall clock: the test
//! machine is shared, and a busy neighbour would make the wall clock say nothing about
//! procnet. The bound holds for the debug binary `cargo test` drives, because the check is
//! linear (and the TOML parser is optimized in the dev profile, see Cargo.toml); the
//! release binary is several times faster. Memory is the child's peak resident set (an
//! upper bound: it counts the pages shared with the test process before exec). The two
//! files of 70,000 nodes cannot be under a megabyte (the chain is 4.6 MB): they are held to
//! the same time and to 300 MB.
//!
//! Run with `--nocapture` to see each extreme's figures.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{self, procnet, Scratch};

const INVALID: i32 = 78;
const MAX_CPU: Duration = Duration::from_secs(2);
const MAX_RSS_KIB: u64 = 200 * 1024;
/// The same for the two files over a megabyte (70,000 nodes: a chain and a cycle).
const MAX_RSS_BIG_KIB: u64 = 300 * 1024;
/// Twenty diagnostics with cut lines: far below this.
const MAX_STDERR: usize = 64 * 1024;
/// The files are just under a megabyte.
const MB: usize = 1 << 20;

/// Base-36 names: `a`, `b`, ..., `ba`, ...: short, distinct, in file order.
fn name(mut i: usize) -> String {
    let digits = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = vec![digits[i % 26]];
    i /= 26;
    while i > 0 {
        s.push(digits[i % 36]);
        i /= 36;
    }
    String::from_utf8(s).expect("ascii")
}

/// `unit(i)` repeated while the text stays under `limit` bytes.
fn fill(head: &str, limit: usize, unit: impl Fn(usize) -> String) -> Vec<u8> {
    let mut text = head.to_string();
    for i in 0.. {
        let u = unit(i);
        if text.len() + u.len() >= limit {
            break;
        }
        text.push_str(&u);
    }
    text.into_bytes()
}

/// Each extreme: a name, the file, and the exit code `check` gives it.
fn extremes() -> Vec<(&'static str, Vec<u8>, i32)> {
    let source = "[nodes.src]\nkind = \"lines\"\npath = \"in.txt\"\n";
    // A chain of 70,000 filters, as compact as TOML allows: still over 4 MB.
    let mut chain = String::from("[nodes]\nn0 = { kind = \"lines\", path = \"in.txt\" }\n");
    for i in 1..70_000 {
        let _ = writeln!(chain, "n{i}={{kind=\"filter\",inputs=[\"n{}\"],field=\"line\",contains=\"a\"}}", i - 1);
    }
    let _ = writeln!(chain, "end = {{ kind = \"tally\", inputs = [\"n69999\"] }}");
    // 10,000 nodes: 2,500 sources read by a tally each, and 5,000 that nobody reads (a warning
    // each).
    let mut valid = String::new();
    for i in 0..7_500 {
        let _ = write!(valid, "[nodes.s{i}]\nkind = \"lines\"\npath = \"in.txt\"\n");
        if i < 2_500 {
            let _ = write!(valid, "[nodes.t{i}]\nkind = \"tally\"\ninputs = [\"s{i}\"]\n");
        }
    }
    let long = "a".repeat(65_536);
    vec![
        ("10,000 nodes, valid, 5,000 warnings", valid.into_bytes(), 0),
        (
            "10,000 nodes with undeclared inputs",
            (0..10_000)
                .map(|i| format!("[nodes.n{i}]\nkind = \"tally\"\ninputs = [\"m{i}\"]\n"))
                .collect::<String>()
                .into_bytes(),
            INVALID,
        ),
        ("a 1 MB line of junk", fill("", MB, |_| "@".into()), INVALID),
        ("a 1 MB line of junk keys", fill("", MB, |_| "a@".into()), INVALID),
        ("a 1 MB line of a value", format!("{source}path2 = \"{}\"\n", "p".repeat(MB - 100)).into_bytes(), INVALID),
        ("1 MB of junk lines", fill("", MB, |_| "=\n".into()), INVALID),
        ("1 MB of table headers cut short", fill("", MB, |_| "[\n".into()), INVALID),
        ("1 MB of duplicate keys", fill("", MB, |_| "a=1\n".into()), INVALID),
        ("1 MB of empty nodes", fill("[nodes]\n", MB, |i| format!("{}={{}}\n", name(i))), INVALID),
        ("1 MB of nodes reading themselves", fill("[nodes]\n", MB, |i| format!("{0}={{inputs=[\"{0}\"]}}\n", name(i))), INVALID),
        ("a chain of 70,000 nodes", chain.into_bytes(), 0),
        (
            "a cycle through 70,000 nodes",
            (0..70_000).fold(String::from("[nodes]\n"), |mut t, i| {
                let _ = writeln!(t, "{}={{inputs=[\"{}\"]}}", name(i), name((i + 1) % 70_000));
                t
            })
            .into_bytes(),
            INVALID,
        ),
        ("a 65,536-character node name", format!("[nodes.{long}]\nkind = \"lines\"\npath = \"in.txt\"\n").into_bytes(), INVALID),
        (
            "a 65,536-character name read by another",
            format!("[nodes.{long}]\nkind = \"lines\"\npath = \"in.txt\"\n[nodes.t]\nkind = \"tally\"\ninputs = [\"{long}\"]\n")
                .into_bytes(),
            INVALID,
        ),
        (
            "did you mean, 300 KB against 300 KB",
            format!(
                "[nodes.{}]\nkind = \"lines\"\npath = \"in.txt\"\n[nodes.t]\nkind = \"tally\"\ninputs = [\"{}\"]\n",
                "a".repeat(300_000),
                "b".repeat(300_000)
            )
            .into_bytes(),
            INVALID,
        ),
        ("not UTF-8", [source.as_bytes(), b"path2 = \"\xff\xfe\"\n"].concat(), INVALID),
    ]
}

#[test]
fn check_survives_the_extremes() {
    let s = Scratch::new();
    s.write("in.txt", "a\n");
    let mut failures = Vec::new();
    for (what, text, code) in extremes() {
        let file = s.path("extreme.toml");
        std::fs::write(&file, &text).expect("write the extreme");
        let run = procnet(["check", "extreme.toml"]).current_dir(s.dir.path()).timeout(Duration::from_secs(60)).run();
        let (cpu, rss) = (run.usage.cpu, run.usage.max_rss_kib);
        eprintln!(
            "{what:40} {:>5} KB: exit {}, {:>4} ms CPU, {:>4} ms wall, {:>6} KB peak RSS, {:>5} bytes on stderr",
            text.len() / 1024,
            run.code(),
            cpu.as_millis(),
            run.elapsed.as_millis(),
            rss,
            run.stderr.len()
        );
        let mut problems = Vec::new();
        if run.code() != code {
            problems.push(format!("exit {} instead of {code}", run.code()));
        }
        if run.stderr.contains("panicked") {
            problems.push("panicked".to_string());
        }
        if run.stderr.len() > MAX_STDERR {
            problems.push(format!("{} bytes on stderr", run.stderr.len()));
        }
        if code == INVALID && !run.stderr.contains("extreme.toml:") {
            problems.push("no file:line:column on stderr".to_string());
        }
        if cpu > MAX_CPU {
            problems.push(format!("{} ms of CPU", cpu.as_millis()));
        }
        // A file of 70,000 nodes cannot be under a megabyte; `toml` alone keeps about a
        // kilobyte per table while it parses.
        let max_rss = if text.len() < MB { MAX_RSS_KIB } else { MAX_RSS_BIG_KIB };
        if rss > max_rss {
            problems.push(format!("{rss} KB of memory"));
        }
        if !problems.is_empty() {
            failures.push(format!("{what}: {}\n{}", problems.join(", "), &run.stderr[..run.stderr.len().min(2000)]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The end of a pipe whose reader is already gone, as procnet's stdout or stderr.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer
}

/// Run `procnet args` with `stdout` and `stderr`; its exit code and what it wrote on the
/// other stream (captured), within a deadline.
fn run_with(args: &[&str], stdout: Stdio, stderr: Stdio, dir: &std::path::Path) -> (Option<i32>, String) {
    let mut cmd = Command::new(util::bin());
    cmd.args(args).current_dir(dir).stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let child = cmd.spawn().expect("spawn procnet");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.expect("wait for procnet"),
        Err(_) => {
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("procnet {args:?} did not finish");
        }
    };
    let other = String::from_utf8_lossy(if out.stdout.is_empty() { &out.stderr } else { &out.stdout }).into_owned();
    (out.status.code(), other)
}

// `procnet check x | head` made print! panic on EPIPE: Rust ignores SIGPIPE.
#[test]
fn a_closed_stdout_ends_each_printing_command_quietly() {
    let s = Scratch::new();
    s.write("in.txt", "a\n");
    s.write(
        "t.toml",
        "[nodes.src]\nkind = \"lines\"\npath = \"in.txt\"\n[nodes.count]\nkind = \"tally\"\ninputs = [\"src\"]\n",
    );
    for args in [&["check", "t.toml"][..], &["graph", "t.toml"], &["export", "k8s", "t.toml"], &["--help"]] {
        let (code, stderr) = run_with(args, closed_pipe().into(), Stdio::piped(), s.dir.path());
        assert_eq!(code, Some(0), "procnet {args:?} with a closed stdout:\n{stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "procnet {args:?}:\n{stderr}");
    }
}

// `procnet check bad.toml 2>&1 | head` made eprintln! panic on EPIPE.
#[test]
fn a_closed_stderr_keeps_the_verdict() {
    let s = Scratch::new();
    s.write("bad.toml", &"=\n".repeat(1000));
    for command in ["check", "run"] {
        let (code, _) = run_with(&[command, "bad.toml"], Stdio::null(), closed_pipe().into(), s.dir.path());
        assert_eq!(code, Some(INVALID), "procnet {command} of an invalid file with a closed stderr");
    }
}
