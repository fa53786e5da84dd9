//! The plan of a run: every replica of the topology, where it runs, who starts it, what it
//! binds, and what it is told (its [`Identity`]). Made once, before anything starts; the
//! state machine and the drivers share it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::options::{in_url, Placement};
use crate::runtime::Identity;
use crate::topology::{NodeId, Runner, Topology, Transport};

/// A replica of the run, by its place in the plan (node by node, replica 0 first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicaId(pub usize);

/// A host of `[hosts]`, by its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub usize);

/// Who starts a replica's process, and so who can tell when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starter {
    /// This launcher, by the node's start method: it may restart it.
    Here,
    /// Somebody, by hand (`external = true`); `here`: on this launcher's host, so its pid
    /// (from `hello`) can be watched.
    External {
        /// Whether it runs on this launcher's host.
        here: bool,
    },
    /// Another host's launcher, which reports its exit.
    Host(HostId),
    /// Another engine (`--coordinate`), which tells nothing: released is as good as gone.
    Engine,
}

/// One replica as planned.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its node.
    pub node: NodeId,
    /// Its index among the node's replicas.
    pub index: u32,
    /// `name.replica`.
    pub id: String,
    /// The host it runs on, with `[hosts]`.
    pub host: Option<HostId>,
    /// Who starts it.
    pub starter: Starter,
    /// Where it binds its push input, if it has one.
    pub bind: Option<String>,
    /// Where it binds each pub socket, by key.
    pub pub_ports: BTreeMap<String, String>,
}

/// The plan of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every replica, in spawn order.
    pub replicas: Vec<Planned>,
    /// Each replica by its `name.replica`.
    by_id: HashMap<String, ReplicaId>,
    /// The run's private directory.
    pub dir: PathBuf,
    /// Where this launcher's replicas reach the control socket.
    pub control: String,
    /// The run's secret, if it has one.
    pub secret: Option<String>,
    /// How long the launcher waits for a replica to end once asked (`--grace`), if it says.
    pub grace: Option<std::time::Duration>,
}

impl Plan {
    /// Plan every replica of `t` for a launcher placed at `placement`, with its private
    /// directory `dir`.
    pub fn new(t: &Topology, placement: Placement, dir: &Path, control: String, secret: Option<String>) -> Plan {
        let mut replicas = Vec::new();
        for (node_id, node) in t.nodes.iter().enumerate() {
            for index in 0..node.replicas {
                let id = format!("{}.{index}", node.name);
                // With `[hosts]`, tcp binds on the replica's host's address (or its `bind`).
                let host = t.replica_host(node_id, index);
                let address = t.bind_address(host);
                let endpoint = |suffix: &str| match node.transport {
                    Transport::Ipc => crate::topology::ipc::endpoint(dir, &id, suffix),
                    Transport::Tcp => format!("tcp://{}:*", in_url(address)),
                };
                let bind = t.binds_push_input(node_id).then(|| endpoint(""));
                let pub_ports =
                    t.pub_sockets(node_id).into_iter().map(|key| (key.clone(), endpoint(&format!(".{key}")))).collect();
                let here = placement.here(t, node_id, index);
                let starter = match (&node.runner, here) {
                    (Runner::External, _) => Starter::External { here },
                    (_, true) => Starter::Here,
                    (_, false) => match host.or(t.hosts.first().map(|_| Topology::COORDINATOR)) {
                        Some(h) if matches!(placement, Placement::Host { .. }) => Starter::Host(HostId(h)),
                        _ => Starter::Engine,
                    },
                };
                replicas.push(Planned { node: node_id, index, id, host: host.map(HostId), starter, bind, pub_ports });
            }
        }
        let by_id = replicas.iter().enumerate().map(|(i, r)| (r.id.clone(), ReplicaId(i))).collect();
        Plan { replicas, by_id, dir: dir.to_path_buf(), control, secret, grace: None }
    }

    /// The replica called `id` (`name.replica`).
    pub fn find(&self, id: &str) -> Option<ReplicaId> {
        self.by_id.get(id).copied()
    }

    /// Replica `r`.
    pub fn get(&self, r: ReplicaId) -> &Planned {
        &self.replicas[r.0]
    }

    /// Every replica's id, in plan order.
    pub fn ids(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        (0..self.replicas.len()).map(ReplicaId)
    }

    /// What replica `r` is told, reaching the control socket at `control`, after
    /// `restart` restarts mid-stream.
    pub fn identity(&self, t: &Topology, r: ReplicaId, control: &str, restart: u32, attempt: u32) -> Identity {
        let p = self.get(r);
        let node = &t.nodes[p.node];
        Identity {
            node: node.name.clone(),
            replica: p.index,
            replicas: node.replicas,
            control: control.to_string(),
            topology: t.name.clone(),
            run_dir: Some(self.dir.clone()),
            restart,
            attempt,
            max_message_bytes: Some(node.max_message_bytes),
            grace_ms: self.grace.map(|g| g.as_millis() as u64),
            bind: p.bind.clone(),
            pub_ports: p.pub_ports.clone(),
            config: match &node.runner {
                Runner::Builtin(kind) => Some(serde_json::to_string(kind).expect("a kind serializes")),
                _ => None,
            },
            secret: self.secret.clone(),
            allow: allowed_peers(t),
        }
    }
}

/// Who may connect to the nodes' tcp sockets (and a coordinating launcher's control
/// socket): with `[hosts]`, the hosts' addresses (with `--local`, every one is the loopback
/// address); without, anyone (empty).
pub fn allowed_peers(t: &Topology) -> Vec<std::net::IpAddr> {
    let mut allow: Vec<std::net::IpAddr> = Vec::new();
    for h in &t.hosts {
        if !allow.contains(&h.address) {
            allow.push(h.address);
        }
    }
    allow
}

/// What a replica reported binding, as its peers must connect to it: a wildcard bind (a
/// host with `bind = "0.0.0.0"`) becomes the declared address of the replica's host.
pub fn advertised(t: &Topology, host: Option<usize>, endpoint: String) -> String {
    let Some((ip, port)) = endpoint.strip_prefix("tcp://").and_then(|rest| rest.rsplit_once(':')) else {
        return endpoint;
    };
    match ip.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
        Ok(a) if a.is_unspecified() && !t.hosts.is_empty() => {
            let h = host.unwrap_or(Topology::COORDINATOR);
            format!("tcp://{}:{port}", in_url(t.hosts[h].address))
        }
        _ => endpoint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_hosts() -> Topology {
        let text = r#"
            [hosts.a]
            address = "10.77.0.1"
            [hosts.b]
            address = "fd00::2"
            bind = "::"
            [nodes.src]
            kind = "lines"
            path = "Cargo.toml"
            host = "a"
            [nodes.count]
            kind = "tally"
            inputs = ["src"]
            host = "b"
        "#;
        crate::launch::testing::topology(text)
    }

    #[test]
    fn a_wildcard_bind_is_advertised_as_the_hosts_address() {
        let t = two_hosts();
        assert_eq!(advertised(&t, Some(1), "tcp://[::]:4000".into()), "tcp://[fd00::2]:4000");
        assert_eq!(advertised(&t, Some(0), "tcp://0.0.0.0:4000".into()), "tcp://10.77.0.1:4000");
        // Nodes without `host` run with the coordinator, the first host.
        assert_eq!(advertised(&t, None, "tcp://0.0.0.0:4000".into()), "tcp://10.77.0.1:4000");
        assert_eq!(advertised(&t, Some(0), "tcp://10.77.0.1:4000".into()), "tcp://10.77.0.1:4000");
        assert_eq!(advertised(&t, Some(0), "ipc:///run/x".into()), "ipc:///run/x");
    }

    #[test]
    fn replicas_bind_on_their_hosts_bind_address() {
        let t = two_hosts();
        let bind_of = |t: &Topology| {
            let plan = Plan::new(t, Placement::All, Path::new("/run/x"), String::new(), None);
            plan.get(plan.find("count.0").expect("count.0")).bind.clone()
        };
        assert_eq!(bind_of(&t).as_deref(), Some("tcp://[::]:*"));
        assert_eq!(bind_of(&t.localized()).as_deref(), Some("tcp://127.0.0.1:*"));
    }

    #[test]
    fn who_starts_each_replica() {
        let t = two_hosts();
        let plan =
            Plan::new(&t, Placement::Host { host: 0, control_port: 7360 }, Path::new("/run/x"), String::new(), None);
        let starter = |id: &str| plan.get(plan.find(id).expect("a replica")).starter;
        assert_eq!(starter("src.0"), Starter::Here);
        assert_eq!(starter("count.0"), Starter::Host(HostId(1)));
        let address = "10.0.0.1".parse().expect("an address");
        let plan =
            Plan::new(&t, Placement::Coordinate { address, control_port: 7360 }, Path::new("/x"), String::new(), None);
        assert_eq!(plan.get(plan.find("src.0").expect("src.0")).starter, Starter::Engine);
    }
}
