//! Where things are: the repository root, cargo's target dir, the built web app, installed tools.

use std::path::{Path, PathBuf};

/// The built web app (what `zkwiki-server --web-dir` serves), relative to the repository root.
/// The one place this path is spelled.
pub const WEB_OUT_DIR: &str = "target/web";

/// Cache for npm-installed build tools (binaryen's `wasm-opt`), relative to the repository root.
pub const TOOLS_DIR: &str = "target/tools";

/// The Python venv holding moto (a local AWS KMS for tests), relative to the repository root.
pub const MOTO_VENV: &str = ".venv-moto";

/// The Python venv holding cargo-lambda (its Lambda emulator runs the server's Lambda entry
/// point in tests), relative to the repository root.
pub const LAMBDA_VENV: &str = ".venv-lambda";

/// The `cargo-lambda` program inside [`LAMBDA_VENV`] (absolute).
pub fn cargo_lambda(root: &Path) -> PathBuf {
    root.join(LAMBDA_VENV).join("bin").join("cargo-lambda")
}

/// The repository root (the workspace that contains this crate).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else `<root>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// The built web app directory (absolute).
pub fn web_out_dir(root: &Path) -> PathBuf {
    root.join(WEB_OUT_DIR)
}

/// moto's server script inside [`MOTO_VENV`] (absolute).
pub fn moto_server(root: &Path) -> PathBuf {
    root.join(MOTO_VENV).join("bin").join("moto_server")
}

/// The first `name` on `$PATH` that is a file, like `command -v`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
