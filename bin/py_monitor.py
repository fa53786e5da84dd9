#!/usr/bin/env python3
"""A procnet monitor node in Python: print every record it reads as one line of JSON, as it
comes (bin as an array of byte values), on stdout or in the file given.

    [nodes.watch]
    command = ["python3", "../bin/py_monitor.py"]      # or [..., "--output", "progress.jsonl"]
    inputs = ["count.progress"]                        # a tally's running counts (pub)

Subscribed to a tally's `progress` port, its last line is the tally's result.
"""
import argparse
import json
import sys

from procnet import Node

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--output", help="the file to write (default: stdout)")
args = parser.parse_args()


def plain(value):
    """What json cannot write by itself: bin (bytes) and extension values."""
    return list(value) if isinstance(value, bytes) else repr(value)


out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
with Node() as node:
    for record in node.records():
        print(json.dumps(record, ensure_ascii=False, default=plain), file=out, flush=True)
if out is not sys.stdout:
    out.close()
