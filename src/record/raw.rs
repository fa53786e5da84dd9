//! Records read in place: a record's MessagePack bytes, checked once when its frame arrives,
//! then read field by field without building a [`Record`](super::Record). The hot paths
//! (`filter`, `tally`, forwarding) use these, so a record that only passes through a node is
//! neither decoded nor encoded again: its bytes go out as they came in.

use std::borrow::Cow;

use super::{text_of, Record, Value};

/// Containers (arrays, maps) may nest this deep inside a record; a deeper record is dropped
/// and counted (the rest of its frame is kept). The decoder behind
/// [`RawRecord::to_record`] recurses once per level, so this also bounds its stack use.
pub const MAX_DEPTH: usize = 256;

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
fn header(buf: &[u8], pos: usize) -> Result<(usize, usize, usize), RawError> {
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
fn str_at(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, RawError> {
    let marker = *buf.get(pos).ok_or_else(truncated)?;
    if !matches!(marker, 0xa0..=0xbf | 0xd9..=0xdb) {
        return Ok(None);
    }
    let (payload, n, _) = header(buf, pos)?;
    let end = payload.checked_add(n).filter(|&end| end <= buf.len()).ok_or_else(truncated)?;
    Ok(Some((&buf[payload..end], end)))
}

/// Check the record (a map with str keys, valid UTF-8) starting at `pos`; returns its end.
pub fn check_record(buf: &[u8], pos: usize) -> Result<usize, RawError> {
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
        pos = skip(buf, end)?;
    }
    Ok(pos)
}

fn kind_of_marker(m: u8) -> &'static str {
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

/// One record's bytes (a MessagePack map with str keys), checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    bytes: &'a [u8],
}

impl<'a> RawRecord<'a> {
    /// Check that `bytes` hold exactly one record.
    pub fn new(bytes: &'a [u8]) -> Result<RawRecord<'a>, RawError> {
        let end = check_record(bytes, 0)?;
        if end != bytes.len() {
            return Err(RawError(format!("{} bytes after the record", bytes.len() - end)));
        }
        Ok(RawRecord { bytes })
    }

    /// Bytes already checked with [`check_record`].
    pub(crate) fn checked(bytes: &'a [u8]) -> RawRecord<'a> {
        RawRecord { bytes }
    }

    /// The record's encoding, to send on as it is.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The value of field `name` (the first, if the key repeats).
    pub fn get(&self, name: &str) -> Option<RawValue<'a>> {
        let buf = self.bytes;
        let (mut pos, _, items) = header(buf, 0).ok()?;
        for _ in 0..items / 2 {
            let (key, end) = str_at(buf, pos).ok()??;
            let value_end = skip(buf, end).ok()?;
            if key == name.as_bytes() {
                return Some(RawValue { bytes: &buf[end..value_end] });
            }
            pos = value_end;
        }
        None
    }

    /// The record, decoded.
    pub fn to_record(&self) -> Result<Record, RawError> {
        let mut rd = self.bytes;
        let value = rmpv::decode::read_value(&mut rd).map_err(|e| RawError(e.to_string()))?;
        Record::from_value(value).map_err(RawError)
    }
}

/// One value inside a record, as its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawValue<'a> {
    bytes: &'a [u8],
}

impl<'a> RawValue<'a> {
    /// Whether the value is nil.
    pub fn is_nil(&self) -> bool {
        self.bytes.first() == Some(&0xc0)
    }

    /// The bytes of a str value (not checked to be UTF-8), or None for another type.
    pub fn str_bytes(&self) -> Option<&'a [u8]> {
        str_at(self.bytes, 0).ok().flatten().map(|(s, _)| s)
    }

    /// The text of the value, as [`text_of`] gives it: a str as it is (bad UTF-8 replaced),
    /// anything else as JSON.
    pub fn text(&self) -> Cow<'a, str> {
        if let Some(s) = self.str_bytes() {
            return match std::str::from_utf8(s) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(s),
            };
        }
        match self.to_value() {
            Some(v) => Cow::Owned(text_of(&v).into_owned()),
            None => Cow::Borrowed(""),
        }
    }

    /// The value, decoded.
    pub fn to_value(&self) -> Option<Value> {
        let mut rd = self.bytes;
        rmpv::decode::read_value(&mut rd).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(r: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        crate::wire::write_record(&mut out, r);
        out
    }

    #[test]
    fn fields_read_in_place_match_the_decoded_record() {
        let mut r = Record::new();
        r.insert("id", 7);
        r.insert("nested", Value::Map(vec![(Value::from(1), Value::Array(vec![Value::Nil, Value::from("x")]))]));
        r.insert("url", "http://a.test/1");
        r.insert("bin", Value::Binary(vec![1, 2, 3]));
        r.insert("none", Value::Nil);
        r.insert("f", 1.5);
        r.insert("ext", Value::Ext(5, vec![9; 20]));
        let bytes = encode(&r);
        let raw = RawRecord::new(&bytes).unwrap();
        assert_eq!(raw.to_record().unwrap(), r);
        assert_eq!(raw.get("url").unwrap().text(), "http://a.test/1");
        assert_eq!(raw.get("url").unwrap().str_bytes(), Some(&b"http://a.test/1"[..]));
        assert_eq!(raw.get("id").unwrap().text(), "7");
        assert_eq!(raw.get("id").unwrap().str_bytes(), None);
        assert!(raw.get("none").unwrap().is_nil());
        assert_eq!(raw.get("f").unwrap().to_value(), Some(Value::from(1.5)));
        assert_eq!(raw.get("ext").unwrap().to_value(), Some(Value::Ext(5, vec![9; 20])));
        assert!(raw.get("missing").is_none());
    }

    #[test]
    fn long_strings_and_big_containers_are_skipped_whole() {
        let mut r = Record::new();
        r.insert("body", "p".repeat(70_000));
        r.insert("list", Value::Array((0..70_000).map(Value::from).collect()));
        r.insert("after", true);
        let bytes = encode(&r);
        let raw = RawRecord::new(&bytes).unwrap();
        assert_eq!(raw.get("after").unwrap().to_value(), Some(Value::Boolean(true)));
        assert_eq!(raw.get("body").unwrap().str_bytes().unwrap().len(), 70_000);
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "truncated"),
            (b"\x01", "must be a map"),
            (b"\x81\x01\x02", "keys must be strings"),
            (b"\x81\xa1a", "truncated"),
            (b"\x81\xa1a\xc1", "0xc1"),
            (b"\x81\xa1\xff\x01", "UTF-8"),
            (b"\x81\xa1a\xdb\xff\xff\xff\xff", "truncated"),
            (b"\x81\xa1a\xdd\xff\xff\xff\xff", "truncated"),
            (b"\x80\x00", "after the record"),
        ];
        for (bytes, want) in cases {
            let err = RawRecord::new(bytes).unwrap_err();
            assert!(err.0.contains(want), "{bytes:?}: {err}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let mut deep = b"\x81\xa1a".to_vec();
        deep.extend(std::iter::repeat_n(0x91u8, MAX_DEPTH + 1));
        deep.push(0xc0);
        assert!(RawRecord::new(&deep).unwrap_err().0.contains("nested deeper"));
        let mut ok = b"\x81\xa1a".to_vec();
        ok.extend(std::iter::repeat_n(0x91u8, MAX_DEPTH));
        ok.push(0xc0);
        assert!(RawRecord::new(&ok).unwrap().to_record().is_ok());
    }
}
