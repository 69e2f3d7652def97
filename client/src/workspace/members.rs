//! Membership: the keyring changes an owner signs (add, role, remove, rotate), the pages moved
//! into a folder's scope when a folder key is granted, and the revocation report: one rule for
//! what a removed member could have read, in every client.

use core_crypto::envelope::EnvelopeHeader;
use core_crypto::identity::PublicIdentity;
use core_crypto::ids::{PageId, ScopeId};
use core_crypto::keyring::{KeyringDraft, MemberKind, NewMember, Role, WikiKeys};
use core_crypto::witness::WitnessSet;
use rand_core::OsRng;

use super::{Draft, Workspace};
use crate::error::{Error, Result};

/// A member as a client shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// Name.
    pub name: String,
    /// `person` or `agent`.
    pub kind: &'static str,
    /// `owner`, `writer` or `reader`.
    pub role: &'static str,
    /// Key fingerprint.
    pub fingerprint: String,
    /// The folder this member is limited to, when it is (`None`: the whole wiki).
    pub folder: Option<String>,
    /// Whether this is the signed-in member.
    pub me: bool,
}

/// What revoking a member exposes: what it could have read until now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationReport {
    /// The member.
    pub name: String,
    /// Epochs whose pages it could decrypt (`1..=this`).
    pub epochs_readable: u32,
    /// Its folder (`""`: the whole wiki).
    pub scope: String,
    /// Paths of the live pages it could read (their earlier versions too).
    pub pages: Vec<String>,
    /// The epoch new writes will use.
    pub new_epoch: u32,
}

/// Normalizes a folder given by a person (`research`, `/research/`) to a scope prefix (`""`
/// for the whole wiki).
pub fn folder_prefix(folder: &str) -> Result<String> {
    let trimmed = folder.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let prefix = format!("{trimmed}/");
    core_crypto::path::check_prefix(&prefix)?;
    crate::policy::check_new(trimmed)?;
    Ok(prefix)
}

impl Workspace {
    fn folder_of(&self, scope: ScopeId, epoch: u32) -> Option<String> {
        if scope == ScopeId::WHOLE_WIKI {
            return None;
        }
        let prefix = self
            .keys
            .scope_for(&EnvelopeHeader { epoch, scope })
            .map(|(_, p)| p.to_owned())
            .ok();
        Some(prefix.unwrap_or_else(|| "a folder".to_owned()))
    }

    /// The members of the current keyring.
    pub fn members(&self) -> Vec<MemberView> {
        let me = self.me.public();
        let keyring = &self.snapshot().keyring;
        keyring
            .members
            .iter()
            .map(|m| MemberView {
                name: m.name.clone(),
                kind: m.kind.name(),
                role: m.role.name(),
                fingerprint: m.public.fingerprint(),
                folder: self.folder_of(m.scope, keyring.epoch),
                me: m.public == me,
            })
            .collect()
    }

    fn check_owner(&self) -> Result<()> {
        if self.my_role() == Some(Role::Owner) {
            Ok(())
        } else {
            Err(
                Error::access("only an owner of the wiki may change its members or witnesses")
                    .with_hint("ask an owner (the member list shows them)"),
            )
        }
    }

    /// Starts the next keyring version as this owner.
    fn keyring_draft(&self) -> Result<KeyringDraft> {
        self.check_owner()?;
        Ok(KeyringDraft::edit(&self.snapshot().keyring, &self.keys)?)
    }

    /// Signs `draft` and stages it with a write; pages under a new folder scope are moved into
    /// it (so the folder's members can read them).
    fn keyring_write(&self, keyring: KeyringDraft, now_ms: i64, prefix: &str) -> Result<Draft<'_>> {
        let next = keyring.sign(&mut OsRng, &self.me)?;
        let new_keys = next.unlock(&self.me)?;
        let mut draft = self.draft(now_ms)?;
        draft.set_keyring(next)?;
        if !prefix.is_empty() {
            for id in self.pages_to_rescope(&new_keys, prefix)? {
                let record = self.record(&id)?.clone();
                draft.reseal(&new_keys, id, &record)?;
            }
        }
        Ok(draft)
    }

    /// Live pages under `prefix` not yet encrypted under the scope `keys` would write them with
    /// (each must be loaded: a `NotLoaded` error names the next one).
    fn pages_to_rescope(&self, keys: &WikiKeys, prefix: &str) -> Result<Vec<PageId>> {
        let mut out = Vec::new();
        for (id, page) in self.catalog.pages() {
            if !page.path.starts_with(prefix) {
                continue;
            }
            let Some(entry) = self.snapshot().manifest.pages.get(id) else {
                continue;
            };
            if keys.key_for_writing(&page.path)?.id() != entry.scope {
                out.push(*id);
            }
        }
        for id in &out {
            self.record(id)?;
        }
        Ok(out)
    }

    /// Adds a member with these (fingerprint-confirmed) public keys: whole wiki when `prefix`
    /// is `""`, else one folder (its pages move into the folder's scope in the same commit).
    pub fn add_member(
        &self,
        name: &str,
        kind: MemberKind,
        role: Role,
        public: PublicIdentity,
        prefix: &str,
        now_ms: i64,
    ) -> Result<Draft<'_>> {
        if kind == MemberKind::Agent && role == Role::Owner {
            return Err(Error::input(
                "an agent can be a reader or a writer, not an owner",
            ));
        }
        let mut keyring = self.keyring_draft()?;
        keyring.add_member(NewMember {
            name: name.to_owned(),
            kind,
            role,
            public,
            prefix: prefix.to_owned(),
        })?;
        self.keyring_write(keyring, now_ms, prefix)
    }

    /// Changes a member's role (no new epoch: read access is unchanged).
    pub fn set_role(&self, name: &str, role: Role, now_ms: i64) -> Result<Draft<'_>> {
        let mut keyring = self.keyring_draft()?;
        keyring.set_role(name, role)?;
        self.keyring_write(keyring, now_ms, "")
    }

    /// Replaces the wiki's witnesses and their policy (no new epoch: nobody's access changes).
    pub fn set_witnesses(&self, witnesses: WitnessSet, now_ms: i64) -> Result<Draft<'_>> {
        let mut keyring = self.keyring_draft()?;
        if keyring.witnesses() == &witnesses {
            return Err(Error::input("the wiki already has exactly these witnesses"));
        }
        keyring.set_witnesses(witnesses)?;
        self.keyring_write(keyring, now_ms, "")
    }

    /// Starts a new key epoch for everyone (nothing written afterwards opens with older keys).
    pub fn rotate(&self, now_ms: i64) -> Result<Draft<'_>> {
        let mut keyring = self.keyring_draft()?;
        keyring.rotate();
        self.keyring_write(keyring, now_ms, "")
    }

    /// Removes a member: a new epoch starts, so nothing written afterwards opens with its keys.
    /// The report says what it could have read.
    pub fn remove_member(&self, name: &str, now_ms: i64) -> Result<(Draft<'_>, RevocationReport)> {
        let mut keyring = self.keyring_draft()?;
        let removed = keyring.remove_member(name).map_err(|_| {
            Error::not_found(format!(
                "no member named {:?} in this wiki",
                crate::display::escape(name)
            ))
            .with_hint("the member list shows who is in it")
        })?;
        let report = self.revocation_report(name, &removed.prefix);
        Ok((self.keyring_write(keyring, now_ms, "")?, report))
    }

    /// What a member of folder `prefix` (`""`: the whole wiki) could read until now: every
    /// epoch so far, and the live pages in its folder with their earlier versions.
    pub fn revocation_report(&self, name: &str, prefix: &str) -> RevocationReport {
        let epoch = self.snapshot().keyring.epoch;
        let mut pages: Vec<String> = self
            .catalog
            .pages()
            .values()
            .filter(|p| p.path.starts_with(prefix))
            .map(|p| p.path.clone())
            .collect();
        pages.sort();
        RevocationReport {
            name: name.to_owned(),
            epochs_readable: epoch,
            scope: prefix.to_owned(),
            pages,
            new_epoch: epoch + 1,
        }
    }

    /// Live pages written under an epoch older than the current one (for re-encryption).
    pub fn pages_in_older_epochs(&self) -> Vec<PageId> {
        let epoch = self.keys.epoch();
        self.snapshot()
            .manifest
            .pages
            .iter()
            .filter(|(id, e)| e.epoch < epoch && !self.is_index_page(id) && self.can_open(id))
            .filter(|(id, _)| !self.isolated.contains_key(id))
            .map(|(id, _)| *id)
            .collect()
    }
}
