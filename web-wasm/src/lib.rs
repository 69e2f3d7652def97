//! zkwiki's browser bindings. Only a version probe exists so far; the app is a later issue.

use wasm_bindgen::prelude::*;

/// The format versions this build reads, so the page can show what it runs.
#[wasm_bindgen]
pub fn format_version() -> String {
    "zkwiki formats v1".to_owned()
}
