//! zkwiki's crypto core: the keys, byte formats and verification rules that let a browser, the CLI
//! and an agent trust nothing the server says.
//!
//! The crate is pure: no I/O, no clock, no network. Randomness is always passed in (`make_*`
//! functions take an RNG; `derive_*` functions are deterministic), so the test vectors can pin
//! every byte. Each format lives in its own module and is specified byte by byte in
//! `docs/format.md`; every HKDF label lives in [`labels`].
//!
//! Layers, from the bottom:
//! - `hazmat`: the raw primitives exactly as the core calls them (public only with the `hazmat`
//!   feature, for test vectors and benchmarks);
//! - `sealed`: the one key-committing AEAD construction every format uses (likewise);
//! - [`kdf`] and [`protector`]: passphrase / recovery key → protector key → auth secret + seal key;
//! - [`identity`]: a user's age X25519 identity and Ed25519 signing key, sealed for the server;
//! - [`keyring`]: per-wiki epoch secrets wrapped to members as age files, owner-signed, chained;
//! - [`envelope`]: one encrypted page (path, markdown, author, time), padded with PADMÉ;
//! - [`state`]: the manifest and the signed wiki state, with rollback and fork detection;
//! - [`index`]: the encrypted search index (terms → pages, and every page's path);
//! - [`witness`]: the witness set in the keyring, checkpoints, co-signatures, and what a witness
//!   accepts; [`safety`]: the safety numbers members compare out of band;
//! - [`wrapped`]: the stored form of a protector key wrapped by AWS KMS (the format only).

pub mod codec;
pub mod envelope;
pub mod error;
#[cfg(feature = "hazmat")]
pub mod hazmat;
#[cfg(not(feature = "hazmat"))]
pub(crate) mod hazmat;
pub mod identity;
pub mod ids;
pub mod index;
pub mod kdf;
pub mod keyring;
pub mod labels;
pub mod padding;
pub mod path;
pub mod protector;
pub mod safety;
pub mod scope;
#[cfg(feature = "hazmat")]
pub mod sealed;
#[cfg(not(feature = "hazmat"))]
pub(crate) mod sealed;
pub mod secret;
pub mod snapshot;
pub mod state;
mod wire;
pub mod witness;
pub mod wrapped;

pub use error::{Error, Result};
