//! The `#[wasm_bindgen]` bindings as JavaScript sees them, compiled to WebAssembly and run by
//! `wasm-bindgen-test-runner` (in node): registration and login (passphrase, recovery key, the
//! KDF floor, a server lying about keys), a wiki created, written, read, searched and shared, and
//! the errors JavaScript receives, by name.
//!
//! Run: `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner cargo test
//! --target wasm32-unknown-unknown -p web-wasm --tests` (`cargo xtask test` does).

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;
use web_wasm::account::{
    Account, LoginKey, Registration, derive_passphrase_key, new_passphrase_kdf,
};
use web_wasm::js::JsResult;
use web_wasm::session::{
    PageView, WikiSession, diff_lines, markdown_path, merge_texts, trail_needed,
};

const PASS: &str = "correct horse battery staple";

fn error_name(e: JsValue) -> String {
    let e: js_sys::Error = e.into();
    String::from(e.name())
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// A page view as JSON, with its whole HTML (both parts) under `html`.
fn view_json(mut v: PageView) -> Value {
    let mut j = parse(&v.meta());
    j["html"] = (v.take_html() + &v.take_rest()).into();
    j
}

/// What the server would answer to a login with the passphrase protector.
fn login_answer(reg_body: &Value) -> String {
    json!({
        "token": "zks_test",
        "expires_at": 0,
        "sealed_identity": reg_body["sealed_identity"],
        "kdf": reg_body["kdf"],
        "x25519": reg_body["x25519"],
        "ed25519": reg_body["ed25519"],
    })
    .to_string()
}

/// A passphrase login key the way the app makes one: Argon2id (in its worker), then the key.
fn passphrase_key(user: &str, passphrase: String, prelogin: &str) -> JsResult<LoginKey> {
    let key = derive_passphrase_key(prelogin, passphrase)?;
    LoginKey::from_derived_key(user, prelogin, &key)
}

/// A new passphrase the way the app sets one: fresh parameters (the passphrase checked), then
/// Argon2id (in its worker). The parameters (as a `/prelogin` answer) and the key.
fn new_passphrase(passphrase: &str) -> JsResult<(String, Vec<u8>)> {
    let kdf = new_passphrase_kdf(passphrase.to_owned())?;
    let key = derive_passphrase_key(&kdf, passphrase.to_owned())?;
    Ok((kdf, key))
}

fn register(user: &str) -> (Registration, Value, Account) {
    let (kdf, key) = new_passphrase(PASS).unwrap();
    let reg = Registration::new(user, &kdf, &key).unwrap();
    let body = parse(&reg.body());
    let account = reg.finish(&login_answer(&body)).unwrap();
    (reg, body, account)
}

#[wasm_bindgen_test]
fn register_then_log_in_with_passphrase_and_recovery_key() {
    let (reg, body, account) = register("alice");
    assert_eq!(body["user"], "alice");
    assert_eq!(parse(&reg.login_body())["auth"], body["auth"]);

    // A later login: prelogin gives the KDF parameters, the auth matches, the identity opens.
    let prelogin = json!({"kdf": body["kdf"]}).to_string();
    let key = passphrase_key("alice", PASS.to_owned(), &prelogin).unwrap();
    let login = parse(&key.login_body());
    assert_eq!(
        (login["protector"].as_str(), &login["auth"]),
        (Some("passphrase"), &body["auth"])
    );
    let again = key.unlock(&login_answer(&body)).unwrap();
    assert_eq!(again.fingerprint(), account.fingerprint());

    // The recovery key opens the recovery-sealed identity.
    let rkey = LoginKey::from_recovery_key("alice", reg.recovery_key().to_lowercase()).unwrap();
    assert_eq!(parse(&rkey.login_body())["auth"], body["recovery"]["auth"]);
    let answer = json!({
        "sealed_identity": body["recovery"]["sealed_identity"],
        "kdf": null,
        "x25519": body["x25519"],
        "ed25519": body["ed25519"],
    })
    .to_string();
    assert_eq!(
        rkey.unlock(&answer).unwrap().fingerprint(),
        account.fingerprint()
    );

    // After a recovery login, a new passphrase: its body opens the identity with the new one.
    let (kdf, new_key) = new_passphrase("a brand new passphrase").unwrap();
    let change = parse(&account.change_passphrase_body(&kdf, &new_key).unwrap());
    let prelogin = json!({"kdf": change["kdf"]}).to_string();
    let key = passphrase_key("alice", "a brand new passphrase".to_owned(), &prelogin).unwrap();
    assert_eq!(parse(&key.login_body())["auth"], change["auth"]);
    let answer = json!({"sealed_identity": change["sealed_identity"], "kdf": change["kdf"],
                        "x25519": body["x25519"], "ed25519": body["ed25519"]})
    .to_string();
    assert_eq!(
        key.unlock(&answer).unwrap().fingerprint(),
        account.fingerprint()
    );

    // A typo in the recovery key is caught before anything is sent.
    let mut typo = reg.recovery_key();
    typo.replace_range(10..11, if &typo[10..11] == "A" { "B" } else { "A" });
    assert_eq!(
        error_name(LoginKey::from_recovery_key("alice", typo).err().unwrap()),
        "InputError"
    );
}

#[wasm_bindgen_test]
fn the_client_refuses_weak_kdf_parameters_and_foreign_keys() {
    let (_, body, bob) = register("bob");
    // alg 1, m = 1024 KiB, t = 1, p = 1, salt: far below the floor.
    let mut weak = vec![1u8];
    weak.extend_from_slice(&1024u32.to_be_bytes());
    weak.extend_from_slice(&1u32.to_be_bytes());
    weak.extend_from_slice(&1u32.to_be_bytes());
    weak.extend_from_slice(&[7u8; 16]);
    let prelogin = json!({"kdf": data_encoding::BASE64.encode(&weak)}).to_string();
    let err = passphrase_key("bob", PASS.to_owned(), &prelogin)
        .err()
        .unwrap();
    assert_eq!(error_name(err), "SecurityError");
    // The tab checks the parameters again, whatever key the worker handed back.
    let err = LoginKey::from_derived_key("bob", &prelogin, &[7u8; 32])
        .err()
        .unwrap();
    assert_eq!(error_name(err), "SecurityError");
    // So do registering and changing the passphrase (the same derived-key path).
    let err = Registration::new("carl", &prelogin, &[7u8; 32])
        .err()
        .unwrap();
    assert_eq!(error_name(err), "SecurityError");
    let err = bob
        .change_passphrase_body(&prelogin, &[7u8; 32])
        .err()
        .unwrap();
    assert_eq!(error_name(err), "SecurityError");
    // A key of the wrong length is refused, not truncated or padded.
    let good = json!({"kdf": body["kdf"]}).to_string();
    let err = Registration::new("carl", &good, &[7u8; 31]).err().unwrap();
    assert_eq!(error_name(err), "InputError");
    // A new passphrase under the minimum is refused before any derivation.
    let err = new_passphrase_kdf("too short".to_owned()).err().unwrap();
    assert_eq!(error_name(err), "InputError");

    // A wrong passphrase does not open the sealed identity (and says so, in the client core's
    // classification: an access error).
    let prelogin = json!({"kdf": body["kdf"]}).to_string();
    let key = passphrase_key("bob", "wrong passphrase!".to_owned(), &prelogin).unwrap();
    let err: js_sys::Error = key.unlock(&login_answer(&body)).err().unwrap().into();
    assert_eq!(String::from(err.name()), "AccessError");
    assert!(String::from(err.message()).contains("could not be unsealed"));

    // The server lists someone else's public key for bob: refused.
    let key = passphrase_key("bob", PASS.to_owned(), &prelogin).unwrap();
    let mut lying = parse(&login_answer(&body));
    lying["x25519"] = json!(data_encoding::BASE64.encode(&[9u8; 32]));
    assert_eq!(
        error_name(key.unlock(&lying.to_string()).err().unwrap()),
        "IntegrityError"
    );
}

/// A wiki as the server would hold it: the keyring chain, every state, and blobs by hash. Commits
/// are accepted by the real server's rule (`core_crypto::snapshot::check_commit`), not a weaker one.
#[derive(Clone)]
struct Server {
    keyrings: Vec<Vec<u8>>,
    states: Vec<(Vec<u8>, Vec<u8>)>,
    blobs: Vec<Vec<u8>>,
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

fn unb64(v: &Value) -> Vec<u8> {
    data_encoding::BASE64
        .decode(v.as_str().unwrap().as_bytes())
        .unwrap()
}

impl Server {
    fn create(body: &Value) -> Self {
        Self {
            keyrings: vec![unb64(&body["keyring"])],
            states: vec![(unb64(&body["state"]), unb64(&body["manifest"]))],
            blobs: Vec::new(),
        }
    }
    fn keyring_json(&self) -> String {
        let v: Vec<String> = self.keyrings.iter().map(|k| b64(k)).collect();
        json!({ "versions": v }).to_string()
    }
    fn head_json(&self) -> String {
        let (s, m) = self.states.last().unwrap();
        json!({"state": b64(s), "manifest": b64(m), "keyring_seq": self.keyrings.len()}).to_string()
    }
    /// The `/states?from=&to=` answer for a range the bindings named (`""` for `null`).
    fn states_json(&self, range: &str) -> String {
        let r = parse(range);
        if r.is_null() {
            return String::new();
        }
        let (from, to) = (r["from"].as_u64().unwrap(), r["to"].as_u64().unwrap());
        let states: Vec<Value> = self.states[from as usize - 1..to as usize]
            .iter()
            .map(|(s, m)| json!({"state": b64(s), "manifest": b64(m)}))
            .collect();
        json!({ "states": states }).to_string()
    }
    fn apply(&mut self, body: &str) {
        use core_crypto::keyring::Keyring;
        use core_crypto::state::{Manifest, WikiState};
        let b = parse(body);
        let (hs, hm) = self.states.last().unwrap();
        let keyring = b["keyring"].as_str().map(|_| unb64(&b["keyring"]));
        let blobs: Vec<Vec<u8>> = b["blobs"].as_array().unwrap().iter().map(unb64).collect();
        let (state, manifest) = (unb64(&b["state"]), unb64(&b["manifest"]));
        let accepted = core_crypto::snapshot::check_commit(
            &Keyring::decode(self.keyrings.last().unwrap()).unwrap(),
            &WikiState::decode(hs).unwrap(),
            &Manifest::decode(hm).unwrap(),
            WikiState::decode(&state).unwrap(),
            &manifest,
            blobs,
            keyring.as_deref(),
        )
        .unwrap();
        if let Some(k) = accepted.keyring {
            self.keyrings.push(k.as_bytes().to_vec());
        }
        self.blobs
            .extend(accepted.blobs.into_iter().map(|(_, _, b)| b));
        self.states.push((state, manifest));
    }
    fn blob(&self, hash: &str) -> Vec<u8> {
        self.blobs
            .iter()
            .find(|b| core_crypto::ids::Digest32::of(b).to_hex() == hash)
            .unwrap()
            .clone()
    }
    /// Opens the wiki as a browser does: the trail from what it saw, then the head.
    fn open(&self, who: &Account, wiki: &str, seen: &str) -> Result<WikiSession, JsValue> {
        let head = self.head_json();
        let trail = self.states_json(&trail_needed(seen, &head)?);
        who.open_wiki(wiki, &self.keyring_json(), &head, seen, &trail)
    }
    fn load_all(&self, s: &mut WikiSession) {
        for _ in 0..5 {
            let wanted = parse(&s.wanted());
            let list = wanted.as_array().unwrap();
            if list.is_empty() {
                return;
            }
            for w in list {
                let page = w["page"].as_str().unwrap();
                s.load(page, &self.blob(w["hash"].as_str().unwrap()))
                    .unwrap();
            }
        }
    }
}

#[wasm_bindgen_test]
fn create_write_read_search_share() {
    let (_, _, alice) = register("carol");
    let made = alice.create_wiki().unwrap();
    let create = parse(&made.body());
    let mut server = Server::create(&create);
    let wiki = made.wiki();
    let mut s = server.open(&alice, &wiki, "").unwrap();
    let text =
        "---\ntitle: Home\n---\n# Hello\n\nSee [[Plan]].\n\n<script>window.pwned=1</script>\n";
    let mut w = s.prepare_put("", "Home.md", text, "", 1.7e12, "").unwrap();
    server.apply(&w.body());
    s.accept(&mut w).unwrap();
    let seen = s.seen_json("");

    // Reload: verify from the server's bytes with what this browser remembered.
    let mut s2 = server.open(&alice, &wiki, &seen).unwrap();
    server.load_all(&mut s2);
    let pages = parse(&s2.pages());
    assert_eq!(pages[0]["path"], "Home.md");
    let id = s2.find("home.md").unwrap();
    let hash = s2.hash_of(&id).unwrap();
    let view = view_json(s2.view(&id, &server.blob(&hash)).unwrap());
    let html = view["html"].as_str().unwrap();
    assert_eq!(view["title"], "Home");
    assert!(html.contains("wikilink missing"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert_eq!(parse(&s2.search("hel", 5))[0]["path"], "Home.md");

    // A changed byte is an IntegrityError naming the problem, and the page is listed as failed.
    let mut bad = server.blob(&hash);
    let n = bad.len() - 1;
    bad[n] ^= 1;
    let err: js_sys::Error = s2.view(&id, &bad).err().unwrap().into();
    assert_eq!(String::from(err.name()), "IntegrityError");
    assert!(String::from(err.message()).contains("signed manifest"));
    assert_eq!(parse(&s2.failures())[0]["page"], id.as_str());

    // Rollback: a browser that saw the new state refuses the old one, before fetching a trail.
    let seen_new = s2.seen_json("");
    let old_head = json!({"state": create["state"], "manifest": create["manifest"]}).to_string();
    let err = trail_needed(&seen_new, &old_head).err().unwrap();
    assert_eq!(error_name(err), "IntegrityError");
    let err = alice
        .open_wiki(&wiki, &server.keyring_json(), &old_head, &seen_new, "")
        .err()
        .unwrap();
    assert_eq!(error_name(err), "IntegrityError");

    // Invite dave as a reader, with the fingerprint confirmed.
    let (_, dave_body, dave) = register("dave");
    let user =
        json!({"user": "dave", "x25519": dave_body["x25519"], "ed25519": dave_body["ed25519"]})
            .to_string();
    let described = parse(&Account::describe_user(&user).unwrap());
    assert_eq!(described["fingerprint"], dave.fingerprint());
    assert_eq!(
        error_name(
            s.prepare_invite(&user, "reader", "0000 0000", 2.0)
                .err()
                .unwrap()
        ),
        "InputError"
    );
    let mut w = s
        .prepare_invite(
            &user,
            "reader",
            described["fingerprint"].as_str().unwrap(),
            2.0,
        )
        .unwrap();
    server.apply(&w.body());
    s.accept(&mut w).unwrap();
    let members = parse(&s.members());
    assert_eq!(members.as_array().unwrap().len(), 2);

    let mut ds = server.open(&dave, &wiki, "").unwrap();
    server.load_all(&mut ds);
    let view = view_json(ds.view(&id, &server.blob(&hash)).unwrap());
    assert_eq!(view["path"], "Home.md");
    assert_eq!(parse(&ds.info())["role"], "reader");
    assert_eq!(
        error_name(ds.prepare_put("", "x.md", "x", "", 0.0, "").err().unwrap()),
        "AccessError"
    );

    // An agent grant yields a key file; removal reports what was readable.
    let mut g = s.prepare_agent("bot", "reader", 3.0).unwrap();
    server.apply(&g.body());
    s.accept(&mut g).unwrap();
    let file = parse(&g.agent_key_file("http://x", &wiki, "zka_t", 1.0).unwrap());
    assert_eq!(
        (file["user"].as_str(), file["agent"]["role"].as_str()),
        (Some("bot"), Some("read"))
    );
    assert_eq!(file["agent"]["wiki"].as_str(), Some(wiki.as_str()));
    assert!(
        file["age_identity"]
            .as_str()
            .unwrap()
            .starts_with("AGE-SECRET-KEY-1")
    );
    let r = s.prepare_remove("bot", 4.0).unwrap();
    let report = parse(&r.report().unwrap());
    assert_eq!(
        (
            report["pages_readable"].as_u64(),
            report["new_epoch"].as_u64()
        ),
        (Some(1), Some(2))
    );

    // Device sign-in round trip.
    let restored = Account::import_from_device(&alice.export_for_device()).unwrap();
    assert_eq!(restored.fingerprint(), alice.fingerprint());
}

#[wasm_bindgen_test]
fn diff_and_merge_bindings() {
    let d = parse(&diff_lines("a\nb\n", "a\nc\n"));
    assert_eq!(
        (d["added"].as_u64(), d["removed"].as_u64()),
        (Some(1), Some(1))
    );
    let m = parse(&merge_texts("x\n", "mine\n", "theirs\n", "bob's version"));
    assert_eq!(m["conflicts"], 1);
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .contains(">>>>>>> bob's version")
    );
}

fn put(server: &mut Server, s: &mut WikiSession, path: &str, text: &str) {
    let mut w = s.prepare_put("", path, text, "", 1.0, "").unwrap();
    server.apply(&w.body());
    s.accept(&mut w).unwrap();
}

/// A server that forks the wiki and later serves the other branch ahead of what this browser
/// saw (by 1, 2 and 5 states) is caught on a fresh open and by a session's refresh: an
/// IntegrityError naming the fork, and the session keeps the head it had.
#[wasm_bindgen_test]
fn a_fork_at_any_distance_is_an_integrity_error() {
    let (_, _, alice) = register("erin");
    let made = alice.create_wiki().unwrap();
    let wiki = made.wiki();
    let mut server = Server::create(&parse(&made.body()));
    let mut s = server.open(&alice, &wiki, "").unwrap();
    put(&mut server, &mut s, "Home.md", "base\n");
    for distance in [1, 2, 5] {
        let fork_point = server.clone();
        // This browser's own write, acknowledged by the server: the state it remembers.
        put(&mut server, &mut s, &format!("Mine{distance}.md"), "mine\n");
        let seen = s.seen_json("");
        let mut branch = fork_point;
        let mut other = branch.open(&alice, &wiki, "").unwrap();
        branch.load_all(&mut other);
        for n in 0..=distance {
            put(
                &mut branch,
                &mut other,
                &format!("B{distance}-{n}.md"),
                "other\n",
            );
        }
        let err: js_sys::Error = branch.open(&alice, &wiki, &seen).err().unwrap().into();
        assert_eq!(
            String::from(err.name()),
            "IntegrityError",
            "distance {distance}"
        );
        assert!(
            String::from(err.message()).contains("fork"),
            "distance {distance}"
        );
        let head = branch.head_json();
        let trail = branch.states_json(&s.trail_to(&head).unwrap());
        let err = s.refresh("", &head, &trail).err().unwrap();
        assert_eq!(
            error_name(err),
            "IntegrityError",
            "session, distance {distance}"
        );
        assert_eq!(s.seen_json(""), seen, "the session keeps its head");
        // The honest server still opens.
        server.open(&alice, &wiki, &seen).unwrap();
    }
}

/// The new-page and rename forms go through the one path policy: refused paths are
/// InputErrors that say why.
#[wasm_bindgen_test]
fn paths_the_policy_refuses_are_input_errors() {
    let (_, _, alice) = register("frank");
    let made = alice.create_wiki().unwrap();
    let wiki = made.wiki();
    let mut server = Server::create(&parse(&made.body()));
    let mut s = server.open(&alice, &wiki, "").unwrap();
    put(&mut server, &mut s, "Home.md", "home\n");
    let home = s.find("Home.md").unwrap();
    let long = "x".repeat(300);
    for (typed, why) in [
        ("notes/.git/x", "'.git'"),
        (long.as_str(), "255 bytes"),
        ("CON", "devices"),
        (".zkwiki/x", "reserved"),
    ] {
        let path = markdown_path(typed);
        let err: js_sys::Error = s
            .prepare_put("", &path, "x", "", 1.0, "")
            .err()
            .unwrap()
            .into();
        assert_eq!(String::from(err.name()), "InputError", "{typed}");
        assert!(
            String::from(err.message()).contains(why),
            "{typed}: {}",
            String::from(err.message())
        );
        let err: js_sys::Error = s
            .prepare_rename(&home, typed, 1.0, false)
            .err()
            .unwrap()
            .into();
        assert_eq!(String::from(err.name()), "InputError", "rename {typed}");
    }
    // A name taken up to case is refused too, and up to Unicode form: the bundle has no
    // normalization tables, the browser's own NFC is installed at start.
    let err = s
        .prepare_put("", &markdown_path("home"), "x", "", 1.0, "")
        .err()
        .unwrap();
    assert_eq!(error_name(err), "InputError");
    put(&mut server, &mut s, "Caf\u{e9}.md", "precomposed\n");
    let err: js_sys::Error = s
        .prepare_put("", "Cafe\u{301}.md", "decomposed", "", 1.0, "")
        .err()
        .unwrap()
        .into();
    assert_eq!(String::from(err.name()), "InputError");
    let message = String::from(err.message());
    assert!(message.contains("clashes"), "{message}");
}
