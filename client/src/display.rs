//! Untrusted text made safe to show: page paths, authors, member names and server messages come
//! from other people (or the server) and must not drive a terminal (`ESC ]0;…`, `ESC [2J`) or
//! reorder what a person reads (`invoice\u{202e}dm.exe` shown as `invoiceexe.md`).
//!
//! [`escape`] replaces every control character, bidirectional control and invisible
//! (default-ignorable) character with a visible escape such as `\x1b` or `\u{202e}`; everything
//! else passes unchanged. The CLI uses it for every name it prints, the MCP server for every name
//! it returns, and the browser for text it cannot keep out of the page (authors, messages).

use std::borrow::Cow;

/// Whether `c` changes how surrounding text is shown or is invisible: bidirectional controls,
/// zero-width characters, and other default-ignorable code points, plus the Unicode tag block
/// (which can smuggle invisible text).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Whether `c` must not be shown as it is.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

/// `text` with every control and invisible character replaced by a visible escape (`\x1b`,
/// `\u{202e}`); unchanged (and not copied) when there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`escape`] but keeps line breaks and tabs (for multi-line text such as a snippet or a
/// diff shown in a terminal).
pub fn escape_multiline(text: &str) -> Cow<'_, str> {
    let bad = |c: char| needs_escape(c) && c != '\n' && c != '\t';
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A time-zone offset in minutes east of UTC as people read it: `+05:30`, `-03:00`, `+00:00`.
pub fn utc_offset(minutes: i16) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

fn push_escaped(out: &mut String, c: char) {
    use core::fmt::Write;
    if !needs_escape(c) {
        out.push(c);
    } else if (c as u32) < 0x80 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_and_bidi_tricks_become_visible() {
        assert_eq!(
            escape("\u{1b}]0;TITLE\u{7}\u{1b}[2J"),
            "\\x1b]0;TITLE\\x07\\x1b[2J"
        );
        assert_eq!(escape("invoice\u{202e}dm.exe"), "invoice\\u{202e}dm.exe");
        assert_eq!(escape("a\u{200b}b\u{feff}"), "a\\u{200b}b\\u{feff}");
        assert_eq!(escape("x\u{e0041}"), "x\\u{e0041}");
        assert_eq!(escape("line\nbreak"), "line\\x0abreak");
        assert_eq!(escape_multiline("line\nbreak\u{1b}"), "line\nbreak\\x1b");
        assert!(matches!(escape("Ünïcode 页面.md"), Cow::Borrowed(_)));
        assert!(matches!(escape("emoji 👍🏽"), Cow::Borrowed(_)));
    }

    #[test]
    fn offsets() {
        assert_eq!(utc_offset(330), "+05:30");
        assert_eq!(utc_offset(-180), "-03:00");
        assert_eq!(utc_offset(0), "+00:00");
        assert_eq!(utc_offset(-30), "-00:30");
    }
}
