//! The input side of a node: one PULL socket that every upstream replica's pipe connects to,
//! and the exact end-of-stream rule: the input has ended when one `eos` arrived from every
//! upstream replica, and then the records received must equal the records they said they sent.

use std::collections::VecDeque;

use super::error::NodeError;
use super::output::HWM;
use crate::record::Record;
use crate::wire::{self, Message};

/// At most this many dropped-frame notes are kept (all are counted).
pub const MAX_NOTES: usize = 5;

/// The input socket and what has arrived on it.
pub struct Input {
    /// The bound PULL socket.
    pub socket: zmq::Socket,
    /// The endpoint it is bound to (resolved, e.g. with the OS-chosen port).
    pub endpoint: String,
    expected_eos: u64,
    eos_seen: u64,
    /// `name.replica` of every upstream replica that has not sent its `eos` yet.
    pending_eos: std::collections::HashSet<String>,
    announced: u64,
    received: u64,
    queue: VecDeque<Record>,
    /// Frames that could not be decoded, and the first few reasons.
    pub invalid_frames: u64,
    /// The first reasons for dropped frames.
    pub notes: Vec<String>,
}

impl Input {
    /// Bind a PULL socket at `endpoint` (`tcp://127.0.0.1:*` picks a port).
    pub fn bind(ctx: &zmq::Context, endpoint: &str) -> Result<Input, NodeError> {
        let socket = ctx.socket(zmq::PULL).map_err(NodeError::zmq("create a PULL socket"))?;
        socket.set_rcvhwm(HWM).map_err(NodeError::zmq("set the receive high-water mark"))?;
        socket.bind(endpoint).map_err(NodeError::zmq(format!("bind `{endpoint}`")))?;
        let endpoint = socket
            .get_last_endpoint()
            .map_err(NodeError::zmq("read the bound endpoint"))?
            .map_err(|_| NodeError::Protocol("bound endpoint is not UTF-8".into()))?;
        Ok(Input {
            socket,
            endpoint,
            expected_eos: 0,
            eos_seen: 0,
            pending_eos: std::collections::HashSet::new(),
            announced: 0,
            received: 0,
            queue: VecDeque::new(),
            invalid_frames: 0,
            notes: Vec::new(),
        })
    }

    /// Expect one `eos` from every replica of every upstream node (from `wire.inputs`).
    pub fn expect_eos_from(&mut self, upstream: &[wire::Upstream]) {
        self.pending_eos =
            upstream.iter().flat_map(|u| (0..u.replicas).map(move |i| format!("{}.{i}", u.node))).collect();
        self.expected_eos = self.pending_eos.len() as u64;
    }

    /// The next queued record, if any.
    pub fn pop(&mut self) -> Option<Record> {
        self.queue.pop_front()
    }

    /// Records taken from this input so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether every upstream replica has ended (the queue may still hold records).
    pub fn all_ended(&self) -> bool {
        self.eos_seen >= self.expected_eos
    }

    /// Check the count at end of stream: records lost or invented are an error, never a
    /// silently wrong result.
    pub fn verify_complete(&self) -> Result<(), NodeError> {
        if self.received != self.announced {
            return Err(NodeError::Protocol(format!(
                "received {} records but upstream replicas reported sending {}",
                self.received, self.announced
            )));
        }
        Ok(())
    }

    /// Take one frame that has arrived; counts and notes frames that are not valid.
    pub fn accept(&mut self, frame: &[u8]) {
        match wire::decode(frame) {
            Ok(Message::Data(records)) => {
                self.received += records.len() as u64;
                self.queue.extend(records);
            }
            Ok(Message::Eos { from, sent }) => {
                if self.pending_eos.remove(&from) {
                    self.eos_seen += 1;
                    self.announced += sent;
                } else {
                    self.drop_frame(format!("`eos` from `{from}`, which is not an upstream replica still streaming"));
                }
            }
            Ok(other) => self.drop_frame(format!("unexpected `{}` message on a data socket", other.type_name())),
            Err(e) => self.drop_frame(format!("undecodable frame of {} bytes: {e}", frame.len())),
        }
    }

    fn drop_frame(&mut self, note: String) {
        self.invalid_frames += 1;
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        }
    }
}
