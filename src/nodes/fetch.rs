//! `fetch`: reads a URL from each record and emits the record enriched with the answer
//! (`status`, `body`, `error`, `host`, `elapsed_ms`). `concurrency` requests per replica are
//! in flight at once, on worker threads; the node's one ZeroMQ thread hands out URLs and
//! sends results as they come (the workers wake it through a pipe). A bad URL or a failed
//! request becomes a record with an `error`, never the end of the stream.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::client::{connect_address, Answer, Client, ClientConfig};
use crate::record::{Record, Value};
use crate::runtime::{Event, Node, NodeError, Waker};
use crate::topology::diagnostic::Diagnostics;
use crate::topology::raw::Table;

/// Options of a `fetch` node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchConfig {
    /// The field holding the URL.
    pub url_field: String,
    /// Requests in flight per replica.
    pub concurrency: u32,
    /// Limit for a whole request, redirects included.
    pub timeout_ms: u64,
    /// Extra attempts for connect errors, timeouts and 5xx answers.
    pub retries: u32,
    /// Bodies are truncated after this many bytes.
    pub max_body_bytes: u64,
    /// The User-Agent header.
    pub user_agent: String,
    /// Redirects followed before giving up.
    pub max_redirects: u32,
    /// Send every request to this address instead of the URL's host (curl's `--connect-to`):
    /// `host:port`, `http://host:port`, or a value another node publishes (`${site.url}`).
    pub connect_to: Option<String>,
}

impl FetchConfig {
    /// Option keys this kind accepts.
    pub const KEYS: &'static [&'static str] = &[
        "url_field",
        "concurrency",
        "timeout_ms",
        "retries",
        "max_body_bytes",
        "user_agent",
        "max_redirects",
        "connect_to",
    ];

    /// Validate the options in `t`.
    pub fn from_table(t: &Table<'_, '_>, diags: &mut Diagnostics) -> Option<Self> {
        let int = |key: &str, min: i64, max: i64, default: i64, diags: &mut Diagnostics| -> i64 {
            match t.int(key, diags) {
                Some(v) if (min..=max).contains(v.get_ref()) => *v.get_ref(),
                Some(v) => {
                    diags.error(
                        v.span(),
                        format!("`{key}` in {} is {}; it must be between {min} and {max}", t.what(), v.get_ref()),
                    );
                    default
                }
                None => default,
            }
        };
        let url_field = t.non_empty_str("url_field", diags).map_or_else(|| "url".to_string(), |s| s.into_inner());
        let concurrency = int("concurrency", 1, 1024, 16, diags) as u32;
        let timeout_ms = int("timeout_ms", 1, 3_600_000, 10_000, diags) as u64;
        let retries = int("retries", 0, 10, 1, diags) as u32;
        let max_body_bytes = int("max_body_bytes", 1, 1 << 34, 10 * 1024 * 1024, diags) as u64;
        let max_redirects = int("max_redirects", 0, 100, 10, diags) as u32;
        let user_agent = t
            .non_empty_str("user_agent", diags)
            .map_or_else(|| concat!("procnet/", env!("CARGO_PKG_VERSION")).to_string(), |s| s.into_inner());
        let connect_to = t.non_empty_str("connect_to", diags).and_then(|p| {
            let text = p.get_ref();
            let ok = reference(text).is_some() || connect_address(text).is_ok();
            if !ok {
                diags.error(
                    p.span(),
                    format!(
                        "`connect_to` in {} must be `host:port`, `http://host:port` or a published value like \"${{site.url}}\", found `{text}`",
                        t.what()
                    ),
                );
            }
            ok.then(|| p.into_inner())
        });
        Some(FetchConfig {
            url_field,
            concurrency,
            timeout_ms,
            retries,
            max_body_bytes,
            user_agent,
            max_redirects,
            connect_to,
        })
    }

    /// The published values this node refers to, as (node, key).
    pub fn references(&self) -> Vec<(String, String)> {
        self.connect_to.as_deref().and_then(reference).into_iter().collect()
    }

    /// Fetch every input record's URL, `concurrency` at a time.
    pub fn run(&self, node: &mut Node) -> Result<(), NodeError> {
        let connect_to = match self.connect_to.as_deref() {
            Some(p) => Some(match reference(p) {
                Some((n, k)) => node
                    .var(&format!("{n}.{k}"))
                    .ok_or_else(|| {
                        NodeError::Protocol(format!("the launcher did not pass `{n}.{k}` (for `connect_to`)"))
                    })?
                    .to_string(),
                None => p.to_string(),
            }),
            None => None,
        };
        let client = Client::new(ClientConfig {
            timeout: Duration::from_millis(self.timeout_ms),
            retries: self.retries,
            max_body_bytes: self.max_body_bytes,
            user_agent: self.user_agent.clone(),
            max_redirects: self.max_redirects,
            connect_to,
            pool_size: self.concurrency as usize,
        })
        .map_err(NodeError::Env)?;
        let pool = Pool::start(Arc::new(client), self.url_field.clone(), self.concurrency as usize)?;
        let result = self.pump(node, &pool);
        pool.stop();
        result
    }

    /// Hand out records while fewer than `concurrency` are in flight; send results as they come.
    fn pump(&self, node: &mut Node, pool: &Pool) -> Result<(), NodeError> {
        let limit = self.concurrency as usize;
        let (mut in_flight, mut ended) = (0usize, false);
        loop {
            while let Ok(done) = pool.results.try_recv() {
                in_flight -= 1;
                deliver(node, &done)?;
            }
            if ended && in_flight == 0 {
                return Ok(());
            }
            if !ended && in_flight < limit {
                match node.next_event(Some(&pool.waker))? {
                    Event::Record(r) => {
                        pool.jobs.send(r).expect("workers live until the pool stops");
                        in_flight += 1;
                    }
                    Event::Ended => ended = true,
                    Event::Woken => {}
                }
            } else {
                // Every slot is busy (or the input is over): wait for a result.
                node.flush()?;
                let done = pool.results.recv().expect("workers live until the pool stops");
                in_flight -= 1;
                deliver(node, &done)?;
            }
        }
    }
}

/// Send a fetched record on, counting it as an error if it has one.
fn deliver(node: &mut Node, record: &Record) -> Result<(), NodeError> {
    if record.get("error").is_some_and(|e| !e.is_nil()) {
        node.add_error();
    }
    node.send(record)
}

/// `${node.key}` in `text`, as (node, key).
fn reference(text: &str) -> Option<(String, String)> {
    let inner = text.strip_prefix("${")?.strip_suffix('}')?;
    let (node, key) = inner.split_once('.')?;
    (!node.is_empty() && !key.is_empty()).then(|| (node.to_string(), key.to_string()))
}

/// Worker threads sharing one client; they take records from `jobs` and put results back.
struct Pool {
    jobs: mpsc::SyncSender<Record>,
    results: mpsc::Receiver<Record>,
    waker: Arc<Waker>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    fn start(client: Arc<Client>, url_field: String, size: usize) -> Result<Pool, NodeError> {
        let (jobs, queue) = mpsc::sync_channel::<Record>(size);
        let queue = Arc::new(Mutex::new(queue));
        let (done, results) = mpsc::channel();
        let waker = Arc::new(Waker::new()?);
        let workers = (0..size)
            .map(|_| {
                let (queue, done, waker, client) =
                    (Arc::clone(&queue), done.clone(), Arc::clone(&waker), Arc::clone(&client));
                let url_field = url_field.clone();
                std::thread::spawn(move || loop {
                    let next = queue.lock().expect("a worker never panics holding the queue").recv();
                    let Ok(mut record) = next else { return };
                    let answer = match record.get(&url_field) {
                        Some(Value::String(url)) if url.as_str().is_some() => {
                            client.fetch(url.as_str().expect("checked"))
                        }
                        _ => Answer {
                            status: None,
                            body: String::new(),
                            error: Some(format!("missing `{url_field}` field")),
                            host: String::new(),
                            elapsed: Duration::ZERO,
                        },
                    };
                    enrich(&mut record, answer);
                    if done.send(record).is_err() {
                        return;
                    }
                    waker.wake();
                })
            })
            .collect();
        Ok(Pool { jobs, results, waker, workers })
    }

    fn stop(self) {
        drop(self.jobs);
        for w in self.workers {
            let _ = w.join();
        }
    }
}

fn enrich(record: &mut Record, a: Answer) {
    record.insert("status", a.status.map_or(Value::Nil, Value::from));
    record.insert("body", a.body);
    record.insert("error", a.error.map_or(Value::Nil, Value::from));
    record.insert("host", a.host);
    record.insert("elapsed_ms", a.elapsed.as_millis() as u64);
}
