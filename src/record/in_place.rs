//! Records read in place: a record's MessagePack bytes, checked once when its frame arrives,
//! then read field by field without building a [`Record`]. The hot paths (`filter`, `tally`,
//! forwarding) use these, so a record that only passes through a node is neither decoded nor
//! encoded again: its bytes go out as they came in.

use std::borrow::Cow;

use super::raw::{check_record, decoded_size, header, skip, str_at, RawError, DECODED_PER_VALUE, MAX_DECODED_BYTES};
use super::text::json_text_within;
use super::{Record, Value};

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

    /// The record, decoded whatever memory that takes: for a frame's decoder, which must
    /// agree with the in-place reading on what is valid.
    pub(crate) fn decode_unbounded(&self) -> Result<Record, RawError> {
        let mut rd = self.bytes;
        let value = rmpv::decode::read_value(&mut rd).map_err(|e| RawError(e.to_string()))?;
        Record::from_value(value).map_err(RawError)
    }

    /// The record, decoded; refused if it would take more memory than
    /// [`MAX_DECODED_BYTES`] (or 4 times its size, if more).
    pub fn to_record(&self) -> Result<Record, RawError> {
        let limit = MAX_DECODED_BYTES.max(4 * self.bytes.len());
        // Only a large record can be over: most are let through without a second look.
        if self.bytes.len().saturating_mul(DECODED_PER_VALUE) > limit {
            let size = decoded_size(self.bytes)?;
            if size > limit {
                return Err(RawError(format!(
                    "this record of {} bytes would take {} MiB decoded, more than the {} MiB allowed",
                    self.bytes.len(),
                    size >> 20,
                    limit >> 20
                )));
            }
        }
        self.decode_unbounded()
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

    /// The text of the value, as [`text_of`](super::text_of) gives it: a str as it is (bad
    /// UTF-8 replaced), bin as lossy UTF-8, anything else as its JSON text, written from the
    /// bytes with no tree in between (see [`text`](super::text) for the one difference).
    pub fn text(&self) -> Cow<'a, str> {
        self.text_within(usize::MAX).unwrap_or_default()
    }

    /// [`RawValue::text`], refused when the value is not a str or bin and its JSON text would
    /// be longer than `limit` bytes: written up to there, and no further. A str or bin is
    /// never refused (its text is its bytes, read where they lie). The JSON text of a value
    /// may take up to 9 bytes per byte of it (5 for a nil: `null,`).
    pub fn text_within(&self, limit: usize) -> Result<Cow<'a, str>, RawError> {
        let bytes = match self.bytes.first() {
            Some(0xa0..=0xbf | 0xd9..=0xdb | 0xc4..=0xc6) => {
                header(self.bytes, 0).ok().and_then(|(payload, n, _)| self.bytes.get(payload..payload.checked_add(n)?))
            }
            _ => None,
        };
        if let Some(b) = bytes {
            return Ok(String::from_utf8_lossy(b));
        }
        match json_text_within(self.bytes, limit) {
            Some(Ok(text)) => Ok(Cow::Owned(text)),
            Some(Err(())) => Err(RawError(format!("its JSON text is longer than {limit} bytes"))),
            None => Ok(Cow::Borrowed("")),
        }
    }

    /// The value's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
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
    use crate::record::raw::MAX_DEPTH;

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
    fn a_record_too_big_decoded_is_refused_not_decoded() {
        // 4 million nils: 4 MB here, 320 MB as rmpv values.
        let n = 4_000_000u32;
        let mut bytes = b"\x81\xa1a\xdd".to_vec();
        bytes.extend(n.to_be_bytes());
        bytes.resize(bytes.len() + n as usize, 0xc0);
        let err = RawRecord::new(&bytes).unwrap().to_record().unwrap_err();
        assert!(err.0.contains("more than the 256 MiB allowed"), "{err}");
        // A large record of few values is decoded.
        let mut text = b"\x81\xa1a\xdb".to_vec();
        text.extend(8_000_000u32.to_be_bytes());
        text.resize(text.len() + 8_000_000, b'x');
        assert!(RawRecord::new(&text).unwrap().to_record().is_ok());
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
