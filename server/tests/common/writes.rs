//! Concurrent writers for the load and scale tests: each writes new pages through the real
//! commit route, rebasing on every `409` from the head it carries, and records what the server
//! acknowledged; [`verify`] then checks the repository against every acknowledgement.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use core_crypto::identity::UserIdentity;
use core_crypto::ids::{Digest32, PageId};
use rand_core::OsRng;

use super::{Client, WikiView, check_repo, commit_body, prepare_put, state_hashes};

/// One acknowledged write.
#[derive(Clone, Copy, Debug)]
pub struct Ack {
    pub seq: u64,
    pub state: Digest32,
    pub page: PageId,
    pub blob: Digest32,
}

/// What writers did.
#[derive(Default)]
pub struct Outcome {
    pub acks: Vec<Ack>,
    pub conflicts: usize,
    /// Requests that got no answer (the server went away).
    pub transport_errors: usize,
}

/// What a writer does when its server does not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnTransportError {
    /// Stop writing (one server that was killed).
    GiveUp,
    /// Go on with the next server of the list (many processes: nothing is given up).
    NextServer,
}

/// The servers writers spread over; a restarted server replaces its entry.
pub type Targets = Arc<RwLock<Vec<Client>>>;

/// Targets from a list of clients.
pub fn targets(clients: Vec<Client>) -> Targets {
    Arc::new(RwLock::new(clients))
}

/// Shared stop flag and count of acknowledged writes.
#[derive(Clone, Default)]
pub struct Progress {
    pub stop: Arc<AtomicBool>,
    pub acked: Arc<AtomicUsize>,
}

/// Writes `n` new pages (or until `progress.stop`) starting on server `who % len`.
#[allow(clippy::too_many_arguments)]
pub fn writer(
    servers: Targets,
    on_error: OnTransportError,
    token: String,
    identity: Arc<UserIdentity>,
    wiki: String,
    who: usize,
    n: usize,
    progress: Progress,
) -> Outcome {
    let client = |at: usize| {
        let list = servers.read().unwrap();
        list[at % list.len()].clone()
    };
    let mut at = who;
    let mut view = WikiView::fetch(&client(at), &token, &wiki, &identity);
    let mut out = Outcome::default();
    let path = format!("/api/v1/wikis/{wiki}/commits");
    let auth = format!("Bearer {token}");
    let mut in_a_row = 0u64;
    while out.acks.len() < n && !progress.stop.load(Ordering::SeqCst) {
        let page = PageId::random(&mut OsRng);
        let text = format!("writer {who} write {}", out.acks.len());
        let commit = prepare_put(
            &view,
            &identity,
            page,
            &format!("w{who}/{}.md", out.acks.len()),
            &text,
        );
        let blob = commit.manifest.pages[&page].hash;
        let state = commit.state.hash();
        let body = serde_json::to_vec(&commit_body(&commit)).unwrap();
        let r = client(at).try_raw(
            "POST",
            &path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Some(body),
        );
        match r {
            Ok(r) if r.status == 200 => {
                let seq = r.json()["seq"].as_u64().unwrap();
                assert_eq!(seq, commit.state.seq);
                out.acks.push(Ack {
                    seq,
                    state,
                    page,
                    blob,
                });
                progress.acked.fetch_add(1, Ordering::SeqCst);
                in_a_row = 0;
                view.snap = commit.into_snapshot(&view.snap);
            }
            Ok(r) if r.status == 409 => {
                out.conflicts += 1;
                in_a_row += 1;
                view.rebase(&r.json()["head"], &identity);
                // Back off a little, with jitter, as a polite client does.
                let jitter =
                    rand_core::RngCore::next_u32(&mut OsRng) as u64 % (2_000 * in_a_row.min(8));
                std::thread::sleep(std::time::Duration::from_micros(jitter));
            }
            Ok(r) => panic!(
                "unexpected answer {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
            Err(_) => {
                // No answer: this write is not acknowledged (it may or may not have taken
                // effect; if it did, the next attempt gets a 409 and rebases past it).
                out.transport_errors += 1;
                match on_error {
                    OnTransportError::GiveUp => return out,
                    OnTransportError::NextServer => {
                        at += 1;
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                }
            }
        }
    }
    out
}

/// Starts `writers` writers, writer `i` on server `i % len`.
#[allow(clippy::too_many_arguments)]
pub fn run_writers(
    servers: &Targets,
    on_error: OnTransportError,
    token: &str,
    identity: &Arc<UserIdentity>,
    wiki: &str,
    writers: usize,
    each: usize,
    progress: &Progress,
) -> Vec<std::thread::JoinHandle<Outcome>> {
    (0..writers)
        .map(|i| {
            let servers = servers.clone();
            let (token, identity, wiki) = (token.to_owned(), identity.clone(), wiki.to_owned());
            let progress = progress.clone();
            std::thread::spawn(move || {
                writer(servers, on_error, token, identity, wiki, i, each, progress)
            })
        })
        .collect()
}

/// Joins writers and sums their outcomes.
pub fn collect(handles: Vec<std::thread::JoinHandle<Outcome>>) -> Outcome {
    let mut all = Outcome::default();
    for h in handles {
        let o = h.join().unwrap();
        all.acks.extend(o.acks);
        all.conflicts += o.conflicts;
        all.transport_errors += o.transport_errors;
    }
    all
}

/// Checks the repository against every acknowledgement: `git fsck --strict` clean, no gap,
/// every acknowledged sequence holds the acknowledged state, every acknowledged page is in the
/// head's manifest with its acknowledged envelope; and, if given, the exact head sequence.
pub fn verify(repo: &Path, acks: &[Ack], expect_exact: Option<u64>) {
    let (state, manifest) = check_repo(repo);
    let head = state.seq;
    if let Some(n) = expect_exact {
        assert_eq!(head, n, "head sequence");
    }
    let mut seqs: Vec<u64> = acks.iter().map(|a| a.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        acks.len(),
        "two writes acknowledged at one sequence"
    );
    let states = state_hashes(repo);
    assert_eq!(states.len() as u64, head);
    for a in acks {
        assert!(
            a.seq <= head,
            "acknowledged seq {} is beyond the head {head}",
            a.seq
        );
        assert_eq!(
            states[a.seq as usize - 1],
            a.state,
            "seq {} holds another state",
            a.seq
        );
        assert_eq!(
            manifest.pages.get(&a.page).map(|e| e.hash),
            Some(a.blob),
            "page of seq {} lost",
            a.seq
        );
    }
}
