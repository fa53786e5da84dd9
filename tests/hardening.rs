//! Exact or loud, against hostile and buggy peers: a forged or mistaken `eos` cannot end a
//! run with exit 0 and a wrong result (every edge's counts are checked at the end), only the
//! run's own processes get into its sockets, and outputs are whole or absent.

mod util;

use std::time::Duration;

use util::{procnet, Scratch};

fn rogue() -> String {
    util::rogue().display().to_string()
}

fn run(s: &Scratch, toml: &str) -> util::Run {
    let file = s.write("t.toml", toml);
    procnet(["run".as_ref(), file.as_os_str()]).timeout(Duration::from_secs(60)).run()
}

// A buggy source replica ends its consumers' input early with an `eos` in another replica's
// name: it once exited 0 with a count of 0 instead of 50.
#[test]
fn an_eos_in_another_replicas_name_fails_the_run_instead_of_a_wrong_count() {
    for transport in ["ipc", "tcp"] {
        let s = Scratch::new();
        let r = run(
            &s,
            &format!(
                r#"
                [defaults]
                transport = "{transport}"
                [nodes.src]
                command = ["{}", "forge-eos", "25"]
                replicas = 2
                [nodes.keep]
                kind = "filter"
                inputs = ["src"]
                field = "id"
                regex = "."
                [nodes.count]
                kind = "tally"
                inputs = ["keep"]
                output = "count.json"
                "#,
                rogue()
            ),
        );
        assert_ne!(r.code(), 0, "{transport}: {}", r.stderr);
        assert!(
            r.stderr.contains("node `keep.0` failed") || r.stderr.contains("records lost on edge `src` -> `keep`"),
            "{transport}: {}",
            r.stderr
        );
        assert!(!s.path("count.json").exists(), "{transport}: a failed run wrote its result");
    }
}
