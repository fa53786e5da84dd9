//! Who a node process is and where its launcher listens: read from the environment variables
//! the launcher sets (documented in `docs/protocol.md`).

use super::error::NodeError;

/// Environment variable names, shared by the launcher (which sets them) and nodes.
pub mod vars {
    /// Protocol version the launcher speaks (`1`).
    pub const PROTOCOL: &str = "PROCNET_PROTOCOL";
    /// Node name.
    pub const NODE: &str = "PROCNET_NODE";
    /// Replica index, from 0.
    pub const REPLICA: &str = "PROCNET_REPLICA";
    /// Replica count of this node.
    pub const REPLICAS: &str = "PROCNET_REPLICAS";
    /// The launcher's control endpoint (connect a DEALER to it).
    pub const CONTROL: &str = "PROCNET_CONTROL";
    /// Where to bind the input PULL socket; unset for a node without inputs.
    pub const BIND: &str = "PROCNET_BIND";
    /// The topology's name.
    pub const TOPOLOGY: &str = "PROCNET_TOPOLOGY";
    /// The run's private directory (ipc endpoints live there).
    pub const RUN_DIR: &str = "PROCNET_RUN_DIR";
    /// Built-in nodes only: the validated options as JSON.
    pub const CONFIG: &str = "PROCNET_CONFIG";
    /// Where to bind each pub port, as a JSON object `{"port": "endpoint"}`; unset without
    /// pub ports.
    pub const PUB: &str = "PROCNET_PUB";
    /// How many times this replica was restarted before (unset or `0` on the first start). A
    /// restarted replica cannot check its input's counts: records were in flight when the
    /// one before it died.
    pub const RESTART: &str = "PROCNET_RESTART";
    /// The largest message, in bytes, the node's input sockets must accept (ZMQ_MAXMSGSIZE).
    pub const MAX_MESSAGE_BYTES: &str = "PROCNET_MAX_MESSAGE_BYTES";
    /// With `[hosts]`: the addresses (comma-separated) that may connect to the node's tcp
    /// sockets; any other peer is refused (ZAP). Unset: no restriction.
    pub const ALLOW: &str = "PROCNET_ALLOW";
    /// The run's secret: every peer of a tcp socket must present it (ZeroMQ's PLAIN
    /// mechanism, see `runtime/zap.rs`). Set for every node of a run.
    pub const SECRET: &str = "PROCNET_SECRET";
    /// Every variable above: the launcher sets each afresh for every node.
    pub const ALL: [&str; 14] = [
        PROTOCOL,
        NODE,
        REPLICA,
        REPLICAS,
        CONTROL,
        BIND,
        TOPOLOGY,
        RUN_DIR,
        CONFIG,
        PUB,
        RESTART,
        MAX_MESSAGE_BYTES,
        ALLOW,
        SECRET,
    ];
}

/// A node replica's identity and endpoints.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// Node name.
    pub node: String,
    /// Replica index, from 0.
    pub replica: u32,
    /// Replica count.
    pub replicas: u32,
    /// The launcher's control endpoint.
    pub control: String,
    /// Where to bind the input socket, if the node has push inputs.
    pub bind: Option<String>,
    /// Where to bind each pub port.
    pub pub_ports: std::collections::BTreeMap<String, String>,
    /// How many times this replica was restarted mid-stream before (0 on its first start).
    pub restart: u32,
    /// The largest message its input sockets accept, if limited.
    pub max_message_bytes: Option<u64>,
    /// The addresses allowed to connect to its tcp sockets; empty: any.
    pub allow: Vec<std::net::IpAddr>,
    /// The run's private directory, if the launcher made one (it names the run).
    pub run_dir: Option<std::path::PathBuf>,
    /// The run's secret, which peers of its tcp sockets present, if there is one.
    pub secret: Option<String>,
}

impl Identity {
    /// The run's name, which its partial output files carry (see [`super::outfile`]).
    pub fn run_name(&self) -> String {
        super::outfile::run_name(self.run_dir.as_deref())
    }

    /// Who may connect to this replica's tcp sockets, and what it presents to others'.
    pub fn access(&self) -> super::zap::Access {
        super::zap::Access { allow: self.allow.clone(), secret: self.secret.clone() }
    }

    /// `name.replica`, the name used in messages and logs.
    pub fn id(&self) -> String {
        format!("{}.{}", self.node, self.replica)
    }

    /// Read the identity the launcher put in the environment.
    pub fn from_env() -> Result<Identity, NodeError> {
        let get = |name: &str| {
            std::env::var(name).map_err(|_| {
                NodeError::Env(format!(
                    "environment variable {name} is not set; procnet nodes are started by `procnet run`"
                ))
            })
        };
        let num = |name: &str| -> Result<u32, NodeError> {
            get(name)?.parse().map_err(|_| NodeError::Env(format!("environment variable {name} is not a number")))
        };
        let protocol = get(vars::PROTOCOL)?;
        if protocol != crate::wire::VERSION.to_string() {
            return Err(NodeError::Env(format!(
                "launcher speaks protocol {protocol}, this node {}",
                crate::wire::VERSION
            )));
        }
        Ok(Identity {
            node: get(vars::NODE)?,
            replica: num(vars::REPLICA)?,
            replicas: num(vars::REPLICAS)?,
            control: get(vars::CONTROL)?,
            bind: std::env::var(vars::BIND).ok().filter(|s| !s.is_empty()),
            pub_ports: match std::env::var(vars::PUB) {
                Ok(json) => serde_json::from_str(&json)
                    .map_err(|e| NodeError::Env(format!("{} is not a JSON object of endpoints: {e}", vars::PUB)))?,
                Err(_) => Default::default(),
            },
            restart: match std::env::var(vars::RESTART) {
                Ok(n) if !n.is_empty() => n
                    .parse()
                    .map_err(|_| NodeError::Env(format!("environment variable {} is not a number", vars::RESTART)))?,
                _ => 0,
            },
            max_message_bytes: match std::env::var(vars::MAX_MESSAGE_BYTES) {
                Ok(n) if !n.is_empty() => Some(n.parse().map_err(|_| {
                    NodeError::Env(format!("environment variable {} is not a number", vars::MAX_MESSAGE_BYTES))
                })?),
                _ => None,
            },
            allow: match std::env::var(vars::ALLOW) {
                Ok(list) => list
                    .split(',')
                    .filter(|a| !a.trim().is_empty())
                    .map(|a| {
                        a.trim().parse().map_err(|_| {
                            NodeError::Env(format!("{} holds `{a}`, which is not an IP address", vars::ALLOW))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Err(_) => Vec::new(),
            },
            run_dir: std::env::var_os(vars::RUN_DIR).filter(|d| !d.is_empty()).map(Into::into),
            secret: std::env::var(vars::SECRET).ok().filter(|s| !s.is_empty()),
        })
    }
}
