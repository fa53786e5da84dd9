//! The topologies shipped under `topologies/` are valid, and the demo (what
//! `make run-topology` runs) prints the right tally.

mod util;

use std::collections::BTreeMap;

use util::{procnet, root};

#[test]
fn every_shipped_topology_is_valid() {
    let dir = root().join("topologies");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("topologies/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        let r = procnet(["check".as_ref(), f.as_os_str()]).run();
        assert_eq!(r.code(), 0, "{} is invalid:\n{}", f.display(), r.stderr);
        assert!(r.stderr.is_empty(), "{} has warnings:\n{}", f.display(), r.stderr);
    }
}

#[test]
fn demo_counts_pages_mentioning_python_per_host() {
    let pages = std::fs::read_to_string(root().join("topologies/data/pages.jsonl")).expect("demo data");
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for line in pages.lines() {
        let page: serde_json::Value = serde_json::from_str(line).expect("json");
        if page["body"].as_str().expect("body").to_lowercase().contains("python") {
            *want.entry(page["host"].as_str().expect("host").to_string()).or_default() += 1;
        }
    }
    let r = procnet(["run", "topologies/demo.toml"]).run();
    r.expect_code(0);
    let count: u64 = want.values().sum();
    assert_eq!(r.json(), serde_json::json!({"count": count, "by": want}));
}
