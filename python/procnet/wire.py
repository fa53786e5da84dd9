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
    """Decode and check one frame; raise :class:`DecodeError` if it is invalid (§9).

    A field given twice makes the message invalid (§5.3), as does a key given twice in a map
    the protocol defines inside it; unknown fields are kept, the last of a repeated one, as in
    a dict. A dict keeps one of a repeated key, so the repeats are seen as the frame is
    unpacked (an ``object_pairs_hook``), or, when that cannot be done in one piece, by walking
    the message map entry by entry.
    """
    frame = bytes(frame)
    if not frame or not _is_map_marker(frame[0]):
        try:
            value = msgpack.unpackb(frame, raw=False, strict_map_key=False)
        except msgpack.ExtraData as e:
            raise DecodeError(f"{len(e.extra)} bytes after the message") from None
        except Exception as e:  # truncated, empty, not MessagePack
            raise DecodeError(f"not a MessagePack value ({e})") from None
        raise DecodeError(f"a message must be a map, found {_kind(value)}")
    msg = _in_one_piece(frame)
    return msg if msg is not None else _field_by_field(frame)


def _in_one_piece(frame):
    """The common frames, in one unpack: a ``data`` frame laid out as procnet writes it (§6.1,
    three fields that cannot repeat), and any other message that unpacks whole. None for a
    frame to read field by field (another layout of ``data``, an error to explain, a field
    that is not a Python value)."""
    if frame.startswith(DATA_HEADER):
        try:
            records = msgpack.unpackb(memoryview(frame)[len(DATA_HEADER):], raw=False, strict_map_key=False)
        except Exception:
            return None
        msg = {"v": VERSION, "t": "data", "records": records}
        _check(msg, "data", "message `data`")
        return msg
    try:
        whole = msgpack.unpackb(frame, raw=False, strict_map_key=False, object_pairs_hook=_pairs)
    except Exception:
        return None
    if whole.get("t") == "data":  # its records went through the hook: read it field by field
        return None
    msg = {k: v for k, v in whole.items() if isinstance(k, str)}
    t = _header(getattr(whole, "repeated", ()), msg.get, lambda name: name in msg)
    _check(msg, t, f"message `{t}`")
    return msg


def _field_by_field(frame):
    """Walk the message map entry by entry (values skipped, then unpacked one field at a time),
    so that every key is seen before a dict keeps one."""
    entries = _entries(frame)
    for k, v, _ in entries:
        _whole(frame, (k, v))
    names = [(_key(frame, k, v), (v, end)) for k, v, end in entries]
    seen, repeated, first = set(), [], {}
    for name, span in names:
        if name is not None:
            if name in seen:
                repeated.append(name)
            seen.add(name)
            first.setdefault(name, span)
    t = _header(repeated, lambda name: _unpack(frame, first[name]), lambda name: name in first)
    known = {name for name, _ in _FIELDS[t]}
    # A data message's records are unpacked as they are (a dict keeps the last of a repeated
    # record key, §7); the maps inside other messages are the protocol's, checked for repeats.
    hook = None if t == "data" else _pairs
    msg = {}
    for name, span in names:
        if name in known:
            msg[name] = _unpack(frame, span, hook)
        else:  # ignored, but it must be a complete value; a str not UTF-8 is left out
            _whole(frame, span)
            try:
                if name is not None:
                    msg[name] = _unpack(frame, span)
            except DecodeError:
                msg.pop(name, None)
    _check(msg, t, f"message `{t}`")
    return msg


def _header(repeated, get, has):
    """Check ``v`` and ``t`` and that no field of the type repeats (the names given again, in
    the map's order, are ``repeated``); return the type."""
    _refuse_repeats(repeated, ("v", "t"), "message")
    if not has("v"):
        raise DecodeError("message is missing field `v` (the protocol version)")
    version = get("v")
    if not _is_int(version):
        raise DecodeError(f"`v` must be an integer, found {_kind(version)}")
    if version != VERSION:
        raise DecodeError(f"unsupported protocol version {version} (this side speaks {VERSION})")
    if not has("t"):
        raise DecodeError("message is missing field `t`")
    t = get("t")
    if not isinstance(t, str):
        raise DecodeError(f"field `t` of message must be a string, found {_kind(t)}")
    if t not in _SPECS or " " in t:
        raise DecodeError(f"unknown message type `{t}`")
    _refuse_repeats(repeated, {name for name, _ in _FIELDS[t]}, f"message `{t}`")
    return t


def _is_map_marker(b):
    return 0x80 <= b <= 0x8F or b in (0xDE, 0xDF)


def _entries(frame):
    """Where each entry of the map `frame` holds lies: (key start, value start, value end).

    `Unpacker.skip` steps over a value without building it, but takes an ext 32 of length
    2^32 - 1 for 5 bytes (msgpack 1.x): every span found is then unpacked, or checked with
    `_whole`, so a frame holding one is refused all the same.
    """
    up = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(frame))
    up.feed(frame)
    try:
        entries = []
        for _ in range(up.read_map_header()):
            key = up.tell()
            up.skip()
            value = up.tell()
            up.skip()
            entries.append((key, value, up.tell()))
    except Exception as e:  # truncated, not MessagePack, nested too deep
        raise DecodeError(f"not a MessagePack value ({e!r})") from None
    if up.tell() != len(frame):
        raise DecodeError(f"{len(frame) - up.tell()} bytes after the message")
    return entries


def _key(frame, start, end):
    """The text of a str key between `start` and `end`; None for any other key (ignored, §5.3)."""
    m = frame[start]
    header = 1 if 0xA0 <= m <= 0xBF else {0xD9: 2, 0xDA: 3, 0xDB: 5}.get(m)
    if header is None:
        return None
    try:
        return frame[start + header:end].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _refuse_repeats(repeated, fields, what):
    """Refuse the first of `fields` among the names given again (in the map's order)."""
    for name in repeated:
        if name in fields:
            raise DecodeError(f"{what} has field `{name}` twice")


def _whole(frame, span):
    """Check that `span` holds exactly one complete value, whatever it holds: with raw bytes
    for str, tuples for arrays and maps, and extension values left as they are, nothing in
    it can fail but its structure (and msgpack's depth limit)."""
    start, end = span
    try:
        msgpack.unpackb(memoryview(frame)[start:end], raw=True, strict_map_key=False, use_list=False,
                        object_pairs_hook=tuple, ext_hook=_any_ext)
    except Exception as e:
        raise DecodeError(f"not a MessagePack value ({e!r})") from None


def _any_ext(code, data):
    return None


def _unpack(frame, span, hook=None):
    start, end = span
    try:
        return msgpack.unpackb(memoryview(frame)[start:end], raw=False, strict_map_key=False,
                               object_pairs_hook=hook)
    except Exception as e:  # invalid UTF-8 in a str, a key that cannot be a dict key
        raise DecodeError(f"not a MessagePack value ({e!r})") from None


class _Repeats(dict):
    """A map of the protocol that gave a key twice: the keys repeated, in the map's order."""
    repeated = ()


def _pairs(pairs):
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    seen, repeated = set(), []
    for k, _ in pairs:
        if k in seen:
            repeated.append(k)
        seen.add(k)
    d = _Repeats(d)
    d.repeated = repeated
    return d


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
        if kind == "strs":
            if not isinstance(x, list):
                raise DecodeError(f"{wrong} an array, found {_kind(x)}")
            _hold_strings(name, x)
        if kind in ("strmap", "counts"):
            want = "a map of strings" if kind == "strmap" else "a map of counts"
            if not isinstance(x, dict):
                raise DecodeError(f"{wrong} {want}, found {_kind(x)}")
            _hold_strings(name, list(x))
            if isinstance(x, _Repeats):
                raise DecodeError(f"field `{name}` of {what} has key `{x.repeated[0]}` twice")
            if kind == "strmap":
                _hold_strings(name, list(x.values()))
            bad = [n for n in x.values() if not (_is_int(n) and 0 <= n < 1 << 64)] if kind == "counts" else []
            if bad:
                raise DecodeError(f"{wrong} {want}, found {_kind(bad[0])}")
        if kind == "uints":
            if not isinstance(x, list):
                raise DecodeError(f"{wrong} an array of counts, found {_kind(x)}")
            bad = [n for n in x if not (_is_int(n) and 0 <= n < 1 << 64)]
            if bad:
                raise DecodeError(f"{wrong} an array of counts, found {_kind(bad[0])}")
        if kind == "countmaps":
            want = "a map of maps of counts"
            if not isinstance(x, dict):
                raise DecodeError(f"{wrong} {want}, found {_kind(x)}")
            _hold_strings(name, list(x))
            if isinstance(x, _Repeats):
                raise DecodeError(f"field `{name}` of {what} has key `{x.repeated[0]}` twice")
            for counts in x.values():
                if not isinstance(counts, dict):
                    raise DecodeError(f"{wrong} {want}, found {_kind(counts)}")
                _hold_strings(name, list(counts))
                if isinstance(counts, _Repeats):
                    raise DecodeError(f"field `{name}` of {what} has key `{counts.repeated[0]}` twice")
                bad = [n for n in counts.values() if not (_is_int(n) and 0 <= n < 1 << 64)]
                if bad:
                    raise DecodeError(f"{wrong} {want}, found {_kind(bad[0])}")
        if kind in ("records", "inputs", "outputs", "ports"):
            if not isinstance(x, list):
                raise DecodeError(f"{wrong} an array, found {_kind(x)}")
            for i, e in enumerate(x):
                _check_entry(e, kind, i)


def _hold_strings(name, xs):
    for e in xs:
        if not isinstance(e, str):
            raise DecodeError(f"`{name}` must hold strings, found {_kind(e)}")


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
    if isinstance(e, _Repeats):
        known = {n for n, _ in _FIELDS[what] + (_FIELDS["wire pub input"] if kind == "inputs" else [])}
        repeated = [k for k in e.repeated if k in known]
        if repeated:
            raise DecodeError(f"{what} has field `{repeated[0]}` twice")
    _check(e, what, what)
    if kind == "inputs" and e.get("pattern") not in (None, "push", "pub"):
        raise DecodeError(f"wire input has an unknown pattern `{e['pattern']}`")
    if kind == "inputs" and e.get("pattern") == "pub":
        _check(e, "wire pub input", what)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)  # bool is an int in Python


def _kind(x):
    """A value's type in words, as in the Rust messages."""
    for types, name in ((type(None), "nil"), (bool, "a boolean"), (int, "an integer"), (float, "a float"),
                        (str, "a string"), (bytes, "binary data"), ((list, tuple), "an array"), (dict, "a map")):
        if isinstance(x, types):
            return name
    return "an extension value"
