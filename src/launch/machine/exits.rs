//! What a replica's exit means: the normal end (status 0 after `bye`), a failure of the
//! run, or a restart (`restart = "on-failure"`, up to `max_restarts`, not while stopping,
//! not after `done`, not for a reader of a pub port mid-stream), with its notices: `restarted`
//! to its consumers, later `resend` to its producers (docs/protocol.md §4.5).

use std::time::{Duration, Instant};

use super::replica::{Life, Progress};
use super::{Run, LAST_WORDS};
use crate::launch::outcome::RunError;
use crate::launch::plan::ReplicaId;
use crate::topology::Restart;
use crate::wire::{Message, Stats};

impl Run<'_> {
    /// Replica `r`'s process ended with `status`. Exit 0 after `bye` is the normal end;
    /// otherwise the `failed` it may have sent just before decides, so it is awaited a moment.
    pub(super) fn on_exit(&mut self, now: Instant, r: ReplicaId, status: i32) -> Result<(), RunError> {
        let at = now.duration_since(self.started);
        let replica = self.replica_mut(r);
        if replica.gone() {
            return Ok(());
        }
        if status == 0 && replica.released() {
            replica.life = Life::Exited { status, at };
            return Ok(());
        }
        match replica.failed.take() {
            Some(error) => self.decide_exit(now, r, status, at, Some(error)),
            None => {
                replica.life = Life::Dying { status, at, until: now + LAST_WORDS };
                Ok(())
            }
        }
    }

    /// Decide what replica `r`'s exit with `status` means, `failed` being what it said last.
    pub(super) fn decide_exit(
        &mut self,
        now: Instant,
        r: ReplicaId,
        status: i32,
        at: Duration,
        failed: Option<String>,
    ) -> Result<(), RunError> {
        let t = self.t;
        let replica = self.replica(r);
        let success = status == 0;
        let how = match (&failed, success, &replica.progress) {
            (Some(error), _, _) => error.clone(),
            (None, true, Progress::Done(_)) => "exited before the launcher's `bye`".to_string(),
            (None, true, _) => {
                "exited before finishing its stream (status 0 without `done`: does it speak the procnet protocol?)"
                    .to_string()
            }
            (None, false, _) => crate::launch::status::describe_status(status),
        };
        let policy: Restart = t.nodes[replica.node].restart;
        let mid_stream = self.ready_at.is_some() && !replica.done();
        let restartable = policy.on_failure && self.stopping.is_none() && !replica.done() && replica.own();
        let id = replica.id.clone();
        if mid_stream {
            let mut note =
                format!("node `{id}` died mid-stream ({how}); records in flight may be lost; tally may be incomplete");
            if t.nodes[replica.node].inputs.is_empty() {
                note.push_str(" (a restarted source starts over, so records may also repeat)");
            }
            if restartable && t.reads_pub(replica.node) {
                self.replica_mut(r).life = Life::Exited { status, at };
                return Err(RunError::NodeFailed {
                    id,
                    cause: format!(
                        "died mid-stream ({how}); it reads a pub port, and a restarted subscriber cannot be given what \
                         its predecessor missed, so it is not restarted; records in flight may be lost"
                    ),
                });
            }
            if restartable && replica.restarts < policy.max_restarts {
                self.say(note.clone());
                self.incomplete.push(note);
            }
        }
        let replica = self.replica(r);
        if !restartable {
            let reported_done = replica.done();
            self.replica_mut(r).life = Life::Exited { status, at };
            let cause = if mid_stream {
                format!("{how}; records in flight may be lost")
            } else if reported_done && failed.is_none() {
                format!("{how}: records it sent may be lost")
            } else {
                how
            };
            return Err(RunError::NodeFailed { id, cause });
        }
        if replica.restarts >= policy.max_restarts {
            self.replica_mut(r).life = Life::Exited { status, at };
            let n = policy.max_restarts;
            return Err(RunError::NodeFailed {
                id,
                cause: format!("{how}; gave up after {n} restart{}", if n == 1 { "" } else { "s" }),
            });
        }
        let replica = self.replica_mut(r);
        replica.restarts += 1;
        if mid_stream {
            replica.midstream_restarts += 1;
        }
        let delay = Restart::backoff(replica.restarts);
        replica.life = Life::Restarting { at: now + delay };
        replica.progress = Progress::Spawned;
        replica.latest = Stats::default();
        let (restarts, node) = (replica.restarts, replica.node);
        self.say(format!(
            "node `{id}` {how}; restarting it in {} ms ({restarts} of {})",
            delay.as_millis(),
            policy.max_restarts
        ));
        if mid_stream {
            // Its consumers stop checking its counts: what it had in flight is gone.
            for d in self.plan.ids() {
                let down = self.replica(d);
                let reads = t.nodes[down.node].inputs.iter().any(|i| i.node == node);
                if reads && !down.gone() {
                    self.tell(d, Message::Restarted { from: id.clone() });
                }
            }
        }
        Ok(())
    }
}
