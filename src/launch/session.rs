//! `procnet run` as a whole: where this launcher stands (one host, `--local`, `--host NAME`,
//! `--coordinate`), the options that follow from the topology (the start-up timeout with
//! external nodes, the run's secret, stdin), one run or an experiment of `--repeat K`, what
//! is said after each run, the report, and the metrics (`--metrics`, `--metrics-file`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::metrics::{Exporter, MetricsError};
use super::notice::{say, LogFormat, Notice};
use super::options::{Placement, RunOptions, Secret};
use super::outcome::{error_chain, Outcome, RunError};
use crate::exit_codes;
use crate::topology::{Runner, Topology};

/// What `procnet run` was asked.
#[derive(Debug, Clone)]
pub struct Request {
    /// The topology file, as given (for messages).
    pub file: PathBuf,
    /// `--set PATH=VALUE`, applied to the file when it is loaded.
    pub overrides: Vec<crate::topology::Override>,
    /// `--local`: every host's nodes here.
    pub local: bool,
    /// `--host NAME`.
    pub host: Option<String>,
    /// `--coordinate ADDRESS`.
    pub coordinate: Option<std::net::IpAddr>,
    /// `--control-port`.
    pub control_port: u16,
    /// `--startup-timeout`, if given.
    pub startup_timeout: Option<Duration>,
    /// `--grace`.
    pub grace: Duration,
    /// `--endpoints FILE`.
    pub endpoints: Option<PathBuf>,
    /// `--report FILE`.
    pub report: Option<PathBuf>,
    /// `--repeat K`.
    pub repeat: u32,
    /// `--metrics ADDRESS`: serve the run's counters over HTTP there.
    pub metrics: Option<std::net::SocketAddr>,
    /// `--metrics-file PATH`: write them there.
    pub metrics_file: Option<PathBuf>,
}

/// Why `procnet run` did not get to its result.
#[derive(Debug)]
pub enum SessionError {
    /// The command line does not fit the topology (or the terminal): nothing was started.
    Usage(String),
    /// A run failed.
    Run(RunError),
    /// The report could not be written.
    Report {
        /// Where it was to go.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// The metrics file could not be written at the end.
    Metrics(MetricsError),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Usage(why) => f.write_str(why),
            SessionError::Run(e) => e.fmt(f),
            SessionError::Report { path, .. } => write!(f, "failed to write the report `{}`", path.display()),
            SessionError::Metrics(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionError::Usage(_) => None,
            SessionError::Run(e) => e.source(),
            SessionError::Report { source, .. } => Some(source),
            SessionError::Metrics(e) => e.source(),
        }
    }
}

impl SessionError {
    /// The exit status for this error (`crate::exit_codes`).
    pub fn exit_code(&self) -> u8 {
        match self {
            SessionError::Usage(_) => exit_codes::USAGE,
            SessionError::Run(e) => e.exit_code(),
            SessionError::Report { .. } | SessionError::Metrics(_) => exit_codes::NODE_FAILED,
        }
    }

    /// The line that says this error at the end (see [`RunError::notice`]).
    pub fn notice(&self) -> Notice {
        match self {
            SessionError::Usage(_) => Notice::error("usage", self.chain()),
            SessionError::Run(e) => e.notice(),
            SessionError::Report { .. } => Notice::error("report-failed", self.chain()),
            SessionError::Metrics(_) => Notice::error("metrics-file-failed", self.chain()),
        }
    }

    /// The error and its causes, in one line.
    pub fn chain(&self) -> String {
        error_chain(self)
    }
}

/// Run `t` as `req` asks; the exit status of the last run that finished (0, or 65 when
/// records were dropped, or 1 when a replica died mid-stream), having said what happened.
pub fn run(t: Topology, req: &Request) -> Result<u8, SessionError> {
    let t = if req.local { t.localized() } else { t };
    let (placement, opts) = options(&t, req)?;
    match placement {
        Placement::Host { host, .. } if host != Topology::COORDINATOR => join(&t, &opts, host, req),
        _ => {
            let (outcomes, ended) = coordinate(&t, opts, req);
            write_report(req, &outcomes, |path| report_text(path, &t, &outcomes))?;
            ended
        }
    }
}

/// Run every point of a sweep (`--sweep`; each point's topology loaded with its values),
/// `--repeat K` times each, on this machine; stop at the first run that does not exit 0.
/// The report has every run that finished, with its point.
pub fn sweep(
    sweeps: &[super::sweep::Sweep],
    points: Vec<(super::sweep::Point, Topology)>,
    req: &Request,
) -> Result<u8, SessionError> {
    if req.host.is_some() || req.coordinate.is_some() {
        return Err(SessionError::Usage(
            "`--sweep` runs every point on this machine (or with `--local`); over several hosts, run each point with \
             `--set` on every host"
                .into(),
        ));
    }
    let mut runs = Vec::new();
    let mut ended = Ok(exit_codes::OK);
    let n = points.len();
    for (i, (point, t)) in points.into_iter().enumerate() {
        let text = format!("sweep point {} of {n}: {}", i + 1, super::sweep::describe(&point));
        say(&Notice::info("sweep-point", text));
        let t = if req.local { t.localized() } else { t };
        let (_, opts) = options(&t, req)?;
        let (outcomes, point_ended) = coordinate(&t, opts, req);
        for (k, outcome) in outcomes.into_iter().enumerate() {
            runs.push(super::report::Swept {
                point: point.clone(),
                repeat: k as u32 + 1,
                topology: t.clone(),
                outcome,
            });
        }
        ended = point_ended;
        if !matches!(ended, Ok(exit_codes::OK)) {
            break;
        }
    }
    write_report(req, &runs, |path| {
        if is_csv(path) {
            super::report::sweep_to_csv(&runs)
        } else {
            super::report::sweep_to_json(sweeps, req.repeat, &runs) + "\n"
        }
    })?;
    ended
}

/// Write the report `text` makes for `--report`'s path, if asked and anything finished.
fn write_report<T>(req: &Request, finished: &[T], text: impl FnOnce(&Path) -> String) -> Result<(), SessionError> {
    if let (Some(path), false) = (&req.report, finished.is_empty()) {
        std::fs::write(path, text(path)).map_err(|source| SessionError::Report { path: path.clone(), source })?;
    }
    Ok(())
}

fn is_csv(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// The report of `outcomes`, as JSON, or CSV when `path` ends in `.csv`.
fn report_text(path: &Path, t: &Topology, outcomes: &[Outcome]) -> String {
    if is_csv(path) {
        super::report::to_csv(t, outcomes)
    } else {
        super::report::to_json(t, outcomes) + "\n"
    }
}

/// Where this launcher stands in a run of `t`, and the options of its runs.
fn options(t: &Topology, req: &Request) -> Result<(Placement, RunOptions), SessionError> {
    let placement = placement(t, req)?;
    refuse_terminal_stdin(t, placement, &req.file)?;
    let external = t.nodes.iter().any(|n| matches!(n.runner, Runner::External));
    let startup_timeout = match req.startup_timeout {
        Some(d) => d,
        // Someone has to start the external nodes by hand: wait (Ctrl-C stops).
        None if external => Duration::from_secs(1_000_000_000),
        None => Duration::from_secs(30),
    };
    let secret = secret(placement)?;
    let metrics = exporter(t, placement, req)?;
    let opts = RunOptions {
        startup_timeout,
        grace: req.grace,
        endpoints_file: req.endpoints.clone(),
        placement,
        run: 1,
        secret,
        metrics,
    };
    Ok((placement, opts))
}

/// The metrics of `--metrics` and `--metrics-file`, bound and written once here, before any
/// node starts: a busy port or a file that cannot be written is a usage error. Only the
/// coordinator has them (it sees every host's replicas).
fn exporter(t: &Topology, placement: Placement, req: &Request) -> Result<Option<Exporter>, SessionError> {
    if req.metrics.is_none() && req.metrics_file.is_none() {
        return Ok(None);
    }
    if !placement.coordinates() {
        let coordinator = &t.hosts[Topology::COORDINATOR].name;
        let text = format!(
            "the metrics are served and written by the coordinator (`--host {coordinator}`); ignoring `--metrics` and \
             `--metrics-file` here"
        );
        say(&Notice::warn("flag-ignored", text));
        return Ok(None);
    }
    let exporter =
        Exporter::new(t, req.metrics, req.metrics_file.clone()).map_err(|e| SessionError::Usage(error_chain(&e)))?;
    if let Some(address) = exporter.address() {
        say(&Notice::info("metrics-serving", format!("serving metrics at http://{address}/metrics")));
    }
    Ok(Some(exporter))
}

/// Which replicas this launcher starts.
fn placement(t: &Topology, req: &Request) -> Result<Placement, SessionError> {
    let names = || t.hosts.iter().map(|h| format!("`{}`", h.name)).collect::<Vec<_>>().join(", ");
    if let Some(address) = req.coordinate {
        return Ok(Placement::Coordinate { address, control_port: req.control_port });
    }
    match &req.host {
        None if t.hosts.is_empty() || req.local => Ok(Placement::All),
        None => Err(SessionError::Usage(format!(
            "topology `{}` spans hosts {}: run `procnet run {} --host NAME` on each host, or `--local` to run every \
             host's nodes on this machine",
            t.name,
            names(),
            t.path.display()
        ))),
        Some(name) if t.hosts.is_empty() => {
            Err(SessionError::Usage(format!("`--host {name}`: topology `{}` declares no `[hosts]`", t.name)))
        }
        Some(name) => match t.hosts.iter().position(|h| h.name == *name) {
            Some(host) => Ok(Placement::Host { host, control_port: req.control_port }),
            None => Err(SessionError::Usage(format!(
                "`--host {name}`: topology `{}` declares hosts {} only",
                t.name,
                names()
            ))),
        },
    }
}

/// A node reading stdin runs in a process group of its own: from a terminal, it would be
/// stopped (SIGTTIN) and the run would hang.
fn refuse_terminal_stdin(t: &Topology, placement: Placement, file: &Path) -> Result<(), SessionError> {
    let reader =
        t.nodes.iter().enumerate().find(|(n, node)| {
            matches!(&node.runner, Runner::Builtin(k) if k.reads_stdin()) && placement.here(t, *n, 0)
        });
    match (reader, std::io::stdin().is_terminal()) {
        (Some((_, node)), true) => Err(SessionError::Usage(format!(
            "node `{}` reads stdin (`path = \"-\"`), which is a terminal here: pipe the input in, e.g. `procnet run \
             {} < data.txt`",
            node.name,
            file.display()
        ))),
        _ => Ok(()),
    }
}

/// The run's secret (docs/protocol.md, section 3.6): a new one for every run of one launcher;
/// over several hosts, the one every launcher is given in `PROCNET_SECRET`.
fn secret(placement: Placement) -> Result<Secret, SessionError> {
    let given = std::env::var(crate::runtime::vars::SECRET).ok().filter(|s| !s.is_empty());
    match (placement, given) {
        (Placement::All, _) => Ok(Secret::PerRun),
        (_, Some(s)) => Ok(Secret::Shared(s)),
        (Placement::Coordinate { .. }, None) => Ok(Secret::Off),
        (Placement::Host { .. }, None) => Err(SessionError::Usage(
            "a run over several hosts needs a secret that only its launchers know: set PROCNET_SECRET to the same \
             value for the launcher on every host (e.g. from `openssl rand -hex 16`)"
                .into(),
        )),
    }
}

/// The coordinator's runs: one, or `--repeat K`, stopping at the first that does not exit 0
/// (its figures would not compare): those that finished, and how the last ended.
fn coordinate(t: &Topology, mut opts: RunOptions, req: &Request) -> (Vec<Outcome>, Result<u8, SessionError>) {
    let mut outcomes = Vec::new();
    let mut ended = Ok(exit_codes::OK);
    let mut metrics_failed = None;
    for i in 1..=req.repeat {
        say(&run_started(t, i, req.repeat));
        opts.run = i;
        ended = match super::run(t, &opts) {
            Ok(outcome) => {
                let code = tell(t, &outcome);
                outcomes.push(outcome);
                Ok(code)
            }
            Err(e) => Err(SessionError::Run(e)),
        };
        // After each run: the file shows it finished, in the figures of the report.
        if let Some(Err(e)) = opts.metrics.as_ref().map(Exporter::write_file) {
            metrics_failed.get_or_insert(e);
        }
        if !matches!(ended, Ok(exit_codes::OK)) {
            break;
        }
    }
    let ended = match (ended, metrics_failed) {
        (Ok(_), Some(e)) => Err(SessionError::Metrics(e)),
        (ended, _) => ended,
    };
    (outcomes, ended)
}

/// The line that says run `i` of `repeat` starts: said with a `--repeat`, else only in JSON.
fn run_started(t: &Topology, i: u32, repeat: u32) -> Notice {
    if repeat > 1 {
        Notice::info("run-started", format!("run {i} of {repeat}"))
    } else {
        Notice::info("run-started", format!("run `{}` started", t.name)).json_only()
    }
}

/// Say what a finished run dropped or lost (and, on a terminal, its table); its exit status.
fn tell(t: &Topology, outcome: &Outcome) -> u8 {
    if std::io::stderr().is_terminal() && super::notice::format() == LogFormat::Text {
        super::notice::say_raw(&super::report_table(t, outcome));
    }
    for notice in outcome.shed_report() {
        say(&notice);
    }
    if !outcome.incomplete.is_empty() {
        for (id, line) in &outcome.incomplete {
            say(&Notice::warn("records-lost", line.clone()).about(id.clone()));
        }
        let n = outcome.incomplete.len();
        say(&Notice::warn(
            "run-incomplete",
            format!(
                "run `{}` finished, but {n} replica{} died mid-stream: the result may be incomplete",
                t.name,
                if n == 1 { "" } else { "s" }
            ),
        ));
    } else {
        let rejected = outcome.rejected_report();
        for notice in &rejected {
            say(notice);
        }
        if !rejected.is_empty() {
            say(&Notice::warn(
                "run-incomplete",
                format!(
                    "run `{}` finished, but dropped {} invalid frames or records: results are incomplete",
                    t.name,
                    outcome.rejected()
                ),
            ));
        }
    }
    let code = outcome.exit_code();
    let text = format!("run `{}` finished in {:.3} s with exit status {code}", t.name, outcome.elapsed.as_secs_f64());
    say(&Notice::info("run-finished", text).json_only());
    code
}

/// Host `host`'s share of the run(s), joined to the first host's launcher.
fn join(t: &Topology, opts: &RunOptions, host: usize, req: &Request) -> Result<u8, SessionError> {
    let coordinator = &t.hosts[Topology::COORDINATOR].name;
    if !t.runs_on(host) {
        let text = format!("host `{}` runs no node of topology `{}`: nothing to do here", t.hosts[host].name, t.name);
        say(&Notice::info("host-idle", text).on_host(t.hosts[host].name.clone()));
        return Ok(exit_codes::OK);
    }
    if req.report.is_some() {
        let text =
            format!("the report is written by the coordinator (`--host {coordinator}`); ignoring `--report` here");
        say(&Notice::warn("flag-ignored", text));
    }
    let mut code = exit_codes::OK;
    for i in 1..=req.repeat {
        say(&run_started(t, i, req.repeat));
        let opts = RunOptions { run: i, ..opts.clone() };
        code = super::join(t, &opts).map_err(SessionError::Run)?;
        if code != exit_codes::OK {
            break;
        }
    }
    Ok(code)
}
