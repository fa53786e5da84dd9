//! What a replica's exit means: the normal end (status 0 after `bye`), a failure of the
//! run, or a restart (`restart = "on-failure"`, up to `max_restarts`, not while stopping,
//! not after `done`, not for a reader of a pub port mid-stream), with its notices: `restarted`
//! to its consumers, later `resend` to its producers (docs/protocol.md §4.5).

use std::time::{Duration, Instant};

use super::replica::{Life, Progress};
use super::{Run, LAST_WORDS};
use crate::launch::notice::Notice;
use crate::launch::outcome::RunError;
use crate::launch::plan::ReplicaId;
use crate::topology::Restart;
use crate::wire::{Message, Stats};

impl Run<'_> {
    /// Replica `r`'s process ended with `status`. Exit 0 after `bye` is the normal end;
    /// otherwise the `failed` it may have sent just before decides, so it is awaited a moment.
    pub(super) fn on_exit(&mut self, now: Instant, r: ReplicaId, status: i32) -> Result<(), RunError> {
        let at = now.duration_since(self.started);
        let (resume_at, can_roll_back) = (self.resume_at, self.no_rollback.is_none());
        let replica = self.replica_mut(r);
        if matches!(replica.life, Life::Recalled) {
            // Killed for a rollback: it starts again with the others.
            replica.life = Life::Restarting { at: resume_at };
            return Ok(());
        }
        if replica.gone() {
            return Ok(());
        }
        if status == 0 && replica.released() {
            replica.life = Life::Exited { status, at };
            return Ok(());
        }
        if replica.released() && can_roll_back {
            // Its stream was complete: nothing its last words could change.
            return self.decide_exit(now, r, status, at, None);
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
        if replica.released() && self.no_rollback.is_none() {
            // Released (`bye`), also while its last words were awaited: every edge balanced
            // and its outputs were synced before `done`, so the result is whole; the run says
            // what happened and goes on.
            let text = format!(
                "node `{}` {} after its stream was complete; the result is whole",
                replica.id,
                crate::launch::status::describe_status(status)
            );
            let id = replica.id.clone();
            self.replica_mut(r).life = Life::Exited { status, at };
            self.say(Notice::warn("exited-after-release", text).about(id));
            return Ok(());
        }
        let how = match (&failed, status == 0, &replica.progress) {
            (Some(error), _, _) => error.clone(),
            (None, true, Progress::Done(_)) => "exited before the launcher's `bye`".to_string(),
            (None, true, _) => {
                "exited before finishing its stream (status 0 without `done`: does it speak the procnet protocol?)"
                    .to_string()
            }
            (None, false, _) => crate::launch::status::describe_status(status),
        };
        let (node, restarts, reported_done, id) = (replica.node, replica.restarts, replica.done(), replica.id.clone());
        let policy: Restart = t.nodes[node].restart;
        let mid_stream = self.ready_at.is_some() && !reported_done;
        let restartable = policy.on_failure && self.stopping.is_none() && !reported_done && replica.own();
        let fail = |cause: String| Err(RunError::NodeFailed { id: id.clone(), cause });
        // Exactly once: the run rolls back, every replica of the data path starts again; so
        // does a failure in start-up once the replicas were wired to each other: a replacement
        // on the same endpoints would wait for subscriptions forever, since libzmq's SUB
        // sockets do not subscribe again to a restarted XPUB.
        let rollback = (self.ready_at.is_some() && !replica.released()) || (self.ready_at.is_none() && self.wired);
        if rollback && self.no_rollback.is_none() && policy.on_failure && self.stopping.is_none() && replica.launched()
        {
            if restarts >= policy.max_restarts {
                self.replica_mut(r).life = Life::Exited { status, at };
                let n = policy.max_restarts;
                return fail(format!("{how}; gave up after {n} restart{}", if n == 1 { "" } else { "s" }));
            }
            self.roll_back(now, r, at, &how);
            return Ok(());
        }
        if mid_stream && restartable && t.reads_pub(node) {
            self.replica_mut(r).life = Life::Exited { status, at };
            return fail(format!(
                "died mid-stream ({how}); it reads a pub port, and a restarted subscriber cannot be given what its \
                 predecessor missed, so it is not restarted; records in flight may be lost"
            ));
        }
        if mid_stream && restartable && restarts < policy.max_restarts {
            let mut note =
                format!("node `{id}` died mid-stream ({how}); records in flight may be lost; tally may be incomplete");
            if t.nodes[node].inputs.is_empty() {
                note.push_str(" (a restarted source starts over, so records may also repeat)");
            }
            if let Some(why) = &self.no_rollback {
                note.push_str(&format!("; the run does not roll back: {why}"));
            }
            self.say(Notice::warn("records-lost", note.clone()).about(id.clone()));
            self.incomplete.push((id.clone(), note));
        }
        if !restartable {
            self.replica_mut(r).life = Life::Exited { status, at };
            return fail(if mid_stream {
                format!("{how}; records in flight may be lost")
            } else if reported_done && failed.is_none() {
                format!("{how}: records it sent may be lost")
            } else {
                how
            });
        }
        if restarts >= policy.max_restarts {
            self.replica_mut(r).life = Life::Exited { status, at };
            let n = policy.max_restarts;
            return fail(format!("{how}; gave up after {n} restart{}", if n == 1 { "" } else { "s" }));
        }
        self.restart_later(now, r, &how, mid_stream);
        Ok(())
    }

    /// Replica `r` ended (`how`), to be started again after a backoff; if it was streaming
    /// (`mid_stream`), its consumers stop checking its counts: what it had in flight is gone.
    fn restart_later(&mut self, now: Instant, r: ReplicaId, how: &str, mid_stream: bool) {
        let t = self.t;
        let replica = self.replica_mut(r);
        replica.restarts += 1;
        if mid_stream {
            replica.midstream_restarts += 1;
        }
        let delay = Restart::backoff(replica.restarts);
        replica.life = Life::Restarting { at: now + delay };
        replica.progress = Progress::Spawned;
        replica.latest = Stats::default();
        let (id, restarts, node) = (replica.id.clone(), replica.restarts, replica.node);
        let max = t.nodes[node].restart.max_restarts;
        let text = format!("node `{id}` {how}; restarting it in {} ms ({restarts} of {max})", delay.as_millis());
        self.say(Notice::warn("restart-scheduled", text).about(id.clone()));
        if mid_stream {
            for d in self.plan.ids() {
                let down = self.replica(d);
                let reads = t.nodes[down.node].inputs.iter().any(|i| i.node == node);
                if reads && !down.gone() {
                    self.tell(d, Message::Restarted { from: id.clone() });
                }
            }
        }
    }
}
