//! One topology over several hosts: `[hosts]`, `host`, and `procnet run --local`, which runs
//! every host's nodes on this machine with the edges between hosts over tcp.

mod util;

use util::{procnet, root};

fn topology(name: &str) -> std::path::PathBuf {
    root().join("topologies").join(name)
}

#[test]
fn a_cluster_topology_run_locally_gives_the_one_host_tally() {
    let one_host = procnet(["run".as_ref(), topology("pages.toml").as_os_str()]).run();
    one_host.expect_code(0);
    let local = procnet(["run".as_ref(), "--local".as_ref(), topology("cluster.toml").as_os_str()]).run();
    local.expect_code(0);
    assert_eq!(local.json(), one_host.json(), "the same job, placed on three hosts, must count the same");
    assert!(local.json()["count"].as_u64().is_some_and(|n| n > 0));
}

#[test]
fn edges_between_hosts_are_tcp_on_the_declared_addresses() {
    let r = procnet(["check".as_ref(), topology("cluster.toml").as_os_str()]).run();
    r.expect_code(0);
    assert!(r.stdout.contains("a  10.77.0.1  nodes: pages.{0}"), "{}", r.stdout);
    assert!(r.stdout.contains("b  10.77.0.2  nodes: python.{0,2}"), "{}", r.stdout);
    assert!(r.stdout.contains("c  10.77.0.3  nodes: python.{1,3}, count.{0}"), "{}", r.stdout);
    assert!(
        r.stdout.contains("pages.out -> python  PUSH x1 -> PULL x4 (load-balanced)  tcp://10.77.0.2|10.77.0.3:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("python.out -> count  PUSH x4 -> PULL x1 (load-balanced)  tcp://10.77.0.3:"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_cluster_topology_is_not_run_without_saying_where() {
    let r = procnet(["run".as_ref(), topology("cluster.toml").as_os_str()]).run();
    r.expect_code(2);
    assert!(r.stdout.is_empty(), "nothing may start: {}", r.stdout);
    assert!(r.stderr.contains("topology `cluster` spans hosts `a`, `b`, `c`: run it with `--local`"), "{}", r.stderr);
}
