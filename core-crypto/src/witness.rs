//! Witnesses: services outside the wiki's server that co-sign the wiki's latest state, so that a
//! device that has seen nothing (a new laptop, a new browser profile) cannot be shown an older or
//! forked head unless the server *and* a witness collude.
//!
//! Three formats and one rule live here:
//!
//! - the **witness set** an owner signs into the keyring (from keyring version 2): each witness's
//!   Ed25519 key and URL, and the wiki's policy when a witness cannot be reached;
//! - a **checkpoint** `(wiki id, seq, state hash, keyring seq)`, the statement a witness holds;
//! - a **co-signature**: a witness's Ed25519 signature over a checkpoint, the client's fresh nonce
//!   and the witness's clock (so an old answer cannot be replayed to a client);
//! - [`judge_submission`]: what a witness accepts. It holds one checkpoint per wiki and moves it
//!   only forward along one chain of signed states; a submission that does not extend it is a
//!   fork, and the two signed states that show it are the evidence.
//!
//! ```text
//! witness set = policy (u8: 1 warn, 2 stop) ‖ count (u8, 1..=8)
//!               ‖ count × ( Ed25519 key (32) ‖ u16 len ‖ URL )
//! checkpoint  = "ZKCP" ‖ 1 ‖ wiki id (16) ‖ seq (u64) ‖ state hash (32) ‖ keyring seq (u64)
//! cosignature = "ZKCS" ‖ 1 ‖ checkpoint (69) ‖ nonce (32) ‖ time (u64, ms) ‖ witness key (32)
//!               ‖ Ed25519(witness, SIGN_COSIGNATURE ‖ all preceding bytes) (64)
//! ```

use ed25519_dalek::{Signer, SigningKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::ids::{Digest32, WikiId};
use crate::keyring::{Keyring, verify_chain};
use crate::state::WikiState;
use crate::wire::{Reader, Writer};
use crate::{Error, Result, hazmat, labels};

const CHECKPOINT_MAGIC: &[u8; 4] = b"ZKCP";
const COSIGNATURE_MAGIC: &[u8; 4] = b"ZKCS";
const VERSION: u8 = 1;
/// Most witnesses one wiki lists.
pub const MAX_WITNESSES: usize = 8;
/// Longest witness URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Encoded size of a checkpoint.
pub const CHECKPOINT_LEN: usize = 69;
/// Encoded size of a co-signature.
pub const COSIGNATURE_LEN: usize = 210;
/// Most states one submission may carry.
pub const MAX_SUBMITTED_STATES: usize = 256;

/// What clients do when a witness cannot be asked (down, unreachable, or answering with a key
/// the keyring does not list).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum WitnessPolicy {
    /// Read on, with a warning that the head was checked only against this device's memory.
    #[default]
    Warn = 1,
    /// Stop: nothing is read or written until every witness answers.
    Stop = 2,
}

impl WitnessPolicy {
    fn from_u8(v: u8) -> Result<Self> {
        match v {
            1 => Ok(Self::Warn),
            2 => Ok(Self::Stop),
            _ => Err(Error::Malformed {
                what: "witness set",
                reason: "unknown policy",
            }),
        }
    }
    /// A stable lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Stop => "stop",
        }
    }
    /// Parses [`Self::name`].
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "warn" => Ok(Self::Warn),
            "stop" => Ok(Self::Stop),
            _ => Err(Error::Invalid("a witness policy is warn or stop")),
        }
    }
}

/// One witness: its Ed25519 key and where to reach it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Witness {
    /// The key its co-signatures must verify under.
    pub key: [u8; 32],
    /// Its base URL (`http(s)://host[:port][/path]`, no trailing `/`).
    pub url: String,
}

impl Witness {
    /// The key's fingerprint, to compare with the witness's operator out of band.
    pub fn fingerprint(&self) -> String {
        key_fingerprint(&self.key)
    }
}

/// The witnesses of a wiki and its policy (empty: the wiki uses none).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct WitnessSet {
    /// When a witness cannot be asked.
    pub policy: WitnessPolicy,
    /// The witnesses (unique keys and URLs).
    pub witnesses: Vec<Witness>,
}

/// Checks a witness URL: `http://` or `https://`, printable ASCII without spaces, no trailing
/// `/`, at most [`MAX_URL_LEN`] bytes.
pub fn check_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(Error::Invalid(
            "a witness URL starts with http:// or https://",
        ))?;
    if rest.is_empty() || url.len() > MAX_URL_LEN {
        return Err(Error::Invalid(
            "a witness URL names a host (and is at most 2048 bytes)",
        ));
    }
    if !url.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(Error::Invalid(
            "a witness URL is printable ASCII without spaces",
        ));
    }
    if url.ends_with('/') {
        return Err(Error::Invalid("a witness URL does not end with /"));
    }
    Ok(())
}

impl WitnessSet {
    /// Whether the wiki uses no witness.
    pub fn is_empty(&self) -> bool {
        self.witnesses.is_empty()
    }

    /// The witness with this key.
    pub fn by_key(&self, key: &[u8; 32]) -> Option<&Witness> {
        self.witnesses.iter().find(|w| &w.key == key)
    }

    /// Checks the set as the keyring requires it: at most [`MAX_WITNESSES`], valid URLs, no key
    /// or URL twice.
    pub fn check(&self) -> Result<()> {
        if self.witnesses.len() > MAX_WITNESSES {
            return Err(Error::Invalid("a wiki lists at most 8 witnesses"));
        }
        for (i, a) in self.witnesses.iter().enumerate() {
            check_url(&a.url)?;
            if self.witnesses[i + 1..]
                .iter()
                .any(|b| b.key == a.key || b.url == a.url)
            {
                return Err(Error::Invalid("a witness key or URL is listed twice"));
            }
        }
        Ok(())
    }

    /// Adds a witness (refused when its key or URL is already listed, or the set is full).
    pub fn add(&mut self, witness: Witness) -> Result<()> {
        self.witnesses.push(witness);
        if let Err(e) = self.check() {
            self.witnesses.pop();
            return Err(e);
        }
        Ok(())
    }

    /// Removes the witness at `url`.
    pub fn remove(&mut self, url: &str) -> Result<Witness> {
        let i = self
            .witnesses
            .iter()
            .position(|w| w.url == url)
            .ok_or(Error::Invalid("no witness with this URL"))?;
        Ok(self.witnesses.remove(i))
    }

    pub(crate) fn encode(&self, w: &mut Writer) -> Result<()> {
        self.check()?;
        w.u8(self.policy as u8);
        w.u8(self.witnesses.len() as u8);
        for witness in &self.witnesses {
            w.bytes(&witness.key);
            w.bytes_u16(witness.url.as_bytes())?;
        }
        Ok(())
    }

    /// Reads a non-empty set (an empty one is never encoded: a keyring without witnesses is
    /// written as version 1).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let malformed = |reason| Error::Malformed {
            what: "witness set",
            reason,
        };
        let policy = WitnessPolicy::from_u8(r.u8()?)?;
        let count = r.u8()? as usize;
        if count == 0 || count > MAX_WITNESSES {
            return Err(malformed("witness count out of range"));
        }
        let mut witnesses = Vec::with_capacity(count);
        for _ in 0..count {
            let key = r.array()?;
            let url = r.str_u16()?.to_owned();
            witnesses.push(Witness { key, url });
        }
        let set = Self { policy, witnesses };
        set.check()
            .map_err(|_| malformed("invalid URL, or a key or URL listed twice"))?;
        Ok(set)
    }
}

/// A witness key's fingerprint: the first 16 bytes of `SHA-256(WITNESS_FINGERPRINT ‖ key)` as
/// eight groups of four hex digits.
pub fn key_fingerprint(key: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(labels::WITNESS_FINGERPRINT);
    h.update(key);
    let d = h.finalize();
    crate::codec::fingerprint_text(&d[..16])
}

/// What a witness holds for a wiki: the latest state it accepted (`seq = 0`: none yet).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Checkpoint {
    /// The wiki.
    pub wiki: WikiId,
    /// The state's sequence (0: the witness holds nothing for this wiki).
    pub seq: u64,
    /// SHA-256 of the state's bytes (zero when `seq = 0`).
    pub state: Digest32,
    /// The sequence of the keyring version the state names (0 when `seq = 0`).
    pub keyring_seq: u64,
}

impl Checkpoint {
    /// "Nothing held for this wiki."
    pub fn empty(wiki: WikiId) -> Self {
        Self {
            wiki,
            seq: 0,
            state: Digest32::ZERO,
            keyring_seq: 0,
        }
    }

    /// Whether this says that nothing is held.
    pub fn is_empty(&self) -> bool {
        self.seq == 0
    }

    fn write(&self, w: &mut Writer) {
        w.bytes(CHECKPOINT_MAGIC);
        w.u8(VERSION);
        w.bytes(self.wiki.as_bytes());
        w.u64(self.seq);
        w.bytes(self.state.as_bytes());
        w.u64(self.keyring_seq);
    }

    /// The 69-byte encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.write(&mut w);
        w.buf
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.header(CHECKPOINT_MAGIC, VERSION)?;
        let c = Self {
            wiki: WikiId(r.array()?),
            seq: r.u64()?,
            state: Digest32(r.array()?),
            keyring_seq: r.u64()?,
        };
        let consistent = if c.seq == 0 {
            c.state == Digest32::ZERO && c.keyring_seq == 0
        } else {
            c.keyring_seq >= 1
        };
        if !consistent {
            return Err(Error::Malformed {
                what: "checkpoint",
                reason: "an empty checkpoint has zero fields; any other names a keyring version",
            });
        }
        Ok(c)
    }

    /// Parses a 69-byte encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "checkpoint");
        let c = Self::read(&mut r)?;
        r.finish()?;
        Ok(c)
    }
}

/// A witness's signing key (kept by the witness service; zeroized on drop).
pub struct WitnessKey {
    signing: SigningKey,
}

impl core::fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "WitnessKey({})", key_fingerprint(&self.public()))
    }
}

impl WitnessKey {
    /// A new random key.
    pub fn make(rng: &mut impl CryptoRngCore) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The key from its 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The seed, for storing the key.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Co-signs `checkpoint` for a client that sent `nonce` (zeros when none), at `time_ms`.
    pub fn cosign(&self, checkpoint: &Checkpoint, nonce: &[u8; 32], time_ms: u64) -> Cosignature {
        let mut w = Writer::with_header(COSIGNATURE_MAGIC, VERSION);
        checkpoint.write(&mut w);
        w.bytes(nonce);
        w.u64(time_ms);
        let key = self.public();
        w.bytes(&key);
        let mut message = labels::SIGN_COSIGNATURE.to_vec();
        message.extend_from_slice(&w.buf);
        let signature = self.signing.sign(&message).to_bytes();
        w.bytes(&signature);
        Cosignature {
            checkpoint: *checkpoint,
            nonce: *nonce,
            time_ms,
            witness: key,
            bytes: w.buf,
        }
    }
}

/// A checkpoint co-signed by a witness, whose signature verifies under the key it names. Whether
/// that key is one of the wiki's witnesses, and whether the nonce is the one sent, is the
/// client's to check.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Cosignature {
    /// What the witness holds.
    pub checkpoint: Checkpoint,
    /// The nonce the client sent (zeros when none was).
    pub nonce: [u8; 32],
    /// The witness's clock when it signed (milliseconds since 1970; a claim).
    pub time_ms: u64,
    /// The witness's Ed25519 key.
    pub witness: [u8; 32],
    bytes: Vec<u8>,
}

impl Cosignature {
    /// Parses and checks the signature against the key it names.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "co-signature");
        r.header(COSIGNATURE_MAGIC, VERSION)?;
        let checkpoint = Checkpoint::read(&mut r)?;
        let nonce = r.array()?;
        let time_ms = r.u64()?;
        let witness: [u8; 32] = r.array()?;
        let signed_len = bytes.len() - r.remaining();
        let signature: [u8; 64] = r.array()?;
        r.finish()?;
        let mut message = labels::SIGN_COSIGNATURE.to_vec();
        message.extend_from_slice(&bytes[..signed_len]);
        if !hazmat::ed25519_verify(&witness, &message, &signature) {
            return Err(Error::BadSignature {
                what: "co-signature",
            });
        }
        Ok(Self {
            checkpoint,
            nonce,
            time_ms,
            witness,
            bytes: bytes.to_vec(),
        })
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// What a witness holds for one wiki: the latest accepted state and the keyring version it names.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Held {
    /// The signed state.
    pub state: WikiState,
    /// The sequence of the keyring version it names.
    pub keyring_seq: u64,
}

impl Held {
    /// The checkpoint this is.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            wiki: self.state.wiki,
            seq: self.state.seq,
            state: self.state.hash(),
            keyring_seq: self.keyring_seq,
        }
    }
}

/// A witness's answer to a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The newest state sent extends (or is) the one held: hold it from now on.
    Accept(Held),
    /// The states sent do not reach back to the one held: send them again from `from`.
    NeedStates {
        /// The first sequence the witness needs.
        from: u64,
    },
    /// Everything sent is older than the state held (and does not contradict it).
    Stale,
    /// The states sent do not extend the one held: a fork. The held state and `conflicting`
    /// (another state at its sequence, or a successor naming another predecessor) are the signed
    /// evidence.
    Fork {
        /// The submitted state that contradicts the held one.
        conflicting: WikiState,
    },
}

/// The one rule of a witness (key `me`), holding `held` for `wiki`, given a submission: the
/// wiki's keyring chain (genesis first) and a run of consecutive signed states (oldest first,
/// the newest last). Checks, in order: the chain verifies from its genesis and is this wiki's;
/// the newest keyring version lists `me` as a witness; each state is this wiki's, signed by an
/// owner or writer of the keyring version it names (which is in the chain, and never older than
/// the one before it); consecutive states are hash-linked. (The newest state need not name the
/// newest keyring version: a witness far behind catches up in batches of 256.) Then against what is held: the chain still holds the keyring version the held
/// state names; the states reach back to the held one (same hash at its sequence, or its
/// successor names it), else a [`Verdict::Fork`]. Errors are submissions no honest client makes.
pub fn judge_submission<K: AsRef<[u8]>, S: AsRef<[u8]>>(
    wiki: &WikiId,
    me: &[u8; 32],
    held: Option<&Held>,
    keyring_versions: &[K],
    states: &[S],
) -> Result<Verdict> {
    if states.is_empty() || states.len() > MAX_SUBMITTED_STATES {
        return Err(Error::Invalid("a submission carries 1 to 256 states"));
    }
    let latest = verify_chain(keyring_versions.iter().map(AsRef::as_ref))?;
    if &latest.wiki != wiki {
        return Err(Error::Mismatch("the keyring belongs to another wiki"));
    }
    if latest.witnesses.by_key(me).is_none() {
        return Err(Error::Unauthorized {
            what: "checkpoint",
            reason: "the wiki's keyring does not list this witness",
        });
    }
    let chain = keyring_versions
        .iter()
        .map(|v| Keyring::decode(v.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    let states = states
        .iter()
        .map(|s| WikiState::decode(s.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    let mut last_keyring = 0u64;
    for (i, s) in states.iter().enumerate() {
        if &s.wiki != wiki {
            return Err(Error::Mismatch("a state belongs to another wiki"));
        }
        let keyring = chain
            .iter()
            .find(|k| k.hash() == s.keyring)
            .ok_or(Error::Mismatch(
                "a state names a keyring version that is not in the chain",
            ))?;
        let writer = keyring
            .member_by_signing_key(&s.signer)
            .is_some_and(|m| m.role.can_write());
        if !writer || s.epoch != keyring.epoch {
            return Err(Error::Unauthorized {
                what: "wiki state",
                reason: "not signed by an owner or writer of the keyring version it names",
            });
        }
        if keyring.seq < last_keyring {
            return Err(Error::Mismatch("a state names an older keyring version"));
        }
        last_keyring = keyring.seq;
        if i > 0 {
            let prev = &states[i - 1];
            if s.seq != prev.seq + 1 || s.prev != prev.hash() {
                return Err(Error::Mismatch(
                    "the states sent are not consecutive and hash-linked",
                ));
            }
        }
    }
    let newest = states.last().ok_or(Error::Mismatch("no state"))?;
    let accept = || Held {
        state: newest.clone(),
        keyring_seq: last_keyring,
    };
    let Some(held) = held else {
        return Ok(Verdict::Accept(accept()));
    };
    let keyring_kept = chain
        .iter()
        .any(|k| k.seq == held.keyring_seq && k.hash() == held.state.keyring);
    if !keyring_kept {
        // The chain sent rewrote the keyring history the held state was written under.
        return Ok(Verdict::Fork {
            conflicting: newest.clone(),
        });
    }
    if let Some(at) = states.iter().find(|s| s.seq == held.state.seq) {
        if at.hash() != held.state.hash() {
            return Ok(Verdict::Fork {
                conflicting: at.clone(),
            });
        }
    } else if let Some(next) = states.iter().find(|s| s.seq == held.state.seq + 1) {
        if next.prev != held.state.hash() {
            return Ok(Verdict::Fork {
                conflicting: next.clone(),
            });
        }
    } else if newest.seq < held.state.seq {
        return Ok(Verdict::Stale);
    } else {
        return Ok(Verdict::NeedStates {
            from: held.state.seq + 1,
        });
    }
    if newest.seq < held.state.seq {
        return Ok(Verdict::Stale);
    }
    Ok(Verdict::Accept(accept()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_and_cosignatures_round_trip() {
        let key = WitnessKey::from_seed(&[7; 32]);
        let c = Checkpoint {
            wiki: WikiId([1; 16]),
            seq: 42,
            state: Digest32([2; 32]),
            keyring_seq: 3,
        };
        assert_eq!(c.encode().len(), CHECKPOINT_LEN);
        assert_eq!(Checkpoint::decode(&c.encode()).unwrap(), c);
        let s = key.cosign(&c, &[9; 32], 1_700_000_000_000);
        assert_eq!(s.as_bytes().len(), COSIGNATURE_LEN);
        let d = Cosignature::decode(s.as_bytes()).unwrap();
        assert_eq!(d, s);
        assert_eq!(d.witness, key.public());
        let mut bad = s.as_bytes().to_vec();
        bad[20] ^= 1;
        assert!(matches!(
            Cosignature::decode(&bad),
            Err(Error::BadSignature { .. })
        ));
        // An empty checkpoint must be all zeros beyond the wiki id.
        let mut e = Checkpoint::empty(WikiId([1; 16]));
        assert!(Checkpoint::decode(&e.encode()).unwrap().is_empty());
        e.keyring_seq = 1;
        assert!(Checkpoint::decode(&e.encode()).is_err());
    }

    #[test]
    fn urls_and_sets_are_checked() {
        for bad in ["ftp://x", "http://", "http://a b", "http://x/", "x"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        check_url("https://witness.example:8443/zk").unwrap();
        let mut set = WitnessSet::default();
        let w = Witness {
            key: [1; 32],
            url: "http://a".into(),
        };
        set.add(w.clone()).unwrap();
        assert!(set.add(w.clone()).is_err());
        assert_eq!(set.witnesses.len(), 1);
        assert_eq!(set.remove("http://a").unwrap(), w);
        assert!(set.remove("http://a").is_err());
    }
}
