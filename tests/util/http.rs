//! A small HTTP/1.1 test server for the `fetch` tests: std only, bound to 127.0.0.1 on a port
//! the OS chooses, one thread per connection, keep-alive honoured, every answer with a
//! `Content-Length`. Its routes each produce one behaviour under test (an error status, a
//! hang, a redirect loop, a big or non-UTF-8 body, a slow answer), and it records what it saw:
//! every request, and the largest number of requests in flight at once.
//!
//! It can also stand in for an HTTP proxy: it answers absolute-form requests
//! (`GET http://any.host/ok`) as if they were for itself, and after a `CONNECT` it serves
//! the tunnel itself too, so a client configured with it as proxy reaches it whatever host
//! the URL names.
//!
//! Dropping the server stops it: the acceptor and every connection thread are woken (held
//! `/hang` and `/slow` requests released unanswered, idle keep-alive reads ended) and joined.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The size of the `/big` body.
pub const BIG_BYTES: usize = 3_000_000;
/// How long `/slow` waits before answering, unless the query says `ms=N`.
pub const SLOW_MS: u64 = 300;
/// The `/latin1` body: ISO-8859-1 text (0xE9 is "é"), and 0xFF, which is never valid UTF-8.
pub const LATIN1_BODY: &[u8] = b"caf\xe9 cr\xe8me, na\xefve \xff Python\n";
/// The `/ok` body.
pub const OK_BODY: &str = "Hello from the test server. We like Python here.\n";

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `CONNECT`, ...
    pub method: String,
    /// The request target as sent: `/ok?i=1`, `http://host/ok` (through a proxy) or
    /// `host:80` (CONNECT).
    pub target: String,
    /// The path of the target, without query: `/ok`.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Header names lowercased, values trimmed, in the order received.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The value of `key` in the target's query string.
    pub fn query(&self, key: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// A running test server; dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when the server stops (held requests wait on it).
    stop: Condvar,
}

#[derive(Default)]
struct State {
    stopping: bool,
    in_flight: usize,
    max_in_flight: usize,
    requests: Vec<Request>,
    flaky_hits: usize,
    /// A clone of every accepted connection, to shut them all down on drop.
    conns: Vec<TcpStream>,
    workers: Vec<JoinHandle<()>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not hide the test's own failure behind a poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Server {
    /// Bind 127.0.0.1 on a free port and start accepting.
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test HTTP server");
        let addr = listener.local_addr().expect("local address of the test HTTP server");
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), stop: Condvar::new() });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(&listener, &shared))
        };
        Server { addr, shared, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// How many requests had path `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.shared.lock().requests.iter().filter(|r| r.path == path).count()
    }

    /// The largest number of requests in flight at once: read, and not yet answered.
    pub fn max_in_flight(&self) -> usize {
        self.shared.lock().max_in_flight
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.stopping = true;
            for c in &st.conns {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
        self.shared.stop.notify_all();
        // Wake the acceptor, blocked in accept(); it sees `stopping` and returns. If the
        // connect fails, the listener is already gone, which also ends accept().
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let workers = std::mem::take(&mut self.shared.lock().workers);
        for w in workers {
            let _ = w.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        let mut st = shared.lock();
        if st.stopping {
            return;
        }
        // accept() errors (a connection reset before it was accepted) only lose that one.
        let Ok(conn) = conn else { continue };
        let Ok(clone) = conn.try_clone() else { continue };
        st.conns.push(clone);
        let worker = {
            let shared = Arc::clone(shared);
            std::thread::spawn(move || serve_connection(conn, &shared))
        };
        st.workers.push(worker);
    }
}

/// What to send back for one request.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer { status, headers: vec![("Content-Type", "text/plain".to_string())], body: body.into() }
    }

    fn redirect(to: String) -> Answer {
        let mut a = Answer::new(302, format!("see {to}\n"));
        a.headers.push(("Location", to));
        a
    }
}

fn serve_connection(conn: TcpStream, shared: &Shared) {
    let Ok(read_half) = conn.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut writer = conn;
    loop {
        let req = match read_request(&mut reader) {
            Ok(Some(req)) => req,
            // End of stream, a reset, or the server shutting the socket down.
            Ok(None) | Err(_) => return,
        };
        let close = wants_close(&req);
        {
            let mut st = shared.lock();
            st.in_flight += 1;
            st.max_in_flight = st.max_in_flight.max(st.in_flight);
            st.requests.push(req.clone());
        }
        let answer = route(&req, shared);
        // Leave the in-flight count before answering: a client may start its next request
        // as soon as it reads this answer, and must not be counted twice.
        shared.lock().in_flight -= 1;
        let Some(answer) = answer else { return };
        if req.method == "CONNECT" && answer.status == 200 {
            // Proxy tunnel: the client now talks to "the target", which is this server too.
            if writer.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").is_err() {
                return;
            }
            continue;
        }
        if write_answer(&mut writer, &answer, &req, close).is_err() || close {
            let _ = writer.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// Whether the connection ends after this answer: HTTP/1.1 keeps it unless told to close,
/// HTTP/1.0 closes it unless told to keep it.
fn wants_close(req: &Request) -> bool {
    let conn = req.header("connection").unwrap_or("").to_ascii_lowercase();
    let has = |token: &str| conn.split(',').any(|t| t.trim() == token);
    if req.version == "HTTP/1.0" {
        !has("keep-alive")
    } else {
        has("close")
    }
}

/// Read one request (line, headers, and a `Content-Length` body, discarded); None at a clean
/// end of stream.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    // Tolerate empty lines before a request (RFC 9112 section 2.2).
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad request line {line:?}")));
    };
    let version = parts.next().unwrap_or("HTTP/1.0").to_string();
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let req = Request { path: path_of(&method, &target), method, target, version, headers };
    let body_len: u64 = req.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    io::copy(&mut reader.by_ref().take(body_len), &mut io::sink())?;
    Ok(Some(req))
}

/// The path of a request target: origin form `/p?q`, absolute form `http://h/p?q`.
fn path_of(method: &str, target: &str) -> String {
    if method == "CONNECT" {
        return String::new();
    }
    let rest = match target.split_once("://") {
        Some((_, after_scheme)) => after_scheme.find('/').map_or("/", |i| &after_scheme[i..]),
        None => target,
    };
    rest.split(['?', '#']).next().unwrap_or("/").to_string()
}

/// The answer to `req`, or None to drop the connection unanswered (the server is stopping).
fn route(req: &Request, shared: &Shared) -> Option<Answer> {
    if req.method == "CONNECT" {
        return Some(Answer::new(200, ""));
    }
    let answer = match req.path.as_str() {
        "/ok" => Answer::new(200, OK_BODY),
        "/forbidden" => Answer::new(403, "forbidden\n"),
        "/missing" => Answer::new(404, "no such page\n"),
        "/error" => Answer::new(500, "something broke\n"),
        "/flaky" => {
            let first = {
                let mut st = shared.lock();
                st.flaky_hits += 1;
                st.flaky_hits == 1
            };
            if first {
                Answer::new(503, "try again\n")
            } else {
                Answer::new(200, "flaky, but Python got through\n")
            }
        }
        "/hang" => {
            wait_until_stopped(shared, None);
            return None;
        }
        "/slow" => {
            let ms = req.query("ms").and_then(|v| v.parse().ok()).unwrap_or(SLOW_MS);
            if wait_until_stopped(shared, Some(Duration::from_millis(ms))) {
                return None;
            }
            Answer::new(200, "slow, and Python\n")
        }
        "/loop" => Answer::redirect(origin_form(&req.target)),
        "/redirect" => Answer::redirect("/ok".to_string()),
        "/big" => Answer::new(200, big_body()),
        "/latin1" => Answer::new(200, LATIN1_BODY),
        _ => Answer::new(404, "no such route\n"),
    };
    Some(answer)
}

/// `/p?q` of a target in origin or absolute form.
fn origin_form(target: &str) -> String {
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/".to_string(), |i| rest[i..].to_string()),
        None => target.to_string(),
    }
}

/// ASCII, so any prefix of it is valid UTF-8 and its length in bytes is its length in chars.
pub fn big_body() -> Vec<u8> {
    b"0123456789abcdef".iter().copied().cycle().take(BIG_BYTES).collect()
}

/// Block until the server stops or `limit` passes; true if the server stopped.
fn wait_until_stopped(shared: &Shared, limit: Option<Duration>) -> bool {
    let deadline = limit.map(|l| Instant::now() + l);
    let mut st = shared.lock();
    loop {
        if st.stopping {
            return true;
        }
        st = match deadline {
            None => shared.stop.wait(st).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let Some(left) = d.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) else {
                    return false;
                };
                shared.stop.wait_timeout(st, left).unwrap_or_else(|e| e.into_inner()).0
            }
        };
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn write_answer(w: &mut TcpStream, a: &Answer, req: &Request, close: bool) -> io::Result<()> {
    let (method, version) = (req.method.as_str(), req.version.as_str());
    let mut head = format!("HTTP/1.1 {} {}\r\nContent-Length: {}\r\n", a.status, reason(a.status), a.body.len());
    for (k, v) in &a.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    } else if version == "HTTP/1.0" {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    if method != "HEAD" {
        w.write_all(&a.body)?;
    }
    w.flush()
}
