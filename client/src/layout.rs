//! The wiki's git tree, as every reader checks it (`docs/format.md`, "The git tree"):
//!
//! ```text
//! keyring/0000000001   every keyring version, 10-digit zero-padded sequence, 1..=n, none missing
//! state                the signed state
//! manifest             the manifest it signs
//! pages/<page id>      the envelope of each page the manifest lists, and no other
//! ```
//!
//! Any other file (or a tree where a file belongs) is an integrity error: a server cannot hide
//! data in a clone, nor make a page file appear that no member signed. Generic over the object
//! id type (git's hex ids for the CLI).

use std::collections::BTreeMap;

use core_crypto::ids::PageId;
use core_crypto::state::Manifest;

use crate::error::{Error, Result};

/// Where a file of the tree belongs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    /// `keyring/<seq>`.
    Keyring(u64),
    /// `state`.
    State,
    /// `manifest`.
    Manifest,
    /// `pages/<id>`.
    Page(PageId),
}

fn keyring_seq(name: &str) -> Option<u64> {
    (name.len() == 10 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

fn classify(path: &str) -> Option<Slot> {
    match path {
        "state" => return Some(Slot::State),
        "manifest" => return Some(Slot::Manifest),
        _ => {}
    }
    if let Some(seq) = path.strip_prefix("keyring/") {
        return keyring_seq(seq).map(Slot::Keyring);
    }
    path.strip_prefix("pages/")
        .and_then(|id| PageId::from_hex(id).ok())
        .map(Slot::Page)
}

impl Slot {
    /// The role of a file known only by its last path component (git's textconv driver gets a
    /// temporary copy named `XXXXXX_<name>`; no name in the tree contains `_`). The four kinds of
    /// name cannot be confused: a keyring's is exactly ten digits, a page's 32 hex digits.
    pub fn of_file_name(name: &str) -> Option<Self> {
        let name = name.rsplit('_').next().unwrap_or(name);
        match name {
            "state" => Some(Self::State),
            "manifest" => Some(Self::Manifest),
            _ => keyring_seq(name)
                .map(Self::Keyring)
                .or_else(|| PageId::from_hex(name).ok().map(Self::Page)),
        }
    }
}

/// The files of one commit's tree, by role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree<O> {
    /// Keyring versions, sequence 1..=n in order.
    pub keyrings: Vec<O>,
    /// The signed state.
    pub state: O,
    /// The manifest.
    pub manifest: O,
    /// Page envelopes by page id.
    pub pages: BTreeMap<PageId, O>,
}

/// The path of keyring version `seq` in the tree.
pub fn keyring_path(seq: u64) -> String {
    format!("keyring/{seq:010}")
}

/// The path of a page's envelope in the tree.
pub fn page_path(page: &PageId) -> String {
    format!("pages/{page}")
}

impl<O> Tree<O> {
    /// Sorts a commit's files (`(path, is a file, object id)`, as `git ls-tree -r` lists them)
    /// into their roles, refusing anything the layout does not allow.
    pub fn from_entries(entries: impl IntoIterator<Item = (String, bool, O)>) -> Result<Self> {
        let mut keyrings = BTreeMap::new();
        let (mut state, mut manifest) = (None, None);
        let mut pages = BTreeMap::new();
        for (path, is_file, oid) in entries {
            match (is_file, classify(&path)) {
                (true, Some(Slot::Keyring(seq))) => {
                    keyrings.insert(seq, oid);
                }
                (true, Some(Slot::State)) => state = Some(oid),
                (true, Some(Slot::Manifest)) => manifest = Some(oid),
                (true, Some(Slot::Page(id))) => {
                    pages.insert(id, oid);
                }
                _ => {
                    return Err(Error::integrity(format!(
                        "the wiki repository holds an unexpected file {:?}",
                        crate::display::escape(&path)
                    )));
                }
            }
        }
        let state =
            state.ok_or_else(|| Error::integrity("the wiki repository has no signed state"))?;
        let manifest =
            manifest.ok_or_else(|| Error::integrity("the wiki repository has no manifest"))?;
        if keyrings.is_empty() {
            return Err(Error::integrity("the wiki repository has no keyring"));
        }
        for (i, seq) in keyrings.keys().enumerate() {
            if *seq != i as u64 + 1 {
                return Err(Error::integrity(format!(
                    "the keyring history is incomplete: version {} is missing",
                    i + 1
                )));
            }
        }
        Ok(Self {
            keyrings: keyrings.into_values().collect(),
            state,
            manifest,
            pages,
        })
    }

    /// Checks that the tree holds exactly the pages a verified manifest lists: a page missing
    /// was dropped or withheld, a page extra was never signed.
    pub fn check_pages(&self, manifest: &Manifest) -> Result<()> {
        if let Some(id) = manifest
            .pages
            .keys()
            .find(|id| !self.pages.contains_key(id))
        {
            return Err(Error::integrity(format!(
                "page {id} is listed in the signed manifest but missing from the repository (dropped or withheld)"
            )));
        }
        if let Some(id) = self
            .pages
            .keys()
            .find(|id| !manifest.pages.contains_key(id))
        {
            return Err(Error::integrity(format!(
                "the repository holds page {id}, which the signed manifest does not list"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str) -> (String, bool, u32) {
        (path.to_owned(), true, 0)
    }

    #[test]
    fn a_file_name_alone_names_its_role() {
        // A page id whose last ten digits are decimal is still a page, not a keyring.
        let id = PageId::from_hex("aff4324bddafa36e73cd853117631644").unwrap();
        for name in [
            "aff4324bddafa36e73cd853117631644",
            "Xy12ab_aff4324bddafa36e73cd853117631644",
        ] {
            assert_eq!(Slot::of_file_name(name), Some(Slot::Page(id)), "{name}");
        }
        assert_eq!(Slot::of_file_name("0000000012"), Some(Slot::Keyring(12)));
        assert_eq!(
            Slot::of_file_name("ab12CD_0000000003"),
            Some(Slot::Keyring(3))
        );
        assert_eq!(Slot::of_file_name("q1w2e3_state"), Some(Slot::State));
        assert_eq!(Slot::of_file_name("manifest"), Some(Slot::Manifest));
        for name in [
            "",
            "000000001",
            "00000000001",
            "AFF4324BDDAFA36E73CD853117631644",
            "x_states",
            "README.md",
        ] {
            assert_eq!(Slot::of_file_name(name), None, "{name}");
        }
    }

    #[test]
    fn only_the_layout_is_accepted() {
        let id = PageId([7; 16]);
        let page = page_path(&id);
        let ok = Tree::from_entries([
            e(&keyring_path(1)),
            e(&keyring_path(2)),
            e("state"),
            e("manifest"),
            e(&page),
        ])
        .unwrap();
        assert_eq!((ok.keyrings.len(), ok.pages.len()), (2, 1));
        for extra in ["README.md", "pages/zz", "keyring/1", ".git/x", "pages/"] {
            let err =
                Tree::from_entries([e(&keyring_path(1)), e("state"), e("manifest"), e(extra)])
                    .unwrap_err();
            assert!(err.message.contains("unexpected file"), "{extra}");
        }
        let gap = Tree::from_entries([e(&keyring_path(2)), e("state"), e("manifest")]).unwrap_err();
        assert!(gap.message.contains("version 1 is missing"));
        let no_state = Tree::from_entries([e(&keyring_path(1)), e("manifest")]).unwrap_err();
        assert!(no_state.message.contains("no signed state"));
        let sub = Tree::from_entries([
            e(&keyring_path(1)),
            e("state"),
            e("manifest"),
            (page, false, 0),
        ])
        .unwrap_err();
        assert!(sub.message.contains("unexpected"));
    }
}
