//! Members and agents: `member add|rm|list`, `agent grant|list|revoke`, `rotate`, `reencrypt`.
//!
//! Every change of access is a new owner-signed keyring version committed together with an
//! owner-signed state (one commit). Removing anyone starts a new key epoch, so nothing written
//! afterwards opens with what they held; `reencrypt` moves old pages to the current epoch.

use std::path::PathBuf;

use client::Workspace;
use client::display::escape as esc;
use client::workspace::{Draft, IndexWrite, RevocationReport};
use core_crypto::identity::{PublicIdentity, UserIdentity};
use core_crypto::keyring::{MemberKind, Role};
use rand_core::OsRng;
use serde_json::{Value, json};

use crate::args::{AgentGrantArgs, MemberAddArgs, ReencryptArgs, RotateArgs};
use crate::context::Ctx;
use crate::error::{CliError, Result};
use crate::keystore::{self, AgentAccess};
use crate::remote::Session;

/// Pages re-encrypted per commit.
const REENCRYPT_BATCH: usize = 500;

fn folder_prefix(folder: &str) -> Result<String> {
    Ok(client::workspace::folder_prefix(folder)?)
}

/// What a keyring change committed.
pub(super) struct Committed {
    pub(super) seq: u64,
    pub(super) epoch: u32,
}

/// Builds a keyring change on the current head.
type KeyringDraft<'a, T> =
    dyn for<'w> FnMut(&'w Workspace, i64) -> client::Result<(Draft<'w>, T)> + 'a;

/// Commits a keyring change `make` builds on the current head (an owner's: the core refuses
/// others), retrying on conflicts as every write does.
pub(super) fn keyring_change<T>(
    s: &mut Session,
    make: &mut KeyringDraft<'_, T>,
) -> Result<(Committed, T)> {
    let done = s.commit(&mut |ws, now| {
        let (draft, value) = make(ws, now)?;
        Ok(Some((draft.finish(IndexWrite::WhenDue)?, value)))
    })?;
    let (seq, value) = done.ok_or_else(|| CliError::general("the keyring did not change"))?;
    Ok((
        Committed {
            seq,
            epoch: s.ws.snapshot().keyring.epoch,
        },
        value,
    ))
}

fn role_for(text: &str) -> Result<Role> {
    Role::from_name(text).map_err(|_| {
        CliError::usage(format!("{text:?} is not a role"))
            .with_hint("use read or write (or owner for people)")
    })
}

/// `zkwiki member add USER --role ROLE`.
pub fn member_add(ctx: &Ctx, a: &MemberAddArgs) -> Result<()> {
    let mut s = super::pages::open(ctx)?;
    let keys = s.remote.api.user_keys(&a.user)?;
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
    let (c, ()) = keyring_change(&mut s, &mut |ws, now| {
        Ok((
            ws.add_member(&a.user, MemberKind::Person, role, public, &prefix, now)?,
            (),
        ))
    })?;
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

/// A fingerprint as hex digits only, lowercase (people type them with spaces or in capitals).
pub(super) fn normalize_fp(fp: &str) -> String {
    fp.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn print_revocation(ctx: &Ctx, report: &RevocationReport, c: &Committed) -> Result<()> {
    let scope = if report.scope.is_empty() {
        "whole wiki".to_owned()
    } else {
        esc(&report.scope).into_owned()
    };
    let name = esc(&report.name);
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "revoked": name, "new_epoch": c.epoch, "seq": c.seq,
            "could_have_read": {
                "epochs": format!("1..={}", report.epochs_readable),
                "scope": scope,
                "current_pages": report.pages.len(),
                "pages": report.pages.iter().map(|p| esc(p).into_owned()).collect::<Vec<_>>(),
            },
        }));
    }
    ctx.out.line(format!(
        "revoked {name}: new key epoch {} (state {})",
        c.epoch, c.seq
    ))?;
    let n = report.pages.len();
    ctx.out.line(format!(
        "{name} could have read: epochs 1..={}, scope {scope}, {n} current {} and their earlier versions:",
        report.epochs_readable,
        if n == 1 { "page" } else { "pages" },
    ))?;
    for p in report.pages.iter().take(50) {
        ctx.out.line(format!("  {}", esc(p)))?;
    }
    if n > 50 {
        ctx.out
            .line(format!("  … and {} more (--json lists all)", n - 50))?;
    }
    ctx.out.line(
        "Nothing written from now on opens with its keys (cryptography). What it already read cannot be taken back; \
         `zkwiki reencrypt` moves old pages to the new epoch so leaked old ciphertext no longer matters.",
    )
}

/// Removes a member by name; returns what it could have read.
fn remove(s: &mut Session, name: &str) -> Result<(Committed, RevocationReport)> {
    keyring_change(s, &mut |ws, now| ws.remove_member(name, now))
}

/// `zkwiki member rm USER`.
pub fn member_rm(ctx: &Ctx, user: &str) -> Result<()> {
    let mut s = super::pages::open(ctx)?;
    let (c, report) = remove(&mut s, user)?;
    print_revocation(ctx, &report, &c)
}

/// `zkwiki member list` (people and agents).
pub fn member_list(ctx: &Ctx, agents_only: bool) -> Result<()> {
    let s = super::pages::open(ctx)?;
    let rows: Vec<Value> = s
        .ws
        .members()
        .iter()
        .filter(|m| !agents_only || m.kind == MemberKind::Agent.name())
        .map(|m| {
            json!({
                "name": esc(&m.name), "kind": m.kind, "role": m.role,
                "fingerprint": m.fingerprint,
                "scope": m.folder.as_deref().map_or_else(|| "whole wiki".to_owned(), |f| esc(f).into_owned()),
                "me": m.me,
            })
        })
        .collect();
    let tokens = if agents_only {
        s.remote.api.list_tokens(&s.remote.wiki.to_hex()).ok()
    } else {
        None
    };
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "wiki": s.remote.wiki.to_hex(), "epoch": s.ws.snapshot().keyring.epoch, "members": rows, "tokens": tokens,
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
                esc(&t.name),
                t.role,
                crate::time::format_time(t.expires_at.saturating_mul(1000)),
                if t.revoked { "(revoked)" } else { "" }
            ))?;
        }
    }
    Ok(())
}

/// `zkwiki agent grant NAME --role read|write --expires D [--prefix P] [--out FILE]`.
pub fn agent_grant(ctx: &Ctx, a: &AgentGrantArgs) -> Result<()> {
    core_crypto::identity::check_name(&a.name)?;
    let expires_in = crate::time::parse_duration(&a.expires)?;
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
    let mut s = super::pages::open(ctx)?;
    let agent = UserIdentity::make(&mut OsRng);
    let public: PublicIdentity = agent.public();
    // Wrap with KMS first: if KMS refuses, nothing has changed yet.
    let kms = match &a.kms_key {
        Some(arn) => Some(keystore::kms_seal(
            arn,
            &a.name,
            Some(s.remote.wiki),
            &agent,
        )?),
        None => None,
    };
    let (c, ()) = keyring_change(&mut s, &mut |ws, now| {
        Ok((
            ws.add_member(&a.name, MemberKind::Agent, role, public, &prefix, now)?,
            (),
        ))
    })?;
    let remote = s.remote.clone();
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
        crate::time::format_time(token.expires_at.saturating_mul(1000)),
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
    let mut s = super::pages::open(ctx)?;
    let wiki = s.remote.wiki.to_hex();
    let mut revoked_tokens = 0;
    for t in s.remote.api.list_tokens(&wiki)? {
        if t.name == name && !t.revoked {
            s.remote.api.revoke_token(&wiki, &t.id)?;
            revoked_tokens += 1;
        }
    }
    ctx.out.note(format!(
        "revoked {revoked_tokens} server {} of {} (refused from now on)",
        if revoked_tokens == 1 {
            "token"
        } else {
            "tokens"
        },
        esc(name)
    ));
    let (c, report) = remove(&mut s, name)?;
    print_revocation(ctx, &report, &c)
}

/// `zkwiki rotate [--reencrypt]`: a new key epoch for everyone.
pub fn rotate(ctx: &Ctx, a: &RotateArgs) -> Result<()> {
    let mut s = super::pages::open(ctx)?;
    let (c, ()) = keyring_change(&mut s, &mut |ws, now| Ok((ws.rotate(now)?, ())))?;
    if !ctx.out.json {
        ctx.out
            .line(format!("new key epoch {} (state {})", c.epoch, c.seq))?;
    }
    if a.reencrypt {
        return reencrypt_in(ctx, &mut s);
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
    let mut s = super::pages::open(ctx)?;
    reencrypt_in(ctx, &mut s)
}

fn reencrypt_in(ctx: &Ctx, s: &mut Session) -> Result<()> {
    let epoch = s.ws.keys().epoch();
    let todo = s.ws.pages_in_older_epochs();
    let bar = ctx.out.progress(todo.len() as u64, "re-encrypting");
    let started = std::time::Instant::now();
    let mut done = 0usize;
    let mut last_seq = s.ws.head().seq();
    for chunk in todo.chunks(REENCRYPT_BATCH) {
        s.load(chunk)?;
        let seq = s.write(IndexWrite::Defer, &mut |d| {
            for id in chunk {
                // Pages deleted or rewritten meanwhile are skipped.
                if d.base_hash(id).is_none() {
                    continue;
                }
                let record = d.current(id)?.clone();
                d.put(*id, record)?;
            }
            Ok(())
        })?;
        if let Some((seq, ())) = seq {
            last_seq = seq;
        }
        done += chunk.len();
        bar.set_position(done as u64);
    }
    if let Some((seq, ())) = s.write(IndexWrite::Flush, &mut |_| Ok(()))? {
        last_seq = seq;
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "reencrypted": done, "epoch": epoch, "seq": last_seq, "seconds": secs,
        }));
    }
    ctx.out.line(format!(
        "re-encrypted {done} {} under epoch {epoch} in {secs:.1} s ({:.0} pages/s)",
        if done == 1 { "page" } else { "pages" },
        done as f64 / secs.max(1e-9)
    ))
}
