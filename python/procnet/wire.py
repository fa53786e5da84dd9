"""Frames of the procnet wire protocol v1: one MessagePack map per frame (docs/protocol.md §5).

``encode`` writes a message with the smallest encoding of every value (§5.2; ``msgpack.packb``
does that by default) and ``decode`` checks a frame by the rules of §5.3 and the field tables of
§6, raising :class:`DecodeError` with a message like the Rust decoder's (§9).

A decoded message is the map as it came, a ``dict`` in wire order (``"v"`` and ``"t"`` first),
with entries whose key is not a string left out. Optional fields are not filled in: read them
with ``msg.get("port") or "out"`` and the like (missing and nil read the same, §5.3).
"""

import json
import math

import msgpack

VERSION = 1
#: §3.4: the topic of ``eos`` on a pub port, and the subscription every subscriber makes.
CONTROL_TOPIC = b"\0"
#: §6.1: every ``data`` frame starts with these 19 bytes, then the array header and the records.
DATA_HEADER = bytes.fromhex("83 a1 76 01 a1 74 a4 64 61 74 61 a7 72 65 63 6f 72 64 73")


class DecodeError(ValueError):
    """A frame that breaks §5.3 or §6: invalid (§9)."""


def encode(t, **fields):
    """The frame of message ``t``: ``{"v": 1, "t": t, **fields}``, fields in the order given.

    Give the fields in the order of the tables of §6 and leave out optional ones at their
    default, as the Rust encoder does, to get the bytes of the golden vectors (§13).
    """
    return msgpack.packb({"v": VERSION, "t": t, **fields}, use_bin_type=True)


def encode_record(record):
    """One record (§7) as MessagePack bytes, to go in a ``data`` frame (see :func:`data_frame`)."""
    if not isinstance(record, dict) or not all(isinstance(k, str) for k in record):
        raise TypeError(f"a record must be a dict with str keys, not {record!r:.80}")
    return msgpack.packb(record, use_bin_type=True)


def data_frame(encoded_records):
    """A ``data`` frame from records encoded with :func:`encode_record` (§6.1): the header, the
    array's length (the smallest encoding), the records."""
    array = msgpack.Packer().pack_array_header(len(encoded_records))
    return DATA_HEADER + array + b"".join(encoded_records)


def text_of(value):
    """The text of a value, for topics (§3.4) and matching: a str as is, bin as lossy UTF-8,
    anything else as its JSON text exactly as §7 defines it (the Rust ``record::text_of``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return _json_text(value)


def _json_text(v):
    """§7's JSON text: compact, floats as Rust's serde_json writes them."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float_text(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bytes):
        return "[" + ",".join(str(b) for b in v) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_json_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(text_of(k), ensure_ascii=False) + ":" + _json_text(x) for k, x in v.items()) + "}"
    if isinstance(v, msgpack.ExtType):
        return '{"ext":' + str(v.code) + ',"data":' + _json_text(v.data) + "}"
    return json.dumps(v)


def _float_text(f):
    """The shortest digits that read back to ``f`` (as ``repr``), written as §7 says: plain
    from 1e-5 up to 1e16 (with ``.0`` when whole), else ``1e+20``, ``1.5e-7``; NaN and the
    infinities ``null``."""
    if not math.isfinite(f):
        return "null"
    if f == 0:
        return "-0.0" if math.copysign(1, f) < 0 else "0.0"
    sign, digits, exp = ("-" if f < 0 else ""), *_digits(abs(f))
    point = exp + 1  # the decimal point comes after this many digits
    if 1e-5 <= abs(f) < 1e16:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if exp > 0 else ''}{exp}"


def _digits(f):
    """The shortest round-trip digits of ``f`` > 0, and the exponent of the first one."""
    text = repr(f)
    if "e" in text:
        m, _, e = text.partition("e")
        return m.replace(".", "").rstrip("0") or "0", int(e)
    whole, _, frac = text.partition(".")
    digits = (whole + frac).lstrip("0")
    lead = len(whole) - 1 if whole != "0" else -(len(frac) - len(frac.lstrip("0")) + 1)
    return digits.rstrip("0") or "0", lead


# --- Decoding (§5.3) ---------------------------------------------------------------------
# The fields of each message (§6) and wire entry (§6.4), in order: name, kind. A kind ending in
# "?" is optional (missing or nil reads as the default); one ending in "0" is an optional
# counter (missing reads as 0, nil is rejected).
_STATS = "received uint, sent uint, invalid_frames uint, bad_records uint, errors uint0, dropped uint0, blocked_ms uint0"
_SPECS = {
    "data": "records records", "eos": "from str, sent uint, port str?, topics counts?",
    "hello": "node str, replica u32, pid u32, input str?, publish strmap?, ports strmap?",
    "wire": "inputs inputs, outputs outputs, vars strmap?, ports ports?",
    "ready": "", "start": "", "stop": "", "bye": "", "stats": _STATS, "done": _STATS + ", notes strs, result str?, outputs uints?, published countmaps?, pulled uint?, subscribed uints?",
    "failed": "error str", "restarted": "from str", "resend": "to str",
    "wire input": "node str, replicas u32, port str?, pattern str?",
    "wire pub input": "topics strs, endpoints strs",
    "wire output": "node str, endpoints strs, port str?",
    "wire port": "name str, subscribers u32, drop_subscribers u320, topic_field str?, topic str?",
}
_FIELDS = {t: [tuple(f.split()) for f in spec.split(", ") if f] for t, spec in _SPECS.items()}


def decode(frame):
    """Decode and check one frame; raise :class:`DecodeError` if it is invalid (§9)."""
    try:
        value = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except msgpack.ExtraData as e:
        raise DecodeError(f"{len(e.extra)} bytes after the message") from None
    except Exception as e:  # truncated, empty, not MessagePack, invalid UTF-8 in a str
        raise DecodeError(f"not a MessagePack value ({e})") from None
    if not isinstance(value, dict):
        raise DecodeError(f"a message must be a map, found {_kind(value)}")
    msg = {k: v for k, v in value.items() if isinstance(k, str)}  # other keys are ignored
    if "v" not in msg:
        raise DecodeError("message is missing field `v` (the protocol version)")
    if not _is_int(msg["v"]):
        raise DecodeError(f"`v` must be an integer, found {_kind(msg['v'])}")
    if msg["v"] != VERSION:
        raise DecodeError(f"unsupported protocol version {msg['v']} (this side speaks {VERSION})")
    if "t" not in msg:
        raise DecodeError("message is missing field `t`")
    t = msg["t"]
    if not isinstance(t, str):
        raise DecodeError(f"field `t` of message must be a string, found {_kind(t)}")
    if t not in _SPECS or " " in t:
        raise DecodeError(f"unknown message type `{t}`")
    _check(msg, t, f"message `{t}`")
    return msg


def _check(m, spec, what):
    for name, kind in _FIELDS[spec]:
        x = m.get(name)
        if x is None and (kind.endswith("?") or (name not in m and kind.endswith("0"))):
            continue
        if name not in m:
            raise DecodeError(f"{what} is missing field `{name}`")
        kind = kind.rstrip("?0")
        wrong = f"field `{name}` of {what} must be"
        if kind == "str" and not isinstance(x, str):
            raise DecodeError(f"{wrong} a string, found {_kind(x)}")
        if kind in ("uint", "u32"):
            if not _is_int(x) or x < 0:
                raise DecodeError(f"{wrong} a non-negative integer, found {x if _is_int(x) else _kind(x)}")
            if x >> (32 if kind == "u32" else 64):
                raise DecodeError(f"field `{name}` of {what} is out of range")
        if kind in ("strs", "strmap"):
            if not isinstance(x, list if kind == "strs" else dict):
                raise DecodeError(f"{wrong} {'an array' if kind == 'strs' else 'a map of strings'}, found {_kind(x)}")
            for e in list(x) + (list(x.values()) if kind == "strmap" else []):
                if not isinstance(e, str):
                    raise DecodeError(f"`{name}` must hold strings, found {_kind(e)}")
        if kind == "counts" and not _is_counts(x):
            raise DecodeError(f"{wrong} a map of counts, found {_kind(x)}")
        if kind == "uints" and not (isinstance(x, list) and all(_is_int(n) and 0 <= n < 1 << 64 for n in x)):
            raise DecodeError(f"{wrong} an array of counts, found {_kind(x)}")
        if kind == "countmaps" and not (isinstance(x, dict) and all(
                isinstance(k, str) and _is_counts(m) for k, m in x.items())):
            raise DecodeError(f"{wrong} a map of maps of counts, found {_kind(x)}")
        if kind in ("records", "inputs", "outputs", "ports"):
            if not isinstance(x, list):
                raise DecodeError(f"{wrong} an array, found {_kind(x)}")
            for i, e in enumerate(x):
                _check_entry(e, kind, i)


def _check_entry(e, kind, i):
    if kind == "records":  # §7: a map with str keys; anything inside
        if not isinstance(e, dict):
            raise DecodeError(f"data record {i}: a record must be a map, found {_kind(e)}")
        for k in e:
            if not isinstance(k, str):
                raise DecodeError(f"data record {i}: record keys must be strings, found {_kind(k)}")
        return
    what = {"inputs": "wire input", "outputs": "wire output", "ports": "wire port"}[kind]
    if not isinstance(e, dict):
        raise DecodeError(f"{what} must be a map, found {_kind(e)}")
    _check(e, what, what)
    if kind == "inputs" and e.get("pattern") not in (None, "push", "pub"):
        raise DecodeError(f"wire input has an unknown pattern `{e['pattern']}`")
    if kind == "inputs" and e.get("pattern") == "pub":
        _check(e, "wire pub input", what)


def _is_counts(x):
    return isinstance(x, dict) and all(isinstance(k, str) and _is_int(n) and 0 <= n < 1 << 64 for k, n in x.items())


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)  # bool is an int in Python


def _kind(x):
    """A value's type in words, as in the Rust messages."""
    for types, name in ((type(None), "nil"), (bool, "a boolean"), (int, "an integer"), (float, "a float"),
                        (str, "a string"), (bytes, "binary data"), ((list, tuple), "an array"), (dict, "a map")):
        if isinstance(x, types):
            return name
    return "an extension value"
