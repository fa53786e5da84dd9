//! Limits that `procnet check` and a run must agree on: what the check accepts, the run can
//! start. Documented in `docs/topology.md` and `docs/protocol.md` §11.

/// The most replicas a node may have.
pub const MAX_REPLICAS: u32 = 1024;

/// The ZeroMQ sockets one node process may open (libzmq allows 1023 by default): one PUSH per
/// downstream replica of each of its push outputs, and a few of its own (see
/// [`node_sockets`]). Raised before the node's first socket; each costs libzmq 12 bytes up
/// front, so 4096 is 48 KiB per process.
pub const MAX_NODE_SOCKETS: i32 = 4096;

/// The sockets each process of a node opens: `downstream` PUSH sockets (the replicas of the
/// nodes reading its push ports, summed over its edges), and, counted generously, the
/// control socket, a ZAP handler, its input with its monitor, each pub input (a SUB with
/// its monitor), each pub port (a lossless and a lossy XPUB, with monitors).
pub fn node_sockets(downstream: u64, pub_inputs: u64, pub_ports: u64) -> u64 {
    downstream + 8 + 3 * pub_inputs + 4 * pub_ports
}

/// Raise this process's soft limit of open files to its hard limit, as far as allowed. A
/// process pushing to 1024 replicas holds two descriptors per socket, and a launcher two
/// pipes per replica: more than the usual soft limit of 1024. Failing that, the run goes on
/// and a socket that cannot open says so.
pub fn raise_open_files() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit(2) and setrlimit(2) with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
