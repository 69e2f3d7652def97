//! zkwiki in the browser.
//!
//! Everything that touches keys or plaintext runs here, compiled to WebAssembly; the JavaScript in
//! `static/` only moves bytes between `fetch` and these functions and puts HTML into the DOM.
//!
//! - [`render`] turns markdown into HTML that is safe by construction ([`links`] decides every URL);
//! - [`diff`] compares and merges page versions; [`search`] searches decrypted pages;
//! - the `#[wasm_bindgen]` modules ([`account`], [`session`]) are thin bindings over `core_crypto`
//!   and [`workspace`], which holds the per-wiki client logic and is tested natively.

pub mod account;
pub mod api;
pub mod diff;
pub mod error;
pub mod frontmatter;
pub mod html;
pub mod js;
pub mod links;
pub mod render;
pub mod search;
pub mod session;
pub mod workspace;
