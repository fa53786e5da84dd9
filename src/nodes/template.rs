//! Line templates like `"{error}: {url}"`: text with `{field}` placeholders (`{{` and `}}`
//! for braces), checked when the topology is compiled and rendered per record.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A parsed template. Serialized as its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field(String),
}

impl Template {
    /// Parse `source`, or say what is wrong with it.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed || name.is_empty() || name.contains('{') {
                        return Err("a `{` must open a field name closed by `}` (write `{{` for a brace)".into());
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Field(name));
                }
                '}' => return Err("a lone `}` (write `}}` for a brace)".into()),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { source: source.to_string(), parts })
    }

    /// Render with `lookup(field)` giving each field's text (missing fields render empty).
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<std::borrow::Cow<'a, str>>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => out.push_str(&lookup(f).unwrap_or_default()),
            }
        }
        out
    }

    /// The field names the template uses.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.as_str()),
            Part::Text(_) => None,
        })
    }
}

/// Read option `key` of `t` as a template, recording a parse error at its position.
pub fn template_option(
    t: &crate::topology::raw::Table<'_, '_>,
    key: &str,
    diags: &mut crate::topology::diagnostic::Diagnostics,
) -> Option<Template> {
    let s = t.str(key, diags)?;
    Template::parse(s.get_ref())
        .map_err(|e| diags.error(s.span(), format!("`{key}` in {} is not a valid template: {e}", t.what())))
        .ok()
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Template::parse(&source).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_and_escaped_braces() {
        let t = Template::parse("{error}: {url} {{x}}").unwrap();
        let out = t.render(|f| match f {
            "error" => Some("403 Forbidden".into()),
            "url" => Some("http://a.test/".into()),
            _ => None,
        });
        assert_eq!(out, "403 Forbidden: http://a.test/ {x}");
        assert_eq!(t.fields().collect::<Vec<_>>(), ["error", "url"]);
    }

    #[test]
    fn unbalanced_braces_are_errors() {
        assert!(Template::parse("{url").is_err());
        assert!(Template::parse("a } b").is_err());
        assert!(Template::parse("{}").is_err());
    }
}
