//! A wiki member's client in the test process, speaking the real server's API: it registers
//! (the same request the browser's registration makes, so the browser can then log in with the
//! passphrase), opens and writes wikis through the client core, and, as a hostile member,
//! commits records no honest client produces (`core_crypto::envelope::hostile`), which the
//! server accepts like any writer's. Tests use it to prepare what the browser then meets.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use client::Workspace;
use client::account::{self, Protection};
use client::wire::{self, b64};
use client::workspace::Pending;
use core_crypto::identity::UserIdentity;
use core_crypto::ids::{PageId, WikiId};
use core_crypto::kdf::KdfParams;
use core_crypto::keyring::{KeyringDraft, MemberKind, Role};
use core_crypto::snapshot::{SeenRecord, Snapshot};
use rand_core::OsRng;

/// An HTTP answer that was not a success: status and body.
#[derive(Debug)]
pub struct Refused {
    /// HTTP status.
    pub status: u16,
    /// The body (an `{"error": …}` object).
    pub body: String,
}

/// A registered, logged-in member.
pub struct Member {
    /// The user name.
    pub name: String,
    /// The member's keys.
    pub identity: UserIdentity,
    base: String,
    token: String,
    agent: ureq::Agent,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<String, Refused> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match method {
        "GET" => {
            let mut r = agent.get(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        _ => {
            let mut r = agent.post(url).header("Content-Type", "application/json");
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.send(body.unwrap_or("{}"))
        }
    };
    let mut resp = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .unwrap_or_default();
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        Err(Refused { status, body: text })
    }
}

impl Member {
    /// Registers `name` with `passphrase` (Argon2id at the defaults, a recovery key too) by the
    /// client core's registration, and logs in, checking the answer as every client does.
    pub fn register(base: &str, name: &str, passphrase: &str) -> Member {
        let rng = &mut OsRng;
        let protection = Protection::new_passphrase(rng, passphrase, KdfParams::DEFAULT).unwrap();
        let made = account::register(rng, name, &protection).unwrap();
        let agent = agent();
        let body = wire::to_json(&made.request);
        send(
            &agent,
            "POST",
            &format!("{base}{}", wire::route::REGISTER),
            None,
            Some(&body),
        )
        .unwrap_or_else(|e| panic!("register {name}: {e:?}"));
        let login = wire::to_json(&protection.login_body(name));
        let answer = send(
            &agent,
            "POST",
            &format!("{base}{}", wire::route::LOGIN),
            None,
            Some(&login),
        )
        .unwrap_or_else(|e| panic!("login {name}: {e:?}"));
        let resp: wire::LoginResponse = wire::parse(&answer, "login").unwrap();
        let identity = account::open_login(&resp, name, &protection)
            .unwrap()
            .identity;
        assert_eq!(identity.public(), made.identity.public());
        Member {
            name: name.to_owned(),
            identity,
            base: base.to_owned(),
            token: resp.token,
            agent,
        }
    }

    /// `GET` an API path (panics on an error answer).
    pub fn get(&self, path: &str) -> String {
        send(
            &self.agent,
            "GET",
            &format!("{}{path}", self.base),
            Some(&self.token),
            None,
        )
        .unwrap_or_else(|e| panic!("GET {path}: {e:?}"))
    }

    /// `POST` to an API path.
    pub fn post(&self, path: &str, body: &str) -> Result<String, Refused> {
        send(
            &self.agent,
            "POST",
            &format!("{}{path}", self.base),
            Some(&self.token),
            Some(body),
        )
    }

    /// Creates a wiki owned by this member; returns its id.
    pub fn create_wiki(&self) -> String {
        let genesis =
            KeyringDraft::genesis(&mut OsRng, &self.identity, &self.name, MemberKind::Person)
                .unwrap()
                .sign(&mut OsRng, &self.identity)
                .unwrap();
        let snap = Snapshot::genesis(genesis, &self.identity).unwrap();
        let body = wire::to_json(&wire::CreateWikiRequest {
            keyring: b64(snap.keyring.as_bytes()),
            state: b64(snap.state.as_bytes()),
            manifest: b64(&snap.manifest.encode()),
        });
        self.post(wire::route::WIKIS, &body).unwrap();
        snap.keyring.wiki.to_hex()
    }

    fn keyrings(&self, wiki: &str) -> Vec<Vec<u8>> {
        let k: wire::KeyringResponse =
            wire::parse(&self.get(&wire::route::keyring(wiki, 0)), "keyring").unwrap();
        k.decode().unwrap()
    }

    fn head(&self, wiki: &str) -> (Vec<u8>, Vec<u8>) {
        let h: wire::HeadResponse =
            wire::parse(&self.get(&wire::route::head(wiki)), "head").unwrap();
        h.decode().unwrap()
    }

    /// Opens the wiki's current head (verified from genesis) and loads every page.
    pub fn open(&self, wiki: &str) -> Workspace {
        let (state, manifest) = self.head(wiki);
        let mut ws = Workspace::verify_and_open(
            &self.identity,
            &self.name,
            WikiId::from_hex(wiki).unwrap(),
            &self.keyrings(wiki),
            &state,
            &manifest,
            &SeenRecord::default(),
            &[],
        )
        .unwrap();
        for _ in 0..10 {
            let wanted = ws.wanted();
            if wanted.is_empty() {
                break;
            }
            for (id, hash) in wanted {
                let bytes = self.blob(wiki, &hash.to_hex());
                let _ = ws.load(id, &bytes);
            }
        }
        ws
    }

    /// An envelope by hash.
    pub fn blob(&self, wiki: &str, hash: &str) -> Vec<u8> {
        let url = format!("{}{}", self.base, wire::route::blob(wiki, hash));
        let mut resp = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "blob {hash}");
        resp.body_mut().read_to_vec().unwrap()
    }

    /// Sends a prepared write and applies it.
    pub fn commit(&self, wiki: &str, ws: &mut Workspace, pending: Pending) {
        let body = wire::to_json(&pending.body());
        self.post(&wire::route::commits(wiki), &body)
            .unwrap_or_else(|e| panic!("commit: {e:?}"));
        ws.accept(pending).unwrap();
    }

    /// Writes a markdown page (new, or the page at that path).
    pub fn put(&self, wiki: &str, ws: &mut Workspace, path: &str, text: &str) -> PageId {
        let id = ws.find(path);
        if let Some(id) = id
            && !ws.is_loaded(&id)
        {
            let hash = ws.snapshot().manifest.pages[&id].hash.to_hex();
            ws.load(id, &self.blob(wiki, &hash)).unwrap();
        }
        let base = id.and_then(|i| ws.page(&i).map(|p| p.hash));
        let p = ws
            .prepare_put(id, path, text.as_bytes().to_vec(), base, 1_700_000_000_000)
            .unwrap();
        let page = p.page.unwrap();
        self.commit(wiki, ws, p);
        page
    }

    /// As the wiki's owner, adds `who` with `role` (fingerprint taken as confirmed).
    pub fn add_member(&self, wiki: &str, who: &Member, role: Role) {
        let mut ws = self.open(wiki);
        let d = ws
            .add_member(
                &who.name,
                MemberKind::Person,
                role,
                who.identity.public(),
                "",
                1,
            )
            .unwrap();
        let p = d.finish(client::workspace::IndexWrite::WhenDue).unwrap();
        self.commit(wiki, &mut ws, p);
    }

    /// As a hostile member whose client speaks the format directly: commits a record with this
    /// raw path and author, sealed under the whole-wiki key, without any of the checks an
    /// honest client makes. The server accepts it (only readers can tell).
    pub fn hostile_put(&self, wiki: &str, page: PageId, path: &[u8], author: &[u8]) {
        let keyrings = self.keyrings(wiki);
        let (state, manifest) = self.head(wiki);
        let snap = Snapshot::verify(&keyrings, &state, &manifest, &SeenRecord::default()).unwrap();
        let keys = snap.keyring.unlock(&self.identity).unwrap();
        let key = keys.key_for_writing("x.md").unwrap();
        let env = core_crypto::envelope::hostile::seal_unchecked(
            &mut OsRng,
            &key,
            &snap.keyring.wiki,
            &page,
            1,
            path,
            author,
            1_700_000_000_000,
            b"# written by a hostile client\n",
        );
        let mut batch = snap.begin_write();
        batch.put_sealed(page, env).unwrap();
        let c = batch.finish(&self.identity).unwrap();
        let body = wire::to_json(&wire::CommitRequest::of(&c));
        self.post(&wire::route::commits(wiki), &body)
            .unwrap_or_else(|e| panic!("hostile commit {path:?}: {e:?}"));
    }

    /// The state sequence of the server's head.
    pub fn head_seq(&self, wiki: &str) -> u64 {
        client::head::state_seq(&self.head(wiki).0).unwrap()
    }
}
