//! The `procnet` command: parses arguments, calls the library, prints errors once, and maps
//! results to the exit codes in `procnet::exit_codes`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use procnet::exit_codes;
use procnet::launch::{self, RunError, RunOptions};
use procnet::topology::{self, LoadError, Topology};

/// Brokerless process networks over ZeroMQ.
#[derive(Parser)]
#[command(name = "procnet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a topology: start every node, wire them, and wait until every record went through.
    Run {
        /// The topology file.
        file: PathBuf,
        /// Seconds every node may take to join the network before the run fails (default 30;
        /// with external nodes, no limit: the run waits for them to be started by hand).
        #[arg(long, value_name = "SECONDS")]
        startup_timeout: Option<f64>,
        /// Write, as JSON, what each replica of an external node needs to join (its
        /// environment); also printed on stderr.
        #[arg(long, value_name = "FILE")]
        endpoints: Option<PathBuf>,
        /// Write a report of the finished run(s): per node, records in and out and throughput,
        /// and its result (a tally's counts); per replica, its counters and drops. JSON, or
        /// CSV (one row per node per run) when FILE ends in `.csv`.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Run the topology K times in a row (an experiment: the report has every run); stops
        /// at the first run that does not exit 0, with its status.
        #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// After a first Ctrl-C or SIGTERM, how long nodes may take to finish their streams
        /// before they are killed (a second signal kills at once): `5s`, `500ms`, `1m`.
        #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
        grace: Duration,
        /// Run every host's nodes on this machine (a topology with `[hosts]`): each host is
        /// mapped to the loopback address, and edges between hosts go over tcp as they would
        /// between machines.
        #[arg(long)]
        local: bool,
    },
    /// Validate a topology and print a summary, without starting anything.
    Check {
        /// The topology file.
        file: PathBuf,
    },
    /// Print a topology as a Graphviz DOT graph.
    Graph {
        /// The topology file.
        file: PathBuf,
    },
    /// Run one built-in node replica (started by `procnet run`; reads its environment).
    #[command(hide = true)]
    Node,
    /// Serve `procnet run` as its fork server on descriptor 3 (the `forkserver` start method).
    #[command(hide = true)]
    Forkserver,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(match cli.command {
        Command::Run { file, startup_timeout, report, grace, endpoints, local, repeat } => {
            run(&file, startup_timeout, grace, report.as_deref(), endpoints, local, repeat)
        }
        Command::Check { file } => with_topology(&file, |t| print!("{}", topology::summary(t))),
        Command::Graph { file } => with_topology(&file, |t| print!("{}", topology::dot(t))),
        Command::Node => node(),
        Command::Forkserver => launch::forkserver_main(),
    })
}

/// Load a topology, printing its diagnostics; None (after printing) if it is invalid.
fn load(file: &Path) -> Option<Topology> {
    match topology::load(file) {
        Ok((t, warnings)) => {
            if !warnings.diagnostics.is_empty() {
                eprint!("{warnings}");
            }
            Some(t)
        }
        Err(e) => {
            if let LoadError::Invalid(report) = &e {
                eprintln!("{report}");
            }
            eprintln!("procnet: {e}");
            None
        }
    }
}

fn with_topology(file: &Path, f: impl FnOnce(&Topology)) -> u8 {
    match load(file) {
        Some(t) => {
            f(&t);
            exit_codes::OK
        }
        None => exit_codes::INVALID_TOPOLOGY,
    }
}

/// `5s`, `500ms`, `1m`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: f64 = number.trim().parse().map_err(|_| format!("`{text}` is not a duration like 5s, 500ms or 1m"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit `{unit}` in `{text}`; use ms, s or m")),
    };
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn run(
    file: &Path,
    startup_timeout: Option<f64>,
    grace: Duration,
    report: Option<&Path>,
    endpoints: Option<PathBuf>,
    local: bool,
    repeat: u32,
) -> u8 {
    let Some(t) = load(file) else {
        return exit_codes::INVALID_TOPOLOGY;
    };
    if !t.hosts.is_empty() && !local {
        let names: Vec<String> = t.hosts.iter().map(|h| format!("`{}`", h.name)).collect();
        eprintln!(
            "procnet: topology `{}` spans hosts {}: run it with `--local` to run every host's nodes on \
             this machine (running one host's share on each machine is not available yet)",
            t.name,
            names.join(", ")
        );
        return exit_codes::USAGE;
    }
    let external = t.nodes.iter().any(|n| matches!(n.runner, topology::Runner::External));
    let startup_timeout = match startup_timeout {
        Some(s) => Duration::from_secs_f64(s.clamp(0.0, 1e9)),
        // Someone has to start the external nodes by hand: wait (Ctrl-C stops).
        None if external => Duration::from_secs(1_000_000_000),
        None => Duration::from_secs(30),
    };
    let opts = RunOptions { startup_timeout, grace, endpoints_file: endpoints };
    let mut outcomes = Vec::new();
    let mut code = exit_codes::OK;
    for i in 1..=repeat {
        if repeat > 1 {
            eprintln!("procnet: run {i} of {repeat}");
        }
        let (c, outcome) = run_once(&t, &opts);
        code = c;
        outcomes.extend(outcome);
        // An experiment stops at the first run that did not go through: its figures would
        // not compare.
        if code != exit_codes::OK {
            break;
        }
    }
    if let (Some(path), false) = (report, outcomes.is_empty()) {
        let csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let text =
            if csv { launch::report::to_csv(&t, &outcomes) } else { launch::report::to_json(&t, &outcomes) + "\n" };
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("procnet: failed to write the report `{}`: {e}", path.display());
            return exit_codes::NODE_FAILED;
        }
    }
    code
}

/// One run: its exit code, and its outcome if every node finished.
fn run_once(t: &topology::Topology, opts: &RunOptions) -> (u8, Option<launch::Outcome>) {
    match launch::run(t, opts) {
        Ok(outcome) => {
            if std::io::stderr().is_terminal() {
                eprint!("{}", launch::report_table(t, &outcome));
            }
            for line in outcome.shed_report() {
                eprintln!("procnet: {line}");
            }
            if !outcome.incomplete.is_empty() {
                for line in &outcome.incomplete {
                    eprintln!("procnet: {line}");
                }
                eprintln!(
                    "procnet: run `{}` finished, but {} replica{} died mid-stream: the result may be incomplete",
                    t.name,
                    outcome.incomplete.len(),
                    if outcome.incomplete.len() == 1 { "" } else { "s" }
                );
                return (exit_codes::NODE_FAILED, Some(outcome));
            }
            let rejected = outcome.rejected_report();
            for line in &rejected {
                eprintln!("procnet: {line}");
            }
            if rejected.is_empty() {
                (exit_codes::OK, Some(outcome))
            } else {
                eprintln!(
                    "procnet: run `{}` finished, but dropped {} invalid frames or records: results are incomplete",
                    t.name,
                    outcome.rejected()
                );
                (exit_codes::DATA_DROPPED, Some(outcome))
            }
        }
        Err(e) => {
            eprintln!("procnet: {e}");
            let code = match e {
                RunError::Interrupted { signal, .. } if signal == libc::SIGTERM => exit_codes::TERMINATED,
                RunError::Interrupted { .. } => exit_codes::INTERRUPTED,
                _ => exit_codes::NODE_FAILED,
            };
            (code, None)
        }
    }
}

fn node() -> u8 {
    match procnet::runtime::run_builtin_from_env() {
        Ok(procnet::runtime::Ending::Finished) => exit_codes::OK,
        Ok(procnet::runtime::Ending::FailedReported) => exit_codes::NODE_FAILED,
        Err(e) => {
            eprintln!("procnet: node failed: {e}");
            exit_codes::NODE_FAILED
        }
    }
}
