//! What a replica says on the control channel, and what follows: the start barrier (`hello`
//! then `wire`, `ready` then `start`), progress (`stats`), the end (`done`, then `bye` for
//! all), and failures (docs/protocol.md §4.2).

use std::time::Instant;

use super::replica::{Finished, Life, Progress};
use super::wiring::wiring;
use super::Run;
use crate::launch::notice::Notice;
use crate::launch::outcome::RunError;
use crate::launch::plan::{advertised, ReplicaId, Starter};
use crate::wire::Message;

impl Run<'_> {
    pub(super) fn on_invalid(&mut self, r: ReplicaId, error: String) -> Result<(), RunError> {
        self.note_remote_node(r);
        if self.replica(r).gone() {
            return Ok(());
        }
        Err(RunError::NodeFailed {
            id: self.replica(r).id.clone(),
            cause: format!("sent an invalid control message: {error}"),
        })
    }

    pub(super) fn on_message(
        &mut self,
        now: Instant,
        r: ReplicaId,
        attempt: Option<u32>,
        msg: Message,
    ) -> Result<(), RunError> {
        self.note_remote_node(r);
        let replica = self.replica(r);
        // From an earlier process of this replica's, arriving late: stale.
        if attempt.is_some_and(|a| a != replica.attempt()) {
            return Ok(());
        }
        match (&replica.life, &msg) {
            // Its last words, which decide what its exit means.
            (Life::Dying { status, at, .. }, Message::Failed { error }) => {
                let (status, at, error) = (*status, *at, error.clone());
                return self.decide_exit(now, r, status, at, Some(error));
            }
            // Messages from a replica that died (and may be restarting) are stale.
            _ if replica.gone() => return Ok(()),
            _ => {}
        }
        let id = replica.id.clone();
        let failed = |cause: String| Err(RunError::NodeFailed { id: id.clone(), cause });
        let node = replica.node;
        match msg {
            Message::Hello { input: None, .. } if self.t.binds_push_input(node) => {
                failed("said hello without an input endpoint, but it has inputs (bind PROCNET_BIND first)".into())
            }
            Message::Hello { ref ports, .. }
                if !replica.joined() && self.t.pub_sockets(node).iter().any(|key| !ports.contains_key(key)) =>
            {
                failed(
                    "said hello without the endpoint of each of its pub ports (bind each port of PROCNET_PUB)".into(),
                )
            }
            Message::Hello { ref publish, .. }
                if !replica.joined()
                    && self.wired
                    && !replica.published.is_empty()
                    && *publish != replica.published =>
            {
                failed(format!(
                    "was restarted and published different values ({publish:?}, before {:?}); the other nodes were \
                     given the old ones",
                    replica.published
                ))
            }
            Message::Hello { input, publish, ports, pid, .. } if !replica.joined() => {
                if attempt.is_none() && replica.attempt() > 0 {
                    let text = format!(
                        "node `{id}` names no attempt in its control routing id (`{id}#{}`, docs/protocol.md §3.1), \
                         as nodes written for an earlier protocol do: a late message from its killed process cannot \
                         be told from its new one's, so exactness after this restart rests on that node",
                        replica.attempt()
                    );
                    self.say(Notice::warn("no-attempt-in-id", text).about(id.clone()));
                }
                self.replica_mut(r).suffixed = attempt.is_some();
                self.on_hello(r, input, publish, ports, pid);
                Ok(())
            }
            Message::Ready if matches!(replica.progress, Progress::Joined) => {
                self.on_ready(r);
                Ok(())
            }
            Message::Stats(stats) if replica.streaming() => {
                self.replica_mut(r).latest = stats;
                Ok(())
            }
            Message::Done { stats, notes, result, flows } if replica.streaming() => {
                let replica = self.replica_mut(r);
                replica.latest = stats.clone();
                replica.progress = Progress::Done(Finished { stats, notes, result, flows });
                self.release_finished(now)?;
                self.stop_idle_services();
                Ok(())
            }
            // Counters that crossed a `done` or a restart in flight.
            Message::Stats(_) => Ok(()),
            // Restartable: its exit decides, with this as the cause.
            Message::Failed { error } if self.t.nodes[node].restart.on_failure && !replica.done() => {
                self.replica_mut(r).failed = Some(error);
                Ok(())
            }
            Message::Failed { error } => failed(error),
            other => failed(format!("sent `{}` out of turn (it was {})", other.type_name(), replica.progress.name())),
        }
    }

    /// A message from a replica of another host: its launcher started it, so should have
    /// joined by now.
    fn note_remote_node(&mut self, r: ReplicaId) {
        if let Starter::Host(h) = self.replica(r).starter {
            self.members.nodes_seen(h, self.now);
        }
    }

    fn on_hello(
        &mut self,
        r: ReplicaId,
        input: Option<String>,
        publish: std::collections::BTreeMap<String, String>,
        ports: std::collections::BTreeMap<String, String>,
        pid: u32,
    ) {
        let t = self.t;
        let remote_watch = self.replica(r).host.filter(|&h| self.members.has(h));
        let replica = self.replica_mut(r);
        replica.progress = Progress::Joined;
        let mut watch = None;
        match replica.starter {
            // Watched by its pid from now on (it runs on this host).
            Starter::External { here: true } => watch = Some(crate::launch::machine::Action::Watch(r, pid)),
            // Watched by its host's launcher, told now and with every heartbeat.
            Starter::External { here: false } => {
                if let Some(h) = remote_watch {
                    replica.remote_pid = Some(pid);
                    let msg = crate::launch::link::Link::Watch { id: replica.id.clone(), pid };
                    watch = Some(crate::launch::machine::Action::Link(h, msg));
                }
            }
            _ => {}
        }
        // A restart binds what this one bound, so peers reconnect to it.
        if input.is_some() {
            replica.bind.clone_from(&input);
        }
        for (key, ep) in &ports {
            replica.pub_ports.insert(key.clone(), ep.clone());
        }
        // Peers are given the host's declared address for a wildcard bind.
        let host = replica.host.map(|h| h.0);
        replica.endpoint = input.map(|ep| advertised(t, host, ep));
        replica.ports = ports.into_iter().map(|(k, ep)| (k, advertised(t, host, ep))).collect();
        replica.published = publish;
        self.actions.extend(watch);
        if self.wired {
            // A restarted replica, after the others were wired: the same wiring.
            let msg = wiring(t, &self.replicas, r.0);
            self.tell(r, msg);
        } else if self.replicas.iter().all(|x| x.joined()) {
            self.wired = true;
            for w in self.plan.ids() {
                let msg = wiring(t, &self.replicas, w.0);
                self.tell(w, msg);
            }
            let text = format!("every replica said hello: wiring {} replicas", self.replicas.len());
            self.say(Notice::info("network-wired", text).json_only());
        }
    }

    fn on_ready(&mut self, r: ReplicaId) {
        self.replica_mut(r).progress = Progress::Ready;
        if self.ready_at.is_some() {
            // A replica restarted mid-stream (alone, or in a rollback): it starts at once;
            // restarted alone, its upstream replicas send it their `eos` again, in case its
            // predecessor took them.
            self.replica_mut(r).progress = Progress::Started;
            self.tell(r, Message::Start);
            self.recovered(self.now);
            if self.stopping.is_some() {
                // Restarted while the run stops: it stops like the others did.
                self.tell(r, Message::Stop);
            }
            let to = self.replica(r).id.clone();
            let node = self.replica(r).node;
            // After a rollback, its producers started again too: their one `eos` is its.
            if self.replica(r).midstream_restarts == 0 {
                return;
            }
            for u in self.plan.ids() {
                let up = self.replica(u);
                let upstream = self.t.nodes[node].inputs.iter().any(|i| i.node == up.node);
                if upstream && matches!(up.progress, Progress::Started | Progress::Done(_)) {
                    self.tell(u, Message::Resend { to: to.clone() });
                }
            }
        } else if self.replicas.iter().all(|x| x.ready()) {
            let ready_at = self.now.duration_since(self.started);
            self.ready_at = Some(ready_at);
            let text = format!("every replica is ready: streaming started (ready in {:.3} s)", ready_at.as_secs_f64());
            self.say(Notice::info("network-started", text).json_only());
            for w in self.plan.ids() {
                let replica = self.replica_mut(w);
                if !replica.streaming() && !replica.done() {
                    replica.progress = Progress::Started;
                }
                self.tell(w, Message::Start);
            }
            // After a rollback in start-up, the first start ends the recovery.
            self.recovered(self.now);
            self.stop_idle_services();
        }
    }
}
