//! The topologies shipped under `topologies/` are valid, and the demo (what
//! `make run-topology` runs) prints the right tally.

use std::collections::BTreeMap;

use crate::util::{procnet, python_pages_per_host, root, shipped_topologies};

#[test]
fn every_shipped_topology_is_valid() {
    let files = shipped_topologies();
    assert!(!files.is_empty());
    for f in files {
        let r = procnet(["check".as_ref(), f.as_os_str()]).run();
        assert_eq!(r.code(), 0, "{} is invalid:\n{}", f.display(), r.stderr);
        assert!(r.stderr.is_empty(), "{} has warnings:\n{}", f.display(), r.stderr);
    }
}

/// What the demo must print, worked out from the files alone: the URL list, the site's
/// directories and the `forbidden` prefixes of `topologies/demo.toml`.
fn expected_demo_lines() -> Vec<String> {
    let topologies = root().join("topologies");
    let topology: toml::Table =
        std::fs::read_to_string(topologies.join("demo.toml")).expect("demo").parse().expect("toml");
    let forbidden: Vec<String> = topology["nodes"]["site"]["forbidden"]
        .as_array()
        .expect("forbidden")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    let urls = std::fs::read_to_string(topologies.join("data/demo-urls.txt")).expect("urls");
    let (mut lines, mut statuses, mut hosts) =
        (Vec::new(), BTreeMap::<String, u64>::new(), BTreeMap::<String, u64>::new());
    for url in urls.lines() {
        let rest = url.strip_prefix("http://").expect("http url");
        let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        let mut file = topologies.join("site").join(host).join(path);
        if file.is_dir() {
            file = file.join("index.html");
        }
        let status = if forbidden.iter().any(|f| format!("{host}/{path}").starts_with(f.as_str())) {
            lines.push(format!("403 Forbidden: {url}"));
            403
        } else if let Ok(body) = std::fs::read_to_string(&file) {
            if body.to_lowercase().contains("python") {
                lines.push(format!("{url} contains the word \"Python\""));
                *hosts.entry(host.to_string()).or_default() += 1;
            }
            200
        } else {
            lines.push(format!("404 Not Found: {url}"));
            404
        };
        *statuses.entry(status.to_string()).or_default() += 1;
    }
    let json = |m: &BTreeMap<String, u64>| serde_json::to_string(m).expect("json");
    lines.push(format!("{} URLs fetched, by status: {}", urls.lines().count(), json(&statuses)));
    lines.push(format!("{} pages mention Python, by host: {}", hosts.values().sum::<u64>(), json(&hosts)));
    lines.sort();
    lines
}

/// `make run-topology` runs the demo: it fetches the served site and prints, like the
/// tutorials' program, each error with its URL, the URLs that mention Python, and tallies.
#[test]
fn demo_fetches_the_served_site_and_reports_like_the_tutorial() {
    let r = procnet(["run", "topologies/demo.toml"]).run();
    r.expect_code(0);
    let mut got: Vec<String> = r.lines().into_iter().map(str::to_string).collect();
    got.sort();
    let want = expected_demo_lines();
    assert!(want.iter().any(|l| l.starts_with("403 ")) && want.iter().any(|l| l.starts_with("404 ")));
    assert_eq!(got, want);
    assert!(r.stderr.is_empty(), "no progress or noise when stderr is not a terminal:\n{}", r.stderr);
}

#[test]
fn pages_counts_pages_mentioning_python_per_host() {
    let want = python_pages_per_host();
    let r = procnet(["run", "topologies/pages.toml"]).run();
    r.expect_code(0);
    let count: u64 = want.values().sum();
    assert_eq!(r.json(), serde_json::json!({"count": count, "by": want}));
}
