//! `wiki create|list|title|delete`.

use core_crypto::identity::check_name;
use core_crypto::keyring::{KeyringDraft, MemberKind};
use rand_core::OsRng;
use serde_json::json;

use client::display::escape as esc;
use client::links::WikilinkStyle;
use client::workspace::WikiSettings;
use core_crypto::ids::WikiId;

use crate::config::ConfigFile;
use crate::context::{Ctx, Unlocked};
use crate::error::{CliError, Context, Result};
use crate::remote::{Remote, Session};
use crate::store::WikiDir;

/// Commits `settings` to the open wiki (the commit loop redoes it on a conflict).
fn write_settings(s: &mut Session, settings: &WikiSettings) -> Result<u64> {
    let done = s.commit(&mut |ws, now| Ok(Some((ws.prepare_settings(settings, now)?, ()))))?;
    Ok(done.map_or(0, |(seq, ())| seq))
}

/// Checks a title before anything is sent.
fn checked(settings: WikiSettings) -> Result<WikiSettings> {
    settings.check()?;
    Ok(settings)
}

/// `zkwiki wiki create NAME [--title T] [--description D]`.
pub fn create(
    ctx: &Ctx,
    name: &str,
    title: Option<String>,
    description: Option<String>,
    witnesses: client::witness::WitnessSet,
) -> Result<()> {
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
    let settings = checked(WikiSettings {
        title: title.unwrap_or_else(|| name.to_owned()),
        description: description.unwrap_or_default(),
        ..WikiSettings::default()
    })?;
    let api = ctx.api()?;
    let who = ctx.unlock()?;
    let rng = &mut OsRng;
    let mut genesis = KeyringDraft::genesis(rng, &who.identity, &who.user, MemberKind::Person)?;
    // Witnesses from the first keyring: no head of this wiki exists that they do not cover.
    genesis.set_witnesses(witnesses)?;
    let keyring = genesis.sign(rng, &who.identity)?;
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
    // The title lives inside the wiki, so every client shows the same name.
    let mut session = Remote::for_wiki(ctx, wiki)?.session(&who)?;
    write_settings(&mut session, &settings)?;
    let witnesses: Vec<String> = session
        .ws
        .snapshot()
        .keyring
        .witnesses
        .witnesses
        .iter()
        .map(|w| w.url.clone())
        .collect();
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "name": name, "wiki": wiki.to_hex(), "title": esc(&settings.title),
            "witnesses": witnesses,
        }));
    }
    ctx.out.line(format!(
        "created wiki {name} ({wiki}): \"{}\"",
        esc(&settings.title)
    ))
}

/// `zkwiki wiki title [TITLE] [--description D]`.
pub fn title(ctx: &Ctx, title: Option<String>, description: Option<String>) -> Result<()> {
    let mut s = super::pages::open(ctx)?;
    if title.is_none() && description.is_none() {
        let current = s.ws.settings().cloned().unwrap_or_default();
        if ctx.out.json {
            return ctx.out.json_value(&json!({
                "wiki": s.remote.hex(),
                "title": esc(&current.title),
                "description": client::display::escape_multiline(&current.description),
            }));
        }
        if current.title.is_empty() {
            ctx.out
                .note("this wiki has no title yet: set one with `zkwiki wiki title TITLE`");
        } else {
            ctx.out.line(esc(&current.title))?;
        }
        if !current.description.is_empty() {
            ctx.out
                .line(client::display::escape_multiline(&current.description))?;
        }
        return Ok(());
    }
    let mut next = s.ws.settings().cloned().unwrap_or_default();
    if let Some(t) = title {
        next.title = t;
    }
    if let Some(d) = description {
        next.description = d;
    }
    let next = checked(next)?;
    let seq = write_settings(&mut s, &next)?;
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "wiki": s.remote.hex(), "seq": seq, "title": esc(&next.title),
        }));
    }
    ctx.out
        .line(format!("title set to \"{}\" (seq {seq})", esc(&next.title)))
}

/// `zkwiki wiki link-style [STYLE]`.
pub fn link_style(ctx: &Ctx, style: Option<&str>) -> Result<()> {
    let mut s = super::pages::open(ctx)?;
    let current = s.ws.wikilink_style();
    let Some(next) = style.and_then(WikilinkStyle::parse) else {
        if ctx.out.json {
            return ctx.out.json_value(
                &json!({ "wiki": s.remote.hex(), "wikilink_style": current.as_str() }),
            );
        }
        return ctx.out.line(describe_style(current));
    };
    let seq = if next == current {
        None
    } else {
        let mut settings = s.ws.settings().cloned().unwrap_or_default();
        settings.wikilink_style = next;
        Some(write_settings(&mut s, &settings)?)
    };
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "wiki": s.remote.hex(), "wikilink_style": next.as_str(), "seq": seq,
        }));
    }
    ctx.out.line(describe_style(next))
}

fn describe_style(style: WikilinkStyle) -> String {
    match style {
        WikilinkStyle::TargetFirst => "target|label: [[Target|Label]] (zkwiki's default)",
        WikilinkStyle::LabelFirst => "label|target: [[Label|Target]] (Otterwiki's default)",
    }
    .to_owned()
}

/// The title of each wiki as last read on this machine; wikis never opened here are opened
/// now when the identity is at hand without a prompt (unlock agent or key file).
fn titles(ctx: &Ctx, wikis: &[WikiId]) -> Vec<Option<String>> {
    let dir = |w: &WikiId| WikiDir::new(&ctx.paths.data_dir, w);
    let mut who: Option<Option<Unlocked>> = None;
    wikis
        .iter()
        .map(|w| {
            if let Some(t) = dir(w).title() {
                return Some(t);
            }
            let who = who.get_or_insert_with(|| ctx.unlock_quietly()).as_ref()?;
            let session = Remote::for_wiki(ctx, *w).ok()?.session(who).ok()?;
            session.ws.title().map(str::to_owned)
        })
        .collect()
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
    let ids: Vec<WikiId> = rows
        .iter()
        .filter_map(|r| WikiId::from_hex(&r.wiki).ok())
        .collect();
    let titles = titles(ctx, &ids);
    let title_of = |id: &str| {
        ids.iter()
            .position(|w| w.to_hex() == id)
            .and_then(|i| titles[i].clone())
    };
    if ctx.out.json {
        let items: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": name_of(&r.wiki), "wiki": r.wiki, "role": r.role, "seq": r.seq,
                    "title": title_of(&r.wiki).map(|t| esc(&t).into_owned()),
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
    let mut unknown = false;
    for r in &rows {
        let name = name_of(&r.wiki).unwrap_or_else(|| "-".to_owned());
        let mark = if config.default_wiki.as_deref() == Some(name.as_str()) {
            "*"
        } else {
            " "
        };
        let title = title_of(&r.wiki).map_or_else(
            || {
                unknown = true;
                "?".to_owned()
            },
            |t| format!("\"{}\"", esc(&t)),
        );
        ctx.out.line(format!(
            "{mark} {name:<16} {} {:<7} {:<9} {title}",
            &r.wiki[..12],
            r.role,
            format!("seq {}", r.seq),
        ))?;
    }
    if unknown {
        ctx.out.note(
            "? marks a wiki not opened on this machine yet: `zkwiki unlock` (or any command on it) shows its title",
        );
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
