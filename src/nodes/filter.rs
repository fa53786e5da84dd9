//! `filter`: passes on the records whose field matches (a substring or a regex), or with
//! `invert`, those that do not. A record without the field does not match.

use serde::{Deserialize, Serialize};

use crate::runtime::{Node, NodeError};
use crate::topology::diagnostic::{Diagnostic, Diagnostics};
use crate::topology::raw::Table;

/// What a filter looks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// A substring.
    Contains(String),
    /// A regular expression (Rust `regex` syntax).
    Regex(String),
}

/// Options of a `filter` node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The field to test.
    pub field: String,
    /// What to look for in it.
    pub pattern: Pattern,
    /// Match regardless of case.
    pub ignore_case: bool,
    /// Pass the records that do not match instead.
    pub invert: bool,
}

impl FilterConfig {
    /// Option keys this kind accepts.
    pub const KEYS: &'static [&'static str] = &["field", "contains", "regex", "ignore_case", "invert"];

    /// Validate the options in `t`.
    pub fn from_table(t: &Table<'_, '_>, diags: &mut Diagnostics) -> Option<Self> {
        t.require("field", "name the record field to test, e.g. `field = \"body\"`", diags);
        let field = t.str("field", diags);
        let ignore_case = t.bool("ignore_case", diags).is_some_and(|b| *b.get_ref());
        let invert = t.bool("invert", diags).is_some_and(|b| *b.get_ref());
        let pattern = match (t.str("contains", diags), t.str("regex", diags)) {
            (Some(_), Some(r)) => {
                diags.push(
                    Diagnostic::error(r.span(), format!("{} has both `contains` and `regex`", t.what()))
                        .with_help("give exactly one of them"),
                );
                None
            }
            (None, None) => {
                if t.get("contains").is_none() && t.get("regex").is_none() {
                    diags.push(
                        Diagnostic::error(t.anchor(), format!("{} needs a pattern: `contains` or `regex`", t.what()))
                            .with_help("give exactly one of `contains = \"text\"` or `regex = \"pattern\"`"),
                    );
                }
                None
            }
            (Some(c), None) => {
                if c.get_ref().is_empty() {
                    diags.push(
                        Diagnostic::warning(c.span(), format!("`contains = \"\"` in {} matches every record", t.what()))
                            .with_help("to keep every record that has the field, this is fine; otherwise give the text to look for"),
                    );
                }
                Some(Pattern::Contains(c.into_inner()))
            }
            (None, Some(r)) => match build(&Pattern::Regex(r.get_ref().clone()), ignore_case) {
                Ok(_) => Some(Pattern::Regex(r.into_inner())),
                Err(e) => {
                    diags.error(
                        r.span(),
                        format!("`regex` in {} is not a valid regular expression: {}", t.what(), first_line(&e)),
                    );
                    None
                }
            },
        };
        Some(FilterConfig { field: field?.into_inner(), pattern: pattern?, ignore_case, invert })
    }

    /// Pass on the matching records, as they came: read in place, never re-encoded.
    pub fn run(&self, node: &mut Node) -> Result<(), NodeError> {
        let re = Matcher::new(&self.pattern, self.ignore_case)
            .map_err(|e| NodeError::Env(format!("invalid pattern: {e}")))?;
        // The JSON text of a field that is not a string is built to be searched: past the
        // size of a message it is refused, so a hostile value cannot multiply in memory.
        let max_text = crate::record::raw::text_limit(node.identity().max_message_bytes);
        while let Some(batch) = node.recv_batch()? {
            for rec in batch.records() {
                // A nil value is no value: it does not match, like a missing field.
                let hit = match rec.get(&self.field).filter(|v| !v.is_nil()) {
                    None => false,
                    // A str is searched as it lies (bad UTF-8 never matches a Unicode class,
                    // and literals match the same bytes).
                    Some(v) => match v.str_bytes() {
                        Some(text) => re.is_match(text),
                        None => match v.text_within(max_text) {
                            Ok(text) => re.is_match(text.as_bytes()),
                            Err(e) => {
                                node.bad_record(format!("field `{}`: {e}", self.field));
                                continue;
                            }
                        },
                    },
                };
                if hit != self.invert {
                    node.send_raw("out", rec)?;
                }
            }
        }
        Ok(())
    }
}

/// What a filter runs on each value: a regex, and for the most common case, an ASCII text
/// to find in any case, also a hand-written search (memchr for the first letter in either
/// case, then a compare) for short values, where the regex engine's setup per call costs
/// more than the search (measured: about 15% of a filter's time on 100-byte records). On long
/// values the regex's vectorised literal search is faster.
enum Matcher {
    AsciiNoCase { needle: Vec<u8>, re: regex::bytes::Regex },
    Regex(regex::bytes::Regex),
}

/// Values shorter than this (bytes) go to the hand-written search.
const SHORT: usize = 512;

impl Matcher {
    fn new(pattern: &Pattern, ignore_case: bool) -> Result<Matcher, String> {
        match pattern {
            // Unicode case folding maps only K (Kelvin sign) and ſ (long s) onto ASCII
            // letters (k, s): without those, ASCII case-insensitivity is the same thing.
            Pattern::Contains(text)
                if ignore_case
                    && !text.is_empty()
                    && text.is_ascii()
                    && !text.bytes().any(|b| matches!(b.to_ascii_lowercase(), b'k' | b's')) =>
            {
                let re = build(pattern, ignore_case)?;
                Ok(Matcher::AsciiNoCase { needle: text.to_ascii_lowercase().into_bytes(), re })
            }
            _ => build(pattern, ignore_case).map(Matcher::Regex),
        }
    }

    fn is_match(&self, haystack: &[u8]) -> bool {
        match self {
            Matcher::Regex(re) => re.is_match(haystack),
            Matcher::AsciiNoCase { re, .. } if haystack.len() >= SHORT => re.is_match(haystack),
            Matcher::AsciiNoCase { needle, .. } => {
                let (first, rest) = (needle[0], &needle[1..]);
                let last_start = match haystack.len().checked_sub(needle.len()) {
                    Some(n) => n,
                    None => return false,
                };
                memchr::memchr2_iter(first, first.to_ascii_uppercase(), &haystack[..=last_start])
                    .any(|i| haystack[i + 1..i + needle.len()].eq_ignore_ascii_case(rest))
            }
        }
    }
}

/// A substring search is a regex of the escaped text: the regex engine's literal search is
/// as fast as a hand-written one, and case folding is then Unicode-correct for both. The
/// regex runs on bytes, so a str is searched where it lies in the frame.
fn build(pattern: &Pattern, ignore_case: bool) -> Result<regex::bytes::Regex, String> {
    let source = match pattern {
        Pattern::Contains(s) => regex::escape(s),
        Pattern::Regex(r) => r.clone(),
    };
    regex::bytes::RegexBuilder::new(&source).case_insensitive(ignore_case).build().map_err(|e| e.to_string())
}

/// The regex crate's message without its frame: the last non-empty line, minus "error: ".
fn first_line(s: &str) -> String {
    let last = s.lines().rfind(|l| !l.trim().is_empty()).unwrap_or(s).trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_search_agrees_with_the_regex() {
        let hay: &[&[u8]] = &[
            b"",
            b"py",
            b"python",
            b"PYTHON!",
            b"a pYtHoN b",
            b"pytho",
            b"ppython",
            b"xpythoxpython",
            b"pythagoras typhoon",
            b"\xffpython\xfe",
            b"PyThOn",
        ];
        let long = [&b"x".repeat(SHORT)[..], b"PyThOn"].concat();
        let hay: Vec<&[u8]> = hay.iter().copied().chain([&long[..]]).collect();
        for needle in ["python", "Py", "n", "a b", "3.12"] {
            let fast = Matcher::new(&Pattern::Contains(needle.into()), true).unwrap();
            assert!(matches!(fast, Matcher::AsciiNoCase { .. }), "{needle}");
            let re = build(&Pattern::Contains(needle.into()), true).unwrap();
            for h in &hay {
                assert_eq!(fast.is_match(h), re.is_match(h), "{needle:?} in {:?}", String::from_utf8_lossy(h));
            }
        }
        // k and s have non-ASCII case variants (K, ſ): those go to the regex.
        for needle in ["ask", "Kelvin", "é", ""] {
            assert!(matches!(Matcher::new(&Pattern::Contains(needle.into()), true).unwrap(), Matcher::Regex(_)));
        }
        let re = Matcher::new(&Pattern::Contains("ask".into()), true).unwrap();
        assert!(re.is_match("a\u{17f}\u{212a}".as_bytes()));
    }
}
