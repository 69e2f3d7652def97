//! Verifying a wiki as stored in git (`docs/api.md`, "The wiki's git repository"): the one
//! reader used by every command, online (the CLI's encrypted mirror) and offline (a clone).
//!
//! [`load`] reads one commit's tree and checks *everything* before anything is decrypted: the
//! tree has exactly the expected files; the keyring chain verifies from its genesis; the state
//! is signed by a writer of the latest keyring and is not older than what this machine saw; the
//! manifest matches the state; every page the manifest lists is present with the exact signed
//! hash, size and header; and no page is present that the manifest does not list.

use std::collections::BTreeMap;

use core_crypto::ids::PageId;
use core_crypto::snapshot::{SeenRecord, Snapshot};
use core_crypto::state::Manifest;

use crate::error::{CliError, Context, Result};
use crate::git::Git;

/// A wiki at one commit that passed every check.
#[derive(Debug)]
pub struct Verified {
    /// The verified keyring, state and manifest.
    pub snapshot: Snapshot,
    /// Every page envelope, each checked against the signed manifest.
    pub blobs: BTreeMap<PageId, Vec<u8>>,
    /// The keyring chain, genesis first (for history: states name older versions).
    pub keyring_versions: Vec<Vec<u8>>,
    /// The git commit read.
    pub commit: String,
    /// The git blob id of each page envelope, as read from the tree.
    pub page_oids: BTreeMap<PageId, String>,
}

/// Pages verified earlier (a long-running session's previous head): a page whose git blob id is
/// the same is taken from here instead of re-read, and re-checked against the new manifest only
/// when its signed entry changed. Everything else is checked exactly as [`load`] does.
pub struct Known<'a> {
    /// The manifest the known envelopes were checked against.
    pub manifest: &'a Manifest,
    /// The known envelopes.
    pub blobs: &'a BTreeMap<PageId, Vec<u8>>,
    /// Their git blob ids.
    pub oids: &'a BTreeMap<PageId, String>,
}

enum Slot {
    Keyring(u64),
    State,
    Manifest,
    Page(PageId),
}

fn classify(path: &str) -> Option<Slot> {
    match path {
        "state" => return Some(Slot::State),
        "manifest" => return Some(Slot::Manifest),
        _ => {}
    }
    if let Some(seq) = path.strip_prefix("keyring/") {
        if seq.len() == 10 && seq.bytes().all(|b| b.is_ascii_digit()) {
            return seq.parse().ok().map(Slot::Keyring);
        }
        return None;
    }
    path.strip_prefix("pages/")
        .and_then(|id| PageId::from_hex(id).ok())
        .map(Slot::Page)
}

/// Reads and verifies the wiki at `rev` of the repository.
pub fn load(git: &Git, rev: &str, seen: &SeenRecord) -> Result<Verified> {
    load_with(git, rev, seen, None)
}

/// [`load`], reusing envelopes already verified (`known`) whose git blob id did not change.
pub fn load_with(
    git: &Git,
    rev: &str,
    seen: &SeenRecord,
    known: Option<&Known<'_>>,
) -> Result<Verified> {
    let commit = git.rev_parse(rev)?.ok_or_else(|| {
        CliError::not_found(format!(
            "{} has no commit {rev:?}: not a zkwiki repository, or empty",
            git.dir().display()
        ))
    })?;
    let entries = git.ls_tree(&commit)?;
    let mut keyring_oids = BTreeMap::new();
    let (mut state_oid, mut manifest_oid) = (None, None);
    let mut page_oids = BTreeMap::new();
    for e in &entries {
        match (e.kind.as_str(), classify(&e.path)) {
            ("blob", Some(Slot::Keyring(seq))) => {
                keyring_oids.insert(seq, e.oid.clone());
            }
            ("blob", Some(Slot::State)) => state_oid = Some(e.oid.clone()),
            ("blob", Some(Slot::Manifest)) => manifest_oid = Some(e.oid.clone()),
            ("blob", Some(Slot::Page(id))) => {
                page_oids.insert(id, e.oid.clone());
            }
            _ => {
                return Err(CliError::integrity(format!(
                    "the wiki repository holds an unexpected file {:?}",
                    e.path
                )));
            }
        }
    }
    let state_oid =
        state_oid.ok_or_else(|| CliError::integrity("the wiki repository has no signed state"))?;
    let manifest_oid =
        manifest_oid.ok_or_else(|| CliError::integrity("the wiki repository has no manifest"))?;
    if keyring_oids.is_empty() {
        return Err(CliError::integrity("the wiki repository has no keyring"));
    }
    for (i, seq) in keyring_oids.keys().enumerate() {
        if *seq != i as u64 + 1 {
            return Err(CliError::integrity(format!(
                "the keyring history is incomplete: version {} is missing",
                i + 1
            )));
        }
    }
    let mut specs: Vec<String> = keyring_oids.values().cloned().collect();
    specs.push(state_oid);
    specs.push(manifest_oid);
    // Same git blob id, same bytes: those were read and checked before.
    let reused = |id: &PageId, oid: &String| {
        known
            .filter(|k| k.oids.get(id) == Some(oid))
            .and_then(|k| k.blobs.get(id))
    };
    let to_read: Vec<PageId> = page_oids
        .iter()
        .filter(|(id, oid)| reused(id, oid).is_none())
        .map(|(id, _)| *id)
        .collect();
    specs.extend(to_read.iter().filter_map(|id| page_oids.get(id).cloned()));
    let mut blobs = git.read_blobs(&specs)?.into_iter();
    let mut next = |what: &str| {
        blobs.next().flatten().ok_or_else(|| {
            CliError::integrity(format!("the repository lacks the object of {what}"))
        })
    };
    let mut keyring_versions = Vec::with_capacity(keyring_oids.len());
    for seq in keyring_oids.keys() {
        keyring_versions.push(next(&format!("keyring version {seq}"))?);
    }
    let state = next("the state")?;
    let manifest = next("the manifest")?;
    let mut pages = BTreeMap::new();
    for id in &to_read {
        pages.insert(*id, next(&format!("page {id}"))?);
    }
    let mut unchanged = std::collections::BTreeSet::new();
    for (id, oid) in &page_oids {
        if let Some(blob) = reused(id, oid) {
            pages.insert(*id, blob.clone());
            unchanged.insert(*id);
        }
    }
    let snapshot = Snapshot::verify(&keyring_versions, &state, &manifest, seen)
        .context("verifying the wiki's keyring and signed state")?;
    for (id, entry) in &snapshot.manifest.pages {
        let blob = pages.get(id).ok_or_else(|| {
            CliError::integrity(format!(
                "page {id} is listed in the signed manifest but missing from the repository (dropped or withheld)"
            ))
        })?;
        // A reused envelope was checked against this very entry before.
        if unchanged.contains(id) && known.is_some_and(|k| k.manifest.pages.get(id) == Some(entry))
        {
            continue;
        }
        entry
            .check_envelope(blob)
            .context(format!("verifying page {id}"))?;
    }
    if let Some(extra) = pages
        .keys()
        .find(|id| !snapshot.manifest.pages.contains_key(id))
    {
        return Err(CliError::integrity(format!(
            "the repository holds page {extra}, which the signed manifest does not list"
        )));
    }
    Ok(Verified {
        snapshot,
        blobs: pages,
        keyring_versions,
        commit,
        page_oids,
    })
}
