//! JSON text straight to a record's MessagePack bytes, with no tree in between: `serde_json`
//! parses (strings without escapes are borrowed from the input) and each value is written as
//! it is read. This is what `lines` with `format = "jsonl"` runs per line, so it is the
//! source's whole cost; the result is byte for byte what [`Record::from_json`](super::Record)
//! followed by [`write_record`](crate::wire::write_record) gives (the smallest encodings, keys
//! in order, and of a name repeated in an object the last value, at the name's first place,
//! as a JSON object built entry by entry keeps it).
//!
//! No input takes a tree, nor memory out of proportion to the line: a line that is not an
//! object is only parsed (for the error message), a repeated name is
//! resolved in the bytes written, and writing stops once the record passes the size it is
//! allowed (`max_bytes`). What is kept besides the record is the start of each name in
//! objects of more than 16 names, 8 bytes a name. Nesting is bounded by `serde_json` (128
//! levels).

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::raw;

/// The error of a record over `max_bytes`, told apart from the parser's own.
const OVER: &str = "procnet: the record is over its size limit";

/// Append the record for the JSON object `text` to `out`, at most `max_bytes` of it; on
/// error `out` is as it was.
pub fn json_to_record_bytes(text: &[u8], out: &mut Vec<u8>, max_bytes: usize) -> Result<(), String> {
    let start = out.len();
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        let mut de = serde_json::Deserializer::from_slice(text);
        return Err(match Check.deserialize(&mut de).and_then(|()| de.end()) {
            Err(e) => format!("not JSON: {e}"),
            Ok(()) => format!("expected a JSON object, found {}", json_kind(first.copied())),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    let limit = start.saturating_add(max_bytes);
    let mut result = Transcode { out, limit }.deserialize(&mut de).and_then(|()| de.end());
    // Checked as values are written, and once more for the last header.
    if result.is_ok() && out.len() > limit {
        result = Err(de::Error::custom(OVER));
    }
    if let Err(e) = result {
        out.truncate(start);
        let e = e.to_string();
        return Err(match e.strip_prefix(OVER) {
            Some(_) => format!("the record would be larger than {max_bytes} bytes"),
            None => format!("not JSON: {e}"),
        });
    }
    Ok(())
}

/// The kind of the JSON value starting with `first`, for messages.
fn json_kind(first: Option<u8>) -> &'static str {
    match first {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Reads one JSON value and keeps nothing: the parser's own checks, in the order and with
/// the messages of a `serde_json::Value` (which `IgnoredAny` does not give: it skips values
/// with a scanner of its own).
struct Check;

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Check)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Check)?.is_some() {
            map.next_value_seed(Check)?;
        }
        Ok(())
    }
}

/// Writes one JSON value as MessagePack to the buffer as it is parsed, refusing to write
/// past `limit` (an offset in the buffer).
struct Transcode<'o> {
    out: &'o mut Vec<u8>,
    limit: usize,
}

impl Transcode<'_> {
    fn nested(&mut self) -> Transcode<'_> {
        Transcode { out: self.out, limit: self.limit }
    }

    fn within<E: de::Error>(&self) -> Result<(), E> {
        if self.out.len() > self.limit {
            return Err(E::custom(OVER));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

const WRITE: &str = "writing to a Vec cannot fail";

/// Replace the one-byte placeholder at `at` with the smallest header for `n` items.
fn patch_header(out: &mut Vec<u8>, at: usize, n: usize, map: bool) {
    let n32 = u32::try_from(n).expect("fewer than 2^32 items");
    if n < 16 {
        out[at] = if map { 0x80 } else { 0x90 } | n as u8;
        return;
    }
    let mut header = Vec::with_capacity(5);
    if map {
        rmp::encode::write_map_len(&mut header, n32).expect(WRITE);
    } else {
        rmp::encode::write_array_len(&mut header, n32).expect(WRITE);
    }
    out.splice(at..at + 1, header);
}

/// The bytes of the name (a str, as written here) starting at `at`.
fn name_at(out: &[u8], at: usize) -> &[u8] {
    let (payload, n, _) = raw::header(out, at).expect("a str written here");
    &out[payload..payload + n]
}

/// Where each name of an object lies: the first few on the stack, as most records have a
/// few fields, compared as they come (a name's encoding is its text's, written here with the
/// smallest header); past those, where every name starts, checked once at the end.
struct Names {
    few: [(usize, usize); 16],
    all: Vec<usize>,
    n: usize,
    repeated: bool,
}

impl Names {
    fn new() -> Names {
        Names { few: [(0, 0); 16], all: Vec::new(), n: 0, repeated: false }
    }

    /// Add the name written at `at`, just before the end of `out`.
    #[inline]
    fn push(&mut self, out: &[u8], at: usize) {
        if self.n < self.few.len() {
            let name = &out[at..];
            self.repeated |= self.few[..self.n].iter().any(|&(s, e)| &out[s..e] == name);
            self.few[self.n] = (at, out.len());
        } else {
            if self.all.is_empty() {
                self.all.extend(self.few.iter().map(|&(s, _)| s));
            }
            self.all.push(at);
        }
        self.n += 1;
    }

    /// Every start, in order.
    fn starts(self) -> Vec<usize> {
        if self.n <= self.few.len() {
            self.few[..self.n].iter().map(|&(s, _)| s).collect()
        } else {
            self.all
        }
    }
}

/// Where the entry whose name starts at `at` has its value, and where that ends.
fn value_of(out: &[u8], at: usize) -> (usize, usize) {
    let (payload, n, _) = raw::header(out, at).expect("a str written here");
    (payload + n, raw::value_end(out, payload + n).expect("a value written here"))
}

/// Find the names given more than once in the object whose body (its entries, their names
/// starting at `starts`, in order) runs from `body` to the end of `out`, and rewrite it as a
/// JSON object keeps it: each name once, at its first place, with its last value. Returns
/// the number of entries left. Sorting costs n log n time; the names' starts are sorted in
/// place, so what this keeps is 16 bytes per repeated name, and the rewritten object.
fn resolve_repeats(out: &mut Vec<u8>, body: usize, mut starts: Vec<usize>) -> usize {
    let n = starts.len();
    // By name, then by place: a run of equal names is one name's entries, in order.
    starts.sort_unstable_by(|&a, &b| name_at(out, a).cmp(name_at(out, b)).then(a.cmp(&b)));
    // For each repeated name, where its first and its last entries start.
    let mut last: Vec<(usize, usize)> = starts
        .chunk_by(|&a, &b| name_at(out, a) == name_at(out, b))
        .filter(|run| run.len() > 1)
        .map(|run| (run[0], run[run.len() - 1]))
        .collect();
    if last.is_empty() {
        return n;
    }
    // Keep the first entry of each name, back in the object's order.
    starts.dedup_by(|b, a| name_at(out, *a) == name_at(out, *b));
    starts.sort_unstable();
    last.sort_unstable();
    let mut rewritten = Vec::with_capacity(out.len() - body);
    let mut last = last.into_iter().peekable();
    for &at in &starts {
        let (value, end) = value_of(out, at);
        rewritten.extend_from_slice(&out[at..value]);
        let (from, to) = match last.next_if(|&(first, _)| first == at) {
            Some((_, final_)) => value_of(out, final_),
            None => (value, end),
        };
        rewritten.extend_from_slice(&out[from..to]);
    }
    out.truncate(body);
    out.extend_from_slice(&rewritten);
    starts.len()
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.push(0xc0);
        Ok(())
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.out.push(if b { 0xc3 } else { 0xc2 });
        Ok(())
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        rmp::encode::write_uint(self.out, n).expect(WRITE);
        Ok(())
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        // As `rmpv` writes an `i64` value: non-negative ones as unsigned.
        if n >= 0 {
            rmp::encode::write_uint(self.out, n as u64).expect(WRITE);
        } else {
            rmp::encode::write_sint(self.out, n).expect(WRITE);
        }
        Ok(())
    }

    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        rmp::encode::write_f64(self.out, n).expect(WRITE);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        rmp::encode::write_str(self.out, s).expect(WRITE);
        self.within()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let at = self.out.len();
        self.out.push(0x90);
        let mut n = 0;
        while seq.next_element_seed(self.nested())?.is_some() {
            n += 1;
            self.within()?;
        }
        patch_header(self.out, at, n, false);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let at = self.out.len();
        self.out.push(0x80);
        let mut names = Names::new();
        loop {
            let name = self.out.len();
            if map.next_key_seed(self.nested())?.is_none() {
                break;
            }
            names.push(self.out, name);
            map.next_value_seed(self.nested())?;
            self.within()?;
        }
        // Past a few names, repeats are looked for once, at the end.
        let n = match names.repeated || names.n > names.few.len() {
            true => resolve_repeats(self.out, at + 1, names.starts()),
            false => names.n,
        };
        patch_header(self.out, at, n, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    fn slow(text: &str) -> Result<Vec<u8>, String> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let mut out = Vec::new();
        crate::wire::write_record(&mut out, &Record::from_json(json)?);
        Ok(out)
    }

    fn fast(text: &str) -> Result<Vec<u8>, String> {
        let mut out = b"prefix".to_vec();
        let r = json_to_record_bytes(text.as_bytes(), &mut out, usize::MAX);
        assert!(out.starts_with(b"prefix"));
        r.map(|()| out[6..].to_vec())
    }

    #[test]
    fn same_bytes_as_the_record_path() {
        let many: String = (0..40).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(",");
        let list: String = (0..70_000).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        for text in [
            r#"{"id":1,"url":"http://a.test/","body":"Python \"quoted\" \u00e9 \ud83d\ude00"}"#,
            r#" {"n":-1,"m":-200,"big":18446744073709551615,"neg":-9223372036854775808,"f":1.5,"e":1e400} "#,
            r#"{"a":[1,[2,[3]],{"x":null}],"t":true,"u":false,"z":{}, "y":[]}"#,
            r#"{"huge":100000000000000000000000000,"s":""}"#,
            &format!("{{{many}}}"),
            &format!("{{{}}}", (0..100).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(",")),
            &format!("{{\"list\":[{list}]}}"),
            r#"{"nested":{"a":1,"a":2}}"#,
            r#"{"a":1,"b":2,"a":3}"#,
            r#"{"a":{"x":1,"x":[2]},"b":2,"a":{"y":3,"y":{}},"a":[4]}"#,
            &format!("{{{many},\"k3\":\"again\",\"k39\":[1],\"k3\":{{\"k3\":1,\"k3\":2}}}}"),
            &format!("{{\"wide\":{{{many},{many}}}}}"),
            "{}",
        ] {
            assert_eq!(fast(text), slow(text), "{text}");
        }
    }

    #[test]
    fn nesting_stops_within_what_receivers_accept() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        assert!(fast(&deep).unwrap_err().contains("recursion limit"));
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        let bytes = fast(&ok).unwrap();
        assert!(crate::record::RawRecord::new(&bytes).is_ok());
    }

    #[test]
    fn a_record_over_its_limit_is_refused_while_written() {
        let text = format!("{{\"list\":[{}]}}", vec!["1"; 1000].join(","));
        let mut out = b"prefix".to_vec();
        let err = json_to_record_bytes(text.as_bytes(), &mut out, 100).unwrap_err();
        assert_eq!(err, "the record would be larger than 100 bytes");
        assert_eq!(out, b"prefix");
        assert!(json_to_record_bytes(text.as_bytes(), &mut out, 1010).is_ok());
    }

    #[test]
    fn errors_are_those_of_the_record_path() {
        for text in ["[1,2]", "42", "{\"a\":", "{\"a\":1} x", "not json", "\"s\"", "null", "true", " ", "[1,", "-"] {
            assert_eq!(fast(text), slow(text), "{text}");
            assert!(fast(text).is_err());
        }
    }
}
