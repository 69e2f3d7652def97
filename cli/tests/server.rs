//! End to end against the real `zkwiki-server` on loopback and real `git`: every command's round
//! trip, concurrent edits, clone then offline decrypt with the server stopped, textconv diffs,
//! and a malicious operator editing the server's repository on disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Env, Operator, Server, git, list_files};
use core_crypto::identity::UserIdentity;
use core_crypto::keyring::{KeyringDraft, MemberKind, NewMember, Role};
use core_crypto::snapshot::SeenRecord;
use rand_core::OsRng;
use zkwiki_cli::api::{Api, CommitOutcome};

fn page_id(env: &Env, path: &str) -> String {
    let v = env.json(&["ls"]);
    v["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == path)
        .unwrap_or_else(|| panic!("no page {path}"))["page"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// As the owner, adds a reader to the keyring (what `agent grant` will do) through the API.
fn add_reader(env: &Env, server: &Server, wiki: &str, name: &str) -> UserIdentity {
    let key = env.path("owner.key");
    if !key.exists() {
        env.ok(&["key", "export", key.to_str().unwrap()]);
    }
    let (_, owner) = zkwiki_cli::keystore::read_key_file(&key).unwrap();
    let git = zkwiki_cli::git::Git::at(&server.repo(wiki));
    let gw = zkwiki_cli::repo::GitWiki::at(git, "refs/heads/main").unwrap();
    let (head, _) = gw.verify(&SeenRecord::default()).unwrap();
    let v = head.snapshot();
    let keys = v.keyring.unlock(&owner).unwrap();
    let member = UserIdentity::make(&mut OsRng);
    let mut draft = KeyringDraft::edit(&v.keyring, &keys).unwrap();
    draft
        .add_member(NewMember {
            name: name.into(),
            kind: MemberKind::Agent,
            role: Role::Reader,
            public: member.public(),
            prefix: String::new(),
        })
        .unwrap();
    let next = draft.sign(&mut OsRng, &owner).unwrap();
    let mut batch = v.begin_write();
    batch.set_keyring(next).unwrap();
    let p = batch.finish(&owner).unwrap();
    let session: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.profile_dir().join("session.json")).unwrap())
            .unwrap();
    let api = Api::new(
        &server.url,
        Some(session["token"].as_str().unwrap().to_owned()),
    );
    let outcome = api
        .commit(wiki, &client::wire::CommitRequest::of(&p))
        .unwrap();
    assert!(matches!(outcome, CommitOutcome::Accepted { .. }));
    member
}

#[test]
fn every_command_round_trips() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let out = alice.ok(&["register", "alice"]);
    assert!(out.contains("ZKR1-"), "recovery key shown once: {out}");
    let recovery = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("ZKR1-").map(|r| format!("ZKR1-{r}")))
        .unwrap();
    assert!(alice.ok(&["whoami"]).contains("alice on"));
    let wiki = alice.json(&["wiki", "create", "notes"])["wiki"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = alice.json(&["wiki", "list"]);
    assert_eq!(list["wikis"][0]["wiki"], wiki.as_str());
    assert_eq!(list["wikis"][0]["name"], "notes");
    assert_eq!(list["wikis"][0]["role"], "owner");

    // put (stdin and file), cat, ls.
    alice.put(
        "Home.md",
        "---\ntitle: Home\ntags: [a, b]\n---\n# Welcome\nSee [[Plan]].\n",
    );
    std::fs::write(alice.path("plan.md"), "The quick brown fox\n").unwrap();
    alice.ok(&["put", "projects/Plan.md", "plan.md"]);
    std::fs::write(alice.path("logo.png"), [0u8, 159, 146, 150, 255]).unwrap();
    alice.ok(&["put", "projects/logo.png", "logo.png"]);
    assert_eq!(
        alice.ok(&["cat", "Home.md"]),
        "---\ntitle: Home\ntags: [a, b]\n---\n# Welcome\nSee [[Plan]].\n"
    );
    let cat = alice.json(&["cat", "projects/logo.png"]);
    assert_eq!(cat["kind"], "attachment");
    assert_eq!(cat["content_base64"], "AJ+Slv8=");
    assert_eq!(
        alice.ok(&["ls"]),
        "Home.md\nprojects/Plan.md\nprojects/logo.png\n"
    );
    assert_eq!(alice.ok(&["ls", "projects"]).lines().count(), 2);
    assert!(alice.ok(&["ls", "-l"]).contains("attachment"));
    // Secrets on disk are private; a closed pipe is not an error.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["session.json", "identity.json"] {
            let mode = std::fs::metadata(alice.profile_dir().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f} is readable by others");
        }
    }
    std::fs::write(alice.path("big.bin"), vec![7u8; 2 << 20]).unwrap();
    alice.ok(&["put", "big.bin", "big.bin"]);
    let mut child = alice
        .cmd(&["cat", "big.bin"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    alice.ok(&["rm", "big.bin"]);

    // The same content again is not a new version.
    assert!(
        alice
            .put(
                "Home.md",
                "---\ntitle: Home\ntags: [a, b]\n---\n# Welcome\nSee [[Plan]].\n"
            )
            .contains("unchanged")
    );

    // edit with a scripted $EDITOR.
    let mut editor = alice.cmd(&["edit", "projects/Plan.md"]);
    editor.env("EDITOR", "sed -i s/quick/slow/");
    assert!(editor.status().unwrap().success());
    assert_eq!(
        alice.ok(&["cat", "projects/Plan.md"]),
        "The slow brown fox\n"
    );

    // search, mv, log following the rename, rm.
    // Matching lines as `path:line:text`, like rg; `-l` for paths; exit 1 on no match.
    assert_eq!(
        alice.ok(&["search", "brown", "fox"]),
        "projects/Plan.md:1:The slow brown fox\n"
    );
    assert_eq!(
        alice.ok(&["search", "-l", "brown", "fox"]),
        "projects/Plan.md\n"
    );
    assert_eq!(alice.ok(&["search", "welc*"]), "Home.md:5:# Welcome\n");
    assert_eq!(
        alice.ok(&["search", "-l", "bro"]),
        "projects/Plan.md\n",
        "the last word is a prefix"
    );
    let none = alice.run(&["search", "nothing-like-this"]);
    assert_eq!(
        (none.code, none.stdout.as_str(), none.stderr.as_str()),
        (1, "", "")
    );
    alice.ok(&["mv", "projects/Plan.md", "projects/Roadmap.md"]);
    assert_eq!(alice.ok(&["search", "-l", "slow"]), "projects/Roadmap.md\n");
    let log = alice.json(&["log", "projects/Roadmap.md"]);
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["renamed", "changed", "created"]);
    assert_eq!(log["entries"][0]["previous_path"], "projects/Plan.md");
    assert!(
        alice
            .ok(&["log"])
            .contains("renamed projects/Plan.md -> projects/Roadmap.md")
    );
    alice.ok(&["rm", "projects/logo.png"]);
    assert!(
        alice
            .fails(&["cat", "projects/logo.png"], 6)
            .contains("no page")
    );
    // History still knows the removed page.
    let log = alice.json(&["log", "projects/logo.png"]);
    assert_eq!(log["entries"][0]["action"], "removed");

    // logout; login with the passphrase; login with the recovery key sets a new passphrase.
    alice.ok(&["logout"]);
    alice.fails(&["ls"], 3);
    alice.ok(&["login", "alice"]);
    assert_eq!(alice.ok(&["ls"]).lines().count(), 2);
    let mut wrong = alice.cmd(&["login", "alice"]);
    wrong.env("ZKWIKI_PASSPHRASE", "not the passphrase");
    assert_eq!(wrong.output().unwrap().status.code(), Some(3));
    let mut rec = alice.cmd(&["login", "alice", "--recovery-key"]);
    rec.env("ZKWIKI_RECOVERY_KEY", &recovery)
        .env("ZKWIKI_PASSPHRASE", "a brand new passphrase");
    let o = rec.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    alice.fails(&["login", "alice"], 3); // the old passphrase no longer works
    let mut newpw = alice.cmd(&["cat", "Home.md"]);
    newpw.env("ZKWIKI_PASSPHRASE", "a brand new passphrase");
    assert!(newpw.output().unwrap().status.success());

    // A second user is not a member: the wiki does not exist for them.
    let bob = Env::new(Some(&server));
    bob.ok(&["register", "bob"]);
    bob.fails(&["--wiki", &wiki, "ls"], 6);

    // wiki delete.
    let mut del = alice.cmd(&["wiki", "delete", "notes", "--yes"]);
    del.env("ZKWIKI_PASSPHRASE", "a brand new passphrase");
    assert!(del.output().unwrap().status.success());
    let mut list = alice.cmd(&["--json", "wiki", "list"]);
    list.env("ZKWIKI_PASSPHRASE", "a brand new passphrase");
    let v: serde_json::Value = serde_json::from_slice(&list.output().unwrap().stdout).unwrap();
    assert_eq!(v["wikis"].as_array().unwrap().len(), 0);
}

#[test]
fn mv_update_links_rewrites_the_pages_that_link_here() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.ok(&["register", "alice"]);
    alice.ok(&["wiki", "create", "notes"]);
    alice.put(
        "Home.md",
        "See [[Plan|the plan]], [its goals](projects/Plan.md#goals) and `[[Plan]]`.\n",
    );
    alice.put("projects/Plan.md", "# Plan\n");
    alice.put("Other.md", "[[Home]]\n");
    let out = alice.ok(&[
        "mv",
        "--update-links",
        "-m",
        "archive the plan",
        "projects/Plan.md",
        "Archive/Old Plan.md",
    ]);
    assert!(
        out.contains("moved projects/Plan.md to Archive/Old Plan.md"),
        "{out}"
    );
    assert!(out.contains("updated 2 links in 1 page"), "{out}");
    // Each link keeps its label and form; code is not a link; one commit for all of it.
    assert_eq!(
        alice.ok(&["cat", "Home.md"]),
        "See [[Old Plan|the plan]], [its goals](Archive/Old%20Plan.md#goals) and `[[Plan]]`.\n"
    );
    assert_eq!(alice.ok(&["cat", "Other.md"]), "[[Home]]\n");
    let log = alice.json(&["log", "Home.md"]);
    assert_eq!(log["entries"][0]["message"], "archive the plan");
    let moved = alice.json(&["log", "Archive/Old Plan.md"]);
    assert_eq!(moved["entries"][0]["seq"], log["entries"][0]["seq"]);
    // Without the flag only the page moves (the links now point at a missing page).
    let json = alice.json(&["mv", "--update-links", "Archive/Old Plan.md", "Plan.md"]);
    assert_eq!(json["links_updated"], 2);
    assert_eq!(json["pages_updated"], serde_json::json!(["Home.md"]));
    alice.ok(&["mv", "Plan.md", "Elsewhere.md"]);
    assert!(alice.ok(&["cat", "Home.md"]).contains("[[Plan|the plan]]"));
}

#[test]
fn concurrent_edits_merge_or_save_the_text() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "w");
    alice.put(
        "Doc.md",
        "line one\nline two\nline three\nline four\nline five\n",
    );
    let zk = common::zkwiki_bin();
    // While "editing", someone else changes another line: merged.
    let script = alice.path("editor1.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf 'line one\\nline two\\nline three\\nline four\\nline FIVE\\n' | '{}' put Doc.md -\nsed -i s/one/ONE/ \"$1\"\n",
            zk.display()
        ),
    )
    .unwrap();
    let mut edit = alice.cmd(&["edit", "Doc.md"]);
    edit.env("EDITOR", format!("sh {}", script.display()));
    let o = edit.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        alice.ok(&["cat", "Doc.md"]),
        "line ONE\nline two\nline three\nline four\nline FIVE\n"
    );
    // Someone else changes the same line: nothing is lost, the text is saved, exit 5.
    let script = alice.path("editor2.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf 'line ONE\\nline 2 (theirs)\\nline three\\nline four\\nline FIVE\\n' | '{}' put Doc.md -\nsed -i 's/line two/line 2 (mine)/' \"$1\"\n",
            zk.display()
        ),
    )
    .unwrap();
    let mut edit = alice.cmd(&["edit", "Doc.md"]);
    edit.env("EDITOR", format!("sh {}", script.display()));
    let o = edit.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let saved = std::fs::read_to_string(alice.path("Doc.mine.md")).unwrap();
    assert!(saved.contains("line 2 (mine)"));
    assert!(alice.ok(&["cat", "Doc.md"]).contains("line 2 (theirs)"));
}

#[test]
fn clone_then_decrypt_offline_and_textconv_diffs() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "w");
    alice.put("Home.md", "# Home v1\n");
    alice.put("a/b/Deep.md", "---\ntitle: Deep\n---\ndeep text\n");
    alice.put("Home.md", "# Home v2\n");
    let url = format!("{}/git/{wiki}.git", server.url);
    alice.ok(&["clone", &url, "cl"]);
    let cl = alice.path("cl");
    assert_eq!(list_files(&cl), vec!["Home.md", "a/b/Deep.md"]);
    assert_eq!(
        std::fs::read_to_string(cl.join("Home.md")).unwrap(),
        "# Home v2\n"
    );
    // The token is not stored in the clone's config.
    let config = std::fs::read_to_string(cl.join(".zkwiki/git/.git/config")).unwrap();
    let session = std::fs::read_to_string(alice.profile_dir().join("session.json")).unwrap();
    let token: serde_json::Value = serde_json::from_str(&session).unwrap();
    assert!(!config.contains(token["token"].as_str().unwrap()));
    assert!(!config.contains("zks_"));

    // git log -p in the encrypted clone shows plaintext through textconv.
    let mut log = std::process::Command::new("git");
    log.current_dir(cl.join(".zkwiki/git"))
        .args(["log", "-p"])
        .env("ZKWIKI_CONFIG_DIR", alice.tmp.path().join("config"))
        .env("ZKWIKI_DATA_DIR", alice.tmp.path().join("data"))
        .env("ZKWIKI_PASSPHRASE", common::PASSPHRASE);
    let out = String::from_utf8_lossy(&log.output().unwrap().stdout).into_owned();
    assert!(out.contains("-# Home v1"), "{out}");
    assert!(out.contains("+# Home v2"), "{out}");
    assert!(out.contains("path: a/b/Deep.md"), "{out}");

    // Pull brings a change; local edits are never overwritten.
    alice.put("New.md", "new\n");
    alice.ok(&["pull", "cl"]);
    assert_eq!(list_files(&cl), vec!["Home.md", "New.md", "a/b/Deep.md"]);
    std::fs::write(cl.join("Home.md"), "my local edit\n").unwrap();
    alice.put("Home.md", "# Home v3\n");
    let err = alice.fails(&["pull", "cl"], 5);
    assert!(err.contains("Home.md"), "{err}");
    assert_eq!(
        std::fs::read_to_string(cl.join("Home.md")).unwrap(),
        "my local edit\n"
    );
    std::fs::write(cl.join("Home.md"), "# Home v2\n").unwrap();
    alice.ok(&["pull", "cl"]);
    assert_eq!(
        std::fs::read_to_string(cl.join("Home.md")).unwrap(),
        "# Home v3\n"
    );

    // With the server stopped, decrypt works from the clone alone.
    server.stop();
    let out = alice.path("plain");
    alice.ok(&["decrypt", cl.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(list_files(&out), vec!["Home.md", "New.md", "a/b/Deep.md"]);
    assert_eq!(
        std::fs::read_to_string(out.join("a/b/Deep.md")).unwrap(),
        "---\ntitle: Deep\n---\ndeep text\n"
    );
    // And with an exported key file instead of the passphrase, on a machine with nothing else.
    let key = alice.path("alice.key");
    alice.ok(&["key", "export", key.to_str().unwrap()]);
    let fresh = Env::new(None);
    let out2 = fresh.path("plain2");
    let mut cmd = fresh.cmd(&[
        "--key-file",
        key.to_str().unwrap(),
        "decrypt",
        cl.to_str().unwrap(),
        out2.to_str().unwrap(),
    ]);
    cmd.env_remove("ZKWIKI_PASSPHRASE");
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(list_files(&out2), list_files(&out));
}

/// One tampering, and what every reader must say about it.
struct Attack {
    name: &'static str,
    expect: &'static str,
}

fn check_attack(alice: &Env, server: &Server, wiki: &str, cl: &Path, attack: &Attack) {
    let before: Vec<(String, Vec<u8>)> = list_files(cl)
        .into_iter()
        .map(|f| {
            let b = std::fs::read(cl.join(&f)).unwrap();
            (f, b)
        })
        .collect();
    for args in [vec!["cat", "Home.md"], vec!["ls"]] {
        let err = alice.fails(&args, 4);
        assert!(
            err.contains(attack.expect) && err.contains("hint:"),
            "{}: `{}` said:\n{err}",
            attack.name,
            args.join(" ")
        );
    }
    let err = alice.fails(&["pull", cl.to_str().unwrap()], 4);
    assert!(
        err.contains(attack.expect),
        "{}: pull said:\n{err}",
        attack.name
    );
    let after: Vec<(String, Vec<u8>)> = list_files(cl)
        .into_iter()
        .map(|f| {
            let b = std::fs::read(cl.join(&f)).unwrap();
            (f, b)
        })
        .collect();
    assert_eq!(
        before, after,
        "{}: pull changed the working copy",
        attack.name
    );
    // A fresh git clone of what the server now serves does not decrypt, and writes nothing.
    let copy = alice.tmp.path().join(format!("copy-{}", attack.name));
    git(
        alice.tmp.path(),
        &[
            "clone",
            "--quiet",
            server.repo(wiki).to_str().unwrap(),
            copy.to_str().unwrap(),
        ],
    );
    let out = alice.tmp.path().join(format!("out-{}", attack.name));
    let err = alice.fails(
        &["decrypt", copy.to_str().unwrap(), out.to_str().unwrap()],
        4,
    );
    assert!(
        err.contains(attack.expect),
        "{}: decrypt said:\n{err}",
        attack.name
    );
    assert!(!out.exists(), "{}: decrypt wrote output", attack.name);
}

#[test]
fn operator_attacks_are_named_by_cat_ls_pull_and_decrypt() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "w");
    alice.put("Home.md", "# Home\n");
    alice.put("Plan.md", "plan v1\n");
    let op = Operator::new(server.repo(&wiki));
    let with_old_plan = op.head();
    alice.put("Plan.md", "plan v2\n");
    let bob = add_reader(&alice, &server, &wiki, "bob");
    alice.put("Other.md", "other\n");
    alice.ok(&["clone", "w", "cl"]);
    let cl = alice.path("cl");
    let good = op.head();
    let tree = op.tree(&good);
    let oid = |p: &str| tree.iter().find(|(path, _)| path == p).unwrap().1.clone();
    let home = format!("pages/{}", page_id(&alice, "Home.md"));
    let plan = format!("pages/{}", page_id(&alice, "Plan.md"));
    let rewrite = |changes: Vec<(String, Option<String>)>| {
        let mut files = tree.clone();
        for (path, new) in changes {
            files.retain(|(p, _)| *p != path);
            if let Some(o) = new {
                files.push((path, o));
            }
        }
        op.reset(&good);
        op.commit_tree(&files);
    };

    // 1. A flipped byte in a page blob.
    let mut bytes = op.blob(&oid(&home));
    let n = bytes.len() / 2;
    bytes[n] ^= 0x01;
    rewrite(vec![(home.clone(), Some(op.write_blob(&bytes)))]);
    check_attack(
        &alice,
        &server,
        &wiki,
        &cl,
        &Attack {
            name: "flip",
            expect: "differs from the signed manifest",
        },
    );

    // 2. Two blobs swapped.
    rewrite(vec![
        (home.clone(), Some(oid(&plan))),
        (plan.clone(), Some(oid(&home))),
    ]);
    check_attack(
        &alice,
        &server,
        &wiki,
        &cl,
        &Attack {
            name: "swap",
            expect: "differs from the signed manifest",
        },
    );

    // 3. An older version of a page restored.
    let old_plan = op
        .tree(&with_old_plan)
        .into_iter()
        .find(|(p, _)| *p == plan)
        .unwrap()
        .1;
    assert_ne!(old_plan, oid(&plan));
    rewrite(vec![(plan.clone(), Some(old_plan))]);
    check_attack(
        &alice,
        &server,
        &wiki,
        &cl,
        &Attack {
            name: "old-blob",
            expect: "differs from the signed manifest",
        },
    );

    // 4. A page dropped from the tree.
    rewrite(vec![(home.clone(), None)]);
    check_attack(
        &alice,
        &server,
        &wiki,
        &cl,
        &Attack {
            name: "drop",
            expect: "missing from the repository",
        },
    );

    // 5. The keyring replaced by an older one (the latest version removed).
    rewrite(vec![("keyring/0000000002".into(), None)]);
    check_attack(
        &alice,
        &server,
        &wiki,
        &cl,
        &Attack {
            name: "old-keyring",
            expect: "keyring",
        },
    );

    // 6. A member key the owner never signed: a keyring version 3 in which mallory's key takes
    //    bob's place, signed by mallory himself (the server stores it; clients refuse it).
    let mallory = UserIdentity::make(&mut OsRng);
    let k2 = op.blob(&oid("keyring/0000000002"));
    let mut k3 = k2.clone();
    k3[37..45].copy_from_slice(&3u64.to_be_bytes());
    k3[45..77].copy_from_slice(core_crypto::ids::Digest32::of(&k2).as_bytes());
    let at = k3
        .windows(32)
        .position(|w| w == bob.public().x25519)
        .unwrap();
    k3[at..at + 32].copy_from_slice(&mallory.public().x25519);
    let n = k3.len();
    k3[n - 96..n - 64].copy_from_slice(&mallory.public().ed25519);
    let sig = mallory.sign(core_crypto::labels::SIGN_KEYRING, &k3[..n - 64]);
    k3[n - 64..].copy_from_slice(&sig);
    core_crypto::keyring::Keyring::decode(&k3).unwrap();
    rewrite(vec![(
        "keyring/0000000003".into(),
        Some(op.write_blob(&k3)),
    )]);
    check_attack(
        &alice,
        &server,
        &wiki,
        &cl,
        &Attack {
            name: "slip-member",
            expect: "may not sign it",
        },
    );

    // 7. The branch reset to an older commit after the client saw a newer one.
    op.reset(&with_old_plan);
    check_attack(
        &alice,
        &server,
        &wiki,
        &cl,
        &Attack {
            name: "rollback",
            expect: "rollback",
        },
    );

    // Restored: everything reads again.
    op.reset(&good);
    alice.ok(&["ls"]);
    alice.ok(&["pull", cl.to_str().unwrap()]);
}

#[test]
fn a_forked_view_is_detected() {
    let server = Server::start();
    let laptop = Env::new(Some(&server));
    laptop.setup("alice", "w");
    laptop.put("Home.md", "base\n");
    let op = Operator::new(
        server.repo(
            laptop.json(&["wiki", "list"])["wikis"][0]["wiki"]
                .as_str()
                .unwrap(),
        ),
    );
    let base = op.head();
    laptop.put("Home.md", "from the laptop\n");
    // The operator hides the laptop's write and lets another machine write on the old base.
    op.reset(&base);
    let desktop = Env::new(Some(&server));
    desktop.ok(&["login", "alice"]);
    let id = laptop.json(&["wiki", "list"])["wikis"][0]["wiki"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut put = desktop.cmd(&["--wiki", &id, "put", "Home.md", "-"]);
    put.stdin(std::process::Stdio::null());
    let o = put.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The laptop saw seq 3 = its own write; now seq 3 is something else.
    let err = laptop.fails(&["ls"], 4);
    assert!(err.contains("fork detected"), "{err}");
}
