//! KMS mode end to end: a user's key file and an agent's identity protected by AWS KMS, against a
//! real KMS API on loopback (`moto_server`, installed by `cargo xtask test`) and the real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

use common::{Env, Server, git};
use key_protector::moto::{MotoServer, TEST_ENV};
use serde_json::Value;

fn aws_env(env: &mut Env, endpoint: &str) {
    for (k, v) in TEST_ENV {
        env.vars.push((k.into(), v.into()));
    }
    env.vars
        .push(("ZKWIKI_KMS_ENDPOINT".into(), endpoint.to_owned()));
}

#[test]
fn kms_protected_user_and_agent_keys() {
    let moto = MotoServer::start();
    let kms = moto.protector("");
    let key_id = moto.create_key();

    let server = Server::start();
    let mut alice = Env::new(Some(&server));
    aws_env(&mut alice, &moto.endpoint);
    let wiki = alice.setup("alice", "ops");
    alice.put("Runbook.md", "# Runbook\nrestart the flux capacitor\n");

    // A KMS-protected key file holds no usable secret on its own.
    let key = alice.path("alice-kms.json");
    let key_s = key.to_str().unwrap().to_owned();
    alice.ok(&["key", "export", &key_s, "--kms-key", &key_id]);
    let file: Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
    assert_eq!(file["secret"], "", "{file}");
    assert!(file["kms"]["wrapped_key"].is_string());

    // The user reads and writes with it (no passphrase: KMS unwraps the protector key).
    let mut no_pass = Env::new(Some(&server));
    aws_env(&mut no_pass, &moto.endpoint);
    no_pass
        .vars
        .push(("ZKWIKI_PASSPHRASE".into(), "wrong passphrase".into()));
    // Reuse alice's session (the data folder) but not her passphrase.
    let run = |args: &[&str]| {
        let mut cmd = alice.cmd(args);
        cmd.env("ZKWIKI_PASSPHRASE", "wrong passphrase");
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["--key-file", &key_s, "cat", "Runbook.md"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("flux capacitor"));
    let (code, _, err) = run(&["cat", "Runbook.md"]);
    assert_eq!(
        code, 3,
        "without the key file the wrong passphrase fails: {err}"
    );
    alice.ok(&["--key-file", &key_s, "put", "Runbook.md", &{
        let p = alice.path("new.md");
        std::fs::write(&p, "# Runbook\nv2 via KMS\n").unwrap();
        p.to_str().unwrap().to_owned()
    }]);

    // Offline: a plain git copy of the ciphertext, the server stopped, KMS still reachable.
    let clone = alice.path("clone.git");
    git(
        &alice.work(),
        &[
            "clone",
            "--quiet",
            "--bare",
            server.repo(&wiki).to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    server.stop();
    let out_dir = alice.path("plain");
    alice.ok(&[
        "--key-file",
        &key_s,
        "decrypt",
        clone.to_str().unwrap(),
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("Runbook.md")).unwrap(),
        "# Runbook\nv2 via KMS\n"
    );

    // Another user name in the file: KMS itself refuses (encryption context).
    let mut forged = file.clone();
    forged["user"] = Value::String("mallory".into());
    let forged_path = alice.path("forged.json");
    std::fs::write(&forged_path, serde_json::to_vec(&forged).unwrap()).unwrap();
    let err = alice.fails(
        &[
            "--key-file",
            forged_path.to_str().unwrap(),
            "decrypt",
            clone.to_str().unwrap(),
            alice.path("x").to_str().unwrap(),
        ],
        3,
    );
    assert!(err.contains("encryption context"), "{err}");

    // A disabled key fails clearly; re-enabled it works again.
    kms.block_on(kms.client().disable_key().key_id(&key_id).send())
        .unwrap();
    let err = alice.fails(
        &[
            "--key-file",
            &key_s,
            "decrypt",
            clone.to_str().unwrap(),
            alice.path("y").to_str().unwrap(),
        ],
        3,
    );
    assert!(err.contains("disabled"), "{err}");
    assert!(!alice.path("y").exists(), "nothing written on failure");
    kms.block_on(kms.client().enable_key().key_id(&key_id).send())
        .unwrap();

    // KMS unreachable: offline decryption says it needs KMS.
    drop(moto);
    let err = alice.fails(
        &[
            "--key-file",
            &key_s,
            "decrypt",
            clone.to_str().unwrap(),
            alice.path("z").to_str().unwrap(),
        ],
        7,
    );
    assert!(err.contains("needs KMS"), "{err}");
}

#[test]
fn kms_protected_agent() {
    let moto = MotoServer::start();
    let key_id = moto.create_key();
    let server = Server::start();
    let mut alice = Env::new(Some(&server));
    aws_env(&mut alice, &moto.endpoint);
    alice.setup("alice", "ops");
    alice.put("Notes.md", "# Notes\nfor the bot\n");
    let bot = alice.path("bot.json");
    alice.ok(&[
        "agent",
        "grant",
        "bot",
        "--role",
        "write",
        "--expires",
        "1h",
        "--kms-key",
        &key_id,
        "--out",
        bot.to_str().unwrap(),
    ]);
    let file: Value = serde_json::from_slice(&std::fs::read(&bot).unwrap()).unwrap();
    assert_eq!(file["secret"], "");
    let mut agent = Env::new(Some(&server));
    aws_env(&mut agent, &moto.endpoint);
    let out = agent.ok(&["--key-file", bot.to_str().unwrap(), "cat", "Notes.md"]);
    assert!(out.contains("for the bot"));
    // Without AWS credentials for KMS, the agent cannot unlock its identity.
    let bare = Env::new(Some(&server));
    let r = bare.run(&["--key-file", bot.to_str().unwrap(), "cat", "Notes.md"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
}

/// An account registered with a KMS key instead of a passphrase, used from a second machine that
/// has only the KMS key (an EC2 role, say): log in, read, write, clone and decrypt offline; the
/// wrong user, the wrong key, a disabled key and an unreachable KMS fail clearly; the recovery key
/// still works and can move the account to another KMS key.
#[test]
fn kms_account_register_and_login_elsewhere() {
    let moto = MotoServer::start();
    let kms = moto.protector("");
    let key_id = moto.create_key();
    let other_key = moto.create_key();
    let server = Server::start();

    let mut laptop = Env::new(Some(&server));
    aws_env(&mut laptop, &moto.endpoint);
    laptop
        .vars
        .push(("ZKWIKI_PASSPHRASE".into(), "never used".into()));
    let reg = laptop.json(&[
        "register",
        "svc",
        "--kms-key",
        &key_id,
        "--recovery-key-out",
        "recovery.txt",
    ]);
    assert_eq!(reg["protector"], "kms", "{reg}");
    let who = laptop.json(&["whoami"]);
    assert_eq!(who["protector"], "kms", "{who}");
    let out = laptop.ok(&["--json", "wiki", "create", "ops"]);
    let wiki: Value = serde_json::from_str(&out).unwrap();
    let wiki = wiki["wiki"].as_str().unwrap().to_owned();
    laptop.put("Runbook.md", "# Runbook\nturn it off and on\n");

    // The account has no passphrase: a passphrase login is refused like any wrong secret.
    let err = laptop.fails(&["login", "svc"], 3);
    assert!(err.contains("wrong"), "{err}");

    // A second machine with only KMS access logs in by key id (resolved to the ARN).
    let mut ec2 = Env::new(Some(&server));
    aws_env(&mut ec2, &moto.endpoint);
    ec2.vars
        .push(("ZKWIKI_PASSPHRASE".into(), "not this either".into()));
    let login = ec2.json(&["login", "svc", "--kms-key", &key_id]);
    assert_eq!(login["fingerprint"], reg["fingerprint"], "{login}");
    ec2.vars.push(("ZKWIKI_WIKI".into(), wiki.clone()));
    assert!(
        ec2.ok(&["cat", "Runbook.md"])
            .contains("turn it off and on")
    );
    ec2.put("Runbook.md", "# Runbook\nv2 from the instance\n");
    assert!(
        laptop
            .ok(&["cat", "Runbook.md"])
            .contains("v2 from the instance")
    );

    // Clone, then decrypt offline with the server stopped (KMS still reachable).
    let clone = ec2.path("clone.git");
    git(
        &ec2.work(),
        &[
            "clone",
            "--quiet",
            "--bare",
            server.repo(&wiki).to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );

    // The wrong user name, or the right user with another KMS key: the same clear refusal, and
    // nothing is saved on the machine.
    let mut stranger = Env::new(Some(&server));
    aws_env(&mut stranger, &moto.endpoint);
    for (user, key) in [("mallory", key_id.as_str()), ("svc", other_key.as_str())] {
        let err = stranger.fails(&["login", user, "--kms-key", key], 3);
        assert!(err.contains("wrong user name or KMS key"), "{err}");
    }
    let err = stranger.fails(&["whoami"], 3);
    assert!(err.contains("not logged in"), "{err}");

    // A disabled key: login fails saying so; enabled again, it works.
    kms.block_on(kms.client().disable_key().key_id(&key_id).send())
        .unwrap();
    let err = stranger.fails(&["login", "svc", "--kms-key", &key_id], 3);
    assert!(err.contains("disabled"), "{err}");
    kms.block_on(kms.client().enable_key().key_id(&key_id).send())
        .unwrap();

    // The recovery key moves the account to another KMS key; the first one stops working.
    let recovery = laptop.path("recovery.txt");
    laptop.ok(&[
        "login",
        "svc",
        "--recovery-key-file",
        recovery.to_str().unwrap(),
        "--kms-key",
        &other_key,
    ]);
    let err = stranger.fails(&["login", "svc", "--kms-key", &key_id], 3);
    assert!(err.contains("wrong user name or KMS key"), "{err}");
    stranger.ok(&["login", "svc", "--kms-key", &other_key]);

    // `passwd` on a KMS account (unlocked through KMS) adds a passphrase; both then log in.
    laptop.vars.push((
        "ZKWIKI_NEW_PASSPHRASE".into(),
        "now with a passphrase".into(),
    ));
    let out = laptop.json(&["passwd"]);
    assert_eq!(out["protector"], "passphrase", "{out}");
    let mut desk = Env::new(Some(&server));
    desk.vars
        .push(("ZKWIKI_PASSPHRASE".into(), "now with a passphrase".into()));
    desk.ok(&["login", "svc"]);
    assert!(
        desk.ok(&["--wiki", &wiki, "cat", "Runbook.md"])
            .contains("v2 from the instance")
    );
    stranger.ok(&["login", "svc", "--kms-key", &other_key]);

    server.stop();
    let plain = ec2.path("plain");
    ec2.ok(&["decrypt", clone.to_str().unwrap(), plain.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(plain.join("Runbook.md")).unwrap(),
        "# Runbook\nv2 from the instance\n"
    );
    // Offline decryption of a KMS-protected account needs KMS, and says so.
    drop(moto);
    let err = ec2.fails(
        &[
            "decrypt",
            clone.to_str().unwrap(),
            ec2.path("again").to_str().unwrap(),
        ],
        7,
    );
    assert!(err.contains("needs KMS"), "{err}");
    assert!(!ec2.path("again").exists(), "nothing written on failure");
}
