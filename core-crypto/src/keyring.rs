//! The wiki keyring: who may read and write, and the epoch secrets wrapped to each of them.
//!
//! Every version of the keyring is a complete, owner-signed document; versions form a hash chain
//! from a genesis whose signer is committed to by the wiki id itself
//! (`wiki id = SHA-256(WIKI_ID ‖ creator's Ed25519 key ‖ nonce)[..16]`), so a client that knows only
//! the wiki id can verify the whole chain and no server can slip in a key the owner never signed.
//!
//! Each member's entry holds a standard age file (X25519 recipient) wrapping either the current
//! epoch secret (whole-wiki members: exactly 32 bytes, so `age -d -i` yields the wiki secret) or,
//! for a member scoped to a folder, that folder's scope keys for every epoch. Earlier epoch secrets
//! are reached through links: epoch `e`'s secret seals epoch `e-1`'s. Removing a member or narrowing
//! its scope starts a new epoch, so nothing written afterwards opens with what it held. Adding a
//! member touches only the keyring, never the pages.
//!
//! Version 2 adds the wiki's witnesses ([`crate::witness`]): an owner signs which services
//! co-sign the wiki's head, so a device that has seen nothing learns them from data no server can
//! forge. A keyring without witnesses is still written as version 1, which every earlier client
//! reads; both versions verify in one chain.
//!
//! The byte layout is in `docs/format.md`; [`Keyring::decode`] and [`KeyringDraft::sign`] are its
//! only reader and writer.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::envelope::EnvelopeHeader;
use crate::identity::{PublicIdentity, UserIdentity, check_name};
use crate::ids::{Digest32, ScopeId, WikiId};
use crate::scope::{EpochSecret, ScopeKey};
use crate::secret::Secret32;
use crate::wire::{Reader, Writer};
use crate::witness::WitnessSet;
use crate::{Error, Result, labels, path, sealed};

const MAGIC: &[u8; 4] = b"ZKKR";
/// A keyring without witnesses.
const VERSION_1: u8 = 1;
/// A keyring that lists witnesses.
const VERSION_2: u8 = 2;
/// The version byte in the associated data of epoch links and scope lists: always 1, since
/// links are carried unchanged from one keyring version to the next, whatever its format.
const AD_VERSION: u8 = 1;
const SCOPED_MAGIC: &[u8; 4] = b"ZKS1";
/// Most members in one keyring.
pub const MAX_MEMBERS: usize = 4096;
/// Largest age file in one entry.
pub const MAX_WRAP_LEN: usize = 1024 * 1024;
/// Largest keyring document.
pub const MAX_KEYRING_LEN: usize = 32 * 1024 * 1024;
/// Most scope prefixes in one wiki.
pub const MAX_SCOPES: usize = 1024;
const SIGNATURE_LEN: usize = 64;

/// What a member may do.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub enum Role {
    /// Reads, writes, and signs keyring changes.
    Owner = 1,
    /// Reads and writes.
    Writer = 2,
    /// Reads only: any state it signs is rejected.
    Reader = 3,
}

impl Role {
    fn from_u8(v: u8) -> Result<Self> {
        match v {
            1 => Ok(Self::Owner),
            2 => Ok(Self::Writer),
            3 => Ok(Self::Reader),
            _ => Err(Error::Malformed {
                what: "keyring",
                reason: "unknown role",
            }),
        }
    }
    /// Whether states signed by this role are accepted.
    pub fn can_write(self) -> bool {
        matches!(self, Self::Owner | Self::Writer)
    }
    /// A stable lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Writer => "writer",
            Self::Reader => "reader",
        }
    }
    /// Parses [`Self::name`].
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "owner" => Ok(Self::Owner),
            "writer" | "write" => Ok(Self::Writer),
            "reader" | "read" => Ok(Self::Reader),
            _ => Err(Error::Invalid("a role is owner, writer or reader")),
        }
    }
}

/// Whether a member is a person or an agent (shown in history and the UI; no cryptographic effect).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemberKind {
    /// A person.
    Person = 1,
    /// An automated agent.
    Agent = 2,
}

impl MemberKind {
    fn from_u8(v: u8) -> Result<Self> {
        match v {
            1 => Ok(Self::Person),
            2 => Ok(Self::Agent),
            _ => Err(Error::Malformed {
                what: "keyring",
                reason: "unknown member kind",
            }),
        }
    }
    /// A stable lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Agent => "agent",
        }
    }
}

/// One member of a keyring.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Member {
    /// The member's name (unique in the keyring).
    pub name: String,
    /// Person or agent.
    pub kind: MemberKind,
    /// What the member may do.
    pub role: Role,
    /// The member's public keys, bound by the owner's signature.
    pub public: PublicIdentity,
    /// [`ScopeId::WHOLE_WIKI`], or the id of the one scope this member can read (current epoch).
    pub scope: ScopeId,
    /// The age file wrapping this member's secrets.
    pub wrap: Vec<u8>,
}

/// A parsed keyring version whose signature verifies under its stated signer. Whether that signer
/// was allowed to sign is decided by [`Keyring::verify_genesis`] and [`Keyring::verify_next`].
#[derive(Clone, Debug)]
pub struct Keyring {
    /// The wiki.
    pub wiki: WikiId,
    /// The nonce that, with the creator's key, derives the wiki id.
    pub wiki_nonce: [u8; 16],
    /// Version number, 1 for the genesis.
    pub seq: u64,
    /// Hash of the previous version (zero for the genesis).
    pub prev: Digest32,
    /// Current key epoch (1 at genesis).
    pub epoch: u32,
    /// The members.
    pub members: Vec<Member>,
    scopes_sealed: Vec<u8>,
    links: Vec<(u32, Vec<u8>)>,
    /// The witnesses that co-sign the wiki's head, and the policy when one cannot be asked
    /// (empty in a version 1 keyring).
    pub witnesses: WitnessSet,
    /// Ed25519 key of the owner who signed this version.
    pub signer: [u8; 32],
    bytes: Vec<u8>,
    hash: Digest32,
}

/// The wiki id a creator's key and nonce yield.
pub fn derive_wiki_id(creator_ed25519: &[u8; 32], nonce: &[u8; 16]) -> WikiId {
    let mut h = Sha256::new();
    h.update(labels::WIKI_ID);
    h.update(creator_ed25519);
    h.update(nonce);
    let d = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    WikiId(id)
}

fn link_ad(wiki: &WikiId, epoch: u32) -> Vec<u8> {
    let mut w = Writer::with_header(MAGIC, AD_VERSION);
    w.bytes(wiki.as_bytes());
    w.u32(epoch);
    w.bytes(b"link");
    w.buf
}

fn scopes_ad(wiki: &WikiId, epoch: u32) -> Vec<u8> {
    let mut w = Writer::with_header(MAGIC, AD_VERSION);
    w.bytes(wiki.as_bytes());
    w.u32(epoch);
    w.bytes(b"scopes");
    w.buf
}

impl Keyring {
    /// Parses a keyring version and checks its signature against its stated signer.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_KEYRING_LEN {
            return Err(Error::TooLarge {
                what: "keyring",
                size: bytes.len(),
                limit: MAX_KEYRING_LEN,
            });
        }
        let malformed = |reason| Error::Malformed {
            what: "keyring",
            reason,
        };
        let mut r = Reader::new(bytes, "keyring");
        if r.take(4)? != MAGIC {
            return Err(malformed("wrong magic bytes"));
        }
        let version = r.u8()?;
        if version != VERSION_1 && version != VERSION_2 {
            return Err(Error::UnsupportedVersion {
                what: "keyring",
                version,
            });
        }
        let wiki = WikiId(r.array()?);
        let wiki_nonce = r.array()?;
        let seq = r.u64()?;
        let prev = Digest32(r.array()?);
        let epoch = r.u32()?;
        if seq == 0 || epoch == 0 {
            return Err(malformed("sequence and epoch start at 1"));
        }
        let count = r.u16()? as usize;
        if count == 0 || count > MAX_MEMBERS {
            return Err(malformed("member count out of range"));
        }
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let name = r.str_u8()?.to_owned();
            check_name(&name).map_err(|_| malformed("invalid member name"))?;
            let kind = MemberKind::from_u8(r.u8()?)?;
            let role = Role::from_u8(r.u8()?)?;
            let public = PublicIdentity {
                x25519: r.array()?,
                ed25519: r.array()?,
            };
            let scope = ScopeId(r.array()?);
            let wrap = r.bytes_u32(MAX_WRAP_LEN)?.to_vec();
            members.push(Member {
                name,
                kind,
                role,
                public,
                scope,
                wrap,
            });
        }
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                if a.name == b.name
                    || a.public.x25519 == b.public.x25519
                    || a.public.ed25519 == b.public.ed25519
                {
                    return Err(malformed("two members share a name or a key"));
                }
            }
        }
        if !members.iter().any(|m| m.role == Role::Owner) {
            return Err(malformed("no owner"));
        }
        let scopes_sealed = r.bytes_u32(MAX_WRAP_LEN)?.to_vec();
        let link_count = r.u32()?;
        if link_count != epoch - 1 {
            return Err(malformed("one epoch link per epoch after the first"));
        }
        let mut links = Vec::new();
        for expected in 2..=epoch {
            let e = r.u32()?;
            if e != expected {
                return Err(malformed("epoch links out of order"));
            }
            links.push((e, r.bytes_u16()?.to_vec()));
        }
        let witnesses = if version == VERSION_2 {
            WitnessSet::decode(&mut r)?
        } else {
            WitnessSet::default()
        };
        let signer: [u8; 32] = r.array()?;
        let signed_len = bytes.len() - r.remaining();
        let signature: [u8; SIGNATURE_LEN] = r.array()?;
        r.finish()?;
        let signer_public = PublicIdentity {
            x25519: [0; 32],
            ed25519: signer,
        };
        if !signer_public.verify(labels::SIGN_KEYRING, &bytes[..signed_len], &signature) {
            return Err(Error::BadSignature { what: "keyring" });
        }
        Ok(Self {
            wiki,
            wiki_nonce,
            seq,
            prev,
            epoch,
            members,
            scopes_sealed,
            links,
            witnesses,
            signer,
            bytes: bytes.to_vec(),
            hash: Digest32::of(bytes),
        })
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// SHA-256 of the encoded bytes: what states and the next version refer to.
    pub fn hash(&self) -> Digest32 {
        self.hash
    }

    /// The member holding this Ed25519 key.
    pub fn member_by_signing_key(&self, key: &[u8; 32]) -> Option<&Member> {
        self.members.iter().find(|m| &m.public.ed25519 == key)
    }

    /// The member by name.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    fn signer_role(&self, signer: &[u8; 32]) -> Option<Role> {
        self.member_by_signing_key(signer).map(|m| m.role)
    }

    /// Checks a genesis: first version, first epoch, signed by an owner in it whose key the wiki id
    /// commits to.
    pub fn verify_genesis(&self) -> Result<()> {
        if self.seq != 1 || self.prev != Digest32::ZERO || self.epoch != 1 {
            return Err(Error::Mismatch(
                "the first keyring version must be a genesis",
            ));
        }
        if derive_wiki_id(&self.signer, &self.wiki_nonce) != self.wiki {
            return Err(Error::Unauthorized {
                what: "keyring genesis",
                reason: "the wiki id does not commit to this signer",
            });
        }
        if self.signer_role(&self.signer) != Some(Role::Owner) {
            return Err(Error::Unauthorized {
                what: "keyring genesis",
                reason: "signer is not an owner",
            });
        }
        Ok(())
    }

    /// Checks that `next` is a valid successor: same wiki, next sequence, hash-linked, signed by an
    /// owner of *this* version, links kept, and a new epoch whenever someone lost access.
    pub fn verify_next(&self, next: &Keyring) -> Result<()> {
        if next.wiki != self.wiki || next.wiki_nonce != self.wiki_nonce {
            return Err(Error::Mismatch("keyring belongs to another wiki"));
        }
        if next.seq != self.seq + 1 || next.prev != self.hash {
            return Err(Error::Mismatch(
                "keyring version does not extend the previous one",
            ));
        }
        if self.signer_role(&next.signer) != Some(Role::Owner) {
            return Err(Error::Unauthorized {
                what: "keyring",
                reason: "not an owner in the previous keyring version",
            });
        }
        let same_epoch = next.epoch == self.epoch;
        if !same_epoch && next.epoch != self.epoch + 1 {
            return Err(Error::Mismatch("keyring epoch skipped or went back"));
        }
        if next.links.get(..self.links.len()) != Some(&self.links[..]) {
            return Err(Error::Mismatch("keyring rewrote an earlier epoch link"));
        }
        let lost_access = self.members.iter().any(|old| {
            !next
                .members
                .iter()
                .any(|new| new.public == old.public && new.scope == old.scope)
        });
        if lost_access && same_epoch {
            return Err(Error::Invalid(
                "removing a member or narrowing its scope requires a new epoch",
            ));
        }
        Ok(())
    }

    /// Rejects a version lower than one seen before (rollback), and a different one at the same
    /// sequence or a next version that does not extend the one seen (fork).
    pub fn check_fresh(&self, seen: Option<Seen>) -> Result<()> {
        Seen::check("keyring", seen, self.seq, self.hash)?;
        Seen::check_extends("keyring", seen, self.seq, self.prev)
    }

    /// Opens this member's entry and everything it reaches.
    pub fn unlock(&self, identity: &UserIdentity) -> Result<WikiKeys> {
        let public = identity.public();
        let member = self
            .members
            .iter()
            .find(|m| m.public == public)
            .ok_or(Error::NoAccess("this wiki"))?;
        let payload = age_unwrap(&member.wrap, identity)?;
        if member.scope == ScopeId::WHOLE_WIKI {
            let current = EpochSecret(Secret32::from_slice(&payload).ok_or(Error::Malformed {
                what: "keyring entry",
                reason: "a whole-wiki entry holds exactly 32 bytes",
            })?);
            self.unlock_full(current)
        } else {
            self.unlock_scoped(member, &payload)
        }
    }

    fn unlock_full(&self, current: EpochSecret) -> Result<WikiKeys> {
        let mut secrets = vec![current];
        for (epoch, sealed_prev) in self.links.iter().rev() {
            let newer = secrets.last().ok_or(Error::Mismatch("epoch chain"))?;
            let prev = sealed::open(
                newer.expose(),
                labels::SEAL_EPOCH_LINK,
                &link_ad(&self.wiki, *epoch),
                sealed_prev,
                "epoch link",
            )?;
            let prev = Secret32::from_slice(&prev).ok_or(Error::Malformed {
                what: "epoch link",
                reason: "expected 32 bytes",
            })?;
            secrets.push(EpochSecret(prev));
        }
        secrets.reverse();
        let current = secrets.last().ok_or(Error::Mismatch("epoch chain"))?;
        let scopes = sealed::open(
            current.expose(),
            labels::SEAL_SCOPES,
            &scopes_ad(&self.wiki, self.epoch),
            &self.scopes_sealed,
            "keyring scopes",
        )?;
        let prefixes = decode_prefixes(&scopes)?;
        Ok(WikiKeys::full(self.wiki, secrets, prefixes))
    }

    fn unlock_scoped(&self, member: &Member, payload: &[u8]) -> Result<WikiKeys> {
        let mut r = Reader::new(payload, "scoped keyring entry");
        if r.take(4)? != SCOPED_MAGIC {
            return Err(Error::Malformed {
                what: "keyring entry",
                reason: "unknown entry type",
            });
        }
        let prefix = r.str_u16()?.to_owned();
        path::check_prefix(&prefix)?;
        let count = r.u32()?;
        if count != self.epoch {
            return Err(Error::Mismatch("scoped entry does not cover every epoch"));
        }
        let mut keys = Vec::new();
        for expected in 1..=count {
            if r.u32()? != expected {
                return Err(Error::Mismatch("scoped entry epochs out of order"));
            }
            let secret = Secret32::new(r.array()?);
            keys.push(ScopeKey::new(expected, secret));
        }
        r.finish()?;
        if keys.last().map(ScopeKey::id) != Some(member.scope) {
            return Err(Error::Mismatch(
                "scoped entry does not match the member's scope id",
            ));
        }
        Ok(WikiKeys {
            wiki: self.wiki,
            epoch: self.epoch,
            access: Access::Scoped { prefix, keys },
        })
    }
}

/// What a client last saw of a keyring or state, to detect rollback and forks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Seen {
    /// Highest sequence seen.
    pub seq: u64,
    /// Hash of the version at that sequence.
    pub hash: Digest32,
}

impl Seen {
    /// The shared rollback/fork rule.
    pub fn check(what: &'static str, seen: Option<Seen>, seq: u64, hash: Digest32) -> Result<()> {
        let Some(seen) = seen else { return Ok(()) };
        if seq < seen.seq {
            return Err(Error::Rollback {
                what,
                seen: seen.seq,
                offered: seq,
            });
        }
        if seq == seen.seq && hash != seen.hash {
            return Err(Error::Fork { what, seq });
        }
        Ok(())
    }

    /// The immediate successor of the version seen must name it as its previous version;
    /// otherwise the server showed this client one branch and now offers another (a fork at the
    /// sequence seen). Further successors can only be checked by walking the history between.
    pub fn check_extends(
        what: &'static str,
        seen: Option<Seen>,
        seq: u64,
        prev: Digest32,
    ) -> Result<()> {
        let Some(seen) = seen else { return Ok(()) };
        if seen.seq.checked_add(1) == Some(seq) && prev != seen.hash {
            return Err(Error::Fork {
                what,
                seq: seen.seq,
            });
        }
        Ok(())
    }
}

/// Verifies a whole keyring history, genesis first, and returns the latest version.
pub fn verify_chain<'a>(versions: impl IntoIterator<Item = &'a [u8]>) -> Result<Keyring> {
    let mut iter = versions.into_iter();
    let genesis = Keyring::decode(
        iter.next()
            .ok_or(Error::Mismatch("empty keyring history"))?,
    )?;
    genesis.verify_genesis()?;
    let mut latest = genesis;
    for bytes in iter {
        let next = Keyring::decode(bytes)?;
        latest.verify_next(&next)?;
        latest = next;
    }
    Ok(latest)
}

fn age_unwrap(wrap: &[u8], identity: &UserIdentity) -> Result<Zeroizing<Vec<u8>>> {
    let age_id = identity.age_identity()?;
    let decryptor = age::Decryptor::new_buffered(wrap).map_err(|_| Error::Malformed {
        what: "keyring entry",
        reason: "not an age file",
    })?;
    let mut reader = decryptor
        .decrypt(std::iter::once(&age_id as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => Error::WrongKey {
                what: "keyring entry",
            },
            _ => Error::Tampered {
                what: "keyring entry",
            },
        })?;
    let mut out = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut out).map_err(|_| Error::Tampered {
        what: "keyring entry",
    })?;
    Ok(out)
}

fn age_wrap(recipient: &PublicIdentity, payload: &[u8]) -> Result<Vec<u8>> {
    let r = recipient.age_recipient()?;
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
        .map_err(|_| Error::Invalid("age refused the recipient"))?;
    let mut out = Vec::new();
    let fail = |_| Error::Invalid("age encryption failed");
    let mut writer = encryptor.wrap_output(&mut out).map_err(fail)?;
    writer.write_all(payload).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

fn encode_prefixes(prefixes: &[String]) -> Result<Vec<u8>> {
    let mut w = Writer::default();
    w.u16(u16::try_from(prefixes.len()).map_err(|_| Error::Invalid("too many scopes"))?);
    for p in prefixes {
        w.bytes_u16(p.as_bytes())?;
    }
    Ok(w.buf)
}

fn decode_prefixes(bytes: &[u8]) -> Result<Vec<String>> {
    let mut r = Reader::new(bytes, "keyring scopes");
    let n = r.u16()? as usize;
    if n > MAX_SCOPES {
        return Err(Error::Malformed {
            what: "keyring scopes",
            reason: "too many",
        });
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let p = r.str_u16()?.to_owned();
        path::check_prefix(&p)?;
        if p.is_empty() {
            return Err(Error::Malformed {
                what: "keyring scopes",
                reason: "empty prefix",
            });
        }
        out.push(p);
    }
    r.finish()?;
    Ok(out)
}

/// The keys a member holds for one wiki after unlocking the keyring.
#[derive(Debug)]
pub struct WikiKeys {
    wiki: WikiId,
    epoch: u32,
    access: Access,
}

#[derive(Debug)]
enum Access {
    /// Every epoch secret (index `e - 1`) and every declared scope prefix.
    Full {
        secrets: Vec<EpochSecret>,
        prefixes: Vec<String>,
        /// Every scope key by (epoch, scope id), with the prefix it was derived for.
        by_id: BTreeMap<(u32, ScopeId), (ScopeKey, String)>,
    },
    /// One prefix's scope keys, one per epoch (index `e - 1`).
    Scoped { prefix: String, keys: Vec<ScopeKey> },
}

impl WikiKeys {
    fn full(wiki: WikiId, secrets: Vec<EpochSecret>, prefixes: Vec<String>) -> Self {
        let mut by_id = BTreeMap::new();
        for (i, secret) in secrets.iter().enumerate() {
            let epoch = i as u32 + 1;
            for prefix in std::iter::once("").chain(prefixes.iter().map(String::as_str)) {
                let key = secret.derive_scope(epoch, prefix);
                by_id.insert((epoch, key.id()), (key, prefix.to_owned()));
            }
        }
        let epoch = secrets.len() as u32;
        Self {
            wiki,
            epoch,
            access: Access::Full {
                secrets,
                prefixes,
                by_id,
            },
        }
    }

    /// The wiki these keys belong to.
    pub fn wiki(&self) -> WikiId {
        self.wiki
    }

    /// The current epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// `None` for whole-wiki access, or the one prefix these keys cover.
    pub fn prefix(&self) -> Option<&str> {
        match &self.access {
            Access::Full { .. } => None,
            Access::Scoped { prefix, .. } => Some(prefix),
        }
    }

    /// The declared scope prefixes (empty for a scoped member, who cannot see them).
    pub fn prefixes(&self) -> &[String] {
        match &self.access {
            Access::Full { prefixes, .. } => prefixes,
            Access::Scoped { .. } => &[],
        }
    }

    /// The key that opens an envelope with this header, if these keys reach it.
    pub fn key_for(&self, header: &EnvelopeHeader) -> Result<&ScopeKey> {
        self.scope_for(header).map(|(key, _)| key)
    }

    /// The key that opens an envelope with this header and the folder prefix it belongs to
    /// (`""` for the whole wiki): a reader checks that the page's path lies under that folder,
    /// since whoever holds a folder's key can write only there.
    pub fn scope_for(&self, header: &EnvelopeHeader) -> Result<(&ScopeKey, &str)> {
        let found = match &self.access {
            Access::Full { by_id, .. } => by_id
                .get(&(header.epoch, header.scope))
                .map(|(k, p)| (k, p.as_str())),
            Access::Scoped { keys, prefix } => keys
                .get((header.epoch as usize).wrapping_sub(1))
                .filter(|k| k.id() == header.scope)
                .map(|k| (k, prefix.as_str())),
        };
        found.ok_or(Error::NoAccess("this page's epoch and scope"))
    }

    /// Whether these keys should open every page of the wiki (a whole-wiki member): then a page
    /// under an epoch or scope they lack was written against the rules, not hidden from them.
    pub fn is_whole_wiki(&self) -> bool {
        matches!(self.access, Access::Full { .. })
    }

    /// The key a new version of `path` must be written with: the current epoch, and the longest
    /// declared prefix that contains the path (or the whole-wiki scope).
    pub fn key_for_writing(&self, page_path: &str) -> Result<ScopeKey> {
        path::check_path(page_path)?;
        match &self.access {
            Access::Full {
                secrets, prefixes, ..
            } => {
                let prefix = prefixes
                    .iter()
                    .filter(|p| path::in_prefix(page_path, p))
                    .max_by_key(|p| p.len())
                    .map_or("", String::as_str);
                let current = secrets.last().ok_or(Error::NoAccess("the current epoch"))?;
                Ok(current.derive_scope(self.epoch, prefix))
            }
            Access::Scoped { prefix, keys } => {
                if !path::in_prefix(page_path, prefix) {
                    return Err(Error::NoAccess("a path outside this key's folder"));
                }
                keys.last()
                    .cloned()
                    .ok_or(Error::NoAccess("the current epoch"))
            }
        }
    }

    /// Every scope key these keys hold for the current epoch (for finding the search index).
    pub fn current_scope_keys(&self) -> Vec<ScopeKey> {
        match &self.access {
            Access::Full { by_id, .. } => by_id
                .values()
                .filter(|(k, _)| k.epoch() == self.epoch)
                .map(|(k, _)| k.clone())
                .collect(),
            Access::Scoped { keys, .. } => keys.last().cloned().into_iter().collect(),
        }
    }

    /// The current epoch's secret: exactly the 32 bytes a whole-wiki member's age entry wraps
    /// (what `age -d -i` yields). For interoperability checks and test vectors; feature code uses
    /// scope keys ([`Self::key_for`], [`Self::key_for_writing`]). A folder-scoped key holds no
    /// epoch secret and gets `NoAccess`.
    pub fn current_epoch_secret(&self) -> Result<&EpochSecret> {
        self.epoch_secrets()?
            .last()
            .ok_or(Error::NoAccess("the current epoch"))
    }

    fn epoch_secrets(&self) -> Result<&[EpochSecret]> {
        match &self.access {
            Access::Full { secrets, .. } => Ok(secrets),
            Access::Scoped { .. } => Err(Error::NoAccess(
                "the keyring (a folder-scoped key cannot change it)",
            )),
        }
    }
}

/// A member to be written into the next keyring version.
#[derive(Clone, Debug)]
pub struct NewMember {
    /// Unique name.
    pub name: String,
    /// Person or agent.
    pub kind: MemberKind,
    /// What it may do.
    pub role: Role,
    /// Its public keys (the owner must have checked the fingerprint).
    pub public: PublicIdentity,
    /// `""` for the whole wiki, or the folder it is limited to.
    pub prefix: String,
}

/// The next keyring version, being edited by an owner.
#[derive(Debug)]
pub struct KeyringDraft {
    wiki: WikiId,
    wiki_nonce: [u8; 16],
    seq: u64,
    prev: Digest32,
    members: Vec<NewMember>,
    prefixes: Vec<String>,
    secrets: Vec<EpochSecret>,
    links: Vec<(u32, Vec<u8>)>,
    rotate: bool,
    witnesses: WitnessSet,
    previous_members: Vec<(PublicIdentity, String)>,
    previous_owners: Vec<[u8; 32]>,
}

impl KeyringDraft {
    /// The first keyring of a new wiki, with its creator as owner.
    pub fn genesis(
        rng: &mut impl CryptoRngCore,
        creator: &UserIdentity,
        creator_name: &str,
        kind: MemberKind,
    ) -> Result<Self> {
        check_name(creator_name)?;
        let mut wiki_nonce = [0u8; 16];
        rng.fill_bytes(&mut wiki_nonce);
        let public = creator.public();
        Ok(Self {
            wiki: derive_wiki_id(&public.ed25519, &wiki_nonce),
            wiki_nonce,
            seq: 1,
            prev: Digest32::ZERO,
            members: vec![NewMember {
                name: creator_name.to_owned(),
                kind,
                role: Role::Owner,
                public,
                prefix: String::new(),
            }],
            prefixes: Vec::new(),
            secrets: vec![EpochSecret::make(rng)],
            links: Vec::new(),
            rotate: false,
            witnesses: WitnessSet::default(),
            previous_members: Vec::new(),
            previous_owners: vec![public.ed25519],
        })
    }

    /// Starts the next version from the current one, with the editor's unlocked keys.
    pub fn edit(current: &Keyring, keys: &WikiKeys) -> Result<Self> {
        let secrets = keys.epoch_secrets()?.to_vec();
        if keys.wiki() != current.wiki || secrets.len() as u32 != current.epoch {
            return Err(Error::Mismatch(
                "keys do not belong to this keyring version",
            ));
        }
        let prefixes = keys.prefixes().to_vec();
        let current_secret = secrets.last().ok_or(Error::Mismatch("epoch chain"))?;
        let mut members = Vec::with_capacity(current.members.len());
        for m in &current.members {
            let prefix = if m.scope == ScopeId::WHOLE_WIKI {
                String::new()
            } else {
                prefixes
                    .iter()
                    .find(|p| current_secret.derive_scope(current.epoch, p).id() == m.scope)
                    .cloned()
                    .ok_or(Error::Mismatch(
                        "a member's scope is not among the declared prefixes",
                    ))?
            };
            members.push(NewMember {
                name: m.name.clone(),
                kind: m.kind,
                role: m.role,
                public: m.public,
                prefix,
            });
        }
        let previous_members = members
            .iter()
            .map(|m| (m.public, m.prefix.clone()))
            .collect();
        Ok(Self {
            wiki: current.wiki,
            wiki_nonce: current.wiki_nonce,
            seq: current.seq + 1,
            prev: current.hash,
            members,
            prefixes,
            secrets,
            links: current.links.clone(),
            rotate: false,
            witnesses: current.witnesses.clone(),
            previous_members,
            previous_owners: current
                .members
                .iter()
                .filter(|m| m.role == Role::Owner)
                .map(|m| m.public.ed25519)
                .collect(),
        })
    }

    /// The wiki id (known before signing, for a genesis).
    pub fn wiki(&self) -> WikiId {
        self.wiki
    }

    /// The members as they will be written.
    pub fn members(&self) -> &[NewMember] {
        &self.members
    }

    /// Adds a member (whole wiki, or one folder when `prefix` is not empty).
    pub fn add_member(&mut self, member: NewMember) -> Result<()> {
        check_name(&member.name)?;
        path::check_prefix(&member.prefix)?;
        if self.members.iter().any(|m| {
            m.name == member.name
                || m.public.x25519 == member.public.x25519
                || m.public.ed25519 == member.public.ed25519
        }) {
            return Err(Error::Invalid(
                "a member with this name or key already exists",
            ));
        }
        if !member.prefix.is_empty() && !self.prefixes.contains(&member.prefix) {
            if self.prefixes.len() >= MAX_SCOPES {
                return Err(Error::Invalid("too many scopes"));
            }
            self.prefixes.push(member.prefix.clone());
        }
        if self.members.len() >= MAX_MEMBERS {
            return Err(Error::Invalid("too many members"));
        }
        self.members.push(member);
        Ok(())
    }

    /// Removes a member; the next epoch starts, so it cannot read anything written afterwards.
    pub fn remove_member(&mut self, name: &str) -> Result<NewMember> {
        let i = self
            .members
            .iter()
            .position(|m| m.name == name)
            .ok_or(Error::Invalid("no member with this name"))?;
        let removed = self.members.remove(i);
        if !self.members.iter().any(|m| m.role == Role::Owner) {
            self.members.insert(i, removed);
            return Err(Error::Invalid("a wiki must keep at least one owner"));
        }
        self.rotate = true;
        Ok(removed)
    }

    /// Changes a member's role (no new epoch: read access is unchanged).
    pub fn set_role(&mut self, name: &str, role: Role) -> Result<()> {
        let owners = self
            .members
            .iter()
            .filter(|m| m.role == Role::Owner)
            .count();
        let m = self
            .members
            .iter_mut()
            .find(|m| m.name == name)
            .ok_or(Error::Invalid("no member with this name"))?;
        if m.role == Role::Owner && role != Role::Owner && owners == 1 {
            return Err(Error::Invalid("a wiki must keep at least one owner"));
        }
        m.role = role;
        Ok(())
    }

    /// Starts a new epoch even if nobody was removed.
    pub fn rotate(&mut self) {
        self.rotate = true;
    }

    /// Whether signing will start a new epoch.
    pub fn rotates(&self) -> bool {
        self.rotate
    }

    /// The witnesses as they will be written.
    pub fn witnesses(&self) -> &WitnessSet {
        &self.witnesses
    }

    /// Replaces the witness set (no new epoch: nobody's read access changes).
    pub fn set_witnesses(&mut self, witnesses: WitnessSet) -> Result<()> {
        witnesses.check()?;
        self.witnesses = witnesses;
        Ok(())
    }

    /// Signs the draft as `signer` (who must be an owner of the current version) and returns the
    /// parsed, verified result.
    pub fn sign(mut self, rng: &mut impl CryptoRngCore, signer: &UserIdentity) -> Result<Keyring> {
        let signer_public = signer.public();
        if !self.previous_owners.contains(&signer_public.ed25519) {
            return Err(Error::Unauthorized {
                what: "keyring",
                reason: "only an owner of the current keyring may sign the next one",
            });
        }
        let lost_access = self.previous_members.iter().any(|(public, prefix)| {
            !self
                .members
                .iter()
                .any(|m| m.public == *public && m.prefix == *prefix)
        });
        if self.rotate || lost_access {
            let new_secret = EpochSecret::make(rng);
            let new_epoch = self.secrets.len() as u32 + 1;
            let prev = self.secrets.last().ok_or(Error::Mismatch("epoch chain"))?;
            let link = sealed::seal(
                rng,
                new_secret.expose(),
                labels::SEAL_EPOCH_LINK,
                &link_ad(&self.wiki, new_epoch),
                prev.expose(),
            );
            self.links.push((new_epoch, link));
            self.secrets.push(new_secret);
        }
        let epoch = self.secrets.len() as u32;
        let current = self.secrets.last().ok_or(Error::Mismatch("epoch chain"))?;

        let version = if self.witnesses.is_empty() {
            VERSION_1
        } else {
            VERSION_2
        };
        let mut w = Writer::with_header(MAGIC, version);
        w.bytes(self.wiki.as_bytes());
        w.bytes(&self.wiki_nonce);
        w.u64(self.seq);
        w.bytes(self.prev.as_bytes());
        w.u32(epoch);
        w.u16(u16::try_from(self.members.len()).map_err(|_| Error::Invalid("too many members"))?);
        for m in &self.members {
            w.bytes_u8(m.name.as_bytes())?;
            w.u8(m.kind as u8);
            w.u8(m.role as u8);
            w.bytes(&m.public.x25519);
            w.bytes(&m.public.ed25519);
            if m.prefix.is_empty() {
                w.bytes(ScopeId::WHOLE_WIKI.as_bytes());
                w.bytes_u32(&age_wrap(&m.public, current.expose())?)?;
            } else {
                let mut payload = Zeroizing::new(Vec::new());
                payload.extend_from_slice(SCOPED_MAGIC);
                let mut pw = Writer::default();
                pw.bytes_u16(m.prefix.as_bytes())?;
                pw.u32(epoch);
                payload.extend_from_slice(&pw.buf);
                for (i, secret) in self.secrets.iter().enumerate() {
                    let key = secret.derive_scope(i as u32 + 1, &m.prefix);
                    payload.extend_from_slice(&(i as u32 + 1).to_be_bytes());
                    payload.extend_from_slice(key.expose());
                }
                w.bytes(current.derive_scope(epoch, &m.prefix).id().as_bytes());
                w.bytes_u32(&age_wrap(&m.public, &payload)?)?;
            }
        }
        let scopes = sealed::seal(
            rng,
            current.expose(),
            labels::SEAL_SCOPES,
            &scopes_ad(&self.wiki, epoch),
            &encode_prefixes(&self.prefixes)?,
        );
        w.bytes_u32(&scopes)?;
        w.u32(self.links.len() as u32);
        for (e, link) in &self.links {
            w.u32(*e);
            w.bytes_u16(link)?;
        }
        if version == VERSION_2 {
            self.witnesses.encode(&mut w)?;
        }
        w.bytes(&signer_public.ed25519);
        let signature = signer.sign(labels::SIGN_KEYRING, &w.buf);
        w.bytes(&signature);
        Keyring::decode(&w.buf)
    }
}
