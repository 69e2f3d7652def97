//! Errors across the boundary: a [`client::Error`] becomes a JavaScript `Error` whose `name` says
//! its kind (`IntegrityError`, `ConflictError`, …), with `hint` (what to do) and `page` (the page
//! it concerns) when it has them. The kinds are the client core's one classification
//! ([`client::Kind`]); this file only names them for JavaScript.

use client::{Error, Kind};
use wasm_bindgen::JsValue;

/// Results of the bindings.
pub type JsResult<T> = Result<T, JsValue>;

/// The `name` JavaScript sees for an error of `kind`.
pub fn js_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Integrity => "IntegrityError",
        Kind::Security => "SecurityError",
        Kind::Access => "AccessError",
        Kind::Conflict => "ConflictError",
        Kind::Input => "InputError",
        Kind::NotFound => "NotFoundError",
        Kind::Version => "VersionError",
        Kind::Unavailable => "UnavailableError",
        Kind::NotLoaded => "NotLoadedError",
    }
}

/// Converts a client error into a thrown JavaScript `Error`.
pub fn to_js(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    err.set_name(js_name(e.kind));
    // Setting a property on a fresh Error object cannot fail.
    if let Some(page) = e.page {
        let _ = js_sys::Reflect::set(&err, &"page".into(), &page.to_hex().into());
    }
    if let Some(hint) = &e.hint {
        let _ = js_sys::Reflect::set(&err, &"hint".into(), &hint.into());
    }
    err.into()
}

/// Converts a client result.
pub fn js<T>(r: client::Result<T>) -> JsResult<T> {
    r.map_err(to_js)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_error_name() {
        let kinds = [
            Kind::Integrity,
            Kind::Security,
            Kind::Access,
            Kind::Conflict,
            Kind::Input,
            Kind::NotFound,
            Kind::Version,
            Kind::Unavailable,
            Kind::NotLoaded,
        ];
        let names: std::collections::BTreeSet<&str> = kinds.iter().map(|k| js_name(*k)).collect();
        assert_eq!(names.len(), kinds.len());
        assert!(names.iter().all(|n| n.ends_with("Error")));
        assert_eq!(js_name(Kind::Integrity), "IntegrityError");
    }
}
