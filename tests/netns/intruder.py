"""The intruder of the namespace harness: run inside pn-x, it tries every endpoint it is given.

    python intruder.py 10.77.0.1:7360 10.77.0.2:40123 ...

For each endpoint, all at once: a plain TCP connect that writes garbage, then (with pyzmq) a
PUSH socket that tries to send a few frames and watches its handshake: "ACCEPTED" (a frame went
out or the handshake succeeded), "refused (auth)" (ZAP said no) or "no handshake". The PUSH
tries three times: without credentials, with a wrong secret, and with the run's own secret
(PROCNET_SECRET, as if it had leaked: the address allowlist must still hold). Prints one line
per attempt; exits 0 unless no endpoint was reachable at all (then the harness would not be
testing anything).
"""

import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

try:
    import zmq
    import zmq.utils.monitor
except ImportError:  # the harness runs it with the project's venv, which has pyzmq
    zmq = None


def plain(host, port):
    try:
        s = socket.create_connection((host, port), timeout=2)
    except OSError as e:
        return f"tcp {host}:{port} not connected: {e}"
    with s:
        try:
            s.sendall(b"\xff" + b"intruder " * 64)
            s.settimeout(0.5)
            reply = s.recv(64)
            return f"tcp {host}:{port} connected, wrote garbage, read {reply[:16]!r}"
        except socket.timeout:
            return f"tcp {host}:{port} connected, wrote garbage, read nothing"
        except OSError as e:
            return f"tcp {host}:{port} connected, wrote garbage: {e}"


def push(ctx, host, port, password=None):
    """A PUSH that only counts a frame as sent once a peer completed the handshake
    (ZMQ_IMMEDIATE), and watches the handshake's outcome on a monitor socket; with a
    ``password``, it presents it as procnet's peers do (PLAIN, user ``procnet``)."""
    s = ctx.socket(zmq.PUSH)
    if password is not None:
        s.plain_username = b"procnet"
        s.plain_password = password.encode()
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.IMMEDIATE, 1)
    s.setsockopt(zmq.SNDTIMEO, 300)
    monitor = s.get_monitor_socket()
    s.connect(f"tcp://{host}:{port}")
    sent = 0
    for i in range(3):
        try:
            s.send_multipart([b"intruder", str(i).encode()])
            sent += 1
        except zmq.Again:
            break
    events = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and monitor.poll(300 if events else 1000):
        event = zmq.utils.monitor.recv_monitor_message(monitor)["event"]
        name = zmq.Event(event).name if hasattr(zmq, "Event") else str(event)
        if name not in events:
            events.append(name)
    s.disable_monitor()
    monitor.close(0)
    s.close()
    if any("HANDSHAKE_SUCCEEDED" in e for e in events) or sent:
        verdict = "ACCEPTED"
    elif any("HANDSHAKE_FAILED_AUTH" in e for e in events):
        verdict = "refused (auth)"
    else:
        verdict = "no handshake"
    how = {None: "no credentials", "not-the-secret": "a wrong secret"}.get(password, "the run's secret")
    return f"zmq {host}:{port} push ({how}): {verdict}, {sent} of 3 frames sent; events {','.join(events)}"


def attempt(ctx, host, port):
    lines = [plain(host, port)]
    if ctx is not None:
        for password in (None, "not-the-secret", os.environ.get("PROCNET_SECRET")):
            if password is not None or not lines[1:]:
                lines.append(push(ctx, host, port, password))
    return lines


def main():
    endpoints = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in sys.argv[1:])]
    ctx = zmq.Context() if zmq else None
    if ctx is None:
        print("no pyzmq here: plain tcp only")
    # All at once, so that every attempt falls within the run.
    with ThreadPoolExecutor(max_workers=max(1, len(endpoints))) as pool:
        results = list(pool.map(lambda e: attempt(ctx, *e), endpoints))
    lines = [line for r in results for line in r]
    print("\n".join(lines), flush=True)
    if ctx is not None:
        ctx.term()
    return 0 if any(" connected," in line for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
