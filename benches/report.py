#!/usr/bin/env python3
"""Fill docs/benchmarks.md from what the benchmarks wrote in target/bench/.

Usage: python3 benches/report.py [--elapsed SECONDS] [--doc PATH] [--results DIR]
       (`make bench` runs it last, with how long the benchmarks took; `make bench-report`
       runs it alone)

docs/benchmarks.md holds marker pairs `<!-- generated:NAME -->` ... `<!-- /generated:NAME -->`.
This script replaces what lies between each pair (the markers stay) and nothing else, so the
hand-written prose around them is left as it is:
  machine   the machine, the toolchain and the procnet commit (as they are now, when this
            runs; the date is when the newest of the files below was written)
  pipeline  target/bench/pipeline.md (benches/pipeline.py)
  fetch     target/bench/fetch.md (benches/fetch.sh)
  startup   target/bench/startup.md (benches/startup.py)
An included file's leading title ("# ...") is dropped (the section heading above the markers
names it) and its headings are moved down to nest under that section heading. A file that is
missing leaves its section as it was (said on stderr). --elapsed (how long `make bench` took)
is kept in target/bench/report-elapsed.json with the dates of the files it goes with, so a
later run without it still shows it while those files are the same. Running this twice gives
the same file. Stdlib only.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECTIONS = {  # marker name -> (file in the results directory, what wrote it)
    "pipeline": ("pipeline.md", "benches/pipeline.py"),
    "fetch": ("fetch.md", "benches/fetch.sh"),
    "startup": ("startup.md", "benches/startup.py"),
}
HEADING = re.compile(r"^(#{1,6})(\s.*)?$")
FENCE = re.compile(r"^\s*(```|~~~)")


def warn(msg):
    print(f"report.py: {msg}", file=sys.stderr, flush=True)


def run(*cmd, cwd=REPO):
    """stdout of cmd, stripped, or None when it cannot run or fails."""
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


# ---------------------------------------------------------------- Markdown

def headings(lines):
    """(index, level) of every ATX heading outside fenced code blocks."""
    out, fenced = [], False
    for i, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            m = HEADING.match(line)
            if m:
                out.append((i, len(m.group(1))))
    return out


def nest(text, level):
    """The included file's Markdown, its leading title dropped and its headings moved so that
    the highest becomes `level` (the order between them kept; none deeper than 6)."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    if lines and re.match(r"^# ", lines[0]):  # the file's title: the section names it
        lines.pop(0)
        while lines and not lines[0]:
            lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    found = headings(lines)
    if found:
        shift = level - min(lv for _, lv in found)
        for i, lv in found:
            lines[i] = "#" * max(1, min(6, lv + shift)) + lines[i][lv:]
    # no runs of blank lines (the benches sometimes write two)
    out = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out)


def markers(name):
    return f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"


def section_level(doc, pos):
    """The level of the heading that holds position pos of doc, plus one (3 under a `## `)."""
    found = headings(doc[:pos].splitlines())
    return min(6, found[-1][1] + 1) if found else 2


def replace(doc, name, body):
    """doc with what lies between the markers of name replaced by body."""
    start, end = markers(name)
    a = doc.index(start) + len(start)
    b = doc.index(end)
    inner = f"\n\n{body}\n\n" if body else "\n"
    return doc[:a] + inner + doc[b:]


def check_markers(doc, names):
    problems = []
    for name in names:
        start, end = markers(name)
        n_start, n_end = doc.count(start), doc.count(end)
        if n_start != 1 or n_end != 1:
            problems.append(f"`{start}` found {n_start} times and `{end}` {n_end} times "
                            "(each must be there once)")
        elif doc.index(start) > doc.index(end):
            problems.append(f"`{end}` comes before `{start}`")
    return problems


# ---------------------------------------------------------------- the machine

def utc(ts, fmt="%Y-%m-%d %H:%M"):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(fmt)


def cpu_info():
    model, flags = "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "?":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def memory():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB (MemTotal)"
    except (OSError, ValueError, IndexError):
        pass
    return "?"


def virtualization(flags):
    parts = []
    if "hypervisor" in flags:
        parts.append("the CPU has the `hypervisor` flag (a virtual machine)")
    elif flags:
        parts.append("no `hypervisor` CPU flag")
    if shutil.which("systemd-detect-virt"):
        # exits 1 when it finds none, printing "none"
        try:
            r = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True, timeout=10)
            what = r.stdout.strip() or "?"
        except (OSError, subprocess.TimeoutExpired):
            what = "?"
        parts.append(f"`systemd-detect-virt`: {what}")
    else:
        parts.append("`systemd-detect-virt` not installed")
    return "; ".join(parts)


def peers_python():
    py = REPO / "target" / "bench" / "venv" / "bin" / "python"
    if not os.access(py, os.X_OK):
        return None
    return run(str(py), "-c", "import platform; print(platform.python_version())")


def commit():
    head = run("git", "--no-optional-locks", "rev-parse", "--short", "HEAD") or "?"
    dirty = run("git", "--no-optional-locks", "status", "--porcelain", "--", "src", "Cargo.toml",
                "Cargo.lock")
    return f"`{head}`" + (" + uncommitted changes (in src/, Cargo.toml or Cargo.lock)" if dirty else "")


def duration(seconds):
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s ({seconds} s)" if seconds >= 60 else f"{seconds} s"


def machine_block(written, kept, elapsed):
    """The machine section. written: {name: mtime} of the files included now; kept: the
    sections whose file was missing (left as an earlier report wrote them)."""
    newest = max(written.values())
    day = utc(newest, "%Y-%m-%d")
    when = ", ".join(f"{SECTIONS[n][0]} {utc(t, '%H:%M') if utc(t, '%Y-%m-%d') == day else utc(t)}"
                     for n, t in sorted(written.items(), key=lambda kv: kv[1]))
    model, flags = cpu_info()
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    cpu = f"{model}, {cores} cores" + (f" ({usable} usable by this process)" if usable != cores else "")
    py = platform.python_version()
    peers = peers_python()
    lines = [
        f"- Date: {utc(newest)} UTC (results written: {when}"
        + (f"; not found: {', '.join(SECTIONS[n][0] for n in kept)}, so "
           + ("those sections are" if len(kept) > 1 else "that section is")
           + " from an earlier report" if kept else "") + ")",
        f"- CPU: {cpu}",
        f"- Memory: {memory()}",
        f"- Kernel: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Virtualization: {virtualization(flags)}",
        f"- Python: {py}" + (f" (the peers' virtualenv: {peers})" if peers and peers != py else
                             " (also the peers' virtualenv)" if peers else ""),
        f"- Rust: {run('rustc', '--version') or 'rustc not found'}",
        f"- procnet: commit {commit()}",
    ]
    if elapsed is not None:
        lines.append(f"- `make bench` (fetch, pipeline and start-up benchmarks) took {duration(elapsed)}")
    return "\n".join(lines)


def elapsed_for(results, written, given):
    """--elapsed if given (and remembered with the files' dates), else the remembered one if
    it goes with these very files, else None."""
    memo = results / "report-elapsed.json"
    stamp = {name: written[name] for name in sorted(written)}
    if given is not None:
        memo.write_text(json.dumps({"elapsed_s": given, "files": stamp}, indent=1) + "\n")
        return given
    try:
        saved = json.loads(memo.read_text())
    except (OSError, ValueError):
        return None
    return saved.get("elapsed_s") if saved.get("files") == stamp else None


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--elapsed", type=float, help="seconds the whole `make bench` took")
    ap.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md",
                    help="the document to fill (default docs/benchmarks.md)")
    ap.add_argument("--results", type=Path, default=REPO / "target" / "bench",
                    help="where the benchmarks wrote their files (default target/bench)")
    args = ap.parse_args()

    doc = args.doc.read_text()
    problems = check_markers(doc, ["machine", *SECTIONS])
    if problems:
        sys.exit(f"report.py: {args.doc}: " + "; ".join(problems))

    written, kept = {}, []
    for name, (file, by) in SECTIONS.items():
        path = args.results / file
        try:
            text, mtime = path.read_text(), path.stat().st_mtime
        except OSError:
            warn(f"{path} not found (run {by}): the {name} section keeps its old content")
            kept.append(name)
            continue
        start, _ = markers(name)
        doc = replace(doc, name, nest(text, section_level(doc, doc.index(start))))
        written[name] = mtime
    if not written:
        sys.exit(f"report.py: no results in {args.results} (run `make bench`); {args.doc} unchanged")
    elapsed = elapsed_for(args.results, written, args.elapsed)
    doc = replace(doc, "machine", machine_block(written, kept, elapsed))

    old = args.doc.read_text()
    if doc != old:
        args.doc.write_text(doc)
    try:
        shown = args.doc.resolve().relative_to(REPO)
    except ValueError:
        shown = args.doc
    print(f"{shown}: {'updated' if doc != old else 'unchanged'} (machine, {', '.join(written)}"
          + (f"; kept as they were: {', '.join(kept)}" if kept else "") + ")")


if __name__ == "__main__":
    main()
