//! Bindings: registration, login, and the signed-in account.
//!
//! The passphrase enters Rust once, goes through Argon2id with parameters the client checks
//! against its floor and ceiling (whatever the server sent), and only the auth secret leaves
//! (in the login body). The seal key and the unsealed identity stay in WebAssembly memory and are
//! wiped when the objects are freed (logout).

use client::wire::{self, b64, unb64};
use client::{Error, Result, Workspace};
use core_crypto::identity::{PublicIdentity, UserIdentity, check_name};
use core_crypto::ids::WikiId;
use core_crypto::kdf::KdfParams;
use core_crypto::keyring::{KeyringDraft, MemberKind};
use core_crypto::protector::{ProtectorKey, ProtectorKind, RecoveryKey};
use core_crypto::snapshot::Snapshot;
use rand_core::OsRng;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::js::{JsResult, js};
use crate::session::{
    WikiSession, parse_head, parse_keyrings, parse_seen, parse_states, parse_user, shown,
};

/// The shortest passphrase the app accepts at registration.
pub const MIN_PASSPHRASE_CHARS: usize = 10;

fn checked_name(user: &str) -> Result<String> {
    let user = user.trim().to_owned();
    check_name(&user)?;
    Ok(user)
}

/// A derived protector key, ready to log in with.
#[wasm_bindgen]
pub struct LoginKey {
    user: String,
    kind: ProtectorKind,
    kdf: Option<KdfParams>,
    key: ProtectorKey,
    auth: Zeroizing<String>,
}

fn unlock_sealed(
    user: &str,
    kind: ProtectorKind,
    kdf: Option<&KdfParams>,
    key: &ProtectorKey,
    login_json: &str,
) -> Result<UserIdentity> {
    let resp: wire::LoginResponse = wire::parse(login_json, "login answer")?;
    let sealed = unb64(&resp.sealed_identity, "sealed_identity")?;
    if UserIdentity::sealed_kind(&sealed)? != kind {
        return Err(Error::protocol(
            "the sealed identity is for another protector",
        ));
    }
    let identity = UserIdentity::unseal(&sealed, &key.derive_seal_key(), user, kdf).map_err(|e| {
        let err = Error::from(e);
        let message = format!(
            "your keys could not be unsealed: the server's copy of your sealed identity does not \
             open with this {} (it was altered, or belongs to another account) ({})",
            if kind == ProtectorKind::Recovery {
                "recovery key"
            } else {
                "passphrase"
            },
            err.message
        );
        Error { message, ..err }
    })?;
    let public = identity.public();
    let claimed = PublicIdentity {
        x25519: unb64(&resp.x25519, "x25519")?
            .try_into()
            .map_err(|_| Error::protocol("x25519 is not 32 bytes"))?,
        ed25519: unb64(&resp.ed25519, "ed25519")?
            .try_into()
            .map_err(|_| Error::protocol("ed25519 is not 32 bytes"))?,
    };
    if claimed != public {
        return Err(core_crypto::Error::Mismatch(
            "the server lists public keys for your account that are not yours (others would \
             invite a key you do not hold)",
        )
        .into());
    }
    Ok(identity)
}

#[wasm_bindgen]
impl LoginKey {
    /// Derives the passphrase protector key with the account's KDF parameters (the `/prelogin`
    /// answer), refusing parameters below the client's floor. Takes about a second.
    #[wasm_bindgen(js_name = fromPassphrase)]
    pub fn from_passphrase(
        user: &str,
        passphrase: String,
        prelogin_json: &str,
    ) -> JsResult<LoginKey> {
        let passphrase = Zeroizing::new(passphrase);
        js((|| {
            let user = checked_name(user)?;
            let resp: wire::PreloginResponse = wire::parse(prelogin_json, "prelogin answer")?;
            let kdf = KdfParams::decode(&unb64(&resp.kdf, "kdf")?)?;
            let key = ProtectorKey::derive_from_passphrase(&kdf, passphrase.as_bytes())?;
            let auth = key.derive_auth_secret().to_hex();
            Ok(LoginKey {
                user,
                kind: ProtectorKind::Passphrase,
                kdf: Some(kdf),
                key,
                auth,
            })
        })())
    }

    /// Derives the recovery protector key from the printed recovery key (`ZKR1-…`).
    #[wasm_bindgen(js_name = fromRecoveryKey)]
    pub fn from_recovery_key(user: &str, recovery: String) -> JsResult<LoginKey> {
        let recovery = Zeroizing::new(recovery);
        js((|| {
            let user = checked_name(user)?;
            let key = RecoveryKey::parse(&recovery)
                .map_err(|e| Error::input(e.to_string()))?
                .derive_protector_key();
            let auth = key.derive_auth_secret().to_hex();
            Ok(LoginKey {
                user,
                kind: ProtectorKind::Recovery,
                kdf: None,
                key,
                auth,
            })
        })())
    }

    /// The `/login` request body.
    #[wasm_bindgen(js_name = loginBody)]
    pub fn login_body(&self) -> String {
        wire::to_json(&wire::LoginRequest {
            user: self.user.clone(),
            protector: self.kind.name().to_owned(),
            auth: self.auth.to_string(),
        })
    }

    /// Opens the sealed identity from the `/login` answer.
    pub fn unlock(&self, login_json: &str) -> JsResult<Account> {
        js(unlock_sealed(
            &self.user,
            self.kind,
            self.kdf.as_ref(),
            &self.key,
            login_json,
        )
        .map(|identity| Account {
            user: self.user.clone(),
            identity,
        }))
    }
}

/// A new account being registered: keys made, sealed twice (passphrase and recovery key).
#[wasm_bindgen]
pub struct Registration {
    user: String,
    identity: UserIdentity,
    body: String,
    login: String,
    recovery: Zeroizing<String>,
}

#[wasm_bindgen]
impl Registration {
    /// Makes an identity, KDF parameters (the defaults) and a recovery key for `user`.
    #[wasm_bindgen(constructor)]
    pub fn new(user: &str, passphrase: String) -> JsResult<Registration> {
        let passphrase = Zeroizing::new(passphrase);
        js((|| {
            let user = checked_name(user)?;
            if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
                return Err(Error::input(format!(
                    "use a passphrase of at least {MIN_PASSPHRASE_CHARS} characters"
                )));
            }
            let rng = &mut OsRng;
            let identity = UserIdentity::make(rng);
            let public = identity.public();
            let kdf = KdfParams::make(rng, KdfParams::DEFAULT)?;
            let pk = ProtectorKey::derive_from_passphrase(&kdf, passphrase.as_bytes())?;
            let sealed = identity.seal(
                rng,
                &pk.derive_seal_key(),
                ProtectorKind::Passphrase,
                &user,
                Some(&kdf),
            )?;
            let recovery = RecoveryKey::make(rng);
            let rk = recovery.derive_protector_key();
            let sealed_recovery = identity.seal(
                rng,
                &rk.derive_seal_key(),
                ProtectorKind::Recovery,
                &user,
                None,
            )?;
            let auth = pk.derive_auth_secret().to_hex();
            let body = wire::to_json(&wire::RegisterRequest {
                user: user.clone(),
                x25519: b64(&public.x25519),
                ed25519: b64(&public.ed25519),
                protector: "passphrase".to_owned(),
                kdf: b64(&kdf.encode()),
                auth: auth.to_string(),
                sealed_identity: b64(&sealed),
                recovery: wire::ProtectorBody {
                    auth: rk.derive_auth_secret().to_hex().to_string(),
                    sealed_identity: b64(&sealed_recovery),
                },
                proof: b64(&identity.registration_proof(&user)?),
            });
            let login = wire::to_json(&wire::LoginRequest {
                user: user.clone(),
                protector: "passphrase".to_owned(),
                auth: auth.to_string(),
            });
            Ok(Registration {
                user,
                identity,
                body,
                login,
                recovery: recovery.to_display(),
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
        self.login.clone()
    }

    /// The recovery key to show once (`ZKR1-…`).
    #[wasm_bindgen(js_name = recoveryKey)]
    pub fn recovery_key(&self) -> String {
        self.recovery.to_string()
    }

    /// The account, once registered and logged in (checks the server lists our public keys).
    pub fn finish(&self, login_json: &str) -> JsResult<Account> {
        js((|| {
            let resp: wire::LoginResponse = wire::parse(login_json, "login answer")?;
            let public = self.identity.public();
            if unb64(&resp.x25519, "x25519")? != public.x25519
                || unb64(&resp.ed25519, "ed25519")? != public.ed25519
            {
                return Err(core_crypto::Error::Mismatch(
                    "the server lists public keys for your new account that are not yours",
                )
                .into());
            }
            Ok(Account {
                user: self.user.clone(),
                identity: UserIdentity::from_secret_bytes(
                    self.identity.to_secret_bytes().as_ref(),
                )?,
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

    /// A new passphrase: the `PUT /api/v1/account/protectors/passphrase` body (fresh Argon2id
    /// parameters and salt, the identity sealed again). After logging in with the recovery key,
    /// this is how the user sets a passphrase they know.
    #[wasm_bindgen(js_name = changePassphraseBody)]
    pub fn change_passphrase_body(&self, passphrase: String) -> JsResult<String> {
        let passphrase = Zeroizing::new(passphrase);
        js((|| {
            if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
                return Err(Error::input(format!(
                    "use a passphrase of at least {MIN_PASSPHRASE_CHARS} characters"
                )));
            }
            let rng = &mut OsRng;
            let kdf = KdfParams::make(rng, KdfParams::DEFAULT)?;
            let pk = ProtectorKey::derive_from_passphrase(&kdf, passphrase.as_bytes())?;
            let sealed = self.identity.seal(
                rng,
                &pk.derive_seal_key(),
                ProtectorKind::Passphrase,
                &self.user,
                Some(&kdf),
            )?;
            Ok(wire::to_json(&wire::ProtectorRequest {
                auth: pk.derive_auth_secret().to_hex().to_string(),
                sealed_identity: b64(&sealed),
                kdf: Some(b64(&kdf.encode())),
            }))
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
