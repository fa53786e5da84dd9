"""A node replica as its code sees it: join, read records, send records, finish.

§ numbers refer to docs/protocol.md; the Rust reference is src/runtime/ (node.rs, input.rs,
output.rs, publisher.rs).
"""

import collections
import os
import sys
import time

import zmq

from .identity import Identity
from .wire import CONTROL_TOPIC, DecodeError, data_frame, decode, encode, encode_record, text_of

# §11. The batch limits are the Rust runtime's choice; receivers accept batches of any size.
HWM = 16  # ZMQ_SNDHWM / ZMQ_RCVHWM of every data socket, in messages
BATCH_RECORDS, BATCH_BYTES, BATCH_GROWTH = 1024, 64 * 1024, 8
PUB_BATCH_RECORDS = 256  # per topic on a pub port: also what a dropping subscriber loses at once
MAX_NOTES = 5  # reasons kept per kind of drop (every drop is counted)
JOIN_TIMEOUT = 120  # seconds to wait for `wire`, for each port's subscribers, for `start`
STATS_EVERY = 0.25  # seconds between two `stats`, at least
TICK_MS = 1000  # a blocked node looks at its control socket at least this often


class ProtocolError(Exception):
    """The node cannot go on: a bad message from the launcher, counts that disagree, ..."""


class Node:
    """One replica of a node in its network.

    ``with Node() as node:`` joins (§4.1); leaving the block finishes (§8: flush, ``eos`` on
    every pipe and pub port, ``done``, wait for ``bye``), or, if the block raised, sends
    ``failed`` (§6.8) and lets the exception go on, so the process exits non-zero.
    ``env`` replaces ``os.environ`` (an external node); ``publish`` is offered to the other
    nodes in their ``wire.vars`` as ``"<node>.<key>"`` (§6.3).
    """

    def __init__(self, env=None, publish=None):
        self.identity = Identity.from_env(os.environ if env is None else env)  # §2.2
        self.name, self.replica, self.replicas = self.identity.node, self.identity.replica, self.identity.replicas
        self.id = self.identity.id
        self.vars = {}
        self._publish, self._ctx, self._stop = publish or {}, None, False

    # --- joining (§4.1) ----------------------------------------------------------------------

    def __enter__(self):
        try:
            self.join()
        except BaseException:
            self.close()
            raise
        return self

    def join(self):
        """Bind, ``hello``, ``wire``, connect, count subscribers, ``ready``, ``start``."""
        me, ctx = self.identity, zmq.Context()
        ctx.setsockopt(zmq.IPV6, 1)  # every socket: IPv6 hosts as well as IPv4 (§3.6)
        self._ctx, self._last_stats = ctx, time.monotonic()
        self._max_bytes = me.max_message_bytes or 0
        self._inexact = me.restart > 0  # §4.5: a replacement
        self.received = self.invalid_frames = self.bad_records = self.errors = 0
        self._blocked, self._input_notes, self._notes = 0.0, [], []
        #: The node's result for the run report (§6.6 ``done.result``): set it to a str (a
        #: tally's JSON, say) before the stream ends; None sends none.
        self.result = None
        self._queue, self._pending_eos, self._announced, self._pulled = collections.deque(), {}, 0, 0
        self._relaxed, self._resend_to, self._monitors, self._subs = set(), [], [], []
        self._sub_received = []  # records received on each SUB socket (§6.6 `subscribed`)
        self._ended = self._running = self._input_done = False
        # §3.6: the run's secret, presented to (and asked of) every tcp peer with PLAIN; with
        # PROCNET_ALLOW, only declared hosts may connect too.
        self._secret, allow = me.secret, me.allow
        self._control = ctx.socket(zmq.DEALER)  # §3.1: routing id name.replica[#attempt], before connecting
        self._control.setsockopt(zmq.IDENTITY, self.identity.routing_id.encode())
        self._control.setsockopt(zmq.LINGER, 2000)  # a `done` or `failed` sent last still goes
        _present(self._control, me.control, self._secret)
        self._control.connect(me.control)
        binds = [me.bind or ""] + list(me.pub_ports.values())
        self._auth = None
        if (allow or self._secret) and any(ep.startswith("tcp://") for ep in binds):
            from zmq.auth.thread import ThreadAuthenticator
            self._auth = ThreadAuthenticator(ctx)
            self._auth.start()
            if allow:  # an IPv4 peer of a socket bound on "::" shows as ::ffff:a.b.c.d
                self._auth.allow(*allow, *["::ffff:" + a for a in allow if ":" not in a])
            if self._secret:
                self._auth.configure_plain(domain="procnet", passwords={"procnet": self._secret})
        guard = (allow, self._secret)
        self._pull = None  # §3.2: one PULL for every push port read, bound before hello
        if me.bind:
            self._pull = self._input_socket(zmq.PULL)
            _guard(self._pull, me.bind, guard)
            self._pull.bind(me.bind)
        # §3.4: an XPUB per entry of PROCNET_PUB: a port, or its lossy `<port>!drop` socket.
        self._pubs = [_Publisher(ctx, k, ep, guard) for k, ep in me.pub_ports.items()]
        hello = {"node": self.name, "replica": self.replica, "pid": os.getpid(),
                 "input": self._pull.getsockopt_string(zmq.LAST_ENDPOINT) if self._pull else None}
        if self._publish:
            hello["publish"] = dict(sorted(self._publish.items()))
        if self._pubs:
            hello["ports"] = dict(sorted((p.key, p.endpoint) for p in self._pubs))
        self._tell("hello", **hello)

        wire = self._await("wire", JOIN_TIMEOUT)
        self.vars = dict(wire.get("vars") or {})
        for up in wire["inputs"]:  # §8: expect one eos from each replica of each port read
            sub = None
            if up.get("pattern") == "pub":  # §3.5
                sock = self._input_socket(zmq.SUB)
                for ep in up["endpoints"]:
                    _present(sock, ep, self._secret)
                    sock.connect(ep)
                # Subscribing after connecting, as the Rust node does, puts the prefixes before
                # "\0" on each pipe: a publisher that counted us has our prefixes too.
                for prefix in [t.encode() for t in up["topics"]] or [b""]:
                    sock.setsockopt(zmq.SUBSCRIBE, prefix)
                sock.setsockopt(zmq.SUBSCRIBE, CONTROL_TOPIC)
                self._subs.append((sock, up["topics"]))
                self._sub_received.append(0)
                sub = len(self._subs) - 1
            elif self._pull is None:
                raise ProtocolError(f"the launcher wired a push input from `{up['node']}`, but PROCNET_BIND is not set")
            for i in range(up["replicas"]):
                self._pending_eos[f"{up['node']}.{i}/{up.get('port') or 'out'}"] = sub
        self._outputs = [_Output(ctx, entry, self._secret) for entry in wire["outputs"]]  # §3.3
        for spec in wire.get("ports") or []:  # §3.4: the topic rule, then wait for subscribers
            if not any(p.port == spec["name"] for p in self._pubs):
                raise ProtocolError(f"the launcher wired port `{spec['name']}`, which this node did not bind")
            for p in self._pubs:
                if p.port == spec["name"]:
                    p.topic_field, p.topic = spec.get("topic_field"), spec.get("topic")
                    p.await_subscribers(spec.get("drop_subscribers", 0) if p.lossy else spec["subscribers"])
        self._poller = zmq.Poller()
        for sock in [self._control, self._pull] + [s for s, _ in self._subs]:
            if sock is not None:
                self._poller.register(sock, zmq.POLLIN)
        self._tell("ready")
        self._await("start", JOIN_TIMEOUT)
        self._running = True

    def _input_socket(self, kind):
        sock = self._ctx.socket(kind)
        sock.setsockopt(zmq.RCVHWM, HWM)
        if self._max_bytes:  # §9: libzmq drops a bigger message with its connection...
            sock.setsockopt(zmq.MAXMSGSIZE, self._max_bytes)
        self._monitors.append(sock.get_monitor_socket(zmq.EVENT_DISCONNECTED))  # ...which we see
        return sock

    # --- the control channel (§4.2) ------------------------------------------------------------

    def _tell(self, t, **fields):
        self._control.send(encode(t, **fields))

    def _await(self, want, timeout=None):
        """The next control message, which must be ``want``: anything else is fatal, except
        ``stop``, ``restarted`` and ``resend``, which may come at any time."""
        deadline = time.monotonic() + (timeout or 0)
        while True:
            left = deadline - time.monotonic()
            if timeout and left <= 0:
                raise ProtocolError(f"no `{want}` from the launcher within {timeout} s")
            if not self._control.poll(int(left * 1000) + 1 if timeout else None):
                continue
            try:
                msg = decode(self._control.recv())
            except DecodeError as e:
                raise ProtocolError(f"bad message from the launcher: {e}") from None
            if msg["t"] == want:
                return msg
            if msg["t"] not in ("stop", "restarted", "resend"):
                raise ProtocolError(f"expected `{want}` from the launcher, got `{msg['t']}`")
            self._on_control(msg)

    def _poll_control(self):
        """Act on the control messages that have come, without waiting; ignore the others."""
        while self._control.poll(0):
            try:
                self._on_control(decode(self._control.recv()))
            except DecodeError:
                pass

    def _on_control(self, msg):
        if msg["t"] == "stop":
            self._stop = True
        elif msg["t"] == "restarted":  # §4.5: an upstream replica died: counts cannot add up
            self._relaxed.add(msg["from"])
        elif msg["t"] == "resend":  # §4.5: a downstream replica died: eos again, once ended
            self._resend_to.append(msg["to"])
            if self._ended:
                self._resend()

    def _resend(self):
        for to in self._resend_to:
            node, _, replica = to.rpartition(".")
            for out in self._outputs:
                if out.node == node and replica.isdigit() and int(replica) < len(out.peers):
                    out.peers[int(replica)].send(out.eos(self.id, int(replica)))
        self._resend_to = []

    def _report_stats(self):
        """§6.7: the counters so far, at most every 250 ms, only between start and done."""
        if self._running and time.monotonic() - self._last_stats >= STATS_EVERY:
            self._last_stats = time.monotonic()
            self._tell("stats", **self.stats())

    # --- the public API ------------------------------------------------------------------------

    @property
    def stop_requested(self):
        """Whether the launcher sent ``stop`` (§4.2): a source should end its stream soon."""
        if self._ctx is not None:
            self._poll_control()
        return self._stop

    def var(self, name, default=None):
        """A value another node published, e.g. ``node.var("site.url")`` (``wire.vars``)."""
        return self.vars.get(name, default)

    def bad_record(self, note):
        """Count a record this node could not process and dropped, with the reason (§6.6)."""
        self.bad_records += 1
        if len(self._notes) < MAX_NOTES:
            self._notes.append(str(note))

    def error(self):
        """Count a record this node passed on marked as failed (``errors``, §6.6)."""
        self.errors += 1

    def stats(self):
        """The counters so far, as in ``stats`` and ``done`` (§6.6)."""
        # A port's lossy socket carries the same records as the port's own: count them once.
        sent = sum(o.sent_total() for o in self._outputs) + sum(p.sent_total() for p in self._pubs if not p.lossy)
        return {"received": self.received, "sent": sent, "invalid_frames": self.invalid_frames,
                "bad_records": self.bad_records, "errors": self.errors,
                "dropped": sum(p.dropped for p in self._pubs), "blocked_ms": int(self._blocked * 1000)}

    # --- input (§3.2, §3.5, §8) ----------------------------------------------------------------

    def records(self):
        """The input records (dicts), until the end of stream: an ``eos`` from every upstream
        replica of every port read, and the records they announced (§8). Pending output is
        sent before waiting. ``stop`` does not end it: a node with inputs drains them (§4.2)."""
        return iter(self._next, None)

    def _next(self):
        while not self._queue:
            if not self._pending_eos:
                if not self._input_done:
                    self._verify()
                    self._input_done = True
                return None
            if not self._try_receive():
                self.flush()
                self._report_stats()
                if self._control in dict(self._poller.poll(TICK_MS)):
                    self._poll_control()
        return self._queue.popleft()

    def _try_receive(self):
        """Take one frame from an input socket that has one; False if none had."""
        if self._pull is not None and self._pull.poll(0):
            self._accept(self._pull.recv(), None)
            return True
        for i, (sock, _) in enumerate(self._subs):
            if sock.poll(0):
                parts = sock.recv_multipart()
                if len(parts) == 2:  # the topic, then the message (§3.4)
                    self._accept(parts[1], i)
                else:
                    self._invalid(f"a published message of {len(parts)} frames, not 2")
                return True
        return False

    def _accept(self, frame, sub):
        """A frame from the PULL socket (``sub`` None) or SUB socket ``sub``. An invalid one is
        dropped and counted with a note, never fatal (§9)."""
        try:
            msg = decode(frame)
        except DecodeError as e:
            return self._invalid(f"undecodable frame of {len(frame)} bytes: {e}")
        if msg["t"] == "data":
            self.received += len(msg["records"])
            if sub is None:
                self._pulled += len(msg["records"])
            else:
                self._sub_received[sub] += len(msg["records"])
            self._queue.extend(msg["records"])
        elif msg["t"] == "eos":
            port = msg.get("port") or "out"
            key = f"{msg['from']}/{port}"
            if key in self._pending_eos and self._pending_eos[key] == sub:
                del self._pending_eos[key]
                if sub is None:
                    self._announced += msg["sent"]
                else:  # a pub port: the counts of the topics this input subscribed to
                    prefixes = self._subs[sub][1]
                    self._announced += sum(n for topic, n in (msg.get("topics") or {}).items()
                                           if not prefixes or any(topic.startswith(p) for p in prefixes))
            elif not (self._inexact or msg["from"] in self._relaxed):  # after a restart: expected
                self._invalid(f"`eos` from `{msg['from']}` (port `{port}`), which is not an upstream "
                              "replica still streaming")
        else:
            self._invalid(f"unexpected `{msg['t']}` message on a data socket")

    def _invalid(self, note):
        self.invalid_frames += 1
        self._last_invalid = note
        if len(self._input_notes) < MAX_NOTES:
            self._input_notes.append(note)

    def _verify(self):
        """§8: the records received must be those announced; §4.5 and §9 say when not."""
        drops = 0
        for mon in self._monitors:  # only EVENT_DISCONNECTED was asked for
            while mon.poll(0):
                mon.recv_multipart()
                drops += 1
        if self.received < self._announced and drops:  # §9: count them as invalid frames
            self.invalid_frames += drops
            note = (f"{self._announced - self.received} records announced were never received: {drops} "
                    f"input connection{' was' if drops == 1 else 's were'} dropped mid-stream (a message "
                    f"over max_message_bytes, {self._max_bytes or 'no limit'} bytes, or a sender that died)")
            self._input_notes = (self._input_notes + [note])[:MAX_NOTES]
            return
        if self.received != self._announced:
            self._poll_control()  # a `restarted` may explain it
            if not (self._inexact or self._relaxed):
                raise ProtocolError(f"received {self.received} records but upstream replicas "
                                    f"reported sending {self._announced}")

    # --- output (§3.3, §3.4) -------------------------------------------------------------------

    def send(self, record, port="out"):
        """Send a record (a dict with str keys) to every node that reads ``port``: to one
        replica of each (push) or to every subscriber of its topic (pub). Blocks while every
        replica is full (backpressure). Without readers, it goes nowhere."""
        encoded = encode_record(record)
        for out in self._outputs:
            if out.port == port and out.add(encoded):
                self._flush_output(out)
        for pub in self._pubs:
            if pub.port == port and pub.add(record, encoded):
                self._flush_publisher(pub)

    def flush(self):
        """Send every pending batch now: call it before a blocking read of your own (§3.3)."""
        for out in self._outputs:
            self._flush_output(out)
        for pub in self._pubs:
            self._flush_publisher(pub)

    def _flush_output(self, out):
        if not out.batch:
            return
        frame, n = data_frame(out.batch), len(out.batch)
        out.batch, out.batch_bytes = [], 0
        self._report_stats()
        while not out.try_send(frame, n):  # §3.3 step 3: every pipe is full: wait for room
            t = time.monotonic()
            control, _, _ = zmq.select([self._control], out.peers, [], TICK_MS / 1000)
            self._blocked += time.monotonic() - t
            if control:
                self._poll_control()

    def _flush_publisher(self, pub, end=False):
        """Send the pending batches (or, with ``end``, the ``eos``). An XPUB cannot be polled for
        room: after a refusal wait 1, 2, 4, 8, then 16 ms, watching control (§3.4)."""
        backoff = 1
        while not (pub.try_end(self.id) if end else pub.try_flush()):
            t = time.monotonic()
            if self._control.poll(backoff):
                self._poll_control()
            self._blocked += time.monotonic() - t
            backoff = min(backoff * 2, 16)

    # --- the end (§8) --------------------------------------------------------------------------

    def finish(self):
        """Flush, ``eos`` on every pipe and pub port, ``done``, wait for ``bye`` (§4.3: the data
        sockets stay open until then). Input not read yet is read first (and counted, and
        dropped), so that upstream nodes can finish. Leaving the ``with`` block calls it."""
        for _ in self.records():
            pass
        self.flush()
        for out in self._outputs:
            for i, sock in enumerate(out.peers):
                sock.send(out.eos(self.id, i))  # blocking, after the pipe's last data
        self._ended = True
        self._resend()
        for pub in self._pubs:
            self._flush_publisher(pub, end=True)
        self._running = False
        result = {} if self.result is None else {"result": str(self.result)}
        self._tell("done", **self.stats(), notes=self._input_notes + self._notes, **result, **self._flows())
        self._await_bye()

    def _flows(self):
        """§6.6: records per edge, for the launcher's conservation check."""
        flows = {}
        if self._outputs:
            flows["outputs"] = [o.sent_total() for o in self._outputs]
        if self._pubs:
            flows["published"] = {p.key: dict(sorted(p.published.items())) for p in self._pubs}
        if self._pull is not None:
            flows["pulled"] = self._pulled
        if self._subs:
            flows["subscribed"] = list(self._sub_received)
        return flows

    def _await_bye(self):
        """§8: wait for ``bye``, reading the input meanwhile. Nothing should arrive after its
        end; if anything does, an ``eos`` was forged or mistaken: fail, loudly."""
        while True:
            received, invalid = self.received, self.invalid_frames
            while self._try_receive():
                if self.received > received:
                    raise ProtocolError(f"{self.received - received} records arrived after the end of its input "
                                        "(an `eos` from every upstream replica): an `eos` was forged or mistaken")
                if self.invalid_frames > invalid:
                    raise ProtocolError("a frame arrived after the end of its input (an `eos` from every upstream "
                                        f"replica): {self._last_invalid}")
            if self._control in dict(self._poller.poll(TICK_MS)):
                try:
                    msg = decode(self._control.recv())
                except DecodeError as e:
                    raise ProtocolError(f"bad message from the launcher: {e}") from None
                if msg["t"] == "bye":
                    return
                if msg["t"] not in ("stop", "restarted", "resend"):
                    raise ProtocolError(f"expected `bye` from the launcher, got `{msg['t']}`")
                self._on_control(msg)

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc is None:
                self.finish()
        except BaseException as e:
            exc = e
            raise
        finally:
            if exc is not None and self._ctx is not None:
                self._tell("failed", error=str(exc) if isinstance(exc, ProtocolError) else f"{type(exc).__name__}: {exc}")
            self.close()

    def close(self):
        """Close every socket; the control socket keeps its linger, for a last ``failed``."""
        if self._ctx is not None:
            if getattr(self, "_auth", None) is not None:
                self._auth.stop()
            if hasattr(self, "_control"):
                self._control.close()
            self._ctx.destroy(linger=0)
            self._ctx = None


class _Output:
    """§3.3: a push port read by one downstream node: a PUSH socket per replica (its pipe),
    our own round-robin over them, a pending batch, and the records sent on each pipe."""

    def __init__(self, ctx, entry, secret=None):
        self.node, self.port = entry["node"], entry.get("port") or "out"
        self.peers = [ctx.socket(zmq.PUSH) for _ in entry["endpoints"]]
        for sock, endpoint in zip(self.peers, entry["endpoints"]):
            sock.setsockopt(zmq.SNDHWM, HWM)
            _present(sock, endpoint, secret)
            sock.connect(endpoint)
        self.sent, self.next, self.batch, self.batch_bytes = [0] * len(self.peers), 0, [], 0

    def add(self, encoded):
        """Add a record; True when the batch is full: at 64 KiB, or at one record per 8 sent so
        far per downstream replica, at least 1 and at most 1024 (§3.3 step 1)."""
        self.batch.append(encoded)
        self.batch_bytes += len(encoded)
        limit = min(max(sum(self.sent) // len(self.peers) // BATCH_GROWTH, 1), BATCH_RECORDS)
        return len(self.batch) >= limit or self.batch_bytes >= BATCH_BYTES

    def try_send(self, frame, n):
        """Give the batch to the next replica whose pipe has room (§3.3 step 2)."""
        for k in range(len(self.peers)):
            i = (self.next + k) % len(self.peers)
            try:
                self.peers[i].send(frame, zmq.NOBLOCK)
            except zmq.Again:  # full: the next one
                continue
            self.sent[i] += n
            self.next = (i + 1) % len(self.peers)
            return True
        return False

    def sent_total(self):
        return sum(self.sent) + len(self.batch)

    def eos(self, me, i):
        """The ``eos`` of pipe ``i`` (§6.2), ``port`` only when not ``out``."""
        return encode("eos", **{"from": me, "sent": self.sent[i]}, **({"port": self.port} if self.port != "out" else {}))


def _guard(sock, endpoint, guard):
    """§3.6: a tcp socket asks the ZAP handler about every peer, with PLAIN if the run has a
    secret. ``guard`` is (the allow list, the secret)."""
    allow, secret = guard
    if (allow or secret) and endpoint.startswith("tcp://"):
        if secret:
            sock.plain_server = True
        sock.zap_domain = b"procnet"


def _present(sock, endpoint, secret):
    """§3.6: present the run's secret to a tcp peer (PLAIN, user ``procnet``)."""
    if secret and endpoint.startswith("tcp://"):
        sock.plain_username = b"procnet"
        sock.plain_password = secret.encode()


class _Publisher:
    """§3.4: the XPUB socket of a pub port, or of its lossy ``<port>!drop`` socket: a batch per
    topic, and the records published per topic for its ``eos``."""

    def __init__(self, ctx, key, endpoint, guard=((), None)):
        self.key, self.lossy = key, key.endswith("!drop")
        self.port = key[: -len("!drop")] if self.lossy else key
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_NODROP, 1)  # a full subscriber refuses, never loses
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription reaches us: count them
        self.sock.setsockopt(zmq.SNDHWM, HWM)
        _guard(self.sock, endpoint, guard)
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.topic_field = self.topic = None
        self.batches, self.published, self.dropped = {}, {}, 0  # topic -> records / count

    def await_subscribers(self, n):
        """Read subscriptions until ``n`` were to "\\0" (the bytes 01 00), before ``ready``."""
        seen, deadline = 0, time.monotonic() + JOIN_TIMEOUT
        while seen < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"only {seen} of {n} subscribers of port `{self.port}` subscribed "
                                    f"within {JOIN_TIMEOUT} s")
            if self.sock.poll(int(left * 1000) + 1) and self.sock.recv() == b"\x01" + CONTROL_TOPIC:
                seen += 1

    def add(self, record, encoded):
        """Add a record to its topic's batch; True when that batch has 256 records or 64 KiB."""
        if self.topic_field is not None:
            topic = text_of(record[self.topic_field]) if self.topic_field in record else ""
        else:
            topic = self.topic or ""
        batch = self.batches.setdefault(topic.lstrip("\0"), [])  # a record topic never starts with NUL
        batch.append(encoded)
        return len(batch) >= PUB_BATCH_RECORDS or sum(map(len, batch)) >= BATCH_BYTES

    def try_flush(self):
        """Send every batch, topics in byte order; False if a subscriber is full (the rest stays
        pending), except on a lossy socket, where such a batch is dropped and counted."""
        for topic in sorted(self.batches):  # code point order of str = byte order of UTF-8
            batch = self.batches[topic]
            if self.try_send(topic.encode(), data_frame(batch)):
                self.published[topic] = self.published.get(topic, 0) + len(batch)
            elif self.lossy:
                self.dropped += len(batch)
            else:
                return False
            del self.batches[topic]
        return True

    def try_send(self, topic, frame):
        try:
            self.sock.send(topic, zmq.SNDMORE | zmq.NOBLOCK)
        except zmq.Again:
            return False
        self.sock.send(frame)  # the first frame went, so the second goes too
        return True

    def sent_total(self):
        return sum(self.published.values()) + sum(map(len, self.batches.values()))

    def try_end(self, me):
        """Publish the ``eos`` under topic "\\0", with the records per topic (§6.2)."""
        fields = {"from": me, "sent": sum(self.published.values())}
        if self.port != "out":
            fields["port"] = self.port
        if self.published:
            fields["topics"] = dict(sorted(self.published.items()))
        return self.try_send(CONTROL_TOPIC, encode("eos", **fields))
