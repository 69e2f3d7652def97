//! Accepting a wiki head: the keyring chain from its genesis, the signed state and its manifest,
//! and, when this client saw an earlier state, **every transition from that state to the head**.
//!
//! A state that is merely newer proves nothing about the one seen: a server can show a client
//! state `n`, then serve state `n + 3` of another branch. So a client that saw `(n, hash)` asks
//! for the states `n ..= head - 1` (the *trail*) and accepts the head only if the state at `n`
//! has the hash it saw and each following state is a verified transition
//! (`WikiState::verify_transition`: next sequence, hash-linked, signed by a writer of the keyring
//! it names, folder-scoped writers within their folder, at most one keyring version per step).
//! The same check runs for a fresh command, a long-running session and the browser.

use core::ops::RangeInclusive;

use core_crypto::ids::{Digest32, PageId};
use core_crypto::keyring::{self, Keyring, Seen};
use core_crypto::snapshot::{PreparedCommit, SeenRecord, Snapshot};
use core_crypto::state::{Manifest, ManifestEntry, WikiState};

use crate::error::{Error, Result};

/// Most states one trail or history request may carry (the server's batch limit too).
pub const MAX_TRAIL_BATCH: usize = 256;

/// A keyring chain, state and manifest that passed every check, with the whole chain kept (older
/// states name older keyring versions).
#[derive(Clone, Debug)]
pub struct VerifiedHead {
    chain: Vec<Keyring>,
    snapshot: Snapshot,
}

/// One verified transition: what the state at `seq` changed and who signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The sequence of the state that made the change.
    pub seq: u64,
    /// The Ed25519 key that signed it.
    pub signer: [u8; 32],
    /// The signer's member name in the keyring that state names.
    pub signer_name: String,
    /// Whether the state came with a new keyring version.
    pub keyring_changed: bool,
    /// New or changed manifest entries.
    pub changed: Vec<(PageId, ManifestEntry)>,
    /// Pages removed.
    pub removed: Vec<PageId>,
}

/// The sequence of a state, read without trusting it (to know which trail to fetch).
pub fn state_seq(state: &[u8]) -> Result<u64> {
    Ok(WikiState::decode(state)?.seq)
}

/// The states a client that saw `seen` must fetch to accept a head at `head_seq`: the state it
/// saw and every one between (oldest first), or none. A head below what was seen is a rollback.
pub fn trail_needed(seen: &SeenRecord, head_seq: u64) -> Result<Option<RangeInclusive<u64>>> {
    let Some(s) = seen.state else {
        return Ok(None);
    };
    if head_seq < s.seq {
        return Err(core_crypto::Error::Rollback {
            what: "wiki state",
            seen: s.seq,
            offered: head_seq,
        }
        .into());
    }
    Ok((head_seq > s.seq).then(|| s.seq..=head_seq - 1))
}

/// One older state and its manifest, as fetched.
pub type TrailPoint = (Vec<u8>, Vec<u8>);

/// The keyring version a state names, which must be in `chain`.
pub(crate) fn keyring_of<'c>(
    chain: &'c [Keyring],
    state: &WikiState,
) -> Result<(usize, &'c Keyring)> {
    chain
        .iter()
        .enumerate()
        .find(|(_, k)| k.hash() == state.keyring)
        .ok_or_else(|| {
            Error::integrity(format!(
                "state {} names a keyring version that is not in the verified chain",
                state.seq
            ))
        })
}

/// Verifies that `(next, next_manifest)` follows `(prev, prev_manifest)`; returns the step.
pub(crate) fn verify_step(
    chain: &[Keyring],
    prev: &WikiState,
    prev_manifest: &Manifest,
    next: &WikiState,
    next_manifest: &Manifest,
) -> Result<Step> {
    if next.seq != prev.seq + 1 || next.prev != prev.hash() {
        // The states do not link: whoever showed the earlier one now shows another branch.
        return Err(fork_at(prev.seq).context(format!("state {}", next.seq)));
    }
    let (prev_k, _) = keyring_of(chain, prev)?;
    let (next_k, keyring) = keyring_of(chain, next)?;
    if next_k != prev_k && next_k != prev_k + 1 {
        return Err(Error::integrity(format!(
            "state {} adds more than one keyring version (or goes back to an older one)",
            next.seq
        )));
    }
    prev.verify_transition(prev_manifest, next, next_manifest, keyring)
        .map_err(|e| Error::from(e).context(format!("state {}", next.seq)))?;
    Ok(step_of(
        prev_manifest,
        next,
        next_manifest,
        keyring,
        next_k != prev_k,
    ))
}

/// The step from `prev_manifest` to a verified `next`.
pub(crate) fn step_of(
    prev_manifest: &Manifest,
    next: &WikiState,
    next_manifest: &Manifest,
    keyring: &Keyring,
    keyring_changed: bool,
) -> Step {
    let changed = next_manifest
        .pages
        .iter()
        .filter(|(id, e)| prev_manifest.pages.get(id) != Some(e))
        .map(|(id, e)| (*id, *e))
        .collect();
    let removed = prev_manifest
        .pages
        .keys()
        .filter(|id| !next_manifest.pages.contains_key(id))
        .copied()
        .collect();
    Step {
        seq: next.seq,
        signer: next.signer,
        signer_name: keyring
            .member_by_signing_key(&next.signer)
            .map_or_else(String::new, |m| m.name.clone()),
        keyring_changed,
        changed,
        removed,
    }
}

/// Verifies the steps from `base` through `trail` (oldest first) to `head`.
fn walk(
    chain: &[Keyring],
    base: (&WikiState, &Manifest),
    trail: &[(WikiState, Manifest)],
    head: (&WikiState, &Manifest),
) -> Result<Vec<Step>> {
    let mut steps = Vec::with_capacity(trail.len() + 1);
    let mut prev = base;
    for (s, m) in trail
        .iter()
        .map(|(s, m)| (s, m))
        .chain(std::iter::once(head))
    {
        steps.push(verify_step(chain, prev.0, prev.1, s, m)?);
        prev = (s, m);
    }
    Ok(steps)
}

fn decode_trail(trail: &[TrailPoint]) -> Result<Vec<(WikiState, Manifest)>> {
    trail
        .iter()
        .map(|(s, m)| Ok((WikiState::decode(s)?, Manifest::decode(m)?)))
        .collect()
}

/// A fork at the sequence this client saw, in the core's words.
fn fork_at(seq: u64) -> Error {
    core_crypto::Error::Fork {
        what: "wiki state",
        seq,
    }
    .into()
}

/// Checks that `trail` holds exactly the states `from ..= to`, in order.
fn check_trail_seqs(trail: &[(WikiState, Manifest)], from: u64, to: u64) -> Result<()> {
    let expected = to.checked_sub(from).map_or(0, |d| d + 1);
    if trail.len() as u64 != expected || trail.iter().zip(from..).any(|((s, _), seq)| s.seq != seq)
    {
        return Err(Error::integrity(format!(
            "the server did not return the states {from} to {to} in order"
        )));
    }
    Ok(())
}

impl VerifiedHead {
    /// Verifies a fetched head: `keyring_versions` is the whole chain (genesis first), `trail`
    /// the states [`trail_needed`] asked for (oldest first; empty when none). Returns the head
    /// and the verified steps from the state seen to it.
    pub fn verify<B: AsRef<[u8]>>(
        keyring_versions: &[B],
        state: &[u8],
        manifest: &[u8],
        seen: &SeenRecord,
        trail: &[TrailPoint],
    ) -> Result<(Self, Vec<Step>)> {
        let snapshot = Snapshot::verify(keyring_versions, state, manifest, seen)?;
        let chain = keyring_versions
            .iter()
            .map(|v| Keyring::decode(v.as_ref()))
            .collect::<core_crypto::Result<Vec<_>>>()?;
        let head = Self { chain, snapshot };
        let steps = match (seen.state, trail_needed(seen, head.seq())?) {
            (Some(s), Some(range)) => {
                let trail = decode_trail(trail)?;
                check_trail_seqs(&trail, *range.start(), *range.end())?;
                let (first, rest) = trail.split_first().ok_or_else(|| fork_at(s.seq))?;
                if first.0.hash() != s.hash {
                    return Err(fork_at(s.seq));
                }
                walk(
                    &head.chain,
                    (&first.0, &first.1),
                    rest,
                    (&head.snapshot.state, &head.snapshot.manifest),
                )?
            }
            _ => Vec::new(),
        };
        Ok((head, steps))
    }

    /// A wiki just created (genesis keyring, first state, empty manifest).
    pub fn genesis(
        keyring: Keyring,
        creator: &core_crypto::identity::UserIdentity,
    ) -> Result<Self> {
        let snapshot = Snapshot::genesis(keyring.clone(), creator)?;
        Ok(Self {
            chain: vec![keyring],
            snapshot,
        })
    }

    /// Checks a newer head against this one: `newer_keyrings` are the versions after this head's
    /// latest (`/keyring?since=`), `trail` the states between (this head's sequence + 1 up to the
    /// new head's − 1, oldest first). Returns the new head and the verified steps.
    pub fn advance<B: AsRef<[u8]>>(
        &self,
        newer_keyrings: &[B],
        state: &[u8],
        manifest: &[u8],
        trail: &[TrailPoint],
    ) -> Result<(Self, Vec<Step>)> {
        let mut chain = self.chain.clone();
        for bytes in newer_keyrings {
            let next = Keyring::decode(bytes.as_ref())?;
            let latest = chain
                .last()
                .ok_or_else(|| Error::integrity("empty keyring chain"))?;
            if next.seq <= latest.seq {
                // A version already held: it must be the very same bytes.
                let same = chain
                    .iter()
                    .any(|k| k.seq == next.seq && k.hash() == next.hash());
                if !same {
                    return Err(core_crypto::Error::Fork {
                        what: "keyring",
                        seq: next.seq,
                    }
                    .into());
                }
                continue;
            }
            latest.verify_next(&next)?;
            chain.push(next);
        }
        let latest = chain
            .last()
            .ok_or_else(|| Error::integrity("empty keyring chain"))?;
        latest.check_fresh(Some(self.snapshot.keyring.seen()))?;
        let next_state = WikiState::decode(state)?;
        let next_manifest = Manifest::decode(manifest)?;
        next_state.verify(latest, &next_manifest, Some(self.snapshot.state.seen()))?;
        let seen = self.snapshot.state.seen();
        let steps = if next_state.seq == seen.seq {
            Vec::new()
        } else {
            let trail = decode_trail(trail)?;
            check_trail_seqs(&trail, seen.seq + 1, next_state.seq - 1)?;
            walk(
                &chain,
                (&self.snapshot.state, &self.snapshot.manifest),
                &trail,
                (&next_state, &next_manifest),
            )?
        };
        let head = Self {
            snapshot: Snapshot {
                keyring: latest.clone(),
                state: next_state,
                manifest: next_manifest,
            },
            chain,
        };
        Ok((head, steps))
    }

    /// The states [`Self::advance`] needs to move this head to a head at `head_seq`: every one
    /// strictly between (oldest first), or none. A head below this one is a rollback.
    pub fn trail_to(&self, head_seq: u64) -> Result<Option<RangeInclusive<u64>>> {
        let seq = self.seq();
        if head_seq < seq {
            return Err(core_crypto::Error::Rollback {
                what: "wiki state",
                seen: seq,
                offered: head_seq,
            }
            .into());
        }
        Ok((head_seq > seq + 1).then(|| seq + 1..=head_seq - 1))
    }

    /// The head after this client's own commit was accepted (it was checked as a transition
    /// when it was signed).
    pub fn adopt(&self, commit: PreparedCommit) -> (Self, Step) {
        let keyring_changed = commit.keyring.is_some();
        let mut chain = self.chain.clone();
        if let Some(k) = &commit.keyring {
            chain.push(k.clone());
        }
        let next = commit.into_snapshot(&self.snapshot);
        let step = step_of(
            &self.snapshot.manifest,
            &next.state,
            &next.manifest,
            &next.keyring,
            keyring_changed,
        );
        (
            Self {
                chain,
                snapshot: next,
            },
            step,
        )
    }

    /// The verified keyring, state and manifest.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Every keyring version, genesis first.
    pub fn chain(&self) -> &[Keyring] {
        &self.chain
    }

    /// The state's sequence.
    pub fn seq(&self) -> u64 {
        self.snapshot.state.seq
    }

    /// The state's hash.
    pub fn state_hash(&self) -> Digest32 {
        self.snapshot.state.hash()
    }

    /// What to remember for rollback and fork detection.
    pub fn seen_record(&self) -> SeenRecord {
        self.snapshot.seen_record()
    }
}

trait SeenOf {
    fn seen(&self) -> Seen;
}

impl SeenOf for Keyring {
    fn seen(&self) -> Seen {
        Seen {
            seq: self.seq,
            hash: self.hash(),
        }
    }
}

/// Re-exported for drivers that verify only a keyring chain (e.g. `textconv` of a keyring file).
pub fn verify_chain<'a>(versions: impl IntoIterator<Item = &'a [u8]>) -> Result<Keyring> {
    Ok(keyring::verify_chain(versions)?)
}
