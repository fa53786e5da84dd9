//! What `--metrics` serves and `--metrics-file` writes, read as Prometheus reads it: fetched
//! over HTTP, and parsed by the Python `prometheus_client` package's text parser (in the test
//! virtualenv), not by a parser of our own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::harness::{program, Running};
use super::scratch::Scratch;
use super::venv::venv_bin;

/// Turns the exposition on stdin into JSON: a list of families, each with its name, type and
/// samples (name, labels, value).
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = [
    {"name": f.name, "type": f.type,
     "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
    for f in text_string_to_metric_families(sys.stdin.read())
]
print(json.dumps(families))
"#;

/// The exposition `text` as the Python client parses it (it fails the test if it cannot).
pub fn parse(s: &Scratch, text: &str) -> Exposition {
    let input = s.write("exposition.txt", text);
    let r =
        program(venv_bin().join("python3"), ["-c", PARSE]).stdin_file(&input).timeout(Duration::from_secs(30)).run();
    r.expect_code(0);
    let families = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout));
    Exposition { families, text: text.to_string() }
}

/// `GET /metrics` from `address`: the status line, and the headers and body.
pub fn get(address: SocketAddr, accept: Option<&str>) -> (String, String) {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).expect("connect to the metrics");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("a timeout");
    let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\n{accept}\r\n").expect("send the request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the response");
    let (status, rest) = response.split_once("\r\n").unwrap_or_else(|| panic!("not HTTP: {response:?}"));
    (status.to_string(), rest.to_string())
}

/// The body of `GET /metrics` from `address`, which must answer 200.
pub fn scrape(address: SocketAddr) -> String {
    let (status, rest) = get(address, None);
    assert_eq!(status, "HTTP/1.1 200 OK", "{rest}");
    rest.split_once("\r\n\r\n").expect("headers, then the body").1.to_string()
}

/// The address in the launcher's `serving metrics at http://ADDRESS/metrics` line, once it
/// has said it.
pub fn served_at(stderr: &str) -> Option<SocketAddr> {
    let rest = stderr.split("serving metrics at http://").nth(1)?;
    rest.split("/metrics").next()?.parse().ok()
}

/// Where `running` serves its metrics, once it has said it.
pub fn served_by(running: &Running) -> SocketAddr {
    let at = std::cell::Cell::new(None);
    running.wait_until("the launcher says where it serves its metrics", || {
        at.set(served_at(&running.stderr_so_far()));
        at.get().is_some()
    });
    at.get().expect("an address")
}

/// A parsed exposition.
pub struct Exposition {
    /// As the Python client gives it (see [`PARSE`]).
    pub families: serde_json::Value,
    /// As it was served or written.
    pub text: String,
}

impl Exposition {
    /// Family `name` (counters without their `_total`, as the parser names them).
    pub fn family(&self, name: &str) -> &serde_json::Value {
        let all = self.families.as_array().expect("a list of families");
        all.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("no family `{name}` in\n{}", self.text))
    }

    /// The value of the sample of family `name` whose labels include every one of `labels`,
    /// if there is one.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let all = self.families.as_array().expect("a list of families");
        let samples = all.iter().find(|f| f["name"] == name)?["samples"].as_array().expect("samples");
        samples.iter().find(|s| labels.iter().all(|(k, v)| s["labels"][k] == *v)).and_then(|s| s["value"].as_f64())
    }

    /// Every sample of family `name`: its labels and value.
    pub fn samples(&self, name: &str) -> Vec<(serde_json::Value, f64)> {
        let samples = self.family(name)["samples"].as_array().expect("samples");
        samples.iter().map(|s| (s["labels"].clone(), s["value"].as_f64().expect("a number"))).collect()
    }

    /// Check that run `run`'s counters of every replica equal `report`'s (one run's report,
    /// from `--report`).
    pub fn assert_equals_report(&self, run: u32, report: &serde_json::Value) {
        let replicas = report["replicas"].as_array().expect("the report's replicas");
        assert!(!replicas.is_empty());
        let run = run.to_string();
        for r in replicas {
            let (node, replica) = (r["node"].as_str().expect("node"), r["replica"].to_string());
            let labels = [("run", run.as_str()), ("node", node), ("replica", replica.as_str())];
            let value = |name: &str| {
                self.value(name, &labels).unwrap_or_else(|| panic!("no {name} of {node}.{replica}:\n{}", self.text))
            };
            for (metric, field) in [
                ("procnet_records_in", "received"),
                ("procnet_records_out", "sent"),
                ("procnet_errors", "errors"),
                ("procnet_bad_records", "bad_records"),
                ("procnet_invalid_frames", "invalid_frames"),
                ("procnet_dropped_records", "dropped"),
                ("procnet_restarts", "restarts"),
            ] {
                let want = r[field].as_f64().expect("a count");
                assert_eq!(value(metric), want, "{metric} of {node}.{replica}, the report's {field}");
            }
            let blocked = r["blocked_ms"].as_f64().expect("blocked_ms") / 1000.0;
            assert!((value("procnet_blocked_seconds") - blocked).abs() < 1e-9, "blocked seconds of {node}.{replica}");
            assert_eq!(value("procnet_up"), 0.0, "{node}.{replica} is up after the run");
        }
        let labels = [("run", run.as_str())];
        assert_eq!(self.value("procnet_rollbacks", &labels), report["rollbacks"].as_f64(), "rollbacks");
        let elapsed = self.value("procnet_elapsed_seconds", &labels).expect("elapsed");
        assert!((elapsed - report["elapsed_s"].as_f64().expect("elapsed_s")).abs() < 1e-6, "elapsed seconds");
    }
}
