//! `--metrics` and `--metrics-file`: the run's counters served over HTTP while it runs and
//! written to a file, read by the Python Prometheus client's parser, equal at the end to the
//! `--report`; a busy port or a bad address is a usage error before anything starts; a port
//! alone is served on the loopback address only.

use std::time::Duration;

use crate::util::{self, procnet, prometheus, read_json, Scratch};

/// A source reading `in.fifo` (the run lives as long as the test writes), a filter on two
/// replicas, a tally writing `count.json`.
fn fifo_pipeline(s: &Scratch) -> std::path::PathBuf {
    util::mkfifo(&s.path("in.fifo"));
    s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.fifo"
        [nodes.keep]
        kind = "filter"
        inputs = ["src"]
        replicas = 2
        field = "line"
        regex = "7"
        [nodes.count]
        kind = "tally"
        inputs = ["keep"]
        output = "count.json"
        "#,
    )
}

#[test]
fn metrics_are_served_while_the_run_goes_on_and_end_equal_to_the_report() {
    use std::io::Write;
    let s = Scratch::new();
    let file = fifo_pipeline(&s);
    let (prom, report) = (s.path("procnet.prom"), s.path("report.json"));
    let running = procnet([
        "run".as_ref(),
        file.as_os_str(),
        "--metrics".as_ref(),
        "0".as_ref(),
        "--metrics-file".as_ref(),
        prom.as_os_str(),
        "--report".as_ref(),
        report.as_os_str(),
    ])
    .timeout(Duration::from_secs(60))
    .start();
    let writer = running.fifo_writer(&s.path("in.fifo"));
    // The source runs: the file was written before any node started, every replica in it,
    // none up yet.
    let first = prometheus::parse(&s, &std::fs::read_to_string(&prom).expect("the metrics file at the start"));
    assert_eq!(first.family("procnet_records_in")["type"], "counter", "{}", first.text);
    assert_eq!(first.samples("procnet_up").iter().map(|(_, v)| v).sum::<f64>(), 0.0, "{}", first.text);
    assert_eq!(first.samples("procnet_up").len(), 4, "one series per replica:\n{}", first.text);
    let address = prometheus::served_by(&running);
    // Mid-run, as Prometheus would see it: the source's records out as its `stats` bring
    // them (every 250 ms at most, while records flow: so the test keeps writing).
    let (written, mid) = (std::cell::Cell::new(0), std::cell::RefCell::new(None));
    running.wait_until("1000 records of the source in a scrape", || {
        // A `&File` writes, so the closure needs no `mut`.
        let mut w = &writer;
        for _ in 0..100 {
            writeln!(w, "{}", written.get()).expect("write to the FIFO");
            written.set(written.get() + 1);
        }
        std::thread::sleep(Duration::from_millis(50));
        let e = prometheus::parse(&s, &prometheus::scrape(address));
        let sent = e.value("procnet_records_out", &[("node", "src"), ("replica", "0")]).unwrap_or_default();
        *mid.borrow_mut() = Some(e);
        sent >= 1000.0
    });
    let mid = mid.into_inner().expect("a scrape");
    for (labels, up) in mid.samples("procnet_up") {
        assert_eq!(up, 1.0, "{labels} is not up mid-run:\n{}", mid.text);
        assert_eq!((&labels["topology"], &labels["run"]), (&"t".into(), &"1".into()), "{labels}");
    }
    assert_eq!(mid.samples("procnet_up").len(), 4, "one series per replica:\n{}", mid.text);
    for (name, kind) in
        [("procnet_records_in", "counter"), ("procnet_blocked_seconds", "counter"), ("procnet_up", "gauge")]
    {
        assert_eq!(mid.family(name)["type"], kind, "{name}");
    }
    assert!(mid.value("procnet_exit_code", &[]).is_none(), "an exit code before the end:\n{}", mid.text);
    // OpenMetrics, for a scraper that asks for it.
    let (status, rest) = prometheus::get(address, Some("application/openmetrics-text;version=1.0.0"));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(rest.contains("Content-Type: application/openmetrics-text") && rest.ends_with("# EOF\n"), "{rest}");
    drop(writer);
    let r = running.finish();
    r.expect_code(0);
    // At the end, the file says what the report says, replica by replica.
    let end = prometheus::parse(&s, &std::fs::read_to_string(&prom).expect("the metrics file"));
    end.assert_equals_report(1, &read_json(&report));
    assert_eq!(end.value("procnet_exit_code", &[("run", "1")]), Some(0.0));
    let kept: f64 = end.samples("procnet_records_in").iter().filter(|(l, _)| l["node"] == "keep").map(|(_, v)| v).sum();
    assert_eq!(kept, f64::from(written.get()), "the filter's replicas received every record between them");
}

#[test]
fn metrics_of_a_repeated_experiment_carry_each_run() {
    let s = Scratch::new();
    s.write("in.txt", &(0..3000).map(|i| format!("{i}\n")).collect::<String>());
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.txt"
        [nodes.keep]
        kind = "filter"
        inputs = ["src"]
        replicas = 2
        field = "line"
        regex = "3"
        [nodes.count]
        kind = "tally"
        inputs = ["keep"]
        "#,
    );
    let (prom, report) = (s.path("procnet.prom"), s.path("report.json"));
    let r = procnet([
        "run".as_ref(),
        file.as_os_str(),
        "--repeat".as_ref(),
        "2".as_ref(),
        "--metrics-file".as_ref(),
        prom.as_os_str(),
        "--report".as_ref(),
        report.as_os_str(),
    ])
    .timeout(Duration::from_secs(60))
    .run();
    r.expect_code(0);
    let end = prometheus::parse(&s, &std::fs::read_to_string(&prom).expect("the metrics file"));
    let report = read_json(&report);
    for run in [1, 2] {
        end.assert_equals_report(run, &report["runs"][run as usize - 1]);
    }
    assert_eq!(end.value("procnet_run", &[]), Some(2.0), "the last run");
}

// A second procnet (or another exporter) on the port must not start a run whose metrics
// nobody can read: it says so and exits 2 before any node starts.
#[test]
fn a_busy_metrics_port_is_a_usage_error_before_any_node_starts() {
    let s = Scratch::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = busy.local_addr().expect("its address").port();
    s.write("in.txt", "a\nb\n");
    let file = s.write(
        "t.toml",
        r#"
        [nodes.src]
        kind = "lines"
        path = "in.txt"
        [nodes.mark]
        command = ["sh", "-c", "touch started; exec cat"]
        inputs = ["src"]
        stdio = "lines"
        [nodes.out]
        kind = "sink"
        inputs = ["mark"]
        path = "out.txt"
        "#,
    );
    let runs = s.path("runs");
    std::fs::create_dir(&runs).expect("a directory for run directories");
    let address = format!("127.0.0.1:{port}");
    let r = procnet(["run".as_ref(), file.as_os_str(), "--metrics".as_ref(), address.as_ref()])
        .env("XDG_RUNTIME_DIR", &runs)
        .timeout(Duration::from_secs(30))
        .run();
    r.expect_code(2);
    assert!(
        r.stderr.contains(&format!("procnet: failed to serve metrics at `{address}`, where another process listens"))
            && r.stderr.contains("Address already in use"),
        "{}",
        r.stderr
    );
    assert!(!s.path("started").exists(), "a node started");
    assert!(!s.path("out.txt").exists() && r.stdout.is_empty(), "the run produced output");
    assert_eq!(std::fs::read_dir(&runs).expect("list").count(), 0, "a run directory was made");
    // An address that is not one: exit 2 too, saying what would do.
    let r = procnet(["run".as_ref(), file.as_os_str(), "--metrics".as_ref(), "metrics.test:80".as_ref()]).run();
    r.expect_code(2);
    assert!(r.stderr.contains("give PORT (served on 127.0.0.1) or IP:PORT"), "{}", r.stderr);
    drop(busy);
}

// `--metrics PORT` must not expose a run's counters to the network: the port alone binds the
// loopback address, as the kernel's table of listening sockets shows.
#[test]
fn metrics_given_a_port_alone_listen_on_loopback_only() {
    let s = Scratch::new();
    let file = fifo_pipeline(&s);
    let running = procnet(["run".as_ref(), file.as_os_str(), "--metrics".as_ref(), "0".as_ref()])
        .timeout(Duration::from_secs(60))
        .start();
    let writer = running.fifo_writer(&s.path("in.fifo"));
    let address = prometheus::served_by(&running);
    assert!(address.ip().is_loopback(), "{address}");
    let listening = listening_on(address.port());
    assert_eq!(listening, ["0100007F"], "port {} is listened on at {listening:?}", address.port());
    drop(writer);
    running.finish().expect_code(0);
}

/// The local addresses (as /proc/net/tcp and tcp6 write them) listening on `port`.
fn listening_on(port: u16) -> Vec<String> {
    let mut addresses = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let Some((ip, p)) = f.get(1).and_then(|a| a.split_once(':')) else { continue };
            if f.get(3) == Some(&"0A") && u16::from_str_radix(p, 16) == Ok(port) {
                addresses.push(ip.to_string());
            }
        }
    }
    addresses
}
