//! The wiki's settings: its title and description (and room for more), one encrypted record
//! kept *inside* the wiki, so every client and every machine shows the same name for it.
//!
//! A record of kind `Settings` at path `.zkwiki/settings`, stored under the page id
//! `HKDF(whole-wiki scope secret, SETTINGS_PAGE_ID)` of its epoch (so only whole-wiki members
//! can read or write it, and the server cannot tell it from a page); its content is a JSON
//! object. A writer moves it to the current epoch when it changes it.

use std::collections::BTreeMap;

use core_crypto::envelope::{PageKind, PageRecord};
use core_crypto::index::SETTINGS_PATH;
use serde::{Deserialize, Serialize};

use super::{Draft, IndexWrite, Pending, Workspace};
use crate::error::{Error, Result};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Largest settings record content, in bytes.
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;

/// What the settings record holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WikiSettings {
    /// The wiki's title, shown by every client.
    #[serde(default)]
    pub title: String,
    /// A longer description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Settings this build does not know, kept as they are.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl WikiSettings {
    /// Checks the limits and that the title shows as it is (no control or invisible
    /// character).
    pub fn check(&self) -> Result<()> {
        if self.title.chars().count() > MAX_TITLE_CHARS {
            return Err(Error::input(format!(
                "a wiki title has at most {MAX_TITLE_CHARS} characters"
            )));
        }
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(Error::input(format!(
                "a description has at most {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        if self.title.chars().any(crate::display::needs_escape) {
            return Err(Error::input(
                "a wiki title cannot hold control or invisible characters",
            ));
        }
        Ok(())
    }

    /// Parses a settings record (its kind and path checked).
    pub fn from_record(record: &PageRecord) -> core::result::Result<Self, String> {
        if record.kind != PageKind::Settings || record.path != SETTINGS_PATH {
            return Err("a settings record must have the settings kind and path".into());
        }
        if record.content.len() > MAX_SETTINGS_BYTES {
            return Err("the settings record is too large".into());
        }
        let s: Self = serde_json::from_slice(&record.content)
            .map_err(|_| "the settings record is not a JSON object".to_owned())?;
        s.check().map_err(|e| e.message)?;
        Ok(s)
    }

    /// The record for these settings.
    pub fn to_record(&self, author: &str, now_ms: i64) -> Result<PageRecord> {
        self.check()?;
        let content = serde_json::to_vec(self).map_err(|_| Error::input("settings"))?;
        if content.len() > MAX_SETTINGS_BYTES {
            return Err(Error::input("the settings are too large"));
        }
        Ok(PageRecord {
            kind: PageKind::Settings,
            path: SETTINGS_PATH.to_owned(),
            author: author.to_owned(),
            written_at_ms: now_ms,
            content,
        })
    }
}

impl Draft<'_> {
    /// Stages new settings, under the current epoch's whole-wiki key (older settings records
    /// go). Only a whole-wiki writer can.
    pub fn set_settings(&mut self, settings: &WikiSettings) -> Result<()> {
        let ws = self.workspace();
        let key = ws
            .keys()
            .current_epoch_secret()
            .map(|s| s.derive_scope(ws.keys().epoch(), ""))
            .map_err(|_| {
                Error::access("only a member with access to the whole wiki can change its settings")
            })?;
        let record = settings.to_record(ws.my_name(), self.now_ms())?;
        let id = key.derive_settings_page_id();
        let older: Vec<core_crypto::ids::PageId> = ws
            .settings_pages()
            .iter()
            .filter(|p| **p != id)
            .copied()
            .collect();
        self.put_own(&key, id, &record)?;
        for old in older {
            self.remove_own(&old)?;
        }
        Ok(())
    }
}

impl Draft<'_> {
    /// Moves settings written under an older epoch to the current one (when they were read and
    /// this draft does not change them already).
    pub(super) fn rehome_settings(&mut self) -> Result<()> {
        let ws = self.workspace();
        if self.settings.is_some() || ws.keys().current_epoch_secret().is_err() {
            return Ok(());
        }
        let Some((id, hash)) = ws.newest_settings() else {
            return Ok(());
        };
        let older = ws
            .snapshot()
            .manifest
            .pages
            .get(&id)
            .is_some_and(|e| e.epoch < ws.keys().epoch());
        match ws.settings() {
            Some(current) if older && ws.settings_version == Some(hash) => {
                let current = current.clone();
                self.set_settings(&current)
            }
            _ => Ok(()),
        }
    }
}

impl Workspace {
    /// A write that changes the wiki's settings (title, description). The settings must have
    /// been read (they are part of [`wanted`](Workspace::wanted)) so no other setting is lost.
    pub fn prepare_settings(&self, settings: &WikiSettings, now_ms: i64) -> Result<Pending> {
        // Unread settings are loaded first; unreadable (isolated) ones are replaced.
        if let Some((id, hash)) = self.newest_settings()
            && self.settings_version != Some(hash)
            && !self.skipped(&id)
        {
            return Err(Error::not_loaded(id));
        }
        let mut draft = self.draft(now_ms)?;
        draft.set_settings(settings)?;
        draft.finish(IndexWrite::Defer)
    }
}
