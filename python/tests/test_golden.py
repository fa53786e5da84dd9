"""Conformance: the golden vectors of docs/protocol.md §13 (tests/golden/), decoded and
re-encoded by the procnet package exactly as tests/golden.rs does with the Rust encoder."""

import json
import pathlib

import msgpack
import pytest

from procnet import wire

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden"
VECTORS = json.loads((GOLDEN / "vectors.json").read_text(encoding="utf-8"))["vectors"]


def from_json(x):
    """A description of vectors.json as the value it stands for (tests/golden/README.md)."""
    if isinstance(x, dict):
        if list(x) == ["$bin"]:
            return bytes.fromhex(x["$bin"])
        return {k: from_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [from_json(v) for v in x]
    return x  # json gives int for 42, float for 1.5, as the conventions say


def same(a, b):
    """Equal, with the same types (1 is not 1.0 nor True) and the same order of map keys."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_every_file_is_listed():
    listed = {v["file"] for v in VECTORS}
    assert listed == {p.name for p in GOLDEN.glob("*.msgpack")}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["file"] for v in VECTORS])
def test_decode_gives_the_described_message(vector):
    frame = (GOLDEN / vector["file"]).read_bytes()
    assert same(wire.decode(frame), from_json(vector["message"]))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["file"] for v in VECTORS])
def test_encode_gives_the_file_bytes(vector):
    message = from_json(vector["message"])
    assert list(message)[:2] == ["v", "t"] and message["v"] == 1
    fields = {k: v for k, v in message.items() if k not in ("v", "t")}
    frame = (GOLDEN / vector["file"]).read_bytes()
    assert wire.encode(message["t"], **fields).hex(" ") == frame.hex(" ")


def test_data_frames_built_from_encoded_records_match_the_vectors():
    """The sender's way (§6.1): each record encoded once, the header prepended at the end."""
    for name in ("data.msgpack", "data_empty.msgpack"):
        frame = (GOLDEN / name).read_bytes()
        records = wire.decode(frame)["records"]
        assert wire.data_frame([wire.encode_record(r) for r in records]) == frame
        assert frame.startswith(wire.DATA_HEADER)


def test_a_truncated_frame_is_rejected():
    frame = (GOLDEN / "eos.msgpack").read_bytes()
    with pytest.raises(wire.DecodeError, match="not a MessagePack value"):
        wire.decode(frame[:-1])


def test_version_2_is_rejected():
    frame = msgpack.packb({"v": 2, "t": "start"})
    with pytest.raises(wire.DecodeError, match="unsupported protocol version 2"):
        wire.decode(frame)
    # The same bytes as the golden `start` but for the version byte.
    golden = (GOLDEN / "start.msgpack").read_bytes()
    assert golden.replace(b"\xa1v\x01", b"\xa1v\x02", 1) == frame
