//! Objects a crash may have torn, found and set aside (crash repair, under the wiki's lock).
//!
//! A commit is flushed once, after its objects, journal entry and ref move (see [`crate::repo`]),
//! so a crash before that flush can leave object files whose names reached the disk but whose
//! contents did not (a new file is not flushed by the rename that names it). Such a file is never
//! needed: the repair moves the ref back past the commit that wrote it. But `git fsck` would
//! object to it, so [`set_aside`] moves every object file written since a given time that does not
//! read back intact (zlib, hash) out of `objects/` into the repository's quarantine folder, where
//! an operator can look at it. Packs (from an operator's `git gc`; the server itself writes loose
//! objects) are re-indexed instead: one that does not index, or whose checksum is not its name,
//! is set aside; an index that differs from the one its pack yields is rebuilt from the pack.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use git2::{Indexer, Oid, Repository};

use crate::error::AppResult;

/// Files that belong to a pack besides `.pack` itself.
const PACK_SIBLINGS: [&str; 6] = ["idx", "rev", "bitmap", "mtimes", "promisor", "keep"];

/// Whether a libgit2 error says an object is missing or corrupt (what a crash leaves), as opposed
/// to a failure to read it (an I/O error), which must never be mistaken for damage.
pub fn is_damage(e: &git2::Error) -> bool {
    matches!(
        e.code(),
        git2::ErrorCode::NotFound | git2::ErrorCode::HashsumMismatch
    ) || matches!(
        e.class(),
        git2::ErrorClass::Odb | git2::ErrorClass::Zlib | git2::ErrorClass::Object
    )
}

fn modified_since(path: &Path, since: Option<SystemTime>) -> bool {
    since.is_none_or(|t| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m >= t)
    })
}

/// Whether any object file or folder under `objects/` changed at or after `since` (a cheap look:
/// the folder times, not the files).
pub fn anything_since(repo_dir: &Path, since: SystemTime) -> bool {
    let objects = repo_dir.join("objects");
    let Ok(entries) = std::fs::read_dir(&objects) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let fan_out = name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if name == "pack" {
            std::fs::read_dir(e.path()).is_ok_and(|packs| {
                packs
                    .flatten()
                    .any(|p| modified_since(&p.path(), Some(since)))
            })
        } else {
            fan_out && modified_since(&e.path(), Some(since))
        }
    })
}

/// Moves object files changed at or after `since` (all, with `None`) that do not read back intact
/// into `quarantine`, and removes leftover temporary files of interrupted writes (only lock
/// holders write objects, and the caller holds the lock). Returns how many were set aside.
pub fn set_aside(
    repo_dir: &Path,
    quarantine: &Path,
    since: Option<SystemTime>,
) -> AppResult<usize> {
    let objects = repo_dir.join("objects");
    let repo = Repository::open_bare(repo_dir)?;
    let odb = repo.odb()?;
    let mut moved = 0;
    for entry in std::fs::read_dir(&objects)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        if !modified_since(&entry.path(), since) {
            continue;
        }
        for file in std::fs::read_dir(entry.path())? {
            let file = file?;
            let path = file.path();
            let rest = file.file_name().to_string_lossy().into_owned();
            if rest.starts_with("tmp_") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if !modified_since(&path, since) {
                continue;
            }
            let damaged = match Oid::from_str(&format!("{name}{rest}")) {
                // Not an object's name: a leftover of an interrupted write (`*.lock`).
                Err(_) => true,
                Ok(oid) => match odb.read(oid) {
                    Ok(o) => o.id() != oid,
                    Err(e) if is_damage(&e) => true,
                    Err(e) => return Err(e.into()),
                },
            };
            if damaged {
                tracing::warn!(object = %format!("{name}{rest}"), "torn object moved out of the repository");
                std::fs::create_dir_all(quarantine)?;
                std::fs::rename(&path, quarantine.join(format!("{name}{rest}")))?;
                moved += 1;
            }
        }
    }
    moved += set_aside_packs(repo_dir, quarantine, since)?;
    Ok(moved)
}

fn set_aside_packs(
    repo_dir: &Path,
    quarantine: &Path,
    since: Option<SystemTime>,
) -> AppResult<usize> {
    let dir = repo_dir.join("objects").join("pack");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut stems: Vec<String> = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("pack_git2_") || name.starts_with("tmp_") {
            let _ = std::fs::remove_file(dir.join(&name));
            continue;
        }
        if let Some(stem) = name.strip_suffix(".pack").or(name.strip_suffix(".idx"))
            && stem.starts_with("pack-")
            && !stems.iter().any(|s| s == stem)
            && modified_since(&dir.join(&name), since)
        {
            stems.push(stem.to_owned());
        }
    }
    let scratch = repo_dir.join("zkwiki-reindex.tmp");
    let mut moved = 0;
    for stem in stems {
        let base = dir.join(&stem);
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch)?;
        match reindex(&base, &stem, &scratch) {
            Ok(Some(idx)) => {
                if std::fs::read(base.with_extension("idx")).ok().as_deref() != Some(&idx[..]) {
                    tracing::warn!(pack = %stem, "pack index rebuilt from its pack");
                    let tmp = base.with_extension("idx.tmp");
                    std::fs::write(&tmp, &idx)?;
                    std::fs::rename(&tmp, base.with_extension("idx"))?;
                }
            }
            Ok(None) | Err(_) => {
                tracing::warn!(pack = %stem, "torn pack moved out of the repository");
                std::fs::create_dir_all(quarantine)?;
                for ext in PACK_SIBLINGS.iter().chain(["pack"].iter()) {
                    let from = base.with_extension(ext);
                    if from.exists() {
                        std::fs::rename(&from, quarantine.join(format!("{stem}.{ext}")))?;
                    }
                }
                moved += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(moved)
}

/// The index a pack yields when indexed afresh, if the pack is whole and named by its checksum.
fn reindex(base: &Path, stem: &str, scratch: &Path) -> AppResult<Option<Vec<u8>>> {
    let Ok(bytes) = std::fs::read(base.with_extension("pack")) else {
        return Ok(None);
    };
    let mut indexer = Indexer::new(None, scratch, 0, false)?;
    if indexer.write_all(&bytes).is_err() {
        return Ok(None);
    }
    let name = indexer.commit()?;
    if stem.strip_prefix("pack-") != Some(name.as_str()) {
        return Ok(None);
    }
    Ok(Some(std::fs::read(
        scratch.join(format!("pack-{name}.idx")),
    )?))
}
