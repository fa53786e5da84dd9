//! The run report as JSON (`procnet run --report FILE`): per replica, what it counted.

use serde::Serialize;

use super::outcome::Outcome;
use crate::topology::Topology;

#[derive(Serialize)]
struct Report<'a> {
    topology: &'a str,
    elapsed_s: f64,
    startup_s: f64,
    records_rejected: u64,
    records_dropped: u64,
    /// Replicas that died mid-stream and were restarted: the result may be incomplete.
    incomplete: &'a [String],
    replicas: Vec<Replica<'a>>,
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
    notes: &'a [String],
}

/// The report of a finished run, as pretty JSON.
pub fn to_json(topology: &Topology, outcome: &Outcome) -> String {
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
                notes: &r.notes,
            }
        })
        .collect();
    let report = Report {
        topology: &topology.name,
        elapsed_s: outcome.elapsed.as_secs_f64(),
        startup_s: outcome.startup.as_secs_f64(),
        records_rejected: outcome.rejected(),
        records_dropped: outcome.replicas.iter().map(|r| r.stats.dropped).sum(),
        incomplete: &outcome.incomplete,
        replicas,
    };
    serde_json::to_string_pretty(&report).expect("a report serializes")
}
