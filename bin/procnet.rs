//! The `procnet` command: parses arguments, calls the library, prints errors once, and maps
//! results to the exit codes in `procnet::exit_codes`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use procnet::exit_codes;
use procnet::launch;
use procnet::launch::notice::{self, LogFormat, Notice};
use procnet::topology::{self, LoadError, Override, Topology};

/// `eprintln!` that does not panic when stderr is gone (`procnet check x 2>&1 | head`):
/// there is nowhere left to say anything.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// [`say!`] without the line end.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

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
        #[command(flatten)]
        set: Sets,
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
        /// Sweep a value of the topology over several settings (an experiment): run every
        /// combination of the sweeps' values (`--repeat K` times each) and record each run
        /// with its values in the report, for `procnet plot`. PATH as for `--set`:
        /// `nodes.filter.replicas=1,2,4`. Repeatable.
        #[arg(long, value_name = "PATH=V1,V2,...", value_parser = parse_sweep)]
        sweep: Vec<launch::sweep::Sweep>,
        /// After a first Ctrl-C or SIGTERM, how long nodes may take to finish their streams
        /// before they are killed (a second signal kills at once): `5s`, `500ms`, `1m`.
        #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
        grace: Duration,
        /// Run every host's nodes on this machine (a topology with `[hosts]`): each host is
        /// mapped to the loopback address, and edges between hosts go over tcp as they would
        /// between machines.
        #[arg(long, conflicts_with_all = ["host", "coordinate"])]
        local: bool,
        /// Run only host NAME's nodes (a topology with `[hosts]`), with one such launcher on
        /// each host: the first host's launcher coordinates the run, the others join it
        /// (docs/cluster.md).
        #[arg(long, value_name = "NAME", conflicts_with = "coordinate")]
        host: Option<String>,
        /// Start no node: coordinate a run whose nodes another engine starts (Kubernetes, see
        /// `procnet export k8s`), binding the control socket at ADDRESS.
        #[arg(long, value_name = "ADDRESS")]
        coordinate: Option<std::net::IpAddr>,
        /// The coordinator's tcp control port, with `--host` or `--coordinate`.
        #[arg(long, value_name = "PORT", default_value_t = launch::DEFAULT_CONTROL_PORT)]
        control_port: u16,
        /// Serve the run's counters for Prometheus over HTTP at ADDRESS while it runs
        /// (GET /metrics): PORT alone is served on 127.0.0.1 (this machine only), IP:PORT on
        /// that address (`0.0.0.0:9464`: every interface). A busy port is a usage error.
        #[arg(long, value_name = "ADDRESS", value_parser = parse_metrics_address)]
        metrics: Option<std::net::SocketAddr>,
        /// Write the run's counters in the Prometheus text format to FILE when the run starts,
        /// every 5 s, and at its end (for node_exporter's textfile collector; FILE is replaced
        /// whole each time).
        #[arg(long, value_name = "FILE")]
        metrics_file: Option<PathBuf>,
        /// How the launcher writes its lines: `text`, or `json` (a JSON object per line, the
        /// nodes' lines too; fields in docs/cluster.md).
        #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = parse_log_format)]
        log_format: LogFormat,
    },
    /// Validate a topology and print a summary, without starting anything.
    Check {
        /// The topology file.
        file: PathBuf,
        #[command(flatten)]
        set: Sets,
    },
    /// Print a topology as a Graphviz DOT graph.
    Graph {
        /// The topology file.
        file: PathBuf,
        #[command(flatten)]
        set: Sets,
    },
    /// Run one built-in node replica (started by `procnet run`; reads its environment).
    #[command(hide = true)]
    Node,
    /// Serve `procnet run` as its fork server on descriptor 3 (the `forkserver` start method).
    #[command(hide = true)]
    Forkserver,
    /// Draw what a sweep measured (`procnet run FILE --sweep ... --report r.json`) as SVG:
    /// a node's records/s and the run's wall time against the swept value, one line per
    /// combination of the other swept values, with the spread of the repeats.
    Plot {
        /// The report of a sweep (JSON).
        report: PathBuf,
        /// Where to write the SVG.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: PathBuf,
        /// The node whose throughput is drawn (default: the tally, or the last node).
        #[arg(long)]
        node: Option<String>,
        /// The swept value on the x axis (default: the first swept).
        #[arg(long, value_name = "PATH")]
        x: Option<String>,
        /// The plot's title.
        #[arg(long)]
        title: Option<String>,
    },
    /// Render a topology for another engine to run.
    Export {
        #[command(subcommand)]
        what: ExportCommand,
    },
    /// Print the JSON Schema of topology files, for editors.
    ///
    /// With taplo (Even Better TOML in VS Code), a topology gets completion, hover docs and
    /// checks as you type; docs/topology.md says how to associate it. The repository ships
    /// it as `topology.schema.json`.
    Schema,
    /// Print a completion script for a shell.
    ///
    /// For bash: `procnet completions bash > ~/.local/share/bash-completion/completions/procnet`;
    /// the README says where the others go.
    Completions {
        /// The shell to complete in.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    ///
    /// `procnet man | man -l -` reads procnet(1); with `--dir`, it and one page per command
    /// (procnet-run(1), ...) are written into DIR instead: `procnet man --dir
    /// ~/.local/share/man/man1`.
    Man {
        /// Write procnet.1 and a page per command into DIR (created if missing), e.g.
        /// ~/.local/share/man/man1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `--set`, for every command that loads a topology.
#[derive(Args)]
struct Sets {
    /// Set a value of the topology before it is checked, as if the file said it:
    /// `nodes.filter.replicas=4`, `defaults.transport=tcp` (VALUE is TOML, else a string).
    /// Repeatable; later flags win.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = parse_override)]
    set: Vec<Override>,
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Kubernetes manifests (multi-document YAML): a coordinator and one StatefulSet per node
    /// (docs/cluster.md).
    K8s {
        /// The topology file.
        file: PathBuf,
        #[command(flatten)]
        set: Sets,
        /// The container image of every pod, with `procnet` on its PATH.
        #[arg(long, default_value = "procnet:latest")]
        image: String,
        /// The namespace of every object.
        #[arg(long)]
        namespace: Option<String>,
        /// Write the manifests to FILE instead of stdout.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Before anything else: a Ctrl-C in the first millisecond of a run is counted (and stops
    // it), not left to the default action, which would kill the launcher before it can say
    // anything.
    if std::env::args_os().nth(1).is_some_and(|a| a == "run") {
        if let Err(e) = launch::catch_signals() {
            eprintln!("procnet: failed to install the signal handlers: {e}");
            return ExitCode::from(exit_codes::NODE_FAILED);
        }
    }
    let cli = Cli::parse();
    ExitCode::from(match cli.command {
        Command::Run {
            file,
            set,
            startup_timeout,
            report,
            grace,
            endpoints,
            local,
            repeat,
            sweep,
            host,
            coordinate,
            control_port,
            metrics,
            metrics_file,
            log_format,
        } => {
            notice::set_format(log_format);
            let startup_timeout = startup_timeout.map(|s| Duration::from_secs_f64(s.clamp(0.0, 1e9)));
            let request = launch::session::Request {
                file,
                overrides: set.set,
                local,
                host,
                coordinate,
                control_port,
                startup_timeout,
                grace,
                endpoints,
                report,
                repeat,
                metrics,
                metrics_file,
            };
            if sweep.is_empty() {
                run(&request)
            } else {
                run_sweep(&request, &sweep)
            }
        }
        Command::Check { file, set } => with_topology(&file, &set.set, |t| out(&topology::summary(t))),
        Command::Graph { file, set } => with_topology(&file, &set.set, |t| out(&topology::dot(t))),
        Command::Plot { report, output, node, x, title } => plot(&report, &output, node, x, title),
        Command::Node => node(),
        Command::Forkserver => launch::forkserver_main(),
        Command::Export { what: ExportCommand::K8s { file, set, image, namespace, output } } => {
            export_k8s(&file, &set.set, image, namespace, output.as_deref())
        }
        Command::Schema => out(&topology::json_schema_text()),
        Command::Completions { shell } => completions(shell),
        Command::Man { dir } => man(dir.as_deref()),
    })
}

/// Load a topology with `overrides`, printing its diagnostics (as one JSON line each way in
/// the JSON log format); None (after printing) if it is invalid.
fn load(file: &Path, overrides: &[Override]) -> Option<Topology> {
    let json = notice::format() == LogFormat::Json;
    let lines = |text: String| text.lines().map(str::to_string).collect::<Vec<_>>();
    match topology::load_with(file, overrides) {
        Ok((t, warnings)) => {
            if !warnings.diagnostics.is_empty() && json {
                let text = format!("topology `{}` has warnings", file.display());
                notice::say(&Notice::warn("topology-warnings", text).with_detail(lines(warnings.to_string())));
            } else if !warnings.diagnostics.is_empty() {
                say_raw!("{warnings}");
            }
            Some(t)
        }
        Err(e) => {
            let report = match &e {
                LoadError::Invalid(report) => Some(report.to_string()),
                _ => None,
            };
            if json {
                let detail = report.map(lines).unwrap_or_default();
                notice::say(&Notice::error("invalid-topology", e.to_string()).with_detail(detail));
            } else {
                if let Some(report) = report {
                    say!("{report}");
                }
                say!("procnet: {e}");
            }
            None
        }
    }
}

fn with_topology(file: &Path, overrides: &[Override], f: impl FnOnce(&Topology) -> u8) -> u8 {
    match load(file, overrides) {
        Some(t) => f(&t),
        None => exit_codes::INVALID_TOPOLOGY,
    }
}

/// Write `text` on stdout. A reader that went away (`procnet check x | head`) ends the
/// output quietly, like a finished one; another failure is said on stderr.
fn out(text: &str) -> u8 {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => exit_codes::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit_codes::OK,
        Err(e) => {
            say!("procnet: failed to write stdout: {e}");
            exit_codes::NODE_FAILED
        }
    }
}

/// `--metrics ADDRESS`; one that is not an address is a usage error (exit 2).
fn parse_metrics_address(text: &str) -> Result<std::net::SocketAddr, String> {
    launch::metrics::parse_address(text)
}

/// `--log-format text|json`.
fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    text.parse()
}

/// `--set PATH=VALUE`; a flag that is not one is a usage error (exit 2).
fn parse_override(text: &str) -> Result<Override, String> {
    text.parse()
}

fn parse_sweep(text: &str) -> Result<launch::sweep::Sweep, String> {
    text.parse()
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

/// `procnet run`: load the topology, run it as asked; an error is printed once, here.
fn run(request: &launch::session::Request) -> u8 {
    let Some(t) = load(&request.file, &request.overrides) else {
        return exit_codes::INVALID_TOPOLOGY;
    };
    match launch::session::run(t, request) {
        Ok(code) => code,
        Err(e) => {
            notice::say(&e.notice());
            e.exit_code()
        }
    }
}

/// `procnet run FILE --sweep ...`: every point loaded (and checked) before any runs.
fn run_sweep(request: &launch::session::Request, sweeps: &[launch::sweep::Sweep]) -> u8 {
    let mut points = Vec::new();
    for point in launch::sweep::points(sweeps) {
        let overrides = match launch::sweep::overrides(&point) {
            Ok(o) => o,
            Err(e) => {
                say!("procnet: {e}");
                return exit_codes::USAGE;
            }
        };
        let all: Vec<Override> = request.overrides.iter().cloned().chain(overrides).collect();
        let Some(t) = load(&request.file, &all) else {
            say!("procnet: at sweep point {}", launch::sweep::describe(&point));
            return exit_codes::INVALID_TOPOLOGY;
        };
        points.push((point, t));
    }
    match launch::session::sweep(sweeps, points, request) {
        Ok(code) => code,
        Err(e) => {
            say!("procnet: {}", e.chain());
            e.exit_code()
        }
    }
}

/// `procnet plot`: the SVG written, or the reason on stderr.
fn plot(report: &Path, output: &Path, node: Option<String>, x: Option<String>, title: Option<String>) -> u8 {
    let text = match std::fs::read_to_string(report) {
        Ok(t) => t,
        Err(e) => {
            say!("procnet: failed to read the report `{}`: {e}", report.display());
            return exit_codes::USAGE;
        }
    };
    match procnet::plot::plot(&text, output, &procnet::plot::PlotOptions { node, x, title }) {
        Ok(()) => exit_codes::OK,
        Err(e @ procnet::plot::PlotError::Report(_)) => {
            say!("procnet: {e}");
            exit_codes::USAGE
        }
        Err(e) => {
            say!("procnet: {e}");
            exit_codes::NODE_FAILED
        }
    }
}

fn node() -> u8 {
    match procnet::nodes::run_builtin_from_env() {
        Ok(procnet::nodes::Ending::Finished) => exit_codes::OK,
        Ok(procnet::nodes::Ending::FailedReported) => exit_codes::NODE_FAILED,
        Err(e) => {
            say!("procnet: node failed: {e}");
            exit_codes::NODE_FAILED
        }
    }
}

/// `procnet export k8s`: the manifests on stdout or in `output`, notes on stderr.
fn export_k8s(
    file: &Path,
    overrides: &[Override],
    image: String,
    namespace: Option<String>,
    output: Option<&Path>,
) -> u8 {
    let Some(t) = load(file, overrides) else {
        return exit_codes::INVALID_TOPOLOGY;
    };
    let rendered = match procnet::export::k8s::render(&t, &procnet::export::k8s::Options { image, namespace }) {
        Ok(r) => r,
        Err(e) => {
            say!("procnet: {}", launch::error_chain(&e));
            return e.exit_code();
        }
    };
    for note in &rendered.notes {
        say!("{note}");
    }
    let Some(path) = output else {
        return out(&rendered.yaml);
    };
    match std::fs::write(path, &rendered.yaml) {
        Ok(()) => exit_codes::OK,
        Err(e) => {
            say!("procnet: failed to write `{}`: {e}", path.display());
            exit_codes::NODE_FAILED
        }
    }
}

/// `procnet completions SHELL`: the script on stdout.
fn completions(shell: clap_complete::Shell) -> u8 {
    // The generators offer hidden commands too: the ones procnet runs itself (`node`,
    // `forkserver`) are left out of the command they are given.
    let cli = Cli::command();
    let mut cmd = clap::Command::new("procnet")
        .version(env!("CARGO_PKG_VERSION"))
        .about(env!("CARGO_PKG_DESCRIPTION"))
        .subcommand_required(true)
        .subcommands(cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "procnet", &mut script);
    out(&String::from_utf8_lossy(&script))
}

/// What procnet(1) says besides `--help`: a description, and the exit statuses.
const MAN_DESCRIPTION: &str = "procnet runs a process network from one topology file (TOML): nodes, \
    built-in kinds or any program, each with its replicas (processes), wired directly to each other over \
    ZeroMQ PUSH/PULL and PUB/SUB, with no broker. `procnet run` starts, wires and supervises every \
    replica and exits 0 only when every record went through; `procnet check` validates a topology and \
    shows its nodes and edges. The topology format is docs/topology.md in procnet's repository, the \
    built-in nodes docs/nodes.md; `procnet schema` gives editors its JSON Schema.";

/// The exit statuses, as README.md lists them.
const EXIT_STATUSES: &[(u8, &str)] = &[
    (
        exit_codes::OK,
        "Every node finished its stream and exited 0, and no invalid frame or record was dropped (records a \
         `drop = true` subscriber lost are counted and reported, not a failure).",
    ),
    (
        exit_codes::NODE_FAILED,
        "A node failed (an error, a non-zero exit, a crash, a start-up timeout), or a replica died mid-stream \
         and was restarted; the node and cause are named.",
    ),
    (exit_codes::USAGE, "A usage error on the command line."),
    (
        exit_codes::DATA_DROPPED,
        "Every node finished, but invalid frames or records were dropped, each named and counted on stderr: the \
         result is incomplete.",
    ),
    (exit_codes::INVALID_TOPOLOGY, "The topology is invalid or unreadable; nothing was started."),
    (exit_codes::INTERRUPTED, "Interrupted by Ctrl-C (SIGINT): nodes were asked to stop, then killed after --grace."),
    (exit_codes::TERMINATED, "Stopped by SIGTERM, the same way."),
];

/// procnet(1): clap's sections, with the description and the exit statuses.
fn main_page(cmd: clap::Command, w: &mut Vec<u8>) -> std::io::Result<()> {
    use clap_mangen::roff::{roman, Roff};
    let man = clap_mangen::Man::new(cmd.long_about(MAN_DESCRIPTION));
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    man.render_subcommands_section(w)?;
    let mut roff = Roff::default();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_STATUSES {
        roff.control("TP", []).text([roman(code.to_string())]).text([roman(*meaning)]);
    }
    roff.to_writer(w)?;
    man.render_version_section(w)
}

/// `procnet man`: procnet(1) on stdout, or it and a page per command into `dir`.
fn man(dir: Option<&Path>) -> u8 {
    // `procnet help` is `--help`: no page of its own.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut page = Vec::new();
    if let Err(e) = main_page(cmd.clone(), &mut page) {
        say!("procnet: failed to render the manual page: {e}");
        return exit_codes::NODE_FAILED;
    }
    let Some(dir) = dir else {
        return out(&String::from_utf8_lossy(&page));
    };
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::write(dir.join("procnet.1"), &page)?;
        command_pages(&cmd, dir)
    });
    match written {
        Ok(()) => exit_codes::OK,
        Err(e) => {
            say!("procnet: failed to write the manual pages into `{}`: {e}", dir.display());
            exit_codes::NODE_FAILED
        }
    }
}

/// A page per visible command under `cmd`, named after it (`procnet-export-k8s.1`).
fn command_pages(cmd: &clap::Command, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        clap_mangen::Man::new(sub.clone()).generate_to(dir)?;
        command_pages(sub, dir)?;
    }
    Ok(())
}
