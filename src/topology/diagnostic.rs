//! Problems found in a topology file, each tied to a span of the source, and their rendering
//! as `file:line:column` with the offending line and a caret, like rustc and just do.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

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
        Diagnostic {
            severity: Severity::Error,
            span,
            message: message.into(),
            help: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            span,
            message: message.into(),
            help: None,
        }
    }

    /// The same diagnostic with a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Collects diagnostics while a topology is read and compiled, so that every problem is
/// reported at once instead of stopping at the first.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Record a diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// Record an error at `span`.
    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(Diagnostic::error(span, message));
    }

    /// Whether any error (not warning) was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The diagnostics in source order (stable for equal positions).
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| d.span.start);
        self.items
    }
}

/// A source file and its diagnostics, ready to print.
#[derive(Debug)]
pub struct Report {
    /// The path as the user gave it, so messages point where they looked.
    pub path: PathBuf,
    /// The file's text.
    pub source: String,
    /// Every problem, errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Number of errors (warnings excluded).
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn render(f: &mut fmt::Formatter<'_>, path: &Path, source: &str, d: &Diagnostic) -> fmt::Result {
    let label = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let (line, col) = line_col(source, d.span.start);
    writeln!(f, "{label}: {}", d.message)?;
    writeln!(f, "  --> {}:{line}:{col}", path.display())?;
    let text = source.lines().nth(line - 1).unwrap_or("");
    let gutter = " ".repeat(line.to_string().len());
    let start = floor_char_boundary(source, d.span.start.min(source.len()));
    let end = floor_char_boundary(source, d.span.end.min(source.len())).max(start);
    let width = source[start..end]
        .lines()
        .next()
        .map_or(0, |s| s.chars().count())
        .max(1);
    writeln!(f, "{gutter} |")?;
    writeln!(f, "{line} | {text}")?;
    writeln!(f, "{gutter} | {}{}", " ".repeat(col - 1), "^".repeat(width))?;
    if let Some(help) = &d.help {
        writeln!(f, "{gutter} = help: {help}")?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            render(f, &self.path, &self.source, d)?;
        }
        Ok(())
    }
}

/// The closest of `candidates` to `word` by edit distance, if it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, c)| d <= 2.max(c.len() / 3) && d < c.len().max(word.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 9), (2, 3));
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("replica", ["replicas", "inputs"]), Some("replicas"));
        assert_eq!(did_you_mean("filtr", ["filter", "tally"]), Some("filter"));
        assert_eq!(did_you_mean("zzz", ["filter", "tally"]), None);
    }
}
