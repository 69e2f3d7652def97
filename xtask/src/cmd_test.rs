//! `cargo xtask test`: install what is missing, then every check, failing fast.
//!
//! Steps: install (unless `--no-install`), `cargo fmt --check`, clippy `-D warnings` and rustdoc
//! `-D warnings` (unless `--quick`), the web build, a private PostgreSQL cluster
//! ([`crate::postgres`]), `cargo test --workspace` with [`TEST_ENV`] set, the server's
//! integration tests again with every test server on PostgreSQL, and the WebAssembly tests of
//! [`WASM_TEST_PACKAGES`] (unless `--quick`).

use crate::args::TestOpts;
use crate::install::{self, Scope, WASM_TARGET};
use crate::paths::{cargo_lambda, moto_server, repo_root, which};
use crate::postgres::Cluster;
use crate::proc::{self, cargo};
use crate::step::step;
use crate::web;
use anyhow::Result;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Environment variables `cargo xtask test` gives the tests (native and wasm), with their meaning.
/// A variable already set in the caller's environment is left as it is.
pub const TEST_ENV: &[(&str, &str)] = &[
    (
        "ZKWIKI_WEB_DIR",
        "the built web app (target/web), for tests that serve it",
    ),
    (
        "MOTO_SERVER",
        "moto's server script (.venv-moto/bin/moto_server): a local AWS KMS",
    ),
    (
        "CHROMEDRIVER",
        "chromedriver (/usr/bin/chromedriver), for WebDriver and wasm browser tests",
    ),
    (
        "CHROMIUM",
        "the Chromium binary (/usr/bin/chromium), for headless browser tests",
    ),
    (
        "ZKWIKI_TEST_POSTGRES",
        "the private PostgreSQL cluster's connection string, for the server's multi-process tests",
    ),
    (
        "CARGO_LAMBDA",
        "cargo-lambda (.venv-lambda/bin/cargo-lambda): the Lambda emulator",
    ),
];

/// Set for the second run of the server's integration tests: every test server on PostgreSQL.
const STORE_ENV: (&str, &str) = ("ZKWIKI_TEST_STORE", "postgres");

/// Packages whose tests also run as WebAssembly (`wasm-bindgen-test-runner`; node unless a test
/// asks for a browser, which then uses `$CHROMEDRIVER`).
pub const WASM_TEST_PACKAGES: &[&str] = &["core-crypto", "web-wasm"];

/// Runs the whole suite and prints a one-line summary.
pub fn run(opts: &TestOpts) -> Result<()> {
    let root = repo_root();
    let started = Instant::now();
    let result = run_steps(&root, opts);
    let secs = started.elapsed().as_secs();
    match &result {
        Ok(()) => println!("xtask: all steps passed ({secs} s)"),
        // main prints the error, which names the failed step, as the last line.
        Err(_) => eprintln!("xtask: FAILED after {secs} s"),
    }
    result
}

fn run_steps(root: &Path, opts: &TestOpts) -> Result<()> {
    if opts.install {
        step("install what is missing", || {
            install::run_all(root, Scope::Test)
        })?;
    } else {
        println!("xtask: install skipped (--no-install)");
    }
    step("fmt", || {
        proc::run(cargo(root).args(["fmt", "--all", "--", "--check"]))
    })?;
    if opts.quick {
        println!("xtask: clippy, doc and wasm tests skipped (--quick)");
    } else {
        step("clippy", || {
            proc::run(cargo(root).args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
        // `--examples` makes cargo resolve dev-dependency features as clippy `--all-targets`
        // did, so rustdoc reuses clippy's checked dependencies instead of re-checking ~100 crates.
        step("doc", || {
            proc::run(
                cargo(root)
                    .args([
                        "doc",
                        "--workspace",
                        "--no-deps",
                        "--lib",
                        "--bins",
                        "--examples",
                    ])
                    .env("RUSTDOCFLAGS", "-D warnings"),
            )
        })?;
    }
    let web_dir = step("web build", || web::build(root))?;
    // Stopped and deleted when this function returns, whatever happened.
    let pg = step("start PostgreSQL (private cluster)", || {
        Ok(match Cluster::start() {
            Ok(c) => Some(c),
            Err(e) => {
                loud_skip(&format!(
                    "PostgreSQL could not be started ({e:#}): the server's PostgreSQL tests \
                     are SKIPPED"
                ));
                None
            }
        })
    })?;
    let env = test_env(root, &web_dir, pg.as_ref());
    for (key, value) in &env {
        println!("xtask: test env {key}={}", value.to_string_lossy());
    }
    step("cargo test", || {
        let mut cmd = cargo(root);
        cmd.args(["test", "--workspace", "--no-fail-fast"])
            .envs(env.iter().cloned());
        with_filter(&mut cmd, &opts.filter);
        proc::run(&mut cmd)
    })?;
    if pg.is_some() {
        step(
            "cargo test (the server's integration tests on PostgreSQL)",
            || {
                let mut cmd = cargo(root);
                // `--workspace` with the server's test targets: the same feature set as the run
                // above, so nothing is rebuilt.
                cmd.args(["test", "--workspace", "--no-fail-fast"]);
                for target in server_test_targets(root)? {
                    cmd.args(["--test", &target]);
                }
                cmd.envs(env.iter().cloned()).env(STORE_ENV.0, STORE_ENV.1);
                with_filter(&mut cmd, &opts.filter);
                proc::run(&mut cmd)
            },
        )?;
    }
    drop(pg);
    if !opts.quick {
        for package in WASM_TEST_PACKAGES {
            step(&format!("wasm tests ({package})"), || {
                let mut cmd = cargo(root);
                cmd.args(["test", "--target", WASM_TARGET, "-p", package, "--tests"])
                    .envs(env.iter().cloned())
                    .env(
                        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                        "wasm-bindgen-test-runner",
                    );
                with_filter(&mut cmd, &opts.filter);
                proc::run(&mut cmd)
            })?;
        }
    }
    Ok(())
}

fn with_filter(cmd: &mut Command, filter: &[String]) {
    if !filter.is_empty() {
        cmd.arg("--").args(filter);
    }
}

/// A message nobody scrolling a CI log can miss.
fn loud_skip(message: &str) {
    let bar = "!".repeat(78);
    eprintln!("\n{bar}\nxtask: {message}\n{bar}\n");
}

/// The server's integration test targets (`server/tests/*.rs`).
fn server_test_targets(root: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("server").join("tests"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

/// The [`TEST_ENV`] values to set: those not already in the environment and found here.
fn test_env(root: &Path, web_dir: &Path, pg: Option<&Cluster>) -> Vec<(String, OsString)> {
    let mut env = Vec::new();
    for (key, _) in TEST_ENV {
        if std::env::var_os(key).is_some_and(|value| !value.is_empty()) {
            continue;
        }
        let value = match *key {
            "ZKWIKI_WEB_DIR" => Some(web_dir.to_path_buf()),
            "MOTO_SERVER" => Some(moto_server(root)).filter(|path| path.is_file()),
            "CHROMEDRIVER" => which("chromedriver"),
            "CHROMIUM" => which("chromium"),
            "ZKWIKI_TEST_POSTGRES" => pg.map(|c| std::path::PathBuf::from(&c.conninfo)),
            "CARGO_LAMBDA" => Some(cargo_lambda(root)).filter(|path| path.is_file()),
            _ => None,
        };
        match value {
            Some(value) => env.push(((*key).to_owned(), value.into_os_string())),
            None => println!("xtask: test env {key} not set: not found on this machine"),
        }
    }
    env
}
