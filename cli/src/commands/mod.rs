//! One module per group of commands; [`dispatch`] maps a parsed command to its function.

mod account;
pub mod agent;
mod clone;
pub mod history;
mod mcp;
mod pages;
mod replay;
mod transfer;
mod unlock;
mod wikis;
mod witnesses;

use crate::args::{
    AgentCommand, AuthCommand, Command, KeyCommand, MemberCommand, WikiCommand, WitnessCommand,
};
use crate::context::Ctx;
use crate::error::Result;

/// Runs one command.
pub fn dispatch(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Register(a) => account::register(ctx, &a),
        Command::Login(a) => account::login(ctx, &a),
        Command::Logout(a) => account::logout(ctx, &a),
        Command::Whoami => account::whoami(ctx),
        Command::Passwd(a) => account::passwd(ctx, &a),
        Command::RecoveryKey(a) => account::new_recovery_key(ctx, &a),
        Command::Key(KeyCommand::Export { file, kms_key }) => {
            account::key_export(ctx, &file, kms_key.as_deref())
        }
        Command::Key(KeyCommand::Show) => account::key_show(ctx),
        Command::Wiki(WikiCommand::Create {
            name,
            title,
            description,
            witnesses,
            witness_fingerprints,
            witness_policy,
            yes,
        }) => {
            let set = witnesses::set_for_create(
                ctx,
                &witnesses,
                &witness_fingerprints,
                &witness_policy,
                yes,
            )?;
            wikis::create(ctx, &name, title, description, set)
        }
        Command::Wiki(WikiCommand::Title { title, description }) => {
            wikis::title(ctx, title, description)
        }
        Command::Wiki(WikiCommand::LinkStyle { style }) => wikis::link_style(ctx, style.as_deref()),
        Command::Wiki(WikiCommand::List) => wikis::list(ctx),
        Command::Wiki(WikiCommand::Delete { wiki, yes }) => wikis::delete(ctx, &wiki, yes),
        Command::Ls(a) => pages::ls(ctx, &a),
        Command::Cat(a) => pages::cat(ctx, &a),
        Command::Put(a) => pages::put(ctx, &a),
        Command::Edit(a) => pages::edit(ctx, &a),
        Command::Mv(a) => pages::mv(ctx, &a),
        Command::Rm(a) => pages::rm(ctx, &a),
        Command::Search(a) => pages::search(ctx, &a),
        Command::Log(a) => history::log(ctx, &a),
        Command::Clone(a) => clone::clone(ctx, &a),
        Command::Decrypt(a) => clone::decrypt(ctx, &a),
        Command::Pull(a) => clone::pull(ctx, &a),
        Command::Textconv(a) => clone::textconv(ctx, &a),
        Command::Credential(a) => clone::credential(ctx, &a),
        Command::Import(a) => transfer::import(ctx, &a),
        Command::Export(a) => transfer::export(ctx, &a),
        Command::Member(MemberCommand::Add(a)) => agent::member_add(ctx, &a),
        Command::Member(MemberCommand::Rm { user }) => agent::member_rm(ctx, &user),
        Command::Member(MemberCommand::List) => agent::member_list(ctx, false),
        Command::Agent(AgentCommand::Grant(a)) => agent::agent_grant(ctx, &a),
        Command::Agent(AgentCommand::List) => agent::member_list(ctx, true),
        Command::Agent(AgentCommand::Revoke { name }) => agent::agent_revoke(ctx, &name),
        Command::Witness(WitnessCommand::List) => witnesses::list(ctx),
        Command::Witness(WitnessCommand::Add {
            url,
            fingerprint,
            yes,
        }) => witnesses::add(ctx, &url, fingerprint.as_deref(), yes),
        Command::Witness(WitnessCommand::Rm { url }) => witnesses::remove(ctx, &url),
        Command::Witness(WitnessCommand::Policy { policy }) => witnesses::policy(ctx, &policy),
        Command::Status => witnesses::status(ctx),
        Command::Rotate(a) => agent::rotate(ctx, &a),
        Command::Reencrypt(a) => agent::reencrypt(ctx, &a),
        Command::Mcp(a) => mcp::serve(ctx, &a),
        Command::Unlock(a) => unlock::unlock(ctx, &a),
        Command::Lock => unlock::lock(ctx),
        Command::Completions { shell } => {
            let mut cmd = <crate::args::Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "zkwiki", &mut out);
            ctx.out.raw(&out)
        }
        Command::Auth(AuthCommand::List) => account::auth_list(ctx),
        Command::Auth(AuthCommand::Switch { profile }) => account::auth_switch(ctx, &profile),
    }
}
