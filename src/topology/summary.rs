//! Human views of a validated topology: the `check` summary and the Graphviz DOT graph.

use std::fmt::Write;

use super::model::{Runner, StartMethod, Topology, Transport};
use super::port::Pattern;

/// Where a tcp socket of a node on `host` binds.
fn tcp_endpoint(t: &Topology, host: &[usize]) -> String {
    match host {
        [] => "tcp://127.0.0.1:<port chosen by the OS>".to_string(),
        hosts => {
            let addrs: Vec<String> = hosts.iter().map(|&i| t.hosts[i].address.to_string()).collect();
            format!("tcp://{}:<port chosen by the OS>", addrs.join("|"))
        }
    }
}

/// The `procnet check` summary: nodes with their replicas, and each edge with its sockets
/// and the endpoints its consumer replicas bind.
pub fn summary(t: &Topology) -> String {
    let mut s = String::new();
    let edges = t.edges();
    let _ = writeln!(
        s,
        "topology `{}`: {} node{}, {} process{}, {} edge{}",
        t.name,
        t.nodes.len(),
        plural(t.nodes.len(), "s"),
        t.process_count(),
        plural(t.process_count() as usize, "es"),
        edges.len(),
        plural(edges.len(), "s")
    );
    if !t.variables.is_empty() {
        let vars: Vec<String> = t
            .variables
            .iter()
            .map(|(name, value)| match value {
                Some(v) => format!("{name}={}", shown(v)),
                None => format!("{name} (unset, default used)"),
            })
            .collect();
        let _ = writeln!(s, "variables: {}", vars.join(", "));
    }
    if !t.overrides.is_empty() {
        let flags: Vec<String> = t.overrides.iter().map(|o| format!("--set {}", shown(o))).collect();
        let _ = writeln!(s, "overrides: {}", flags.join(" "));
    }
    let width = t.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    if !t.hosts.is_empty() {
        let _ = writeln!(s, "hosts (the first coordinates with `--host`; with `--local`, every one is 127.0.0.1):");
        let hw = t.hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
        // Per host, its nodes in file order with their replicas there: one pass, not one per host.
        let mut on: Vec<Vec<String>> = vec![Vec::new(); t.hosts.len()];
        for n in &t.nodes {
            for (position, &host) in n.host.iter().enumerate() {
                on[host].push(format!("{}.{{{}}}", n.name, replicas_at(n.replicas, position, n.host.len())));
            }
        }
        for (h, on) in t.hosts.iter().zip(on) {
            let bind = if h.bind == h.address { String::new() } else { format!(" (binds {})", h.bind) };
            let _ = writeln!(s, "  {:hw$}  {}{bind}  nodes: {}", h.name, h.address, on.join(", "));
        }
        let local: Vec<&str> = t.nodes.iter().filter(|n| n.host.is_empty()).map(|n| n.name.as_str()).collect();
        if !local.is_empty() {
            let _ = writeln!(s, "  (local host, with `--host`: the first)  nodes: {}", local.join(", "));
        }
    }
    let _ = writeln!(s, "nodes:");
    for n in &t.nodes {
        let what = match &n.runner {
            Runner::Builtin(k) => format!("kind {}", k.name()),
            Runner::Command(argv) => format!("command {}", argv.join(" ")),
            Runner::External => "external (started by hand)".to_string(),
        };
        let mut how = String::new();
        if n.start != StartMethod::Spawn {
            let _ = write!(how, "  start {}", n.start.name());
        }
        if n.restart.on_failure {
            let _ = write!(how, "  restart on-failure (at most {})", n.restart.max_restarts);
        }
        if let Some(cwd) = &n.cwd {
            let _ = write!(how, "  cwd {}", shown(&cwd.display().to_string()));
        }
        if !n.env.is_empty() {
            let env: Vec<String> = n.env.iter().map(|(k, v)| format!("{k}={}", shown(v))).collect();
            let _ = write!(how, "  env {}", env.join(" "));
        }
        let _ = writeln!(s, "  {:width$}  x{}  {what}{how}", n.name, n.replicas);
    }
    if !edges.is_empty() {
        let _ = writeln!(s, "edges:");
    }
    for (d, input) in edges {
        let (up, down, port) = (&t.nodes[input.node], &t.nodes[d], t.port(input.node, input.port));
        let _ = match port.pattern {
            Pattern::Push => {
                let endpoint = match down.transport {
                    Transport::Ipc => format!("ipc://<run dir>/{}.{{0..{}}}", down.name, down.replicas - 1),
                    Transport::Tcp => tcp_endpoint(t, &down.host),
                };
                writeln!(
                    s,
                    "  {}.{} -> {}  PUSH x{} -> PULL x{} (load-balanced)  {endpoint}",
                    up.name, port.name, down.name, up.replicas, down.replicas
                )
            }
            Pattern::Pub => {
                let endpoint = match up.transport {
                    Transport::Ipc => format!("ipc://<run dir>/{}.{{0..{}}}.{}", up.name, up.replicas - 1, port.name),
                    Transport::Tcp => tcp_endpoint(t, &up.host),
                };
                let mut topics = if input.topics.is_empty() {
                    "every topic".to_string()
                } else {
                    format!("topics {}", input.topics.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", "))
                };
                if input.drop {
                    topics.push_str(", may drop");
                }
                let endpoint = if input.drop { format!("{endpoint}!drop") } else { endpoint };
                writeln!(
                    s,
                    "  {}.{} -> {}  XPUB x{} -> SUB x{} (broadcast, {topics})  {endpoint}",
                    up.name, port.name, down.name, up.replicas, down.replicas
                )
            }
        };
    }
    s
}

/// The replicas of a node of `replicas` on the `position`-th of its `hosts` hosts (replica r
/// runs on host r mod hosts, see [`Topology::replica_host`]): `0,2,4`, or `0,2,4,...,1022`
/// when there are many.
fn replicas_at(replicas: u32, position: usize, hosts: usize) -> String {
    let mine: Vec<u32> = (position as u32..replicas).step_by(hosts.max(1)).collect();
    let text = |rs: &[u32]| rs.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    match mine.as_slice() {
        [first @ .., last] if mine.len() > 8 => format!("{},...,{last}", text(&first[..3])),
        all => text(all),
    }
}

/// A value as the summary shows it: as it is, or quoted (with escapes) when it is empty or
/// holds spaces, quotes or control characters, so that where it ends is clear.
fn shown(value: &str) -> String {
    if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c.is_control() || c == '"' || c == '\'') {
        format!("{value:?}")
    } else {
        value.to_string()
    }
}

fn plural(n: usize, suffix: &str) -> &str {
    if n == 1 {
        ""
    } else {
        suffix
    }
}

/// The topology as a Graphviz digraph: a box per node with its kind or command and replicas,
/// an edge per input labelled with its socket pattern.
pub fn dot(t: &Topology) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph {} {{", quote(&t.name));
    let _ = writeln!(s, "  rankdir=LR;");
    let _ = writeln!(s, "  node [shape=box];");
    for n in &t.nodes {
        let what = match &n.runner {
            Runner::Builtin(k) => k.name().to_string(),
            Runner::Command(argv) => argv.join(" "),
            Runner::External => "external".to_string(),
        };
        let label = match n.host.as_slice() {
            [_, _, ..] => format!(
                "{}\n{what}\nx{} on {}",
                n.name,
                n.replicas,
                n.host.iter().map(|&h| t.hosts[h].name.as_str()).collect::<Vec<_>>().join(", ")
            ),
            _ => format!("{}\n{what}\nx{}", n.name, n.replicas),
        };
        let _ = writeln!(s, "  {} [label={}];", quote(&n.name), quote(&label));
    }
    // A node wholly on one host is drawn inside that host's box.
    for (i, h) in t.hosts.iter().enumerate() {
        let _ = writeln!(s, "  subgraph {} {{", quote(&format!("cluster_{}", h.name)));
        let _ = writeln!(s, "    label={};", quote(&format!("{} ({})", h.name, h.address)));
        for n in t.nodes.iter().filter(|n| n.host == [i]) {
            let _ = writeln!(s, "    {};", quote(&n.name));
        }
        let _ = writeln!(s, "  }}");
    }
    for (d, input) in t.edges() {
        let port = t.port(input.node, input.port);
        let label = match port.pattern {
            Pattern::Push => format!("{} push/pull", port.name),
            Pattern::Pub if input.topics.is_empty() => format!("{} pub/sub", port.name),
            Pattern::Pub => format!("{} pub/sub {}", port.name, input.topics.join(",")),
        };
        let label = if input.drop { format!("{label} (may drop)") } else { label };
        let _ = writeln!(
            s,
            "  {} -> {} [label={}];",
            quote(&t.nodes[input.node].name),
            quote(&t.nodes[d].name),
            quote(&label)
        );
    }
    s.push_str("}\n");
    s
}

fn quote(text: &str) -> String {
    let mut q = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::replicas_at;

    #[test]
    fn many_replicas_on_a_host_are_listed_short() {
        assert_eq!(replicas_at(3, 0, 1), "0,1,2");
        assert_eq!(replicas_at(4, 1, 2), "1,3");
        assert_eq!(replicas_at(1024, 0, 2), "0,2,4,...,1022");
        assert_eq!(replicas_at(1, 0, 1), "0");
    }
}
