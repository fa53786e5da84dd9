//! The limits `check` enforces are the ones a run meets: the largest allowed topology runs,
//! and what would fail at run time is refused by `check` (docs/topology.md, "Limits").

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{procnet, Scratch};

/// A directory under `root` whose path is exactly `len` bytes long.
fn dir_of_length(root: &Path, len: usize) -> PathBuf {
    let mut dir = root.to_path_buf();
    while dir.as_os_str().len() + 1 + 50 < len {
        dir.push("d".repeat(50));
    }
    let last = len - dir.as_os_str().len() - 1;
    dir.push("e".repeat(last));
    std::fs::create_dir_all(&dir).expect("mkdir");
    assert_eq!(dir.as_os_str().len(), len);
    dir
}

// An ipc path over 107 bytes (a deep XDG_RUNTIME_DIR, a long name) passed `check` and failed
// when the node bound it: check and launcher now build the path in one place.
#[test]
fn an_ipc_path_of_107_bytes_runs_and_one_of_108_is_refused_by_check() {
    let s = Scratch::new();
    s.write("in.txt", "a\nb\n");
    s.write(
        "t.toml",
        "[nodes.src]\nkind = \"lines\"\npath = \"in.txt\"\n[nodes.counting]\nkind = \"tally\"\ninputs = [\"src\"]\n",
    );
    // The longest socket is the tally's progress port, `<parent>/procnet-XXXXXX/counting.0.progress`:
    // the parent's length + 35.
    let fits = dir_of_length(&s.path("fits"), 107 - 35);
    let run = procnet(["run", "t.toml"]).current_dir(s.dir.path()).env("XDG_RUNTIME_DIR", &fits).run();
    run.expect_code(0);
    assert_eq!(run.json(), serde_json::json!({"count": 2}));

    let over = dir_of_length(&s.path("over"), 108 - 35);
    for command in ["check", "run"] {
        let r = procnet([command, "t.toml"]).current_dir(s.dir.path()).env("XDG_RUNTIME_DIR", &over).run();
        r.expect_code(78);
        let path = format!("{}/procnet-XXXXXX/counting.0.progress", over.display());
        assert!(
            r.stderr.contains(&format!(
                "error: node `counting` would bind ipc socket `{path}`, 108 bytes long; a Unix socket path holds at most 107"
            )),
            "procnet {command}:\n{}",
            r.stderr
        );
        assert!(r.stderr.contains("t.toml:4:8"), "{}", r.stderr);
    }
}

// `replicas = 1024` was refused though documented, and 1023 passed `check` but could not run:
// the source's PUSH socket per replica went past libzmq's 1023 sockets per context.
#[test]
fn the_largest_fan_out_runs_and_counts_exactly() {
    let s = Scratch::new();
    let lines: String = (0..5_000).map(|i| format!("{i}\n")).collect();
    let expected = (0..5_000).filter(|i| i.to_string().contains('7')).count();
    s.write("in.txt", &lines);
    s.write(
        "fan.toml",
        r#"# lines -> 1024 filters -> tally, forked to start quickly.
[defaults]
start = "fork"

[nodes.src]
kind = "lines"
path = "in.txt"

[nodes.keep]
kind = "filter"
inputs = ["src"]
replicas = 1024
field = "line"
contains = "7"

[nodes.count]
kind = "tally"
inputs = ["keep"]
"#,
    );
    let check = procnet(["check", "fan.toml"]).current_dir(s.dir.path()).run();
    check.expect_code(0);
    assert!(check.stdout.contains("3 nodes, 1026 processes"), "{}", check.stdout);
    let run = procnet(["run", "fan.toml"]).current_dir(s.dir.path()).timeout(Duration::from_secs(120)).run();
    run.expect_code(0);
    assert_eq!(run.json(), serde_json::json!({"count": expected}));
    eprintln!("1024 replicas: {:.1} s", run.elapsed.as_secs_f64());
}
