//! The page envelope: one encrypted page.
//!
//! ```text
//! envelope = "ZKPG" ‖ version (u8 = 1) ‖ epoch (u32) ‖ scope id (16) ‖ sealed box
//! ad       = envelope[0..25] ‖ wiki id (16) ‖ page id (16)
//! key      = the scope key of (epoch, scope id); sealed-box label SEAL_PAGE
//! record   = record version (u8 = 1) ‖ kind (u8) ‖ len (u16) ‖ path ‖ len (u8) ‖ author
//!            ‖ written_at (i64, ms since 1970 UTC) ‖ len (u32) ‖ content ‖ zeros to PADMÉ length
//! ```
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
const RECORD_VERSION: u8 = 1;
/// Length of the clear header (magic, version, epoch, scope id).
pub const HEADER_LEN: usize = 25;
/// Largest page content (markdown or attachment), in bytes.
pub const MAX_CONTENT_LEN: usize = 16 * 1024 * 1024;
/// Largest envelope a reader accepts.
pub const MAX_ENVELOPE_LEN: usize = 20 * 1024 * 1024;
/// Longest author name, in bytes.
pub const MAX_AUTHOR_LEN: usize = 64;

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
    /// The content: markdown text (front matter included verbatim) or attachment bytes.
    pub content: Vec<u8>,
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
        let mut w = Writer::default();
        w.u8(RECORD_VERSION);
        w.u8(self.kind as u8);
        w.bytes_u16(self.path.as_bytes())?;
        w.bytes_u8(self.author.as_bytes())?;
        w.i64(self.written_at_ms);
        w.bytes_u32(&self.content)?;
        let padded = usize::try_from(padme(w.buf.len() as u64))
            .map_err(|_| Error::Invalid("page too large"))?;
        w.buf.resize(padded, 0);
        Ok(w.buf)
    }

    fn decode_padded(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "page record");
        let v = r.u8()?;
        if v != RECORD_VERSION {
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
        w.u8(RECORD_VERSION);
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
