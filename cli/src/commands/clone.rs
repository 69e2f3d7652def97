//! `clone`, `decrypt`, `pull`, and the two git helpers `textconv` and `credential`.
//!
//! A clone folder holds the plaintext pages at their wiki paths, and `.zkwiki/`: `git/` (the
//! encrypted git clone, with the textconv driver and credential helper configured, no token in
//! its config) and `clone.json` (wiki, server, what was decrypted, and a hash of every file
//! written, so `pull` never overwrites a local change). Nothing is written until everything
//! verified and decrypted; new folders appear by one rename at the end.
//!
//! `clone` and `decrypt` verify the whole history back to the wiki's first state (every
//! transition, by the client core's walker), not only the head; `pull` verifies every state
//! from the clone's own to the new head. Pages a member wrote against the rules are isolated:
//! reported, not written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use client::Workspace;
use client::display::escape as esc;
use client::layout::Slot;
use core_crypto::envelope::PageKind;
use core_crypto::ids::{Digest32, PageId, WikiId};
use core_crypto::index::SearchIndex;
use core_crypto::keyring::{Keyring, Seen};
use core_crypto::snapshot::SeenRecord;
use core_crypto::state::{Manifest, ManifestEntry, WikiState};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::args::{CloneArgs, CredentialArgs, DecryptArgs, PullArgs, TextconvArgs};
use crate::config::{self, is_nonempty_dir};
use crate::context::{Ctx, Unlocked};
use crate::error::{CliError, Context, ErrorKind, Result};
use crate::fsutil;
use crate::git::{self, Git};
use crate::repo::GitWiki;
use crate::time::format_zoned;

/// `.zkwiki/clone.json`.
#[derive(Serialize, Deserialize)]
struct CloneInfo {
    server: String,
    wiki: String,
    seq: u64,
    state_hash: String,
    keyring_seq: u64,
    keyring_hash: String,
    /// Page path → SHA-256 of the plaintext file written.
    files: BTreeMap<String, String>,
}

impl CloneInfo {
    fn seen(&self) -> Result<SeenRecord> {
        let h = |s: &str| {
            Digest32::from_hex(s).map_err(|_| CliError::general("clone.json holds a bad hash"))
        };
        Ok(SeenRecord {
            keyring: Some(Seen {
                seq: self.keyring_seq,
                hash: h(&self.keyring_hash)?,
            }),
            state: Some(Seen {
                seq: self.seq,
                hash: h(&self.state_hash)?,
            }),
        })
    }
}

/// Verifies the repository's commit against `seen` and its *whole* history (every transition
/// back to the first state), opens it as `who`, and decrypts every live page.
fn verify_and_open(
    ctx: &Ctx,
    gw: &GitWiki,
    seen: &SeenRecord,
    who: &Unlocked,
) -> Result<Workspace> {
    let (head, steps) = gw.verify(seen)?;
    let mut ws = Workspace::open(&who.identity, &who.user, head, &steps)?;
    let bar = ctx
        .out
        .progress(ws.snapshot().manifest.pages.len() as u64, "decrypting");
    gw.load_all(&mut ws, &mut |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    if let Some((id, why)) = ws.failures().iter().next() {
        return Err(CliError::integrity(format!("page {id}: {why}")));
    }
    let head = ws.head().clone();
    let bar = ctx.out.progress(head.seq(), "verifying history");
    let history = gw.walk(&head, &mut |_| {
        bar.inc(1);
        true
    })?;
    bar.finish_and_clear();
    gw.check_history_files(head.seq(), &history)?;
    ws.attribute(&history);
    Ok(ws)
}

fn sha_hex(bytes: &[u8]) -> String {
    Digest32::of(bytes).to_hex()
}

/// Writes every live page of `ws` under `root`; returns path → SHA-256 of what was written.
/// Isolated pages are reported, not written.
pub(super) fn write_pages(
    ctx: &Ctx,
    root: &Path,
    ws: &Workspace,
) -> Result<BTreeMap<String, String>> {
    for (id, iso) in ws.isolated() {
        ctx.out.warn(format!("{} (not written)", iso.describe(id)));
    }
    let mut files = BTreeMap::new();
    let bar = ctx.out.progress(ws.catalog().len() as u64, "writing");
    for id in ws.catalog().keys() {
        bar.inc(1);
        let r = &ws.record(id)?;
        let file = fsutil::page_file(root, &r.path).map_err(CliError::integrity)?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                CliError::io(format!("creating the folder of {:?}", esc(&r.path)), e)
            })?;
        }
        std::fs::write(&file, &r.content).map_err(|e| CliError::io(file.display(), e))?;
        files.insert(r.path.clone(), sha_hex(&r.content));
    }
    bar.finish_and_clear();
    Ok(files)
}

fn parse_clone_url(ctx: &Ctx, url: &str) -> Result<(String, WikiId)> {
    if url.starts_with("http://") || url.starts_with("https://") {
        let (base, rest) = url.rsplit_once("/git/").ok_or_else(|| {
            CliError::usage(format!("{url} is not a wiki's git URL"))
                .with_hint("wiki git URLs look like https://server/git/<wiki id>.git")
        })?;
        let id = rest.trim_end_matches('/').trim_end_matches(".git");
        Ok((config::normalize_server(base)?, WikiId::from_hex(id)?))
    } else {
        Ok((ctx.session()?.server, ctx.resolve_wiki(Some(url))?))
    }
}

fn configure_clone(git: &Git) -> Result<()> {
    let exe = git::shell_quote(&git::self_exe()?);
    let set = |args: &[&str]| git.run(args, "configuring the clone").map(|_| ());
    set(&["config", "--replace-all", "credential.helper", ""])?;
    set(&[
        "config",
        "--add",
        "credential.helper",
        &format!("!{exe} credential"),
    ])?;
    set(&["config", "diff.zkwiki.textconv", &format!("{exe} textconv")])?;
    let info = git.dir().join(".git").join("info");
    std::fs::create_dir_all(&info).map_err(|e| CliError::io(info.display(), e))?;
    std::fs::write(
        info.join("attributes"),
        "pages/* diff=zkwiki\nkeyring/* diff=zkwiki\nstate diff=zkwiki\nmanifest diff=zkwiki\n",
    )
    .map_err(|e| CliError::io(info.display(), e))
}

fn save_info(dir: &Path, info: &CloneInfo) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(info)
        .map_err(|e| CliError::general(format!("encoding clone.json: {e}")))?;
    fsutil::write_atomic(&dir.join(".zkwiki").join("clone.json"), &bytes, false)
        .context("saving clone.json")
}

fn info_for(server: &str, ws: &Workspace, files: BTreeMap<String, String>) -> CloneInfo {
    let snap = ws.snapshot();
    CloneInfo {
        server: server.to_owned(),
        wiki: snap.keyring.wiki.to_hex(),
        seq: snap.state.seq,
        state_hash: snap.state.hash().to_hex(),
        keyring_seq: snap.keyring.seq,
        keyring_hash: snap.keyring.hash().to_hex(),
        files,
    }
}

/// Moves a finished temporary folder to its place.
fn put_in_place(tmp: tempfile::TempDir, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(|e| CliError::io(dir.display(), e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        CliError::io(dir.display(), e)
    })
}

/// `zkwiki clone URL [DIR]`.
pub fn clone(ctx: &Ctx, a: &CloneArgs) -> Result<()> {
    let (server, wiki) = parse_clone_url(ctx, &a.url)?;
    let session = ctx.session()?;
    if session.server != server {
        return Err(CliError::new(
            ErrorKind::Auth,
            format!(
                "not logged in to {server} (the session is for {})",
                session.server
            ),
        )
        .with_hint(format!("run `zkwiki login --server {server}`")));
    }
    let dir = a.dir.clone().unwrap_or_else(|| {
        let name = ctx
            .profile()
            .map(|p| p.wikis.clone())
            .unwrap_or_default()
            .into_iter()
            .find(|(_, v)| *v == wiki.to_hex())
            .map_or_else(|| wiki.to_hex(), |(k, _)| k);
        PathBuf::from(name)
    });
    if dir.exists() && is_nonempty_dir(&dir) || dir.is_file() {
        return Err(
            CliError::usage(format!("{} already exists and is not empty", dir.display()))
                .with_hint("choose another folder"),
        );
    }
    let who = ctx.unlock()?;
    let tmp = fsutil::temp_dir_beside(&dir).map_err(|e| CliError::io(dir.display(), e))?;
    let enc = tmp.path().join(".zkwiki").join("git");
    std::fs::create_dir_all(tmp.path().join(".zkwiki"))
        .map_err(|e| CliError::io(tmp.path().display(), e))?;
    let url = format!("{server}{}", client::wire::route::git(&wiki.to_hex()));
    ctx.out.note(format!("cloning {url}"));
    let mut cmd = git::git_command();
    cmd.args(git::credential_config()?)
        .args(["clone", "--quiet", "--branch", "main", &url])
        .arg(&enc);
    git::run(cmd, "git clone")?;
    let git = Git::at(&enc);
    configure_clone(&git)?;
    let gw = GitWiki::at(git, "HEAD")?;
    let ws = verify_and_open(ctx, &gw, &ctx.seen.load(&wiki)?, &who)?;
    if ws.wiki() != wiki {
        return Err(CliError::integrity("the server returned another wiki"));
    }
    crate::witness::check_for(ctx, ws.head())?;
    let files = write_pages(ctx, tmp.path(), &ws)?;
    save_info(tmp.path(), &info_for(&server, &ws, files))?;
    put_in_place(tmp, &dir)?;
    ctx.seen.store(&wiki, &ws.seen())?;
    let pages = ws.catalog().len();
    let seq = ws.head().seq();
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "dir": dir, "wiki": wiki.to_hex(), "seq": seq, "pages": pages,
            "encrypted_clone": dir.join(".zkwiki").join("git"),
            "isolated": ws.isolated().len(),
        }));
    }
    ctx.out.line(format!(
        "cloned {} (wiki version {seq}, history verified) into {}",
        crate::output::count(pages, "page", "pages"),
        dir.display()
    ))?;
    ctx.out.note(format!(
        "the encrypted clone is {}; `git log -p` there shows decrypted diffs \
         (set ZKWIKI_PASSPHRASE or ZKWIKI_KEY_FILE, or it asks for the passphrase once per file)",
        dir.join(".zkwiki").join("git").display()
    ));
    Ok(())
}

fn resolve_repo(path: &Path) -> PathBuf {
    let inner = path.join(".zkwiki").join("git");
    if inner.exists() {
        inner
    } else {
        path.to_path_buf()
    }
}

fn genesis_wiki(gw: &GitWiki) -> Option<WikiId> {
    let head = gw.head_bytes().ok()?;
    Keyring::decode(head.keyrings.first()?).ok().map(|k| k.wiki)
}

/// `zkwiki decrypt REPO OUT`.
pub fn decrypt(ctx: &Ctx, a: &DecryptArgs) -> Result<()> {
    let repo_dir = resolve_repo(&a.repo);
    let git = Git::at(&repo_dir);
    if !git.is_repo() {
        return Err(
            CliError::not_found(format!("{} is not a git repository", a.repo.display()))
                .with_hint("give the folder made by `zkwiki clone`, or any git clone of a wiki"),
        );
    }
    if a.out.is_file() || is_nonempty_dir(&a.out) {
        return Err(CliError::usage(format!(
            "{} already exists and is not empty",
            a.out.display()
        ))
        .with_hint("choose another folder"));
    }
    let gw = GitWiki::at(git, "HEAD")?;
    let who = unlock_for_decrypt(ctx, &gw, a)?;
    let seen = match (genesis_wiki(&gw), a.allow_older) {
        (Some(w), false) => ctx.seen.load(&w)?,
        _ => SeenRecord::default(),
    };
    let ws = verify_and_open(ctx, &gw, &seen, &who).map_err(|e| {
        if e.message.contains("rollback detected") {
            e.with_hint(
                "this copy is older than the newest version of the wiki this machine has seen: update it \
                 (`zkwiki pull`), or pass --allow-older if it is a backup you trust; if it came from the server, do not trust the server",
            )
        } else {
            e
        }
    })?;
    let tmp = fsutil::temp_dir_beside(&a.out).map_err(|e| CliError::io(a.out.display(), e))?;
    write_pages(ctx, tmp.path(), &ws)?;
    put_in_place(tmp, &a.out)?;
    if !a.allow_older {
        ctx.seen.store(&ws.wiki(), &ws.seen())?;
    }
    let (pages, seq) = (ws.catalog().len(), ws.head().seq());
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "out": a.out, "wiki": ws.wiki().to_hex(), "seq": seq, "pages": pages,
            "history_verified": seq, "isolated": ws.isolated().len(),
        }));
    }
    ctx.out.line(format!(
        "verified {} of history and decrypted {} (wiki version {seq}) into {}",
        crate::output::count(
            usize::try_from(seq).unwrap_or(usize::MAX),
            "state",
            "states"
        ),
        crate::output::count(pages, "page", "pages"),
        a.out.display()
    ))
}

/// The identity `decrypt` opens with: from the clone's own sealed identities with the recovery
/// key (`--recovery-key`) or a member's passphrase (`--user`), else this machine's.
fn unlock_for_decrypt(ctx: &Ctx, gw: &GitWiki, a: &DecryptArgs) -> Result<Unlocked> {
    let from_clone = a.recovery_key || a.recovery_key_file.is_some() || a.user.is_some();
    if !from_clone {
        return ctx.unlock().map_err(|e| {
            if e.kind == ErrorKind::Auth && e.message.contains("no identity") {
                e.with_hint(
                    "on a machine without your account, open the clone with `--recovery-key` \
                     or `--user NAME` (the clone carries your sealed identity)",
                )
            } else {
                e
            }
        });
    }
    let members = crate::repo::member_identities(gw.git())?;
    if members.is_empty() {
        return Err(CliError::not_found(
            "this clone carries no sealed identities (no `identities` branch)",
        )
        .with_hint("fetch it again from the server (`zkwiki pull`), or use --key-file"));
    }
    if let Some(user) = &a.user {
        let m = members.iter().find(|m| &m.user == user).ok_or_else(|| {
            CliError::not_found(format!(
                "the clone carries no sealed identity for {:?}",
                esc(user)
            ))
        })?;
        let passphrase = ctx
            .secrets
            .passphrase(&format!("Passphrase for {}: ", esc(user)))?;
        let identity = m.open_with_passphrase(passphrase.as_bytes())?;
        return Ok(Unlocked {
            user: user.clone(),
            identity,
        });
    }
    let key = ctx.secrets.recovery_key(a.recovery_key_file.as_deref())?;
    let (user, identity) = client::keyfile::open_any_with_recovery(&members, &key)?;
    Ok(Unlocked { user, identity })
}

/// `zkwiki pull [DIR]`.
pub fn pull(ctx: &Ctx, a: &PullArgs) -> Result<()> {
    let info_file = a.dir.join(".zkwiki").join("clone.json");
    let bytes = std::fs::read(&info_file).map_err(|_| {
        CliError::not_found(format!(
            "{} is not a folder made by `zkwiki clone`",
            a.dir.display()
        ))
    })?;
    let info: CloneInfo = serde_json::from_slice(&bytes)
        .map_err(|e| CliError::general(format!("{}: {e}", info_file.display())))?;
    let wiki = WikiId::from_hex(&info.wiki)?;
    let git = Git::at(&a.dir.join(".zkwiki").join("git"));
    let mut args = git::credential_config()?;
    args.extend(["fetch", "--quiet", "origin"].map(str::to_owned));
    git.run(args, "fetching from the server")?;
    let who = ctx.unlock()?;
    let seen = client::seen::merge(&ctx.seen.load(&wiki)?, &info.seen()?);
    let gw = GitWiki::at(git.clone(), "refs/remotes/origin/main")?;
    let (head, steps) = gw.verify(&seen)?;
    if head.snapshot().keyring.wiki != wiki {
        return Err(CliError::integrity("the server returned another wiki"));
    }
    crate::witness::check_for(ctx, &head)?;
    let mut ws = Workspace::open(&who.identity, &who.user, head, &steps)?;
    gw.load_all(&mut ws, &mut |_| {})?;
    if let Some((id, why)) = ws.failures().iter().next() {
        return Err(CliError::integrity(format!("page {id}: {why}")));
    }
    if ws.wiki() != wiki {
        return Err(CliError::integrity("the server returned another wiki"));
    }
    for (id, iso) in ws.isolated() {
        ctx.out.warn(format!("{} (not written)", iso.describe(id)));
    }
    let records: Vec<(String, Vec<u8>)> = ws
        .catalog()
        .keys()
        .map(|id| ws.record(id).map(|r| (r.path.clone(), r.content.clone())))
        .collect::<client::Result<_>>()?;
    // Refuse to overwrite local changes.
    let mut changed_locally = Vec::new();
    for (path, hash) in &info.files {
        let file = fsutil::page_file(&a.dir, path).map_err(CliError::general)?;
        match std::fs::read(&file) {
            Ok(b) if sha_hex(&b) == *hash => {}
            Ok(_) => changed_locally.push(path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CliError::io(file.display(), e)),
        }
    }
    for (path, _) in &records {
        if !info.files.contains_key(path) {
            let file = fsutil::page_file(&a.dir, path).map_err(CliError::integrity)?;
            if file.exists() {
                changed_locally.push(path.clone());
            }
        }
    }
    if !changed_locally.is_empty() {
        changed_locally.sort();
        let names: Vec<String> = changed_locally
            .iter()
            .map(|p| esc(p).into_owned())
            .collect();
        return Err(CliError::new(
            ErrorKind::Conflict,
            format!(
                "pull would overwrite local changes in: {}",
                names.join(", ")
            ),
        )
        .with_hint("save them with `zkwiki put PATH FILE` (or move them away), then pull again"));
    }
    // Stage every changed file in a temporary folder first, then move them in.
    let staging = tempfile::Builder::new()
        .prefix("pull-")
        .tempdir_in(a.dir.join(".zkwiki"))
        .map_err(|e| CliError::io("creating a temporary folder", e))?;
    let mut new_files = BTreeMap::new();
    let mut staged = Vec::new();
    for (i, (path, content)) in records.iter().enumerate() {
        let hash = sha_hex(content);
        if info.files.get(path) != Some(&hash) {
            let tmp = staging.path().join(i.to_string());
            std::fs::write(&tmp, content).map_err(|e| CliError::io(tmp.display(), e))?;
            staged.push((tmp, path.clone()));
        }
        new_files.insert(path.clone(), hash);
    }
    let mut removed = 0;
    for path in info.files.keys() {
        if !new_files.contains_key(path) {
            let file = fsutil::page_file(&a.dir, path).map_err(CliError::general)?;
            if std::fs::remove_file(&file).is_ok() {
                removed += 1;
            }
            prune_empty_parents(&a.dir, &file);
        }
    }
    for (tmp, path) in &staged {
        let file = fsutil::page_file(&a.dir, path).map_err(CliError::integrity)?;
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| CliError::io(parent.display(), e))?;
        }
        std::fs::rename(tmp, &file).map_err(|e| CliError::io(file.display(), e))?;
    }
    git.run(
        ["reset", "--quiet", "--hard", gw.commit()],
        "updating the encrypted clone",
    )?;
    save_info(&a.dir, &info_for(&info.server, &ws, new_files))?;
    ctx.seen.store(&wiki, &ws.seen())?;
    let seq = ws.head().seq();
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "seq": seq, "updated": staged.len(), "removed": removed,
        }));
    }
    ctx.out.line(format!(
        "wiki version {seq}: {} updated, {removed} removed",
        crate::output::count(staged.len(), "file", "files"),
    ))
}

fn prune_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// What the verified history of a clone's `HEAD` signed: every state, and every page version
/// (entry) any state listed. Cached per `HEAD` commit in the repository's git folder, so
/// `git log -p` does not walk history once per file.
#[derive(Serialize, Deserialize)]
struct SignedHistory {
    head: String,
    states: BTreeSet<String>,
    /// Page id → hashes of every version some verified state listed.
    pages: BTreeMap<String, BTreeSet<String>>,
}

fn signed_history(ctx: &Ctx, git: &Git) -> Result<(SignedHistory, Workspace)> {
    let gw = GitWiki::at(git.clone(), "HEAD")?;
    let who = ctx.unlock()?;
    let seen = genesis_wiki(&gw)
        .map(|w| ctx.seen.load(&w))
        .transpose()?
        .unwrap_or_default();
    let (head, steps) = gw.verify(&seen)?;
    let cache_file = git
        .run(
            ["rev-parse", "--absolute-git-dir"],
            "locating the git folder",
        )
        .map(|o| {
            PathBuf::from(String::from_utf8_lossy(&o).trim()).join("zkwiki-signed-history.json")
        })?;
    let cached: Option<SignedHistory> = std::fs::read(&cache_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|h: &SignedHistory| h.head == gw.commit());
    let ws = Workspace::open(&who.identity, &who.user, head.clone(), &steps)?;
    if let Some(h) = cached {
        return Ok((h, ws));
    }
    let mut history = SignedHistory {
        head: gw.commit().to_owned(),
        states: BTreeSet::from([head.state_hash().to_hex()]),
        pages: BTreeMap::new(),
    };
    let mut add = |id: &PageId, e: &ManifestEntry| {
        history
            .pages
            .entry(id.to_hex())
            .or_default()
            .insert(e.hash.to_hex());
    };
    for (id, e) in &head.snapshot().manifest.pages {
        add(id, e);
    }
    let mut states = Vec::new();
    let steps = gw.walk_with(&head, &mut |_, older| {
        if let Some(p) = older {
            states.push(p.state.hash().to_hex());
            for (id, e) in &p.manifest.pages {
                add(id, e);
            }
        }
        Ok(true)
    })?;
    gw.check_history_files(head.seq(), &steps)?;
    history.states.extend(states);
    if let Ok(bytes) = serde_json::to_vec(&history) {
        let _ = fsutil::write_atomic(&cache_file, &bytes, false);
    }
    Ok((history, ws))
}

/// `zkwiki textconv FILE` (run by git inside an encrypted clone).
pub fn textconv(ctx: &Ctx, a: &TextconvArgs) -> Result<()> {
    let bytes = std::fs::read(&a.file).map_err(|e| CliError::io(a.file.display(), e))?;
    let name = a
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = match describe_file(ctx, &name, &bytes) {
        Ok(t) => t,
        // git aborts the whole diff when a textconv fails: print the reason instead.
        Err(e) => format!("(zkwiki cannot show this file: {})\n", e.message),
    };
    ctx.out.raw(text.as_bytes())
}

fn describe_file(ctx: &Ctx, name: &str, bytes: &[u8]) -> Result<String> {
    match Slot::of_file_name(name) {
        Some(Slot::State) => {
            let s = WikiState::decode(bytes)?;
            Ok(format!(
                "wiki state {}\nepoch {}\nsigner {}\nmanifest {}\nprevious {}\n",
                s.seq,
                s.epoch,
                data_encoding::HEXLOWER.encode(&s.signer),
                s.manifest,
                s.prev
            ))
        }
        Some(Slot::Manifest) => {
            let m = Manifest::decode(bytes)?;
            let mut out = format!("manifest: {} pages\n", m.pages.len());
            for (id, e) in &m.pages {
                out.push_str(&format!(
                    "{id} epoch {} size {} {}\n",
                    e.epoch, e.size, e.hash
                ));
            }
            Ok(out)
        }
        Some(Slot::Keyring(_)) => {
            let k = Keyring::decode(bytes)?;
            let mut out = format!("keyring version {} (epoch {})\n", k.seq, k.epoch);
            for m in &k.members {
                out.push_str(&format!(
                    "{} {} {} {}\n",
                    esc(&m.name),
                    m.kind.name(),
                    m.role.name(),
                    m.public.fingerprint()
                ));
            }
            Ok(out)
        }
        Some(Slot::Page(id)) => describe_page(ctx, &id, bytes),
        None => Err(CliError::usage(format!(
            "{}: not a file of a zkwiki repository",
            esc(name)
        ))),
    }
}

/// A page version, shown only if the signed history of HEAD holds exactly these bytes.
fn describe_page(ctx: &Ctx, id: &PageId, bytes: &[u8]) -> Result<String> {
    let git = Git::at(Path::new("."));
    let (history, ws) = signed_history(ctx, &git)?;
    let hash = Digest32::of(bytes);
    let signed = history
        .pages
        .get(&id.to_hex())
        .is_some_and(|h| h.contains(&hash.to_hex()));
    if !signed {
        return Err(CliError::integrity(format!(
            "this version of page {id} is not in the signed history of HEAD: the history was rewritten"
        )));
    }
    let entry = ManifestEntry::for_envelope(bytes)?;
    let (r, prefix) = client::history::open_version(ws.keys(), id, &entry, bytes)?;
    if let Some(problem) = client::workspace::record_problem(&r, prefix)
        && !matches!(r.kind, PageKind::Index | PageKind::Settings)
    {
        return Ok(format!("(an unreadable page version: {problem})\n"));
    }
    let mail = match r.note.author_email.as_str() {
        "" => String::new(),
        m => format!(" <{}>", esc(m)),
    };
    let mut out = format!(
        "path: {}\nwritten as: {}{mail}\nwritten: {}\n",
        esc(&r.path),
        esc(&r.author),
        format_zoned(r.written_at_ms, r.note.tz_offset_minutes).trim_end()
    );
    for line in r.note.message.trim_end().lines() {
        out.push_str(&format!("message: {}\n", esc(line)));
    }
    match r.kind {
        PageKind::Markdown => {
            out.push('\n');
            out.push_str(&client::display::escape_multiline(
                &String::from_utf8_lossy(&r.content),
            ));
        }
        PageKind::Attachment => {
            out.push_str(&format!(
                "attachment: {} bytes, SHA-256 {}\n",
                r.content.len(),
                Digest32::of(&r.content)
            ));
        }
        PageKind::Settings => {
            out.push('\n');
            out.push_str(&client::display::escape_multiline(
                &String::from_utf8_lossy(&r.content),
            ));
        }
        PageKind::Index => {
            let ix = SearchIndex::from_record(&r)?;
            out.push_str(&format!(
                "search index: {} pages, {} terms\n",
                ix.pages().len(),
                ix.term_count()
            ));
        }
    }
    Ok(out)
}

/// `zkwiki credential get` (git credential helper protocol).
pub fn credential(ctx: &Ctx, a: &CredentialArgs) -> Result<()> {
    if a.operation != "get" {
        return Ok(());
    }
    let mut fields = BTreeMap::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| CliError::io("reading standard input", e))?;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once('=') {
            fields.insert(k.to_owned(), v.to_owned());
        }
    }
    let (server, token) = match ctx.agent_access()? {
        Some((server, access)) => (server, access.token),
        None => match ctx.keystore.session()? {
            Some(session) => (session.server.clone(), session.token.clone()),
            None => return Ok(()),
        },
    };
    let origin = format!(
        "{}://{}",
        fields.get("protocol").map_or("", String::as_str),
        fields.get("host").map_or("", String::as_str)
    );
    let server_origin = server.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    if origin != server_origin {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "username=zkwiki\npassword={token}\n")
        .map_err(|e| CliError::io("writing to git", e))
}
