//! Command-line parsing (by hand: two subcommands do not need a parser crate).

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

/// Printed by `cargo xtask help` and on a usage error.
pub const USAGE: &str = "\
usage:
  cargo xtask test  [--quick] [--no-install] [-- FILTER...]
      install what is missing, then fmt, clippy, doc, web build, cargo test, wasm tests
      --quick       skip clippy, doc and the WebAssembly tests
      --no-install  skip the install step (fast inner loop)
      FILTER...     passed to the test harness (e.g. a test name, --nocapture)
  cargo xtask serve [--listen ADDR | --port N] [--data-dir DIR] [--no-install]
      build the web app and run zkwiki-server (default 127.0.0.1:8080, data in ./data)
  cargo xtask postgres [--stop]
      start a private PostgreSQL for `cargo test` and print the line to export
      (`eval $(cargo xtask postgres)`); --stop stops it";

/// Default address of `cargo xtask serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Test(TestOpts),
    Serve(ServeOpts),
    /// Start (or, with `true`, stop) the developer's test PostgreSQL.
    Postgres {
        stop: bool,
    },
    Help,
}

/// Options of `cargo xtask test`.
#[derive(Debug, PartialEq, Eq)]
pub struct TestOpts {
    pub quick: bool,
    pub install: bool,
    /// Arguments for the test harness (after `--`, or bare words).
    pub filter: Vec<String>,
}

/// Options of `cargo xtask serve`.
#[derive(Debug, PartialEq, Eq)]
pub struct ServeOpts {
    pub listen: String,
    /// `None` means `./data` at the repository root.
    pub data_dir: Option<PathBuf>,
    pub install: bool,
}

/// Parses the arguments after `cargo xtask`.
pub fn parse(argv: &[String]) -> Result<Command> {
    let Some((sub, rest)) = argv.split_first() else {
        return Ok(Command::Help);
    };
    match sub.as_str() {
        "test" => parse_test(rest).map(Command::Test),
        "serve" => parse_serve(rest).map(Command::Serve),
        "postgres" => match rest {
            [] => Ok(Command::Postgres { stop: false }),
            [flag] if flag == "--stop" => Ok(Command::Postgres { stop: true }),
            _ => bail!("`postgres` takes only --stop\n{USAGE}"),
        },
        "help" | "-h" | "--help" => Ok(Command::Help),
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

fn parse_test(argv: &[String]) -> Result<TestOpts> {
    let mut opts = TestOpts {
        quick: false,
        install: true,
        filter: Vec::new(),
    };
    let mut iter = argv.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--no-install" => opts.install = false,
            "--" => {
                opts.filter.extend(iter.by_ref().cloned());
            }
            flag if flag.starts_with('-') => bail!("unknown option `{flag}` for `test`\n{USAGE}"),
            word => opts.filter.push(word.to_owned()),
        }
    }
    Ok(opts)
}

fn parse_serve(argv: &[String]) -> Result<ServeOpts> {
    let mut listen = None;
    let mut port = None;
    let mut data_dir = None;
    let mut install = true;
    let mut iter = argv.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String> {
            match inline.clone() {
                Some(value) => Ok(value),
                None => iter
                    .next()
                    .cloned()
                    .with_context(|| format!("`{flag}` needs a value")),
            }
        };
        match flag {
            "--listen" => listen = Some(value()?),
            "--port" => {
                let text = value()?;
                let number: u16 = text
                    .parse()
                    .with_context(|| format!("`--port {text}`: not a port number"))?;
                port = Some(number);
            }
            "--data-dir" => data_dir = Some(PathBuf::from(value()?)),
            "--no-install" => install = false,
            other => bail!("unknown argument `{other}` for `serve`\n{USAGE}"),
        }
    }
    let listen = match (listen, port) {
        (Some(_), Some(_)) => bail!("give either `--listen ADDR` or `--port N`, not both"),
        (Some(addr), None) => addr,
        (None, Some(port)) => format!("127.0.0.1:{port}"),
        (None, None) => DEFAULT_LISTEN.to_owned(),
    };
    Ok(ServeOpts {
        listen,
        data_dir,
        install,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn test_flags_and_filter() {
        let parsed = parse(&args(&[
            "test",
            "--quick",
            "--no-install",
            "--",
            "flow",
            "--nocapture",
        ]));
        assert_eq!(
            parsed.unwrap(),
            Command::Test(TestOpts {
                quick: true,
                install: false,
                filter: args(&["flow", "--nocapture"]),
            })
        );
        let bare = parse(&args(&["test", "keyring"])).unwrap();
        assert_eq!(
            bare,
            Command::Test(TestOpts {
                quick: false,
                install: true,
                filter: args(&["keyring"])
            })
        );
        assert!(parse(&args(&["test", "--bogus"])).is_err());
    }

    #[test]
    fn postgres_start_and_stop() {
        assert_eq!(
            parse(&args(&["postgres"])).unwrap(),
            Command::Postgres { stop: false }
        );
        assert_eq!(
            parse(&args(&["postgres", "--stop"])).unwrap(),
            Command::Postgres { stop: true }
        );
        assert!(parse(&args(&["postgres", "--bogus"])).is_err());
    }

    #[test]
    fn serve_defaults_and_overrides() {
        let default = parse(&args(&["serve"])).unwrap();
        assert_eq!(
            default,
            Command::Serve(ServeOpts {
                listen: DEFAULT_LISTEN.to_owned(),
                data_dir: None,
                install: true,
            })
        );
        let port = parse(&args(&["serve", "--port", "9000", "--data-dir=/tmp/d"])).unwrap();
        assert_eq!(
            port,
            Command::Serve(ServeOpts {
                listen: "127.0.0.1:9000".to_owned(),
                data_dir: Some(PathBuf::from("/tmp/d")),
                install: true,
            })
        );
        let listen = parse(&args(&["serve", "--listen=0.0.0.0:80", "--no-install"])).unwrap();
        assert_eq!(
            listen,
            Command::Serve(ServeOpts {
                listen: "0.0.0.0:80".to_owned(),
                data_dir: None,
                install: false,
            })
        );
        assert!(parse(&args(&["serve", "--port", "80", "--listen", "x:1"])).is_err());
        assert!(parse(&args(&["serve", "--port", "99999"])).is_err());
        assert!(parse(&args(&["serve", "--listen"])).is_err());
    }
}
