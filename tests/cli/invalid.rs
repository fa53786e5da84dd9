//! Every validation error, data-driven: each `tests/invalid/<case>.toml` is an invalid topology,
//! and `tests/invalid/<case>.stderr` is exactly what `procnet check <case>.toml` prints, run
//! from `tests/invalid` so the paths in messages are relative and stable. `procnet run` must
//! print the same and start nothing; both exit 78 with nothing on stdout. A case may give
//! the command line more arguments (`--set` flags), one per line, in `<case>.args`.
//!
//! To (re)write the `.stderr` files after an intended change of messages, run
//! `UPDATE_EXPECT=1 cargo test --test cli invalid::`, then review the diff of `tests/invalid/`.

use std::fmt::Write;
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{self, procnet, Scratch};

/// `procnet`'s exit code for an invalid topology (sysexits' EX_CONFIG).
const INVALID_TOPOLOGY: i32 = 78;

fn cases_dir() -> PathBuf {
    util::root().join("tests").join("invalid")
}

/// Whether to rewrite the expected files instead of comparing with them.
fn updating() -> bool {
    std::env::var("UPDATE_EXPECT").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Stems of the files in `dir` ending in `.ext`, sorted.
fn stems(dir: &Path, ext: &str) -> Vec<String> {
    let mut stems: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .map(|p| p.file_stem().expect("a file name").to_string_lossy().into_owned())
        .collect();
    stems.sort();
    stems
}

/// A line diff of `expected` and `actual` (longest common subsequence): `-` lines are only
/// expected, `+` lines only actual. Line ends are shown as `$` so trailing spaces are visible.
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) =
        (expected.split_inclusive('\n').collect(), actual.split_inclusive('\n').collect());
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let show = |line: &str| match line.strip_suffix('\n') {
        Some(l) => format!("{l}$"),
        None => format!("{line}    (no newline at end)"),
    };
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "   {}", show(a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, " - {}", show(a[i]));
            i += 1;
        } else {
            let _ = writeln!(out, " + {}", show(b[j]));
            j += 1;
        }
    }
    out
}

/// The arguments after the file of `case`: the lines of `<case>.args`, if there is one.
fn extra_args(dir: &Path, case: &str) -> Vec<String> {
    match fs::read_to_string(dir.join(format!("{case}.args"))) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

/// Run `procnet <command> <case>.toml [args]` from the cases directory; return the problems
/// found (empty if none) and the stderr.
fn run_case(dir: &Path, command: &str, case: &str, expected: Option<&str>) -> (Vec<String>, String) {
    let file = format!("{case}.toml");
    let args = extra_args(dir, case);
    let run =
        procnet([command, file.as_str()].into_iter().chain(args.iter().map(String::as_str))).current_dir(dir).run();
    let file = [file].into_iter().chain(args).collect::<Vec<_>>().join(" ");
    let mut problems = Vec::new();
    if run.code() != INVALID_TOPOLOGY {
        problems.push(format!("`procnet {command} {file}` exited {}, expected {INVALID_TOPOLOGY}", run.code()));
    }
    if !run.stdout.is_empty() {
        problems.push(format!("`procnet {command} {file}` printed on stdout:\n{}", run.stdout));
    }
    if let Some(expected) = expected {
        if run.stderr != expected {
            problems.push(format!(
                "`procnet {command} {file}`: stderr differs from {case}.stderr (- expected, + actual):\n{}",
                diff(expected, &run.stderr)
            ));
        }
    }
    (problems, run.stderr)
}

#[test]
fn every_invalid_topology_is_reported_exactly() {
    let dir = cases_dir();
    let cases = stems(&dir, "toml");
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    let update = updating();
    let mut failures: Vec<String> = Vec::new();

    for ext in ["stderr", "args"] {
        for stale in stems(&dir, ext).iter().filter(|s| !cases.contains(s)) {
            failures.push(format!("{stale}.{ext} has no {stale}.toml; remove it or add the case"));
        }
    }

    for case in &cases {
        let expected_path = dir.join(format!("{case}.stderr"));
        let mut problems = Vec::new();
        let expected = if update {
            let (p, stderr) = run_case(&dir, "check", case, None);
            problems.extend(p);
            if fs::read_to_string(&expected_path).ok().as_deref() != Some(stderr.as_str()) {
                fs::write(&expected_path, &stderr).expect("write the .stderr file");
                eprintln!("updated {}", expected_path.display());
            }
            Some(stderr)
        } else {
            match fs::read_to_string(&expected_path) {
                Ok(text) => {
                    let (p, _) = run_case(&dir, "check", case, Some(&text));
                    problems.extend(p);
                    Some(text)
                }
                Err(e) => {
                    problems.push(format!("cannot read {case}.stderr ({e}); run with UPDATE_EXPECT=1 to write it"));
                    None
                }
            }
        };
        if let Some(expected) = &expected {
            if expected.trim().is_empty() {
                problems.push("`procnet check` printed no diagnostics".to_string());
            }
            let (p, _) = run_case(&dir, "run", case, Some(expected));
            problems.extend(p);
        }
        if !problems.is_empty() {
            failures.push(format!("case `{case}`:\n{}", problems.join("\n")));
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {} invalid-topology cases failed (run with UPDATE_EXPECT=1 to accept the new output):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_warning_does_not_invalidate_the_topology() {
    let s = Scratch::new();
    s.write("in.txt", "x\n");
    s.write(
        "warn.toml",
        r#"# `keep` is read by nobody: its records would be dropped.
[nodes.src]
kind = "lines"
path = "in.txt"

[nodes.keep]
kind = "filter"
inputs = ["src"]
field = "line"
contains = "x"

[nodes.count]
kind = "tally"
inputs = ["src"]
"#,
    );
    let run = procnet(["check", "warn.toml"]).current_dir(s.dir.path()).run();
    run.expect_code(0);
    assert_eq!(
        run.stderr,
        "warning: no node reads the records of node `keep`; they are dropped
  --> warn.toml:6:8
  |
6 | [nodes.keep]
  |        ^^^^
",
        "the warning, with file:line:col"
    );
    assert!(
        run.stdout.starts_with("topology `warn`: 3 nodes, 3 processes, 2 edges\n"),
        "the summary follows on stdout:\n{}",
        run.stdout
    );
}
