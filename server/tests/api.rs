//! Every route's happy path against a real server on a real socket: accounts, wikis, pages and
//! blobs (ETags, 304), commits, history, members, agent tokens, the web app's headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use core_crypto::identity::UserIdentity;
use core_crypto::ids::PageId;
use core_crypto::kdf::KdfParams;
use core_crypto::keyring::{KeyringDraft, MemberKind, NewMember, Role};
use core_crypto::protector::{ProtectorKey, ProtectorKind};
use core_crypto::wrapped::WrappedKey;
use rand_core::OsRng;
use serde_json::json;

#[test]
fn health_headers_and_fallbacks() {
    let s = Server::start();
    let c = s.client();
    let r = c.get("/healthz", None);
    r.expect(200, "");
    assert_eq!(r.json(), json!({"status": "ok"}));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self' 'wasm-unsafe-eval'")
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    // No web dir: the root explains how to build the web app.
    let root = c.get("/", None);
    root.expect(200, "");
    assert!(String::from_utf8_lossy(&root.body).contains("cargo xtask serve"));
    assert!(root.header("content-security-policy").is_some());
    c.get("/api/v1/nope", None).expect(404, "not_found");
    c.get("/api/v1/login", None)
        .expect(405, "method_not_allowed");
}

/// An account whose only everyday protector is a KMS-wrapped key: registration, the prelogin that
/// hands the wrapped key back only under the key ARN it was wrapped with (and a stable fake of the
/// same shape otherwise), login, and the refusals.
#[test]
fn kms_account_register_prelogin_login() {
    let s = Server::start();
    let c = s.client();
    let arn = "arn:aws:kms:us-east-1:000000000000:key/1111";
    let identity = UserIdentity::make(&mut OsRng);
    let pk = ProtectorKey::from_bytes([3; 32]);
    let sealed = identity
        .seal(
            &mut OsRng,
            &pk.derive_seal_key(),
            ProtectorKind::Kms,
            "bot",
            None,
        )
        .unwrap();
    let wrapped = WrappedKey {
        key_arn: arn.into(),
        ciphertext: vec![5; 200],
    }
    .encode()
    .unwrap();
    let auth = pk.derive_auth_secret().to_hex().to_string();
    let (mut body, _, _) = registration("bot", &identity);
    body["protector"] = json!("kms");
    body["kdf"] = json!(b64(&wrapped));
    body["auth"] = json!(auth);
    // A passphrase-sealed identity under a KMS protector, or a malformed wrapped key: refused.
    c.post("/api/v1/register", None, &body)
        .expect(400, "bad_request");
    body["sealed_identity"] = json!(b64(&sealed));
    let mut bad = body.clone();
    bad["kdf"] = json!(b64(b"ZKKM\x01\x00\x05arn:x"));
    c.post("/api/v1/register", None, &bad)
        .expect(400, "bad_request");
    bad["protector"] = json!("recovery");
    c.post("/api/v1/register", None, &bad)
        .expect(400, "bad_request");
    c.post("/api/v1/register", None, &body).expect(201, "");

    // The wrapped key comes back under its own ARN only.
    let pre = |user: &str, key: &str| {
        let r = c.post(
            "/api/v1/prelogin",
            None,
            &json!({"user": user, "protector": "kms", "kms_key": key}),
        );
        r.expect(200, "");
        WrappedKey::decode(&unb64(&r.json()["kms"])).unwrap()
    };
    assert_eq!(pre("bot", arn).encode().unwrap(), wrapped);
    let other_key = "arn:aws:kms:us-east-1:000000000000:key/2222";
    for (user, key) in [("bot", other_key), ("ghost", arn), ("ghost", other_key)] {
        let fake = pre(user, key);
        assert_eq!(fake.key_arn, key, "the fake names the key asked for");
        assert_eq!(
            fake.ciphertext.len(),
            184,
            "AWS's length for a wrapped 32-byte key"
        );
        assert_eq!(fake, pre(user, key), "stable");
    }
    assert_ne!(pre("ghost", arn), pre("ghost2", arn));
    // A passphrase prelogin for this account is a fake too (it has no passphrase).
    let p = c.post("/api/v1/prelogin", None, &json!({"user": "bot"}));
    KdfParams::decode(&unb64(&p.json()["kdf"])).unwrap();

    // Login with the KMS auth returns the wrapped key and the KMS-sealed identity.
    let r = c.post(
        "/api/v1/login",
        None,
        &json!({"user": "bot", "protector": "kms", "auth": auth}),
    );
    r.expect(200, "");
    assert_eq!(unb64(&r.json()["kdf"]), wrapped);
    let opened = UserIdentity::unseal(
        &unb64(&r.json()["sealed_identity"]),
        &pk.derive_seal_key(),
        "bot",
        None,
    )
    .unwrap();
    assert_eq!(opened.public(), identity.public());
    c.post(
        "/api/v1/login",
        None,
        &json!({"user": "bot", "protector": "passphrase", "auth": auth}),
    )
    .expect(401, "bad_credentials");

    // Bad prelogin requests.
    for body in [
        json!({"user": "bot", "protector": "kms"}),
        json!({"user": "bot", "kms_key": arn}),
        json!({"user": "bot", "protector": "recovery"}),
        json!({"user": "bot", "protector": "kms", "kms_key": ""}),
        json!({"user": "bot", "protector": "kms", "kms_key": "arn with spaces"}),
        json!({"user": "bot", "protector": "kms", "kms_key": "a".repeat(2049)}),
    ] {
        c.post("/api/v1/prelogin", None, &body)
            .expect(400, "bad_request");
    }
}

#[test]
fn accounts_register_prelogin_login_logout_protectors() {
    let s = Server::start();
    let c = s.client();
    let alice = register(&c, "alice");

    // Same name again, or alice's key under another name: name_taken.
    let (body, _, _) = registration("alice", &UserIdentity::make(&mut OsRng));
    c.post("/api/v1/register", None, &body)
        .expect(409, "name_taken");
    let (mut body, _, _) = registration("alice2", &alice.identity);
    body["user"] = json!("alice2");
    c.post("/api/v1/register", None, &body)
        .expect(409, "name_taken");

    // Prelogin: the account's parameters; for unknown names, plausible and stable ones.
    let pre = c.post("/api/v1/prelogin", None, &json!({"user": "alice"}));
    pre.expect(200, "");
    KdfParams::decode(&unb64(&pre.json()["kdf"])).unwrap();
    let ghost1 = c
        .post("/api/v1/prelogin", None, &json!({"user": "ghost"}))
        .json();
    let ghost2 = c
        .post("/api/v1/prelogin", None, &json!({"user": "ghost"}))
        .json();
    let other = c
        .post("/api/v1/prelogin", None, &json!({"user": "ghost2"}))
        .json();
    assert_eq!(ghost1, ghost2);
    assert_ne!(ghost1, other);
    let fake = KdfParams::decode(&unb64(&ghost1["kdf"])).unwrap();
    assert_eq!(
        (fake.m_kib, fake.t, fake.p),
        (
            KdfParams::DEFAULT.m_kib,
            KdfParams::DEFAULT.t,
            KdfParams::DEFAULT.p
        )
    );

    // Login answers.
    let r = c.post(
        "/api/v1/login",
        None,
        &json!({"user": "alice", "protector": "passphrase", "auth": alice.passphrase_auth}),
    );
    r.expect(200, "");
    let j = r.json();
    assert!(j["token"].as_str().unwrap().starts_with("zks_"));
    assert!(j["expires_at"].as_i64().unwrap() > 0);
    assert_eq!(unb64(&j["ed25519"]), alice.identity.public().ed25519);
    assert_eq!(unb64(&j["x25519"]), alice.identity.public().x25519);
    assert!(j["kdf"].is_string());
    assert!(!unb64(&j["sealed_identity"]).is_empty());
    let rec = c.post(
        "/api/v1/login",
        None,
        &json!({"user": "alice", "protector": "recovery", "auth": alice.recovery_auth}),
    );
    rec.expect(200, "");
    assert!(rec.json()["kdf"].is_null());

    // Wrong secret and unknown user look the same.
    let wrong = c.post(
        "/api/v1/login",
        None,
        &json!({"user": "alice", "protector": "passphrase", "auth": "00".repeat(32)}),
    );
    wrong.expect(401, "bad_credentials");
    let unknown = c.post(
        "/api/v1/login",
        None,
        &json!({"user": "nobody", "protector": "passphrase", "auth": "00".repeat(32)}),
    );
    unknown.expect(401, "bad_credentials");
    assert_eq!(wrong.without_request_id(), unknown.without_request_id());
    // The recovery secret does not open the passphrase protector.
    c.post(
        "/api/v1/login",
        None,
        &json!({"user": "alice", "protector": "passphrase", "auth": alice.recovery_auth}),
    )
    .expect(401, "bad_credentials");

    // Public-key lookup.
    let bob = register(&c, "bob");
    let u = c.get("/api/v1/users/bob", Some(&alice.token));
    u.expect(200, "");
    assert_eq!(unb64(&u.json()["ed25519"]), bob.identity.public().ed25519);
    c.get("/api/v1/users/carol", Some(&alice.token))
        .expect(404, "not_found");
    c.get("/api/v1/users/bob", None).expect(401, "unauthorized");

    // Change the passphrase: the new auth works, the old one no longer does.
    let kdf = KdfParams::make(&mut OsRng, KdfParams::FLOOR).unwrap();
    let pk = ProtectorKey::derive_from_passphrase(&kdf, b"new passphrase").unwrap();
    let sealed = alice
        .identity
        .seal(
            &mut OsRng,
            &pk.derive_seal_key(),
            core_crypto::protector::ProtectorKind::Passphrase,
            "alice",
            Some(&kdf),
        )
        .unwrap();
    let new_auth = pk.derive_auth_secret().to_hex().to_string();
    c.call(
        "PUT",
        "/api/v1/account/protectors/passphrase",
        Some(&alice.token),
        Some(
            &json!({"auth": new_auth, "sealed_identity": b64(&sealed), "kdf": b64(&kdf.encode())}),
        ),
    )
    .expect(204, "");
    login(&c, "alice", "passphrase", &new_auth);
    c.post(
        "/api/v1/login",
        None,
        &json!({"user": "alice", "protector": "passphrase", "auth": alice.passphrase_auth}),
    )
    .expect(401, "bad_credentials");
    let pre2 = c
        .post("/api/v1/prelogin", None, &json!({"user": "alice"}))
        .json();
    assert_eq!(unb64(&pre2["kdf"]), kdf.encode());
    // Add a KMS protector.
    let kms_key = ProtectorKey::from_bytes([7; 32]);
    let kms_sealed = alice
        .identity
        .seal(
            &mut OsRng,
            &kms_key.derive_seal_key(),
            core_crypto::protector::ProtectorKind::Kms,
            "alice",
            None,
        )
        .unwrap();
    let kms_auth = kms_key.derive_auth_secret().to_hex().to_string();
    let wrapped = WrappedKey {
        key_arn: "arn:aws:kms:us-east-1:000000000000:key/k1".into(),
        ciphertext: vec![9; 184],
    }
    .encode()
    .unwrap();
    c.call(
        "PUT",
        "/api/v1/account/protectors/kms",
        Some(&alice.token),
        Some(&json!({"auth": kms_auth, "sealed_identity": b64(&kms_sealed), "kdf": b64(b"ZKKM\x01wrapped")})),
    )
    .expect(400, "bad_request");
    c.call(
        "PUT",
        "/api/v1/account/protectors/kms",
        Some(&alice.token),
        Some(&json!({"auth": kms_auth, "sealed_identity": b64(&kms_sealed), "kdf": b64(&wrapped)})),
    )
    .expect(204, "");
    let r = c.post(
        "/api/v1/login",
        None,
        &json!({"user": "alice", "protector": "kms", "auth": kms_auth}),
    );
    r.expect(200, "");
    assert_eq!(unb64(&r.json()["kdf"]), wrapped);
    c.call(
        "PUT",
        "/api/v1/account/protectors/kms",
        Some(&alice.token),
        Some(&json!({"auth": kms_auth, "sealed_identity": b64(&kms_sealed), "kdf": b64(&[0u8; 4097])})),
    )
    .expect(400, "bad_request");
    // A sealed identity of another kind, or kdf on a non-passphrase protector: refused.
    c.call(
        "PUT",
        "/api/v1/account/protectors/recovery",
        Some(&alice.token),
        Some(&json!({"auth": kms_auth, "sealed_identity": b64(&kms_sealed)})),
    )
    .expect(400, "bad_request");

    // Logout ends the session at once.
    c.post("/api/v1/logout", Some(&alice.token), &json!({}))
        .expect(204, "");
    c.get("/api/v1/wikis", Some(&alice.token))
        .expect(401, "unauthorized");
    c.post("/api/v1/logout", Some(&alice.token), &json!({}))
        .expect(401, "unauthorized");
}

#[test]
fn login_is_rate_limited_per_name_and_address() {
    let s = Server::start_with(|cfg| {
        cfg.login.per_pair = 3;
        cfg.login.refill = std::time::Duration::from_secs(60);
    });
    let c = s.client();
    let body = json!({"user": "victim", "protector": "passphrase", "auth": "11".repeat(32)});
    for _ in 0..3 {
        c.post("/api/v1/login", None, &body)
            .expect(401, "bad_credentials");
    }
    let r = c.post("/api/v1/login", None, &body);
    r.expect(429, "rate_limited");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Another name is not affected.
    let other = json!({"user": "other", "protector": "passphrase", "auth": "11".repeat(32)});
    c.post("/api/v1/login", None, &other)
        .expect(401, "bad_credentials");
}

#[test]
fn login_is_rate_limited_per_ip() {
    let s = Server::start_with(|cfg| {
        cfg.login.per_ip = 4;
        cfg.login.refill = std::time::Duration::from_secs(60);
    });
    let c = s.client();
    for i in 0..4 {
        let body =
            json!({"user": format!("u{i}"), "protector": "passphrase", "auth": "11".repeat(32)});
        c.post("/api/v1/login", None, &body)
            .expect(401, "bad_credentials");
    }
    let body = json!({"user": "u9", "protector": "passphrase", "auth": "11".repeat(32)});
    c.post("/api/v1/login", None, &body)
        .expect(429, "rate_limited");
}

/// Seconds since the Unix epoch, as the server counts session expiry.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn sessions_expire() {
    // Expiry is counted in whole seconds from the second of the login, so a session lives
    // between TTL - 1 and TTL seconds: with a 1 s TTL, a request that reached the server in the
    // next second (a few milliseconds later, sometimes) found its fresh session expired. Three
    // seconds leave two for the first request, even on a loaded machine.
    let ttl = 3;
    let s = Server::start_with(|cfg| cfg.session_ttl = std::time::Duration::from_secs(ttl));
    let c = s.client();
    let alice = register(&c, "alice");
    let before = now_unix();
    let r = c.post(
        "/api/v1/login",
        None,
        &json!({"user": "alice", "protector": "passphrase", "auth": alice.passphrase_auth}),
    );
    r.expect(200, "");
    let after = now_unix();
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let expires_at = r.json()["expires_at"].as_i64().unwrap();
    let ttl = ttl as i64;
    assert!(
        (before + ttl..=after + ttl).contains(&expires_at),
        "expires {ttl} s after the login: {expires_at}, login between {before} and {after}"
    );
    c.get("/api/v1/wikis", Some(&token)).expect(200, "");
    // Expired once the clock (the server's, on this machine) reaches `expires_at`: wait for
    // that, not for a fixed time.
    while now_unix() < expires_at {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    c.get("/api/v1/wikis", Some(&token))
        .expect(401, "unauthorized");
}

#[test]
fn wiki_lifecycle_pages_blobs_history_states() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::start_in(&data, |_| {});
    let c = s.client();
    let alice = register(&c, "alice");
    let mut view = create_wiki(&c, &alice);
    let w = view.wiki.clone();

    let list = c.get("/api/v1/wikis", Some(&alice.token));
    list.expect(200, "");
    assert_eq!(
        list.json()["wikis"],
        json!([{"wiki": w, "role": "owner", "seq": 1}])
    );

    // Write, read back by page and by hash, with ETags.
    let (page, hash1, seq) = put_page(&c, &alice, &mut view, "Home.md", "# Hello [[World]]");
    assert_eq!(seq, 2);
    let r = c.get(
        &format!("/api/v1/wikis/{w}/pages/{page}"),
        Some(&alice.token),
    );
    r.expect(200, "");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.header("etag"), Some(format!("\"{hash1}\"").as_str()));
    assert_eq!(r.header("cache-control"), Some("private, no-cache"));
    let opened = view.snap.open_page(&view.keys, &page, &r.body).unwrap();
    assert_eq!(opened.content, b"# Hello [[World]]");
    let etag = format!("\"{hash1}\"");
    let auth = format!("Bearer {}", alice.token);
    let nm = c.raw(
        "GET",
        &format!("/api/v1/wikis/{w}/pages/{page}"),
        &[("Authorization", &auth), ("If-None-Match", &etag)],
        None,
    );
    assert_eq!(nm.status, 304);
    assert!(nm.body.is_empty());
    assert_eq!(nm.header("etag"), Some(etag.as_str()));
    let b = c.get(
        &format!("/api/v1/wikis/{w}/blobs/{hash1}"),
        Some(&alice.token),
    );
    b.expect(200, "");
    assert_eq!(b.body, r.body);
    assert_eq!(
        b.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );
    let nm = c.raw(
        "GET",
        &format!("/api/v1/wikis/{w}/blobs/{hash1}"),
        &[
            ("Authorization", &auth),
            ("If-None-Match", &format!("W/\"x\", {etag}")),
        ],
        None,
    );
    assert_eq!(nm.status, 304);

    // A second version: the page serves it; the old blob stays reachable by hash.
    let (_, hash2, seq) = put_page_id(&c, &alice, &mut view, page, "Home.md", "# Hello again");
    assert_eq!(seq, 3);
    let r = c.get(
        &format!("/api/v1/wikis/{w}/pages/{page}"),
        Some(&alice.token),
    );
    assert_eq!(r.header("etag"), Some(format!("\"{hash2}\"").as_str()));
    c.get(
        &format!("/api/v1/wikis/{w}/blobs/{hash1}"),
        Some(&alice.token),
    )
    .expect(200, "");
    c.get(
        &format!("/api/v1/wikis/{w}/blobs/{}", "ab".repeat(32)),
        Some(&alice.token),
    )
    .expect(404, "not_found");
    let (other, _, _) = put_page(&c, &alice, &mut view, "Other.md", "other");

    // Delete a page.
    let mut batch = view.snap.begin_write();
    batch.remove(&other).unwrap();
    let commit = batch.finish(&alice.identity).unwrap();
    send_commit(&c, &alice.token, &mut view, commit).expect(200, "");
    c.get(
        &format!("/api/v1/wikis/{w}/pages/{other}"),
        Some(&alice.token),
    )
    .expect(404, "not_found");

    // Head, keyring, older states.
    let head = c
        .get(&format!("/api/v1/wikis/{w}/head"), Some(&alice.token))
        .json();
    assert_eq!(unb64(&head["state"]), view.snap.state.as_bytes());
    assert_eq!(unb64(&head["manifest"]), view.snap.manifest.encode());
    assert_eq!(head["keyring_seq"], 1);
    let kr = c
        .get(&format!("/api/v1/wikis/{w}/keyring"), Some(&alice.token))
        .json();
    assert_eq!(kr["versions"].as_array().unwrap().len(), 1);
    let kr1 = c
        .get(
            &format!("/api/v1/wikis/{w}/keyring?since=1"),
            Some(&alice.token),
        )
        .json();
    assert_eq!(kr1["versions"], json!([]));
    let st1 = c.get(&format!("/api/v1/wikis/{w}/states/1"), Some(&alice.token));
    st1.expect(200, "");
    let st1 = core_crypto::state::WikiState::decode(&unb64(&st1.json()["state"])).unwrap();
    assert_eq!(st1.seq, 1);
    c.get(&format!("/api/v1/wikis/{w}/states/99"), Some(&alice.token))
        .expect(404, "not_found");
    // A batch of states (a client's trail): oldest first, each equal to the single-state answer,
    // clamped to the head; malformed ranges refused.
    let batch = c
        .get(
            &format!("/api/v1/wikis/{w}/states?from=2&to=99"),
            Some(&alice.token),
        )
        .json();
    let states = batch["states"].as_array().unwrap();
    let seqs: Vec<u64> = states
        .iter()
        .map(|st| {
            core_crypto::state::WikiState::decode(&unb64(&st["state"]))
                .unwrap()
                .seq
        })
        .collect();
    assert_eq!(seqs, [2, 3, 4, 5]);
    for st in states {
        let seq = core_crypto::state::WikiState::decode(&unb64(&st["state"]))
            .unwrap()
            .seq;
        let one = c
            .get(
                &format!("/api/v1/wikis/{w}/states/{seq}"),
                Some(&alice.token),
            )
            .json();
        assert_eq!(
            (&one["state"], &one["manifest"]),
            (&st["state"], &st["manifest"])
        );
    }
    for bad in ["from=0&to=3", "from=4&to=2", "from=x&to=2", "to=2"] {
        c.get(
            &format!("/api/v1/wikis/{w}/states?{bad}"),
            Some(&alice.token),
        )
        .expect(400, "bad_request");
    }
    c.get(&format!("/api/v1/wikis/{w}/states?from=1&to=2"), None)
        .expect(401, "unauthorized");
    // The identities branch carries alice's sealed identities, as login hands them out.
    let members = git_show(&s.repo_dir(&w), "identities:members/alice.json");
    let member = client::keyfile::MemberIdentity::parse(&members).unwrap();
    assert_eq!(member.user, "alice");
    assert_eq!(
        unb64(&json!(member.recovery.unwrap().sealed_identity)),
        unb64(
            &c.post(
                "/api/v1/login",
                None,
                &json!({"user": "alice", "protector": "recovery", "auth": alice.recovery_auth})
            )
            .json()["sealed_identity"]
        )
    );

    // History: newest first; per page with the envelope hash (null when removed).
    let h = c
        .get(&format!("/api/v1/wikis/{w}/history"), Some(&alice.token))
        .json();
    let entries = h["entries"].as_array().unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![5, 4, 3, 2, 1]);
    assert_eq!(entries[0]["removed"], json!([other.to_hex()]));
    assert_eq!(entries[4]["keyring_changed"], true);
    assert_eq!(entries[3]["keyring_changed"], false);
    assert_eq!(
        unb64(&entries[0]["signer"]),
        alice.identity.public().ed25519
    );
    assert!(entries[0]["time"].as_i64().unwrap() > 1_700_000_000);
    let hp = c
        .get(
            &format!("/api/v1/wikis/{w}/history?page={page}"),
            Some(&alice.token),
        )
        .json();
    let e = hp["entries"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["hash"], json!(hash2.to_hex()));
    assert_eq!(e[1]["hash"], json!(hash1.to_hex()));
    let ho = c
        .get(
            &format!("/api/v1/wikis/{w}/history?page={other}"),
            Some(&alice.token),
        )
        .json();
    assert_eq!(ho["entries"][0]["hash"], json!(null));
    let lim = c
        .get(
            &format!("/api/v1/wikis/{w}/history?limit=2&before=4"),
            Some(&alice.token),
        )
        .json();
    let seqs: Vec<u64> = lim["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 2]);

    // The repository has the documented layout and commit messages.
    let repo = s.repo_dir(&w);
    let (state, _) = check_repo(&repo);
    assert_eq!(state.as_bytes(), view.snap.state.as_bytes());
    let files = git(&repo, &["ls-tree", "-r", "--name-only", "main"]);
    assert_eq!(
        files,
        format!("keyring/0000000001\nmanifest\npages/{page}\nstate\n")
    );
    let author = git(
        &repo,
        &["log", "-1", "--format=%an <%ae>|%cn <%ce>", "main"],
    );
    assert_eq!(
        author.trim(),
        "zkwiki <zkwiki@invalid>|zkwiki <zkwiki@invalid>"
    );

    // A fresh history index (another process, or after a restart) says the same.
    drop(s);
    let s2 = Server::start_in(&data, |_| {});
    let c2 = s2.client();
    let token = login(&c2, "alice", "passphrase", &alice.passphrase_auth);
    let h2 = c2
        .get(&format!("/api/v1/wikis/{w}/history"), Some(&token))
        .json();
    assert_eq!(h2, h);
    let hp2 = c2
        .get(
            &format!("/api/v1/wikis/{w}/history?page={page}"),
            Some(&token),
        )
        .json();
    assert_eq!(hp2, hp);
    c2.get(&format!("/api/v1/wikis/{w}/blobs/{hash1}"), Some(&token))
        .expect(200, "");

    // Delete the wiki: gone for everyone, files removed.
    c2.delete(&format!("/api/v1/wikis/{w}"), Some(&token))
        .expect(204, "");
    c2.get(&format!("/api/v1/wikis/{w}/head"), Some(&token))
        .expect(404, "not_found");
    assert_eq!(
        c2.get("/api/v1/wikis", Some(&token)).json()["wikis"],
        json!([])
    );
    assert!(!repo.exists());
}

#[test]
fn members_invite_write_revoke() {
    let s = Server::start();
    let c = s.client();
    let alice = register(&c, "alice");
    let bob = register(&c, "bob");
    let mut view = create_wiki(&c, &alice);
    let w = view.wiki.clone();
    put_page(&c, &alice, &mut view, "Home.md", "home");

    // Before the invite bob sees nothing, exactly as for a wiki that does not exist.
    let theirs = c.get(&format!("/api/v1/wikis/{w}/head"), Some(&bob.token));
    let none = c.get(
        &format!("/api/v1/wikis/{}/head", "0".repeat(32)),
        Some(&bob.token),
    );
    theirs.expect(404, "not_found");
    assert_eq!(theirs.without_request_id(), none.without_request_id());

    // Invite bob as writer (public key from the server, bound by alice's signature).
    let u = c.get("/api/v1/users/bob", Some(&alice.token)).json();
    let public = core_crypto::identity::PublicIdentity {
        x25519: unb64(&u["x25519"]).try_into().unwrap(),
        ed25519: unb64(&u["ed25519"]).try_into().unwrap(),
    };
    let mut draft = KeyringDraft::edit(&view.snap.keyring, &view.keys).unwrap();
    draft
        .add_member(NewMember {
            name: "bob".into(),
            kind: MemberKind::Person,
            role: Role::Writer,
            public,
            prefix: String::new(),
        })
        .unwrap();
    let k2 = draft.sign(&mut OsRng, &alice.identity).unwrap();
    let mut batch = view.snap.begin_write();
    batch.set_keyring(k2).unwrap();
    let commit = batch.finish(&alice.identity).unwrap();
    send_commit(&c, &alice.token, &mut view, commit).expect(200, "");

    let list = c.get("/api/v1/wikis", Some(&bob.token)).json();
    assert_eq!(
        list["wikis"],
        json!([{"wiki": w, "role": "writer", "seq": 3}])
    );
    let mut bob_view = WikiView::fetch(&c, &bob.token, &w, &bob.identity);
    assert_eq!(bob_view.chain.len(), 2);
    put_page(&c, &bob, &mut bob_view, "bob.md", "from bob");
    // Bob is not an owner: no tokens, no delete.
    c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        Some(&bob.token),
        &json!({"name": "x", "role": "read", "expires_in": 60}),
    )
    .expect(403, "forbidden");
    c.delete(&format!("/api/v1/wikis/{w}"), Some(&bob.token))
        .expect(403, "forbidden");

    // Revoke bob: new epoch; he no longer sees the wiki.
    let mut view = WikiView::fetch(&c, &alice.token, &w, &alice.identity);
    let mut draft = KeyringDraft::edit(&view.snap.keyring, &view.keys).unwrap();
    draft.remove_member("bob").unwrap();
    let k3 = draft.sign(&mut OsRng, &alice.identity).unwrap();
    let mut batch = view.snap.begin_write();
    batch.set_keyring(k3).unwrap();
    let commit = batch.finish(&alice.identity).unwrap();
    send_commit(&c, &alice.token, &mut view, commit).expect(200, "");
    c.get(&format!("/api/v1/wikis/{w}/head"), Some(&bob.token))
        .expect(404, "not_found");
    assert_eq!(
        c.get("/api/v1/wikis", Some(&bob.token)).json()["wikis"],
        json!([])
    );
    let kr = c
        .get(
            &format!("/api/v1/wikis/{w}/keyring?since=2"),
            Some(&alice.token),
        )
        .json();
    assert_eq!(kr["versions"].as_array().unwrap().len(), 1);
    let head = c
        .get(&format!("/api/v1/wikis/{w}/head"), Some(&alice.token))
        .json();
    assert_eq!(head["keyring_seq"], 3);
    check_repo(&s.repo_dir(&w));
    let files = git(
        &s.repo_dir(&w),
        &["ls-tree", "--name-only", "main", "keyring/"],
    );
    assert_eq!(
        files,
        "keyring/0000000001\nkeyring/0000000002\nkeyring/0000000003\n"
    );
}

#[test]
fn agent_tokens_scope_role_expiry_revocation() {
    let s = Server::start();
    let c = s.client();
    let alice = register(&c, "alice");
    let mut view = create_wiki(&c, &alice);
    let w = view.wiki.clone();
    let other = create_wiki(&c, &alice);

    // An agent member (its own key) in the keyring, writer role.
    let agent = UserIdentity::make(&mut OsRng);
    let mut draft = KeyringDraft::edit(&view.snap.keyring, &view.keys).unwrap();
    draft
        .add_member(NewMember {
            name: "agent".into(),
            kind: MemberKind::Agent,
            role: Role::Writer,
            public: agent.public(),
            prefix: String::new(),
        })
        .unwrap();
    let k2 = draft.sign(&mut OsRng, &alice.identity).unwrap();
    let mut batch = view.snap.begin_write();
    batch.set_keyring(k2).unwrap();
    let commit = batch.finish(&alice.identity).unwrap();
    send_commit(&c, &alice.token, &mut view, commit).expect(200, "");

    let mk = |role: &str, secs: u64| {
        let r = c.post(
            &format!("/api/v1/wikis/{w}/tokens"),
            Some(&alice.token),
            &json!({"name": format!("bot-{role}"), "role": role, "expires_in": secs}),
        );
        r.expect(201, "");
        let j = r.json();
        assert!(j["token"].as_str().unwrap().starts_with("zka_"));
        (
            j["id"].as_str().unwrap().to_owned(),
            j["token"].as_str().unwrap().to_owned(),
        )
    };
    let (read_id, read) = mk("read", 3600);
    let (write_id, write) = mk("write", 3600);
    let list = c
        .get(&format!("/api/v1/wikis/{w}/tokens"), Some(&alice.token))
        .json();
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens
            .iter()
            .all(|t| t["revoked"] == false && t.get("token").is_none())
    );
    assert!(
        tokens
            .iter()
            .any(|t| t["id"] == json!(read_id) && t["role"] == "read")
    );

    // Read token reads its wiki only, cannot write, cannot use session routes.
    c.get(&format!("/api/v1/wikis/{w}/head"), Some(&read))
        .expect(200, "");
    c.get(&format!("/api/v1/wikis/{}/head", other.wiki), Some(&read))
        .expect(404, "not_found");
    c.get("/api/v1/wikis", Some(&read)).expect(403, "forbidden");
    c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        Some(&write),
        &json!({"name": "x", "role": "read", "expires_in": 60}),
    )
    .expect(403, "forbidden");
    let mut agent_view = WikiView::fetch(&c, &read, &w, &agent);
    let before = git_log(&s.repo_dir(&w));
    let commit = prepare_put(
        &agent_view,
        &agent,
        PageId::random(&mut OsRng),
        "a.md",
        "agent",
    );
    c.post(
        &format!("/api/v1/wikis/{w}/commits"),
        Some(&read),
        &commit_body(&commit),
    )
    .expect(403, "forbidden");
    assert_eq!(git_log(&s.repo_dir(&w)), before);
    // The write token commits a state signed by the agent's own key.
    let r = send_commit(&c, &write, &mut agent_view, commit);
    r.expect(200, "");
    assert_eq!(r.json()["seq"], 3);

    // Revocation is immediate.
    c.delete(
        &format!("/api/v1/wikis/{w}/tokens/{write_id}"),
        Some(&alice.token),
    )
    .expect(204, "");
    c.get(&format!("/api/v1/wikis/{w}/head"), Some(&write))
        .expect(401, "unauthorized");
    c.delete(
        &format!("/api/v1/wikis/{w}/tokens/{}", "0".repeat(32)),
        Some(&alice.token),
    )
    .expect(404, "not_found");
    let list = c
        .get(&format!("/api/v1/wikis/{w}/tokens"), Some(&alice.token))
        .json();
    assert!(
        list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == json!(write_id) && t["revoked"] == true)
    );

    // Expiry is required, bounded, and enforced.
    for secs in [0u64, 365 * 24 * 3600 + 1] {
        c.post(
            &format!("/api/v1/wikis/{w}/tokens"),
            Some(&alice.token),
            &json!({"name": "x", "role": "read", "expires_in": secs}),
        )
        .expect(400, "bad_request");
    }
    c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        Some(&alice.token),
        &json!({"name": "x", "role": "read"}),
    )
    .expect(400, "bad_request");
    c.post(
        &format!("/api/v1/wikis/{w}/tokens"),
        Some(&alice.token),
        &json!({"name": "x", "role": "admin", "expires_in": 60}),
    )
    .expect(400, "bad_request");
    // Three seconds: long enough for the first request on a loaded machine (one second was
    // not, sometimes), short enough to wait out.
    let (_, short) = mk("read", 3);
    c.get(&format!("/api/v1/wikis/{w}/head"), Some(&short))
        .expect(200, "");
    std::thread::sleep(std::time::Duration::from_millis(4100));
    c.get(&format!("/api/v1/wikis/{w}/head"), Some(&short))
        .expect(401, "unauthorized");
}

#[test]
fn web_dir_is_served_with_csp() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>zkwiki</title>",
    )
    .unwrap();
    std::fs::write(web.path().join("app.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let dir = web.path().to_owned();
    let s = Server::start_with(move |cfg| cfg.web_dir = Some(dir));
    let c = s.client();
    let r = c.get("/", None);
    r.expect(200, "");
    assert!(String::from_utf8_lossy(&r.body).contains("<title>zkwiki</title>"));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'self'")
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let wasm = c.get("/app.wasm", None);
    wasm.expect(200, "");
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(c.get("/missing.js", None).status, 404);
}

#[test]
fn removing_every_page_leaves_a_clean_tree() {
    let s = Server::start();
    let c = s.client();
    let alice = register(&c, "alice");
    let mut view = create_wiki(&c, &alice);
    let (a, _, _) = put_page(&c, &alice, &mut view, "a.md", "a");
    let (b, _, _) = put_page(&c, &alice, &mut view, "b.md", "b");
    let mut batch = view.snap.begin_write();
    batch.remove(&a).unwrap();
    batch.remove(&b).unwrap();
    let commit = batch.finish(&alice.identity).unwrap();
    send_commit(&c, &alice.token, &mut view, commit).expect(200, "");
    let repo = s.repo_dir(&view.wiki);
    check_repo(&repo);
    let files = git(&repo, &["ls-tree", "-r", "--name-only", "main"]);
    assert_eq!(files, "keyring/0000000001\nmanifest\nstate\n");
    let h = c
        .get(
            &format!("/api/v1/wikis/{}/history", view.wiki),
            Some(&alice.token),
        )
        .json();
    let mut removed: Vec<String> = h["entries"][0]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    removed.sort();
    let mut want = vec![a.to_hex(), b.to_hex()];
    want.sort();
    assert_eq!(removed, want);
}

/// The CDN read path (`public_blobs`): a blob by hash is served to anyone who names it, as
/// `public, immutable`, the same bytes with or without a token (so a shared cache keys the URL
/// alone); an unknown hash or wiki is a 404 alike; the head, pages by id and everything else
/// still need a token, and the head is never stored by any cache. Off (the default), a blob
/// needs a token and stays `private`.
#[test]
fn public_blobs_serve_ciphertext_by_hash_and_nothing_else() {
    let s = Server::start_with(|cfg| cfg.public_blobs = true);
    let c = s.client();
    let alice = register(&c, "alice");
    let mut view = create_wiki(&c, &alice);
    let w = view.wiki.clone();
    let (page, hash, _) = put_page(&c, &alice, &mut view, "Home.md", "# secret words");
    let anon = c.get(&format!("/api/v1/wikis/{w}/blobs/{hash}"), None);
    anon.expect(200, "");
    assert_eq!(
        anon.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(anon.header("etag"), Some(format!("\"{hash}\"").as_str()));
    // Ciphertext only: the words are not in it, and the member opens it as usual.
    assert!(!String::from_utf8_lossy(&anon.body).contains("secret words"));
    let opened = view.snap.open_page(&view.keys, &page, &anon.body).unwrap();
    assert_eq!(opened.content, b"# secret words");
    // A token (even a bad one) changes nothing: one answer per URL.
    let with_token = c.get(
        &format!("/api/v1/wikis/{w}/blobs/{hash}"),
        Some(&alice.token),
    );
    assert_eq!(with_token.body, anon.body);
    assert_eq!(
        with_token.header("cache-control"),
        anon.header("cache-control")
    );
    c.get(
        &format!("/api/v1/wikis/{w}/blobs/{hash}"),
        Some("not a token"),
    )
    .expect(200, "");
    // Unknown hash, unknown wiki: the same 404.
    let a = c.get(
        &format!("/api/v1/wikis/{w}/blobs/{}", "ab".repeat(32)),
        None,
    );
    a.expect(404, "not_found");
    let b = c.get(
        &format!("/api/v1/wikis/{}/blobs/{hash}", "cd".repeat(16)),
        None,
    );
    b.expect(404, "not_found");
    assert_eq!(a.without_request_id(), b.without_request_id());
    // Everything else is as private as ever.
    c.get(&format!("/api/v1/wikis/{w}/head"), None)
        .expect(401, "unauthorized");
    c.get(&format!("/api/v1/wikis/{w}/pages/{page}"), None)
        .expect(401, "unauthorized");
    c.get(&format!("/api/v1/wikis/{w}/keyring"), None)
        .expect(401, "unauthorized");
    let kr = c.get(&format!("/api/v1/wikis/{w}/keyring"), Some(&alice.token));
    assert_eq!(kr.header("cache-control"), Some("private, no-store"));
    let head = c.get(&format!("/api/v1/wikis/{w}/head"), Some(&alice.token));
    head.expect(200, "");
    assert_eq!(head.header("cache-control"), Some("private, no-store"));

    // Off (the default): a blob needs a token and no shared cache may keep it.
    let s = Server::start();
    let c = s.client();
    let alice = register(&c, "alice");
    let mut view = create_wiki(&c, &alice);
    let w = view.wiki.clone();
    let (_, hash, _) = put_page(&c, &alice, &mut view, "Home.md", "x");
    c.get(&format!("/api/v1/wikis/{w}/blobs/{hash}"), None)
        .expect(401, "unauthorized");
    let r = c.get(
        &format!("/api/v1/wikis/{w}/blobs/{hash}"),
        Some(&alice.token),
    );
    assert_eq!(
        r.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );
}
