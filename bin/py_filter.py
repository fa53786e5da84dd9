#!/usr/bin/env python3
"""A procnet filter node in Python: keep the records whose field contains a word, in any case,
and add the number of times it occurs.

    [nodes.keep]
    command = ["python3", "../bin/py_filter.py", "--field", "body", "--contains", "python"]
    inputs = ["pages"]
    replicas = 2

Like the built-in `filter` with `ignore_case = true`: a record without the field, or with nil in
it, does not match; a value that is not a string is matched against its JSON text. Each record
kept gets `--count-field` (default `mentions`): how often the word occurs in the field.
"""
import argparse

from procnet import Node, text_of

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--field", default="line", help="the field to test (default: line)")
parser.add_argument("--contains", required=True, help="the word to look for, in any case")
parser.add_argument("--count-field", default="mentions", help="the field to add (default: mentions)")
args = parser.parse_args()
word = args.contains.casefold()

with Node() as node:
    for record in node.records():
        value = record.get(args.field)
        if value is None:
            continue
        n = text_of(value).casefold().count(word)
        if n:
            record[args.count_field] = n
            node.send(record)
