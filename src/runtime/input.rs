//! The input side of a node: one PULL socket that every push upstream replica's pipe
//! connects to, one SUB socket per pub input (connected to every publisher replica), and the
//! exact end-of-stream rule: the input has ended when one `eos` arrived from every upstream
//! replica on every port read, and then the records received must equal the records they
//! said they sent (on a pub port: those whose topics this node subscribed to).

use std::collections::{HashMap, VecDeque};

use super::batch::Batch;
use super::endpoint::bind;
use super::error::NodeError;
use super::output::HWM;
use super::zap::Access;
use crate::record::lengths::Lengths;
use crate::record::raw::RawError;
use crate::record::Record;
use crate::wire::{self, Upstream, CONTROL_TOPIC};

/// At most this many dropped-frame notes are kept (all are counted).
pub const MAX_NOTES: usize = 5;

/// One pub input: a SUB socket and the topic prefixes it subscribed to.
struct Subscription {
    socket: zmq::Socket,
    topics: Vec<String>,
    /// Records received on it.
    received: u64,
}

/// The input sockets and what has arrived on them.
#[derive(Default)]
pub struct Input {
    pull: Option<(zmq::Socket, String)>,
    subs: Vec<Subscription>,
    /// `name.replica/port` of every upstream replica that has not sent its `eos` yet, with
    /// the subscription it arrives on (None for push).
    pending_eos: HashMap<String, Option<usize>>,
    expected_eos: u64,
    eos_seen: u64,
    announced: u64,
    received: u64,
    /// Records received on the PULL socket (the rest came through the subscriptions).
    pulled: u64,
    queue: VecDeque<Batch>,
    /// A restarted replica: its counts cannot be checked, and repeated `eos` are expected.
    inexact: bool,
    /// Upstream replicas (`name.replica`) restarted mid-stream: likewise.
    relaxed: std::collections::HashSet<String>,
    /// ZMQ_MAXMSGSIZE of every input socket, if limited.
    max_message_bytes: Option<u64>,
    /// Who may connect to the input sockets, and what they present to publishers.
    access: Access,
    /// PAIR sockets receiving the disconnect events of the input sockets.
    monitors: Vec<zmq::Socket>,
    /// Connections dropped while reading: libzmq drops a message over the size limit with its
    /// connection, and records the sender counted go with it.
    disconnects: u64,
    /// Whether a shortfall explained by dropped connections was counted already.
    shortfall_counted: bool,
    /// Frames that could not be decoded.
    pub invalid_frames: u64,
    /// The first reasons for dropped frames.
    pub notes: Vec<String>,
    /// The reason for the last dropped frame.
    last_drop: String,
}

impl Input {
    /// Refuse messages over `bytes` on every input socket (ZMQ_MAXMSGSIZE): libzmq drops such
    /// a message, with its connection, before allocating it. Call before `bind` and `wire`.
    pub fn set_max_message_bytes(&mut self, bytes: Option<u64>) {
        self.max_message_bytes = bytes;
    }

    /// Guard the input sockets with `access` (see `runtime/zap.rs`; the node runs the
    /// handler). Call before `bind` and `wire`.
    pub fn set_access(&mut self, access: Access) {
        self.access = access;
    }

    /// Apply the size limit to `socket` and watch it for dropped connections.
    fn guard(&mut self, ctx: &zmq::Context, socket: &zmq::Socket) -> Result<(), NodeError> {
        if let Some(max) = self.max_message_bytes {
            socket.set_maxmsgsize(max as i64).map_err(NodeError::zmq("set the maximum message size"))?;
        }
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let ep = format!("inproc://procnet-monitor-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        socket
            .monitor(&ep, zmq::SocketEvent::DISCONNECTED.to_raw() as i32)
            .map_err(NodeError::zmq("monitor an input socket"))?;
        let pair = ctx.socket(zmq::PAIR).map_err(NodeError::zmq("create a monitor socket"))?;
        pair.connect(&ep).map_err(NodeError::zmq("connect the monitor socket"))?;
        self.monitors.push(pair);
        Ok(())
    }

    /// Count the connections dropped so far.
    fn count_disconnects(&mut self) {
        for m in &self.monitors {
            while let Ok(parts) = m.recv_multipart(zmq::DONTWAIT) {
                let event = parts.first().and_then(|f| f.get(..2)).map(|b| u16::from_le_bytes([b[0], b[1]]));
                if event == Some(zmq::SocketEvent::DISCONNECTED.to_raw()) {
                    self.disconnects += 1;
                }
            }
        }
    }

    /// Bind the PULL socket at `endpoint` (`tcp://127.0.0.1:*` picks a port).
    pub fn bind(&mut self, ctx: &zmq::Context, endpoint: &str) -> Result<(), NodeError> {
        let socket = ctx.socket(zmq::PULL).map_err(NodeError::zmq("create a PULL socket"))?;
        // IPv6 hosts, as well as IPv4 (ZeroMQ leaves IPv6 off by default).
        socket.set_ipv6(true).map_err(NodeError::zmq("enable IPv6"))?;
        socket.set_rcvhwm(HWM).map_err(NodeError::zmq("set the receive high-water mark"))?;
        self.guard(ctx, &socket)?;
        self.access.server(&socket, endpoint).map_err(NodeError::zmq("guard the input socket"))?;
        let endpoint = bind(&socket, endpoint, &format!("bind `{endpoint}`"))?;
        self.pull = Some((socket, endpoint));
        Ok(())
    }

    /// The PULL socket's endpoint, if bound.
    pub fn endpoint(&self) -> Option<&str> {
        self.pull.as_ref().map(|(_, e)| e.as_str())
    }

    /// Expect one `eos` from every replica of every upstream port (from `wire.inputs`), and
    /// subscribe to the pub ones.
    pub fn wire(&mut self, ctx: &zmq::Context, upstream: &[Upstream]) -> Result<(), NodeError> {
        for u in upstream {
            let sub = match &u.subscribe {
                None => None,
                Some(s) => {
                    let socket = ctx.socket(zmq::SUB).map_err(NodeError::zmq("create a SUB socket"))?;
                    socket.set_ipv6(true).map_err(NodeError::zmq("enable IPv6"))?;
                    socket.set_rcvhwm(HWM).map_err(NodeError::zmq("set the receive high-water mark"))?;
                    self.guard(ctx, &socket)?;
                    for ep in &s.endpoints {
                        self.access.client(&socket, ep).map_err(NodeError::zmq("set the run's secret"))?;
                        socket.connect(ep).map_err(NodeError::zmq(format!("connect to `{ep}`")))?;
                    }
                    // After connecting, subscriptions go out on each pipe in this order: the
                    // prefixes first, then "\0", which the publisher counts. So when it has
                    // counted this subscriber, it has its prefixes too.
                    let prefixes: Vec<&[u8]> =
                        if s.topics.is_empty() { vec![b""] } else { s.topics.iter().map(|t| t.as_bytes()).collect() };
                    for p in prefixes.into_iter().chain([CONTROL_TOPIC]) {
                        socket.set_subscribe(p).map_err(NodeError::zmq("subscribe"))?;
                    }
                    self.subs.push(Subscription { socket, topics: s.topics.clone(), received: 0 });
                    Some(self.subs.len() - 1)
                }
            };
            for i in 0..u.replicas {
                self.pending_eos.insert(format!("{}.{i}/{}", u.node, u.port), sub);
            }
        }
        self.expected_eos = self.pending_eos.len() as u64;
        Ok(())
    }

    /// Mark this input as that of a restarted replica (see [`Input::verify_complete`]).
    pub fn set_inexact(&mut self, inexact: bool) {
        self.inexact = inexact;
    }

    /// Upstream replica `from` was restarted mid-stream: what it announces cannot be checked.
    pub fn relax(&mut self, from: &str) {
        self.relaxed.insert(from.to_string());
    }

    /// The next queued record, decoded, if any.
    pub fn pop(&mut self) -> Option<Result<Record, RawError>> {
        let batch = self.queue.front_mut()?;
        let rec = batch.take_record();
        if batch.is_empty() {
            self.queue.pop_front();
        }
        rec
    }

    /// The next queued batch (never empty), if any.
    pub fn pop_batch(&mut self) -> Option<Batch> {
        self.queue.pop_front()
    }

    /// Records taken from this input so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Records received per socket, for `done` (see [`crate::wire::Flows`]): on the PULL
    /// socket, if there is one, and on each subscription.
    pub fn flows(&self) -> (Option<u64>, Option<Vec<u64>>) {
        let subscribed = (!self.subs.is_empty()).then(|| self.subs.iter().map(|s| s.received).collect());
        (self.pull.as_ref().map(|_| self.pulled), subscribed)
    }

    /// Count `n` records received on the PULL socket (None) or subscription `sub`.
    fn count(&mut self, sub: Option<usize>, n: u64) {
        self.received += n;
        match sub {
            None => self.pulled += n,
            Some(i) => self.subs[i].received += n,
        }
    }

    /// After the end of the input: take whatever arrives anyway. Nothing should (every pipe
    /// and publisher ended with its `eos`), so a frame here means an `eos` was forged or
    /// mistaken, and records that ended up after it were never counted: the reason, in words.
    /// A repeated `eos` that a restart explains is no such frame.
    pub fn take_late(&mut self) -> Result<Option<String>, NodeError> {
        let (received, invalid) = (self.received, self.invalid_frames);
        // After a restart mid-stream, a replica that started over may send what it had sent
        // already: the run is reported incomplete for that restart, so this is no news.
        if self.inexact || !self.relaxed.is_empty() {
            while self.try_receive()? {
                self.queue.clear();
            }
            return Ok(None);
        }
        while self.try_receive()? {
            if self.received > received {
                self.queue.clear();
                let n = self.received - received;
                return Ok(Some(format!(
                    "{n} record{} arrived after the end of its input (an `eos` from every upstream replica): \
                     an `eos` was forged or mistaken, and {} not counted",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "it was" } else { "they were" }
                )));
            }
            if self.invalid_frames > invalid {
                let note = &self.last_drop;
                return Ok(Some(format!(
                    "a frame arrived after the end of its input (an `eos` from every upstream replica): {note}"
                )));
            }
        }
        Ok(None)
    }

    /// Whether every upstream replica has ended (the queue may still hold records).
    pub fn all_ended(&self) -> bool {
        self.eos_seen >= self.expected_eos
    }

    /// Check the count at end of stream: records lost or invented are an error, never a
    /// silently wrong result.
    ///
    /// Not when a replica died mid-stream (this one's predecessor, or an upstream one): the
    /// launcher then reports the run incomplete itself.
    ///
    /// Nor when fewer records arrived than were announced and input connections were dropped
    /// meanwhile (a message over `max_message_bytes`): the missing records are counted with
    /// the invalid frames, so the run reports this node and ends with exit 65.
    pub fn verify_complete(&mut self) -> Result<(), NodeError> {
        self.count_disconnects();
        if self.received < self.announced && self.disconnects > 0 && !self.shortfall_counted {
            self.shortfall_counted = true;
            self.invalid_frames += self.disconnects;
            let limit = self.max_message_bytes.map_or("none".to_string(), |b| format!("{b} bytes"));
            let note = format!(
                "{} records announced were never received: {} input connection{} dropped mid-stream \
                 (a message over max_message_bytes, {limit}, or a sender that died)",
                self.announced - self.received,
                self.disconnects,
                if self.disconnects == 1 { " was" } else { "s were" }
            );
            if self.notes.len() < MAX_NOTES {
                self.notes.push(note);
            }
        }
        if self.shortfall_counted {
            return Ok(());
        }
        if self.received != self.announced && !self.inexact && self.relaxed.is_empty() {
            return Err(NodeError::Protocol(format!(
                "received {} records but upstream replicas reported sending {}",
                self.received, self.announced
            )));
        }
        Ok(())
    }

    /// Poll items for every input socket (to wait for any of them).
    pub fn poll_items(&self) -> Vec<zmq::PollItem<'_>> {
        let pull = self.pull.iter().map(|(s, _)| s.as_poll_item(zmq::POLLIN));
        pull.chain(self.subs.iter().map(|s| s.socket.as_poll_item(zmq::POLLIN))).collect()
    }

    /// Take one frame from any socket that has one; false if none had.
    pub fn try_receive(&mut self) -> Result<bool, NodeError> {
        if let Some((pull, _)) = &self.pull {
            let mut frame = zmq::Message::new();
            match pull.recv(&mut frame, zmq::DONTWAIT) {
                Ok(()) => {
                    self.accept(frame, None);
                    return Ok(true);
                }
                Err(zmq::Error::EAGAIN) => {}
                Err(e) => return Err(NodeError::Zmq { what: "receive a record".into(), source: e }),
            }
        }
        for i in 0..self.subs.len() {
            let socket = &self.subs[i].socket;
            let mut topic = zmq::Message::new();
            match socket.recv(&mut topic, zmq::DONTWAIT) {
                Ok(()) => {
                    // The rest of a message arrives with its first frame.
                    let what = "receive a published record";
                    let mut parts = Vec::new();
                    let mut more = topic.get_more();
                    while more {
                        let mut part = zmq::Message::new();
                        socket.recv(&mut part, 0).map_err(NodeError::zmq(what))?;
                        more = part.get_more();
                        parts.push(part);
                    }
                    if parts.len() == 1 {
                        let frame = parts.pop().expect("one part");
                        self.accept(frame, Some(i));
                    } else {
                        self.drop_frame(format!("a published message of {} frames, not 2", parts.len() + 1));
                    }
                    return Ok(true);
                }
                Err(zmq::Error::EAGAIN) => {}
                Err(e) => return Err(NodeError::Zmq { what: "receive a published record".into(), source: e }),
            }
        }
        Ok(false)
    }

    /// Take one frame that arrived on the PULL socket (None) or subscription `sub`. Frames
    /// are read in place, never decoded into a tree, so a hostile one costs no more memory
    /// than its own size (docs/protocol.md §9).
    fn accept(&mut self, frame: zmq::Message, sub: Option<usize>) {
        match wire::data_records(&frame) {
            Ok(Some(records)) => self.accept_data(frame, records, sub),
            Ok(None) => match wire::message_type(&frame) {
                Ok("eos") => self.accept_eos(&frame, sub),
                Ok(t) => self.drop_frame(format!("unexpected `{t}` message on a data socket")),
                Err(e) => self.drop_frame(format!("undecodable frame of {} bytes: {e}", frame.len())),
            },
            Err(e) => self.drop_frame(format!("undecodable frame of {} bytes: {e}", frame.len())),
        }
    }

    /// Queue the records of a `data` frame where they lie. A record nested deeper than
    /// raw::MAX_DEPTH is dropped alone and counted; the sender counted it, so it counts as
    /// received. Then the others are copied out of the frame (only a sender that breaks the
    /// protocol's nesting rule gets there).
    fn accept_data(&mut self, frame: zmq::Message, records: wire::DataRecords, sub: Option<usize>) {
        let wire::DataRecords { first, lengths, too_deep } = records;
        self.count(sub, lengths.len() as u64);
        if too_deep.is_empty() {
            if !lengths.is_empty() {
                self.queue.push_back(Batch::in_message(frame, first, lengths));
            }
            return;
        }
        let (mut kept, mut kept_lengths, mut pos) = (Vec::new(), Lengths::default(), first);
        let mut deep = too_deep.into_iter().peekable();
        for (i, len) in lengths.iter().enumerate() {
            match deep.next_if(|(j, _)| *j == i) {
                Some((_, e)) => self.drop_frame(format!("data record {i}: {e}")),
                None => {
                    kept.extend_from_slice(&frame[pos..pos + len]);
                    kept_lengths.push(len);
                }
            }
            pos += len;
        }
        if !kept_lengths.is_empty() {
            self.queue.push_back(Batch::owned(kept, kept_lengths));
        }
    }

    /// Count an `eos`, read in place: on a pub port, the records of the topics this node
    /// subscribed to.
    fn accept_eos(&mut self, frame: &[u8], sub: Option<usize>) {
        let prefixes = sub.map(|i| &self.subs[i].topics);
        let mut subscribed = 0u64;
        let read = wire::read_eos(frame, |t, n| {
            if prefixes.is_some_and(|p| p.is_empty() || p.iter().any(|p| t.starts_with(p.as_str()))) {
                subscribed = subscribed.saturating_add(n);
            }
        });
        let (from, sent, port) = match read {
            Ok(eos) => eos,
            Err(e) => return self.drop_frame(format!("undecodable frame of {} bytes: {e}", frame.len())),
        };
        let key = format!("{from}/{port}");
        match self.pending_eos.get(&key) {
            Some(&expected_sub) if expected_sub == sub => {
                self.pending_eos.remove(&key);
                self.eos_seen += 1;
                // Saturating: a hostile count must not overflow (a panic in a debug build).
                self.announced = self.announced.saturating_add(if sub.is_some() { subscribed } else { sent });
            }
            // A restarted replica's `eos` after its predecessor's, or one sent again to this
            // restarted replica: expected.
            _ if self.inexact || self.relaxed.contains(&from) => {}
            _ => self.drop_frame(format!(
                "`eos` from `{from}` (port `{port}`), which is not an upstream replica still streaming"
            )),
        }
    }

    fn drop_frame(&mut self, note: String) {
        self.invalid_frames += 1;
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note.clone());
        }
        self.last_drop = note;
    }
}
