//! procnet: brokerless process networks over ZeroMQ.
//!
//! A topology file declares nodes (built-in kinds or commands), their replica counts and the
//! edges between them; the launcher starts one OS process per replica and the nodes exchange
//! MessagePack records directly over PUSH/PULL sockets, with no broker in the data path.
//!
//! Module map:
//! - [`topology`]: the topology file, from spanned TOML to a validated [`topology::Topology`],
//!   with every problem reported at once as file:line:column.
//! - [`record`]: records, MessagePack maps with string keys, and their JSON conversions.
//! - [`wire`]: the versioned wire protocol, one `encode` and one `decode` for every message.
//! - [`runtime`]: the node side: identity from the environment, joining the network, and the
//!   `recv`/`send`/`finish` loop with exact end of stream.
//! - [`nodes`]: the built-in node kinds (lines, fetch, filter, tally, sink, serve), one file each.
//! - [`http`]: the HTTP client behind `fetch` and the static site behind `serve`.
//! - [`launch`]: the launcher: spawn, start barrier, supervision, clean teardown.
//! - [`export`]: a topology rendered for another engine (`procnet export k8s`: Kubernetes
//!   manifests).
//! - [`plot`]: a sweep's report drawn as SVG (`procnet plot`).
//! - [`exit_codes`]: the process exit codes, documented in one place.
//! - [`limits`]: the limits `check` and a run agree on (replicas, sockets, open files).
//!
//! Imports go one way, down this order, with no circle between modules or files:
//! `exit_codes`, `limits`, `record`, `wire`, `http`, `runtime`, then `topology`'s first
//! stages (diagnostics, typed reads of the spanned tree, the port vocabulary), `nodes`, the
//! rest of `topology` (the model, which holds each built-in's validated options, and
//! `compile`), `export`, `launch`, `plot` (which reads only the report's JSON). So the runtime knows no built-in kind, and the built-in
//! kinds read their options with what the topology reads its file with (the stages are
//! listed in [`topology`]'s docs).

// Linux only: no node may outlive its launcher (prctl(PR_SET_PDEATHSIG)), the fork server
// reaps through a signalfd, and the launcher reads /proc for its processes' threads,
// descriptors and environments. Elsewhere the build stops here, saying so, rather than with
// errors about missing libc items.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "procnet runs on Linux only: it uses prctl(PR_SET_PDEATHSIG) so that no node outlives its launcher, \
     a signalfd in its fork server, and /proc to find its processes' threads, descriptors and environments"
);

pub mod exit_codes;
pub mod export;
pub mod http;
pub mod launch;
pub mod limits;
pub mod nodes;
pub mod plot;
pub mod record;
pub mod runtime;
pub mod topology;
pub mod wire;
