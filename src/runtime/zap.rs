//! Only this run's processes get in: ZeroMQ's authentication protocol (ZAP, RFC 27) on every
//! tcp socket a node or a launcher binds.
//!
//! Two guards, each optional ([`Access`]):
//! - the run's **secret** (`PROCNET_SECRET`): tcp sockets speak ZeroMQ's PLAIN mechanism, a
//!   peer must present the secret as its password, and another local user, who cannot read
//!   this run's environment, cannot connect. The launcher makes a new one for every run (on
//!   several hosts, every launcher is given the same);
//! - the **allowlist** (`PROCNET_ALLOW`, with `[hosts]`): the peer's address must be a
//!   declared host's.
//!
//! A guarded socket gets a ZAP domain, and libzmq asks the handler (a thread answering on
//! `inproc://zeromq.zap.01` in the socket's context) about every peer during the handshake:
//! 200 lets it in, 400 closes the connection before any message passes. A refused peer is
//! named once on stderr. ipc sockets need neither: they are files in the run's private
//! directory (mode 0700), which no other user can enter.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::error::NodeError;

/// The ZAP domain set on every guarded socket.
pub const DOMAIN: &str = "procnet";
/// The PLAIN user name every peer presents, with the secret as its password.
pub const USER: &str = "procnet";
/// The endpoint libzmq sends ZAP requests to, in the socket's context.
const ENDPOINT: &str = "inproc://zeromq.zap.01";
/// How often the handler looks whether it should stop, in ms.
const TICK_MS: i32 = 20;

/// Who may connect to the tcp sockets of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// The addresses allowed to connect; empty: any.
    pub allow: Vec<IpAddr>,
    /// The run's secret, which every peer must present; None: none asked.
    pub secret: Option<String>,
}

impl Access {
    /// Whether any guard applies.
    pub fn guards(&self) -> bool {
        !self.allow.is_empty() || self.secret.is_some()
    }

    /// Set up `socket`, before it binds `endpoint`, so that (on tcp) every peer is asked for
    /// what this access requires.
    pub fn server(&self, socket: &zmq::Socket, endpoint: &str) -> Result<(), zmq::Error> {
        if !endpoint.starts_with("tcp://") || !self.guards() {
            return Ok(());
        }
        if self.secret.is_some() {
            socket.set_plain_server(true)?;
        }
        socket.set_zap_domain(DOMAIN)
    }

    /// Set up `socket`, before it connects to `endpoint`, to present the secret (on tcp).
    pub fn client(&self, socket: &zmq::Socket, endpoint: &str) -> Result<(), zmq::Error> {
        match &self.secret {
            Some(secret) if endpoint.starts_with("tcp://") => {
                socket.set_plain_username(Some(USER))?;
                socket.set_plain_password(Some(secret))
            }
            _ => Ok(()),
        }
    }

    /// Whether a peer at `address` (as libzmq writes it) that presented `password` (None:
    /// no credentials, the NULL mechanism) may connect; else why not.
    pub fn admits(&self, address: Option<IpAddr>, password: Option<&[u8]>) -> Result<(), &'static str> {
        if !self.allow.is_empty() && !address.is_some_and(|ip| self.allow.contains(&ip)) {
            return Err("not the address of a declared host");
        }
        match (&self.secret, password) {
            (None, _) => Ok(()),
            (Some(secret), Some(p)) if equal(secret.as_bytes(), p) => Ok(()),
            (Some(_), _) => Err("it did not present this run's secret"),
        }
    }
}

/// Whether `a` equals `b`, in a time that depends on their lengths only.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A new secret for a run: 32 hex digits from the kernel's random source.
pub fn new_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The running handler; dropping it stops the thread.
pub struct Zap {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Zap {
    /// Start answering ZAP requests in `ctx` by `access`; `refused` says the line about a
    /// refused peer (`refused a connection from ADDRESS: why`), once per peer and reason, as
    /// this process says its lines.
    pub fn start(
        ctx: &zmq::Context,
        access: &Access,
        refused: impl Fn(&str) + Send + 'static,
    ) -> Result<Zap, NodeError> {
        let socket = ctx.socket(zmq::REP).map_err(NodeError::zmq("create the ZAP socket"))?;
        socket.bind(ENDPOINT).map_err(NodeError::zmq("bind the ZAP handler"))?;
        socket.set_rcvtimeo(TICK_MS).map_err(NodeError::zmq("set the ZAP socket's timeout"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (access, flag) = (access.clone(), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("procnet-zap".into())
            .spawn(move || serve(&socket, &access, &refused, &flag))
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
fn serve(socket: &zmq::Socket, access: &Access, refused: &dyn Fn(&str), stop: &AtomicBool) {
    let mut named = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        let parts = match socket.recv_multipart(0) {
            Ok(parts) => parts,
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
            Err(_) => return,
        };
        // version, request id, domain, address, identity, mechanism, credentials...
        let [version, request, _domain, address, _identity, mechanism, credentials @ ..] = parts.as_slice() else {
            continue;
        };
        let address = String::from_utf8_lossy(address).into_owned();
        // An IPv4 peer of an IPv6 socket shows as ::ffff:a.b.c.d: named and matched as IPv4.
        let peer = address.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        let address = peer.map_or(address, |ip| ip.to_string());
        // PLAIN: user name, then password.
        let password = (mechanism.as_slice() == b"PLAIN").then(|| credentials.get(1).map(Vec::as_slice)).flatten();
        let verdict = access.admits(peer, password);
        if let Err(why) = verdict {
            if named.insert((address.clone(), why)) {
                refused(&format!("refused a connection from {address}: {why}"));
            }
        }
        let (code, text): (&[u8], &[u8]) = match verdict {
            Ok(()) => (b"200", b"OK"),
            Err(why) => (b"400", why.as_bytes()),
        };
        let reply: [&[u8]; 6] = [version, request, code, text, b"", b""];
        if socket.send_multipart(reply, 0).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_needs_the_secret_and_an_allowed_address() {
        let open = Access::default();
        assert_eq!(open.admits(None, None), Ok(()));
        let secret = Access { allow: vec![], secret: Some("s3cret".into()) };
        assert_eq!(secret.admits(None, Some(b"s3cret")), Ok(()));
        assert!(secret.admits(None, Some(b"s3cres")).is_err());
        assert!(secret.admits(None, Some(b"s3cret!")).is_err());
        assert!(secret.admits(None, None).is_err());
        let both = Access { allow: vec![IpAddr::from([10, 0, 0, 1])], secret: Some("s".into()) };
        assert_eq!(both.admits(Some(IpAddr::from([10, 0, 0, 1])), Some(b"s")), Ok(()));
        assert_eq!(
            both.admits(Some(IpAddr::from([10, 0, 0, 2])), Some(b"s")),
            Err("not the address of a declared host")
        );
        assert_eq!(both.admits(Some(IpAddr::from([10, 0, 0, 1])), None), Err("it did not present this run's secret"));
    }

    #[test]
    fn secrets_are_new_each_time() {
        let (a, b) = (new_secret().expect("a secret"), new_secret().expect("a secret"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
