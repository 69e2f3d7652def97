//! `cargo xtask`: placeholder until the build driver lands.

fn main() {}
