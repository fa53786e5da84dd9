//! The raw stage of a topology: typed reads from the spanned TOML tree, each remembering where
//! its value stood in the file.
//!
//! serde with `deny_unknown_fields` stops at the first problem; reading the spanned tree
//! ourselves lets validation report every problem at once, each with its position.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::suggest::did_you_mean;

/// A byte range in the topology source.
pub type Span = Range<usize>;

/// A TOML table being read, with a description for messages (for example "node `check`").
pub struct Table<'a, 'i> {
    map: &'a DeTable<'i>,
    span: Span,
    anchor: Span,
    what: String,
}

impl<'a, 'i> Table<'a, 'i> {
    /// Read `value` as a table, or record that it is not one.
    pub fn new(value: &'a Spanned<DeValue<'i>>, what: String, diags: &mut Diagnostics) -> Option<Self> {
        match value.get_ref() {
            DeValue::Table(map) => Some(Table { map, span: value.span(), anchor: value.span(), what }),
            other => {
                diags.error(value.span(), format!("{what} must be a table, found {}", other.type_str()));
                None
            }
        }
    }

    /// Point "missing key" errors at `span` (for a node, its name) instead of the table.
    pub fn anchored_at(mut self, span: Span) -> Self {
        self.anchor = span;
        self
    }

    /// Where "missing key" errors point.
    pub fn anchor(&self) -> Span {
        self.anchor.clone()
    }

    /// What this table is, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Where the table stands in the file.
    pub fn span(&self) -> Span {
        self.span.clone()
    }

    /// The entries, in file order.
    pub fn entries(&self) -> Vec<(&'a Spanned<std::borrow::Cow<'i, str>>, &'a Spanned<DeValue<'i>>)> {
        let mut entries: Vec<_> = self.map.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
    }

    /// The raw value under `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.map.get(key)
    }

    /// The span of `key` itself (not its value), if present.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.map.get_key_value(key).map(|(k, _)| k.span())
    }

    fn wrong_type(&self, key: &str, want: &str, found: &Spanned<DeValue<'i>>, diags: &mut Diagnostics) {
        diags.error(
            found.span(),
            format!("`{key}` in {} must be {want}, found {}", self.what, found.get_ref().type_str()),
        );
    }

    /// A string value.
    pub fn str(&self, key: &str, diags: &mut Diagnostics) -> Option<Spanned<String>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            _ => {
                self.wrong_type(key, "a string", v, diags);
                None
            }
        }
    }

    /// An integer value.
    pub fn int(&self, key: &str, diags: &mut Diagnostics) -> Option<Spanned<i64>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Spanned::new(v.span(), n)),
                Err(_) => {
                    diags.error(v.span(), format!("`{key}` in {} is out of range", self.what));
                    None
                }
            },
            _ => {
                self.wrong_type(key, "an integer", v, diags);
                None
            }
        }
    }

    /// A boolean value.
    pub fn bool(&self, key: &str, diags: &mut Diagnostics) -> Option<Spanned<bool>> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(v.span(), *b)),
            _ => {
                self.wrong_type(key, "true or false", v, diags);
                None
            }
        }
    }

    /// An array of strings.
    pub fn str_list(&self, key: &str, diags: &mut Diagnostics) -> Option<Spanned<Vec<Spanned<String>>>> {
        let v = self.get(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(key, "an array of strings", v, diags);
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Spanned::new(item.span(), s.to_string())),
                other => diags.error(
                    item.span(),
                    format!("`{key}` in {} must hold strings, found {}", self.what, other.type_str()),
                ),
            }
        }
        Some(Spanned::new(v.span(), out))
    }

    /// A string that must be one of `choices`.
    pub fn choice(&self, key: &str, choices: &[&str], diags: &mut Diagnostics) -> Option<Spanned<String>> {
        let s = self.str(key, diags)?;
        if choices.contains(&s.get_ref().as_str()) {
            return Some(s);
        }
        let mut d = Diagnostic::error(
            s.span(),
            format!("`{key}` in {} is `{}`; expected one of: {}", self.what, s.get_ref(), choices.join(", ")),
        );
        if let Some(m) = did_you_mean(s.get_ref(), choices.iter().copied()) {
            d = d.with_help(format!("did you mean `{m}`?"));
        }
        diags.push(d);
        None
    }

    /// Record an error for every key not in `allowed`, suggesting the likely intended one,
    /// or, through `elsewhere`, saying where an unknown key does belong.
    pub fn deny_unknown(&self, allowed: &[&str], diags: &mut Diagnostics) {
        self.deny_unknown_with(allowed, |_| None, diags);
    }

    /// [`Table::deny_unknown`], with `elsewhere(key)` giving a help line for keys that belong
    /// to something else (for example another node kind).
    pub fn deny_unknown_with(
        &self,
        allowed: &[&str],
        elsewhere: impl Fn(&str) -> Option<String>,
        diags: &mut Diagnostics,
    ) {
        for (key, _) in self.entries() {
            let name = key.get_ref().as_ref();
            if allowed.contains(&name) {
                continue;
            }
            let d = Diagnostic::error(key.span(), format!("unknown key `{name}` in {}", self.what));
            let known = format!("known keys: {}", allowed.join(", "));
            diags.push(match (did_you_mean(name, allowed.iter().copied()), elsewhere(name)) {
                (Some(m), _) => d.with_help(format!("did you mean `{m}`? {known}")),
                (None, Some(hint)) => d.with_help(format!("{hint}; {known}")),
                (None, None) => d.with_help(known),
            });
        }
    }

    /// Record an error at the anchor if `key` is absent.
    pub fn require(&self, key: &str, hint: &str, diags: &mut Diagnostics) {
        if self.get(key).is_none() {
            diags.push(
                Diagnostic::error(self.anchor(), format!("{} is missing `{key}`", self.what))
                    .with_help(hint.to_string()),
            );
        }
    }

    /// A string that must not be empty, such as a path.
    pub fn non_empty_str(&self, key: &str, diags: &mut Diagnostics) -> Option<Spanned<String>> {
        let s = self.str(key, diags)?;
        if s.get_ref().is_empty() {
            diags.error(s.span(), format!("`{key}` in {} is empty", self.what));
            return None;
        }
        Some(s)
    }
}

/// `path` resolved against `base`, unless it is absolute: how every path read from the file
/// (a command's program, a built-in kind's `path`, `dir` or `output`) resolves against the
/// file's directory.
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
