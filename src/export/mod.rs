//! Rendering a validated topology for another engine to run: `procnet export k8s FILE`
//! writes Kubernetes manifests ([`k8s`]).
//!
//! The manifests are built as `serde_json::Value`s and written by the small YAML emitter
//! below ([`to_yaml`]), not by a YAML library (`serde_yaml` is deprecated, and the subset
//! needed is small). It writes block style for readability and stays correct by being
//! conservative: a string is written plain only when it cannot be read as anything but
//! that string (it starts with a letter or `/`, holds only `[A-Za-z0-9._/-]`, and is not a YAML
//! 1.1 boolean or null word such as `yes`, `on`, `y`, `null`); a multi-line string is a
//! literal block (`|`) when that keeps it byte for byte; every other string is double
//! quoted, with JSON's escapes (valid YAML escapes) plus `\uXXXX` for the characters YAML
//! does not allow raw or reads as line breaks. So what a YAML 1.1 or 1.2 parser (kubectl's,
//! PyYAML) reads back is exactly the `Value` that was written.

pub mod k8s;

use serde_json::Value;

/// Several YAML documents, each after a `---` line, in order.
pub fn to_yaml_documents(docs: &[Value]) -> String {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&to_yaml(doc));
    }
    out
}

/// One value as a YAML document (block style), ending with a newline.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        // Only collections are emitted at the top; anything else on one line.
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&string(k));
        out.push(':');
        value_after(out, v, indent);
    }
}

fn seq(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            // The first line of a nested collection goes on the dash's line: written two
            // columns deeper, then its leading spaces give way to the dash.
            Value::Object(m) if !m.is_empty() => {
                let mut inner = String::new();
                map(&mut inner, m, indent + 2);
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            Value::Array(a) if !a.is_empty() => {
                let mut inner = String::new();
                seq(&mut inner, a, indent + 2);
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            _ => value_after(out, v, indent),
        }
    }
}

/// The value of a key at `indent` (or of a dash there), after its `:` or `-`.
fn value_after(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            seq(out, a, indent + 2);
        }
        other => match block_string(other) {
            Some(text) => {
                out.push(' ');
                literal(out, text, indent + 2);
            }
            None => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        },
    }
}

/// A scalar, or an empty collection, on one line.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// A string, plain when it is safe to, else double-quoted.
fn string(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        quoted(s)
    }
}

/// Whether `s` reads back as the same string when written plain, in YAML 1.1 and 1.2.
fn plain_ok(s: &str) -> bool {
    const WORDS: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !WORDS.contains(&s.to_ascii_lowercase().as_str())
}

/// Whether `c` must be escaped in a double-quoted scalar: YAML allows only printable
/// characters raw, and YAML 1.1 reads U+0085, U+2028 and U+2029 as line breaks.
fn needs_escape(c: char) -> bool {
    let u = c as u32;
    u < 0x20
        || (0x7f..=0x9f).contains(&u)
        || matches!(u, 0x2028 | 0x2029 | 0xfeff | 0xfffe | 0xffff)
        || (0xd800..=0xdfff).contains(&u)
}

/// `s` double-quoted.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The text of a string to write as a literal block: several lines, the first not empty,
/// none starting with a space or a tab (so the block's indentation is the one the parser detects), and nothing
/// that would need an escape.
fn block_string(v: &Value) -> Option<&str> {
    let Value::String(s) = v else { return None };
    let ok = s.contains('\n')
        && !s.starts_with('\n')
        && s.chars().all(|c| c == '\n' || c == '\t' || !needs_escape(c))
        && s.split('\n').all(|line| !line.starts_with([' ', '\t']));
    ok.then_some(s.as_str())
}

/// `text` as a literal block whose lines are indented by `indent`; the chomping indicator
/// keeps its trailing newlines exactly.
fn literal(out: &mut String, text: &str, indent: usize) {
    let body = text.trim_end_matches('\n');
    let newlines = text.len() - body.len();
    out.push_str(match newlines {
        0 => "|-\n",
        1 => "|\n",
        _ => "|+\n",
    });
    for line in body.split('\n') {
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..newlines {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_style_with_plain_and_quoted_scalars() {
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "t-a", "labels": {"app.kubernetes.io/part-of": "t"}},
            "spec": {
                "clusterIP": "None",
                "ports": [{"name": "input", "port": 7400}, {"name": "pub-0", "port": 7401}],
                "empty": {},
                "none": [],
                "nested": [["a", "b"], []],
            },
        });
        let expected = "\
apiVersion: v1
kind: Service
metadata:
  name: t-a
  labels:
    app.kubernetes.io/part-of: t
spec:
  clusterIP: None
  ports:
    - name: input
      port: 7400
    - name: pub-0
      port: 7401
  empty: {}
  none: []
  nested:
    - - a
      - b
    - []
";
        assert_eq!(to_yaml(&doc), expected);
    }

    #[test]
    fn strings_that_could_read_as_something_else_are_quoted() {
        for s in
            ["", "1", "1.0", "yes", "No", "on", "Y", "null", "~", "-a", "a: b", "a #b", "$(POD_IP)", " a", "2024-01-01"]
        {
            assert!(!plain_ok(s), "{s:?} written plain");
            assert!(string(s).starts_with('"'), "{s:?}");
        }
        for s in ["node", "/etc/procnet", "app.kubernetes.io/name", "yes-no"] {
            assert!(plain_ok(s), "{s:?}");
        }
        assert!(!plain_ok("procnet:latest"));
        assert_eq!(quoted("a\"b\\c\nd\u{7f}\u{2028}é"), "\"a\\\"b\\\\c\\nd\\u007f\\u2028é\"");
    }

    #[test]
    fn multi_line_strings_are_literal_blocks_with_exact_trailing_newlines() {
        let v = json!({"a": "x\n\ny", "b": "x\ny\n", "c": "x\n\n"});
        assert_eq!(to_yaml(&v), "a: |-\n  x\n\n  y\nb: |\n  x\n  y\nc: |+\n  x\n\n");
        // A line that starts with a space would change the detected indentation: quoted.
        assert_eq!(to_yaml(&json!({"a": "x\n y\n"})), "a: \"x\\n y\\n\"\n");
    }
}
