//! The wiki's settings: its title and description, how its pages write wikilinks, what was
//! imported into it (and room for more), one encrypted record kept *inside* the wiki, so every
//! client and every machine shows the same name for it and reads its links the same way.
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
use crate::links::WikilinkStyle;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Largest settings record content, in bytes.
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;
/// Most import sources remembered.
pub const MAX_IMPORTS: usize = 100;
/// Longest import source name or position, in bytes.
pub const MAX_IMPORT_FIELD: usize = 200;

/// How far an import from one source got: its last source change now in the wiki (a git
/// commit id). Written in the same commit as the pages it imported, so an interrupted import
/// resumes exactly where the wiki stands and a re-run adds only what is new.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportMark {
    /// The source, named so that every copy of it has the same name (`git:` and the id of
    /// its first commit).
    pub source: String,
    /// The last source change imported (a commit id).
    pub last: String,
}

/// What the settings record holds.
#[derive(Clone, Debug, Default)]
pub struct WikiSettings {
    /// The wiki's title, shown by every client.
    pub title: String,
    /// A longer description.
    pub description: String,
    /// The order of target and label in `[[..|..]]` (Otterwiki's `WIKILINK_STYLE`).
    pub wikilink_style: WikilinkStyle,
    /// Settings this build does not know, kept as they are: each key with its JSON text,
    /// verbatim, in the order read. (Raw text rather than a `serde_json::Value` tree: the browser
    /// bundle then carries no JSON value machinery.)
    pub other: Vec<(String, Box<RawValue>)>,
}

impl PartialEq for WikiSettings {
    fn eq(&self, other: &Self) -> bool {
        self.title == other.title
            && self.description == other.description
            && self.wikilink_style == other.wikilink_style
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
        if self.wikilink_style != WikilinkStyle::default() {
            map.serialize_entry(WIKILINK_STYLE, self.wikilink_style.as_str())?;
        }
        for (key, value) in &self.other {
            if !KNOWN.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

const WIKILINK_STYLE: &str = "wikilink_style";
const IMPORTS: &str = "imports";
/// The keys this build reads into fields (the others, `imports` among them, are kept verbatim
/// in `other`: only importers read `imports`, so the browser carries no code for it).
const KNOWN: [&str; 3] = ["title", "description", WIKILINK_STYLE];

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
                        WIKILINK_STYLE => {
                            let text: String = map.next_value()?;
                            s.wikilink_style = WikilinkStyle::parse(&text).ok_or_else(|| {
                                serde::de::Error::custom("unknown wikilink_style")
                            })?;
                        }
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

    /// What imports brought into this wiki, by source (checked: at most `MAX_IMPORTS`, each
    /// field at most `MAX_IMPORT_FIELD` bytes without control characters).
    pub fn imports(&self) -> Result<Vec<ImportMark>> {
        let Some((_, raw)) = self.other.iter().find(|(k, _)| k == IMPORTS) else {
            return Ok(Vec::new());
        };
        let bad = || Error::input("the wiki's record of its imports is malformed");
        let marks: Vec<ImportMark> = serde_json::from_str(raw.get()).map_err(|_| bad())?;
        let field_ok = |f: &String| {
            f.len() <= MAX_IMPORT_FIELD && !f.chars().any(crate::display::needs_escape)
        };
        if marks.len() > MAX_IMPORTS
            || !marks
                .iter()
                .all(|m| field_ok(&m.source) && field_ok(&m.last))
        {
            return Err(bad());
        }
        Ok(marks)
    }

    /// The last change imported from `source`, if any.
    pub fn import_mark(&self, source: &str) -> Result<Option<String>> {
        Ok(self
            .imports()?
            .into_iter()
            .find(|m| m.source == source)
            .map(|m| m.last))
    }

    /// Records that `source` was imported up to `last`.
    pub fn set_import_mark(&mut self, source: &str, last: &str) -> Result<()> {
        let mut marks = self.imports()?;
        match marks.iter_mut().find(|m| m.source == source) {
            Some(m) => last.clone_into(&mut m.last),
            None => marks.push(ImportMark {
                source: source.to_owned(),
                last: last.to_owned(),
            }),
        }
        if marks.len() > MAX_IMPORTS {
            return Err(Error::input(format!(
                "a wiki remembers at most {MAX_IMPORTS} import sources"
            )));
        }
        let raw = serde_json::value::to_raw_value(&marks).map_err(|_| Error::input("imports"))?;
        match self.other.iter_mut().find(|(k, _)| k == IMPORTS) {
            Some((_, v)) => *v = raw,
            None => self.other.push((IMPORTS.to_owned(), raw)),
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
            note: Default::default(),
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
    /// The settings this draft writes (when it changes them) or read from the head; an error
    /// a driver answers by loading the settings record when it has not been read yet.
    pub fn settings(&self) -> Result<WikiSettings> {
        if let Some(staged) = &self.settings {
            return Ok(staged.clone());
        }
        let ws = self.workspace();
        match ws.newest_settings() {
            Some((id, hash)) if ws.settings_version != Some(hash) && !ws.skipped(&id) => {
                Err(Error::not_loaded(id))
            }
            _ => Ok(ws.settings().cloned().unwrap_or_default()),
        }
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
        let mut draft = self.draft(now_ms)?;
        draft.settings()?;
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
            note: Default::default(),
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
                note: Default::default(),
                content: bad.to_vec(),
                ..record.clone()
            };
            assert!(WikiSettings::from_record(&r).is_err());
        }
    }

    #[test]
    fn wikilink_style_and_import_marks_round_trip() {
        let mut s = WikiSettings {
            title: "T".into(),
            wikilink_style: WikilinkStyle::LabelFirst,
            ..WikiSettings::default()
        };
        s.set_import_mark("git:abc", "c1").unwrap();
        s.set_import_mark("git:abc", "c2").unwrap();
        s.set_import_mark("git:def", "d1").unwrap();
        let record = s.to_record("alice", 1).unwrap();
        assert_eq!(
            String::from_utf8(record.content.clone()).unwrap(),
            r#"{"title":"T","wikilink_style":"label|target","imports":[{"source":"git:abc","last":"c2"},{"source":"git:def","last":"d1"}]}"#
        );
        let back = WikiSettings::from_record(&record).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.import_mark("git:abc").unwrap().as_deref(), Some("c2"));
        assert_eq!(back.import_mark("git:xyz").unwrap(), None);
        // The default style is not written; an unknown style or a control character refused.
        let plain = WikiSettings::default().to_record("alice", 1).unwrap();
        assert_eq!(plain.content, br#"{"title":""}"#);
        let r = PageRecord {
            content: br#"{"title":"","wikilink_style":"sideways"}"#.to_vec(),
            ..plain.clone()
        };
        assert!(WikiSettings::from_record(&r).is_err());
        // Malformed imports: the settings read (a browser never looks), an importer refuses.
        for bad in [
            &br#"{"title":"","imports":[{"source":"git:\u0007","last":"x"}]}"#[..],
            br#"{"title":"","imports":[{"source":"git:a"}]}"#,
            br#"{"title":"","imports":5}"#,
        ] {
            let r = PageRecord {
                content: bad.to_vec(),
                ..plain.clone()
            };
            let s = WikiSettings::from_record(&r).unwrap();
            assert!(s.import_mark("git:a").is_err(), "{bad:?}");
        }
    }
}
