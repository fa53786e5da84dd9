//! Where a run's ipc sockets live, in one place for the launcher (which binds them) and for
//! `check` (which makes sure each fits): the run directory, the path of each socket, and the
//! limit of a Unix socket's path, 107 bytes.
//!
//! A run directory is `<parent>/procnet-XXXXXX`, the parent being `$XDG_RUNTIME_DIR` if that
//! is a directory, else the system's temporary directory (`$TMPDIR`, `/tmp`). In it, replica
//! `r` of node `name` binds `name.r` (its input) and `name.r.<port>` (a pub port), and
//! `name.r.<port>!drop` (the port's lossy socket); the launcher binds `control`.

use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::{Topology, Transport};
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
        "the run directory is made in `{}` ($XDG_RUNTIME_DIR if a directory, else $TMPDIR or /tmp): point one of \
         them at a shorter directory",
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
    for (n, node) in t.nodes.iter().enumerate() {
        if node.transport != Transport::Ipc {
            continue;
        }
        // What the launcher binds for each replica (`launch::plan`): the input, each pub socket.
        let mut suffixes: Vec<String> = Vec::new();
        if t.binds_push_input(n) {
            suffixes.push(String::new());
        }
        suffixes.extend(t.pub_sockets(n).into_iter().map(|key| format!(".{key}")));
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
                .with_help(format!("{help}, shorten the node's name or its port's, or use `transport = \"tcp\"`")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::topology::compile::{compile, Source};

    /// The errors for the topology `text` with a run directory made in `parent`.
    fn errors(text: &str, parent: &str) -> Vec<String> {
        let source = Source::new(Path::new("t.toml"), text, Path::new("/"));
        let (t, _) = compile(&source).expect("a valid topology");
        let spans = vec![0..0; t.nodes.len()];
        let mut diags = Diagnostics::default();
        check_paths(&t, &spans, Path::new(parent), &mut diags);
        diags.into_report(Path::new("t.toml"), text.to_string()).diagnostics.into_iter().map(|d| d.message).collect()
    }

    const PUB: &str = r#"
        [nodes.src]
        command = ["cat"]
        replicas = 10
        outputs = { news = "pub" }
        [nodes.reader]
        command = ["cat"]
        inputs = [{ from = "src.news", drop = true }]
        "#;

    #[test]
    fn the_longest_socket_is_the_last_replicas_lossy_pub_socket() {
        // `<parent>/procnet-XXXXXX/src.9.news!drop`: the parent's length + 31.
        let parent = format!("/{}", "p".repeat(107 - 31 - 1));
        assert_eq!(errors(PUB, &parent), Vec::<String>::new());
        let parent = format!("/{}", "p".repeat(107 - 31));
        let e = errors(PUB, &parent);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("node `src` would bind ipc socket `"), "{}", e[0]);
        assert!(e[0].contains("/procnet-XXXXXX/src.9.news!drop`, 108 bytes long"), "{}", e[0]);
    }

    #[test]
    fn tcp_nodes_have_no_ipc_path_but_the_control_socket_has() {
        let tcp = PUB.replace("replicas = 10", "replicas = 10\ntransport = \"tcp\"");
        let parent = format!("/{}", "p".repeat(200));
        let e = errors(&tcp, &parent);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("the launcher's control socket"), "{}", e[0]);
    }

    #[test]
    fn the_launcher_builds_the_same_paths() {
        let dir = Path::new("/run/x/procnet-abcdef");
        assert_eq!(endpoint(dir, "src.9", ".news!drop"), "ipc:///run/x/procnet-abcdef/src.9.news!drop");
        assert_eq!(control_endpoint(dir), "ipc:///run/x/procnet-abcdef/control");
    }
}
