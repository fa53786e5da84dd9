"""procnet nodes in Python: the wire protocol v1 of docs/protocol.md over ZeroMQ and MessagePack.

    from procnet import Node

    with Node() as node:                  # join: hello, wire, ready, start (§4.1)
        for record in node.records():     # until end of stream, exact (§8)
            node.send(record)             # to port "out"
    # leaving the block: flush, eos, done, wait for bye (§8); on an exception: failed (§6.8)

``procnet.wire`` encodes and decodes single frames (§5, §6).
"""

from .identity import Identity
from .node import BATCH_BYTES, BATCH_RECORDS, HWM, Node, ProtocolError
from .wire import VERSION, DecodeError, decode, encode, text_of

__all__ = ["Node", "Identity", "ProtocolError", "DecodeError", "decode", "encode", "text_of", "VERSION", "HWM",
           "BATCH_RECORDS", "BATCH_BYTES"]
