"""Conformance: the golden vectors of docs/protocol.md §13 (tests/golden/), decoded and
re-encoded by the procnet package exactly as tests/formats/golden.rs does with the Rust encoder."""

import json
import pathlib

import msgpack
import pytest

from procnet import wire

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden"
ALL = json.loads((GOLDEN / "vectors.json").read_text(encoding="utf-8"))
VECTORS = ALL["vectors"]
DECODING = ALL["decoding"]


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
    listed = {v["file"] for v in VECTORS + DECODING}
    assert listed == {p.name for p in GOLDEN.glob("*.msgpack")}


def pack(x):
    """A description's bytes, smallest encodings, with the entries of `$entries` in order (a
    dict cannot repeat a key, so msgpack.packb cannot write these frames)."""
    if isinstance(x, dict) and list(x) == ["$bin"]:
        return msgpack.packb(bytes.fromhex(x["$bin"]))
    if isinstance(x, dict):
        pairs = x["$entries"] if list(x) == ["$entries"] else list(x.items())
        return msgpack.Packer().pack_map_header(len(pairs)) + b"".join(pack(k) + pack(v) for k, v in pairs)
    if isinstance(x, list):
        return msgpack.Packer().pack_array_header(len(x)) + b"".join(pack(e) for e in x)
    return msgpack.packb(x)


@pytest.mark.parametrize("vector", DECODING, ids=[v["file"] for v in DECODING])
def test_frames_no_encoder_writes_decode_as_described(vector):
    """§5.3: a field given twice is invalid, with the Rust decoder's error; unknown fields and
    field order do not matter."""
    frame = (GOLDEN / vector["file"]).read_bytes()
    assert pack(vector["frame"]) == frame
    if "error" in vector:
        with pytest.raises(wire.DecodeError) as e:
            wire.decode(frame)
        assert str(e.value) == vector["error"]
    else:
        want = wire.decode((GOLDEN / vector["same_as"]).read_bytes())
        got = wire.decode(frame)
        assert same({k: got[k] for k in want}, want)


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
