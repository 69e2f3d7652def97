//! `register`, `login`, `logout`, `whoami`, `key export|show`.

use std::path::Path;

use core_crypto::identity::{UserIdentity, check_name};
use core_crypto::kdf::KdfParams;
use core_crypto::protector::{ProtectorKind, RecoveryKey};
use data_encoding::BASE64;
use rand_core::OsRng;
use serde_json::json;

use client::account::Protection;

use crate::api::{Api, LoginAnswer};
use crate::args::{LoginArgs, LogoutArgs, PasswdArgs, RecoveryKeyArgs, RegisterArgs};
use crate::config::ConfigFile;
use crate::context::Ctx;
use crate::error::{CliError, Context, ErrorKind, Result};
use crate::keystore::{self, Session, StoredIdentity};
use crate::{fsutil, time};

fn cost(floor: bool) -> core_crypto::kdf::KdfCost {
    if floor {
        KdfParams::FLOOR
    } else {
        KdfParams::DEFAULT
    }
}

/// Makes the profile of `user` on `server` the current one (keeping its wiki names).
fn remember_profile(ctx: &Ctx, server: &str, user: &str) -> Result<()> {
    let mut config = ConfigFile::load(&ctx.paths)?;
    let name = crate::config::profile_name(user, server);
    let p = config.profiles.entry(name.clone()).or_default();
    p.server = server.to_owned();
    p.user = user.to_owned();
    config.profile = Some(name);
    config.save(&ctx.paths)
}

fn save_identity(
    ctx: &Ctx,
    server: &str,
    user: &str,
    protection: &Protection,
    sealed: &[u8],
    identity: &UserIdentity,
) -> Result<()> {
    let public = identity.public();
    ctx.keystore_for(&crate::config::profile_name(user, server))
        .save_identity(&StoredIdentity {
            server: server.to_owned(),
            user: user.to_owned(),
            protector: protection.kind().name().to_owned(),
            kdf: Some(BASE64.encode(protection.stored_form())),
            sealed_identity: BASE64.encode(sealed),
            x25519: BASE64.encode(&public.x25519),
            ed25519: BASE64.encode(&public.ed25519),
        })
}

fn save_login(
    ctx: &Ctx,
    server: &str,
    user: &str,
    protection: &Protection,
    done: &client::account::LoggedIn,
    answer: &LoginAnswer,
) -> Result<()> {
    save_identity(ctx, server, user, protection, &done.sealed, &done.identity)?;
    ctx.keystore_for(&crate::config::profile_name(user, server))
        .save_session(&Session {
            server: server.to_owned(),
            user: user.to_owned(),
            token: answer.token.clone(),
            expires_at: answer.expires_at,
        })?;
    remember_profile(ctx, server, user)
}

/// Logs in, presenting this profile's device token and keeping the one the server returns,
/// so that this machine still logs in while its user name is under attack from elsewhere.
fn login_as(
    ctx: &Ctx,
    api: &Api,
    server: &str,
    user: &str,
    protection: &Protection,
) -> Result<LoginAnswer> {
    let file = ctx
        .paths
        .profile_dir(&crate::config::profile_name(user, server))
        .join("device");
    let mut body = protection.login_body(user);
    body.device = std::fs::read_to_string(&file)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let answer = api.login(&body)?;
    if let Some(token) = &answer.device
        && body.device.as_ref() != Some(token)
    {
        // Best effort: without it the next login is an unknown device's, nothing worse.
        let _ = fsutil::write_atomic(&file, token.as_bytes(), true);
    }
    Ok(answer)
}

/// Refuses a file that already exists before anything changes on the server.
fn check_new_file(file: Option<&Path>) -> Result<()> {
    match file {
        Some(f) if f.exists() => Err(CliError::usage(format!("{} already exists", f.display()))
            .with_hint("choose another file name")),
        _ => Ok(()),
    }
}

/// Writes a new recovery key to `file` (0600), or returns it for printing when there is none.
fn keep_recovery_key(
    recovery: &RecoveryKey,
    file: Option<&Path>,
) -> Result<Option<zeroize::Zeroizing<String>>> {
    let shown = recovery.to_display();
    let Some(file) = file else {
        return Ok(Some(zeroize::Zeroizing::new(shown.to_string())));
    };
    let mut text = zeroize::Zeroizing::new(shown.to_string());
    text.push('\n');
    fsutil::write_atomic(file, text.as_bytes(), true).context(file.display())?;
    Ok(None)
}

/// Keeps the new recovery key first (so a full disk cannot leave the account with a key nobody
/// has), then makes the server change; if that fails, the file is removed again.
fn with_recovery_key_kept<T>(
    recovery: &RecoveryKey,
    file: Option<&Path>,
    change: impl FnOnce() -> Result<T>,
) -> Result<(T, Option<zeroize::Zeroizing<String>>)> {
    let printed = keep_recovery_key(recovery, file)?;
    match change() {
        Ok(v) => Ok((v, printed)),
        Err(e) => {
            if let Some(f) = file {
                let _ = std::fs::remove_file(f);
            }
            Err(e)
        }
    }
}

/// Tells the user where the recovery key went (printed once, or the file).
fn report_recovery_key(ctx: &Ctx, printed: Option<&str>) -> Result<()> {
    match printed {
        Some(key) => {
            ctx.out.line("")?;
            ctx.out
                .line("Your recovery key (shown only this once; print it or store it offline):")?;
            ctx.out.line(format!("  {key}"))?;
            ctx.out
                .line("With it you can log in and set a new passphrase if you forget yours:")?;
            ctx.out.line("  zkwiki login --recovery-key")
        }
        None => ctx
            .out
            .line("recovery key written to the file you named: keep it offline"),
    }
}

/// A new everyday protector: a passphrase (asked for twice) or a fresh key wrapped by the KMS
/// key `kms_key`.
fn new_protector(
    ctx: &Ctx,
    user: &str,
    kms_key: Option<&str>,
    kdf_floor: bool,
    passphrase: impl FnOnce() -> Result<zeroize::Zeroizing<String>>,
) -> Result<Protection> {
    match kms_key {
        Some(key) => {
            ctx.out.note("wrapping a new key with AWS KMS…");
            let (pk, stored) = keystore::kms_create_key(key, user, None)?;
            Ok(Protection::kms(pk, stored))
        }
        None => {
            let passphrase = passphrase()?;
            ctx.out.note("deriving keys from the passphrase…");
            Ok(Protection::new_passphrase(
                &mut OsRng,
                &passphrase,
                cost(kdf_floor),
            )?)
        }
    }
}

/// `zkwiki register USER [--kms-key ARN]`.
pub fn register(ctx: &Ctx, a: &RegisterArgs) -> Result<()> {
    check_name(&a.user)?;
    let server = ctx.server()?;
    let api = Api::new(&server, None);
    check_new_file(a.recovery_key_out.as_deref())?;
    let everyday = new_protector(
        ctx,
        &a.user,
        a.kms_key.as_deref(),
        a.test_kdf.kdf_floor,
        || ctx.secrets.new_passphrase(),
    )?;
    let account = client::account::register(&mut OsRng, &a.user, &everyday)?;
    let register = || api.register(&account.request).context("registering");
    let ((), printed) =
        with_recovery_key_kept(&account.recovery, a.recovery_key_out.as_deref(), register)?;
    let answer = login_as(ctx, &api, &server, &a.user, &everyday).context("logging in")?;
    let done = client::account::open_login(&answer, &a.user, &everyday)?;
    save_login(ctx, &server, &a.user, &everyday, &done, &answer)?;
    let public = done.identity.public();
    let kind = everyday.kind();
    let fingerprint = public.fingerprint();
    if ctx.out.json {
        let mut v = json!({
            "user": a.user, "server": server, "fingerprint": fingerprint, "protector": kind.name(),
        });
        if let Some(key) = &printed {
            v["recovery_key"] = json!(key.as_str());
        }
        return ctx.out.json_value(&v);
    }
    ctx.out.line(format!("registered {} on {server}", a.user))?;
    ctx.out.line(format!("fingerprint: {fingerprint}"))?;
    if let Some(key) = &a.kms_key {
        ctx.out.line(format!(
            "your key is protected by the AWS KMS key {key}: whoever may call kms:Decrypt on it \
             with your user name as context can log in as you; log in elsewhere with \
             `zkwiki login {} --kms-key {key}`",
            a.user
        ))?;
    }
    report_recovery_key(ctx, printed.as_ref().map(|k| k.as_str()))
}

/// The server session and the unlocked identity, for commands that change the account.
fn account_session(ctx: &Ctx, what: &str) -> Result<(Session, crate::context::Unlocked)> {
    if ctx.key_file.is_some() {
        return Err(CliError::usage(format!(
            "{what} changes your account's sealed identity, not a key file"
        ))
        .with_hint("run it without --key-file"));
    }
    let session = ctx.keystore.session()?.ok_or_else(|| {
        CliError::new(ErrorKind::Auth, "not logged in").with_hint("run `zkwiki login` first")
    })?;
    let who = ctx.unlock()?;
    if who.user != session.user {
        return Err(CliError::usage(format!(
            "the session is {}'s but the identity on this machine is {}'s",
            session.user, who.user
        ))
        .with_hint("log in again: `zkwiki login`"));
    }
    Ok((session, who))
}

/// `zkwiki passwd [--kms-key ARN]`: a new passphrase (or a KMS key) for the account. The identity
/// is opened with the current protector, sealed under the new one, and replaces that protector on
/// the server; other protectors (the recovery key, a KMS key or passphrase set before) stay.
pub fn passwd(ctx: &Ctx, a: &PasswdArgs) -> Result<()> {
    let (session, who) = account_session(ctx, "passwd")?;
    let protection = new_protector(
        ctx,
        &who.user,
        a.kms_key.as_deref(),
        a.test_kdf.kdf_floor,
        || {
            ctx.secrets
                .changed_passphrase(a.new_passphrase_file.as_deref())
        },
    )?;
    let sealed = protection.seal(&mut OsRng, &who.identity, &who.user)?;
    Api::new(&session.server, Some(session.token.clone()))
        .put_protector(protection.kind().name(), &protection.replace_body(&sealed))
        .context("replacing the protector on the server")?;
    save_identity(
        ctx,
        &session.server,
        &who.user,
        &protection,
        &sealed,
        &who.identity,
    )?;
    let kind = protection.kind();
    if ctx.out.json {
        return ctx
            .out
            .json_value(&json!({ "user": who.user, "protector": kind.name() }));
    }
    ctx.out.line(match kind {
        ProtectorKind::Kms => {
            "your key is now protected by the KMS key on this machine and for `zkwiki login --kms-key`; a passphrase set before still works"
        }
        _ => "passphrase changed; the old one no longer works (on this machine and for login)",
    })
}

/// `zkwiki recovery-key [--out FILE]`: a new recovery key; the old one stops working.
pub fn new_recovery_key(ctx: &Ctx, a: &RecoveryKeyArgs) -> Result<()> {
    check_new_file(a.out.as_deref())?;
    let (session, who) = account_session(ctx, "recovery-key")?;
    let recovery = RecoveryKey::make(&mut OsRng);
    let protection = Protection::recovery(&recovery);
    let sealed = protection.seal(&mut OsRng, &who.identity, &who.user)?;
    let api = Api::new(&session.server, Some(session.token.clone()));
    let replace = || {
        api.put_protector(
            ProtectorKind::Recovery.name(),
            &protection.replace_body(&sealed),
        )
        .context("replacing the recovery key on the server")
    };
    let ((), printed) = with_recovery_key_kept(&recovery, a.out.as_deref(), replace)?;
    if ctx.out.json {
        let mut v = json!({ "user": who.user });
        if let Some(key) = &printed {
            v["recovery_key"] = json!(key.as_str());
        }
        return ctx.out.json_value(&v);
    }
    ctx.out
        .line("new recovery key set; the old one no longer works")?;
    report_recovery_key(ctx, printed.as_ref().map(|k| k.as_str()))
}

/// `zkwiki login [USER] [--recovery-key]`.
pub fn login(ctx: &Ctx, a: &LoginArgs) -> Result<()> {
    let server = ctx.server()?;
    let stored = ctx.keystore.identity()?;
    let user = match (&a.user, &stored) {
        (Some(u), _) => u.clone(),
        (None, Some(s)) => s.user.clone(),
        (None, None) => {
            return Err(CliError::usage("which user?").with_hint("run `zkwiki login USER`"));
        }
    };
    check_name(&user)?;
    let api = Api::new(&server, None);
    if a.recovery_key || a.recovery_key_file.is_some() {
        return login_with_recovery(ctx, a, &server, &user, &api);
    }
    if let Some(key) = &a.kms_key {
        return login_with_kms(ctx, key, &server, &user, &api);
    }
    let kdf = api.prelogin(&user)?;
    let passphrase = ctx
        .secrets
        .passphrase(&format!("Passphrase for {user}: "))?;
    let protection = Protection::passphrase(&kdf, &passphrase).map_err(|e| {
        CliError::from(e).context("checking the account's key-derivation parameters")
    })?;
    let answer = login_as(ctx, &api, &server, &user, &protection)?;
    let done = client::account::open_login(&answer, &user, &protection)?;
    save_login(ctx, &server, &user, &protection, &done, &answer)?;
    let identity = done.identity;
    report_login(ctx, &user, &server, &identity)
}

/// `zkwiki login USER --kms-key ARN`: the server hands back the KMS-wrapped key only under the
/// ARN it was wrapped with (a stable fake otherwise), KMS unwraps it under the user's name, and
/// the protector key it yields logs in and opens the identity.
fn login_with_kms(ctx: &Ctx, key: &str, server: &str, user: &str, api: &Api) -> Result<()> {
    let wrong = |e: CliError| {
        if e.kind == ErrorKind::Auth {
            CliError::new(ErrorKind::Auth, "wrong user name or KMS key").with_hint(format!(
                "{}; the key must be the one the account was registered with (see `zkwiki whoami` there)",
                e.message
            ))
        } else {
            e
        }
    };
    let arn = keystore::kms_protector(key)?
        .key_arn(key)
        .map_err(keystore::kms_error)?;
    let stored_form = api.prelogin_kms(user, &arn)?;
    ctx.out.note("unwrapping your key with AWS KMS…");
    let pk = keystore::kms_unlock_key(&stored_form, user, None).map_err(wrong)?;
    let protection = Protection::kms(pk, stored_form);
    let answer = login_as(ctx, api, server, user, &protection).map_err(wrong)?;
    let done = client::account::open_login(&answer, user, &protection)?;
    save_login(ctx, server, user, &protection, &done, &answer)?;
    let identity = done.identity;
    report_login(ctx, user, server, &identity)
}

fn report_login(ctx: &Ctx, user: &str, server: &str, identity: &UserIdentity) -> Result<()> {
    let fingerprint = identity.public().fingerprint();
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "user": user, "server": server, "fingerprint": fingerprint
        }));
    }
    ctx.out.line(format!("logged in as {user} on {server}"))?;
    ctx.out.line(format!("fingerprint: {fingerprint}"))
}

fn login_with_recovery(
    ctx: &Ctx,
    a: &LoginArgs,
    server: &str,
    user: &str,
    api: &Api,
) -> Result<()> {
    let recovery = ctx.secrets.recovery_key(a.recovery_key_file.as_deref())?;
    let rprot = Protection::recovery(&recovery);
    let answer = login_as(ctx, api, server, user, &rprot).map_err(|e| {
        if e.kind == ErrorKind::Auth {
            CliError::new(ErrorKind::Auth, "wrong user name or recovery key")
        } else {
            e
        }
    })?;
    let identity = client::account::open_login(&answer, user, &rprot)?.identity;
    ctx.out.note(match &a.kms_key {
        Some(_) => "recovery key accepted; protecting the account with the KMS key",
        None => "recovery key accepted; choose a new passphrase for this account",
    });
    let protection = new_protector(
        ctx,
        user,
        a.kms_key.as_deref(),
        a.test_kdf.kdf_floor,
        || ctx.secrets.new_passphrase(),
    )?;
    let new_sealed = protection.seal(&mut OsRng, &identity, user)?;
    let authed = Api::new(server, Some(answer.token.clone()));
    authed
        .put_protector(
            protection.kind().name(),
            &protection.replace_body(&new_sealed),
        )
        .context("setting the new protector")?;
    let done = client::account::LoggedIn {
        identity,
        sealed: new_sealed,
    };
    save_login(ctx, server, user, &protection, &done, &answer)?;
    let identity = done.identity;
    let kind = protection.kind();
    ctx.out.note(match kind {
        ProtectorKind::Kms => "KMS protector set (a passphrase set before still works)",
        _ => "new passphrase set; the old one no longer works",
    });
    report_login(ctx, user, server, &identity)
}

/// `zkwiki logout`.
pub fn logout(ctx: &Ctx, a: &LogoutArgs) -> Result<()> {
    if let Some(session) = ctx.keystore.session()? {
        let api = Api::new(&session.server, Some(session.token.clone()));
        if let Err(e) = api.logout()
            && e.kind != ErrorKind::Auth
        {
            ctx.out.warn(format!(
                "the server did not confirm the logout: {}",
                e.message
            ));
        }
    }
    ctx.keystore.clear(a.forget)?;
    if ctx.out.json {
        return ctx
            .out
            .json_value(&json!({ "logged_out": true, "forgot_identity": a.forget }));
    }
    ctx.out.line(if a.forget {
        "logged out; the sealed identity was deleted from this machine"
    } else {
        "logged out (the sealed identity stays for offline `zkwiki decrypt`; `--forget` deletes it)"
    })
}

/// `zkwiki whoami`.
pub fn whoami(ctx: &Ctx) -> Result<()> {
    let stored = ctx.keystore.identity()?.ok_or_else(|| {
        CliError::new(ErrorKind::Auth, "not logged in")
            .with_hint("run `zkwiki login` (or `zkwiki register`)")
    })?;
    let session = ctx.keystore.session()?;
    let public = keystore::public_from_b64(&stored.x25519, &stored.ed25519)?;
    let fingerprint = public.fingerprint();
    let expires = session.as_ref().map(|s| s.expires_at);
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "user": stored.user, "server": stored.server, "fingerprint": fingerprint,
            "protector": stored.protector,
            "logged_in": session.is_some(), "session_expires_at": expires,
        }));
    }
    ctx.out
        .line(format!("{} on {}", stored.user, stored.server))?;
    ctx.out.line(format!("fingerprint: {fingerprint}"))?;
    let kms_key = stored
        .kdf
        .as_deref()
        .filter(|_| stored.protector == ProtectorKind::Kms.name())
        .and_then(|k| BASE64.decode(k.as_bytes()).ok())
        .and_then(|k| core_crypto::wrapped::WrappedKey::decode(&k).ok());
    match kms_key {
        Some(w) => ctx
            .out
            .line(format!("key protected by AWS KMS key {}", w.key_arn))?,
        None => ctx
            .out
            .line(format!("key protected by your {}", stored.protector))?,
    }
    match expires {
        Some(t) => ctx.out.line(format!(
            "session valid until {} UTC",
            time::format_time(i64::try_from(t).unwrap_or(i64::MAX / 1000) * 1000)
        )),
        None => ctx.out.line("no session (logged out)"),
    }
}

/// `zkwiki key export FILE`.
pub fn key_export(ctx: &Ctx, file: &Path, kms_key: Option<&str>) -> Result<()> {
    let who = ctx.unlock()?;
    let server = ctx.keystore.identity()?.map(|s| s.server);
    let kms = match kms_key {
        Some(arn) => Some(keystore::kms_seal(arn, &who.user, None, &who.identity)?),
        None => None,
    };
    let protected = kms.is_some();
    keystore::write_key_file_with(file, &who.user, server.as_deref(), &who.identity, None, kms)?;
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "file": file, "fingerprint": who.identity.public().fingerprint(), "kms": protected,
        }));
    }
    if protected {
        return ctx.out.line(format!(
            "wrote your key to {}, protected by AWS KMS: whoever may call kms:Decrypt on that key (with your user name as context) can use it",
            file.display()
        ));
    }
    ctx.out.line(format!(
        "wrote your private key, unencrypted, to {} (mode 0600); anyone with this file can read your wikis",
        file.display()
    ))
}

/// `zkwiki key show`.
pub fn key_show(ctx: &Ctx) -> Result<()> {
    let (user, public) = if let Some(f) = &ctx.key_file {
        let (u, id) = keystore::read_key_file(f)?;
        (u, id.public())
    } else {
        let s = ctx.keystore.identity()?.ok_or_else(|| {
            CliError::new(ErrorKind::Auth, "no identity on this machine")
                .with_hint("run `zkwiki login`")
        })?;
        let p = keystore::public_from_b64(&s.x25519, &s.ed25519)?;
        (s.user, p)
    };
    let recipient = public.age_recipient_string()?;
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "user": user, "fingerprint": public.fingerprint(), "age_recipient": recipient,
            "ed25519": BASE64.encode(&public.ed25519),
        }));
    }
    ctx.out.line(format!("user:        {user}"))?;
    ctx.out
        .line(format!("fingerprint: {}", public.fingerprint()))?;
    ctx.out.line(format!("age:         {recipient}"))?;
    ctx.out
        .line(format!("ed25519:     {}", BASE64.encode(&public.ed25519)))
}

/// `zkwiki auth list`: the profiles on this machine (one per account and server).
pub fn auth_list(ctx: &Ctx) -> Result<()> {
    let rows: Vec<serde_json::Value> = ctx
        .config
        .profiles
        .iter()
        .map(|(name, p)| {
            let session = ctx.keystore_for(name).session().ok().flatten();
            json!({
                "profile": name,
                "server": p.server,
                "user": p.user,
                "current": ctx.profile.as_deref() == Some(name.as_str()),
                "logged_in": session.is_some(),
                "default_wiki": p.default_wiki,
                "wikis": p.wikis.len(),
            })
        })
        .collect();
    if ctx.out.json {
        return ctx.out.json_value(&json!({ "profiles": rows }));
    }
    if rows.is_empty() {
        ctx.out
            .note("no profiles yet: `zkwiki register USER --server URL` or `zkwiki login USER --server URL`");
    }
    for r in &rows {
        ctx.out.line(format!(
            "{} {:<32} {}{}",
            if r["current"] == true { "*" } else { " " },
            r["profile"].as_str().unwrap_or(""),
            r["server"].as_str().unwrap_or(""),
            if r["logged_in"] == true {
                ""
            } else {
                "  (logged out)"
            }
        ))?;
    }
    Ok(())
}

/// `zkwiki auth switch PROFILE`.
pub fn auth_switch(ctx: &Ctx, profile: &str) -> Result<()> {
    let mut config = ConfigFile::load(&ctx.paths)?;
    if !config.profiles.contains_key(profile) {
        return Err(
            CliError::new(ErrorKind::NotFound, format!("no profile {profile:?}"))
                .with_hint("see `zkwiki auth list`"),
        );
    }
    config.profile = Some(profile.to_owned());
    config.save(&ctx.paths)?;
    if ctx.out.json {
        return ctx.out.json_value(&json!({ "profile": profile }));
    }
    ctx.out.line(format!("now using {profile}"))
}
