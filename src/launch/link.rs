//! Between launchers: one run over several hosts (`procnet run FILE --host NAME` on each).
//!
//! The launcher of the first host in `[hosts]` coordinates. It binds the control socket on
//! its host's address as well (`tcp://<address>:<control port>`, 7360 unless
//! `--control-port` says otherwise), and every node of every host connects its control
//! DEALER there, so the start barrier, `wire`, `stop`, `bye` and the final report work as
//! on one machine. The other hosts' launchers only start, relay and reap their own replicas;
//! each connects a DEALER with routing id `@<host>` to the same socket and speaks the
//! messages below (MessagePack maps with a `type` key, like the wire protocol's, but private
//! to procnet: both ends must be the same procnet version).
//!
//! Each side sends a `beat` every [`BEAT`]; a side that hears nothing from the other for
//! [`HOST_TIMEOUT`] stops the run with an error naming the silent host. The coordinator
//! then tells every other launcher to `end` (they kill their replicas and exit with the
//! run's status); a host's launcher that loses the coordinator kills its replicas itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The coordinator's tcp control port unless `--control-port` says otherwise.
pub const DEFAULT_CONTROL_PORT: u16 = 7360;
/// How often each side says it is alive.
pub const BEAT: Duration = Duration::from_millis(500);
/// Silence after which a host (or the coordinator) counts as lost. Long enough to ride out
/// a link that is down for a few seconds: TCP retransmits, nothing is lost, but its
/// backoff can stretch a 5 s outage into 11 s of silence (seen on the namespace harness).
/// Short enough that a dead host stops the run promptly.
pub const HOST_TIMEOUT: Duration = Duration::from_secs(15);

/// One message between a host's launcher and the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Link {
    /// Host -> coordinator, first: who it is and what it runs.
    Join {
        /// Its name in `[hosts]`.
        host: String,
        /// The topology's name.
        topology: String,
        /// The procnet version (both ends must match).
        version: String,
        /// The launcher's process id: `join` is repeated until `welcome` (the first may reach
        /// the socket of a run that is closing); the same pid again is the same launcher.
        pid: u32,
        /// Which run of a `--repeat` (from 1): a `join` for another run is ignored.
        run: u32,
    },
    /// Coordinator -> host: joined (run `run`).
    Welcome {
        /// The run it joined.
        run: u32,
    },
    /// Either way: still alive.
    Beat,
    /// Host -> coordinator: one of its replicas ended, with this raw wait status.
    Exited {
        /// `name.replica`.
        id: String,
        /// The raw `waitpid` status.
        status: i32,
        /// Which of its processes ended (0 for the first; a rollback starts the next).
        #[serde(default)]
        attempt: u32,
    },
    /// Coordinator -> host: start attempt `attempt` of one of its replicas (a rollback), as
    /// it would have started it, binding where the replica's first process bound (its peers
    /// reconnect there). Sent with every heartbeat until the replica says `hello`: a host
    /// starts each attempt once.
    Start {
        /// `name.replica`.
        id: String,
        /// Its restarts mid-stream (`PROCNET_RESTART`).
        restart: u32,
        /// Its attempt (`PROCNET_ATTEMPT`).
        attempt: u32,
        /// Where it binds its input.
        bind: Option<String>,
        /// Where it binds its pub ports, by port.
        pub_ports: std::collections::BTreeMap<String, String>,
    },
    /// Coordinator -> host: kill attempt `attempt` of one of its replicas now (a rollback);
    /// its exit is reported as any other. Sent with every heartbeat until the exit arrives.
    Kill {
        /// `name.replica`.
        id: String,
        /// The attempt to kill: a later one is left alone.
        attempt: u32,
    },
    /// Host -> coordinator: the host's launcher got SIGINT or SIGTERM; stop the run
    /// gracefully, as if the coordinator had.
    Interrupt {
        /// The signal number.
        signal: i32,
    },
    /// Coordinator -> host: watch this external node's process (on the host), and report
    /// `exited` when it is gone. Sent with every heartbeat until the replica is done.
    Watch {
        /// `name.replica`.
        id: String,
        /// Its pid, from its `hello`.
        pid: u32,
    },
    /// Coordinator -> host: the run is over. Kill what is left and exit with `code`.
    End {
        /// The run's exit status (`crate::exit_codes`).
        code: u8,
        /// Why the run failed, if it did.
        error: Option<String>,
        /// Which run ended: a host ignores the `end` of another.
        run: u32,
    },
    /// Host -> coordinator: `end` arrived. The coordinator waits for it (up to
    /// [`HOST_TIMEOUT`], sending `end` again every [`BEAT`]), so that a link recovering
    /// from an outage does not leave a host without the run's status.
    Ended,
    /// Host -> coordinator: its launcher stops on its own (an error, a second signal): the
    /// run fails, naming the host with this cause.
    Left {
        /// Why, in words.
        error: String,
    },
}

impl Link {
    /// The message as one frame.
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a link message serializes")
    }

    /// A frame as a message.
    pub fn decode(frame: &[u8]) -> Result<Link, String> {
        rmp_serde::from_slice(frame).map_err(|e| e.to_string())
    }
}

/// The routing id of host `name`'s launcher on the coordinator's control socket. Node ids
/// are `name.replica` with a node name that cannot start with `@`, so the two never meet.
pub fn routing_id(host: &str) -> String {
    format!("@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_survives_a_round_trip() {
        let all = [
            Link::Join { host: "b".into(), topology: "cluster".into(), version: "0.1.0".into(), pid: 42, run: 1 },
            Link::Welcome { run: 2 },
            Link::Beat,
            Link::Exited { id: "python.1".into(), status: 256, attempt: 2 },
            Link::Start {
                id: "keep.1".into(),
                restart: 1,
                attempt: 1,
                bind: Some("tcp://127.0.0.2:40123".into()),
                pub_ports: [("out".to_string(), "tcp://127.0.0.2:40124".to_string())].into(),
            },
            Link::Kill { id: "keep.1".into(), attempt: 0 },
            Link::Interrupt { signal: 2 },
            Link::Watch { id: "ext.0".into(), pid: 4242 },
            Link::End { code: 1, error: Some("node `x.0` failed".into()), run: 1 },
            Link::End { code: 0, error: None, run: 3 },
            Link::Ended,
            Link::Left { error: "interrupted by SIGINT".into() },
        ];
        for msg in all {
            assert_eq!(Link::decode(&msg.encode()).unwrap(), msg);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Link::decode(b"\x81\xa4type\xa4nope").is_err());
        assert!(Link::decode(b"").is_err());
    }
}
