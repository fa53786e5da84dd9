//! MessagePack read where it lies: the header of a value, the end of a value, and records
//! checked (complete, string keys, no reserved marker, nested at most [`MAX_DEPTH`] deep),
//! with no tree built and no recursion. What the records read in place
//! ([`RawRecord`](super::RawRecord)), their JSON text ([`text`](super::text)), the JSON
//! reader ([`json`](super::json)) and the wire decoder stand on; it imports none of them.

use super::Value;

/// Containers (arrays, maps) may nest this deep inside a record, below the record's own map
/// (so a record may have `MAX_DEPTH + 1` levels); a deeper record is dropped and counted (the
/// rest of its frame is kept). Senders keep to 128 levels (docs/protocol.md §7); the decoder
/// behind [`RawRecord::to_record`](super::RawRecord::to_record) and the JSON writer of [`text`](super::text) recurse once
/// per level, so this also bounds their stack use.
pub const MAX_DEPTH: usize = 256;

/// Decoding a record ([`RawRecord::to_record`](super::RawRecord::to_record)) takes memory per value, whatever the value's
/// size on the wire: a nil is one byte, and 40 bytes once decoded (twice that while an array
/// grows). A record that would take more than this, or 4 times its own size if that is more,
/// is refused instead: see docs/protocol.md §9.
pub const MAX_DECODED_BYTES: usize = 256 << 20;

/// What one value may take decoded, at most: an `rmpv::Value`, twice while its container
/// grows (the payload of a str, bin or ext is counted apart).
pub(super) const DECODED_PER_VALUE: usize = 2 * std::mem::size_of::<Value>();

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawError(pub String);

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn truncated() -> RawError {
    RawError("truncated MessagePack".into())
}

fn be_len(buf: &[u8], at: usize, n: usize) -> Result<usize, RawError> {
    let b = buf.get(at..at + n).ok_or_else(truncated)?;
    Ok(b.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x)))
}

/// The header of the value at `pos`: (offset of its payload, payload bytes, items inside;
/// 2 items per map entry). The markers records are mostly made of come first.
#[inline(always)]
pub(crate) fn header(buf: &[u8], pos: usize) -> Result<(usize, usize, usize), RawError> {
    let marker = *buf.get(pos).ok_or_else(truncated)?;
    // A str, bin or ext: a big-endian length of `n` bytes, then the payload (plus `extra`,
    // an ext's type byte).
    let sized = |n: usize, extra: usize| Ok((pos + 1 + n, be_len(buf, pos + 1, n)? + extra, 0));
    // An array or map: a big-endian count of `n` bytes, then `per` items each.
    let items = |n: usize, per: usize| Ok((pos + 1 + n, 0, be_len(buf, pos + 1, n)? * per));
    let fixed = |n: usize| Ok((pos + 1, n, 0));
    match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => fixed(0),
        0xa0..=0xbf => fixed(usize::from(marker & 0x1f)),
        0xd9 | 0xc4 => sized(1, 0),
        0xda | 0xc5 => sized(2, 0),
        0xdb | 0xc6 => sized(4, 0),
        0x80..=0x8f => Ok((pos + 1, 0, usize::from(marker & 0x0f) * 2)),
        0x90..=0x9f => Ok((pos + 1, 0, usize::from(marker & 0x0f))),
        0xc1 => Err(RawError("reserved MessagePack marker 0xc1".into())),
        0xc7 => sized(1, 1),
        0xc8 => sized(2, 1),
        0xc9 => sized(4, 1),
        0xcc | 0xd0 => fixed(1),
        0xcd | 0xd1 | 0xd4 => fixed(2),
        0xd5 => fixed(3),
        0xca | 0xce | 0xd2 => fixed(4),
        0xd6 => fixed(5),
        0xcb | 0xcf | 0xd3 => fixed(8),
        0xd7 => fixed(9),
        0xd8 => fixed(17),
        0xdc => items(2, 1),
        0xdd => items(4, 1),
        0xde => items(2, 2),
        0xdf => items(4, 2),
    }
}

/// The end of the value starting at `pos`, checking that it is complete and no deeper than
/// [`MAX_DEPTH`]. Iterative: a hostile frame cannot exhaust the stack.
#[inline]
pub fn skip(buf: &[u8], pos: usize) -> Result<usize, RawError> {
    // Most values are scalars or strings: no levels to keep.
    let (payload, n, items) = header(buf, pos)?;
    if items == 0 {
        return payload.checked_add(n).filter(|&end| end <= buf.len()).ok_or_else(truncated);
    }
    skip_nested(buf, pos)
}

/// The end of the value starting at `pos`, at any depth: complete, with no reserved marker.
/// It counts the items still to read instead of keeping a level per container, so it needs
/// no memory and no stack however deep a hostile frame nests.
pub fn value_end(buf: &[u8], pos: usize) -> Result<usize, RawError> {
    let mut pos = pos;
    let mut left = 1usize;
    while left > 0 {
        let (payload, n, items) = header(buf, pos)?;
        pos = payload.checked_add(n).filter(|&end| end <= buf.len()).ok_or_else(truncated)?;
        // Every item takes a byte at least: a count beyond the bytes left is a lie, and
        // refusing it keeps `left` within the frame's size.
        left = (left - 1).checked_add(items).filter(|&l| l <= buf.len() - pos).ok_or_else(truncated)?;
    }
    Ok(pos)
}

fn skip_nested(buf: &[u8], pos: usize) -> Result<usize, RawError> {
    let mut pos = pos;
    // Items still to read at each open level, on the stack.
    let mut open = [0usize; MAX_DEPTH];
    let mut depth = 0;
    let mut left = 1usize;
    loop {
        while left == 0 {
            if depth == 0 {
                return Ok(pos);
            }
            depth -= 1;
            left = open[depth];
        }
        let (payload, n, items) = header(buf, pos)?;
        left -= 1;
        pos = payload.checked_add(n).filter(|&end| end <= buf.len()).ok_or_else(truncated)?;
        if items > 0 {
            if items > buf.len() - pos {
                return Err(truncated());
            }
            if depth >= MAX_DEPTH {
                return Err(RawError(format!("nested deeper than {MAX_DEPTH} levels")));
            }
            open[depth] = left;
            depth += 1;
            left = items;
        }
    }
}

/// The text of the str at `pos`, and the end of it; None if it is not a str.
#[inline]
pub(super) fn str_at(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, RawError> {
    let marker = *buf.get(pos).ok_or_else(truncated)?;
    if !matches!(marker, 0xa0..=0xbf | 0xd9..=0xdb) {
        return Ok(None);
    }
    let (payload, n, _) = header(buf, pos)?;
    let end = payload.checked_add(n).filter(|&end| end <= buf.len()).ok_or_else(truncated)?;
    Ok(Some((&buf[payload..end], end)))
}

/// Check the record (a map with str keys, valid UTF-8) starting at `pos`; returns its end.
#[inline]
pub fn check_record(buf: &[u8], pos: usize) -> Result<usize, RawError> {
    check_keys(buf, pos, skip)
}

/// How [`check_record_apart`] found a record: its end, and whether it nests deeper than
/// [`MAX_DEPTH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCheck {
    /// Just past the record.
    pub end: usize,
    /// Why the record is too deep, if it is: a valid record, which receivers drop alone.
    pub too_deep: Option<RawError>,
}

/// Check the record at `pos` as [`check_record`] does, but tell a record nested deeper than
/// [`MAX_DEPTH`] (valid, dropped alone) from bytes that are not a record (which make their
/// frame invalid): every key is checked, whatever the depth of the values before it.
pub fn check_record_apart(buf: &[u8], pos: usize) -> Result<RecordCheck, RawError> {
    let mut too_deep = None;
    let end = check_keys(buf, pos, |buf, at| {
        skip(buf, at).or_else(|e| {
            // Complete, so the value was only too deep.
            let end = value_end(buf, at)?;
            too_deep.get_or_insert(e);
            Ok(end)
        })
    })?;
    Ok(RecordCheck { end, too_deep })
}

/// Check that `pos` starts a map with str keys (valid UTF-8), each value read by `value`
/// (which returns the value's end); returns the map's end.
#[inline(always)]
fn check_keys(
    buf: &[u8],
    pos: usize,
    mut value: impl FnMut(&[u8], usize) -> Result<usize, RawError>,
) -> Result<usize, RawError> {
    let (payload, _, items) = match buf.get(pos) {
        Some(0x80..=0x8f | 0xde | 0xdf) => header(buf, pos)?,
        Some(&m) => return Err(RawError(format!("a record must be a map, found {}", kind_of_marker(m)))),
        None => return Err(truncated()),
    };
    let mut pos = payload;
    for _ in 0..items / 2 {
        let Some((key, end)) = str_at(buf, pos)? else {
            let m = buf[pos];
            return Err(RawError(format!("record keys must be strings, found {}", kind_of_marker(m))));
        };
        if !key.is_ascii() && std::str::from_utf8(key).is_err() {
            return Err(RawError("a record key is not valid UTF-8".into()));
        }
        pos = value(buf, end)?;
    }
    Ok(pos)
}

/// A short name of the type of the value whose marker is `m`, for messages (as
/// [`kind_of`](super::kind_of) names a decoded one).
pub fn kind_of_marker(m: u8) -> &'static str {
    match m {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => "an integer",
        0x80..=0x8f | 0xde | 0xdf => "a map",
        0x90..=0x9f | 0xdc | 0xdd => "an array",
        0xa0..=0xbf | 0xd9..=0xdb => "a string",
        0xc0 => "nil",
        0xc2 | 0xc3 => "a boolean",
        0xc4..=0xc6 => "binary data",
        0xca | 0xcb => "a float",
        _ => "an extension value",
    }
}

/// The most text a node builds from a field that is not a string (to match, count, or fill a
/// template): its `max_message_bytes`, unlimited without one. See
/// [`RawValue::text_within`](super::RawValue::text_within).
pub fn text_limit(max_message_bytes: Option<u64>) -> usize {
    max_message_bytes.map_or(usize::MAX, |b| usize::try_from(b).unwrap_or(usize::MAX))
}

/// An upper bound of the memory the value(s) in `buf` take decoded: every value counted at
/// [`DECODED_PER_VALUE`], plus the payload of strings, binaries and extensions.
pub(super) fn decoded_size(buf: &[u8]) -> Result<usize, RawError> {
    let (mut pos, mut size) = (0, 0usize);
    while pos < buf.len() {
        let (payload, n, _) = header(buf, pos)?;
        let marker = buf[pos];
        let sized = matches!(marker, 0xa0..=0xbf | 0xc4..=0xc9 | 0xd9..=0xdb);
        size = size.saturating_add(DECODED_PER_VALUE + if sized { n } else { 0 });
        // Step into containers (their items follow the header), over everything else.
        pos = if matches!(marker, 0x80..=0x9f | 0xdc..=0xdf) { payload } else { payload + n };
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_end_reads_any_depth_with_no_stack_and_refuses_lies() {
        let deep = [vec![0x91u8; 1_000_000], vec![0xc0]].concat();
        assert_eq!(value_end(&deep, 0), Ok(deep.len()));
        assert!(value_end(&deep[..deep.len() - 1], 0).is_err());
        // An array of 2^32 - 1 elements in 5 bytes, a str longer than the frame.
        assert!(value_end(b"\xdd\xff\xff\xff\xff\xc0", 0).is_err());
        assert!(value_end(b"\xdb\x00\x00\x00\x09abc", 0).is_err());
        assert!(value_end(b"\x92\xc0\xc1", 0).unwrap_err().0.contains("0xc1"));
    }
}
