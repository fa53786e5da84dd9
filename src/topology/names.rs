//! What a name in a topology may be. Node, port and host names end up in socket paths, log
//! prefixes, process names and environment variables, so they are plain and short; the
//! topology's own name is free text, but short too. An environment variable's name (in
//! `${NAME}` and a node's `env`) is the portable kind.

use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::suggest::elide;

/// The longest name, in characters, of a node, a port, a host or the topology. Documented in
/// `docs/topology.md`.
pub const MAX_NAME_CHARS: usize = 64;

/// Whether `name` is made of letters, digits, `_` and `-` only (and is not empty).
pub fn is_plain(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `name` is a portable environment variable name: letters, digits and `_`, not
/// starting with a digit.
pub fn is_variable(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Record an error if `name` (a `what`, such as "node name") is longer than
/// [`MAX_NAME_CHARS`]; true if its length is fine.
pub fn check_length(what: &str, name: &Spanned<String>, diags: &mut Diagnostics) -> bool {
    let chars = name.get_ref().chars().count();
    if chars <= MAX_NAME_CHARS {
        return true;
    }
    diags.push(
        Diagnostic::error(
            name.span(),
            format!(
                "{what} `{}` is {chars} characters long; at most {MAX_NAME_CHARS} are allowed",
                elide(name.get_ref())
            ),
        )
        .with_help("names end up in socket paths, log prefixes and process names: shorten it"),
    );
    false
}
