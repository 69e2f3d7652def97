//! `clone`, `decrypt`, `pull`, and the two git helpers `textconv` and `credential`.
//!
//! A clone folder holds the plaintext pages at their wiki paths, and `.zkwiki/`: `git/` (the
//! encrypted git clone, with the textconv driver and credential helper configured, no token in
//! its config) and `clone.json` (wiki, server, what was decrypted, and a hash of every file
//! written, so `pull` never overwrites a local change). Nothing is written until everything
//! verified and decrypted; new folders appear by one rename at the end.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use core_crypto::envelope::{self, PageKind, PageRecord};
use core_crypto::ids::{Digest32, PageId, WikiId};
use core_crypto::index::SearchIndex;
use core_crypto::keyring::{Keyring, Seen};
use core_crypto::snapshot::SeenRecord;
use core_crypto::state::{Manifest, WikiState};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::args::{CloneArgs, CredentialArgs, DecryptArgs, PullArgs, TextconvArgs};
use crate::config::{self, is_nonempty_dir};
use crate::context::{Ctx, Unlocked};
use crate::error::{CliError, Context, ErrorKind, Result};
use crate::fsutil;
use crate::git::{self, Git};
use crate::repo::{self, Verified};
use crate::wiki::{self, format_time};

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

fn newest(a: SeenRecord, b: SeenRecord) -> SeenRecord {
    let pick = |x: Option<Seen>, y: Option<Seen>| match (x, y) {
        (Some(x), Some(y)) => Some(if y.seq > x.seq { y } else { x }),
        (x, y) => x.or(y),
    };
    SeenRecord {
        keyring: pick(a.keyring, b.keyring),
        state: pick(a.state, b.state),
    }
}

/// Verifies and decrypts a repository at `rev`; nothing is written.
fn verify_and_open(
    ctx: &Ctx,
    git: &Git,
    rev: &str,
    seen: &SeenRecord,
    who: &Unlocked,
) -> Result<(Verified, BTreeMap<PageId, PageRecord>)> {
    let verified = repo::load(git, rev, seen)?;
    let keys = verified.snapshot.keyring.unlock(&who.identity)?;
    let bar = ctx
        .out
        .progress(verified.snapshot.manifest.pages.len() as u64, "decrypting");
    let records = wiki::open_all(&verified.snapshot, &verified.blobs, &keys, &mut || {
        bar.inc(1)
    })?;
    bar.finish_and_clear();
    Ok((verified, records))
}

fn sha_hex(bytes: &[u8]) -> String {
    Digest32::of(bytes).to_hex()
}

/// Writes every page under `root`; returns path → SHA-256 of what was written.
pub(super) fn write_pages(
    ctx: &Ctx,
    root: &Path,
    records: &BTreeMap<PageId, PageRecord>,
) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    let bar = ctx.out.progress(records.len() as u64, "writing");
    for r in records.values() {
        bar.inc(1);
        let file = fsutil::page_file(root, &r.path).map_err(CliError::integrity)?;
        if files.contains_key(&r.path) {
            return Err(CliError::integrity(format!(
                "two pages have the same path {:?}",
                r.path
            )));
        }
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                CliError::io(format!("creating the folder of {:?}", r.path), e)
                    .with_hint("a page and a folder of the wiki have the same name")
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
        Ok((
            ctx.session()?.server,
            config::resolve_wiki(&ctx.config, Some(url))?,
        ))
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

fn info_for(server: &str, v: &Verified, files: BTreeMap<String, String>) -> CloneInfo {
    CloneInfo {
        server: server.to_owned(),
        wiki: v.snapshot.keyring.wiki.to_hex(),
        seq: v.snapshot.state.seq,
        state_hash: v.snapshot.state.hash().to_hex(),
        keyring_seq: v.snapshot.keyring.seq,
        keyring_hash: v.snapshot.keyring.hash().to_hex(),
        files,
    }
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
            .config
            .wikis
            .iter()
            .find(|(_, v)| **v == wiki.to_hex())
            .map_or_else(|| wiki.to_hex(), |(k, _)| k.clone());
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
    let url = format!("{server}/git/{wiki}.git");
    ctx.out.note(format!("cloning {url}"));
    let mut cmd = git::git_command();
    cmd.args(git::credential_config()?)
        .args(["clone", "--quiet", "--branch", "main", &url])
        .arg(&enc);
    git::run(cmd, "git clone")?;
    let git = Git::at(&enc);
    configure_clone(&git)?;
    let seen = ctx.seen.load(&wiki)?;
    let (verified, records) = verify_and_open(ctx, &git, "HEAD", &seen, &who)?;
    if verified.snapshot.keyring.wiki != wiki {
        return Err(CliError::integrity("the server returned another wiki"));
    }
    let files = write_pages(ctx, tmp.path(), &records)?;
    save_info(tmp.path(), &info_for(&server, &verified, files))?;
    if dir.exists() {
        std::fs::remove_dir(&dir).map_err(|e| CliError::io(dir.display(), e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, &dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        CliError::io(dir.display(), e)
    })?;
    ctx.seen.store(&wiki, &verified.snapshot.seen_record())?;
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "dir": dir, "wiki": wiki.to_hex(), "seq": verified.snapshot.state.seq,
            "pages": records.len(), "encrypted_clone": dir.join(".zkwiki").join("git"),
        }));
    }
    ctx.out.line(format!(
        "cloned {} pages (wiki version {}) into {}",
        records.len(),
        verified.snapshot.state.seq,
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

fn genesis_wiki(git: &Git, rev: &str) -> Option<WikiId> {
    let bytes = git
        .read_blobs(&[format!("{rev}:keyring/0000000001")])
        .ok()?
        .pop()
        .flatten()?;
    Keyring::decode(&bytes).ok().map(|k| k.wiki)
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
    let who = ctx.unlock()?;
    let wiki = genesis_wiki(&git, "HEAD");
    let seen = match (wiki, a.allow_older) {
        (Some(w), false) => ctx.seen.load(&w)?,
        _ => SeenRecord::default(),
    };
    let (verified, records) =
        verify_and_open(ctx, &git, "HEAD", &seen, &who).map_err(|e| {
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
    write_pages(ctx, tmp.path(), &records)?;
    if a.out.exists() {
        std::fs::remove_dir(&a.out).map_err(|e| CliError::io(a.out.display(), e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, &a.out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        CliError::io(a.out.display(), e)
    })?;
    if !a.allow_older {
        ctx.seen.store(
            &verified.snapshot.keyring.wiki,
            &verified.snapshot.seen_record(),
        )?;
    }
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "out": a.out, "wiki": verified.snapshot.keyring.wiki.to_hex(),
            "seq": verified.snapshot.state.seq, "pages": records.len(),
        }));
    }
    ctx.out.line(format!(
        "verified and decrypted {} pages (wiki version {}) into {}",
        records.len(),
        verified.snapshot.state.seq,
        a.out.display()
    ))
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
    let seen = newest(ctx.seen.load(&wiki)?, info.seen()?);
    let rev = "refs/remotes/origin/main";
    let (verified, records) = verify_and_open(ctx, &git, rev, &seen, &who)?;
    if verified.snapshot.keyring.wiki != wiki {
        return Err(CliError::integrity("the server returned another wiki"));
    }
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
    for r in records.values() {
        if !info.files.contains_key(&r.path) {
            let file = fsutil::page_file(&a.dir, &r.path).map_err(CliError::integrity)?;
            if file.exists() {
                changed_locally.push(r.path.clone());
            }
        }
    }
    if !changed_locally.is_empty() {
        changed_locally.sort();
        return Err(CliError::new(
            ErrorKind::Conflict,
            format!(
                "pull would overwrite local changes in: {}",
                changed_locally.join(", ")
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
    for (i, r) in records.values().enumerate() {
        let hash = sha_hex(&r.content);
        if info.files.get(&r.path) != Some(&hash) {
            let tmp = staging.path().join(i.to_string());
            std::fs::write(&tmp, &r.content).map_err(|e| CliError::io(tmp.display(), e))?;
            staged.push((tmp, r.path.clone()));
        }
        new_files.insert(r.path.clone(), hash);
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
        ["reset", "--quiet", "--hard", verified.commit.as_str()],
        "updating the encrypted clone",
    )?;
    save_info(&a.dir, &info_for(&info.server, &verified, new_files))?;
    ctx.seen.store(&wiki, &verified.snapshot.seen_record())?;
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "seq": verified.snapshot.state.seq, "updated": staged.len(), "removed": removed,
        }));
    }
    ctx.out.line(format!(
        "wiki version {}: {} files updated, {} removed",
        verified.snapshot.state.seq,
        staged.len(),
        removed
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
    let tail = |n: usize| name.get(name.len().saturating_sub(n)..).unwrap_or("");
    if name == "state" || name.ends_with("_state") {
        let s = WikiState::decode(bytes)?;
        return Ok(format!(
            "wiki state {}\nepoch {}\nsigner {}\nmanifest {}\nprevious {}\n",
            s.seq,
            s.epoch,
            data_encoding::HEXLOWER.encode(&s.signer),
            s.manifest,
            s.prev
        ));
    }
    if name == "manifest" || name.ends_with("_manifest") {
        let m = Manifest::decode(bytes)?;
        let mut out = format!("manifest: {} pages\n", m.pages.len());
        for (id, e) in &m.pages {
            out.push_str(&format!(
                "{id} epoch {} size {} {}\n",
                e.epoch, e.size, e.hash
            ));
        }
        return Ok(out);
    }
    if tail(10).bytes().all(|b| b.is_ascii_digit()) && name.len() >= 10 {
        let k = Keyring::decode(bytes)?;
        let mut out = format!("keyring version {} (epoch {})\n", k.seq, k.epoch);
        for m in &k.members {
            out.push_str(&format!(
                "{} {} {} {}\n",
                m.name,
                m.kind.name(),
                m.role.name(),
                m.public.fingerprint()
            ));
        }
        return Ok(out);
    }
    let id = PageId::from_hex(tail(32))
        .map_err(|_| CliError::usage(format!("{name}: not a file of a zkwiki repository")))?;
    let git = Git::at(Path::new("."));
    let entries = git.ls_tree("HEAD")?;
    let mut keyring_specs: Vec<&str> = entries
        .iter()
        .filter(|e| e.path.starts_with("keyring/"))
        .map(|e| e.oid.as_str())
        .collect();
    keyring_specs.sort_by_key(|oid| {
        entries
            .iter()
            .find(|e| e.oid == *oid)
            .map(|e| e.path.clone())
    });
    let specs: Vec<String> = keyring_specs.iter().map(|s| (*s).to_owned()).collect();
    let chain: Vec<Vec<u8>> = git.read_blobs(&specs)?.into_iter().flatten().collect();
    let keyring = core_crypto::keyring::verify_chain(chain.iter().map(Vec::as_slice))?;
    let who = ctx.unlock()?;
    let keys = keyring.unlock(&who.identity)?;
    let header = envelope::read_header(bytes)?;
    let key = keys.key_for(&header)?;
    let r = envelope::open_page(key, &keyring.wiki, &id, bytes)?;
    let mut out = format!(
        "path: {}\nauthor: {}\nwritten: {} UTC\n",
        r.path,
        r.author,
        format_time(r.written_at_ms)
    );
    match r.kind {
        PageKind::Markdown => {
            out.push('\n');
            out.push_str(&String::from_utf8_lossy(&r.content));
        }
        PageKind::Attachment => {
            out.push_str(&format!(
                "attachment: {} bytes, SHA-256 {}\n",
                r.content.len(),
                Digest32::of(&r.content)
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
