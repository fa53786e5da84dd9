//! Exact under failure (docs/guarantees.md): pipelines covering every role (a source reading a
//! file, filters of 3 and 2 replicas, a Python node of 2, subscribers of a pub port, a tally,
//! a sink), in which random replicas are killed with SIGKILL at random moments mid-stream.
//! Every run must exit 0 with exactly the result of an undisturbed run, having rolled back,
//! and leave nothing behind.
//!
//! The seed is printed; `PROCNET_CHAOS_SEED=S` replays a failure (which replicas, when).

use std::time::{Duration, Instant};

use std::ffi::OsStr;
use std::path::Path;

use crate::util::{
    environ_var, free_port, path_with_venv, procnet, read_json, root, seed, tagged_pids, Dice, Procnet, Run, Running,
    Scratch,
};

/// `PROCNET_CHAOS_SEED`, or one from the clock; printed either way.
fn chaos_seed(test: &str) -> u64 {
    let seed = seed("PROCNET_CHAOS_SEED");
    eprintln!("chaos {test}: seed {seed} (PROCNET_CHAOS_SEED={seed} replays it)");
    seed
}

/// `n` JSON lines of about 150 bytes; one in three mentions "python", under 40 sites.
fn corpus(s: &Scratch, n: usize) {
    let mut text = String::with_capacity(n * 160);
    for i in 0..n {
        let word = if i % 3 == 0 { "Python" } else { "Rust" };
        text.push_str(&format!(
            "{{\"url\":\"https://site{}.example/page/{i}\",\"body\":\"page {i} of the corpus, about {word} and \
             process networks, padded to a realistic length\"}}\n",
            i % 40
        ));
    }
    s.write("corpus.jsonl", &text);
}

/// What a run produced: its output files, each with its lines sorted (a sink's order depends
/// on which replica took which batch).
fn results(s: &Scratch, outputs: &[&str]) -> Vec<Vec<String>> {
    outputs
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(s.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"));
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            lines
        })
        .collect()
}

/// The replica `id` (`name.replica`) of a run whose launchers are tagged `tags`, once its
/// process exists.
fn pid_of(tags: &[String], id: &str, deadline: Instant) -> Option<u32> {
    let (node, replica) = id.rsplit_once('.').expect("name.replica");
    while Instant::now() < deadline {
        let found = tags.iter().flat_map(|tag| tagged_pids(tag)).find(|&p| {
            environ_var(p, "PROCNET_NODE").as_deref() == Some(node)
                && environ_var(p, "PROCNET_REPLICA").as_deref() == Some(replica)
        });
        if found.is_some() {
            return found;
        }
        std::thread::yield_now();
    }
    None
}

/// Whether process `pid` exists and has not exited (a zombie has).
fn running_process(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).is_some_and(|state| state != "Z")
}

/// Once the run tagged `tag` streams: its replica `reader`, a Rust node (a source, say),
/// has spent 30 ms of CPU time (its start-up takes a few; no record comes before the start
/// barrier). False at `deadline`.
fn streaming(tags: &[String], reader: &str, deadline: Instant) -> bool {
    let Some(pid) = pid_of(tags, reader, deadline) else { return false };
    while Instant::now() < deadline {
        // Gone already: it read its whole input (or failed, which the run's status tells).
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return true };
        // After the command's name: state is field 3, utime and stime fields 14 and 15.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let ticks: u64 = fields.get(11..13).map_or(0, |t| t.iter().filter_map(|n| n.parse::<u64>().ok()).sum());
        if ticks >= 3 {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

/// Where a chaos run's launchers run: one for the whole topology, or one per host of its
/// `[hosts]` over loopback addresses (the coordinator, the first, last).
#[derive(Clone, Copy)]
enum Launchers<'a> {
    One,
    Hosts(&'a [&'a str]),
}

impl Launchers<'_> {
    /// Start the launchers of one run of `file`, the coordinator's reporting to `report`.
    fn start(self, file: &Path, report: &Path) -> Vec<Running> {
        let report_args = ["--report".as_ref(), report.as_os_str()];
        let with_path = |p: Procnet| p.env("PATH", path_with_venv()).timeout(Duration::from_secs(180));
        match self {
            Launchers::One => {
                vec![with_path(procnet([&["run".as_ref(), file.as_os_str()], &report_args[..]].concat())).start()]
            }
            Launchers::Hosts(hosts) => {
                let port = free_port().to_string();
                let mut running = Vec::new();
                for (i, host) in hosts.iter().enumerate().rev() {
                    let mut args: Vec<&OsStr> = vec![
                        "run".as_ref(),
                        file.as_os_str(),
                        "--host".as_ref(),
                        host.as_ref(),
                        "--control-port".as_ref(),
                        port.as_ref(),
                    ];
                    if i == 0 {
                        args.extend(report_args);
                    }
                    running.push(with_path(procnet(args)).env("PROCNET_SECRET", format!("chaos-{port}")).start());
                }
                running
            }
        }
    }
}

/// Run `toml` (in `s`, as `t.toml`, by `launchers`) `runs` times, killing `kills` random
/// replicas of `replicas` in each at random moments within the first half of an undisturbed
/// run's stream; each run must exit 0 (every launcher) with exactly the `outputs` of an
/// undisturbed run, after one rollback per kill at least.
#[allow(clippy::too_many_arguments)]
fn chaos(
    test: &str,
    s: &Scratch,
    toml: &str,
    launchers: Launchers<'_>,
    reader: &str,
    replicas: &[&str],
    outputs: &[&str],
    runs: usize,
    kills: usize,
) {
    let file = s.write("t.toml", toml);
    let report = s.path("r.json");
    let finish = |running: Vec<Running>| -> Vec<Run> { running.into_iter().map(Running::finish).collect() };
    for calm in finish(launchers.start(&file, &report)) {
        calm.expect_code(0);
    }
    let want = results(s, outputs);
    let calm_report = read_json(&report);
    let stream_s =
        calm_report["elapsed_s"].as_f64().expect("elapsed") - calm_report["startup_s"].as_f64().expect("startup");
    let window = ((stream_s * 500.0) as u64).max(20);
    let mut dice = Dice::new(chaos_seed(test));
    let mut hits = 0;
    for run in 0..runs {
        let running = launchers.start(&file, &report);
        let tags: Vec<String> = running.iter().map(|r| r.tag.clone()).collect();
        let (mut killed, mut victims) = (Vec::new(), Vec::new());
        let deadline = Instant::now() + Duration::from_secs(60);
        assert!(streaming(&tags, reader, deadline), "run {run} of {test} never streamed");
        let streamed = Instant::now();
        let mut at = 0;
        for _ in 0..kills {
            let victim = replicas[dice.below(replicas.len() as u64) as usize];
            at += dice.below(window / kills as u64);
            let Some(pid) = pid_of(&tags, victim, deadline) else { break };
            std::thread::sleep(Duration::from_millis(at).saturating_sub(streamed.elapsed()));
            // An exited replica not yet reaped (a zombie) takes the signal too, without effect.
            if !running_process(pid) {
                continue;
            }
            // SAFETY: kill(2) of a process of this test's own run.
            if unsafe { libc::kill(pid as i32, libc::SIGKILL) } == 0 {
                killed.push(format!("{victim} at {} ms", streamed.elapsed().as_millis()));
                victims.push(victim);
            }
        }
        let ended = finish(running);
        let stderr: String = ended.iter().map(|r| r.stderr.as_str()).collect::<Vec<_>>().join("\n--- next launcher\n");
        let what = format!("run {run} of {test}, killed {killed:?}\n--- stderr\n{stderr}");
        for r in &ended {
            assert_eq!(r.code(), 0, "{what}");
        }
        assert_eq!(results(s, outputs), want, "{what}");
        let report = read_json(&report);
        let rollbacks = report["rollbacks"].as_u64().expect("rollbacks");
        // A kill that landed after the victim was released (its stream complete) is no
        // failure; nor is one that landed as it was exiting after `bye` (its exit status was
        // 0: the launcher had nothing to say about it); any other rolls the run back.
        let unnoticed = victims.iter().all(|v| !stderr.contains(&format!("`{v}`")));
        let late = stderr.contains("after its stream was complete") || unnoticed;
        assert!(rollbacks >= 1 || killed.is_empty() || late, "a kill mid-stream rolls the run back: {what}");
        hits += usize::from(rollbacks >= 1);
        eprintln!("chaos {test}: run {run}: killed {killed:?}, {rollbacks} rollback(s), exact");
    }
    // Most kills land mid-stream, or this test tests little.
    assert!(hits * 2 >= runs, "only {hits} of {runs} runs of {test} rolled back");
}

const PIPELINE: &str = r#"
    [defaults]
    restart = "on-failure"
    max_restarts = 5
    [nodes.docs]
    kind = "lines"
    path = "corpus.jsonl"
    format = "jsonl"
    [nodes.wide]
    kind = "filter"
    inputs = ["docs"]
    replicas = 3
    field = "body"
    contains = "process"
    [nodes.narrow]
    kind = "filter"
    inputs = ["wide"]
    replicas = 2
    field = "body"
    contains = "python"
    ignore_case = true
    [nodes.count]
    kind = "tally"
    inputs = ["narrow"]
    by = "url"
    by_host = true
    output = "count.json"
"#;

/// The replicas of [`PIPELINE`].
const PIPELINE_REPLICAS: [&str; 7] = ["docs.0", "wide.0", "wide.1", "wide.2", "narrow.0", "narrow.1", "count.0"];

#[test]
fn a_pipeline_stays_exact_when_any_replica_is_killed() {
    let s = Scratch::new();
    corpus(&s, 120_000);
    chaos("pipeline", &s, PIPELINE, Launchers::One, "docs.0", &PIPELINE_REPLICAS, &["count.json"], 14, 1);
}

#[test]
fn a_pipeline_stays_exact_when_two_replicas_are_killed() {
    let s = Scratch::new();
    corpus(&s, 120_000);
    chaos("pipeline, two kills", &s, PIPELINE, Launchers::One, "docs.0", &PIPELINE_REPLICAS, &["count.json"], 6, 2);
}

#[test]
fn a_sink_and_subscribers_of_a_pub_port_stay_exact_when_any_replica_is_killed() {
    let s = Scratch::new();
    corpus(&s, 60_000);
    let toml = r#"
        [defaults]
        restart = "on-failure"
        max_restarts = 5
        [nodes.docs]
        kind = "lines"
        path = "corpus.jsonl"
        format = "jsonl"
        outputs = { out = "pub" }
        [nodes.keep]
        kind = "filter"
        inputs = ["docs"]
        replicas = 2
        field = "body"
        contains = "python"
        ignore_case = true
        [nodes.out]
        kind = "sink"
        inputs = ["keep"]
        path = "kept.jsonl"
        [nodes.count]
        kind = "tally"
        inputs = ["docs"]
        output = "count.json"
    "#;
    let replicas = ["docs.0", "keep.0", "keep.1", "out.0", "count.0"];
    chaos("sink and pub/sub", &s, toml, Launchers::One, "docs.0", &replicas, &["kept.jsonl", "count.json"], 12, 1);
}

#[test]
fn a_python_node_stays_exact_when_any_replica_is_killed() {
    let s = Scratch::new();
    corpus(&s, 40_000);
    let toml = format!(
        r#"
        [defaults]
        restart = "on-failure"
        max_restarts = 5
        [nodes.docs]
        kind = "lines"
        path = "corpus.jsonl"
        format = "jsonl"
        [nodes.py]
        command = ["python3", "{}", "--field", "body", "--contains", "python"]
        inputs = ["docs"]
        replicas = 2
        [nodes.count]
        kind = "tally"
        inputs = ["py"]
        by = "url"
        by_host = true
        output = "count.json"
        "#,
        root().join("bin/py_filter.py").display()
    );
    let replicas = ["docs.0", "py.0", "py.1", "count.0"];
    chaos("python", &s, &toml, Launchers::One, "docs.0", &replicas, &["count.json"], 8, 1);
}

/// Two launchers (`--host a`, `--host b`) on loopback addresses: a replica killed on either
/// host rolls back both, each launcher starting its own replicas again.
#[test]
fn a_pipeline_over_two_hosts_stays_exact_when_any_replica_is_killed() {
    let s = Scratch::new();
    corpus(&s, 120_000);
    let hosts = r#"
        [hosts.a]
        address = "127.0.0.1"
        [hosts.b]
        address = "127.0.0.2"
    "#;
    let toml = format!("{hosts}{PIPELINE}")
        .replace("format = \"jsonl\"", "format = \"jsonl\"\n    host = \"a\"")
        .replace("replicas = 3", "replicas = 3\n    host = [\"a\", \"b\"]")
        .replace("replicas = 2", "replicas = 2\n    host = \"b\"")
        .replace("output = \"count.json\"", "output = \"count.json\"\n    host = \"a\"");
    let launchers = Launchers::Hosts(&["a", "b"]);
    chaos("two hosts", &s, &toml, launchers, "docs.0", &PIPELINE_REPLICAS, &["count.json"], 6, 1);
}

/// A program over stdin/stdout (`stdio`): its adapter killed, or the program itself, the
/// run rolls back like any other.
#[test]
fn a_program_over_stdio_stays_exact_when_any_replica_is_killed() {
    let s = Scratch::new();
    corpus(&s, 60_000);
    let toml = r#"
        [defaults]
        restart = "on-failure"
        max_restarts = 5
        [nodes.docs]
        kind = "lines"
        path = "corpus.jsonl"
        format = "jsonl"
        [nodes.awk]
        command = ["awk", "tolower($0) ~ /python/"]
        stdio = "jsonl"
        inputs = ["docs"]
        replicas = 2
        [nodes.count]
        kind = "tally"
        inputs = ["awk"]
        by = "url"
        by_host = true
        output = "count.json"
    "#;
    let replicas = ["docs.0", "awk.0", "awk.1", "count.0"];
    chaos("stdio", &s, toml, Launchers::One, "docs.0", &replicas, &["count.json"], 6, 1);
}
