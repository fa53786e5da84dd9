//! `${VAR}` and `${VAR:-default}` in the string values of a topology file, from the
//! launcher's environment, expanded once the file is parsed and before anything reads it.
//!
//! - `${NAME}` is the variable's value; unset, it is an error (with the position of the
//!   `${...}`). `${NAME:-default}` is `default` when NAME is unset or empty. NAME is letters,
//!   digits and `_`, not starting with a digit; a default holds no `}` and no `${`.
//! - `$${` is a literal `${`. Any other `$` is itself (`$$`, `$HOME`, a regex's `$`).
//! - `${node.key}` (a dot in the braces) is a value a node publishes (`connect_to =
//!   "${site.url}"`), resolved when the network is wired: it is left as it is.
//! - Keys are never expanded, nor is the text a variable brings in (a value holding `${X}`
//!   stays so).
//!
//! Every problem is recorded in [`Diagnostics`], so that a file with three unset variables
//! says so three times, with everything else that is wrong with it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::env::VarError;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::names::is_variable;

/// Where `${NAME}` looks a variable up: [`process_env`] outside tests.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

/// The launcher's own environment.
pub fn process_env(name: &str) -> Result<String, VarError> {
    std::env::var(name)
}

/// The variables a file referred to, each with its value when it was expanded (None: unset,
/// so its defaults applied).
pub type Used = BTreeMap<String, Option<String>>;

/// A problem in one string, at bytes `at` of its (decoded) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The bytes of the string that are wrong: a `${...}`, or from an unclosed `${` on.
    pub at: Range<usize>,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub help: String,
}

const FORMS: &str = "a variable is `${NAME}` or `${NAME:-default}`, NAME made of letters, digits and `_`; \
                     write `$${` for a literal `${`";

/// `text` with its variables expanded, or None if it has none (nor `$${`): then it is left
/// as it is. Problems are pushed on `problems`; the text of a `${...}` that has one is kept.
pub fn expand(text: &str, lookup: Lookup<'_>, used: &mut Used, problems: &mut Vec<Problem>) -> Option<String> {
    if !text.contains("${") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(found) = text[rest..].find('$') {
        let at = rest + found;
        out.push_str(&text[rest..at]);
        let after = &text[at..];
        if after.starts_with("$${") {
            out.push_str("${");
            rest = at + 3;
        } else if after.starts_with("${") {
            let Some(close) = after.find('}') else {
                problems.push(Problem {
                    at: at..text.len(),
                    message: "`${` has no closing `}`".into(),
                    help: FORMS.into(),
                });
                out.push_str(after);
                return Some(out);
            };
            let whole = &after[..=close];
            match variable(&after[2..close], lookup, used) {
                Ok(Some(value)) => out.push_str(&value),
                Ok(None) => out.push_str(whole),
                Err((message, help)) => {
                    problems.push(Problem { at: at..at + whole.len(), message, help });
                    out.push_str(whole);
                }
            }
            rest = at + whole.len();
        } else {
            out.push('$');
            rest = at + 1;
        }
    }
    out.push_str(&text[rest..]);
    Some(out)
}

/// The value of `${inner}`: Some(value), None for a published value (`${node.key}`, kept as
/// it is), or what is wrong (message, help).
fn variable(inner: &str, lookup: Lookup<'_>, used: &mut Used) -> Result<Option<String>, (String, String)> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    if !is_variable(name) {
        if default.is_none() && inner.contains('.') {
            return Ok(None);
        }
        return Err((format!("`${{{inner}}}` is not a variable"), FORMS.into()));
    }
    if default.is_some_and(|d| d.contains("${")) {
        return Err((
            format!("the default of `{name}` holds `${{`: variables do not nest"),
            format!("give a plain default, `${{{name}:-value}}`, or write `$${{` for a literal `${{`"),
        ));
    }
    let value = match lookup(name) {
        Ok(value) => Some(value),
        Err(VarError::NotPresent) => None,
        Err(VarError::NotUnicode(_)) => {
            return Err((
                format!("environment variable `{name}` is not UTF-8 text"),
                "a topology is UTF-8: set the variable to UTF-8 text".into(),
            ))
        }
    };
    used.insert(name.to_string(), value.clone());
    match (value, default) {
        (Some(v), Some(d)) if v.is_empty() => Ok(Some(d.to_string())),
        (Some(v), _) => Ok(Some(v)),
        (None, Some(d)) => Ok(Some(d.to_string())),
        (None, None) => Err((
            format!("environment variable `{name}` is not set"),
            format!("set it, or give a default: `${{{name}:-value}}`; `$${{` is a literal `${{`"),
        )),
    }
}

/// Expand every string value of `doc` (in tables, arrays and inline tables, not keys), whose
/// text is `source`. Problems become errors at the `${...}` in the file when the string is
/// written without escapes, else at the whole string. Returns the variables referred to.
pub(super) fn expand_document(
    doc: &mut Spanned<DeTable<'_>>,
    source: &str,
    lookup: Lookup<'_>,
    diags: &mut Diagnostics,
) -> Used {
    let mut used = Used::new();
    let mut walk = Walk { source, lookup, used: &mut used, diags };
    walk.table(doc.get_mut());
    used
}

struct Walk<'w> {
    source: &'w str,
    lookup: Lookup<'w>,
    used: &'w mut Used,
    diags: &'w mut Diagnostics,
}

impl Walk<'_> {
    fn table(&mut self, table: &mut DeTable<'_>) {
        for (_, value) in table.iter_mut() {
            self.value(value);
        }
    }

    fn value(&mut self, value: &mut Spanned<DeValue<'_>>) {
        let span = value.span();
        match value.get_mut() {
            DeValue::String(text) => {
                let mut problems = Vec::new();
                if let Some(expanded) = expand(text, self.lookup, self.used, &mut problems) {
                    for p in problems {
                        let at = locate(self.source, span.clone(), text, p.at);
                        self.diags.push(Diagnostic::error(at, p.message).with_help(p.help));
                    }
                    *text = Cow::Owned(expanded);
                }
            }
            DeValue::Array(items) => {
                for item in items.iter_mut() {
                    self.value(item);
                }
            }
            DeValue::Table(table) => self.table(table),
            DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_) => {}
        }
    }
}

/// Where bytes `at` of string `text`, written at `span` of `source`, are in the file: exactly
/// when the string is written as it reads (no escape, no line-ending backslash), else the
/// whole string.
fn locate(source: &str, span: Range<usize>, text: &str, at: Range<usize>) -> Range<usize> {
    let Some(written) = source.get(span.clone()) else { return span };
    let quotes = if written.starts_with("\"\"\"") || written.starts_with("'''") { 3 } else { 1 };
    let Some(body) = written.get(quotes..written.len().saturating_sub(quotes)) else { return span };
    // A multi-line string drops a line end right after its opening quotes.
    let skip = match (quotes, body.starts_with("\r\n"), body.starts_with('\n')) {
        (3, true, _) => 2,
        (3, _, true) => 1,
        _ => 0,
    };
    if body.get(skip..) == Some(text) {
        let start = span.start + quotes + skip;
        start + at.start..start + at.end
    } else {
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "HOME" => Ok("/home/me".into()),
            "EMPTY" => Ok(String::new()),
            "MODE" => Ok("fast".into()),
            "BRACES" => Ok("${MODE}".into()),
            _ => Err(VarError::NotPresent),
        }
    }

    /// The expansion of `text` (itself when there is nothing to expand), and the problems.
    fn run(text: &str) -> (String, Vec<Problem>) {
        let mut problems = Vec::new();
        let out = expand(text, &env, &mut Used::new(), &mut problems).unwrap_or_else(|| text.to_string());
        (out, problems)
    }

    fn ok(text: &str) -> String {
        let (out, problems) = run(text);
        assert!(problems.is_empty(), "{text}: {problems:?}");
        out
    }

    #[test]
    fn variables_and_defaults() {
        assert_eq!(ok("${HOME}/data"), "/home/me/data");
        assert_eq!(ok("a${MODE}b${MODE}"), "afastbfast");
        assert_eq!(ok("${NOPE:-slow}"), "slow");
        assert_eq!(ok("${MODE:-slow}"), "fast");
        // As in the shell: an empty variable takes the default, and an empty default is fine.
        assert_eq!(ok("${EMPTY:-x}"), "x");
        assert_eq!(ok("[${EMPTY}]"), "[]");
        assert_eq!(ok("${NOPE:-}"), "");
        assert_eq!(ok("${NOPE:-a b:-c}"), "a b:-c");
        assert!(is_variable("_x1") && is_variable("PATH") && !is_variable("1X") && !is_variable("A-B"));
        assert!(!is_variable(""));
    }

    #[test]
    fn what_a_variable_brings_is_not_expanded_again() {
        assert_eq!(ok("${BRACES}"), "${MODE}");
    }

    #[test]
    fn escapes_and_other_dollars() {
        assert_eq!(ok("$${HOME}"), "${HOME}");
        // Left to right: a `$`, then the escape.
        assert_eq!(ok("$$${HOME}"), "$${HOME}");
        assert_eq!(ok("cost: $5, $$, $HOME, ^a$"), "cost: $5, $$, $HOME, ^a$");
        assert_eq!(ok("$"), "$");
        assert_eq!(ok("$${"), "${");
    }

    #[test]
    fn published_values_are_left_alone() {
        assert_eq!(ok("${site.url}"), "${site.url}");
        assert_eq!(ok("http://${a-b.url}/x"), "http://${a-b.url}/x");
    }

    #[test]
    fn problems_are_placed_on_their_variable() {
        let (out, problems) = run("a ${NOPE} b ${MODE} ${ALSO}");
        assert_eq!(out, "a ${NOPE} b fast ${ALSO}");
        let at: Vec<_> = problems.iter().map(|p| p.at.clone()).collect();
        assert_eq!(at, [2..9, 20..27]);
        assert_eq!(problems[0].message, "environment variable `NOPE` is not set");
        assert!(problems[0].help.contains("`${NOPE:-value}`"), "{}", problems[0].help);

        let (_, problems) = run("x ${OPEN");
        assert_eq!(problems[0].at, 2..8);
        assert_eq!(problems[0].message, "`${` has no closing `}`");
        for bad in ["${}", "${1X}", "${A B}", "${A:?x}", "${A-x}", "${site.url:-x}"] {
            let (_, problems) = run(bad);
            assert_eq!(problems.len(), 1, "{bad}");
            assert_eq!(problems[0].message, format!("`{bad}` is not a variable"));
            assert_eq!(problems[0].at, 0..bad.len());
        }
        let (_, problems) = run("${A:-${B}}");
        assert!(problems[0].message.contains("do not nest"), "{problems:?}");
    }

    #[test]
    fn the_variables_used_are_recorded() {
        let mut used = Used::new();
        let mut problems = Vec::new();
        expand("${MODE} ${NOPE:-x} ${site.url} $${HOME}", &env, &mut used, &mut problems);
        assert_eq!(used, Used::from([("MODE".into(), Some("fast".into())), ("NOPE".into(), None)]));
    }

    #[test]
    fn positions_in_the_file() {
        // Plain, literal and multi-line strings map byte for byte; escapes do not.
        let source = r#"a = "x ${V}"
b = 'x ${V}'
c = """
x ${V}"""
d = "\u0078 ${V}"
"#;
        let span = |needle: &str| {
            let start = source.find(needle).expect("in the source");
            start..start + needle.len()
        };
        let at = |needle: &str| locate(source, span(needle), "x ${V}", 2..6);
        let v = |line: usize| {
            let start = source.lines().take(line).map(|l| l.len() + 1).sum::<usize>();
            let col = source.lines().nth(line).expect("a line").find("${V}").expect("a variable");
            start + col..start + col + 4
        };
        assert_eq!(at("\"x ${V}\""), v(0));
        assert_eq!(at("'x ${V}'"), v(1));
        assert_eq!(at("\"\"\"\nx ${V}\"\"\""), v(3));
        assert_eq!(at("\"\\u0078 ${V}\""), span("\"\\u0078 ${V}\""), "an escape: the whole string");
    }
}
