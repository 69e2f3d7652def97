// The login's Argon2id, off the tab's main thread (about a second of work that would otherwise
// freeze the page). The page sends the WebAssembly module it already compiled (fetched with its
// integrity hash, so this worker fetches no wasm of its own), the `/prelogin` answer and the
// passphrase; Rust checks the KDF parameters against the client's floor and ceiling and derives
// the 32-byte protector key, which goes back (transferred, not copied) for the page to log in
// with. The page ends this worker after one answer, and its memory with it.

import init, { derivePassphraseKey } from './pkg/web_wasm.js';

self.onmessage = async ({ data }) => {
  try {
    await init({ module_or_path: data.module });
    const key = derivePassphraseKey(data.prelogin, data.passphrase);
    self.postMessage({ key }, [key.buffer]);
  } catch (e) {
    // Only plain data crosses back: the Rust error's kind, message and hint.
    self.postMessage({ error: { name: e && e.name, message: e && e.message ? e.message : String(e), hint: e && e.hint } });
  }
};
