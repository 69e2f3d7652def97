//! A wiki as stored in a git repository (the CLI's encrypted mirror, or a clone): reading its
//! bytes for the client core, which decides everything. `docs/format.md` ("The git tree") gives
//! the layout; `client::layout` checks it.
//!
//! [`GitWiki::verify`] hands the core the keyring chain, state and manifest of one commit, and,
//! when this machine saw an earlier state, the *trail* of states between, read from the
//! repository's first-parent history (a server that rewrote that history is caught there as a
//! fork). Page envelopes are read on demand ([`GitWiki::load_wanted`], [`GitWiki::load`]) and
//! checked by the core against the signed manifest before anything is decrypted; that every
//! listed page is present, and none is extra, is checked from the tree at once.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::path::Path;

use client::head::{Step, TrailPoint, VerifiedHead, state_seq, trail_needed};
use client::history::{HistoryWalk, Point, introduces};
use client::layout::Tree;
use client::{Kind, Workspace};
use core_crypto::ids::{Digest32, PageId};
use core_crypto::snapshot::SeenRecord;
use core_crypto::state::Manifest;

use crate::error::{CliError, Context, Result};
use crate::git::Git;

const BLOB_CACHE_MAGIC: &[u8; 5] = b"ZKVB\x01";

/// The verified-blob cache: `"ZKVB" 1 ‖ (git oid hex (40) ‖ SHA-256 (32))*`. A damaged file is
/// an empty cache (everything is checked again).
fn read_blob_cache(path: &Path) -> BTreeMap<String, Digest32> {
    let Ok(bytes) = std::fs::read(path) else {
        return BTreeMap::new();
    };
    let Some(body) = bytes.strip_prefix(BLOB_CACHE_MAGIC) else {
        return BTreeMap::new();
    };
    if body.len() % 72 != 0 {
        return BTreeMap::new();
    }
    body.chunks(72)
        .filter_map(|c| {
            let oid = std::str::from_utf8(&c[..40]).ok()?;
            let hash: [u8; 32] = c[40..].try_into().ok()?;
            Some((oid.to_owned(), Digest32(hash)))
        })
        .collect()
}

fn write_blob_cache(path: &Path, known: &BTreeMap<String, Digest32>) {
    let mut out = Vec::with_capacity(5 + known.len() * 72);
    out.extend_from_slice(BLOB_CACHE_MAGIC);
    for (oid, hash) in known {
        if oid.len() == 40 {
            out.extend_from_slice(oid.as_bytes());
            out.extend_from_slice(hash.as_bytes());
        }
    }
    // A cache: failing to save it only costs a re-check next time.
    let _ = crate::fsutil::write_atomic(path, &out, false);
}

/// The bytes of a head, as read.
pub struct HeadBytes {
    /// Keyring versions, genesis first.
    pub keyrings: Vec<Vec<u8>>,
    /// The state.
    pub state: Vec<u8>,
    /// The manifest.
    pub manifest: Vec<u8>,
}

/// The member identities a repository carries on its `identities` branch (the local branch
/// in a bare mirror, `origin/identities` in a clone); empty when it has none.
pub fn member_identities(git: &Git) -> Result<Vec<client::keyfile::MemberIdentity>> {
    let branch = client::keyfile::IDENTITIES_BRANCH;
    let rev = [
        format!("refs/heads/{branch}"),
        format!("refs/remotes/origin/{branch}"),
    ]
    .into_iter()
    .find_map(|r| git.rev_parse(&r).ok().flatten());
    let Some(rev) = rev else {
        return Ok(Vec::new());
    };
    let entries: Vec<_> = git
        .ls_tree(&rev)?
        .into_iter()
        .filter(|e| e.kind == "blob" && e.path.starts_with("members/"))
        .collect();
    let specs: Vec<String> = entries.iter().map(|e| e.oid.clone()).collect();
    let mut out = Vec::new();
    for (e, blob) in entries.iter().zip(git.read_blobs(&specs)?) {
        let Some(blob) = blob else { continue };
        let m = client::keyfile::MemberIdentity::parse(&blob)?;
        if client::keyfile::member_file(&m.user) == e.path {
            out.push(m);
        }
    }
    Ok(out)
}

/// One commit of a wiki repository.
#[derive(Clone)]
pub struct GitWiki {
    git: Git,
    commit: String,
    tree: Tree<String>,
    history: OnceCell<Vec<String>>,
}

impl std::fmt::Debug for GitWiki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GitWiki({} at {})",
            self.git.dir().display(),
            self.commit
        )
    }
}

impl GitWiki {
    /// The wiki at `rev` of a repository; the tree must have exactly the layout.
    pub fn at(git: Git, rev: &str) -> Result<Self> {
        let commit = git.rev_parse(rev)?.ok_or_else(|| {
            CliError::not_found(format!(
                "{} has no commit {rev:?}: not a zkwiki repository, or empty",
                git.dir().display()
            ))
        })?;
        let entries = git.ls_tree(&commit)?;
        let tree = Tree::from_entries(
            entries
                .into_iter()
                .map(|e| (e.path, e.kind == "blob", e.oid)),
        )?;
        Ok(Self {
            git,
            commit,
            tree,
            history: OnceCell::new(),
        })
    }

    /// The repository.
    pub fn git(&self) -> &Git {
        &self.git
    }

    /// The commit read.
    pub fn commit(&self) -> &str {
        &self.commit
    }

    /// The tree's files by role.
    pub fn tree(&self) -> &Tree<String> {
        &self.tree
    }

    /// Reads the keyring chain, state and manifest.
    pub fn head_bytes(&self) -> Result<HeadBytes> {
        let mut specs: Vec<String> = self.tree.keyrings.clone();
        specs.push(self.tree.state.clone());
        specs.push(self.tree.manifest.clone());
        let mut blobs = self.git.read_blobs(&specs)?.into_iter();
        let mut next = |what: &str| {
            blobs.next().flatten().ok_or_else(|| {
                CliError::integrity(format!("the repository lacks the object of {what}"))
            })
        };
        let mut keyrings = Vec::with_capacity(self.tree.keyrings.len());
        for seq in 1..=self.tree.keyrings.len() {
            keyrings.push(next(&format!("keyring version {seq}"))?);
        }
        Ok(HeadBytes {
            keyrings,
            state: next("the state")?,
            manifest: next("the manifest")?,
        })
    }

    /// First-parent history from the commit read, newest first.
    fn history(&self) -> Result<&[String]> {
        if self.history.get().is_none() {
            let commits = self.git.first_parent_history(&self.commit)?;
            let _ = self.history.set(commits);
        }
        Ok(self.history.get().map(Vec::as_slice).unwrap_or_default())
    }

    /// The states `range` (oldest first) from the history, as the state at sequence `head_seq`
    /// is this commit's: one commit per state, as the server writes them. A history that does
    /// not have them yields fewer; the core refuses that.
    pub fn states(&self, head_seq: u64, range: RangeInclusive<u64>) -> Result<Vec<TrailPoint>> {
        let history = self.history()?;
        let mut specs = Vec::new();
        for seq in range {
            let Some(back) = head_seq.checked_sub(seq) else {
                break;
            };
            let Some(commit) = usize::try_from(back).ok().and_then(|i| history.get(i)) else {
                break;
            };
            specs.push(format!("{commit}:state"));
            specs.push(format!("{commit}:manifest"));
        }
        let blobs = self.git.read_blobs(&specs)?;
        let mut out = Vec::with_capacity(blobs.len() / 2);
        for pair in blobs.chunks(2) {
            match pair {
                [Some(s), Some(m)] => out.push((s.clone(), m.clone())),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Verifies this commit as a wiki head against `seen` (with the trail from history when
    /// needed), and that the tree holds exactly the pages the signed manifest lists.
    pub fn verify(&self, seen: &SeenRecord) -> Result<(VerifiedHead, Vec<Step>)> {
        let head = self.head_bytes()?;
        let seq = state_seq(&head.state).context("reading the signed state")?;
        let trail = match trail_needed(seen, seq)? {
            Some(range) => self.states(seq, range)?,
            None => Vec::new(),
        };
        let (verified, steps) =
            VerifiedHead::verify(&head.keyrings, &head.state, &head.manifest, seen, &trail)
                .context("verifying the wiki's keyring and signed state")?;
        self.tree.check_pages(&verified.snapshot().manifest)?;
        Ok((verified, steps))
    }

    /// Checks every page envelope of the tree against the verified manifest, reading only those
    /// not checked before: `cache` (in this machine's data folder, never the server's) maps a
    /// git blob id to the SHA-256 its bytes had when this machine hashed them. A page the
    /// server modified, swapped or replaced by an old version is caught by every command, at
    /// the cost of reading what changed.
    pub fn check_blobs(&self, manifest: &Manifest, cache: &Path) -> Result<()> {
        let mut known = read_blob_cache(cache);
        let mut todo = Vec::new();
        for (id, entry) in &manifest.pages {
            let oid = self.tree.pages.get(id).ok_or_else(|| {
                CliError::integrity(format!("page {id} is missing from the repository"))
            })?;
            if known.get(oid) != Some(&entry.hash) {
                todo.push((*id, *entry, oid.clone()));
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        for chunk in todo.chunks(512) {
            let specs: Vec<String> = chunk.iter().map(|(_, _, oid)| oid.clone()).collect();
            for ((id, entry, oid), blob) in chunk.iter().zip(self.git.read_blobs(&specs)?) {
                let blob = blob.ok_or_else(|| {
                    CliError::integrity(format!("the repository lacks the envelope of page {id}"))
                })?;
                entry
                    .check_envelope(&blob)
                    .map_err(|e| CliError::from(e).context(format!("verifying page {id}")))?;
                known.insert(oid.clone(), entry.hash);
            }
        }
        let live: BTreeSet<&String> = self.tree.pages.values().collect();
        known.retain(|oid, _| live.contains(oid));
        write_blob_cache(cache, &known);
        Ok(())
    }

    /// Brings `ws` (a head this process verified earlier) up to this commit: the keyring
    /// versions after its own and the trail between are read here; the core checks every step.
    pub fn advance(&self, ws: &mut Workspace) -> Result<Vec<PageId>> {
        let head = self.head_bytes()?;
        let seq = state_seq(&head.state)?;
        let known = usize::try_from(ws.snapshot().keyring.seq).unwrap_or(usize::MAX);
        let newer = head.keyrings.get(known..).unwrap_or_default();
        let from = ws.head().seq();
        let trail = if seq > from + 1 {
            self.states(seq, from + 1..=seq - 1)?
        } else {
            Vec::new()
        };
        let changed = ws
            .advance(newer, &head.state, &head.manifest, &trail)
            .context("verifying the wiki's new version")?;
        self.tree.check_pages(&ws.snapshot().manifest)?;
        Ok(changed)
    }

    /// Envelopes by page id, from this commit's tree.
    fn envelopes(&self, ids: &[PageId]) -> Result<Vec<(PageId, Vec<u8>)>> {
        let specs: Vec<String> = ids
            .iter()
            .filter_map(|id| self.tree.pages.get(id).cloned())
            .collect();
        let blobs = self.git.read_blobs(&specs)?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, blob) in ids.iter().zip(blobs) {
            let blob = blob.ok_or_else(|| {
                CliError::integrity(format!("the repository lacks the envelope of page {id}"))
            })?;
            out.push((*id, blob));
        }
        Ok(out)
    }

    /// Loads pages into `ws` (checked against the signed manifest, decrypted; a page a member
    /// wrote against the rules is isolated, not an error). An envelope that is not the signed
    /// one is an integrity error.
    pub fn load(&self, ws: &mut Workspace, ids: &[PageId]) -> Result<()> {
        let todo: Vec<PageId> = ids
            .iter()
            .filter(|id| !ws.is_loaded(id) && !ws.isolated().contains_key(id))
            .filter(|id| self.tree.pages.contains_key(id))
            .copied()
            .collect();
        for (id, blob) in self.envelopes(&todo)? {
            match ws.load(id, &blob) {
                Ok(_) => {}
                Err(e) if e.kind == Kind::Access => {}
                Err(e) => return Err(CliError::from(e).context(format!("page {id}"))),
            }
        }
        Ok(())
    }

    /// Runs the catalog's pull loop to the end: the index, then what it lags behind, then what
    /// must be confirmed; then finds who wrote any page that was isolated.
    pub fn load_wanted(&self, ws: &mut Workspace, on_many: &mut dyn FnMut(usize)) -> Result<()> {
        for _ in 0..8 {
            let wanted: Vec<PageId> = ws.wanted().into_iter().map(|(id, _)| id).collect();
            if wanted.is_empty() {
                break;
            }
            on_many(wanted.len());
            self.load(ws, &wanted)?;
        }
        self.attribute(ws)
    }

    /// Loads every live page (for clone, decrypt, export).
    pub fn load_all(&self, ws: &mut Workspace, on_page: &mut dyn FnMut(usize)) -> Result<()> {
        self.load_wanted(ws, &mut |_| {})?;
        let ids: Vec<PageId> = ws.catalog().keys().copied().collect();
        for chunk in ids.chunks(256) {
            self.load(ws, chunk)?;
            on_page(chunk.len());
        }
        self.attribute(ws)
    }

    /// Reads the state and manifest at sequence `seq` (for walking history back).
    pub fn point(&self, head_seq: u64, seq: u64) -> Result<TrailPoint> {
        self.states(head_seq, seq..=seq)?.pop().ok_or_else(|| {
            CliError::integrity(format!(
                "history: the repository has no commit for state {seq}"
            ))
        })
    }

    /// Walks history back from `ws`'s head until the writer of every page the core asks about
    /// ([`Workspace::unattributed`]) is known, and tells the core.
    pub fn attribute(&self, ws: &mut Workspace) -> Result<()> {
        let mut wanted = ws.unattributed();
        if wanted.is_empty() {
            return Ok(());
        }
        let head = ws.head().clone();
        let steps = self.walk(&head, &mut |step| {
            wanted.retain(|(id, e)| !introduces(step, id, e));
            !wanted.is_empty()
        })?;
        ws.attribute(&steps);
        Ok(())
    }

    /// Walks the verified history back from `head` (which must be this commit's), calling
    /// `more` with each step (newest first) and the point before it (none for the first state)
    /// until it returns false or the first state is reached. Returns the steps.
    pub fn walk_with(
        &self,
        head: &VerifiedHead,
        more: &mut dyn FnMut(&Step, Option<&Point>) -> Result<bool>,
    ) -> Result<Vec<Step>> {
        let head_seq = head.seq();
        let mut walk = HistoryWalk::new(head);
        let mut steps = Vec::new();
        loop {
            let step = match walk.needed() {
                Some(seq) => {
                    let (s, m) = self.point(head_seq, seq)?;
                    walk.push(&s, &m)?
                }
                None => walk.finish()?,
            };
            let first = step.seq == 1;
            let older = (!first).then(|| walk.oldest());
            let go_on = more(&step, older)?;
            steps.push(step);
            if !go_on || first {
                return Ok(steps);
            }
        }
    }

    /// [`Self::walk_with`] without looking at the points.
    pub fn walk(
        &self,
        head: &VerifiedHead,
        more: &mut dyn FnMut(&Step) -> bool,
    ) -> Result<Vec<Step>> {
        self.walk_with(head, &mut |s, _| Ok(more(s)))
    }

    /// Checks the repository's history against the verified `steps` (newest first, down to the
    /// first state): each commit changes exactly the page files its state changes, and each new
    /// page file is exactly the envelope its state signs. A rewritten old blob, or a page file
    /// changed behind an unchanged signed entry, is caught here, not only when someone looks at
    /// that version. Two git processes for the whole history.
    pub fn check_history_files(&self, head_seq: u64, steps: &[Step]) -> Result<()> {
        let raw = self.git.run(
            [
                "log",
                "--first-parent",
                "--raw",
                "--root",
                "--no-abbrev",
                "--no-renames",
                "--format=%x01%H",
                self.commit.as_str(),
            ],
            "reading the history's changes",
        )?;
        // Commit (newest first) → page id → new blob (None: removed).
        let mut commits: Vec<BTreeMap<PageId, Option<String>>> = Vec::new();
        for block in String::from_utf8_lossy(&raw).split('\x01').skip(1) {
            let mut pages = BTreeMap::new();
            for line in block.lines().skip(1) {
                let Some((meta, path)) = line.split_once('\t') else {
                    continue;
                };
                let Some(id) = path
                    .strip_prefix("pages/")
                    .and_then(|h| PageId::from_hex(h).ok())
                else {
                    continue;
                };
                let mut f = meta.split(' ');
                let (new, status) = (f.nth(3), f.next());
                let blob = match status {
                    Some("D") => None,
                    _ => new.map(str::to_owned),
                };
                pages.insert(id, blob);
            }
            commits.push(pages);
        }
        let rewritten = |seq: u64, what: String| {
            CliError::integrity(format!(
                "history: the commit of state {seq} {what} (the history was rewritten)"
            ))
        };
        let mut wanted = Vec::new();
        for step in steps {
            let files = head_seq
                .checked_sub(step.seq)
                .and_then(|b| usize::try_from(b).ok())
                .and_then(|i| commits.get(i))
                .ok_or_else(|| rewritten(step.seq, "is missing".to_owned()))?;
            let signed: BTreeSet<PageId> = step
                .changed
                .iter()
                .map(|(id, _)| *id)
                .chain(step.removed.iter().copied())
                .collect();
            if let Some(id) = files.keys().find(|id| !signed.contains(id)) {
                return Err(rewritten(
                    step.seq,
                    format!("changes page {id}, which its signed state does not change"),
                ));
            }
            for (id, entry) in &step.changed {
                match files.get(id) {
                    Some(Some(blob)) => wanted.push((blob.clone(), step.seq, *id, *entry)),
                    _ => {
                        return Err(rewritten(
                            step.seq,
                            format!("does not hold the new version of page {id}"),
                        ));
                    }
                }
            }
            for id in &step.removed {
                if files.get(id) != Some(&None) {
                    return Err(rewritten(
                        step.seq,
                        format!("still holds removed page {id}"),
                    ));
                }
            }
        }
        for chunk in wanted.chunks(1024) {
            let specs: Vec<String> = chunk.iter().map(|(b, ..)| b.clone()).collect();
            for ((_, seq, id, entry), blob) in chunk.iter().zip(self.git.read_blobs(&specs)?) {
                if blob.is_none_or(|b| entry.check_envelope(&b).is_err()) {
                    return Err(rewritten(
                        *seq,
                        format!("holds a version of page {id} that its state does not sign"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The envelope of `page` at state `seq` (this commit is state `head_seq`), if it has one.
    pub fn envelope_at(&self, head_seq: u64, seq: u64, page: &PageId) -> Result<Option<Vec<u8>>> {
        let history = self.history()?;
        let Some(commit) = head_seq
            .checked_sub(seq)
            .and_then(|b| usize::try_from(b).ok())
            .and_then(|i| history.get(i))
        else {
            return Ok(None);
        };
        Ok(self
            .git
            .read_blobs(&[format!("{commit}:{}", client::layout::page_path(page))])?
            .pop()
            .flatten())
    }
}
