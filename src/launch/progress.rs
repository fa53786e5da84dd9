//! Live progress on a terminal: a bar per `fetch` node (done / total when the total is known,
//! rate, errors), fed by the nodes' `stats` messages. Nothing is drawn when stderr is not a
//! terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::nodes::Kind;
use crate::topology::{NodeId, Runner, Topology};
use crate::wire::Stats;

/// The bars of one run.
pub struct Progress {
    multi: MultiProgress,
    bars: Vec<(NodeId, ProgressBar)>,
    started: std::time::Instant,
}

impl Progress {
    /// Bars for the fetch nodes of `t`, if stderr is a terminal and there are any.
    pub fn for_terminal(t: &Topology) -> Option<Progress> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let fetchers: Vec<NodeId> =
            (0..t.nodes.len()).filter(|&n| matches!(t.nodes[n].runner, Runner::Builtin(Kind::Fetch(_)))).collect();
        if fetchers.is_empty() {
            return None;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let bars = fetchers
            .into_iter()
            .map(|n| {
                let bar = match total_of(t, n) {
                    Some(total) => ProgressBar::new(total).with_style(
                        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
                            .expect("a valid template")
                            .progress_chars("=> "),
                    ),
                    None => ProgressBar::no_length().with_style(
                        ProgressStyle::with_template("{prefix:>12} {spinner} {pos} done {msg}")
                            .expect("a valid template"),
                    ),
                };
                let bar = multi.add(bar.with_prefix(t.nodes[n].name.clone()));
                bar.enable_steady_tick(Duration::from_millis(100));
                (n, bar)
            })
            .collect();
        Some(Progress { multi, bars, started: std::time::Instant::now() })
    }

    /// Show the latest counters: `stats(node)` sums them over the node's replicas.
    pub fn update(&self, stats: impl Fn(NodeId) -> Stats) {
        for (n, bar) in &self.bars {
            let s = stats(*n);
            bar.set_position(s.sent);
            let rate = s.sent as f64 / self.started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(match s.errors {
                0 => format!("{rate:.0}/s"),
                1 => format!("{rate:.0}/s, 1 error"),
                e => format!("{rate:.0}/s, {e} errors"),
            });
        }
    }

    /// Remove the bars (the run's own output follows).
    pub fn clear(&self) {
        for (_, bar) in &self.bars {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

/// The number of records a node will receive, when every input is a `lines` node reading a
/// file (its non-empty lines); None otherwise.
fn total_of(t: &Topology, node: NodeId) -> Option<u64> {
    let mut total = 0;
    for input in &t.nodes[node].inputs {
        let Runner::Builtin(Kind::Lines(lines)) = &t.nodes[input.node].runner else { return None };
        let text = std::fs::read(lines.path.as_ref()?).ok()?;
        total += text.split(|&b| b == b'\n').filter(|l| !l.iter().all(|b| b.is_ascii_whitespace())).count() as u64;
    }
    Some(total)
}
