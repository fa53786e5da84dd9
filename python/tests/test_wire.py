"""The decoder's error handling (docs/protocol.md §5.3, §9) and the helpers of procnet.wire."""

import msgpack
import pytest

from procnet import wire
from procnet.wire import DecodeError, decode, encode


def pack(*pairs):
    """A map frame with the entries in this order (and repeats, or non-str keys, if asked)."""
    out = bytearray([0x80 | len(pairs)])
    for k, v in pairs:
        out += msgpack.packb(k) + msgpack.packb(v)
    return bytes(out)


@pytest.mark.parametrize("frame, error", [
    (b"", "not a MessagePack value"),
    (b"\xc1garbage", "not a MessagePack value"),
    (b"\x92\x01\x02", "a message must be a map, found an array"),
    (encode("stop") + b"\x00\x00", "2 bytes after the message"),
    (pack(("t", "stop")), "message is missing field `v` (the protocol version)"),
    (pack(("v", 1.0), ("t", "stop")), "`v` must be an integer, found a float"),
    (pack(("v", True), ("t", "stop")), "`v` must be an integer, found a boolean"),
    (pack(("v", 1)), "message is missing field `t`"),
    (pack(("v", 1), ("t", 5)), "field `t` of message must be a string, found an integer"),
    (pack(("v", 1), ("t", "ping")), "unknown message type `ping`"),
    (pack(("v", 1), ("t", "eos")), "message `eos` is missing field `from`"),
    (pack(("v", 1), ("t", "eos"), ("from", "a.0"), ("sent", -1)),
     "field `sent` of message `eos` must be a non-negative integer, found -1"),
    (pack(("v", 1), ("t", "eos"), ("from", "a.0"), ("sent", 1.0)),
     "field `sent` of message `eos` must be a non-negative integer, found a float"),
    (pack(("v", 1), ("t", "eos"), ("from", b"a.0"), ("sent", 1)),
     "field `from` of message `eos` must be a string, found binary data"),
    (pack(("v", 1), ("t", "eos"), ("from", "a.0"), ("sent", 1), ("topics", "x")),
     "field `topics` of message `eos` must be a map of counts, found a string"),
    (pack(("v", 1), ("t", "hello"), ("node", "a"), ("replica", 1 << 32), ("pid", 1)),
     "field `replica` of message `hello` is out of range"),
    (pack(("v", 1), ("t", "stats"), ("received", 1), ("sent", 1), ("invalid_frames", 0), ("bad_records", 0),
          ("errors", None)), "field `errors` of message `stats` must be a non-negative integer, found nil"),
    (pack(("v", 1), ("t", "wire"), ("inputs", [1]), ("outputs", [])), "wire input must be a map, found an integer"),
    (pack(("v", 1), ("t", "wire"), ("inputs", []), ("outputs", [{"node": "x"}])),
     "wire output is missing field `endpoints`"),
    (pack(("v", 1), ("t", "wire"), ("inputs", [{"node": "x", "replicas": 1, "pattern": "fanout"}]), ("outputs", [])),
     "wire input has an unknown pattern `fanout`"),
    (pack(("v", 1), ("t", "wire"), ("inputs", [{"node": "x", "replicas": 1, "pattern": "pub"}]), ("outputs", [])),
     "wire input is missing field `topics`"),
    (pack(("v", 1), ("t", "wire"), ("inputs", []), ("outputs", []), ("ports", [{"name": "p"}])),
     "wire port is missing field `subscribers`"),
    (pack(("v", 1), ("t", "wire"), ("inputs", []), ("outputs", []), ("vars", [])),
     "field `vars` of message `wire` must be a map of strings, found an array"),
    (pack(("v", 1), ("t", "hello"), ("node", "a"), ("replica", 0), ("pid", 1), ("publish", {"url": 5})),
     "`publish` must hold strings, found an integer"),
    (pack(("v", 1), ("t", "data"), ("records", [5])), "data record 0: a record must be a map, found an integer"),
    (pack(("v", 1), ("t", "data"), ("records", [{}, {b"k": 1}])),
     "data record 1: record keys must be strings, found binary data"),
    (pack(("v", 1), ("t", "data"), ("records", {})), "field `records` of message `data` must be an array, found a map"),
])
def test_invalid_frames_are_rejected_with_the_rust_message(frame, error):
    with pytest.raises(DecodeError) as e:
        decode(frame)
    assert str(e.value).startswith(error), str(e.value)


def test_unknown_fields_and_non_string_keys_are_ignored_and_nil_optionals_accepted():
    frame = pack(("t", "eos"), (7, "x"), ("v", 1), ("sent", 2), ("from", "a.0"), ("port", None), ("later", [1]))
    msg = decode(frame)
    assert msg == {"t": "eos", "v": 1, "sent": 2, "from": "a.0", "port": None, "later": [1]}
    assert (msg.get("port") or "out") == "out"


def test_records_keep_their_types_and_nested_maps_may_have_any_keys():
    record = {"s": "é", "b": b"\x00\xff", "i": -(1 << 63), "u": (1 << 64) - 1, "f": 0.1, "n": None,
              "m": {1: "one", "k": [True, False]}, "x": msgpack.ExtType(5, b"ab")}
    frame = wire.data_frame([wire.encode_record(record)])
    assert decode(frame)["records"] == [record]
    assert wire.data_frame([wire.encode_record(record)] * 20)[19] == 0xdc  # array 16 past 15


def test_encode_record_refuses_what_is_not_a_record():
    for bad in ([1], {1: "x"}, "text"):
        with pytest.raises(TypeError):
            wire.encode_record(bad)


@pytest.mark.parametrize("value, text", [
    ("acme.test", "acme.test"), (b"ab\xff", "ab\ufffd"), (404, "404"), (1.5, "1.5"), (None, "null"),
    (True, "true"), ([1, "é"], '[1,"é"]'), ({"a": b"\x01"}, '{"a":[1]}'), (float("nan"), "null"),
])
def test_text_of_is_the_rust_text_of_a_value(value, text):
    assert wire.text_of(value) == text


def test_the_wire_examples_of_section_6_4_decode():
    """The `wire` of `split` (pub ports) and of `acme` (a pub input), docs/protocol.md §6.4."""
    split = encode("wire", inputs=[{"node": "log", "replicas": 1}],
                   outputs=[{"node": "pushed", "endpoints": ["ipc://run/pushed.0"]}],
                   ports=[{"name": "hosts", "subscribers": 1, "drop_subscribers": 1, "topic_field": "host"},
                          {"name": "copies", "subscribers": 3, "topic": "copy"}])
    acme = encode("wire", inputs=[{"node": "split", "replicas": 2, "port": "hosts", "pattern": "pub",
                                   "topics": ["acme"], "endpoints": ["ipc://run/split.0.hosts",
                                                                      "ipc://run/split.1.hosts"]}], outputs=[])
    assert decode(split)["ports"][0]["drop_subscribers"] == 1
    assert decode(acme)["inputs"][0]["endpoints"][1] == "ipc://run/split.1.hosts"
    eos = encode("eos", **{"from": "errors.0", "sent": 4,
                           "topics": {"acme.test": 2, "ember.test": 1, "jade.test": 1}})
    assert len(eos) == 72 and eos.startswith(bytes.fromhex("85 a1 76 01 a1 74 a3 65 6f 73"))  # §6.2
    assert decode(eos)["topics"] == {"acme.test": 2, "ember.test": 1, "jade.test": 1}


def test_an_ext_32_of_the_largest_length_is_refused_even_in_an_unknown_field():
    # Fuzzed: Unpacker.skip takes `c9 ff ff ff ff` for 5 bytes, so stepping over it accepted the frame.
    frame = bytes.fromhex("83 a1 76 01 a1 74 a4 73 74 6f 70 a1 78 c9 ff ff ff ff")
    with pytest.raises(DecodeError, match="not a MessagePack value"):
        decode(frame)
