//! The JSON the bindings hand to JavaScript, written straight into a string: objects of strings,
//! numbers, booleans and nested JSON. (A `serde_json::Value` tree per answer cost the bundle
//! about 10 KB of code for nothing JavaScript needs; the API's own bodies still go through
//! `client::wire`'s typed structs.)

use core::fmt::{Display, Write};

/// Appends `text` as a JSON string (RFC 8259 §7: quote, backslash and control characters
/// escaped; everything else as UTF-8).
pub fn push_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON string.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_str(&mut out, text);
    out
}

/// A JSON array of already written JSON values.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// A JSON object being written, field by field.
#[derive(Debug)]
pub struct Obj(String);

impl Default for Obj {
    fn default() -> Self {
        Self::new()
    }
}

impl Obj {
    /// An empty object.
    pub fn new() -> Self {
        Obj(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        push_str(&mut self.0, key);
        self.0.push(':');
    }

    /// A string field.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_str(&mut self.0, value);
        self
    }

    /// A string field, or `null`.
    pub fn opt_str(mut self, key: &str, value: Option<&str>) -> Self {
        self.key(key);
        match value {
            Some(v) => push_str(&mut self.0, v),
            None => self.0.push_str("null"),
        }
        self
    }

    /// A number field (integers up to 2^53 are exact in JavaScript).
    pub fn num(mut self, key: &str, value: impl Display) -> Self {
        self.key(key);
        let _ = write!(self.0, "{value}");
        self
    }

    /// A number field, or `null`.
    pub fn opt_num(mut self, key: &str, value: Option<u64>) -> Self {
        self.key(key);
        match value {
            Some(v) => {
                let _ = write!(self.0, "{v}");
            }
            None => self.0.push_str("null"),
        }
        self
    }

    /// A boolean field.
    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
        self
    }

    /// A field holding JSON written already (an array, an object).
    pub fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.0.push_str(json);
        self
    }

    /// The object's text.
    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_json_parses_back_exactly() {
        let tricky = "quote \" backslash \\ nl \n tab \t esc \u{1b} nul \u{0} bidi \u{202e} 页 👍";
        let text = Obj::new()
            .str("s", tricky)
            .opt_str("none", None)
            .opt_str("some", Some("x"))
            .num("n", 1_700_000_000_000i64)
            .num("neg", -5i64)
            .opt_num("seq", Some(7))
            .bool("b", true)
            .raw("list", &array([string("a"), string("b")]))
            .finish();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["s"], tricky);
        assert_eq!(v["none"], serde_json::Value::Null);
        assert_eq!(v["some"], "x");
        assert_eq!(v["n"], 1_700_000_000_000i64);
        assert_eq!(v["neg"], -5);
        assert_eq!(v["seq"], 7);
        assert_eq!(v["b"], true);
        assert_eq!(v["list"], serde_json::json!(["a", "b"]));
        assert_eq!(array(Vec::new()), "[]");
        assert_eq!(Obj::new().finish(), "{}");
    }
}
