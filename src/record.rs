//! Records: the unit of data in a procnet network, a MessagePack map with string keys (like a
//! JSON object), plus the conversions to and from JSON that the built-in nodes need.
//!
//! Two forms: [`Record`], decoded, for nodes that build or change records; and
//! [`RawRecord`], the checked bytes read in place, for the hot paths that only look at a
//! field or two and pass records on unchanged (on [`raw`], MessagePack read where it lies).
//! Neither direction between JSON and record bytes builds a tree: [`json_to_record_bytes`]
//! writes a JSON object's record bytes as it parses ([`json`]), and [`text`] writes the JSON
//! text of record bytes as it reads, so what a hostile record or line holds never multiplies
//! in memory. [`lengths`] keeps where the records of a received batch lie, in at most a byte
//! per byte of record.

use std::borrow::Cow;

mod in_place;
pub mod json;
pub mod lengths;
pub mod raw;
pub mod text;

pub use in_place::{RawRecord, RawValue};
pub use json::json_to_record_bytes;

pub use rmpv::Value;

/// One record: ordered fields with string names and MessagePack values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    fields: Vec<(String, Value)>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Record::default()
    }

    /// A record from its fields, in order.
    pub fn from_fields(fields: Vec<(String, Value)>) -> Self {
        Record { fields }
    }

    /// The value of field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Set field `name`, replacing an existing value in place or appending a new field.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name, value)),
        }
    }

    /// The fields, in order.
    pub fn fields(&self) -> &[(String, Value)] {
        &self.fields
    }

    /// The record as a MessagePack map value.
    pub fn to_value(&self) -> Value {
        Value::Map(self.fields.iter().map(|(k, v)| (Value::from(k.as_str()), v.clone())).collect())
    }

    /// A record from a MessagePack value, which must be a map with string keys.
    pub fn from_value(value: Value) -> Result<Record, String> {
        let Value::Map(entries) = value else {
            return Err(format!("a record must be a map, found {}", kind_of(&value)));
        };
        let mut fields = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match k {
                Value::String(s) if s.is_str() => fields.push((s.into_str().expect("checked utf-8"), v)),
                other => return Err(format!("record keys must be strings, found {}", kind_of(&other))),
            }
        }
        Ok(Record { fields })
    }

    /// A record from a JSON object.
    pub fn from_json(json: serde_json::Value) -> Result<Record, String> {
        match json {
            serde_json::Value::Object(map) => {
                Ok(Record { fields: map.into_iter().map(|(k, v)| (k, json_to_value(v))).collect() })
            }
            other => Err(format!("expected a JSON object, found {}", json_kind(&other))),
        }
    }

    /// The record as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.fields.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect())
    }
}

/// The text of a value, for matching and grouping: strings as they are, anything else as JSON.
pub fn text_of(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => match s.as_str() {
            Some(s) => Cow::Borrowed(s),
            None => String::from_utf8_lossy(s.as_bytes()),
        },
        Value::Binary(b) => String::from_utf8_lossy(b),
        other => Cow::Owned(value_to_json(other).to_string()),
    }
}

/// A short name of a value's type, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "a boolean",
        Value::Integer(_) => "an integer",
        Value::F32(_) | Value::F64(_) => "a float",
        Value::String(_) => "a string",
        Value::Binary(_) => "binary data",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Ext(..) => "an extension value",
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// JSON to MessagePack: integers stay integers, other numbers become 64-bit floats.
pub fn json_to_value(json: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(b),
        J::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::from(s),
        J::Array(items) => Value::Array(items.into_iter().map(json_to_value).collect()),
        J::Object(map) => Value::Map(map.into_iter().map(|(k, v)| (Value::from(k), json_to_value(v))).collect()),
    }
}

/// MessagePack to JSON. Binary becomes an array of byte values, non-finite floats null, map
/// keys that are not strings their JSON text, and extension values `{"ext": type, "data": [..]}`.
pub fn value_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => J::from(u),
            (None, Some(i)) => J::from(i),
            _ => J::Null,
        },
        Value::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number),
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(match s.as_str() {
            Some(s) => s.to_owned(),
            None => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        }),
        Value::Binary(b) => J::Array(b.iter().map(|&x| J::from(x)).collect()),
        Value::Array(items) => J::Array(items.iter().map(value_to_json).collect()),
        Value::Map(entries) => {
            J::Object(entries.iter().map(|(k, v)| (text_of(k).into_owned(), value_to_json(v))).collect())
        }
        Value::Ext(t, data) => serde_json::json!({"ext": t, "data": data}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_field_order_and_types() {
        let json: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":-2,"c":1.5,"d":"x","e":[true,null]}"#).unwrap();
        let rec = Record::from_json(json.clone()).unwrap();
        assert_eq!(rec.fields()[0].0, "b");
        assert_eq!(rec.to_json(), json);
    }

    #[test]
    fn insert_replaces_in_place() {
        let mut rec = Record::new();
        rec.insert("a", 1);
        rec.insert("b", 2);
        rec.insert("a", 3);
        assert_eq!(rec.fields().len(), 2);
        assert_eq!(rec.get("a"), Some(&Value::from(3)));
    }

    #[test]
    fn non_string_keys_are_rejected() {
        let v = Value::Map(vec![(Value::from(1), Value::Nil)]);
        assert!(Record::from_value(v).unwrap_err().contains("keys must be strings"));
    }
}

#[cfg(test)]
mod json_text_tests {
    use super::*;

    /// The JSON text of values that are not strings, as docs/protocol.md section 7 specifies
    /// it: what other implementations must reproduce to match, group and route alike.
    #[test]
    fn json_text_is_as_the_protocol_documents() {
        let text = |v: Value| text_of(&v).into_owned();
        for (f, want) in [
            (1.0f64, "1.0"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1e20, "1e+20"),
            (0.00001, "0.00001"),
            (9e-6, "9e-6"),
            (1.5e-7, "1.5e-7"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
        ] {
            assert_eq!(text(Value::F64(f)), want, "{f:?}");
        }
        assert_eq!(text(Value::F32(1.5)), "1.5");
        assert_eq!(text(Value::Nil), "null");
        assert_eq!(text(Value::from(-3)), "-3");
        assert_eq!(text(Value::from(u64::MAX)), "18446744073709551615");
        let s = Value::from("a\"\\\n\u{1}\u{e9}\u{2028}");
        assert_eq!(
            text(Value::Array(vec![s, Value::Binary(vec![104, 105])])),
            "[\"a\\\"\\\\\\n\\u0001\u{e9}\u{2028}\",[104,105]]"
        );
        let repeated = vec![
            (Value::from("a"), Value::from(1)),
            (Value::from("b"), Value::from(2)),
            (Value::from("a"), Value::from(3)),
        ];
        assert_eq!(text(Value::Map(repeated)), r#"{"a":3,"b":2}"#);
        assert_eq!(
            text(Value::Map(vec![(Value::from(1), Value::Nil), (Value::F32(1.5), Value::Boolean(true))])),
            r#"{"1":null,"1.5":true}"#
        );
        assert_eq!(text(Value::Ext(5, vec![1, 2])), r#"{"ext":5,"data":[1,2]}"#);
    }
}
