//! Only declared hosts get in: a ZAP handler (ZeroMQ's authentication protocol, RFC 27)
//! that accepts a connection to this node's tcp sockets only from an allowed address.
//!
//! With `[hosts]`, the launcher gives every node the hosts' addresses in `PROCNET_ALLOW`.
//! The node then sets a ZAP domain on the tcp sockets it binds (with the NULL mechanism,
//! libzmq asks the handler only when a domain is set) and answers libzmq's requests on
//! `inproc://zeromq.zap.01` from a thread of its own: 200 for an allowed peer, 400 (the
//! connection is closed before any message passes) for any other, named once on stderr.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::error::NodeError;

/// The ZAP domain set on every guarded socket.
pub const DOMAIN: &str = "procnet";
/// The endpoint libzmq sends ZAP requests to, in the socket's context.
const ENDPOINT: &str = "inproc://zeromq.zap.01";
/// How often the handler looks whether it should stop, in ms.
const TICK_MS: i32 = 20;

/// The running handler; dropping it stops the thread.
pub struct Zap {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Zap {
    /// Start answering ZAP requests in `ctx`, allowing the addresses `allow`. `who` names
    /// this node in the line printed for a refused peer.
    pub fn start(ctx: &zmq::Context, allow: &[IpAddr], who: &str) -> Result<Zap, NodeError> {
        let socket = ctx.socket(zmq::REP).map_err(NodeError::zmq("create the ZAP socket"))?;
        socket.bind(ENDPOINT).map_err(NodeError::zmq("bind the ZAP handler"))?;
        socket.set_rcvtimeo(TICK_MS).map_err(NodeError::zmq("set the ZAP socket's timeout"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (allow, who, flag) = (allow.to_vec(), who.to_string(), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("procnet-zap".into())
            .spawn(move || serve(&socket, &allow, &who, &flag))
            .map_err(NodeError::io("start the ZAP handler"))?;
        Ok(Zap { stop, thread: Some(thread) })
    }
}

impl Drop for Zap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answer requests until told to stop or the context ends.
fn serve(socket: &zmq::Socket, allow: &[IpAddr], who: &str, stop: &AtomicBool) {
    let mut named = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        let parts = match socket.recv_multipart(0) {
            Ok(parts) => parts,
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
            Err(_) => return,
        };
        // version, request id, domain, address, identity, mechanism, credentials...
        let (version, request, address) = match parts.as_slice() {
            [v, id, _domain, address, ..] => (v.clone(), id.clone(), String::from_utf8_lossy(address).into_owned()),
            _ => continue,
        };
        // An IPv4 peer of an IPv6 socket shows as ::ffff:a.b.c.d: named and matched as IPv4.
        let peer = address.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        let address = peer.map_or(address, |ip| ip.to_string());
        let ok = peer.is_some_and(|ip| allow.contains(&ip));
        if !ok && named.insert(address.clone()) {
            eprintln!("{who}: refused a connection from {address}: not the address of a declared host");
        }
        let (code, text): (&[u8], &[u8]) = if ok { (b"200", b"OK") } else { (b"400", b"not a declared host") };
        let reply: [&[u8]; 6] = [&version, &request, code, text, b"", b""];
        if socket.send_multipart(reply, 0).is_err() {
            return;
        }
    }
}
