//! A running node as its code sees it: join the network (hello, wire, ready, start), then
//! `recv` records until end of stream, `send` records downstream, and `finish`.
//!
//! Fork safety: `Node::join` creates this process's ZeroMQ context; nothing before it may,
//! so a node can be forked from a process that never had one.

use std::time::{Duration, Instant};

use super::batch::Batch;
use super::error::NodeError;
use super::identity::Identity;
use super::input::{Input, MAX_NOTES};
use super::output::Output;
use super::publisher::{Publisher, Topic};
use super::waker::Waker;
use super::zap::Zap;
use crate::record::{RawRecord, Record};
use crate::wire::{self, Flows, Message, Stats};

/// How long a node waits for the launcher's `wire` and `start` before giving up.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a running node reports its counters (`stats`) at most.
pub const STATS_EVERY: Duration = Duration::from_millis(250);
/// How often a blocked node looks at its control socket.
const CONTROL_TICK_MS: i64 = 1000;

/// What [`Node::next_event`] saw.
#[derive(Debug)]
pub enum Event {
    /// The next input record.
    Record(Record),
    /// The input has ended (every upstream replica ended, every record arrived).
    Ended,
    /// The node's [`Waker`] was woken.
    Woken,
}

/// What [`Node::next_batch`] saw.
pub enum BatchEvent {
    /// The next batch of input records, read in place.
    Batch(Batch),
    /// The input has ended (every upstream replica ended, every record arrived); at once
    /// for a node without inputs.
    Ended,
    /// The node's [`Waker`] was woken.
    Woken,
}

/// What [`Node::next_input`] got.
enum Polled<T> {
    Taken(T),
    Ended,
    Woken,
}

/// One node replica connected to its network.
pub struct Node {
    id: String,
    identity: Identity,
    // Field order matters: sockets must drop before the context.
    control: zmq::Socket,
    input: Option<Input>,
    outputs: Vec<Output>,
    publishers: Vec<Publisher>,
    scratch: Vec<u8>,
    bad_records: u64,
    errors: u64,
    blocked: Duration,
    last_stats: Instant,
    notes: Vec<String>,
    stop_requested: bool,
    /// Whether `eos` went out on every pipe (`finish`).
    ended: bool,
    /// Restarted downstream replicas to send `eos` again once this node's stream ends.
    resend: Vec<String>,
    /// The ZAP handler guarding the tcp sockets, with `PROCNET_ALLOW`; stopped before the
    /// context ends.
    _zap: Option<Zap>,
    /// The node's result for the run report, sent with `done`.
    result: Option<String>,
    vars: std::collections::HashMap<String, String>,
    ctx: zmq::Context,
}

impl Node {
    /// Join the network described by `identity`: bind the input, say hello, connect the
    /// outputs the launcher names, say ready, and wait for start.
    pub fn join(identity: &Identity) -> Result<Node, NodeError> {
        Node::join_publishing(identity, Default::default())
    }

    /// [`Node::join`], offering `publish` to the other nodes (they read it with
    /// [`Node::var`] as `"<this node>.<key>"`).
    pub fn join_publishing(
        identity: &Identity,
        publish: std::collections::BTreeMap<String, String>,
    ) -> Result<Node, NodeError> {
        crate::limits::raise_open_files();
        let ctx = zmq::Context::new();
        ctx.set_max_sockets(crate::limits::MAX_NODE_SOCKETS).map_err(NodeError::zmq("raise the socket limit"))?;
        let id = identity.id();
        let control = ctx.socket(zmq::DEALER).map_err(NodeError::zmq("create the control socket"))?;
        control.set_identity(identity.routing_id().as_bytes()).map_err(NodeError::zmq("set the control identity"))?;
        control.set_ipv6(true).map_err(NodeError::zmq("enable IPv6"))?;
        control.set_linger(2000).map_err(NodeError::zmq("set the control linger"))?;
        // The control endpoint may not be bound yet (a node forked before the launcher's
        // context exists): retry the connection often rather than every 100 ms.
        control.set_reconnect_ivl(10).map_err(NodeError::zmq("set the control reconnect interval"))?;

        let access = identity.access();
        access.client(&control, &identity.control).map_err(NodeError::zmq("set the run's secret"))?;
        control
            .connect(&identity.control)
            .map_err(NodeError::zmq(format!("connect to the launcher at `{}`", identity.control)))?;
        let mut input = Input::default();
        // A restarted replica cannot check its input's counts: records were in flight when
        // the one before it died.
        input.set_inexact(identity.restart > 0);
        input.set_max_message_bytes(identity.max_message_bytes);
        // Only this run's processes get in (and, with `[hosts]`, only from declared hosts):
        // the handler starts before any socket is bound.
        let binds_tcp = identity.bind.iter().chain(identity.pub_ports.values()).any(|e| e.starts_with("tcp://"));
        let who = identity.id();
        let refused = move |text: &str| eprintln!("{who}: {text}");
        let zap = if access.guards() && binds_tcp { Some(Zap::start(&ctx, &access, refused)?) } else { None };
        input.set_access(access.clone());
        if let Some(ep) = identity.bind.as_deref() {
            input.bind(&ctx, ep)?;
        }
        let publishers = identity
            .pub_ports
            .iter()
            .map(|(port, ep)| Publisher::bind(&ctx, port, ep, &access))
            .collect::<Result<Vec<_>, _>>()?;
        let mut node = Node {
            id,
            identity: identity.clone(),
            control,
            input: Some(input),
            outputs: Vec::new(),
            publishers,
            scratch: Vec::new(),
            bad_records: 0,
            errors: 0,
            blocked: Duration::ZERO,
            last_stats: Instant::now(),
            notes: Vec::new(),
            stop_requested: false,
            ended: false,
            resend: Vec::new(),
            _zap: zap,
            result: None,
            vars: Default::default(),
            ctx,
        };
        node.handshake(publish)?;
        Ok(node)
    }

    fn handshake(&mut self, publish: std::collections::BTreeMap<String, String>) -> Result<(), NodeError> {
        self.tell(&Message::Hello {
            node: self.identity.node.clone(),
            replica: self.identity.replica,
            pid: std::process::id(),
            input: self.input.as_ref().and_then(|i| i.endpoint().map(str::to_string)),
            publish,
            ports: self.publishers.iter().map(|p| (p.key(), p.endpoint.clone())).collect(),
        })?;
        let Message::Wire { inputs, outputs, vars, ports } = self.await_control("wire", Some(JOIN_TIMEOUT))? else {
            unreachable!("await_control checks the type")
        };
        self.vars = vars.into_iter().collect();
        let input = self.input.as_mut().expect("set at join");
        input.wire(&self.ctx, &inputs)?;
        if inputs.is_empty() && input.endpoint().is_none() {
            self.input = None;
        }
        for d in &outputs {
            let access = self.identity.access();
            self.outputs.push(Output::connect(&self.ctx, &d.node, &d.port, &d.endpoints, &access)?);
        }
        for spec in &ports {
            if !self.publishers.iter().any(|p| p.port == spec.name) {
                return Err(NodeError::Protocol(format!(
                    "the launcher wired port `{}`, which this node did not bind",
                    spec.name
                )));
            }
            for p in self.publishers.iter_mut().filter(|p| p.port == spec.name) {
                let topic = match (&spec.topic_field, &spec.topic) {
                    (Some(f), _) => Topic::Field(f.clone()),
                    (None, Some(t)) => Topic::Fixed(t.clone()),
                    (None, None) => Topic::Empty,
                };
                p.set_topic(topic, crate::record::raw::text_limit(self.identity.max_message_bytes));
                // No record is published before every subscriber listens: no slow joiner.
                let n = if p.lossy { spec.drop_subscribers } else { spec.subscribers };
                p.await_subscribers(n, JOIN_TIMEOUT)?;
            }
        }
        self.tell(&Message::Ready)?;
        self.await_control("start", Some(JOIN_TIMEOUT))?;
        Ok(())
    }

    /// Wait for the control message of type `want` (at most `timeout`), remembering a
    /// `stop` that comes first.
    fn await_control(&mut self, want: &str, timeout: Option<Duration>) -> Result<Message, NodeError> {
        let deadline = timeout.map(|t| (Instant::now() + t, t));
        loop {
            let wait_ms = match deadline {
                Some((at, t)) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(NodeError::Protocol(format!(
                            "no `{want}` from the launcher within {} s",
                            t.as_secs()
                        )));
                    }
                    left.as_millis() as i64
                }
                None => -1,
            };
            let ready = match self.control.poll(zmq::POLLIN, wait_ms) {
                Err(zmq::Error::EINTR) => 0,
                other => other.map_err(NodeError::zmq("poll the control socket"))?,
            };
            if ready == 0 {
                continue;
            }
            let frame = self.control.recv_bytes(0).map_err(NodeError::zmq("receive from the launcher"))?;
            match wire::decode(&frame) {
                Ok(m) if m.type_name() == want => return Ok(m),
                Ok(m @ (Message::Stop | Message::Restarted { .. } | Message::Resend { .. })) => self.on_control(m)?,
                Ok(m) => {
                    return Err(NodeError::Protocol(format!(
                        "expected `{want}` from the launcher, got `{}`",
                        m.type_name()
                    )))
                }
                Err(e) => return Err(NodeError::Protocol(format!("bad message from the launcher: {e}"))),
            }
        }
    }

    fn tell(&self, msg: &Message) -> Result<(), NodeError> {
        self.control.send(wire::encode(msg), 0).map_err(NodeError::zmq("send to the launcher"))
    }

    /// `name.replica`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// This replica's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Read any control messages that have arrived, without waiting.
    fn poll_control(&mut self) -> Result<(), NodeError> {
        loop {
            match self.control.recv_bytes(zmq::DONTWAIT) {
                Ok(frame) => {
                    if let Ok(m) = wire::decode(&frame) {
                        self.on_control(m)?;
                    }
                }
                Err(zmq::Error::EAGAIN) => return Ok(()),
                Err(e) => return Err(NodeError::Zmq { what: "receive from the launcher".into(), source: e }),
            }
        }
    }

    /// Act on a control message that may come at any time.
    fn on_control(&mut self, msg: Message) -> Result<(), NodeError> {
        match msg {
            Message::Stop => self.stop_requested = true,
            Message::Restarted { from } => {
                if let Some(input) = self.input.as_mut() {
                    input.relax(&from);
                }
            }
            Message::Resend { to } => {
                if self.ended {
                    self.resend_eos(&to)?;
                } else {
                    self.resend.push(to);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Send `eos` again to restarted replica `to` (`name.replica`), on every pipe to it.
    fn resend_eos(&mut self, to: &str) -> Result<(), NodeError> {
        let Some((node, replica)) = to.rsplit_once('.').and_then(|(n, r)| Some((n, r.parse::<usize>().ok()?))) else {
            return Ok(());
        };
        let id = self.id.clone();
        for out in self.outputs.iter_mut().filter(|o| o.node == node) {
            out.end_one(&id, replica)?;
        }
        Ok(())
    }

    /// Whether the launcher asked this node to stop; sources check it and end early.
    pub fn stop_requested(&mut self) -> Result<bool, NodeError> {
        self.poll_control()?;
        Ok(self.stop_requested)
    }

    /// The next input record, or None at end of stream (every upstream replica ended and
    /// every record they sent arrived). Pending output is flushed before waiting.
    pub fn recv(&mut self) -> Result<Option<Record>, NodeError> {
        loop {
            match self.next_event(None)? {
                Event::Record(r) => return Ok(Some(r)),
                Event::Ended => return Ok(None),
                Event::Woken => {}
            }
        }
    }

    /// The next input record, the end of the input, or a wake-up through `waker` (from
    /// another thread of this node) while waiting for input. Pending output is flushed before
    /// waiting.
    pub fn next_event(&mut self, waker: Option<&Waker>) -> Result<Event, NodeError> {
        loop {
            match self.next_input(waker, Input::pop)? {
                Polled::Taken(Ok(r)) => return Ok(Event::Record(r)),
                // A record checked when its frame arrived, too big to decode (raw::MAX_DECODED_BYTES).
                Polled::Taken(Err(e)) => self.bad_record(format!("a record could not be decoded: {e}")),
                Polled::Ended => return Ok(Event::Ended),
                Polled::Woken => return Ok(Event::Woken),
            }
        }
    }

    /// The next batch of input records, read in place, or None at end of stream: the fast
    /// way for a node that passes records on unchanged ([`Node::send_raw`]) or only reads a
    /// field or two. Pending output is flushed before waiting.
    pub fn recv_batch(&mut self) -> Result<Option<Batch>, NodeError> {
        loop {
            match self.next_input(None, Input::pop_batch)? {
                Polled::Taken(b) => return Ok(Some(b)),
                Polled::Ended => return Ok(None),
                Polled::Woken => {}
            }
        }
    }

    /// The next batch of input records, the end of the input, or a wake-up through `waker`
    /// (from another thread of this node) while waiting for input: [`Node::recv_batch`] for
    /// a node with threads of its own. Pending output is flushed before waiting.
    pub fn next_batch(&mut self, waker: &Waker) -> Result<BatchEvent, NodeError> {
        Ok(match self.next_input(Some(waker), Input::pop_batch)? {
            Polled::Taken(b) => BatchEvent::Batch(b),
            Polled::Ended => BatchEvent::Ended,
            Polled::Woken => BatchEvent::Woken,
        })
    }

    /// Wait, without taking input, until `waker` is woken or a control tick passes (a
    /// second), serving the control socket meanwhile: for a node whose threads are busy with
    /// what it already took. Pending output is flushed and counters reported first.
    pub fn wait_woken(&mut self, waker: &Waker) -> Result<(), NodeError> {
        self.flush()?;
        self.report_stats()?;
        let mut items = [self.control.as_poll_item(zmq::POLLIN), zmq::PollItem::from_fd(waker.fd(), zmq::POLLIN)];
        poll(&mut items, "poll for a wake-up")?;
        let (control, woken) = (items[0].is_readable(), items[1].is_readable());
        if control {
            self.poll_control()?;
        }
        if woken {
            waker.drain();
        }
        Ok(())
    }

    /// Take from the input with `take`, receiving and waiting as needed.
    fn next_input<T>(
        &mut self,
        waker: Option<&Waker>,
        take: impl Fn(&mut Input) -> Option<T>,
    ) -> Result<Polled<T>, NodeError> {
        loop {
            let Some(input) = self.input.as_mut() else {
                return Ok(Polled::Ended);
            };
            if let Some(x) = take(input) {
                return Ok(Polled::Taken(x));
            }
            if input.all_ended() {
                if input.verify_complete().is_err() {
                    // A `restarted` notice explains a difference: read any that has come.
                    self.poll_control()?;
                }
                let input = self.input.as_mut().expect("checked above");
                input.verify_complete()?;
                return Ok(Polled::Ended);
            }
            if !input.try_receive()? {
                self.flush()?;
                if self.wait_for_input(waker)? {
                    return Ok(Polled::Woken);
                }
            }
        }
    }

    /// Wait up to a control tick for input, a control message or a wake-up; true if woken.
    fn wait_for_input(&mut self, waker: Option<&Waker>) -> Result<bool, NodeError> {
        self.report_stats()?;
        let input = self.input.as_ref().expect("only called with an input");
        let mut items = input.poll_items();
        let n = items.len();
        items.push(self.control.as_poll_item(zmq::POLLIN));
        if let Some(w) = waker {
            items.push(zmq::PollItem::from_fd(w.fd(), zmq::POLLIN));
        }
        poll(&mut items, "poll for input")?;
        let (control, woken) = (items[n].is_readable(), items.get(n + 1).is_some_and(zmq::PollItem::is_readable));
        drop(items);
        if control {
            self.poll_control()?;
        }
        if woken {
            waker.expect("polled").drain();
        }
        Ok(woken)
    }

    /// Block until the launcher asks this node to stop: what a service (a node that neither
    /// reads nor sends records, like `serve`) does while the others work.
    pub fn wait_for_stop(&mut self) -> Result<(), NodeError> {
        while !self.stop_requested {
            let mut items = [self.control.as_poll_item(zmq::POLLIN)];
            poll(&mut items, "poll the control socket")?;
            if items[0].is_readable() {
                self.poll_control()?;
            }
        }
        Ok(())
    }

    /// A value another node published (`"<node>.<key>"`, e.g. `"site.url"`), from `wire`.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Send a record to every downstream node (load-balanced over each one's replicas).
    pub fn send(&mut self, record: &Record) -> Result<(), NodeError> {
        self.send_to("out", record)
    }

    /// Send a record on port `port`: to every node reading it (push: load-balanced over each
    /// one's replicas; pub: to every subscriber whose topics match).
    pub fn send_to(&mut self, port: &str, record: &Record) -> Result<(), NodeError> {
        if !self.has_port(port) {
            return Ok(());
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        wire::write_record(&mut scratch, record);
        let sent = self.send_raw(port, RawRecord::checked(&scratch));
        self.scratch = scratch;
        sent
    }

    /// Send a record read in place (from [`Node::recv_batch`], or checked with
    /// [`RawRecord::new`]) on port `port`, as its bytes: nothing is encoded again.
    pub fn send_raw(&mut self, port: &str, record: RawRecord<'_>) -> Result<(), NodeError> {
        for i in 0..self.outputs.len() {
            if self.outputs[i].port == port && self.outputs[i].push_encoded(record.bytes()) {
                self.flush_output(i)?;
            }
        }
        // A record whose topic cannot be taken goes to no socket of the port (its lossy one
        // refuses it too): counted once, as a bad record.
        let mut refused = None;
        for p in 0..self.publishers.len() {
            if self.publishers[p].port != port {
                continue;
            }
            match self.publishers[p].push(record) {
                Ok(true) => self.flush_publisher(p)?,
                Ok(false) => {}
                Err(why) => refused = Some(why),
            }
        }
        if let Some(why) = refused {
            self.bad_record(format!("a record not published on port `{port}`: {why}"));
        }
        Ok(())
    }

    /// Send the record that `encode` appends to the buffer it is given (one MessagePack map
    /// with str keys, such as [`wire::write_record`] writes) on port `port`. When a single
    /// push output reads the port, the record is encoded straight into its batch: the way
    /// for a source to send what it parses with no copy. If `encode` fails, nothing is sent
    /// and its error is returned inside the `Ok`.
    pub fn send_with<E>(
        &mut self,
        port: &str,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Result<(), E>, NodeError> {
        let mut pushes = self.outputs.iter().enumerate().filter(|(_, o)| o.port == port).map(|(i, _)| i);
        if let (Some(i), None, false) = (pushes.next(), pushes.next(), self.publishers.iter().any(|p| p.port == port)) {
            return match self.outputs[i].push_with(encode) {
                Ok(true) => self.flush_output(i).map(Ok),
                Ok(false) => Ok(Ok(())),
                Err(e) => Ok(Err(e)),
            };
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let sent = match encode(&mut scratch) {
            Ok(()) => self.send_raw(port, RawRecord::checked(&scratch)).map(Ok),
            Err(e) => Ok(Err(e)),
        };
        self.scratch = scratch;
        sent
    }

    /// Whether the node reads records (it has inputs).
    pub fn has_input(&self) -> bool {
        self.input.is_some()
    }

    /// Whether this node has a port named `port` that some node reads.
    pub fn has_port(&self, port: &str) -> bool {
        self.outputs.iter().any(|o| o.port == port) || self.publishers.iter().any(|p| p.port == port)
    }

    /// Send every pending batch now.
    pub fn flush(&mut self) -> Result<(), NodeError> {
        for i in 0..self.outputs.len() {
            self.flush_output(i)?;
        }
        for p in 0..self.publishers.len() {
            self.flush_publisher(p)?;
        }
        Ok(())
    }

    fn flush_publisher(&mut self, p: usize) -> Result<(), NodeError> {
        let mut backoff = 1;
        while !self.publishers[p].try_flush()? {
            // A subscriber is full: backpressure. XPUB cannot be polled for room, so wait a
            // little (watching control) and try again.
            self.backoff(&mut backoff)?;
        }
        Ok(())
    }

    /// Wait `backoff` ms on the control socket, then double it (up to 16 ms).
    fn backoff(&mut self, backoff: &mut i64) -> Result<(), NodeError> {
        let waited = Instant::now();
        let mut items = [self.control.as_poll_item(zmq::POLLIN)];
        match zmq::poll(&mut items, *backoff) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(NodeError::Zmq { what: "wait for a subscriber".into(), source: e }),
        }
        if items[0].is_readable() {
            self.poll_control()?;
        }
        *backoff = (*backoff * 2).min(16);
        self.blocked += waited.elapsed();
        Ok(())
    }

    fn flush_output(&mut self, i: usize) -> Result<(), NodeError> {
        if !self.outputs[i].seal() {
            return Ok(());
        }
        self.report_stats()?;
        while !self.outputs[i].try_send()? {
            // Every peer is full: this is backpressure. Wait for room, watching control.
            let out = &self.outputs[i];
            let mut items = out.poll_items();
            items.push(self.control.as_poll_item(zmq::POLLIN));
            let waited = Instant::now();
            poll(&mut items, "poll for room downstream")?;
            self.blocked += waited.elapsed();
            let control_ready = items.last().is_some_and(|c| c.is_readable());
            drop(items);
            if control_ready {
                self.poll_control()?;
            }
        }
        Ok(())
    }

    /// Count a record this node could not process and dropped, keeping the first reasons.
    pub fn bad_record(&mut self, note: String) {
        self.bad_records += 1;
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        }
    }

    /// What this node has counted so far.
    pub fn stats(&self) -> Stats {
        let input = self.input.as_ref();
        Stats {
            received: input.map_or(0, Input::received),
            // A port's lossy socket carries the same records as its lossless one.
            sent: self.outputs.iter().map(Output::sent_total).sum::<u64>()
                + self.publishers.iter().filter(|p| !p.lossy).map(Publisher::sent_total).sum::<u64>(),
            invalid_frames: input.map_or(0, |i| i.invalid_frames),
            bad_records: self.bad_records,
            errors: self.errors,
            dropped: self.publishers.iter().map(|p| p.dropped).sum(),
            blocked_ms: self.blocked.as_millis() as u64,
        }
    }

    /// Count a record this node passed on marked as failed (a fetch with an `error`).
    pub fn add_error(&mut self) {
        self.errors += 1;
    }

    /// Send the counters to the launcher if the last report is older than [`STATS_EVERY`].
    fn report_stats(&mut self) -> Result<(), NodeError> {
        if self.last_stats.elapsed() >= STATS_EVERY {
            self.last_stats = Instant::now();
            self.tell(&Message::Stats(self.stats()))?;
        }
        Ok(())
    }

    /// End this node's stream: flush, send `eos` on every pipe, report `done`, and wait for
    /// the launcher's `bye`, sent once every consumer has finished reading.
    ///
    /// Why wait: libzmq drops what is still unread in the kernel buffer when the sending side
    /// hangs up while the receiver's pipe is at its high-water mark (a backpressured
    /// consumer). Linger does not help; it only covers data until it reaches the kernel. So
    /// a producer keeps its connections open until its consumers say they have everything.
    pub fn finish(&mut self) -> Result<(), NodeError> {
        // Input not read yet is read to its end (and dropped), so that upstream nodes can
        // finish and the count is checked.
        while self.recv_batch()?.is_some() {}
        self.flush()?;
        let id = self.id.clone();
        for out in &mut self.outputs {
            out.end(&id)?;
        }
        self.ended = true;
        for to in std::mem::take(&mut self.resend) {
            self.resend_eos(&to)?;
        }
        for p in 0..self.publishers.len() {
            let mut backoff = 1;
            while !self.publishers[p].try_end(&id)? {
                self.backoff(&mut backoff)?;
            }
        }
        let mut notes = self.input.as_ref().map(|i| i.notes.clone()).unwrap_or_default();
        notes.extend(self.notes.iter().cloned());
        let result = self.result.take();
        self.tell(&Message::Done { stats: self.stats(), notes, result, flows: self.flows() })?;
        self.await_bye()
    }

    /// Where this node's records went and came from, edge by edge, for `done`.
    fn flows(&self) -> Flows {
        let (pulled, subscribed) = self.input.as_ref().map_or((None, None), Input::flows);
        Flows {
            outputs: (!self.outputs.is_empty()).then(|| self.outputs.iter().map(Output::sent_total).collect()),
            published: (!self.publishers.is_empty())
                .then(|| self.publishers.iter().map(|p| (p.key(), p.topics().clone())).collect()),
            pulled,
            subscribed,
        }
    }

    /// Wait for `bye`, reading the input meanwhile: nothing should arrive after its end, but
    /// if an `eos` was forged or mistaken, the real records come later. Read, they fail this
    /// node, loudly; unread, they could block their sender and hang the run.
    fn await_bye(&mut self) -> Result<(), NodeError> {
        loop {
            if let Some(input) = self.input.as_mut() {
                if let Some(late) = input.take_late()? {
                    return Err(NodeError::Protocol(late));
                }
            }
            let mut items = self.input.as_ref().map(Input::poll_items).unwrap_or_default();
            let n = items.len();
            items.push(self.control.as_poll_item(zmq::POLLIN));
            poll(&mut items, "wait for the launcher's `bye`")?;
            let control = items[n].is_readable();
            drop(items);
            if !control {
                continue;
            }
            let frame = self.control.recv_bytes(0).map_err(NodeError::zmq("receive from the launcher"))?;
            match wire::decode(&frame) {
                Ok(Message::Bye) => return Ok(()),
                Ok(m @ (Message::Stop | Message::Restarted { .. } | Message::Resend { .. })) => self.on_control(m)?,
                Ok(m) => {
                    return Err(NodeError::Protocol(format!(
                        "expected `bye` from the launcher, got `{}`",
                        m.type_name()
                    )))
                }
                Err(e) => return Err(NodeError::Protocol(format!("bad message from the launcher: {e}"))),
            }
        }
    }

    /// Give the node's result (text, e.g. a JSON line), which the launcher puts in the run
    /// report; sent with `done` by [`Node::finish`].
    pub fn set_result(&mut self, result: String) {
        self.result = Some(result);
    }

    /// Tell the launcher this node failed and why.
    pub fn fail(&self, error: &NodeError) -> Result<(), NodeError> {
        self.tell(&Message::Failed { error: error.to_string() })
    }
}

/// Poll `items` for at most one control tick; a signal interrupting the wait is no error.
fn poll(items: &mut [zmq::PollItem<'_>], what: &str) -> Result<(), NodeError> {
    match zmq::poll(items, CONTROL_TICK_MS) {
        Ok(_) | Err(zmq::Error::EINTR) => Ok(()),
        Err(source) => Err(NodeError::Zmq { what: what.into(), source }),
    }
}
