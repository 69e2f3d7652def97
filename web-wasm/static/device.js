// What this browser keeps between visits.
//
// - "Keep me signed in" (optional): the user's identity and session token, encrypted with an
//   AES-GCM key that WebCrypto generates as non-extractable and IndexedDB stores as a CryptoKey
//   object. Script on this origin can ask the browser to decrypt with it, but the raw key can
//   never be read out, copied to another device or found in a profile backup. Nothing secret is
//   ever put in localStorage or sessionStorage.
// - The last wiki state seen per wiki (sequence and hash: not secret), to detect a server that
//   rolls a wiki back or shows forked histories across visits.

const DB_NAME = 'zkwiki';
const STORE = 'device';
const KEY = 'signin';

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function withStore(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req ? req.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Stores the sign-in, encrypted under a fresh non-extractable key. Wipes `secret`. */
export async function saveSignIn(user, secret, token, expiresAt) {
  const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, [
    'encrypt',
    'decrypt',
  ]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const tokenBytes = new TextEncoder().encode(token);
  const plain = new Uint8Array(4 + tokenBytes.length + secret.length);
  new DataView(plain.buffer).setUint32(0, tokenBytes.length);
  plain.set(tokenBytes, 4);
  plain.set(secret, 4 + tokenBytes.length);
  const aad = new TextEncoder().encode(`zkwiki device sign-in v1 ${user}`);
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad }, key, plain);
  plain.fill(0);
  secret.fill(0);
  await withStore('readwrite', (s) => s.put({ key, iv, ct, user, expiresAt }, KEY));
}

/** The stored sign-in `{user, secret, token, expiresAt}`, or null (none, expired, unreadable). */
export async function loadSignIn() {
  let rec;
  try {
    rec = await withStore('readonly', (s) => s.get(KEY));
  } catch {
    return null;
  }
  if (!rec) return null;
  if (rec.expiresAt && rec.expiresAt * 1000 < Date.now()) {
    await clearSignIn();
    return null;
  }
  try {
    const aad = new TextEncoder().encode(`zkwiki device sign-in v1 ${rec.user}`);
    const plain = new Uint8Array(
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv: rec.iv, additionalData: aad }, rec.key, rec.ct),
    );
    const n = new DataView(plain.buffer).getUint32(0);
    const token = new TextDecoder().decode(plain.slice(4, 4 + n));
    const secret = plain.slice(4 + n);
    plain.fill(0);
    return { user: rec.user, secret, token, expiresAt: rec.expiresAt };
  } catch {
    await clearSignIn();
    return null;
  }
}

/** Forgets the stored sign-in (logout). */
export async function clearSignIn() {
  try {
    await withStore('readwrite', (s) => s.delete(KEY));
  } catch {
    // nothing stored
  }
}

const seenKey = (user, wiki) => `zkwiki.seen.${user}.${wiki}`;

/** The last state this browser saw of a wiki (JSON for the Rust side), or "". */
export function loadSeen(user, wiki) {
  return localStorage.getItem(seenKey(user, wiki)) || '';
}

/** Remembers the state this browser has now verified. */
export function saveSeen(user, wiki, seenJson) {
  localStorage.setItem(seenKey(user, wiki), seenJson);
}

/** The wiki opened last (an id, not secret). */
export function lastWiki(user) {
  return localStorage.getItem(`zkwiki.last.${user}`) || '';
}

/** Remembers the wiki opened last. */
export function setLastWiki(user, wiki) {
  localStorage.setItem(`zkwiki.last.${user}`, wiki);
}
