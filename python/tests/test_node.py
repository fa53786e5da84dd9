"""The Node against a fake launcher and fake peers in this process (no procnet binary): the
handshake, exact end of stream, invalid frames, restarts, `resend`, `stop`, pub ports and pub
inputs, and the message size limit (docs/protocol.md §3, §4, §8, §9)."""

import json
import threading
import time

import pytest
import zmq

from procnet import Node, ProtocolError
from procnet.wire import data_frame, decode, encode, encode_record

TIMEOUT = 10  # seconds; every wait in these tests is bounded


class Launcher:
    """A ROUTER on ipc in tmp_path, and the peers' sockets a test creates."""

    def __init__(self, tmp):
        self.dir, self.ctx = tmp, zmq.Context()
        self.router = self.socket(zmq.ROUTER)
        self.router.bind(self.ep("control"))

    def ep(self, name):
        return f"ipc://{self.dir}/{name}"

    def socket(self, kind, **options):
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        for k, v in options.items():
            sock.setsockopt(getattr(zmq, k), v)
        return sock

    def env(self, name="n", replica=0, bind=True, **extra):
        env = {"PROCNET_PROTOCOL": "1", "PROCNET_NODE": name, "PROCNET_REPLICA": str(replica),
               "PROCNET_REPLICAS": "1", "PROCNET_CONTROL": self.ep("control"), "PROCNET_TOPOLOGY": "t",
               "PROCNET_RUN_DIR": str(self.dir), "PROCNET_RESTART": "0"}
        if bind:
            env["PROCNET_BIND"] = self.ep(f"{name}.{replica}")
        env.update(extra)
        return env

    def recv(self, skip_stats=True):
        """The next control message (routing id, message), `stats` skipped."""
        while True:
            assert self.router.poll(TIMEOUT * 1000), "no message from the node"
            who, frame = self.router.recv_multipart()
            msg = decode(frame)
            if not (skip_stats and msg["t"] == "stats"):
                return who.decode(), msg

    def send(self, who, t, **fields):
        self.router.send_multipart([who.encode(), encode(t, **fields)])

    def join(self, who, inputs=(), outputs=(), **wire):
        """hello, wire, ready, start; returns the hello."""
        _, hello = self.recv()
        assert hello["t"] == "hello" and f"{hello['node']}.{hello['replica']}" == who
        self.send(who, "wire", inputs=list(inputs), outputs=list(outputs), **wire)
        assert self.recv()[1]["t"] == "ready"
        self.send(who, "start")
        return hello

    def close(self):
        self.ctx.destroy(linger=0)


@pytest.fixture
def launcher(tmp_path):
    la = Launcher(tmp_path)
    yield la
    la.close()


def start(env, body):
    """Run `with Node(env=env) as node: body(node)` in a thread; .result holds the outcome."""
    def run():
        try:
            with Node(env=env) as node:
                t.result = body(node)
        except BaseException as e:  # noqa: BLE001 (the test looks at it)
            t.result = e
    t = threading.Thread(target=run, daemon=True)
    t.result = None
    t.start()
    return t


def finished(t):
    t.join(TIMEOUT)
    assert not t.is_alive(), "the node did not finish"
    return t.result


def pass_through(node):
    for record in node.records():
        node.send(record)


def read_until_eos(sock):
    """Records received on a PULL socket until its `eos`, and the `eos`."""
    records = []
    while True:
        assert sock.poll(TIMEOUT * 1000), "no eos"
        msg = decode(sock.recv())
        if msg["t"] == "eos":
            return records, msg
        records += msg["records"]


def test_a_pass_through_node_counts_exactly_and_drops_invalid_frames(launcher):
    down = launcher.socket(zmq.PULL)
    down.bind(launcher.ep("down.0"))
    t = start(launcher.env(), pass_through)
    hello = launcher.join("n.0", inputs=[{"node": "up", "replicas": 1}],
                          outputs=[{"node": "down", "endpoints": [launcher.ep("down.0")]}])
    assert list(hello) == ["v", "t", "node", "replica", "pid", "input"]
    assert hello["input"] == launcher.ep("n.0")
    up = launcher.socket(zmq.PUSH)
    up.connect(hello["input"])
    for frame in [data_frame([encode_record({"i": i}) for i in range(3)]), b"\xc1junk", encode("start"),
                  encode("eos", **{"from": "ghost.0", "sent": 1}), data_frame([encode_record({"i": 3})]),
                  encode("eos", **{"from": "up.0", "sent": 4})]:
        up.send(frame)
    _, done = launcher.recv()
    assert done["t"] == "done"
    assert {k: done[k] for k in ("received", "sent", "invalid_frames", "bad_records", "errors", "dropped")} == \
        {"received": 4, "sent": 4, "invalid_frames": 3, "bad_records": 0, "errors": 0, "dropped": 0}
    assert done["notes"][1:] == [
        "unexpected `start` message on a data socket",
        "`eos` from `ghost.0` (port `out`), which is not an upstream replica still streaming"]
    assert done["notes"][0].startswith("undecodable frame of 5 bytes: ")
    records, eos = read_until_eos(down)
    assert records == [{"i": i} for i in range(4)]
    assert eos == {"v": 1, "t": "eos", "from": "n.0", "sent": 4}
    launcher.send("n.0", "bye")
    assert finished(t) is None


def test_batches_grow_with_the_stream_and_balance_over_replicas(launcher):
    downs = []
    for r in range(2):
        downs.append(launcher.socket(zmq.PULL))
        downs[-1].bind(launcher.ep(f"down.{r}"))

    def source(node):
        for i in range(1000):
            node.send({"i": i})

    t = start(launcher.env(bind=False), source)
    hello = launcher.join("n.0", outputs=[{"node": "down", "endpoints": [launcher.ep("down.0"),
                                                                          launcher.ep("down.1")]}])
    assert hello["input"] is None
    sizes, got = [[], []], [[], []]
    for r in (0, 1):
        while True:
            msg = decode(downs[r].recv())
            if msg["t"] == "eos":
                assert msg["sent"] == len(got[r])
                break
            sizes[r].append(len(msg["records"]))
            got[r] += [x["i"] for x in msg["records"]]
    assert sorted(got[0] + got[1]) == list(range(1000))
    # One record per batch at first; one per 8 sent per replica later (§3.3): at most
    # 1000 / 2 / 8 here, far below the cap of BATCH_RECORDS.
    assert sizes[0][:2] == [1, 1] and 32 < max(sizes[0] + sizes[1]) <= 1000 // 2 // 8
    assert abs(len(got[0]) - len(got[1])) <= 64
    assert launcher.recv()[1]["sent"] == 1000
    launcher.send("n.0", "bye")
    assert finished(t) is None


def test_records_missing_at_the_end_fail_the_node(launcher):
    t = start(launcher.env(), pass_through)
    hello = launcher.join("n.0", inputs=[{"node": "up", "replicas": 1}])
    up = launcher.socket(zmq.PUSH)
    up.connect(hello["input"])
    up.send(data_frame([encode_record({"a": 1})]))
    up.send(encode("eos", **{"from": "up.0", "sent": 2}))
    _, failed = launcher.recv()
    assert failed == {"v": 1, "t": "failed", "error": "received 1 records but upstream replicas reported sending 2"}
    assert isinstance(finished(t), ProtocolError)


@pytest.mark.parametrize("how", ["restarted message", "PROCNET_RESTART"])
def test_after_a_restart_counts_are_not_checked_and_repeated_eos_are_ignored(launcher, how):
    env = launcher.env(PROCNET_RESTART="1" if how == "PROCNET_RESTART" else "0")
    t = start(env, pass_through)
    hello = launcher.join("n.0", inputs=[{"node": "up", "replicas": 2}])
    if how == "restarted message":
        launcher.send("n.0", "restarted", **{"from": "up.0"})
        time.sleep(0.2)
    up = launcher.socket(zmq.PUSH)
    up.connect(hello["input"])
    for frame in [encode("eos", **{"from": "up.0", "sent": 5}), encode("eos", **{"from": "up.0", "sent": 5}),
                  data_frame([encode_record({"a": 1})]), encode("eos", **{"from": "up.1", "sent": 1})]:
        up.send(frame)
    _, done = launcher.recv()
    assert (done["t"], done["received"], done["invalid_frames"]) == ("done", 1, 0)
    launcher.send("n.0", "bye")
    assert finished(t) is None


def test_resend_sends_eos_again_to_a_restarted_replica(launcher):
    downs = [launcher.socket(zmq.PULL) for _ in range(2)]
    for r, d in enumerate(downs):
        d.bind(launcher.ep(f"down.{r}"))

    def source(node):
        for i in range(3):
            node.send({"i": i})

    t = start(launcher.env(bind=False), source)
    launcher.join("n.0", outputs=[{"node": "down", "endpoints": [launcher.ep("down.0"), launcher.ep("down.1")]}])
    assert launcher.recv()[1]["t"] == "done"
    assert [len(read_until_eos(d)[0]) for d in downs] == [2, 1]  # round robin, one record a batch
    launcher.send("n.0", "resend", to="down.1")
    assert downs[1].poll(TIMEOUT * 1000)
    assert decode(downs[1].recv()) == {"v": 1, "t": "eos", "from": "n.0", "sent": 1}
    assert not downs[0].poll(100)
    launcher.send("n.0", "bye")
    assert finished(t) is None


def test_a_source_ends_early_on_stop_under_backpressure(launcher):
    down = launcher.socket(zmq.PULL, RCVHWM=1)
    down.bind(launcher.ep("down.0"))

    def source(node):
        i = 0
        while not node.stop_requested:
            node.send({"i": i, "pad": "x" * 1000})
            i += 1
        return i

    t = start(launcher.env(bind=False), source)
    launcher.join("n.0", outputs=[{"node": "down", "endpoints": [launcher.ep("down.0")]}])
    time.sleep(0.5)  # the source fills the pipe and blocks: nobody reads
    launcher.send("n.0", "stop")
    records, eos = read_until_eos(down)
    _, done = launcher.recv()
    assert done["sent"] == eos["sent"] == len(records) > 0
    assert done["blocked_ms"] > 0
    launcher.send("n.0", "bye")
    assert finished(t) == len(records)


def test_a_pub_port_waits_for_subscribers_and_counts_per_topic_and_drops(launcher):
    pub = {"hosts": launcher.ep("n.0.hosts"), "hosts!drop": launcher.ep("n.0.hosts!drop")}
    n = 3000

    def publisher(node):
        for i in range(n):
            node.send({"i": i, "host": ["acme.test", "jade.test", "\0ember"][i % 3], "pad": "x" * 500},
                      port="hosts")

    t = start(launcher.env(bind=False, PROCNET_PUB=json.dumps(pub)), publisher)
    _, hello = launcher.recv()
    assert hello["ports"] == pub  # sorted by key
    launcher.send("n.0", "wire", inputs=[], outputs=[],
                  ports=[{"name": "hosts", "subscribers": 1, "drop_subscribers": 1, "topic_field": "host"}])
    assert not launcher.router.poll(300), "ready before every subscriber subscribed"
    acme = launcher.socket(zmq.SUB)
    acme.connect(pub["hosts"])
    for prefix in (b"acme", b"\0"):
        acme.setsockopt(zmq.SUBSCRIBE, prefix)
    assert not launcher.router.poll(300), "ready before the lossy socket's subscriber subscribed"
    lossy = launcher.socket(zmq.SUB, RCVHWM=1)
    lossy.connect(pub["hosts!drop"])
    for prefix in (b"", b"\0"):
        lossy.setsockopt(zmq.SUBSCRIBE, prefix)
    assert launcher.recv()[1]["t"] == "ready"
    launcher.send("n.0", "start")
    got = []
    while True:  # read the lossless subscriber; the lossy one reads nothing yet
        assert acme.poll(TIMEOUT * 1000)
        topic, frame = acme.recv_multipart()
        msg = decode(frame)
        if msg["t"] == "eos":
            assert topic == b"\0"
            break
        assert topic == b"acme.test"
        got += msg["records"]
    assert msg == {"v": 1, "t": "eos", "from": "n.0", "sent": n, "port": "hosts",
                   "topics": {"acme.test": n // 3, "ember": n // 3, "jade.test": n // 3}}
    assert len(got) == n // 3
    lossy_got = 0  # its `eos` is never dropped: `done` waits for it (§3.4)
    while True:
        assert lossy.poll(TIMEOUT * 1000)
        topic, frame = lossy.recv_multipart()
        msg = decode(frame)
        if msg["t"] == "eos":
            break
        lossy_got += len(msg["records"])
    _, done = launcher.recv()
    assert done["sent"] == n and done["dropped"] > 0
    assert msg["sent"] == lossy_got == sum(msg["topics"].values()) == n - done["dropped"]
    launcher.send("n.0", "bye")
    assert finished(t) is None


def test_a_pub_input_subscribes_and_counts_the_topics_it_reads(launcher):
    pubs = []
    for r in range(2):
        pubs.append(launcher.socket(zmq.XPUB))
        pubs[-1].bind(launcher.ep(f"p.{r}.hosts"))
    t = start(launcher.env(bind=False), lambda node: [r["i"] for r in node.records()])
    _, hello = launcher.recv()
    launcher.send("n.0", "wire", outputs=[], inputs=[
        {"node": "p", "replicas": 2, "port": "hosts", "pattern": "pub", "topics": ["acme."],
         "endpoints": [launcher.ep("p.0.hosts"), launcher.ep("p.1.hosts")]}])
    for p in pubs:  # the prefixes, then "\0" (§3.5)
        assert [p.recv(), p.recv()] == [b"\x01acme.", b"\x01\0"]
    assert launcher.recv()[1]["t"] == "ready"
    launcher.send("n.0", "start")
    pubs[0].send_multipart([b"acme.test", data_frame([encode_record({"i": 0}), encode_record({"i": 1})])])
    pubs[0].send_multipart([b"acme.test", b"x", b"y"])
    pubs[0].send_multipart([b"\0", encode("eos", **{"from": "p.0", "sent": 3, "port": "hosts",
                                                    "topics": {"acme.test": 2, "jade.test": 1}})])
    pubs[1].send_multipart([b"acme.org", data_frame([encode_record({"i": 2})])])
    pubs[1].send_multipart([b"\0", encode("eos", **{"from": "p.1", "sent": 1, "port": "hosts",
                                                    "topics": {"acme.org": 1}})])
    _, done = launcher.recv()
    assert (done["received"], done["invalid_frames"]) == (3, 1)
    assert done["notes"] == ["a published message of 3 frames, not 2"]
    launcher.send("n.0", "bye")
    assert sorted(finished(t)) == [0, 1, 2]


def test_a_message_over_the_size_limit_is_counted_not_fatal(launcher):
    t = start(launcher.env(PROCNET_MAX_MESSAGE_BYTES="65536"), pass_through)
    hello = launcher.join("n.0", inputs=[{"node": "up", "replicas": 1}])
    up = launcher.socket(zmq.PUSH, RECONNECT_IVL=10)
    up.connect(hello["input"])
    up.send(data_frame([encode_record({"i": 0})]))
    up.send(data_frame([encode_record({"big": "x" * 100_000})]))
    time.sleep(0.5)  # the connection is dropped with the big message; the PUSH reconnects
    up.send(encode("eos", **{"from": "up.0", "sent": 2}))
    _, done = launcher.recv()
    assert (done["t"], done["received"], done["invalid_frames"]) == ("done", 1, 1)
    assert done["notes"][0].startswith("1 records announced were never received: 1 input connection was dropped")
    launcher.send("n.0", "bye")
    assert finished(t) is None


def test_an_exception_in_the_block_sends_failed(launcher):
    def boom(node):
        raise ValueError("boom")

    t = start(launcher.env(bind=False), boom)
    launcher.join("n.0")
    assert launcher.recv()[1] == {"v": 1, "t": "failed", "error": "ValueError: boom"}
    assert isinstance(finished(t), ValueError)


def test_vars_and_a_stop_during_the_handshake(launcher):
    t = start(launcher.env(bind=False), lambda node: (node.var("site.url"), node.var("x"), node.stop_requested))
    launcher.recv()
    launcher.send("n.0", "stop")  # accepted at any time, remembered
    launcher.send("n.0", "wire", inputs=[], outputs=[], vars={"site.url": "http://127.0.0.1:1"})
    assert launcher.recv()[1]["t"] == "ready"
    launcher.send("n.0", "start")
    assert launcher.recv()[1]["t"] == "done"
    launcher.send("n.0", "bye")
    assert finished(t) == ("http://127.0.0.1:1", None, True)


def test_an_unexpected_control_message_while_joining_is_fatal(launcher):
    t = start(launcher.env(bind=False), lambda node: None)
    launcher.recv()
    launcher.send("n.0", "start")
    e = finished(t)
    assert isinstance(e, ProtocolError) and str(e) == "expected `wire` from the launcher, got `start`"


def test_the_environment_is_checked_first():
    with pytest.raises(SystemExit, match="launcher speaks protocol 2, this node 1"):
        Node(env={"PROCNET_PROTOCOL": "2"})
    with pytest.raises(SystemExit, match="PROCNET_NODE is not set"):
        Node(env={"PROCNET_PROTOCOL": "1"})


def test_leaving_the_block_early_reads_the_rest_of_the_input(launcher):
    t = start(launcher.env(), lambda node: next(iter(node.records())))
    hello = launcher.join("n.0", inputs=[{"node": "up", "replicas": 1}])
    up = launcher.socket(zmq.PUSH)
    up.connect(hello["input"])
    up.send(data_frame([encode_record({"i": i}) for i in range(3)]))
    time.sleep(0.2)
    up.send(encode("eos", **{"from": "up.0", "sent": 3}))
    _, done = launcher.recv()
    assert (done["t"], done["received"], done["sent"]) == ("done", 3, 0)
    launcher.send("n.0", "bye")
    assert finished(t) == {"i": 0}


def test_bad_records_and_errors_are_counted_with_the_first_reasons(launcher):
    def picky(node):
        for record in node.records():
            node.bad_record(f"no use for {record['i']}")
            node.error()

    t = start(launcher.env(), picky)
    hello = launcher.join("n.0", inputs=[{"node": "up", "replicas": 1}])
    up = launcher.socket(zmq.PUSH)
    up.connect(hello["input"])
    up.send(data_frame([encode_record({"i": i}) for i in range(7)]))
    up.send(b"")
    up.send(encode("eos", **{"from": "up.0", "sent": 7}))
    _, done = launcher.recv()
    assert (done["received"], done["invalid_frames"], done["bad_records"], done["errors"]) == (7, 1, 7, 7)
    assert done["notes"][0].startswith("undecodable frame of 0 bytes: not a MessagePack value")
    assert done["notes"][1:] == [f"no use for {i}" for i in range(5)]  # 5 per kind of drop
    launcher.send("n.0", "bye")
    assert finished(t) is None


def test_a_result_goes_out_with_done_for_the_run_report(launcher):
    # §6.6: `done.result`, which the launcher puts in the run report (a tally's counts).
    def source(node):
        node.result = '{"count": 0}'

    t = start(launcher.env(bind=False), source)
    launcher.join("n.0", outputs=[])
    done = launcher.recv()[1]
    assert done["t"] == "done" and done["result"] == '{"count": 0}'
    launcher.send("n.0", "bye")
    assert finished(t) is None
