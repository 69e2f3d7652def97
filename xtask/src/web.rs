//! The web build, shared by `test` and `serve`: the `web-wasm` crate compiled to WebAssembly,
//! wasm-bindgen's JS glue, `wasm-opt -Oz --converge`, the static files, and subresource-integrity
//! hashes.
//!
//! Output: [`WEB_OUT_DIR`](crate::paths::WEB_OUT_DIR) with `pkg/` (wasm + glue), the files of
//! `web-wasm/static/`, and `integrity.json` (`{"path": "sha384-…"}` for every JS, wasm and CSS file).

use crate::install::WASM_TARGET;
use crate::lockfile::{tool_version, wasm_bindgen_version};
use crate::paths::{TOOLS_DIR, target_dir, web_out_dir};
use crate::proc::{cargo, probe, run};
use crate::step::step;
use anyhow::{Context, Result, bail};
use data_encoding::{BASE64, HEXLOWER};
use sha2::{Digest, Sha384};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// npm's binaryen, whose `wasm-opt` handles this toolchain's modules (Debian's binaryen 108
/// silently breaks the externref table: see the toolchain notes).
pub const BINARYEN_NPM: &str = "binaryen@132.0.0";

/// The bundle-size target for the gzipped wasm.
const GZIP_TARGET_BYTES: usize = 500 * 1000;

/// Files whose integrity hash goes into `integrity.json`.
const HASHED_EXTENSIONS: &[&str] = &["js", "mjs", "wasm", "css"];

/// Builds the web app and returns its directory (absolute).
pub fn build(root: &Path) -> Result<PathBuf> {
    let web = web_out_dir(root);
    let pkg = web.join("pkg");
    let wanted = wasm_bindgen_version(root)?;
    let have = probe(Command::new("wasm-bindgen").arg("--version"))
        .and_then(|out| tool_version(&out).map(str::to_owned));
    if have.as_deref() != Some(wanted.as_str()) {
        bail!(
            "wasm-bindgen {} found, but Cargo.lock pins the wasm-bindgen crate at {wanted}: run \
             `cargo xtask test` without --no-install, or `cargo install wasm-bindgen-cli --version {wanted}`",
            have.as_deref().unwrap_or("not")
        );
    }

    step("web: cargo build -p web-wasm (wasm-release)", || {
        run(cargo(root)
            .args([
                "build",
                "-p",
                "web-wasm",
                "--target",
                WASM_TARGET,
                "--profile",
                "wasm-release",
            ])
            .args(speed_overrides())
            .env("CARGO_ENCODED_RUSTFLAGS", wasm_rust_flags(root)))
    })?;
    let input = target_dir(root)
        .join(WASM_TARGET)
        .join("wasm-release")
        .join("web_wasm.wasm");
    let input_bytes = fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
    let wasm_opt = wasm_opt(root);

    // wasm-bindgen and wasm-opt only when the module (or the tools) changed: wasm-opt is slow.
    let stamp_path = target_dir(root).join("web-build.stamp");
    let stamp = |optimized: bool| {
        let hash = HEXLOWER.encode(&Sha384::digest(&input_bytes));
        let flags = WASM_OPT_FLAGS.join(" ");
        format!("{hash} wasm-bindgen {wanted} wasm-opt {optimized} {BINARYEN_NPM} {flags}\n")
    };
    let bg_wasm = pkg.join("web_wasm_bg.wasm");
    let fresh = fs::read_to_string(&stamp_path).ok() == Some(stamp(wasm_opt.is_some()))
        && bg_wasm.is_file()
        && pkg.join("web_wasm.js").is_file();
    if fresh {
        println!(
            "xtask: web: module unchanged since the last build: reusing {}",
            pkg.display()
        );
    } else {
        let _ = fs::remove_file(&stamp_path);
        step("web: wasm-bindgen --target web", || {
            run(Command::new("wasm-bindgen")
                .args(["--target", "web", "--out-dir"])
                .arg(&pkg)
                .arg(&input)
                .current_dir(root))
        })?;
        let optimized = match &wasm_opt {
            Some(tool) => step("web: wasm-opt -Oz --converge (npm binaryen)", || {
                optimize(tool, &bg_wasm)
            })
            .map_err(|err| {
                eprintln!("xtask: web: WARNING: {err:#}; keeping the unoptimized module");
            })
            .is_ok(),
            None => {
                println!(
                    "xtask: web: wasm-opt unavailable (needs npx and npm package {BINARYEN_NPM}): \
                     the module is NOT size-optimized"
                );
                false
            }
        };
        fs::write(&stamp_path, stamp(optimized))?;
    }

    step("web: static files and integrity.json", || {
        let copied = stage_static(root, &web)?;
        if copied == 0 {
            println!("xtask: web: no web-wasm/static/ yet: only the wasm package is built");
        }
        let entries = integrity_entries(&web)?;
        fs::write(web.join("integrity.json"), json_object(&entries))?;
        apply_sri(&web, &entries)
    })?;
    report_size(&bg_wasm)?;
    println!("xtask: web app built in {}", web.display());
    Ok(web)
}

/// Crates on the page-navigation path (markdown parsing, SHA-256, XChaCha20-Poly1305), built at
/// `opt-level = 3` inside the size-optimised `wasm-release` profile: with them at `z`, verifying,
/// decrypting and rendering a 100 KiB page took about 1.7x as long in WebAssembly; they cost
/// about 15 KB of gzipped bundle (see the "Browser" section of docs/benchmarks.md). `web-wasm`
/// itself stays at `z`: at `s` it was about 1 ms faster on that page but cost another 20 KB,
/// most of the margin left under the 500 KB target. Generic code (pulldown-cmark's `Parser`,
/// the AEAD) is compiled where it is instantiated, so some of it still gets `z`.
pub const SPEED_CRATES: &[&str] = &[
    "pulldown-cmark",
    "memchr",
    "sha2",
    "chacha20",
    "poly1305",
    "chacha20poly1305",
    "universal-hash",
];

/// `--config` arguments that set [`SPEED_CRATES`] to `opt-level = 3` in the `wasm-release` profile.
pub fn speed_overrides() -> Vec<String> {
    SPEED_CRATES
        .iter()
        .flat_map(|krate| {
            [
                "--config".to_owned(),
                format!("profile.wasm-release.package.{krate}.opt-level=3"),
            ]
        })
        .collect()
}

/// WebAssembly SIMD (`simd128`, in every current browser): LLVM vectorises the portable
/// ChaCha20 and memchr's wasm backend uses it; XChaCha20-Poly1305 ran 1.2-1.4x faster in
/// interleaved runs (see the "Crypto core" section of docs/benchmarks.md).
const WASM_TARGET_FEATURES: &str = "-Ctarget-feature=+simd128";

/// Rust flags for the wasm build: [`WASM_TARGET_FEATURES`], and path remapping (below).
fn wasm_rust_flags(root: &Path) -> String {
    format!("{WASM_TARGET_FEATURES}\u{1f}{}", remap_flags(root))
}

/// Rust flags for the wasm build that replace this machine's paths (the cargo home and the
/// checkout, which panic locations embed in the module) with fixed ones, so a build from the same
/// sources and toolchain elsewhere yields the same bytes and the same integrity hashes. With
/// `--target`, these flags do not reach build scripts or proc macros.
fn remap_flags(root: &Path) -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut flags = Vec::new();
    if let Some(home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
    }
    flags.push(format!("--remap-path-prefix={}=/zkwiki", root.display()));
    flags.join("\u{1f}")
}

/// npm binaryen's `wasm-opt` from the tools cache, installing it there first if `npx` works.
/// `None` (and the build goes on unoptimized) when that is not possible.
fn wasm_opt(root: &Path) -> Option<PathBuf> {
    let tools = root.join(TOOLS_DIR);
    let bin = tools.join("node_modules").join(".bin").join("wasm-opt");
    if bin.is_file() {
        return Some(bin);
    }
    probe(Command::new("npx").arg("--version"))?;
    let installed = step(
        &format!("web: npm install {BINARYEN_NPM} into {TOOLS_DIR}"),
        || {
            fs::create_dir_all(&tools)?;
            run(Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&tools)
                .arg(BINARYEN_NPM))
        },
    );
    match installed {
        Ok(()) if bin.is_file() => Some(bin),
        Ok(()) => {
            eprintln!(
                "xtask: web: WARNING: npm installed binaryen but {} is missing",
                bin.display()
            );
            None
        }
        Err(err) => {
            eprintln!("xtask: web: WARNING: {err:#}");
            None
        }
    }
}

/// What `wasm-opt` runs: `-Os` until it stops shrinking the module (`--converge`), without the
/// `producers` and `target_features` sections, which only the tools before it read (wasm-bindgen
/// needs `target_features`, so it is stripped here, after it), knowing that the module's memory
/// starts zero-filled (it defines its memory rather than importing it, and WebAssembly zero-fills
/// a new memory), so the zero runs of its data segments need not be stored, and that nothing
/// lives in the lowest 1 KiB of memory (`--low-memory-unused`: Rust's stack grows down from
/// 1 MiB and its data sits above it, so only an address that wrapped around could land there;
/// the optimizer may then fold a constant added to a pointer into the load's offset).
/// `-Os` gzips smaller than `-Oz` here (its code is a little larger raw but more regular) and
/// inlines more. Measured on 2026-12-08 on the same module: `-Oz` 500.4 KB gzipped, `-Oz` with
/// `--low-memory-unused` 498.4 KB, `-Os` with it 497.7 KB (see the "Browser" section of
/// docs/benchmarks.md).
pub const WASM_OPT_FLAGS: &[&str] = &[
    "-Os",
    "--converge",
    "--strip-producers",
    "--strip-target-features",
    "--zero-filled-memory",
    "--low-memory-unused",
];

/// [`WASM_OPT_FLAGS`] on `wasm` in place (through a temporary file, so a failure leaves it intact).
fn optimize(tool: &Path, wasm: &Path) -> Result<()> {
    let tmp = wasm.with_extension("opt.wasm");
    run(Command::new(tool)
        .args(WASM_OPT_FLAGS)
        .arg(wasm)
        .arg("-o")
        .arg(&tmp))?;
    fs::rename(&tmp, wasm)?;
    Ok(())
}

/// Empties `web` except `pkg/`, then copies `web-wasm/static/` into it. Returns the file count.
fn stage_static(root: &Path, web: &Path) -> Result<usize> {
    for entry in fs::read_dir(web)? {
        let entry = entry?;
        if entry.file_name() == "pkg" {
            continue;
        }
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    let source = root.join("web-wasm").join("static");
    if !source.is_dir() {
        return Ok(0);
    }
    let files = files_under(&source)?;
    for file in &files {
        let relative = file.strip_prefix(&source)?;
        let dest = web.join(relative);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(file, &dest).with_context(|| format!("copying {}", file.display()))?;
    }
    Ok(files.len())
}

/// Every file below `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The subresource-integrity value of `bytes`: `sha384-` and the base64 SHA-384 digest.
pub fn sri(bytes: &[u8]) -> String {
    format!("sha384-{}", BASE64.encode(&Sha384::digest(bytes)))
}

/// The JS, wasm and CSS files below `web` with their integrity values: the path (relative,
/// `/`-separated, sorted) and `sha384-…`. `integrity.json` is this as a JSON object.
fn integrity_entries(web: &Path) -> Result<Vec<(String, String)>> {
    let mut entries = Vec::new();
    for file in files_under(web)? {
        let hashed = file
            .extension()
            .is_some_and(|ext| HASHED_EXTENSIONS.iter().any(|wanted| ext == *wanted));
        if !hashed {
            continue;
        }
        let relative = file.strip_prefix(web)?;
        let key: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        entries.push((key.join("/"), sri(&fs::read(&file)?)));
    }
    Ok(entries)
}

/// The placeholder the web app's HTML uses for a file's integrity value: `@sri:PATH@`, e.g.
/// `<script type="module" src="app.js" integrity="@sri:app.js@">`.
const SRI_PLACEHOLDER: (&str, &str) = ("@sri:", "@");

/// Replaces every `@sri:PATH@` in the HTML files of `web` with PATH's integrity value, so the
/// browser refuses a script, module, stylesheet or wasm module that differs from this build. A
/// placeholder naming a file that was not built is an error.
fn apply_sri(web: &Path, entries: &[(String, String)]) -> Result<()> {
    for file in files_under(web)? {
        if file.extension().is_none_or(|ext| ext != "html") {
            continue;
        }
        let html = fs::read_to_string(&file)?;
        let filled = fill_sri(&html, entries)
            .with_context(|| format!("filling integrity values into {}", file.display()))?;
        if filled != html {
            fs::write(&file, filled)?;
        }
    }
    Ok(())
}

/// [`apply_sri`] on one document.
fn fill_sri(html: &str, entries: &[(String, String)]) -> Result<String> {
    let (open, close) = SRI_PLACEHOLDER;
    let mut out = String::with_capacity(html.len() + 512);
    let mut rest = html;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(close) else {
            bail!("unterminated {open}…{close} placeholder");
        };
        let path = &after[..end];
        let Some((_, value)) = entries.iter().find(|(p, _)| p == path) else {
            bail!("{open}{path}{close} names a file that is not in the build");
        };
        out.push_str(value);
        rest = &after[end + close.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A pretty-printed JSON object of string pairs, in the given order.
pub fn json_object(entries: &[(String, String)]) -> String {
    let body: Vec<String> = entries
        .iter()
        .map(|(key, value)| format!("  {}: {}", json_string(key), json_string(value)))
        .collect();
    if body.is_empty() {
        "{}\n".to_owned()
    } else {
        format!("{{\n{}\n}}\n", body.join(",\n"))
    }
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Prints the wasm's raw and gzipped size (gzip -9), warning above the 500 KB target.
fn report_size(wasm: &Path) -> Result<()> {
    let raw = fs::metadata(wasm)?.len();
    let gzipped = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(wasm)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| out.stdout.len());
    let kb = |bytes: f64| bytes / 1000.0;
    match gzipped {
        Some(gz) => {
            println!(
                "xtask: web: web_wasm_bg.wasm is {:.1} KB, {:.1} KB gzipped (target < {} KB gzipped)",
                kb(raw as f64),
                kb(gz as f64),
                GZIP_TARGET_BYTES / 1000
            );
            if gz > GZIP_TARGET_BYTES {
                println!("xtask: web: WARNING: the gzipped wasm is over the size target");
            }
        }
        None => println!(
            "xtask: web: web_wasm_bg.wasm is {:.1} KB (no gzip here)",
            kb(raw as f64)
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sri_matches_a_known_value() {
        // `printf abc | openssl dgst -sha384 -binary | base64`
        assert_eq!(
            sri(b"abc"),
            "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn"
        );
    }

    #[test]
    fn sri_placeholders_are_filled() {
        let entries = vec![("app.js".to_owned(), "sha384-A".to_owned())];
        assert_eq!(
            fill_sri(
                r#"<script src="app.js" integrity="@sri:app.js@"></script>"#,
                &entries
            )
            .unwrap(),
            r#"<script src="app.js" integrity="sha384-A"></script>"#
        );
        assert!(fill_sri("@sri:missing.js@", &entries).is_err());
        assert!(fill_sri("@sri:app.js", &entries).is_err());
        assert_eq!(
            fill_sri("no placeholders", &entries).unwrap(),
            "no placeholders"
        );
    }

    #[test]
    fn json_is_escaped_and_ordered() {
        let entries = vec![
            ("a\"b.js".to_owned(), "x\\y".to_owned()),
            ("pkg/web_wasm.js".to_owned(), "sha384-z".to_owned()),
        ];
        assert_eq!(
            json_object(&entries),
            "{\n  \"a\\\"b.js\": \"x\\\\y\",\n  \"pkg/web_wasm.js\": \"sha384-z\"\n}\n"
        );
        assert_eq!(json_object(&[]), "{}\n");
        assert_eq!(json_string("\u{1}"), "\"\\u0001\"");
    }
}
