//! HTML escaping and URL encoding: the only ways text from a page reaches the output.

use core::fmt::Write;

/// Appends `text` escaped for HTML text content and double-quoted attribute values.
pub fn escape_into(out: &mut String, text: &str) {
    // Copy runs of safe bytes at once; the special characters are all ASCII, so a run never
    // splits a UTF-8 sequence.
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let replacement = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            // NUL never reaches the DOM.
            0 => "\u{fffd}",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(replacement);
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// `text` escaped for HTML (see [`escape_into`]).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    escape_into(&mut out, text);
    out
}

/// Percent-encodes a page path for a `#/…` route: every byte except `A-Z a-z 0-9 - . _ ~ /`.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    encode_path_into(&mut out, path);
    out
}

/// Appends `path` percent-encoded (see [`encode_path`]); the output needs no HTML escaping.
pub fn encode_path_into(out: &mut String, path: &str) {
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// `%XX` sequences decoded: the core's rule ([`client::links::percent_decode`]).
pub use client::links::percent_decode as decode_percent;

/// A slug for a heading id: lowercase letters and digits, other runs become `-`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '_' {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
    }
    if out.is_empty() {
        out.push_str("section");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(escape("a\0b ü & é"), "a\u{fffd}b ü &amp; é");
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn paths_round_trip() {
        let p = "Notes/Ünï code & more?.md";
        let enc = encode_path(p);
        assert!(enc.bytes().all(|b| b.is_ascii_graphic()), "{enc}");
        assert!(!enc.contains(['&', '?', '"', '<', '#']));
        assert_eq!(decode_percent(&enc), p);
        assert_eq!(decode_percent("100%"), "100%");
        assert_eq!(decode_percent("%zz%4"), "%zz%4");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Hello, World!"), "hello-world");
        assert_eq!(slug("  Ünïcode  title "), "ünïcode-title");
        assert_eq!(slug("<script>"), "script");
        assert_eq!(slug("!!!"), "section");
    }
}
