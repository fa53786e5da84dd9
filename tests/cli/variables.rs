//! `${VAR}` and `${VAR:-default}` in a topology's strings, from the launcher's environment:
//! what `check` shows, what a run does with them, and an unset one (the exact messages are
//! in tests/invalid/variables_unset.*).

use crate::util::{procnet, Scratch};

/// No test sets this variable.
const UNSET: &str = "UNSET_PROCNET_TEST_VARIABLE";

/// A pipeline whose input file comes from `${PROCNET_TEST_INPUT}`, defaulting to `a.txt`.
const COUNT_INPUT: &str = r#"
[nodes.src]
kind = "lines"
path = "${PROCNET_TEST_INPUT:-a.txt}"
[nodes.count]
kind = "tally"
inputs = ["src"]
"#;

#[test]
fn check_shows_the_resolved_values() {
    let s = Scratch::new();
    let file = s.write(
        "t.toml",
        &format!(
            r#"name = "${{PROCNET_TEST_NAME}}"
            [nodes.src]
            command = ["./src.sh", "--mode=${{PROCNET_TEST_MODE:-fast}}", "${{{UNSET}:-dflt}}", "$${{KEPT}}", "a$b$$c"]
            [nodes.sink]
            kind = "sink"
            inputs = ["src"]
            "#
        ),
    );
    let r = procnet(["check".as_ref(), file.as_os_str()])
        .env("PROCNET_TEST_NAME", "from-env")
        .env("PROCNET_TEST_MODE", "slow")
        .run();
    r.expect_code(0);
    assert!(r.stdout.starts_with("topology `from-env`: 2 nodes"), "{}", r.stdout);
    assert!(r.stdout.contains("/src.sh --mode=slow dflt ${KEPT} a$b$$c\n"), "the command, resolved:\n{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("variables: PROCNET_TEST_MODE=slow, PROCNET_TEST_NAME=from-env, {UNSET} (unset")),
        "{}",
        r.stdout
    );
}

/// A variable changes what a run reads: the same file counts `a.txt` by default and `b.txt`
/// with `PROCNET_TEST_INPUT=b.txt`.
#[test]
fn a_variable_changes_a_run() {
    let s = Scratch::new();
    s.write("a.txt", "1\n2\n");
    s.write("b.txt", "1\n2\n3\n4\n5\n");
    let file = s.write("t.toml", COUNT_INPUT);
    let default = procnet(["run".as_ref(), file.as_os_str()]).run();
    default.expect_code(0);
    assert_eq!(default.json()["count"], 2, "{}", default.stdout);
    let set = procnet(["run".as_ref(), file.as_os_str()]).env("PROCNET_TEST_INPUT", "b.txt").run();
    set.expect_code(0);
    assert_eq!(set.json()["count"], 5, "{}", set.stdout);
    // An empty variable takes the default too, as in the shell.
    let empty = procnet(["run".as_ref(), file.as_os_str()]).env("PROCNET_TEST_INPUT", "").run();
    empty.expect_code(0);
    assert_eq!(empty.json()["count"], 2, "{}", empty.stdout);
}

/// An unset variable without a default: exit 78 with its position, for `check` and for
/// `run`, which starts nothing.
#[test]
fn an_unset_variable_is_an_error_at_its_position() {
    let s = Scratch::new();
    s.write("a.txt", "1\n");
    let file = s.write(
        "t.toml",
        &format!(
            "[nodes.src]\nkind = \"lines\"\npath = \"a.txt\"\n[nodes.out]\nkind = \"sink\"\ninputs = [\"src\"]\npath = \"${{{UNSET}}}.txt\"\n"
        ),
    );
    for command in ["check", "run"] {
        let r = procnet([command.as_ref(), file.as_os_str()]).run();
        r.expect_code(78);
        assert_eq!(r.stdout, "", "nothing on stdout");
        assert!(r.stderr.contains(&format!("error: environment variable `{UNSET}` is not set\n")), "{}", r.stderr);
        assert!(r.stderr.contains("t.toml:7:9\n"), "line and column of the `${{...}}`:\n{}", r.stderr);
        assert!(r.stderr.ends_with("t.toml`: 1 error\n"), "{}", r.stderr);
    }
    assert!(std::fs::read_dir(s.dir.path()).expect("scratch").count() == 2, "the run wrote nothing");
}
