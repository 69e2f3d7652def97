//! The encrypted search index: an inverted index of normalized terms → pages, plus each page's
//! path and metadata, so a client can list, resolve paths and search without decrypting every page.
//!
//! The index is one more page: a [`PageRecord`] of kind [`PageKind::Index`] at path [`INDEX_PATH`],
//! stored under the page id [`ScopeKey::derive_index_page_id`](crate::scope::ScopeKey) of the scope
//! it covers, sealed like any page. To the server it is an ordinary page. Writers update it with
//! the pages they change, or let it lag by a few pages; a client that finds it stale (a page whose
//! envelope hash differs from what the index recorded, a page the index lacks, an entry for a page
//! that is gone) re-indexes just those pages.
//!
//! ```text
//! index   = "ZKIX" ‖ 1 ‖ seq (u64) ‖ page count (u32) ‖ pages ‖ term count (u32) ‖ terms
//! page    = page id (16) ‖ kind (u8) ‖ SHA-256(envelope) (32) ‖ written_at (i64) ‖ size (u64)
//!           ‖ u8 len author ‖ u16 len path                      (sorted by page id, strictly)
//! term    = u8 len term ‖ varint n ‖ n varint ordinals, delta-coded (sorted bytewise, strictly)
//! ```
//!
//! Pure: no I/O. The byte layout is also in `docs/format.md` ("Search index").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use crate::envelope::{MAX_AUTHOR_LEN, PageKind, PageRecord};
use crate::ids::{Digest32, PageId};
use crate::state::Manifest;
use crate::wire::{Reader, Writer};
use crate::{Error, Result, path};

const MAGIC: &[u8; 4] = b"ZKIX";
const VERSION: u8 = 1;
/// The path an index record carries (reserved: user pages may not live under `.zkwiki/`).
pub const INDEX_PATH: &str = ".zkwiki/index";
/// The path the wiki's settings record carries.
pub const SETTINGS_PATH: &str = ".zkwiki/settings";
/// The reserved folder of internal records.
pub const RESERVED_PREFIX: &str = ".zkwiki/";
/// Longest indexed term, in bytes (longer words are not indexed).
pub const MAX_TERM_LEN: usize = 64;
/// Shortest indexed term, in bytes.
pub const MIN_TERM_LEN: usize = 2;

/// What the index knows about one page without decrypting it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IndexedPage {
    /// The page path.
    pub path: String,
    /// Markdown or attachment.
    pub kind: PageKind,
    /// SHA-256 of the envelope that was indexed (staleness check against the manifest).
    pub hash: Digest32,
    /// The record's `written_at`.
    pub written_at_ms: i64,
    /// Content length in bytes.
    pub size: u64,
    /// The record's author.
    pub author: String,
}

/// How many pages the stored index may lag behind the manifest before a writer rewrites it.
/// Readers re-index the lag from the pages themselves (the browser fetches each one).
pub const MAX_LAG: usize = 32;
/// An index of at most this many pages is cheap enough to rewrite with every write.
pub const LAG_ABOVE_PAGES: usize = 256;

/// Whether a writer stores the index with its commit: always for small indexes, and for larger
/// ones once the pages it would not describe (`lag_after` this commit) exceed [`MAX_LAG`], so a
/// one-page edit of a 10,000-page wiki does not re-upload a 3.9 MB index.
pub fn index_due(indexed_pages: usize, lag_after: usize) -> bool {
    indexed_pages <= LAG_ABOVE_PAGES || lag_after > MAX_LAG
}

/// An index in memory.
#[derive(Clone, Default)]
pub struct SearchIndex {
    /// Sequence number of the wiki state this index was written with (informational).
    pub seq: u64,
    pages: BTreeMap<PageId, IndexedPage>,
    /// Term → pages, built on first use: listing pages and resolving paths (most commands)
    /// never need the terms, which are most of a large index (a 10,000-page index holds about a
    /// million postings). Until then the checked bytes wait in `encoded` and changes in `pending`.
    terms: OnceLock<Terms>,
    encoded: Option<EncodedTerms>,
    pending: Vec<(PageId, Option<BTreeSet<String>>)>,
    /// Each page's terms, so replacing one page does not scan every term (a re-encryption of a
    /// 10,000-page wiki replaces them all). Building it costs many scans, so it is built only
    /// after [`BUILD_BY_PAGE_AFTER`] small removals, and kept up to date after that; not part of
    /// the format.
    by_page: Option<BTreeMap<PageId, Vec<String>>>,
    small_removals: usize,
}

type Terms = BTreeMap<String, BTreeSet<PageId>>;

/// The term section of a decoded index, already checked, with the page ids its ordinals name.
#[derive(Clone)]
struct EncodedTerms {
    bytes: Vec<u8>,
    ids: Vec<PageId>,
}

/// Counts only: an index holds the paths and words of decrypted pages, which never belong in a
/// log or an error message.
impl core::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("seq", &self.seq)
            .field("pages", &self.pages.len())
            .finish_non_exhaustive()
    }
}

/// Equal when they index the same pages and terms (the `by_page` cache is derived from `terms`).
impl PartialEq for SearchIndex {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq && self.pages == other.pages && self.terms() == other.terms()
    }
}
impl Eq for SearchIndex {}

/// Removals of at most this many pages use the per-page term lists (once built); larger ones scan
/// every term once.
const SMALL_REMOVAL: usize = 64;
/// Small removals (one full scan each) before the per-page term lists are built: an edit or two
/// scans, a re-encryption of thousands of pages builds them.
const BUILD_BY_PAGE_AFTER: usize = 16;

/// Pages of a manifest the index does not describe as they are now.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Staleness {
    /// In the manifest but missing from the index, or indexed from another envelope.
    pub changed: Vec<PageId>,
    /// In the index but no longer in the manifest.
    pub gone: Vec<PageId>,
}

impl Staleness {
    /// Whether the index is up to date.
    pub fn is_fresh(&self) -> bool {
        self.changed.is_empty() && self.gone.is_empty()
    }
}

/// Splits text into normalized terms: maximal runs of alphanumeric characters, lowercased; terms
/// shorter than [`MIN_TERM_LEN`] or longer than [`MAX_TERM_LEN`] bytes are dropped.
pub fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| (MIN_TERM_LEN..=MAX_TERM_LEN).contains(&w.len()))
}

/// Whether `path` is reserved for internal records.
pub fn is_reserved_path(page_path: &str) -> bool {
    page_path.starts_with(RESERVED_PREFIX)
}

impl SearchIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every indexed page.
    pub fn pages(&self) -> &BTreeMap<PageId, IndexedPage> {
        &self.pages
    }

    /// One page.
    pub fn page(&self, id: &PageId) -> Option<&IndexedPage> {
        self.pages.get(id)
    }

    /// Number of distinct terms.
    pub fn term_count(&self) -> usize {
        self.terms().len()
    }

    /// The terms, built from the encoded section and the changes since on first use.
    fn terms(&self) -> &Terms {
        self.terms.get_or_init(|| {
            let mut terms = Terms::new();
            if let Some(e) = &self.encoded {
                // The bytes were checked by `decode`: this walk cannot fail.
                let _ = walk_terms(
                    &e.bytes,
                    &e.ids,
                    Some(&mut |term, postings| {
                        // Inserted one by one: `collect` would sort them again (and bring a
                        // sort of page ids into the browser's bundle).
                        let mut set = BTreeSet::new();
                        for id in postings {
                            set.insert(*id);
                        }
                        terms.insert(term.to_owned(), set);
                    }),
                );
            }
            if !self.pending.is_empty() {
                // A page's last change is what it is now (an insert replaces, a removal removes).
                let touched: BTreeSet<PageId> = self.pending.iter().map(|(id, _)| *id).collect();
                terms.retain(|_, set| {
                    set.retain(|p| !touched.contains(p));
                    !set.is_empty()
                });
                let mut done = BTreeSet::new();
                for (id, words) in self.pending.iter().rev() {
                    if !done.insert(*id) {
                        continue;
                    }
                    for word in words.iter().flatten() {
                        terms.entry(word.clone()).or_default().insert(*id);
                    }
                }
            }
            terms
        })
    }

    /// Whether the terms are built (a change then applies to them, else it waits in `pending`);
    /// once they are, what they were built from is dropped.
    fn terms_built(&mut self) -> bool {
        let built = self.terms.get().is_some();
        if built {
            self.encoded = None;
            self.pending.clear();
        }
        built
    }

    /// The page at `path`, if indexed.
    pub fn find_path(&self, page_path: &str) -> Option<PageId> {
        self.pages
            .iter()
            .find(|(_, p)| p.path == page_path)
            .map(|(id, _)| *id)
    }

    /// Adds (or replaces) a page. `hash` is the SHA-256 of its envelope. Markdown is indexed by its
    /// path and text; other kinds by their path only. Index records themselves are never indexed.
    pub fn insert(&mut self, id: PageId, record: &PageRecord, hash: Digest32) {
        if matches!(record.kind, PageKind::Index | PageKind::Settings) {
            return;
        }
        if self.pages.contains_key(&id) {
            self.remove_pages(&BTreeSet::from([id]));
        }
        let mut words: BTreeSet<String> = terms(&record.path).collect();
        if let Some(text) = record.markdown() {
            words.extend(terms(text));
        }
        if let Some(by_page) = &mut self.by_page {
            by_page.insert(id, words.iter().cloned().collect());
        }
        if !self.terms_built() {
            self.pending.push((id, Some(words)));
        } else if let Some(built) = self.terms.get_mut() {
            for word in words {
                built.entry(word).or_default().insert(id);
            }
        }
        self.pages.insert(
            id,
            IndexedPage {
                path: record.path.clone(),
                kind: record.kind,
                hash,
                written_at_ms: record.written_at_ms,
                size: record.content.len() as u64,
                author: record.author.clone(),
            },
        );
    }

    /// Removes pages: a few through each page's own terms, many in one pass over all terms.
    pub fn remove_pages(&mut self, ids: &BTreeSet<PageId>) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            self.pages.remove(id);
        }
        if !self.terms_built() {
            self.pending.extend(ids.iter().map(|id| (*id, None)));
            return;
        }
        let Some(built) = self.terms.get_mut() else {
            return;
        };
        if ids.len() <= SMALL_REMOVAL {
            self.small_removals += 1;
        }
        if ids.len() <= SMALL_REMOVAL && self.small_removals > BUILD_BY_PAGE_AFTER {
            let terms = &*built;
            let by_page = self.by_page.get_or_insert_with(|| {
                let mut by_page: BTreeMap<PageId, Vec<String>> = BTreeMap::new();
                for (term, set) in terms {
                    for p in set {
                        by_page.entry(*p).or_default().push(term.clone());
                    }
                }
                by_page
            });
            for id in ids {
                for term in by_page.remove(id).unwrap_or_default() {
                    if let Some(set) = built.get_mut(&term) {
                        set.remove(id);
                        if set.is_empty() {
                            built.remove(&term);
                        }
                    }
                }
            }
            return;
        }
        if let Some(by_page) = &mut self.by_page {
            by_page.retain(|p, _| !ids.contains(p));
        }
        built.retain(|_, set| {
            set.retain(|p| !ids.contains(p));
            !set.is_empty()
        });
    }

    /// Compares with a manifest. `skip` names pages that are not indexed (index records).
    pub fn staleness(&self, manifest: &Manifest, skip: impl Fn(&PageId) -> bool) -> Staleness {
        // Both maps are sorted by page id: one merged walk instead of a lookup per page.
        let mut out = Staleness::default();
        let mut indexed = self.pages.iter();
        let mut next = indexed.next();
        for (id, entry) in &manifest.pages {
            let mut here = None;
            while let Some((i, p)) = next {
                if i > id {
                    break;
                }
                if i == id {
                    here = Some(p.hash);
                } else {
                    out.gone.push(*i);
                }
                next = indexed.next();
            }
            if skip(id) {
                if here.is_some() {
                    out.gone.push(*id);
                }
            } else if here != Some(entry.hash) {
                out.changed.push(*id);
            }
        }
        while let Some((i, _)) = next {
            out.gone.push(*i);
            next = indexed.next();
        }
        out
    }

    /// Pages matching every query term (AND). A term ending in `*` matches as a prefix. Results
    /// are sorted by path.
    pub fn search(&self, query: &str) -> Vec<PageId> {
        let mut result: Option<Vec<PageId>> = None;
        for raw in query.split_whitespace() {
            let (word, prefix) = match raw.strip_suffix('*') {
                Some(w) => (w, true),
                None => (raw, false),
            };
            for term in word
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
            {
                // Page ids of this term, sorted and without duplicates.
                let hits: Vec<PageId> = if prefix {
                    let mut all: Vec<PageId> = self
                        .terms()
                        .range(term.clone()..)
                        .take_while(|(t, _)| t.starts_with(&term))
                        .flat_map(|(_, set)| set.iter().copied())
                        .collect();
                    all.sort_unstable();
                    all.dedup();
                    all
                } else {
                    self.terms()
                        .get(&term)
                        .map(|set| set.iter().copied().collect())
                        .unwrap_or_default()
                };
                result = Some(match result {
                    None => hits,
                    Some(acc) => intersect_sorted(&acc, &hits),
                });
            }
        }
        let Some(ids) = result else {
            return Vec::new();
        };
        let mut by_path: Vec<(&str, PageId)> = ids
            .into_iter()
            .map(|id| (self.pages.get(&id).map_or("", |p| p.path.as_str()), id))
            .collect();
        by_path.sort_unstable();
        by_path.into_iter().map(|(_, id)| id).collect()
    }

    /// The bytes of the format above.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.u64(self.seq);
        w.u32(u32::try_from(self.pages.len()).map_err(|_| Error::Invalid("too many pages"))?);
        let mut ordinal = BTreeMap::new();
        for (i, (id, p)) in self.pages.iter().enumerate() {
            ordinal.insert(*id, i as u64);
            w.bytes(id.as_bytes());
            w.u8(p.kind as u8);
            w.bytes(p.hash.as_bytes());
            w.i64(p.written_at_ms);
            w.u64(p.size);
            w.bytes_u8(p.author.as_bytes())?;
            w.bytes_u16(p.path.as_bytes())?;
        }
        let terms = self.terms();
        w.u32(u32::try_from(terms.len()).map_err(|_| Error::Invalid("too many terms"))?);
        for (term, set) in terms {
            w.bytes_u8(term.as_bytes())?;
            put_varint(&mut w.buf, set.len() as u64);
            let mut prev: Option<u64> = None;
            // Ordinals ascend because page ids and ordinals share the page-id order.
            for id in set {
                let o = *ordinal
                    .get(id)
                    .ok_or(Error::Invalid("a term names a page the index lacks"))?;
                put_varint(&mut w.buf, prev.map_or(o, |p| o - p));
                prev = Some(o);
            }
        }
        Ok(w.buf)
    }

    /// Parses and checks the format (sorted, in range, valid paths); never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let malformed = |reason| Error::Malformed {
            what: "search index",
            reason,
        };
        let mut r = Reader::new(bytes, "search index");
        r.header(MAGIC, VERSION)?;
        let seq = r.u64()?;
        let count = r.u32()? as usize;
        // Each page takes at least 16 + 1 + 32 + 8 + 8 + 1 + 2 bytes.
        if count > r.remaining() / 68 {
            return Err(malformed("page count does not match length"));
        }
        let mut pages = BTreeMap::new();
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let id = PageId(r.array()?);
            if ids.last().is_some_and(|last| *last >= id) {
                return Err(malformed("page ids not strictly sorted"));
            }
            let kind = PageKind::from_u8(r.u8()?)?;
            if matches!(kind, PageKind::Index | PageKind::Settings) {
                return Err(malformed(
                    "an index lists only markdown pages and attachments",
                ));
            }
            let hash = Digest32(r.array()?);
            let written_at_ms = r.i64()?;
            let size = r.u64()?;
            let author = r.str_u8()?.to_owned();
            if author.len() > MAX_AUTHOR_LEN {
                return Err(malformed("author name too long"));
            }
            let page_path = r.str_u16()?.to_owned();
            path::check_path(&page_path)?;
            ids.push(id);
            pages.insert(
                id,
                IndexedPage {
                    path: page_path,
                    kind,
                    hash,
                    written_at_ms,
                    size,
                    author,
                },
            );
        }
        let bytes = r.rest();
        walk_terms(bytes, &ids, None)?;
        Ok(Self {
            seq,
            pages,
            terms: OnceLock::new(),
            encoded: Some(EncodedTerms {
                bytes: bytes.to_vec(),
                ids,
            }),
            pending: Vec::new(),
            by_page: None,
            small_removals: 0,
        })
    }

    /// The record to seal at the index page id.
    pub fn to_record(&self, author: &str, written_at_ms: i64) -> Result<PageRecord> {
        Ok(PageRecord {
            kind: PageKind::Index,
            path: INDEX_PATH.to_owned(),
            author: author.to_owned(),
            written_at_ms,
            note: Default::default(),
            content: self.encode()?,
        })
    }

    /// Reads an index from its decrypted record.
    pub fn from_record(record: &PageRecord) -> Result<Self> {
        if record.kind != PageKind::Index {
            return Err(Error::Mismatch(
                "the index page id holds a page that is not an index",
            ));
        }
        Self::decode(&record.content)
    }
}

/// What receives each term and its pages while a term section is read.
type TermSink<'a> = dyn FnMut(&str, &[PageId]) + 'a;

/// Reads and checks a term section (`term count ‖ terms`; ordinals index `ids`), handing each term
/// and its pages (sorted) to `each`. The one parser of the section: `decode` runs it to check
/// (without `each`), the first search to build the map.
fn walk_terms(bytes: &[u8], ids: &[PageId], mut each: Option<&mut TermSink<'_>>) -> Result<()> {
    let malformed = |reason| Error::Malformed {
        what: "search index",
        reason,
    };
    let mut r = Reader::new(bytes, "search index");
    let term_count = r.u32()? as usize;
    if term_count > r.remaining() / 3 {
        return Err(malformed("term count does not match length"));
    }
    let mut last: Option<&str> = None;
    let mut postings = Vec::new();
    for _ in 0..term_count {
        let term = r.str_u8()?;
        if term.is_empty() || last.is_some_and(|l| l >= term) {
            return Err(malformed("terms empty or not strictly sorted"));
        }
        let n = get_varint(&mut r)?;
        if n == 0 || n > ids.len() as u64 {
            return Err(malformed("posting count out of range"));
        }
        postings.clear();
        let mut prev: Option<u64> = None;
        for _ in 0..n {
            let d = get_varint(&mut r)?;
            let o = match prev {
                None => d,
                Some(_) if d == 0 => return Err(malformed("postings not increasing")),
                Some(p) => p.checked_add(d).ok_or(malformed("posting out of range"))?,
            };
            let id = usize::try_from(o)
                .ok()
                .and_then(|i| ids.get(i))
                .ok_or(malformed("posting out of range"))?;
            if each.is_some() {
                postings.push(*id);
            }
            prev = Some(o);
        }
        last = Some(term);
        if let Some(each) = each.as_mut() {
            each(term, &postings);
        }
    }
    r.finish()
}

fn intersect_sorted(a: &[PageId], b: &[PageId]) -> Vec<PageId> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            core::cmp::Ordering::Less => i += 1,
            core::cmp::Ordering::Greater => j += 1,
            core::cmp::Ordering::Equal => {
                out.push(*x);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf.push(byte);
            return;
        }
        buf.push(byte | 0x80);
    }
}

fn get_varint(r: &mut Reader<'_>) -> Result<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = r.u8()?;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            break;
        }
        v |= bits << shift;
        if byte & 0x80 == 0 {
            if byte == 0 && shift > 0 {
                break; // non-minimal encoding
            }
            return Ok(v);
        }
    }
    Err(Error::Malformed {
        what: "search index",
        reason: "bad varint",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ManifestEntry;

    fn rec(path: &str, text: &str) -> PageRecord {
        PageRecord {
            kind: PageKind::Markdown,
            path: path.into(),
            author: "alice".into(),
            written_at_ms: 7,
            note: Default::default(),
            content: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn insert_search_remove_round_trip() {
        let mut ix = SearchIndex::new();
        let (a, b) = (PageId([1; 16]), PageId([2; 16]));
        ix.insert(
            a,
            &rec("notes/Alpha.md", "The quick brown fox"),
            Digest32([1; 32]),
        );
        ix.insert(
            b,
            &rec("Beta.md", "A QUICK red fox, ünïcode"),
            Digest32([2; 32]),
        );
        assert_eq!(ix.search("quick fox"), vec![b, a]);
        assert_eq!(ix.search("brown"), vec![a]);
        assert_eq!(ix.search("qui*"), vec![b, a]);
        assert_eq!(ix.search("alpha"), vec![a], "paths are indexed");
        assert_eq!(ix.search("ÜNÏCODE"), vec![b]);
        assert!(ix.search("").is_empty());
        assert!(ix.search("missing").is_empty());
        ix.seq = 9;
        let bytes = ix.encode().unwrap();
        let back = SearchIndex::decode(&bytes).unwrap();
        assert_eq!(back, ix);
        ix.insert(a, &rec("notes/Alpha.md", "now slow"), Digest32([3; 32]));
        assert_eq!(ix.search("fox"), vec![b]);
        ix.remove_pages(&BTreeSet::from([b]));
        assert!(ix.search("fox").is_empty());
        assert_eq!(ix.find_path("notes/Alpha.md"), Some(a));
        let record = ix.to_record("alice", 1).unwrap();
        assert_eq!(SearchIndex::from_record(&record).unwrap(), ix);
    }

    /// Changes made to a decoded index before its terms are built (they wait) leave the same
    /// index as the same changes made after (they apply at once).
    #[test]
    fn changes_before_the_terms_are_built_match_changes_after() {
        let (a, b, c) = (PageId([1; 16]), PageId([2; 16]), PageId([3; 16]));
        let mut base = SearchIndex::new();
        base.insert(a, &rec("a.md", "red green"), Digest32([1; 32]));
        base.insert(b, &rec("b.md", "green blue"), Digest32([2; 32]));
        let bytes = base.encode().unwrap();
        let change = |ix: &mut SearchIndex| {
            ix.insert(a, &rec("a.md", "yellow"), Digest32([4; 32]));
            ix.insert(c, &rec("c.md", "blue blue red"), Digest32([3; 32]));
            ix.remove_pages(&BTreeSet::from([b]));
            ix.insert(b, &rec("b2.md", "green"), Digest32([5; 32]));
            ix.remove_pages(&BTreeSet::from([c]));
        };
        let mut lazy = SearchIndex::decode(&bytes).unwrap();
        change(&mut lazy);
        let mut eager = SearchIndex::decode(&bytes).unwrap();
        assert_eq!(eager.search("green"), vec![a, b]);
        change(&mut eager);
        assert_eq!(lazy, eager);
        assert_eq!(lazy.encode().unwrap(), eager.encode().unwrap());
        for w in ["red", "green", "blue", "yellow", "b2"] {
            assert_eq!(lazy.search(w), eager.search(w), "{w}");
        }
        assert_eq!(lazy.search("green"), vec![b]);
        assert_eq!(lazy.term_count(), 4);
    }

    #[test]
    fn staleness_against_manifest() {
        let mut ix = SearchIndex::new();
        let (a, b, c) = (PageId([1; 16]), PageId([2; 16]), PageId([3; 16]));
        ix.insert(a, &rec("a.md", "x"), Digest32([1; 32]));
        ix.insert(b, &rec("b.md", "x"), Digest32([2; 32]));
        let entry = |h| ManifestEntry {
            epoch: 1,
            scope: crate::ids::ScopeId([0; 16]),
            size: 1,
            hash: Digest32([h; 32]),
        };
        let mut m = Manifest::default();
        m.pages.insert(a, entry(1));
        m.pages.insert(c, entry(3));
        let s = ix.staleness(&m, |_| false);
        assert_eq!(s.changed, vec![c]);
        assert_eq!(s.gone, vec![b]);
        assert!(!s.is_fresh());
        // Against the definition, on many shapes: pages only in one map at either end or in
        // the middle, changed hashes, skipped pages indexed or not.
        for seed in 0u8..40 {
            let mut ix = SearchIndex::new();
            let mut m = Manifest::default();
            for n in 0u8..30 {
                let id = PageId([n.wrapping_mul(7).wrapping_add(seed); 16]);
                let pick = n.wrapping_mul(seed.wrapping_add(3)) % 5;
                if pick != 0 {
                    ix.insert(id, &rec(&format!("p{n}.md"), "x"), Digest32([n; 32]));
                }
                if pick != 1 {
                    m.pages.insert(id, entry(if pick == 2 { n ^ 1 } else { n }));
                }
            }
            let skip = |id: &PageId| id.0[0] % 11 == seed % 11;
            let s = ix.staleness(&m, skip);
            let changed: Vec<PageId> = m
                .pages
                .iter()
                .filter(|(id, e)| !skip(id) && ix.page(id).map(|p| p.hash) != Some(e.hash))
                .map(|(id, _)| *id)
                .collect();
            let gone: Vec<PageId> = ix
                .pages()
                .keys()
                .filter(|id| !m.pages.contains_key(id) || skip(id))
                .copied()
                .collect();
            assert_eq!((s.changed, s.gone), (changed, gone), "seed {seed}");
        }
    }

    #[test]
    fn decode_rejects_garbage_without_panicking() {
        let mut ix = SearchIndex::new();
        ix.insert(
            PageId([1; 16]),
            &rec("a.md", "hello world"),
            Digest32([1; 32]),
        );
        let good = ix.encode().unwrap();
        for cut in 0..good.len() {
            assert!(SearchIndex::decode(&good[..cut]).is_err());
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = SearchIndex::decode(&bad);
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(SearchIndex::decode(&trailing).is_err());
    }

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut r = Reader::new(&buf, "t");
            assert_eq!(get_varint(&mut r).unwrap(), v);
        }
        let mut r = Reader::new(&[0x80, 0x00], "t");
        assert!(get_varint(&mut r).is_err());
    }

    /// Replacing and removing pages one at a time (through the per-page term lists), or many at
    /// once (one pass over the terms), leaves the same index as building it from the final pages.
    #[test]
    fn incremental_updates_match_a_fresh_build() {
        let words = [
            "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
        ];
        let text = |seed: usize| -> String {
            (0..5)
                .map(|k| words[(seed * 7 + k * 3) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let id = |n: usize| PageId([n as u8; 16]);
        let mut ix = SearchIndex::new();
        let mut live: BTreeMap<usize, (String, usize)> = BTreeMap::new();
        for step in 0..400usize {
            let n = step % 90;
            match step % 5 {
                0..=2 => {
                    let path = format!("p{n}.md");
                    ix.insert(id(n), &rec(&path, &text(step)), Digest32([n as u8; 32]));
                    live.insert(n, (path, step));
                }
                3 => {
                    ix.remove_pages(&BTreeSet::from([id(n)]));
                    live.remove(&n);
                }
                _ => {
                    // Over SMALL_REMOVAL pages: the full scan, with the per-page lists in use.
                    let many: BTreeSet<PageId> = (0..70).map(|k| id((n + k) % 90)).collect();
                    ix.remove_pages(&many);
                    live.retain(|k, _| !many.contains(&id(*k)));
                }
            }
        }
        let mut fresh = SearchIndex::new();
        for (n, (path, step)) in &live {
            fresh.insert(id(*n), &rec(path, &text(*step)), Digest32([*n as u8; 32]));
        }
        assert_eq!(ix, fresh);
        assert_eq!(ix.terms(), fresh.terms());
        for w in words {
            assert_eq!(ix.search(w), fresh.search(w), "{w}");
        }
    }
}
