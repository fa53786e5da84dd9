//! Help for a misspelt name: the likely intended one ("did you mean"), lists of the known
//! ones, and user text shortened for messages. Each is bounded in time and memory whatever
//! the file holds: a suggestion compares words of at most [`MAX_WORD`] characters (with
//! `strsim`'s optimal string alignment distance), and a list names at most [`MAX_LISTED`]
//! items.

/// Words longer than this get no suggestion: no name or key is that long (names are at most
/// [`super::names::MAX_NAME_CHARS`]), so such a word is no typo of one.
pub const MAX_WORD: usize = 80;
/// A list of alternatives names at most this many, then says how many more there are.
pub const MAX_LISTED: usize = 16;
/// User text quoted in a message is cut to this many characters.
pub const MAX_QUOTED: usize = 40;

/// The closest of `candidates` to `word`, if it is close enough to be a typo: the same word
/// in another case, or a few edits away (insertions, deletions, substitutions, and a swap of
/// two neighbours, each one edit: the optimal string alignment distance; short words allow
/// one edit only, so `udp` does not suggest `tcp`). Ties go to the first candidate.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if word.len() > MAX_WORD * 4 {
        return None;
    }
    let lower = word.to_lowercase();
    let lower_len = lower.chars().count();
    if lower_len > MAX_WORD {
        return None;
    }
    let letters = Letters::of(&lower);
    let mut best: Option<(usize, &str)> = None;
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
        let limit = allowed.min(len.max(lower_len) - 1);
        // Cheap lower bounds of the distance first, the lengths then the letters: most
        // candidates stop here, and the full distance is computed for the few that do not.
        let beaten = |bound: usize| bound > limit || best.is_some_and(|(d, _)| d <= bound);
        if beaten(lower_len.abs_diff(len)) || beaten(letters.distance_to(c)) {
            continue;
        }
        let d = strsim::osa_distance(&lower, c);
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// How many of each letter a word holds, counted in 64 classes (letters in one class count
/// as one): a lower bound of the distance to another word, in one pass over it.
struct Letters([i32; 64]);

impl Letters {
    fn class(c: char) -> usize {
        c as usize % 64
    }

    fn of(word: &str) -> Letters {
        let mut counts = [0; 64];
        for c in word.chars() {
            counts[Self::class(c)] += 1;
        }
        Letters(counts)
    }

    /// At most the optimal string alignment distance to `other`: an insertion or a deletion
    /// changes one count by one, a substitution two counts by one each (one up, one down), a
    /// swap none; so the distance is at least the larger of the two words' surpluses.
    /// (Merging letters into classes only lowers the surpluses.)
    fn distance_to(&self, other: &str) -> usize {
        let mut counts = self.0;
        for c in other.chars() {
            counts[Self::class(c)] -= 1;
        }
        let (mine, theirs) = counts.iter().fold((0, 0), |(m, t), &n| if n > 0 { (m + n, t) } else { (m, t - n) });
        mine.max(theirs) as usize
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

    // The suggestions a topology's typos get, pinned through the move to `strsim`: keys,
    // kinds and values as the compiler lists them.
    #[test]
    fn typical_typos_get_their_key() {
        let node_keys = ["kind", "command", "inputs", "replicas", "transport", "start", "restart", "max_restarts"];
        assert_eq!(did_you_mean("replica", node_keys), Some("replicas"));
        assert_eq!(did_you_mean("input", node_keys), Some("inputs"));
        assert_eq!(did_you_mean("max_restart", node_keys), Some("max_restarts"));
        assert_eq!(did_you_mean("Kind", node_keys), Some("kind"));
        assert_eq!(did_you_mean("comand", node_keys), Some("command"));
        assert_eq!(did_you_mean("restrat", node_keys), Some("restart"), "a swap of neighbours is one edit");
        assert_eq!(did_you_mean("stat", node_keys), Some("start"));
        assert_eq!(did_you_mean("replicaz", node_keys), Some("replicas"));
        let fetch = ["url_field", "concurrency", "timeout_ms", "retries", "max_body_bytes", "user_agent"];
        assert_eq!(did_you_mean("concurency", fetch), Some("concurrency"));
        assert_eq!(did_you_mean("timeout", fetch), Some("timeout_ms"));
        assert_eq!(did_you_mean("useragent", fetch), Some("user_agent"));
        let kinds = ["lines", "fetch", "filter", "tally", "sink", "serve"];
        assert_eq!(did_you_mean("fitler", kinds), Some("filter"));
        assert_eq!(did_you_mean("line", kinds), Some("lines"));
        assert_eq!(did_you_mean("server", kinds), Some("serve"));
        assert_eq!(did_you_mean("count", kinds), None);
        assert_eq!(did_you_mean("on_failure", ["never", "on-failure"]), Some("on-failure"));
        assert_eq!(did_you_mean("forkserve", ["spawn", "fork", "forkserver"]), Some("forkserver"));
        assert_eq!(did_you_mean("exactly_once", ["exactly-once", "at-most-once"]), Some("exactly-once"));
        assert_eq!(did_you_mean("json", ["text", "jsonl"]), Some("jsonl"));
        assert_eq!(did_you_mean("nodse", ["nodes"]), Some("nodes"));
    }

    #[test]
    fn the_closest_wins_and_ties_go_to_the_first() {
        assert_eq!(did_you_mean("fetchs", ["fetch", "fetches"]), Some("fetch"));
        assert_eq!(did_you_mean("sourc", ["source", "sources"]), Some("source"));
    }

    // The letter counts may only skip candidates the full distance would refuse.
    #[test]
    fn the_letter_bound_is_at_most_the_distance() {
        let words =
            ["", "a", "ab", "ba", "abc", "cab", "replicas", "rpelicas", "Grüße", "grusse", "a!", "!a", "aaaa", "bbb"];
        for a in words {
            for b in words {
                let bound = Letters::of(a).distance_to(b);
                assert!(bound <= strsim::osa_distance(a, b), "{a:?} {b:?}: {bound}");
            }
        }
        assert_eq!(Letters::of("replicas").distance_to("rpelicas"), 0, "a swap changes no count");
        assert_eq!(Letters::of("abc").distance_to("xyz"), 3);
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
