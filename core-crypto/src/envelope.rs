//! The page envelope: one encrypted page.
//!
//! ```text
//! envelope = "ZKPG" ‖ version (u8 = 1) ‖ epoch (u32) ‖ scope id (16) ‖ sealed box
//! ad       = envelope[0..25] ‖ wiki id (16) ‖ page id (16)
//! key      = the scope key of (epoch, scope id); sealed-box label SEAL_PAGE
//! record   = record version (u8 = 1) ‖ kind (u8) ‖ len (u16) ‖ path ‖ len (u8) ‖ author
//!            ‖ written_at (i64, ms since 1970 UTC) ‖ len (u32) ‖ content ‖ zeros to PADMÉ length
//! record v2 = record version (u8 = 2) ‖ kind ‖ len (u16) ‖ path ‖ len (u8) ‖ author ‖ written_at
//!            ‖ has_tz (u8: 0 or 1) ‖ tz offset (i16, minutes east of UTC; 0 without has_tz)
//!            ‖ len (u8) ‖ author e-mail ‖ len (u16) ‖ message ‖ len (u32) ‖ content ‖ zeros
//! ```
//!
//! Version 2 adds what git keeps of a change and version 1 dropped (the commit message, the
//! author's e-mail, the writer's time zone). A writer uses version 1 when none of them is set, so
//! records without them stay readable by clients that predate version 2; readers accept both.
//!
//! The wiki id and page id are not stored in the envelope (git and the manifest name them) but are
//! bound through the associated data: a blob copied to another page, wiki or epoch fails to open.

use rand_core::CryptoRngCore;

use crate::ids::{PageId, ScopeId, WikiId};
use crate::padding::padme;
use crate::scope::ScopeKey;
use crate::wire::{Reader, Writer};
use crate::{Error, Result, labels, path, sealed};

const MAGIC: &[u8; 4] = b"ZKPG";
const VERSION: u8 = 1;
/// The record version without a [`VersionNote`], and with one.
const RECORD_V1: u8 = 1;
const RECORD_V2: u8 = 2;
/// Length of the clear header (magic, version, epoch, scope id).
pub const HEADER_LEN: usize = 25;
/// Largest page content (markdown or attachment), in bytes.
pub const MAX_CONTENT_LEN: usize = 16 * 1024 * 1024;
/// Largest envelope a reader accepts.
pub const MAX_ENVELOPE_LEN: usize = 20 * 1024 * 1024;
/// Longest author name, in bytes.
pub const MAX_AUTHOR_LEN: usize = 64;
/// Longest author e-mail address, in bytes (RFC 5321's limit on a path).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest version message, in bytes (what a u16 length holds).
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;
/// Largest time-zone offset, in minutes either side of UTC (less than a day).
pub const MAX_TZ_OFFSET_MINUTES: i16 = 24 * 60 - 1;

/// What a page holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PageKind {
    /// A markdown page (with optional YAML front matter at its start).
    Markdown = 1,
    /// Any other file (an image, a PDF), stored as bytes.
    Attachment = 2,
    /// The wiki's encrypted search index for one scope.
    Index = 3,
    /// The wiki's settings (title, description, how links are written): a JSON object.
    Settings = 4,
}

impl PageKind {
    /// Every kind, in wire order.
    pub const ALL: [PageKind; 4] = [
        Self::Markdown,
        Self::Attachment,
        Self::Index,
        Self::Settings,
    ];

    /// A stable lowercase name, as shown to people and written in vectors and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Markdown => "markdown",
            Self::Attachment => "attachment",
            Self::Index => "index",
            Self::Settings => "settings",
        }
    }

    /// The kind with this [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub(crate) fn from_u8(v: u8) -> Result<Self> {
        match v {
            1 => Ok(Self::Markdown),
            2 => Ok(Self::Attachment),
            3 => Ok(Self::Index),
            4 => Ok(Self::Settings),
            _ => Err(Error::Malformed {
                what: "page record",
                reason: "unknown page kind",
            }),
        }
    }
}

/// The plaintext of a page.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PageRecord {
    /// What the page holds.
    pub kind: PageKind,
    /// The page path, e.g. `projects/zkwiki.md`.
    pub path: String,
    /// Name of the member who wrote this version (self-declared; the state signature proves the key).
    pub author: String,
    /// When this version was written, in milliseconds since 1970-01-01 UTC (the writer's clock).
    pub written_at_ms: i64,
    /// What the writer said about this version (message, e-mail, time zone); empty by default.
    pub note: VersionNote,
    /// The content: markdown text (front matter included verbatim) or attachment bytes.
    pub content: Vec<u8>,
}

/// What a writer says about a version beyond its author name and time, as git keeps it for a
/// commit: all optional, all claims of the writer (like the author name), all encrypted.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct VersionNote {
    /// The change's message (a commit message; may span lines). Empty when none.
    pub message: String,
    /// The author's e-mail address. Empty when none.
    pub author_email: String,
    /// The time zone `written_at_ms` was local to, in minutes east of UTC (`+02:00` is 120).
    pub tz_offset_minutes: Option<i16>,
}

impl VersionNote {
    /// Whether nothing is set (the record is then written as version 1).
    pub fn is_empty(&self) -> bool {
        self.message.is_empty() && self.author_email.is_empty() && self.tz_offset_minutes.is_none()
    }

    fn check(&self) -> Result<()> {
        for (what, len, limit) in [
            ("version message", self.message.len(), MAX_MESSAGE_LEN),
            ("author e-mail", self.author_email.len(), MAX_EMAIL_LEN),
        ] {
            if len > limit {
                return Err(Error::TooLarge {
                    what,
                    size: len,
                    limit,
                });
            }
        }
        if self
            .tz_offset_minutes
            .is_some_and(|m| m.unsigned_abs() > MAX_TZ_OFFSET_MINUTES.unsigned_abs())
        {
            return Err(Error::Invalid("time-zone offset of a day or more"));
        }
        Ok(())
    }

    fn encode(&self, w: &mut Writer) -> Result<()> {
        w.u8(u8::from(self.tz_offset_minutes.is_some()));
        w.i16(self.tz_offset_minutes.unwrap_or(0));
        w.bytes_u8(self.author_email.as_bytes())?;
        w.bytes_u16(self.message.as_bytes())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let malformed = |reason| Error::Malformed {
            what: "page record",
            reason,
        };
        let has_tz = r.u8()?;
        let tz = r.i16()?;
        let tz_offset_minutes = match has_tz {
            0 if tz == 0 => None,
            1 if tz.unsigned_abs() <= MAX_TZ_OFFSET_MINUTES.unsigned_abs() => Some(tz),
            0 | 1 => return Err(malformed("bad time-zone offset")),
            _ => return Err(malformed("bad time-zone flag")),
        };
        let author_email = r.str_u8()?.to_owned();
        if author_email.len() > MAX_EMAIL_LEN {
            return Err(malformed("author e-mail too long"));
        }
        let message = r.str_u16()?.to_owned();
        Ok(Self {
            message,
            author_email,
            tz_offset_minutes,
        })
    }
}

impl PageRecord {
    /// The markdown text, if this is a markdown page in valid UTF-8.
    pub fn markdown(&self) -> Option<&str> {
        match self.kind {
            PageKind::Markdown => core::str::from_utf8(&self.content).ok(),
            _ => None,
        }
    }

    /// The YAML front matter: the lines between a first line `---` and the next `---` line.
    pub fn front_matter(&self) -> Option<&str> {
        split_front_matter(self.markdown()?).0
    }

    fn encode_padded(&self) -> Result<Vec<u8>> {
        path::check_path(&self.path)?;
        if self.author.len() > MAX_AUTHOR_LEN {
            return Err(Error::TooLarge {
                what: "author name",
                size: self.author.len(),
                limit: MAX_AUTHOR_LEN,
            });
        }
        if self.content.len() > MAX_CONTENT_LEN {
            return Err(Error::TooLarge {
                what: "page content",
                size: self.content.len(),
                limit: MAX_CONTENT_LEN,
            });
        }
        self.note.check()?;
        let mut w = Writer::default();
        w.u8(if self.note.is_empty() {
            RECORD_V1
        } else {
            RECORD_V2
        });
        w.u8(self.kind as u8);
        w.bytes_u16(self.path.as_bytes())?;
        w.bytes_u8(self.author.as_bytes())?;
        w.i64(self.written_at_ms);
        if !self.note.is_empty() {
            self.note.encode(&mut w)?;
        }
        w.bytes_u32(&self.content)?;
        let padded = usize::try_from(padme(w.buf.len() as u64))
            .map_err(|_| Error::Invalid("page too large"))?;
        w.buf.resize(padded, 0);
        Ok(w.buf)
    }

    fn decode_padded(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "page record");
        let v = r.u8()?;
        if v != RECORD_V1 && v != RECORD_V2 {
            return Err(Error::UnsupportedVersion {
                what: "page record",
                version: v,
            });
        }
        let kind = PageKind::from_u8(r.u8()?)?;
        let path = r.str_u16()?.to_owned();
        path::check_path(&path)?;
        let author = r.str_u8()?.to_owned();
        let written_at_ms = r.i64()?;
        let note = if v == RECORD_V2 {
            VersionNote::decode(&mut r)?
        } else {
            VersionNote::default()
        };
        let content = r.bytes_u32(MAX_CONTENT_LEN)?.to_vec();
        let unpadded = bytes.len() - r.remaining();
        let padding = r.rest();
        if padme(unpadded as u64) != bytes.len() as u64 || padding.iter().any(|&b| b != 0) {
            return Err(Error::Malformed {
                what: "page record",
                reason: "bad padding",
            });
        }
        Ok(Self {
            kind,
            path,
            author,
            written_at_ms,
            note,
            content,
        })
    }
}

/// Splits markdown into `(front matter, body)`. Front matter is present when the text starts with a
/// `---` line and a later line is exactly `---` (or `...`).
pub fn split_front_matter(markdown: &str) -> (Option<&str>, &str) {
    let Some(rest) = markdown
        .strip_prefix("---\n")
        .or_else(|| markdown.strip_prefix("---\r\n"))
    else {
        return (None, markdown);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed == "---" || trimmed == "..." {
            return (Some(&rest[..offset]), &rest[offset + line.len()..]);
        }
        offset += line.len();
    }
    (None, markdown)
}

/// The clear part of an envelope: which key opens it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EnvelopeHeader {
    /// The key epoch.
    pub epoch: u32,
    /// The scope.
    pub scope: ScopeId,
}

/// Reads the clear header (to pick the key) without decrypting.
pub fn read_header(envelope: &[u8]) -> Result<EnvelopeHeader> {
    if envelope.len() > MAX_ENVELOPE_LEN {
        return Err(Error::TooLarge {
            what: "page envelope",
            size: envelope.len(),
            limit: MAX_ENVELOPE_LEN,
        });
    }
    let mut r = Reader::new(envelope, "page envelope");
    r.header(MAGIC, VERSION)?;
    let epoch = r.u32()?;
    let scope = ScopeId(r.array()?);
    if r.remaining() < sealed::OVERHEAD {
        return Err(Error::Malformed {
            what: "page envelope",
            reason: "truncated",
        });
    }
    Ok(EnvelopeHeader { epoch, scope })
}

fn header_bytes(key: &ScopeKey) -> Vec<u8> {
    let mut w = Writer::with_header(MAGIC, VERSION);
    w.u32(key.epoch());
    w.bytes(key.id().as_bytes());
    w.buf
}

fn associated_data(header: &[u8], wiki: &WikiId, page: &PageId) -> Vec<u8> {
    let mut ad = Vec::with_capacity(HEADER_LEN + 32);
    ad.extend_from_slice(header);
    ad.extend_from_slice(wiki.as_bytes());
    ad.extend_from_slice(page.as_bytes());
    ad
}

/// Encrypts a page record (random nonce).
pub fn seal_page(
    rng: &mut impl CryptoRngCore,
    key: &ScopeKey,
    wiki: &WikiId,
    page: &PageId,
    record: &PageRecord,
) -> Result<Vec<u8>> {
    let mut nonce = [0u8; sealed::NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_page_with_nonce(&nonce, key, wiki, page, record)
}

/// Encrypts a page record with a given nonce (test vectors).
pub fn seal_page_with_nonce(
    nonce: &[u8; sealed::NONCE_LEN],
    key: &ScopeKey,
    wiki: &WikiId,
    page: &PageId,
    record: &PageRecord,
) -> Result<Vec<u8>> {
    let plain = zeroize::Zeroizing::new(record.encode_padded()?);
    let mut out = header_bytes(key);
    let ad = associated_data(&out, wiki, page);
    out.extend_from_slice(&sealed::seal_with_nonce(
        key.expose(),
        nonce,
        labels::SEAL_PAGE,
        &ad,
        &plain,
    ));
    Ok(out)
}

/// Decrypts a page. `key` must be the scope key named by the envelope's header. Product code
/// opens pages through a signed manifest (`snapshot::open_listed`); this raw form is public only
/// with the `hazmat` feature (test vectors, benchmarks).
#[cfg(feature = "hazmat")]
pub fn open_page(
    key: &ScopeKey,
    wiki: &WikiId,
    page: &PageId,
    envelope: &[u8],
) -> Result<PageRecord> {
    open_page_raw(key, wiki, page, envelope)
}

/// See [`open_page`].
#[cfg(not(feature = "hazmat"))]
pub(crate) fn open_page(
    key: &ScopeKey,
    wiki: &WikiId,
    page: &PageId,
    envelope: &[u8],
) -> Result<PageRecord> {
    open_page_raw(key, wiki, page, envelope)
}

fn open_page_raw(
    key: &ScopeKey,
    wiki: &WikiId,
    page: &PageId,
    envelope: &[u8],
) -> Result<PageRecord> {
    let header = read_header(envelope)?;
    if header.epoch != key.epoch() || header.scope != key.id() {
        return Err(Error::NoAccess("this page's epoch and scope"));
    }
    let (clear, sealed_box) = envelope.split_at(HEADER_LEN);
    let ad = associated_data(clear, wiki, page);
    let plain = sealed::open(key.expose(), labels::SEAL_PAGE, &ad, sealed_box, "page")?;
    PageRecord::decode_padded(&plain)
}

/// What a hostile member's own client could seal: a record encoded *without* the writer's
/// checks (any path bytes, any author length, any kind byte), under a real scope key. Tests of
/// readers use it; it exists only with the `test-support` feature.
#[cfg(feature = "test-support")]
pub mod hostile {
    use super::*;

    /// Seals `kind ‖ path ‖ author ‖ written_at ‖ content` as a record, unchecked.
    #[allow(clippy::too_many_arguments)] // one argument per record field, as the format lists them
    pub fn seal_unchecked(
        rng: &mut impl CryptoRngCore,
        key: &ScopeKey,
        wiki: &WikiId,
        page: &PageId,
        kind: u8,
        path: &[u8],
        author: &[u8],
        written_at_ms: i64,
        content: &[u8],
    ) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(RECORD_V1);
        w.u8(kind);
        w.u16(path.len() as u16);
        w.bytes(path);
        w.u8(author.len() as u8);
        w.bytes(author);
        w.i64(written_at_ms);
        w.u32(content.len() as u32);
        w.bytes(content);
        let padded = padme(w.buf.len() as u64) as usize;
        w.buf.resize(padded, 0);
        let mut nonce = [0u8; sealed::NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = header_bytes(key);
        let ad = associated_data(&out, wiki, page);
        out.extend_from_slice(&sealed::seal_with_nonce(
            key.expose(),
            &nonce,
            labels::SEAL_PAGE,
            &ad,
            &w.buf,
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(note: VersionNote) -> PageRecord {
        PageRecord {
            kind: PageKind::Markdown,
            path: "a.md".into(),
            author: "ada".into(),
            written_at_ms: 1_700_000_000_000,
            note,
            content: b"# A\n".to_vec(),
        }
    }

    #[test]
    fn a_record_without_a_note_is_version_1_and_with_one_version_2() {
        let plain = record(VersionNote::default());
        let bytes = plain.encode_padded().unwrap();
        assert_eq!(bytes[0], 1);
        assert_eq!(PageRecord::decode_padded(&bytes).unwrap(), plain);
        for note in [
            VersionNote {
                message: "Engine: revised\n\nwith a body".into(),
                author_email: "ada@example.org".into(),
                tz_offset_minutes: Some(-330),
            },
            VersionNote {
                tz_offset_minutes: Some(0),
                ..VersionNote::default()
            },
            VersionNote {
                message: "m".repeat(MAX_MESSAGE_LEN),
                ..VersionNote::default()
            },
        ] {
            let noted = record(note);
            let bytes = noted.encode_padded().unwrap();
            assert_eq!(bytes[0], 2);
            assert_eq!(PageRecord::decode_padded(&bytes).unwrap(), noted);
        }
    }

    #[test]
    fn notes_over_the_limits_are_refused_both_ways() {
        for note in [
            VersionNote {
                message: "m".repeat(MAX_MESSAGE_LEN + 1),
                ..VersionNote::default()
            },
            VersionNote {
                author_email: "e".repeat(MAX_EMAIL_LEN + 1),
                ..VersionNote::default()
            },
            VersionNote {
                tz_offset_minutes: Some(24 * 60),
                ..VersionNote::default()
            },
        ] {
            assert!(record(note).encode_padded().is_err());
        }
        let good = record(VersionNote {
            tz_offset_minutes: Some(60),
            ..VersionNote::default()
        })
        .encode_padded()
        .unwrap();
        // has_tz sits after version, kind, path (2 + 4), author (1 + 3) and written_at (8).
        let at = 1 + 1 + 2 + 4 + 1 + 3 + 8;
        assert_eq!(&good[at..at + 3], &[1, 0, 60]);
        for (offset, byte, reason) in [
            (at, 2, "bad time-zone flag"),
            (at, 0, "bad time-zone offset"),
            (at + 1, 0x7f, "bad time-zone offset"),
        ] {
            let mut bad = good.clone();
            bad[offset] = byte;
            assert_eq!(
                PageRecord::decode_padded(&bad),
                Err(Error::Malformed {
                    what: "page record",
                    reason
                })
            );
        }
        let mut v3 = good;
        v3[0] = 3;
        assert!(matches!(
            PageRecord::decode_padded(&v3),
            Err(Error::UnsupportedVersion { version: 3, .. })
        ));
    }

    #[test]
    fn front_matter_split() {
        let md = "---\ntitle: x\ntags: [a]\n---\n# Body\n";
        assert_eq!(
            split_front_matter(md),
            (Some("title: x\ntags: [a]\n"), "# Body\n")
        );
        assert_eq!(split_front_matter("# no\n---\n"), (None, "# no\n---\n"));
        assert_eq!(
            split_front_matter("---\nunclosed\n"),
            (None, "---\nunclosed\n")
        );
    }
}
