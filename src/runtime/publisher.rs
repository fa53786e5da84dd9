//! One pub port of a node: an XPUB socket that every subscriber replica connects a SUB to.
//!
//! Lossless by construction: `XPUB_NODROP` makes a full subscriber block the publisher
//! (backpressure) instead of losing records, and the publisher counts the subscriptions to
//! the reserved topic `"\0"` (every subscriber makes one) and waits for all of them before
//! the node says ready, so no subscriber misses the first records (the slow joiner).
//!
//! Frames are `[topic, data]`, one batch per topic; the end of stream is `["\0", eos]`, which
//! every subscriber receives, with the number of records published per topic, so each
//! subscriber knows exactly how many its own topic prefixes should have brought.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::endpoint::bind;
use super::error::NodeError;
use super::output::{BATCH_BYTES, HWM};
use super::zap::Access;
use crate::record::RawRecord;
use crate::wire::{self, Message, CONTROL_TOPIC};

/// A pub port's batch (per topic) is sent once it holds this many records, or
/// [`BATCH_BYTES`]. Smaller than a push batch: on a port with `drop = true` subscribers a
/// batch is also the unit that is dropped, and a subscriber that can only keep up with part
/// of the stream gets it in finer grains.
pub const PUB_BATCH_RECORDS: usize = 256;

/// How a record's topic is chosen.
#[derive(Debug, Clone)]
pub enum Topic {
    /// The empty topic.
    Empty,
    /// The text of this field.
    Field(String),
    /// This topic.
    Fixed(String),
}

/// A bound pub port.
pub struct Publisher {
    /// The port's name.
    pub port: String,
    /// The second socket of a port, for subscribers with `drop = true`: a batch that would
    /// block is dropped and counted instead.
    pub lossy: bool,
    /// Records dropped (lossy socket only).
    pub dropped: u64,
    /// The endpoint it is bound to (resolved).
    pub endpoint: String,
    socket: zmq::Socket,
    topic: Topic,
    /// The longest topic text taken from a field: a topic longer than a message could not
    /// travel, and its text (JSON, for a value that is not a str) could take many times the
    /// record's memory.
    max_topic: usize,
    batches: BTreeMap<String, (Vec<u8>, usize)>,
    pending: usize,
    published: BTreeMap<String, u64>,
}

impl Publisher {
    /// Bind the port's XPUB socket at `endpoint`. A `key` of `<port>!drop` is the port's
    /// lossy socket.
    pub fn bind(ctx: &zmq::Context, key: &str, endpoint: &str, access: &Access) -> Result<Publisher, NodeError> {
        let (port, lossy) = match key.strip_suffix("!drop") {
            Some(port) => (port, true),
            None => (key, false),
        };
        let mut socket = ctx.socket(zmq::XPUB).map_err(NodeError::zmq("create an XPUB socket"))?;
        set_nodrop(&mut socket)?;
        socket.set_xpub_verbose(true).map_err(NodeError::zmq("set XPUB_VERBOSE"))?;
        socket.set_ipv6(true).map_err(NodeError::zmq("enable IPv6"))?;
        socket.set_sndhwm(HWM).map_err(NodeError::zmq("set the send high-water mark"))?;
        access.server(&socket, endpoint).map_err(NodeError::zmq(format!("guard port `{port}`")))?;
        let endpoint = bind(&socket, endpoint, &format!("bind port `{port}` at `{endpoint}`"))?;
        Ok(Publisher {
            port: port.to_string(),
            lossy,
            dropped: 0,
            endpoint,
            socket,
            topic: Topic::Empty,
            max_topic: usize::MAX,
            batches: BTreeMap::new(),
            pending: 0,
            published: BTreeMap::new(),
        })
    }

    /// Set how records' topics are chosen (from `wire`), and the longest topic text taken
    /// from a field (the node's `max_message_bytes`).
    pub fn set_topic(&mut self, topic: Topic, max_topic: usize) {
        self.topic = topic;
        self.max_topic = max_topic;
    }

    /// Wait until `n` subscribers have subscribed to [`CONTROL_TOPIC`].
    pub fn await_subscribers(&self, n: u32, timeout: Duration) -> Result<(), NodeError> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        while seen < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NodeError::Protocol(format!(
                    "only {seen} of {n} subscribers of port `{}` subscribed within {} s",
                    self.port,
                    timeout.as_secs()
                )));
            }
            match self.socket.poll(zmq::POLLIN, left.as_millis() as i64) {
                Ok(0) | Err(zmq::Error::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(NodeError::Zmq { what: "wait for subscribers".into(), source: e }),
            }
            let msg = self.socket.recv_bytes(0).map_err(NodeError::zmq("read a subscription"))?;
            if msg.first() == Some(&1) && &msg[1..] == CONTROL_TOPIC {
                seen += 1;
            }
        }
        Ok(())
    }

    /// Add a record; true when a batch is full and should be flushed.
    pub fn push(&mut self, record: RawRecord<'_>) -> Result<bool, String> {
        let field;
        let topic = match &self.topic {
            Topic::Empty => "",
            Topic::Field(f) => {
                field = match record.get(f).map(|v| v.text_within(self.max_topic)) {
                    None => Default::default(),
                    Some(Ok(text)) => text,
                    Some(Err(e)) => return Err(format!("its topic, field `{f}`: {e}")),
                };
                &field
            }
            Topic::Fixed(t) => t,
        };
        let topic = topic.trim_start_matches('\0');
        let batch = match self.batches.get_mut(topic) {
            Some(b) => b,
            None => self.batches.entry(topic.to_string()).or_default(),
        };
        batch.0.extend_from_slice(record.bytes());
        batch.1 += 1;
        self.pending += 1;
        Ok(batch.1 >= PUB_BATCH_RECORDS || batch.0.len() >= BATCH_BYTES)
    }

    /// Try to send every pending batch; false if a subscriber is full (call again later:
    /// what is left stays pending).
    pub fn try_flush(&mut self) -> Result<bool, NodeError> {
        while let Some((topic, (records, n))) = self.batches.pop_first() {
            let mut frame = Vec::with_capacity(records.len() + 32);
            wire::write_data_header(&mut frame, n);
            frame.extend_from_slice(&records);
            if !self.try_send(topic.as_bytes(), &frame)? {
                if self.lossy {
                    // A subscriber that chose to lose records is full: drop, count, go on.
                    self.dropped += n as u64;
                    self.pending -= n;
                    continue;
                }
                self.batches.insert(topic, (records, n));
                return Ok(false);
            }
            *self.published.entry(topic).or_default() += n as u64;
            self.pending -= n;
        }
        Ok(true)
    }

    fn try_send(&self, topic: &[u8], frame: &[u8]) -> Result<bool, NodeError> {
        match self.socket.send(topic, zmq::SNDMORE | zmq::DONTWAIT) {
            Ok(()) => {}
            Err(zmq::Error::EAGAIN) => return Ok(false),
            Err(e) => return Err(NodeError::Zmq { what: format!("publish on port `{}`", self.port), source: e }),
        }
        // The first frame was accepted, so the rest of the message is too.
        self.socket.send(frame, 0).map_err(NodeError::zmq(format!("publish on port `{}`", self.port)))?;
        Ok(true)
    }

    /// The key of this socket in `hello.ports` and `PROCNET_PUB`: the port, or `<port>!drop`.
    pub fn key(&self) -> String {
        if self.lossy {
            format!("{}!drop", self.port)
        } else {
            self.port.clone()
        }
    }

    /// Records published so far, per topic (what the `eos` says).
    pub fn topics(&self) -> &BTreeMap<String, u64> {
        &self.published
    }

    /// Records published or pending.
    pub fn sent_total(&self) -> u64 {
        self.published.values().sum::<u64>() + self.pending as u64
    }

    /// Publish the end of stream (after a complete flush); false if a subscriber is full.
    pub fn try_end(&self, from: &str) -> Result<bool, NodeError> {
        debug_assert_eq!(self.pending, 0, "flush before ending");
        let eos = wire::encode(&Message::Eos {
            from: from.to_string(),
            sent: self.published.values().sum(),
            port: self.port.clone(),
            topics: self.published.clone(),
        });
        self.try_send(CONTROL_TOPIC, &eos)
    }
}

/// Set `ZMQ_XPUB_NODROP`, which the `zmq` crate has no setter for.
fn set_nodrop(socket: &mut zmq::Socket) -> Result<(), NodeError> {
    let on: libc::c_int = 1;
    // SAFETY: the socket pointer is live for the call; the option takes an int by pointer,
    // with its size.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_XPUB_NODROP as libc::c_int,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>(),
        )
    };
    if rc != 0 {
        return Err(NodeError::Io { what: "set XPUB_NODROP".into(), source: std::io::Error::last_os_error() });
    }
    Ok(())
}
