//! The `wire` message of a replica: whom it reads from and where it sends, from what every
//! replica reported in `hello` (docs/protocol.md §6.4).

use std::collections::BTreeMap;

use super::replica::Replica;
use crate::topology::{socket_key, NodeId, Pattern, TopicRule, Topology};
use crate::wire::{Downstream, Message, PubPort, Subscribe, Upstream};

/// The `wire` message of `replicas[i]`.
pub fn wiring(t: &Topology, replicas: &[Replica], i: usize) -> Message {
    let of = |node: NodeId| replicas.iter().filter(move |r| r.node == node);
    let endpoints =
        |node: NodeId| -> Vec<String> { of(node).map(|r| r.endpoint.clone().unwrap_or_default()).collect() };
    let port_endpoints = |node: NodeId, key: &str| -> Vec<String> {
        of(node).map(|r| r.ports.get(key).cloned().unwrap_or_default()).collect()
    };
    let r = &replicas[i];
    let node = &t.nodes[r.node];
    let inputs = node
        .inputs
        .iter()
        .map(|i| {
            let (up, port) = (&t.nodes[i.node], t.port(i.node, i.port));
            Upstream {
                node: up.name.clone(),
                replicas: up.replicas,
                port: port.name.clone(),
                subscribe: (port.pattern == Pattern::Pub).then(|| Subscribe {
                    topics: i.topics.clone(),
                    endpoints: port_endpoints(i.node, &socket_key(&port.name, i.drop)),
                }),
            }
        })
        .collect();
    let outputs = t
        .push_outputs(r.node)
        .into_iter()
        .map(|(p, d)| Downstream {
            node: t.nodes[d].name.clone(),
            endpoints: endpoints(d),
            port: node.ports[p].name.clone(),
        })
        .collect();
    let ports = node
        .ports
        .iter()
        .enumerate()
        .filter(|(_, port)| port.pattern == Pattern::Pub)
        .map(|(p, port)| {
            let readers = t.readers(r.node, p);
            let count = |dropping: bool| -> u32 {
                readers
                    .iter()
                    .filter(|&&d| t.reads_dropping(d, r.node, p) == dropping)
                    .map(|&d| t.nodes[d].replicas)
                    .sum()
            };
            PubPort {
                name: port.name.clone(),
                subscribers: count(false),
                drop_subscribers: count(true),
                topic_field: match &port.topic {
                    TopicRule::Field(f) => Some(f.clone()),
                    _ => None,
                },
                topic: match &port.topic {
                    TopicRule::Fixed(f) => Some(f.clone()),
                    _ => None,
                },
            }
        })
        .collect();
    Message::Wire { inputs, outputs, vars: vars(t, replicas), ports }
}

/// Every value published in a `hello`, as `"<node>.<key>"`: replicas are in spawn order, so
/// replica 0's value of a replicated node wins.
fn vars(t: &Topology, replicas: &[Replica]) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for r in replicas {
        for (key, value) in &r.published {
            vars.entry(format!("{}.{key}", t.nodes[r.node].name)).or_insert_with(|| value.clone());
        }
    }
    vars
}
