//! A wiki's witnesses over HTTP: the client core's rule ([`client::witness`]) driven with real
//! requests, what this machine remembers of each witness (`DATA/wikis/<id>/witnesses.json`),
//! and the evidence a lying witness leaves (`DATA/wikis/<id>/witness-evidence/`).
//!
//! Witnesses get short timeouts: one that does not answer within seconds is down, and the
//! wiki's policy says what happens then.

use std::path::{Path, PathBuf};
use std::time::Duration;

use client::head::VerifiedHead;
use client::wire::{WitnessKeyResponse, WitnessSubmitRequest, witness_route};
use client::witness::{
    self as rule, Answer, Finding, HeadFacts, Memory, Witness, WitnessPolicy, key_fingerprint,
};
use rand_core::{OsRng, RngCore};

use crate::error::{CliError, ErrorKind, Result};
use crate::fsutil;
use crate::output::Out;

/// Largest answer read from a witness (a co-signature is 210 bytes).
const MAX_ANSWER: u64 = 64 * 1024;

/// HTTP to witnesses.
#[derive(Clone)]
pub struct WitnessClient {
    agent: ureq::Agent,
}

impl std::fmt::Debug for WitnessClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WitnessClient")
    }
}

impl Default for WitnessClient {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(30)))
            .user_agent(concat!("zkwiki/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.into(),
        }
    }
}

impl WitnessClient {
    fn answer(
        result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Answer {
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => return Answer::Unreachable(e.to_string()),
        };
        let status = resp.status().as_u16();
        match resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
        {
            Ok(body) => rule::answer_of(status, &body),
            Err(e) => Answer::Unreachable(e.to_string()),
        }
    }

    /// Asks `url` for its latest checkpoint of `wiki`, co-signed over `nonce`.
    pub fn checkpoint(&self, url: &str, wiki: &str, nonce: &[u8; 32]) -> Answer {
        let path = witness_route::checkpoint(wiki, &client::wire::hex(nonce));
        Self::answer(self.agent.get(&format!("{url}{path}")).call())
    }

    /// Submits a head (with the states before it) to `url`.
    pub fn submit(&self, url: &str, wiki: &str, body: &WitnessSubmitRequest) -> Answer {
        let path = witness_route::checkpoints(wiki);
        Self::answer(self.agent.post(&format!("{url}{path}")).send_json(body))
    }

    /// The witness's public key, as `url` states it (an owner compares its fingerprint out of
    /// band before signing it into the keyring).
    pub fn key(&self, url: &str) -> Result<[u8; 32]> {
        let unreachable = |e: String| {
            CliError::new(
                ErrorKind::Network,
                format!("cannot reach the witness at {url}: {e}"),
            )
            .with_hint("check the URL and that the witness runs (`zkwiki-server witness`)")
        };
        let mut resp = self
            .agent
            .get(&format!("{url}{}", witness_route::KEY))
            .call()
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| unreachable(e.to_string()))?;
        let not_a_witness = || {
            CliError::new(
                ErrorKind::General,
                format!("{url} did not answer as a zkwiki witness (HTTP {status})"),
            )
            .with_hint("the URL is the witness's base URL, e.g. https://witness.example:8090")
        };
        if status != 200 {
            return Err(not_a_witness());
        }
        let r: WitnessKeyResponse = serde_json::from_slice(&body).map_err(|_| not_a_witness())?;
        let key = client::wire::unb64(&r.key, "witness key")?;
        key.try_into().map_err(|_| not_a_witness())
    }
}

/// How a check starts: by asking for the witness's checkpoint (on open), or by submitting the
/// head at once (right after this machine committed it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Ask first.
    Query,
    /// Submit the head first.
    Submit,
}

/// What each witness said about a head.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The wiki's policy.
    pub policy: WitnessPolicy,
    /// Per witness, its finding.
    pub findings: Vec<(Witness, Finding)>,
}

fn memory_file(dir: &Path) -> PathBuf {
    dir.join("witnesses.json")
}

/// What this machine remembers of a wiki's witnesses (kept in `dir`, the wiki's data folder).
pub fn load_memory(dir: &Path) -> Result<Memory> {
    let file = memory_file(dir);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            Ok(Memory::decode(&text).map_err(|e| CliError::from(e).context(file.display()))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Memory::default()),
        Err(e) => Err(CliError::io(file.display(), e)),
    }
}

fn store_memory(dir: &Path, memory: &Memory) -> Result<()> {
    let file = memory_file(dir);
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir.display(), e))?;
    fsutil::write_atomic(&file, memory.encode().as_bytes(), false)
        .map_err(|e| CliError::io(file.display(), e))
}

/// Keeps both co-signatures of a lying witness; returns the file.
fn keep_evidence(
    dir: &Path,
    remembered: &rule::Cosignature,
    now: &rule::Cosignature,
) -> Option<PathBuf> {
    let folder = dir.join("witness-evidence");
    std::fs::create_dir_all(&folder).ok()?;
    let name = format!(
        "{}-{}.json",
        crate::time::now_ms(),
        key_fingerprint(&now.witness).replace(' ', "")
    );
    let file = folder.join(name);
    fsutil::write_atomic(
        &file,
        rule::evidence_json(remembered, now).as_bytes(),
        false,
    )
    .ok()?;
    Some(file)
}

/// Everything a check needs from its caller.
pub struct Check<'a> {
    /// HTTP to witnesses.
    pub client: &'a WitnessClient,
    /// The wiki's data folder on this machine.
    pub dir: &'a Path,
    /// Where warnings go.
    pub out: Out,
    /// The states `from ..= to` from the wiki's server (to bring a witness up to date).
    pub states: &'a mut dyn FnMut(u64, u64) -> Result<Vec<Vec<u8>>>,
    /// Apply policy `warn` whatever the keyring says (an owner repairing the witness list, or
    /// after a commit, which the server already stored).
    pub warn_only: bool,
}

/// Checks `head` with every witness its keyring lists (see [`client::witness`]): refuses it
/// (`Err`) as the rule says, otherwise prints the policy's warnings and remembers what each
/// witness co-signed.
pub fn check(head: &VerifiedHead, start: Start, c: &mut Check<'_>) -> Result<Report> {
    let set = &head.snapshot().keyring.witnesses;
    if set.is_empty() {
        return Ok(Report::default());
    }
    let t = std::time::Instant::now();
    let remembered = load_memory(c.dir)?;
    let mut memory = remembered.clone();
    let facts = HeadFacts::from(head);
    let wiki = facts.wiki.to_hex();
    let mut findings = Vec::with_capacity(set.witnesses.len());
    for w in &set.witnesses {
        let mut from = (start == Start::Submit).then(|| head.seq());
        let mut finding = Finding::Unreachable("not asked".to_owned());
        for _ in 0..rule::MAX_ROUNDS {
            let mut nonce = [0u8; 32];
            OsRng.fill_bytes(&mut nonce);
            let answer = match from {
                None => c.client.checkpoint(&w.url, &wiki, &nonce),
                Some(f) => {
                    let (range, _) = rule::window(head.seq(), f);
                    let fetched = match range {
                        Some(r) => (c.states)(*r.start(), *r.end())?,
                        None => Vec::new(),
                    };
                    let body = rule::submission(head, f, &fetched, &nonce)?;
                    c.client.submit(&w.url, &wiki, &body)
                }
            };
            finding = rule::assess(&facts, w, &nonce, answer, memory.get(&w.key));
            match &finding {
                Finding::Behind { from: f, .. } => from = Some(*f),
                _ => break,
            }
        }
        match &finding {
            Finding::Agrees(s) | Finding::Behind { cosignature: s, .. } | Finding::Forked(s) => {
                memory.remember(s);
            }
            Finding::Ahead(s) if s.witness == w.key => memory.remember(s),
            Finding::Lied { remembered, now } => {
                if let Some(file) = keep_evidence(c.dir, remembered, now) {
                    c.out.warn(format!(
                        "both co-signatures of the lying witness are kept in {}",
                        file.display()
                    ));
                }
            }
            _ => {}
        }
        findings.push((w.clone(), finding));
    }
    if memory != remembered {
        store_memory(c.dir, &memory)?;
    }
    crate::output::timing("ask the witnesses", t);
    let policy = if c.warn_only {
        WitnessPolicy::Warn
    } else {
        set.policy
    };
    for warning in rule::decide(policy, &findings)? {
        c.out.warn(warning);
    }
    Ok(Report {
        policy: set.policy,
        findings,
    })
}

/// Checks `head` of a wiki read from a git clone (`clone`, `pull`) with its witnesses. States
/// to bring a witness up to date come from the logged-in server, when there is one.
pub fn check_for(ctx: &crate::context::Ctx, head: &VerifiedHead) -> Result<Report> {
    let wiki = head.snapshot().keyring.wiki;
    let dir = crate::store::WikiDir::new(&ctx.paths.data_dir, &wiki);
    let api = ctx.api().ok();
    let hex = wiki.to_hex();
    let mut states = |from: u64, to: u64| -> Result<Vec<Vec<u8>>> {
        let api = api.as_ref().ok_or_else(|| {
            CliError::new(
                ErrorKind::Auth,
                "a witness is behind and no server session can fetch the states it needs",
            )
            .with_hint("log in (`zkwiki login`), or open the wiki with any command once")
        })?;
        Ok(api
            .states(&hex, from, to)?
            .into_iter()
            .map(|(state, _)| state)
            .collect())
    };
    check(
        head,
        Start::Query,
        &mut Check {
            client: &WitnessClient::default(),
            dir: dir.path(),
            out: ctx.out,
            states: &mut states,
            warn_only: false,
        },
    )
}
