//! The run report (`procnet run --report FILE`): per replica, what it counted; per node, its
//! throughput; each node's result (a tally's counts). JSON, or CSV when FILE ends in `.csv`;
//! with `--repeat K`, one entry (JSON) or one group of rows (CSV) per run, so runs of
//! different placements, replica counts and start methods can be compared. Each says the
//! `--set` overrides the topology was loaded with, so runs of different settings can be too.

use std::time::Duration;

use serde::Serialize;

use super::outcome::Outcome;
use crate::topology::Topology;

/// One finished run of a sweep (`--sweep`): its point, which repeat of it, the topology it
/// ran (loaded with the point's values) and what it produced.
pub struct Swept {
    /// The swept values it ran with.
    pub point: super::sweep::Point,
    /// Which run of the point's `--repeat K`, from 1.
    pub repeat: u32,
    /// The topology it ran.
    pub topology: Topology,
    /// What it produced.
    pub outcome: Outcome,
}

#[derive(Serialize)]
struct Report<'a> {
    topology: &'a str,
    /// In a sweep: the swept values this run ran with, by path.
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<serde_json::Map<String, serde_json::Value>>,
    /// In a sweep: which run of its point's `--repeat`, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat: Option<u32>,
    /// The `--set PATH=VALUE` the topology was loaded with, as given.
    overrides: &'a [String],
    elapsed_s: f64,
    startup_s: f64,
    records_rejected: u64,
    records_dropped: u64,
    /// Replicas that died mid-stream and were restarted: the result may be incomplete.
    incomplete: Vec<&'a str>,
    /// How many times the run rolled back after a failure (and every node started again).
    rollbacks: u32,
    /// For each rollback, seconds from the failed replica's exit to every replica started
    /// again.
    recovery_s: Vec<f64>,
    nodes: Vec<NodeLine<'a>>,
    replicas: Vec<Replica<'a>>,
}

/// One node's totals over its replicas, in a run.
#[derive(Serialize)]
struct NodeLine<'a> {
    node: &'a str,
    replicas: u32,
    received: u64,
    sent: u64,
    /// Records handled per second of the run: received, or sent for a source.
    records_per_s: f64,
    /// Restarts of its replicas after they failed.
    restarts: u32,
    /// Records its replicas received in attempts that were rolled back, and again after.
    replayed: u64,
    /// Its result, if it reported one (a tally's counts: JSON, kept as JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Replica<'a> {
    id: &'a str,
    node: &'a str,
    replica: u32,
    received: u64,
    sent: u64,
    invalid_frames: u64,
    bad_records: u64,
    errors: u64,
    dropped: u64,
    blocked_ms: u64,
    wall_s: f64,
    exit: i32,
    restarts: u32,
    replayed: u64,
    notes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<serde_json::Value>,
}

/// A result as JSON when it is JSON (a tally's), else as a string.
fn json_or_text(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

/// Per node, in topology order: totals over its replicas and throughput over the run.
fn node_lines<'a>(topology: &'a Topology, outcome: &'a Outcome) -> Vec<NodeLine<'a>> {
    let secs = outcome.elapsed.as_secs_f64().max(1e-9);
    topology
        .nodes
        .iter()
        .map(|n| {
            let mine = || outcome.replicas.iter().filter(|r| r.node == n.name);
            let received = mine().map(|r| r.stats.received).sum::<u64>();
            let sent = mine().map(|r| r.stats.sent).sum::<u64>();
            let handled = if n.inputs.is_empty() { sent } else { received };
            NodeLine {
                node: &n.name,
                replicas: n.replicas,
                received,
                sent,
                records_per_s: (handled as f64 / secs).round(),
                restarts: mine().map(|r| r.restarts).sum(),
                replayed: mine().map(|r| r.replayed).sum(),
                result: mine().find_map(|r| r.result.as_deref()).map(json_or_text),
            }
        })
        .collect()
}

/// The report of finished runs, as pretty JSON: one run's report, or with several runs,
/// `{"topology": ..., "runs": [report, ...]}`.
pub fn to_json(topology: &Topology, runs: &[Outcome]) -> String {
    let reports: Vec<Report<'_>> = runs.iter().map(|o| report(topology, o)).collect();
    match reports.as_slice() {
        [one] => serde_json::to_string_pretty(one),
        _ => serde_json::to_string_pretty(&serde_json::json!({
            "topology": topology.name,
            "overrides": topology.overrides,
            "runs": reports,
        })),
    }
    .expect("a report serializes")
}

/// The report of finished runs as CSV: a header, then one row per node per run. `overrides`
/// is the JSON array of the `--set` flags' `PATH=VALUE`s (the same in every row).
pub fn to_csv(topology: &Topology, runs: &[Outcome]) -> String {
    let mut out = String::from("run,node,replicas,received,sent,elapsed_s,startup_s,records_per_s,overrides,result\n");
    for (i, o) in runs.iter().enumerate() {
        csv_rows(&mut out, &format!("{}", i + 1), topology, o);
    }
    out
}

/// One CSV row per node of run `outcome` of `topology`, each starting with `lead` (its run
/// columns) and ending with the overrides and the node's result.
fn csv_rows(out: &mut String, lead: &str, topology: &Topology, outcome: &Outcome) {
    let overrides = csv_field(&serde_json::to_string(&topology.overrides).expect("strings serialize"));
    for n in node_lines(topology, outcome) {
        let result = n.result.map(|r| r.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{lead},{},{},{},{},{:.6},{:.6},{},{overrides},{}\n",
            csv_field(n.node),
            n.replicas,
            n.received,
            n.sent,
            outcome.elapsed.as_secs_f64(),
            outcome.startup.as_secs_f64(),
            n.records_per_s,
            csv_field(&result)
        ));
    }
}

/// A swept value as JSON: a number or a boolean as such (`2`, `true`), anything else as the
/// string given (`fork`; `"fork"` unquoted).
fn value_json(value: &str) -> serde_json::Value {
    if let Ok(n) = value.parse::<i64>() {
        return n.into();
    }
    if let Some(f) = value.parse::<f64>().ok().filter(|f| f.is_finite()) {
        return f.into();
    }
    match value {
        "true" => true.into(),
        "false" => false.into(),
        v => v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v).into(),
    }
}

/// A point's values by path.
fn params(point: &super::sweep::Point) -> serde_json::Map<String, serde_json::Value> {
    point.iter().map(|(path, value)| (path.clone(), value_json(value))).collect()
}

/// The report of a sweep, as pretty JSON: the sweep (each path's values in order), the
/// repeats per point, and every run that finished, with its `params` and `repeat`.
pub fn sweep_to_json(sweeps: &[super::sweep::Sweep], repeat: u32, runs: &[Swept]) -> String {
    let sweep: serde_json::Map<String, serde_json::Value> =
        sweeps.iter().map(|s| (s.path.clone(), s.values.iter().map(|v| value_json(v)).collect())).collect();
    let reports: Vec<Report<'_>> = runs
        .iter()
        .map(|r| Report { params: Some(params(&r.point)), repeat: Some(r.repeat), ..report(&r.topology, &r.outcome) })
        .collect();
    let name = runs.first().map_or("", |r| r.topology.name.as_str());
    serde_json::to_string_pretty(&serde_json::json!({
        "topology": name,
        "sweep": sweep,
        "repeat": repeat,
        "runs": reports,
    }))
    .expect("a report serializes")
}

/// The report of a sweep as CSV: [`to_csv`]'s columns, with `params` (the point, as a JSON
/// object) and `repeat` after `run`.
pub fn sweep_to_csv(runs: &[Swept]) -> String {
    let mut out = String::from(
        "run,params,repeat,node,replicas,received,sent,elapsed_s,startup_s,records_per_s,overrides,result\n",
    );
    for (i, r) in runs.iter().enumerate() {
        let point = csv_field(&serde_json::Value::Object(params(&r.point)).to_string());
        csv_rows(&mut out, &format!("{},{point},{}", i + 1, r.repeat), &r.topology, &r.outcome);
    }
    out
}

/// A CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote or a
/// line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn report<'a>(topology: &'a Topology, outcome: &'a Outcome) -> Report<'a> {
    let replicas = outcome
        .replicas
        .iter()
        .map(|r| {
            let replica = r.id.rsplit_once('.').expect("ids are name.replica").1;
            Replica {
                id: &r.id,
                node: &r.node,
                replica: replica.parse().expect("replica index is a number"),
                received: r.stats.received,
                sent: r.stats.sent,
                invalid_frames: r.stats.invalid_frames,
                bad_records: r.stats.bad_records,
                errors: r.stats.errors,
                dropped: r.stats.dropped,
                blocked_ms: r.stats.blocked_ms,
                wall_s: r.wall.as_secs_f64(),
                exit: r.exit_code,
                restarts: r.restarts,
                replayed: r.replayed,
                notes: &r.notes,
                result: r.result.as_deref().map(json_or_text),
            }
        })
        .collect();
    Report {
        topology: &topology.name,
        params: None,
        repeat: None,
        overrides: &topology.overrides,
        elapsed_s: outcome.elapsed.as_secs_f64(),
        startup_s: outcome.startup.as_secs_f64(),
        records_rejected: outcome.rejected(),
        records_dropped: outcome.replicas.iter().map(|r| r.stats.dropped).sum(),
        incomplete: outcome.incomplete.iter().map(|(_, note)| note.as_str()).collect(),
        rollbacks: outcome.rollbacks,
        recovery_s: outcome.recoveries.iter().map(Duration::as_secs_f64).collect(),
        nodes: node_lines(topology, outcome),
        replicas,
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("count"), "count");
        assert_eq!(csv_field(r#"{"count":3,"by":{"a":1}}"#), r#""{""count"":3,""by"":{""a"":1}}""#);
    }
}
