//! `zkwiki`: the command-line client of zkwiki. All logic is in the `zkwiki_cli` library; see
//! `zkwiki --help` for the commands and exit codes.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(zkwiki_cli::run(std::env::args_os()))
}
