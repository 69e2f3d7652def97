//! Witnesses, as every client enforces them: a wiki whose keyring lists witnesses accepts as
//! current only a head that its witnesses' latest checkpoints do not contradict.
//!
//! A driver (the CLI, the MCP server, the browser) verifies the server's head as usual
//! ([`crate::head`]), then, for each witness the head's keyring lists:
//!
//! 1. asks it for its latest checkpoint with a fresh random nonce and hands the answer to
//!    [`assess`], which checks the co-signature (the listed key, this wiki, this nonce), compares
//!    it with what this device remembers of that witness ([`Memory`]) and with the head;
//! 2. while the finding is [`Finding::Behind`] (the witness holds an older state, or none),
//!    submits the head with the states from the one it holds ([`submission`]) and assesses the
//!    answer again: the witness accepts only a head that extends what it holds;
//! 3. gives every finding to [`decide`], which refuses a rollback, a fork or a lying witness
//!    always, and applies the wiki's policy to witnesses that could not be asked.
//!
//! Only then is the head accepted (and remembered). A writer submits each new head after its
//! commit the same way (steps 2 and 3).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use core_crypto::ids::{Digest32, WikiId};
pub use core_crypto::witness::{
    Checkpoint, Cosignature, Witness, WitnessPolicy, WitnessSet, check_url, key_fingerprint,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind, Result};
use crate::head::VerifiedHead;
use crate::wire::{self, b64, unb64};

/// The head a client is about to accept, as the witness rule sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadFacts {
    /// The wiki.
    pub wiki: WikiId,
    /// The state's sequence.
    pub seq: u64,
    /// SHA-256 of the state.
    pub state: Digest32,
}

impl From<&VerifiedHead> for HeadFacts {
    fn from(h: &VerifiedHead) -> Self {
        Self {
            wiki: h.snapshot().keyring.wiki,
            seq: h.seq(),
            state: h.state_hash(),
        }
    }
}

/// Why a witness refused a submission (its `409` codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The head does not extend the state the witness holds.
    Fork,
    /// Everything sent is older than what the witness holds.
    Stale,
    /// The witness needs the states from this sequence on.
    NeedStates(u64),
}

/// What a witness answered, as the driver received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A co-signed checkpoint (its latest, or the head it just accepted).
    Cosigned(Vec<u8>),
    /// A refused submission, with the witness's co-signed latest checkpoint.
    Refused {
        /// Why.
        refusal: Refusal,
        /// Its latest checkpoint, co-signed.
        cosignature: Vec<u8>,
    },
    /// No answer (connection refused, timeout, a 5xx): the text says what happened.
    Unreachable(String),
    /// An answer that is not what the witness API promises.
    Invalid(String),
}

/// What one witness's answer means for the head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The witness holds exactly this head.
    Agrees(Cosignature),
    /// The witness holds an older state (or none): submit the states `from ..= head`.
    Behind {
        /// The first state to send.
        from: u64,
        /// What it holds.
        cosignature: Cosignature,
    },
    /// The witness holds a later state than the head: the server rolled the wiki back.
    Ahead(Cosignature),
    /// The witness holds another state at the head's sequence, or refused the head as not
    /// extending what it holds: the server shows a fork.
    Forked(Cosignature),
    /// The witness co-signed, for this device, a later checkpoint than the one it shows now (or
    /// another state at the same sequence): it lies, or lost its data.
    Lied {
        /// What it co-signed before.
        remembered: Cosignature,
        /// What it co-signs now.
        now: Cosignature,
    },
    /// The answer is signed by a key the keyring does not list for this witness.
    WrongKey {
        /// The fingerprint of the key that signed.
        fingerprint: String,
    },
    /// The witness could not be asked.
    Unreachable(String),
    /// The answer could not be used (malformed, another wiki, not for this request).
    Invalid(String),
}

impl Finding {
    /// One line for people.
    pub fn describe(&self) -> String {
        let at = |c: &Cosignature| c.checkpoint.seq;
        match self {
            Self::Agrees(c) => format!("holds this head (seq {})", at(c)),
            Self::Behind { cosignature: c, .. } if c.checkpoint.is_empty() => {
                "holds nothing for this wiki yet".to_owned()
            }
            Self::Behind { cosignature: c, .. } => format!("holds an older state (seq {})", at(c)),
            Self::Ahead(c) => format!(
                "holds state {} of this wiki: the server offers an older one (rollback)",
                at(c)
            ),
            Self::Forked(c) => format!(
                "holds state {} of another branch: the server shows a fork",
                at(c)
            ),
            Self::Lied { remembered, now } => format!(
                "co-signed state {} for this device before and now shows {}: it lies or lost its data",
                at(remembered),
                at(now)
            ),
            Self::WrongKey { fingerprint } => format!(
                "answered with a key the wiki does not list for it (fingerprint {fingerprint})"
            ),
            Self::Unreachable(why) => format!("could not be asked: {why}"),
            Self::Invalid(why) => format!("gave an unusable answer: {why}"),
        }
    }

    /// Whether this witness confirmed the head.
    pub fn agrees(&self) -> bool {
        matches!(self, Self::Agrees(_))
    }

    /// A stable lowercase name (for `--json` and the browser).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Agrees(_) => "agrees",
            Self::Behind { .. } => "behind",
            Self::Ahead(_) => "rollback",
            Self::Forked(_) => "fork",
            Self::Lied { .. } => "lied",
            Self::WrongKey { .. } => "wrong_key",
            Self::Unreachable(_) => "unreachable",
            Self::Invalid(_) => "invalid",
        }
    }

    /// The sequence of the checkpoint the witness showed, when it showed one.
    pub fn checkpoint_seq(&self) -> Option<u64> {
        match self {
            Self::Agrees(c)
            | Self::Behind { cosignature: c, .. }
            | Self::Ahead(c)
            | Self::Forked(c)
            | Self::Lied { now: c, .. } => Some(c.checkpoint.seq),
            _ => None,
        }
    }
}

/// Judges one answer of `witness` about `head`, for a request that sent `nonce`, given what this
/// device remembers of the witness.
pub fn assess(
    head: &HeadFacts,
    witness: &Witness,
    nonce: &[u8; 32],
    answer: Answer,
    remembered: Option<&Cosignature>,
) -> Finding {
    // What this witness co-signed for this device before still binds when it cannot be asked
    // now: a head below it is a rollback, another state at its sequence a fork.
    let unusable = |f: Finding| match remembered {
        Some(r) if r.checkpoint.seq > head.seq => Finding::Ahead(r.clone()),
        Some(r) if r.checkpoint.seq == head.seq && r.checkpoint.state != head.state => {
            Finding::Forked(r.clone())
        }
        _ => f,
    };
    let (bytes, refusal) = match answer {
        Answer::Cosigned(b) => (b, None),
        Answer::Refused {
            refusal,
            cosignature,
        } => (cosignature, Some(refusal)),
        Answer::Unreachable(why) => return unusable(Finding::Unreachable(why)),
        Answer::Invalid(why) => return unusable(Finding::Invalid(why)),
    };
    let c = match Cosignature::decode(&bytes) {
        Ok(c) => c,
        Err(e) => {
            return unusable(Finding::Invalid(format!(
                "its co-signature does not verify: {e}"
            )));
        }
    };
    if c.witness != witness.key {
        return unusable(Finding::WrongKey {
            fingerprint: key_fingerprint(&c.witness),
        });
    }
    if c.checkpoint.wiki != head.wiki {
        return unusable(Finding::Invalid(
            "its checkpoint is for another wiki".to_owned(),
        ));
    }
    if &c.nonce != nonce {
        return unusable(Finding::Invalid(
            "its co-signature is not for this request (an old answer replayed?)".to_owned(),
        ));
    }
    if let Some(r) = remembered.filter(|r| contradicts(r, &c)) {
        return Finding::Lied {
            remembered: r.clone(),
            now: c,
        };
    }
    let held = c.checkpoint;
    if held.seq > head.seq {
        return Finding::Ahead(c);
    }
    if refusal == Some(Refusal::Fork) || (held.seq == head.seq && held.state != head.state) {
        return Finding::Forked(c);
    }
    if held.seq == head.seq {
        return Finding::Agrees(c);
    }
    let from = match refusal {
        Some(Refusal::NeedStates(from)) if from > held.seq && from <= head.seq => from,
        Some(Refusal::NeedStates(_)) => {
            return Finding::Invalid("it asked for states it cannot need".to_owned());
        }
        // Nothing held: the head alone is enough.
        _ if held.is_empty() => head.seq,
        _ => held.seq + 1,
    };
    Finding::Behind {
        from,
        cosignature: c,
    }
}

/// Whether `now` contradicts `remembered` (both co-signed by one witness for one wiki): an
/// older checkpoint, or another state at the same sequence.
fn contradicts(remembered: &Cosignature, now: &Cosignature) -> bool {
    let (r, n) = (&remembered.checkpoint, &now.checkpoint);
    r.wiki == n.wiki && (n.seq < r.seq || (n.seq == r.seq && n.state != r.state))
}

/// The wiki's decision once every witness was asked: `Err` refuses the head; `Ok` accepts it,
/// with a warning per witness that could not confirm it (policy `warn`).
pub fn decide(policy: WitnessPolicy, findings: &[(Witness, Finding)]) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (w, f) in findings {
        let line = format!(
            "witness {} {}",
            crate::display::escape(&w.url),
            f.describe()
        );
        match f {
            Finding::Agrees(_) => {}
            Finding::Ahead(_) | Finding::Forked(_) | Finding::Lied { .. } => {
                return Err(Error::integrity(line).with_hint(
                    "the wiki's server (or this witness) shows this device something the wiki's \
                     members never wrote there: do not trust it, and tell the wiki's owner",
                ));
            }
            Finding::Behind { .. } => {
                // The driver submits until the witness agrees or refuses; one still behind
                // after that could not be brought up to date.
                let line = format!("{line} and could not be brought up to date");
                match policy {
                    WitnessPolicy::Stop => return Err(Error::integrity(line)),
                    WitnessPolicy::Warn => warnings.push(line),
                }
            }
            Finding::WrongKey { .. } | Finding::Invalid(_) => match policy {
                WitnessPolicy::Stop => {
                    return Err(Error::integrity(line).with_hint(
                        "the wiki's policy stops reads when a witness cannot confirm the head; \
                         an owner can change the witness (`zkwiki witness rm`, `witness add`)",
                    ));
                }
                WitnessPolicy::Warn => warnings.push(format!(
                    "{line}; this head is checked only against this device's memory"
                )),
            },
            Finding::Unreachable(_) => match policy {
                WitnessPolicy::Stop => {
                    return Err(Error::new(Kind::Unavailable, line).with_hint(
                        "the wiki's policy stops reads while a witness is down; try again later, \
                         or an owner removes the witness (`zkwiki witness rm URL`)",
                    ));
                }
                WitnessPolicy::Warn => warnings.push(format!(
                    "{line}; this head is checked only against this device's memory"
                )),
            },
        }
    }
    Ok(warnings)
}

/// The most submissions one witness gets while it catches up (each carries up to 256 states).
pub const MAX_ROUNDS: usize = 64;

/// Which states to fetch from the server for a witness `Behind { from }` the head, and whether
/// the head completes the batch: at most 256 states go in one submission (the witness takes
/// each batch as a step forward and is asked again).
pub fn window(head_seq: u64, from: u64) -> (Option<RangeInclusive<u64>>, bool) {
    let batch = core_crypto::witness::MAX_SUBMITTED_STATES as u64;
    let last = head_seq.min(from.saturating_add(batch - 1));
    let with_head = last == head_seq;
    let fetch_to = if with_head {
        head_seq.saturating_sub(1)
    } else {
        last
    };
    ((from <= fetch_to).then_some(from..=fetch_to), with_head)
}

/// The submission for a witness `Behind { from }` the head: `fetched` are the states
/// [`window`] named, as the server returned them (oldest first).
pub fn submission(
    head: &VerifiedHead,
    from: u64,
    fetched: &[Vec<u8>],
    nonce: &[u8; 32],
) -> Result<wire::WitnessSubmitRequest> {
    let (range, with_head) = window(head.seq(), from);
    let expected = range.as_ref().map_or(0, |r| r.end() - r.start() + 1);
    if fetched.len() as u64 != expected {
        return Err(Error::integrity(format!(
            "the server did not return the states {from} to {} in order",
            range.map_or(from, |r| *r.end())
        )));
    }
    let mut states: Vec<String> = fetched.iter().map(|s| b64(s)).collect();
    if with_head {
        states.push(b64(head.snapshot().state.as_bytes()));
    }
    Ok(wire::WitnessSubmitRequest {
        keyring: head.chain().iter().map(|k| b64(k.as_bytes())).collect(),
        states,
        nonce: wire::hex(nonce),
    })
}

/// Reads a witness's HTTP answer (to a checkpoint query or a submission) as an [`Answer`].
pub fn answer_of(status: u16, body: &[u8]) -> Answer {
    if status == 200 {
        return match wire::parse_bytes::<wire::CheckpointResponse>(body, "checkpoint") {
            Ok(r) => match unb64(&r.cosignature, "co-signature") {
                Ok(b) => Answer::Cosigned(b),
                Err(e) => Answer::Invalid(e.message),
            },
            Err(e) => Answer::Invalid(e.message),
        };
    }
    if status >= 500 {
        return Answer::Unreachable(format!("it answered HTTP {status}"));
    }
    let Ok(r) = serde_json::from_slice::<wire::WitnessErrorBody>(body) else {
        return Answer::Invalid(format!("it answered HTTP {status}"));
    };
    let message =
        crate::display::escape(&r.error.message.chars().take(200).collect::<String>()).into_owned();
    let refusal = match (r.error.code.as_str(), r.from) {
        ("fork", _) => Refusal::Fork,
        ("stale", _) => Refusal::Stale,
        ("need_states", Some(from)) => Refusal::NeedStates(from),
        (code, _) => {
            return Answer::Invalid(format!(
                "it refused ({}): {message}",
                crate::display::escape(code)
            ));
        }
    };
    match r.cosignature.as_deref().map(|c| unb64(c, "co-signature")) {
        Some(Ok(cosignature)) => Answer::Refused {
            refusal,
            cosignature,
        },
        _ => Answer::Invalid("a refusal without its co-signed checkpoint".to_owned()),
    }
}

/// What a device remembers of a wiki's witnesses: for each witness key, the latest checkpoint it
/// co-signed for this device. A later answer below it is a lie ([`Finding::Lied`]). Kept beside
/// the seen record (the CLI in `DATA/wikis/<id>/witnesses.json`, the browser in local storage).
///
/// ```json
/// {"witnesses": {"<key hex>": "<co-signature base64>"}}
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    by_key: BTreeMap<[u8; 32], Cosignature>,
}

#[derive(Serialize, Deserialize, Default)]
struct MemoryJson {
    #[serde(default)]
    witnesses: BTreeMap<String, String>,
}

impl Memory {
    /// What this device remembers of the witness with `key`.
    pub fn get(&self, key: &[u8; 32]) -> Option<&Cosignature> {
        self.by_key.get(key)
    }

    /// Remembers `c` unless an equal or later checkpoint of its witness is remembered.
    pub fn remember(&mut self, c: &Cosignature) {
        let newer = self
            .by_key
            .get(&c.witness)
            .is_none_or(|r| c.checkpoint.seq > r.checkpoint.seq);
        if newer {
            self.by_key.insert(c.witness, c.clone());
        }
    }

    /// The JSON form.
    pub fn encode(&self) -> String {
        wire::to_json(&MemoryJson {
            witnesses: self
                .by_key
                .iter()
                .map(|(k, c)| (wire::hex(k), b64(c.as_bytes())))
                .collect(),
        })
    }

    /// Parses the JSON form (blank: nothing remembered); each co-signature must verify.
    pub fn decode(json: &str) -> Result<Self> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        let unreadable = || {
            Error::input("the remembered witness checkpoints on this device are unreadable")
                .with_hint(
                    "delete the file if it was edited by hand; it is rebuilt at the next read",
                )
        };
        let j: MemoryJson = serde_json::from_str(json).map_err(|_| unreadable())?;
        let mut m = Self::default();
        for c in j.witnesses.values() {
            let bytes = unb64(c, "co-signature").map_err(|_| unreadable())?;
            m.remember(&Cosignature::decode(&bytes).map_err(|_| unreadable())?);
        }
        Ok(m)
    }
}

/// The evidence a lying witness left: both co-signatures, as JSON a person can hand on.
pub fn evidence_json(remembered: &Cosignature, now: &Cosignature) -> String {
    let one = |c: &Cosignature| {
        serde_json::json!({
            "cosignature": b64(c.as_bytes()),
            "seq": c.checkpoint.seq,
            "state": c.checkpoint.state.to_hex(),
            "time_ms": c.time_ms,
        })
    };
    wire::to_json(&serde_json::json!({
        "witness": wire::hex(&now.witness),
        "fingerprint": key_fingerprint(&now.witness),
        "wiki": now.checkpoint.wiki.to_hex(),
        "co_signed_before": one(remembered),
        "co_signed_now": one(now),
    }))
}

/// The safety numbers of a verified head: of its state and of its keyring version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetyNumbers {
    /// The state's sequence.
    pub seq: u64,
    /// Safety number of the state.
    pub head: String,
    /// The keyring version's sequence.
    pub keyring_seq: u64,
    /// Safety number of the keyring version.
    pub keyring: String,
}

/// The safety numbers two members compare out of band (the same in every client).
pub fn safety_numbers(head: &VerifiedHead) -> SafetyNumbers {
    let snap = head.snapshot();
    let wiki = snap.keyring.wiki;
    SafetyNumbers {
        seq: head.seq(),
        head: core_crypto::safety::head(&wiki, &head.state_hash()),
        keyring_seq: snap.keyring.seq,
        keyring: core_crypto::safety::keyring(&wiki, &snap.keyring.hash()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core_crypto::witness::WitnessKey;

    const NONCE: [u8; 32] = [5; 32];
    const WIKI: WikiId = WikiId([1; 16]);

    fn head(seq: u64, b: u8) -> HeadFacts {
        HeadFacts {
            wiki: WIKI,
            seq,
            state: Digest32([b; 32]),
        }
    }

    fn witness(key: &WitnessKey) -> Witness {
        Witness {
            key: key.public(),
            url: "http://w".into(),
        }
    }

    fn cosig(key: &WitnessKey, seq: u64, b: u8, nonce: &[u8; 32]) -> Cosignature {
        let c = if seq == 0 {
            Checkpoint::empty(WIKI)
        } else {
            Checkpoint {
                wiki: WIKI,
                seq,
                state: Digest32([b; 32]),
                keyring_seq: 1,
            }
        };
        key.cosign(&c, nonce, 1)
    }

    fn said(c: &Cosignature) -> Answer {
        Answer::Cosigned(c.as_bytes().to_vec())
    }

    #[test]
    fn the_head_must_not_be_contradicted() {
        let k = WitnessKey::from_seed(&[1; 32]);
        let w = witness(&k);
        let h = head(5, 0xaa);
        let judge = |a: Answer| assess(&h, &w, &NONCE, a, None);
        assert!(judge(said(&cosig(&k, 5, 0xaa, &NONCE))).agrees());
        assert!(matches!(
            judge(said(&cosig(&k, 6, 0xbb, &NONCE))),
            Finding::Ahead(_)
        ));
        assert!(matches!(
            judge(said(&cosig(&k, 5, 0xbb, &NONCE))),
            Finding::Forked(_)
        ));
        assert!(matches!(
            judge(said(&cosig(&k, 3, 0xcc, &NONCE))),
            Finding::Behind { from: 4, .. }
        ));
        assert!(matches!(
            judge(said(&cosig(&k, 0, 0, &NONCE))),
            Finding::Behind { from: 5, .. }
        ));
        // A submission refused as a fork, and one that needs earlier states.
        let refused = |refusal| Answer::Refused {
            refusal,
            cosignature: cosig(&k, 3, 0xcc, &NONCE).as_bytes().to_vec(),
        };
        assert!(matches!(judge(refused(Refusal::Fork)), Finding::Forked(_)));
        assert!(matches!(
            judge(refused(Refusal::NeedStates(4))),
            Finding::Behind { from: 4, .. }
        ));
        assert!(matches!(
            judge(refused(Refusal::NeedStates(9))),
            Finding::Invalid(_)
        ));
    }

    #[test]
    fn answers_that_do_not_count() {
        let k = WitnessKey::from_seed(&[1; 32]);
        let other = WitnessKey::from_seed(&[2; 32]);
        let w = witness(&k);
        let h = head(5, 0xaa);
        let judge = |a: Answer| assess(&h, &w, &NONCE, a, None);
        assert!(matches!(
            judge(said(&cosig(&other, 5, 0xaa, &NONCE))),
            Finding::WrongKey { .. }
        ));
        assert!(matches!(
            judge(said(&cosig(&k, 5, 0xaa, &[6; 32]))),
            Finding::Invalid(_)
        ));
        let mut forged = cosig(&k, 5, 0xaa, &NONCE).as_bytes().to_vec();
        forged[12] ^= 1;
        assert!(matches!(
            judge(Answer::Cosigned(forged)),
            Finding::Invalid(_)
        ));
        let foreign = k.cosign(
            &Checkpoint {
                wiki: WikiId([2; 16]),
                ..cosig(&k, 5, 0xaa, &NONCE).checkpoint
            },
            &NONCE,
            1,
        );
        assert!(matches!(judge(said(&foreign)), Finding::Invalid(_)));
        assert!(matches!(
            judge(Answer::Unreachable("down".into())),
            Finding::Unreachable(_)
        ));
    }

    #[test]
    fn a_witness_that_goes_back_on_what_it_signed_lied() {
        let k = WitnessKey::from_seed(&[1; 32]);
        let w = witness(&k);
        let mut memory = Memory::default();
        memory.remember(&cosig(&k, 7, 0xaa, &[0; 32]));
        memory.remember(&cosig(&k, 4, 0xbb, &[0; 32]));
        assert_eq!(memory.get(&k.public()).unwrap().checkpoint.seq, 7);
        let round = Memory::decode(&memory.encode()).unwrap();
        assert_eq!(round, memory);
        // The server shows state 5 and the witness now says 5 too: it co-signed 7 before.
        let f = assess(
            &head(5, 0xcc),
            &w,
            &NONCE,
            said(&cosig(&k, 5, 0xcc, &NONCE)),
            memory.get(&k.public()),
        );
        assert!(matches!(f, Finding::Lied { .. }), "{f:?}");
        // Another state at the remembered sequence is a lie as well.
        let f = assess(
            &head(7, 0xdd),
            &w,
            &NONCE,
            said(&cosig(&k, 7, 0xdd, &NONCE)),
            memory.get(&k.public()),
        );
        assert!(matches!(f, Finding::Lied { .. }), "{f:?}");
        // Down now, but it co-signed state 7 for this device: state 5 is still a rollback.
        let f = assess(
            &head(5, 0xcc),
            &w,
            &NONCE,
            Answer::Unreachable("connection refused".into()),
            memory.get(&k.public()),
        );
        assert!(matches!(f, Finding::Ahead(_)), "{f:?}");
        let f = assess(
            &head(8, 0xcc),
            &w,
            &NONCE,
            Answer::Unreachable("connection refused".into()),
            memory.get(&k.public()),
        );
        assert!(matches!(f, Finding::Unreachable(_)), "{f:?}");
        assert!(Memory::decode("{\"witnesses\":{\"a\":\"!!\"}}").is_err());
        assert_eq!(Memory::decode("").unwrap(), Memory::default());
    }

    #[test]
    fn the_policy_decides_only_for_witnesses_that_could_not_be_asked() {
        let k = WitnessKey::from_seed(&[1; 32]);
        let w = witness(&k);
        let down = (w.clone(), Finding::Unreachable("connection refused".into()));
        let wrong = (
            w.clone(),
            Finding::WrongKey {
                fingerprint: "x".into(),
            },
        );
        let agrees = (w.clone(), Finding::Agrees(cosig(&k, 5, 0xaa, &NONCE)));
        let ahead = (w.clone(), Finding::Ahead(cosig(&k, 6, 0xaa, &NONCE)));
        assert_eq!(
            decide(WitnessPolicy::Warn, std::slice::from_ref(&agrees)).unwrap(),
            Vec::<String>::new()
        );
        let warned = decide(WitnessPolicy::Warn, &[down.clone(), wrong.clone()]).unwrap();
        assert_eq!(warned.len(), 2);
        assert!(warned[0].contains("could not be asked"), "{warned:?}");
        let e = decide(WitnessPolicy::Stop, &[agrees.clone(), down]).unwrap_err();
        assert_eq!(e.kind, Kind::Unavailable);
        let e = decide(WitnessPolicy::Stop, &[wrong]).unwrap_err();
        assert_eq!(e.kind, Kind::Integrity);
        for policy in [WitnessPolicy::Warn, WitnessPolicy::Stop] {
            let e = decide(policy, &[agrees.clone(), ahead.clone()]).unwrap_err();
            assert_eq!(e.kind, Kind::Integrity);
            assert!(e.message.contains("rollback"), "{}", e.message);
        }
    }

    #[test]
    fn catching_up_goes_in_batches_of_256() {
        assert_eq!(window(5, 5), (None, true));
        assert_eq!(window(5, 3), (Some(3..=4), true));
        assert_eq!(window(1000, 1), (Some(1..=256), false));
        assert_eq!(window(1000, 745), (Some(745..=999), true));
    }

    #[test]
    fn http_answers_are_classified_once() {
        let k = WitnessKey::from_seed(&[1; 32]);
        let c = cosig(&k, 3, 1, &NONCE);
        let ok = format!(r#"{{"cosignature":"{}"}}"#, b64(c.as_bytes()));
        assert_eq!(
            answer_of(200, ok.as_bytes()),
            Answer::Cosigned(c.as_bytes().to_vec())
        );
        let need = format!(
            r#"{{"error":{{"code":"need_states","message":"m"}},"cosignature":"{}","from":4}}"#,
            b64(c.as_bytes())
        );
        assert!(matches!(
            answer_of(409, need.as_bytes()),
            Answer::Refused {
                refusal: Refusal::NeedStates(4),
                ..
            }
        ));
        assert!(matches!(answer_of(502, b"<html>"), Answer::Unreachable(_)));
        assert!(matches!(answer_of(200, b"{}"), Answer::Invalid(_)));
        let evil = r#"{"error":{"code":"\u001b[2J","message":"\u001b]0;x\u0007"}}"#;
        match answer_of(403, evil.as_bytes()) {
            Answer::Invalid(m) => assert!(!m.contains('\u{1b}'), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
