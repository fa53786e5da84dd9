//! A static site over HTTP on 127.0.0.1 (port chosen by the OS), for offline demos and
//! benchmarks: files under a directory, with chosen pages forbidden (403) or slow.
//!
//! Requests are routed by host: `GET /about.html` with `Host: acme.test` (a client told to
//! connect here for every host, like `fetch`'s `connect_to`), or the absolute form
//! `GET http://acme.test/about.html` (as sent to a proxy), is served from
//! `<dir>/acme.test/about.html`. So realistic URLs on made-up hosts can be fetched offline,
//! each record keeping its own host.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the site serves and how; from the `serve` node's options.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// The directory served.
    pub dir: PathBuf,
    /// A delay before every answer.
    pub latency: Duration,
    /// Pages answered with 403: prefixes of `host/path` (e.g. `"acme.test/"`, `"a.test/x.html"`).
    pub forbidden: Vec<String>,
    /// Pages answered after `slow_delay`: prefixes of `host/path`.
    pub slow: Vec<String>,
    /// The extra delay of slow pages.
    pub slow_delay: Duration,
}

/// A running site; stops accepting when dropped.
pub struct Site {
    url: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
    addr: std::net::SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl Site {
    /// Bind 127.0.0.1 on a free port and serve in the background: a thread per connection
    /// (keep-alive; slow pages hold up only their own connection).
    pub fn start(config: SiteConfig) -> io::Result<Site> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let config = Arc::new(config);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let config = Arc::clone(&config);
                std::thread::spawn(move || {
                    let _ = serve_connection(&config, stream);
                });
            }
        });
        Ok(Site { url: format!("http://{addr}"), stop, addr, acceptor: Some(acceptor) })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the acceptor, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Answer the requests of one connection until the client closes it or asks to.
fn serve_connection(config: &SiteConfig, stream: TcpStream) -> io::Result<()> {
    // Each answer goes out at once: without this, Nagle's algorithm and the client's
    // delayed ACK can hold an answer back ~40 ms.
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let Some(head) = read_head(&mut reader)? else { return Ok(()) };
        let mut lines = head.lines();
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split_whitespace();
        let (method, target, version) =
            (parts.next().unwrap_or(""), parts.next().unwrap_or("/"), parts.next().unwrap_or(""));
        let mut host = None;
        let mut close = version == "HTTP/1.0";
        let mut body_len = 0usize;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "host" => host = Some(value.to_string()),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                "content-length" => body_len = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        io::copy(&mut (&mut reader).take(body_len as u64), &mut io::sink())?;
        let (status, reason, body, content_type) = answer(config, method, target, host.as_deref());
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}; charset=utf-8\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        let mut response = head.into_bytes();
        if method != "HEAD" {
            response.extend_from_slice(&body);
        }
        writer.write_all(&response)?;
        if close {
            return Ok(());
        }
    }
}

/// The request head up to the empty line, or None when the client closed the connection.
fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    loop {
        let n = reader.read_until(b'\n', &mut head)?;
        if n == 0 {
            return Ok(None);
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") || head == b"\r\n" {
            if head.trim_ascii().is_empty() {
                head.clear();
                continue; // stray blank lines between requests
            }
            return Ok(Some(String::from_utf8_lossy(&head).into_owned()));
        }
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
        }
    }
}

/// Status, reason, body and content type for one request.
fn answer(
    config: &SiteConfig,
    method: &str,
    target: &str,
    host_header: Option<&str>,
) -> (u16, &'static str, Vec<u8>, &'static str) {
    let (host, path) = locate(target, host_header);
    let key = format!("{host}{path}");
    let mut delay = config.latency;
    if config.slow.iter().any(|p| key.starts_with(p.as_str())) {
        delay += config.slow_delay;
    }
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    if method != "GET" && method != "HEAD" {
        return (405, "Method Not Allowed", b"method not allowed\n".to_vec(), "text/plain");
    }
    if config.forbidden.iter().any(|p| key.starts_with(p.as_str())) {
        return (403, "Forbidden", b"forbidden\n".to_vec(), "text/plain");
    }
    match file_for(&config.dir, &host, &path).and_then(|f| fs::read(&f).ok().map(|b| (f, b))) {
        Some((file, bytes)) => (200, "OK", bytes, content_type(&file)),
        None => (404, "Not Found", b"not found\n".to_vec(), "text/plain"),
    }
}

/// The host and path of a request target: absolute (`http://h/p`, as sent to a proxy) or a
/// path with the Host header. The path has no query and starts with `/`.
fn locate(target: &str, host_header: Option<&str>) -> (String, String) {
    let (host, path) = match target.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        },
        None => (host_header.unwrap_or(""), target),
    };
    let host = host.rsplit_once(':').map_or(host, |(h, port)| if port.parse::<u16>().is_ok() { h } else { host });
    let path = path.split(['?', '#']).next().unwrap_or("/");
    (host.to_ascii_lowercase(), if path.starts_with('/') { path.to_string() } else { format!("/{path}") })
}

/// The file for `host` and `path`: `<dir>/<host>/<path>` when the host has a directory,
/// else `<dir>/<path>`; `index.html` for a directory. None for anything outside `dir`.
fn file_for(dir: &Path, host: &str, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let host_dir = dir.join(host);
    let root = if !host.is_empty() && !host.contains(['/', '\\']) && host != ".." && host_dir.is_dir() {
        host_dir
    } else {
        dir.to_path_buf()
    };
    let file = root.join(relative);
    let file = if file.is_dir() { file.join("index.html") } else { file };
    file.is_file().then_some(file)
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html",
        Some("json") => "application/json",
        _ => "text/plain",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_origin_targets_locate_the_same_page() {
        assert_eq!(locate("http://Acme.test/a.html?x=1", None), ("acme.test".into(), "/a.html".into()));
        assert_eq!(locate("/a.html", Some("acme.test:8080")), ("acme.test".into(), "/a.html".into()));
        assert_eq!(locate("http://acme.test", None), ("acme.test".into(), "/".into()));
    }

    #[test]
    fn paths_cannot_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "a").unwrap();
        assert!(file_for(dir.path(), "", "/a.txt").is_some());
        assert!(file_for(dir.path(), "", "/../a.txt").is_none());
        assert!(file_for(dir.path(), "..", "/a.txt").is_some_and(|f| f.starts_with(dir.path())));
    }
}
