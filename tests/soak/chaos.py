#!/usr/bin/env python3
"""The chaos soak (`make chaos`): many runs of pipelines covering every role, each with one
replica killed (SIGKILL) at a random moment mid-stream, across the three start methods. Every
run must exit 0 with exactly the output of an undisturbed run and leave no process behind.

Usage: python3 tests/soak/chaos.py [--kills N] [--seed S] [--binary PATH] [--no-doc]

Writes target/chaos/chaos.md and chaos.json (every run), and fills the `chaos` section of
docs/guarantees.md (between its generated markers) unless --no-doc: a table of role x outcome,
with the recovery time (from the victim's exit to every replica started again, the launcher's
`recovery_s` in --report) per role, median and worst. Exits 1 if any run was not exact.
The seed is printed; --seed S replays the same choices (the moments depend on the machine).
Stdlib only; the Python node runs in target/venv (`make venv`).
"""
import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "target" / "chaos"
DOC = REPO / "docs" / "guarantees.md"
TAG = "PROCNET_CHAOS_TAG"


def corpus(path, n):
    """n JSON lines of about 150 bytes; one in three mentions "python", 40 sites."""
    if path.exists() and path.stat().st_size > 0:
        return
    with open(path, "w") as f:
        for i in range(n):
            word = "Python" if i % 3 == 0 else "Rust"
            f.write(json.dumps({"url": f"https://site{i % 40}.example/page/{i}",
                                "body": f"page {i} of the corpus, about {word} and process networks, "
                                        "padded to a realistic length"}, separators=(",", ":")) + "\n")


def pipeline(start):
    """Source, filter x3, filter x2, tally and a sink: every built-in role on push edges."""
    return f"""
[defaults]
restart = "on-failure"
max_restarts = 5
[nodes.docs]
kind = "lines"
path = "corpus.jsonl"
format = "jsonl"
start = "{start}"
[nodes.wide]
kind = "filter"
inputs = ["docs"]
replicas = 3
field = "body"
contains = "process"
start = "{start}"
[nodes.narrow]
kind = "filter"
inputs = ["wide"]
replicas = 2
field = "body"
contains = "python"
ignore_case = true
start = "{start}"
[nodes.count]
kind = "tally"
inputs = ["narrow"]
by = "url"
by_host = true
output = "count.json"
start = "{start}"
[nodes.out]
kind = "sink"
inputs = ["narrow"]
path = "kept.jsonl"
start = "{start}"
"""


def pubsub(start):
    """A source publishing to subscribers (a filter x2 and a tally)."""
    return f"""
[defaults]
restart = "on-failure"
max_restarts = 5
[nodes.docs]
kind = "lines"
path = "corpus.jsonl"
format = "jsonl"
outputs = {{ out = "pub" }}
start = "{start}"
[nodes.sub]
kind = "filter"
inputs = ["docs"]
replicas = 2
field = "body"
contains = "python"
ignore_case = true
start = "{start}"
[nodes.count]
kind = "tally"
inputs = ["sub"]
output = "count.json"
start = "{start}"
"""


def python(start):
    """A Python node x2 between built-ins (the Python node is spawned, as command nodes are)."""
    return f"""
[defaults]
restart = "on-failure"
max_restarts = 5
[nodes.docs]
kind = "lines"
path = "small.jsonl"
format = "jsonl"
start = "{start}"
[nodes.py]
command = ["python3", "{REPO / 'bin' / 'py_filter.py'}", "--field", "body", "--contains", "python"]
inputs = ["docs"]
replicas = 2
[nodes.count]
kind = "tally"
inputs = ["py"]
by = "url"
by_host = true
output = "count.json"
start = "{start}"
"""


# role -> (topology, its victims, its outputs)
ROLES = {
    "source (lines, a file)": (pipeline, ["docs.0"], ["count.json", "kept.jsonl"]),
    "filter x3": (pipeline, ["wide.0", "wide.1", "wide.2"], ["count.json", "kept.jsonl"]),
    "filter x2": (pipeline, ["narrow.0", "narrow.1"], ["count.json", "kept.jsonl"]),
    "tally": (pipeline, ["count.0"], ["count.json", "kept.jsonl"]),
    "sink": (pipeline, ["out.0"], ["count.json", "kept.jsonl"]),
    "publisher": (pubsub, ["docs.0"], ["count.json"]),
    "subscriber x2": (pubsub, ["sub.0", "sub.1"], ["count.json"]),
    "Python node x2": (python, ["py.0", "py.1"], ["count.json"]),
}
METHODS = ["spawn", "fork", "forkserver"]
OUTCOMES = ["exact, rolled back", "exact, killed after its stream", "exact, restarted in start-up",
            "exact, not killed", "not exact", "failed"]


def tagged(tag):
    """Pids of live processes whose environment carries the tag, with their environments."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        if f"{TAG}={tag}".encode() in env and stat.rsplit(")", 1)[1].split()[0] != "Z":
            found[int(entry)] = {k.decode(): v.decode() for k, _, v in (e.partition(b"=") for e in env if e)}
    return found


def comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return ""


def pid_of(tag, replica, deadline):
    """The pid of `replica` (`name.replica`): by its environment when spawned, by its process
    name when forked (a forked replica has the launcher's environment and names itself)."""
    node, index = replica.rsplit(".", 1)
    while time.monotonic() < deadline:
        for pid, env in tagged(tag).items():
            if env.get("PROCNET_NODE") == node and env.get("PROCNET_REPLICA") == index:
                return pid
            if "PROCNET_NODE" not in env and comm(pid) == replica[:15]:
                return pid
        time.sleep(0.002)
    return None


def outputs(d, names):
    return [sorted((d / n).read_text().splitlines()) for n in names]


class Soak:
    def __init__(self, binary, seed):
        self.binary = binary
        self.rng = random.Random(seed)
        self.env = dict(os.environ, PATH=f"{REPO / 'target' / 'venv' / 'bin'}:{os.environ['PATH']}")
        self.baselines = {}

    def run(self, d, text, victim=None, window=(0.0, 0.0)):
        """Run topology `text` in `d`; kill `victim` at a random moment between `window`'s two
        times (seconds from the launch). Returns (exit code, report, what was killed)."""
        (d / "t.toml").write_text(text)
        report = d / "r.json"
        report.unlink(missing_ok=True)
        tag = uuid.uuid4().hex
        env = dict(self.env, **{TAG: tag})
        with open(d / "stderr", "w") as err:
            proc = subprocess.Popen([str(self.binary), "run", "t.toml", "--report", "r.json"], cwd=d, env=env,
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            killed = None
            if victim:
                at = time.monotonic() + self.rng.uniform(*window)
                pid = pid_of(tag, victim, time.monotonic() + 60)
                time.sleep(max(0.0, at - time.monotonic()))
                # An exited replica not yet reaped (a zombie) takes the signal without effect.
                state = ""
                try:
                    state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] if pid else ""
                except OSError:
                    pass
                if pid and state not in ("", "Z"):
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed = victim
                    except ProcessLookupError:
                        pass
            try:
                code = proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
        left = []
        for _ in range(300):
            left = list(tagged(tag))
            if not left:
                break
            time.sleep(0.01)
        if left:
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            raise SystemExit(f"processes left behind after a run: {left}\n{(d / 'stderr').read_text()}")
        doc = json.loads(report.read_text()) if report.exists() else {}
        return code, doc, killed

    def baseline(self, d, topology, method, names):
        key = (topology.__name__, method)
        if key not in self.baselines:
            code, doc, _ = self.run(d, topology(method))
            if code != 0:
                raise SystemExit(f"an undisturbed run of {key} failed:\n{(d / 'stderr').read_text()}")
            self.baselines[key] = (outputs(d, names), doc["startup_s"], doc["elapsed_s"] - doc["startup_s"])
        return self.baselines[key]


def table(runs, seconds, seed):
    lines = [f"{len(runs)} runs with one replica killed (SIGKILL) at a random moment mid-stream, across "
             f"spawn, fork and forkserver, in {seconds:.0f} s (`make chaos`, seed {seed}). Recovery: from the "
             "victim's exit to every replica of the data path started again (`recovery_s`), median and worst.",
             "", "| role killed | runs | " + " | ".join(OUTCOMES) + " | recovery median | recovery worst |",
             "| --- | --- | " + " | ".join("---" for _ in OUTCOMES) + " | --- | --- |"]
    for role in ROLES:
        mine = [r for r in runs if r["role"] == role]
        rec = [s for r in mine for s in r["recovery_s"]]
        counts = [sum(1 for r in mine if r["outcome"] == o) for o in OUTCOMES]
        med = f"{statistics.median(rec) * 1000:.0f} ms" if rec else "-"
        worst = f"{max(rec) * 1000:.0f} ms" if rec else "-"
        lines.append(f"| {role} | {len(mine)} | " + " | ".join(map(str, counts)) + f" | {med} | {worst} |")
    lines += ["", "The kill lands at a random moment between the end of an undisturbed run's start-up and 80% "
              "of its stream; where the run was faster or slower that time, it lands before the start barrier "
              "(the replica restarts alone: nothing had flowed) or after the victim was released (its stream "
              "complete: the run says so). Every outcome but the last two is exit 0 with the exact result."]
    return "\n".join(lines) + "\n"


def fill(doc_path, name, text):
    doc = doc_path.read_text()
    begin, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
    if begin not in doc or end not in doc:
        raise SystemExit(f"{doc_path} has no {begin} ... {end} markers")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc_path.write_text(f"{head}{begin}\n{text}{end}{tail}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=500)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--binary", default=str(REPO / "target" / "release" / "procnet"))
    ap.add_argument("--docs", type=int, default=400_000, help="records of the pipeline's corpus")
    ap.add_argument("--no-doc", action="store_true", help="do not fill docs/guarantees.md")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time() * 1000)
    print(f"chaos: seed {seed} (--seed {seed} replays the choices)", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    d = OUT / "work"
    d.mkdir(exist_ok=True)
    corpus(d / "corpus.jsonl", args.docs)
    corpus(d / "small.jsonl", max(args.docs // 4, 1000))
    soak = Soak(Path(args.binary), seed)
    started = time.monotonic()
    runs = []
    roles = list(ROLES)
    for i in range(args.kills):
        role, method = roles[i % len(roles)], METHODS[(i // len(roles)) % len(METHODS)]
        topology, victims, names = ROLES[role]
        want, startup, stream = soak.baseline(d, topology, method, names)
        victim = soak.rng.choice(victims)
        # Mid-stream in an undisturbed run: after its start-up, before 80% of its stream.
        code, doc, killed = soak.run(d, topology(method), victim, window=(startup, startup + stream * 0.8))
        rollbacks = doc.get("rollbacks", 0)
        said = (d / "stderr").read_text()
        if code != 0:
            outcome = "failed"
        elif outputs(d, names) != want:
            outcome = "not exact"
        elif rollbacks:
            outcome = "exact, rolled back"
        elif "after its stream was complete" in said:
            outcome = "exact, killed after its stream"
        elif "restarting it in" in said:
            outcome = "exact, restarted in start-up"
        else:
            outcome = "exact, not killed"
        runs.append({"role": role, "method": method, "victim": victim, "killed": killed is not None,
                     "exit": code, "outcome": outcome, "rollbacks": rollbacks,
                     "recovery_s": doc.get("recovery_s", [])})
        print(f"chaos {i + 1}/{args.kills}: {role}, {method}, {victim}: {outcome}", file=sys.stderr)
        if outcome in ("failed", "not exact"):
            print((d / "stderr").read_text(), file=sys.stderr)
    seconds = time.monotonic() - started
    text = table(runs, seconds, seed)
    (OUT / "chaos.md").write_text(text)
    (OUT / "chaos.json").write_text(json.dumps({"seed": seed, "runs": runs}, indent=1))
    print(text)
    if not args.no_doc:
        fill(DOC, "chaos", text)
    bad = [r for r in runs if r["outcome"] in ("failed", "not exact")]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
