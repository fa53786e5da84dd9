//! What tests feed runs and read back: numbered records, the shipped topologies and their
//! pages, and the JSON files a run writes (tallies, reports, endpoints).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::harness::root;
use super::scratch::Scratch;

/// Write `in.jsonl` in `s`: `n` records `{"id": "n<i>"}`.
pub fn numbers(s: &Scratch, n: usize) {
    let text: String = (0..n).map(|i| format!("{{\"id\":\"n{i}\"}}\n")).collect();
    s.write("in.jsonl", &text);
}

/// The JSON document in file `path` (a tally's output, a run report, an endpoints file).
pub fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()))
}

/// The output file `name` of a tally (or any JSON file) in `s`.
pub fn read_tally(s: &Scratch, name: &str) -> serde_json::Value {
    read_json(s.path(name))
}

/// One counter (`received`, `sent`, ...) of every replica of `node` in a run report.
pub fn counters(report: &serde_json::Value, node: &str, field: &str) -> Vec<u64> {
    report["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .filter(|r| r["node"] == node)
        .map(|r| r[field].as_u64().expect("counter"))
        .collect()
}

/// The topology files under `topologies/`, sorted.
pub fn shipped_topologies() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("topologies"))
        .expect("topologies/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Pages of topologies/data/pages.jsonl mentioning "python" in any case, per host: what
/// topologies/pages.toml counts.
pub fn python_pages_per_host() -> BTreeMap<String, u64> {
    let pages = std::fs::read_to_string(root().join("topologies/data/pages.jsonl")).expect("pages data");
    let mut want = BTreeMap::new();
    for line in pages.lines() {
        let page: serde_json::Value = serde_json::from_str(line).expect("json");
        if page["body"].as_str().expect("body").to_lowercase().contains("python") {
            *want.entry(page["host"].as_str().expect("host").to_string()).or_default() += 1;
        }
    }
    want
}
