// HTTP glue for docs/api.md: moves JSON text and envelope bytes between the server and the
// WebAssembly module. No decisions about trust are made here: every answer that matters is
// checked in Rust.

const BASE = '/api/v1';

/** An error answer from the server: `{error: {code, message}}` with its HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

let token = null;

/** Sets the bearer token (a session token) used by every request. */
export function setToken(value) {
  token = value;
}

function headers(extra) {
  const h = { ...extra };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function failure(res) {
  let body = null;
  let text = '';
  try {
    text = await res.text();
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  const err = body && body.error ? body.error : {};
  return new ApiError(res.status, err.code || 'http', err.message || text || res.statusText, body);
}

/** A JSON request; resolves with the answer's text (Rust parses it) or null for 204. */
export async function call(method, path, body) {
  const init = { method, headers: headers(body !== undefined ? { 'Content-Type': 'application/json' } : {}) };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(BASE + path, init);
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  return res.text();
}

/** A JSON request whose answer JavaScript reads itself (only non-secret fields). */
export async function json(method, path, body) {
  const text = await call(method, path, body);
  return text ? JSON.parse(text) : null;
}

/**
 * Fetches an envelope by its SHA-256 (immutable, so the browser may cache it for good). Resolves
 * with its bytes; a 404 becomes an ApiError with status 404.
 */
export async function blob(wiki, hash, options = {}) {
  const res = await fetch(`${BASE}/wikis/${wiki}/blobs/${hash}`, {
    headers: headers({}),
    cache: options.cache || 'default',
  });
  if (!res.ok) throw await failure(res);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Fetches a page's current envelope (`/pages/{page}`): the server's current copy, revalidated
 * with its ETag on every call (`no-cache`), so a copy changed on the server is what gets checked.
 */
export async function currentPage(wiki, page) {
  const res = await fetch(`${BASE}/wikis/${wiki}/pages/${page}`, { headers: headers({}), cache: 'no-cache' });
  if (!res.ok) throw await failure(res);
  return new Uint8Array(await res.arrayBuffer());
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool(items, limit, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  });
  await Promise.all(workers);
}
