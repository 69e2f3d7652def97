//! Errors across the boundary: an [`AppError`] becomes a JavaScript `Error` whose `name` is its
//! kind (`IntegrityError`, `ConflictError`, …) and, when it concerns a page, with a `page` field.

use wasm_bindgen::JsValue;

use crate::error::{AppError, AppResult};

/// Results of the bindings.
pub type JsResult<T> = Result<T, JsValue>;

/// Converts an app error into a thrown JavaScript `Error`.
pub fn to_js(e: AppError) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    err.set_name(e.kind.js_name());
    if let Some(page) = e.page {
        // Setting a property on a fresh Error object cannot fail.
        let _ = js_sys::Reflect::set(&err, &"page".into(), &page.to_hex().into());
    }
    err.into()
}

/// Converts an app result.
pub fn js<T>(r: AppResult<T>) -> JsResult<T> {
    r.map_err(to_js)
}
