//! What a run is asked to do: its options, where this launcher stands among the hosts
//! ([`Placement`]), and where its secret comes from.

use std::path::PathBuf;
use std::time::Duration;

use crate::topology::{NodeId, Topology};

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How long every replica may take to join and get ready.
    pub startup_timeout: Duration,
    /// After a first Ctrl-C or SIGTERM, how long nodes may take to finish their streams
    /// before they are killed.
    pub grace: Duration,
    /// Where to write, as JSON, what each replica of an external node needs to join.
    pub endpoints_file: Option<PathBuf>,
    /// Which replicas this launcher starts.
    pub placement: Placement,
    /// Which run of a `--repeat` this is, from 1 (launchers of several hosts must agree).
    pub run: u32,
    /// The secret the run's tcp sockets ask for (`runtime/zap.rs`).
    pub secret: Secret,
    /// Where the run's counters go (`--metrics`, `--metrics-file`), if anywhere.
    pub metrics: Option<super::metrics::Exporter>,
}

/// Where a run's secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// A new one for every run: one launcher runs every replica, and tells each.
    PerRun,
    /// The one every launcher of a run over several hosts was given (`PROCNET_SECRET`).
    Shared(String),
    /// None: the nodes are started by another engine, which has no way to be told one
    /// (`--coordinate` without `PROCNET_SECRET`; a network policy keeps strangers out).
    Off,
}

impl Secret {
    /// The secret of a run: a new one, the one given, or none.
    pub fn resolve(&self) -> Result<Option<String>, super::outcome::RunError> {
        match self {
            Secret::PerRun => crate::runtime::zap::new_secret()
                .map(Some)
                .map_err(super::outcome::RunError::system("make the run's secret")),
            Secret::Shared(s) => Ok(Some(s.clone())),
            Secret::Off => Ok(None),
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            startup_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(5),
            endpoints_file: None,
            placement: Placement::All,
            run: 1,
            secret: Secret::PerRun,
            metrics: None,
        }
    }
}

/// Which replicas a launcher starts, and who coordinates (see `super::link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Every replica, here (a topology without `[hosts]`, or one run with `--local`).
    All,
    /// `--host`: the replicas placed on host `host` (index in `[hosts]`). The first host's
    /// launcher coordinates ([`run`]); the others join it ([`join`]).
    Host {
        /// This launcher's host.
        host: usize,
        /// The coordinator's tcp control port.
        control_port: u16,
    },
    /// `--coordinate`: no replica here. Every node is started by another engine (Kubernetes)
    /// with `PROCNET_CONTROL` pointing at `tcp://address:control_port`.
    Coordinate {
        /// The address to bind the control socket to.
        address: std::net::IpAddr,
        /// Its port.
        control_port: u16,
    },
}

impl Placement {
    /// Whether this launcher starts replica `replica` of node `node`.
    pub fn here(self, t: &Topology, node: NodeId, replica: u32) -> bool {
        match self {
            Placement::All => true,
            Placement::Host { host, .. } => t.replica_host(node, replica).unwrap_or(Topology::COORDINATOR) == host,
            Placement::Coordinate { .. } => false,
        }
    }

    /// Whether this launcher coordinates the run (rather than joining another).
    pub fn coordinates(self) -> bool {
        !matches!(self, Placement::Host { host, .. } if host != Topology::COORDINATOR)
    }

    /// The tcp endpoint of the coordinator's control socket, if the run has one: where the
    /// coordinator binds it (`bind`), or where the others connect.
    pub fn tcp_control(self, t: &Topology, bind: bool) -> Option<String> {
        match self {
            Placement::All => None,
            Placement::Host { control_port, .. } => {
                let h = &t.hosts[Topology::COORDINATOR];
                Some(format!("tcp://{}:{control_port}", in_url(if bind { h.bind } else { h.address })))
            }
            Placement::Coordinate { address, control_port } => {
                Some(format!("tcp://{}:{control_port}", in_url(address)))
            }
        }
    }
}

/// An IP address as the host part of a tcp endpoint (IPv6 in brackets).
pub fn in_url(address: std::net::IpAddr) -> String {
    match address {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    }
}
