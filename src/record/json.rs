//! JSON text straight to a record's MessagePack bytes, with no tree in between: `serde_json`
//! parses (strings without escapes are borrowed from the input) and each value is written as
//! it is read. This is what `lines` with `format = "jsonl"` runs per line, so it is the
//! source's whole cost; the result is byte for byte what [`Record::from_json`] followed by
//! [`write_record`](crate::wire::write_record) gives (the smallest encodings, keys in order).
//!
//! A line this cannot write the same way (a repeated key, which a JSON object collapses to
//! its last value) or that is not a JSON object is left to the slow path, which also gives
//! the error message.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::Record;

/// Append the record for the JSON object `text` to `out`; on error `out` is as it was.
pub fn json_to_record_bytes(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    let fast = text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') && {
        let mut de = serde_json::Deserializer::from_slice(text);
        Transcode(out).deserialize(&mut de).and_then(|()| de.end()).is_ok()
    };
    if fast {
        return Ok(());
    }
    out.truncate(start);
    let json: serde_json::Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    crate::wire::write_record(out, &Record::from_json(json)?);
    Ok(())
}

/// Writes one JSON value as MessagePack to the buffer as it is parsed.
struct Transcode<'o>(&'o mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

const WRITE: &str = "writing to a Vec cannot fail";

/// Objects with more keys than this are left to the slow path: the check for repeated keys
/// here compares each key with the ones before it.
const MAX_KEYS: usize = 64;

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

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.push(0xc0);
        Ok(())
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.0.push(if b { 0xc3 } else { 0xc2 });
        Ok(())
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        rmp::encode::write_uint(self.0, n).expect(WRITE);
        Ok(())
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        // As `rmpv` writes an `i64` value: non-negative ones as unsigned.
        if n >= 0 {
            rmp::encode::write_uint(self.0, n as u64).expect(WRITE);
        } else {
            rmp::encode::write_sint(self.0, n).expect(WRITE);
        }
        Ok(())
    }

    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        rmp::encode::write_f64(self.0, n).expect(WRITE);
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        rmp::encode::write_str(self.0, s).expect(WRITE);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.0.len();
        self.0.push(0x90);
        let mut n = 0;
        while seq.next_element_seed(Transcode(self.0))?.is_some() {
            n += 1;
        }
        patch_header(self.0, at, n, false);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.0.len();
        self.0.push(0x80);
        // Where each key's encoding starts and ends, to notice a repeated one: the first few
        // on the stack, as most records have a few fields.
        let mut first = [(0usize, 0usize); 16];
        let mut more: Vec<(usize, usize)> = Vec::new();
        let mut n = 0;
        loop {
            let key_start = self.0.len();
            if map.next_key_seed(Transcode(self.0))?.is_none() {
                break;
            }
            // A very wide object goes to the slow path, which is linear (this check is not).
            if n >= MAX_KEYS {
                return Err(de::Error::custom("many keys"));
            }
            let key = &self.0[key_start..];
            let seen = first[..n.min(16)].iter().chain(&more);
            if seen.clone().any(|&(s, e)| &self.0[s..e] == key) {
                return Err(de::Error::custom("repeated key"));
            }
            let span = (key_start, self.0.len());
            match first.get_mut(n) {
                Some(slot) => *slot = span,
                None => more.push(span),
            }
            n += 1;
            map.next_value_seed(Transcode(self.0))?;
        }
        patch_header(self.0, at, n, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(text: &str) -> Result<Vec<u8>, String> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let mut out = Vec::new();
        crate::wire::write_record(&mut out, &Record::from_json(json)?);
        Ok(out)
    }

    fn fast(text: &str) -> Result<Vec<u8>, String> {
        let mut out = b"prefix".to_vec();
        let r = json_to_record_bytes(text.as_bytes(), &mut out);
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
    fn errors_are_those_of_the_record_path() {
        for text in ["[1,2]", "42", "{\"a\":", "{\"a\":1} x", "not json", "\"s\""] {
            assert_eq!(fast(text), slow(text), "{text}");
            assert!(fast(text).is_err());
        }
    }
}
