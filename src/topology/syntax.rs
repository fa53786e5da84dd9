//! The TOML syntax of a topology file, with its errors bounded.
//!
//! `toml`'s recovering parser keeps every error it meets, each with its own message: a
//! megabyte of junk lines makes a million of them and hundreds of megabytes. So the grammar,
//! keys and values are first checked with `toml_parser` (which `toml` uses within) and a sink
//! that keeps only the first error of each line, in [`Diagnostics`] (which keep the first few
//! and count the rest). Only a file with few such errors, or none, is parsed by `toml`
//! (which also finds duplicate keys and tables), with its errors reported the same way.

use std::borrow::Cow;

use toml::de::DeTable;
use toml::Spanned;
use toml_parser::decoder::Encoding;
use toml_parser::parser::{EventReceiver, RecursionGuard, ValidateWhitespace};
use toml_parser::{ErrorSink, Expected, ParseError, Span};

use super::diagnostic::Diagnostics;
use super::lines::LineIndex;

/// With more grammar errors than this, those are all that is reported.
const MAX_GRAMMAR_ERRORS: usize = 1000;
/// How deep arrays and inline tables may nest: `toml`'s own limit.
const MAX_DEPTH: u32 = 80;

/// The document, or its syntax errors (the first of each line).
pub(super) fn parse(text: &str) -> Result<Spanned<DeTable<'_>>, Diagnostics> {
    let lines = LineIndex::new(text);
    let mut grammar = FirstPerLine { lines: &lines, line: 0..0, count: 0, diags: Diagnostics::default() };
    let source = toml_parser::Source::new(text);
    let tokens = source.lex().into_vec();
    let mut decode = Decode { source };
    let mut whitespace = ValidateWhitespace::new(&mut decode, source);
    let mut guard = RecursionGuard::new(&mut whitespace, MAX_DEPTH);
    toml_parser::parser::parse_document(&tokens, &mut guard, &mut grammar);
    drop(tokens);
    if grammar.count > MAX_GRAMMAR_ERRORS {
        return Err(grammar.diags);
    }
    let (doc, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Ok(doc);
    }
    let mut all = FirstPerLine { lines: &lines, line: 0..0, count: 0, diags: Diagnostics::default() };
    let mut errors: Vec<_> = errors.iter().map(|e| (e.span().unwrap_or(0..0), e.message().trim_end())).collect();
    errors.sort_by_key(|(span, _)| span.start);
    for (span, message) in errors {
        all.add(span, || message.to_string());
    }
    Err(all.diags)
}

/// Decodes keys and values as `toml` does, for their errors (bad escapes, empty keys, numbers
/// that do not parse): those are the ones a file can have on every line.
struct Decode<'s> {
    source: toml_parser::Source<'s>,
}

impl Decode<'_> {
    fn raw(&self, span: Span, encoding: Option<Encoding>) -> Option<toml_parser::Raw<'_>> {
        let text = self.source.input().get(span.start()..span.end())?;
        Some(toml_parser::Raw::new_unchecked(text, encoding, span))
    }
}

impl EventReceiver for Decode<'_> {
    fn simple_key(&mut self, span: Span, encoding: Option<Encoding>, error: &mut dyn ErrorSink) {
        if let Some(raw) = self.raw(span, encoding) {
            raw.decode_key(&mut Cow::Borrowed(""), error);
        }
    }

    fn scalar(&mut self, span: Span, encoding: Option<Encoding>, error: &mut dyn ErrorSink) {
        if let Some(raw) = self.raw(span, encoding) {
            // Only its errors matter here; `toml` reads the value itself.
            let _kind = raw.decode_scalar(&mut Cow::Borrowed(""), error);
        }
    }
}

/// Errors as [`Diagnostics`], the first of each line only: what follows on a line that does
/// not parse is mostly the parser's recovery, and a line of junk would otherwise bring an
/// error per character.
struct FirstPerLine<'l> {
    lines: &'l LineIndex,
    /// The bytes of the line of the last error recorded.
    line: std::ops::Range<usize>,
    /// Every error reported, also those not kept.
    count: usize,
    diags: Diagnostics,
}

impl FirstPerLine<'_> {
    /// Record `message` at `span` if it is the first error of its line. `message` is only
    /// made for an error that will be printed.
    fn add(&mut self, span: std::ops::Range<usize>, message: impl FnOnce() -> String) {
        if self.line.contains(&span.start) {
            return;
        }
        let line = self.lines.line_of(span.start);
        self.line = self.lines.span_of(line);
        let message = if self.diags.shown(&span) { format!("TOML syntax: {}", message()) } else { String::new() };
        self.diags.error(span, message);
    }
}

impl ErrorSink for FirstPerLine<'_> {
    fn report_error(&mut self, error: ParseError) {
        self.count += 1;
        let span = error.unexpected().or(error.context()).map_or(0..0, |s| s.start()..s.end());
        self.add(span, || message(&error));
    }
}

/// The message `toml` gives `error` ("description, expected `x`, y"), so that an error reads
/// the same whichever parser found it.
fn message(error: &ParseError) -> String {
    let mut message = error.description().to_string();
    if let Some(expected) = error.expected() {
        message.push_str(", expected ");
        if expected.is_empty() {
            message.push_str("nothing");
        }
        for (i, e) in expected.iter().enumerate() {
            if i > 0 {
                message.push_str(", ");
            }
            match e {
                Expected::Literal("\n") => message.push_str("newline"),
                Expected::Literal("`") => message.push_str("'`'"),
                Expected::Literal(s) if s.chars().all(|c| c.is_ascii_control()) => {
                    message.push_str(&format!("`{}`", s.escape_debug()));
                }
                Expected::Literal(s) => message.push_str(&format!("`{s}`")),
                Expected::Description(d) => message.push_str(d),
                _ => message.push_str("etc"),
            }
        }
    }
    message.trim_end().to_string()
}
