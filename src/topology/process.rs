//! What a node's program gets besides its arguments: `env`, variables added to its
//! environment, and `cwd`, the directory it runs in. Only a `command` node has a program of
//! its own (a protocol node, or a program over stdio, whose adapter passes them on): a
//! built-in kind runs procnet's code, and an external node is started by hand, so neither may
//! have the keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::de::DeValue;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::Runner;
use super::names::is_variable;
use super::raw::{resolve, Table};
use super::suggest::elide;
use crate::nodes::Kind;

/// The prefix of the variables the launcher sets for every replica (docs/protocol.md,
/// section 2.2): `env` may not name one.
const RESERVED: &str = "PROCNET_";

/// The keys of a node's program, which only a `command` node has.
pub(super) const KEYS: &[&str] = &["env", "cwd"];

/// For a node that is not a `command` (`why` it has no program of its own): the help of an
/// unknown `key`, if it is one of [`KEYS`].
pub(super) fn belongs(key: &str, why: &str) -> Option<String> {
    KEYS.contains(&key).then(|| format!("`{key}` applies to the program of a `command` node: {why}"))
}

/// A node's `env` and `cwd`, read from its table `t`; `runner` is what it runs (None when
/// that is invalid: the values are still checked). Another node has none (its table may not
/// have the keys: [`belongs`] says why). `cwd` resolves against `base_dir` and must be a
/// directory now.
pub(super) fn read_process(
    t: &Table<'_, '_>,
    runner: &Option<Runner>,
    base_dir: &Path,
    diags: &mut Diagnostics,
) -> (BTreeMap<String, String>, Option<PathBuf>) {
    match runner {
        Some(Runner::Command(_) | Runner::Builtin(Kind::Stdio(_))) | None => {
            (read_env(t, diags), read_cwd(t, base_dir, diags))
        }
        Some(Runner::Builtin(_) | Runner::External) => (BTreeMap::new(), None),
    }
}

/// `env`: a table of variable names to strings.
fn read_env(t: &Table<'_, '_>, diags: &mut Diagnostics) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let Some(value) = t.get("env") else { return env };
    let Some(table) = Table::new(value, format!("`env` of {}", t.what()), diags) else { return env };
    for (key, value) in table.entries() {
        let name = key.get_ref().as_ref();
        if !is_variable(name) {
            diags.push(
                Diagnostic::error(key.span(), format!("`{}` in {} is not a variable name", elide(name), table.what()))
                    .with_help("a name is letters, digits and `_`, not starting with a digit"),
            );
            continue;
        }
        if name.starts_with(RESERVED) {
            diags.push(
                Diagnostic::error(
                    key.span(),
                    format!("`{name}` in {} is one of procnet's own variables", table.what()),
                )
                .with_help(format!(
                    "the launcher sets the `{RESERVED}*` variables of every replica (its identity and endpoints); \
                         choose another name"
                )),
            );
            continue;
        }
        match value.get_ref() {
            DeValue::String(text) if text.contains('\0') => diags.error(
                value.span(),
                format!("`{name}` in {} holds a NUL character, which no environment can", table.what()),
            ),
            DeValue::String(text) => {
                env.insert(name.to_string(), text.to_string());
            }
            other => diags.push(
                Diagnostic::error(
                    value.span(),
                    format!("`{name}` in {} must be a string, found {}", table.what(), other.type_str()),
                )
                .with_help("an environment holds text: quote the value"),
            ),
        }
    }
    env
}

/// `cwd`: a directory, relative to the topology's.
fn read_cwd(t: &Table<'_, '_>, base_dir: &Path, diags: &mut Diagnostics) -> Option<PathBuf> {
    let written = t.non_empty_str("cwd", diags)?;
    let dir = resolve(base_dir, written.get_ref());
    let problem = match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => return Some(dir),
        Ok(_) => "is not a directory".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_string(),
        Err(e) => format!("cannot be read: {e}"),
    };
    diags.push(
        Diagnostic::error(
            written.span(),
            format!("`cwd` in {} is `{}`, which {problem}", t.what(), elide(written.get_ref())),
        )
        .with_help("a relative `cwd` is relative to the topology file's directory"),
    );
    None
}
