//! KMS mode end to end: a user's key file and an agent's identity protected by AWS KMS, against a
//! real KMS API on loopback (`moto_server`, installed by `cargo xtask test`) and the real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, Server, git};
use key_protector::{KmsConfig, KmsProtector};
use serde_json::Value;

struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let bin = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-moto/bin/moto_server")
        });
    assert!(
        bin.exists(),
        "moto_server not found at {}: run `cargo xtask test` (it installs moto[server]) or set MOTO_SERVER",
        bin.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

fn admin(endpoint: &str) -> KmsProtector {
    KmsProtector::new(KmsConfig {
        key_id: String::new(),
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        static_credentials: Some(("testing".into(), "testing".into())),
    })
    .unwrap()
}

fn aws_env(env: &mut Env, endpoint: &str) {
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("ZKWIKI_KMS_ENDPOINT", endpoint),
    ] {
        env.vars.push((k.into(), v.into()));
    }
}

#[test]
fn kms_protected_user_and_agent_keys() {
    let moto = start_moto();
    let kms = admin(&moto.endpoint);
    let key_id = kms
        .block_on(kms.client().create_key().send())
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();

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
    let moto = start_moto();
    let kms = admin(&moto.endpoint);
    let key_id = kms
        .block_on(kms.client().create_key().send())
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
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
