//! Every domain-separation string the core uses, in one place.
//!
//! Each label is versioned (`v1`): a change of construction gets a new label, never a reuse. The
//! list is mirrored in `docs/format.md`; a test checks that no two labels are equal.

/// HKDF info: recovery key → protector key.
pub const PROTECTOR_RECOVERY: &[u8] = b"zkwiki/v1/protector/recovery";
/// HKDF info: protector key → auth secret (the only value the server ever sees, and only hashed).
pub const USER_AUTH: &[u8] = b"zkwiki/v1/user/auth";
/// HKDF info: protector key → key that seals the user's private identity.
pub const USER_SEAL: &[u8] = b"zkwiki/v1/user/seal";
/// Sealed-box label for the user's private identity.
pub const SEAL_IDENTITY: &[u8] = b"zkwiki/v1/seal/identity";
/// Sealed-box label for pages.
pub const SEAL_PAGE: &[u8] = b"zkwiki/v1/seal/page";
/// Sealed-box label for the link that wraps epoch `e-1`'s secret under epoch `e`'s.
pub const SEAL_EPOCH_LINK: &[u8] = b"zkwiki/v1/seal/epoch-link";
/// Sealed-box label for the keyring's list of scope prefixes.
pub const SEAL_SCOPES: &[u8] = b"zkwiki/v1/seal/scopes";
/// HKDF info prefix: epoch secret → scope secret (followed by the scope prefix bytes).
pub const SCOPE_SECRET: &[u8] = b"zkwiki/v1/scope/";
/// HKDF info: scope secret → public scope id (16 bytes).
pub const SCOPE_ID: &[u8] = b"zkwiki/v1/scope-id";
/// HKDF info: scope secret → the page id of that scope's search index.
pub const INDEX_PAGE_ID: &[u8] = b"zkwiki/v1/index-page-id";
/// HKDF info: whole-wiki scope secret → page id of the wiki's settings (title, description).
pub const SETTINGS_PAGE_ID: &[u8] = b"zkwiki/v1/settings-page-id";
/// SHA-256 prefix: creator key + nonce → wiki id.
pub const WIKI_ID: &[u8] = b"zkwiki/v1/wiki-id";
/// SHA-256 prefix: public keys → fingerprint.
pub const FINGERPRINT: &[u8] = b"zkwiki/v1/fingerprint";
/// Ed25519 message prefix for keyring signatures.
pub const SIGN_KEYRING: &[u8] = b"zkwiki/v1/sign/keyring";
/// Ed25519 message prefix for wiki state signatures.
pub const SIGN_STATE: &[u8] = b"zkwiki/v1/sign/state";
/// Ed25519 message prefix for the proof a new account holds its signing key.
pub const SIGN_REGISTER: &[u8] = b"zkwiki/v1/sign/register";
/// Ed25519 message prefix for a witness's co-signature of a checkpoint.
pub const SIGN_COSIGNATURE: &[u8] = b"zkwiki/v1/sign/cosignature";
/// SHA-256 prefix: witness key → fingerprint.
pub const WITNESS_FINGERPRINT: &[u8] = b"zkwiki/v1/witness-fingerprint";
/// SHA-256 prefix: wiki id + state hash → the head's safety number.
pub const SAFETY_HEAD: &[u8] = b"zkwiki/v1/safety/head";
/// SHA-256 prefix: wiki id + keyring hash → the keyring's safety number.
pub const SAFETY_KEYRING: &[u8] = b"zkwiki/v1/safety/keyring";

// Server-side only (never part of a format a client checks), kept here so no label is reused.
/// SHA-256 prefix: the server's stored hash of an auth secret.
pub const SERVER_AUTH_HASH: &[u8] = b"zkwiki/v1/server/auth-hash";
/// SHA-256 prefix: the server's stored hash of a session or agent token secret.
pub const SERVER_TOKEN_HASH: &[u8] = b"zkwiki/v1/server/token-hash";
/// SHA-256 prefix: the stored hash compared against when a login names no account.
pub const SERVER_DUMMY_HASH: &[u8] = b"zkwiki/v1/server/dummy";
/// HMAC-SHA256 prefix (server secret): the salt of fake KDF parameters for unknown names.
pub const SERVER_FAKE_SALT: &[u8] = b"zkwiki/v1/server/fake-salt";
/// HMAC-SHA256 prefix (server secret): the bytes of a fake KMS-wrapped key for unknown names.
pub const SERVER_FAKE_KMS: &[u8] = b"zkwiki/v1/server/fake-kms";

/// Every label, for the uniqueness test and the spec.
pub const ALL: &[&[u8]] = &[
    PROTECTOR_RECOVERY,
    USER_AUTH,
    USER_SEAL,
    SEAL_IDENTITY,
    SEAL_PAGE,
    SEAL_EPOCH_LINK,
    SEAL_SCOPES,
    SCOPE_SECRET,
    SCOPE_ID,
    INDEX_PAGE_ID,
    SETTINGS_PAGE_ID,
    WIKI_ID,
    FINGERPRINT,
    SIGN_KEYRING,
    SIGN_STATE,
    SIGN_REGISTER,
    SIGN_COSIGNATURE,
    WITNESS_FINGERPRINT,
    SAFETY_HEAD,
    SAFETY_KEYRING,
    SERVER_AUTH_HASH,
    SERVER_TOKEN_HASH,
    SERVER_DUMMY_HASH,
    SERVER_FAKE_SALT,
    SERVER_FAKE_KMS,
];

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_distinct_and_versioned() {
        for (i, a) in super::ALL.iter().enumerate() {
            assert!(a.starts_with(b"zkwiki/v1/"));
            for b in &super::ALL[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
