//! Problems found in a topology file, each tied to a span of the source, and their rendering
//! as `file:line:column` with the offending line and a caret, like rustc and just do.
//!
//! A `--set` flag is a source too ([`Flag`]): its bytes are numbered after the file's, so a
//! value it brings keeps its span through every check, and a problem with it is shown on the
//! flag instead of a line of the file.

use std::collections::BinaryHeap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::lines::{floor_char_boundary, LineIndex};

/// How bad a diagnostic is: errors stop the run, warnings are printed and the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The topology is invalid; nothing is started.
    Error,
    /// Worth saying, but the topology still runs.
    Warning,
}

/// One problem in a topology file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Byte range in the source that the problem points at.
    pub span: Range<usize>,
    /// What is wrong, naming the culprit.
    pub message: String,
    /// What to do instead: the alternatives, a likely intended name.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, span, message: message.into(), help: None }
    }

    /// A warning at `span`.
    pub fn warning(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, span, message: message.into(), help: None }
    }

    /// The same diagnostic with a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Collects diagnostics while a topology is read and compiled, so that every problem is
/// reported at once instead of stopping at the first.
///
/// Only the [`MAX_SHOWN`] first in source order are printed, so only they are kept; the
/// others are counted. A file with a problem on each of its million lines costs no more.
#[derive(Debug, Default)]
pub struct Diagnostics {
    /// The first in source order so far, at most [`MAX_SHOWN`]; the last on top.
    kept: BinaryHeap<Kept>,
    pushed: usize,
    errors: usize,
    /// Those not kept: errors and warnings.
    more: (usize, usize),
}

/// A kept diagnostic, ordered by where it points, then by when it was pushed.
#[derive(Debug)]
struct Kept {
    start: usize,
    order: usize,
    diagnostic: Diagnostic,
}

impl Kept {
    fn key(&self) -> (usize, usize) {
        (self.start, self.order)
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl Diagnostics {
    /// Record a diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        if d.severity == Severity::Error {
            self.errors += 1;
        }
        let kept = Kept { start: d.span.start, order: self.pushed, diagnostic: d };
        self.pushed += 1;
        let dropped = if self.kept.len() < MAX_SHOWN {
            self.kept.push(kept);
            None
        } else if self.kept.peek().is_some_and(|last| kept.start < last.start) {
            let last = self.kept.pop();
            self.kept.push(kept);
            last
        } else {
            Some(kept)
        };
        match dropped.map(|k| k.diagnostic.severity) {
            Some(Severity::Error) => self.more.0 += 1,
            Some(Severity::Warning) => self.more.1 += 1,
            None => {}
        }
    }

    /// Record an error at `span`.
    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(Diagnostic::error(span, message));
    }

    /// Whether a diagnostic at `span`, pushed now, would be among those printed: only then
    /// is an expensive help (a suggestion among thousands of names) worth computing.
    pub fn shown(&self, span: &Range<usize>) -> bool {
        self.kept.len() < MAX_SHOWN || self.kept.peek().is_some_and(|last| span.start < last.start)
    }

    /// Whether any error (not warning) was recorded.
    pub fn has_errors(&self) -> bool {
        self.errors > 0
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    /// The report of `source`, the file at `path`: the kept diagnostics in source order
    /// (stable for equal positions), and the count of the others.
    pub fn into_report(self, path: &Path, source: String) -> Report {
        let diagnostics = self.kept.into_sorted_vec().into_iter().map(|k| k.diagnostic).collect();
        Report {
            path: path.to_path_buf(),
            source,
            flags: Vec::new(),
            diagnostics,
            more_errors: self.more.0,
            more_warnings: self.more.1,
        }
    }
}

/// Text from the command line that a diagnostic may point into, as into the file: a `--set
/// PATH=VALUE`. Its bytes are numbered from `start`, past the end of the file's text and of
/// the flags before it, so a span tells which source it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The number of its first byte.
    pub start: usize,
    /// The flag as shown, `--set PATH=VALUE`.
    pub text: String,
}

impl Flag {
    /// Whether byte `offset` is in this flag (or just past its end, where a span that is
    /// empty at its end points).
    fn holds(&self, offset: usize) -> bool {
        (self.start..=self.start + self.text.len()).contains(&offset)
    }
}

/// A report prints at most this many diagnostics, then says how many more there are.
pub const MAX_SHOWN: usize = 20;
/// A source line longer than this many characters is shown as a window around the caret.
const MAX_LINE_CHARS: usize = 160;
/// The window: this many characters of a long line, starting a little before the caret.
const WINDOW_CHARS: usize = 100;
const BEFORE_CARET: usize = 20;
/// A message or help longer than this many characters is cut.
const MAX_TEXT_CHARS: usize = 1000;

/// A source file and its diagnostics, ready to print.
#[derive(Debug)]
pub struct Report {
    /// The path as the user gave it, so messages point where they looked.
    pub path: PathBuf,
    /// The file's text (invalid UTF-8 replaced by U+FFFD).
    pub source: String,
    /// The `--set` flags, whose bytes are numbered after the file's.
    pub flags: Vec<Flag>,
    /// The first [`MAX_SHOWN`] problems, errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// How many more errors there are.
    pub more_errors: usize,
    /// How many more warnings there are.
    pub more_warnings: usize,
}

impl Report {
    /// Number of errors (warnings excluded).
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count() + self.more_errors
    }

    /// The same report, whose spans past the file's text point into `flags`.
    pub fn with_flags(mut self, flags: Vec<Flag>) -> Report {
        self.flags = flags;
        self
    }
}

fn label(d: &Diagnostic) -> &'static str {
    match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// `d`, which points into `flag`: the flag instead of a file position, with a caret under
/// its culprit.
fn render_flag(f: &mut fmt::Formatter<'_>, flag: &Flag, d: &Diagnostic) -> fmt::Result {
    const ARROW: &str = "  --> ";
    writeln!(f, "{}: {}", label(d), printable(&d.message, MAX_TEXT_CHARS))?;
    let at = |offset: usize| floor_char_boundary(&flag.text, offset.saturating_sub(flag.start).min(flag.text.len()));
    let (start, end) = (at(d.span.start), at(d.span.end));
    let col = printable(&flag.text[..start], usize::MAX).chars().count();
    let width = printable(&flag.text[start..end.max(start)], usize::MAX).chars().count().max(1);
    writeln!(f, "{ARROW}{}", printable(&flag.text, MAX_TEXT_CHARS))?;
    writeln!(f, "{}{}", " ".repeat(ARROW.len() + col), "^".repeat(width))?;
    if let Some(help) = &d.help {
        writeln!(f, "  = help: {}", printable(help, MAX_TEXT_CHARS))?;
    }
    Ok(())
}

fn render(f: &mut fmt::Formatter<'_>, path: &Path, source: &str, lines: &LineIndex, d: &Diagnostic) -> fmt::Result {
    let label = label(d);
    let (line, col) = lines.line_col(source, d.span.start);
    writeln!(f, "{label}: {}", printable(&d.message, MAX_TEXT_CHARS))?;
    writeln!(f, "  --> {}:{line}:{col}", path.display())?;
    let start = floor_char_boundary(source, d.span.start.min(source.len()));
    let end = floor_char_boundary(source, d.span.end.min(source.len())).max(start);
    let spanned = source[start..end].split('\n').next().unwrap_or("");
    let width = spanned.strip_suffix('\r').unwrap_or(spanned).chars().take(MAX_LINE_CHARS).count().max(1);
    let (text, col, width) = window(lines.line(source, line), col, width);
    let gutter = " ".repeat(line.to_string().len());
    writeln!(f, "{gutter} |")?;
    writeln!(f, "{}", format!("{line} | {text}").trim_end())?;
    writeln!(f, "{gutter} | {}{}", " ".repeat(col - 1), "^".repeat(width))?;
    if let Some(help) = &d.help {
        writeln!(f, "{gutter} = help: {}", printable(help, MAX_TEXT_CHARS))?;
    }
    Ok(())
}

/// What to show of source line `text` with a caret at column `col` (from 1, in characters)
/// `width` wide: the line itself if short enough, else [`WINDOW_CHARS`] of it around the
/// caret, marked `...` where cut. Returns the text, and the caret's column and width in it.
fn window(text: &str, col: usize, width: usize) -> (String, usize, usize) {
    let total = text.chars().count();
    if total <= MAX_LINE_CHARS {
        return (printable(text, MAX_LINE_CHARS), col, width);
    }
    let first = (col - 1).saturating_sub(BEFORE_CARET).min(total - WINDOW_CHARS);
    let last = first + WINDOW_CHARS;
    let shown: String = text.chars().skip(first).take(WINDOW_CHARS).collect();
    let (before, after) = (if first > 0 { "..." } else { "" }, if last < total { "..." } else { "" });
    let caret = col - first + before.len();
    let width = width.min((last + 1).saturating_sub(col)).max(1);
    (format!("{before}{}{after}", printable(&shown, WINDOW_CHARS)), caret, width)
}

/// `text` cut to `max` characters (then `...`), on one line: tabs shown as one space (so that
/// a caret lines up), line ends as `\n` (so that a value quoted in a message cannot forge a
/// line of the report), other control characters as U+FFFD (so that a file cannot drive the
/// terminal).
fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().take(max) {
        match c {
            '\t' => out.push(' '),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    if text.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = LineIndex::new(&self.source);
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match self.flags.iter().find(|flag| d.span.start > self.source.len() && flag.holds(d.span.start)) {
                Some(flag) => render_flag(f, flag, d)?,
                None => render(f, &self.path, &self.source, &lines, d)?,
            }
        }
        let count = |n: usize, what: &str| format!("{n} more {what}{}", if n == 1 { "" } else { "s" });
        let more = match (self.more_errors, self.more_warnings) {
            (0, 0) => None,
            (e, 0) => Some(count(e, "error")),
            (0, w) => Some(count(w, "warning")),
            (e, w) => Some(format!("{} and {}", count(e, "error"), count(w, "warning"))),
        };
        if let Some(more) = more {
            writeln!(f)?;
            writeln!(f, "... and {more}, not shown (only the first {MAX_SHOWN} are)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_in_source_order_and_counts_the_rest() {
        let mut diags = Diagnostics::default();
        // Each comes before all the others so far: each would be shown.
        for start in (0..100).rev() {
            assert!(diags.shown(&(start..start)));
            diags.error(start..start + 1, format!("at {start}"));
        }
        assert!(!diags.shown(&(50..50)) && !diags.shown(&(19..19)) && diags.shown(&(18..18)));
        diags.push(Diagnostic::warning(1000..1001, "late"));
        assert!(diags.has_errors());
        let report = diags.into_report(Path::new("t.toml"), "x".repeat(2000));
        let kept: Vec<&str> = report.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(kept, (0..MAX_SHOWN).map(|i| format!("at {i}")).collect::<Vec<_>>());
        assert_eq!((report.more_errors, report.more_warnings, report.error_count()), (80, 1, 100));
        assert!(report
            .to_string()
            .ends_with("\n... and 80 more errors and 1 more warning, not shown (only the first 20 are)\n"));
    }

    #[test]
    fn a_long_line_is_shown_around_the_caret() {
        let mut diags = Diagnostics::default();
        let line = format!("{}key = 1{}", "a ".repeat(5000), " b".repeat(5000));
        diags.error(10_000..10_003, "here");
        let report = diags.into_report(Path::new("t.toml"), line).to_string();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[1], "  --> t.toml:1:10001");
        assert_eq!(lines[3], format!("1 | ...{}key = 1{} ...", "a ".repeat(10), " b".repeat(36)));
        assert_eq!(lines[4], format!("  | {}^^^", " ".repeat(23)));
    }

    #[test]
    fn a_problem_in_a_flag_is_shown_on_the_flag() {
        let source = "[nodes.a]\n".to_string();
        let flag = Flag { start: source.len() + 1, text: "--set nodes.a.replicas=x".into() };
        let at = flag.start + flag.text.len() - 1;
        let mut diags = Diagnostics::default();
        diags.push(Diagnostic::error(at..at + 1, "`replicas` must be an integer").with_help("write a number"));
        diags.error(1..6, "in the file");
        let report = diags.into_report(Path::new("t.toml"), source).with_flags(vec![flag]);
        // The caret under the `x`, the flag's 24th character, after `  --> `.
        let caret = format!("{}^", " ".repeat(6 + 23));
        assert_eq!(
            report.to_string(),
            format!(
                "error: in the file\n  --> t.toml:1:2\n  |\n1 | [nodes.a]\n  |  ^^^^^\n\n\
                 error: `replicas` must be an integer\n  --> --set nodes.a.replicas=x\n{caret}\n  = help: write a number\n"
            )
        );
    }

    #[test]
    fn control_characters_do_not_reach_the_terminal() {
        assert_eq!(printable("a\tb\x1b[31mc", 100), "a b\u{fffd}[31mc");
        assert_eq!(printable("one\n  --> forged.toml:1:1", 100), "one\\n  --> forged.toml:1:1");
        assert_eq!(printable("abcdef", 3), "abc...");
    }
}
