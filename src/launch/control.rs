//! The control channel, the one place it is read: the coordinator's ROUTER (bound at the run
//! directory's `control`, and with other hosts on tcp as well), or a joining host's DEALER
//! to it. Frames become [`Incoming`] values, decoded once, here.

use std::os::fd::RawFd;

use super::link::{routing_id, Link};
use super::outcome::RunError;
use super::plan::{HostId, Plan, ReplicaId};
use crate::runtime::zap::{Access, Zap};
use crate::topology::Topology;
use crate::wire::{self, Message};

/// One message read from the control channel.
#[derive(Debug)]
pub enum Incoming {
    /// From a replica (and which of its processes, if its routing id says: `name.replica#n`
    /// is its attempt `n`): its message, or why it is not a valid control message.
    Replica(ReplicaId, Option<u32>, Result<Message, String>),
    /// From another host's launcher (routing id `@<host>`), or, on a joining host, from the
    /// coordinator (`HostId` 0's): its message, or why it does not decode.
    Host(HostId, Result<Link, String>),
    /// From nobody the run knows, or not one frame after the routing id: ignored.
    Stray,
}

/// What a wait on the control channel saw.
#[derive(Debug, Default)]
pub struct Ready {
    /// The control socket has a message.
    pub control: bool,
    /// Some of the extra descriptors are readable.
    pub fds: bool,
}

/// The control socket of a launcher.
pub struct Control {
    /// Stops with the socket's context.
    _zap: Option<Zap>,
    socket: zmq::Socket,
    coordinating: bool,
}

/// The replica of `plan` a routing id names, and the attempt it gives: `name.replica`, or
/// `name.replica#n` from a replica's second start on (docs/protocol.md §3.1).
fn sender(plan: &Plan, routing_id: &str) -> Option<(ReplicaId, Option<u32>)> {
    match routing_id.rsplit_once('#') {
        Some((id, n)) => Some((plan.find(id)?, Some(n.parse().ok()?))),
        None => Some((plan.find(routing_id)?, None)),
    }
}

/// An error setting up or using the control socket: doing `what` (after "failed to").
fn setup(what: String) -> impl FnOnce(zmq::Error) -> RunError {
    RunError::system(what)
}

impl Control {
    /// The coordinator's ROUTER, bound at `ipc` for its own replicas and at `tcp` (if any)
    /// for the other hosts' nodes and launchers, there guarded by `access`.
    pub fn coordinator(
        ctx: &zmq::Context,
        ipc: &str,
        tcp: Option<(&str, &Access, String)>,
    ) -> Result<Control, RunError> {
        let socket = ctx.socket(zmq::ROUTER).map_err(setup("failed to create the control socket".into()))?;
        let configure = || "failed to configure the control socket".to_string();
        socket.set_linger(0).map_err(setup(configure()))?;
        socket.set_ipv6(true).map_err(setup(configure()))?;
        // A restarted replica connects with its predecessor's identity: it takes it over.
        socket.set_router_handover(true).map_err(setup(configure()))?;
        socket.bind(ipc).map_err(setup(format!("failed to bind `{ipc}`")))?;
        crate::runtime::private_socket(ipc).map_err(RunError::system(format!("make `{ipc}` private")))?;
        let mut zap = None;
        if let Some((endpoint, access, hint)) = tcp {
            if access.guards() {
                // The handler answers in the control socket's own context.
                zap = Some(
                    Zap::start(ctx, access, |text| {
                        super::notice::say(&super::notice::Notice::warn("connection-refused", text))
                    })
                    .map_err(RunError::system("start the launcher's ZAP handler"))?,
                );
                access.server(&socket, endpoint).map_err(setup("failed to guard the control socket".into()))?;
            }
            socket
                .bind(endpoint)
                .map_err(RunError::system(format!("bind the control socket at `{endpoint}`{hint}")))?;
        }
        Ok(Control { _zap: zap, socket, coordinating: true })
    }

    /// A joining host's DEALER to the coordinator at `endpoint`, with routing id `@<host>`,
    /// presenting what `access` asks.
    pub fn member(ctx: &zmq::Context, host: &str, endpoint: &str, access: &Access) -> Result<Control, RunError> {
        let configure = || "failed to configure the control socket".to_string();
        let socket = ctx.socket(zmq::DEALER).map_err(setup("failed to create the control socket".into()))?;
        socket.set_linger(0).map_err(setup(configure()))?;
        socket.set_ipv6(true).map_err(setup(configure()))?;
        socket.set_identity(routing_id(host).as_bytes()).map_err(setup(configure()))?;
        access.client(&socket, endpoint).map_err(setup(configure()))?;
        socket.connect(endpoint).map_err(setup(format!("failed to connect to `{endpoint}`")))?;
        Ok(Control { _zap: None, socket, coordinating: false })
    }

    /// Wait up to `timeout_ms` for the control socket or any of `fds`. A signal interrupting
    /// the wait is nothing (the caller takes signals from their counter).
    pub fn wait(&self, timeout_ms: i64, fds: &[RawFd]) -> Result<Ready, RunError> {
        let mut items = vec![self.socket.as_poll_item(zmq::POLLIN)];
        items.extend(fds.iter().map(|&fd| zmq::PollItem::from_fd(fd, zmq::POLLIN)));
        match zmq::poll(&mut items, timeout_ms) {
            Err(zmq::Error::EINTR) => Ok(Ready::default()),
            Err(e) => Err(RunError::system("poll the control socket")(e)),
            Ok(_) => {
                Ok(Ready { control: items[0].is_readable(), fds: items[1..].iter().any(zmq::PollItem::is_readable) })
            }
        }
    }

    /// The next message, if one is waiting, decoded: by the routing id, from a replica of
    /// `plan` or a host of `t` on the coordinator's socket; from the coordinator on a
    /// joining host's.
    pub fn read(&self, t: &Topology, plan: &Plan) -> Result<Option<Incoming>, RunError> {
        let parts = match self.socket.recv_multipart(zmq::DONTWAIT) {
            Ok(parts) => parts,
            // Nothing waiting, or a signal came first (the loop takes it, then reads again).
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(None),
            Err(e) => return Err(RunError::system("read the control socket")(e)),
        };
        if !self.coordinating {
            let [frame] = parts.as_slice() else { return Ok(Some(Incoming::Stray)) };
            let link = Link::decode(frame).map_err(|e| e.to_string());
            return Ok(Some(Incoming::Host(HostId(Topology::COORDINATOR), link)));
        }
        let [identity, frame] = parts.as_slice() else { return Ok(Some(Incoming::Stray)) };
        if let Some(host) = identity.strip_prefix(b"@") {
            let Some(h) = t.hosts.iter().position(|h| h.name.as_bytes() == host) else {
                return Ok(Some(Incoming::Stray));
            };
            let link = Link::decode(frame).map_err(|e| e.to_string());
            return Ok(Some(Incoming::Host(HostId(h), link)));
        }
        let Some((r, attempt)) = std::str::from_utf8(identity).ok().and_then(|id| sender(plan, id)) else {
            return Ok(Some(Incoming::Stray));
        };
        Ok(Some(Incoming::Replica(r, attempt, wire::decode_control(frame).map_err(|e| e.to_string()))))
    }

    /// Send `msg` to replica `id`.
    pub fn tell(&self, id: &str, msg: &Message) -> Result<(), RunError> {
        let frame = wire::encode(msg);
        loop {
            match self.socket.send_multipart([id.as_bytes(), &frame], 0) {
                // A signal (a Ctrl-C to count) interrupted the send: it is sent again.
                Err(zmq::Error::EINTR) => continue,
                sent => return sent.map_err(RunError::system(format!("send `{}` to node `{id}`", msg.type_name()))),
            }
        }
    }

    /// Send `msg` to host `name`'s launcher (coordinator) or to the coordinator (a joining
    /// host); a host that is gone is noticed by its silence, so nothing waits or fails here.
    pub fn link(&self, name: &str, msg: &Link) {
        if self.coordinating {
            let id = routing_id(name);
            let _ = self.socket.send_multipart([id.as_bytes(), &msg.encode()], zmq::DONTWAIT);
        } else {
            let _ = self.socket.send(msg.encode(), zmq::DONTWAIT);
        }
    }

    /// Keep what is still queued for up to 2 s when the socket closes: the last words of a
    /// joining host (`ended`, `left`).
    pub fn linger(&self) {
        let _ = self.socket.set_linger(2000);
    }
}
