//! The `zkwiki` command-line client as a library: raw arguments ([`args`]) are resolved into a
//! context ([`context::Ctx`]) and dispatched to [`commands`]; [`run`] returns the documented exit
//! code, so the binary's `main` is one line.
//!
//! Everything the server sends is verified by `core-crypto` before use ([`repo`]); the CLI keeps
//! no plaintext on disk except what the user asks for (`clone`, `decrypt`, `export`, `cat`).

pub mod api;
pub mod args;
pub mod commands;
pub mod config;
pub mod context;
pub mod error;
pub mod fsutil;
pub mod git;
pub mod keystore;
pub mod mcp;
pub mod output;
pub mod remote;
pub mod repo;
pub mod seen;
pub mod store;
pub mod time;
pub mod unlock;
pub mod witness;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;

use crate::error::{ErrorKind, exit};

/// Parses `args` (program name first), runs the command, prints any error with its hint, and
/// returns the exit code. A closed standard output (`zkwiki ls | head`) counts as success.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match args::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return if code == 0 { exit::OK } else { exit::USAGE };
        }
    };
    let json = cli.global.json;
    let result =
        context::Ctx::resolve(&cli.global).and_then(|ctx| commands::dispatch(&ctx, cli.command));
    match result {
        Ok(()) => exit::OK,
        Err(e) if e.kind == ErrorKind::BrokenPipe => exit::OK,
        Err(e) if e.kind == ErrorKind::NoMatch => e.kind.exit_code(),
        Err(e) => {
            let mut stderr = std::io::stderr().lock();
            if json {
                let v = serde_json::json!({
                    "error": { "kind": e.kind.name(), "message": e.message, "hint": e.hint }
                });
                let _ = writeln!(stderr, "{v}");
            } else {
                let _ = writeln!(stderr, "error: {}", e.message);
                if let Some(h) = &e.hint {
                    let _ = writeln!(stderr, "hint: {h}");
                }
            }
            e.kind.exit_code()
        }
    }
}
