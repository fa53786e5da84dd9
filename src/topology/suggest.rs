//! Help for a misspelt name: the likely intended one ("did you mean"), lists of the known
//! ones, and user text shortened for messages. Each is bounded in time and memory whatever
//! the file holds: a suggestion compares at most [`MAX_WORD`] characters with a banded
//! distance, and a list names at most [`MAX_LISTED`] items.

/// Words longer than this get no suggestion: no name or key is that long (names are at most
/// [`super::names::MAX_NAME_CHARS`]), so such a word is no typo of one.
pub const MAX_WORD: usize = 80;
/// A list of alternatives names at most this many, then says how many more there are.
pub const MAX_LISTED: usize = 16;
/// User text quoted in a message is cut to this many characters.
pub const MAX_QUOTED: usize = 40;

/// The closest of `candidates` to `word`, if it is close enough to be a typo: the same word
/// in another case, or a few edits away (a swap of two neighbours counts as one edit; short
/// words allow one edit only, so `udp` does not suggest `tcp`).
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if word.len() > MAX_WORD * 4 {
        return None;
    }
    let lower: Vec<char> = word.to_lowercase().chars().collect();
    if lower.len() > MAX_WORD {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    let mut rows = Rows::default();
    for c in candidates {
        if c.eq_ignore_ascii_case(word) {
            return Some(c);
        }
        let len = c.chars().count();
        if len > MAX_WORD {
            continue;
        }
        let allowed = if c.len() <= 3 { 1 } else { 2.max(c.len() / 3) };
        // Below `len.max(word)`: a word is never "close" to one it shares nothing with.
        let limit = allowed.min(len.max(lower.len()) - 1);
        if lower.len().abs_diff(len) > limit || best.is_some_and(|(d, _)| d <= lower.len().abs_diff(len)) {
            continue;
        }
        if let Some(d) = rows.distance(&lower, c, limit) {
            if best.is_none_or(|(b, _)| d < b) {
                best = Some((d, c));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// The three rows of the optimal string alignment table, reused from one candidate to the
/// next.
#[derive(Default)]
struct Rows {
    before: Vec<usize>,
    previous: Vec<usize>,
    current: Vec<usize>,
    b: Vec<char>,
}

impl Rows {
    /// The optimal string alignment distance of `a` and `b` (insertions, deletions,
    /// substitutions and swaps of neighbours each cost one) if it is at most `limit`.
    fn distance(&mut self, a: &[char], b: &str, limit: usize) -> Option<usize> {
        self.b.clear();
        self.b.extend(b.chars());
        let b = &self.b;
        let n = b.len();
        let big = usize::MAX / 2;
        for row in [&mut self.before, &mut self.previous, &mut self.current] {
            row.clear();
            row.resize(n + 1, big);
        }
        for (j, cell) in self.previous.iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            self.current.fill(big);
            self.current[0] = i;
            let mut row_min = self.current[0];
            // Only cells within `limit` of the diagonal can stay within `limit`.
            let (lo, hi) = (i.saturating_sub(limit).max(1), (i + limit).min(n));
            for j in lo..=hi {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (self.previous[j] + 1).min(self.current[j - 1] + 1).min(self.previous[j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(self.before[j - 2] + 1);
                }
                self.current[j] = best;
                row_min = row_min.min(best);
            }
            if row_min > limit {
                return None;
            }
            std::mem::swap(&mut self.before, &mut self.previous);
            std::mem::swap(&mut self.previous, &mut self.current);
        }
        Some(self.previous[n]).filter(|&d| d <= limit)
    }
}

/// `items` joined with `, `, at most [`MAX_LISTED`] of them, then `and N more`.
pub fn list<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = items.len();
    let shown: Vec<String> = items.take(MAX_LISTED).map(|s| elide(s).into_owned()).collect();
    match total - shown.len() {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// `text` cut to [`MAX_QUOTED`] characters (then `...`), for quoting user text in a message.
pub fn elide(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_QUOTED) {
        None => text.into(),
        Some((end, _)) => format!("{}...", &text[..end]).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("replica", ["replicas", "inputs"]), Some("replicas"));
        assert_eq!(did_you_mean("filtr", ["filter", "tally"]), Some("filter"));
        assert_eq!(did_you_mean("zzz", ["filter", "tally"]), None);
        assert_eq!(did_you_mean("TCP", ["ipc", "tcp"]), Some("tcp"));
        assert_eq!(did_you_mean("icp", ["ipc", "tcp"]), Some("ipc"));
        assert_eq!(did_you_mean("udp", ["ipc", "tcp"]), None);
        assert_eq!(did_you_mean("rpelicas", ["replicas"]), Some("replicas"));
        assert_eq!(did_you_mean("a", ["b"]), None);
        assert_eq!(did_you_mean("", ["b", ""]), Some(""));
    }

    #[test]
    fn the_closest_wins_and_ties_go_to_the_first() {
        assert_eq!(did_you_mean("fetchs", ["fetch", "fetches"]), Some("fetch"));
        assert_eq!(did_you_mean("sourc", ["source", "sources"]), Some("source"));
    }

    #[test]
    fn long_words_get_no_suggestion() {
        let long = "a".repeat(100_000);
        let other = format!("{long}b");
        assert_eq!(did_you_mean(&other, [long.as_str()]), None);
        assert_eq!(did_you_mean(&"a".repeat(MAX_WORD + 1), ["a".repeat(MAX_WORD).as_str()]), None);
        assert_eq!(
            did_you_mean(&"a".repeat(MAX_WORD - 1), ["a".repeat(MAX_WORD).as_str()]),
            Some("a".repeat(MAX_WORD).as_str())
        );
    }

    #[test]
    fn lists_and_quotes_are_bounded() {
        let names: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
        let l = list(names.iter().map(String::as_str));
        assert!(l.starts_with("n0, n1, ") && l.ends_with("n15 and 84 more"), "{l}");
        assert_eq!(list(["a", "b"].into_iter()), "a, b");
        assert_eq!(elide("short"), "short");
        let long = "x".repeat(65_536);
        assert_eq!(elide(&long), format!("{}...", "x".repeat(MAX_QUOTED)));
    }
}
