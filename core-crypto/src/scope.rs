//! Epoch secrets and the scope keys derived from them.
//!
//! Each key epoch of a wiki has one random 32-byte [`EpochSecret`]. Pages are never encrypted under
//! it directly but under a scope key: `scope_secret = HKDF(ikm = epoch secret, info = SCOPE_SECRET ‖
//! prefix)`, where the prefix is `""` for the whole wiki or a folder such as `research/`. Holding a
//! scope key reveals nothing about other scopes or the epoch secret (HKDF is one-way), which is how
//! an agent can be limited to one folder. A scope's public id is
//! `HKDF(ikm = scope secret, info = SCOPE_ID)[..16]`; it appears in envelopes and the manifest.

use rand_core::CryptoRngCore;

use crate::hazmat::hkdf_sha256;
use crate::ids::{PageId, ScopeId};
use crate::secret::{Secret32, secret_newtype};
use crate::{labels, path};

secret_newtype!(
    /// The random secret of one key epoch of one wiki.
    EpochSecret
);

impl EpochSecret {
    /// A fresh random epoch secret.
    pub fn make(rng: &mut impl CryptoRngCore) -> Self {
        Self(Secret32::random(rng))
    }

    /// The scope key for `prefix` (`""` for the whole wiki). The prefix must be valid
    /// ([`path::check_prefix`]); callers check it when it enters the system.
    pub fn derive_scope(&self, epoch: u32, prefix: &str) -> ScopeKey {
        debug_assert!(path::check_prefix(prefix).is_ok());
        let mut info = Vec::with_capacity(labels::SCOPE_SECRET.len() + prefix.len());
        info.extend_from_slice(labels::SCOPE_SECRET);
        info.extend_from_slice(prefix.as_bytes());
        let mut out = [0u8; 32];
        // 32-byte output: cannot exceed HKDF's limit.
        let _ = hkdf_sha256(&[], self.expose(), &info, &mut out);
        let key = ScopeKey::new(epoch, Secret32::new(out));
        zeroize::Zeroize::zeroize(&mut out);
        key
    }
}

/// A key that opens the pages of one scope in one epoch.
#[derive(Clone, PartialEq, Eq)]
pub struct ScopeKey {
    epoch: u32,
    id: ScopeId,
    secret: Secret32,
}

impl core::fmt::Debug for ScopeKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ScopeKey(epoch {}, {}, [REDACTED])", self.epoch, self.id)
    }
}

impl ScopeKey {
    /// A scope key from its secret; the id is derived.
    pub fn new(epoch: u32, secret: Secret32) -> Self {
        let mut id = [0u8; 16];
        let _ = hkdf_sha256(&[], secret.expose(), labels::SCOPE_ID, &mut id);
        Self {
            epoch,
            id: ScopeId(id),
            secret,
        }
    }
    /// The epoch this key belongs to.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
    /// The public scope id.
    pub fn id(&self) -> ScopeId {
        self.id
    }
    /// The secret bytes; keep the borrow short.
    pub fn expose(&self) -> &[u8; 32] {
        self.secret.expose()
    }

    /// The page id under which the wiki's settings are stored (whole-wiki scope only):
    /// `HKDF(ikm = scope secret, info = SETTINGS_PAGE_ID)[..16]`.
    pub fn derive_settings_page_id(&self) -> PageId {
        let mut id = [0u8; 16];
        let _ = hkdf_sha256(&[], self.secret.expose(), labels::SETTINGS_PAGE_ID, &mut id);
        PageId(id)
    }

    /// The page id under which this scope's encrypted search index is stored:
    /// `HKDF(ikm = scope secret, info = INDEX_PAGE_ID)[..16]`. Only key holders can tell which page
    /// is the index; to the server it is one more page.
    pub fn derive_index_page_id(&self) -> PageId {
        let mut id = [0u8; 16];
        let _ = hkdf_sha256(&[], self.secret.expose(), labels::INDEX_PAGE_ID, &mut id);
        PageId(id)
    }
}
