//! Exactly once under failure (docs/guarantees.md): a replica that fails mid-stream is not
//! restarted alone, with what it had in flight lost; the whole run rolls back. Every replica
//! of the data path (all but the services) is killed, and once every one has exited, all
//! start again from the beginning: sources read their files again, tallies count from zero,
//! sinks write their partial files anew. Nothing of the abandoned attempt reaches a result,
//! so the run ends exactly as an undisturbed one would, or fails naming why it could not.

use std::time::{Duration, Instant};

use super::replica::{Life, Progress};
use super::Run;
use crate::launch::link::Link;
use crate::launch::notice::Notice;
use crate::launch::plan::{Plan, ReplicaId, Starter};
use crate::nodes::Kind;
use crate::topology::{Delivery, Restart, Runner, Topology};
use crate::wire::Stats;

/// Why a failure in a run of `t` as `plan` says cannot be repaired by a rollback, if it
/// cannot; what only the file system knows (a FIFO) the driver adds.
pub fn blocker(t: &Topology, plan: &Plan) -> Option<String> {
    if t.delivery == Delivery::AtMostOnce {
        return Some("the topology asks for `delivery = \"at-most-once\"`".into());
    }
    for p in &plan.replicas {
        let node = &t.nodes[p.node];
        if t.is_service(p.node) {
            continue;
        }
        match p.starter {
            Starter::Here => {}
            Starter::External { .. } => {
                return Some(format!("node `{}` is external: procnet cannot start it again", node.name))
            }
            Starter::Host(_) => {}
            Starter::Engine => {
                return Some(format!("node `{}` is started by another engine (`--coordinate`)", node.name))
            }
        }
        match &node.runner {
            Runner::Builtin(Kind::Lines(c)) if c.path.is_none() => {
                return Some(format!("node `{}` reads stdin, which cannot be read again", node.name))
            }
            Runner::Builtin(Kind::Sink(c)) if c.path.is_none() => {
                return Some(format!("node `{}` writes to stdout, which cannot be taken back", node.name))
            }
            _ => {}
        }
    }
    None
}

impl Run<'_> {
    /// Once every replica of the data path was told `start` again after a rollback: the
    /// recovery is over, and how long it took is kept for the report.
    pub(super) fn recovered(&mut self, now: Instant) {
        let t = self.t;
        let Some(exited) = self.recovering else { return };
        if self
            .replicas
            .iter()
            .all(|r| t.is_service(r.node) || matches!(r.progress, Progress::Started | Progress::Done(_)))
        {
            self.recovering = None;
            self.recoveries.push(now.duration_since(self.started).saturating_sub(exited));
        }
    }

    /// Replica `r` failed mid-stream (`how`; its exit was seen `exited` into the run): roll
    /// the run back.
    pub(super) fn roll_back(&mut self, now: Instant, r: ReplicaId, exited: Duration, how: &str) {
        let t = self.t;
        self.rollbacks += 1;
        self.rolling_back = true;
        // Two failures in one rollback: its recovery counts from the first.
        self.recovering.get_or_insert(exited);
        let failed = self.replica_mut(r);
        failed.restarts += 1;
        let delay = Restart::backoff(failed.restarts);
        // Its process is gone (whatever its life said while its last words were awaited).
        failed.life = Life::Restarting { at: now + delay };
        self.resume_at = self.resume_at.max(now + delay);
        let failed = self.replica(r);
        let max = t.nodes[failed.node].restart.max_restarts;
        let text = format!(
            "node `{}` {how}; rolling the run back: every node starts again from the beginning in {} ms (rollback {}; \
             restart {} of {max})",
            failed.id,
            delay.as_millis(),
            self.rollbacks,
            failed.restarts,
        );
        let id = failed.id.clone();
        self.say(Notice::warn("rollback", text).about(id));
        let resume_at = self.resume_at;
        for d in self.plan.ids() {
            if t.is_service(self.replica(d).node) {
                continue;
            }
            let replica = self.replica_mut(d);
            replica.replayed += replica.latest.received;
            replica.latest = Stats::default();
            replica.progress = Progress::Spawned;
            replica.failed = None;
            match replica.life {
                Life::Running { .. } => {
                    replica.life = Life::Recalled;
                    let action = match replica.starter {
                        // Repeated with every heartbeat until its exit arrives.
                        Starter::Host(h) => {
                            let msg = Link::Kill { id: replica.id.clone(), attempt: replica.attempt() };
                            super::Action::Link(h, msg)
                        }
                        _ => super::Action::Kill(d),
                    };
                    self.actions.push(action);
                }
                // Dead already (the one that failed, or one that died at the same moment):
                // it starts with the others.
                Life::Dying { .. } | Life::Restarting { .. } => replica.life = Life::Restarting { at: resume_at },
                Life::Recalled | Life::Pending | Life::Exited { .. } => {}
            }
        }
    }
}
