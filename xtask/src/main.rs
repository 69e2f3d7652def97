//! `cargo xtask`: zkwiki's build and test driver.
//!
//! - `cargo xtask test [--quick] [--no-install] [-- FILTER...]`: installs what is missing, then runs
//!   fmt, clippy, rustdoc, the web build, every test and the WebAssembly tests (see [`cmd_test`]).
//! - `cargo xtask serve [--listen ADDR | --port N] [--data-dir DIR] [--no-install]`: builds the web
//!   app and runs `zkwiki-server` in release mode (see [`cmd_serve`]).
//! - `cargo xtask postgres [--stop]`: a private PostgreSQL for running the server's tests on it
//!   by hand (see [`postgres`]).
//!
//! Only `std::process::Command` and `anyhow`: no build system, no shell scripts.

mod args;
mod cmd_serve;
mod cmd_test;
mod install;
mod lockfile;
mod paths;
mod postgres;
mod proc;
mod step;
mod web;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = args::parse(&argv).and_then(|command| match command {
        args::Command::Test(opts) => cmd_test::run(&opts).map(|()| ExitCode::SUCCESS),
        args::Command::Serve(opts) => cmd_serve::run(&opts),
        args::Command::Postgres { stop } => postgres::developer(stop).map(|()| ExitCode::SUCCESS),
        args::Command::Help => {
            println!("{}", args::USAGE);
            Ok(ExitCode::SUCCESS)
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
