//! A misbehaving node for failure tests, run as a `command` node. It speaks the protocol by
//! hand (not through `procnet::runtime::Node`) so it can break it on purpose.
//!
//! Usage: procnet-rogue MODE [ARG]
//! - `garbage N`: a source that sends N valid records, interleaved with invalid frames
//!   (not MessagePack, a wrong protocol version, an `eos` missing fields, an `eos` from a
//!   replica that is not upstream), then ends cleanly.
//! - `huge MB`: a source that sends 10 records, one record of MB megabytes (a 100 MB message
//!   from a foreign process), then 10 more, counting all 21 in its `eos`, as a careless
//!   sender would.
//! - `crash-after N`: a pass-through that forwards N records, then aborts (SIGABRT).
//! - `exit-early C`: joins the network, then exits with status C without a word.
//! - `split`: forwards every record on port `out` and publishes it on port `copy`.
//! - `sleepy MICROS`: a slow pass-through, MICROS per record; says `sleepy: first record`
//!   on stderr when the first arrives.
//! - `intruder N`: a source that first connects to its consumer's tcp input a second time,
//!   from 127.0.0.2 (not a declared host), and pushes a record there; says `intruder:
//!   refused` on stderr if the handshake was refused; then sends N records the right way.
//! - `echo FILE`: a sink that appends each record's `id` to FILE as a line, flushed at
//!   once, so a test sees records the moment they arrive.
//! - `forge-eos N`: a source of 2 replicas with a bug: replica 0 first sends, on every pipe,
//!   an `eos` in replica 1's name saying it sent nothing; then each replica sends N records
//!   and its own `eos` (replica 1 after a pause, so that its records come after the forged
//!   `eos` ended its consumers' input).
//! - `knock DIR PORT...`: not a node but a stranger to a run: says on stdout whether it can
//!   list the run's directory DIR and connect to its control socket there, and, for each tcp
//!   PORT on 127.0.0.1, whether a PUSH socket gets through the handshake without credentials
//!   and with a wrong secret (each then sends a forged `eos`); `accepted` means it did.
//! - `foreign`: a source whose `data` frames are valid but laid out unlike procnet's own
//!   (fields in another order, an unknown field, larger encodings than needed, bin and int
//!   bodies), 9 records in all, 5 of them with a body that mentions "python"; then a frame
//!   with a record nested 300 levels deep (refused by receivers) and a good one, 11 records
//!   in all, each counted in its `eos` as a sender does.
//! - `flood N SHAPE`: a source that sends one `data` frame holding N nils (one byte each),
//!   then its `eos`: with SHAPE `field`, one record `{"id": "flood", "line": [nil x N]}` laid
//!   out as procnet writes it; `reordered`, the same record in a frame whose fields come in
//!   another order; `records`, the records array itself made of the N nils (an invalid frame,
//!   not counted). The memory amplification reproducers of tests/bounds/amplification.rs.

use procnet::record::Record;
use procnet::runtime::{Identity, Node};
use procnet::wire::{self, Message};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok()).expect("numeric argument");
    match args.get(1).map(String::as_str) {
        Some("garbage") => garbage(arg(2)),
        Some("huge") => huge(arg(2)),
        Some("crash-after") => crash_after(arg(2)),
        Some("split") => split(),
        Some("sleepy") => sleepy(arg(2)),
        Some("foreign") => foreign(),
        Some("echo") => echo(args.get(2).expect("a file")),
        Some("intruder") => intruder(arg(2)),
        Some("forge-eos") => forge_eos(arg(2)),
        Some("knock") => knock(&args[2], &args[3..]),
        Some("flood") => flood(arg(2), args.get(3).expect("a shape")),
        Some("exit-early") => {
            let _node = Node::join(&Identity::from_env().expect("identity")).expect("join");
            std::process::exit(arg(2) as i32);
        }
        _ => panic!("usage: rogue garbage N | crash-after N | exit-early CODE"),
    }
}

/// Forward every record on `out` and publish it on `copy`: a node with both a push and a pub
/// port.
fn split() {
    let mut node = Node::join(&Identity::from_env().expect("identity")).expect("join");
    while let Some(rec) = node.recv().expect("recv") {
        node.send_to("out", &rec).expect("send");
        node.send_to("copy", &rec).expect("publish");
    }
    node.finish().expect("finish");
}

/// A slow consumer: forwards each record after `micros` microseconds.
fn sleepy(micros: u64) {
    let mut node = Node::join(&Identity::from_env().expect("identity")).expect("join");
    let mut first = true;
    while let Some(rec) = node.recv().expect("recv") {
        if first {
            // Tests wait for this line (through the launcher's log relay): mid-stream.
            eprintln!("sleepy: first record");
            first = false;
        }
        std::thread::sleep(std::time::Duration::from_micros(micros));
        node.send(&rec).expect("send");
    }
    node.finish().expect("finish");
}

fn crash_after(n: u64) {
    let mut node = Node::join(&Identity::from_env().expect("identity")).expect("join");
    let mut forwarded = 0;
    while let Some(rec) = node.recv().expect("recv") {
        node.send(&rec).expect("send");
        forwarded += 1;
        if forwarded == n {
            node.flush().expect("flush");
            std::process::abort();
        }
    }
    node.finish().expect("finish");
}

fn garbage(n: u64) {
    let id = Identity::from_env().expect("identity");
    let ctx = zmq::Context::new();
    let control = ctx.socket(zmq::DEALER).expect("socket");
    control.set_identity(id.id().as_bytes()).expect("identity");
    id.access().client(&control, &id.control).expect("present the secret");
    control.connect(&id.control).expect("connect control");
    let tell = |m: &Message| control.send(wire::encode(m), 0).expect("tell");
    let hear = || wire::decode(&control.recv_bytes(0).expect("hear")).expect("decode");
    tell(&Message::Hello {
        node: id.node.clone(),
        replica: id.replica,
        pid: std::process::id(),
        input: None,
        publish: Default::default(),
        ports: Default::default(),
    });
    let Message::Wire { outputs, .. } = hear() else { panic!("expected wire") };
    let peers: Vec<zmq::Socket> = outputs
        .iter()
        .flat_map(|d| d.endpoints.iter())
        .map(|ep| {
            let s = ctx.socket(zmq::PUSH).expect("socket");
            id.access().client(&s, ep).expect("present the secret");
            s.connect(ep).expect("connect");
            s
        })
        .collect();
    tell(&Message::Ready);
    assert_eq!(hear(), Message::Start);
    let bad_version = {
        let mut frame = wire::encode(&Message::Data(vec![]));
        // The encoded map starts with {"v": 1: patch the version byte to 2.
        let at = frame.iter().position(|&b| b == 0x01).expect("version byte");
        frame[at] = 0x02;
        frame
    };
    let missing_fields = b"\x82\xa1v\x01\xa1t\xa3eos".to_vec();
    // An array header announcing 5 items, then only one.
    let truncated = b"\x95\x01".to_vec();
    let stranger =
        wire::encode(&Message::Eos { from: "ghost.0".into(), sent: 0, port: "out".into(), topics: Default::default() });
    let garbage: [&[u8]; 4] = [&truncated, &bad_version, &missing_fields, &stranger];
    let mut sent = vec![0u64; peers.len()];
    for i in 0..n {
        let mut rec = Record::new();
        rec.insert("id", format!("g{i}"));
        let p = (i as usize) % peers.len();
        peers[p].send(wire::encode(&Message::Data(vec![rec])), 0).expect("send");
        sent[p] += 1;
        if i < garbage.len() as u64 {
            peers[p].send(garbage[i as usize], 0).expect("send garbage");
        }
    }
    for (peer, &count) in peers.iter().zip(&sent) {
        peer.send(
            wire::encode(&Message::Eos { from: id.id(), sent: count, port: "out".into(), topics: Default::default() }),
            0,
        )
        .expect("eos");
    }
    let stats = wire::Stats { sent: n, ..Default::default() };
    tell(&Message::Done { stats, notes: vec![], result: None, flows: Default::default() });
    assert_eq!(hear(), Message::Bye);
}

/// Join as a source speaking the protocol by hand: the control socket, one PUSH per
/// downstream replica, and a function to end (eos with the counts given, done, bye).
fn join_raw() -> (zmq::Context, zmq::Socket, Vec<zmq::Socket>, Identity) {
    let (ctx, control, peers, id, _) = join_raw_endpoints();
    (ctx, control, peers, id)
}

/// [`join_raw`], with the downstream endpoints.
fn join_raw_endpoints() -> (zmq::Context, zmq::Socket, Vec<zmq::Socket>, Identity, Vec<String>) {
    let id = Identity::from_env().expect("identity");
    let ctx = zmq::Context::new();
    let control = ctx.socket(zmq::DEALER).expect("socket");
    control.set_identity(id.id().as_bytes()).expect("identity");
    id.access().client(&control, &id.control).expect("present the secret");
    control.connect(&id.control).expect("connect control");
    let tell = |m: &Message| control.send(wire::encode(m), 0).expect("tell");
    tell(&Message::Hello {
        node: id.node.clone(),
        replica: id.replica,
        pid: std::process::id(),
        input: None,
        publish: Default::default(),
        ports: Default::default(),
    });
    let Message::Wire { outputs, .. } = wire::decode(&control.recv_bytes(0).expect("hear")).expect("decode") else {
        panic!("expected wire")
    };
    let endpoints: Vec<String> = outputs.iter().flat_map(|d| d.endpoints.iter().cloned()).collect();
    let peers = endpoints
        .iter()
        .map(|ep| {
            let s = ctx.socket(zmq::PUSH).expect("socket");
            id.access().client(&s, ep).expect("present the secret");
            s.connect(ep).expect("connect");
            s
        })
        .collect();
    tell(&Message::Ready);
    assert_eq!(wire::decode(&control.recv_bytes(0).expect("hear")).expect("decode"), Message::Start);
    (ctx, control, peers, id, endpoints)
}

fn huge(mb: u64) {
    let (_ctx, control, peers, id) = join_raw();
    let peer = &peers[0];
    let record = |i: u64, body: String| {
        let mut rec = Record::new();
        rec.insert("id", format!("h{i}"));
        rec.insert("body", body);
        wire::encode(&Message::Data(vec![rec]))
    };
    for i in 0..10 {
        peer.send(record(i, "small".into()), 0).expect("send");
    }
    peer.send(record(10, "x".repeat((mb * 1024 * 1024) as usize)), 0).expect("send the huge one");
    for i in 11..21 {
        peer.send(record(i, "small".into()), 0).expect("send");
    }
    let eos = Message::Eos { from: id.id(), sent: 21, port: "out".into(), topics: Default::default() };
    peer.send(wire::encode(&eos), 0).expect("eos");
    let stats = wire::Stats { sent: 21, ..Default::default() };
    control
        .send(wire::encode(&Message::Done { stats, notes: vec![], result: None, flows: Default::default() }), 0)
        .expect("done");
    assert_eq!(wire::decode(&control.recv_bytes(0).expect("hear")).expect("decode"), Message::Bye);
}

/// Append each record's `id` to `path`, flushed at once.
fn echo(path: &str) {
    use std::io::Write;
    let mut node = Node::join(&Identity::from_env().expect("identity")).expect("join");
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open the echo file");
    while let Some(rec) = node.recv().expect("recv") {
        let id = rec.get("id").map(|v| procnet::record::text_of(v).into_owned()).unwrap_or_default();
        out.write_all(format!("{id}\n").as_bytes()).expect("write");
    }
    node.finish().expect("finish");
}

/// `data` frames as another implementation might write them; see the module doc.
fn foreign() {
    use procnet::record::Value;
    let (_ctx, control, peers, id) = join_raw();
    // Every downstream node gets the whole stream (each has one replica here).
    let send = |frame: Vec<u8>| {
        for p in &peers {
            p.send(&frame, 0).expect("send");
        }
    };
    let s = |x: &str| Value::from(x);
    let rec = |i: u64, body: Value| {
        Value::Map(vec![
            (s("id"), Value::from(i)),
            (s("url"), s(&format!("http://h{}.test/", i % 2))),
            (s("body"), body),
        ])
    };
    let frame = |entries: Vec<(Value, Value)>| {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &Value::Map(entries)).expect("encode");
        out
    };
    let header = || vec![(s("v"), Value::from(1)), (s("t"), s("data"))];
    // 1. Fields in another order.
    send(frame(vec![
        (s("records"), Value::Array(vec![rec(0, s("Python here")), rec(1, s("nothing"))])),
        (s("t"), s("data")),
        (s("v"), Value::from(1)),
    ]));
    // 2. An unknown field after the records.
    let mut extra = header();
    extra.push((s("records"), Value::Array(vec![rec(2, s("PYTHON"))])));
    extra.push((s("x-trace"), s("abc")));
    send(frame(extra));
    // 3. Larger encodings than needed: an array 32 header, a str 16 key, a uint 64 id.
    let mut big = procnet::wire::DATA_HEADER.to_vec();
    big.extend_from_slice(&[0xdd, 0, 0, 0, 2]);
    for (i, body) in [(3u64, "python 3"), (4, "no")] {
        big.push(0x83);
        big.extend_from_slice(&[0xda, 0, 2]);
        big.extend_from_slice(b"id");
        big.push(0xcf);
        big.extend_from_slice(&i.to_be_bytes());
        rmpv::encode::write_value(&mut big, &s("url")).expect("encode");
        rmpv::encode::write_value(&mut big, &s(&format!("http://h{}.test/", i % 2))).expect("encode");
        rmpv::encode::write_value(&mut big, &s("body")).expect("encode");
        rmpv::encode::write_value(&mut big, &s(body)).expect("encode");
    }
    send(big);
    // 4. Bodies that are not strings: bin (matched as its text), an integer, a nested map
    //    with integer keys, nil.
    let mut odd = header();
    odd.push((
        s("records"),
        Value::Array(vec![
            rec(5, Value::Binary(b"bin python".to_vec())),
            rec(6, Value::from(42)),
            rec(7, Value::Map(vec![(Value::from(1), s("python"))])),
            rec(8, Value::Nil),
        ]),
    ));
    send(frame(odd));
    // 5. A record nested deeper than receivers accept: an invalid frame, not counted.
    let mut deep = Value::Nil;
    for _ in 0..300 {
        deep = Value::Array(vec![deep]);
    }
    let mut bad = header();
    bad.push((s("records"), Value::Array(vec![rec(9, deep), rec(10, s("python again"))])));
    send(frame(bad));
    let eos = Message::Eos { from: id.id(), sent: 11, port: "out".into(), topics: Default::default() };
    send(wire::encode(&eos));
    let stats = wire::Stats { sent: 11, ..Default::default() };
    control
        .send(wire::encode(&Message::Done { stats, notes: vec![], result: None, flows: Default::default() }), 0)
        .expect("done");
    assert_eq!(wire::decode(&control.recv_bytes(0).expect("hear")).expect("decode"), Message::Bye);
}

/// Knock from an address that is not a declared host, then send `n` records properly.
fn intruder(n: u64) {
    let (ctx, control, peers, id, endpoints) = join_raw_endpoints();
    let target = endpoints[0].strip_prefix("tcp://").expect("a tcp input");
    let bad = ctx.socket(zmq::PUSH).expect("socket");
    // With the run's secret (this is one of its processes): refused for its address alone.
    id.access().client(&bad, &endpoints[0]).expect("present the secret");
    bad.monitor("inproc://intruder-monitor", zmq::SocketEvent::ALL as i32).expect("monitor");
    let events = ctx.socket(zmq::PAIR).expect("socket");
    events.connect("inproc://intruder-monitor").expect("connect the monitor");
    // libzmq's `source;destination` form: connect from 127.0.0.2 (all of 127/8 is loopback).
    bad.connect(&format!("tcp://127.0.0.2:0;{target}")).expect("connect from 127.0.0.2");
    let mut rec = Record::new();
    rec.insert("id", "intruder");
    let _ = bad.send(wire::encode(&Message::Data(vec![rec])), zmq::DONTWAIT);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let refused = zmq::SocketEvent::HANDSHAKE_FAILED_AUTH.to_raw();
    let mut seen = false;
    while !seen && std::time::Instant::now() < deadline {
        if events.poll(zmq::POLLIN, 100).expect("poll") > 0 {
            let parts = events.recv_multipart(0).expect("event");
            seen = parts[0].get(..2).is_some_and(|b| u16::from_le_bytes([b[0], b[1]]) == refused);
        }
    }
    eprintln!("intruder: {}", if seen { "refused" } else { "not refused" });
    bad.set_linger(0).expect("linger");
    drop(bad);
    for i in 0..n {
        let mut rec = Record::new();
        rec.insert("id", format!("i{i}"));
        peers[0].send(wire::encode(&Message::Data(vec![rec])), 0).expect("send");
    }
    let eos = Message::Eos { from: id.id(), sent: n, port: "out".into(), topics: Default::default() };
    peers[0].send(wire::encode(&eos), 0).expect("eos");
    let stats = wire::Stats { sent: n, ..Default::default() };
    control
        .send(wire::encode(&Message::Done { stats, notes: vec![], result: None, flows: Default::default() }), 0)
        .expect("done");
    assert_eq!(wire::decode(&control.recv_bytes(0).expect("hear")).expect("decode"), Message::Bye);
}

/// See the module doc: a buggy source whose replica 0 ends its consumers' input early.
fn forge_eos(n: u64) {
    let (_ctx, control, peers, id) = join_raw();
    let eos = |from: String, sent: u64| {
        wire::encode(&Message::Eos { from, sent, port: "out".into(), topics: Default::default() })
    };
    if id.replica == 0 {
        for p in &peers {
            p.send(eos(format!("{}.1", id.node), 0), 0).expect("forged eos");
        }
    } else {
        // Part of the bug being reproduced, not synchronisation: the records come late.
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let mut sent = vec![0u64; peers.len()];
    for i in 0..n {
        let mut rec = Record::new();
        rec.insert("id", format!("{}-{i}", id.replica));
        let p = (i as usize) % peers.len();
        peers[p].send(wire::encode(&Message::Data(vec![rec])), 0).expect("send");
        sent[p] += 1;
    }
    for (p, &count) in peers.iter().zip(&sent) {
        p.send(eos(id.id(), count), 0).expect("eos");
    }
    let stats = wire::Stats { sent: n, ..Default::default() };
    control
        .send(wire::encode(&Message::Done { stats, notes: vec![], result: None, flows: Default::default() }), 0)
        .expect("done");
    let _ = control.recv_bytes(0);
}

/// See the module doc: a stranger knocking at a run's doors.
fn knock(dir: &str, ports: &[String]) {
    match std::fs::read_dir(dir) {
        Ok(_) => println!("dir: listed"),
        Err(e) => println!("dir: {e}"),
    }
    match std::os::unix::net::UnixStream::connect(format!("{dir}/control")) {
        Ok(_) => println!("control: connected"),
        Err(e) => println!("control: {e}"),
    }
    let ctx = zmq::Context::new();
    for (i, port) in ports.iter().enumerate() {
        for (k, password) in [None, Some("not-the-secret")].into_iter().enumerate() {
            let push = ctx.socket(zmq::PUSH).expect("socket");
            push.set_linger(0).expect("linger");
            if let Some(p) = password {
                push.set_plain_username(Some("procnet")).expect("user");
                push.set_plain_password(Some(p)).expect("password");
            }
            let monitor = format!("inproc://knock-{i}-{k}");
            push.monitor(&monitor, zmq::SocketEvent::ALL as i32).expect("monitor");
            let events = ctx.socket(zmq::PAIR).expect("socket");
            events.connect(&monitor).expect("connect the monitor");
            push.connect(&format!("tcp://127.0.0.1:{port}")).expect("connect");
            let forged = Message::Eos { from: "src.0".into(), sent: 0, port: "out".into(), topics: Default::default() };
            let _ = push.send(wire::encode(&forged), zmq::DONTWAIT);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut verdict = "no answer";
            while verdict == "no answer" && std::time::Instant::now() < deadline {
                if events.poll(zmq::POLLIN, 100).expect("poll") == 0 {
                    continue;
                }
                let parts = events.recv_multipart(0).expect("event");
                let event = parts[0].get(..2).map(|b| u16::from_le_bytes([b[0], b[1]]));
                verdict = match event.map(zmq::SocketEvent::from_raw) {
                    Some(zmq::SocketEvent::HANDSHAKE_SUCCEEDED) => "accepted",
                    Some(
                        zmq::SocketEvent::HANDSHAKE_FAILED_AUTH
                        | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL
                        | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL,
                    ) => "refused",
                    _ => verdict,
                };
            }
            let how = if password.is_some() { "a wrong secret" } else { "no credentials" };
            println!("tcp {port} with {how}: {verdict}");
        }
    }
}

/// One frame of `n` nils shaped as `shape` says (see the module doc), then the `eos`.
fn flood(n: u64, shape: &str) {
    let (_ctx, control, peers, id) = join_raw();
    let n = n as usize;
    let nils = |out: &mut Vec<u8>| {
        rmp::encode::write_array_len(out, n as u32).expect("encode");
        out.resize(out.len() + n, 0xc0);
    };
    let record = |out: &mut Vec<u8>| {
        out.extend_from_slice(b"\x82\xa2id\xa5flood\xa4line");
        nils(out);
    };
    let mut frame = Vec::with_capacity(n + 64);
    let sent = match shape {
        "field" => {
            wire::write_data_header(&mut frame, 1);
            record(&mut frame);
            1
        }
        "reordered" => {
            frame.extend_from_slice(b"\x83\xa7records\x91");
            record(&mut frame);
            frame.extend_from_slice(b"\xa1t\xa4data\xa1v\x01");
            1
        }
        "records" => {
            frame.extend_from_slice(wire::DATA_HEADER);
            nils(&mut frame);
            0
        }
        other => panic!("unknown flood shape `{other}`"),
    };
    // Handed to libzmq as it is (no copy), so this sender's peak is the frame's size.
    assert_eq!(peers.len(), 1, "one downstream replica");
    peers[0].send(zmq::Message::from(frame), 0).expect("send the flood");
    for p in &peers {
        let eos = Message::Eos { from: id.id(), sent, port: "out".into(), topics: Default::default() };
        p.send(wire::encode(&eos), 0).expect("eos");
    }
    let stats = wire::Stats { sent, ..Default::default() };
    control
        .send(wire::encode(&Message::Done { stats, notes: vec![], result: None, flows: Default::default() }), 0)
        .expect("done");
    assert_eq!(wire::decode(&control.recv_bytes(0).expect("hear")).expect("decode"), Message::Bye);
}
