#!/usr/bin/env python3
"""Pipeline benchmark: procnet next to ../shared/peers' CPU peers, on the same corpus, in one run.

Usage: python3 benches/pipeline.py [--docs N] [--runs N] [--records N] [--flat] [--only ...]
       (or `make bench-pipeline`; `make bench` runs it after the fetch benchmark)

1. The job (`docs`): read the corpus (../shared/peers/gen_corpus.py, --docs documents, seed 1,
   cached as target/bench/corpus-<docs>-seed1.jsonl) -> keep the bodies that mention "python"
   in any case -> tally per site. The peers p0 (serial), p1 (multiprocessing queues), p2 (pool),
   p3 (pyzmq), p4 (one Rust process) and p5 (raw Rust zmq) run with `--workers 2` (p0 and p4
   take no workers); procnet runs a generated topology:
       lines (jsonl) x1 -> filter (body contains "python", ignore_case) x2 -> tally (by url, by_host)
   Programs are interleaved round by round, every other round in reverse order, --runs rounds
   (default 3); each figure is the
   median. Every tally must equal p0's, procnet's converted to the peers' shape
   ({"count": N, "by": {...}} -> matched = count, by_site = by, docs = the corpus' lines, also
   checked against the report's counters); any difference fails the run (exit 1).
2. Small records (`records`): --records JSON lines of 100 bytes (+ newline), every body
   mentioning "python", through procnet's 3-stage `lines -> filter -> tally` (and with 2 filter
   replicas); records/s from the report's elapsed_s and from wall time. p4 and p5 (with
   `--workers 1`: also 3 processes) run on the same file for reference.
3. Memory flatness (`flat`): procnet's peak memory on 1x and 5x the input. By default 1x is
   the first docs/5 documents of the corpus and 5x the whole corpus; with --flat, 1x is the
   corpus and 5x the corpus five times over (a temporary 5x file, 2.1 GB for 200,000 docs,
   deleted afterwards unless --keep; the expected tally is 5x the corpus').
4. Targets: a table (first in pipeline.md, "targets" in pipeline.json, also on stdout) holds
   this run's own figures against the goals: on the docs job (median walls), procnet at least
   2x as fast as p5, 3x as fast as the fastest Python peer (p0-p3), 0.7x as fast as p4 (aim
   1.0x); at least 1,000,000 records/s through "procnet 3 stages" (the report's elapsed_s);
   peak PSS at 5x the input at most 1.25x that at 1x; peak PSS on the docs job at most 2x
   p5's; the exactly-once guarantee (docs/guarantees.md) costing at most 10% of CPU and of
   wall time on the docs job, procnet against "procnet, at most once" (`procnet-amo`: the same
   topology with `delivery = "at-most-once"`). A target whose part or program was left out (--only, --programs) is "not measured".
   The exit status ignores the targets unless BENCH_STRICT=1 (then a failed one exits 1).

Memory: a thread samples every process below the command every --interval s (as
benches/treepss.py does, from /proc/PID/smaps_rollup): peak PSS summed over the process tree
(the main figure: shared pages counted once), peak RSS summed over it (shared pages counted in
every process), and GNU time's %M (the largest single process). A run whose processes use no
CPU for --hang-s seconds is declared hung and killed; a peer that hangs is run again (the
hangs are reported), procnet hanging fails the benchmark. This script is the subreaper of
everything it starts: nothing a run leaves behind survives into the next one.
Writes target/bench/pipeline.md (Markdown) and target/bench/pipeline.json (every figure).
Progress on stderr; the tables on stdout. Stdlib only (the peers run in target/bench/venv).
"""
import argparse
import ctypes
import json
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS = (REPO / ".." / "shared" / "peers").resolve()
OUT = REPO / "target" / "bench"
WORK = OUT / "pipeline"          # topologies, outputs, reports, logs
VENV = OUT / "venv"
PY = VENV / "bin" / "python"
PEERS_TARGET = OUT / "peers-target"
PROCNET = REPO / "target" / "release" / "procnet"
CLK_TCK = os.sysconf("SC_CLK_TCK")
OTHER_MAX = 20   # % of a core: above it, the rest of the machine disturbed a measurement
RECORD_BYTES = 100

T_START = time.perf_counter()


def say(msg):
    print(f"[{time.perf_counter() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------- processes and sampling

def become_subreaper():
    """Orphans of our commands (p5's workers once its sink is killed, ...) become our children,
    so reap_leftovers() sees and ends them, and their CPU time counts in RUSAGE_CHILDREN."""
    PR_SET_CHILD_SUBREAPER = 36
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        fail(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


def proc_table():
    """{pid: (ppid, state, cpu ticks, comm)} for every process (one pass over /proc)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue  # ended meanwhile
        fields = rest.split()
        table[int(name)] = (int(fields[1]), fields[0], int(fields[11]) + int(fields[12]),
                            head.split("(", 1)[1])
    return table


def descendants(table, root):
    children = {}
    for pid, (ppid, *_) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_pss_kib(pid):
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
    except OSError:
        pass  # ended meanwhile, or a zombie
    return rss, pss


def label_of(pid, comm):
    """`node.replica` for a procnet node (from its environment), else the command name."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        if b"PROCNET_NODE" in env:
            return f"{env[b'PROCNET_NODE'].decode()}.{env.get(b'PROCNET_REPLICA', b'?').decode()}"
    except OSError:
        pass
    return comm


def tree_of(root):
    """Every descendant of root, from /proc/PID/task/TID/children (no scan of all of /proc)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def stat_of(pid):
    """(state, cpu ticks, comm) of pid, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            head, rest = f.read().rsplit(")", 1)
    except OSError:
        return None
    fields = rest.split()
    return fields[0], int(fields[11]) + int(fields[12]), head.split("(", 1)[1]


class Sampler(threading.Thread):
    """Samples the tree below `root` (GNU time's pid) until stopped: peak summed PSS and RSS,
    processes, CPU ticks per process; declares the run hung (and kills the tree) when the
    tree's CPU ticks stay the same for hang_s, or when it runs past deadline_s."""

    def __init__(self, root, interval, hang_s, deadline_s):
        super().__init__(daemon=True)
        self.root, self.interval, self.hang_s, self.deadline_s = root, interval, hang_s, deadline_s
        self.done = threading.Event()
        self.peak_pss = self.peak_rss = self.max_procs = self.samples = 0
        self.cpu, self.labels = {}, {}       # pid -> last ticks seen, pid -> label
        self.hung = None                     # why the run was killed, if it was

    def run(self):
        t0 = last_change = time.monotonic()
        last_total, wait = None, 0.005  # a first sample at once: short runs get one too
        while not self.done.wait(wait):
            wait = self.interval
            rss = pss = total = procs = 0
            tree = tree_of(self.root)
            for pid in tree:
                st = stat_of(pid)
                if st is None:
                    continue
                procs += 1
                r, p = rss_pss_kib(pid)
                rss, pss, total = rss + r, pss + p, total + st[1]
                if "." not in self.labels.get(pid, ""):  # a node's label is final once seen
                    self.labels[pid] = label_of(pid, st[2])
                self.cpu[pid] = st[1]
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.max_procs = max(self.max_procs, procs)
            self.samples += 1
            now = time.monotonic()
            if total != last_total:
                last_total, last_change = total, now
            why = None
            if procs and now - last_change > self.hang_s:
                why = f"no CPU used by any of its {procs} processes for {self.hang_s:g} s"
            elif now - t0 > self.deadline_s:
                why = f"still running after {self.deadline_s:g} s"
            if why:
                self.hung = why
                for pid in reversed(tree):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


def other_busy(before, after, exclude):
    """[(cpu s, comm)] of the processes outside the run that used CPU between two proc_table()s."""
    out = []
    for pid, (_, _, t1, comm) in after.items():
        if pid in exclude:
            continue
        t0 = before[pid][2] if pid in before else 0  # a process that started meanwhile: all of it
        if t1 - t0 > 0:
            out.append(((t1 - t0) / CLK_TCK, comm))
    return sorted((x for x in out if x[0] > 0.05), reverse=True)


def busy_s():
    """CPU seconds the whole machine has been busy (user nice system irq softirq steal)."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:]]
    return (t[0] + t[1] + t[2] + t[5] + t[6] + t[7]) / CLK_TCK


def cpu_of(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def reap_leftovers(timeout=10):
    """Wait for what a run left behind (orphans reparented to us); kill it past timeout.
    Returns the number of processes that had to be killed."""
    deadline, killed = time.monotonic() + timeout, 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return killed
        if pid:
            continue
        if time.monotonic() > deadline:
            for pid in descendants(proc_table(), os.getpid()):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
        time.sleep(0.01)


def run_measured(cmd, name, cwd, args, deadline_s=600.0):
    """Run cmd under GNU time with the sampler. Returns a dict of figures; 'hung' is set when
    the run was killed. Fails on a non-zero exit (unless hung)."""
    rss_file = WORK / f"{name}.maxrss"
    out_path, err_path = WORK / f"{name}.out", WORK / f"{name}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        table0 = proc_table()
        busy0, self0, kids0 = busy_s(), cpu_of(resource.RUSAGE_SELF), cpu_of(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *cmd],
                                cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        sampler = Sampler(proc.pid, args.interval, args.hang_s, deadline_s)
        sampler.start()
        _, status, _ = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.done.set()
        sampler.join()
    killed = reap_leftovers()
    elapsed = time.perf_counter() - t0
    cpu = cpu_of(resource.RUSAGE_CHILDREN) - kids0
    own = cpu_of(resource.RUSAGE_SELF) - self0
    other_pct = max(0.0, (busy_s() - busy0 - cpu - own) / elapsed * 100)
    table1 = proc_table()
    mine = {os.getpid(), *descendants(table1, os.getpid()), *sampler.cpu}
    res = {"wall_s": wall, "cpu_s": cpu, "sampler_cpu_s": own, "other_cpu_pct": other_pct,
           "peak_pss_mib": sampler.peak_pss / 1024, "peak_rss_sum_mib": sampler.peak_rss / 1024,
           "processes": sampler.max_procs, "samples": sampler.samples, "exit": proc.returncode,
           "hung": sampler.hung, "leftovers_killed": killed,
           "cpu_by_process": {}, "other_busy": other_busy(table0, table1, mine)[:3]}
    for pid, ticks in sampler.cpu.items():
        label = sampler.labels.get(pid, "?")
        res["cpu_by_process"][label] = res["cpu_by_process"].get(label, 0) + ticks / CLK_TCK
    if sampler.hung:
        # p5 removes its endpoint directory only when it succeeds: remove the killed one's
        for pid in sampler.cpu:
            shutil.rmtree(Path(tempfile.gettempdir()) / f"p5_rust_zmq_raw-{pid}", ignore_errors=True)
        return res
    if proc.returncode != 0:
        tail = err_path.read_text()[-2000:]
        fail(f"{name} exited with status {proc.returncode}: {' '.join(map(str, cmd))}\n{tail}")
    try:
        res["max_rss_mib"] = int(rss_file.read_text().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        res["max_rss_mib"] = float("nan")
    lines = out_path.read_text().splitlines()
    res["last_line"] = lines[-1] if lines else ""
    return res


# ---------------------------------------------------------------- inputs

def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b"\n")
    return n


def ensure_corpus(docs):
    """target/bench/corpus-<docs>-seed1.jsonl (gen_corpus.py; the first k docs of a corpus are
    the corpus of k docs, so a smaller one is cut from a larger one when there is one)."""
    path = OUT / f"corpus-{docs}-seed1.jsonl"
    if path.exists() and count_lines(path) == docs:
        say(f"reusing {path.relative_to(REPO)}")
        return path
    tmp = path.with_suffix(".jsonl.tmp")
    bigger = sorted((int(p.name.split("-")[1]), p) for p in OUT.glob("corpus-*-seed1.jsonl")
                    if p.name.split("-")[1].isdigit() and int(p.name.split("-")[1]) > docs)
    if bigger and count_lines(bigger[0][1]) == bigger[0][0]:
        say(f"cutting the first {docs} docs of {bigger[0][1].name} into {path.name}")
        with open(bigger[0][1], "rb") as src, open(tmp, "wb") as dst:
            for _, line in zip(range(docs), src):
                dst.write(line)
    else:
        say(f"generating {docs} docs into {path.relative_to(REPO)} (gen_corpus.py, ~17 s per 200,000)")
        subprocess.run([str(PY), str(PEERS / "gen_corpus.py"), "--docs", str(docs), "--seed", "1",
                        "--out", str(tmp)], check=True)
    tmp.rename(path)
    return path


def ensure_records(n):
    """n JSON lines of exactly RECORD_BYTES bytes (+ newline), {"id", "url", "body"}, every body
    mentioning python (so a filter on it passes everything), and the tally they must give."""
    path = OUT / f"records-{n}x{RECORD_BYTES}.jsonl"
    expected_path = path.with_suffix(".expected.json")
    if path.exists() and expected_path.exists() and path.stat().st_size == n * (RECORD_BYTES + 1):
        say(f"reusing {path.relative_to(REPO)}")
        return path, json.loads(expected_path.read_text())
    say(f"generating {n} records of {RECORD_BYTES} bytes into {path.relative_to(REPO)}")
    rng = random.Random(1)
    words = "the of and to in is it you that he was for on are with as his they be at one".split()
    by_site = {}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        for i in range(n):
            site = f"site-{rng.randrange(64)}.test"
            url = f"http://{site}/page/{i}"
            room = RECORD_BYTES - len(json.dumps({"id": i, "url": url, "body": ""}))
            body = rng.choice(words)
            while len(body) < room:
                body += " " + rng.choice(words)
            body = body[:room]
            at = rng.randrange(0, max(1, room - 6))
            body = body[:at] + rng.choice(("python", "Python", "PYTHON")) + body[at + 6:]
            line = json.dumps({"id": i, "url": url, "body": body})
            assert len(line) == RECORD_BYTES, line
            f.write(line + "\n")
            by_site[site] = by_site.get(site, 0) + 1
    tmp.rename(path)
    expected = {"by_site": dict(sorted(by_site.items())), "docs": n, "matched": n}
    expected_path.write_text(json.dumps(expected, sort_keys=True) + "\n")
    return path, expected


TOPOLOGY = """\
# Generated by benches/pipeline.py: {what}
name = "{name}"
delivery = "{delivery}"

[nodes.docs]
kind = "lines"
path = "{input}"
format = "jsonl"

[nodes.python]
kind = "filter"
inputs = ["docs"]
field = "body"
contains = "python"
ignore_case = true
replicas = {replicas}

[nodes.by_site]
kind = "tally"
inputs = ["python"]
by = "url"
by_host = true
output = "{name}.tally.json"
"""


# A pass-through program over stdio (`cat`) in front of the built-in filter: what a stage
# that is any program costs beside a built-in one.
CAT_STAGE = """
[nodes.cat]
command = ["cat"]
stdio = "jsonl"
inputs = ["docs"]
replicas = {cat}
"""


def topology(name, input_path, replicas, what, delivery="exactly-once", cat=0, sources=1):
    path = WORK / f"{name}.toml"
    text = TOPOLOGY.format(name=name, input=os.path.relpath(input_path, WORK),
                           replicas=replicas, what=what, delivery=delivery)
    if sources > 1:
        # The source split into byte ranges, one per replica (docs/nodes.md).
        text = text.replace('format = "jsonl"\n', f'format = "jsonl"\nreplicas = {sources}\n', 1)
    if cat:
        text = text.replace('inputs = ["docs"]', 'inputs = ["cat"]') + CAT_STAGE.format(cat=cat)
    path.write_text(text)
    r = subprocess.run([str(PROCNET), "check", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"procnet check {path} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return path


# ---------------------------------------------------------------- programs

class Program:
    """One row: a command, how to read its tally, its runs."""

    def __init__(self, name, cmd, how, procnet=None):
        self.name, self.cmd, self.how, self.procnet = name, cmd, how, procnet
        self.runs, self.hangs = [], []

    def attempt(self, tag, args, expected, lines):
        """One run; returns True when it completed (tally checked), False when it hung."""
        name = f"{self.name}.{tag}"
        if self.procnet:
            out = WORK / f"{self.procnet.stem}.tally.json"
            report = WORK / f"{name}.report.json"
            out.unlink(missing_ok=True)
            report.unlink(missing_ok=True)
            cmd = [str(PROCNET), "run", str(self.procnet), "--report", str(report)]
        else:
            cmd = self.cmd
        res = run_measured(cmd, name, WORK, args)
        if res["hung"]:
            self.hangs.append(res["hung"])
            say(f"  {self.name}: HUNG ({res['hung']}); killed")
            if self.procnet:
                fail(f"procnet hung: {res['hung']} ({self.procnet}); see {WORK / (name + '.err')}")
            return False
        if self.procnet:
            raw = json.loads(out.read_text())
            rep = json.loads(report.read_text())
            tally = {"by_site": raw.get("by", {}), "docs": lines, "matched": raw["count"]}
            check_report(self.name, rep, lines, raw["count"])
            res["report"] = {"elapsed_s": rep["elapsed_s"], "startup_s": rep["startup_s"],
                             "nodes": {r["id"]: {k: r[k] for k in ("received", "sent", "blocked_ms", "wall_s")}
                                       for r in rep["replicas"]}}
        else:
            try:
                tally = json.loads(res["last_line"])
            except json.JSONDecodeError:
                fail(f"{self.name}: last stdout line is not a tally: {res['last_line'][:200]!r}")
        compare(self.name, tally, expected)
        self.runs.append(res)
        return True

    def med(self, key):
        return statistics.median(r[key] for r in self.runs)


def check_report(name, rep, lines, count):
    """procnet's own counters must agree with the input and the tally."""
    nodes = {}
    for r in rep["replicas"]:
        n = nodes.setdefault(r["node"], {"received": 0, "sent": 0})
        n["received"] += r["received"]
        n["sent"] += r["sent"]
    problems = []
    if nodes["docs"]["sent"] != lines:
        problems.append(f"lines sent {nodes['docs']['sent']}, the input has {lines} lines")
    if nodes["python"]["received"] != lines:
        problems.append(f"filter received {nodes['python']['received']} of {lines}")
    if nodes["python"]["sent"] != count or nodes["by_site"]["received"] != count:
        problems.append(f"filter sent {nodes['python']['sent']}, tally received "
                        f"{nodes['by_site']['received']}, tally counted {count}")
    if rep.get("records_rejected") or rep.get("incomplete"):
        problems.append(f"records_rejected {rep.get('records_rejected')}, incomplete {rep.get('incomplete')}")
    if problems:
        fail(f"{name}: the run report disagrees: " + "; ".join(problems))


def compare(name, got, expected):
    if got == expected:
        return
    lines = [f"{name}: tally differs from the reference"]
    for key in ("docs", "matched"):
        if got.get(key) != expected.get(key):
            lines.append(f"  {key}: got {got.get(key)}, expected {expected.get(key)}")
    gs, es = got.get("by_site", {}), expected.get("by_site", {})
    diff = sorted(k for k in set(gs) | set(es) if gs.get(k) != es.get(k))
    for k in diff[:10]:
        lines.append(f"  by_site[{k}]: got {gs.get(k)}, expected {es.get(k)}")
    if len(diff) > 10:
        lines.append(f"  ... and {len(diff) - 10} more sites")
    lines.append(f"  got      {json.dumps(got, sort_keys=True)[:300]}")
    lines.append(f"  expected {json.dumps(expected, sort_keys=True)[:300]}")
    fail("\n".join(lines))


def run_rounds(programs, args, expected, lines, what, max_hangs=None):
    """args.runs completed runs of every program, interleaved round by round. A peer that hangs
    is run again, until it has hung max_hangs times (default args.runs); then it is left out."""
    max_hangs = args.runs if max_hangs is None else max_hangs
    for rnd in range(1, args.runs + 1):
        # Every other round in reverse: no program always runs right after the same one (the
        # two procnet programs, compared with each other, swap places each round).
        for p in (programs if rnd % 2 else programs[::-1]):
            while len(p.hangs) <= max_hangs:
                say(f"{what} round {rnd}/{args.runs}: {p.name}")
                if p.attempt(f"{what}{rnd}-{len(p.runs) + len(p.hangs)}", args, expected, lines):
                    r = p.runs[-1]
                    say(f"  {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s, PSS {r['peak_pss_mib']:.1f} MiB"
                        + (f", report elapsed {r['report']['elapsed_s']:.2f} s" if p.procnet else "")
                        + (f"  (other CPU {r['other_cpu_pct']:.0f}% of a core)"
                           if r["other_cpu_pct"] > OTHER_MAX else ""))
                    break
                if len(p.hangs) > max_hangs:
                    say(f"  {p.name}: hung {len(p.hangs)} times; no more attempts")


# ---------------------------------------------------------------- output

def mib(x):
    return f"{x:.1f}" if x > 0 else "n/a (too short to sample)"


def machine_line():
    with open("/proc/cpuinfo") as f:
        cpu = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem_gib = int(f.readline().split()[1]) / 1024 / 1024
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return (f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, Linux {platform.release()}, "
            f"Python {platform.python_version()} (peers: {peer_python_version()}); "
            f"load average before: {load}")


def peer_python_version():
    try:
        return subprocess.run([str(PY), "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def procnet_version():
    def git(*a):
        r = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), *a],
                           capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "Cargo.toml", "Cargo.lock")
    return head + (" + uncommitted changes in src/" if dirty else "")


def summarize(p):
    if not p.runs:
        return None
    walls = [r["wall_s"] for r in p.runs]
    s = {"runs": len(p.runs), "hangs": p.hangs, "wall_s": statistics.median(walls),
         "wall_min_s": min(walls), "wall_max_s": max(walls), "cpu_s": p.med("cpu_s"),
         "peak_pss_mib": max(r["peak_pss_mib"] for r in p.runs),
         "peak_rss_sum_mib": max(r["peak_rss_sum_mib"] for r in p.runs),
         "max_rss_mib": max(r["max_rss_mib"] for r in p.runs),
         "processes": max(r["processes"] for r in p.runs),
         "other_cpu_pct_max": max(r["other_cpu_pct"] for r in p.runs),
         "sampler_cpu_s": p.med("sampler_cpu_s")}
    if p.procnet:
        s["elapsed_s"] = statistics.median(r["report"]["elapsed_s"] for r in p.runs)
        s["startup_s"] = statistics.median(r["report"]["startup_s"] for r in p.runs)
    return s


def node_breakdown(p):
    """Per procnet node of the median run: CPU s (sampled, approximate) and blocked s."""
    if not p.runs:
        return ""
    run = sorted(p.runs, key=lambda r: r["wall_s"])[len(p.runs) // 2]
    parts = []
    for label, cpu in sorted(run["cpu_by_process"].items(), key=lambda kv: -kv[1]):
        node = run["report"]["nodes"].get(label)
        blocked = f", blocked {node['blocked_ms'] / 1000:.2f} s" if node else ""
        label = {"procnet": "launcher", "procnet-wat": "watchdog", "time": "GNU time"}.get(label, label)
        parts.append(f"{label} {cpu:.2f} s{blocked}")
    return (f"{p.name}, run of median wall time ({run['wall_s']:.2f} s wall, {run['cpu_s']:.2f} s CPU): "
            "CPU per process (sampled, so a little short) and time blocked by backpressure: "
            + "; ".join(parts))


# ---------------------------------------------------------------- targets

PYTHON_PEERS = ("p0_serial", "p1_mp_queue", "p2_mp_pool", "p3_pyzmq")


def targets(result):
    """The speed and memory targets, each computed from figures measured in this run only.
    Returns a list of {"id", "target", "value", "measured", "threshold", "verdict"}: verdict is
    PASS, FAIL, or "not measured" (its part or program was left out with --only/--programs,
    or a figure was too short to sample); value is the figure compared with the threshold."""
    rows = []

    def add(key, target, threshold, value=None, ok=None, measured="", missing=None):
        if missing:
            rows.append({"id": key, "target": target, "value": None,
                         "measured": missing, "threshold": threshold,
                         "verdict": "not measured"})
        else:
            verdict = "reported" if threshold == "reported" else "PASS" if ok else "FAIL"
            rows.append({"id": key, "target": target, "value": value, "measured": measured,
                         "threshold": threshold, "verdict": verdict})

    docs = result.get("docs")
    summary = docs["summary"] if docs else {}

    def docs_missing(*names):
        """Why a docs-job target cannot be computed, or None."""
        if not docs:
            return "docs part not run (--only)"
        gone = [n for n in ("procnet", *names) if not summary.get(n)]
        return f"{', '.join(gone)} not run (--programs)" if gone else None

    pn = summary.get("procnet")

    def speed(key, target, peer, limit, threshold, missing):
        if missing:
            return add(key, target, threshold, missing=missing)
        s = summary[peer]
        ratio = s["wall_s"] / pn["wall_s"]
        add(key, target, threshold, ratio, ratio >= limit,
            f"{ratio:.2f}x ({peer} {s['wall_s']:.2f} s / procnet {pn['wall_s']:.2f} s)")

    speed("speed_vs_p5", "docs job: speed vs p5_rust_zmq_raw (p5 wall / procnet wall, medians)",
          "p5_rust_zmq_raw", 2.0, ">= 2.0x", docs_missing("p5_rust_zmq_raw"))
    ran = [n for n in PYTHON_PEERS if summary.get(n)]
    if docs and pn and ran:
        fastest = min(ran, key=lambda n: summary[n]["wall_s"])
        of = ("fastest of p0-p3" if len(ran) == len(PYTHON_PEERS)
              else f"only {', '.join(ran)} of p0-p3 ran")
        speed("speed_vs_python", f"docs job: speed vs the fastest Python peer, {fastest} ({of}; "
              "its wall / procnet wall, medians)", fastest, 3.0, ">= 3.0x", None)
        rows[-1]["peer"] = fastest
    else:
        speed("speed_vs_python", "docs job: speed vs the fastest Python peer of p0-p3 "
              "(its wall / procnet wall, medians)", None, 3.0, ">= 3.0x",
              docs_missing() or "no Python peer (p0-p3) in --programs")
    speed("speed_vs_p4", "docs job: speed vs p4_rust_single (p4 wall / procnet wall, medians)",
          "p4_rust_single", 0.7, ">= 0.7x (aim 1.0x)", docs_missing("p4_rust_single"))

    # What the guarantee costs when nothing fails: on (procnet) against off (at most once),
    # from the paired rounds of the two alone.
    cost = result.get("cost", {})
    on, off = (cost.get("summary", {}).get(n) for n in ("procnet", "procnet, at most once"))
    for key, field, what in (("exactly_once_cpu", "cpu_s", "CPU"), ("exactly_once_wall", "wall_s", "wall")):
        target = f"docs job: {what} with exactly once on / off (medians of {cost.get('rounds', 0)} paired rounds)"
        if not (on and off):
            add(key, target, "<= 1.10x", missing=docs_missing("procnet, at most once"))
            continue
        ratio = on[field] / off[field]
        add(key, target, "<= 1.10x", ratio, ratio <= 1.10,
            f"{ratio:.2f}x (on {on[field]:.2f} s / off {off[field]:.2f} s)")

    target = "small records, procnet 3 stages: records/s (from the report's elapsed_s, median)"
    rec = result.get("records")
    s = rec["summary"].get("procnet 3 stages") if rec else None
    if not s:
        add("records_per_s", target, ">= 1,000,000", missing="records part not run (--only)")
    else:
        rate = rec["records"] / s["elapsed_s"]
        add("records_per_s", target, ">= 1,000,000", rate, rate >= 1_000_000,
            f"{rate:,.0f} records/s ({rec['records']:,} records in {s['elapsed_s']:.2f} s)")

    # A program over stdio (`cat`) as a stage: its rate alone, and beside the built-in.
    target = "small records through a `cat` stage over stdio (4 stages): records/s (elapsed_s, median)"
    s = rec["summary"].get("procnet, cat stage") if rec else None
    if not s:
        add("stdio_records_per_s", target, ">= 300,000", missing="records part not run (--only)")
    else:
        rate = rec["records"] / s["elapsed_s"]
        add("stdio_records_per_s", target, ">= 300,000", rate, rate >= 300_000,
            f"{rate:,.0f} records/s ({rec['records']:,} records in {s['elapsed_s']:.2f} s)")
    cat = summary.get("procnet, cat stage")
    target = "docs job: `cat` x2 over stdio added before the filter, wall / without it (medians; reported)"
    if not (pn and cat):
        add("stdio_stage_cost", target, "reported", missing=docs_missing("procnet, cat stage"))
    else:
        ratio = cat["wall_s"] / pn["wall_s"]
        add("stdio_stage_cost", target, "reported", ratio, True,
            f"{ratio:.2f}x (with {cat['wall_s']:.2f} s / without {pn['wall_s']:.2f} s; "
            f"CPU {cat['cpu_s']:.2f} s / {pn['cpu_s']:.2f} s)")

    flat = result.get("flat")
    if not flat:
        add("memory_flat", "memory flatness: procnet peak PSS at 5x the input / at 1x", "<= 1.25x",
            missing="flat part not run (--only)")
    else:
        s0, s1 = flat["summary"]["1x"], flat["summary"]["5x"]
        target = (f"memory flatness: procnet peak PSS at 5x ({flat['big_docs']:,} docs) / "
                  f"at 1x ({flat['base_docs']:,} docs) (max over the runs)")
        if not (s0["peak_pss_mib"] > 0 and s1["peak_pss_mib"] > 0):
            add("memory_flat", target, "<= 1.25x", missing="runs too short to sample")
        else:
            growth = s1["peak_pss_mib"] / s0["peak_pss_mib"]
            add("memory_flat", target, "<= 1.25x", growth, growth <= 1.25,
                f"{growth:.2f}x ({s0['peak_pss_mib']:.1f} -> {s1['peak_pss_mib']:.1f} MiB)")

    target = "docs job: memory, procnet peak PSS / p5_rust_zmq_raw's (max over the runs)"
    missing = docs_missing("p5_rust_zmq_raw")
    if not missing and not (pn["peak_pss_mib"] > 0 and summary["p5_rust_zmq_raw"]["peak_pss_mib"] > 0):
        missing = "runs too short to sample"
    if missing:
        add("memory_vs_p5", target, "<= 2.0x", missing=missing)
    else:
        p5 = summary["p5_rust_zmq_raw"]["peak_pss_mib"]
        ratio = pn["peak_pss_mib"] / p5
        add("memory_vs_p5", target, "<= 2.0x", ratio, ratio <= 2.0,
            f"{ratio:.2f}x (procnet {pn['peak_pss_mib']:.1f} MiB, p5 {p5:.1f} MiB)")
    return rows


def targets_md(rows):
    """The Targets section (Markdown lines)."""
    out = ["## Targets", "",
           "Each computed from figures measured in this run (the tables below); a target whose part "
           "or program was left out (`--only`, `--programs`) is not measured. The exit status "
           "ignores them unless `BENCH_STRICT=1` (then a failed target fails the run).", "",
           "| target | measured | threshold | result |", "| --- | --- | --- | --- |"]
    for r in rows:
        verdict = f"**{r['verdict']}**" if r["verdict"] in ("PASS", "FAIL") else r["verdict"]
        out.append(f"| {r['target']} | {r['measured']} | {r['threshold']} | {verdict} |")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=200000, help="corpus size (default 200000)")
    ap.add_argument("--runs", type=int, default=3, help="runs per program, median reported (default 3)")
    ap.add_argument("--records", type=int, default=1000000,
                    help="records of 100 bytes for the small-record test (default 1000000)")
    ap.add_argument("--flat", action="store_true",
                    help="memory flatness on the corpus and 5x the corpus (2.1 GB temp file) "
                         "instead of docs/5 and the corpus")
    ap.add_argument("--keep", action="store_true", help="keep the 5x file of --flat")
    ap.add_argument("--only", nargs="+", choices=("docs", "records", "flat"),
                    default=["docs", "records", "flat"], help="parts to run (default all)")
    ap.add_argument("--programs", nargs="+", default=None,
                    help="programs of the docs part (default: procnet procnet-split procnet-amo procnet-cat p0 p1 p2 p3 p4 p5)")
    ap.add_argument("--workers", type=int, default=2, help="peer workers and procnet filter replicas")
    ap.add_argument("--interval", type=float, default=0.05, help="memory sampling interval, s")
    ap.add_argument("--hang-s", type=float, default=5.0,
                    help="a run whose processes use no CPU for this long is killed as hung")
    ap.add_argument("--no-build", action="store_true", help="skip the venv and the cargo builds")
    args = ap.parse_args()

    if not PEERS.is_dir():
        fail(f"peers not found at {PEERS} (expected ../shared/peers beside the repository)")
    if not Path("/usr/bin/time").exists():
        fail("/usr/bin/time (GNU time) is needed for the largest process' peak RSS")
    OUT.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    machine = machine_line()
    say(machine)

    # 1. the venv of the peers, procnet, p4 and p5
    if not args.no_build:
        say(f"virtualenv {VENV.relative_to(REPO)} (../shared/peers/setup.sh)")
        subprocess.run([str(PEERS / "setup.sh"), str(VENV)], check=True)
        say("cargo build --release (procnet)")
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "procnet"], cwd=REPO, check=True)
        for peer in ("p4_rust_single", "p5_rust_zmq_raw"):
            say(f"cargo build --release ({peer}, CARGO_TARGET_DIR={PEERS_TARGET.relative_to(REPO)})")
            subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path",
                            str(PEERS / peer / "Cargo.toml")],
                           env={**os.environ, "CARGO_TARGET_DIR": str(PEERS_TARGET)}, check=True)
    p4 = str(PEERS_TARGET / "release" / "p4_rust_single")
    p5 = str(PEERS_TARGET / "release" / "p5_rust_zmq_raw")
    for exe in (str(PROCNET), p4, p5, str(PY)):
        if not os.access(exe, os.X_OK):
            fail(f"{exe} is missing (run without --no-build)")

    become_subreaper()
    t_measure = time.perf_counter()
    w = str(args.workers)
    result = {"machine": machine, "procnet": procnet_version(), "runs": args.runs,
              "workers": args.workers, "interval_s": args.interval}
    md, text = [], []

    # 2. the job on the corpus
    corpus = ensure_corpus(args.docs)
    corpus_lines = args.docs
    corpus_mb = corpus.stat().st_size / 1e6
    if "docs" in args.only:
        say("warming the page cache (one untimed pass of p4)")
        run_measured([p4, "--corpus", str(corpus)], "warmup", WORK, args)
        topo = topology("pipeline-docs", corpus, args.workers,
                        f"{args.docs} docs, filter x{args.workers}")
        c = str(corpus)
        # The same job with the guarantee of docs/guarantees.md off: what exactness costs.
        topo_amo = topology("pipeline-docs-at-most-once", corpus, args.workers,
                            f"{args.docs} docs, filter x{args.workers}, at most once", "at-most-once")
        topo_cat = topology("pipeline-docs-cat", corpus, args.workers,
                            f"{args.docs} docs, cat x2 (stdio), filter x{args.workers}", cat=2)
        topo_split = topology("pipeline-docs-split", corpus, args.workers,
                              f"{args.docs} docs, lines x2 (split), filter x{args.workers}", sources=2)
        all_programs = {
            "procnet": Program("procnet", None, f"lines x1 -> filter x{w} -> tally x1", procnet=topo),
            "procnet-split": Program("procnet, split source", None,
                                     f"lines x2 (byte ranges) -> filter x{w} -> tally x1", procnet=topo_split),
            "procnet-cat": Program("procnet, cat stage", None,
                                   f"lines x1 -> `cat` x2 (stdio) -> filter x{w} -> tally x1", procnet=topo_cat),
            "procnet-amo": Program("procnet, at most once", None,
                                   f"the same, `delivery = \"at-most-once\"`", procnet=topo_amo),
            "p0": Program("p0_serial", [str(PY), str(PEERS / "p0_serial.py"), "--corpus", c],
                          "one Python process"),
            "p1": Program("p1_mp_queue", [str(PY), str(PEERS / "p1_mp_queue.py"), "--corpus", c, "--workers", w],
                          f"mp.Queue, reader + {w} workers + tally, stop tokens"),
            "p2": Program("p2_mp_pool", [str(PY), str(PEERS / "p2_mp_pool.py"), "--corpus", c, "--workers", w],
                          f"mp.Pool({w}).imap_unordered, chunks of 1024"),
            "p3": Program("p3_pyzmq", [str(PY), str(PEERS / "p3_pyzmq.py"), "--corpus", c, "--workers", w],
                          f"pyzmq ventilator + {w} workers + sink"),
            "p4": Program("p4_rust_single", [p4, "--corpus", c], "one Rust process, one thread"),
            "p5": Program("p5_rust_zmq_raw", [p5, "--corpus", c, "--workers", w],
                          f"raw Rust zmq ventilator + {w} workers + sink"),
        }
        chosen = args.programs or list(all_programs)
        programs = [all_programs[k] for k in chosen]
        # The reference tally: p0's (the peers' rule), computed once up front when p0 runs.
        ref_prog = all_programs["p0"] if "p0" in chosen else all_programs["p4"]
        say(f"reference tally from {ref_prog.name}")
        ref = run_measured(ref_prog.cmd, "reference", WORK, args)
        expected = json.loads(ref["last_line"])
        if expected["docs"] != corpus_lines:
            fail(f"{ref_prog.name} read {expected['docs']} docs, the corpus has {corpus_lines} lines")
        run_rounds(programs, args, expected, corpus_lines, "docs")
        for p in programs:
            if not p.runs:
                fail(f"{p.name} never completed a run: {len(p.hangs)} hangs ({p.hangs[-1]})")
        rows = {p.name: summarize(p) for p in programs}
        pn = rows.get("procnet")
        if "procnet" in chosen and "procnet-amo" in chosen:
            # What exactness costs when nothing fails: the two procnet programs alone, in
            # alternating order, over more rounds than the rest (their difference is small
            # beside the run-to-run noise of 3 rounds among other programs).
            pair = [Program("procnet", None, "", procnet=topo),
                    Program("procnet, at most once", None, "", procnet=topo_amo)]
            cost_args = argparse.Namespace(**{**vars(args), "runs": max(10, 3 * args.runs)})
            run_rounds(pair, cost_args, expected, corpus_lines, "cost")
            result["cost"] = {"rounds": cost_args.runs, "summary": {p.name: summarize(p) for p in pair}}
        head = ["program", "how", "processes", "wall s, median (min-max)", "docs/s", "CPU s",
                "peak PSS MiB, all processes", "peak RSS MiB, summed", "largest process RSS MiB",
                "speed: peer wall / procnet wall", "memory: procnet PSS / peer PSS"]
        md += [f"## The job: {args.docs:,} docs ({corpus_mb:.0f} MB), median of {args.runs} runs",
               "",
               f"Read JSON lines -> keep the bodies that mention \"python\" (any case) -> tally per site; "
               f"peers with `--workers {w}`, procnet `lines` x1 -> `filter` x{w} -> `tally` x1 "
               f"(`by = \"url\"`, `by_host = true`). Programs interleaved round by round. "
               f"Tally: `\"docs\":{expected['docs']},\"matched\":{expected['matched']}`, "
               f"{len(expected['by_site'])} sites, equal for every program and run.",
               "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for p in programs:
            s = rows[p.name]
            speed = mem = ""
            if pn and p.name != "procnet":
                speed = f"{s['wall_s'] / pn['wall_s']:.2f}x"
                mem = f"{pn['peak_pss_mib'] / s['peak_pss_mib']:.2f}x"
            name = f"**{p.name}**" if p.name == "procnet" else p.name
            hung = f" ({len(p.hangs)} hung, rerun)" if p.hangs else ""
            md.append("| " + " | ".join([
                name + hung, p.how, str(s["processes"]),
                f"{s['wall_s']:.2f} ({s['wall_min_s']:.2f}-{s['wall_max_s']:.2f})",
                f"{args.docs / s['wall_s']:,.0f}", f"{s['cpu_s']:.2f}", mib(s["peak_pss_mib"]),
                mib(s["peak_rss_sum_mib"]), mib(s["max_rss_mib"]), speed, mem]) + " |")
        md.append("")
        if pn:
            md.append(f"- procnet's own report: elapsed {pn['elapsed_s']:.2f} s (median; start of "
                      f"the run to the last exit), start-up {pn['startup_s'] * 1000:.0f} ms; wall "
                      "above is the whole `procnet run` command.")
            md.append("- " + node_breakdown(all_programs["procnet"]))
        if pn and "procnet, at most once" in rows:
            md.append(f"- Checkpoint sizes: 0 bytes. Exactly once (docs/guarantees.md) writes no "
                      f"checkpoint while the run streams: a rollback redoes the run from its start, "
                      f"so what recovery needs is the input file itself ({corpus_mb:.0f} MB here, "
                      f"read again) and the partial outputs the run writes in any case.")
        result["docs"] = {"docs": args.docs, "corpus_mb": corpus_mb, "expected": expected,
                          "summary": rows,
                          "raw": {p.name: {"runs": p.runs, "hangs": p.hangs} for p in programs}}

    # 3. small records
    if "records" in args.only:
        rec, rec_expected = ensure_records(args.records)
        n = args.records
        t1 = topology("pipeline-records-1", rec, 1, f"{n} records of {RECORD_BYTES} bytes, filter x1")
        t2 = topology("pipeline-records-2", rec, 2, f"{n} records of {RECORD_BYTES} bytes, filter x2")
        t_cat = topology("pipeline-records-cat", rec, 1, f"{n} records of {RECORD_BYTES} bytes, cat x1, filter x1",
                         cat=1)
        r = str(rec)
        programs = [
            Program("procnet 3 stages", None, "lines x1 -> filter x1 -> tally x1", procnet=t1),
            Program("procnet, filter x2", None, "lines x1 -> filter x2 -> tally x1", procnet=t2),
            Program("procnet, cat stage", None, "lines x1 -> `cat` x1 (stdio) -> filter x1 -> tally x1",
                    procnet=t_cat),
            Program("p4_rust_single", [p4, "--corpus", r], "one Rust process (no IPC)"),
            Program("p5_rust_zmq_raw w1", [p5, "--corpus", r, "--workers", "1"],
                    "raw Rust zmq: ventilator -> 1 worker -> sink, one message per record"),
        ]
        say(f"small records: {n} x {RECORD_BYTES} bytes")
        run_rounds(programs, args, rec_expected, n, "records", max_hangs=2 * args.runs)
        rows = {p.name: summarize(p) for p in programs}
        head = ["pipeline", "processes", "wall s, median (min-max)", "records/s (wall)",
                "report elapsed_s", "records/s (elapsed_s)", "CPU s", "peak PSS MiB", "peak RSS MiB, summed"]
        md += ["", f"## Small records: {n:,} JSON lines of {RECORD_BYTES} bytes, median of {args.runs} runs", "",
               "Every body mentions \"python\", so the filter (the same one as above) passes every record; the "
               "tally (`by = \"url\"`, `by_host = true`) receives all of them and is checked "
               "(a `sink` would add a JSON encoding per record). p4 and p5 do the same job on the same "
               "file, for reference; p5 with `--workers 1` is also a 3-process pipeline.",
               "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for p in programs:
            s = rows[p.name]
            hung = f" ({len(p.hangs)} of {len(p.hangs) + len(p.runs)} runs hung)" if p.hangs else ""
            if s is None:
                md.append(f"| {p.name}{hung} | | every run hung: {p.hangs[-1] if p.hangs else ''} | | | | | | |")
                continue
            el = s.get("elapsed_s")
            md.append("| " + " | ".join([
                p.name + hung, str(s["processes"]),
                f"{s['wall_s']:.2f} ({s['wall_min_s']:.2f}-{s['wall_max_s']:.2f})", f"{n / s['wall_s']:,.0f}",
                f"{el:.2f}" if el else "", f"**{n / el:,.0f}**" if el else "", f"{s['cpu_s']:.2f}",
                mib(s["peak_pss_mib"]), mib(s["peak_rss_sum_mib"])]) + " |")
        md.append("")
        for p in programs[:2]:
            if p.runs:
                md.append("- " + node_breakdown(p))
        p5row = programs[4]
        if p5row.hangs:
            md.append(f"- p5 hung in {len(p5row.hangs)} of {len(p5row.hangs) + len(p5row.runs)} runs "
                      f"({p5row.hangs[0]}): its sink waits for verdicts that never come; the run was "
                      "killed and repeated. Only completed runs are in the figures.")
        result["records"] = {"records": n, "record_bytes": RECORD_BYTES, "summary": rows,
                             "raw": {p.name: {"runs": p.runs, "hangs": p.hangs} for p in programs}}

    # 4. memory flatness
    if "flat" in args.only:
        five = None
        if args.flat:
            base, base_docs = corpus, args.docs
            five = OUT / f"corpus-{args.docs}-seed1-x5.jsonl"
            if not (five.exists() and five.stat().st_size == 5 * corpus.stat().st_size):
                say(f"writing {five.relative_to(REPO)} (the corpus 5 times, {5 * corpus_mb / 1000:.1f} GB)")
                with open(five.with_suffix(".tmp"), "wb") as dst:
                    for _ in range(5):
                        with open(corpus, "rb") as src:
                            shutil.copyfileobj(src, dst, 1 << 22)
                five.with_suffix(".tmp").rename(five)
            big, big_docs = five, 5 * args.docs
        else:
            base_docs = max(1, args.docs // 5)
            base = ensure_corpus(base_docs)
            big, big_docs = corpus, args.docs
        say(f"memory flatness: procnet on {base_docs} and {big_docs} docs")
        exp = {}
        for path, docs in ((base, base_docs), (big, big_docs)):
            if path == five:
                e = exp[base]
                exp[path] = {"by_site": {k: 5 * v for k, v in e["by_site"].items()},
                             "docs": 5 * e["docs"], "matched": 5 * e["matched"]}
            else:
                exp[path] = json.loads(run_measured([p4, "--corpus", str(path)], f"flat-ref-{docs}",
                                                    WORK, args)["last_line"])
        programs = [Program(f"procnet {docs:,} docs", None, "", procnet=topology(
            f"pipeline-flat-{docs}", path, args.workers, f"{docs} docs, filter x{args.workers}"))
            for path, docs in ((base, base_docs), (big, big_docs))]
        for rnd in range(1, args.runs + 1):
            for p, (path, docs) in zip(programs, ((base, base_docs), (big, big_docs))):
                say(f"flat round {rnd}/{args.runs}: {p.name}")
                p.attempt(f"flat{rnd}", args, exp[path], docs)
                r = p.runs[-1]
                say(f"  {r['wall_s']:.2f} s, PSS {r['peak_pss_mib']:.1f} MiB, RSS sum {r['peak_rss_sum_mib']:.1f} MiB")
        if five and not args.keep:
            five.unlink()
        s0, s1 = summarize(programs[0]), summarize(programs[1])
        mb0, mb1 = base.stat().st_size / 1e6, 5 * corpus_mb if args.flat else corpus_mb
        head = ["input", "docs", "MB", "wall s (median)", "docs/s", "peak PSS MiB, all processes",
                "peak RSS MiB, summed", "largest process RSS MiB"]
        how = ("the corpus (1x) and the corpus five times over (5x, `--flat`)" if args.flat else
               f"the first {base_docs:,} docs of the corpus (1x) and the whole corpus (5x); "
               "`--flat` measures the corpus and 5x the corpus")
        md += ["", f"## Memory flatness: procnet on 1x and 5x the input (max over {args.runs} runs)", "",
               f"The job's topology (filter x{w}) on {how}.", "",
               "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for label, s, docs, mb in (("1x", s0, base_docs, mb0), ("5x", s1, big_docs, mb1)):
            md.append("| " + " | ".join([label, f"{docs:,}", f"{mb:.0f}", f"{s['wall_s']:.2f}",
                                         f"{docs / s['wall_s']:,.0f}", mib(s["peak_pss_mib"]),
                                         mib(s["peak_rss_sum_mib"]), mib(s["max_rss_mib"])]) + " |")
        growth = s1["peak_pss_mib"] / s0["peak_pss_mib"]
        md += ["", f"- 5x the input: peak PSS x{growth:.2f} ({mib(s0['peak_pss_mib'])} -> "
               f"{mib(s1['peak_pss_mib'])} MiB), peak RSS summed x{s1['peak_rss_sum_mib'] / s0['peak_rss_sum_mib']:.2f}."]
        result["flat"] = {"flat_option": args.flat, "base_docs": base_docs, "big_docs": big_docs,
                          "summary": {"1x": s0, "5x": s1},
                          "raw": {p.name: {"runs": p.runs} for p in programs}}

    # 5. notes, machine, output
    total = time.perf_counter() - T_START
    measured = time.perf_counter() - t_measure
    all_runs = [r for part in ("docs", "records", "flat") if part in result
                for v in result[part]["raw"].values() for r in v["runs"]]
    disturbed = [r for r in all_runs if r["other_cpu_pct"] > OTHER_MAX]
    sampler = sum(r["sampler_cpu_s"] for r in all_runs) / max(1e-9, sum(r["wall_s"] for r in all_runs)) * 100
    others = {}
    for r in disturbed:
        for cpu, comm in r["other_busy"]:
            others[comm] = others.get(comm, 0) + cpu
    notes = [
        "",
        "## Notes",
        "",
        f"- Machine: {machine}. procnet {result['procnet']}.",
        "- Wall: the whole command (interpreter or launcher start-up included), timed by this script. "
        "CPU s: user + system time of every process of the run. docs/s = docs / wall.",
        "- Peak PSS: the largest sum over every process of the run (each shared page counted once, "
        "split between its sharers), sampled every "
        f"{args.interval * 1000:.0f} ms from /proc/PID/smaps_rollup as benches/treepss.py does; peak RSS summed: "
        "the same with RSS (shared pages, like the binary or a forked interpreter, counted in each process); "
        "largest process RSS: GNU time's %M. Memory figures are the max over the runs.",
        "- Speed ratio > 1: procnet is faster than that peer; memory ratio < 1: procnet uses less.",
        f"- The sampler used {sampler:.1f}% of a core during the runs (of {os.cpu_count()}). "
        f"Runs disturbed by other processes (> {OTHER_MAX}% of a core): {len(disturbed)} of {len(all_runs)}"
        + (f" (busiest: {', '.join(f'{c} {s:.1f} s' for c, s in sorted(others.items(), key=lambda kv: -kv[1])[:3])})"
           if disturbed else "") + ".",
        f"- Measured in {measured:.0f} s; whole script {total:.0f} s (with builds and inputs).",
    ]
    result["targets"] = goals = targets(result)
    md = (["# Pipeline benchmark (`benches/pipeline.py`)", ""] + targets_md(goals)
          + ([""] if md and md[0] != "" else []) + md + notes)
    text = "\n".join(md) + "\n"
    result["total_s"] = total
    result["measured_s"] = measured
    (OUT / "pipeline.md").write_text(text)
    (OUT / "pipeline.json").write_text(json.dumps(result, indent=1) + "\n")
    print(text)
    print("(target/bench/pipeline.md; every figure in target/bench/pipeline.json)")
    count = {v: sum(g["verdict"] == v for g in goals) for v in ("PASS", "FAIL", "not measured")}
    failed = [g["id"] for g in goals if g["verdict"] == "FAIL"]
    print(f"targets: {count['PASS']} PASS, {count['FAIL']} FAIL, {count['not measured']} not measured"
          + (f" ({', '.join(failed)})" if failed else ""))
    if failed and os.environ.get("BENCH_STRICT") == "1":
        fail(f"targets not met (BENCH_STRICT=1): {', '.join(failed)}")


if __name__ == "__main__":
    main()
