//! The metrics thread: answers HTTP requests on the bound listener with the current
//! exposition, one connection at a time, and writes `--metrics-file` every
//! [`super::FILE_EVERY`]. Small on purpose: a `poll(2)` over the listener and a stop pipe, a
//! request head of at most 8 KiB read within a second, `Connection: close`; no async runtime,
//! and nothing the launcher's loop waits for (it only copies figures into the board).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Exporter;

/// The largest request head read; a longer one is answered 431.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request, and to take the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);
/// The Content-Type of OpenMetrics, for a scraper that asks for it (Prometheus does).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The running metrics thread; dropping it stops it (within [`CLIENT_TIMEOUT`] or so).
pub struct Server {
    stop: Option<OwnedFd>,
    handle: Option<JoinHandle<()>>,
}

impl Server {
    /// Start the thread for `exporter`.
    pub fn start(exporter: Exporter) -> io::Result<Server> {
        let (stop_r, stop_w) = crate::launch::logs::pipe()?;
        let handle = std::thread::Builder::new().name("metrics".into()).spawn(move || {
            crate::launch::signals::block_in_this_thread();
            run(&exporter, &stop_r);
        })?;
        Ok(Server { stop: Some(stop_w), handle: Some(handle) })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The pipe's end of file wakes the thread, which returns.
        drop(self.stop.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Until `stop` ends: answer requests, write the file when it is due.
fn run(exporter: &Exporter, stop: &OwnedFd) {
    let listener = exporter.listener.clone();
    let mut next_file = Instant::now() + super::FILE_EVERY;
    let mut file_failed = false;
    loop {
        let timeout = match exporter.file {
            Some(_) => next_file.saturating_duration_since(Instant::now()).as_millis() as i32,
            None => -1,
        };
        let mut fds = vec![libc::pollfd { fd: stop.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        if let Some(l) = &listener {
            fds.push(libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        // SAFETY: fds is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            continue;
        }
        if fds[0].revents != 0 {
            return;
        }
        if let Some(l) = listener.as_ref().filter(|_| fds.get(1).is_some_and(|p| p.revents != 0)) {
            // The listener does not block: take every connection waiting, then poll again.
            while let Ok((stream, _)) = l.accept() {
                let _ = answer(stream, exporter);
            }
        }
        if exporter.file.is_some() && Instant::now() >= next_file {
            next_file = Instant::now() + super::FILE_EVERY;
            // Said once, not every few seconds; the file is written again at the end.
            file_failed = if file_failed { exporter.write_file().is_err() } else { !exporter.write_file_or_say() };
        }
    }
}

/// Read one request from `stream` and answer it.
fn answer(mut stream: TcpStream, exporter: &Exporter) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let response = match head {
        Head::TooLong => status_only("431 Request Header Fields Too Large"),
        Head::Bad => status_only("400 Bad Request"),
        Head::Request { method, accept } => match method.as_str() {
            "GET" | "HEAD" => {
                let openmetrics = accept.contains("application/openmetrics-text");
                let body = exporter.board().render(openmetrics);
                let content_type =
                    if openmetrics { OPENMETRICS } else { prometheus_client::encoding::prometheus_text::CONTENT_TYPE };
                let mut response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if method == "GET" {
                    response.push_str(&body);
                }
                response
            }
            _ => {
                "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            }
        },
    };
    stream.write_all(response.as_bytes())
}

/// What a client asked.
enum Head {
    /// A request: its method, and its `Accept` header (empty without one).
    Request { method: String, accept: String },
    /// Not HTTP.
    Bad,
    /// A head longer than [`MAX_HEAD`].
    TooLong,
}

/// Read a request head (up to the blank line) from `stream`.
fn read_head(stream: &mut TcpStream) -> io::Result<Head> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Ok(Head::TooLong);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(parse_head(&String::from_utf8_lossy(&head)))
}

/// A request head's method and `Accept` header.
fn parse_head(head: &str) -> Head {
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(_path), Some(version)) = (request.next(), request.next(), request.next()) else {
        return Head::Bad;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() {
        return Head::Bad;
    }
    let accept = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("accept"))
        .map(|(_, value)| value.trim().to_string())
        .unwrap_or_default();
    Head::Request { method: method.to_string(), accept }
}

/// A response with a status and no body.
fn status_only(status: &str) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_gives_its_method_and_accept_header() {
        let head = "GET /metrics HTTP/1.1\r\nHost: x\r\naccept: application/openmetrics-text;version=1.0.0\r\n\r\n";
        assert!(matches!(
            parse_head(head),
            Head::Request { method, accept } if method == "GET" && accept == "application/openmetrics-text;version=1.0.0"
        ));
        assert!(matches!(parse_head("GET / HTTP/1.0\r\n\r\n"), Head::Request { accept, .. } if accept.is_empty()));
        assert!(matches!(parse_head("hello\r\n\r\n"), Head::Bad));
        assert!(matches!(parse_head("GET / SMTP\r\n\r\n"), Head::Bad));
    }
}
