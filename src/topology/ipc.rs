//! Where a run's ipc sockets live, in one place for the launcher (which binds them) and for
//! `check` (which makes sure each fits): the run directory, the path of each socket, and the
//! limit of a Unix socket's path, 107 bytes.
//!
//! A run directory is `<parent>/procnet-XXXXXX`, the parent being `$XDG_RUNTIME_DIR` if that
//! is a directory, else the system's temporary directory (`$TMPDIR`, `/tmp`). In it, replica
//! `r` of node `name` binds `name.r` (its input) and `name.r.<port>` (a pub port), and
//! `name.r.<port>!drop` (the port's lossy socket); the launcher binds `control`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::{NodeId, Pattern, Topology, Transport};
use super::raw::Span;

/// The longest path of a Unix socket: `sun_path` holds 108 bytes, the last a NUL.
pub const MAX_PATH_BYTES: usize = 107;
/// The run directory's name starts with this...
pub const RUN_DIR_PREFIX: &str = "procnet-";
/// ...and ends with this many random characters.
pub const RUN_DIR_RANDOM: usize = 6;

/// The directory a run directory is created in: `$XDG_RUNTIME_DIR` if it is a directory,
/// else the system's temporary directory.
pub fn run_dir_parent() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_dir()).unwrap_or_else(std::env::temp_dir)
}

/// The endpoint of socket `suffix` of replica `id` (`name.replica`) in run directory `dir`:
/// `suffix` is empty for its input, `.<port>` or `.<port>!drop` for a pub socket.
pub fn endpoint(dir: &Path, id: &str, suffix: &str) -> String {
    format!("ipc://{}/{id}{suffix}", dir.display())
}

/// The endpoint of the launcher's control socket in run directory `dir`.
pub fn control_endpoint(dir: &Path) -> String {
    endpoint(dir, "control", "")
}

/// The path of endpoint `ep` (without `ipc://`), and its length in bytes.
fn path_of(ep: &str) -> (&str, usize) {
    let path = ep.strip_prefix("ipc://").unwrap_or(ep);
    (path, path.len())
}

/// Record an error for each node of `t` whose longest ipc socket would not fit in a Unix
/// socket path, with a run directory made in `parent`, and one at the top of the file if
/// even the launcher's control socket would not. `spans[n]` is where node `n` is declared.
pub(super) fn check_paths(t: &Topology, spans: &[Span], parent: &Path, diags: &mut Diagnostics) {
    // As long as the real one: the random part has a fixed length.
    let dir = parent.join(format!("{RUN_DIR_PREFIX}{}", "X".repeat(RUN_DIR_RANDOM)));
    let help = format!(
        "the run directory is made in `{}` ($XDG_RUNTIME_DIR if set, else $TMPDIR or /tmp): point one of them at \
         a shorter directory, or shorten the name",
        parent.display()
    );
    let control = control_endpoint(&dir);
    let (path, len) = path_of(&control);
    if len > MAX_PATH_BYTES {
        diags.push(
            Diagnostic::error(
                0..0,
                format!(
                    "the launcher's control socket `{path}` would be {len} bytes long; a Unix socket path holds at \
                     most {MAX_PATH_BYTES}"
                ),
            )
            .with_help(help.clone()),
        );
    }
    let dropping: HashSet<(NodeId, usize)> =
        t.nodes.iter().flat_map(|n| n.inputs.iter().filter(|i| i.drop).map(|i| (i.node, i.port))).collect();
    for (n, node) in t.nodes.iter().enumerate() {
        if node.transport != Transport::Ipc {
            continue;
        }
        let mut suffixes: Vec<String> = Vec::new();
        if node.inputs.iter().any(|i| t.port(i.node, i.port).pattern == Pattern::Push) {
            suffixes.push(String::new());
        }
        for (p, port) in node.ports.iter().enumerate().filter(|(_, p)| p.pattern == Pattern::Pub) {
            let lossy = dropping.contains(&(n, p));
            suffixes.push(format!(".{}{}", port.name, if lossy { "!drop" } else { "" }));
        }
        let id = format!("{}.{}", node.name, node.replicas.saturating_sub(1));
        let Some(longest) = suffixes.iter().map(|s| endpoint(&dir, &id, s)).max_by_key(String::len) else {
            continue;
        };
        let (path, len) = path_of(&longest);
        if len > MAX_PATH_BYTES {
            diags.push(
                Diagnostic::error(
                    spans[n].clone(),
                    format!(
                        "node `{}` would bind ipc socket `{path}`, {len} bytes long; a Unix socket path holds at most {MAX_PATH_BYTES}",
                        node.name
                    ),
                )
                .with_help(format!("{help} (of the node, or of its port), or use `transport = \"tcp\"`")),
            );
        }
    }
}
