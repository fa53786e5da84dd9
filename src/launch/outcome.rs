//! What a run produced: per-replica counters on success, or why it failed.

use std::fmt;
use std::time::Duration;

use super::notice::Notice;
use crate::exit_codes;
use crate::wire::Stats;

/// One replica's final report.
#[derive(Debug, Clone)]
pub struct ReplicaReport {
    /// `name.replica`.
    pub id: String,
    /// The node's name.
    pub node: String,
    /// From the start of the run to the replica's exit.
    pub wall: Duration,
    /// Its exit status (0: every replica of a finished run exits 0).
    pub exit_code: i32,
    /// How many times it was restarted after failing.
    pub restarts: u32,
    /// Records it received in attempts of the run that were rolled back (and received again).
    pub replayed: u64,
    /// What it counted.
    pub stats: Stats,
    /// Why it dropped frames or records, if it did (the first few reasons).
    pub notes: Vec<String>,
    /// Its result, if it reported one (a `tally`'s JSON line).
    pub result: Option<String>,
}

/// A run in which every node finished its stream and exited 0.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// From the first spawn to the last exit.
    pub elapsed: Duration,
    /// From the first spawn to every node ready (the start barrier).
    pub startup: Duration,
    /// Every replica, in topology order.
    pub replicas: Vec<ReplicaReport>,
    /// Replicas that died mid-stream and were restarted, one line each (with the replica's
    /// id): every node finished, but records in flight may have been lost, so the result is
    /// not trustworthy.
    pub incomplete: Vec<(String, String)>,
    /// Edges whose readers received fewer records than were sent, the difference lost with
    /// invalid frames they counted (so the run exits 65 for them already), one line each.
    pub unreceived: Vec<String>,
    /// How many times the run rolled back after a failure (docs/guarantees.md).
    pub rollbacks: u32,
    /// How long each rollback took to recover: from the failed replica's exit to every
    /// replica of the data path started again.
    pub recoveries: Vec<Duration>,
}

impl Outcome {
    /// Input rejected anywhere in the run: frames that could not be decoded and records a
    /// node could not process. Any makes the result incomplete (exit 65). Records shed for
    /// `drop = true` subscribers are not counted here; see [`Outcome::shed_report`].
    pub fn rejected(&self) -> u64 {
        self.replicas.iter().map(|r| r.stats.invalid_frames + r.stats.bad_records).sum()
    }

    /// The launcher's exit status for this run: 0 only if no replica died mid-stream and no
    /// frame or record was rejected (`crate::exit_codes`).
    pub fn exit_code(&self) -> u8 {
        if !self.incomplete.is_empty() {
            exit_codes::NODE_FAILED
        } else if self.rejected() > 0 {
            exit_codes::DATA_DROPPED
        } else {
            exit_codes::OK
        }
    }

    /// One line per replica that shed records for subscribers that chose `drop = true`:
    /// not an error, but never silent.
    pub fn shed_report(&self) -> Vec<Notice> {
        self.replicas
            .iter()
            .filter(|r| r.stats.dropped > 0)
            .map(|r| {
                let text =
                    format!("node `{}` dropped {} records for subscribers with `drop = true`", r.id, r.stats.dropped);
                Notice::warn("records-dropped", text).about(r.id.clone())
            })
            .collect()
    }

    /// One line per replica that rejected input, naming it, counting, and giving reasons
    /// (the notice's detail); then one per edge that delivered less for it.
    pub fn rejected_report(&self) -> Vec<Notice> {
        let mut lines = Vec::new();
        for r in self.replicas.iter().filter(|r| r.stats.invalid_frames + r.stats.bad_records > 0) {
            let mut parts = Vec::new();
            if r.stats.invalid_frames > 0 {
                parts.push(format!(
                    "{} invalid frame{}",
                    r.stats.invalid_frames,
                    if r.stats.invalid_frames == 1 { "" } else { "s" }
                ));
            }
            if r.stats.bad_records > 0 {
                parts.push(format!(
                    "{} bad record{}",
                    r.stats.bad_records,
                    if r.stats.bad_records == 1 { "" } else { "s" }
                ));
            }
            let text = format!("node `{}` dropped {}", r.id, parts.join(" and "));
            lines.push(Notice::warn("records-rejected", text).about(r.id.clone()).with_reasons(r.notes.clone()));
        }
        lines.extend(self.unreceived.iter().map(|edge| Notice::warn("records-rejected", edge.clone())));
        lines
    }
}

/// Why a run did not complete.
#[derive(Debug)]
pub enum RunError {
    /// The launcher could not set up, for a reason of its own, in words.
    Setup(String),
    /// Something the launcher needs of the system failed: `what` (which reads after "failed
    /// to"), because of `source`.
    System {
        /// What failed.
        what: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A replica could not be started.
    Spawn {
        /// `name.replica`.
        id: String,
        /// Why, in words.
        cause: String,
    },
    /// A replica failed: reported an error, exited non-zero, was killed, or quit early.
    NodeFailed {
        /// `name.replica`.
        id: String,
        /// What it said, or how it ended.
        cause: String,
    },
    /// Some replicas did not join or get ready in time.
    Startup {
        /// The replicas still not ready.
        waiting: Vec<String>,
        /// The limit that passed.
        timeout: Duration,
    },
    /// A host of a run over several hosts failed: its launcher did not join, stopped
    /// answering, or (seen from another host) the coordinator did.
    Host {
        /// The host's name in `[hosts]`.
        host: String,
        /// What happened, in words.
        cause: String,
    },
    /// Records went missing or appeared on the way: the records the upstream replicas of an
    /// edge sent differ from those its readers received (one line per edge).
    Imbalance(Vec<String>),
    /// The run was interrupted by a signal (SIGINT or SIGTERM).
    Interrupted {
        /// The signal number.
        signal: i32,
        /// Whether every node finished its stream (a graceful stop) rather than being killed.
        drained: bool,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Setup(msg) => f.write_str(msg),
            RunError::System { what, .. } => write!(f, "failed to {what}"),
            RunError::Spawn { id, cause } => write!(f, "failed to start node `{id}`: {cause}"),
            RunError::NodeFailed { id, cause } => write!(f, "node `{id}` failed: {cause}"),
            RunError::Startup { waiting, timeout } => write!(
                f,
                "nodes did not join the network within {} s: {} (do they speak the procnet protocol?)",
                timeout.as_secs_f64(),
                waiting.join(", ")
            ),
            RunError::Host { host, cause } => write!(f, "host `{host}`: {cause}"),
            RunError::Imbalance(edges) => write!(
                f,
                "the result would be wrong, so the run failed: {} (a node sent a forged or mistaken `eos`, \
                 or records were lost)",
                edges.join("; ")
            ),
            RunError::Interrupted { signal, drained: true } => write!(
                f,
                "interrupted by {}: stopped gracefully (sources ended early, every node finished its stream)",
                super::status::signal_name(*signal)
            ),
            RunError::Interrupted { signal, drained: false } => {
                write!(f, "interrupted by {}: nodes killed", super::status::signal_name(*signal))
            }
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::System { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl RunError {
    /// A function turning the error of doing `what` (which reads after "failed to") into a
    /// [`RunError::System`] that carries it.
    pub fn system<E: std::error::Error + Send + Sync + 'static>(what: impl Into<String>) -> impl FnOnce(E) -> RunError {
        let what = what.into();
        move |e| RunError::System { what, source: Box::new(e) }
    }

    /// The error and its causes, in one line: `failed to bind `x`: Address in use`.
    pub fn chain(&self) -> String {
        error_chain(self)
    }

    /// The line that says this error at the end: its chain, with an event named after its
    /// kind, and the replica or host it names.
    pub fn notice(&self) -> Notice {
        let text = self.chain();
        match self {
            RunError::NodeFailed { id, .. } => Notice::error("node-failed", text).about(id.clone()),
            RunError::Spawn { id, .. } => Notice::error("spawn-failed", text).about(id.clone()),
            RunError::Startup { .. } => Notice::error("startup-timeout", text),
            RunError::Host { host, .. } => Notice::error("host-failed", text).on_host(host.clone()),
            RunError::Imbalance(_) => Notice::error("imbalance", text),
            RunError::Interrupted { .. } => Notice::error("interrupted", text),
            RunError::Setup(_) | RunError::System { .. } => Notice::error("launcher-failed", text),
        }
    }

    /// The launcher's exit status for this failure (`crate::exit_codes`).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Interrupted { signal, .. } if *signal == libc::SIGTERM => exit_codes::TERMINATED,
            RunError::Interrupted { .. } => exit_codes::INTERRUPTED,
            _ => exit_codes::NODE_FAILED,
        }
    }
}

/// An error and each of its causes, joined by `: `, as the top level prints it once.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
