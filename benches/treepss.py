"""Peak PSS summed over every descendant of a process, sampled until that process exits.

Usage: treepss.py --root PID [--interval S]
Prints one tab-separated line: peak PSS in MiB, this sampler's own CPU seconds (user+system,
so the caller can leave it out of the client's CPU).

../shared/peers/bench.py sums PSS over the command's process group; procnet starts each
replica in a process group of its own, so benches/fetch.sh samples the process tree instead
(PID = the bench.py process: its /usr/bin/time, the command, and everything they start).
"""
import argparse
import os
import resource
import time


def children_map():
    children = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        children.setdefault(ppid, []).append(int(pid))
    return children


def tree_pss_kib(root):
    children, total = children_map(), 0
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass  # ended meanwhile, or a kernel thread
    return total


def alive(pid):
    """pid exists and is not a zombie (it ends as one until its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=int, required=True)
    ap.add_argument("--interval", type=float, default=0.05)
    args = ap.parse_args()
    peak = 0
    while alive(args.root):
        peak = max(peak, tree_pss_kib(args.root))
        time.sleep(args.interval)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{peak / 1024:.1f}\t{usage.ru_utime + usage.ru_stime:.3f}")


if __name__ == "__main__":
    main()
