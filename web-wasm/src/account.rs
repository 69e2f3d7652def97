//! Bindings: registration, login, and the signed-in account.
//!
//! The passphrase enters Rust once, goes through Argon2id with parameters the client checks
//! against its floor and ceiling (whatever the server sent), and only the auth secret leaves
//! (in the login body). The seal key and the unsealed identity stay in WebAssembly memory and are
//! wiped when the objects are freed (logout).

use client::account::{self, Protection};
use client::wire::{self, b64, unb64};
use client::{Error, Result, Workspace};
use core_crypto::identity::{UserIdentity, check_name};
use core_crypto::ids::WikiId;
use core_crypto::kdf::KdfParams;
use core_crypto::keyring::{KeyringDraft, MemberKind};
use core_crypto::protector::{ProtectorKey, RecoveryKey};
use core_crypto::snapshot::Snapshot;
use rand_core::OsRng;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::js::{JsResult, js};
use crate::session::{
    WikiSession, parse_head, parse_keyrings, parse_seen, parse_states, parse_user, shown,
};

/// The shortest passphrase the app accepts (the client core's rule, for the form's hint).
pub const MIN_PASSPHRASE_CHARS: usize = account::MIN_PASSPHRASE_CHARS;

fn checked_name(user: &str) -> Result<String> {
    let user = user.trim().to_owned();
    check_name(&user)?;
    Ok(user)
}

/// Opens the identity in a `/login` answer with `protection`, by the client core's checks
/// (the stored form, the sealed identity under this name, the public keys the server lists).
fn unlock(user: &str, protection: &Protection, login_json: &str) -> Result<UserIdentity> {
    let answer: wire::LoginResponse = wire::parse(login_json, "login answer")?;
    let logged = account::open_login(&answer, user, protection).map_err(|e| {
        if e.kind == client::Kind::Access {
            // The server accepted the auth secret derived from this very key, so a sealed
            // identity that does not open under it was altered or belongs to another account.
            let what = if protection.kind() == core_crypto::protector::ProtectorKind::Recovery {
                "recovery key"
            } else {
                "passphrase"
            };
            Error {
                message: format!(
                    "your keys could not be unsealed: the server's copy of your sealed identity \
                     does not open with this {what} ({})",
                    e.message
                ),
                ..e
            }
        } else {
            e
        }
    })?;
    Ok(logged.identity)
}

/// The KDF parameters of a `/prelogin` answer, or of [`new_passphrase_kdf`] (checked when
/// used).
fn prelogin_kdf(prelogin_json: &str) -> Result<Vec<u8>> {
    let resp: wire::PreloginResponse = wire::parse(prelogin_json, "prelogin answer")?;
    unb64(&resp.kdf, "kdf")
}

/// A passphrase protection from a key the worker derived with `kdf_json`'s parameters, which
/// are checked again here against the client's floor and ceiling, whoever derived the key.
fn derived_protection(kdf_json: &str, key: &[u8]) -> Result<Protection> {
    let bytes: [u8; 32] = key
        .try_into()
        .map_err(|_| Error::input("the derived key is not 32 bytes"))?;
    Protection::passphrase_derived(&prelogin_kdf(kdf_json)?, ProtectorKey::from_bytes(bytes))
}

/// Checks a newly chosen passphrase and makes fresh KDF parameters (the defaults) for it, in
/// the `/prelogin` answer's shape: registering and changing the passphrase derive the key from
/// them in the worker ([`derive_passphrase_key`]), as the login does, then hand it to
/// [`Registration::new`] or [`Account::change_passphrase_body`].
#[wasm_bindgen(js_name = newPassphraseKdf)]
pub fn new_passphrase_kdf(passphrase: String) -> JsResult<String> {
    let passphrase = Zeroizing::new(passphrase);
    js((|| {
        let kdf = Protection::new_passphrase_kdf(&mut OsRng, &passphrase, KdfParams::DEFAULT)?;
        Ok(wire::to_json(&wire::PreloginResponse { kdf: b64(&kdf) }))
    })())
}

/// Argon2id of the passphrase with the account's parameters (the `/prelogin` answer; refused
/// outside the client's floor and ceiling): the 32-byte protector key. The login runs this in a
/// worker (`static/argon2-worker.js`, the same module instantiated again) so the tab stays
/// responsive, then hands the key to [`LoginKey::from_derived_key`].
#[wasm_bindgen(js_name = derivePassphraseKey)]
pub fn derive_passphrase_key(prelogin_json: &str, passphrase: String) -> JsResult<Vec<u8>> {
    let passphrase = Zeroizing::new(passphrase);
    js((|| {
        let key = Protection::derive_passphrase_key(&prelogin_kdf(prelogin_json)?, &passphrase)?;
        Ok(key.expose().to_vec())
    })())
}

/// A derived protector key, ready to log in with.
#[wasm_bindgen]
pub struct LoginKey {
    user: String,
    protection: Protection,
}

#[wasm_bindgen]
impl LoginKey {
    /// The passphrase login key from the protector key [`derive_passphrase_key`] derived (in
    /// the login worker) with the account's KDF parameters (the `/prelogin` answer), which are
    /// checked again here against the client's floor and ceiling.
    #[wasm_bindgen(js_name = fromDerivedKey)]
    pub fn from_derived_key(user: &str, prelogin_json: &str, key: &[u8]) -> JsResult<LoginKey> {
        js((|| {
            let user = checked_name(user)?;
            let protection = derived_protection(prelogin_json, key)?;
            Ok(LoginKey { user, protection })
        })())
    }

    /// Derives the recovery protector key from the printed recovery key (`ZKR1-…`).
    #[wasm_bindgen(js_name = fromRecoveryKey)]
    pub fn from_recovery_key(user: &str, recovery: String) -> JsResult<LoginKey> {
        let recovery = Zeroizing::new(recovery);
        js((|| {
            let user = checked_name(user)?;
            let key = RecoveryKey::parse(&recovery)?;
            Ok(LoginKey {
                user,
                protection: Protection::recovery(&key),
            })
        })())
    }

    /// The `/login` request body.
    #[wasm_bindgen(js_name = loginBody)]
    pub fn login_body(&self) -> String {
        wire::to_json(&self.protection.login_body(&self.user))
    }

    /// Opens the sealed identity from the `/login` answer.
    pub fn unlock(&self, login_json: &str) -> JsResult<Account> {
        js(
            unlock(&self.user, &self.protection, login_json).map(|identity| Account {
                user: self.user.clone(),
                identity,
            }),
        )
    }
}

/// A new account being registered: keys made, sealed twice (passphrase and recovery key).
#[wasm_bindgen]
pub struct Registration {
    user: String,
    identity: UserIdentity,
    protection: Protection,
    body: String,
    recovery: Zeroizing<String>,
}

#[wasm_bindgen]
impl Registration {
    /// Makes an identity and a recovery key for `user`, by the client core's registration,
    /// protected by the key the worker derived with [`new_passphrase_kdf`]'s parameters.
    #[wasm_bindgen(constructor)]
    pub fn new(user: &str, kdf_json: &str, key: &[u8]) -> JsResult<Registration> {
        js((|| {
            let user = checked_name(user)?;
            let rng = &mut OsRng;
            let protection = derived_protection(kdf_json, key)?;
            let made = account::register(rng, &user, &protection)?;
            Ok(Registration {
                body: wire::to_json(&made.request),
                recovery: made.recovery.to_display(),
                identity: made.identity,
                protection,
                user,
            })
        })())
    }

    /// The `/register` request body.
    pub fn body(&self) -> String {
        self.body.clone()
    }

    /// The `/login` request body for the new account.
    #[wasm_bindgen(js_name = loginBody)]
    pub fn login_body(&self) -> String {
        wire::to_json(&self.protection.login_body(&self.user))
    }

    /// The recovery key to show once (`ZKR1-…`).
    #[wasm_bindgen(js_name = recoveryKey)]
    pub fn recovery_key(&self) -> String {
        self.recovery.to_string()
    }

    /// The account, once registered and logged in (the login answer checked as every login's,
    /// and its identity the one made here).
    pub fn finish(&self, login_json: &str) -> JsResult<Account> {
        js((|| {
            let identity = unlock(&self.user, &self.protection, login_json)?;
            if identity.public() != self.identity.public() {
                return Err(Error::integrity(
                    "the server lists keys for your new account that are not yours",
                ));
            }
            Ok(Account {
                user: self.user.clone(),
                identity,
            })
        })())
    }
}

/// A newly made wiki: its id and the `/wikis` request body.
#[wasm_bindgen]
pub struct NewWiki {
    wiki: String,
    body: String,
}

#[wasm_bindgen]
impl NewWiki {
    /// The wiki id (derived from our key and a random nonce, so the server cannot choose it).
    #[wasm_bindgen(getter)]
    pub fn wiki(&self) -> String {
        self.wiki.clone()
    }
    /// The `POST /api/v1/wikis` body.
    #[wasm_bindgen(getter)]
    pub fn body(&self) -> String {
        self.body.clone()
    }
}

const DEVICE_MAGIC: &[u8; 5] = b"ZKDV\x01";

/// A signed-in user: their name and unsealed identity.
#[wasm_bindgen]
pub struct Account {
    user: String,
    identity: UserIdentity,
}

impl Account {
    /// Builds an account from an identity (tests, device restore).
    pub fn from_identity(user: &str, identity: UserIdentity) -> Self {
        Self {
            user: user.to_owned(),
            identity,
        }
    }
}

#[wasm_bindgen]
impl Account {
    /// The user name.
    #[wasm_bindgen(getter)]
    pub fn user(&self) -> String {
        self.user.clone()
    }

    /// This account's key fingerprint, to read out to people who invite you.
    #[wasm_bindgen(getter)]
    pub fn fingerprint(&self) -> String {
        self.identity.public().fingerprint()
    }

    /// Makes a new wiki owned by this account: a genesis keyring and first state.
    #[wasm_bindgen(js_name = createWiki)]
    pub fn create_wiki(&self) -> JsResult<NewWiki> {
        js((|| {
            let rng = &mut OsRng;
            let genesis =
                KeyringDraft::genesis(rng, &self.identity, &self.user, MemberKind::Person)?
                    .sign(rng, &self.identity)?;
            let snap = Snapshot::genesis(genesis, &self.identity)?;
            Ok(NewWiki {
                wiki: snap.keyring.wiki.to_hex(),
                body: wire::to_json(&wire::CreateWikiRequest {
                    keyring: b64(snap.keyring.as_bytes()),
                    state: b64(snap.state.as_bytes()),
                    manifest: b64(&snap.manifest.encode()),
                }),
            })
        })())
    }

    /// Verifies and opens a wiki: `keyring_json` is the `/keyring` answer (the whole chain),
    /// `head_json` the `/head` answer, `seen_json` what this browser remembered (or `""`), and
    /// `trail_json` the `/states` answer for the range [`crate::session::trail_needed`] named
    /// (`""` when it named none): every transition from the state seen to the head is verified,
    /// so a head from another branch is refused at any distance (IntegrityError).
    #[wasm_bindgen(js_name = openWiki)]
    pub fn open_wiki(
        &self,
        wiki: &str,
        keyring_json: &str,
        head_json: &str,
        seen_json: &str,
        trail_json: &str,
    ) -> JsResult<WikiSession> {
        crate::install_nfc();
        js((|| {
            let wiki = WikiId::from_hex(wiki)?;
            let versions = parse_keyrings(keyring_json)?;
            let (state, manifest) = parse_head(head_json)?;
            let seen = parse_seen(seen_json)?;
            let trail = parse_states(trail_json)?;
            let ws = Workspace::verify_and_open(
                &self.identity,
                &self.user,
                wiki,
                &versions,
                &state,
                &manifest,
                &seen,
                &trail,
            )?;
            Ok(WikiSession::new(ws))
        })())
    }

    /// A new passphrase: the `PUT /api/v1/account/protectors/passphrase` body (the identity
    /// sealed again under the key the worker derived with [`new_passphrase_kdf`]'s fresh
    /// parameters and salt), by the client core's protector replacement. After logging in with
    /// the recovery key, this is how the user sets a passphrase they know.
    #[wasm_bindgen(js_name = changePassphraseBody)]
    pub fn change_passphrase_body(&self, kdf_json: &str, key: &[u8]) -> JsResult<String> {
        js((|| {
            let rng = &mut OsRng;
            let protection = derived_protection(kdf_json, key)?;
            let sealed = protection.seal(rng, &self.identity, &self.user)?;
            Ok(wire::to_json(&protection.replace_body(&sealed)))
        })())
    }

    /// The secret to keep on this device when the user asks to stay signed in. The caller
    /// encrypts it at once with a non-extractable WebCrypto key and stores only that ciphertext.
    #[wasm_bindgen(js_name = exportForDevice)]
    pub fn export_for_device(&self) -> Vec<u8> {
        let secret = self.identity.to_secret_bytes();
        let mut out = Vec::with_capacity(5 + 1 + self.user.len() + 64);
        out.extend_from_slice(DEVICE_MAGIC);
        out.push(self.user.len() as u8);
        out.extend_from_slice(self.user.as_bytes());
        out.extend_from_slice(secret.as_ref());
        out
    }

    /// Restores an account from [`Account::export_for_device`]'s bytes.
    #[wasm_bindgen(js_name = importFromDevice)]
    pub fn import_from_device(bytes: &[u8]) -> JsResult<Account> {
        js((|| {
            let bad = || Error::input("the saved sign-in on this device is unreadable");
            let rest = bytes
                .strip_prefix(DEVICE_MAGIC.as_slice())
                .ok_or_else(bad)?;
            let (&len, rest) = rest.split_first().ok_or_else(bad)?;
            let (name, secret) = rest.split_at_checked(len as usize).ok_or_else(bad)?;
            let user = core::str::from_utf8(name).map_err(|_| bad())?;
            check_name(user)?;
            Ok(Account {
                user: user.to_owned(),
                identity: UserIdentity::from_secret_bytes(secret)?,
            })
        })())
    }

    /// Reads a `/users/{name}` answer: the name, the key fingerprint to confirm with that person
    /// out of band, and their age recipient. JSON.
    #[wasm_bindgen(js_name = describeUser)]
    pub fn describe_user(user_json: &str) -> JsResult<String> {
        js((|| {
            let (user, public) = parse_user(user_json)?;
            Ok(crate::json::Obj::new()
                .str("user", &shown(&user))
                .str("fingerprint", &public.fingerprint())
                .str("age_recipient", &public.age_recipient_string()?)
                .finish())
        })())
    }
}
