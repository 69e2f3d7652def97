//! YAML front matter shown as a small key/value table.
//!
//! Not a YAML parser (that would cost bundle size for no gain): top-level `key: value` lines become
//! rows, indented or `- item` lines continue the previous value, and anything else is kept as a
//! row without a key. Every value is shown as text, never interpreted.

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The key (empty for a line that is not `key: value`).
    pub key: String,
    /// The value as written (quotes around a scalar removed).
    pub value: String,
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

fn is_key(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(['-', '#', ' ', '\t', '[', '{', '"', '\''])
        && k.chars().all(|c| !c.is_control())
}

/// Splits front matter into rows.
pub fn fields(yaml: &str) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    for line in yaml.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let continuation = line.starts_with([' ', '\t']) || line.starts_with("- ");
        if continuation && let Some(last) = out.last_mut() {
            let item = line.trim().trim_start_matches("- ").trim();
            if !last.value.is_empty() {
                last.value.push_str(", ");
            }
            last.value.push_str(unquote(item));
            continue;
        }
        match line.split_once(':') {
            Some((k, v)) if is_key(k.trim_end()) => out.push(Field {
                key: k.trim().to_owned(),
                value: unquote(v).to_owned(),
            }),
            _ => out.push(Field {
                key: String::new(),
                value: line.trim().to_owned(),
            }),
        }
    }
    out
}

/// The `title` field, if any.
pub fn title(fields: &[Field]) -> Option<&str> {
    fields
        .iter()
        .find(|f| f.key.eq_ignore_ascii_case("title") && !f.value.is_empty())
        .map(|f| f.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_yaml() {
        let f = fields(
            "title: \"Plan: Q3\"\ntags: [a, b]\nauthors:\n  - alice\n  - bob\n# comment\nodd line\n",
        );
        let pairs: Vec<(&str, &str)> = f
            .iter()
            .map(|f| (f.key.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("title", "Plan: Q3"),
                ("tags", "[a, b]"),
                ("authors", "alice, bob"),
                ("", "odd line")
            ]
        );
        assert_eq!(title(&f), Some("Plan: Q3"));
    }
}
