//! The `fetch` node against real local HTTP servers (tests/util/http.rs): every input record
//! yields exactly one output record, enriched with `status`, `body`, `error`, `host` and
//! `elapsed_ms`; failures are data with exact error strings, and the run exits 0.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::http::{self, Server};
use crate::util::{free_port, run_ok, Scratch};

/// Generous: the slowest run here takes a few seconds.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The topology `urls (source) -> fetch (options) -> out`, with each node's table body given.
fn topology(source: &str, fetch_options: &str, out: &str) -> String {
    format!(
        "[nodes.urls]\n{source}\n\n[nodes.fetch]\nkind = \"fetch\"\ninputs = [\"urls\"]\n{fetch_options}\n\n\
         [nodes.out]\ninputs = [\"fetch\"]\n{out}\n"
    )
}

/// The records of `out.jsonl` in `s`, each checked for the fields fetch adds.
fn output(s: &Scratch) -> Vec<Value> {
    let text = fs::read_to_string(s.path("out.jsonl")).expect("read out.jsonl");
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("out.jsonl line is not JSON ({e}): {l}")))
        .collect();
    for r in &records {
        check_shape(r);
    }
    records
}

/// Index `records` by their string field `key`, asserting each of `keys` appears exactly once
/// and nothing else does.
fn by_key(records: Vec<Value>, key: &str, keys: &[String]) -> BTreeMap<String, Value> {
    let mut by = BTreeMap::new();
    for r in records {
        let k = r[key].as_str().unwrap_or_else(|| panic!("output record without a string `{key}`: {}", brief(&r)));
        let k = k.to_string();
        assert!(by.insert(k.clone(), r).is_none(), "{key} {k:?} is in the output more than once");
    }
    let missing: Vec<_> = keys.iter().filter(|k| !by.contains_key(*k)).collect();
    assert!(missing.is_empty(), "input records missing from the output: {missing:?}");
    let extra: Vec<_> = by.keys().filter(|k| !keys.contains(k)).collect();
    assert!(extra.is_empty(), "output records that were not input: {extra:?}");
    by
}

/// `lines (urls.txt) -> fetch (options) -> sink (out.jsonl)` over `urls`, one per line;
/// returns the output records by URL.
fn fetch(urls: &[String], options: &str) -> BTreeMap<String, Value> {
    let s = Scratch::new();
    s.write("urls.txt", &(urls.join("\n") + "\n"));
    run_ok(
        &s,
        &topology(
            "kind = \"lines\"\npath = \"urls.txt\"\nfield = \"url\"",
            options,
            "kind = \"sink\"\npath = \"out.jsonl\"",
        ),
    );
    by_key(output(&s), "url", urls)
}

/// Every output record carries the added fields with their types.
fn check_shape(r: &Value) {
    let b = brief(r);
    assert!(r["status"].is_u64() || r["status"].is_null(), "status is not an integer or null: {b}");
    assert!(r["body"].is_string(), "body is not a string: {b}");
    assert!(r["error"].is_string() || r["error"].is_null(), "error is not a string or null: {b}");
    assert!(r["host"].is_string(), "host is not a string: {b}");
    assert!(r["elapsed_ms"].is_u64(), "elapsed_ms is not a non-negative integer: {b}");
}

/// A record for messages, its body cut short.
fn brief(r: &Value) -> String {
    let mut r = r.clone();
    if let Some(body) = r["body"].as_str() {
        if body.len() > 200 {
            let cut: String = body.chars().take(200).collect();
            r["body"] = json!(format!("{cut}... ({} bytes)", body.len()));
        }
    }
    r.to_string()
}

/// Assert `r` has this `status` and `error` (JSON values, null for none).
fn expect(r: &Value, status: Value, error: Value) {
    assert_eq!(r["error"], error, "error of {}", brief(r));
    assert_eq!(r["status"], status, "status of {}", brief(r));
}

/// Assert `r` is a failure without an answer: `error`, status null, body "".
fn expect_no_answer(r: &Value, error: &str) {
    expect(r, Value::Null, json!(error));
    assert_eq!(r["body"], "", "body of {}", brief(r));
}

fn body(r: &Value) -> &str {
    r["body"].as_str().expect("checked by check_shape")
}

#[test]
fn statuses_of_400_and_up_are_errors_with_their_body_and_200_is_not() {
    let server = Server::start();
    let urls: Vec<String> = ["/ok?i=1", "/forbidden", "/missing", "/error"].iter().map(|p| server.url(p)).collect();
    let out = fetch(&urls, "user_agent = \"procnet-test\"");

    let ok = &out[&urls[0]];
    expect(ok, json!(200), Value::Null);
    assert!(body(ok).contains("Python"), "body of {}", brief(ok));
    assert_eq!(ok["host"], "127.0.0.1");

    for (url, status, error, text) in [
        (&urls[1], 403, "403 Forbidden", "forbidden\n"),
        (&urls[2], 404, "404 Not Found", "no such page\n"),
        (&urls[3], 500, "500 Internal Server Error", "something broke\n"),
    ] {
        let r = &out[url];
        expect(r, json!(status), json!(error));
        assert_eq!(r["body"], text, "body of {}", brief(r));
        assert_eq!(r["host"], "127.0.0.1");
    }

    // Default retries = 1: a 5xx is tried twice, a 4xx once.
    assert_eq!(server.hits("/forbidden"), 1, "a 403 is not retried");
    assert_eq!(server.hits("/missing"), 1, "a 404 is not retried");
    assert_eq!(server.hits("/error"), 2, "a 500 is retried once by default");

    let requests = server.requests();
    assert!(!requests.is_empty());
    for req in &requests {
        assert_eq!(req.header("user-agent"), Some("procnet-test"), "user agent of {req:?}");
    }
}

#[test]
fn a_request_without_an_answer_times_out_and_the_run_finishes() {
    let server = Server::start();
    let urls = vec![server.url("/hang"), server.url("/ok")];
    let out = fetch(&urls, "timeout_ms = 500\nretries = 0");

    let hang = &out[&urls[0]];
    expect_no_answer(hang, "timeout after 500 ms");
    assert_eq!(hang["host"], "127.0.0.1");
    expect(&out[&urls[1]], json!(200), Value::Null);
    assert_eq!(server.hits("/hang"), 1, "retries = 0: no second attempt");

    let default_agent = format!("procnet/{}", env!("CARGO_PKG_VERSION"));
    for req in server.requests() {
        assert_eq!(req.header("user-agent"), Some(default_agent.as_str()), "default user agent of {req:?}");
    }
}

#[test]
fn connection_refused_is_reported_with_the_host_without_port() {
    let port = free_port();
    let urls = vec![format!("http://127.0.0.1:{port}/ok")];
    let out = fetch(&urls, "retries = 0");
    let r = &out[&urls[0]];
    expect_no_answer(r, "connection refused");
    assert_eq!(r["host"], "127.0.0.1");
}

#[test]
fn redirects_are_followed_up_to_max_redirects() {
    let server = Server::start();
    let urls = vec![server.url("/loop"), server.url("/redirect")];
    let out = fetch(&urls, "max_redirects = 3");

    let looped = &out[&urls[0]];
    assert_eq!(looped["error"], "too many redirects (more than 3)", "{}", brief(looped));
    // The first request and the 3 redirects followed; the 4th redirect is one too many.
    assert_eq!(server.hits("/loop"), 4, "requests to /loop with max_redirects = 3");

    let redirected = &out[&urls[1]];
    expect(redirected, json!(200), Value::Null);
    assert!(body(redirected).contains("Python"), "body of {}", brief(redirected));
    assert_eq!(server.hits("/ok"), 1);
}

#[test]
fn a_body_over_max_body_bytes_is_truncated_and_flagged() {
    let server = Server::start();
    let urls = vec![server.url("/big"), server.url("/ok")];
    let out = fetch(&urls, "max_body_bytes = 1000000");

    let big = &out[&urls[0]];
    expect(big, json!(200), json!("body over 1000000 bytes, truncated"));
    assert_eq!(body(big).len(), 1_000_000, "body length in bytes");
    assert!(body(big).as_bytes() == &http::big_body()[..1_000_000], "the body is the first 1000000 bytes");

    let ok = &out[&urls[1]];
    expect(ok, json!(200), Value::Null);
    assert_eq!(ok["body"], http::OK_BODY);
}

#[test]
fn invalid_utf8_in_a_body_is_replaced_not_an_error() {
    let server = Server::start();
    let urls = vec![server.url("/latin1")];
    let out = fetch(&urls, "");
    let r = &out[&urls[0]];
    expect(r, json!(200), Value::Null);
    assert!(body(r).contains('\u{FFFD}'), "no U+FFFD in {}", brief(r));
    assert_eq!(body(r), String::from_utf8_lossy(http::LATIN1_BODY), "body of {}", brief(r));
}

#[test]
fn malformed_urls_and_other_schemes_are_errors_and_the_stream_goes_on() {
    let server = Server::start();
    let urls: Vec<String> = ["http://", "not a url", "http:// spaces here/", "ftp://127.0.0.1/x"]
        .iter()
        .map(|u| u.to_string())
        .chain([server.url("/ok")])
        .collect();
    let out = fetch(&urls, "");

    for bad in &urls[..3] {
        let r = &out[bad];
        expect_no_answer(r, "invalid url");
        assert_eq!(r["host"], "", "host of {}", brief(r));
    }
    let ftp = &out[&urls[3]];
    expect_no_answer(ftp, "unsupported scheme `ftp`");
    assert_eq!(ftp["host"], "127.0.0.1", "host of {}", brief(ftp));
    expect(&out[&urls[4]], json!(200), Value::Null);
    assert_eq!(server.requests().len(), 1, "only the good URL reached the server");
}

/// `lines (in.jsonl, jsonl) -> fetch (options) -> sink`; returns the output records by `id`.
fn fetch_jsonl(records: &[Value], options: &str) -> BTreeMap<String, Value> {
    let s = Scratch::new();
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    s.write("in.jsonl", &text);
    run_ok(
        &s,
        &topology(
            "kind = \"lines\"\npath = \"in.jsonl\"\nformat = \"jsonl\"",
            options,
            "kind = \"sink\"\npath = \"out.jsonl\"",
        ),
    );
    let ids: Vec<String> = records.iter().map(|r| r["id"].as_str().expect("test records have ids").into()).collect();
    by_key(output(&s), "id", &ids)
}

#[test]
fn a_record_without_a_string_url_field_is_an_error() {
    let server = Server::start();
    let out = fetch_jsonl(
        &[
            json!({"id": "good", "url": server.url("/ok")}),
            json!({"id": "none", "page": server.url("/ok")}),
            json!({"id": "number", "url": 42}),
        ],
        "",
    );
    expect(&out["good"], json!(200), Value::Null);
    for id in ["none", "number"] {
        let r = &out[id];
        expect_no_answer(r, "missing `url` field");
        assert_eq!(r["host"], "", "host of {}", brief(r));
    }
    assert_eq!(out["none"]["page"], server.url("/ok"), "the record's own fields are kept");
    assert_eq!(out["number"]["url"], 42, "the record's own fields are kept");
}

#[test]
fn url_field_names_the_field_read_and_the_error() {
    let server = Server::start();
    let out = fetch_jsonl(
        &[json!({"id": "good", "link": server.url("/ok")}), json!({"id": "bad", "url": server.url("/ok")})],
        "url_field = \"link\"",
    );
    expect(&out["good"], json!(200), Value::Null);
    expect_no_answer(&out["bad"], "missing `link` field");
    assert_eq!(server.hits("/ok"), 1);
}

#[test]
fn one_retry_gets_past_a_503() {
    let server = Server::start();
    let urls = vec![server.url("/flaky")];
    let out = fetch(&urls, "retries = 1");
    let r = &out[&urls[0]];
    expect(r, json!(200), Value::Null);
    assert!(body(r).contains("Python"), "body of {}", brief(r));
    assert_eq!(server.hits("/flaky"), 2, "the 503, then the retry");
}

#[test]
fn without_retries_a_503_is_the_answer() {
    let server = Server::start();
    let urls = vec![server.url("/flaky")];
    let out = fetch(&urls, "retries = 0");
    let r = &out[&urls[0]];
    expect(r, json!(503), json!("503 Service Unavailable"));
    assert_eq!(r["body"], "try again\n");
    assert_eq!(server.hits("/flaky"), 1);
}

/// `n` distinct URLs of `/slow`, each answered after `ms`.
fn slow_urls(server: &Server, n: usize, ms: u64) -> Vec<String> {
    (0..n).map(|i| server.url(&format!("/slow?ms={ms}&i={i}"))).collect()
}

#[test]
fn concurrency_bounds_the_requests_in_flight_and_is_used() {
    let server = Server::start();
    let urls = slow_urls(&server, 16, 500);
    let out = fetch(&urls, "concurrency = 8");
    for r in out.values() {
        expect(r, json!(200), Value::Null);
    }
    assert_eq!(server.max_in_flight(), 8, "most requests in flight at once with concurrency = 8");
}

#[test]
fn concurrency_is_per_replica() {
    let server = Server::start();
    // Records travel in batches of up to 32, and batches are what is balanced over replicas:
    // 64 records give each of the 2 replicas 32 (16 would all go to one).
    let urls = slow_urls(&server, 64, 500);
    let out = fetch(&urls, "replicas = 2\nconcurrency = 4");
    for r in out.values() {
        expect(r, json!(200), Value::Null);
    }
    assert_eq!(server.max_in_flight(), 8, "most requests in flight at once with 2 replicas x concurrency 4");
}

#[test]
fn connect_to_sends_every_request_to_one_address_keeping_the_host() {
    // The URL's host does not resolve: only the address given by connect_to can answer it.
    let server = Server::start();
    let urls = vec!["http://procnet-connect-test.invalid/ok".to_string()];
    let out = fetch(&urls, &format!("connect_to = \"{}\"\nretries = 0", server.base()));
    let r = &out[&urls[0]];
    expect(r, json!(200), Value::Null);
    assert_eq!(r["host"], "procnet-connect-test.invalid");
    assert_eq!(server.hits("/ok"), 1, "{:?}", server.requests());
}

#[test]
fn a_mixed_stream_over_two_replicas_yields_one_record_per_url() {
    let server = Server::start();
    let refused = free_port();
    let mut urls = Vec::new();
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    let mut add = |make: &dyn Fn(usize) -> String, n: usize, error: &'static str| {
        for i in 0..n {
            urls.push(make(i));
        }
        *expected.entry(error).or_default() += n as u64;
    };
    let srv = &server;
    let at = |path: &'static str| move |i: usize| srv.url(&format!("{path}?i={i}"));
    add(&at("/ok"), 12, "null");
    add(&at("/redirect"), 4, "null");
    add(&at("/flaky"), 3, "null");
    add(&at("/latin1"), 2, "null");
    add(&|i| srv.url(&format!("/slow?ms=100&i={i}")), 3, "null");
    add(&at("/forbidden"), 4, "403 Forbidden");
    add(&at("/missing"), 5, "404 Not Found");
    add(&at("/error"), 3, "500 Internal Server Error");
    add(&at("/hang"), 2, "timeout after 1000 ms");
    add(&|i| format!("http://127.0.0.1:{refused}/ok?i={i}"), 3, "connection refused");
    add(&at("/loop"), 2, "too many redirects (more than 3)");
    add(&at("/big"), 2, "body over 1000000 bytes, truncated");
    add(&|i| ["http://", "not a url", "http:// spaces here/"][i].to_string(), 3, "invalid url");
    add(&|i| format!("ftp://127.0.0.1/x{i}"), 2, "unsupported scheme `ftp`");
    assert_eq!(urls.len(), 50);

    let s = Scratch::new();
    s.write("urls.txt", &(urls.join("\n") + "\n"));
    let run = run_ok(
        &s,
        &topology(
            "kind = \"lines\"\npath = \"urls.txt\"\nfield = \"url\"",
            "replicas = 2\nconcurrency = 4\ntimeout_ms = 1000\nretries = 1\nmax_redirects = 3\n\
             max_body_bytes = 1000000",
            "kind = \"tally\"\nby = \"error\"",
        ),
    );
    let tally = run.json();
    assert_eq!(tally["count"], 50, "{tally}");
    // A nil error counts under its JSON text, "null".
    let by: BTreeMap<String, u64> = serde_json::from_value(tally["by"].clone()).expect("by is a map of counts");
    let expected: BTreeMap<String, u64> = expected.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    assert_eq!(by, expected);
    // Only the first /flaky request of this server gets a 503, and it is retried.
    assert_eq!(server.hits("/flaky"), 4);
}

/// Guards the tests above against their own server: it speaks HTTP/1.1 with keep-alive, and
/// dropping it releases a held `/hang` connection instead of leaking its thread.
#[test]
fn the_test_server_answers_and_releases_held_connections_when_dropped() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;

    let server = Server::start();
    let mut conn = TcpStream::connect(("127.0.0.1", server.port())).expect("connect to the test server");
    conn.set_read_timeout(Some(RUN_TIMEOUT)).expect("set a read timeout");
    let mut reader = BufReader::new(conn.try_clone().expect("clone the connection"));
    for _ in 0..2 {
        conn.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").expect("send a request");
        let mut head = Vec::new();
        let mut line = String::new();
        while reader.read_line(&mut line).expect("read the answer") > 2 {
            head.push(line.clone());
            line.clear();
        }
        assert_eq!(head[0], "HTTP/1.1 200 OK\r\n");
        let len: usize = head
            .iter()
            .find_map(|h| h.strip_prefix("Content-Length: "))
            .expect("a Content-Length")
            .trim()
            .parse()
            .expect("a number");
        let mut body = vec![0; len];
        reader.read_exact(&mut body).expect("read the body");
        assert_eq!(body, http::OK_BODY.as_bytes());
    }

    let mut held = TcpStream::connect(("127.0.0.1", server.port())).expect("connect to the test server");
    held.set_read_timeout(Some(RUN_TIMEOUT)).expect("set a read timeout");
    held.write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n").expect("send a request");
    // Wait until the server holds the request (the condition itself, not a delay).
    let deadline = std::time::Instant::now() + RUN_TIMEOUT;
    while server.hits("/hang") == 0 {
        assert!(std::time::Instant::now() < deadline, "the server never read the /hang request");
        std::thread::yield_now();
    }
    assert_eq!(server.max_in_flight(), 1);
    drop(server);
    let mut rest = Vec::new();
    held.read_to_end(&mut rest).expect("the held connection ends, unanswered");
    assert!(rest.is_empty(), "a held request got an answer: {:?}", String::from_utf8_lossy(&rest));
}

#[test]
fn https_to_a_server_that_does_not_speak_tls_is_a_tls_error() {
    // A server that answers plain HTTP at once, whatever it is sent (a TLS hello included).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let plain = std::thread::spawn(move || {
        use std::io::Write;
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let url = format!("https://127.0.0.1:{port}/");
    let out = fetch(std::slice::from_ref(&url), "retries = 0\ntimeout_ms = 5000");
    let r = &out[&url];
    assert_eq!(r["status"], Value::Null);
    let error = r["error"].as_str().expect("an error");
    assert!(error.starts_with("tls error: "), "{error}");
    plain.join().expect("plain server");
}
