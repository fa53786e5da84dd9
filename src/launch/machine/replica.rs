//! One replica as the state machine sees it: the life of its process and its progress
//! through the protocol, two enums whose variants carry their own data, asked through named
//! predicates rather than compared by order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::launch::plan::{HostId, Planned, Starter};
use crate::topology::NodeId;
use crate::wire::{Flows, Stats};

/// What a replica said in `done`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finished {
    /// Its counters.
    pub stats: Stats,
    /// Why it dropped frames or records.
    pub notes: Vec<String>,
    /// Its result for the report, if any.
    pub result: Option<String>,
    /// Its records per edge.
    pub flows: Flows,
}

/// The life of a replica's process.
#[derive(Debug, Clone, PartialEq)]
pub enum Life {
    /// Not started yet, or started by somebody else and not seen to end.
    Pending,
    /// Started by this launcher at `since`.
    Running {
        /// When.
        since: Instant,
    },
    /// Its process ended with `status`, at `at` into the run; its fate is decided at `until`,
    /// or as soon as the `failed` it may have sent just before arrives.
    Dying {
        /// The raw wait status.
        status: i32,
        /// When it ended, since the run started.
        at: Duration,
        /// When to decide without a `failed`.
        until: Instant,
    },
    /// Killed by the launcher to roll the run back; its exit is awaited, then it is
    /// started again with the others.
    Recalled,
    /// Dead, to be started again at `at`.
    Restarting {
        /// When.
        at: Instant,
    },
    /// Ended for good, with `status`, at `at` into the run.
    Exited {
        /// The raw wait status.
        status: i32,
        /// When, since the run started.
        at: Duration,
    },
}

/// How far a replica got in the protocol (docs/protocol.md §4).
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Not joined yet (a fresh process says `hello` first).
    Spawned,
    /// Said `hello`.
    Joined,
    /// Said `ready`.
    Ready,
    /// Told `start`.
    Started,
    /// Said `done`.
    Done(Finished),
    /// Told `bye`.
    Released(Finished),
}

impl Progress {
    /// The name used in messages (``sent `hello` out of turn (it was Joined)``).
    pub fn name(&self) -> &'static str {
        match self {
            Progress::Spawned => "Spawned",
            Progress::Joined => "Joined",
            Progress::Ready => "Ready",
            Progress::Started => "Started",
            Progress::Done(_) => "Done",
            Progress::Released(_) => "Released",
        }
    }
}

/// A replica of the run.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Its node.
    pub node: NodeId,
    /// `name.replica`.
    pub id: String,
    /// The host it runs on.
    pub host: Option<HostId>,
    /// Who starts it.
    pub starter: Starter,
    /// Its process.
    pub life: Life,
    /// Its progress.
    pub progress: Progress,
    /// Where it binds its input: as planned, then as bound (a restarted replica binds the
    /// same endpoints, so its peers reconnect to it).
    pub bind: Option<String>,
    /// Where it binds its pub sockets, likewise.
    pub pub_ports: BTreeMap<String, String>,
    /// Its input endpoint as peers connect to it.
    pub endpoint: Option<String>,
    /// Its pub sockets as subscribers connect to them.
    pub ports: BTreeMap<String, String>,
    /// The values it published in `hello`.
    pub published: BTreeMap<String, String>,
    /// Its latest counters (`stats`, then `done`).
    pub latest: Stats,
    /// How many times it was restarted.
    pub restarts: u32,
    /// Restarts after `start` (`PROCNET_RESTART`).
    pub midstream_restarts: u32,
    /// How many times it was started (its process's attempt is this, less one).
    pub starts: u32,
    /// Whether its process names its attempt in its routing id (`name.replica#n`); a node
    /// that does not is addressed by `name.replica`.
    pub suffixed: bool,
    /// Records it received in attempts that were rolled back (it received them again).
    pub replayed: u64,
    /// What it said in `failed`, kept until its exit decides on a restart.
    pub failed: Option<String>,
    /// An external replica on another host: its pid there, watched by that host's launcher.
    pub remote_pid: Option<u32>,
}

impl Replica {
    /// A replica as planned, not started.
    pub fn new(p: &Planned) -> Replica {
        Replica {
            node: p.node,
            id: p.id.clone(),
            host: p.host,
            starter: p.starter,
            life: Life::Pending,
            progress: Progress::Spawned,
            bind: p.bind.clone(),
            pub_ports: p.pub_ports.clone(),
            endpoint: None,
            ports: BTreeMap::new(),
            published: BTreeMap::new(),
            latest: Stats::default(),
            restarts: 0,
            midstream_restarts: 0,
            starts: 0,
            suffixed: false,
            replayed: 0,
            failed: None,
            remote_pid: None,
        }
    }

    /// Whether its process ended for good.
    pub fn exited(&self) -> bool {
        matches!(self.life, Life::Exited { .. })
    }

    /// Whether its process is gone, for now or for good: messages from it are stale.
    pub fn gone(&self) -> bool {
        matches!(self.life, Life::Dying { .. } | Life::Recalled | Life::Restarting { .. } | Life::Exited { .. })
    }

    /// The attempt of its current process (0 for the first).
    pub fn attempt(&self) -> u32 {
        self.starts.saturating_sub(1)
    }

    /// The routing id its current process's control socket has.
    pub fn address(&self) -> String {
        match self.attempt() {
            n if n > 0 && self.suffixed => format!("{}#{n}", self.id),
            _ => self.id.clone(),
        }
    }

    /// Whether it has said `hello` (since its last start).
    pub fn joined(&self) -> bool {
        !matches!(self.progress, Progress::Spawned)
    }

    /// Whether it has said `ready` (or got further).
    pub fn ready(&self) -> bool {
        !matches!(self.progress, Progress::Spawned | Progress::Joined)
    }

    /// Whether it has said `done` (or was released since).
    pub fn done(&self) -> bool {
        matches!(self.progress, Progress::Done(_) | Progress::Released(_))
    }

    /// Whether it was told `bye`.
    pub fn released(&self) -> bool {
        matches!(self.progress, Progress::Released(_))
    }

    /// Whether it is between `start` and `done`.
    pub fn streaming(&self) -> bool {
        matches!(self.progress, Progress::Started)
    }

    /// Whether this launcher started it, and so may restart it alone.
    pub fn own(&self) -> bool {
        self.starter == Starter::Here
    }

    /// Whether a launcher of this run started it (this one, or another host's), and so may
    /// start it again in a rollback.
    pub fn launched(&self) -> bool {
        matches!(self.starter, Starter::Here | Starter::Host(_))
    }

    /// What it said in `done`, if it did.
    pub fn finished(&self) -> Option<&Finished> {
        match &self.progress {
            Progress::Done(f) | Progress::Released(f) => Some(f),
            _ => None,
        }
    }
}
