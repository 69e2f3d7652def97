//! `register`, `login`, `logout`, `whoami`, `key export|show`.

use std::path::Path;

use core_crypto::identity::{UserIdentity, check_name};
use core_crypto::kdf::KdfParams;
use core_crypto::protector::{ProtectorKey, ProtectorKind, RecoveryKey};
use data_encoding::BASE64;
use rand_core::OsRng;
use serde_json::json;

use crate::api::{self, Api, LoginAnswer};
use crate::args::{LoginArgs, LogoutArgs, RegisterArgs};
use crate::config::ConfigFile;
use crate::context::Ctx;
use crate::error::{CliError, Context, ErrorKind, Result};
use crate::keystore::{self, Session, StoredIdentity};
use crate::{fsutil, wiki};

fn cost(floor: bool) -> core_crypto::kdf::KdfCost {
    if floor {
        KdfParams::FLOOR
    } else {
        KdfParams::DEFAULT
    }
}

fn remember_server(ctx: &Ctx, server: &str, user: &str) -> Result<()> {
    let mut config = ConfigFile::load(&ctx.paths)?;
    config.server = Some(server.to_owned());
    let _ = user;
    config.save(&ctx.paths)
}

fn save_login(
    ctx: &Ctx,
    server: &str,
    user: &str,
    kdf: &KdfParams,
    sealed: &[u8],
    identity: &UserIdentity,
    answer: &LoginAnswer,
) -> Result<()> {
    let public = identity.public();
    ctx.keystore.save_identity(&StoredIdentity {
        server: server.to_owned(),
        user: user.to_owned(),
        protector: ProtectorKind::Passphrase.name().to_owned(),
        kdf: Some(BASE64.encode(&kdf.encode())),
        sealed_identity: BASE64.encode(sealed),
        x25519: BASE64.encode(&public.x25519),
        ed25519: BASE64.encode(&public.ed25519),
    })?;
    ctx.keystore.save_session(&Session {
        server: server.to_owned(),
        user: user.to_owned(),
        token: answer.token.clone(),
        expires_at: answer.expires_at,
    })?;
    remember_server(ctx, server, user)
}

fn check_answer_keys(answer: &LoginAnswer, identity: &UserIdentity) -> Result<()> {
    let claimed = keystore::public_from_b64(&answer.x25519, &answer.ed25519)
        .map_err(|_| CliError::integrity("the server sent malformed public keys"))?;
    if claimed != identity.public() {
        return Err(CliError::integrity(
            "the server's public keys for this account do not match the sealed identity",
        ));
    }
    Ok(())
}

/// `zkwiki register USER`.
pub fn register(ctx: &Ctx, a: &RegisterArgs) -> Result<()> {
    check_name(&a.user)?;
    let server = ctx.server()?;
    let api = Api::new(&server, None);
    let passphrase = ctx.secrets.new_passphrase()?;
    let rng = &mut OsRng;
    let kdf = KdfParams::make(rng, cost(a.kdf_floor))?;
    let identity = UserIdentity::make(rng);
    ctx.out.note("deriving keys from the passphrase…");
    let pk = ProtectorKey::derive_from_passphrase(&kdf, passphrase.as_bytes())?;
    let sealed = identity.seal(
        rng,
        &pk.derive_seal_key(),
        ProtectorKind::Passphrase,
        &a.user,
        Some(&kdf),
    )?;
    let recovery = RecoveryKey::make(rng);
    let rpk = recovery.derive_protector_key();
    let rsealed = identity.seal(
        rng,
        &rpk.derive_seal_key(),
        ProtectorKind::Recovery,
        &a.user,
        None,
    )?;
    let public = identity.public();
    let auth = pk.derive_auth_secret().to_hex();
    api.register(&json!({
        "user": a.user,
        "x25519": BASE64.encode(&public.x25519),
        "ed25519": BASE64.encode(&public.ed25519),
        "kdf": BASE64.encode(&kdf.encode()),
        "auth": auth.as_str(),
        "sealed_identity": BASE64.encode(&sealed),
        "recovery": {
            "auth": rpk.derive_auth_secret().to_hex().as_str(),
            "sealed_identity": BASE64.encode(&rsealed),
        },
    }))
    .context("registering")?;
    let answer = api
        .login(&a.user, "passphrase", &auth)
        .context("logging in")?;
    check_answer_keys(&answer, &identity)?;
    save_login(ctx, &server, &a.user, &kdf, &sealed, &identity, &answer)?;
    let shown = recovery.to_display();
    let fingerprint = public.fingerprint();
    if let Some(file) = &a.recovery_key_out {
        if file.exists() {
            return Err(CliError::usage(format!(
                "{} already exists",
                file.display()
            )));
        }
        let mut text = zeroize::Zeroizing::new(shown.to_string());
        text.push('\n');
        fsutil::write_atomic(file, text.as_bytes(), true).context(file.display())?;
    }
    let printed = a.recovery_key_out.is_none();
    if ctx.out.json {
        let mut v = json!({ "user": a.user, "server": server, "fingerprint": fingerprint });
        if printed {
            v["recovery_key"] = json!(shown.as_str());
        }
        return ctx.out.json_value(&v);
    }
    ctx.out.line(format!("registered {} on {server}", a.user))?;
    ctx.out.line(format!("fingerprint: {fingerprint}"))?;
    if printed {
        ctx.out.line("")?;
        ctx.out
            .line("Your recovery key (shown only this once; print it or store it offline):")?;
        ctx.out.line(format!("  {}", shown.as_str()))?;
        ctx.out
            .line("With it you can log in and set a new passphrase if you forget yours:")?;
        ctx.out.line("  zkwiki login --recovery-key")?;
    } else {
        ctx.out
            .line("recovery key written to the file you named: keep it offline")?;
    }
    Ok(())
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
    let kdf = KdfParams::decode(&api.prelogin(&user)?)
        .context("checking the account's key-derivation parameters")?;
    let passphrase = ctx
        .secrets
        .passphrase(&format!("Passphrase for {user}: "))?;
    let pk = ProtectorKey::derive_from_passphrase(&kdf, passphrase.as_bytes())?;
    let answer = api.login(&user, "passphrase", &pk.derive_auth_secret().to_hex())?;
    if let Some(k) = &answer.kdf
        && api::b64(k, "kdf")? != kdf.encode()
    {
        return Err(CliError::integrity(
            "the server changed the key-derivation parameters between two requests",
        ));
    }
    let sealed = api::b64(&answer.sealed_identity, "sealed identity")?;
    let identity = UserIdentity::unseal(&sealed, &pk.derive_seal_key(), &user, Some(&kdf))?;
    check_answer_keys(&answer, &identity)?;
    save_login(ctx, &server, &user, &kdf, &sealed, &identity, &answer)?;
    report_login(ctx, &user, &server, &identity)
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
    let rpk = recovery.derive_protector_key();
    let answer = api
        .login(user, "recovery", &rpk.derive_auth_secret().to_hex())
        .map_err(|e| {
            if e.kind == ErrorKind::Auth {
                CliError::new(ErrorKind::Auth, "wrong user name or recovery key")
            } else {
                e
            }
        })?;
    let sealed = api::b64(&answer.sealed_identity, "sealed identity")?;
    let identity = UserIdentity::unseal(&sealed, &rpk.derive_seal_key(), user, None)?;
    check_answer_keys(&answer, &identity)?;
    ctx.out
        .note("recovery key accepted; choose a new passphrase for this account");
    let passphrase = ctx.secrets.new_passphrase()?;
    let rng = &mut OsRng;
    let kdf = KdfParams::make(rng, cost(a.kdf_floor))?;
    let pk = ProtectorKey::derive_from_passphrase(&kdf, passphrase.as_bytes())?;
    let new_sealed = identity.seal(
        rng,
        &pk.derive_seal_key(),
        ProtectorKind::Passphrase,
        user,
        Some(&kdf),
    )?;
    let authed = Api::new(server, Some(answer.token.clone()));
    authed
        .put_protector(
            "passphrase",
            &json!({
                "auth": pk.derive_auth_secret().to_hex().as_str(),
                "sealed_identity": BASE64.encode(&new_sealed),
                "kdf": BASE64.encode(&kdf.encode()),
            }),
        )
        .context("setting the new passphrase")?;
    save_login(ctx, server, user, &kdf, &new_sealed, &identity, &answer)?;
    ctx.out
        .note("new passphrase set; the old one no longer works");
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
            "logged_in": session.is_some(), "session_expires_at": expires,
        }));
    }
    ctx.out
        .line(format!("{} on {}", stored.user, stored.server))?;
    ctx.out.line(format!("fingerprint: {fingerprint}"))?;
    match expires {
        Some(t) => ctx.out.line(format!(
            "session valid until {} UTC",
            wiki::format_time(i64::try_from(t).unwrap_or(i64::MAX / 1000) * 1000)
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
