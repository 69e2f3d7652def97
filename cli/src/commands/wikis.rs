//! `wiki create|list|delete`.

use core_crypto::identity::check_name;
use core_crypto::keyring::{KeyringDraft, MemberKind};
use rand_core::OsRng;
use serde_json::json;

use crate::config::ConfigFile;
use crate::context::Ctx;
use crate::error::{CliError, Context, Result};

/// `zkwiki wiki create NAME`.
pub fn create(ctx: &Ctx, name: &str) -> Result<()> {
    check_name(name).map_err(|_| {
        CliError::usage(format!("{name:?} is not a valid wiki name"))
            .with_hint("names are 1-64 characters of a-z, 0-9, '.', '_', '-'")
    })?;
    let profile = ctx.profile.clone().ok_or_else(|| {
        CliError::new(crate::error::ErrorKind::Auth, "not logged in")
            .with_hint("run `zkwiki login` (or `zkwiki register` for a new account)")
    })?;
    let mut config = ConfigFile::load(&ctx.paths)?;
    if config
        .profiles
        .get(&profile)
        .is_some_and(|p| p.wikis.contains_key(name))
    {
        return Err(
            CliError::usage(format!("you already have a wiki named {name:?}"))
                .with_hint("choose another name (see `zkwiki wiki list`)"),
        );
    }
    let api = ctx.api()?;
    let who = ctx.unlock()?;
    let rng = &mut OsRng;
    let keyring = KeyringDraft::genesis(rng, &who.identity, &who.user, MemberKind::Person)?
        .sign(rng, &who.identity)?;
    let head = client::VerifiedHead::genesis(keyring, &who.identity)?;
    let snapshot = head.snapshot();
    let wiki = snapshot.keyring.wiki;
    let answer = api
        .create_wiki(
            snapshot.keyring.as_bytes(),
            snapshot.state.as_bytes(),
            &snapshot.manifest.encode(),
        )
        .context("creating the wiki")?;
    if answer != wiki.to_hex() {
        return Err(CliError::integrity(format!(
            "the server created wiki {answer:?}, not {wiki}"
        )));
    }
    ctx.seen.store(&wiki, &snapshot.seen_record())?;
    let p = config.profiles.entry(profile).or_default();
    p.wikis.insert(name.to_owned(), wiki.to_hex());
    if p.default_wiki.is_none() {
        p.default_wiki = Some(name.to_owned());
    }
    config.save(&ctx.paths)?;
    if ctx.out.json {
        return ctx
            .out
            .json_value(&json!({ "name": name, "wiki": wiki.to_hex() }));
    }
    ctx.out.line(format!("created wiki {name} ({wiki})"))
}

/// `zkwiki wiki list`.
pub fn list(ctx: &Ctx) -> Result<()> {
    let api = ctx.api()?;
    let rows = api.list_wikis()?;
    let none = crate::config::Profile::default();
    let config = ctx.profile().unwrap_or(&none);
    let name_of = |id: &str| {
        config
            .wikis
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
    };
    if ctx.out.json {
        let items: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": name_of(&r.wiki), "wiki": r.wiki, "role": r.role, "seq": r.seq,
                    "default": config.default_wiki.as_deref().is_some_and(|d| Some(d.to_owned()) == name_of(&r.wiki) || d == r.wiki),
                })
            })
            .collect();
        return ctx.out.json_value(&json!({ "wikis": items }));
    }
    if rows.is_empty() {
        ctx.out
            .note("no wikis yet: create one with `zkwiki wiki create NAME`");
        return Ok(());
    }
    for r in &rows {
        let name = name_of(&r.wiki).unwrap_or_else(|| "-".to_owned());
        let mark = if config.default_wiki.as_deref() == Some(name.as_str()) {
            "*"
        } else {
            " "
        };
        ctx.out.line(format!(
            "{mark} {name:<20} {} {:<7} seq {}",
            r.wiki, r.role, r.seq
        ))?;
    }
    Ok(())
}

/// `zkwiki wiki delete WIKI --yes`.
pub fn delete(ctx: &Ctx, selector: &str, yes: bool) -> Result<()> {
    let wiki = ctx.resolve_wiki(Some(selector))?;
    if !yes {
        return Err(CliError::usage(format!(
            "deleting wiki {selector} removes it from the server for every member"
        ))
        .with_hint("add --yes to confirm"));
    }
    ctx.api()?
        .delete_wiki(&wiki.to_hex())
        .context("deleting the wiki")?;
    let mut config = ConfigFile::load(&ctx.paths)?;
    if let Some(p) = ctx
        .profile
        .as_ref()
        .and_then(|p| config.profiles.get_mut(p))
    {
        p.wikis.retain(|_, v| *v != wiki.to_hex());
        if p.default_wiki
            .as_deref()
            .is_some_and(|d| d == selector || d == wiki.to_hex())
        {
            p.default_wiki = None;
        }
    }
    config.save(&ctx.paths)?;
    ctx.seen.forget(&wiki)?;
    if ctx.out.json {
        return ctx.out.json_value(&json!({ "deleted": wiki.to_hex() }));
    }
    ctx.out.line(format!("deleted wiki {wiki}"))
}
