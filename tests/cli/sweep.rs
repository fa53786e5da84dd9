//! Experiments: `--sweep` runs every combination of values with `--repeat`, the report
//! records each run with its values, and `procnet plot` draws it as SVG.

use std::time::Duration;

use crate::util::{procnet, read_json, Scratch};

const PIPELINE: &str = r#"
    [nodes.src]
    command = ["seq", "1", "50000"]
    stdio = "lines"
    [nodes.keep]
    kind = "filter"
    inputs = ["src"]
    field = "line"
    contains = "7"
    [nodes.count]
    kind = "tally"
    inputs = ["keep"]
    output = "count.json"
"#;

/// `procnet run t.toml` with `args`, within a deadline.
fn run(s: &Scratch, args: &[&str]) -> crate::util::Run {
    let file = s.write("t.toml", PIPELINE);
    let mut all = vec!["run".to_string(), file.display().to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    procnet(all).timeout(Duration::from_secs(120)).run()
}

#[test]
fn a_sweep_of_two_values_of_two_parameters_repeated_twice_records_eight_runs_and_plots_them() {
    let s = Scratch::new();
    let report = s.path("sweep.json");
    let r = run(
        &s,
        &[
            "--sweep",
            "nodes.keep.replicas=1,2",
            "--sweep",
            "defaults.start=spawn,fork",
            "--repeat",
            "2",
            "--report",
            report.to_str().expect("utf-8"),
        ],
    );
    r.expect_code(0);
    assert!(r.stderr.contains("sweep point 4 of 4: nodes.keep.replicas=2, defaults.start=fork"), "{}", r.stderr);
    let doc = read_json(&report);
    assert_eq!(doc["sweep"]["nodes.keep.replicas"], serde_json::json!([1, 2]));
    assert_eq!(doc["sweep"]["defaults.start"], serde_json::json!(["spawn", "fork"]));
    assert_eq!(doc["repeat"], 2);
    let runs = doc["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 8);
    let mut seen = Vec::new();
    for run in runs {
        let p = &run["params"];
        seen.push((
            p["nodes.keep.replicas"].as_i64().expect("n"),
            p["defaults.start"].to_string(),
            run["repeat"].as_u64(),
        ));
        // Each run ran with its values: the filter's replica count is the swept one.
        let keep = run["nodes"].as_array().expect("nodes").iter().find(|n| n["node"] == "keep").expect("keep");
        assert_eq!(keep["replicas"], p["nodes.keep.replicas"]);
        let count = run["nodes"].as_array().expect("nodes").iter().find(|n| n["node"] == "count").expect("count");
        assert_eq!(count["result"]["count"], 17_195, "every run is exact");
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8, "every combination and repeat once: {seen:?}");

    let svg = s.path("sweep.svg");
    let p = procnet(["plot".as_ref(), report.as_os_str(), "-o".as_ref(), svg.as_os_str()])
        .timeout(Duration::from_secs(30))
        .run();
    p.expect_code(0);
    let text = std::fs::read_to_string(&svg).expect("the svg");
    assert!(text.starts_with("<svg"), "{}", &text[..100.min(text.len())]);
    let texts: Vec<String> = text
        .split("<text")
        .skip(1)
        .filter_map(|t| {
            t.split_once('>').and_then(|(_, rest)| rest.split_once("</text>")).map(|(x, _)| x.trim().to_string())
        })
        .collect();
    for label in ["nodes.keep.replicas", "records/s", "wall time, s", "throughput of `count`", "wall time of the run"] {
        assert!(texts.iter().any(|t| t == label), "no `{label}` in the plot's text: {texts:?}");
    }
    // One series per value of the other parameter, named in the legend.
    for series in ["defaults.start=spawn", "defaults.start=fork"] {
        assert_eq!(texts.iter().filter(|t| *t == series).count(), 1, "{series}: {texts:?}");
    }
    // The x axis is labelled with the swept values.
    assert!(texts.iter().any(|t| t == "1") && texts.iter().any(|t| t == "2"), "{texts:?}");
    // A line per series per panel (plus the legend's strokes).
    assert!(text.matches("<polyline").count() >= 4, "{}", text.matches("<polyline").count());
}

#[test]
fn a_sweep_report_as_csv_has_a_row_per_node_per_run_with_its_values() {
    let s = Scratch::new();
    let report = s.path("sweep.csv");
    let r = run(&s, &["--sweep", "nodes.keep.replicas=1,3", "--report", report.to_str().expect("utf-8")]);
    r.expect_code(0);
    let text = std::fs::read_to_string(&report).expect("csv");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("run,params,repeat,node,replicas,"), "{}", lines[0]);
    assert_eq!(lines.len(), 1 + 2 * 3);
    assert!(lines[5].starts_with(r#"2,"{""nodes.keep.replicas"":3}",1,keep,3,"#), "{text}");
}

#[test]
fn a_bad_sweep_is_refused_before_anything_runs() {
    let s = Scratch::new();
    let r = run(&s, &["--sweep", "nodes.keep.replicas"]);
    r.expect_code(2);
    assert!(r.stderr.contains("is not PATH=V1,V2"), "{}", r.stderr);
    // A value that does not check fails at once, naming the point, with nothing started.
    let r = run(&s, &["--sweep", "nodes.keep.replicas=1,zero"]);
    r.expect_code(78);
    assert!(r.stderr.contains("--set nodes.keep.replicas=zero"), "{}", r.stderr);
    assert!(r.stderr.contains("at sweep point nodes.keep.replicas=zero"), "{}", r.stderr);
    assert!(!s.path("count.json").exists(), "nothing ran");
}

#[test]
fn plot_refuses_a_report_that_is_not_a_sweep() {
    let s = Scratch::new();
    let report = s.path("one.json");
    run(&s, &["--report", report.to_str().expect("utf-8")]).expect_code(0);
    let p = procnet(["plot".as_ref(), report.as_os_str(), "-o".as_ref(), s.path("x.svg").as_os_str()]).run();
    p.expect_code(2);
    assert!(p.stderr.contains("it has no `sweep`"), "{}", p.stderr);
}
