//! `witness list|add|rm|policy` and `status`: the wiki's witnesses, signed into its keyring by
//! an owner, and the safety numbers members compare out of band.
//!
//! These commands open the wiki with witness policy `warn` whatever the keyring says, so an
//! owner can remove a witness that is down for good and anyone can see which witness is down
//! (each is warned that the head was checked only against this machine's memory meanwhile).

use client::display::escape as esc;
use client::witness::{Finding, Witness, WitnessPolicy, WitnessSet, check_url, key_fingerprint};
use serde_json::{Value, json};

use super::agent::{keyring_change, normalize_fp};
use crate::context::Ctx;
use crate::error::{CliError, Result};
use crate::remote::{Remote, Session};
use crate::witness::{Report, WitnessClient};

/// A witness URL as typed (`https://w.example/`), normalized (no trailing `/`) and checked.
fn normalize_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/').to_owned();
    check_url(&url).map_err(|e| {
        CliError::usage(format!("{:?} is not a witness URL: {e}", esc(&url)))
            .with_hint("give the witness's base URL, e.g. https://witness.example:8090")
    })?;
    Ok(url)
}

/// Fetches the witness's key from `url` and checks its fingerprint against the one its
/// operator gave (or, with `yes`, warns that nobody checked it).
fn fetch(ctx: &Ctx, url: &str, fingerprint: Option<&str>, yes: bool) -> Result<Witness> {
    let url = normalize_url(url)?;
    let key = WitnessClient::default().key(&url)?;
    let fp = key_fingerprint(&key);
    match fingerprint {
        Some(expected) if normalize_fp(expected) == normalize_fp(&fp) => {}
        Some(_) => {
            return Err(CliError::integrity(format!(
                "the witness at {url} has key fingerprint {fp}, not the one you gave"
            ))
            .with_hint("someone may be answering in the witness's place: ask its operator again"));
        }
        None if yes => ctx.out.warn(format!(
            "adding the witness at {url} with key fingerprint {fp} without checking it (--yes)"
        )),
        None => {
            return Err(CliError::usage(format!(
                "the witness at {url} has key fingerprint {fp}: compare it with its operator out of band"
            ))
            .with_hint(
                "then run again with --fingerprint \"<what they read to you>\" (or --yes to skip the check)",
            ));
        }
    }
    Ok(Witness { key, url })
}

fn parse_policy(text: &str) -> Result<WitnessPolicy> {
    WitnessPolicy::from_name(text).map_err(|_| {
        CliError::usage(format!("{:?} is not a witness policy", esc(text)))
            .with_hint("use warn (read on when a witness is down) or stop")
    })
}

/// The witness set `wiki create --witness …` signs into the first keyring.
pub fn set_for_create(
    ctx: &Ctx,
    urls: &[String],
    fingerprints: &[String],
    policy: &str,
    yes: bool,
) -> Result<WitnessSet> {
    let policy = parse_policy(policy)?;
    if urls.is_empty() {
        return Ok(WitnessSet::default());
    }
    if !fingerprints.is_empty() && fingerprints.len() != urls.len() {
        return Err(CliError::usage(
            "give one --witness-fingerprint per --witness, in the same order",
        ));
    }
    let mut set = WitnessSet {
        policy,
        witnesses: Vec::new(),
    };
    for (i, url) in urls.iter().enumerate() {
        let w = fetch(ctx, url, fingerprints.get(i).map(String::as_str), yes)?;
        set.add(w)?;
    }
    Ok(set)
}

/// Opens the wiki with witness policy `warn` (see the module docs).
fn open_warn_only(ctx: &Ctx) -> Result<Session> {
    let mut remote = Remote::open(ctx)?;
    remote.witness_warn_only = true;
    let s = remote.session_with(&mut || ctx.unlock())?;
    super::pages::warn_isolated(ctx, &s);
    Ok(s)
}

/// Commits the witness set `change` makes of the current one (redone on a conflict).
fn change_witnesses(
    s: &mut Session,
    change: &dyn Fn(&mut WitnessSet) -> client::Result<()>,
) -> Result<u64> {
    let (c, ()) = keyring_change(s, &mut |ws, now| {
        let mut set = ws.snapshot().keyring.witnesses.clone();
        change(&mut set)?;
        Ok((ws.set_witnesses(set, now)?, ()))
    })?;
    Ok(c.seq)
}

/// `zkwiki witness add URL [--fingerprint FP | --yes]`.
pub fn add(ctx: &Ctx, url: &str, fingerprint: Option<&str>, yes: bool) -> Result<()> {
    let w = fetch(ctx, url, fingerprint, yes)?;
    let mut s = open_warn_only(ctx)?;
    let seq = change_witnesses(&mut s, &|set| {
        set.add(w.clone()).map_err(|e| {
            client::Error::input(format!("cannot add the witness: {e}"))
                .with_hint("`zkwiki witness list` shows the wiki's witnesses")
        })
    })?;
    let holds = s
        .witnesses
        .findings
        .iter()
        .find(|(x, _)| x.key == w.key)
        .map(|(_, f)| f.describe());
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "added": w.url, "fingerprint": w.fingerprint(), "seq": seq,
            "policy": s.ws.snapshot().keyring.witnesses.policy.name(),
        }));
    }
    ctx.out.line(format!(
        "added witness {} (fingerprint {}) in state {seq}; every member's client now checks heads with it",
        w.url,
        w.fingerprint()
    ))?;
    if let Some(h) = holds {
        ctx.out.line(format!("it {h}"))?;
    }
    Ok(())
}

/// `zkwiki witness rm URL`.
pub fn remove(ctx: &Ctx, url: &str) -> Result<()> {
    let url = url.trim().trim_end_matches('/').to_owned();
    let mut s = open_warn_only(ctx)?;
    let seq = change_witnesses(&mut s, &|set| {
        set.remove(&url).map(|_| ()).map_err(|_| {
            client::Error::not_found(format!("this wiki has no witness at {}", esc(&url)))
                .with_hint("`zkwiki witness list` shows the wiki's witnesses")
        })
    })?;
    if ctx.out.json {
        return ctx.out.json_value(&json!({ "removed": url, "seq": seq }));
    }
    ctx.out
        .line(format!("removed witness {} in state {seq}", esc(&url)))
}

/// `zkwiki witness policy warn|stop`.
pub fn policy(ctx: &Ctx, text: &str) -> Result<()> {
    let policy = parse_policy(text)?;
    let mut s = open_warn_only(ctx)?;
    if s.ws.snapshot().keyring.witnesses.is_empty() {
        return Err(CliError::usage("this wiki has no witnesses")
            .with_hint("add one first: `zkwiki witness add URL --fingerprint FP`"));
    }
    let seq = change_witnesses(&mut s, &|set| {
        set.policy = policy;
        Ok(())
    })?;
    if ctx.out.json {
        return ctx
            .out
            .json_value(&json!({ "policy": policy.name(), "seq": seq }));
    }
    ctx.out.line(format!(
        "witness policy set to {} in state {seq}: {}",
        policy.name(),
        match policy {
            WitnessPolicy::Warn =>
                "clients read on, with a warning, when a witness cannot be asked",
            WitnessPolicy::Stop => "clients stop when a witness cannot be asked",
        }
    ))
}

fn finding_json(w: &Witness, f: Option<&Finding>) -> Value {
    json!({
        "url": esc(&w.url),
        "fingerprint": w.fingerprint(),
        "status": f.map_or("not asked", Finding::name),
        "detail": f.map(Finding::describe),
        "seq": f.and_then(Finding::checkpoint_seq),
    })
}

fn witnesses_json(set: &WitnessSet, report: &Report) -> Value {
    let find = |w: &Witness| {
        report
            .findings
            .iter()
            .find(|(x, _)| x.key == w.key)
            .map(|(_, f)| f)
    };
    json!({
        "policy": set.policy.name(),
        "list": set.witnesses.iter().map(|w| finding_json(w, find(w))).collect::<Vec<_>>(),
    })
}

fn witness_lines(set: &WitnessSet, report: &Report) -> Vec<String> {
    if set.is_empty() {
        return vec![
            "none: a new device trusts the first head it is shown (`zkwiki witness add URL`)"
                .to_owned(),
        ];
    }
    let mut lines = vec![format!(
        "policy {}: {}",
        set.policy.name(),
        match set.policy {
            WitnessPolicy::Warn => "read on with a warning when one cannot be asked",
            WitnessPolicy::Stop => "stop when one cannot be asked",
        }
    )];
    for w in &set.witnesses {
        let f = report.findings.iter().find(|(x, _)| x.key == w.key);
        lines.push(format!(
            "{}  {}  {}",
            esc(&w.url),
            w.fingerprint(),
            f.map_or_else(|| "not asked".to_owned(), |(_, f)| f.describe())
        ));
    }
    lines
}

/// `zkwiki witness list`.
pub fn list(ctx: &Ctx) -> Result<()> {
    let s = open_warn_only(ctx)?;
    let set = &s.ws.snapshot().keyring.witnesses;
    if ctx.out.json {
        let mut v = witnesses_json(set, &s.witnesses);
        v["wiki"] = json!(s.remote.hex());
        return ctx.out.json_value(&v);
    }
    for line in witness_lines(set, &s.witnesses) {
        ctx.out.line(line)?;
    }
    Ok(())
}

/// `zkwiki status`: the head and keyring with their safety numbers, this member, the witnesses.
pub fn status(ctx: &Ctx) -> Result<()> {
    let s = open_warn_only(ctx)?;
    let snap = s.ws.snapshot();
    let numbers = client::witness::safety_numbers(s.ws.head());
    let signer = s.ws.head_signer().map(|n| esc(n).into_owned());
    let role = s.ws.my_role().map(|r| r.name());
    let title = s.ws.title().map(|t| esc(t).into_owned());
    let set = &snap.keyring.witnesses;
    if ctx.out.json {
        return ctx.out.json_value(&json!({
            "wiki": s.remote.hex(),
            "title": title,
            "seq": numbers.seq,
            "state": snap.state.hash().to_hex(),
            "safety_number": numbers.head,
            "signer": signer,
            "keyring": {
                "seq": numbers.keyring_seq,
                "epoch": snap.keyring.epoch,
                "members": snap.keyring.members.len(),
                "safety_number": numbers.keyring,
            },
            "me": { "name": esc(s.ws.my_name()), "role": role },
            "witnesses": witnesses_json(set, &s.witnesses),
        }));
    }
    let pad = |label: &str| format!("{label:<10}");
    ctx.out.line(format!(
        "{}{}{}",
        pad("wiki"),
        s.remote.hex(),
        title.map(|t| format!("  \"{t}\"")).unwrap_or_default()
    ))?;
    ctx.out.line(format!(
        "{}seq {}{}",
        pad("head"),
        numbers.seq,
        signer
            .map(|n| format!(", signed by {n}"))
            .unwrap_or_default()
    ))?;
    ctx.out
        .line(format!("{}safety number {}", pad(""), numbers.head))?;
    ctx.out.line(format!(
        "{}seq {}, epoch {}, {}",
        pad("keyring"),
        numbers.keyring_seq,
        snap.keyring.epoch,
        crate::output::count(snap.keyring.members.len(), "member", "members")
    ))?;
    ctx.out
        .line(format!("{}safety number {}", pad(""), numbers.keyring))?;
    ctx.out.line(format!(
        "{}{} ({})",
        pad("you"),
        esc(s.ws.my_name()),
        role.unwrap_or("not a member")
    ))?;
    for (i, line) in witness_lines(set, &s.witnesses).into_iter().enumerate() {
        ctx.out.line(format!(
            "{}{line}",
            pad(if i == 0 { "witnesses" } else { "" })
        ))?;
    }
    ctx.out.note(
        "compare the safety numbers with another member over a channel you trust: \
         the same seq with the same number means you both see the same wiki",
    );
    Ok(())
}
