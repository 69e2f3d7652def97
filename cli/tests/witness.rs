//! Witnesses end to end: the real server, real witness processes (`zkwiki-server witness`) and the
//! real `zkwiki` on loopback, with a hostile operator who rewrites the server's repository.
//!
//! Each attack runs with a witness and, as a control, without one: the control shows the attack
//! works against a device that has seen nothing, so the witness is what stops it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Env, Operator, Run, Server, Witness};
use core_crypto::identity::UserIdentity;
use core_crypto::ids::Digest32;
use core_crypto::state::WikiState;
use core_crypto::witness::Cosignature;
use serde_json::Value;

/// alice registers and creates wiki `notes`, with `witness` from its creation under `policy`
/// (or none); returns her environment and the wiki id.
fn alice_wiki(server: &Server, witness: Option<&Witness>, policy: &str) -> (Env, String) {
    let alice = Env::new(Some(server));
    alice.ok(&["register", "alice", "--recovery-key-out", "recovery.txt"]);
    let mut args = vec!["--json", "wiki", "create", "notes"];
    if let Some(w) = witness {
        args.extend([
            "--witness",
            &w.url,
            "--witness-fingerprint",
            &w.fingerprint,
            "--witness-policy",
            policy,
        ]);
    }
    let v: Value = serde_json::from_str(&alice.ok(&args)).unwrap();
    (alice, v["wiki"].as_str().unwrap().to_owned())
}

/// A device of `user` that has seen nothing of any wiki (a new laptop, a new browser profile).
fn fresh_device(server: &Server, user: &str) -> Env {
    let env = Env::new(Some(server));
    env.ok(&["login", user]);
    env
}

fn put(env: &Env, wiki: &str, path: &str, text: &str) -> Run {
    env.run_with_input(&["-w", wiki, "put", path, "-"], text.as_bytes())
}

/// alice's identity, from an exported key file.
fn identity(env: &Env) -> UserIdentity {
    let key = env.path("alice.key");
    if !key.exists() {
        env.ok(&["key", "export", key.to_str().unwrap()]);
    }
    zkwiki_cli::keystore::read_key_file(&key).unwrap().1
}

/// The signed state at the tip of `main`.
fn state_at_head(op: &Operator) -> WikiState {
    WikiState::decode(&op.head_bytes().1).unwrap()
}

fn http_get(url: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_vec().unwrap())
}

fn http_post(url: &str, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.post(url).send_json(body).unwrap();
    let status = r.status().as_u16();
    let bytes = r.body_mut().read_to_vec().unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The forks a witness refused for `wiki`: (held, refused) signed states.
fn evidence(w: &Witness, wiki: &str) -> Vec<(WikiState, WikiState)> {
    let (status, body) = http_get(&format!("{}/witness/v1/wikis/{wiki}/evidence", w.url));
    assert_eq!(status, 200);
    let v: client::wire::EvidenceResponse = serde_json::from_slice(&body).unwrap();
    v.evidence
        .iter()
        .map(|e| {
            let held = WikiState::decode(&client::wire::unb64(&e.held, "held").unwrap());
            let refused = WikiState::decode(&client::wire::unb64(&e.refused, "refused").unwrap());
            (held.unwrap(), refused.unwrap())
        })
        .collect()
}

/// The attack: alice removes carol; the operator serves the head from before the removal
/// to alice's new laptop, which writes a page; the operator lets carol read it. Returns the laptop's write and
/// carol's read of that page.
fn revocation_rolled_back(witness: Option<&Witness>) -> (Run, Run) {
    let mut server = Server::start();
    let (alice, wiki) = alice_wiki(&server, witness, "warn");
    let carol = Env::new(Some(&server));
    carol.ok(&["register", "carol", "--recovery-key-out", "recovery.txt"]);
    alice.ok(&["member", "add", "carol", "--role", "reader", "--yes"]);
    assert_eq!(put(&alice, &wiki, "Old.md", "before the removal\n").code, 0);
    assert_eq!(
        carol.ok(&["-w", &wiki, "cat", "Old.md"]),
        "before the removal\n"
    );
    let op = Operator::new(server.repo(&wiki));
    let before_removal = op.head();
    alice.ok(&["member", "rm", "carol"]);
    // The operator serves the head from before the removal.
    op.reset(&before_removal);
    let laptop = fresh_device(&server, "alice");
    let write = put(
        &laptop,
        &wiki,
        "Secret.md",
        "written after carol was removed\n",
    );
    // The operator lets carol in again: restarted, the server indexes the members of the
    // keyring it serves, which still lists carol.
    server.restart();
    let read = carol.run(&["-w", &wiki, "cat", "Secret.md"]);
    (write, read)
}

#[test]
fn a_fresh_device_refuses_the_head_from_before_a_removal() {
    // Without a witness the attack works: the laptop accepts the old head and writes under the
    // epoch carol still holds, and carol reads the page.
    let (write, read) = revocation_rolled_back(None);
    assert_eq!(write.code, 0, "{}", write.stderr);
    assert_eq!(
        (read.code, read.stdout.as_str()),
        (0, "written after carol was removed\n"),
        "{}",
        read.stderr
    );
    // With a witness, the laptop refuses the rolled-back head and writes nothing; carol reads
    // nothing new.
    let witness = Witness::start();
    let (write, read) = revocation_rolled_back(Some(&witness));
    assert_eq!(write.code, 4, "{}", write.stderr);
    assert!(
        write.stderr.contains("rollback") && write.stderr.contains(&witness.url),
        "{}",
        write.stderr
    );
    assert_ne!(read.code, 0);
    assert!(
        !read.stdout.contains("written after"),
        "carol read the page: {}",
        read.stdout
    );
}

/// The operator builds a second branch from an older state and shows it to one new device,
/// and the honest branch to another: without a witness both accept (two histories); with one,
/// the first device refuses the fork, the witness keeps both signed states, and the second
/// device reads the honest head.
#[test]
fn a_fork_shown_to_two_fresh_devices() {
    for with_witness in [false, true] {
        let server = Server::start();
        let witness = with_witness.then(Witness::start);
        let (alice, wiki) = alice_wiki(&server, witness.as_ref(), "warn");
        let op = Operator::new(server.repo(&wiki));
        assert_eq!(put(&alice, &wiki, "A.md", "a\n").code, 0);
        let base = op.head();
        assert_eq!(put(&alice, &wiki, "B.md", "b\n").code, 0);
        let honest = op.head();
        let honest_state = state_at_head(&op);
        let me = identity(&alice);
        op.reset(&base);
        op.extend(&me, "Other1.md", "another branch\n");
        op.extend(&me, "Other2.md", "another branch\n");
        let fork_state = state_at_head(&op);
        let first = fresh_device(&server, "alice").run(&["-w", &wiki, "ls"]);
        op.reset(&honest);
        let second = fresh_device(&server, "alice").run(&["-w", &wiki, "ls"]);
        assert_eq!(
            (second.code, second.stdout.as_str()),
            (0, "A.md\nB.md\n"),
            "{}",
            second.stderr
        );
        let Some(w) = witness else {
            assert_eq!(
                (first.code, first.stdout.as_str()),
                (0, "A.md\nOther1.md\nOther2.md\n"),
                "without a witness the first device accepts the other branch: {}",
                first.stderr
            );
            continue;
        };
        assert_eq!(first.code, 4, "{}", first.stderr);
        assert!(first.stderr.contains("fork"), "{}", first.stderr);
        // The first device's submission was refused, and the witness kept both signed states.
        let kept = evidence(&w, &wiki);
        assert_eq!(kept.len(), 1, "{kept:?}");
        let (held, refused) = &kept[0];
        assert_eq!(held, &honest_state);
        assert_eq!(refused, &fork_state);
        assert_eq!(refused.seq, held.seq + 1);
        assert_ne!(
            refused.prev,
            held.hash(),
            "the refused state names another predecessor"
        );
        assert_eq!(held.signer, me.public().ed25519);
    }
}

/// A witness that is down: policy `warn` reads and writes with a warning, `stop` refuses (exit 7,
/// with a hint), also on a new device; once it is back it catches up with what it missed.
#[test]
fn a_witness_that_is_down() {
    let server = Server::start();
    let mut witness = Witness::start();
    let (alice, wiki) = alice_wiki(&server, Some(&witness), "warn");
    assert_eq!(put(&alice, &wiki, "A.md", "a\n").code, 0);
    let (data, addr) = (witness.data.clone(), witness.addr());
    witness.kill();
    let run = alice.run(&["cat", "A.md"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "a\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("warning: witness") && run.stderr.contains("could not be asked"),
        "{}",
        run.stderr
    );
    let run = put(&alice, &wiki, "B.md", "b\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("could not be asked"), "{}", run.stderr);
    // An owner changes the policy while the witness is down (warned, not stopped).
    alice.ok(&["witness", "policy", "stop"]);
    for env in [&alice, &fresh_device(&server, "alice")] {
        let run = env.run(&["-w", &wiki, "cat", "A.md"]);
        assert_eq!(run.code, 7, "{}", run.stderr);
        assert!(
            run.stderr.contains("could not be asked") && run.stderr.contains("policy stops"),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }
    // `status` still answers, and says which witness is down.
    let status = alice.json(&["status"]);
    assert_eq!(
        status["witnesses"]["list"][0]["status"], "unreachable",
        "{status}"
    );
    // Back on its address with its data: it is brought up to date and agrees.
    let _back = Witness::start_on(&data, &addr);
    let status = alice.json(&["status"]);
    let w = &status["witnesses"]["list"][0];
    assert_eq!(w["status"], "agrees", "{status}");
    assert_eq!(w["seq"], status["seq"]);
    assert_eq!(status["witnesses"]["policy"], "stop");
}

/// A witness that serves an older checkpoint than one it co-signed for this device (its
/// operator restored an old copy of its data): refused as a lie whatever the policy, with both
/// co-signatures kept as evidence. A device that never heard from it just brings it up to date.
#[test]
fn a_witness_that_lies() {
    let server = Server::start();
    let mut witness = Witness::start();
    let keep = witness.take_dir();
    let (alice, wiki) = alice_wiki(&server, Some(&witness), "warn");
    assert_eq!(put(&alice, &wiki, "A.md", "a\n").code, 0);
    let (data, addr) = (witness.data.clone(), witness.addr());
    witness.kill();
    let old_copy = tempfile::tempdir().unwrap();
    copy_dir(&data.join("witness"), &old_copy.path().join("witness"));
    let witness = Witness::start_on(&data, &addr);
    assert_eq!(put(&alice, &wiki, "B.md", "b\n").code, 0);
    assert_eq!(put(&alice, &wiki, "C.md", "c\n").code, 0);
    drop(witness);
    std::fs::remove_dir_all(data.join("witness")).unwrap();
    copy_dir(&old_copy.path().join("witness"), &data.join("witness"));
    let _liar = Witness::start_on(&data, &addr);
    let run = alice.run(&["ls"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("lies"), "{}", run.stderr);
    // Both co-signatures are kept: the later one it gave before, the older one it shows now.
    let dir = alice
        .tmp
        .path()
        .join("data/wikis")
        .join(&wiki)
        .join("witness-evidence");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let v: Value = serde_json::from_slice(&std::fs::read(files[0].path()).unwrap()).unwrap();
    let cosig = |k: &str| {
        Cosignature::decode(
            &client::wire::unb64(v[k]["cosignature"].as_str().unwrap(), "c").unwrap(),
        )
        .unwrap()
    };
    let (before, now) = (cosig("co_signed_before"), cosig("co_signed_now"));
    assert_eq!(before.witness, now.witness);
    assert!(before.checkpoint.seq > now.checkpoint.seq, "{v}");
    // A new device has no memory of it: the witness is merely behind, and is brought up to date.
    let laptop = fresh_device(&server, "alice");
    let run = laptop.run(&["-w", &wiki, "ls"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "A.md\nB.md\nC.md\n"),
        "{}",
        run.stderr
    );
    drop(keep);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Another witness answers at the listed URL (the operator took over the address): its answers
/// do not count. Under `stop` a new device refuses the old head the operator shows it; under
/// `warn` reads go on with a warning that names the foreign key. Adding it with the real
/// witness's fingerprint is refused.
#[test]
fn a_witness_whose_key_is_not_in_the_keyring() {
    let server = Server::start();
    let mut witness = Witness::start();
    let (alice, wiki) = alice_wiki(&server, Some(&witness), "stop");
    let op = Operator::new(server.repo(&wiki));
    let old = op.head();
    assert_eq!(put(&alice, &wiki, "A.md", "a\n").code, 0);
    let honest = op.head();
    let addr = witness.addr();
    let real_fingerprint = witness.fingerprint.clone();
    witness.kill();
    let impostor_dir = tempfile::tempdir().unwrap();
    let impostor = Witness::start_on(impostor_dir.path(), &addr);
    assert_ne!(impostor.fingerprint, real_fingerprint);
    op.reset(&old);
    let run = fresh_device(&server, "alice").run(&["-w", &wiki, "ls"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("does not list") && run.stderr.contains(&impostor.fingerprint),
        "{}",
        run.stderr
    );
    op.reset(&honest);
    alice.ok(&["witness", "policy", "warn"]);
    let run = alice.run(&["ls"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "A.md\n"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("does not list"), "{}", run.stderr);
    let run = alice.run(&[
        "witness",
        "add",
        &impostor.url,
        "--fingerprint",
        &real_fingerprint,
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("not the one you gave"),
        "{}",
        run.stderr
    );
}

/// Submitted straight to the witness: a fork is refused (409 with the held checkpoint
/// co-signed) and both signed states are kept; a wiki whose keyring does not list the witness
/// and garbage are refused; the witness's database holds no name and no content.
#[test]
fn the_witness_refuses_a_fork_and_keeps_both_signed_states() {
    let server = Server::start();
    let witness = Witness::start();
    let (alice, wiki) = alice_wiki(&server, Some(&witness), "warn");
    let op = Operator::new(server.repo(&wiki));
    assert_eq!(
        put(&alice, &wiki, "A.md", "secret text of a page\n").code,
        0
    );
    let base = op.head();
    assert_eq!(put(&alice, &wiki, "B.md", "b\n").code, 0);
    let held = state_at_head(&op);
    op.reset(&base);
    op.extend(&identity(&alice), "Other.md", "another branch\n");
    let (chain, fork, _, _) = op.head_bytes();
    let submit = |states: Vec<&[u8]>, chain: &[Vec<u8>], wiki: &str| {
        http_post(
            &format!("{}/witness/v1/wikis/{wiki}/checkpoints", witness.url),
            &serde_json::json!({
                "keyring": chain.iter().map(|k| client::wire::b64(k)).collect::<Vec<_>>(),
                "states": states.iter().map(|s| client::wire::b64(s)).collect::<Vec<_>>(),
                "nonce": "11".repeat(32),
            }),
        )
    };
    let (status, body) = submit(vec![&fork], &chain, &wiki);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("fork")),
        "{body}"
    );
    let c = Cosignature::decode(
        &client::wire::unb64(body["cosignature"].as_str().unwrap(), "c").unwrap(),
    )
    .unwrap();
    assert_eq!(c.checkpoint.state, held.hash());
    assert_eq!(c.nonce, [0x11; 32]);
    let kept = evidence(&witness, &wiki);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, held);
    assert_eq!(kept[0].1, WikiState::decode(&fork).unwrap());
    // The same fork again is refused again, and kept once.
    assert_eq!(submit(vec![&fork], &chain, &wiki).0, 409);
    assert_eq!(evidence(&witness, &wiki).len(), 1);
    // A wiki whose keyring does not list this witness.
    let (bob, other) = {
        let server2 = &server;
        let bob = Env::new(Some(server2));
        bob.ok(&["register", "bob", "--recovery-key-out", "r.txt"]);
        let v = bob.json(&["wiki", "create", "plain"]);
        (bob, v["wiki"].as_str().unwrap().to_owned())
    };
    let (other_chain, other_state, _, _) = Operator::new(server.repo(&other)).head_bytes();
    let (status, body) = submit(vec![&other_state], &other_chain, &other);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_a_witness")),
        "{body}"
    );
    let (status, _) = submit(vec![b"not a state"], &chain, &wiki);
    assert_eq!(status, 400);
    let (status, body) = http_get(&format!(
        "{}/witness/v1/wikis/{wiki}/checkpoint?nonce=xyz",
        witness.url
    ));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _) = http_get(&format!(
        "{}/witness/v1/wikis/not-an-id/checkpoint",
        witness.url
    ));
    assert_eq!(status, 400);
    // Any web app may ask (answers are public and requests carry no credential).
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let pre = agent
        .options(&format!(
            "{}/witness/v1/wikis/{wiki}/checkpoints",
            witness.url
        ))
        .call()
        .unwrap();
    assert_eq!(pre.status().as_u16(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert!(
        pre.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    drop(bob);
    // What it stores: signed states and hashes, never a member name or page text.
    let mut stored = Vec::new();
    for e in std::fs::read_dir(witness.data.join("witness"))
        .unwrap()
        .flatten()
    {
        stored.extend(std::fs::read(e.path()).unwrap());
    }
    for needle in [&b"alice"[..], b"secret text", b"A.md"] {
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle),
            "the witness stored {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    let _ = Digest32::ZERO;
}

/// An owner adds a witness to an existing wiki (fingerprint checked), after which a new device
/// refuses an old head; `status` shows the same safety numbers on two devices; the witness is
/// removed again.
#[test]
fn an_owner_adds_and_removes_a_witness() {
    let server = Server::start();
    let witness = Witness::start();
    let (alice, wiki) = alice_wiki(&server, None, "warn");
    assert_eq!(put(&alice, &wiki, "A.md", "a\n").code, 0);
    let run = alice.run(&["witness", "add", &witness.url]);
    assert_eq!(run.code, 2, "without a fingerprint: {}", run.stderr);
    assert!(run.stderr.contains(&witness.fingerprint), "{}", run.stderr);
    alice.ok(&[
        "witness",
        "add",
        &format!("{}/", witness.url),
        "--fingerprint",
        &witness.fingerprint.to_uppercase(),
    ]);
    let listed = alice.json(&["witness", "list"]);
    assert_eq!(listed["list"][0]["url"], witness.url.as_str(), "{listed}");
    assert_eq!(listed["list"][0]["status"], "agrees", "{listed}");
    let op = Operator::new(server.repo(&wiki));
    let witnessed = op.head();
    assert_eq!(put(&alice, &wiki, "B.md", "b\n").code, 0);
    let honest = op.head();
    op.reset(&witnessed);
    let run = fresh_device(&server, "alice").run(&["-w", &wiki, "ls"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("rollback"), "{}", run.stderr);
    op.reset(&honest);
    // Two devices, one head, one safety number.
    let mine = alice.json(&["status"]);
    let theirs = fresh_device(&server, "alice").json(&["-w", &wiki, "status"]);
    assert_eq!(mine["safety_number"], theirs["safety_number"]);
    assert_eq!(
        mine["keyring"]["safety_number"],
        theirs["keyring"]["safety_number"]
    );
    assert_eq!(mine["safety_number"].as_str().unwrap().len(), 23);
    let text = alice.ok(&["status"]);
    assert!(text.contains("safety number"), "{text}");
    alice.ok(&["witness", "rm", &witness.url]);
    let listed = alice.json(&["witness", "list"]);
    assert_eq!(listed["list"].as_array().unwrap().len(), 0, "{listed}");
}
