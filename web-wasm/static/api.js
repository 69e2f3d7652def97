// HTTP glue for docs/api.md: moves JSON text and envelope bytes between the server and the
// WebAssembly module. No decisions about trust are made here: every answer that matters is
// checked in Rust, and what an error answer means is the client core's one classification.

import * as zk from './pkg/web_wasm.js';

const BASE = '/api/v1';

/**
 * An error answer from the server: its HTTP status, its stable `code` (`docs/api.md`) and body,
 * with `name`, `message` and `hint` as the client core classifies it (`AccessError`,
 * `ConflictError`, `UnavailableError`, …).
 */
export class ApiError extends Error {
  constructor(status, code, classified, body) {
    super(classified.message || `HTTP ${status}`);
    this.name = classified.name || 'ApiError';
    this.hint = classified.hint || null;
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
  let bytes = new Uint8Array();
  let body = null;
  try {
    bytes = new Uint8Array(await res.arrayBuffer());
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    // not JSON
  }
  const code = body && body.error && typeof body.error.code === 'string' ? body.error.code : 'http';
  return new ApiError(res.status, code, JSON.parse(zk.classifyServerError(res.status, bytes)), body);
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

/**
 * The states `from ..= to` with their manifests (`/states?from=&to=`), asked again from the
 * next sequence while an answer stops early. Resolves with one `{"states": [...]}` JSON text for
 * Rust, which checks that every state asked for is there and verifies each.
 */
export async function states(wiki, from, to) {
  const all = [];
  let next = from;
  while (next <= to) {
    const answer = await json('GET', `/wikis/${wiki}/states?from=${next}&to=${to}`);
    const got = answer && Array.isArray(answer.states) ? answer.states : [];
    if (got.length === 0) break;
    all.push(...got);
    next += got.length;
  }
  return JSON.stringify({ states: all });
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
