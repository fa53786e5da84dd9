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
        // The lengths alone bound the distance from below: most candidates stop here.
        let gap = lower_len.abs_diff(len);
        if gap > limit || best.is_some_and(|(d, _)| d <= gap) {
            continue;
        }
        let d = strsim::osa_distance(&lower, c);
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
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
