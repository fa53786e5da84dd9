//! Golden vectors of wire protocol v1: the exact bytes `procnet::wire::encode` produces for
//! every message type, kept in `tests/golden/` with a language-neutral description of each
//! message in `tests/golden/vectors.json` (conventions in `tests/golden/README.md`).
//!
//! Any change to the bytes fails these tests. To change the encoding deliberately (a new
//! protocol version), regenerate the files with
//! `UPDATE_GOLDEN=1 cargo test --test formats golden::` and review the diff.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::sync::Once;

use procnet::record::{Record, Value};
use procnet::wire::{decode, encode, Downstream, Flows, Message, Stats, Upstream};

use crate::util::golden::{golden_dir, hex};

/// One golden vector: the file holding its bytes, what it shows, and the message.
struct Vector {
    file: &'static str,
    about: &'static str,
    message: Message,
}

/// A frame no encoder writes (a field given twice, fields in another order), and what every
/// decoder must make of it.
struct Decoding {
    file: &'static str,
    about: &'static str,
    /// The frame, as a value: a map may repeat a key.
    frame: Value,
    outcome: Outcome,
}

/// What decoding a [`Decoding`] frame gives.
enum Outcome {
    /// It is invalid, with this error (the Python decoder gives the same text).
    Error(&'static str),
    /// It decodes to the message of this vector's file (unknown fields aside).
    SameAs(&'static str),
}

/// Whether this run regenerates the golden files instead of only checking them.
fn updating() -> bool {
    std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

fn record(fields: Vec<(&str, Value)>) -> Record {
    Record::from_fields(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

/// Every vector, in the order `vectors.json` lists them.
fn vectors() -> Vec<Vector> {
    let r1 = record(vec![
        ("id", Value::from("r1")),
        ("text", Value::from("h\u{e9}llo \u{2713}")),
        ("n", Value::from(42)),
        ("neg", Value::from(-7)),
        ("f", Value::F64(1.5)),
        ("ok", Value::Boolean(true)),
        ("none", Value::Nil),
    ]);
    let r2 = record(vec![
        ("id", Value::from("r2")),
        ("big", Value::from(300)),
        ("neg_big", Value::from(-200)),
        ("f", Value::F64(-0.25)),
        ("ok", Value::Boolean(false)),
        ("list", Value::Array(vec![Value::from(1), Value::from("two"), Value::Nil])),
        ("meta", map(vec![("lang", Value::from("py")), ("depth", Value::from(2))])),
        ("raw", Value::Binary(vec![0x00, 0xff, 0x10])),
    ]);
    vec![
        Vector {
            file: "data.msgpack",
            about: "a batch of two records mixing every value type",
            message: Message::Data(vec![r1, r2]),
        },
        Vector {
            file: "data_empty.msgpack",
            about: "a batch of no records (never sent by the Rust runtime, but valid)",
            message: Message::Data(vec![]),
        },
        Vector {
            file: "eos.msgpack",
            about: "end of stream on one pipe: replica lines.0 sent 3 records on it",
            message: Message::Eos { from: "lines.0".into(), sent: 3, port: "out".into(), topics: Default::default() },
        },
        Vector {
            file: "hello.msgpack",
            about: "hello from a replica with an input bound on TCP",
            message: Message::Hello {
                node: "upper".into(),
                replica: 1,
                pid: 4242,
                input: Some("tcp://127.0.0.1:40123".into()),
                publish: BTreeMap::new(),
                ports: BTreeMap::new(),
            },
        },
        Vector {
            file: "hello_no_input.msgpack",
            about: "hello from a source replica (no input): input is nil",
            message: Message::Hello {
                node: "lines".into(),
                replica: 0,
                pid: 70000,
                input: None,
                publish: BTreeMap::new(),
                ports: BTreeMap::new(),
            },
        },
        Vector {
            file: "wire.msgpack",
            about: "wiring: one upstream node with 2 replicas, two downstream nodes",
            message: Message::Wire {
                inputs: vec![Upstream { node: "lines".into(), replicas: 2, port: "out".into(), subscribe: None }],
                outputs: vec![
                    Downstream {
                        node: "tally".into(),
                        endpoints: vec!["tcp://127.0.0.1:40125".into()],
                        port: "out".into(),
                    },
                    Downstream {
                        node: "sink".into(),
                        endpoints: vec!["tcp://127.0.0.1:40126".into(), "tcp://127.0.0.1:40127".into()],
                        port: "out".into(),
                    },
                ],
                vars: BTreeMap::new(),
                ports: Vec::new(),
            },
        },
        Vector {
            file: "hello_publish.msgpack",
            about: "hello from a service replica that publishes its URL (serve)",
            message: Message::Hello {
                node: "site".into(),
                replica: 0,
                pid: 4300,
                input: None,
                publish: BTreeMap::from([("url".into(), "http://127.0.0.1:41000".into())]),
                ports: BTreeMap::new(),
            },
        },
        Vector {
            file: "wire_vars.msgpack",
            about: "wiring of a fetch replica: one upstream, one downstream, and the published site URL",
            message: Message::Wire {
                inputs: vec![Upstream { node: "urls".into(), replicas: 1, port: "out".into(), subscribe: None }],
                outputs: vec![Downstream {
                    node: "count".into(),
                    endpoints: vec!["ipc://run/count.0".into()],
                    port: "out".into(),
                }],
                vars: BTreeMap::from([("site.url".into(), "http://127.0.0.1:41000".into())]),
                ports: Vec::new(),
            },
        },
        Vector { file: "ready.msgpack", about: "outputs connected", message: Message::Ready },
        Vector { file: "start.msgpack", about: "every replica is ready", message: Message::Start },
        Vector { file: "stop.msgpack", about: "stop reading sources, drain and finish", message: Message::Stop },
        Vector {
            file: "done.msgpack",
            about: "final counters; integers wide enough to need uint32 and uint64",
            message: Message::Done {
                stats: Stats {
                    received: 70000,
                    sent: 5_000_000_000,
                    invalid_frames: 1,
                    bad_records: 0,
                    errors: 3,
                    dropped: 2,
                    blocked_ms: 1500,
                },
                notes: vec!["unexpected `start` message on a data socket".into()],
                result: None,
                flows: Flows::default(),
            },
        },
        Vector {
            file: "done_result.msgpack",
            about: "a tally's final counters with its result, for the run report",
            message: Message::Done {
                stats: Stats { received: 3, ..Default::default() },
                notes: vec![],
                result: Some(r#"{"count":3}"#.into()),
                flows: Flows::default(),
            },
        },
        Vector {
            file: "done_flows.msgpack",
            about: "a filter's final counters with its records per edge: two downstream nodes, a pub port and \
                    its lossy socket, the PULL socket and one subscription",
            message: Message::Done {
                stats: Stats { received: 7, sent: 12, ..Default::default() },
                notes: vec![],
                result: None,
                flows: Flows {
                    outputs: Some(vec![4, 4]),
                    published: Some(BTreeMap::from([
                        ("hosts".into(), BTreeMap::from([("".into(), 1), ("acme.test".into(), 3)])),
                        ("hosts!drop".into(), BTreeMap::from([("acme.test".into(), 3)])),
                    ])),
                    pulled: Some(5),
                    subscribed: Some(vec![2]),
                },
            },
        },
        Vector {
            file: "bye.msgpack",
            about: "every consumer finished: close the data sockets and exit",
            message: Message::Bye,
        },
        Vector {
            file: "stats.msgpack",
            about: "counters while running: a fetch replica that passed on 120 records, 7 with an error",
            message: Message::Stats(Stats {
                received: 130,
                sent: 120,
                invalid_frames: 0,
                bad_records: 0,
                errors: 7,
                dropped: 0,
                blocked_ms: 40,
            }),
        },
        Vector {
            file: "failed.msgpack",
            about: "the node could not go on",
            message: Message::Failed { error: "received 9 records but upstream replicas reported sending 10".into() },
        },
        Vector {
            file: "restarted.msgpack",
            about: "launcher to node: upstream replica work.1 died mid-stream and is being restarted",
            message: Message::Restarted { from: "work.1".into() },
        },
        Vector {
            file: "resend.msgpack",
            about: "launcher to node: send end of stream again to restarted replica work.1",
            message: Message::Resend { to: "work.1".into() },
        },
    ]
}

/// Every decoding vector, in the order `vectors.json` lists them.
fn decodings() -> Vec<Decoding> {
    let s = |x: &str| Value::from(x);
    let int = |n: u64| Value::from(n);
    let header = |t: &str| vec![("v", int(1)), ("t", s(t))];
    let with = |t: &str, fields: Vec<(&str, Value)>| map(header(t).into_iter().chain(fields).collect());
    let record = |id: &str| map(vec![("id", s(id))]);
    let golden_data = read_value_of("data.msgpack");
    let Value::Map(data_fields) = golden_data else { panic!("data.msgpack is a map") };
    let mut reordered = data_fields;
    reordered.reverse();
    vec![
        Decoding {
            file: "data_records_twice.msgpack",
            about: "a data message with `records` twice: invalid (no decoder may pick one)",
            frame: with(
                "data",
                vec![
                    ("records", Value::Array(vec![record("first")])),
                    ("records", Value::Array(vec![record("second")])),
                ],
            ),
            outcome: Outcome::Error("message `data` has field `records` twice"),
        },
        Decoding {
            file: "v_twice.msgpack",
            about: "`v` twice, both 1: invalid",
            frame: map(vec![("v", int(1)), ("t", s("start")), ("v", int(1))]),
            outcome: Outcome::Error("message has field `v` twice"),
        },
        Decoding {
            file: "t_twice.msgpack",
            about: "`t` twice: invalid",
            frame: map(vec![("v", int(1)), ("t", s("stop")), ("t", s("start"))]),
            outcome: Outcome::Error("message has field `t` twice"),
        },
        Decoding {
            file: "eos_sent_twice.msgpack",
            about: "an eos with `sent` twice: invalid",
            frame: with("eos", vec![("from", s("lines.0")), ("sent", int(3)), ("sent", int(4))]),
            outcome: Outcome::Error("message `eos` has field `sent` twice"),
        },
        Decoding {
            file: "eos_topic_twice.msgpack",
            about: "an eos whose `topics` gives topic `a` twice: invalid",
            frame: with(
                "eos",
                vec![("from", s("pub.0")), ("sent", int(3)), ("topics", map(vec![("a", int(1)), ("a", int(2))]))],
            ),
            outcome: Outcome::Error("field `topics` of message `eos` has key `a` twice"),
        },
        Decoding {
            file: "hello_publish_key_twice.msgpack",
            about: "a hello whose `publish` gives `url` twice: invalid",
            frame: with(
                "hello",
                vec![
                    ("node", s("site")),
                    ("replica", int(0)),
                    ("pid", int(4300)),
                    ("input", Value::Nil),
                    ("publish", map(vec![("url", s("http://127.0.0.1:41000")), ("url", s("http://127.0.0.1:41001"))])),
                ],
            ),
            outcome: Outcome::Error("field `publish` of message `hello` has key `url` twice"),
        },
        Decoding {
            file: "wire_input_field_twice.msgpack",
            about: "a wire whose input entry gives `replicas` twice: invalid",
            frame: with(
                "wire",
                vec![
                    (
                        "inputs",
                        Value::Array(vec![map(vec![("node", s("lines")), ("replicas", int(2)), ("replicas", int(3))])]),
                    ),
                    ("outputs", Value::Array(vec![])),
                ],
            ),
            outcome: Outcome::Error("wire input has field `replicas` twice"),
        },
        Decoding {
            file: "eos_unknown_field_twice.msgpack",
            about: "an eos with an unknown field twice, and a non-string key twice: both ignored",
            frame: Value::Map(vec![
                (s("v"), int(1)),
                (s("t"), s("eos")),
                (s("from"), s("lines.0")),
                (s("x-trace"), s("a")),
                (int(7), Value::Nil),
                (s("sent"), int(3)),
                (s("x-trace"), s("b")),
                (int(7), Value::Nil),
            ]),
            outcome: Outcome::SameAs("eos.msgpack"),
        },
        Decoding {
            file: "data_reordered.msgpack",
            about: "the records of data.msgpack with the fields in reverse order (records, t, v): valid",
            frame: Value::Map(reordered),
            outcome: Outcome::SameAs("data.msgpack"),
        },
    ]
}

/// The MessagePack value in golden file `file`.
fn read_value_of(file: &str) -> Value {
    let bytes = if updating() {
        let v = vectors().into_iter().find(|v| v.file == file).expect("a vector");
        encode(&v.message)
    } else {
        read_golden(file)
    };
    rmpv::decode::read_value(&mut bytes.as_slice()).expect("a golden file is MessagePack")
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex `{text}`");
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("valid hex")).collect()
}

/// A MessagePack value as JSON, by the conventions of `tests/golden/README.md`.
fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => J::from(u),
            (None, Some(n)) => J::from(n),
            _ => unreachable!("an integer is a u64 or an i64"),
        },
        Value::F64(f) => {
            assert!(f.fract() != 0.0, "a golden float must have a fraction, so its JSON says float");
            J::from(*f)
        }
        Value::String(s) => J::from(s.as_str().expect("golden strings are UTF-8")),
        Value::Binary(b) => serde_json::json!({ "$bin": hex(b) }),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        // A map whose keys are strings given once is an object; any other, `$entries`.
        Value::Map(entries) => {
            let keys: BTreeSet<Option<&str>> = entries.iter().map(|(k, _)| k.as_str()).collect();
            if keys.len() < entries.len() || keys.contains(&None) {
                let pairs = entries.iter().map(|(k, v)| J::Array(vec![to_json(k), to_json(v)])).collect();
                return serde_json::json!({ "$entries": J::Array(pairs) });
            }
            J::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let k = k.as_str().expect("checked above");
                        assert!(k != "$bin" && k != "$entries", "`{k}` is reserved for the conventions");
                        (k.to_string(), to_json(v))
                    })
                    .collect(),
            )
        }
        Value::F32(_) | Value::Ext(..) => panic!("golden vectors hold no float32 or extension values"),
    }
}

/// JSON to a MessagePack value, by the conventions of `tests/golden/README.md`.
fn from_json(j: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match j {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (None, Some(i), _) => Value::from(i),
            (None, None, Some(f)) => Value::F64(f),
            _ => panic!("unrepresentable number {n}"),
        },
        J::String(s) => Value::from(s.as_str()),
        J::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        J::Object(o) => match (o.len(), o.get("$bin"), o.get("$entries")) {
            (1, Some(J::String(h)), _) => Value::Binary(unhex(h)),
            (1, _, Some(J::Array(pairs))) => Value::Map(
                pairs
                    .iter()
                    .map(|p| match p.as_array().map(Vec::as_slice) {
                        Some([k, v]) => (from_json(k), from_json(v)),
                        _ => panic!("an entry of `$entries` is a [key, value] pair"),
                    })
                    .collect(),
            ),
            _ => Value::Map(o.iter().map(|(k, v)| (Value::from(k.as_str()), from_json(v))).collect()),
        },
    }
}

fn write_value(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).expect("writing to a Vec cannot fail");
    out
}

/// The text of `vectors.json` for the current vectors: one line per vector.
fn vectors_json(vectors: &[Vector], decodings: &[Decoding]) -> String {
    let mut out = String::from("{\n  \"protocol\": 1,\n  \"conventions\": \"README.md\",\n  \"vectors\": [\n");
    for (i, v) in vectors.iter().enumerate() {
        let value = rmpv::decode::read_value(&mut encode(&v.message).as_slice()).expect("our own encoding decodes");
        let entry = serde_json::json!({ "file": v.file, "about": v.about, "message": to_json(&value) });
        let sep = if i + 1 < vectors.len() { "," } else { "" };
        let _ = writeln!(out, "    {entry}{sep}");
    }
    out.push_str("  ],\n  \"decoding\": [\n");
    for (i, d) in decodings.iter().enumerate() {
        let mut entry = serde_json::json!({ "file": d.file, "about": d.about, "frame": to_json(&d.frame) });
        match d.outcome {
            Outcome::Error(e) => entry["error"] = e.into(),
            Outcome::SameAs(f) => entry["same_as"] = f.into(),
        }
        let sep = if i + 1 < decodings.len() { "," } else { "" };
        let _ = writeln!(out, "    {entry}{sep}");
    }
    out.push_str("  ]\n}\n");
    out
}

/// Regenerate every golden file when `UPDATE_GOLDEN=1`; otherwise do nothing. Every test
/// calls this first, so an update run leaves the files consistent before any check.
fn maybe_update() {
    static ONCE: Once = Once::new();
    if updating() {
        ONCE.call_once(update);
    }
}

fn update() {
    let dir = golden_dir();
    fs::create_dir_all(&dir).expect("create tests/golden");
    let vectors = vectors();
    for v in &vectors {
        fs::write(dir.join(v.file), encode(&v.message)).expect("write a golden file");
    }
    let decodings = decodings();
    for d in &decodings {
        fs::write(dir.join(d.file), write_value(&d.frame)).expect("write a golden file");
    }
    fs::write(dir.join("vectors.json"), vectors_json(&vectors, &decodings)).expect("write vectors.json");
}

fn read_golden(file: &str) -> Vec<u8> {
    let path = golden_dir().join(file);
    fs::read(&path).unwrap_or_else(|e| {
        panic!("cannot read {} ({e}); regenerate deliberately with UPDATE_GOLDEN=1", path.display())
    })
}

/// Every message type, by an exhaustive match: a new variant does not compile until it is
/// listed here, and then `every_message_type_has_a_vector` asks for its golden vector.
fn type_of(m: &Message) -> &'static str {
    match m {
        Message::Data(_) => "data",
        Message::Eos { .. } => "eos",
        Message::Hello { .. } => "hello",
        Message::Wire { .. } => "wire",
        Message::Ready => "ready",
        Message::Start => "start",
        Message::Stop => "stop",
        Message::Done { .. } => "done",
        Message::Bye => "bye",
        Message::Stats(_) => "stats",
        Message::Failed { .. } => "failed",
        Message::Restarted { .. } => "restarted",
        Message::Resend { .. } => "resend",
    }
}

const ALL_TYPES: [&str; 13] =
    ["data", "eos", "hello", "wire", "ready", "start", "stop", "done", "bye", "stats", "failed", "restarted", "resend"];

#[test]
fn every_message_type_has_a_vector() {
    let covered: BTreeSet<&str> = vectors()
        .iter()
        .map(|v| {
            assert_eq!(type_of(&v.message), v.message.type_name());
            type_of(&v.message)
        })
        .collect();
    let all: BTreeSet<&str> = ALL_TYPES.into_iter().collect();
    assert_eq!(covered, all, "a message type without a golden vector");
}

#[test]
fn encode_matches_every_golden_file_byte_for_byte() {
    maybe_update();
    for v in vectors() {
        let want = read_golden(v.file);
        let got = encode(&v.message);
        assert_eq!(
            hex(&got),
            hex(&want),
            "`encode` output changed for {} ({}); if this is a deliberate protocol change, \
             bump the version and regenerate with UPDATE_GOLDEN=1",
            v.file,
            v.about
        );
    }
}

#[test]
fn every_golden_file_decodes_to_its_message() {
    maybe_update();
    for v in vectors() {
        let frame = read_golden(v.file);
        let got = decode(&frame).unwrap_or_else(|e| panic!("{} does not decode: {e}", v.file));
        assert_eq!(got, v.message, "{} decodes to another message", v.file);
    }
}

#[test]
fn vectors_json_lists_every_file_and_describes_its_bytes() {
    maybe_update();
    let dir = golden_dir();
    let text = fs::read_to_string(dir.join("vectors.json")).expect("read vectors.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("vectors.json is JSON");
    assert_eq!(json["protocol"], 1);
    let listed = json["vectors"].as_array().expect("`vectors` is an array");

    let mut names = BTreeSet::new();
    for entry in listed {
        let file = entry["file"].as_str().expect("`file` is a string");
        assert!(names.insert(file.to_string()), "{file} is listed twice");
        let bytes = read_golden(file);
        // The description alone, built with any MessagePack encoder that writes the smallest
        // encoding, gives the same bytes (what a test in another language does).
        let built = write_value(&from_json(&entry["message"]));
        assert_eq!(hex(&built), hex(&bytes), "vectors.json does not describe {file}");
    }

    let listed = json["decoding"].as_array().expect("`decoding` is an array");
    for entry in listed {
        let file = entry["file"].as_str().expect("`file` is a string");
        assert!(names.insert(file.to_string()), "{file} is listed twice");
        let built = write_value(&from_json(&entry["frame"]));
        assert_eq!(hex(&built), hex(&read_golden(file)), "vectors.json does not describe {file}");
        assert!(entry["error"].is_string() != entry["same_as"].is_string(), "{file}: an `error` or a `same_as`");
    }

    let ours: BTreeSet<String> =
        vectors().iter().map(|v| v.file).chain(decodings().iter().map(|d| d.file)).map(str::to_string).collect();
    assert_eq!(names, ours, "vectors.json and the vectors of this test differ");

    let on_disk: BTreeSet<String> = fs::read_dir(&dir)
        .expect("list tests/golden")
        .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "vectors.json" && n != "README.md")
        .collect();
    assert_eq!(on_disk, names, "files in tests/golden that vectors.json does not list, or vice versa");

    // Descriptions are one line per vector, exactly as regenerated (no hand edits that drift).
    assert_eq!(text, vectors_json(&vectors(), &decodings()), "vectors.json differs from its regenerated form");
}

#[test]
fn every_decoding_vector_decodes_as_described() {
    maybe_update();
    for d in decodings() {
        let frame = read_golden(d.file);
        assert_eq!(hex(&frame), hex(&write_value(&d.frame)), "{} is not its frame", d.file);
        match d.outcome {
            Outcome::Error(want) => {
                let err = decode(&frame).expect_err(d.file);
                assert_eq!(err.0, want, "{}", d.file);
                // The in-place reading of a node's input agrees (or leaves a frame of another
                // type to `decode`).
                match procnet::wire::data_records(&frame) {
                    Ok(Some(_)) => panic!("{}: read in place as valid records", d.file),
                    Ok(None) => {}
                    Err(e) => assert_eq!(e, err, "{}: the in-place reading", d.file),
                }
            }
            Outcome::SameAs(other) => {
                let want = decode(&read_golden(other)).expect("a golden message");
                assert_eq!(decode(&frame).unwrap_or_else(|e| panic!("{}: {e}", d.file)), want, "{}", d.file);
            }
        }
    }
}

#[test]
fn encoders_pin_field_order_integer_widths_and_str_vs_bin() {
    maybe_update();
    // Header: a map, "v" = positive fixint 1 first, then "t".
    let eos = read_golden("eos.msgpack");
    assert_eq!(&eos[..7], b"\x84\xa1v\x01\xa1t\xa3");
    let data = read_golden("data.msgpack");
    assert_eq!(&data[..20], b"\x83\xa1v\x01\xa1t\xa4data\xa7records\x92");
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for (what, needle) in [
        ("42 as positive fixint", &b"\xa1n\x2a"[..]),
        ("-7 as negative fixint", b"\xa3neg\xf9"),
        ("300 as uint16", b"\xa3big\xcd\x01\x2c"),
        ("-200 as int16", b"\xa7neg_big\xd1\xff\x38"),
        ("1.5 as float64", b"\xa1f\xcb\x3f\xf8\0\0\0\0\0\0"),
        ("binary as bin8", b"\xa3raw\xc4\x03\x00\xff\x10"),
        ("UTF-8 text as fixstr", b"\xa4text\xaah\xc3\xa9llo \xe2\x9c\x93"),
        ("nested map as fixmap", b"\xa4meta\x82\xa4lang\xa2py\xa5depth\x02"),
    ] {
        assert!(contains(&data, needle), "data.msgpack: {what}");
    }
    let done = read_golden("done.msgpack");
    for (what, needle) in [
        ("70000 as uint32", &b"\xa8received\xce\x00\x01\x11\x70"[..]),
        ("5e9 as uint64", b"\xa4sent\xcf\x00\x00\x00\x01\x2a\x05\xf2\x00"),
        ("a 43-byte note as str8", b"\x91\xd9\x2b"),
    ] {
        assert!(contains(&done, needle), "done.msgpack: {what}");
    }
    let hello = read_golden("hello_no_input.msgpack");
    assert!(hello.ends_with(b"\xa5input\xc0"), "hello: a missing input is written as nil");
}

#[test]
fn truncated_and_future_version_frames_are_rejected() {
    maybe_update();
    let data = read_golden("data.msgpack");
    // The last value is bin8 `00 ff 10`: cutting one byte leaves 2 of its 3 bytes.
    assert_eq!(
        decode(&data[..data.len() - 1]).expect_err("a truncated frame is rejected").0,
        "not a MessagePack value (truncated MessagePack)"
    );
    for cut in [0, 1, data.len() / 2, data.len() - 1] {
        let err = decode(&data[..cut]).expect_err("a truncated frame is rejected");
        assert!(err.0.starts_with("not a MessagePack value ("), "truncated at {cut}: unexpected error `{err}`");
    }
    let mut eos = read_golden("eos.msgpack");
    let at = eos.len() - 1;
    eos.push(0xc0);
    assert_eq!(decode(&eos).expect_err("trailing bytes").0, "1 bytes after the message");
    eos.truncate(at + 1);

    // "v": 2 at byte 3 of every frame (map header, fixstr "v", then the version).
    assert_eq!(eos[3], 0x01);
    eos[3] = 0x02;
    assert_eq!(decode(&eos).expect_err("v 2 is rejected").0, "unsupported protocol version 2 (this side speaks 1)");
    let mut start = read_golden("start.msgpack");
    start[3] = 0x00;
    assert_eq!(decode(&start).expect_err("v 0 is rejected").0, "unsupported protocol version 0 (this side speaks 1)");
}

#[test]
fn decoders_ignore_unknown_fields_and_accept_any_field_order() {
    maybe_update();
    let eos = map(vec![
        ("sent", Value::from(3)),
        ("extra", map(vec![("later", Value::Boolean(true))])),
        ("from", Value::from("lines.0")),
        ("t", Value::from("eos")),
        ("v", Value::from(1)),
    ]);
    assert_eq!(
        decode(&write_value(&eos)).expect("eos with extras"),
        Message::Eos { from: "lines.0".into(), sent: 3, port: "out".into(), topics: Default::default() }
    );
    // `input` absent reads like nil.
    let hello = map(vec![
        ("v", Value::from(1)),
        ("t", Value::from("hello")),
        ("node", Value::from("lines")),
        ("replica", Value::from(0)),
        ("pid", Value::from(70000)),
    ]);
    assert_eq!(
        decode(&write_value(&hello)).expect("hello without input"),
        decode(&read_golden("hello_no_input.msgpack")).expect("golden hello")
    );
}
