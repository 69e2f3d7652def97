//! The wiki's settings: its title and description (and room for more), one encrypted record
//! kept *inside* the wiki, so every client and every machine shows the same name for it.
//!
//! A record of kind `Settings` at path `.zkwiki/settings`, stored under the page id
//! `HKDF(whole-wiki scope secret, SETTINGS_PAGE_ID)` of its epoch (so only whole-wiki members
//! can read or write it, and the server cannot tell it from a page); its content is a JSON
//! object. A writer moves it to the current epoch when it changes it.

use core_crypto::envelope::{PageKind, PageRecord};
use core_crypto::index::SETTINGS_PATH;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{Draft, IndexWrite, Pending, Workspace};
use crate::error::{Error, Result};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Largest settings record content, in bytes.
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;

/// What the settings record holds.
#[derive(Clone, Debug, Default)]
pub struct WikiSettings {
    /// The wiki's title, shown by every client.
    pub title: String,
    /// A longer description.
    pub description: String,
    /// Settings this build does not know, kept as they are: each key with its JSON text,
    /// verbatim, in the order read. (Raw text rather than a `serde_json::Value` tree: the browser
    /// bundle then carries no JSON value machinery.)
    pub other: Vec<(String, Box<RawValue>)>,
}

impl PartialEq for WikiSettings {
    fn eq(&self, other: &Self) -> bool {
        self.title == other.title
            && self.description == other.description
            && self.other.len() == other.other.len()
            && self
                .other
                .iter()
                .zip(&other.other)
                .all(|((k, v), (l, w))| k == l && v.get() == w.get())
    }
}

impl Serialize for WikiSettings {
    fn serialize<S: Serializer>(&self, serializer: S) -> core::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("title", &self.title)?;
        if !self.description.is_empty() {
            map.serialize_entry("description", &self.description)?;
        }
        for (key, value) in &self.other {
            if key != "title" && key != "description" {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for WikiSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = WikiSettings;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> core::result::Result<WikiSettings, A::Error> {
                let mut s = WikiSettings::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "title" => s.title = map.next_value()?,
                        "description" => s.description = map.next_value()?,
                        _ => {
                            let value: Box<RawValue> = map.next_value()?;
                            // A key given twice keeps its last value, as a JSON object would.
                            s.other.retain(|(k, _)| *k != key);
                            s.other.push((key, value));
                        }
                    }
                }
                Ok(s)
            }
        }
        deserializer.deserialize_map(Fields)
    }
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
        // As text: JSON is UTF-8, and every other answer is parsed from text too (one parser
        // instance in the browser bundle).
        let s: Self = core::str::from_utf8(&record.content)
            .ok()
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| "the settings record is not a JSON object".to_owned())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_settings_are_kept_verbatim() {
        let text = br#"{"future":{"b":[1,2.50,"x"]},"title":"Team notes","z":null,"future":true}"#;
        let record = PageRecord {
            kind: PageKind::Settings,
            path: SETTINGS_PATH.to_owned(),
            author: "alice".into(),
            written_at_ms: 1,
            content: text.to_vec(),
        };
        let s = WikiSettings::from_record(&record).unwrap();
        assert_eq!(s.title, "Team notes");
        assert_eq!(s.description, "");
        let kept: Vec<(&str, &str)> = s.other.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
        assert_eq!(
            kept,
            [("z", "null"), ("future", "true")],
            "the last of a repeated key"
        );
        let again = s.to_record("alice", 2).unwrap();
        assert_eq!(
            String::from_utf8(again.content.clone()).unwrap(),
            r#"{"title":"Team notes","z":null,"future":true}"#
        );
        assert_eq!(WikiSettings::from_record(&again).unwrap(), s);
        // Not an object, or a title of the wrong type: refused.
        for bad in [&b"[1]"[..], br#"{"title":5}"#] {
            let r = PageRecord {
                content: bad.to_vec(),
                ..record.clone()
            };
            assert!(WikiSettings::from_record(&r).is_err());
        }
    }
}
