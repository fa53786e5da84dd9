//! What a launcher needs of the operating system around a run: sane descriptors and signal
//! dispositions, a private run directory, private files, and whether a pid that came over the
//! network is really a replica of the run.

use std::path::Path;

use super::outcome::RunError;
use crate::topology::Topology;

/// Descriptors 0 to 2 open (so no pipe of ours takes their numbers) and SIGCHLD at its
/// default (so children can be waited for), whatever the launcher was started with.
pub fn sane_process_state() {
    // SAFETY: opening /dev/null and setting a signal disposition in this process.
    unsafe {
        loop {
            let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if fd < 0 {
                break;
            }
            if fd > 2 {
                libc::close(fd);
                break;
            }
        }
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
}

/// Whether process `pid` is replica `id` of this topology (by its environment): a pid that
/// came over the network is checked before it is signalled.
pub fn is_replica(pid: u32, t: &Topology, id: &str) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    let has = |key: &str, value: &str| {
        let want = format!("{key}={value}");
        environ.split(|&b| b == 0).any(|kv| kv == want.as_bytes())
    };
    let (node, replica) = id.rsplit_once('.').unwrap_or((id, ""));
    has(crate::runtime::vars::NODE, node)
        && has(crate::runtime::vars::REPLICA, replica)
        && has(crate::runtime::vars::TOPOLOGY, &t.name)
}

/// Create (or truncate) `path`, readable and writable by this user only, whatever the umask.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// A new private directory for a run (mode 0700 whatever the umask), where its ipc sockets
/// live; removed when dropped.
pub fn run_dir() -> Result<tempfile::TempDir, RunError> {
    let base = crate::topology::ipc::run_dir_parent();
    use std::os::unix::fs::PermissionsExt;
    let failed = |e: std::io::Error| RunError::system(format!("create a run directory in `{}`", base.display()))(e);
    // Private whatever the umask: its sockets are the run's, and no other user may reach them.
    let dir = tempfile::Builder::new()
        .prefix(crate::topology::ipc::RUN_DIR_PREFIX)
        .rand_bytes(crate::topology::ipc::RUN_DIR_RANDOM)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(failed)?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    Ok(dir)
}

/// `text` quoted for a POSIX shell, if it needs to be.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:*,=+@".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
