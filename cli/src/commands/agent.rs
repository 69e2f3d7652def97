//! Members and agents: `member add|rm|list`, `agent grant|list|revoke`, `rotate`, `reencrypt`.
//!
//! Every change of access is a new owner-signed keyring version committed together with an
//! owner-signed state (one commit). Removing anyone starts a new key epoch, so nothing written
//! afterwards opens with what they held; `reencrypt` moves old pages to the current epoch.

use std::collections::BTreeSet;
use std::path::PathBuf;

use core_crypto::identity::{PublicIdentity, UserIdentity};
use core_crypto::ids::{PageId, ScopeId};
use core_crypto::keyring::{KeyringDraft, MemberKind, NewMember, Role};
use core_crypto::path::in_prefix;
use rand_core::OsRng;
use serde_json::{Value, json};

use crate::api::{CommitOutcome, CommitRequest};
use crate::args::{AgentGrantArgs, MemberAddArgs, ReencryptArgs, RotateArgs};
use crate::context::{Ctx, Unlocked};
use crate::error::{CliError, ErrorKind, Result};
use crate::keystore::{self, AgentAccess};
use crate::remote::{ReadView, Remote, Writer};
use crate::wiki;

/// Commit attempts before giving up on a keyring change.
const MAX_ATTEMPTS: usize = 8;
/// Pages re-encrypted per commit.
const REENCRYPT_BATCH: usize = 500;

/// Parses `30d`, `12h`, `90m`, `45s`, `2w`, `1y` into seconds.
pub fn parse_duration(text: &str) -> Result<u64> {
    let bad = || {
        CliError::usage(format!("{text:?} is not a duration"))
            .with_hint("use a number and a unit: 45s, 90m, 12h, 30d, 2w, 1y")
    };
    let (num, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|s| *s > 0).ok_or_else(bad)
}

/// Normalizes a folder given by a person (`research`, `research/`) to a scope prefix.
fn folder_prefix(folder: &str) -> Result<String> {
    let trimmed = folder.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let prefix = format!("{trimmed}/");
    core_crypto::path::check_prefix(&prefix)?;
    Ok(prefix)
}

/// What a keyring change committed.
struct Committed {
    seq: u64,
    epoch: u32,
    before: ReadView,
}

/// Fetches the head, lets `edit` change the keyring, re-encrypts the pages `reseal` picks (under
/// the new keys), signs and commits; on a conflict, starts again from the new head.
fn commit_keyring_change(
    remote: &Remote<'_>,
    who: &Unlocked,
    edit: &mut dyn FnMut(&mut KeyringDraft, &ReadView) -> Result<()>,
    reseal: &mut dyn FnMut(&ReadView, &core_crypto::keyring::WikiKeys) -> Result<Vec<PageId>>,
) -> Result<Committed> {
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            remote
                .ctx
                .out
                .note("the wiki changed meanwhile; redoing the change on the new version");
        }
        let view = remote.read(who)?;
        let snap = &view.verified.snapshot;
        if snap
            .keyring
            .member_by_signing_key(&who.identity.public().ed25519)
            .map(|m| m.role)
            != Some(Role::Owner)
        {
            return Err(CliError::new(
                ErrorKind::Auth,
                "only an owner of the wiki may change its members",
            )
            .with_hint("ask an owner (`zkwiki member list` shows them)"));
        }
        let mut draft = KeyringDraft::edit(&snap.keyring, &view.keys)?;
        edit(&mut draft, &view)?;
        let next = draft.sign(&mut OsRng, &who.identity)?;
        let new_keys = next.unlock(&who.identity)?;
        let mut batch = snap.begin_write();
        batch.set_keyring(next.clone())?;
        for id in reseal(&view, &new_keys)? {
            let record = view.open(&id)?;
            batch.put(&mut OsRng, &new_keys, id, &record)?;
        }
        let prepared = batch.finish(&who.identity)?;
        let outcome = remote.api.commit(
            &remote.wiki.to_hex(),
            &CommitRequest {
                state: prepared.state.as_bytes(),
                manifest: &prepared.manifest.encode(),
                blobs: &prepared.blobs,
                keyring: Some(next.as_bytes()),
            },
        )?;
        match outcome {
            CommitOutcome::Conflict => continue,
            CommitOutcome::Accepted { seq } => {
                let epoch = next.epoch;
                let after = prepared.into_snapshot(snap);
                remote.ctx.seen.store(&remote.wiki, &after.seen_record())?;
                return Ok(Committed {
                    seq,
                    epoch,
                    before: view,
                });
            }
        }
    }
    Err(CliError::new(
        ErrorKind::Conflict,
        "the wiki kept changing; the keyring was not changed",
    )
    .with_hint("try again in a moment"))
}

/// Pages under `prefix` not yet encrypted under the scope `keys` would write them with.
fn pages_to_rescope(
    view: &ReadView,
    keys: &core_crypto::keyring::WikiKeys,
    prefix: &str,
) -> Result<Vec<PageId>> {
    let mut out = Vec::new();
    for (id, page) in view.catalog.index.pages() {
        if !in_prefix(&page.path, prefix) {
            continue;
        }
        let Some(entry) = view.verified.snapshot.manifest.pages.get(id) else {
            continue;
        };
        if keys.key_for_writing(&page.path)?.id() != entry.scope {
            out.push(*id);
        }
    }
    Ok(out)
}

fn role_for(text: &str) -> Result<Role> {
    Role::from_name(text).map_err(|_| {
        CliError::usage(format!("{text:?} is not a role"))
            .with_hint("use read or write (or owner for people)")
    })
}

/// `zkwiki member add USER --role ROLE`.
pub fn member_add(ctx: &Ctx, a: &MemberAddArgs) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let keys = remote.api.user_keys(&a.user)?;
    let public = keystore::public_from_b64(&keys.x25519, &keys.ed25519)?;
    let fingerprint = public.fingerprint();
    match &a.fingerprint {
        Some(expected) if normalize_fp(expected) == normalize_fp(&fingerprint) => {}
        Some(_) => {
            return Err(CliError::integrity(format!(
                "the server's key for {} has fingerprint {fingerprint}, not the one you gave",
                a.user
            )));
        }
        None if a.yes => ctx.out.warn(format!(
            "adding {} with key fingerprint {fingerprint} without checking it (--yes)",
            a.user
        )),
        None => {
            return Err(CliError::usage(format!(
                "{}'s key fingerprint is {fingerprint}: compare it with them out of band",
                a.user
            ))
            .with_hint("then run again with --fingerprint \"<what they read to you>\" (or --yes to skip the check)"));
        }
    }
    let role = role_for(&a.role)?;
    let prefix = folder_prefix(a.folder.as_deref().unwrap_or(""))?;
    let user = a.user.clone();
    let c = commit_keyring_change(
        &remote,
        &who,
        &mut |draft, _| {
            draft.add_member(NewMember {
                name: user.clone(),
                kind: MemberKind::Person,
                role,
                public,
                prefix: prefix.clone(),
            })?;
            Ok(())
        },
        &mut |view, keys| {
            if prefix.is_empty() {
                Ok(Vec::new())
            } else {
                pages_to_rescope(view, keys, &prefix)
            }
        },
    )?;
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "member": a.user, "role": role.name(), "fingerprint": fingerprint, "seq": c.seq, "epoch": c.epoch,
        }));
    }
    ctx.out.line(format!(
        "added {} as {} (fingerprint {fingerprint}); enforced by cryptography: the keyring now wraps the wiki key to them",
        a.user,
        role.name()
    ))
}

fn normalize_fp(fp: &str) -> String {
    fp.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What a removed member could read, for the revocation report.
fn readable_report(view: &ReadView, prefix: &str, epoch: u32) -> Value {
    let pages: Vec<&str> = view
        .catalog
        .index
        .pages()
        .values()
        .filter(|p| in_prefix(&p.path, prefix))
        .map(|p| p.path.as_str())
        .collect();
    json!({
        "epochs": format!("1..={epoch}"),
        "scope": if prefix.is_empty() { "whole wiki".to_owned() } else { prefix.to_owned() },
        "current_pages": pages.len(),
        "pages": pages,
    })
}

fn print_revocation(ctx: &Ctx, name: &str, report: &Value, new_epoch: u32, seq: u64) -> Result<()> {
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "revoked": name, "new_epoch": new_epoch, "seq": seq, "could_have_read": report,
        }));
    }
    ctx.out.line(format!(
        "revoked {name}: new key epoch {new_epoch} (state {seq})"
    ))?;
    ctx.out.line(format!(
        "{name} could have read: epochs {}, scope {}, {} current page(s) and their earlier versions:",
        report["epochs"].as_str().unwrap_or("?"),
        report["scope"].as_str().unwrap_or("?"),
        report["current_pages"]
    ))?;
    if let Some(pages) = report["pages"].as_array() {
        for p in pages.iter().take(50) {
            ctx.out.line(format!("  {}", p.as_str().unwrap_or("?")))?;
        }
        if pages.len() > 50 {
            ctx.out.line(format!(
                "  … and {} more (--json lists all)",
                pages.len() - 50
            ))?;
        }
    }
    ctx.out.line(
        "Nothing written from now on opens with its keys (cryptography). What it already read cannot be taken back; \
         `zkwiki reencrypt` moves old pages to the new epoch so leaked old ciphertext no longer matters.",
    )
}

/// Removes a member by name; returns its prefix and the epoch it could read up to.
fn remove(remote: &Remote<'_>, who: &Unlocked, name: &str) -> Result<(Committed, String, u32)> {
    let mut removed_prefix = String::new();
    let mut old_epoch = 0;
    let c = commit_keyring_change(
        remote,
        who,
        &mut |draft, view| {
            let removed = draft.remove_member(name).map_err(|_| {
                CliError::not_found(format!("no member named {name:?} in this wiki"))
                    .with_hint("see `zkwiki member list` / `zkwiki agent list`")
            })?;
            removed_prefix = removed.prefix;
            old_epoch = view.verified.snapshot.keyring.epoch;
            Ok(())
        },
        &mut |_, _| Ok(Vec::new()),
    )?;
    Ok((c, removed_prefix, old_epoch))
}

/// `zkwiki member rm USER`.
pub fn member_rm(ctx: &Ctx, user: &str) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let (c, prefix, old_epoch) = remove(&remote, &who, user)?;
    let report = readable_report(&c.before, &prefix, old_epoch);
    print_revocation(ctx, user, &report, c.epoch, c.seq)
}

/// `zkwiki member list` (people and agents).
pub fn member_list(ctx: &Ctx, agents_only: bool) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let v = remote.fetch_verified()?;
    let keyring = &v.snapshot.keyring;
    let rows: Vec<Value> = keyring
        .members
        .iter()
        .filter(|m| !agents_only || m.kind == MemberKind::Agent)
        .map(|m| {
            json!({
                "name": m.name, "kind": m.kind.name(), "role": m.role.name(),
                "fingerprint": m.public.fingerprint(),
                "scope": if m.scope == ScopeId::WHOLE_WIKI { "whole wiki".to_owned() } else { format!("folder (scope {})", m.scope) },
            })
        })
        .collect();
    let tokens = if agents_only {
        remote.api.list_tokens(&remote.wiki.to_hex()).ok()
    } else {
        None
    };
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "wiki": remote.wiki.to_hex(), "epoch": keyring.epoch, "members": rows, "tokens": tokens,
        }));
    }
    for r in &rows {
        ctx.out.line(format!(
            "{:<20} {:<6} {:<7} {:<24} {}",
            r["name"].as_str().unwrap_or(""),
            r["kind"].as_str().unwrap_or(""),
            r["role"].as_str().unwrap_or(""),
            r["scope"].as_str().unwrap_or(""),
            r["fingerprint"].as_str().unwrap_or("")
        ))?;
    }
    if let Some(tokens) = tokens {
        for t in tokens {
            ctx.out.line(format!(
                "token {} for {:<20} {:<5} expires {} {}",
                t.id,
                t.name,
                t.role,
                wiki::format_time(t.expires_at.saturating_mul(1000)),
                if t.revoked { "(revoked)" } else { "" }
            ))?;
        }
    }
    Ok(())
}

/// `zkwiki agent grant NAME --role read|write --expires D [--prefix P] [--out FILE]`.
pub fn agent_grant(ctx: &Ctx, a: &AgentGrantArgs) -> Result<()> {
    core_crypto::identity::check_name(&a.name)?;
    let expires_in = parse_duration(&a.expires)?;
    if expires_in > 365 * 86_400 {
        return Err(CliError::usage("an agent token may last at most one year")
            .with_hint("use --expires 1y or less"));
    }
    let role = role_for(&a.role)?;
    if role == Role::Owner {
        return Err(CliError::usage("an agent cannot be an owner")
            .with_hint("use --role read or --role write"));
    }
    let prefix = folder_prefix(a.prefix.as_deref().unwrap_or(""))?;
    let out_file = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.zkwiki-agent.json", a.name)));
    if out_file.exists() {
        return Err(
            CliError::usage(format!("{} already exists", out_file.display()))
                .with_hint("choose another file with --out, or remove the old one"),
        );
    }
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let agent = UserIdentity::make(&mut OsRng);
    let public: PublicIdentity = agent.public();
    // Wrap with KMS first: if KMS refuses, nothing has changed yet.
    let kms = match &a.kms_key {
        Some(arn) => Some(keystore::kms_seal(arn, &a.name, Some(remote.wiki), &agent)?),
        None => None,
    };
    let name = a.name.clone();
    let c = commit_keyring_change(
        &remote,
        &who,
        &mut |draft, _| {
            draft.add_member(NewMember {
                name: name.clone(),
                kind: MemberKind::Agent,
                role,
                public,
                prefix: prefix.clone(),
            })?;
            Ok(())
        },
        &mut |view, keys| {
            if prefix.is_empty() {
                Ok(Vec::new())
            } else {
                pages_to_rescope(view, keys, &prefix)
            }
        },
    )?;
    let token_role = if role == Role::Reader {
        "read"
    } else {
        "write"
    };
    let token = remote
        .api
        .create_token(&remote.wiki.to_hex(), &a.name, token_role, expires_in)
        .map_err(|e| e.with_hint(format!(
            "the agent was added to the keyring but has no token; run `zkwiki agent revoke {}` and try again",
            a.name
        )))?;
    keystore::write_key_file_with(
        &out_file,
        &a.name,
        Some(remote.api.base()),
        &agent,
        Some(AgentAccess {
            wiki: remote.wiki.to_hex(),
            token: token.token,
            role: token_role.to_owned(),
            prefix: prefix.clone(),
            expires_at: token.expires_at,
        }),
        kms,
    )?;
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "agent": a.name, "role": token_role, "prefix": prefix, "key_file": out_file,
            "fingerprint": public.fingerprint(), "token_id": token.id, "expires_at": token.expires_at,
            "seq": c.seq,
        }));
    }
    ctx.out.line(format!(
        "granted {} {} access to {} (expires {}); key file: {} (mode 0600, keep it secret)",
        a.name,
        token_role,
        if prefix.is_empty() {
            "the whole wiki".to_owned()
        } else {
            prefix.clone()
        },
        wiki::format_time(token.expires_at.saturating_mul(1000)),
        out_file.display()
    ))?;
    ctx.out
        .line(format!("use it: zkwiki mcp --key {}", out_file.display()))?;
    ctx.out.line(
        "read-only and the folder limit are enforced by cryptography; the expiry and token by the server",
    )
}

/// `zkwiki agent revoke NAME`.
pub fn agent_revoke(ctx: &Ctx, name: &str) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let wiki = remote.wiki.to_hex();
    let mut revoked_tokens = 0;
    for t in remote.api.list_tokens(&wiki)? {
        if t.name == name && !t.revoked {
            remote.api.revoke_token(&wiki, &t.id)?;
            revoked_tokens += 1;
        }
    }
    ctx.out.note(format!(
        "revoked {revoked_tokens} server token(s) of {name} (refused from now on)"
    ));
    let (c, prefix, old_epoch) = remove(&remote, &who, name)?;
    let report = readable_report(&c.before, &prefix, old_epoch);
    print_revocation(ctx, name, &report, c.epoch, c.seq)
}

/// `zkwiki rotate [--reencrypt]`: a new key epoch for everyone.
pub fn rotate(ctx: &Ctx, a: &RotateArgs) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let c = commit_keyring_change(
        &remote,
        &who,
        &mut |draft, _| {
            draft.rotate();
            Ok(())
        },
        &mut |_, _| Ok(Vec::new()),
    )?;
    if !ctx.out.json {
        ctx.out
            .line(format!("new key epoch {} (state {})", c.epoch, c.seq))?;
    }
    if a.reencrypt {
        return reencrypt(ctx, &ReencryptArgs {});
    }
    if ctx.out.json {
        return ctx
            .out
            .json_value(&json!({ "epoch": c.epoch, "seq": c.seq }));
    }
    Ok(())
}

/// `zkwiki reencrypt`: re-encrypt every page written under an older epoch (resumable: each batch
/// is its own commit; running it again continues where it stopped).
pub fn reencrypt(ctx: &Ctx, _a: &ReencryptArgs) -> Result<()> {
    let remote = Remote::open(ctx)?;
    let who = ctx.unlock()?;
    let mut writer = Writer::begin(&remote, &who)?;
    let epoch = writer.keys.epoch();
    let index_ids: BTreeSet<PageId> = wiki::index_pages(&writer.keys, &writer.snapshot);
    let todo: Vec<PageId> = writer
        .snapshot
        .manifest
        .pages
        .iter()
        .filter(|(id, e)| e.epoch < epoch && !index_ids.contains(id))
        .map(|(id, _)| *id)
        .collect();
    let bar = ctx.out.progress(todo.len() as u64, "re-encrypting");
    let started = std::time::Instant::now();
    let mut done = 0usize;
    let mut last_seq = writer.snapshot.state.seq;
    for chunk in todo.chunks(REENCRYPT_BATCH) {
        let seq = writer.commit(false, &mut |stage| {
            for id in chunk {
                // Pages deleted or rewritten meanwhile are skipped by the epoch check.
                if stage.base_hash(id).is_none() {
                    continue;
                }
                let record = stage.open(id)?;
                stage.put(*id, &record)?;
            }
            Ok(())
        })?;
        if let Some(s) = seq {
            last_seq = s;
        }
        done += chunk.len();
        bar.set_position(done as u64);
    }
    if let Some(s) = writer.flush_index()? {
        last_seq = s;
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "reencrypted": done, "epoch": epoch, "seq": last_seq, "seconds": secs,
        }));
    }
    ctx.out.line(format!(
        "re-encrypted {done} page(s) under epoch {epoch} in {secs:.1} s ({:.0} pages/s)",
        done as f64 / secs.max(1e-9)
    ))
}
