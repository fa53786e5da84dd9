//! A static site over HTTP on 127.0.0.1 (port chosen by the OS), for offline demos and
//! benchmarks: files under a directory, with chosen pages forbidden (403) or slow.
//!
//! Requests are routed by host: `GET /about.html` with `Host: acme.test` (a client told to
//! connect here for every host, like `fetch`'s `connect_to`), or the absolute form
//! `GET http://acme.test/about.html` (as sent to a proxy), is served from
//! `<dir>/acme.test/about.html`. So realistic URLs on made-up hosts can be fetched offline,
//! each record keeping its own host.

use std::fs;
use std::io;
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

/// A running site; stops when dropped.
pub struct Site {
    server: Arc<tiny_http::Server>,
    acceptor: Option<JoinHandle<()>>,
    url: String,
}

impl Site {
    /// Bind 127.0.0.1 on a free port and serve in the background.
    pub fn start(config: SiteConfig) -> io::Result<Site> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").map_err(io::Error::other)?);
        let port = server.server_addr().to_ip().map(|a| a.port()).ok_or_else(|| io::Error::other("no port"))?;
        let config = Arc::new(config);
        let accepting = Arc::clone(&server);
        // One thread per request: slow pages must not hold up the others.
        let acceptor = std::thread::spawn(move || {
            for request in accepting.incoming_requests() {
                let config = Arc::clone(&config);
                std::thread::spawn(move || answer(&config, request));
            }
        });
        Ok(Site { server, acceptor: Some(acceptor), url: format!("http://127.0.0.1:{port}") })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn answer(config: &SiteConfig, request: tiny_http::Request) {
    let host_header = request.headers().iter().find(|h| h.field.equiv("Host")).map(|h| h.value.as_str().to_string());
    let (host, path) = locate(request.url(), host_header.as_deref());
    let key = format!("{host}{path}");
    let mut delay = config.latency;
    if config.slow.iter().any(|p| key.starts_with(p.as_str())) {
        delay += config.slow_delay;
    }
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let (status, body, content_type) = if !matches!(request.method(), tiny_http::Method::Get | tiny_http::Method::Head)
    {
        (405, b"method not allowed\n".to_vec(), "text/plain")
    } else if config.forbidden.iter().any(|p| key.starts_with(p.as_str())) {
        (403, b"forbidden\n".to_vec(), "text/plain")
    } else {
        match file_for(&config.dir, &host, &path).and_then(|f| fs::read(&f).ok().map(|b| (f, b))) {
            Some((file, bytes)) => (200, bytes, content_type(&file)),
            None => (404, b"not found\n".to_vec(), "text/plain"),
        }
    };
    let header = tiny_http::Header::from_bytes("Content-Type", format!("{content_type}; charset=utf-8"))
        .expect("a valid header");
    let response = tiny_http::Response::from_data(body).with_status_code(status).with_header(header);
    // The client may have gone (a timeout); nothing to do about it here.
    let _ = request.respond(response);
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
