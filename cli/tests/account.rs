//! Account upkeep against the real server: `passwd` (a new passphrase) and `recovery-key` (a new
//! recovery key): the new secret works on this machine and on a fresh one, the old one no longer
//! does, and refused requests change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, PASSPHRASE, Server};

const NEW: &str = "a brand new passphrase";

fn with_passphrase(env: &Env, passphrase: &str, args: &[&str]) -> (i32, String) {
    let out = env
        .cmd(args)
        .env("ZKWIKI_PASSPHRASE", passphrase)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn passwd_and_recovery_key() {
    let server = Server::start();
    let mut alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "notes");
    alice.put("Plan.md", "# Plan\nship it\n");

    // Too short: refused before anything changes.
    alice
        .vars
        .push(("ZKWIKI_NEW_PASSPHRASE".into(), "short".into()));
    let err = alice.fails(&["passwd"], 2);
    assert!(err.contains("shorter than 10"), "{err}");
    alice.vars.pop();
    assert_eq!(
        with_passphrase(&alice, PASSPHRASE, &["cat", "Plan.md"]).0,
        0
    );

    // A new passphrase: the old one stops working here and at login; the new one works.
    alice
        .vars
        .push(("ZKWIKI_NEW_PASSPHRASE".into(), NEW.into()));
    let out = alice.json(&["passwd"]);
    assert_eq!(out["protector"], "passphrase", "{out}");
    alice.vars.pop();
    let (code, err) = with_passphrase(&alice, PASSPHRASE, &["cat", "Plan.md"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(with_passphrase(&alice, NEW, &["cat", "Plan.md"]).0, 0);
    let laptop = Env::new(Some(&server));
    let (code, err) = with_passphrase(&laptop, PASSPHRASE, &["login", "alice"]);
    assert_eq!(code, 3, "{err}");
    let (code, err) = with_passphrase(&laptop, NEW, &["login", "alice"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = with_passphrase(&laptop, NEW, &["--wiki", &wiki, "cat", "Plan.md"]);
    assert_eq!(code, 0, "{err}");

    // A new recovery key: written to the file, the old one refused, the new one accepted.
    let old_recovery = alice.path("recovery.txt");
    let new_recovery = alice.path("recovery-2.txt");
    let (code, err) = with_passphrase(
        &alice,
        NEW,
        &["recovery-key", "--out", old_recovery.to_str().unwrap()],
    );
    assert_eq!(code, 2, "an existing file is refused first: {err}");
    let (code, err) = with_passphrase(
        &alice,
        NEW,
        &["recovery-key", "--out", new_recovery.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(&new_recovery)
            .unwrap()
            .starts_with("ZKR1-")
    );
    let phone = Env::new(Some(&server));
    let (code, err) = with_passphrase(
        &phone,
        NEW,
        &[
            "login",
            "alice",
            "--recovery-key-file",
            old_recovery.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("recovery key"), "{err}");
    let (code, err) = with_passphrase(
        &phone,
        "the third passphrase",
        &[
            "login",
            "alice",
            "--recovery-key-file",
            new_recovery.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");

    // Account changes need the account's own sealed identity and a session. (This machine's copy
    // of the sealed identity still opens with the passphrase it was sealed under.)
    let key = alice.path("alice.key");
    assert_eq!(
        with_passphrase(&alice, NEW, &["key", "export", key.to_str().unwrap()]).0,
        0
    );
    let err = alice.fails(&["--key-file", key.to_str().unwrap(), "passwd"], 2);
    assert!(err.contains("not a key file"), "{err}");
    alice.ok(&["logout"]);
    let (code, err) = with_passphrase(&alice, NEW, &["recovery-key"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not logged in"), "{err}");
}

/// The server's lockout lets a known device in while its address is throttled: the CLI keeps
/// the device token of its login (0600, in the profile) and presents it at the next login, so
/// a password sprayer on the same address (a shared NAT) does not lock alice out of her laptop.
#[test]
fn a_known_device_logs_in_while_its_address_is_throttled() {
    // No attempt given back during the test: with the default (one every 6 s), a run slower
    // than that regained one between the spray and the fresh machine's login, which got in.
    let server = Server::start_with(&["--login-refill", "3600"]);
    let alice = Env::new(Some(&server));
    alice.setup("alice", "notes");
    let device = alice.profile_dir().join("device");
    let token = std::fs::read_to_string(&device).expect("the login kept a device token");
    assert!(token.len() >= 32, "{token}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&device).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the device token is private: {mode:o}");
    }

    // A sprayer on the same address tries one password on many names until it is throttled.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut throttled = 0;
    for i in 0..130 {
        let body = serde_json::json!({
            "user": format!("user{i}"), "protector": "passphrase", "auth": "ab".repeat(32),
        });
        let status = agent
            .post(format!("{}/api/v1/login", server.url))
            .send_json(&body)
            .unwrap()
            .status();
        if status == 429 {
            throttled += 1;
        }
    }
    // The address's 100 failures, then every attempt refused.
    assert_eq!(throttled, 30, "the sprayer is throttled");

    // A machine that never logged in as alice is throttled with the sprayer…
    let fresh = Env::new(Some(&server));
    let (code, err) = with_passphrase(&fresh, PASSPHRASE, &["login", "alice"]);
    assert_ne!(code, 0, "{err}");
    // …alice's laptop presents its token and gets in, keeping the same token.
    let (code, err) = with_passphrase(&alice, PASSPHRASE, &["login", "alice"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&device).unwrap(), token);
}
