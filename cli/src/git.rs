//! The `git` command-line tool, driven through `std::process`: clone, fetch, reading trees and
//! blobs (`git cat-file --batch`, one process for any number of objects), and history.
//!
//! Tokens never appear in a URL or in `.git/config`: git asks `zkwiki credential` (a credential
//! helper given on the command line with `-c`, or configured by `clone` as a command without the
//! token), which reads the session file.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{CliError, ErrorKind, Result};

/// One entry of `git ls-tree -r`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// Object type (`blob`, `commit` for submodules).
    pub kind: String,
    /// Object id.
    pub oid: String,
    /// Path in the tree.
    pub path: String,
}

/// A repository (bare or with a work tree) at a folder.
#[derive(Clone, Debug)]
pub struct Git {
    dir: PathBuf,
}

fn git_missing(e: std::io::Error) -> CliError {
    CliError::general(format!("cannot run git: {e}"))
        .with_hint("install git (e.g. apt-get install git) and make sure it is on PATH")
}

/// A `git` command with a predictable environment (no prompts, C locale).
pub fn git_command() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE");
    cmd
}

/// Quotes a path for the shell git runs helpers with.
pub fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `zkwiki` binary to name in helpers (this executable).
pub fn self_exe() -> Result<PathBuf> {
    std::env::current_exe()
        .map_err(|e| CliError::general(format!("cannot locate the zkwiki executable: {e}")))
}

/// `-c` arguments that make git ask `zkwiki credential` for the token (and no other helper, so
/// the token is never stored by one).
pub fn credential_config() -> Result<Vec<String>> {
    credential_config_for(None)
}

/// Like [`credential_config`], with the helper reading the token from an agent key file.
pub fn credential_config_for(key_file: Option<&std::path::Path>) -> Result<Vec<String>> {
    let key = match key_file {
        Some(k) => format!(
            " --key-file {}",
            shell_quote(&std::path::absolute(k).map_err(|e| CliError::io(k.display(), e))?)
        ),
        None => String::new(),
    };
    Ok(vec![
        "-c".into(),
        "credential.helper=".into(),
        "-c".into(),
        format!(
            "credential.helper=!{}{key} credential",
            shell_quote(&self_exe()?)
        ),
    ])
}

/// Runs a command, returning stdout; a failure carries git's first stderr line.
pub fn run(mut cmd: Command, what: &str) -> Result<Vec<u8>> {
    let out = cmd.stdin(Stdio::null()).output().map_err(git_missing)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no message)")
            .trim()
            .to_owned();
        let kind = if first.contains("Authentication failed")
            || first.contains("could not read Username")
            || first.contains("401")
        {
            ErrorKind::Auth
        } else if first.contains("Could not resolve host")
            || first.contains("Failed to connect")
            || first.contains("Connection refused")
        {
            ErrorKind::Network
        } else {
            ErrorKind::General
        };
        let mut err = CliError::new(kind, format!("{what} failed: git: {first}"));
        if kind == ErrorKind::Auth {
            err = err.with_hint("run `zkwiki login` (the session may have expired)");
        }
        return Err(err);
    }
    Ok(out.stdout)
}

impl Git {
    /// The repository at `dir`.
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `git -C dir ARGS`.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = git_command();
        cmd.arg("-C").arg(&self.dir).args(args);
        cmd
    }

    /// Runs `git -C dir ARGS` and returns stdout.
    pub fn run<I, S>(&self, args: I, what: &str) -> Result<Vec<u8>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run(self.command(args), what)
    }

    /// The object id `rev` names, or `None`.
    pub fn rev_parse(&self, rev: &str) -> Result<Option<String>> {
        let out = self
            .command([
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(git_missing)?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// Whether this folder is a git repository.
    pub fn is_repo(&self) -> bool {
        self.command(["rev-parse", "--git-dir"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Every file of a commit's tree.
    pub fn ls_tree(&self, rev: &str) -> Result<Vec<TreeEntry>> {
        let out = self.run(
            ["ls-tree", "-r", "-z", "--full-tree", rev],
            "reading the tree",
        )?;
        let mut entries = Vec::new();
        for item in out.split(|&b| b == 0).filter(|i| !i.is_empty()) {
            let text = String::from_utf8_lossy(item);
            let (meta, path) = text
                .split_once('\t')
                .ok_or_else(|| CliError::general("unexpected `git ls-tree` output"))?;
            let mut parts = meta.split(' ');
            let (_mode, kind, oid) = (parts.next(), parts.next(), parts.next());
            entries.push(TreeEntry {
                kind: kind.unwrap_or_default().to_owned(),
                oid: oid.unwrap_or_default().to_owned(),
                path: path.to_owned(),
            });
        }
        Ok(entries)
    }

    /// Reads objects by spec (an object id, or `rev:path`) in one `git cat-file --batch`.
    /// A missing object yields `None`.
    pub fn read_blobs(&self, specs: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let mut child = self
            .command(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(git_missing)?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| CliError::general("git cat-file: no stdin"))?;
        let input: Vec<u8> = specs
            .iter()
            .flat_map(|s| s.bytes().chain(std::iter::once(b'\n')))
            .collect();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| CliError::general("git cat-file: no stdout"))?;
        let mut reader = BufReader::with_capacity(1 << 20, stdout);
        let mut out = Vec::with_capacity(specs.len());
        let broken = |header: &str| {
            if header.is_empty() {
                CliError::general(format!(
                    "`git cat-file` stopped early in {} (was the repository removed?)",
                    self.dir.display()
                ))
            } else {
                CliError::general(format!(
                    "unexpected `git cat-file` output {:?} in {}",
                    client::display::escape(header),
                    self.dir.display()
                ))
            }
        };
        for _ in specs {
            let mut header = Vec::new();
            reader.read_until(b'\n', &mut header)?;
            let header = String::from_utf8_lossy(&header).trim_end().to_owned();
            if header.ends_with(" missing") || header.ends_with(" ambiguous") {
                out.push(None);
                continue;
            }
            let size: usize = header
                .rsplit(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| broken(&header))?;
            let mut data = vec![0u8; size];
            reader.read_exact(&mut data)?;
            let mut nl = [0u8; 1];
            reader.read_exact(&mut nl)?;
            out.push(Some(data));
        }
        let _ = writer.join();
        let _ = child.wait();
        Ok(out)
    }

    /// Commits reachable from `rev` along first parents, newest first.
    pub fn first_parent_history(&self, rev: &str) -> Result<Vec<String>> {
        let out = self.run(["rev-list", "--first-parent", rev], "reading history")?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_owned)
            .collect())
    }
}
