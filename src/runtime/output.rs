//! One output edge: a PUSH socket per replica of the downstream node, records batched into
//! `data` frames and load-balanced over the replicas, and one `eos` per replica at the end.
//!
//! Why a socket per peer instead of one PUSH connected to all: a single PUSH socket skips
//! peers whose pipe is full, so one end-of-stream token per peer can reach one peer twice and
//! another never. With a socket per peer, each pipe carries exactly one `eos`, after every
//! record sent on it, and the `eos` says how many that was.

use super::error::NodeError;
use super::zap::Access;
use crate::wire::{self, Message, DATA_HEADER};

/// Room kept at the start of a batch for the frame's header: [`DATA_HEADER`] and an array
/// header of up to 5 bytes, written in place when the batch is sealed, so a batch is sent
/// from where it was assembled.
const ROOM: usize = DATA_HEADER.len() + 5;

/// A batch is sent once it holds this many records...
///
/// Batches are the unit of load balancing, so a stream starts with batches of one record
/// and lets them grow to this size as it goes on (see [`Output::push_encoded`]): a short
/// stream of slow records (64 URLs to fetch) spreads evenly over the consumer's replicas,
/// and a long one still travels in full batches.
pub const BATCH_RECORDS: usize = 1024;
/// ...or this many bytes, whichever comes first (and whenever the node is about to wait).
///
/// Both limits were measured (docs/benchmarks.md): per-frame costs (a send, a wake-up of the
/// receiver) stop mattering at a few hundred records or tens of KiB, and a frame below
/// glibc's mmap threshold (128 KiB) is allocated from the heap rather than by a fresh `mmap`
/// whose pages fault in one by one.
pub const BATCH_BYTES: usize = 64 * 1024;
/// Frames queued per pipe on each side before a sender blocks: bounds memory per pipe to
/// about 2 x HWM x BATCH_BYTES.
pub const HWM: i32 = 16;

/// Sockets to every replica of one downstream node.
pub struct Output {
    /// Downstream node name.
    pub node: String,
    /// The port of this node it reads.
    pub port: String,
    peers: Vec<zmq::Socket>,
    sent: Vec<u64>,
    next: usize,
    /// [`ROOM`] bytes, then the records of the batch.
    batch: Vec<u8>,
    batch_len: usize,
    /// Where the sealed batch's frame starts in `batch`, once sealed.
    sealed: Option<usize>,
}

impl Output {
    /// Connect one PUSH socket to each endpoint (one per downstream replica).
    pub fn connect(
        ctx: &zmq::Context,
        node: &str,
        port: &str,
        endpoints: &[String],
        access: &Access,
    ) -> Result<Output, NodeError> {
        let mut peers = Vec::with_capacity(endpoints.len());
        for ep in endpoints {
            let s = ctx.socket(zmq::PUSH).map_err(NodeError::zmq("create a PUSH socket"))?;
            s.set_sndhwm(HWM).map_err(NodeError::zmq("set the send high-water mark"))?;
            s.set_ipv6(true).map_err(NodeError::zmq("enable IPv6"))?;
            access.client(&s, ep).map_err(NodeError::zmq("set the run's secret"))?;
            s.connect(ep).map_err(NodeError::zmq(format!("connect to `{ep}`")))?;
            peers.push(s);
        }
        Ok(Output {
            node: node.to_string(),
            port: port.to_string(),
            sent: vec![0; peers.len()],
            peers,
            next: 0,
            batch: vec![0; ROOM],
            batch_len: 0,
            sealed: None,
        })
    }

    /// Add one encoded record; returns true when the batch is full and should be flushed.
    /// A batch may hold one record per 8 sent so far per peer, from 1 up to
    /// [`BATCH_RECORDS`].
    pub fn push_encoded(&mut self, record: &[u8]) -> bool {
        debug_assert!(self.sealed.is_none(), "send the sealed batch first");
        self.batch.extend_from_slice(record);
        self.added()
    }

    /// Let `encode` append one record to the batch, in place; on error the batch is as it
    /// was. Returns whether the batch is full, as [`Output::push_encoded`] does.
    pub fn push_with<E>(&mut self, encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<bool, E> {
        debug_assert!(self.sealed.is_none(), "send the sealed batch first");
        let len = self.batch.len();
        if let Err(e) = encode(&mut self.batch) {
            self.batch.truncate(len);
            return Err(e);
        }
        Ok(self.added())
    }

    fn added(&mut self) -> bool {
        self.batch_len += 1;
        let per_peer = self.sent.iter().sum::<u64>() / self.peers.len() as u64;
        let limit = (per_peer / 8).clamp(1, BATCH_RECORDS as u64) as usize;
        self.batch_len >= limit || self.batch.len() - ROOM >= BATCH_BYTES
    }

    /// Records sent so far, over all peers.
    pub fn sent_total(&self) -> u64 {
        self.sent.iter().sum::<u64>() + self.batch_len as u64
    }

    /// Turn the pending batch into a `data` frame, to send with [`Output::try_send`]; false if
    /// there is nothing to send.
    pub fn seal(&mut self) -> bool {
        if self.batch_len == 0 {
            return false;
        }
        if self.sealed.is_none() {
            let mut header = Vec::with_capacity(ROOM);
            wire::write_data_header(&mut header, self.batch_len);
            let start = ROOM - header.len();
            self.batch[start..ROOM].copy_from_slice(&header);
            self.sealed = Some(start);
        }
        true
    }

    /// Try to hand the sealed frame to the next peer with room, round-robin. Returns false
    /// if every peer's pipe is full (the caller waits with [`Output::poll_items`] and
    /// retries).
    pub fn try_send(&mut self) -> Result<bool, NodeError> {
        let start = self.sealed.expect("seal before sending");
        let n = self.peers.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            match self.peers[i].send(&self.batch[start..], zmq::DONTWAIT) {
                Ok(()) => {
                    self.sent[i] += self.batch_len as u64;
                    self.next = (i + 1) % n;
                    self.batch.truncate(ROOM);
                    self.batch_len = 0;
                    self.sealed = None;
                    return Ok(true);
                }
                Err(zmq::Error::EAGAIN) => continue,
                Err(e) => return Err(NodeError::Zmq { what: format!("send to node `{}`", self.node), source: e }),
            }
        }
        Ok(false)
    }

    /// Poll items that become ready when some peer has room.
    pub fn poll_items(&self) -> Vec<zmq::PollItem<'_>> {
        self.peers.iter().map(|p| p.as_poll_item(zmq::POLLOUT)).collect()
    }

    /// Send `eos` again on the pipe to downstream replica `replica` (restarted, it may have
    /// missed the first), with the same count. Call after [`Output::end`].
    pub fn end_one(&mut self, from: &str, replica: usize) -> Result<(), NodeError> {
        let (Some(peer), Some(&sent)) = (self.peers.get(replica), self.sent.get(replica)) else {
            return Ok(());
        };
        let eos = wire::encode(&Message::Eos {
            from: from.to_string(),
            sent,
            port: self.port.clone(),
            topics: Default::default(),
        });
        peer.send(eos, 0).map_err(NodeError::zmq(format!("send end of stream to node `{}`", self.node)))
    }

    /// Send `eos` on every pipe, blocking until each is queued. Call after the last flush.
    pub fn end(&mut self, from: &str) -> Result<(), NodeError> {
        debug_assert_eq!(self.batch_len, 0, "flush before ending");
        for (peer, &sent) in self.peers.iter().zip(&self.sent) {
            let eos = wire::encode(&Message::Eos {
                from: from.to_string(),
                sent,
                port: self.port.clone(),
                topics: Default::default(),
            });
            peer.send(eos, 0).map_err(NodeError::zmq(format!("send end of stream to node `{}`", self.node)))?;
        }
        Ok(())
    }
}
