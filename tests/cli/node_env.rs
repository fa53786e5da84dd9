//! A `command` node's `env` and `cwd`, through a real run of a Python node that reads them,
//! and what `check` shows. The refusals (a built-in's, `PROCNET_*`, a missing directory) and
//! their exact messages are in tests/invalid/env_*.toml and cwd_bad.toml.

use std::path::Path;
use std::time::Duration;

use crate::util::{path_with_venv, procnet, Scratch};

/// A Python node that adds to each record the value of `MODE` and the name of its working
/// directory, with a helper module it finds only through `PYTHONPATH`.
const STAMP: &str = "from procnet import Node\n\
                     from helper import stamp\n\
                     with Node() as node:\n\
                     \x20   for record in node.records():\n\
                     \x20       node.send(stamp(record))\n";
const HELPER: &str = "import os\n\
                      def stamp(record):\n\
                      \x20   record['mode'] = os.environ.get('MODE', '?')\n\
                      \x20   record['dir'] = os.path.basename(os.getcwd())\n\
                      \x20   return record\n";

/// The topology: `stamp.py` and `lib/` are in `work/`, where the node runs; `MODE` comes from
/// `${PROCNET_TEST_MODE}` or is `fast`.
const TOPOLOGY: &str = r#"
[nodes.src]
kind = "lines"
path = "in.txt"

[nodes.stamp]
command = ["python3", "stamp.py"]
inputs = ["src"]
env = { PYTHONPATH = "lib", MODE = "${PROCNET_TEST_MODE:-fast}" }
cwd = "work"

[nodes.out]
kind = "sink"
inputs = ["stamp"]
template = "{line} {mode} {dir}"
"#;

fn scratch() -> (Scratch, std::path::PathBuf) {
    let s = Scratch::new();
    s.write("in.txt", "a\nb\n");
    s.write("work/stamp.py", STAMP);
    s.write("work/lib/helper.py", HELPER);
    let file = s.write("t.toml", TOPOLOGY);
    (s, file)
}

fn run(file: &Path, mode: Option<&str>) -> Vec<String> {
    let mut p =
        procnet(["run".as_ref(), file.as_os_str()]).env("PATH", path_with_venv()).timeout(Duration::from_secs(60));
    if let Some(mode) = mode {
        p = p.env("PROCNET_TEST_MODE", mode);
    }
    let r = p.run();
    r.expect_code(0);
    let mut lines: Vec<String> = r.lines().into_iter().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn env_and_cwd_reach_a_command_node() {
    let (_s, file) = scratch();
    assert_eq!(run(&file, None), ["a fast work", "b fast work"]);
    assert_eq!(run(&file, Some("slow")), ["a slow work", "b slow work"], "`${{...}}` in `env` follows the launcher's");
}

#[test]
fn check_shows_env_and_cwd() {
    let (s, file) = scratch();
    let r = procnet(["check".as_ref(), file.as_os_str()]).run();
    r.expect_code(0);
    let work = s.path("work");
    let line = format!("  stamp  x1  command python3 stamp.py  cwd {}  env MODE=fast PYTHONPATH=lib\n", work.display());
    assert!(r.stdout.contains(&line), "expected {line:?} in:\n{}", r.stdout);
}
