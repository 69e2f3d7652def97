//! `zkwiki unlock [--for D] [--status]` and `zkwiki lock` (see [`crate::unlock`]).

use serde_json::json;

use crate::args::UnlockArgs;
use crate::context::Ctx;
use crate::error::{CliError, Result};
use crate::time::format_time;
use crate::unlock;

/// `zkwiki unlock`.
pub fn unlock(ctx: &Ctx, a: &UnlockArgs) -> Result<()> {
    let socket = ctx.agent_socket();
    let lifetime = crate::time::parse_duration(&a.lifetime)?;
    if lifetime > unlock::MAX_LIFETIME {
        return Err(CliError::usage("keys stay unlocked for at most 30 days")
            .with_hint("use --for 30d or less"));
    }
    if a.serve {
        let user = std::env::var("ZKWIKI_AGENT_USER")
            .map_err(|_| CliError::usage("--serve is for zkwiki itself"))?;
        return unlock::serve(&socket, &user, lifetime);
    }
    let running = unlock::status(&socket);
    if a.status || running.is_some() {
        let until =
            |s: &unlock::Status| format_time(i64::try_from(s.expires_at).unwrap_or(0) * 1000);
        if ctx.out.json {
            return ctx.out.json_value(&json!({
                "unlocked": running.is_some(),
                "user": running.as_ref().map(|s| s.user.clone()),
                "expires_at": running.as_ref().map(|s| s.expires_at),
            }));
        }
        return match &running {
            Some(s) => ctx.out.line(format!(
                "unlocked for {} until {} UTC (`zkwiki lock` ends it)",
                client::display::escape(&s.user),
                until(s)
            )),
            None => ctx.out.line("locked: commands ask for the passphrase"),
        };
    }
    let who = ctx.unlock_with_secret()?;
    unlock::spawn(&socket, &who.user, &who.identity, lifetime)?;
    if ctx.out.json {
        return ctx
            .out
            .json_value(&json!({ "unlocked": true, "user": who.user, "seconds": lifetime }));
    }
    ctx.out.line(format!(
        "unlocked for {}: commands (and git's textconv) use your keys without asking; `zkwiki lock` forgets them",
        crate::time::describe_duration(lifetime)
    ))
}

/// `zkwiki lock`.
pub fn lock(ctx: &Ctx) -> Result<()> {
    let was = unlock::lock(&ctx.agent_socket());
    if ctx.out.json {
        return ctx.out.json_value(&json!({ "was_unlocked": was }));
    }
    ctx.out.line(if was {
        "locked: the agent forgot your keys"
    } else {
        "nothing to lock (no unlock agent was running)"
    })
}
