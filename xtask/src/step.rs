//! Named, timed steps: one line when a step starts, one when it ends, and the step's name in
//! any error so a failure says where it happened.

use anyhow::Result;
use std::time::Instant;

/// Runs `f` as the step `name`, printing its start, its outcome and how long it took.
pub fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    println!("xtask: ▶ {name}");
    let started = Instant::now();
    let result = f();
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(value) => {
            println!("xtask: ✔ {name} ({secs:.1} s)");
            Ok(value)
        }
        Err(err) => {
            eprintln!("xtask: ✘ {name} FAILED ({secs:.1} s)");
            Err(err.context(format!("step `{name}` failed")))
        }
    }
}

/// Runs a check-then-maybe-install `f` as one line: `xtask: [install] NAME: OUTCOME (N s)`.
pub fn install_item(name: &str, f: impl FnOnce() -> Result<String>) -> Result<()> {
    let started = Instant::now();
    let result = f();
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(outcome) => {
            println!("xtask: [install] {name}: {outcome} ({secs:.1} s)");
            Ok(())
        }
        Err(err) => {
            eprintln!("xtask: [install] {name}: FAILED ({secs:.1} s)");
            Err(err.context(format!("step `install {name}` failed")))
        }
    }
}
