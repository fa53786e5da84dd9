//! Fetching one URL over HTTP(S) with timeouts, retries, redirects and a body cap, turning
//! every outcome (an answer or a failure) into the fields a `fetch` record carries.

use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// How requests are made; from the `fetch` node's options.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The whole request, redirects included.
    pub timeout: Duration,
    /// Extra attempts after a connect error, a timeout or a 5xx answer.
    pub retries: u32,
    /// Bodies are cut after this many bytes.
    pub max_body_bytes: u64,
    /// The User-Agent header.
    pub user_agent: String,
    /// Redirects followed before giving up.
    pub max_redirects: u32,
    /// Idle connections kept for reuse: the requests in flight at once.
    pub pool_size: usize,
    /// Send every request to this address instead of the URL's host (like curl's
    /// `--connect-to`); the Host header keeps the URL's host. `host:port` or `http://host:port`.
    pub connect_to: Option<String>,
}

/// What fetching one URL gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The HTTP status of the final answer, if there was one.
    pub status: Option<u16>,
    /// The body (possibly truncated), invalid UTF-8 replaced; empty without an answer.
    pub body: String,
    /// Why the fetch did not fully succeed, short and specific; None if it did.
    pub error: Option<String>,
    /// The URL's host (without port), empty if it has none.
    pub host: String,
    /// Wall time over every attempt.
    pub elapsed: Duration,
}

/// A reusable HTTP client (connection pool shared by the threads of one node).
pub struct Client {
    agent: ureq::Agent,
    config: ClientConfig,
}

/// One attempt's outcome, before retries are decided.
enum Attempt {
    Answered { status: u16, body: String, truncated: bool },
    Failed { error: String, retryable: bool },
}

impl Client {
    /// A client for `config`; fails only on a `connect_to` that is no address.
    pub fn new(config: ClientConfig) -> Result<Client, String> {
        let agent_config = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .max_redirects(config.max_redirects)
            .max_redirects_will_error(true)
            .user_agent(config.user_agent.as_str())
            // Keep a connection per request in flight: ureq keeps 10 in all by default, and
            // with more in flight most requests would pay for a new connection.
            .max_idle_connections(config.pool_size.max(10))
            .max_idle_connections_per_host(config.pool_size.max(3))
            .build();
        let agent = match &config.connect_to {
            Some(target) => {
                let addr = connect_address(target)?;
                ureq::Agent::with_parts(agent_config, DefaultConnector::default(), ConnectTo(addr))
            }
            None => agent_config.into(),
        };
        Ok(Client { agent, config })
    }

    /// Fetch `url`, retrying retryable failures with doubling backoff (100 ms, 200 ms, ...).
    pub fn fetch(&self, url: &str) -> Answer {
        let started = Instant::now();
        let (uri, host) = match check_url(url) {
            Ok(ok) => ok,
            Err((error, host)) => return failure(error, host, started),
        };
        let mut attempt = 0;
        loop {
            let outcome = self.attempt(&uri);
            let retry = match &outcome {
                Attempt::Answered { status, .. } => *status >= 500,
                Attempt::Failed { retryable, .. } => *retryable,
            };
            if retry && attempt < self.config.retries {
                std::thread::sleep(Duration::from_millis(100 << attempt.min(6)));
                attempt += 1;
                continue;
            }
            return match outcome {
                Attempt::Answered { status, body, truncated } => Answer {
                    status: Some(status),
                    body,
                    error: if truncated {
                        Some(format!("body over {} bytes, truncated", self.config.max_body_bytes))
                    } else if status >= 400 {
                        Some(status_text(status))
                    } else {
                        None
                    },
                    host,
                    elapsed: started.elapsed(),
                },
                Attempt::Failed { error, .. } => failure(error, host, started),
            };
        }
    }

    fn attempt(&self, uri: &Uri) -> Attempt {
        let mut response = match self.agent.get(uri).call() {
            Ok(r) => r,
            Err(e) => return self.failed(e),
        };
        let status = response.status().as_u16();
        let cap = self.config.max_body_bytes;
        let mut bytes = Vec::new();
        let read = response.body_mut().as_reader().take(cap + 1).read_to_end(&mut bytes);
        if let Err(e) = read {
            return match e.into_inner().and_then(|inner| inner.downcast::<ureq::Error>().ok()) {
                Some(e) => self.failed(*e),
                None => Attempt::Failed { error: "connection error while reading the body".into(), retryable: true },
            };
        }
        let truncated = bytes.len() as u64 > cap;
        bytes.truncate(cap as usize);
        Attempt::Answered { status, body: String::from_utf8_lossy(&bytes).into_owned(), truncated }
    }

    fn failed(&self, e: ureq::Error) -> Attempt {
        let (error, retryable) = describe(&e, self.config.timeout, self.config.max_redirects);
        Attempt::Failed { error, retryable }
    }
}

/// Resolves every host to one fixed address: what `connect_to` means.
#[derive(Debug)]
struct ConnectTo(SocketAddr);

impl Resolver for ConnectTo {
    fn resolve(&self, _: &Uri, _: &ureq::config::Config, _: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut addrs = self.empty();
        addrs.push(self.0);
        Ok(addrs)
    }
}

/// `127.0.0.1:8080` from `127.0.0.1:8080` or `http://127.0.0.1:8080[/]` (names resolved).
pub fn connect_address(target: &str) -> Result<SocketAddr, String> {
    let bare = target.strip_prefix("http://").unwrap_or(target).trim_end_matches('/');
    bare.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("`connect_to` is not an address: `{target}`"))
}

fn failure(error: String, host: String, started: Instant) -> Answer {
    Answer { status: None, body: String::new(), error: Some(error), host, elapsed: started.elapsed() }
}

/// Parse `url`, accepting only http and https with a host; returns the URI and the host, or
/// the error and whatever host the URL names.
fn check_url(url: &str) -> Result<(Uri, String), (String, String)> {
    let invalid = || ("invalid url".to_string(), String::new());
    let uri: Uri = url.trim().parse().map_err(|_| invalid())?;
    let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_string();
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => return Err((format!("unsupported scheme `{other}`"), host)),
        None => return Err(invalid()),
    }
    if host.is_empty() {
        return Err(invalid());
    }
    Ok((uri, host))
}

/// `"403 Forbidden"`: the code and its canonical reason.
fn status_text(status: u16) -> String {
    let reason = ureq::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => format!("{status}"),
    }
}

/// A failure in words, and whether it is worth another attempt (connect errors, timeouts).
fn describe(e: &ureq::Error, timeout: Duration, max_redirects: u32) -> (String, bool) {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Timeout(_) => (format!("timeout after {} ms", timeout.as_millis()), true),
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => ("connection refused".into(), true),
            ErrorKind::TimedOut => (format!("timeout after {} ms", timeout.as_millis()), true),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof => {
                ("connection closed by the server".into(), true)
            }
            // rustls reports a failed handshake as invalid data.
            ErrorKind::InvalidData => (format!("tls error: {io}"), false),
            // getaddrinfo's failures come as plain I/O errors.
            _ if io.to_string().contains("lookup address") => ("host not found".into(), true),
            _ => (format!("connection error: {io}"), true),
        },
        ureq::Error::ConnectionFailed => ("connection failed".into(), true),
        ureq::Error::HostNotFound => ("host not found".into(), true),
        ureq::Error::TooManyRedirects => (format!("too many redirects (more than {max_redirects})"), false),
        ureq::Error::RedirectFailed => ("redirect failed".into(), false),
        ureq::Error::BadUri(_) => ("invalid url".into(), false),
        ureq::Error::Tls(msg) => (format!("tls error: {msg}"), false),
        other => {
            let text = other.to_string();
            if text.to_lowercase().contains("tls") || text.contains("certificate") {
                (format!("tls error: {text}"), false)
            } else {
                (text, false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_any_request() {
        assert_eq!(check_url("ftp://h/x").unwrap_err(), ("unsupported scheme `ftp`".into(), "h".into()));
        assert_eq!(check_url("not a url").unwrap_err().0, "invalid url");
        assert_eq!(check_url("http://").unwrap_err().0, "invalid url");
        assert_eq!(check_url("http://a.test:8080/x").unwrap().1, "a.test");
        assert_eq!(check_url("http://[::1]:80/").unwrap().1, "::1");
    }

    #[test]
    fn statuses_read_like_http() {
        assert_eq!(status_text(403), "403 Forbidden");
        assert_eq!(status_text(503), "503 Service Unavailable");
        assert_eq!(status_text(599), "599");
    }
}
