//! Pack files of a wiki repository: written one per commit, merged in the background, checked
//! after a crash.
//!
//! A commit's new objects (state, manifest, envelopes, trees, the commit) are collected in memory
//! and written as one pack and its index ([`write`]): two file creations per commit instead of one
//! per loose object plus fan-out directories, which is where a commit's time went on ext4.
//!
//! Thousands of tiny packs would slow every object lookup, so [`merge`] merges them geometrically
//! (as `git repack --geometric=2` does) once there are [`REPACK_AT`]: packs much larger than all
//! smaller ones together stay, the rest become one pack. The merged pack is flushed before
//! [`remove`] deletes the ones it replaces (under the wiki's lock), so a crash leaves the old
//! packs, the new one, or both, never neither.
//!
//! A pack written since the last barrier may be torn by a crash (a new file is not flushed by the
//! rename that names it). [`quarantine_unsound`] re-indexes every pack and moves any that does not
//! parse, or whose name does not match its checksum, out of the object store; an index that does
//! not match its pack is rebuilt from the pack.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use git2::{Indexer, Oid, Repository};

use crate::durable::SyncGroup;
use crate::error::{AppError, AppResult};

/// Merge packs once a repository has this many.
pub const REPACK_AT: usize = 32;

/// libgit2 settings for the packs the server writes, in the data directory (not in any
/// repository's own config, which `git http-backend` would read too).
const LIBGIT2_CONFIG: &str = "libgit2-packs.config";

/// No delta search: envelopes are ciphertext and never delta; only trees and manifests could,
/// and libgit2's delta search made merging packs cost about 8 ms per commit (measured). libgit2
/// 1.9 reads its "big file" size limit (objects above it are never deltified) from
/// `pack.deltaCacheSize`; `pack.windowMemory` keeps the window at one object should that change.
const LIBGIT2_SETTINGS: &str = "[pack]\n\tdeltaCacheSize = 1\n\twindowMemory = 1\n";

/// Writes the libgit2 settings file into `dir` (start-up); returns its path.
pub fn install_settings(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join(LIBGIT2_CONFIG);
    if std::fs::read(&path).ok().as_deref() != Some(LIBGIT2_SETTINGS.as_bytes()) {
        let tmp = dir.join(format!("{LIBGIT2_CONFIG}.tmp"));
        std::fs::write(&tmp, LIBGIT2_SETTINGS)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

/// Applies the settings file to a repository handle about to build packs.
pub fn apply_settings(repo: &Repository, settings: &Path) -> AppResult<()> {
    repo.config()?
        .add_file(settings, git2::ConfigLevel::App, true)?;
    Ok(())
}

/// Files that belong to a pack besides `.pack` itself.
const SIBLINGS: [&str; 5] = ["idx", "rev", "bitmap", "mtimes", "promisor"];

/// One pack of a repository.
#[derive(Debug, Clone)]
pub struct PackFile {
    /// `objects/pack/pack-<hash>` without an extension.
    pub stem: PathBuf,
    /// Size of the `.pack` in bytes.
    pub size: u64,
}

impl PackFile {
    fn with(&self, ext: &str) -> PathBuf {
        self.stem.with_extension(ext)
    }

    fn hash(&self) -> Option<&str> {
        self.stem.file_name()?.to_str()?.strip_prefix("pack-")
    }
}

/// `objects/pack` of the bare repository at `repo_dir`.
pub fn pack_dir(repo_dir: &Path) -> PathBuf {
    repo_dir.join("objects").join("pack")
}

/// Writes `objects` (the ones a commit adds, held in memory by the repository's mempack backend)
/// as one pack and its index into the repository's pack folder. Not `Mempack::dump`: that packs
/// everything the commit reaches, the whole wiki every time. Nothing is flushed here: the
/// caller's barrier does that.
pub fn write(repo: &Repository, objects: &[Oid], repo_dir: &Path) -> AppResult<()> {
    let mut builder = repo.packbuilder()?;
    for oid in objects {
        builder.insert_object(*oid, None)?;
    }
    builder.write(&pack_dir(repo_dir), 0)?;
    Ok(())
}

/// Every pack with both its `.pack` and `.idx`, smallest first.
pub fn list(repo_dir: &Path) -> AppResult<Vec<PackFile>> {
    let mut out = Vec::new();
    let dir = pack_dir(repo_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".pack")) else {
            continue;
        };
        if !stem.starts_with("pack-") {
            continue;
        }
        let stem = dir.join(stem);
        if !stem.with_extension("idx").is_file() {
            continue;
        }
        out.push(PackFile {
            stem,
            size: entry.metadata()?.len(),
        });
    }
    out.sort_by_key(|p| p.size);
    Ok(out)
}

/// How many packs the repository has (a cheap check after each commit).
pub fn count(repo_dir: &Path) -> usize {
    std::fs::read_dir(pack_dir(repo_dir))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".pack")))
                .count()
        })
        .unwrap_or(0)
}

/// The packs to merge, given all packs smallest first: the largest ones each at least twice the
/// size of all smaller packs together stay (so every object is rewritten O(log n) times); the rest
/// are merged. Fewer than two packs to merge: nothing to do.
pub fn geometric_rollup(packs: &[PackFile]) -> &[PackFile] {
    let mut smaller: u64 = packs.iter().map(|p| p.size).sum();
    let mut split = packs.len();
    // Walk down from the largest while the progression holds.
    for (i, p) in packs.iter().enumerate().rev() {
        smaller -= p.size;
        if p.size >= 2 * smaller {
            split = i;
        } else {
            break;
        }
    }
    let rollup = &packs[..split];
    if rollup.len() < 2 { &[] } else { rollup }
}

/// Object ids listed in a version-2 pack index.
fn idx_oids(idx: &[u8]) -> AppResult<Vec<Oid>> {
    let bad = || AppError::internal("unreadable pack index");
    if idx.len() < 8 + 256 * 4 || idx[..4] != [0xff, b't', b'O', b'c'] || idx[4..8] != [0, 0, 0, 2]
    {
        return Err(bad());
    }
    let n = u32::from_be_bytes(
        idx[8 + 255 * 4..8 + 256 * 4]
            .try_into()
            .map_err(|_| bad())?,
    );
    let start = 8 + 256 * 4;
    let end = start + n as usize * 20;
    let ids = idx.get(start..end).ok_or_else(bad)?;
    ids.chunks_exact(20)
        .map(|raw| Oid::from_bytes(raw).map_err(AppError::from))
        .collect()
}

/// Merges small packs into one once there are at least [`REPACK_AT`], and flushes it. Returns the
/// packs it replaces (empty: nothing to do), for [`remove`]. Adding a pack whose objects all
/// exist already is harmless at any time, so this needs only the repack lock (one merge at a
/// time, and no crash repair meanwhile), not the wiki's lock: commits go on while it runs.
pub fn merge(repo_dir: &Path, settings: &Path, sync: &SyncGroup) -> AppResult<Vec<PackFile>> {
    let packs = list(repo_dir)?;
    if packs.len() < REPACK_AT {
        return Ok(Vec::new());
    }
    let rollup: Vec<PackFile> = geometric_rollup(&packs)
        .iter()
        .filter(|p| !p.with("keep").exists())
        .cloned()
        .collect();
    if rollup.len() < 2 {
        return Ok(Vec::new());
    }
    let repo = Repository::open_bare(repo_dir)?;
    apply_settings(&repo, settings)?;
    let mut builder = repo.packbuilder()?;
    let mut seen = HashSet::new();
    for p in &rollup {
        for oid in idx_oids(&std::fs::read(p.with("idx"))?)? {
            if seen.insert(oid) {
                builder.insert_object(oid, None)?;
            }
        }
    }
    builder.write(&pack_dir(repo_dir), 0)?;
    let kept = builder
        .name()?
        .map(|n| format!("pack-{n}"))
        .ok_or_else(|| AppError::internal("packbuilder wrote no pack"))?;
    // The merged pack must be on disk before the packs it replaces are gone. Flushed by itself,
    // not with a shared `syncfs`: commits waiting on the barrier would wait for megabytes.
    if sync.enabled() {
        let dir = pack_dir(repo_dir);
        for ext in ["pack", "idx"] {
            std::fs::File::open(dir.join(format!("{kept}.{ext}")))?.sync_all()?;
        }
        std::fs::File::open(&dir)?.sync_all()?;
    }
    Ok(rollup
        .into_iter()
        .filter(|p| p.stem.file_name().and_then(|n| n.to_str()) != Some(kept.as_str()))
        .collect())
}

/// Deletes packs [`merge`] replaced, each index first so no reader finds an index without its
/// pack (the caller holds the wiki's lock, so no commit is looking for an object meanwhile).
/// Readers that still hold one open keep reading it; the others find the objects in the merged
/// pack (libgit2 and git rescan the pack folder when an object is not where they expected).
pub fn remove(packs: &[PackFile]) {
    for p in packs {
        for ext in SIBLINGS.iter().chain(["pack", "keep"].iter()) {
            let path = p.with(ext);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a merged pack");
            }
        }
    }
}

/// Re-indexes every pack (crash repair, under the wiki's lock). A pack that does not index, or
/// whose checksum is not its name, is moved (with its siblings) to `quarantine`; an index that
/// differs from the one its pack yields, or is missing, is rewritten; leftover temporary files of
/// interrupted pack writes are removed. Returns how many packs were quarantined.
/// With `since`, only packs whose `.pack` or `.idx` changed at or after that time are checked
/// (after a clean stop nothing is newer than the ref, so nothing is read).
pub fn quarantine_unsound(
    repo_dir: &Path,
    quarantine: &Path,
    since: Option<SystemTime>,
) -> AppResult<usize> {
    let dir = pack_dir(repo_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut stems = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("pack_git2_") || name.starts_with("tmp_") {
            // Only lock holders write packs: this one was interrupted.
            let _ = std::fs::remove_file(dir.join(name));
            continue;
        }
        if let Some(stem) = name.strip_suffix(".pack").or(name.strip_suffix(".idx"))
            && stem.starts_with("pack-")
            && !stems.contains(&stem.to_owned())
            && since.is_none_or(|t| {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m >= t)
            })
        {
            stems.push(stem.to_owned());
        }
    }
    let scratch = repo_dir.join("zkwiki-reindex.tmp");
    let mut moved = 0;
    for stem in stems {
        let p = PackFile {
            stem: dir.join(&stem),
            size: 0,
        };
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch)?;
        match reindex(&p, &scratch) {
            Ok(Some(idx)) => {
                if std::fs::read(p.with("idx")).ok().as_deref() != Some(&idx[..]) {
                    tracing::warn!(pack = %stem, "pack index rebuilt from its pack");
                    let tmp = p.with("idx.tmp");
                    std::fs::write(&tmp, &idx)?;
                    std::fs::rename(&tmp, p.with("idx"))?;
                }
            }
            Ok(None) | Err(_) => {
                tracing::warn!(pack = %stem, "torn pack moved out of the repository");
                std::fs::create_dir_all(quarantine)?;
                for ext in SIBLINGS.iter().chain(["pack", "keep"].iter()) {
                    let from = p.with(ext);
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
fn reindex(p: &PackFile, scratch: &Path) -> AppResult<Option<Vec<u8>>> {
    let Ok(bytes) = std::fs::read(p.with("pack")) else {
        return Ok(None);
    };
    let mut indexer = Indexer::new(None, scratch, 0, false)?;
    if indexer.write_all(&bytes).is_err() {
        return Ok(None);
    }
    let name = indexer.commit()?;
    if Some(name.as_str()) != p.hash() {
        return Ok(None);
    }
    Ok(Some(std::fs::read(
        scratch.join(format!("pack-{name}.idx")),
    )?))
}
