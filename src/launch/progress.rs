//! The live view on a terminal: a line per node with its replicas' summed counters (records
//! in and out, errors, rate), a bar where the total is known (`lines` reading a file, and
//! `fetch` fed by such nodes), fed by the nodes' `stats` messages; and the run report printed
//! at the end. Nothing is drawn when stderr is not a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::outcome::Outcome;
use crate::nodes::Kind;
use crate::topology::{NodeId, Runner, Topology};
use crate::wire::Stats;

/// The lines of one run.
pub struct Progress {
    multi: MultiProgress,
    bars: Vec<(NodeId, ProgressBar)>,
    started: Instant,
}

impl Progress {
    /// A line per node, if stderr is a terminal (and the launcher's lines are text).
    pub fn for_terminal(t: &Topology) -> Option<Progress> {
        if !std::io::stderr().is_terminal() || super::notice::format() == super::notice::LogFormat::Json {
            return None;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let width = t.nodes.iter().map(|n| n.name.len()).max().unwrap_or(4);
        let bars = (0..t.nodes.len())
            .map(|n| {
                let bar = match total_of(t, n) {
                    Some(total) => ProgressBar::new(total).with_style(
                        ProgressStyle::with_template(&format!(
                            "{{prefix:>{width}}} [{{bar:24}}] {{pos}}/{{len}} {{msg}}"
                        ))
                        .expect("a valid template")
                        .progress_chars("=> "),
                    ),
                    None => ProgressBar::no_length().with_style(
                        ProgressStyle::with_template(&format!("{{prefix:>{width}}} {{spinner}} {{msg}}"))
                            .expect("a valid template"),
                    ),
                };
                let bar = multi.add(bar.with_prefix(t.nodes[n].name.clone()));
                bar.enable_steady_tick(Duration::from_millis(100));
                (n, bar)
            })
            .collect();
        Some(Progress { multi, bars, started: Instant::now() })
    }

    /// Show the latest counters: `stats(node)` sums them over the node's replicas.
    pub fn update(&self, stats: impl Fn(NodeId) -> Stats) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        for (n, bar) in &self.bars {
            let s = stats(*n);
            bar.set_position(s.sent.max(s.received));
            let mut msg = format!("in {}  out {}  {:.0}/s", s.received, s.sent, s.sent.max(s.received) as f64 / secs);
            match s.errors {
                0 => {}
                1 => msg.push_str(", 1 error"),
                e => msg.push_str(&format!(", {e} errors")),
            }
            if s.invalid_frames + s.bad_records + s.dropped > 0 {
                msg.push_str(&format!(", {} dropped", s.invalid_frames + s.bad_records + s.dropped));
            }
            bar.set_message(msg);
        }
    }

    /// Remove the live lines (the run's own output and the report follow).
    /// A handle to hide the lines from another thread (the log relay).
    pub fn handle(&self) -> MultiProgress {
        self.multi.clone()
    }

    pub fn clear(&self) {
        for (_, bar) in &self.bars {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

/// The run report as a table, one line per node (replicas summed): records in and out,
/// errors, drops, wall time (the slowest replica's), and how the replicas exited.
pub fn report_table(t: &Topology, outcome: &Outcome) -> String {
    let width = t.nodes.iter().map(|n| n.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:>8}  {:>10}  {:>10}  {:>7}  {:>7}  {:>9}  {:>7}  exit\n",
        "node", "replicas", "in", "out", "errors", "dropped", "blocked s", "wall s"
    );
    for node in &t.nodes {
        let reps: Vec<_> = outcome.replicas.iter().filter(|r| r.node == node.name).collect();
        let sum = |f: fn(&Stats) -> u64| reps.iter().map(|r| f(&r.stats)).sum::<u64>();
        let wall = reps.iter().map(|r| r.wall).max().unwrap_or_default();
        let exits: Vec<String> = reps.iter().map(|r| r.exit_code.to_string()).collect();
        let exit = if exits.iter().all(|e| e == "0") { "0".to_string() } else { exits.join(",") };
        out.push_str(&format!(
            "{:<width$}  {:>8}  {:>10}  {:>10}  {:>7}  {:>7}  {:>9.2}  {:>7.2}  {exit}\n",
            node.name,
            node.replicas,
            sum(|s| s.received),
            sum(|s| s.sent),
            sum(|s| s.errors),
            sum(|s| s.invalid_frames + s.bad_records + s.dropped),
            sum(|s| s.blocked_ms) as f64 / 1000.0,
            wall.as_secs_f64(),
        ));
    }
    out.push_str(&format!(
        "{} processes, ready in {:.3} s, finished in {:.3} s\n",
        outcome.replicas.len(),
        outcome.startup.as_secs_f64(),
        outcome.elapsed.as_secs_f64()
    ));
    out
}

/// The number of records a node will handle, when known: a `lines` node's non-empty lines
/// (of its file), or, for a `fetch` node, the sum over its inputs if each is such a node.
fn total_of(t: &Topology, node: NodeId) -> Option<u64> {
    match &t.nodes[node].runner {
        Runner::Builtin(Kind::Lines(lines)) => {
            let text = std::fs::read(lines.path.as_ref()?).ok()?;
            Some(text.split(|&b| b == b'\n').filter(|l| !l.iter().all(|b| b.is_ascii_whitespace())).count() as u64)
        }
        Runner::Builtin(Kind::Fetch(_)) => {
            let mut total = 0;
            for input in &t.nodes[node].inputs {
                if !input.topics.is_empty() || !matches!(t.nodes[input.node].runner, Runner::Builtin(Kind::Lines(_))) {
                    return None;
                }
                total += total_of(t, input.node)?;
            }
            Some(total)
        }
        _ => None,
    }
}
