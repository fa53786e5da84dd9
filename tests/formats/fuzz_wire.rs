//! Fuzzing the wire decoder (docs/protocol.md §5, §7, §9) on the stable toolchain, with
//! proptest: frames made from the golden vectors and from generated messages and records,
//! changed as a hostile or broken sender would (fields reordered, repeated, added, removed or
//! retyped; larger encodings than needed; bytes flipped, cut, inserted; huge lengths; deep
//! nesting), then read every way procnet reads them:
//!
//! - `wire::decode` never panics, and allocates in proportion to the frame;
//! - the in-place readings a node's input uses (`wire::data_in_place`, `wire::data_records`,
//!   `wire::message_type`, `wire::read_eos`) agree with it on what is valid and on what the
//!   frame holds, and allocate at most about the frame's size;
//! - the in-place record reader (`record::raw`) agrees with `rmpv` on every record it accepts,
//!   field by field, and its text with `text_of`;
//! - the Python package's decoder agrees on which frames are valid (when the virtualenv is
//!   there), but for the differences docs/protocol.md §7 allows.
//!
//! `PROCNET_FUZZ_CASES` and `PROCNET_FUZZ_SEED` set the number of inputs and the seed (see
//! `tests/util/fuzz.rs`); `make fuzz` runs many. A crash found here becomes a named regression
//! test below.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestCaseError;

use crate::util::fuzz::{self, fail, mutate, mutation, peak_during, Mutation};
use crate::util::golden::{golden_frames, hex};
use procnet::record::raw;
use procnet::record::{text, text_of, RawRecord, Record, Value};
use procnet::wire::{self, Downstream, Flows, Message, PubPort, Stats, Subscribe, Upstream};

/// Inputs per target in a `cargo test` run.
const CASES: u32 = 600;

// ---- Values, records and messages -------------------------------------------------------

/// A str that is not UTF-8, as a receiver may get one.
fn bad_utf8(bytes: Vec<u8>) -> Value {
    let mut frame = vec![0xd9, bytes.len() as u8 + 1, 0xff];
    frame.extend(bytes);
    rmpv::decode::read_value(&mut frame.as_slice()).expect("a str")
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        (-40i64..200).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::F64),
        any::<f32>().prop_map(Value::F32),
        "[a-z \u{e9}\u{2713}\"\\\\\n\u{1}\u{7f}]{0,12}".prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(bad_utf8),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Binary),
        (any::<i8>(), prop::collection::vec(any::<u8>(), 0..18)).prop_map(|(t, d)| Value::Ext(t, d)),
    ]
}

/// A field name: few, so that they repeat.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["id", "url", "line", "body", "a", "", "v", "t", "records"]).prop_map(str::to_string),
        "[a-z\u{e9}]{1,4}",
    ]
}

/// Any value, nested a few levels.
fn value() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((prop_oneof![name().prop_map(Value::from), inner.clone()], inner), 0..5)
                    .prop_map(Value::Map),
            ]
        })
        .boxed()
}

/// A record: a map with str keys, some repeated.
fn record() -> impl Strategy<Value = Value> {
    prop::collection::vec((name(), value()), 0..6)
        .prop_map(|fields| Value::Map(fields.into_iter().map(|(k, v)| (Value::from(k), v)).collect()))
}

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9.:/]{0,12}"
}

fn stats() -> impl Strategy<Value = Stats> {
    prop::array::uniform7(prop_oneof![0u64..300, any::<u64>()]).prop_map(|[a, b, c, d, e, f, g]| Stats {
        received: a,
        sent: b,
        invalid_frames: c,
        bad_records: d,
        errors: e,
        dropped: f,
        blocked_ms: g,
    })
}

fn names_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(text(), text(), 0..3)
}

/// Any message but `data`.
fn control() -> impl Strategy<Value = Message> {
    let strings = || prop::collection::vec(text(), 0..3);
    let upstream = (text(), any::<u32>(), text(), prop::option::of((strings(), strings()))).prop_map(
        |(node, replicas, port, sub)| Upstream {
            node,
            replicas,
            port,
            subscribe: sub.map(|(topics, endpoints)| Subscribe { topics, endpoints }),
        },
    );
    let downstream =
        (text(), strings(), text()).prop_map(|(node, endpoints, port)| Downstream { node, endpoints, port });
    let port = (text(), any::<u32>(), any::<u32>(), prop::option::of(text()), prop::option::of(text())).prop_map(
        |(name, subscribers, drop_subscribers, topic_field, topic)| PubPort {
            name,
            subscribers,
            drop_subscribers,
            topic_field,
            topic,
        },
    );
    prop_oneof![
        (text(), any::<u64>(), text(), prop::collection::btree_map(text(), any::<u64>(), 0..3))
            .prop_map(|(from, sent, port, topics)| Message::Eos { from, sent, port, topics }),
        (text(), any::<u32>(), any::<u32>(), prop::option::of(text()), names_map(), names_map()).prop_map(
            |(node, replica, pid, input, publish, ports)| Message::Hello { node, replica, pid, input, publish, ports }
        ),
        (
            prop::collection::vec(upstream, 0..3),
            prop::collection::vec(downstream, 0..3),
            names_map(),
            prop::collection::vec(port, 0..2)
        )
            .prop_map(|(inputs, outputs, vars, ports)| Message::Wire { inputs, outputs, vars, ports }),
        prop::sample::select(vec![Message::Ready, Message::Start, Message::Stop, Message::Bye]),
        (stats(), strings(), prop::option::of(text()), flows())
            .prop_map(|(stats, notes, result, flows)| { Message::Done { stats, notes, result, flows } }),
        stats().prop_map(Message::Stats),
        text().prop_map(|error| Message::Failed { error }),
        text().prop_map(|from| Message::Restarted { from }),
        text().prop_map(|to| Message::Resend { to }),
    ]
}

/// Records per edge, as `done` reports them: each field present or not.
fn flows() -> impl Strategy<Value = Flows> {
    let counts = || prop::option::of(prop::collection::vec(any::<u64>(), 0..4));
    let topics = prop::collection::btree_map(text(), any::<u64>(), 0..3);
    let published = prop::option::of(prop::collection::btree_map(text(), topics, 0..3));
    (counts(), published, prop::option::of(any::<u64>()), counts())
        .prop_map(|(outputs, published, pulled, subscribed)| Flows { outputs, published, pulled, subscribed })
}

/// Write `v` with encodings larger than needed where `pick` says so: what another
/// implementation may send, and receivers must accept (§5.2).
fn write_padded(out: &mut Vec<u8>, v: &Value, pick: &mut impl FnMut() -> bool) {
    use rmp::encode as e;
    const W: &str = "writing to a Vec";
    if !pick() {
        match v {
            Value::Array(items) => {
                e::write_array_len(out, items.len() as u32).expect(W);
                items.iter().for_each(|i| write_padded(out, i, pick));
            }
            Value::Map(entries) => {
                e::write_map_len(out, entries.len() as u32).expect(W);
                for (k, x) in entries {
                    write_padded(out, k, pick);
                    write_padded(out, x, pick);
                }
            }
            other => rmpv::encode::write_value(out, other).expect(W),
        }
        return;
    }
    match v {
        Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => {
                out.push(0xcf);
                out.extend(u.to_be_bytes());
            }
            (None, Some(n)) => {
                out.push(0xd3);
                out.extend(n.to_be_bytes());
            }
            _ => unreachable!("an integer is a u64 or an i64"),
        },
        Value::String(s) => {
            out.push(0xdb);
            out.extend((s.as_bytes().len() as u32).to_be_bytes());
            out.extend(s.as_bytes());
        }
        Value::Binary(b) => {
            out.push(0xc6);
            out.extend((b.len() as u32).to_be_bytes());
            out.extend(b);
        }
        Value::Ext(t, d) => {
            out.extend([0xc9]);
            out.extend((d.len() as u32).to_be_bytes());
            out.push(*t as u8);
            out.extend(d);
        }
        Value::Array(items) => {
            out.push(0xdd);
            out.extend((items.len() as u32).to_be_bytes());
            items.iter().for_each(|i| write_padded(out, i, pick));
        }
        Value::Map(entries) => {
            out.push(0xdf);
            out.extend((entries.len() as u32).to_be_bytes());
            for (k, x) in entries {
                write_padded(out, k, pick);
                write_padded(out, x, pick);
            }
        }
        other => rmpv::encode::write_value(out, other).expect(W),
    }
}

/// A change made to a frame's map before it is written: what a sender gets wrong in the
/// structure rather than the bytes.
#[derive(Debug, Clone)]
enum Change {
    /// Swap two entries.
    Swap(Index, Index),
    /// Give an entry twice (a map anywhere in the frame, by its place in a walk).
    Repeat(Index, Index),
    /// Remove an entry.
    Remove(Index),
    /// Add an entry (an unknown field, or a known one again).
    Add(String, Value),
    /// Replace an entry's value.
    Retype(Index, Value),
    /// Replace one record of a data frame with something else (deep, or not a record).
    Record(Index, Value),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Change::Swap(a, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Change::Repeat(a, b)),
        any::<Index>().prop_map(Change::Remove),
        (name(), value()).prop_map(|(k, v)| Change::Add(k, v)),
        (any::<Index>(), value()).prop_map(|(i, v)| Change::Retype(i, v)),
        (any::<Index>(), prop_oneof![value(), (125usize..135).prop_map(deep), (255usize..262).prop_map(deep)])
            .prop_map(|(i, v)| Change::Record(i, v)),
    ]
}

/// A record holding `levels` nested arrays.
fn deep(levels: usize) -> Value {
    let mut v = Value::Nil;
    for _ in 0..levels {
        v = Value::Array(vec![v]);
    }
    Value::Map(vec![(Value::from("deep"), v)])
}

/// The maps of `v`, in a walk (the outer first).
fn maps_of(v: &mut Value, out: &mut Vec<*mut Vec<(Value, Value)>>) {
    match v {
        Value::Map(entries) => {
            out.push(entries as *mut _);
            for (_, x) in entries.iter_mut() {
                maps_of(x, out);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| maps_of(x, out)),
        _ => {}
    }
}

fn apply(frame: &mut Value, c: &Change) {
    let Value::Map(entries) = frame else { return };
    let pick = |i: &Index, len: usize| (len > 0).then(|| i.index(len));
    match c {
        Change::Swap(a, b) => {
            if let (Some(a), Some(b)) = (pick(a, entries.len()), pick(b, entries.len())) {
                entries.swap(a, b);
            }
        }
        Change::Repeat(m, e) => {
            let mut maps = Vec::new();
            maps_of(frame, &mut maps);
            if let Some(m) = pick(m, maps.len()) {
                // SAFETY: one of the maps inside `frame`, which nothing else borrows now.
                let map = unsafe { &mut *maps[m] };
                if let Some(e) = pick(e, map.len()) {
                    let entry = map[e].clone();
                    map.push(entry);
                }
            }
        }
        Change::Remove(i) => {
            if let Some(i) = pick(i, entries.len()) {
                entries.remove(i);
            }
        }
        Change::Add(k, v) => entries.push((Value::from(k.as_str()), v.clone())),
        Change::Retype(i, v) => {
            if let Some(i) = pick(i, entries.len()) {
                entries[i].1 = v.clone();
            }
        }
        Change::Record(i, v) => {
            if let Some((_, Value::Array(records))) = entries.iter_mut().find(|(k, _)| k.as_str() == Some("records")) {
                if let Some(i) = pick(i, records.len()) {
                    records[i] = v.clone();
                }
            }
        }
    }
}

/// A valid frame to start from: a golden file, a message, or a batch of records.
fn base() -> impl Strategy<Value = Vec<u8>> {
    let golden = golden_frames();
    prop_oneof![
        prop::sample::select(golden),
        control().prop_map(|m| wire::encode(&m)),
        prop::collection::vec(record(), 0..5).prop_map(|records| {
            let mut frame = Vec::new();
            wire::write_data_header(&mut frame, records.len());
            for r in &records {
                rmpv::encode::write_value(&mut frame, r).expect("writing to a Vec");
            }
            frame
        }),
    ]
}

/// A frame: a valid one, changed in its structure and written with any encodings, then
/// damaged byte by byte.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    (
        base(),
        prop::collection::vec(change(), 0..3),
        any::<u64>(),
        prop_oneof![3 => Just(vec![]), 2 => prop::collection::vec(mutation(), 1..4)],
    )
        .prop_map(|(base, changes, pad, mutations)| {
            let mut bytes = base;
            if !changes.is_empty() || pad % 3 == 0 {
                if let Ok(mut v) = rmpv::decode::read_value(&mut bytes.as_slice()) {
                    changes.iter().for_each(|c| apply(&mut v, c));
                    let mut bits = pad;
                    let mut pick = || {
                        bits = bits.rotate_left(7) ^ 0x9e37_79b9;
                        bits % 5 == 0
                    };
                    bytes.clear();
                    write_padded(&mut bytes, &v, &mut pick);
                }
            }
            mutate(bytes, &mutations)
        })
}

// ---- The properties -----------------------------------------------------------------------

/// Every reading of `frame` agrees, none panics, and each allocates in proportion.
fn check_frame(frame: &[u8]) -> Result<(), TestCaseError> {
    let n = frame.len();
    let (decoded, decode_peak) = peak_during(|| wire::decode(frame));
    // A decoded data message holds a tree: about 100 bytes per one-byte value at most.
    if decode_peak > 160 * n + (64 << 10) {
        return Err(fail(format!("decode of {n} bytes allocated {decode_peak}")));
    }
    let ((fast, records, t), peak) =
        peak_during(|| (wire::data_in_place(frame), wire::data_records(frame), wire::message_type(frame)));
    // In place: the record lengths (a varint per record, at most a byte per byte of record,
    // twice while the vector grows), and an error message.
    if peak > 2 * n + 4096 {
        return Err(fail(format!("the in-place readings of {n} bytes allocated {peak}")));
    }
    match &decoded {
        Err(e) => {
            if fast.is_some() {
                return Err(fail(format!("data_in_place accepts a frame decode refuses: {e}")));
            }
            match &records {
                Ok(Some(_)) => return Err(fail(format!("data_records accepts a frame decode refuses: {e}"))),
                Err(e2) if e2 != e => return Err(fail(format!("data_records says `{e2}`, decode `{e}`"))),
                _ => {}
            }
            if let Err(e2) = &t {
                if e2 != e {
                    return Err(fail(format!("message_type says `{e2}`, decode `{e}`")));
                }
            }
        }
        Ok(m) => {
            if t.as_deref() != Ok(m.type_name()) {
                return Err(fail(format!("message_type says {t:?} of a `{}`", m.type_name())));
            }
            match (m, &records) {
                (Message::Data(recs), Ok(Some(d))) => {
                    if d.lengths.len() != recs.len() + d.too_deep.len() {
                        return Err(fail("data_records and decode count the records differently".into()));
                    }
                    // The records read in place are those decoded.
                    let mut pos = d.first;
                    let mut kept = recs.iter();
                    let mut deep = d.too_deep.iter().map(|(i, _)| *i).peekable();
                    for (i, len) in d.lengths.iter().enumerate() {
                        let bytes = &frame[pos..pos + len];
                        pos += len;
                        if deep.next_if_eq(&i).is_some() {
                            continue;
                        }
                        let raw = RawRecord::new(bytes).map_err(|e| fail(format!("record {i} read in place: {e}")))?;
                        let want = kept.next().expect("as many");
                        if raw.to_record().ok().map(|r| encoded(&r.to_value())) != Some(encoded(&want.to_value())) {
                            return Err(fail(format!("record {i} differs read in place")));
                        }
                    }
                    if let Some((first, lengths)) = &fast {
                        if (*first, lengths) != (d.first, &d.lengths) || !d.too_deep.is_empty() {
                            return Err(fail("data_in_place and data_records differ".into()));
                        }
                    }
                }
                (Message::Data(_), other) => return Err(fail(format!("decode reads data, data_records {other:?}"))),
                (_, Ok(None)) => {}
                (_, other) => return Err(fail(format!("decode reads a `{}`, data_records {other:?}", m.type_name()))),
            }
        }
    }
    if t.as_deref() == Ok("eos") {
        let mut topics = BTreeMap::new();
        let read = wire::read_eos(frame, |t, n| {
            topics.insert(t.to_string(), n);
        });
        let same = match (&read, &decoded) {
            (Ok((from, sent, port)), Ok(Message::Eos { from: f, sent: s, port: p, topics: t })) => {
                (from, sent, port, &topics) == (f, s, p, t)
            }
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        if !same {
            return Err(fail(format!("read_eos gives {read:?}, decode {decoded:?}")));
        }
    }
    Ok(())
}

#[test]
fn fuzz_wire_decode() {
    fuzz::with_big_stack(|| fuzz::run("wire_decode", CASES, frame(), |f| check_frame(&f)));
}

/// The bytes of `v`: values compare by them, as NaN is not equal to itself.
fn encoded(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).expect("writing to a Vec");
    out
}

/// Whether `v` holds a map with two keys of the same text (where `text_of`'s tree keeps one).
fn repeats_a_key(v: &Value) -> bool {
    match v {
        Value::Map(entries) => {
            let mut seen = std::collections::HashSet::new();
            entries.iter().any(|(k, x)| !seen.insert(text_of(k).into_owned()) || repeats_a_key(k) || repeats_a_key(x))
        }
        Value::Array(items) => items.iter().any(repeats_a_key),
        _ => false,
    }
}

/// The in-place record reader agrees with `rmpv` on `bytes`.
fn check_record(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (checked, peak) = peak_during(|| raw::check_record(bytes, 0));
    let apart = raw::check_record_apart(bytes, 0);
    let mut rd = bytes;
    let decoded = rmpv::decode::read_value(&mut rd);
    let consumed = bytes.len() - rd.len();
    // A value that rmpv reads (1024 levels at most), value_end reads to the same end; but
    // rmpv reads the reserved marker 0xc1 as nil, where procnet refuses it.
    if decoded.is_ok() && !bytes.contains(&0xc1) && raw::value_end(bytes, 0) != Ok(consumed) {
        return Err(fail(format!("value_end {:?}, rmpv read {consumed}", raw::value_end(bytes, 0))));
    }
    let end = match checked {
        Err(e) => {
            if let Ok(c) = &apart {
                if c.too_deep.is_none() {
                    return Err(fail(format!("check_record says `{e}`, check_record_apart accepts")));
                }
            }
            return Ok(());
        }
        Ok(end) => end,
    };
    if peak > 0 {
        return Err(fail(format!("check_record allocated {peak} bytes for a valid record")));
    }
    if apart != Ok(raw::RecordCheck { end, too_deep: None }) {
        return Err(fail(format!("check_record ends at {end}, check_record_apart says {apart:?}")));
    }
    let value = decoded.map_err(|e| fail(format!("check_record accepts what rmpv refuses: {e}")))?;
    if consumed != end {
        return Err(fail(format!("check_record ends at {end}, rmpv at {consumed}")));
    }
    let record = Record::from_value(value.clone()).map_err(|e| fail(format!("not a record for rmpv: {e}")))?;
    let raw = RawRecord::new(&bytes[..end]).map_err(|e| fail(e.to_string()))?;
    if raw.to_record().map(|r| encoded(&r.to_value())) != Ok(encoded(&record.to_value())) {
        return Err(fail("to_record differs from rmpv".into()));
    }
    for (k, _) in record.fields() {
        let got = raw.get(k).ok_or_else(|| fail(format!("field `{k}` not found in place")))?;
        // The first of a repeated key, as Record::get.
        let want = record.get(k).expect("a field of the record");
        if got.to_value().map(|v| encoded(&v)) != Some(encoded(want)) {
            return Err(fail(format!("field `{k}` differs in place")));
        }
        if !repeats_a_key(want) && got.text() != text_of(want) {
            return Err(fail(format!("the text of field `{k}` differs in place: {:?}", got.text())));
        }
    }
    let (json, peak) = peak_during(|| text::json_text(&bytes[..end]));
    let json = json.ok_or_else(|| fail("no JSON text for a checked record".into()))?;
    // The text takes at most 9 bytes per byte of record (a fixext 1: `{"ext":-128,"data":[255]},`).
    if json.len() > 9 * end + 8 || peak > 4 * json.len() + 4096 {
        return Err(fail(format!("{end} bytes gave {} bytes of JSON, allocating {peak}", json.len())));
    }
    if !repeats_a_key(&value) && json != serde_json::to_string(&record.to_json()).expect("JSON") {
        return Err(fail(format!("the JSON text differs from the tree's: {json}")));
    }
    // JSON, if not nested past what serde_json reads (128 levels; an extension value as JSON
    // is 2 levels deeper).
    if depth(&bytes[..end]).is_some_and(|d| d < 120) {
        serde_json::from_str::<serde_json::Value>(&json).map_err(|e| fail(format!("not JSON ({e}): {json}")))?;
    }
    Ok(())
}

/// A record's bytes: written with any encodings, then perhaps damaged.
fn record_bytes() -> impl Strategy<Value = Vec<u8>> {
    (record(), any::<u64>(), prop_oneof![3 => Just(vec![]), 2 => prop::collection::vec(mutation(), 1..3)]).prop_map(
        |(record, pad, mutations): (Value, u64, Vec<Mutation>)| {
            let mut bits = pad;
            let mut pick = || {
                bits = bits.rotate_left(5) ^ 0x2545_f491;
                bits % 4 == 0
            };
            let mut bytes = Vec::new();
            write_padded(&mut bytes, &record, &mut pick);
            mutate(bytes, &mutations)
        },
    )
}

#[test]
fn fuzz_record_raw() {
    fuzz::with_big_stack(|| fuzz::run("record_raw", CASES, record_bytes(), |b| check_record(&b)));
}

// ---- The Python decoder ----------------------------------------------------------------

/// The nesting depth of the MessagePack at the start of `b` (0 for a scalar); None if it is
/// not complete.
fn depth(b: &[u8]) -> Option<usize> {
    let mut rd = b;
    let v = rmpv::decode::read_value_with_max_depth(&mut rd, 4096).ok()?;
    fn d(v: &Value) -> usize {
        match v {
            Value::Array(items) => 1 + items.iter().map(d).max().unwrap_or(0),
            Value::Map(entries) => 1 + entries.iter().map(|(k, x)| d(k).max(d(x))).max().unwrap_or(0),
            _ => 0,
        }
    }
    Some(d(&v))
}

/// Whether the two decoders must agree on `frame`: not when it holds what §7 lets a receiver
/// refuse or keep (a str that is not UTF-8, a record nested past Rust's limit, an extension
/// type below 0, which MessagePack reserves and msgpack refuses but for -1, its timestamps,
/// which it reads its own way), nor what a Python dict cannot hold (a map key that is an
/// array or a map).
fn comparable(frame: &[u8]) -> bool {
    fn odd(v: &Value) -> bool {
        match v {
            Value::String(s) => s.as_str().is_none(),
            Value::Ext(t, _) => *t < 0,
            Value::Array(items) => items.iter().any(odd),
            Value::Map(entries) => {
                entries.iter().any(|(k, x)| matches!(k, Value::Array(_) | Value::Map(_)) || odd(k) || odd(x))
            }
            _ => false,
        }
    }
    let mut rd = frame;
    match rmpv::decode::read_value_with_max_depth(&mut rd, 4096) {
        Ok(v) => !odd(&v) && depth(frame).is_some_and(|d| d < 200),
        // Not complete: both must refuse it, unless it is nested deeper than either reads.
        Err(_) => !frame.windows(100).any(|w| w.iter().all(|&b| b == 0x91)),
    }
}

/// Decode every frame with the Python package, one result line each: `ok <t>` or `err <why>`.
fn python_decode(python: &Path, frames: &[Vec<u8>]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("frames");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).expect("create"));
    for f in frames {
        file.write_all(&(f.len() as u32).to_be_bytes()).expect("write");
        file.write_all(f).expect("write");
    }
    file.flush().expect("flush");
    drop(file);
    let script = r#"
import sys
from procnet import wire
data = open(sys.argv[1], "rb").read()
pos = 0
while pos < len(data):
    n = int.from_bytes(data[pos:pos + 4], "big")
    frame = data[pos + 4:pos + 4 + n]
    pos += 4 + n
    try:
        print("ok", wire.decode(frame)["t"])
    except wire.DecodeError as e:
        print("err", str(e).replace("\n", " "))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&input)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start python");
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(120)).is_err() {
            // SAFETY: kill(2) of our own child, past its deadline.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("piped"), &mut out).expect("read");
    let status = child.wait().expect("wait for python");
    let _ = done.send(());
    watchdog.join().expect("the watchdog");
    assert!(status.success(), "the Python decoder failed (or timed out): {status}");
    out.lines().map(str::to_string).collect()
}

#[test]
fn fuzz_python_decoder_agrees() {
    fuzz::with_big_stack(python_decoder_agrees);
}

fn python_decoder_agrees() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    if !python.exists() {
        eprintln!("fuzz python_decoder: skipped, no virtualenv (make venv)");
        return;
    }
    let mut runner = fuzz::runner("python_decoder", CASES);
    let cases = runner.config().cases as usize;
    let strategy = frame();
    let frames: Vec<Vec<u8>> = (0..cases)
        .map(|_| strategy.new_tree(&mut runner).expect("a frame").current())
        .filter(|f| comparable(f))
        .collect();
    let results = python_decode(&python, &frames);
    assert_eq!(results.len(), frames.len(), "one result per frame");
    let mut disagree = Vec::new();
    for (f, py) in frames.iter().zip(&results) {
        let rust = match wire::decode(f) {
            Ok(m) => format!("ok {}", m.type_name()),
            Err(e) => format!("err {e}"),
        };
        if rust.starts_with("ok") != py.starts_with("ok") || (rust.starts_with("ok") && &rust != py) {
            disagree.push(format!("{}\n  rust: {rust}\n  python: {py}", hex(f)));
        }
    }
    eprintln!("fuzz python_decoder: {} frames compared", frames.len());
    assert!(disagree.is_empty(), "{} frames decoded differently:\n{}", disagree.len(), disagree.join("\n"));
}

// ---- Regressions found by fuzzing --------------------------------------------------------

#[test]
fn a_key_repeated_in_a_larger_encoding_is_still_repeated() {
    // Fuzzed: Rust compared encodings, so `url` as fixstr and as str 32 were two keys (Python: one).
    let mut frame = b"\x85\xa1v\x01\xa1t\xa5hello\xa4node\xa4site\xa7replica\x00\xa3pid\x01".to_vec();
    frame[0] = 0x86;
    frame.extend_from_slice(b"\xa7publish\x82\xa3url\xa1a\xdb\x00\x00\x00\x03url\xa1b");
    assert_eq!(wire::decode(&frame).unwrap_err().0, "field `publish` of message `hello` has key `url` twice");
}

#[test]
fn a_reserved_marker_makes_a_frame_invalid_however_it_is_laid_out() {
    // Fuzzed: rmpv reads 0xc1 as nil, so the slow path took a frame the in-place reading refused.
    let in_place = [wire::DATA_HEADER, b"\x91\x81\xa1a\xc1"].concat();
    let reordered = b"\x83\xa7records\x91\x81\xa1a\xc1\xa1t\xa4data\xa1v\x01".to_vec();
    for frame in [in_place, reordered] {
        let err = wire::decode(&frame).unwrap_err();
        assert_eq!(err.0, "not a MessagePack value (reserved MessagePack marker 0xc1)");
        assert_eq!(wire::data_records(&frame).unwrap_err(), err);
        assert!(wire::data_in_place(&frame).is_none());
    }
}
