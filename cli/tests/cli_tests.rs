//! trycmd snapshots: `--help` of every command and the main error messages, with exit codes.
//! Regenerate after an intended change with `TRYCMD=overwrite cargo test -p cli --test cli_tests`.

#[test]
fn cli_tests() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}
