//! Record bytes straight to JSON text, with no tree in between: what `sink` writes for each
//! record, and the text of a field that is not a string (`filter`, `tally`, `topic_field`,
//! templates). The bytes are read where they lie and written as they are read, so the memory
//! this takes is a stack frame per level of nesting (bounded by [`MAX_DEPTH`] in a checked
//! record), whatever the size of the value: a record of 60 million nils once took 6 GB as an
//! `rmpv` tree and then a `serde_json` one.
//!
//! The text is what [`value_to_json`](super::value_to_json) then `serde_json` give (the same
//! numbers, escapes, binary as an array of byte values, extension values as
//! `{"ext": type, "data": [..]}`), with one difference: a map is written entry by entry as it
//! is, so a map with a repeated key (or keys with the same text, such as `1` and `"1"`)
//! gives a JSON object with that name twice, where the tree kept one entry.

use std::borrow::Cow;
use std::io::{self, Write};

use super::raw::{self, MAX_DEPTH};

/// Write the JSON text of the MessagePack value at the start of `bytes` to `out`; returns
/// where the value ends.
pub fn write_json(bytes: &[u8], out: &mut dyn Write) -> io::Result<usize> {
    value(bytes, 0, out, 0)
}

/// The JSON text of the MessagePack value `bytes` start with; None if they are not one.
pub fn json_text(bytes: &[u8]) -> Option<String> {
    json_text_within(bytes, usize::MAX)?.ok()
}

/// [`json_text`], but Err once the text passes `limit` bytes, with no more than that written.
pub fn json_text_within(bytes: &[u8], limit: usize) -> Option<Result<String, ()>> {
    let mut out = Within { text: Vec::new(), limit };
    match write_json(bytes, &mut out) {
        Ok(_) => {
            let text = String::from_utf8(out.text);
            Some(Ok(text.expect("the writer writes UTF-8: escaped or replaced text, ASCII otherwise")))
        }
        Err(e) if e.kind() == io::ErrorKind::FileTooLarge => Some(Err(())),
        Err(_) => None,
    }
}

/// A text that refuses to grow past `limit` bytes.
struct Within {
    text: Vec<u8>,
    limit: usize,
}

impl Write for Within {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.limit - self.text.len() {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "the text is over its limit"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

fn slice(bytes: &[u8], from: usize, n: usize) -> io::Result<&[u8]> {
    from.checked_add(n).and_then(|end| bytes.get(from..end)).ok_or_else(|| invalid("truncated MessagePack"))
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

/// Write the value at `pos`, `depth` levels deep; returns its end.
fn value(bytes: &[u8], pos: usize, out: &mut dyn Write, depth: usize) -> io::Result<usize> {
    // A checked record is never deeper; this keeps the recursion bounded on any bytes.
    if depth > MAX_DEPTH + 2 {
        return Err(invalid(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    let marker = *bytes.get(pos).ok_or_else(|| invalid("truncated MessagePack"))?;
    let (payload, n, items) = raw::header(bytes, pos).map_err(|e| invalid(e.0))?;
    let data = slice(bytes, payload, n)?;
    let end = payload + n;
    match marker {
        0x00..=0x7f => write!(out, "{marker}")?,
        0xe0..=0xff => write!(out, "{}", marker as i8)?,
        0xc0 => out.write_all(b"null")?,
        0xc2 => out.write_all(b"false")?,
        0xc3 => out.write_all(b"true")?,
        0xcc..=0xcf => write!(out, "{}", be(data))?,
        0xd0 => write!(out, "{}", data[0] as i8)?,
        0xd1 => write!(out, "{}", i16::from_be_bytes([data[0], data[1]]))?,
        0xd2 => write!(out, "{}", i32::from_be_bytes(data.try_into().expect("4 bytes")))?,
        0xd3 => write!(out, "{}", i64::from_be_bytes(data.try_into().expect("8 bytes")))?,
        0xca => float(out, f64::from(f32::from_be_bytes(data.try_into().expect("4 bytes"))))?,
        0xcb => float(out, f64::from_be_bytes(data.try_into().expect("8 bytes")))?,
        0xa0..=0xbf | 0xd9..=0xdb => string(out, &String::from_utf8_lossy(data))?,
        0xc4..=0xc6 => byte_array(out, data)?,
        0xc7..=0xc9 | 0xd4..=0xd8 => {
            write!(out, "{{\"ext\":{},\"data\":", data[0] as i8)?;
            byte_array(out, &data[1..])?;
            out.write_all(b"}")?;
        }
        0x90..=0x9f | 0xdc | 0xdd => return array(bytes, payload, items, out, depth),
        0x80..=0x8f | 0xde | 0xdf => return map(bytes, payload, items / 2, out, depth),
        0xc1 => return Err(invalid("reserved MessagePack marker 0xc1")),
    }
    Ok(end)
}

/// As `serde_json` writes an `f64`: the shortest text that reads back the same, and null
/// for NaN and the infinities.
fn float(out: &mut dyn Write, f: f64) -> io::Result<()> {
    serde_json::to_writer(out, &f).map_err(io::Error::from)
}

fn string(out: &mut dyn Write, s: &str) -> io::Result<()> {
    serde_json::to_writer(out, s).map_err(io::Error::from)
}

fn byte_array(out: &mut dyn Write, data: &[u8]) -> io::Result<()> {
    out.write_all(b"[")?;
    for (i, b) in data.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(out, "{b}")?;
    }
    out.write_all(b"]")
}

fn array(bytes: &[u8], mut pos: usize, items: usize, out: &mut dyn Write, depth: usize) -> io::Result<usize> {
    out.write_all(b"[")?;
    for i in 0..items {
        if i > 0 {
            out.write_all(b",")?;
        }
        pos = value(bytes, pos, out, depth + 1)?;
    }
    out.write_all(b"]")?;
    Ok(pos)
}

fn map(bytes: &[u8], mut pos: usize, entries: usize, out: &mut dyn Write, depth: usize) -> io::Result<usize> {
    out.write_all(b"{")?;
    for i in 0..entries {
        if i > 0 {
            out.write_all(b",")?;
        }
        pos = key(bytes, pos, out, depth + 1)?;
        out.write_all(b":")?;
        pos = value(bytes, pos, out, depth + 1)?;
    }
    out.write_all(b"}")?;
    Ok(pos)
}

/// A map key as a JSON name: a str or bin as its (lossy) text, anything else as its JSON
/// text, escaped as it is written.
fn key(bytes: &[u8], pos: usize, out: &mut dyn Write, depth: usize) -> io::Result<usize> {
    if let Some(0xa0..=0xbf | 0xd9..=0xdb | 0xc4..=0xc6) = bytes.get(pos) {
        let (payload, n, _) = raw::header(bytes, pos).map_err(|e| invalid(e.0))?;
        let text: Cow<'_, str> = String::from_utf8_lossy(slice(bytes, payload, n)?);
        string(out, &text)?;
        return Ok(payload + n);
    }
    out.write_all(b"\"")?;
    let end = value(bytes, pos, &mut Escaping(out), depth)?;
    out.write_all(b"\"")?;
    Ok(end)
}

/// Escapes what is written through it as the inside of a JSON string, as `serde_json`
/// does: `"` and `\` with a backslash, control characters as `\n`, `\u001f`, ...
struct Escaping<'w>(&'w mut dyn Write);

impl Write for Escaping<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut run = 0;
        for (i, &b) in buf.iter().enumerate() {
            let escape: Cow<'_, [u8]> = match b {
                b'"' => Cow::Borrowed(b"\\\""),
                b'\\' => Cow::Borrowed(b"\\\\"),
                b'\n' => Cow::Borrowed(b"\\n"),
                b'\r' => Cow::Borrowed(b"\\r"),
                b'\t' => Cow::Borrowed(b"\\t"),
                0x08 => Cow::Borrowed(b"\\b"),
                0x0c => Cow::Borrowed(b"\\f"),
                0x00..=0x1f => Cow::Owned(format!("\\u{b:04x}").into_bytes()),
                _ => continue,
            };
            self.0.write_all(&buf[run..i])?;
            self.0.write_all(&escape)?;
            run = i + 1;
        }
        self.0.write_all(&buf[run..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{value_to_json, Value};

    fn bytes_of(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).unwrap();
        out
    }

    #[test]
    fn the_text_is_that_of_the_tree() {
        let s = Value::from;
        let values = [
            Value::Nil,
            Value::from(true),
            Value::from(-33),
            Value::from(u64::MAX),
            Value::from(i64::MIN),
            Value::F32(0.1),
            Value::F64(1e20),
            Value::F64(f64::NAN),
            Value::F64(-0.0),
            s("quote \" backslash \\ newline \n nul \0 \u{1f} é"),
            Value::Binary(vec![0, 255]),
            Value::Ext(-5, vec![1, 2, 3]),
            Value::Array(vec![Value::Nil, Value::Array(vec![]), Value::Map(vec![])]),
            Value::Map(vec![
                (Value::from(1), s("int key")),
                (Value::Binary(b"bin\nkey".to_vec()), Value::Nil),
                (Value::Map(vec![(s("in\"ner"), Value::Array(vec![s("x\\y")]))]), s("map key")),
                (Value::Nil, Value::Boolean(false)),
            ]),
        ];
        // A str that is not UTF-8 (which rmpv would write back as bin).
        let mut cases: Vec<Vec<u8>> = vec![b"\xa2a\xff".to_vec(), b"\x81\xa1\xff\x01".to_vec()];
        cases.extend(values.iter().map(bytes_of));
        for bytes in cases {
            let want = value_to_json(&rmpv::decode::read_value(&mut &bytes[..]).unwrap()).to_string();
            assert_eq!(json_text(&bytes).unwrap(), want, "{bytes:?}");
        }
    }

    #[test]
    fn a_text_stops_at_its_limit() {
        let nils = [vec![0xdc, 0x03, 0xe8], vec![0xc0; 1000]].concat();
        // `[null,null,...]`: 4 bytes a nil, 999 commas, 2 brackets.
        assert_eq!(json_text_within(&nils, 5000), Some(Err(())));
        assert_eq!(json_text_within(&nils, 5001).unwrap().unwrap().len(), 5001);
    }

    #[test]
    fn repeated_keys_are_written_as_they_are() {
        let v = Value::Map(vec![(Value::from("a"), Value::from(1)), (Value::from("a"), Value::from(2))]);
        assert_eq!(json_text(&bytes_of(&v)).unwrap(), r#"{"a":1,"a":2}"#);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        for bad in [&b""[..], b"\xc1", b"\x92\x01", b"\xcd\x01", b"\xd9\x05ab", b"\x81\xa1a"] {
            assert!(json_text(bad).is_none(), "{bad:?}");
        }
        let deep = [vec![0x91u8; MAX_DEPTH + 4], vec![0xc0]].concat();
        assert!(json_text(&deep).is_none());
    }
}
