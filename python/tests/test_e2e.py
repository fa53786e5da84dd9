"""Python nodes in real runs: `procnet run` (the binary from $PROCNET_BIN, default
target/debug/procnet) with built-in Rust nodes around the example nodes of bin/."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROCNET = pathlib.Path(os.environ.get("PROCNET_BIN", ROOT / "target" / "debug" / "procnet"))
pytestmark = pytest.mark.skipif(not PROCNET.exists(), reason=f"no procnet binary at {PROCNET} "
                                "(build it with `cargo build`, or set PROCNET_BIN)")
HOSTS = ["acme.test", "ember.test", "jade.test", "umbra.test"]


def py(script, *args):
    """A `command` running a script with this Python (which has the procnet package)."""
    return json.dumps([sys.executable, str(script), *args])


def pages(tmp_path, n=3000):
    """n JSON lines, every 3rd mentioning Python in some case; the expected tally by host."""
    want = {}
    with open(tmp_path / "pages.jsonl", "w") as f:
        for i in range(n):
            page = {"id": i, "host": HOSTS[i % 4], "body": ["PyThon and rust", "rust only", "c"][i % 3]}
            f.write(json.dumps(page) + "\n")
            if i % 3 == 0:
                want[page["host"]] = want.get(page["host"], 0) + 1
    return want


def run(tmp_path, topology, *args, timeout=60):
    (tmp_path / "t.toml").write_text(topology)
    r = subprocess.run([str(PROCNET), "run", str(tmp_path / "t.toml"), *args], capture_output=True, text=True,
                       timeout=timeout, cwd=tmp_path)
    r.lines = {}  # node replica -> its stdout lines, without the `name.replica | ` prefix (§2.1)
    for line in r.stdout.splitlines():
        who, sep, text = line.partition(" | ")
        assert sep, line
        r.lines.setdefault(who.strip(), []).append(text)
    return r


FILTER = """
[nodes.pages]
kind = "lines"
path = "pages.jsonl"
format = "jsonl"

[nodes.keep]
command = {keep}
inputs = ["pages"]
replicas = 2

[nodes.count]
kind = "tally"
inputs = ["keep"]
by = "host"
"""


def test_a_replicated_python_filter_between_rust_nodes_is_exact(tmp_path):
    want = pages(tmp_path)
    keep = py(ROOT / "bin" / "py_filter.py", "--field", "body", "--contains", "python")
    r = run(tmp_path, FILTER.format(keep=keep), "--report", "report.json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.lines["count.0"][-1]) == {"count": sum(want.values()), "by": want}
    report = {x["id"]: x for x in json.loads((tmp_path / "report.json").read_text())["replicas"]}
    keeps = [report["keep.0"], report["keep.1"]]
    assert all(k["received"] > 0 for k in keeps), "both replicas got records"
    assert sum(k["received"] for k in keeps) == 3000
    assert sum(k["sent"] for k in keeps) == sum(want.values()) == report["count.0"]["received"]
    assert all(k["invalid_frames"] == k["bad_records"] == 0 and k["exit"] == 0 for k in keeps)


def test_the_python_monitor_prints_the_tally_progress(tmp_path):
    want = pages(tmp_path)
    keep = py(ROOT / "bin" / "py_filter.py", "--field", "body", "--contains", "python")
    watch = py(ROOT / "bin" / "py_monitor.py")
    saved = py(ROOT / "bin" / "py_monitor.py", "--output", "progress.jsonl")
    topology = FILTER.format(keep=keep) + f"""
[nodes.watch]
command = {watch}
inputs = ["count.progress"]

[nodes.save]
command = {saved}
inputs = [{{ from = "count.progress", drop = true }}]
"""
    r = run(tmp_path, topology)
    assert r.returncode == 0, r.stderr
    result = {"count": sum(want.values()), "by": want}
    assert json.loads(r.lines["count.0"][-1]) == result
    assert json.loads(r.lines["watch.0"][-1]) == result  # the last progress record is the result
    assert json.loads((tmp_path / "progress.jsonl").read_text().splitlines()[-1]) == result


SOURCE = """
import sys
from procnet import Node
n = int(sys.argv[1])
hosts = ["acme.test", "ember.test", "jade.test"]
with Node() as node:
    for i in range(node.replica, n, node.replicas):  # share the input between replicas
        record = {"i": i, "host": hosts[i % 3], "pad": "x" * 2000}
        node.send(record)
        node.send(record, port="hosts")
"""

SLOW = """
import time
from procnet import Node
with Node() as node:
    for record in node.records():
        time.sleep(0.0002)
        node.send(record)
"""


def test_a_python_source_with_a_push_and_a_pub_port_under_backpressure(tmp_path):
    (tmp_path / "source.py").write_text(SOURCE)
    (tmp_path / "slow.py").write_text(SLOW)
    n = 8000
    topology = f"""
[defaults]
transport = "tcp"

[nodes.gen]
command = {py(tmp_path / "source.py", str(n))}
replicas = 2
outputs = {{ out = "push", hosts = {{ pattern = "pub", topic_field = "host" }} }}

[nodes.slow]
command = {py(tmp_path / "slow.py")}
inputs = ["gen"]

[nodes.all]
kind = "tally"
inputs = ["slow"]

[nodes.acme]
kind = "tally"
inputs = [{{ from = "gen.hosts", topics = ["acme."] }}]
by = "host"
"""
    r = run(tmp_path, topology, "--report", "report.json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.lines["all.0"][-1]) == {"count": n}
    acme = len(range(0, n, 3))
    assert json.loads(r.lines["acme.0"][-1]) == {"count": acme, "by": {"acme.test": acme}}
    report = {x["id"]: x for x in json.loads((tmp_path / "report.json").read_text())["replicas"]}
    gens = [report["gen.0"], report["gen.1"]]
    assert [g["sent"] for g in gens] == [n, n]  # n/2 pushed and n/2 published, each
    assert sum(g["blocked_ms"] for g in gens) > 0, "the slow consumer pushed back"


def test_a_failing_python_node_fails_the_run_with_its_error(tmp_path):
    pages(tmp_path, 10)
    (tmp_path / "bad.py").write_text(
        "from procnet import Node\nwith Node() as node:\n    for r in node.records():\n"
        "        raise ValueError(f'cannot handle {r[\"id\"]}')\n")
    r = run(tmp_path, FILTER.format(keep=py(tmp_path / "bad.py")))
    assert r.returncode == 1
    assert "failed: ValueError: cannot handle " in r.stderr, r.stderr


def test_a_python_source_stops_on_ctrl_c(tmp_path):
    (tmp_path / "endless.py").write_text(
        "from procnet import Node\nwith Node() as node:\n    print('started', flush=True)\n    i = 0\n"
        "    while not node.stop_requested:\n        node.send({'i': i})\n        i += 1\n"
        "    print('sent', i, flush=True)\n")
    (tmp_path / "t.toml").write_text(f"""
[nodes.src]
command = {py(tmp_path / "endless.py")}

[nodes.count]
kind = "tally"
inputs = ["src"]
""")
    p = subprocess.Popen([str(PROCNET), "run", str(tmp_path / "t.toml")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().replace(" ", "") == "src.0|started\n"
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, err
    lines = {who.strip(): text for who, _, text in (line.partition(" | ") for line in out.splitlines())}
    sent = int(lines["src.0"].split()[1])
    assert sent > 0 and json.loads(lines["count.0"]) == {"count": sent}


def test_an_external_python_node_joins_with_the_environment_it_is_given(tmp_path):
    want = pages(tmp_path)
    (tmp_path / "ext.py").write_text(
        "import json, sys\nfrom procnet import Node\nenv = json.load(open(sys.argv[1]))\n"
        "with Node(env=env) as node:\n    for r in node.records():\n"
        "        if 'python' in r['body'].lower():\n            node.send(r)\n")
    topology = FILTER.replace('command = {keep}', 'external = true')
    (tmp_path / "t.toml").write_text(topology)
    p = subprocess.Popen([str(PROCNET), "run", str(tmp_path / "t.toml"), "--endpoints", "endpoints.json"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "endpoints.json").exists():
            assert time.monotonic() < deadline and p.poll() is None, "no endpoints file"
            time.sleep(0.05)
        time.sleep(0.1)  # let the launcher finish writing it
        doc = json.loads((tmp_path / "endpoints.json").read_text())
        nodes = []
        for replica in doc["replicas"]:
            env_file = tmp_path / f"{replica['id']}.json"
            env_file.write_text(json.dumps(replica["env"]))
            clean = {k: v for k, v in os.environ.items() if not k.startswith("PROCNET_")}
            nodes.append(subprocess.Popen([sys.executable, str(tmp_path / "ext.py"), str(env_file)], env=clean))
        assert [n.wait(timeout=30) for n in nodes] == [0, 0]
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 0, err
    result = [line.split(" | ", 1)[1] for line in out.splitlines() if line.startswith("count.0")]
    assert json.loads(result[-1]) == {"count": sum(want.values()), "by": want}
