//! Output: human text or `--json` on standard output, notes on standard error, progress bars.
//!
//! Writes go through `writeln!` (never `println!`) so a closed pipe becomes an error the binary
//! treats as success instead of a panic.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::{CliError, Result};

/// Where and how to print.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    /// `--json`: print one JSON document on standard output.
    pub json: bool,
    /// `--quiet`: no notes, no progress bars.
    pub quiet: bool,
}

impl Out {
    /// Prints one line of data on standard output.
    pub fn line(&self, text: impl std::fmt::Display) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}").map_err(|e| CliError::io("writing to standard output", e))
    }

    /// Prints many lines of data on standard output in few writes (a 10,000-line `ls` through a
    /// line-buffered stdout is 10,000 system calls).
    pub fn lines<T: std::fmt::Display>(&self, lines: impl IntoIterator<Item = T>) -> Result<()> {
        let mut stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        lines
            .into_iter()
            .try_for_each(|l| writeln!(stdout, "{l}"))
            .and_then(|()| stdout.flush())
            .map_err(|e| CliError::io("writing to standard output", e))
    }

    /// Writes raw bytes to standard output (for `cat`).
    pub fn raw(&self, bytes: &[u8]) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(bytes)
            .and_then(|()| stdout.flush())
            .map_err(|e| CliError::io("writing to standard output", e))
    }

    /// Prints a JSON value (pretty) on standard output.
    pub fn json_value(&self, value: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::general(format!("encoding JSON: {e}")))?;
        self.line(text)
    }

    /// A status note for people, on standard error (silent with `--quiet` or `--json`).
    pub fn note(&self, text: impl std::fmt::Display) {
        if !self.quiet && !self.json {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    /// A warning on standard error (always shown, also with `--json`).
    pub fn warn(&self, text: impl std::fmt::Display) {
        let _ = writeln!(std::io::stderr().lock(), "warning: {text}");
    }

    /// A progress bar for `len` steps; hidden unless standard error is a terminal.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        bar
    }
}

/// With `ZKWIKI_TIMING=1`, prints how long a phase took on standard error (for benchmarks).
pub fn timing(phase: &str, since: std::time::Instant) {
    if std::env::var_os("ZKWIKI_TIMING").is_some_and(|v| v == "1") {
        let ms = since.elapsed().as_secs_f64() * 1000.0;
        let _ = writeln!(std::io::stderr().lock(), "timing: {phase}: {ms:.1} ms");
    }
}

/// `n` and the word, in the singular or the plural: `1 page`, `2 pages`.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}
