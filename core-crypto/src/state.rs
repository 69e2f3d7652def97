//! The manifest and the signed wiki state.
//!
//! The manifest lists every page: `page id → (epoch, scope id, size, SHA-256 of the envelope)`. The
//! state signs, with a writer's Ed25519 key, the wiki id, a sequence number, the epoch, the hash of
//! the keyring it was written under, the manifest digest and the previous state's hash. A client
//! holding a verified keyring and a state can therefore check every blob the server hands it, and
//! by remembering the highest sequence it has seen ([`Seen`]) it detects rollback and forks.
//!
//! ```text
//! manifest = "ZKMF" ‖ 1 ‖ count (u32) ‖ entries sorted by page id, each
//!            page id (16) ‖ epoch (u32) ‖ scope id (16) ‖ size (u32) ‖ SHA-256(envelope) (32)
//! state    = "ZKST" ‖ 1 ‖ wiki id (16) ‖ seq (u64) ‖ epoch (u32) ‖ keyring hash (32)
//!            ‖ SHA-256(manifest) (32) ‖ previous state hash (32) ‖ signer (32)
//!            ‖ Ed25519(SIGN_STATE ‖ all preceding bytes) (64)
//! ```

use std::collections::BTreeMap;

use crate::envelope::{self, EnvelopeHeader};
use crate::identity::{PublicIdentity, UserIdentity};
use crate::ids::{Digest32, PageId, ScopeId, WikiId};
pub use crate::keyring::Seen;
use crate::keyring::{Keyring, Role};
use crate::wire::{Reader, Writer};
use crate::{Error, Result, labels};

const MANIFEST_MAGIC: &[u8; 4] = b"ZKMF";
const STATE_MAGIC: &[u8; 4] = b"ZKST";
const VERSION: u8 = 1;
/// Most pages in one wiki.
pub const MAX_PAGES: usize = 1_000_000;
/// Encoded size of one manifest entry.
pub const ENTRY_LEN: usize = 72;
/// Encoded size of a state.
pub const STATE_LEN: usize = 225;

/// One page in the manifest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ManifestEntry {
    /// Key epoch of the envelope.
    pub epoch: u32,
    /// Scope of the envelope.
    pub scope: ScopeId,
    /// Envelope size in bytes.
    pub size: u32,
    /// SHA-256 of the envelope.
    pub hash: Digest32,
}

impl ManifestEntry {
    /// The entry describing an envelope (reads its clear header and hashes it).
    pub fn for_envelope(envelope_bytes: &[u8]) -> Result<Self> {
        let header = envelope::read_header(envelope_bytes)?;
        Ok(Self {
            epoch: header.epoch,
            scope: header.scope,
            size: u32::try_from(envelope_bytes.len())
                .map_err(|_| Error::Invalid("envelope too large"))?,
            hash: Digest32::of(envelope_bytes),
        })
    }

    /// Checks that `envelope_bytes` is exactly the blob this entry signs for.
    pub fn check_envelope(&self, envelope_bytes: &[u8]) -> Result<EnvelopeHeader> {
        if Digest32::of(envelope_bytes) != self.hash || envelope_bytes.len() != self.size as usize {
            return Err(Error::Mismatch(
                "page blob differs from the signed manifest (modified, swapped or an old version)",
            ));
        }
        let header = envelope::read_header(envelope_bytes)?;
        if header.epoch != self.epoch || header.scope != self.scope {
            return Err(Error::Mismatch(
                "page header differs from the signed manifest",
            ));
        }
        Ok(header)
    }
}

/// All pages of a wiki at one state.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Manifest {
    /// Pages by id.
    pub pages: BTreeMap<PageId, ManifestEntry>,
}

impl Manifest {
    /// Encodes (entries sorted by page id, as the map keeps them).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_header(MANIFEST_MAGIC, VERSION);
        w.buf.reserve(4 + ENTRY_LEN * self.pages.len());
        w.u32(self.pages.len() as u32);
        for (id, e) in &self.pages {
            w.bytes(id.as_bytes());
            w.u32(e.epoch);
            w.bytes(e.scope.as_bytes());
            w.u32(e.size);
            w.bytes(e.hash.as_bytes());
        }
        w.buf
    }

    /// Parses; page ids must be strictly increasing.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "manifest");
        r.header(MANIFEST_MAGIC, VERSION)?;
        let count = r.u32()? as usize;
        if count > MAX_PAGES || r.remaining() != count * ENTRY_LEN {
            return Err(Error::Malformed {
                what: "manifest",
                reason: "count does not match length",
            });
        }
        let mut pages = BTreeMap::new();
        let mut last: Option<PageId> = None;
        for _ in 0..count {
            let id = PageId(r.array()?);
            if last.is_some_and(|l| l >= id) {
                return Err(Error::Malformed {
                    what: "manifest",
                    reason: "page ids not strictly sorted",
                });
            }
            last = Some(id);
            let entry = ManifestEntry {
                epoch: r.u32()?,
                scope: ScopeId(r.array()?),
                size: r.u32()?,
                hash: Digest32(r.array()?),
            };
            pages.insert(id, entry);
        }
        r.finish()?;
        Ok(Self { pages })
    }

    /// SHA-256 of the encoding.
    pub fn digest(&self) -> Digest32 {
        Digest32::of(&self.encode())
    }
}

/// The fields a writer signs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StateDraft {
    /// The wiki.
    pub wiki: WikiId,
    /// Sequence number: previous + 1 (1 for the first state).
    pub seq: u64,
    /// The keyring's current epoch.
    pub epoch: u32,
    /// Hash of the keyring version this state was written under.
    pub keyring: Digest32,
    /// Digest of the manifest.
    pub manifest: Digest32,
    /// Hash of the previous state (zero for the first).
    pub prev: Digest32,
}

impl StateDraft {
    /// The draft that follows `prev` with a new manifest under `keyring`.
    pub fn next(prev: &WikiState, keyring: &Keyring, manifest: &Manifest) -> Self {
        Self {
            wiki: prev.wiki,
            seq: prev.seq + 1,
            epoch: keyring.epoch,
            keyring: keyring.hash(),
            manifest: manifest.digest(),
            prev: prev.hash(),
        }
    }

    /// The first state of a wiki (empty manifest) under its genesis keyring.
    pub fn first(keyring: &Keyring) -> Self {
        Self {
            wiki: keyring.wiki,
            seq: 1,
            epoch: keyring.epoch,
            keyring: keyring.hash(),
            manifest: Manifest::default().digest(),
            prev: Digest32::ZERO,
        }
    }

    /// Signs with a writer's key.
    pub fn sign(&self, signer: &UserIdentity) -> WikiState {
        let public = signer.public();
        let mut w = Writer::with_header(STATE_MAGIC, VERSION);
        w.bytes(self.wiki.as_bytes());
        w.u64(self.seq);
        w.u32(self.epoch);
        w.bytes(self.keyring.as_bytes());
        w.bytes(self.manifest.as_bytes());
        w.bytes(self.prev.as_bytes());
        w.bytes(&public.ed25519);
        let sig = signer.sign(labels::SIGN_STATE, &w.buf);
        w.bytes(&sig);
        let hash = Digest32::of(&w.buf);
        WikiState {
            draft: *self,
            signer: public.ed25519,
            bytes: w.buf,
            hash,
        }
    }
}

/// A parsed state whose signature verifies under its stated signer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WikiState {
    draft: StateDraft,
    /// The signer's Ed25519 key.
    pub signer: [u8; 32],
    bytes: Vec<u8>,
    hash: Digest32,
}

impl core::ops::Deref for WikiState {
    type Target = StateDraft;
    fn deref(&self) -> &StateDraft {
        &self.draft
    }
}

impl WikiState {
    /// Parses and checks the signature against the stated signer.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "wiki state");
        r.header(STATE_MAGIC, VERSION)?;
        let draft = StateDraft {
            wiki: WikiId(r.array()?),
            seq: r.u64()?,
            epoch: r.u32()?,
            keyring: Digest32(r.array()?),
            manifest: Digest32(r.array()?),
            prev: Digest32(r.array()?),
        };
        let signer: [u8; 32] = r.array()?;
        let signed_len = bytes.len() - r.remaining();
        let sig: [u8; 64] = r.array()?;
        r.finish()?;
        let public = PublicIdentity {
            x25519: [0; 32],
            ed25519: signer,
        };
        if !public.verify(labels::SIGN_STATE, &bytes[..signed_len], &sig) {
            return Err(Error::BadSignature { what: "wiki state" });
        }
        Ok(Self {
            draft,
            signer,
            bytes: bytes.to_vec(),
            hash: Digest32::of(bytes),
        })
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of the encoded bytes.
    pub fn hash(&self) -> Digest32 {
        self.hash
    }

    /// What a client records after accepting this state.
    pub fn seen(&self) -> Seen {
        Seen {
            seq: self.seq,
            hash: self.hash,
        }
    }

    /// Checks this state against the latest verified keyring, its manifest, and what the client saw
    /// before: written under that keyring and epoch, signed by one of its writers, manifest digest
    /// matching, no rollback, no fork.
    pub fn verify(&self, keyring: &Keyring, manifest: &Manifest, seen: Option<Seen>) -> Result<()> {
        if self.wiki != keyring.wiki {
            return Err(Error::Mismatch("state belongs to another wiki"));
        }
        Seen::check("wiki state", seen, self.seq, self.hash)?;
        Seen::check_extends("wiki state", seen, self.seq, self.prev)?;
        if self.keyring != keyring.hash() || self.epoch != keyring.epoch {
            return Err(Error::Mismatch(
                "state was not written under the latest keyring (an old state, or a hidden keyring change)",
            ));
        }
        let signer = keyring
            .member_by_signing_key(&self.signer)
            .ok_or(Error::Unauthorized {
                what: "wiki state",
                reason: "not a member of the keyring",
            })?;
        if !signer.role.can_write() {
            return Err(Error::Unauthorized {
                what: "wiki state",
                reason: "a reader may not write",
            });
        }
        if manifest.digest() != self.manifest {
            return Err(Error::Mismatch(
                "manifest differs from the one the state signs",
            ));
        }
        if self.seq == 1 && self.prev != Digest32::ZERO {
            return Err(Error::Mismatch("first state must not name a previous one"));
        }
        Ok(())
    }

    /// Checks that `next` validly follows `self`: next sequence, hash-linked, signed by a writer of
    /// `keyring` (the keyring `next` names), and, for a folder-scoped writer, changing only pages of
    /// its own scope. New or changed pages must use the keyring's current epoch.
    pub fn verify_transition(
        &self,
        manifest: &Manifest,
        next: &WikiState,
        next_manifest: &Manifest,
        keyring: &Keyring,
    ) -> Result<()> {
        if next.wiki != self.wiki {
            return Err(Error::Mismatch("state belongs to another wiki"));
        }
        if next.seq != self.seq + 1 || next.prev != self.hash {
            return Err(Error::Mismatch("state does not extend the current state"));
        }
        next.verify(keyring, next_manifest, None)?;
        let signer = keyring
            .member_by_signing_key(&next.signer)
            .ok_or(Error::Unauthorized {
                what: "wiki state",
                reason: "not a member of the keyring",
            })?;
        let scoped = signer.scope != ScopeId::WHOLE_WIKI;
        for (id, entry) in &next_manifest.pages {
            if manifest.pages.get(id) == Some(entry) {
                continue;
            }
            if entry.epoch != keyring.epoch {
                return Err(Error::Mismatch(
                    "a new page version must use the current epoch",
                ));
            }
            if scoped && entry.scope != signer.scope {
                return Err(Error::Unauthorized {
                    what: "wiki state",
                    reason: "a folder-scoped writer changed a page outside its folder",
                });
            }
        }
        if scoped {
            for (id, entry) in &manifest.pages {
                if !next_manifest.pages.contains_key(id) && entry.scope != signer.scope {
                    return Err(Error::Unauthorized {
                        what: "wiki state",
                        reason: "a folder-scoped writer deleted a page outside its folder",
                    });
                }
            }
        }
        if next.keyring != self.keyring && signer.role != Role::Owner {
            return Err(Error::Unauthorized {
                what: "wiki state",
                reason: "only an owner may write the state that accompanies a keyring change",
            });
        }
        Ok(())
    }
}
