//! Bindings: one open wiki ([`WikiSession`]) and the writes prepared on it ([`PendingWrite`]).
//!
//! JavaScript fetches; these methods take the answers as they came (JSON text, envelope bytes),
//! hand them to the client core ([`client::Workspace`]), which runs every check, and give back
//! JSON for the DOM or request bodies to send. Nothing here does I/O or decides what to trust:
//! the only things this file adds are the conversions, the rendering of pages
//! ([`crate::render`], with its link index cached per [`Workspace::generation`]), and escaping of
//! the untrusted names it hands to the DOM ([`client::display::escape`]).

use std::cell::RefCell;
use std::rc::Rc;

use client::head::{MAX_TRAIL_BATCH, TrailPoint};
use client::history::{HistoryWalk, introduces};
use client::wire::{self, unb64};
use client::workspace::{IndexWrite, Page, Pending, RevocationReport};
use client::{Error, Result, Workspace, attachments, display, names, policy};
use core_crypto::envelope::{PageKind, VersionNote};
use core_crypto::identity::{PublicIdentity, UserIdentity};
use core_crypto::ids::{Digest32, PageId};
use core_crypto::index::IndexedPage;
use core_crypto::keyring::{MemberKind, Role};
use core_crypto::snapshot::SeenRecord;
use rand_core::OsRng;
use wasm_bindgen::prelude::*;

use crate::js::{JsResult, js};
use crate::json::{self, Obj};
use crate::links::PageIndex;
use crate::render::{self, Rendered};

/// Untrusted text for the DOM: control, bidirectional and invisible characters made visible.
pub(crate) fn shown(text: &str) -> String {
    display::escape(text).into_owned()
}

/// Parses what the browser remembered about a wiki (`""` for nothing).
pub fn parse_seen(json: &str) -> Result<SeenRecord> {
    client::seen::decode(json)
}

/// Parses a `/users/{name}` answer into the name and public keys.
pub fn parse_user(json: &str) -> Result<(String, PublicIdentity)> {
    let resp: wire::UserResponse = wire::parse(json, "user answer")?;
    let key = |v: &str, what: &str| -> Result<[u8; 32]> {
        unb64(v, what)?
            .try_into()
            .map_err(|_| Error::protocol(&format!("{what} is not 32 bytes")))
    };
    let public = PublicIdentity {
        x25519: key(&resp.x25519, "x25519")?,
        ed25519: key(&resp.ed25519, "ed25519")?,
    };
    Ok((resp.user, public))
}

/// Parses a `/keyring` answer (`""`: no newer versions).
pub fn parse_keyrings(json: &str) -> Result<Vec<Vec<u8>>> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    wire::parse::<wire::KeyringResponse>(json, "keyring answer")?.decode()
}

/// Parses a `/head` answer (or the `head` of a 409) into `(state, manifest)`.
pub fn parse_head(json: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    wire::parse::<wire::HeadResponse>(json, "head answer")?.decode()
}

/// Parses a `/states?from=&to=` answer (`""`: no states) into trail points, oldest first.
pub fn parse_states(json: &str) -> Result<Vec<TrailPoint>> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    wire::parse::<wire::StatesResponse>(json, "states answer")?.decode()
}

/// A range of states to fetch, as JSON: `{"from", "to"}`, or `null` for none.
fn range_json(range: Option<core::ops::RangeInclusive<u64>>) -> String {
    match range {
        Some(r) => Obj::new()
            .num("from", r.start())
            .num("to", r.end())
            .finish(),
        None => "null".to_owned(),
    }
}

/// The batch that ends at `to` when walking back (the server's batch limit at most).
pub(crate) fn batch_ending_at(to: u64) -> core::ops::RangeInclusive<u64> {
    to.saturating_sub(MAX_TRAIL_BATCH as u64 - 1).max(1)..=to
}

/// The states a browser that remembered `seen_json` must fetch before it can accept the head in
/// `head_json` (`/states?from=&to=`, asked again from the next sequence while the answer stops
/// early): `{"from", "to"}` or `null`. A head older than what was seen is refused here already.
#[wasm_bindgen(js_name = trailNeeded)]
pub fn trail_needed(seen_json: &str, head_json: &str) -> JsResult<String> {
    js((|| {
        let seen = parse_seen(seen_json)?;
        let (state, _) = parse_head(head_json)?;
        let seq = client::head::state_seq(&state)?;
        Ok(range_json(client::head::trail_needed(&seen, seq)?))
    })())
}

fn page_id(hex: &str) -> Result<PageId> {
    Ok(PageId::from_hex(hex)?)
}

fn opt_page(hex: &str) -> Result<Option<PageId>> {
    if hex.is_empty() {
        Ok(None)
    } else {
        page_id(hex).map(Some)
    }
}

fn role(name: &str) -> Result<Role> {
    Ok(Role::from_name(name)?)
}

fn kind_name(kind: PageKind) -> &'static str {
    kind.name()
}

/// The member who signed a page version and the author its record claims: the claim is kept
/// (escaped) only when it differs from the signer.
fn claim_of(author: &str, signer: Option<&str>) -> Option<String> {
    (signer != Some(author)).then(|| shown(author))
}

fn entry_json(id: &PageId, p: &IndexedPage) -> String {
    Obj::new()
        .str("id", &id.to_hex())
        .str("path", &p.path)
        .str("kind", kind_name(p.kind))
        .str("author", &shown(&p.author))
        .num("written_at", p.written_at_ms)
        .num("size", p.size)
        .str("hash", &p.hash.to_hex())
        .finish()
}

/// An open, verified wiki.
#[wasm_bindgen]
pub struct WikiSession {
    ws: Workspace,
    /// Paths of the markdown pages for resolving links, and the workspace generation they
    /// were built at.
    links: RefCell<Option<(u64, Rc<PageIndex>)>>,
    /// The history walk that finds who wrote isolated or clashing pages, kept between fetches.
    attribution: Option<HistoryWalk<'static>>,
    /// The head sequence at which a walk reached the first state without attributing every
    /// page (nothing more to learn from history until the head moves).
    attributed_through: Option<u64>,
    /// The pages rendered last, newest last (see [`WikiSession::render_page`]).
    rendered: RefCell<Vec<RenderedPage>>,
}

/// A page's HTML as rendered from one envelope with one link index: viewing the page again with
/// the same envelope and links gives the same HTML, so it is kept and not rendered again (about
/// 4 ms of a 100 KiB page's navigation). The envelope is still fetched and verified on every
/// view; only the rendering of a verified record already rendered is skipped.
struct RenderedPage {
    envelope: Digest32,
    links: Rc<PageIndex>,
    style: client::links::WikilinkStyle,
    page: Rc<Rendered>,
}

/// At most this many rendered pages are kept, and at most [`RENDERED_BYTES`] of their HTML.
const RENDERED_PAGES: usize = 8;
/// See [`RENDERED_PAGES`].
const RENDERED_BYTES: usize = 4 << 20;

impl WikiSession {
    /// Renders an already decrypted page (as [`WikiSession::view`]; not exported: the app
    /// always views what it fetched, the tests render what they loaded).
    pub fn view_loaded(&self, page: &str) -> JsResult<PageView> {
        js(page_id(page).and_then(|id| self.view_of(id)))
    }

    /// Wraps a workspace.
    pub fn new(ws: Workspace) -> Self {
        crate::install_nfc();
        Self {
            ws,
            links: RefCell::new(None),
            attribution: None,
            attributed_through: None,
            rendered: RefCell::new(Vec::new()),
        }
    }

    /// The workspace (tests).
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    /// The link index of the current catalog (rebuilt when the workspace's pages changed).
    fn links(&self) -> Rc<PageIndex> {
        let generation = self.ws.generation();
        let mut slot = self.links.borrow_mut();
        if let Some((g, index)) = slot.as_ref()
            && *g == generation
        {
            return index.clone();
        }
        let catalog = self.ws.catalog();
        let of_kind = |kind| {
            catalog
                .values()
                .filter(move |p| p.kind == kind)
                .map(|p| p.path.as_str())
        };
        let index = Rc::new(
            PageIndex::new(of_kind(PageKind::Markdown))
                .with_attachments(of_kind(PageKind::Attachment)),
        );
        *slot = Some((generation, index.clone()));
        index
    }

    /// Renders markdown as the page at `path` would show.
    pub fn render(&self, path: &str, markdown: &str) -> Rendered {
        let route = format!("#/w/{}/p/", self.ws.wiki());
        let pages = self.links();
        let ctx = render::Context {
            pages: &pages,
            current: path,
            route: &route,
            wikilink_style: self.ws.wikilink_style(),
        };
        render::render_page(markdown, &ctx)
    }

    fn page_json(&self, id: &PageId, p: &Page) -> Obj {
        let provenance = self.ws.provenance(id);
        let signer = provenance.map(|p| p.signer.as_str());
        Obj::new()
            .str("id", &id.to_hex())
            .str("path", &p.record.path)
            .str("kind", kind_name(p.record.kind))
            .str("author", &shown(&p.record.author))
            .opt_str("signer", signer.map(shown).as_deref())
            .opt_num("signed_at_seq", provenance.map(|p| p.seq))
            .opt_str("claim", claim_of(&p.record.author, signer).as_deref())
            .num("written_at", p.record.written_at_ms)
            .num("size", p.record.content.len())
            .str("hash", &p.hash.to_hex())
    }

    /// A loaded page's rendering, from the pages rendered last when this envelope was rendered
    /// with the current link index and wikilink style (see [`RenderedPage`]).
    fn render_page(&self, p: &Page) -> Rc<Rendered> {
        let links = self.links();
        let style = self.ws.wikilink_style();
        let mut kept = self.rendered.borrow_mut();
        // Renderings made with other links or another style can never be used again.
        kept.retain(|r| Rc::ptr_eq(&r.links, &links) && r.style == style);
        if let Some(i) = kept.iter().position(|r| r.envelope == p.hash) {
            let hit = kept.remove(i);
            let page = hit.page.clone();
            kept.push(hit);
            return page;
        }
        let text = p.record.markdown().unwrap_or_default();
        let page = Rc::new(self.render(&p.record.path, text));
        if page.html.len() <= RENDERED_BYTES {
            kept.push(RenderedPage {
                envelope: p.hash,
                links,
                style,
                page: page.clone(),
            });
            let mut bytes: usize = kept.iter().map(|r| r.page.html.len()).sum();
            while kept.len() > RENDERED_PAGES || bytes > RENDERED_BYTES {
                bytes -= kept.remove(0).page.html.len();
            }
        }
        page
    }

    /// How many rendered pages are kept (tests).
    #[cfg(test)]
    fn rendered_kept(&self) -> usize {
        self.rendered.borrow().len()
    }

    fn view_of(&self, id: PageId) -> Result<PageView> {
        let p = self.ws.page(&id).ok_or_else(|| Error::not_loaded(id))?;
        let mut v = self.page_json(&id, p);
        let mut html = String::new();
        let mut rest = String::new();
        if p.record.kind == PageKind::Markdown {
            let text = p.record.markdown().unwrap_or_default();
            let r = self.render_page(p);
            v = v.opt_str("title", r.title.as_deref()).raw(
                "tags",
                &json::array(names::tags(text).iter().map(|t| json::string(&shown(t)))),
            );
            // The fold is between two top-level blocks, so both halves are whole elements.
            let fold = if r.fold < r.html.len() && r.html.is_char_boundary(r.fold) {
                r.fold
            } else {
                r.html.len()
            };
            html = r.html[..fold].to_owned();
            rest = r.html[fold..].to_owned();
        } else {
            v = v.opt_str("media", attachments::inline_type(&p.record.content));
        }
        Ok(PageView {
            meta: v.finish(),
            html,
            rest,
        })
    }

    /// Verifies fetched states (oldest first) for the attribution walk and records who wrote
    /// what (see [`WikiSession::attribution_load`]).
    pub fn attribute(&mut self, states: &[TrailPoint]) -> Result<()> {
        let Some(walk) = self.attribution.as_mut() else {
            return Ok(());
        };
        let mut wanted = self.ws.unattributed();
        let mut steps = Vec::new();
        for (state, manifest) in states.iter().rev() {
            if wanted.is_empty() || walk.needed().is_none() {
                break;
            }
            let step = walk.push(state, manifest)?;
            wanted.retain(|(id, e)| !introduces(&step, id, e));
            steps.push(step);
        }
        if steps.is_empty() {
            return Err(Error::protocol("the states asked for are missing"));
        }
        if wanted.is_empty() {
            self.attribution = None;
        }
        self.ws.attribute(&steps);
        Ok(())
    }

    fn pending(&self, p: Pending) -> PendingWrite {
        PendingWrite::new(p)
    }
}

/// A rendered page for JavaScript. The HTML is handed over as plain strings rather than inside
/// the JSON: escaping and re-parsing 280 KB of HTML as JSON cost milliseconds per navigation.
#[wasm_bindgen]
#[derive(Debug)]
pub struct PageView {
    meta: String,
    html: String,
    rest: String,
}

#[wasm_bindgen]
impl PageView {
    /// The page's fields as JSON: `{id, path, kind, author, signer, claim, written_at, size,
    /// hash}` plus `title` (markdown) or `media` (attachments). `author` is the record's claim;
    /// `signer` the member whose key signed the current version, when known.
    #[wasm_bindgen(getter)]
    pub fn meta(&self) -> String {
        self.meta.clone()
    }

    /// The first screens of the page's HTML (see `render::Rendered::fold`); empty for an
    /// attachment. Takes it (a second call returns "").
    #[wasm_bindgen(js_name = takeHtml)]
    pub fn take_html(&mut self) -> String {
        core::mem::take(&mut self.html)
    }

    /// The rest of the HTML after the fold ("" for a short page), whole top-level elements, to be
    /// appended after the first paint. Takes it.
    #[wasm_bindgen(js_name = takeRest)]
    pub fn take_rest(&mut self) -> String {
        core::mem::take(&mut self.rest)
    }
}

#[wasm_bindgen]
impl WikiSession {
    /// The wiki id.
    #[wasm_bindgen(getter)]
    pub fn wiki(&self) -> String {
        self.ws.wiki().to_hex()
    }

    /// A summary: `{wiki, seq, epoch, keyring_seq, role, members, pages, signer, title,
    /// safety_number, keyring_safety_number, witnesses}` (`title`: the wiki's own, from its
    /// encrypted settings, or null; the safety numbers of the head and its keyring version are the
    /// client core's, the ones `zkwiki status` shows; `witnesses`: how many the keyring lists).
    pub fn info(&self) -> String {
        let s = self.ws.snapshot();
        let numbers = client::witness::safety_numbers(self.ws.head());
        Obj::new()
            .str("wiki", &self.ws.wiki().to_hex())
            .num("seq", s.state.seq)
            .num("epoch", s.keyring.epoch)
            .num("keyring_seq", s.keyring.seq)
            .opt_str("role", self.ws.my_role().map(Role::name))
            .num("members", s.keyring.members.len())
            .num("pages", self.ws.catalog().len())
            .opt_str("signer", self.ws.head_signer().map(shown).as_deref())
            .opt_str("title", self.ws.title())
            .str("safety_number", &numbers.head)
            .str("keyring_safety_number", &numbers.keyring)
            .num("witnesses", s.keyring.witnesses.witnesses.len())
            .finish()
    }

    /// What to remember in this browser for rollback and fork detection (not secret): this
    /// session's head merged with what was `stored` (`""` for nothing) by the one rule every
    /// client uses (another tab may have seen a newer state meanwhile).
    #[wasm_bindgen(js_name = seenJson)]
    pub fn seen_json(&self, stored: &str) -> String {
        let stored = parse_seen(stored).unwrap_or_default();
        client::seen::encode(&client::seen::merge(&stored, &self.ws.seen()))
    }

    /// The keyring sequence this session holds (for `/keyring?since=`).
    #[wasm_bindgen(getter, js_name = keyringSeq)]
    pub fn keyring_seq(&self) -> f64 {
        self.ws.snapshot().keyring.seq as f64
    }

    /// Changes whenever the set of live pages or their paths may have changed (redraw the
    /// page tree).
    #[wasm_bindgen(getter)]
    pub fn generation(&self) -> f64 {
        self.ws.generation() as f64
    }

    /// The verified state's sequence.
    #[wasm_bindgen(getter)]
    pub fn seq(&self) -> f64 {
        self.ws.head().seq() as f64
    }

    /// The states to fetch before [`WikiSession::refresh`] can accept the head in `head_json`
    /// (a `/head` answer or a 409's `head`): `{"from", "to"}` or `null`. Throws IntegrityError
    /// for a head older than this session's (a rollback).
    #[wasm_bindgen(js_name = trailTo)]
    pub fn trail_to(&self, head_json: &str) -> JsResult<String> {
        js((|| {
            let (state, _) = parse_head(head_json)?;
            let seq = client::head::state_seq(&state)?;
            Ok(range_json(self.ws.head().trail_to(seq)?))
        })())
    }

    /// Accepts a newer head only if every transition from this session's head to it verifies:
    /// `keyring_json` is the `/keyring?since=N` answer (`""` if the keyring did not change),
    /// `head_json` the `/head` answer (or a 409's `head`), `trail_json` the `/states` answer for
    /// [`WikiSession::trail_to`]'s range (`""` for none). Returns the ids of pages that changed,
    /// as JSON. Throws IntegrityError for a fork or rollback; the session keeps its head then.
    pub fn refresh(
        &mut self,
        keyring_json: &str,
        head_json: &str,
        trail_json: &str,
    ) -> JsResult<String> {
        js((|| {
            let versions = parse_keyrings(keyring_json)?;
            let (state, manifest) = parse_head(head_json)?;
            let trail = parse_states(trail_json)?;
            let changed = self.ws.advance(&versions, &state, &manifest, &trail)?;
            Ok(json::array(
                changed.iter().map(|id| json::string(&id.to_hex())),
            ))
        })())
    }

    /// Pages to fetch: `[{page, hash}]` (fetch `/blobs/{hash}`, then [`WikiSession::load`]).
    pub fn wanted(&self) -> String {
        json::array(self.ws.wanted().iter().map(|(id, h)| {
            Obj::new()
                .str("page", &id.to_hex())
                .str("hash", &h.to_hex())
                .finish()
        }))
    }

    /// The manifest hash of a page (what to fetch it by), if it is in the signed manifest.
    #[wasm_bindgen(js_name = hashOf)]
    pub fn hash_of(&self, page: &str) -> Option<String> {
        let id = PageId::from_hex(page).ok()?;
        self.ws
            .snapshot()
            .manifest
            .pages
            .get(&id)
            .map(|e| e.hash.to_hex())
    }

    /// Verifies an envelope against the signed manifest and decrypts it (a page that breaks the
    /// rules is isolated: see [`WikiSession::isolated`]).
    pub fn load(&mut self, page: &str, envelope: &[u8]) -> JsResult<()> {
        js((|| {
            let id = page_id(page)?;
            self.ws.load(id, envelope)?;
            Ok(())
        })())
    }

    /// Verifies, decrypts and renders a page: the whole navigation step.
    pub fn view(&mut self, page: &str, envelope: &[u8]) -> JsResult<PageView> {
        js((|| {
            let id = page_id(page)?;
            self.ws.load(id, envelope)?;
            self.ws.record(&id)?;
            self.view_of(id)
        })())
    }

    /// Records that the server did not return a page the manifest lists.
    #[wasm_bindgen(js_name = markMissing)]
    pub fn mark_missing(&mut self, page: &str, detail: &str) {
        if let Ok(id) = PageId::from_hex(page) {
            self.ws.mark_missing(id, detail);
        }
    }

    /// The server's faults (envelopes that are not what the signed manifest lists):
    /// `[{page, message}]`.
    pub fn failures(&self) -> String {
        json::array(self.ws.failures().iter().map(|(id, m)| {
            Obj::new()
                .str("page", &id.to_hex())
                .str("message", m)
                .finish()
        }))
    }

    /// Pages a member wrote against the rules (a signed fact about that member, not the
    /// server's fault), left out of the wiki: `[{page, path, problem, signer, seq}]`, every
    /// text escaped for display; `signer` and `seq` are null until history says who wrote it.
    pub fn isolated(&self) -> String {
        json::array(self.ws.isolated().iter().map(|(id, iso)| {
            Obj::new()
                .str("page", &id.to_hex())
                .opt_str("path", iso.path.as_deref().map(shown).as_deref())
                .str("problem", &shown(&iso.problem))
                .opt_str(
                    "signer",
                    iso.written.as_ref().map(|w| shown(&w.signer)).as_deref(),
                )
                .opt_num("seq", iso.written.as_ref().map(|w| w.seq))
                .finish()
        }))
    }

    /// The states to fetch next to find who wrote the isolated (and clashing) pages: walks the
    /// verified history back from the head, `{"from", "to"}` or `null` when everything is
    /// attributed (or the first state was reached).
    #[wasm_bindgen(js_name = attributionWanted)]
    pub fn attribution_wanted(&mut self) -> JsResult<String> {
        js((|| {
            let head_seq = self.ws.head().seq();
            if self.ws.unattributed().is_empty()
                || self.attribution.is_none() && self.attributed_through == Some(head_seq)
            {
                self.attribution = None;
                return Ok(range_json(None));
            }
            let walk = self
                .attribution
                .get_or_insert_with(|| HistoryWalk::new(self.ws.head()).into_owned());
            match walk.needed() {
                Some(to) => Ok(range_json(Some(batch_ending_at(to)))),
                None => {
                    // At the first state: the step that made it, and the walk is over.
                    let step = walk.finish();
                    self.attribution = None;
                    self.attributed_through = Some(head_seq);
                    self.ws.attribute(&[step?]);
                    Ok(range_json(None))
                }
            }
        })())
    }

    /// Verifies a `/states` answer for [`WikiSession::attribution_wanted`]'s range (newest
    /// first, each the verified predecessor of the one after it) and records who wrote what.
    #[wasm_bindgen(js_name = attributionLoad)]
    pub fn attribution_load(&mut self, states_json: &str) -> JsResult<()> {
        js(parse_states(states_json).and_then(|states| self.attribute(&states)))
    }

    /// Every page of the catalog (markdown and attachments; not index records, not isolated
    /// pages), in no particular order (the page tree sorts): `[{id, path, kind, author,
    /// written_at, size, hash}]`.
    pub fn pages(&self) -> String {
        json::array(
            self.ws
                .catalog()
                .iter()
                .filter(|(_, p)| p.kind != PageKind::Index)
                .map(|(id, p)| entry_json(id, p)),
        )
    }

    /// The page tree's entries in tree order ([`names::tree_cmp`]: pages before folders):
    /// `[{id, path, kind, name}]`, `name` the title of a decrypted markdown page, else its file
    /// name as [`names::display_name`] shows it (an attachment's as written), escaped.
    pub fn tree(&self) -> String {
        let mut entries: Vec<_> = self
            .ws
            .catalog()
            .iter()
            .filter(|(_, p)| p.kind != PageKind::Index)
            .collect();
        entries.sort_by(|a, b| names::tree_cmp(&a.1.path, &b.1.path));
        json::array(entries.into_iter().map(|(id, p)| {
            let file = p.path.rsplit('/').next().unwrap_or_default();
            let name = if p.kind == PageKind::Markdown {
                self.ws
                    .page(id)
                    .and_then(|page| page.record.markdown())
                    .and_then(names::title)
                    .unwrap_or_else(|| names::display_name(file))
            } else {
                file.to_owned()
            };
            Obj::new()
                .str("id", &id.to_hex())
                .str("path", &p.path)
                .str("kind", kind_name(p.kind))
                .str("name", &shown(&name))
                .finish()
        }))
    }

    /// The pages that link to the page `page` ([`client::links`]' rule), among those decrypted
    /// in this tab: `[{id, path, name}]` in tree order, `name` as in [`WikiSession::tree`].
    pub fn backlinks(&self, page: &str) -> String {
        let Some(target) = self.path_of(page) else {
            return "[]".to_owned();
        };
        let catalog = self.ws.catalog();
        let markdown = || catalog.iter().filter(|(_, p)| p.kind == PageKind::Markdown);
        let index = client::links::PageIndex::new(markdown().map(|(_, p)| p.path.as_str()));
        let style = self.ws.wikilink_style();
        let mut from: Vec<_> = markdown()
            .filter(|(_, p)| p.path != target)
            .filter_map(|(id, p)| {
                let text = self.ws.page(id)?.record.markdown()?;
                (client::links::count_links_to(&index, style, &p.path, text, &target) > 0)
                    .then_some((id, p, text))
            })
            .collect();
        from.sort_by(|a, b| names::tree_cmp(&a.1.path, &b.1.path));
        json::array(from.into_iter().map(|(id, p, text)| {
            let file = p.path.rsplit('/').next().unwrap_or_default();
            let name = names::title(text).unwrap_or_else(|| names::display_name(file));
            Obj::new()
                .str("id", &id.to_hex())
                .str("path", &p.path)
                .str("name", &shown(&name))
                .finish()
        }))
    }

    /// Whether a page's current version is decrypted in memory.
    #[wasm_bindgen(js_name = isLoaded)]
    pub fn is_loaded(&self, page: &str) -> bool {
        PageId::from_hex(page).is_ok_and(|id| self.ws.is_loaded(&id))
    }

    /// The id of the page at `path` (exact, else the one it clashes with up to case and Unicode
    /// form).
    pub fn find(&self, path: &str) -> Option<String> {
        self.ws.find(path).map(|id| id.to_hex())
    }

    /// The path of a live page (e.g. after a rename, where to go).
    #[wasm_bindgen(js_name = pathOf)]
    pub fn path_of(&self, page: &str) -> Option<String> {
        let id = PageId::from_hex(page).ok()?;
        self.ws.catalog().get(&id).map(|p| p.path.clone())
    }

    /// The bytes of a decrypted attachment (for download, or an inline image).
    #[wasm_bindgen(js_name = attachmentBytes)]
    pub fn attachment_bytes(&self, page: &str) -> Option<Vec<u8>> {
        let id = PageId::from_hex(page).ok()?;
        self.ws
            .page(&id)
            .filter(|p| p.record.kind == PageKind::Attachment)
            .map(|p| p.record.content.clone())
    }

    /// The markdown of a decrypted page (for the editor).
    pub fn text(&self, page: &str) -> Option<String> {
        let id = PageId::from_hex(page).ok()?;
        self.ws
            .page(&id)
            .and_then(|p| p.record.markdown())
            .map(str::to_owned)
    }

    /// Renders text as the page at `path` would show (edit preview): `{html, title}`.
    pub fn preview(&self, path: &str, text: &str) -> String {
        let r = self.render(path, text);
        Obj::new()
            .str("html", &r.html)
            .opt_str("title", r.title.as_deref())
            .finish()
    }

    /// Searches the wiki the way every client does ([`Workspace::search`]):
    /// `[{page, path, snippet: [[text, is_match]…], score}]`.
    pub fn search(&self, query: &str, limit: u32) -> String {
        wire::to_json(&self.ws.search(query, limit as usize))
    }

    /// Prepares a page write. `page` is `""` for a new page; `path` the path it gets (a new
    /// markdown page's from [`markdown_path`]); `base` the hash the editor started from (`""`
    /// for none); `message` the optional note on the change (`""` for none; kept encrypted in
    /// the version, shown in its history). Throws `ConflictError` when the page changed since
    /// `base`, `InputError` for a path the policy refuses or one that is taken.
    #[wasm_bindgen(js_name = preparePut)]
    pub fn prepare_put(
        &self,
        page: &str,
        path: &str,
        text: &str,
        base: &str,
        now_ms: f64,
        message: &str,
    ) -> JsResult<PendingWrite> {
        js((|| {
            let base = if base.is_empty() {
                None
            } else {
                Some(Digest32::from_hex(base)?)
            };
            let p = self.ws.prepare_put_with(
                opt_page(page)?,
                path,
                text.as_bytes().to_vec(),
                base,
                now_ms as i64,
                note(message),
            )?;
            Ok(self.pending(p))
        })())
    }

    /// Prepares writing a file's bytes as an attachment at `path` (from [`upload_path`]): `page`
    /// is the attachment it replaces (`""` for a new one), `base` that one's hash (`""`).
    #[wasm_bindgen(js_name = preparePutBytes)]
    pub fn prepare_put_bytes(
        &self,
        page: &str,
        path: &str,
        bytes: Vec<u8>,
        base: &str,
        now_ms: f64,
    ) -> JsResult<PendingWrite> {
        js((|| {
            let base = if base.is_empty() {
                None
            } else {
                Some(Digest32::from_hex(base)?)
            };
            let p = self
                .ws
                .prepare_put(opt_page(page)?, path, bytes, base, now_ms as i64)?;
            Ok(self.pending(p))
        })())
    }

    /// The attachments of the page at `path` ([`attachments::of_page`]): `[{id, path, size}]`.
    #[wasm_bindgen(js_name = attachmentsOf)]
    pub fn attachments_of(&self, path: &str) -> String {
        let catalog = self.ws.catalog();
        let files = attachments::of_page(catalog.values().map(|p| (p.path.as_str(), p.kind)), path);
        json::array(files.into_iter().filter_map(|file| {
            let (id, p) = catalog.iter().find(|(_, p)| p.path == file)?;
            Some(entry_json(id, p))
        }))
    }

    /// Prepares a rename to what the user typed (the page keeps its id and history): a markdown
    /// page's new path is [`markdown_path`] of it. With `update_links`, the links to it in the
    /// pages that link to it are rewritten in the same commit (the client core's rule; every
    /// page must be decrypted first, else `NotLoadedError` names one).
    #[wasm_bindgen(js_name = prepareRename)]
    pub fn prepare_rename(
        &self,
        page: &str,
        typed: &str,
        now_ms: f64,
        update_links: bool,
    ) -> JsResult<PendingWrite> {
        js((|| {
            let id = page_id(page)?;
            let new_path = match self.ws.kind_of(&id) {
                Some(PageKind::Markdown) => policy::markdown_path(typed),
                _ => typed.trim().to_owned(),
            };
            let p = if update_links {
                let note = VersionNote::default();
                self.ws
                    .prepare_rename_updating_links(id, &new_path, now_ms as i64, note)?
                    .0
            } else {
                self.ws.prepare_rename(id, &new_path, now_ms as i64)?
            };
            Ok(self.pending(p))
        })())
    }

    /// Prepares deleting a page (an isolated one too: how a writer clears it).
    #[wasm_bindgen(js_name = prepareDelete)]
    pub fn prepare_delete(&self, page: &str, now_ms: f64) -> JsResult<PendingWrite> {
        js(page_id(page)
            .and_then(|id| self.ws.prepare_delete(id, now_ms as i64))
            .map(|p| self.pending(p)))
    }

    /// Applies a write the server accepted (answer 200).
    pub fn accept(&mut self, pending: &mut PendingWrite) -> JsResult<()> {
        js((|| {
            let p = pending
                .pending
                .take()
                .ok_or_else(|| Error::input("this write was already applied"))?;
            self.ws.accept(p)
        })())
    }

    /// Starts the verified history of a page, newest version first, up to `limit` versions
    /// (see [`crate::history::PageHistory`]); with `page` `""`, the wiki's changelog: the page
    /// versions of every step (the search index and settings records left out).
    #[wasm_bindgen(js_name = pageHistory)]
    pub fn page_history(&self, page: &str, limit: u32) -> JsResult<crate::history::PageHistory> {
        let limit = limit as usize;
        js(if page.is_empty() {
            let manifest = &self.ws.snapshot().manifest;
            let skip = manifest.pages.keys().filter(|id| self.ws.is_index_page(id));
            crate::history::PageHistory::changes(self.ws.head(), skip.copied().collect(), limit)
        } else {
            page_id(page)
                .and_then(|id| crate::history::PageHistory::start(self.ws.head(), id, limit))
        })
    }

    /// Decrypts a version of a page's history (of `page` in a changelog; `""` in a page's own
    /// history): the envelope must be the one the verified step signed. JSON `{seq, signer,
    /// path, author, claim, written_at, kind, message, email, text}`; `claim` is the record's
    /// author when it is not the signer (escaped).
    #[wasm_bindgen(js_name = openVersion)]
    pub fn open_version(
        &self,
        history: &crate::history::PageHistory,
        seq: f64,
        page: &str,
        envelope: &[u8],
    ) -> JsResult<String> {
        js(opt_page(page).and_then(|p| history.open(self.ws.keys(), seq as u64, p, envelope)))
    }

    /// The members: `[{name, kind, role, fingerprint, folder, me}]` (names escaped).
    pub fn members(&self) -> String {
        json::array(self.ws.members().into_iter().map(|m| {
            Obj::new()
                .str("name", &shown(&m.name))
                .str("kind", m.kind)
                .str("role", m.role)
                .str("fingerprint", &m.fingerprint)
                .opt_str("folder", m.folder.as_deref().map(shown).as_deref())
                .bool("me", m.me)
                .finish()
        }))
    }

    /// Prepares inviting a user (`/users/{name}` answer) with `role`. `fingerprint` is the one
    /// the owner confirmed; it must match the keys being added.
    #[wasm_bindgen(js_name = prepareInvite)]
    pub fn prepare_invite(
        &self,
        user_json: &str,
        role_name: &str,
        fingerprint: &str,
        now_ms: f64,
    ) -> JsResult<PendingWrite> {
        js((|| {
            let (user, public) = parse_user(user_json)?;
            if public.fingerprint() != fingerprint.trim() {
                return Err(Error::input(
                    "the fingerprint you confirmed is not the one of these keys",
                ));
            }
            let p = self
                .ws
                .add_member(
                    &user,
                    MemberKind::Person,
                    role(role_name)?,
                    public,
                    "",
                    now_ms as i64,
                )?
                .finish(IndexWrite::WhenDue)?;
            Ok(self.pending(p))
        })())
    }

    /// Prepares granting a new agent key (`reader` or `writer`): a fresh identity made here,
    /// added to the keyring. After the server accepts, create its token and call
    /// [`PendingWrite::agent_key_file`].
    #[wasm_bindgen(js_name = prepareAgent)]
    pub fn prepare_agent(
        &self,
        name: &str,
        role_name: &str,
        now_ms: f64,
    ) -> JsResult<PendingWrite> {
        js((|| {
            let agent = UserIdentity::make(&mut OsRng);
            let role = role(role_name)?;
            let name = name.trim();
            let p = self
                .ws
                .add_member(
                    name,
                    MemberKind::Agent,
                    role,
                    agent.public(),
                    "",
                    now_ms as i64,
                )?
                .finish(IndexWrite::WhenDue)?;
            let mut w = self.pending(p);
            w.agent = Some((name.to_owned(), role, agent));
            Ok(w)
        })())
    }

    /// Prepares removing a member (a new key epoch). The result's `report` says what the member
    /// could have read.
    #[wasm_bindgen(js_name = prepareRemove)]
    pub fn prepare_remove(&self, name: &str, now_ms: f64) -> JsResult<PendingWrite> {
        js((|| {
            let (draft, report) = self.ws.remove_member(name, now_ms as i64)?;
            let mut w = self.pending(draft.finish(IndexWrite::WhenDue)?);
            w.report = Some(report);
            Ok(w)
        })())
    }

    /// Prepares changing a member's role.
    #[wasm_bindgen(js_name = prepareSetRole)]
    pub fn prepare_set_role(
        &self,
        name: &str,
        role_name: &str,
        now_ms: f64,
    ) -> JsResult<PendingWrite> {
        js((|| {
            let p = self
                .ws
                .set_role(name, role(role_name)?, now_ms as i64)?
                .finish(IndexWrite::WhenDue)?;
            Ok(self.pending(p))
        })())
    }
}

/// A signed write waiting for the server's answer.
#[wasm_bindgen]
pub struct PendingWrite {
    pending: Option<Pending>,
    body: String,
    page: Option<String>,
    report: Option<RevocationReport>,
    agent: Option<(String, Role, UserIdentity)>,
}

impl PendingWrite {
    fn new(p: Pending) -> Self {
        Self {
            body: wire::to_json(&p.body()),
            page: p.page.map(|id| id.to_hex()),
            pending: Some(p),
            report: None,
            agent: None,
        }
    }
}

#[wasm_bindgen]
impl PendingWrite {
    /// The `POST /commits` body.
    #[wasm_bindgen(getter)]
    pub fn body(&self) -> String {
        self.body.clone()
    }

    /// The page written, if one.
    #[wasm_bindgen(getter)]
    pub fn page(&self) -> Option<String> {
        self.page.clone()
    }

    /// For a removal: `{name, epochs_readable, scope, pages, pages_readable, new_epoch}` (the
    /// client core's one revocation report; names escaped).
    #[wasm_bindgen(getter)]
    pub fn report(&self) -> Option<String> {
        self.report.as_ref().map(|r| {
            Obj::new()
                .str("name", &shown(&r.name))
                .num("epochs_readable", r.epochs_readable)
                .str("scope", &shown(&r.scope))
                .raw(
                    "pages",
                    &json::array(r.pages.iter().map(|p| json::string(&shown(p)))),
                )
                .num("pages_readable", r.pages.len())
                .num("new_epoch", r.new_epoch)
                .finish()
        })
    }

    /// For an agent grant: the agent key file, in the client core's one format
    /// (`client::keyfile`, which `zkwiki agent grant` writes and `zkwiki mcp --key FILE` reads),
    /// compact (the page indents it). Secret: shown once, then dropped.
    #[wasm_bindgen(js_name = agentKeyFile)]
    pub fn agent_key_file(
        &self,
        server: &str,
        wiki: &str,
        token: &str,
        expires_at: f64,
    ) -> JsResult<String> {
        js((|| {
            let (name, role, id) = self
                .agent
                .as_ref()
                .ok_or_else(|| Error::input("this write does not grant an agent"))?;
            let access = client::keyfile::AgentAccess {
                wiki: wiki.to_owned(),
                token: token.to_owned(),
                role: if role.can_write() { "write" } else { "read" }.to_owned(),
                prefix: String::new(),
                expires_at: expires_at as i64,
            };
            let file = client::keyfile::KeyFile::new(name, Some(server), id, Some(access), None)?;
            Ok(wire::to_json(&file))
        })())
    }
}

/// A line diff between two texts (history): `{hunks: [[{tag, old, new, text}]], added, removed}`.
#[wasm_bindgen(js_name = diffLines)]
pub fn diff_lines(old: &str, new: &str) -> String {
    wire::to_json(&client::merge::line_diff(old, new, 3))
}

/// A three-way merge after a conflict: `{text, conflicts}`; conflicting regions keep both sides
/// between markers.
#[wasm_bindgen(js_name = mergeTexts)]
pub fn merge_texts(base: &str, ours: &str, theirs: &str, theirs_label: &str) -> String {
    wire::to_json(&client::merge::merge(
        base,
        ours,
        theirs,
        "your version",
        theirs_label,
    ))
}

/// The note of a version written in the browser: the message typed on save (trimmed; none
/// when empty, and the record stays version 1).
fn note(message: &str) -> VersionNote {
    VersionNote {
        message: message.trim().to_owned(),
        ..VersionNote::default()
    }
}

/// The `POST /api/v1/prelogin` body for `user` (the passphrase protector).
#[wasm_bindgen(js_name = preloginBody)]
pub fn prelogin_body(user: &str) -> String {
    wire::to_json(&wire::PreloginRequest {
        user: user.trim().to_owned(),
        protector: None,
        kms_key: None,
    })
}

/// The `POST /api/v1/wikis/{wiki}/tokens` body: a token for the agent `name` with `role`
/// (`read` or `write`), expiring in `expires_in` seconds.
#[wasm_bindgen(js_name = newTokenBody)]
pub fn new_token_body(name: &str, role: &str, expires_in: f64) -> String {
    wire::to_json(&wire::NewTokenRequest {
        name: name.to_owned(),
        role: role.to_owned(),
        expires_in: expires_in as u64,
    })
}

/// The path a new markdown page gets from what a person typed (`Projects/Plan` →
/// `Projects/Plan.md`): the rule every client uses ([`policy::markdown_path`]).
#[wasm_bindgen(js_name = markdownPath)]
pub fn markdown_path(typed: &str) -> String {
    policy::markdown_path(typed)
}

/// Where a file uploaded to the page at `page_path` is stored ([`attachments::upload_path`]);
/// throws `InputError` with the reason for a name the path policy refuses.
#[wasm_bindgen(js_name = uploadPath)]
pub fn upload_path(page_path: &str, file_name: &str) -> JsResult<String> {
    js(attachments::upload_path(page_path, file_name))
}

/// A folder's (or an untitled page's) name as trees and breadcrumbs show it
/// ([`names::display_name`]), escaped.
#[wasm_bindgen(js_name = displayName)]
pub fn display_name(segment: &str) -> String {
    shown(&names::display_name(segment))
}

/// Untrusted text (a name from the server, an author) made safe to show: control, bidirectional
/// and invisible characters become visible escapes ([`client::display::escape`]).
#[wasm_bindgen(js_name = escapeText)]
pub fn escape_text(text: &str) -> String {
    shown(text)
}

/// What a server's error answer means, in the classification every client uses
/// ([`client::wire::server_error`]): `{name, message, hint}` (`name` as the bindings' errors).
#[wasm_bindgen(js_name = classifyServerError)]
pub fn classify_server_error(status: u16, body: &[u8]) -> String {
    let e = wire::server_error(status, body);
    Obj::new()
        .str("name", crate::js::js_name(e.kind))
        .str("message", &e.message)
        .opt_str("hint", e.hint.as_deref())
        .finish()
}

/// The format versions this build reads, so the page can show what it runs.
#[wasm_bindgen(js_name = formatVersion)]
pub fn format_version() -> String {
    "zkwiki formats v1".to_owned()
}

// Natively only: it plays a hostile member with `core-crypto`'s test support.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
