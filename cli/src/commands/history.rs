//! `zkwiki log [PATH]`: the wiki's history from the verified mirror. Every step back is checked
//! as a signed transition (`WikiState::verify_transition`) under the keyring version it names, so
//! the history shown is the one the members signed. A page keeps its id across renames, so a
//! page's history follows them naturally.

use std::collections::BTreeMap;

use core_crypto::envelope::{self, EnvelopeHeader, PageRecord};
use core_crypto::ids::{Digest32, PageId};
use core_crypto::keyring::{Keyring, Seen, WikiKeys};
use core_crypto::state::{Manifest, WikiState};
use serde_json::{Value, json};

use crate::args::LogArgs;
use crate::context::Ctx;
use crate::error::{CliError, Context, Result};
use crate::git::Git;
use crate::remote::Remote;
use crate::wiki::{format_time, is_index_page};

/// One commit's state and manifest.
struct Point {
    commit: String,
    state: WikiState,
    manifest: Manifest,
}

/// Walks history backwards in verified chunks.
struct Walker<'a> {
    git: &'a Git,
    commits: Vec<String>,
    points: Vec<Point>,
    keyrings: BTreeMap<Digest32, Keyring>,
}

const CHUNK: usize = 64;

impl<'a> Walker<'a> {
    fn new(git: &'a Git, head: &str, head_state: &WikiState, chain: &[Vec<u8>]) -> Result<Self> {
        let commits = git.first_parent_history(head)?;
        let mut keyrings = BTreeMap::new();
        for bytes in chain {
            let k = Keyring::decode(bytes)?;
            keyrings.insert(k.hash(), k);
        }
        let mut w = Self {
            git,
            commits,
            points: Vec::new(),
            keyrings,
        };
        w.load_more()?;
        if w.points.first().map(|p| p.state.hash()) != Some(head_state.hash()) {
            return Err(CliError::integrity(
                "the history does not end at the verified state",
            ));
        }
        Ok(w)
    }

    /// Loads and verifies the next chunk of older points. Returns false at the beginning.
    fn load_more(&mut self) -> Result<bool> {
        let start = self.points.len();
        if start >= self.commits.len() {
            return Ok(false);
        }
        let end = (start + CHUNK).min(self.commits.len());
        let specs: Vec<String> = self.commits[start..end]
            .iter()
            .flat_map(|c| [format!("{c}:state"), format!("{c}:manifest")])
            .collect();
        let mut blobs = self.git.read_blobs(&specs)?.into_iter();
        for commit in &self.commits[start..end] {
            let (s, m) = (blobs.next().flatten(), blobs.next().flatten());
            let (Some(s), Some(m)) = (s, m) else {
                return Err(CliError::integrity(format!(
                    "history: commit {commit} lacks a state or manifest"
                )));
            };
            let state = WikiState::decode(&s).context(format!("history: commit {commit}"))?;
            let manifest = Manifest::decode(&m).context(format!("history: commit {commit}"))?;
            self.points.push(Point {
                commit: commit.clone(),
                state,
                manifest,
            });
        }
        // Verify every new link: point i (newer) follows point i+1 (older).
        for i in start.saturating_sub(1)..self.points.len() {
            let newer = &self.points[i];
            let keyring = self.keyrings.get(&newer.state.keyring).ok_or_else(|| {
                CliError::integrity(format!(
                    "history: state {} names a keyring version the wiki does not have",
                    newer.state.seq
                ))
            })?;
            match self.points.get(i + 1) {
                Some(older) => older
                    .state
                    .verify_transition(&older.manifest, &newer.state, &newer.manifest, keyring)
                    .context(format!("history: state {}", newer.state.seq))?,
                None if end == self.commits.len() => {
                    if newer.state.seq != 1 {
                        return Err(CliError::integrity(
                            "history: the oldest commit is not the wiki's first state",
                        ));
                    }
                    newer
                        .state
                        .verify(keyring, &newer.manifest, None)
                        .context("history: first state")?;
                }
                None => {}
            }
        }
        Ok(true)
    }

    fn signer_name(&self, p: &Point) -> String {
        self.keyrings
            .get(&p.state.keyring)
            .and_then(|k| k.member_by_signing_key(&p.state.signer))
            .map_or_else(|| "?".to_owned(), |m| m.name.clone())
    }
}

fn open_at(git: &Git, keys: &WikiKeys, p: &Point, id: &PageId) -> Result<Option<PageRecord>> {
    let Some(entry) = p.manifest.pages.get(id) else {
        return Ok(None);
    };
    let blob = git
        .read_blobs(&[format!("{}:pages/{id}", p.commit)])?
        .pop()
        .flatten()
        .ok_or_else(|| {
            CliError::integrity(format!(
                "history: page {id} is missing from commit {}",
                p.commit
            ))
        })?;
    let header = entry
        .check_envelope(&blob)
        .context(format!("history: page {id} at state {}", p.state.seq))?;
    let key = keys.key_for(&EnvelopeHeader {
        epoch: header.epoch,
        scope: header.scope,
    })?;
    let wiki = p.state.wiki;
    Ok(Some(envelope::open_page(key, &wiki, id, &blob).context(
        format!("history: page {id} at state {}", p.state.seq),
    )?))
}

/// Checks that `head` extends `earlier`, a state this client accepted before: walking back from
/// `head`, every step is a verified transition, down to a state at `earlier`'s sequence with
/// `earlier`'s hash. Anything else is a fork: the server rewrote what this client had verified.
pub fn check_extends(git: &Git, head: &crate::repo::Verified, earlier: Seen) -> Result<()> {
    let mut walker = Walker::new(
        git,
        &head.commit,
        &head.snapshot.state,
        &head.keyring_versions,
    )?;
    let mut i = 0;
    loop {
        if i + 1 >= walker.points.len() {
            walker.load_more()?;
        }
        let Some(p) = walker.points.get(i) else {
            break;
        };
        if p.state.seq <= earlier.seq {
            if p.state.seq == earlier.seq && p.state.hash() == earlier.hash {
                return Ok(());
            }
            break;
        }
        i += 1;
    }
    Err(core_crypto::Error::Fork {
        what: "wiki state",
        seq: earlier.seq,
    }
    .into())
}

/// `zkwiki log [PATH]`.
pub fn log(ctx: &Ctx, a: &LogArgs) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let view = remote.read(&who)?;
    let git = remote.mirror();
    let mut walker = Walker::new(
        &git,
        &view.verified.commit,
        &view.verified.snapshot.state,
        &view.verified.keyring_versions,
    )?;
    let keys = &view.keys;
    let mut entries: Vec<Value> = Vec::new();
    match &a.path {
        Some(path) => {
            let mut target = view.catalog.find(path);
            let mut i = 0;
            // Versions newest first; each compared with the next older one.
            while entries.len() < a.limit {
                if i + 1 >= walker.points.len() && !walker.load_more()? && i >= walker.points.len()
                {
                    break;
                }
                let Some(newer) = walker.points.get(i) else {
                    break;
                };
                let older = walker.points.get(i + 1);
                if target.is_none() {
                    // The path is not current: find a page that had it in this version.
                    for (id, e) in &newer.manifest.pages {
                        if is_index_page(keys, id, e)
                            || older.is_some_and(|o| o.manifest.pages.get(id) == Some(e))
                        {
                            continue;
                        }
                        if open_at(&git, keys, newer, id)?.is_some_and(|r| r.path == *path) {
                            target = Some(*id);
                            break;
                        }
                    }
                }
                if target.is_none()
                    && let Some(o) = older
                {
                    // ... or a page removed by this version that had it before.
                    for (id, e) in &o.manifest.pages {
                        if newer.manifest.pages.contains_key(id) || is_index_page(keys, id, e) {
                            continue;
                        }
                        if open_at(&git, keys, o, id)?.is_some_and(|r| r.path == *path) {
                            target = Some(*id);
                            break;
                        }
                    }
                }
                if let Some(id) = target {
                    let now = newer.manifest.pages.get(&id);
                    let before = older.and_then(|o| o.manifest.pages.get(&id));
                    if now != before {
                        let record = open_at(&git, keys, newer, &id)?;
                        let old_record = match older {
                            Some(o) => open_at(&git, keys, o, &id)?,
                            None => None,
                        };
                        entries.push(page_entry(
                            &walker,
                            newer,
                            &id,
                            record.as_ref(),
                            old_record.as_ref(),
                        ));
                    }
                }
                i += 1;
            }
            if target.is_none() {
                return Err(CliError::not_found(format!(
                    "no page {path:?} in this wiki or its history"
                )));
            }
        }
        None => {
            let mut i = 0;
            while entries.len() < a.limit {
                if i + 1 >= walker.points.len() {
                    walker.load_more()?;
                }
                let Some(newer) = walker.points.get(i) else {
                    break;
                };
                let older = walker.points.get(i + 1);
                let mut changes = Vec::new();
                for (id, e) in &newer.manifest.pages {
                    if is_index_page(keys, id, e) {
                        continue;
                    }
                    let before = older.and_then(|o| o.manifest.pages.get(id));
                    if before == Some(e) {
                        continue;
                    }
                    let rec = open_at(&git, keys, newer, id)?;
                    let old = match (before, older) {
                        (Some(_), Some(o)) => open_at(&git, keys, o, id)?,
                        _ => None,
                    };
                    changes.push(change_json(rec.as_ref(), old.as_ref()));
                }
                if let Some(o) = older {
                    for (id, e) in &o.manifest.pages {
                        if !newer.manifest.pages.contains_key(id) && !is_index_page(keys, id, e) {
                            let old = open_at(&git, keys, o, id)?;
                            changes.push(change_json(None, old.as_ref()));
                        }
                    }
                }
                let keyring_changed = older.is_some_and(|o| o.state.keyring != newer.state.keyring);
                entries.push(json!({
                    "seq": newer.state.seq,
                    "commit": newer.commit,
                    "signer": walker.signer_name(newer),
                    "keyring_changed": keyring_changed,
                    "changes": changes,
                }));
                i += 1;
            }
        }
    }
    if ctx.out.json {
        return ctx.out.json_value(&json!({ "entries": entries }));
    }
    for e in &entries {
        print_entry(ctx, e)?;
    }
    Ok(())
}

fn action(new: Option<&PageRecord>, old: Option<&PageRecord>) -> &'static str {
    match (new, old) {
        (Some(_), None) => "created",
        (None, _) => "removed",
        (Some(n), Some(o)) if n.path != o.path => "renamed",
        _ => "changed",
    }
}

fn change_json(new: Option<&PageRecord>, old: Option<&PageRecord>) -> Value {
    json!({
        "action": action(new, old),
        "path": new.or(old).map(|r| r.path.clone()),
        "previous_path": old.filter(|o| new.is_some_and(|n| n.path != o.path)).map(|o| o.path.clone()),
    })
}

fn page_entry(
    w: &Walker<'_>,
    p: &Point,
    id: &PageId,
    new: Option<&PageRecord>,
    old: Option<&PageRecord>,
) -> Value {
    let mut v = change_json(new, old);
    v["seq"] = json!(p.state.seq);
    v["commit"] = json!(p.commit);
    v["page"] = json!(id.to_hex());
    v["signer"] = json!(w.signer_name(p));
    v["author"] = json!(new.map(|r| r.author.clone()));
    v["written_at_ms"] = json!(new.map(|r| r.written_at_ms));
    v["size"] = json!(new.map(|r| r.content.len()));
    v
}

fn print_entry(ctx: &Ctx, e: &Value) -> Result<()> {
    let seq = e["seq"].as_u64().unwrap_or(0);
    let signer = e["signer"].as_str().unwrap_or("?");
    if let Some(changes) = e["changes"].as_array() {
        let mut line = format!("{seq:>6}  {signer}");
        if e["keyring_changed"].as_bool() == Some(true) {
            line.push_str("  [members changed]");
        }
        ctx.out.line(line)?;
        for c in changes {
            ctx.out.line(format!("        {}", describe(c)))?;
        }
        return Ok(());
    }
    let when = e["written_at_ms"]
        .as_i64()
        .map_or_else(|| "-".repeat(19), format_time);
    let author = e["author"].as_str().unwrap_or(signer);
    ctx.out
        .line(format!("{seq:>6}  {when}  {author:<16} {}", describe(e)))
}

fn describe(c: &Value) -> String {
    let path = c["path"].as_str().unwrap_or("?");
    match (
        c["action"].as_str().unwrap_or("?"),
        c["previous_path"].as_str(),
    ) {
        ("renamed", Some(prev)) => format!("renamed {prev} -> {path}"),
        (act, _) => format!("{act} {path}"),
    }
}

/// One version of a page: state sequence, record and envelope hash (`None` where removed).
pub type PageVersion = (u64, Option<PageRecord>, Option<Digest32>);

/// The versions of one page, newest first, as `(state seq, record, envelope hash)` (record and
/// hash are `None` where the page was removed): the verified walk `log` uses, for `zkwiki mcp`.
pub fn page_versions(
    remote: &Remote<'_>,
    view: &crate::remote::ReadView,
    id: &PageId,
    limit: usize,
) -> Result<Vec<PageVersion>> {
    let git = remote.mirror();
    let mut walker = Walker::new(
        &git,
        &view.verified.commit,
        &view.verified.snapshot.state,
        &view.verified.keyring_versions,
    )?;
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < limit {
        if i + 1 >= walker.points.len() {
            walker.load_more()?;
        }
        let Some(newer) = walker.points.get(i) else {
            break;
        };
        let now = newer.manifest.pages.get(id);
        let before = walker
            .points
            .get(i + 1)
            .and_then(|o| o.manifest.pages.get(id));
        if now != before {
            let record = open_at(&git, &view.keys, newer, id)?;
            out.push((newer.state.seq, record, now.map(|e| e.hash)));
        }
        i += 1;
    }
    Ok(out)
}
