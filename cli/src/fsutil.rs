//! File helpers: atomic writes, private (0600) files, temporary directories beside a target.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename). With
/// `private`, the file is created with mode 0600 from the start.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".zkwiki-tmp-")
        .tempfile_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if private { 0o600 } else { 0o644 };
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A fresh temporary directory next to `target` (same file system, so a rename can move it).
pub fn temp_dir_beside(target: &Path) -> std::io::Result<tempfile::TempDir> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}.zkwiki-tmp-"))
        .tempdir_in(parent)
}

/// Creates a directory only the user can read (0700).
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The file path under `root` for a wiki page path (already checked by the core: no `..`, no
/// leading `/`). Refuses a `.git` segment so a decrypted page can never become git metadata.
pub fn page_file(root: &Path, page_path: &str) -> Result<PathBuf, String> {
    let mut out = root.to_path_buf();
    for segment in page_path.split('/') {
        if segment.eq_ignore_ascii_case(".git") {
            return Err(format!("refusing to write {page_path:?}: a '.git' segment"));
        }
        out.push(segment);
    }
    Ok(out)
}
