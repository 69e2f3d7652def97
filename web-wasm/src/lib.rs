//! zkwiki in the browser: a driver of the client core (`client`).
//!
//! Everything that touches keys or plaintext runs here, compiled to WebAssembly; the JavaScript in
//! `static/` only moves bytes between `fetch` and these functions and puts HTML into the DOM.
//! Every trust rule (verifying heads and trails, history, the path policy, isolating what a
//! member wrote against the rules, writes, merges, search) is the client core's; this crate
//! converts inputs and outputs and renders:
//!
//! - [`render`] turns markdown into HTML that is safe by construction ([`links`] decides every URL);
//! - the `#[wasm_bindgen]` modules ([`account`], [`session`], [`history`]) are thin bindings over
//!   `core_crypto` and [`client::Workspace`]; [`js`] names the core's error kinds for JavaScript.

pub mod account;
pub mod frontmatter;
pub mod history;
pub mod html;
pub mod js;
pub mod json;
pub mod links;
pub mod render;
pub mod session;

/// Makes the client core's path-clash rule use the browser's own Unicode NFC
/// (`String.prototype.normalize`) instead of tables compiled into the bundle (about 60 KB
/// gzipped; see `client::policy::set_nfc`). Called before any wiki is opened
/// ([`account::Account::open_wiki`], [`session::WikiSession::new`]); idempotent.
pub(crate) fn install_nfc() {
    #[cfg(target_arch = "wasm32")]
    client::policy::set_nfc(|text| String::from(js_sys::JsString::from(text).normalize("NFC")));
}
