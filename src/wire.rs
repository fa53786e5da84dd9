//! The procnet wire protocol, version 1: every ZeroMQ message is one frame holding one
//! MessagePack map with string keys, `"v"` (the protocol version) and `"t"` (the message type)
//! first. One `encode` and one `decode`; `docs/protocol.md` is the specification and
//! `tests/golden/` pins the bytes.
//!
//! Frames are read where they lie (`wire/fields.rs` finds a map's fields by name), never as a tree,
//! so what a frame holds costs no more memory than the frame. A node's input uses the parts
//! of `decode` that need nothing more: [`data_records`] (with [`data_in_place`], its fast
//! path for procnet's own layout), [`message_type`] and [`read_eos`]; they agree with
//! `decode` on what is valid, which `tests/formats/fuzz_wire.rs` checks.

use std::collections::BTreeMap;

use crate::record::lengths::Lengths;
use crate::record::raw::{self, RawError};
use crate::record::{RawRecord, Record, Value};

mod error;
mod fields;

pub use error::DecodeError;
use fields::{Fields, Span};

/// The protocol version this build speaks.
pub const VERSION: u64 = 1;

/// On a pub port, the topic every subscriber subscribes to and under which `eos` is
/// published. Record topics never start with a NUL byte (a leading one is removed).
pub const CONTROL_TOPIC: &[u8] = b"\0";

/// A port of a node that feeds this one: the node, how many replicas will each send an
/// `eos` on it, and for a pub port what to subscribe to and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// Node name.
    pub node: String,
    /// Its replica count.
    pub replicas: u32,
    /// The port read (`out` when absent on the wire).
    pub port: String,
    /// For a pub port: the subscription (absent for a push port).
    pub subscribe: Option<Subscribe>,
}

/// How to subscribe to a pub port.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subscribe {
    /// Topic prefixes; empty means every topic.
    pub topics: Vec<String>,
    /// The port's endpoint on each publisher replica (connect a SUB socket to each).
    pub endpoints: Vec<String>,
}

/// A node this one feeds from a push port, and the input endpoint of each of its replicas
/// (index = replica).
#[derive(Debug, Clone, PartialEq)]
pub struct Downstream {
    /// Node name.
    pub node: String,
    /// One endpoint per replica.
    pub endpoints: Vec<String>,
    /// The port it reads (`out` when absent on the wire).
    pub port: String,
}

/// One of the receiving node's own pub ports.
#[derive(Debug, Clone, PartialEq)]
pub struct PubPort {
    /// Port name.
    pub name: String,
    /// Subscriber replicas to wait for before saying `ready` (each subscribes to `"\0"`).
    pub subscribers: u32,
    /// Subscriber replicas with `drop = true`, on the port's second socket (`<port>!drop`).
    /// Optional on the wire; written only when not 0.
    pub drop_subscribers: u32,
    /// The record field whose text is each record's topic, if any.
    pub topic_field: Option<String>,
    /// A fixed topic for every record, if any.
    pub topic: Option<String>,
}

/// What a node counted, reported in `done`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Records received on the input.
    pub received: u64,
    /// Records sent, summed over every output edge and peer.
    pub sent: u64,
    /// Input frames that could not be decoded and were dropped.
    pub invalid_frames: u64,
    /// Records the node could not process and dropped (for example a line that is not JSON).
    pub bad_records: u64,
    /// Records the node passed on marked as failed (a `fetch` record with an `error`).
    /// Optional on the wire (0 when absent).
    pub errors: u64,
    /// Records not delivered on purpose: published on a pub port to subscribers that chose
    /// `drop = true`, while one of them was full. Optional on the wire (0 when absent).
    pub dropped: u64,
    /// Milliseconds spent waiting for room downstream (backpressure). Optional (0).
    pub blocked_ms: u64,
}

/// Records per topic (a topic's text, to a count).
pub type Counts = BTreeMap<String, u64>;

/// Where a node's records went and where they came from, edge by edge, reported in `done`:
/// the launcher checks with them that every edge delivered what was sent (conservation), so
/// that a lost, forged or mistaken `eos` cannot end a run with a silently wrong result.
///
/// Every field is optional on the wire (None: not reported) and written only when the node
/// has such sockets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flows {
    /// Records sent to each entry of `wire.outputs`, in its order (over all its pipes).
    pub outputs: Option<Vec<u64>>,
    /// Records sent on each pub socket (by its key of `PROCNET_PUB`: the port, or
    /// `<port>!drop` for its lossy socket), per topic: what its `eos` said.
    pub published: Option<BTreeMap<String, Counts>>,
    /// Records received on the PULL socket (every push input together).
    pub pulled: Option<u64>,
    /// Records received on the SUB socket of each pub entry of `wire.inputs`, in order.
    pub subscribed: Option<Vec<u64>>,
}

/// Every message of the protocol, data and control alike.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A batch of records (data socket).
    Data(Vec<Record>),
    /// End of stream on one pipe, from one upstream replica, with the records it sent on it.
    Eos {
        /// `name.replica` of the sender.
        from: String,
        /// Records it sent on this pipe (on a pub port: published in all).
        sent: u64,
        /// The port (`out` when absent on the wire).
        port: String,
        /// On a pub port: records published per topic (empty on a push port).
        topics: BTreeMap<String, u64>,
    },
    /// Node to launcher: started, input bound.
    Hello {
        /// Node name.
        node: String,
        /// Replica index.
        replica: u32,
        /// Process id.
        pid: u32,
        /// The bound input endpoint, nil for a node without inputs.
        input: Option<String>,
        /// Values this node offers to the others, e.g. `{"url": "http://127.0.0.1:41000"}`
        /// from a `serve` node. Optional on the wire; written only when not empty.
        publish: BTreeMap<String, String>,
        /// The endpoint each pub port is bound to. Optional; written only when not empty.
        ports: BTreeMap<String, String>,
    },
    /// Launcher to node: whom it reads from and where to send.
    Wire {
        /// Upstream nodes and their replica counts (how many `eos` end the input).
        inputs: Vec<Upstream>,
        /// Downstream nodes and their replicas' endpoints.
        outputs: Vec<Downstream>,
        /// Every value published in a `hello`, as `"<node>.<key>"` (replica 0's, for a
        /// replicated node). Optional on the wire; written only when not empty.
        vars: BTreeMap<String, String>,
        /// The node's own pub ports. Optional on the wire; written only when not empty.
        ports: Vec<PubPort>,
    },
    /// Node to launcher: outputs connected.
    Ready,
    /// Launcher to node: every node is ready; sources may begin.
    Start,
    /// Launcher to node: stop reading sources, drain and finish.
    Stop,
    /// Node to launcher: input ended, output flushed, `eos` sent; `notes` says what was dropped.
    Done {
        /// The node's counters.
        stats: Stats,
        /// The first reasons for dropped frames and records.
        notes: Vec<String>,
        /// The node's result, if it has one (a `tally`'s JSON line), for the run report.
        /// Optional on the wire; written only when present.
        result: Option<String>,
        /// Records per edge, for the launcher's conservation check. Optional on the wire.
        flows: Flows,
    },
    /// Launcher to node: every consumer of this node has finished, so its data sockets may
    /// close and it may exit. Closing earlier can lose records (see `docs/protocol.md`).
    Bye,
    /// Node to launcher, while running (at most every 250 ms): the counters so far, for
    /// progress displays. Launchers may ignore it.
    Stats(Stats),
    /// Node to launcher: the node could not go on.
    Failed {
        /// Why, in words.
        error: String,
    },
    /// Launcher to node: upstream replica `from` died mid-stream and is being restarted, so
    /// the records it announces can no longer be checked against those received (a second
    /// `eos` from it is no error either). The run already reports it incomplete.
    Restarted {
        /// `name.replica` of the restarted upstream replica.
        from: String,
    },
    /// Launcher to node: downstream replica `to` was restarted and may have missed this
    /// node's `eos`: send it again on that pipe once this node's stream has ended (at once if
    /// it already has).
    Resend {
        /// `name.replica` of the restarted downstream replica.
        to: String,
    },
}

impl Message {
    /// The value of `"t"` for this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Data(_) => "data",
            Message::Eos { .. } => "eos",
            Message::Hello { .. } => "hello",
            Message::Wire { .. } => "wire",
            Message::Ready => "ready",
            Message::Start => "start",
            Message::Stop => "stop",
            Message::Done { .. } => "done",
            Message::Stats(_) => "stats",
            Message::Bye => "bye",
            Message::Failed { .. } => "failed",
            Message::Restarted { .. } => "restarted",
            Message::Resend { .. } => "resend",
        }
    }
}

fn s(x: &str) -> Value {
    Value::from(x)
}

fn header(t: &str) -> Vec<(Value, Value)> {
    vec![(s("v"), Value::from(VERSION)), (s("t"), s(t))]
}

fn push_stats(map: &mut Vec<(Value, Value)>, stats: &Stats) {
    map.push((s("received"), Value::from(stats.received)));
    map.push((s("sent"), Value::from(stats.sent)));
    map.push((s("invalid_frames"), Value::from(stats.invalid_frames)));
    map.push((s("bad_records"), Value::from(stats.bad_records)));
    map.push((s("errors"), Value::from(stats.errors)));
    map.push((s("dropped"), Value::from(stats.dropped)));
    map.push((s("blocked_ms"), Value::from(stats.blocked_ms)));
}

fn counts(v: &[u64]) -> Value {
    Value::Array(v.iter().map(|&n| Value::from(n)).collect())
}

fn count_map(m: &BTreeMap<String, u64>) -> Value {
    Value::Map(m.iter().map(|(k, &n)| (s(k), Value::from(n))).collect())
}

fn push_flows(map: &mut Vec<(Value, Value)>, flows: &Flows) {
    if let Some(outputs) = &flows.outputs {
        map.push((s("outputs"), counts(outputs)));
    }
    if let Some(published) = &flows.published {
        map.push((s("published"), Value::Map(published.iter().map(|(k, m)| (s(k), count_map(m))).collect())));
    }
    if let Some(n) = flows.pulled {
        map.push((s("pulled"), Value::from(n)));
    }
    if let Some(subscribed) = &flows.subscribed {
        map.push((s("subscribed"), counts(subscribed)));
    }
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(m.iter().map(|(k, v)| (s(k), s(v))).collect())
}

/// Encode a message as one frame.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut map = header(msg.type_name());
    match msg {
        Message::Data(records) => {
            let mut out = Vec::new();
            write_data_header(&mut out, records.len());
            for r in records {
                write_record(&mut out, r);
            }
            return out;
        }
        Message::Eos { from, sent, port, topics } => {
            map.push((s("from"), s(from)));
            map.push((s("sent"), Value::from(*sent)));
            if port != "out" {
                map.push((s("port"), s(port)));
            }
            if !topics.is_empty() {
                map.push((s("topics"), count_map(topics)));
            }
        }
        Message::Hello { node, replica, pid, input, publish, ports } => {
            map.push((s("node"), s(node)));
            map.push((s("replica"), Value::from(*replica)));
            map.push((s("pid"), Value::from(*pid)));
            map.push((s("input"), input.as_deref().map_or(Value::Nil, s)));
            if !publish.is_empty() {
                map.push((s("publish"), string_map(publish)));
            }
            if !ports.is_empty() {
                map.push((s("ports"), string_map(ports)));
            }
        }
        Message::Wire { inputs, outputs, vars, ports } => {
            let strings = |v: &[String]| Value::Array(v.iter().map(|e| s(e)).collect());
            let ins = inputs
                .iter()
                .map(|u| {
                    let mut m = vec![(s("node"), s(&u.node)), (s("replicas"), Value::from(u.replicas))];
                    if u.port != "out" {
                        m.push((s("port"), s(&u.port)));
                    }
                    if let Some(sub) = &u.subscribe {
                        m.push((s("pattern"), s("pub")));
                        m.push((s("topics"), strings(&sub.topics)));
                        m.push((s("endpoints"), strings(&sub.endpoints)));
                    }
                    Value::Map(m)
                })
                .collect();
            let outs = outputs
                .iter()
                .map(|d| {
                    let mut m = vec![(s("node"), s(&d.node)), (s("endpoints"), strings(&d.endpoints))];
                    if d.port != "out" {
                        m.push((s("port"), s(&d.port)));
                    }
                    Value::Map(m)
                })
                .collect();
            map.push((s("inputs"), Value::Array(ins)));
            map.push((s("outputs"), Value::Array(outs)));
            if !vars.is_empty() {
                map.push((s("vars"), string_map(vars)));
            }
            if !ports.is_empty() {
                let ports = ports
                    .iter()
                    .map(|p| {
                        let mut m = vec![(s("name"), s(&p.name)), (s("subscribers"), Value::from(p.subscribers))];
                        if p.drop_subscribers > 0 {
                            m.push((s("drop_subscribers"), Value::from(p.drop_subscribers)));
                        }
                        if let Some(f) = &p.topic_field {
                            m.push((s("topic_field"), s(f)));
                        }
                        if let Some(t) = &p.topic {
                            m.push((s("topic"), s(t)));
                        }
                        Value::Map(m)
                    })
                    .collect();
                map.push((s("ports"), Value::Array(ports)));
            }
        }
        Message::Ready | Message::Start | Message::Stop | Message::Bye => {}
        Message::Done { stats, notes, result, flows } => {
            push_stats(&mut map, stats);
            map.push((s("notes"), Value::Array(notes.iter().map(|n| s(n)).collect())));
            if let Some(r) = result {
                map.push((s("result"), s(r)));
            }
            push_flows(&mut map, flows);
        }
        Message::Stats(stats) => push_stats(&mut map, stats),
        Message::Failed { error } => map.push((s("error"), s(error))),
        Message::Restarted { from } => map.push((s("from"), s(from))),
        Message::Resend { to } => map.push((s("to"), s(to))),
    }
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &Value::Map(map)).expect("writing to a Vec cannot fail");
    out
}

/// How every `data` frame starts (`{"v": 1, "t": "data", "records": `, section 6.1 of
/// docs/protocol.md); the array header and the records follow.
pub const DATA_HEADER: &[u8] = b"\x83\xa1v\x01\xa1t\xa4data\xa7records";

/// Write the start of a `data` message holding `count` records; the records follow, each
/// written with [`write_record`]. Lets a sender encode records once, as they come.
pub fn write_data_header(out: &mut Vec<u8>, count: usize) {
    let len = u32::try_from(count).expect("a batch holds fewer than 2^32 records");
    out.extend_from_slice(DATA_HEADER);
    rmp::encode::write_array_len(out, len).expect("writing to a Vec cannot fail");
}

/// The records of a `data` frame laid out as [`DATA_HEADER`] says, checked where they lie:
/// the offset of the first, and the length of each. None for any other frame, valid or not,
/// and for one holding a record too deep to read here: [`data_records`] reads those, in the
/// same way, and explains.
pub fn data_in_place(frame: &[u8]) -> Option<(usize, Lengths)> {
    let rest = frame.strip_prefix(DATA_HEADER)?;
    let (count, header) = match *rest.first()? {
        m @ 0x90..=0x9f => (usize::from(m & 0x0f), 1),
        0xdc => (usize::from(u16::from_be_bytes(rest.get(1..3)?.try_into().ok()?)), 3),
        0xdd => (u32::from_be_bytes(rest.get(1..5)?.try_into().ok()?) as usize, 5),
        _ => return None,
    };
    let first = DATA_HEADER.len() + header;
    // Every record takes a byte at least: a count beyond that is a lie, not an allocation.
    let mut lengths = Lengths::with_capacity(count.min(frame.len() - first));
    let mut pos = first;
    for _ in 0..count {
        let end = raw::check_record(frame, pos).ok()?;
        lengths.push(end - pos);
        pos = end;
    }
    (pos == frame.len()).then_some((first, lengths))
}

/// The records of a valid `data` frame, found where they lie in it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRecords {
    /// The offset of the first record; the others follow it back to back.
    pub first: usize,
    /// The length of every record, in order.
    pub lengths: Lengths,
    /// The records nested deeper than [`raw::MAX_DEPTH`], by index, with why: valid in their
    /// frame, but dropped alone by a receiver (docs/protocol.md §7).
    pub too_deep: Vec<(usize, RawError)>,
}

/// Read `frame` as a `data` message in any valid layout, without decoding a record: where
/// its records lie. Ok(None) for a valid frame of another type ([`decode`] it), and for an
/// invalid frame the error [`decode`] gives, which reads its records the same way.
pub fn data_records(frame: &[u8]) -> Result<Option<DataRecords>, DecodeError> {
    if let Some((first, lengths)) = data_in_place(frame) {
        return Ok(Some(DataRecords { first, lengths, too_deep: Vec::new() }));
    }
    if message_type(frame)? != "data" {
        return Ok(None);
    }
    let m = Fields::read(frame, whole(frame), "data", DATA)?;
    let span = m.need("records")?;
    let records = fields::elements(frame, span).ok_or_else(|| m.wrong("records", "an array", span))?;
    let (mut first, mut lengths, mut too_deep) = (span.end, Lengths::default(), Vec::new());
    for (i, r) in records.enumerate() {
        first = first.min(r.start);
        let check =
            raw::check_record_apart(frame, r.start).map_err(|e| DecodeError(format!("data record {i}: {e}")))?;
        too_deep.extend(check.too_deep.map(|e| (i, e)));
        lengths.push(r.end - r.start);
    }
    Ok(Some(DataRecords { first, lengths, too_deep }))
}

/// Append one record (a map with string keys) to `out`.
pub fn write_record(out: &mut Vec<u8>, record: &Record) {
    let len = u32::try_from(record.fields().len()).expect("a record has fewer than 2^32 fields");
    rmp::encode::write_map_len(out, len).expect("writing to a Vec cannot fail");
    for (k, v) in record.fields() {
        rmp::encode::write_str(out, k).expect("writing to a Vec cannot fail");
        rmpv::encode::write_value(out, v).expect("writing to a Vec cannot fail");
    }
}

/// The whole frame as one span.
fn whole(frame: &[u8]) -> Span {
    Span { start: 0, end: frame.len() }
}

/// The type of a message, read in place without decoding the rest: the frame must be one
/// complete MessagePack map (any depth: nothing is built to check it) whose `v` is 1 and
/// whose `t` names a type, each given once. A data socket needs no more to refuse a message
/// of the wrong type, however big.
pub fn message_type(frame: &[u8]) -> Result<&'static str, DecodeError> {
    let end = raw::value_end(frame, 0).map_err(|e| DecodeError(format!("not a MessagePack value ({e})")))?;
    if end != frame.len() {
        return Err(DecodeError(format!("{} bytes after the message", frame.len() - end)));
    }
    if !matches!(frame[0], 0x80..=0x8f | 0xde | 0xdf) {
        return Err(DecodeError(format!("a message must be a map, found {}", raw::kind_of_marker(frame[0]))));
    }
    let m = Fields::read(frame, whole(frame), "message", &["v", "t"])?;
    let v = m.get("v").ok_or_else(|| DecodeError("message is missing field `v` (the protocol version)".into()))?;
    match fields::integer(frame, v) {
        Some(v) if v == i128::from(VERSION) => {}
        Some(v) => return Err(DecodeError(format!("unsupported protocol version {v} (this side speaks {VERSION})"))),
        None => return Err(DecodeError(format!("`v` must be an integer, found {}", fields::kind(frame, v)))),
    }
    let t = m.string("t")?;
    TYPES.iter().find(|&&known| known == t).copied().ok_or_else(|| DecodeError(format!("unknown message type `{t}`")))
}

/// Every message type, as `"t"` names it.
const TYPES: [&str; 13] =
    ["data", "eos", "hello", "wire", "ready", "start", "stop", "done", "stats", "bye", "failed", "restarted", "resend"];

// The fields each kind of map defines, besides `v` and `t` (docs/protocol.md §6): found by
// name, and refused when given twice. A field decoded below must be listed here.
const DATA: &[&str] = &["records"];
const EOS: &[&str] = &["from", "sent", "port", "topics"];
const HELLO: &[&str] = &["node", "replica", "pid", "input", "publish", "ports"];
const WIRE: &[&str] = &["inputs", "outputs", "vars", "ports"];
const STATS: &[&str] = &["received", "sent", "invalid_frames", "bad_records", "errors", "dropped", "blocked_ms"];
const DONE: &[&str] = &[
    "received",
    "sent",
    "invalid_frames",
    "bad_records",
    "errors",
    "dropped",
    "blocked_ms",
    "notes",
    "result",
    "outputs",
    "published",
    "pulled",
    "subscribed",
];
const FAILED: &[&str] = &["error"];
const RESTARTED: &[&str] = &["from"];
const RESEND: &[&str] = &["to"];
const NONE: &[&str] = &[];
const WIRE_INPUT: &[&str] = &["node", "replicas", "port", "pattern", "topics", "endpoints"];
const WIRE_OUTPUT: &[&str] = &["node", "endpoints", "port"];
const WIRE_PORT: &[&str] = &["name", "subscribers", "drop_subscribers", "topic_field", "topic"];

/// Read an `eos` in place: its sender, count and port, with each entry of its `topics`
/// given to `topic` (each topic once, in the map's order) and nothing of them kept.
pub fn read_eos(frame: &[u8], topic: impl FnMut(&str, u64)) -> Result<(String, u64, String), DecodeError> {
    if message_type(frame)? != "eos" {
        return Err(DecodeError("not an `eos` message".into()));
    }
    let m = Fields::read(frame, whole(frame), "eos", EOS)?;
    let (from, sent) = (m.string("from")?, m.uint("sent")?);
    let port = m.opt_string("port")?.unwrap_or_else(|| "out".into());
    m.opt_counts("topics", topic)?;
    Ok((from, sent, port))
}

/// Decode one frame received on the control channel: as [`decode`], but a `data` or `eos`
/// message, which belongs on a data socket, is refused before anything of it is built (a
/// batch of records decoded into values could take many times the frame's memory).
pub fn decode_control(frame: &[u8]) -> Result<Message, DecodeError> {
    match message_type(frame)? {
        t @ ("data" | "eos") => Err(DecodeError(format!("`{t}` belongs on a data socket, not the control channel"))),
        _ => decode(frame),
    }
}

/// Decode one frame. Unknown extra fields are ignored, so later minor additions stay
/// readable; a field of the message given twice makes it invalid (docs/protocol.md §5.3).
///
/// The frame is read in place ([`message_type`], [`data_records`]) and only what the message
/// holds is built. A `data` message's records are decoded whatever memory that takes (an
/// `rmpv` value per value, 40 bytes for a one-byte nil): nodes never decode a `data` frame
/// this way, they read its records in place. Records nested deeper than [`raw::MAX_DEPTH`]
/// are left out, as a receiver drops them.
pub fn decode(frame: &[u8]) -> Result<Message, DecodeError> {
    let t = message_type(frame)?;
    if t == "data" {
        let d = data_records(frame)?.expect("a data message");
        let mut deep = d.too_deep.iter().map(|&(i, _)| i).peekable();
        let (mut pos, mut records) = (d.first, Vec::with_capacity(d.lengths.len() - d.too_deep.len()));
        for (i, len) in d.lengths.iter().enumerate() {
            let bytes = &frame[pos..pos + len];
            pos += len;
            if deep.next_if_eq(&i).is_none() {
                let record = RawRecord::checked(bytes).decode_unbounded();
                records.push(record.map_err(|e| DecodeError(format!("data record {i}: {e}")))?);
            }
        }
        return Ok(Message::Data(records));
    }
    if t == "eos" {
        let mut topics = BTreeMap::new();
        let (from, sent, port) = read_eos(frame, |t, n| {
            topics.insert(t.to_string(), n);
        })?;
        return Ok(Message::Eos { from, sent, port, topics });
    }
    let names = match t {
        "hello" => HELLO,
        "wire" => WIRE,
        "stats" => STATS,
        "done" => DONE,
        "failed" => FAILED,
        "restarted" => RESTARTED,
        "resend" => RESEND,
        _ => NONE,
    };
    let m = Fields::read(frame, whole(frame), t, names)?;
    Ok(match t {
        "hello" => Message::Hello {
            node: m.string("node")?,
            replica: m.u32("replica")?,
            pid: m.u32("pid")?,
            input: m.opt_string("input")?,
            publish: m.opt_string_map("publish")?,
            ports: m.opt_string_map("ports")?,
        },
        "wire" => {
            let inputs = m.array("inputs")?.map(|e| upstream(frame, e)).collect::<Result<_, _>>()?;
            let outputs = m.array("outputs")?.map(|e| downstream(frame, e)).collect::<Result<_, _>>()?;
            let vars = m.opt_string_map("vars")?;
            let ports = m.opt_array("ports")?.into_iter().map(|e| pub_port(frame, e)).collect::<Result<_, _>>()?;
            Message::Wire { inputs, outputs, vars, ports }
        }
        "ready" => Message::Ready,
        "start" => Message::Start,
        "stop" => Message::Stop,
        "bye" => Message::Bye,
        "done" => Message::Done {
            stats: stats(&m)?,
            notes: m.strings("notes")?,
            result: m.opt_string("result")?,
            flows: Flows {
                outputs: m.opt_count_list("outputs")?,
                published: m.opt_count_maps("published")?,
                pulled: m.opt_count("pulled")?,
                subscribed: m.opt_count_list("subscribed")?,
            },
        },
        "stats" => Message::Stats(stats(&m)?),
        "restarted" => Message::Restarted { from: m.string("from")? },
        "resend" => Message::Resend { to: m.string("to")? },
        _ => Message::Failed { error: m.string("error")? },
    })
}

fn stats(m: &Fields<'_>) -> Result<Stats, DecodeError> {
    Ok(Stats {
        received: m.uint("received")?,
        sent: m.uint("sent")?,
        invalid_frames: m.uint("invalid_frames")?,
        bad_records: m.uint("bad_records")?,
        errors: m.opt_uint("errors")?,
        dropped: m.opt_uint("dropped")?,
        blocked_ms: m.opt_uint("blocked_ms")?,
    })
}

fn upstream(frame: &[u8], span: Span) -> Result<Upstream, DecodeError> {
    let m = Fields::read(frame, span, "wire input", WIRE_INPUT)?;
    let (node, replicas) = (m.string("node")?, m.u32("replicas")?);
    let port = m.opt_string("port")?.unwrap_or_else(|| "out".into());
    let subscribe = match m.opt_string("pattern")?.as_deref() {
        None | Some("push") => None,
        Some("pub") => Some(Subscribe { topics: m.strings("topics")?, endpoints: m.strings("endpoints")? }),
        Some(other) => return Err(DecodeError(format!("wire input has an unknown pattern `{other}`"))),
    };
    Ok(Upstream { node, replicas, port, subscribe })
}

fn downstream(frame: &[u8], span: Span) -> Result<Downstream, DecodeError> {
    let m = Fields::read(frame, span, "wire output", WIRE_OUTPUT)?;
    let endpoints = m.strings("endpoints")?;
    let port = m.opt_string("port")?.unwrap_or_else(|| "out".into());
    Ok(Downstream { node: m.string("node")?, endpoints, port })
}

fn pub_port(frame: &[u8], span: Span) -> Result<PubPort, DecodeError> {
    let m = Fields::read(frame, span, "wire port", WIRE_PORT)?;
    Ok(PubPort {
        name: m.string("name")?,
        subscribers: m.u32("subscribers")?,
        drop_subscribers: u32::try_from(m.opt_uint("drop_subscribers")?)
            .map_err(|_| DecodeError("field `drop_subscribers` of wire port is out of range".into()))?,
        topic_field: m.opt_string("topic_field")?,
        topic: m.opt_string("topic")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A `data` frame sent to the launcher was decoded into values first, many times its size.
    #[test]
    fn the_control_channel_refuses_data_messages_before_decoding_them() {
        let data = encode(&Message::Data(vec![Record::new()]));
        assert_eq!(
            decode_control(&data),
            Err(DecodeError("`data` belongs on a data socket, not the control channel".into()))
        );
        assert_eq!(decode_control(&encode(&Message::Ready)), Ok(Message::Ready));
    }

    #[test]
    fn every_message_round_trips() {
        let mut rec = Record::new();
        rec.insert("url", "http://a.test/");
        let msgs = [
            Message::Data(vec![rec.clone(), rec]),
            Message::Eos { from: "a.0".into(), sent: 7, port: "out".into(), topics: Default::default() },
            Message::Eos {
                from: "p.1".into(),
                sent: 3,
                port: "hosts".into(),
                topics: BTreeMap::from([("a".into(), 1), ("b".into(), 2)]),
            },
            Message::Hello {
                node: "a".into(),
                replica: 1,
                pid: 42,
                input: None,
                publish: BTreeMap::new(),
                ports: BTreeMap::new(),
            },
            Message::Hello {
                node: "s".into(),
                replica: 0,
                pid: 43,
                input: None,
                publish: BTreeMap::from([("url".into(), "http://127.0.0.1:1".into())]),
                ports: BTreeMap::from([("progress".into(), "ipc://x.progress".into())]),
            },
            Message::Wire {
                inputs: vec![
                    Upstream { node: "u".into(), replicas: 2, port: "out".into(), subscribe: None },
                    Upstream {
                        node: "p".into(),
                        replicas: 2,
                        port: "hosts".into(),
                        subscribe: Some(Subscribe { topics: vec!["a".into()], endpoints: vec!["ipc://p.0".into()] }),
                    },
                ],
                outputs: vec![Downstream { node: "d".into(), endpoints: vec!["ipc://x".into()], port: "x".into() }],
                vars: BTreeMap::from([("s.url".into(), "http://127.0.0.1:1".into())]),
                ports: vec![PubPort {
                    name: "hosts".into(),
                    subscribers: 3,
                    drop_subscribers: 1,
                    topic_field: Some("host".into()),
                    topic: None,
                }],
            },
            Message::Ready,
            Message::Start,
            Message::Stop,
            Message::Bye,
            Message::Stats(Stats { received: 9, ..Default::default() }),
            Message::Done {
                stats: Stats {
                    received: 1,
                    sent: 2,
                    invalid_frames: 3,
                    bad_records: 4,
                    errors: 5,
                    dropped: 6,
                    blocked_ms: 7,
                },
                notes: vec!["n".into()],
                result: None,
                flows: Flows::default(),
            },
            Message::Done {
                stats: Stats::default(),
                notes: vec![],
                result: Some("{\"count\":3}".into()),
                flows: Flows {
                    outputs: Some(vec![3, 0]),
                    published: Some(BTreeMap::from([(
                        "hosts!drop".into(),
                        BTreeMap::from([("a".into(), 1), ("".into(), 2)]),
                    )])),
                    pulled: Some(0),
                    subscribed: Some(vec![5]),
                },
            },
            Message::Failed { error: "boom".into() },
            Message::Restarted { from: "w.1".into() },
            Message::Resend { to: "w.1".into() },
        ];
        for m in msgs {
            assert_eq!(decode(&encode(&m)).unwrap(), m);
        }
    }

    #[test]
    fn data_frames_are_read_in_place_when_laid_out_as_written() {
        let mut rec = Record::new();
        rec.insert("url", "http://a.test/");
        for n in [0, 1, 15, 16, 70_000] {
            let frame = encode(&Message::Data(vec![rec.clone(); n]));
            let first = DATA_HEADER.len()
                + if n < 16 {
                    1
                } else if n < 65_536 {
                    3
                } else {
                    5
                };
            assert_eq!(data_in_place(&frame).map(|(f, ends)| (f, ends.len())), Some((first, n)));
        }
        let frame = encode(&Message::Data(vec![rec.clone(); 2]));
        // A truncated frame, a frame with a byte too many, a bad record: left to `decode`.
        assert_eq!(data_in_place(&frame[..frame.len() - 1]), None);
        assert_eq!(data_in_place(&[&frame[..], b"\x00"].concat()), None);
        let bad = [DATA_HEADER, b"\x91\x01"].concat();
        assert_eq!(data_in_place(&bad), None);
        assert!(decode(&bad).unwrap_err().0.contains("data record 0: a record must be a map"));
        // Fields in another order are valid too, just not read in place.
        let mut other = Vec::new();
        let map = vec![(s("t"), s("data")), (s("v"), Value::from(1)), (s("records"), Value::Array(vec![]))];
        rmpv::encode::write_value(&mut other, &Value::Map(map)).unwrap();
        assert_eq!(data_in_place(&other), None);
        assert_eq!(decode(&other).unwrap(), Message::Data(vec![]));
    }

    #[test]
    fn a_deep_record_is_set_apart_but_every_key_is_still_checked() {
        let deep = [&[0x81, 0xa1, b'd'][..], &[0x91; raw::MAX_DEPTH + 1], &[0xc0]].concat();
        let frame = [DATA_HEADER, b"\x92", &deep, b"\x81\xa2ok\x01"].concat();
        assert!(data_in_place(&frame).is_none());
        let d = data_records(&frame).unwrap().unwrap();
        assert_eq!((d.lengths.len(), d.too_deep.len(), d.too_deep[0].0), (2, 1, 0));
        let mut ok = Record::new();
        ok.insert("ok", 1);
        assert_eq!(decode(&frame).unwrap(), Message::Data(vec![ok]));
        // A key that is not a str after the deep value: the frame is invalid, as it would be
        // were the value shallow.
        let bad = [DATA_HEADER, b"\x91", &[0x82, 0xa1, b'd'], &[0x91; raw::MAX_DEPTH + 1], b"\xc0\x05\x01"].concat();
        assert_eq!(data_records(&bad).unwrap_err().0, "data record 0: record keys must be strings, found an integer");
        assert_eq!(decode(&bad).unwrap_err().0, "data record 0: record keys must be strings, found an integer");
    }

    #[test]
    fn garbage_and_wrong_versions_are_errors_not_panics() {
        assert!(decode(b"\xc1garbage").is_err());
        assert!(decode(b"").is_err());
        let mut v2 = header("start");
        v2[0].1 = Value::from(2);
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &Value::Map(v2)).unwrap();
        assert!(decode(&buf).unwrap_err().0.contains("unsupported protocol version 2"));
        let mut eos = Vec::new();
        rmpv::encode::write_value(&mut eos, &Value::Map(header("eos"))).unwrap();
        assert_eq!(decode(&eos).unwrap_err().0, "message `eos` is missing field `from`");
    }
}
