//! Bad input and abuse: every refused request gets a JSON error with a stable code and changes
//! nothing (the wiki's `git log` and `fsck` are checked after each group).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use core_crypto::identity::UserIdentity;
use core_crypto::ids::PageId;
use core_crypto::keyring::{KeyringDraft, MemberKind, NewMember, Role};
use core_crypto::snapshot::Snapshot;
use core_crypto::state::{Manifest, StateDraft};
use rand_core::OsRng;
use serde_json::json;

struct Fixture {
    s: Server,
    c: Client,
    alice: User,
    bob: User,
    view: WikiView,
    page: PageId,
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

fn fixture_with(tune: impl FnOnce(&mut server::config::Config)) -> Fixture {
    let s = Server::start_with(tune);
    let c = s.client();
    let alice = register(&c, "alice");
    let bob = register(&c, "bob");
    let mut view = create_wiki(&c, &alice);
    let (page, _, _) = put_page(&c, &alice, &mut view, "Home.md", "home");
    Fixture {
        s,
        c,
        alice,
        bob,
        view,
        page,
    }
}

impl Fixture {
    fn log(&self) -> Vec<String> {
        git_log(&self.s.repo_dir(&self.view.wiki))
    }
    fn commit_path(&self) -> String {
        format!("/api/v1/wikis/{}/commits", self.view.wiki)
    }
    fn unchanged(&self, before: &[String]) {
        assert_eq!(
            self.log(),
            before,
            "a refused request changed the repository"
        );
        check_repo(&self.s.repo_dir(&self.view.wiki));
    }
}

#[test]
fn malformed_ids_and_path_traversal() {
    let f = fixture();
    let (c, t, w) = (&f.c, Some(f.alice.token.as_str()), f.view.wiki.clone());
    let before = f.log();
    let bad_wikis = [
        w.to_uppercase(),
        w[..31].to_owned(),
        format!("{w}0"),
        "..".into(),
        "%2e%2e".into(),
        "..%2f..%2fetc".into(),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        format!("..%2f{w}"),
        "zz".repeat(16),
    ];
    for bad in &bad_wikis {
        for suffix in ["head", "keyring", "history", "tokens"] {
            let r = c.get(&format!("/api/v1/wikis/{bad}/{suffix}"), t);
            r.expect(400, "bad_request");
        }
        c.post(
            &format!("/api/v1/wikis/{bad}/commits"),
            t,
            &json!({"state": "", "manifest": ""}),
        )
        .expect(400, "bad_request");
        c.delete(&format!("/api/v1/wikis/{bad}"), t)
            .expect(400, "bad_request");
    }
    // Traversal in the path itself never reaches a handler with a usable id.
    for path in [
        format!("/api/v1/wikis/{w}/../../wikis/{w}/head"),
        "/api/v1/wikis/../../../etc/passwd".into(),
        format!("/api/v1/wikis/{w}/pages/../head"),
    ] {
        let r = c.get(&path, t);
        assert!(matches!(r.status, 400 | 404), "{path}: {}", r.status);
    }
    let bad_pages = [
        "..",
        "%2e%2e",
        "..%2f..%2fstate",
        "AB".repeat(16).as_str(),
        "0",
        &"0".repeat(33),
    ]
    .map(str::to_owned);
    for bad in &bad_pages {
        c.get(&format!("/api/v1/wikis/{w}/pages/{bad}"), t)
            .expect(400, "bad_request");
        c.get(&format!("/api/v1/wikis/{w}/history?page={bad}"), t)
            .expect(400, "bad_request");
    }
    for bad in [
        "..",
        "%2e%2e",
        "..%2f..%2fHEAD",
        &"A".repeat(64),
        &"0".repeat(63),
        "state",
    ] {
        c.get(&format!("/api/v1/wikis/{w}/blobs/{bad}"), t)
            .expect(400, "bad_request");
    }
    for bad in ["x", "-1", "%2e%2e", "1.5"] {
        c.get(&format!("/api/v1/wikis/{w}/states/{bad}"), t)
            .expect(400, "bad_request");
    }
    c.get(&format!("/api/v1/wikis/{w}/keyring?since=abc"), t)
        .expect(400, "bad_request");
    c.get(&format!("/api/v1/wikis/{w}/history?limit=-3"), t)
        .expect(400, "bad_request");
    for bad in ["..", "%2e%2e", "..%2f..%2fetc", "ZZ"] {
        c.delete(&format!("/api/v1/wikis/{w}/tokens/{bad}"), t)
            .expect(400, "bad_request");
        c.get(&format!("/api/v1/users/{bad}"), t)
            .expect(400, "bad_request");
        c.call(
            "PUT",
            &format!("/api/v1/account/protectors/{bad}"),
            t,
            Some(&json!({"auth": "00", "sealed_identity": ""})),
        )
        .expect(400, "bad_request");
    }
    // git paths: only <32 hex>.git/info/refs and git-upload-pack exist.
    let basic = format!("Basic {}", b64(format!("x:{}", f.alice.token).as_bytes()));
    let h = [("Authorization", basic.as_str())];
    for path in [
        "/git/..%2f..%2fetc.git/info/refs?service=git-upload-pack".to_owned(),
        "/git/%2e%2e/info/refs?service=git-upload-pack".into(),
        format!("/git/{w}.git/../../zkwiki.sqlite3"),
        format!("/git/{w}.git/%2e%2e/%2e%2e/server-secret"),
        format!("/git/{w}.git/HEAD"),
        format!("/git/{w}.git/config"),
        format!("/git/{w}.git/objects/info/packs"),
        format!("/git/{w}.git/info/refs"),
        format!("/git/{w}/info/refs?service=git-upload-pack"),
        format!(
            "/git/{}.git/info/refs?service=git-upload-pack",
            w.to_uppercase()
        ),
    ] {
        let r = c.raw("GET", &path, &h, None);
        assert_eq!(
            r.status,
            404,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.code(), "not_found");
    }
    // Static files: traversal out of the web dir is impossible.
    for path in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/data/server-secret",
    ] {
        let r = c.raw("GET", path, &[], None);
        assert_eq!(r.status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&r.body).contains("root:"));
    }
    // Names.
    for bad in ["../alice", "Alice", "", "a b", "%2e%2e"] {
        c.post("/api/v1/prelogin", None, &json!({"user": bad}))
            .expect(400, "bad_request");
        c.post(
            "/api/v1/login",
            None,
            &json!({"user": bad, "protector": "passphrase", "auth": "00".repeat(32)}),
        )
        .expect(400, "bad_request");
    }
    f.unchanged(&before);
}

#[test]
fn malformed_bodies() {
    let f = fixture();
    let c = &f.c;
    let before = f.log();
    let raw = |path: &str, body: &[u8]| {
        c.raw(
            "POST",
            path,
            &[
                ("Authorization", &format!("Bearer {}", f.alice.token)),
                ("Content-Type", "application/json"),
            ],
            Some(body.to_vec()),
        )
    };
    for path in [
        "/api/v1/register",
        "/api/v1/login",
        "/api/v1/prelogin",
        "/api/v1/wikis",
        &f.commit_path(),
    ] {
        raw(path, b"{not json").expect(400, "bad_request");
        raw(path, b"").expect(400, "bad_request");
        raw(path, b"[]").expect(400, "bad_request");
        raw(path, b"{\"unexpected\": 1}").expect(400, "bad_request");
    }
    // Registration fields.
    let (good, _, _) = registration("carol", &UserIdentity::make(&mut OsRng));
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("x25519", json!("not base64!")),
        ("x25519", json!(b64(&[1; 31]))),
        ("ed25519", json!(b64(&[1; 33]))),
        ("kdf", json!(b64(&[1; 29]))),
        (
            "kdf",
            json!(b64(&core_crypto::kdf::KdfParams {
                m_kib: 1024,
                t: 1,
                p: 1,
                salt: [0; 16]
            }
            .encode())),
        ),
        ("auth", json!("00")),
        ("auth", json!("ZZ".repeat(32))),
        ("sealed_identity", json!(b64(b"garbage"))),
        ("user", json!("../root")),
        // The proof: missing bytes, another key's, or made for another name.
        ("proof", json!("not base64!")),
        ("proof", json!(b64(&[0; 64]))),
        (
            "proof",
            json!(b64(&UserIdentity::make(&mut OsRng)
                .registration_proof("carol")
                .unwrap())),
        ),
        ("user", json!("carol2")),
    ];
    for (field, value) in cases {
        let mut body = good.clone();
        body[field] = value;
        c.post("/api/v1/register", None, &body)
            .expect(400, "bad_request");
    }
    let mut swapped = good.clone();
    swapped["sealed_identity"] = good["recovery"]["sealed_identity"].clone();
    c.post("/api/v1/register", None, &swapped)
        .expect(400, "bad_request");
    c.post(
        "/api/v1/login",
        None,
        &json!({"user": "alice", "protector": "magic", "auth": "00".repeat(32)}),
    )
    .expect(400, "bad_request");
    // Commit fields that do not decode.
    let commit = prepare_put(
        &f.view,
        &f.alice.identity,
        PageId::random(&mut OsRng),
        "x.md",
        "x",
    );
    let mut body = commit_body(&commit);
    body["state"] = json!("%%%");
    c.post(&f.commit_path(), Some(&f.alice.token), &body)
        .expect(400, "bad_request");
    let mut body = commit_body(&commit);
    body["blobs"] = json!(["***"]);
    c.post(&f.commit_path(), Some(&f.alice.token), &body)
        .expect(400, "bad_request");
    let mut body = commit_body(&commit);
    body["state"] = json!(b64(b"ZKST\x01short"));
    c.post(&f.commit_path(), Some(&f.alice.token), &body)
        .expect(400, "invalid_format");
    let mut body = commit_body(&commit);
    body["manifest"] = json!(b64(b"ZKMF\x01\0\0\0\x09"));
    c.post(&f.commit_path(), Some(&f.alice.token), &body)
        .expect(400, "invalid_format");
    f.unchanged(&before);
}

#[test]
fn bodies_over_the_limit_get_413() {
    let f = fixture_with(|cfg| {
        cfg.max_json_body = 256 * 1024;
        cfg.max_git_body = 64 * 1024;
    });
    let before = f.log();
    let c = &f.c;
    let big = format!("{{\"user\": \"{}\"}}", "a".repeat(300 * 1024));
    let auth = format!("Bearer {}", f.alice.token);
    let json_headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let over = |path: &str, headers: &[(&str, &str)], body: Vec<u8>| {
        let (status, v) = send_oversized(&c.base, path, headers, body);
        assert_eq!(status, 413, "{path}: {v}");
        assert_eq!(v["error"]["code"], "too_large", "{path}: {v}");
    };
    for path in [
        "/api/v1/prelogin",
        "/api/v1/register",
        "/api/v1/wikis",
        &f.commit_path(),
    ] {
        over(path, &json_headers, big.clone().into_bytes());
    }
    // A commit whose blobs are over the limit.
    let text = "x".repeat(400 * 1024);
    let commit = prepare_put(
        &f.view,
        &f.alice.identity,
        PageId::random(&mut OsRng),
        "big.md",
        &text,
    );
    over(
        &f.commit_path(),
        &json_headers,
        serde_json::to_vec(&commit_body(&commit)).unwrap(),
    );
    // git has its own limit.
    let basic = format!("Basic {}", b64(format!("x:{}", f.alice.token).as_bytes()));
    over(
        &format!("/git/{}.git/git-upload-pack", f.view.wiki),
        &[
            ("Authorization", &basic),
            ("Content-Type", "application/x-git-upload-pack-request"),
        ],
        vec![b'0'; 100 * 1024],
    );
    // Under the limit, the same routes work.
    c.post(
        "/api/v1/prelogin",
        None,
        &serde_json::json!({"user": "alice"}),
    )
    .expect(200, "");
    f.unchanged(&before);
}

#[test]
fn default_json_limit_is_64_mib() {
    let f = fixture();
    let before = f.log();
    let mut body = b"{\"user\": \"".to_vec();
    body.resize(64 * 1024 * 1024 + 16, b'a');
    let r = f.c.try_raw(
        "POST",
        "/api/v1/register",
        &[("Content-Type", "application/json")],
        Some(body),
    );
    // The server may answer before reading everything; either way it is a 413 or a closed socket.
    if let Ok(r) = r {
        r.expect(413, "too_large");
    }
    f.c.get("/healthz", None).expect(200, "");
    f.unchanged(&before);
}

#[test]
fn missing_bad_expired_and_revoked_tokens() {
    let f = fixture();
    let (c, w) = (&f.c, f.view.wiki.clone());
    let before = f.log();
    let head = format!("/api/v1/wikis/{w}/head");
    c.get(&head, None).expect(401, "unauthorized");
    let fake_session = format!("zks_{}{}", "0".repeat(32), "1".repeat(64));
    let fake_agent = format!("zka_{}{}", "0".repeat(32), "1".repeat(64));
    let mut tampered = f.alice.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    for bad in [
        "garbage",
        "zks_",
        &fake_session,
        &fake_agent,
        &tampered,
        &f.alice.token.to_uppercase(),
    ] {
        c.get(&head, Some(bad)).expect(401, "unauthorized");
    }
    for header in ["Basic !!!", "Token abc", "Bearer", "Basic eDp5"] {
        let r = c.raw("GET", &head, &[("Authorization", header)], None);
        r.expect(401, "unauthorized");
    }
    // Every authenticated route refuses without a token.
    let commit = prepare_put(
        &f.view,
        &f.alice.identity,
        PageId::random(&mut OsRng),
        "x.md",
        "x",
    );
    for (method, path) in [
        ("GET", "/api/v1/wikis".to_owned()),
        ("GET", format!("/api/v1/wikis/{w}/keyring")),
        ("GET", format!("/api/v1/wikis/{w}/history")),
        ("GET", format!("/api/v1/wikis/{w}/states/1")),
        ("GET", format!("/api/v1/wikis/{w}/pages/{}", f.page)),
        ("GET", format!("/api/v1/wikis/{w}/tokens")),
        ("GET", "/api/v1/users/alice".to_owned()),
        ("DELETE", format!("/api/v1/wikis/{w}")),
        ("POST", "/api/v1/logout".to_owned()),
    ] {
        c.call(method, &path, None, None)
            .expect(401, "unauthorized");
    }
    c.post(&f.commit_path(), None, &commit_body(&commit))
        .expect(401, "unauthorized");
    c.post(&f.commit_path(), Some(&fake_agent), &commit_body(&commit))
        .expect(401, "unauthorized");
    // Revoked agent token and logged-out session cannot write.
    let t = c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        Some(&f.alice.token),
        &json!({"name": "w", "role": "write", "expires_in": 600}),
    );
    let (tid, tok) = (
        t.json()["id"].as_str().unwrap().to_owned(),
        t.json()["token"].as_str().unwrap().to_owned(),
    );
    c.delete(
        &format!("/api/v1/wikis/{w}/tokens/{tid}"),
        Some(&f.alice.token),
    )
    .expect(204, "");
    c.post(&f.commit_path(), Some(&tok), &commit_body(&commit))
        .expect(401, "unauthorized");
    let other_session = login(c, "alice", "passphrase", &f.alice.passphrase_auth);
    c.post("/api/v1/logout", Some(&other_session), &json!({}))
        .expect(204, "");
    c.post(
        &f.commit_path(),
        Some(&other_session),
        &commit_body(&commit),
    )
    .expect(401, "unauthorized");
    // Expired agent token.
    let t = c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        Some(&f.alice.token),
        &json!({"name": "w2", "role": "write", "expires_in": 1}),
    );
    let tok = t.json()["token"].as_str().unwrap().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    c.post(&f.commit_path(), Some(&tok), &commit_body(&commit))
        .expect(401, "unauthorized");
    f.unchanged(&before);
}

#[test]
fn another_users_wiki_is_indistinguishable_from_none() {
    let f = fixture();
    let (c, w) = (&f.c, f.view.wiki.clone());
    let before = f.log();
    let missing = "0123456789abcdef0123456789abcdef";
    let bob = Some(f.bob.token.as_str());
    for suffix in [
        "head",
        "keyring",
        "history",
        "states/1",
        &format!("pages/{}", f.page),
        "tokens",
    ] {
        let theirs = c.get(&format!("/api/v1/wikis/{w}/{suffix}"), bob);
        let none = c.get(&format!("/api/v1/wikis/{missing}/{suffix}"), bob);
        theirs.expect(404, "not_found");
        assert_eq!(
            theirs.without_request_id(),
            none.without_request_id(),
            "{suffix}"
        );
    }
    let hash = f.view.snap.manifest.pages[&f.page].hash;
    let theirs = c.get(&format!("/api/v1/wikis/{w}/blobs/{hash}"), bob);
    let none = c.get(&format!("/api/v1/wikis/{missing}/blobs/{hash}"), bob);
    theirs.expect(404, "not_found");
    assert_eq!(theirs.without_request_id(), none.without_request_id());
    // Writing and deleting: the same 404.
    let bview = WikiView {
        wiki: w.clone(),
        chain: f.view.chain.clone(),
        snap: f.view.snap.clone(),
        keys: f.view.snap.keyring.unlock(&f.alice.identity).unwrap(),
    };
    let commit = prepare_put(
        &bview,
        &f.alice.identity,
        PageId::random(&mut OsRng),
        "x.md",
        "x",
    );
    let theirs = c.post(&f.commit_path(), bob, &commit_body(&commit));
    let none = c.post(
        &format!("/api/v1/wikis/{missing}/commits"),
        bob,
        &commit_body(&commit),
    );
    theirs.expect(404, "not_found");
    assert_eq!(theirs.without_request_id(), none.without_request_id());
    let theirs = c.delete(&format!("/api/v1/wikis/{w}"), bob);
    let none = c.delete(&format!("/api/v1/wikis/{missing}"), bob);
    theirs.expect(404, "not_found");
    assert_eq!(theirs.without_request_id(), none.without_request_id());
    let theirs = c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        bob,
        &json!({"name": "x", "role": "write", "expires_in": 60}),
    );
    theirs.expect(404, "not_found");
    // git: the same.
    let basic = format!("Basic {}", b64(format!("x:{}", f.bob.token).as_bytes()));
    let theirs = c.raw(
        "GET",
        &format!("/git/{w}.git/info/refs?service=git-upload-pack"),
        &[("Authorization", &basic)],
        None,
    );
    let none = c.raw(
        "GET",
        &format!("/git/{missing}.git/info/refs?service=git-upload-pack"),
        &[("Authorization", &basic)],
        None,
    );
    theirs.expect(404, "not_found");
    assert_eq!(theirs.without_request_id(), none.without_request_id());
    assert_eq!(c.get("/api/v1/wikis", bob).json()["wikis"], json!([]));
    f.unchanged(&before);
}

#[test]
fn stale_forged_and_unauthorized_writes() {
    let f = fixture();
    let (c, w) = (&f.c, f.view.wiki.clone());
    let t = Some(f.alice.token.as_str());
    let rng = &mut OsRng;
    let stale_view = WikiView {
        wiki: w.clone(),
        chain: f.view.chain.clone(),
        snap: f.view.snap.clone(),
        keys: f.view.snap.keyring.unlock(&f.alice.identity).unwrap(),
    };
    let mut view = WikiView::fetch(c, &f.alice.token, &w, &f.alice.identity);
    put_page(c, &f.alice, &mut view, "Second.md", "two");
    let before = f.log();

    // Stale: 409 carrying the current head, which verifies and lets the writer retry.
    let stale = prepare_put(
        &stale_view,
        &f.alice.identity,
        PageId::random(rng),
        "late.md",
        "late",
    );
    let r = c.post(&f.commit_path(), t, &commit_body(&stale));
    r.expect(409, "conflict");
    let head = r.json()["head"].clone();
    assert_eq!(unb64(&head["state"]), view.snap.state.as_bytes());
    assert_eq!(unb64(&head["manifest"]), view.snap.manifest.encode());
    assert_eq!(head["keyring_seq"], 1);
    // Replaying an already accepted commit is stale too.
    f.unchanged(&before);

    // A flipped byte in the state: bad signature.
    let good = prepare_put(&view, &f.alice.identity, PageId::random(rng), "g.md", "g");
    let mut body = commit_body(&good);
    let mut state = good.state.as_bytes().to_vec();
    state[40] ^= 1;
    body["state"] = json!(b64(&state));
    c.post(&f.commit_path(), t, &body)
        .expect(400, "invalid_format");

    // Manifest that is not the one the state signs.
    let mut body = commit_body(&good);
    body["manifest"] = json!(b64(&view.snap.manifest.encode()));
    c.post(&f.commit_path(), t, &body)
        .expect(400, "invalid_format");

    // Missing blob, extra blob, a blob swapped in from another page.
    let mut body = commit_body(&good);
    body["blobs"] = json!([]);
    c.post(&f.commit_path(), t, &body)
        .expect(400, "invalid_format");
    let other = prepare_put(&view, &f.alice.identity, PageId::random(rng), "o.md", "o");
    let mut body = commit_body(&good);
    body["blobs"]
        .as_array_mut()
        .unwrap()
        .push(json!(b64(&other.blobs[0])));
    c.post(&f.commit_path(), t, &body)
        .expect(400, "invalid_format");
    let mut body = commit_body(&good);
    body["blobs"] = json!([b64(&other.blobs[0])]);
    c.post(&f.commit_path(), t, &body)
        .expect(400, "invalid_format");
    let mut body = commit_body(&good);
    body["blobs"] = json!([b64(&good.blobs[0]), b64(&good.blobs[0])]);
    c.post(&f.commit_path(), t, &body)
        .expect(400, "invalid_format");

    // A state signed by a non-member (bob), sent with alice's session: refused (own key only),
    // and with an agent write token: refused by the keyring check.
    let base = &view.snap;
    let manifest = {
        let mut m = base.manifest.clone();
        let page = PageId::random(rng);
        let env = core_crypto::envelope::seal_page(
            rng,
            &view.keys.key_for_writing("m.md").unwrap(),
            &base.keyring.wiki,
            &page,
            &record("m.md", "m"),
        )
        .unwrap();
        m.pages.insert(
            page,
            core_crypto::state::ManifestEntry::for_envelope(&env).unwrap(),
        );
        (m, env)
    };
    let forged = StateDraft::next(&base.state, &base.keyring, &manifest.0).sign(&f.bob.identity);
    let forged_body = json!({"state": b64(forged.as_bytes()), "manifest": b64(&manifest.0.encode()), "blobs": [b64(&manifest.1)], "keyring": null});
    c.post(&f.commit_path(), t, &forged_body)
        .expect(403, "forbidden");
    let wt = c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        t,
        &json!({"name": "w", "role": "write", "expires_in": 600}),
    );
    let write_token = wt.json()["token"].as_str().unwrap().to_owned();
    c.post(&f.commit_path(), Some(&write_token), &forged_body)
        .expect(403, "forbidden");

    // A reader (in the keyring) cannot write, even with a state signed by their own key.
    let reader = register(c, "reader");
    let mut draft = KeyringDraft::edit(&view.snap.keyring, &view.keys).unwrap();
    draft
        .add_member(NewMember {
            name: "reader".into(),
            kind: MemberKind::Person,
            role: Role::Reader,
            public: reader.identity.public(),
            prefix: String::new(),
        })
        .unwrap();
    let k2 = draft.sign(rng, &f.alice.identity).unwrap();
    let mut batch = view.snap.begin_write();
    batch.set_keyring(k2.clone()).unwrap();
    let commit = batch.finish(&f.alice.identity).unwrap();
    send_commit(c, &f.alice.token, &mut view, commit).expect(200, "");
    let before = f.log();
    let reader_view = WikiView::fetch(c, &reader.token, &w, &reader.identity);
    let manifest = {
        let mut m = reader_view.snap.manifest.clone();
        let page = PageId::random(rng);
        let env = core_crypto::envelope::seal_page(
            rng,
            &reader_view.keys.key_for_writing("r.md").unwrap(),
            &reader_view.snap.keyring.wiki,
            &page,
            &record("r.md", "r"),
        )
        .unwrap();
        m.pages.insert(
            page,
            core_crypto::state::ManifestEntry::for_envelope(&env).unwrap(),
        );
        (m, env)
    };
    let by_reader = StateDraft::next(
        &reader_view.snap.state,
        &reader_view.snap.keyring,
        &manifest.0,
    )
    .sign(&reader.identity);
    let reader_body = json!({"state": b64(by_reader.as_bytes()), "manifest": b64(&manifest.0.encode()), "blobs": [b64(&manifest.1)], "keyring": null});
    c.post(&f.commit_path(), Some(&reader.token), &reader_body)
        .expect(403, "forbidden");
    c.post(&f.commit_path(), Some(&write_token), &reader_body)
        .expect(403, "forbidden");
    let rt = c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        t,
        &json!({"name": "r", "role": "read", "expires_in": 600}),
    );
    let read_token = rt.json()["token"].as_str().unwrap().to_owned();
    let good = prepare_put(&view, &f.alice.identity, PageId::random(rng), "g.md", "g");
    c.post(&f.commit_path(), Some(&read_token), &commit_body(&good))
        .expect(403, "forbidden");
    f.unchanged(&before);

    // A keyring not signed by an owner: the writer-level reader re-signs a successor itself.
    let mut draft = KeyringDraft::edit(&view.snap.keyring, &view.keys).unwrap();
    draft.set_role("reader", Role::Owner).unwrap();
    let by_owner = draft.sign(rng, &f.alice.identity).unwrap();
    let mut bytes = by_owner.as_bytes().to_vec();
    let n = bytes.len();
    bytes[n - 96..n - 64].copy_from_slice(&reader.identity.public().ed25519);
    let sig = reader
        .identity
        .sign(core_crypto::labels::SIGN_KEYRING, &bytes[..n - 64]);
    bytes[n - 64..].copy_from_slice(&sig);
    let not_owner = core_crypto::keyring::Keyring::decode(&bytes).unwrap();
    let manifest = view.snap.manifest.clone();
    let state = StateDraft::next(&view.snap.state, &not_owner, &manifest).sign(&f.alice.identity);
    let body = json!({"state": b64(state.as_bytes()), "manifest": b64(&manifest.encode()), "blobs": [], "keyring": b64(&bytes)});
    c.post(&f.commit_path(), t, &body).expect(403, "forbidden");
    // A keyring of another wiki, and garbage.
    let other_wiki = create_wiki(c, &f.bob);
    let mut body2 = body.clone();
    body2["keyring"] = json!(b64(other_wiki.snap.keyring.as_bytes()));
    c.post(&f.commit_path(), t, &body2)
        .expect(400, "invalid_format");
    body2["keyring"] = json!(b64(b"ZKKR\x01garbage"));
    c.post(&f.commit_path(), t, &body2)
        .expect(400, "invalid_format");
    // A state naming a new keyring that was not sent.
    let manifest_only = json!({"state": b64(state.as_bytes()), "manifest": b64(&manifest.encode()), "blobs": [], "keyring": null});
    c.post(&f.commit_path(), t, &manifest_only)
        .expect(400, "invalid_format");
    f.unchanged(&before);
}

#[test]
fn wiki_creation_checks_the_genesis() {
    let f = fixture();
    let c = &f.c;
    let rng = &mut OsRng;
    let t = Some(f.alice.token.as_str());
    // Signed by someone else (bob) but posted by alice.
    let genesis = KeyringDraft::genesis(rng, &f.bob.identity, "bob", MemberKind::Person)
        .unwrap()
        .sign(rng, &f.bob.identity)
        .unwrap();
    let snap = Snapshot::genesis(genesis.clone(), &f.bob.identity).unwrap();
    let body = json!({"keyring": b64(genesis.as_bytes()), "state": b64(snap.state.as_bytes()), "manifest": b64(&snap.manifest.encode())});
    c.post("/api/v1/wikis", t, &body).expect(403, "forbidden");
    // A non-genesis keyring (version 2).
    let keys = f.view.snap.keyring.unlock(&f.alice.identity).unwrap();
    let k2 = KeyringDraft::edit(&f.view.snap.keyring, &keys)
        .unwrap()
        .sign(rng, &f.alice.identity)
        .unwrap();
    let body2 = json!({"keyring": b64(k2.as_bytes()), "state": b64(f.view.snap.state.as_bytes()), "manifest": b64(&Manifest::default().encode())});
    c.post("/api/v1/wikis", t, &body2)
        .expect(400, "invalid_format");
    // Garbage, a state of another wiki, a non-empty manifest.
    let mine = KeyringDraft::genesis(rng, &f.alice.identity, "alice", MemberKind::Person)
        .unwrap()
        .sign(rng, &f.alice.identity)
        .unwrap();
    let mine_snap = Snapshot::genesis(mine.clone(), &f.alice.identity).unwrap();
    c.post("/api/v1/wikis", t, &json!({"keyring": b64(b"junk"), "state": b64(mine_snap.state.as_bytes()), "manifest": b64(&Manifest::default().encode())}))
        .expect(400, "invalid_format");
    c.post("/api/v1/wikis", t, &json!({"keyring": b64(mine.as_bytes()), "state": b64(f.view.snap.state.as_bytes()), "manifest": b64(&Manifest::default().encode())}))
        .expect(400, "invalid_format");
    c.post("/api/v1/wikis", t, &json!({"keyring": b64(mine.as_bytes()), "state": b64(mine_snap.state.as_bytes()), "manifest": b64(&f.view.snap.manifest.encode())}))
        .expect(400, "invalid_format");
    // An agent token cannot create wikis; the same genesis twice is a conflict.
    let body = json!({"keyring": b64(mine.as_bytes()), "state": b64(mine_snap.state.as_bytes()), "manifest": b64(&Manifest::default().encode())});
    c.post("/api/v1/wikis", t, &body).expect(201, "");
    c.post("/api/v1/wikis", t, &body).expect(409, "conflict");
    let wikis = c.get("/api/v1/wikis", t).json()["wikis"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(wikis, 2);
    assert_eq!(
        std::fs::read_dir(f.s.data.join("wikis")).unwrap().count(),
        2
    );
}
