//! Fuzzing the JSON transcoder of `lines` (`record::json_to_record_bytes`: a JSON line to a
//! record's MessagePack bytes, with no tree) against the reference path, `serde_json` to a
//! `Value`, then `Record::from_json` and `write_record`: on generated lines (objects wide and
//! narrow, with repeated names, escapes, numbers of every form, whitespace) and those lines
//! damaged byte by byte, the transcoder gives the same bytes or the same error, never panics,
//! allocates in proportion to the line, and stops at its size limit. Back the other way,
//! `record::text` gives a JSON text that reads as the line did.
//!
//! `PROCNET_FUZZ_CASES` and `PROCNET_FUZZ_SEED` set the number of inputs and the seed (see
//! `tests/util/fuzz.rs`); `make fuzz` runs many. A crash found here becomes a named regression
//! test below.

use std::collections::HashSet;
use std::fmt;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::util::fuzz::{self, fail, mutate, mutation, peak_during};
use procnet::record::{json_to_record_bytes, text, Record};

/// Inputs per target in a `cargo test` run.
const CASES: u32 = 1000;

// ---- Lines -----------------------------------------------------------------------------------

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just(""), 1 => Just(" "), 1 => Just("\t\n "), 1 => Just("\r")]
}

/// A JSON number, in any of its forms, some out of what a u64, an i64 or an f64 holds.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (-200i64..200).prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        prop::sample::select(vec![
            "-0",
            "0.0",
            "1E5",
            "1e-7",
            "2.5e+3",
            "1e400",
            "-1e400",
            "123456789012345678901234567890",
            "-9223372036854775809",
            "18446744073709551616",
            "0.1",
            "-0.0",
        ])
        .prop_map(str::to_string),
    ]
}

/// A JSON string, with escapes (some of them invalid: a lone surrogate).
fn string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => "[a-z0-9 \u{e9}\u{2713}]{1,4}",
        1 => prop::sample::select(vec![
            "\\\"", "\\\\", "\\/", "\\n", "\\t", "\\u00e9", "\\u0000", "\\ud83d\\ude00", "\\ud800", "\\u001f",
        ]).prop_map(str::to_string),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// A name: from a small set, so that names repeat (within 16, and past 16 in wide objects).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["\"id\"", "\"url\"", "\"a\"", "\"\"", "\"\\u0061\"", "\"b\""]).prop_map(str::to_string),
        2 => (0u32..40).prop_map(|i| format!("\"k{i}\"")),
        1 => string(),
    ]
}

/// A JSON value's text.
fn json() -> BoxedStrategy<String> {
    let leaf =
        prop_oneof![prop::sample::select(vec!["null", "true", "false"]).prop_map(str::to_string), number(), string(),];
    leaf.prop_recursive(5, 96, 40, |inner| {
        prop_oneof![
            (prop::collection::vec((ws(), inner.clone(), ws()), 0..6)).prop_map(|items| {
                let items: Vec<String> = items.into_iter().map(|(a, v, b)| format!("{a}{v}{b}")).collect();
                format!("[{}]", items.join(","))
            }),
            object(inner, 0..40),
        ]
    })
    .boxed()
}

/// A JSON object of `len` entries with values from `value`.
fn object(value: BoxedStrategy<String>, len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec((name(), ws(), value), len).prop_map(|entries| {
        let entries: Vec<String> = entries.into_iter().map(|(k, w, v)| format!("{k}{w}:{w}{v}")).collect();
        format!("{{{}}}", entries.join(","))
    })
}

/// A line: mostly an object, else any JSON value, perhaps damaged.
fn line() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![6 => object(json(), 0..24), 1 => json(), 1 => (0usize..200).prop_map(|n| format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n)))],
        ws(),
        ws(),
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(mutation(), 1..3)],
    )
        .prop_map(|(v, a, b, mutations)| mutate(format!("{a}{v}{b}").into_bytes(), &mutations))
}

// ---- The reference --------------------------------------------------------------------------

/// The record the tree path gives: what `lines` did before it wrote records as it parsed.
fn reference(text: &[u8]) -> Result<Vec<u8>, String> {
    let json: serde_json::Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Vec::new();
    procnet::wire::write_record(&mut out, &Record::from_json(json)?);
    Ok(out)
}

/// Whether some object of the JSON text repeats a name (None if it is not JSON).
fn repeats_a_name(text: &[u8]) -> Option<bool> {
    struct Repeats<'a>(&'a mut bool);
    impl<'de> DeserializeSeed<'de> for Repeats<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Repeats<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JSON")
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
            while seq.next_element_seed(Repeats(&mut *self.0))?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(k) = map.next_key::<String>()? {
                *self.0 |= !seen.insert(k);
                map.next_value_seed(Repeats(&mut *self.0))?;
            }
            Ok(())
        }
    }
    let mut repeated = false;
    let mut de = serde_json::Deserializer::from_slice(text);
    Repeats(&mut repeated).deserialize(&mut de).ok()?;
    Some(repeated)
}

/// Equal JSON values, but for floats a last digit apart: serde_json reads decimal floats
/// fast, not always to the nearest f64, so a float written back and read again may move.
fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().expect("a number"), y.as_f64().expect("a number"));
            x == y || (x - y).abs() <= 1e-14 * x.abs().max(y.abs())
        }
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y)),
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kx, x), (ky, y))| kx == ky && close(x, y))
        }
        _ => a == b,
    }
}

/// The transcoder gives the reference's bytes or error, within its memory and size limits.
fn check_line(text: &[u8], max: usize) -> Result<(), TestCaseError> {
    let want = reference(text);
    let mut out = b"prefix".to_vec();
    let (got, peak) = peak_during(|| json_to_record_bytes(text, &mut out, usize::MAX));
    let got = got.map(|()| out[6..].to_vec());
    if got != want {
        return Err(fail(format!("transcoder {got:?}, reference {want:?}")));
    }
    // The record (up to 3 bytes per byte of text: `-0` is a float 64), twice while it grows;
    // the names of wide objects, 8 bytes each (twice); an object rewritten for its repeats.
    if peak > 16 * text.len() + (64 << 10) {
        return Err(fail(format!("{} bytes of JSON allocated {peak}", text.len())));
    }
    let mut out = b"prefix".to_vec();
    let limited = json_to_record_bytes(text, &mut out, max).map(|()| out[6..].to_vec());
    let over = format!("the record would be larger than {max} bytes");
    match (&limited, &want) {
        (Ok(bytes), Ok(whole)) if bytes == whole && bytes.len() <= max => {}
        (Err(e), _) if *e == over => {
            // Only a record over its limit (or one written larger before its repeated names
            // were resolved) is refused as such.
            if let Ok(whole) = &want {
                if whole.len() <= max && repeats_a_name(text) == Some(false) {
                    return Err(fail(format!("a record of {} bytes refused at {max}", whole.len())));
                }
            }
        }
        (Err(e), Err(w)) if e == w => {}
        _ => return Err(fail(format!("limited to {max}: {limited:?}, unlimited {want:?}"))),
    }
    if out != b"prefix" && limited.is_err() {
        return Err(fail("a refused line left bytes behind".into()));
    }
    // Back to JSON: the record's text reads as the line did.
    if let (Ok(bytes), Some(false)) = (&want, repeats_a_name(text)) {
        let again = text::json_text(bytes).ok_or_else(|| fail("no JSON text for a record".into()))?;
        let (a, b): (serde_json::Value, serde_json::Value) =
            (serde_json::from_slice(text).expect("JSON"), serde_json::from_str(&again).expect("JSON"));
        if !close(&a, &b) {
            return Err(fail(format!("the record's text {again} reads otherwise")));
        }
    }
    Ok(())
}

#[test]
fn fuzz_json_to_record() {
    fuzz::with_big_stack(|| {
        let strategy = line().prop_flat_map(|l| {
            let n = l.len();
            (Just(l), 0..2 * n + 2)
        });
        fuzz::run("json_to_record", CASES, strategy, |(text, max)| check_line(&text, max));
    });
}

// ---- Regressions found by fuzzing --------------------------------------------------------

#[test]
fn the_last_header_counts_toward_the_size_limit() {
    // Fuzzed: the limit was checked after each value only, so `{}` (no value) passed a limit of 0.
    let mut out = Vec::new();
    assert_eq!(json_to_record_bytes(b"{}", &mut out, 0).unwrap_err(), "the record would be larger than 0 bytes");
    assert!(out.is_empty());
    let wide = format!("{{{}}}", (0..16).map(|i| format!("\"{i:x}\":0")).collect::<Vec<_>>().join(","));
    // 16 entries of 3 bytes, then a map 16 header (3 bytes) in place of the one-byte fixmap.
    assert!(json_to_record_bytes(wide.as_bytes(), &mut out, 50).is_err());
    assert!(json_to_record_bytes(wide.as_bytes(), &mut out, 51).is_ok());
}
