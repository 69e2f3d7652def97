//! Installs what a fresh Debian machine of our kind lacks. Every item checks first and only
//! installs when something is missing, so a second run costs a few probes.

use crate::lockfile::{tool_version, wasm_bindgen_version};
use crate::paths::{LAMBDA_VENV, MOTO_VENV, cargo_lambda, moto_server, which};
use crate::proc::{cargo, probe, run};
use crate::step::install_item;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The WebAssembly target of the browser build and the wasm tests.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Debian packages the tests use, each with a program that shows it is there.
pub const APT_PACKAGES: &[(&str, &str)] = &[
    ("age", "age"),
    ("git", "git"),
    ("chromium", "chromium"),
    ("chromium-driver", "chromedriver"),
    ("git-crypt", "git-crypt"),
    // The server's tests on a shared metadata database (a private cluster: see postgres.rs).
    // `initdb` is off PATH on Debian (/usr/lib/postgresql/N/bin), so dpkg decides there; probing
    // `psql` would take the client package alone for the server.
    ("postgresql", "initdb"),
    // The deploy guide's reverse-proxy configs are run for real (server/tests/proxies.rs);
    // nginx is also the shared cache of the CDN read path test (server/tests/cdn.rs).
    ("nginx", "nginx"),
    ("caddy", "caddy"),
    ("curl", "curl"),
    ("openssl", "openssl"),
    // The systemd units of the deploy guide are checked with systemd-analyze (server/tests/deploy.rs).
    ("systemd", "systemd-analyze"),
];

/// How much to install.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything `cargo xtask test` needs.
    Test,
    /// Only what the web build needs (`cargo xtask serve`).
    Web,
}

/// Installs what is missing for `scope`.
pub fn run_all(root: &Path, scope: Scope) -> Result<()> {
    install_item("rust target wasm32-unknown-unknown", wasm_target)?;
    if scope == Scope::Test {
        install_item("rustup components rustfmt clippy", components)?;
    }
    install_item("wasm-bindgen-cli", || wasm_bindgen_cli(root))?;
    if scope == Scope::Test {
        install_item("apt packages", apt_packages)?;
        install_item("moto (local AWS KMS)", || {
            pip_tool(root, MOTO_VENV, "moto[server]", &moto_server(root))
        })?;
        install_item("cargo-lambda (Lambda emulator)", || {
            pip_tool(root, LAMBDA_VENV, "cargo-lambda", &cargo_lambda(root))
        })?;
        install_item("npm e2e packages", || npm_packages(root))?;
    }
    Ok(())
}

fn rustup(args: &[&str]) -> Result<String> {
    probe(Command::new("rustup").args(args)).with_context(|| {
        format!(
            "`rustup {}` failed: is Rust installed with rustup?",
            args.join(" ")
        )
    })
}

fn wasm_target() -> Result<String> {
    let installed = rustup(&["target", "list", "--installed"])?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok("present".to_owned());
    }
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    Ok("installed".to_owned())
}

/// The components of `wanted` absent from `rustup component list --installed` output.
pub fn missing_components<'a>(installed: &str, wanted: &[&'a str]) -> Vec<&'a str> {
    wanted
        .iter()
        .copied()
        .filter(|name| {
            !installed.lines().map(str::trim).any(|line| {
                line == *name
                    || line
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('-'))
            })
        })
        .collect()
}

fn components() -> Result<String> {
    let installed = rustup(&["component", "list", "--installed"])?;
    let missing = missing_components(&installed, &["rustfmt", "clippy"]);
    if missing.is_empty() {
        return Ok("present".to_owned());
    }
    run(Command::new("rustup")
        .args(["component", "add"])
        .args(&missing))?;
    Ok(format!("installed {}", missing.join(" ")))
}

/// The version a tool reports with `--version`, if it runs.
fn installed_version(program: &str) -> Option<String> {
    let output = probe(Command::new(program).arg("--version"))?;
    tool_version(&output).map(str::to_owned)
}

fn wasm_bindgen_cli(root: &Path) -> Result<String> {
    let wanted = wasm_bindgen_version(root)?;
    let cli = installed_version("wasm-bindgen");
    let runner = installed_version("wasm-bindgen-test-runner");
    if cli.as_deref() == Some(wanted.as_str()) && runner.as_deref() == Some(wanted.as_str()) {
        return Ok(format!("{wanted} present"));
    }
    let had = cli.unwrap_or_else(|| "none".to_owned());
    println!("xtask: [install] wasm-bindgen-cli: have {had}, Cargo.lock wants {wanted} (~2 min)");
    // No `--locked`: the registry mirror lacks a version it pins. `--force` replaces another version.
    run(cargo(root).args([
        "install",
        "wasm-bindgen-cli",
        "--force",
        "--version",
        &wanted,
    ]))?;
    match installed_version("wasm-bindgen") {
        Some(now) if now == wanted => Ok(format!("{wanted} installed")),
        other => bail!(
            "installed wasm-bindgen-cli {wanted} but `wasm-bindgen --version` says {other:?}: \
             is ~/.cargo/bin first on PATH?"
        ),
    }
}

fn dpkg_installed(package: &str) -> bool {
    probe(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.contains("install ok installed"))
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    probe(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

/// `apt-get ARGS` as root (directly, or through `sudo -n` when not root), non-interactive.
fn apt_get(args: &[&str]) -> Command {
    let mut cmd = if is_root() {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "apt-get"]);
        sudo
    };
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

fn apt_packages() -> Result<String> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(package, program)| which(program).is_none() && !dpkg_installed(package))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        let names: Vec<&str> = APT_PACKAGES.iter().map(|(package, _)| *package).collect();
        return Ok(format!("present ({})", names.join(", ")));
    }
    if which("apt-get").is_none() {
        bail!(
            "missing {} and no apt-get here: install them yourself",
            missing.join(" ")
        );
    }
    run(&mut apt_get(&["update"]))?;
    run(apt_get(&["install", "-y"]).args(&missing))?;
    Ok(format!("installed {}", missing.join(" ")))
}

/// Installs PyPI `package` into the venv `venv` (relative to the root) unless `program` (the
/// script it provides) is already there.
fn pip_tool(root: &Path, venv: &str, package: &str, program: &Path) -> Result<String> {
    if program.is_file() {
        return Ok(format!("present ({venv})"));
    }
    let dir = root.join(venv);
    if !dir.join("bin").join("pip").is_file() {
        run(Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .current_dir(root))?;
    }
    run(Command::new(dir.join("bin").join("pip"))
        .args(["install", "--quiet", package])
        .current_dir(root))?;
    if !program.is_file() {
        bail!(
            "pip installed {package} but {} is missing",
            program.display()
        );
    }
    Ok(format!("installed into {venv}"))
}

/// Directories holding a `package.json` (the browser end-to-end tests' npm packages), at most
/// three levels below the root, skipping build output, dependencies and hidden directories.
pub fn npm_package_dirs(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
        if dir.join("package.json").is_file() {
            found.push(dir.to_path_buf());
        }
        if depth == 0 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut subdirs: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .filter(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                !(name.starts_with('.') || name == "target" || name == "node_modules")
            })
            .map(|entry| entry.path())
            .collect();
        subdirs.sort();
        for subdir in subdirs {
            walk(&subdir, depth - 1, found);
        }
    }
    let mut found = Vec::new();
    walk(root, 3, &mut found);
    found
}

fn npm_packages(root: &Path) -> Result<String> {
    let dirs = npm_package_dirs(root);
    if dirs.is_empty() {
        return Ok("no package.json in the repository yet: skipped".to_owned());
    }
    let mut done = Vec::new();
    for dir in &dirs {
        let shown = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
        if dir.join("node_modules").is_dir() {
            done.push(format!("{shown} present"));
            continue;
        }
        let verb = if dir.join("package-lock.json").is_file() {
            "ci"
        } else {
            "install"
        };
        run(Command::new("npm")
            .args([verb, "--no-audit", "--no-fund"])
            .current_dir(dir))?;
        done.push(format!("{shown} npm {verb}"));
    }
    Ok(done.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_missing_rustup_components() {
        let installed = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\n\
                         rust-std-wasm32-unknown-unknown\nrustc-x86_64-unknown-linux-gnu\n";
        assert_eq!(
            missing_components(installed, &["rustfmt", "clippy"]),
            ["rustfmt"]
        );
        let all = format!("{installed}rustfmt-x86_64-unknown-linux-gnu\n");
        assert!(missing_components(&all, &["rustfmt", "clippy"]).is_empty());
    }
}
