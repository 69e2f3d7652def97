//! Page paths and scope prefixes as the wiki sees them (they exist only inside ciphertext).
//!
//! A path is 1–1024 bytes of UTF-8: segments separated by `/`, none empty, none `.` or `..`, no
//! leading or trailing `/`, no backslash, no control character. So a decrypted path can be written
//! under an export folder without escaping it. A scope prefix is a path followed by `/`.

use crate::{Error, Result};

/// Longest page path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// Checks a page path.
pub fn check_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Error::InvalidPath("empty"));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(Error::InvalidPath("longer than 1024 bytes"));
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err(Error::InvalidPath(
            "contains a control character or a backslash",
        ));
    }
    for segment in path.split('/') {
        match segment {
            "" => {
                return Err(Error::InvalidPath(
                    "empty segment, or a leading or trailing '/'",
                ));
            }
            "." | ".." => return Err(Error::InvalidPath("'.' and '..' segments are not allowed")),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a scope prefix (`""` means the whole wiki; otherwise a path ending in `/`).
pub fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    let inner = prefix
        .strip_suffix('/')
        .ok_or(Error::InvalidPath("a prefix must end with '/'"))?;
    check_path(inner)
}

/// Whether `path` lies under `prefix` (every path lies under `""`).
pub fn in_prefix(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in ["Home.md", "a/b/c.md", "Ünïcode/页面.md", "with space.md"] {
            check_path(ok).unwrap();
        }
        for bad in [
            "", "/abs", "a//b", "a/", "../x", "a/./b", "a\\b", "a\0b", "a\nb",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path(&"a".repeat(1025)).is_err());
        check_prefix("").unwrap();
        check_prefix("research/").unwrap();
        assert!(check_prefix("research").is_err());
        assert!(check_prefix("/").is_err());
        assert!(in_prefix("research/x.md", "research/"));
        assert!(!in_prefix("researchers.md", "research/"));
    }
}
