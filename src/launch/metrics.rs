//! `--metrics ADDRESS` and `--metrics-file PATH`: the run's counters in the Prometheus text
//! formats, per node and replica, served over HTTP while the run goes on and written to a
//! file (every few seconds, and at the end) for node_exporter's textfile collector.
//!
//! The coordinator's driver copies the state machine's figures into a shared [`Board`] once
//! per turn of its loop (a lock held for a copy, never for I/O); the server thread
//! (`metrics/server.rs`) and the file writer render a copy of it. At the end of a run the
//! board takes its figures from the run's [`Outcome`], the figures of `--report`, so the last
//! exposition and the report agree. The encoding is the `prometheus-client` crate's: the
//! Prometheus text format 0.0.4 by default (and in the file), OpenMetrics for a scraper that
//! asks for it. Metric names and labels are in docs/cluster.md.

mod server;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

pub use server::Server;

use super::machine::Run;
use super::outcome::{Outcome, RunError};
use super::plan::Plan;
use crate::topology::Topology;
use crate::wire::Stats;

/// How often `--metrics-file` is written while a run goes on.
pub const FILE_EVERY: Duration = Duration::from_secs(5);

/// The port of `--metrics` in examples (any free port will do).
pub const EXAMPLE_PORT: u16 = 9464;

/// `--metrics ADDRESS`: `PORT` (on the loopback address, 127.0.0.1), or `IP:PORT` (`[IPv6]:PORT`),
/// or `localhost:PORT`. Port 0 lets the OS choose; the launcher says which.
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Some(port) = text.strip_prefix("localhost:").and_then(|p| p.parse::<u16>().ok()) {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!(
            "`{text}` is not an address to serve metrics at: give PORT (served on 127.0.0.1) or IP:PORT, e.g. \
             `{EXAMPLE_PORT}` or `0.0.0.0:{EXAMPLE_PORT}`"
        )
    })
}

/// Why the metrics could not be served or written.
#[derive(Debug)]
pub enum MetricsError {
    /// The address could not be bound (in use, not this machine's, a privileged port).
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
    /// The file could not be written.
    File {
        /// The file.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
}

impl std::fmt::Display for MetricsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsError::Bind { address, source } if source.kind() == std::io::ErrorKind::AddrInUse => write!(
                f,
                "failed to serve metrics at `{address}`, where another process listens (choose another port with \
                 `--metrics`)"
            ),
            MetricsError::Bind { address, .. } => write!(f, "failed to serve metrics at `{address}`"),
            MetricsError::File { path, .. } => write!(f, "failed to write the metrics file `{}`", path.display()),
        }
    }
}

impl std::error::Error for MetricsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetricsError::Bind { source, .. } | MetricsError::File { source, .. } => Some(source),
        }
    }
}

/// One replica's figures.
#[derive(Debug, Clone)]
struct ReplicaFigures {
    /// `name.replica`.
    id: String,
    node: String,
    replica: u32,
    /// Its host of `[hosts]`, if the topology declares hosts.
    host: Option<String>,
    stats: Stats,
    restarts: u32,
    /// Its process runs and has joined.
    up: bool,
}

/// One run's figures.
#[derive(Debug, Clone)]
struct RunFigures {
    run: u32,
    started: Instant,
    /// Once it is over: how long it took, and its exit status.
    ended: Option<(Duration, u8)>,
    rollbacks: u32,
    replicas: Vec<ReplicaFigures>,
}

/// What the exposition shows: every run of the session so far, the last one live.
#[derive(Debug, Clone, Default)]
pub struct Board {
    topology: String,
    runs: Vec<RunFigures>,
}

impl Board {
    fn run_mut(&mut self, run: u32) -> Option<&mut RunFigures> {
        self.runs.iter_mut().find(|r| r.run == run)
    }

    /// The exposition: OpenMetrics (`openmetrics`), else the Prometheus text format 0.0.4.
    pub fn render(&self, openmetrics: bool) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        let encoded =
            if openmetrics { text::encode(&mut out, &registry) } else { prometheus_text::encode(&mut out, &registry) };
        encoded.expect("encoding into a String does not fail");
        out
    }

    /// The labels of run `r`'s series.
    fn run_labels(&self, r: &RunFigures) -> Labels {
        vec![("topology", self.topology.clone()), ("run", r.run.to_string())]
    }

    /// Replica `x`'s labels, of run `r`.
    fn replica_labels(&self, r: &RunFigures, x: &ReplicaFigures) -> Labels {
        let mut labels = self.run_labels(r);
        labels.push(("node", x.node.clone()));
        labels.push(("replica", x.replica.to_string()));
        if let Some(host) = &x.host {
            labels.push(("host", host.clone()));
        }
        labels
    }

    /// Per replica of every run, in order: its labels and `value` of it.
    fn per_replica<M>(&self, value: impl Fn(&ReplicaFigures) -> M) -> Vec<(Labels, M)> {
        let all = self.runs.iter().flat_map(|r| r.replicas.iter().map(move |x| (r, x)));
        all.map(|(r, x)| (self.replica_labels(r, x), value(x))).collect()
    }

    /// Per run, in order: its labels and `value` of it, where it has one.
    fn per_run<M>(&self, value: impl Fn(&RunFigures) -> Option<M>) -> Vec<(Labels, M)> {
        self.runs.iter().filter_map(|r| Some((self.run_labels(r), value(r)?))).collect()
    }
}

/// A metric's labels.
type Labels = Vec<(&'static str, String)>;

/// Write one metric family: its name, help and type, then its series in order (nothing for
/// none: a run's exit code before it ends).
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    series: Vec<(Labels, M)>,
) -> std::fmt::Result {
    if series.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in &series {
        value.encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

/// The board's figures are constants read at each scrape, not instruments: a collector of
/// const metrics, in the order of the plan.
impl Collector for Board {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        use MetricType::{Counter, Gauge};
        let last =
            self.runs.last().map(|r| (vec![("topology", self.topology.clone())], ConstGauge::new(i64::from(r.run))));
        let e = &mut e;
        family(
            e,
            "procnet_run",
            "The run of a --repeat under way, or the last one, from 1",
            Gauge,
            last.into_iter().collect(),
        )?;
        let elapsed = |r: &RunFigures| r.ended.map_or_else(|| r.started.elapsed(), |(took, _)| took).as_secs_f64();
        family(
            e,
            "procnet_elapsed_seconds",
            "Seconds since the run started, or how long it took",
            Gauge,
            self.per_run(|r| Some(ConstGauge::new(elapsed(r)))),
        )?;
        let help = "Times the run rolled back after a failure and every node started again";
        family(
            e,
            "procnet_rollbacks",
            help,
            Counter,
            self.per_run(|r| Some(ConstCounter::new(u64::from(r.rollbacks)))),
        )?;
        let exit = |r: &RunFigures| r.ended.map(|(_, code)| ConstGauge::new(i64::from(code)));
        family(e, "procnet_exit_code", "The exit status of a run that is over", Gauge, self.per_run(exit))?;
        let count = |f: fn(&Stats) -> u64| move |x: &ReplicaFigures| ConstCounter::new(f(&x.stats));
        family(
            e,
            "procnet_records_in",
            "Records the replica received",
            Counter,
            self.per_replica(count(|s| s.received)),
        )?;
        let help = "Records the replica sent, over every output";
        family(e, "procnet_records_out", help, Counter, self.per_replica(count(|s| s.sent)))?;
        let help = "Records the replica passed on marked as failed (an error kept as data)";
        family(e, "procnet_errors", help, Counter, self.per_replica(count(|s| s.errors)))?;
        let help = "Records the replica could not process and dropped";
        family(e, "procnet_bad_records", help, Counter, self.per_replica(count(|s| s.bad_records)))?;
        let help = "Input frames the replica could not decode and dropped";
        family(e, "procnet_invalid_frames", help, Counter, self.per_replica(count(|s| s.invalid_frames)))?;
        let help = "Records the replica did not deliver to full subscribers that read with drop = true";
        family(e, "procnet_dropped_records", help, Counter, self.per_replica(count(|s| s.dropped)))?;
        let help = "Seconds the replica waited for room downstream (backpressure)";
        let blocked = |x: &ReplicaFigures| ConstCounter::new(x.stats.blocked_ms as f64 / 1000.0);
        family(e, "procnet_blocked_seconds", help, Counter, self.per_replica(blocked))?;
        let help = "Times the replica was started again after it failed";
        family(e, "procnet_restarts", help, Counter, self.per_replica(|x| ConstCounter::new(u64::from(x.restarts))))?;
        let help = "1 while the replica's process runs and has joined the run, else 0";
        family(e, "procnet_up", help, Gauge, self.per_replica(|x| ConstGauge::new(i64::from(x.up))))
    }
}

/// The metrics of a session of runs: the board, and where it goes (the bound address, the
/// file). Cheap to clone: clones share the board.
#[derive(Debug, Clone)]
pub struct Exporter {
    board: Arc<Mutex<Board>>,
    listener: Option<Arc<TcpListener>>,
    file: Option<PathBuf>,
}

impl Exporter {
    /// The metrics of runs of `t`: bind `address` now (so that a busy port fails the session
    /// before any node starts; it is served from [`Exporter::serve`] on), and write `file` now
    /// (likewise for a file that cannot be written; the collector sees the run's series at once).
    pub fn new(t: &Topology, address: Option<SocketAddr>, file: Option<PathBuf>) -> Result<Exporter, MetricsError> {
        let listener = match address {
            Some(address) => {
                let bound = TcpListener::bind(address).and_then(|l| l.set_nonblocking(true).map(|()| l));
                Some(Arc::new(bound.map_err(|source| MetricsError::Bind { address, source })?))
            }
            None => None,
        };
        let board = Board { topology: t.name.clone(), runs: Vec::new() };
        let exporter = Exporter { board: Arc::new(Mutex::new(board)), listener, file };
        exporter.write_file()?;
        Ok(exporter)
    }

    /// Where the metrics are served, if they are: the bound address (with the port the OS
    /// chose for port 0).
    pub fn address(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// A copy of the board, to render without holding the lock.
    pub fn board(&self) -> Board {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        // A panic elsewhere while it was held leaves figures that are still worth showing.
        self.board.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Run `run` of `t` starts now, with the replicas of `plan`, none up.
    pub fn begin_run(&self, run: u32, t: &Topology, plan: &Plan, started: Instant) {
        let replicas = plan
            .replicas
            .iter()
            .map(|p| ReplicaFigures {
                id: p.id.clone(),
                node: t.nodes[p.node].name.clone(),
                replica: p.index,
                host: (!t.hosts.is_empty()).then(|| p.host.map(|h| t.hosts[h.0].name.clone()).unwrap_or_default()),
                stats: Stats::default(),
                restarts: 0,
                up: false,
            })
            .collect();
        {
            let mut board = self.lock();
            board.runs.retain(|r| r.run != run);
            board.runs.push(RunFigures { run, started, ended: None, rollbacks: 0, replicas });
        }
        // Before any node starts: a collector sees every replica of the run at once.
        self.write_file_or_say();
    }

    /// The latest figures of run `run`, from its state machine.
    pub fn update(&self, run: u32, machine: &Run<'_>) {
        let mut board = self.lock();
        let Some(figures) = board.run_mut(run) else { return };
        figures.rollbacks = machine.rollbacks();
        for (x, r) in figures.replicas.iter_mut().zip(machine.replicas()) {
            x.stats = r.latest.clone();
            x.restarts = r.restarts;
            x.up = r.joined() && !r.gone();
        }
    }

    /// Run `run` is over, with `result`: a finished run's figures become its outcome's (the
    /// report's), and nothing is up any more.
    pub fn end_run(&self, run: u32, result: &Result<Outcome, RunError>) {
        let mut board = self.lock();
        let Some(figures) = board.run_mut(run) else { return };
        let (took, code) = match result {
            Ok(outcome) => (outcome.elapsed, outcome.exit_code()),
            Err(e) => (figures.started.elapsed(), e.exit_code()),
        };
        figures.ended = Some((took, code));
        for x in &mut figures.replicas {
            x.up = false;
        }
        let Ok(outcome) = result else { return };
        figures.rollbacks = outcome.rollbacks;
        for x in &mut figures.replicas {
            if let Some(r) = outcome.replicas.iter().find(|r| r.id == x.id) {
                x.stats = r.stats.clone();
                x.restarts = r.restarts;
            }
        }
    }

    /// Serve the board over HTTP, if an address was given, and write the file every
    /// [`FILE_EVERY`], if one was, from a thread of its own, until the [`Server`] is dropped.
    /// Start it after the fork phase: it is a thread.
    pub fn serve(&self) -> std::io::Result<Option<Server>> {
        if self.listener.is_none() && self.file.is_none() {
            return Ok(None);
        }
        Server::start(self.clone()).map(Some)
    }

    /// [`Exporter::write_file`], saying on stderr why it failed (the run goes on: the file is
    /// written again later); whether it did.
    pub fn write_file_or_say(&self) -> bool {
        let result = self.write_file();
        if let Err(e) = &result {
            let text = super::outcome::error_chain(e);
            super::notice::say(&super::notice::Notice::warn("metrics-file-failed", text));
        }
        result.is_ok()
    }

    /// Write the file, if one was asked for, whole: into a temporary file beside it, then
    /// renamed over it, so that a reader never sees half of it.
    pub fn write_file(&self) -> Result<(), MetricsError> {
        let Some(path) = &self.file else { return Ok(()) };
        let text = self.board().render(false);
        write_whole(path, &text).map_err(|source| MetricsError::File { path: path.clone(), source })
    }
}

/// Write `text` to `path` through a temporary file in the same directory, renamed into place.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Hidden and without the `.prom` ending, so that the textfile collector skips it.
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> Board {
        let replica = |node: &str, replica: u32, received: u64| ReplicaFigures {
            id: format!("{node}.{replica}"),
            node: node.into(),
            replica,
            host: None,
            stats: Stats { received, sent: 2, blocked_ms: 1500, ..Stats::default() },
            restarts: 1,
            up: true,
        };
        Board {
            topology: "t\"x".into(),
            runs: vec![RunFigures {
                run: 1,
                started: Instant::now(),
                ended: Some((Duration::from_millis(2500), 0)),
                rollbacks: 1,
                replicas: vec![replica("keep", 0, 7), replica("keep", 1, 3)],
            }],
        }
    }

    #[test]
    fn the_prometheus_text_names_counters_with_total_and_escapes_labels() {
        let text = board().render(false);
        assert!(text.contains("# TYPE procnet_records_in_total counter\n"), "{text}");
        assert!(
            text.contains("procnet_records_in_total{topology=\"t\\\"x\",run=\"1\",node=\"keep\",replica=\"1\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("procnet_blocked_seconds_total{"), "{text}");
        assert!(text.contains("} 1.5\n"), "{text}");
        assert!(text.contains("procnet_elapsed_seconds{topology=\"t\\\"x\",run=\"1\"} 2.5\n"), "{text}");
        assert!(text.contains("procnet_run{topology=\"t\\\"x\"} 1\n"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn openmetrics_ends_with_eof() {
        let text = board().render(true);
        assert!(text.contains("# TYPE procnet_records_in counter\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_port_alone_is_served_on_loopback() {
        assert_eq!(parse_address("9464"), Ok("127.0.0.1:9464".parse().expect("an address")));
        assert_eq!(parse_address("localhost:0"), Ok("127.0.0.1:0".parse().expect("an address")));
        assert_eq!(parse_address("[::1]:80"), Ok("[::1]:80".parse().expect("an address")));
        assert_eq!(parse_address("0.0.0.0:9464"), Ok("0.0.0.0:9464".parse().expect("an address")));
        assert!(parse_address("example.test:9464").is_err());
        assert!(parse_address(":9464").is_err());
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("procnet.prom");
        write_whole(&path, "a 1\n").expect("written");
        write_whole(&path, "a 2\n").expect("written again");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("list").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["procnet.prom"], "no temporary file is left");
    }
}
