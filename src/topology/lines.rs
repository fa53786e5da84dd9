//! Where each line of a topology file starts, computed once, so that turning a byte offset
//! into `line:column` costs a binary search and one line's characters instead of a scan of
//! the whole file per diagnostic.

/// The start of every line of a text.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset of the start of each line; the first is 0.
    starts: Vec<usize>,
}

impl LineIndex {
    /// Index the lines of `text` (lines end at `\n`).
    pub fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1)).collect();
        LineIndex { starts }
    }

    /// 1-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }

    /// The bytes of 1-based line `line`, with its end; empty for a line past the last.
    pub fn span_of(&self, line: usize) -> std::ops::Range<usize> {
        match (self.starts.get(line.wrapping_sub(1)), self.starts.get(line)) {
            (Some(&start), Some(&next)) => start..next,
            (Some(&start), None) => start..usize::MAX,
            _ => 0..0,
        }
    }

    /// 1-based line and column (in characters) of byte `offset` of `text`, the text indexed.
    /// The column costs a count of the characters before it on its line.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = self.line_of(offset);
        let start = self.starts[line - 1];
        (line, text[start..offset].chars().count() + 1)
    }

    /// The text of 1-based line `line`, without its line end (`\n` or `\r\n`).
    pub fn line<'t>(&self, text: &'t str, line: usize) -> &'t str {
        let Some(&start) = self.starts.get(line.wrapping_sub(1)) else { return "" };
        let end = self.starts.get(line).map_or(text.len(), |&next| next - 1);
        let l = &text[start.min(text.len())..end.max(start).min(text.len())];
        l.strip_suffix('\r').unwrap_or(l)
    }
}

/// The largest char boundary of `s` at or before `i` (`i` at most `s.len()`).
pub fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let src = "a = 1\nbé = 2\n";
        let idx = LineIndex::new(src);
        assert_eq!(idx.line_col(src, 0), (1, 1));
        assert_eq!(idx.line_col(src, 6), (2, 1));
        assert_eq!(idx.line_col(src, 9), (2, 3));
        // Inside a character, and past the end.
        assert_eq!(idx.line_col(src, 8), (2, 2));
        assert_eq!(idx.line_col(src, 100), (3, 1));
    }

    #[test]
    fn lines_come_without_their_end() {
        let src = "one\r\ntwo\n\nlast";
        let idx = LineIndex::new(src);
        assert_eq!(idx.line(src, 1), "one");
        assert_eq!(idx.line(src, 2), "two");
        assert_eq!(idx.line(src, 3), "");
        assert_eq!(idx.line(src, 4), "last");
        assert_eq!(idx.line(src, 5), "");
        assert_eq!(idx.line(src, 0), "");
    }
}
