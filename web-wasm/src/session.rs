//! Bindings: one open wiki ([`WikiSession`]) and the writes prepared on it ([`PendingWrite`]).
//!
//! JavaScript fetches; these methods take the answers as they came (JSON text, envelope bytes),
//! run every check in `core_crypto` through [`Workspace`], and hand back JSON for the DOM or
//! request bodies to send. Nothing here does I/O.

use core_crypto::envelope::PageKind;
use core_crypto::identity::{PublicIdentity, UserIdentity};
use core_crypto::ids::{Digest32, PageId};
use core_crypto::index::IndexedPage;
use core_crypto::keyring::{MemberKind, Role, Seen};
use core_crypto::snapshot::SeenRecord;
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_bindgen::prelude::*;

use crate::api::{self, b64, unb64};
use crate::error::{AppError, AppResult};
use crate::js::{JsResult, js};
use crate::workspace::{Page, Pending, RevocationReport, Workspace};

#[derive(Serialize, Deserialize)]
struct SeenJson {
    seq: u64,
    hash: String,
}

#[derive(Serialize, Deserialize, Default)]
struct SeenRecordJson {
    keyring: Option<SeenJson>,
    state: Option<SeenJson>,
}

fn seen_from(j: Option<SeenJson>) -> AppResult<Option<Seen>> {
    j.map(|s| {
        Ok(Seen {
            seq: s.seq,
            hash: Digest32::from_hex(&s.hash)?,
        })
    })
    .transpose()
}

/// Parses what the browser remembered about a wiki (`""` for nothing).
pub fn parse_seen(json: &str) -> AppResult<SeenRecord> {
    if json.trim().is_empty() {
        return Ok(SeenRecord::default());
    }
    let r: SeenRecordJson = serde_json::from_str(json)
        .map_err(|_| AppError::input("the remembered wiki version on this device is unreadable"))?;
    Ok(SeenRecord {
        keyring: seen_from(r.keyring)?,
        state: seen_from(r.state)?,
    })
}

fn seen_json(r: &SeenRecord) -> String {
    let f = |s: Option<Seen>| {
        s.map(|s| SeenJson {
            seq: s.seq,
            hash: s.hash.to_hex(),
        })
    };
    api::to_json(&SeenRecordJson {
        keyring: f(r.keyring),
        state: f(r.state),
    })
}

/// Parses a `/users/{name}` answer into public keys.
pub fn parse_user(json: &str) -> AppResult<PublicIdentity> {
    let resp: api::UserResponse = api::parse(json, "user answer")?;
    let key = |v: &str, what: &str| -> AppResult<[u8; 32]> {
        unb64(v, what)?
            .try_into()
            .map_err(|_| AppError::protocol(&format!("{what} is not 32 bytes")))
    };
    Ok(PublicIdentity {
        x25519: key(&resp.x25519, "x25519")?,
        ed25519: key(&resp.ed25519, "ed25519")?,
    })
}

fn page_id(hex: &str) -> AppResult<PageId> {
    Ok(PageId::from_hex(hex)?)
}

fn opt_page(hex: &str) -> AppResult<Option<PageId>> {
    if hex.is_empty() {
        Ok(None)
    } else {
        page_id(hex).map(Some)
    }
}

fn role(name: &str) -> AppResult<Role> {
    Ok(Role::from_name(name)?)
}

fn kind_name(kind: PageKind) -> &'static str {
    match kind {
        PageKind::Markdown => "markdown",
        PageKind::Attachment => "attachment",
        PageKind::Index => "index",
    }
}

fn page_json(id: &PageId, p: &Page) -> serde_json::Value {
    json!({
        "id": id.to_hex(),
        "path": p.record.path,
        "kind": kind_name(p.record.kind),
        "author": p.record.author,
        "written_at": p.record.written_at_ms,
        "size": p.record.content.len(),
        "hash": p.hash.to_hex(),
    })
}

fn entry_json(id: &PageId, p: &IndexedPage) -> serde_json::Value {
    json!({
        "id": id.to_hex(),
        "path": p.path,
        "kind": kind_name(p.kind),
        "author": p.author,
        "written_at": p.written_at_ms,
        "size": p.size,
        "hash": p.hash.to_hex(),
    })
}

/// An open, verified wiki.
#[wasm_bindgen]
pub struct WikiSession {
    ws: Workspace,
}

impl WikiSession {
    /// Wraps a workspace.
    pub fn new(ws: Workspace) -> Self {
        Self { ws }
    }

    /// The workspace (tests).
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    fn view_of(&self, id: PageId) -> AppResult<PageView> {
        let p = self
            .ws
            .pages()
            .get(&id)
            .filter(|_| self.ws.is_loaded(&id))
            .ok_or_else(|| AppError::input("that page is not loaded"))?;
        let mut v = page_json(&id, p);
        let mut html = String::new();
        let mut rest = String::new();
        if p.record.kind == PageKind::Markdown {
            let text = p.record.markdown().unwrap_or_default();
            let r = self.ws.render(&p.record.path, text);
            v["title"] = r.title.into();
            html = r.html;
            // The fold is between two top-level blocks, so both halves are whole elements.
            if r.fold < html.len() && html.is_char_boundary(r.fold) {
                rest = html.split_off(r.fold);
            }
        } else {
            v["media"] = attachment_type(&p.record.content).into();
        }
        Ok(PageView {
            meta: v.to_string(),
            html,
            rest,
        })
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
    /// The page's fields as JSON: `{id, path, kind, author, written_at, size, hash}` plus `title`
    /// (markdown) or `media` (attachments).
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

/// The MIME type of an attachment the app may show inline (`data:` URL images: raster formats
/// only, recognised by their magic bytes, never SVG), else `None`.
fn attachment_type(bytes: &[u8]) -> Option<&'static str> {
    const KINDS: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
    ];
    KINDS
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map(|(_, t)| *t)
        .or_else(|| {
            (bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP")
                .then_some("image/webp")
        })
}

#[wasm_bindgen]
impl WikiSession {
    /// The wiki id.
    #[wasm_bindgen(getter)]
    pub fn wiki(&self) -> String {
        self.ws.wiki().to_hex()
    }

    /// A summary: `{wiki, seq, epoch, keyring_seq, role, members, pages, signer}`.
    pub fn info(&self) -> String {
        let s = self.ws.snapshot();
        json!({
            "wiki": self.ws.wiki().to_hex(),
            "seq": s.state.seq,
            "epoch": s.keyring.epoch,
            "keyring_seq": s.keyring.seq,
            "role": self.ws.my_role().map(Role::name),
            "members": s.keyring.members.len(),
            "pages": s.manifest.pages.len(),
            "signer": self.ws.head_signer(),
        })
        .to_string()
    }

    /// What to remember in this browser for rollback and fork detection (not secret).
    #[wasm_bindgen(js_name = seenJson)]
    pub fn seen_json(&self) -> String {
        seen_json(&self.ws.seen())
    }

    /// Checks a newer head (`/keyring?since=N` answer and `/head` answer, e.g. from a 409) and
    /// returns the ids of pages that changed, as JSON.
    pub fn refresh(&mut self, keyring_json: &str, head_json: &str) -> JsResult<String> {
        js((|| {
            let versions: api::KeyringResponse = if keyring_json.trim().is_empty() {
                api::KeyringResponse {
                    versions: Vec::new(),
                }
            } else {
                api::parse(keyring_json, "keyring answer")?
            };
            let versions = versions
                .versions
                .iter()
                .map(|v| unb64(v, "keyring version"))
                .collect::<AppResult<Vec<_>>>()?;
            let head: api::HeadResponse = api::parse(head_json, "head answer")?;
            let changed = self.ws.refresh(
                &versions,
                &unb64(&head.state, "state")?,
                &unb64(&head.manifest, "manifest")?,
            )?;
            Ok(json!(changed.iter().map(PageId::to_hex).collect::<Vec<_>>()).to_string())
        })())
    }

    /// The keyring sequence this session holds (for `/keyring?since=`).
    #[wasm_bindgen(getter, js_name = keyringSeq)]
    pub fn keyring_seq(&self) -> f64 {
        self.ws.snapshot().keyring.seq as f64
    }

    /// Pages to fetch: `[{page, hash}]` (fetch `/blobs/{hash}`).
    pub fn wanted(&self) -> String {
        let list: Vec<_> = self
            .ws
            .wanted()
            .iter()
            .map(|(id, h)| json!({"page": id.to_hex(), "hash": h.to_hex()}))
            .collect();
        json!(list).to_string()
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

    /// Verifies an envelope against the signed manifest and decrypts it.
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
            self.view_of(id)
        })())
    }

    /// Renders an already decrypted page (as [`WikiSession::view`]).
    #[wasm_bindgen(js_name = viewLoaded)]
    pub fn view_loaded(&self, page: &str) -> JsResult<PageView> {
        js(page_id(page).and_then(|id| self.view_of(id)))
    }

    /// Records that the server did not return a page the manifest lists.
    #[wasm_bindgen(js_name = markMissing)]
    pub fn mark_missing(&mut self, page: &str, detail: &str) {
        if let Ok(id) = PageId::from_hex(page) {
            self.ws.mark_missing(id, detail);
        }
    }

    /// Pages that failed a check: `[{page, message}]`.
    pub fn failures(&self) -> String {
        let list: Vec<_> = self
            .ws
            .failures()
            .iter()
            .map(|(id, m)| json!({"page": id.to_hex(), "message": m}))
            .collect();
        json!(list).to_string()
    }

    /// Every page of the catalog (markdown and attachments; not index records), sorted by path:
    /// `[{id, path, kind, author, written_at, size, hash}]`.
    pub fn pages(&self) -> String {
        let mut list: Vec<_> = self
            .ws
            .catalog()
            .iter()
            .filter(|(_, p)| p.kind != PageKind::Index)
            .collect();
        list.sort_by(|a, b| a.1.path.cmp(&b.1.path));
        json!(
            list.iter()
                .map(|(id, p)| entry_json(id, p))
                .collect::<Vec<_>>()
        )
        .to_string()
    }

    /// Whether a page's current version is decrypted in memory.
    #[wasm_bindgen(js_name = isLoaded)]
    pub fn is_loaded(&self, page: &str) -> bool {
        PageId::from_hex(page).is_ok_and(|id| self.ws.is_loaded(&id))
    }

    /// The id of the page at `path` (case-insensitive fallback).
    pub fn find(&self, path: &str) -> Option<String> {
        self.ws.find(path).map(|id| id.to_hex())
    }

    /// The bytes of a decrypted attachment (for download, or an inline image).
    #[wasm_bindgen(js_name = attachmentBytes)]
    pub fn attachment_bytes(&self, page: &str) -> Option<Vec<u8>> {
        let id = PageId::from_hex(page).ok()?;
        self.ws
            .pages()
            .get(&id)
            .filter(|p| p.record.kind == PageKind::Attachment)
            .map(|p| p.record.content.clone())
    }

    /// The markdown of a decrypted page (for the editor).
    pub fn text(&self, page: &str) -> Option<String> {
        let id = PageId::from_hex(page).ok()?;
        self.ws
            .pages()
            .get(&id)
            .and_then(|p| p.record.markdown())
            .map(str::to_owned)
    }

    /// Renders text as the page at `path` would show (edit preview): `{html, title}`.
    pub fn preview(&self, path: &str, text: &str) -> String {
        let r = self.ws.render(path, text);
        json!({"html": r.html, "title": r.title}).to_string()
    }

    /// Searches decrypted pages: `[{path, snippet: [[text, is_match]…], score}]`.
    pub fn search(&self, query: &str, limit: u32) -> String {
        api::to_json(&self.ws.search(query, limit as usize))
    }

    /// Prepares a page write. `page` is `""` for a new page; `base` the hash the editor started
    /// from (`""` for none). Throws `ConflictError` when the page changed since `base`.
    #[wasm_bindgen(js_name = preparePut)]
    pub fn prepare_put(
        &self,
        page: &str,
        path: &str,
        text: &str,
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
                .prepare_put(opt_page(page)?, path.trim(), text, base, now_ms as i64)?;
            Ok(PendingWrite::new(p))
        })())
    }

    /// Prepares a rename (the page keeps its id and history).
    #[wasm_bindgen(js_name = prepareRename)]
    pub fn prepare_rename(
        &self,
        page: &str,
        new_path: &str,
        now_ms: f64,
    ) -> JsResult<PendingWrite> {
        js((|| {
            let p = self
                .ws
                .prepare_rename(page_id(page)?, new_path.trim(), now_ms as i64)?;
            Ok(PendingWrite::new(p))
        })())
    }

    /// Prepares deleting a page.
    #[wasm_bindgen(js_name = prepareDelete)]
    pub fn prepare_delete(&self, page: &str, now_ms: f64) -> JsResult<PendingWrite> {
        js(page_id(page)
            .and_then(|id| self.ws.prepare_delete(id, now_ms as i64))
            .map(PendingWrite::new))
    }

    /// Applies a write the server accepted (answer 200).
    pub fn accept(&mut self, pending: &mut PendingWrite) -> JsResult<()> {
        js((|| {
            let p = pending
                .pending
                .take()
                .ok_or_else(|| AppError::input("this write was already applied"))?;
            self.ws.accept(p)
        })())
    }

    /// Verifies and decrypts an older version: `state_json` is the `/states/{seq}` answer and
    /// `envelope` the blob that history entry names. JSON `{seq, signer, path, author,
    /// written_at, text}`.
    #[wasm_bindgen(js_name = openVersion)]
    pub fn open_version(&self, page: &str, state_json: &str, envelope: &[u8]) -> JsResult<String> {
        js((|| {
            let head: api::HeadResponse = api::parse(state_json, "state answer")?;
            let v = self.ws.open_version(
                page_id(page)?,
                &unb64(&head.state, "state")?,
                &unb64(&head.manifest, "manifest")?,
                envelope,
            )?;
            Ok(json!({
                "seq": v.seq,
                "signer": v.signer,
                "path": v.record.path,
                "author": v.record.author,
                "written_at": v.record.written_at_ms,
                "text": v.record.markdown().unwrap_or_default(),
            })
            .to_string())
        })())
    }

    /// The members: `[{name, kind, role, fingerprint, folder, me}]`.
    pub fn members(&self) -> String {
        let list: Vec<_> = self
            .ws
            .members()
            .into_iter()
            .map(|m| {
                json!({"name": m.name, "kind": m.kind, "role": m.role,
                       "fingerprint": m.fingerprint, "folder": m.folder, "me": m.me})
            })
            .collect();
        json!(list).to_string()
    }

    /// Prepares inviting a user (`/users/{name}` answer) with `role`. `fingerprint` is the one
    /// the owner confirmed; it must match the keys being added.
    #[wasm_bindgen(js_name = prepareInvite)]
    pub fn prepare_invite(
        &self,
        user_json: &str,
        role_name: &str,
        fingerprint: &str,
    ) -> JsResult<PendingWrite> {
        js((|| {
            let public = parse_user(user_json)?;
            let resp: api::UserResponse = api::parse(user_json, "user answer")?;
            if public.fingerprint() != fingerprint.trim() {
                return Err(AppError::input(
                    "the fingerprint you confirmed is not the one of these keys",
                ));
            }
            let p = self.ws.prepare_add_member(
                &resp.user,
                MemberKind::Person,
                role(role_name)?,
                public,
            )?;
            Ok(PendingWrite::new(p))
        })())
    }

    /// Prepares granting a new agent key (`read` or `write`): a fresh identity made here, added
    /// to the keyring. After the server accepts, create its token and call
    /// [`PendingWrite::agent_key_file`].
    #[wasm_bindgen(js_name = prepareAgent)]
    pub fn prepare_agent(&self, name: &str, role_name: &str) -> JsResult<PendingWrite> {
        js((|| {
            let agent = UserIdentity::make(&mut OsRng);
            let role = role(role_name)?;
            if role == Role::Owner {
                return Err(AppError::input("an agent can be a reader or a writer"));
            }
            let p =
                self.ws
                    .prepare_add_member(name.trim(), MemberKind::Agent, role, agent.public())?;
            let mut w = PendingWrite::new(p);
            w.agent = Some((name.trim().to_owned(), role, agent));
            Ok(w)
        })())
    }

    /// Prepares removing a member (a new key epoch). The result's `report` says what the member
    /// could have read.
    #[wasm_bindgen(js_name = prepareRemove)]
    pub fn prepare_remove(&self, name: &str) -> JsResult<PendingWrite> {
        js((|| {
            let (p, report) = self.ws.prepare_remove_member(name)?;
            let mut w = PendingWrite::new(p);
            w.report = Some(report);
            Ok(w)
        })())
    }

    /// Prepares changing a member's role.
    #[wasm_bindgen(js_name = prepareSetRole)]
    pub fn prepare_set_role(&self, name: &str, role_name: &str) -> JsResult<PendingWrite> {
        js(role(role_name)
            .and_then(|r| self.ws.prepare_set_role(name, r))
            .map(PendingWrite::new))
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
        let c = p.commit();
        let body = api::to_json(&api::CommitRequest {
            state: b64(c.state.as_bytes()),
            manifest: b64(&c.manifest.encode()),
            blobs: c.blobs.iter().map(|b| b64(b)).collect(),
            keyring: c.keyring.as_ref().map(|k| b64(k.as_bytes())),
        });
        Self {
            page: p.page.map(|id| id.to_hex()),
            pending: Some(p),
            body,
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

    /// For a removal: `{name, epochs_readable, pages_readable, new_epoch}`.
    #[wasm_bindgen(getter)]
    pub fn report(&self) -> Option<String> {
        self.report.as_ref().map(|r| {
            json!({"name": r.name, "epochs_readable": r.epochs_readable,
                   "pages_readable": r.pages_readable, "new_epoch": r.new_epoch})
            .to_string()
        })
    }

    /// For an agent grant: the agent key file, in the CLI's format (`zkwiki agent grant` writes
    /// the same; `zkwiki mcp --key FILE` reads it). Secret: shown once, then dropped.
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
                .ok_or_else(|| AppError::input("this write does not grant an agent"))?;
            let secret = id.to_secret_bytes();
            let file = json!({
                "zkwiki_key_file": 1,
                "user": name,
                "server": server,
                "secret": b64(secret.as_ref()),
                "fingerprint": id.public().fingerprint(),
                "age_identity": id.age_identity_string()?.as_str(),
                "agent": {
                    "wiki": wiki,
                    "token": token,
                    "role": if role.can_write() { "write" } else { "read" },
                    "prefix": "",
                    "expires_at": expires_at as i64,
                },
            });
            Ok(serde_json::to_string_pretty(&file).unwrap_or_else(|_| file.to_string()))
        })())
    }
}

/// A line diff between two texts (history): `{hunks: [[{tag, old, new, text}]], added, removed}`.
#[wasm_bindgen(js_name = diffLines)]
pub fn diff_lines(old: &str, new: &str) -> String {
    api::to_json(&crate::diff::line_diff(old, new, 3))
}

/// A three-way merge after a conflict: `{text, conflicts}`; conflicting regions keep both sides
/// between markers.
#[wasm_bindgen(js_name = mergeTexts)]
pub fn merge_texts(base: &str, ours: &str, theirs: &str, theirs_label: &str) -> String {
    api::to_json(&crate::diff::merge(
        base,
        ours,
        theirs,
        "your version",
        theirs_label,
    ))
}

/// The format versions this build reads, so the page can show what it runs.
#[wasm_bindgen(js_name = formatVersion)]
pub fn format_version() -> String {
    "zkwiki formats v1".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_images_are_shown_inline() {
        assert_eq!(attachment_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(attachment_type(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(attachment_type(b"GIF89a.."), Some("image/gif"));
        assert_eq!(attachment_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(attachment_type(b"<svg onload=alert(1)>"), None);
        assert_eq!(attachment_type(b"%PDF-1.7"), None);
    }

    #[test]
    fn seen_records_round_trip() {
        let r = SeenRecord {
            keyring: Some(Seen {
                seq: 2,
                hash: Digest32([7; 32]),
            }),
            state: None,
        };
        assert_eq!(parse_seen(&seen_json(&r)).unwrap(), r);
        assert_eq!(parse_seen("").unwrap(), SeenRecord::default());
        assert!(parse_seen("{\"state\":{\"seq\":1,\"hash\":\"zz\"}}").is_err());
    }
}
