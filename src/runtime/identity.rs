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
    /// How many times this replica was started before (unset or `0` on the first start).
    /// From 1 on, the control socket's routing id is `name.replica#attempt`, so that the
    /// launcher tells a message of this process from a late one of its predecessor's.
    pub const ATTEMPT: &str = "PROCNET_ATTEMPT";
    /// The largest message, in bytes, the node's input sockets must accept (ZMQ_MAXMSGSIZE).
    pub const MAX_MESSAGE_BYTES: &str = "PROCNET_MAX_MESSAGE_BYTES";
    /// With `[hosts]`: the addresses (comma-separated) that may connect to the node's tcp
    /// sockets; any other peer is refused (ZAP). Unset: no restriction.
    pub const ALLOW: &str = "PROCNET_ALLOW";
    /// The run's secret: every peer of a tcp socket must present it (ZeroMQ's PLAIN
    /// mechanism, see `runtime/zap.rs`). Set for every node of a run.
    pub const SECRET: &str = "PROCNET_SECRET";
    /// How long, in milliseconds, the launcher waits for a node to end once asked to
    /// (`--grace`): what a node that runs a program of its own gives that program.
    pub const GRACE_MS: &str = "PROCNET_GRACE_MS";
    /// Every variable above: the launcher sets each afresh for every node.
    pub const ALL: [&str; 16] = [
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
        ATTEMPT,
        MAX_MESSAGE_BYTES,
        GRACE_MS,
        ALLOW,
        SECRET,
    ];
}

/// A node replica's identity and endpoints: the one contract between a launcher and the
/// replicas it starts. [`Identity::env`] writes it as the `PROCNET_*` variables
/// (docs/protocol.md §2.2) and [`Identity::from_env`] reads it back; spawned, forked and
/// fork-served replicas, and the pods of `procnet export k8s`, all get it this way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// Node name.
    pub node: String,
    /// Replica index, from 0.
    pub replica: u32,
    /// Replica count.
    pub replicas: u32,
    /// The launcher's control endpoint.
    pub control: String,
    /// The topology's name.
    pub topology: String,
    /// The run's private directory, if the launcher made one (it names the run).
    pub run_dir: Option<std::path::PathBuf>,
    /// How many times this replica was restarted mid-stream before (0 on its first start).
    pub restart: u32,
    /// How many times this replica was started before (0 on its first start).
    pub attempt: u32,
    /// The largest message its input sockets accept, if limited.
    pub max_message_bytes: Option<u64>,
    /// How long the launcher waits for it to end once asked (`--grace`), in milliseconds.
    pub grace_ms: Option<u64>,
    /// Where to bind the input socket, if the node has push inputs.
    pub bind: Option<String>,
    /// Where to bind each pub port.
    pub pub_ports: std::collections::BTreeMap<String, String>,
    /// A built-in node's validated options, as JSON (`PROCNET_CONFIG`).
    pub config: Option<String>,
    /// The run's secret, which peers of its tcp sockets present, if there is one.
    pub secret: Option<String>,
    /// The addresses allowed to connect to its tcp sockets; empty: any.
    pub allow: Vec<std::net::IpAddr>,
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

    /// The routing id of its control socket: `name.replica`, then `name.replica#attempt`
    /// from its second start on.
    pub fn routing_id(&self) -> String {
        match self.attempt {
            0 => self.id(),
            n => format!("{}#{n}", self.id()),
        }
    }

    /// The `PROCNET_*` variables that say who this replica is, in the order of
    /// docs/protocol.md §2.2; an unset one (no push input, no pub port) is left out.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (vars::PROTOCOL, crate::wire::VERSION.to_string()),
            (vars::NODE, self.node.clone()),
            (vars::REPLICA, self.replica.to_string()),
            (vars::REPLICAS, self.replicas.to_string()),
            (vars::CONTROL, self.control.clone()),
            (vars::TOPOLOGY, self.topology.clone()),
        ];
        if let Some(dir) = &self.run_dir {
            env.push((vars::RUN_DIR, dir.display().to_string()));
        }
        env.push((vars::RESTART, self.restart.to_string()));
        if self.attempt > 0 {
            env.push((vars::ATTEMPT, self.attempt.to_string()));
        }
        if let Some(max) = self.max_message_bytes {
            env.push((vars::MAX_MESSAGE_BYTES, max.to_string()));
        }
        if let Some(grace) = self.grace_ms {
            env.push((vars::GRACE_MS, grace.to_string()));
        }
        if let Some(bind) = &self.bind {
            env.push((vars::BIND, bind.clone()));
        }
        if !self.pub_ports.is_empty() {
            env.push((vars::PUB, serde_json::to_string(&self.pub_ports).expect("endpoints serialize")));
        }
        if let Some(config) = &self.config {
            env.push((vars::CONFIG, config.clone()));
        }
        if let Some(secret) = &self.secret {
            env.push((vars::SECRET, secret.clone()));
        }
        if !self.allow.is_empty() {
            env.push((vars::ALLOW, self.allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")));
        }
        env
    }

    /// Read the identity the launcher put in the environment.
    pub fn from_env() -> Result<Identity, NodeError> {
        Identity::from_vars(|name| std::env::var(name).ok())
    }

    /// Read an identity from `get`, which gives the value of a variable (as
    /// [`Identity::env`] wrote it) if it is set.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Identity, NodeError> {
        let need = |name: &str| {
            get(name).ok_or_else(|| {
                NodeError::Env(format!(
                    "environment variable {name} is not set; procnet nodes are started by `procnet run`"
                ))
            })
        };
        let set = |name: &str| get(name).filter(|v| !v.is_empty());
        let number = |name: &str, text: String| {
            text.parse().map_err(|_| NodeError::Env(format!("environment variable {name} is not a number")))
        };
        let protocol = need(vars::PROTOCOL)?;
        if protocol != crate::wire::VERSION.to_string() {
            return Err(NodeError::Env(format!(
                "launcher speaks protocol {protocol}, this node {}",
                crate::wire::VERSION
            )));
        }
        Ok(Identity {
            node: need(vars::NODE)?,
            replica: number(vars::REPLICA, need(vars::REPLICA)?)?,
            replicas: number(vars::REPLICAS, need(vars::REPLICAS)?)?,
            control: need(vars::CONTROL)?,
            topology: get(vars::TOPOLOGY).unwrap_or_default(),
            run_dir: set(vars::RUN_DIR).map(Into::into),
            restart: set(vars::RESTART).map(|n| number(vars::RESTART, n)).transpose()?.unwrap_or(0),
            attempt: set(vars::ATTEMPT).map(|n| number(vars::ATTEMPT, n)).transpose()?.unwrap_or(0),
            max_message_bytes: set(vars::MAX_MESSAGE_BYTES)
                .map(|n| {
                    n.parse().map_err(|_| {
                        NodeError::Env(format!("environment variable {} is not a number", vars::MAX_MESSAGE_BYTES))
                    })
                })
                .transpose()?,
            grace_ms: set(vars::GRACE_MS)
                .map(|n| {
                    n.parse()
                        .map_err(|_| NodeError::Env(format!("environment variable {} is not a number", vars::GRACE_MS)))
                })
                .transpose()?,
            bind: set(vars::BIND),
            pub_ports: match get(vars::PUB) {
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| NodeError::Env(format!("{} is not a JSON object of endpoints: {e}", vars::PUB)))?,
                None => Default::default(),
            },
            config: set(vars::CONFIG),
            secret: set(vars::SECRET),
            allow: match get(vars::ALLOW) {
                Some(list) => list
                    .split(',')
                    .filter(|a| !a.trim().is_empty())
                    .map(|a| {
                        a.trim().parse().map_err(|_| {
                            NodeError::Env(format!("{} holds `{a}`, which is not an IP address", vars::ALLOW))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica with every variable set.
    pub fn full() -> Identity {
        Identity {
            node: "keep".into(),
            replica: 1,
            replicas: 3,
            control: "ipc:///run/procnet-abc123/control".into(),
            topology: "pages".into(),
            run_dir: Some("/run/procnet-abc123".into()),
            restart: 2,
            attempt: 3,
            max_message_bytes: Some(67_108_864),
            grace_ms: Some(5000),
            bind: Some("tcp://127.0.0.1:*".into()),
            pub_ports: [("hosts".to_string(), "tcp://127.0.0.1:*".to_string())].into(),
            config: Some(r#"{"kind":"filter","field":"body"}"#.into()),
            secret: Some("0123456789abcdef0123456789abcdef".into()),
            allow: vec![std::net::IpAddr::from([127, 0, 0, 1]), "::1".parse().expect("an address")],
        }
    }

    /// The contract pinned for other languages: `tests/contract/env.json` holds [`full`]'s
    /// variables, in order, and its fields, which the Python package's test reads back
    /// (`python/tests/test_identity.py`). `UPDATE_GOLDEN=1` rewrites it.
    #[test]
    fn the_golden_environment() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/env.json");
        let identity = full();
        let env: Vec<[String; 2]> = identity.env().into_iter().map(|(k, v)| [k.to_string(), v]).collect();
        let doc = serde_json::json!({
            "about": "a replica's environment as the launcher writes it (docs/protocol.md section 2.2), in order, \
                      and the identity it stands for",
            "env": env,
            "identity": identity,
        });
        let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
        if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &text).expect("write tests/contract/env.json");
        }
        let golden = std::fs::read_to_string(&path).expect("tests/contract/env.json (UPDATE_GOLDEN=1 writes it)");
        assert_eq!(golden, text, "the environment of a replica changed: the contract of docs/protocol.md section 2.2");
        let read = Identity::from_vars(|name| env.iter().find(|[k, _]| k == name).map(|[_, v]| v.clone()));
        assert_eq!(read.expect("it reads"), identity);
    }

    #[test]
    fn what_is_written_reads_back() {
        for identity in [
            full(),
            Identity {
                bind: None,
                pub_ports: Default::default(),
                config: None,
                secret: None,
                allow: vec![],
                run_dir: None,
                max_message_bytes: None,
                grace_ms: None,
                ..full()
            },
        ] {
            let env = identity.env();
            let back = Identity::from_vars(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()));
            assert_eq!(back.expect("it reads"), identity);
        }
    }
}
