//! `cargo xtask serve`: build the web app, build `zkwiki-server` in release mode and run it with
//! `--listen ADDR --data-dir DIR --web-dir DIR`.

use crate::args::ServeOpts;
use crate::install::{self, Scope};
use crate::paths::{repo_root, target_dir};
use crate::proc::{self, cargo, show};
use crate::step::step;
use crate::web;
use anyhow::{Context, Result};
use std::process::{Command, ExitCode};

/// Builds everything and runs the server in the foreground; returns its exit code.
pub fn run(opts: &ServeOpts) -> Result<ExitCode> {
    let root = repo_root();
    if opts.install {
        step("install what the web build needs", || {
            install::run_all(&root, Scope::Web)
        })?;
    }
    let web_dir = step("web build", || web::build(&root))?;
    step("build zkwiki-server (release)", || {
        proc::run(cargo(&root).args([
            "build",
            "--release",
            "-p",
            "server",
            "--bin",
            "zkwiki-server",
        ]))
    })?;
    // A --data-dir given by the user is relative to where they ran the command.
    let data_dir = match &opts.data_dir {
        Some(dir) => std::path::absolute(dir)?,
        None => root.join("data"),
    };
    let server = target_dir(&root).join("release").join("zkwiki-server");
    let mut cmd = Command::new(&server);
    cmd.arg("--listen")
        .arg(&opts.listen)
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--web-dir")
        .arg(&web_dir)
        .current_dir(&root);
    println!(
        "xtask: zkwiki at http://{} (data in {}); Ctrl-C stops it",
        opts.listen,
        data_dir.display()
    );
    println!("  $ {}", show(&cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", server.display()))?;
    if status.success() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "xtask: zkwiki-server exited ({status}); the README's status table says whether the \
         server is built yet"
    );
    let code = status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .unwrap_or(1);
    Ok(ExitCode::from(code.max(1)))
}
