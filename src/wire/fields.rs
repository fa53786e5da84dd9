//! A message's fields read where they lie in its frame. The maps of the protocol (a message,
//! a `wire` entry, `publish`, `vars`, `ports`, `topics`) are walked in place and each value
//! is found by its name, with no tree in between: what decoding allocates is what the
//! decoded message holds. A field that the map's kind defines, given twice, makes the message
//! invalid, and so does a key given twice in a map of names (docs/protocol.md §5.3); unknown
//! fields are skipped, repeated or not.
//!
//! Every offset here comes from a frame that [`raw::value_end`] found to be exactly one
//! complete MessagePack value, so reading inside it cannot run past its end.

use std::collections::BTreeMap;

use super::error::DecodeError;
use crate::record::raw::{self, kind_of_marker};

/// Counts by name, by name (`done.published`: records per topic, per socket).
type CountMaps = BTreeMap<String, BTreeMap<String, u64>>;

/// Where a value lies in the frame: its first byte (the marker) and its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The marker's offset.
    pub start: usize,
    /// Just past the value.
    pub end: usize,
}

/// The end of the value at `pos` in a checked frame.
fn end_of(buf: &[u8], pos: usize) -> usize {
    raw::value_end(buf, pos).expect("inside a frame checked whole by value_end")
}

/// The values of the array at `span`, or None if it is not an array.
pub fn elements(buf: &[u8], span: Span) -> Option<impl Iterator<Item = Span> + '_> {
    let (first, count) = match buf[span.start] {
        0x90..=0x9f | 0xdc | 0xdd => {
            let (first, _, items) = raw::header(buf, span.start).expect("checked frame");
            (first, items)
        }
        _ => return None,
    };
    let mut pos = first;
    Some((0..count).map(move |_| {
        let end = end_of(buf, pos);
        let s = Span { start: pos, end };
        pos = end;
        s
    }))
}

/// The (key, value) entries of the map at `span`, or None if it is not a map.
pub fn entries(buf: &[u8], span: Span) -> Option<impl Iterator<Item = (Span, Span)> + '_> {
    let (first, count) = match buf[span.start] {
        0x80..=0x8f | 0xde | 0xdf => {
            let (first, _, items) = raw::header(buf, span.start).expect("checked frame");
            (first, items / 2)
        }
        _ => return None,
    };
    let mut pos = first;
    Some((0..count).map(move |_| {
        let key = Span { start: pos, end: end_of(buf, pos) };
        let value = Span { start: key.end, end: end_of(buf, key.end) };
        pos = value.end;
        (key, value)
    }))
}

/// The bytes of the str at `span` (UTF-8 or not), or None if it is not a str.
pub fn str_bytes(buf: &[u8], span: Span) -> Option<&[u8]> {
    match buf[span.start] {
        0xa0..=0xbf | 0xd9..=0xdb => {
            let (payload, n, _) = raw::header(buf, span.start).expect("checked frame");
            Some(&buf[payload..payload + n])
        }
        _ => None,
    }
}

/// The text of the str at `span`, or None if it is not a str holding valid UTF-8.
pub fn text(buf: &[u8], span: Span) -> Option<&str> {
    str_bytes(buf, span).and_then(|b| std::str::from_utf8(b).ok())
}

/// The integer at `span`, in any encoding, or None if it is not an integer.
pub fn integer(buf: &[u8], span: Span) -> Option<i128> {
    let m = buf[span.start];
    let b = &buf[span.start + 1..span.end];
    let be = || b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    Some(match m {
        0x00..=0x7f => i128::from(m),
        0xe0..=0xff => i128::from(m as i8),
        0xcc..=0xcf => i128::from(be()),
        // Signed: sign-extend from the width read.
        0xd0..=0xd3 => {
            let bits = 8 * b.len() as u32;
            i128::from((be() << (64 - bits)) as i64 >> (64 - bits))
        }
        _ => return None,
    })
}

/// The kind of the value at `span`, for messages.
pub fn kind(buf: &[u8], span: Span) -> &'static str {
    kind_of_marker(buf[span.start])
}

/// The first key (in the map's order) that repeats an earlier one; None if every key
/// differs. Str keys compare by their text, whatever their encoding (fixstr or str 32), as
/// a decoder that builds a map compares them; other keys by their bytes. A few keys are
/// compared pairwise; more are sorted, so a wide hostile map costs n log n time and 8 bytes
/// per key.
pub fn repeated_key(buf: &[u8], keys: impl Iterator<Item = Span>) -> Option<Span> {
    let bytes = |start: usize| {
        let span = Span { start, end: end_of(buf, start) };
        str_bytes(buf, span).unwrap_or(&buf[span.start..span.end])
    };
    let mut few = [0usize; 16];
    let mut starts: Vec<usize> = Vec::new();
    for (i, key) in keys.enumerate() {
        if i < few.len() {
            if few[..i].iter().any(|&s| bytes(s) == bytes(key.start)) {
                return Some(key);
            }
            few[i] = key.start;
        } else {
            if starts.is_empty() {
                starts.extend_from_slice(&few);
            }
            starts.push(key.start);
        }
    }
    // Sorted by bytes, then by position: the second of a run of equal keys is a repeat.
    starts.sort_unstable_by(|&a, &b| bytes(a).cmp(bytes(b)).then(a.cmp(&b)));
    let first_repeat = starts.windows(2).filter(|w| bytes(w[0]) == bytes(w[1])).map(|w| w[1]).min()?;
    Some(Span { start: first_repeat, end: end_of(buf, first_repeat) })
}

/// The fields of one map being decoded: the value of each name its kind defines.
pub struct Fields<'a> {
    buf: &'a [u8],
    /// What the map is: `message` (the header), a message type (`eos`), or an entry
    /// (`wire input`), for messages.
    t: &'static str,
    names: &'static [&'static str],
    found: Vec<Option<Span>>,
}

impl<'a> Fields<'a> {
    /// Find `names` in the map at `span`, refusing a name given twice.
    pub fn read(
        buf: &'a [u8],
        span: Span,
        t: &'static str,
        names: &'static [&'static str],
    ) -> Result<Fields<'a>, DecodeError> {
        let mut fields = Fields { buf, t, names, found: vec![None; names.len()] };
        let Some(entries) = entries(buf, span) else {
            return Err(DecodeError(format!("{} must be a map, found {}", fields.what(), kind(buf, span))));
        };
        for (key, value) in entries {
            let Some(i) = str_bytes(buf, key).and_then(|k| names.iter().position(|n| n.as_bytes() == k)) else {
                continue;
            };
            if fields.found[i].replace(value).is_some() {
                return Err(DecodeError(format!("{} has field `{}` twice", fields.what(), names[i])));
            }
        }
        Ok(fields)
    }

    /// The map's kind, for messages: `message`, ``message `eos` ``, `wire input`.
    pub fn what(&self) -> String {
        match self.t {
            "message" => "message".to_string(),
            t if t.contains(' ') => t.to_string(),
            t => format!("message `{t}`"),
        }
    }

    /// Where field `key` lies, if present (nil included).
    pub fn get(&self, key: &str) -> Option<Span> {
        let i = self.names.iter().position(|n| *n == key);
        let i = i.unwrap_or_else(|| panic!("`{key}` is not a field of {} (add it to its names)", self.what()));
        self.found[i]
    }

    fn get_non_nil(&self, key: &str) -> Option<Span> {
        self.get(key).filter(|&s| self.buf[s.start] != 0xc0)
    }

    /// The error for field `key` holding the wrong kind of value.
    pub fn wrong(&self, key: &str, want: &str, found: Span) -> DecodeError {
        DecodeError(format!("field `{key}` of {} must be {want}, found {}", self.what(), kind(self.buf, found)))
    }

    /// Field `key`, required.
    pub fn need(&self, key: &str) -> Result<Span, DecodeError> {
        self.get(key).ok_or_else(|| DecodeError(format!("{} is missing field `{key}`", self.what())))
    }

    /// A required str.
    pub fn string(&self, key: &str) -> Result<String, DecodeError> {
        let span = self.need(key)?;
        text(self.buf, span).map(str::to_string).ok_or_else(|| self.wrong(key, "a string", span))
    }

    /// An optional str: None when missing or nil.
    pub fn opt_string(&self, key: &str) -> Result<Option<String>, DecodeError> {
        match self.get_non_nil(key) {
            None => Ok(None),
            Some(span) => text(self.buf, span)
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| self.wrong(key, "a string or nil", span)),
        }
    }

    /// A required uint.
    pub fn uint(&self, key: &str) -> Result<u64, DecodeError> {
        self.uint_at(key, self.need(key)?)
    }

    fn uint_at(&self, key: &str, span: Span) -> Result<u64, DecodeError> {
        match integer(self.buf, span) {
            Some(n) => u64::try_from(n).map_err(|_| {
                DecodeError(format!("field `{key}` of {} must be a non-negative integer, found {n}", self.what()))
            }),
            None => Err(self.wrong(key, "a non-negative integer", span)),
        }
    }

    /// An optional counter: 0 when missing; when present, a uint (nil is refused).
    pub fn opt_uint(&self, key: &str) -> Result<u64, DecodeError> {
        self.get(key).map_or(Ok(0), |span| self.uint_at(key, span))
    }

    /// A required uint32.
    pub fn u32(&self, key: &str) -> Result<u32, DecodeError> {
        let n = self.uint(key)?;
        u32::try_from(n).map_err(|_| DecodeError(format!("field `{key}` of {} is out of range", self.what())))
    }

    /// A required array: its elements.
    pub fn array(&self, key: &str) -> Result<impl Iterator<Item = Span> + 'a, DecodeError> {
        let span = self.need(key)?;
        elements(self.buf, span).ok_or_else(|| self.wrong(key, "an array", span))
    }

    /// An optional array (nil reads as empty): its elements.
    pub fn opt_array(&self, key: &str) -> Result<Vec<Span>, DecodeError> {
        match self.get_non_nil(key) {
            None => Ok(Vec::new()),
            Some(span) => Ok(elements(self.buf, span).ok_or_else(|| self.wrong(key, "an array", span))?.collect()),
        }
    }

    /// A required array of str.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, DecodeError> {
        self.array(key)?.map(|e| self.held_string(key, e)).collect()
    }

    /// An element or entry of field `key` that must be a str.
    fn held_string(&self, key: &str, span: Span) -> Result<String, DecodeError> {
        text(self.buf, span)
            .map(str::to_string)
            .ok_or_else(|| DecodeError(format!("`{key}` must hold strings, found {}", kind(self.buf, span))))
    }

    /// An optional map of names (nil reads as empty): its entries, once every key was found
    /// to be a str given once (nothing is kept while checking: a hostile map stays in its frame). `want` names the map's kind for messages ("a map of strings").
    fn named_entries(&self, key: &str, want: &str) -> Result<impl Iterator<Item = (Span, Span)> + 'a, DecodeError> {
        let (buf, span) = (self.buf, self.get_non_nil(key));
        let all = move || span.and_then(|s| entries(buf, s)).into_iter().flatten();
        if let Some(span) = span.filter(|&s| entries(buf, s).is_none()) {
            return Err(self.wrong(key, want, span));
        }
        if let Some((k, _)) = all().find(|&(k, _)| text(buf, k).is_none()) {
            return Err(DecodeError(format!("`{key}` must hold strings, found {}", kind(buf, k))));
        }
        if let Some(k) = repeated_key(buf, all().map(|(k, _)| k)) {
            let name = text(buf, k).expect("checked to be a str above");
            return Err(DecodeError(format!("field `{key}` of {} has key `{name}` twice", self.what())));
        }
        Ok(all())
    }

    /// An optional map of str to str (nil reads as empty).
    pub fn opt_string_map(&self, key: &str) -> Result<BTreeMap<String, String>, DecodeError> {
        let entries = self.named_entries(key, "a map of strings")?;
        let text_of = |k| text(self.buf, k).expect("checked").to_string();
        entries.map(|(k, v)| Ok((text_of(k), self.held_string(key, v)?))).collect()
    }

    /// An optional uint: None when missing or nil.
    pub fn opt_count(&self, key: &str) -> Result<Option<u64>, DecodeError> {
        self.get_non_nil(key).map(|span| self.uint_at(key, span)).transpose()
    }

    /// An optional array of uint: None when missing or nil.
    pub fn opt_count_list(&self, key: &str) -> Result<Option<Vec<u64>>, DecodeError> {
        let want = "an array of counts";
        let Some(span) = self.get_non_nil(key) else { return Ok(None) };
        let items = elements(self.buf, span).ok_or_else(|| self.wrong(key, want, span))?;
        items.map(|e| self.count(key, want, e)).collect::<Result<_, _>>().map(Some)
    }

    /// An optional map of str to maps of str to uint: None when missing or nil. Keys are
    /// str, each given once, at both levels.
    pub fn opt_count_maps(&self, key: &str) -> Result<Option<CountMaps>, DecodeError> {
        let want = "a map of maps of counts";
        if self.get_non_nil(key).is_none() {
            return Ok(None);
        }
        let mut all = BTreeMap::new();
        for (k, v) in self.named_entries(key, want)? {
            let inner = entries(self.buf, v).ok_or_else(|| self.wrong(key, want, v))?;
            if let Some((ik, _)) =
                entries(self.buf, v).into_iter().flatten().find(|&(ik, _)| text(self.buf, ik).is_none())
            {
                return Err(DecodeError(format!("`{key}` must hold strings, found {}", kind(self.buf, ik))));
            }
            if let Some(ik) = repeated_key(self.buf, entries(self.buf, v).into_iter().flatten().map(|(ik, _)| ik)) {
                let name = text(self.buf, ik).expect("checked to be a str above");
                return Err(DecodeError(format!("field `{key}` of {} has key `{name}` twice", self.what())));
            }
            let counts = inner
                .map(|(ik, iv)| Ok((text(self.buf, ik).expect("checked").to_string(), self.count(key, want, iv)?)))
                .collect::<Result<_, DecodeError>>()?;
            all.insert(text(self.buf, k).expect("checked").to_string(), counts);
        }
        Ok(Some(all))
    }

    /// A uint held in field `key` (of the kind `want`, for messages).
    fn count(&self, key: &str, want: &str, span: Span) -> Result<u64, DecodeError> {
        integer(self.buf, span).and_then(|n| u64::try_from(n).ok()).ok_or_else(|| self.wrong(key, want, span))
    }

    /// An optional map of str to uint (nil reads as empty): each entry given to `each`, in
    /// the map's order, with nothing kept here.
    pub fn opt_counts(&self, key: &str, mut each: impl FnMut(&str, u64)) -> Result<(), DecodeError> {
        let want = "a map of counts";
        for (k, v) in self.named_entries(key, want)? {
            let n = integer(self.buf, v).and_then(|n| u64::try_from(n).ok()).ok_or_else(|| self.wrong(key, want, v))?;
            each(text(self.buf, k).expect("checked"), n);
        }
        Ok(())
    }
}
