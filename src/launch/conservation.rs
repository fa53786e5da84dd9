//! Conservation: at the end of a run, every edge delivered what was sent.
//!
//! Each replica's `done` says, edge by edge, what it sent and what it received
//! ([`Flows`]). Before anyone is told `bye`, the launcher checks that, for every node, the
//! records its upstream replicas sent on its push inputs equal the records its replicas
//! received on their PULL sockets, and that every subscriber replica of a pub port received
//! what the publishers sent under its topics (what a `drop = true` subscriber was spared is
//! not counted as sent to it: the lossy socket's counts leave the dropped batches out). A
//! forged or mistaken `eos` can end a node's input early; a lost frame can go unnoticed by a
//! node that does not check its counts. Neither survives this check.
//!
//! Pure: it reads the topology and the reports, and starts nothing.

use std::collections::BTreeMap;

use crate::topology::{NodeId, Pattern, Topology};
use crate::wire::{Flows, Stats};

/// What one replica reported in `done`.
pub struct Reported<'a> {
    /// Its node.
    pub node: NodeId,
    /// Its counters.
    pub stats: &'a Stats,
    /// Its records per edge.
    pub flows: &'a Flows,
}

/// An edge (or the push edges into one node, which share its replicas' PULL sockets) whose
/// counts disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imbalance {
    /// The edge, in words: ``edge `filter` -> `tally` ``.
    pub edge: String,
    /// Records the upstream replicas sent on it.
    pub sent: u64,
    /// Records the reading replicas received from it.
    pub received: u64,
    /// Invalid frames the reading replicas counted: records lost with them are missing here
    /// too, so a shortfall is explained (and the run exits 65 for them).
    pub invalid_frames: u64,
}

impl Imbalance {
    /// Whether the difference is explained by frames the readers dropped as invalid.
    pub fn explained(&self) -> bool {
        self.received < self.sent && self.invalid_frames > 0
    }
}

impl std::fmt::Display for Imbalance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.received < self.sent { "records lost" } else { "records invented" };
        write!(
            f,
            "{what} on {}: the upstream replicas sent {}, the readers received {}",
            self.edge, self.sent, self.received
        )?;
        if self.explained() {
            write!(f, " (the difference went with the invalid frames they dropped)")?;
        }
        Ok(())
    }
}

/// Every edge of `t` whose counts disagree, given every replica's report (in any order, one
/// per replica). An edge that a foreign node's report leaves undetermined is not checked.
pub fn check(t: &Topology, reports: &[Reported<'_>]) -> Vec<Imbalance> {
    let mut by_node: BTreeMap<NodeId, Vec<&Reported<'_>>> = BTreeMap::new();
    for r in reports {
        by_node.entry(r.node).or_default().push(r);
    }
    let none = Vec::new();
    let replicas = |n: NodeId| by_node.get(&n).unwrap_or(&none);
    let mut found = Vec::new();
    for (d, node) in t.nodes.iter().enumerate() {
        // Push: every push edge into `d` together, as they share its replicas' PULL sockets.
        let push: Vec<_> = node.inputs.iter().filter(|i| t.port(i.node, i.port).pattern == Pattern::Push).collect();
        if !push.is_empty() {
            let sent = push
                .iter()
                .map(|i| replicas(i.node).iter().map(|u| sent_to(t, u, i.port, d)).sum::<Option<u64>>())
                .sum::<Option<u64>>();
            let received = replicas(d).iter().map(|r| pulled(t, r)).sum::<Option<u64>>();
            if let (Some(sent), Some(received)) = (sent, received) {
                if sent != received {
                    let from: Vec<String> = push.iter().map(|i| format!("`{}`", t.nodes[i.node].name)).collect();
                    found.push(Imbalance {
                        edge: format!(
                            "edge{} {} -> `{}`",
                            if push.len() == 1 { "" } else { "s" },
                            from.join(", "),
                            node.name
                        ),
                        sent,
                        received,
                        invalid_frames: replicas(d).iter().map(|r| r.stats.invalid_frames).sum(),
                    });
                }
            }
        }
        // Pub: every subscriber replica gets what was published under its topics.
        let pub_inputs = node.inputs.iter().filter(|i| t.port(i.node, i.port).pattern == Pattern::Pub);
        for (j, input) in pub_inputs.enumerate() {
            let port = &t.port(input.node, input.port).name;
            let key = crate::topology::socket_key(port, input.drop);
            let sent = replicas(input.node)
                .iter()
                .map(|u| published(t, u, &key, &input.topics, input.drop))
                .sum::<Option<u64>>();
            let Some(sent) = sent else { continue };
            for (k, r) in replicas(d).iter().enumerate() {
                let Some(received) = subscribed(t, r, j) else { continue };
                if received != sent {
                    found.push(Imbalance {
                        edge: format!(
                            "edge `{}.{port}` -> `{}` (subscriber {} of {})",
                            t.nodes[input.node].name,
                            node.name,
                            k + 1,
                            node.replicas
                        ),
                        sent,
                        received,
                        invalid_frames: r.stats.invalid_frames,
                    });
                    break;
                }
            }
        }
    }
    found
}

/// Records replica `u` sent on its push port `port` to node `d`; without `outputs` in its
/// report, its `sent` if that is the only place its records went.
fn sent_to(t: &Topology, u: &Reported<'_>, port: usize, d: NodeId) -> Option<u64> {
    let outputs = t.push_outputs(u.node);
    let i = outputs.iter().position(|&o| o == (port, d))?;
    match &u.flows.outputs {
        Some(counts) => counts.get(i).copied(),
        None => (outputs.len() == 1 && !has_pub_ports(t, u.node)).then_some(u.stats.sent),
    }
}

/// Records replica `r` received on its PULL socket; without `pulled`, its `received` if it
/// reads no pub port.
fn pulled(t: &Topology, r: &Reported<'_>) -> Option<u64> {
    r.flows.pulled.or_else(|| (!reads_pub(t, r.node)).then_some(r.stats.received))
}

/// Records replica `r` received on its `j`-th pub input; without `subscribed`, its
/// `received` if that is its only input.
fn subscribed(t: &Topology, r: &Reported<'_>, j: usize) -> Option<u64> {
    match &r.flows.subscribed {
        Some(counts) => counts.get(j).copied(),
        None => (t.nodes[r.node].inputs.len() == 1).then_some(r.stats.received),
    }
}

/// Records publisher replica `u` sent on its socket `key` under a topic starting with one of
/// `prefixes` (any, when empty); without `published`, its `sent` if the records all went
/// there and every topic counts.
fn published(t: &Topology, u: &Reported<'_>, key: &str, prefixes: &[String], lossy: bool) -> Option<u64> {
    match &u.flows.published {
        Some(sockets) => {
            let topics = sockets.get(key)?;
            let wanted = |topic: &String| prefixes.is_empty() || prefixes.iter().any(|p| topic.starts_with(p.as_str()));
            Some(topics.iter().filter(|(topic, _)| wanted(topic)).map(|(_, n)| n).sum())
        }
        None => {
            let only_port = t.push_outputs(u.node).is_empty()
                && t.nodes[u.node].ports.iter().filter(|p| p.pattern == Pattern::Pub).count() == 1;
            (only_port && prefixes.is_empty() && !lossy).then_some(u.stats.sent)
        }
    }
}

fn has_pub_ports(t: &Topology, n: NodeId) -> bool {
    t.nodes[n].ports.iter().any(|p| p.pattern == Pattern::Pub)
}

fn reads_pub(t: &Topology, n: NodeId) -> bool {
    t.nodes[n].inputs.iter().any(|i| t.port(i.node, i.port).pattern == Pattern::Pub)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(text: &str) -> Topology {
        let base_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = crate::topology::compile::Source::new(std::path::Path::new("t.toml"), text, base_dir);
        crate::topology::compile::compile(&source).map(|(t, _)| t).expect("a valid topology")
    }

    /// lines (2 replicas) -> filter -> tally, and filter's pub port `hosts` read by `watch`
    /// (topics `a`) and by `skim` with `drop = true`.
    fn pipeline() -> Topology {
        topology(
            r#"
            [nodes.src]
            kind = "lines"
            path = "Cargo.toml"
            replicas = 2
            [nodes.keep]
            command = ["keep"]
            inputs = ["src"]
            outputs = { out = "push", hosts = { pattern = "pub", topic_field = "host" } }
            [nodes.count]
            kind = "tally"
            inputs = ["keep"]
            [nodes.watch]
            command = ["watch"]
            inputs = [{ from = "keep.hosts", topics = ["a"] }]
            replicas = 2
            [nodes.skim]
            command = ["skim"]
            inputs = [{ from = "keep.hosts", drop = true }]
        "#,
        )
    }

    struct Run {
        reports: Vec<(NodeId, Stats, Flows)>,
    }

    impl Run {
        fn add(&mut self, node: NodeId, received: u64, sent: u64, flows: Flows) -> &mut Self {
            self.reports.push((node, Stats { received, sent, ..Default::default() }, flows));
            self
        }

        fn check(&self, t: &Topology) -> Vec<String> {
            let reports: Vec<Reported<'_>> =
                self.reports.iter().map(|(node, stats, flows)| Reported { node: *node, stats, flows }).collect();
            check(t, &reports).iter().map(ToString::to_string).collect()
        }
    }

    fn published(port: &[(&str, u64)], lossy: &[(&str, u64)]) -> Flows {
        let map = |m: &[(&str, u64)]| m.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        Flows {
            outputs: Some(vec![10]),
            published: Some(BTreeMap::from([("hosts".into(), map(port)), ("hosts!drop".into(), map(lossy))])),
            pulled: Some(10),
            subscribed: None,
        }
    }

    /// Every count as an undisturbed run reports it.
    fn balanced() -> Run {
        let mut run = Run { reports: Vec::new() };
        let sub = |n| Flows { subscribed: Some(vec![n]), ..Default::default() };
        run.add(0, 0, 6, Flows { outputs: Some(vec![6]), ..Default::default() })
            .add(0, 0, 4, Flows { outputs: Some(vec![4]), ..Default::default() })
            .add(1, 10, 20, published(&[("a.test", 3), ("b.test", 7)], &[("a.test", 3)]))
            .add(2, 10, 0, Flows { pulled: Some(10), ..Default::default() })
            .add(3, 3, 0, sub(3))
            .add(3, 3, 0, sub(3))
            .add(4, 3, 0, sub(3));
        run
    }

    #[test]
    fn an_undisturbed_run_balances() {
        assert_eq!(balanced().check(&pipeline()), Vec::<String>::new());
    }

    #[test]
    fn records_missing_at_a_reader_name_the_edge_and_both_counts() {
        let mut run = balanced();
        run.reports[3].2.pulled = Some(0);
        assert_eq!(
            run.check(&pipeline()),
            ["records lost on edge `keep` -> `count`: the upstream replicas sent 10, the readers received 0"]
        );
    }

    #[test]
    fn every_subscriber_replica_is_checked_against_its_topics() {
        let mut run = balanced();
        run.reports[5].2.subscribed = Some(vec![10]);
        assert_eq!(
            run.check(&pipeline()),
            ["records invented on edge `keep.hosts` -> `watch` (subscriber 2 of 2): the upstream replicas sent 3, \
              the readers received 10"]
        );
    }

    #[test]
    fn a_dropping_subscriber_is_checked_against_what_its_socket_sent() {
        let mut run = balanced();
        run.reports[6].2.subscribed = Some(vec![10]);
        assert_eq!(run.check(&pipeline()).len(), 1, "the lossy socket sent 3, not 10");
    }

    #[test]
    fn a_shortfall_with_invalid_frames_is_explained() {
        let mut run = balanced();
        run.reports[3].2.pulled = Some(4);
        run.reports[3].1.invalid_frames = 1;
        let t = pipeline();
        let reports: Vec<Reported<'_>> =
            run.reports.iter().map(|(node, stats, flows)| Reported { node: *node, stats, flows }).collect();
        let found = check(&t, &reports);
        assert!(found.len() == 1 && found[0].explained(), "{found:?}");
    }

    #[test]
    fn a_foreign_node_without_flows_is_checked_where_its_counters_tell() {
        let mut run = balanced();
        // The tally, reporting only `received`: its only input is push, so that is `pulled`.
        run.reports[3].2 = Flows::default();
        assert!(run.check(&pipeline()).is_empty());
        run.reports[3].1.received = 9;
        assert_eq!(run.check(&pipeline()).len(), 1);
        // The sources, reporting only `sent`: their only output.
        let mut run = balanced();
        run.reports[0].2 = Flows::default();
        run.reports[0].1.sent = 5;
        assert_eq!(run.check(&pipeline()).len(), 1, "5 + 4 sent, 10 received");
    }
}
