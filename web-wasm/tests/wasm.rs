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
use web_wasm::account::{Account, LoginKey, Registration};
use web_wasm::session::{PageView, WikiSession, diff_lines, merge_texts};

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

fn register(user: &str) -> (Registration, Value, Account) {
    let reg = Registration::new(user, PASS.to_owned()).unwrap();
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
    let key = LoginKey::from_passphrase("alice", PASS.to_owned(), &prelogin).unwrap();
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
    let change = parse(
        &account
            .change_passphrase_body("a brand new passphrase".to_owned())
            .unwrap(),
    );
    let prelogin = json!({"kdf": change["kdf"]}).to_string();
    let key =
        LoginKey::from_passphrase("alice", "a brand new passphrase".to_owned(), &prelogin).unwrap();
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
    let (_, body, _) = register("bob");
    // alg 1, m = 1024 KiB, t = 1, p = 1, salt: far below the floor.
    let mut weak = vec![1u8];
    weak.extend_from_slice(&1024u32.to_be_bytes());
    weak.extend_from_slice(&1u32.to_be_bytes());
    weak.extend_from_slice(&1u32.to_be_bytes());
    weak.extend_from_slice(&[7u8; 16]);
    let prelogin = json!({"kdf": data_encoding::BASE64.encode(&weak)}).to_string();
    let err = LoginKey::from_passphrase("bob", PASS.to_owned(), &prelogin)
        .err()
        .unwrap();
    assert_eq!(error_name(err), "SecurityError");

    // A wrong passphrase does not open the sealed identity (and says so).
    let prelogin = json!({"kdf": body["kdf"]}).to_string();
    let key = LoginKey::from_passphrase("bob", "wrong passphrase!".to_owned(), &prelogin).unwrap();
    assert_eq!(
        error_name(key.unlock(&login_answer(&body)).err().unwrap()),
        "IntegrityError"
    );

    // The server lists someone else's public key for bob: refused.
    let key = LoginKey::from_passphrase("bob", PASS.to_owned(), &prelogin).unwrap();
    let mut lying = parse(&login_answer(&body));
    lying["x25519"] = json!(data_encoding::BASE64.encode(&[9u8; 32]));
    assert_eq!(
        error_name(key.unlock(&lying.to_string()).err().unwrap()),
        "IntegrityError"
    );
}

/// A wiki as the server would hold it: the keyring chain, the head, and blobs by hash.
struct Server {
    keyrings: Vec<String>,
    state: String,
    manifest: String,
    blobs: Vec<String>,
}

impl Server {
    fn keyring_json(&self) -> String {
        json!({"versions": self.keyrings}).to_string()
    }
    fn head_json(&self) -> String {
        json!({"state": self.state, "manifest": self.manifest, "keyring_seq": self.keyrings.len()})
            .to_string()
    }
    fn apply(&mut self, body: &str) {
        let b = parse(body);
        self.state = b["state"].as_str().unwrap().to_owned();
        self.manifest = b["manifest"].as_str().unwrap().to_owned();
        if let Some(k) = b["keyring"].as_str() {
            self.keyrings.push(k.to_owned());
        }
        for blob in b["blobs"].as_array().unwrap() {
            self.blobs.push(blob.as_str().unwrap().to_owned());
        }
    }
    fn blob(&self, hash: &str) -> Vec<u8> {
        self.blobs
            .iter()
            .map(|b| data_encoding::BASE64.decode(b.as_bytes()).unwrap())
            .find(|b| core_crypto::ids::Digest32::of(b).to_hex() == hash)
            .unwrap()
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
    let mut server = Server {
        keyrings: vec![create["keyring"].as_str().unwrap().to_owned()],
        state: create["state"].as_str().unwrap().to_owned(),
        manifest: create["manifest"].as_str().unwrap().to_owned(),
        blobs: Vec::new(),
    };
    let wiki = made.wiki();
    let mut s = alice
        .open_wiki(&wiki, &server.keyring_json(), &server.head_json(), "")
        .unwrap();
    let text =
        "---\ntitle: Home\n---\n# Hello\n\nSee [[Plan]].\n\n<script>window.pwned=1</script>\n";
    let mut w = s.prepare_put("", "Home.md", text, "", 1.7e12).unwrap();
    server.apply(&w.body());
    s.accept(&mut w).unwrap();
    let seen = s.seen_json();

    // Reload: verify from the server's bytes with what this browser remembered.
    let mut s2 = alice
        .open_wiki(&wiki, &server.keyring_json(), &server.head_json(), &seen)
        .unwrap();
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

    // Rollback: a browser that saw the new state refuses the old one.
    let seen_new = s2.seen_json();
    let old_head = json!({"state": create["state"], "manifest": create["manifest"]}).to_string();
    let err = alice
        .open_wiki(&wiki, &server.keyring_json(), &old_head, &seen_new)
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
            s.prepare_invite(&user, "reader", "0000 0000")
                .err()
                .unwrap()
        ),
        "InputError"
    );
    let mut w = s
        .prepare_invite(&user, "reader", described["fingerprint"].as_str().unwrap())
        .unwrap();
    server.apply(&w.body());
    s.accept(&mut w).unwrap();
    let members = parse(&s.members());
    assert_eq!(members.as_array().unwrap().len(), 2);

    let mut ds = dave
        .open_wiki(&wiki, &server.keyring_json(), &server.head_json(), "")
        .unwrap();
    server.load_all(&mut ds);
    let view = view_json(ds.view(&id, &server.blob(&hash)).unwrap());
    assert_eq!(view["path"], "Home.md");
    assert_eq!(parse(&ds.info())["role"], "reader");
    assert_eq!(
        error_name(ds.prepare_put("", "x.md", "x", "", 0.0).err().unwrap()),
        "AccessError"
    );

    // An agent grant yields a key file; removal reports what was readable.
    let mut g = s.prepare_agent("bot", "reader").unwrap();
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
    let r = s.prepare_remove("bot").unwrap();
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
