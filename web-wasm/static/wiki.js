// One open wiki: fetching for the WikiSession (Rust verifies and decrypts), committing writes,
// and reporting integrity failures. Plaintext only ever exists in this tab.

import * as zk from './pkg/web_wasm.js';
import * as api from './api.js';
import * as device from './device.js';
import { integrityProblem } from './banner.js';

/**
 * A PageView from Rust as a plain object: its JSON fields, `html` (the first screens) and
 * `htmlRest` (the rest of a long page, whole top-level elements, or ''). The HTML comes as
 * strings, not inside the JSON, so it is not escaped and parsed again.
 */
function takeView(v) {
  try {
    const view = JSON.parse(v.meta);
    view.html = v.takeHtml();
    view.htmlRest = v.takeRest();
    return view;
  } finally {
    v.free();
  }
}

/**
 * Opens a wiki: fetches the keyring chain and head and, when this browser saw an earlier state,
 * every state from that one to the head (the trail); Rust accepts the head only if each step
 * verifies, so a head from another branch is refused at any distance and nothing is remembered.
 * Then the catalog, and who wrote any page a member wrote against the rules.
 */
export async function openWiki(account, wiki, { attribute = true } = {}) {
  const [keyring, head] = await Promise.all([
    api.call('GET', `/wikis/${wiki}/keyring`),
    api.call('GET', `/wikis/${wiki}/head`),
  ]);
  const seen = device.loadSeen(account.user, wiki);
  const range = JSON.parse(zk.trailNeeded(seen, head));
  const trail = range ? await api.states(wiki, range.from, range.to) : '';
  const session = account.openWiki(wiki, keyring, head, seen, trail);
  const w = new OpenWiki(account, session);
  w.attributes = attribute;
  w.remember();
  await w.loadWanted();
  return w;
}

export class OpenWiki {
  constructor(account, session) {
    this.account = account;
    this.session = session;
    this.wiki = session.wiki;
    this.info = JSON.parse(session.info());
    /** Called after the wiki's pages may have changed (the app redraws what depends on them). */
    this.onChanged = null;
    /** The attribution walk under way, if one (see attribute). */
    this.attributing = null;
    /** Whether to walk history for who wrote isolated pages (not for a glance at a title). */
    this.attributes = true;
  }

  /**
   * Saves what this browser has now verified (rollback and fork detection next time), merged
   * with what is stored by the one rule every client uses (another tab may have seen more).
   */
  remember() {
    const stored = device.loadSeen(this.account.user, this.wiki);
    device.saveSeen(this.account.user, this.wiki, this.session.seenJson(stored));
    this.info = JSON.parse(this.session.info());
  }

  changed() {
    if (this.onChanged) this.onChanged();
  }

  /** Fetches an envelope by hash and hands it to `use(bytes)`; a 404 is reported as missing. */
  async fetchBlob(page, hash, options) {
    try {
      return await api.blob(this.wiki, hash, options);
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 404) {
        this.session.markMissing(page, `HTTP 404 for blob ${hash.slice(0, 12)}…`);
        integrityProblem(
          `The server did not return page ${page.slice(0, 8)}…, which the signed manifest lists (a page silently dropped).`,
        );
      }
      throw e;
    }
  }

  /** Loads what the session asks for (the index, then pages it lacks) until it asks for nothing. */
  async loadWanted() {
    for (let round = 0; round < 8; round++) {
      const wanted = JSON.parse(this.session.wanted());
      if (wanted.length === 0) break;
      await api.pool(wanted, 6, async ({ page, hash }) => {
        let bytes;
        try {
          bytes = await this.fetchBlob(page, hash);
        } catch {
          return;
        }
        try {
          this.session.load(page, bytes);
        } catch (e) {
          reportError(e);
        }
      });
    }
    for (const f of JSON.parse(this.session.failures())) {
      integrityProblem(`Page ${f.page.slice(0, 8)}…: ${f.message}`);
    }
    this.changed();
    if (this.attributes) this.startAttribution();
  }

  /** Starts the attribution walk unless one is under way; returns it. */
  startAttribution() {
    if (!this.attributing) {
      const walk = this.attribute().finally(() => {
        if (this.attributing === walk) this.attributing = null;
      });
      this.attributing = walk;
    }
    return this.attributing;
  }

  /**
   * In the background (the wiki is usable meanwhile): walks the verified history back, in
   * batches of states, until Rust knows which member wrote each page it isolated; the isolation
   * panel then names them. Resolves when done (tests and the next refresh can wait for it).
   */
  async attribute() {
    try {
      for (let round = 0; round < 10000; round++) {
        const range = JSON.parse(this.session.attributionWanted());
        if (!range) break;
        this.session.attributionLoad(await api.states(this.wiki, range.from, range.to));
      }
    } catch (e) {
      reportError(e);
    }
    this.changed();
  }

  /** Decrypts page contents in the background (for snippets in search and instant navigation). */
  async prefetch(limit = 300) {
    const pages = JSON.parse(this.session.pages()).filter((p) => !this.session.isLoaded(p.id));
    await this.loadPages(pages.slice(0, limit), 4);
  }

  /** Decrypts every markdown page not decrypted yet (a rename that updates links reads them all). */
  async loadAllMarkdown() {
    const pages = JSON.parse(this.session.pages()).filter((p) => p.kind === 'markdown' && !this.session.isLoaded(p.id));
    await this.loadPages(pages, 6);
  }

  /** Fetches and decrypts `pages`, `concurrency` at a time; a page that fails is reported. */
  async loadPages(pages, concurrency) {
    await api.pool(pages, concurrency, async (p) => {
      const hash = this.session.hashOf(p.id);
      if (!hash) return;
      try {
        this.session.load(p.id, await this.fetchBlob(p.id, hash));
      } catch (e) {
        reportError(e);
      }
    });
  }

  /**
   * Fetches, verifies, decrypts and renders a page (the navigation step). The envelope is the
   * server's current copy of the page; if it does not match the signed manifest, the head is
   * fetched again once (someone may just have saved the page) before it counts as tampering.
   */
  async view(page) {
    for (let attempt = 0; ; attempt++) {
      const expected = this.session.hashOf(page);
      if (!expected) throw Object.assign(new Error('This page is not in the wiki any more.'), { name: 'InputError' });
      let bytes;
      const t0 = performance.now();
      try {
        bytes = await api.currentPage(this.wiki, page);
      } catch (e) {
        if (e instanceof api.ApiError && e.status === 404) {
          this.session.markMissing(page, 'HTTP 404');
          throw Object.assign(new Error(`The signed manifest lists this page but the server did not return it (page ${page.slice(0, 8)}…).`), { name: 'IntegrityError' });
        }
        throw e;
      }
      try {
        const t1 = performance.now();
        const view = takeView(this.session.view(page, bytes));
        window.zkwikiLastViewParts = { fetch: t1 - t0, wasm: performance.now() - t1 };
        return view;
      } catch (e) {
        if (attempt === 0 && e && e.name === 'IntegrityError') {
          await this.refresh();
          if (this.session.hashOf(page) !== expected) continue;
        }
        throw e;
      }
    }
  }

  /**
   * Brings the session up to a newer head (after a 409, or a poll): with every state between its
   * head and the new one, each verified as a transition, so a fork at any distance is refused
   * (IntegrityError; the session and what this browser remembers stay as they were).
   */
  async refresh(head) {
    const headText = head ? JSON.stringify(head) : await api.call('GET', `/wikis/${this.wiki}/head`);
    const range = JSON.parse(this.session.trailTo(headText));
    const trail = range ? await api.states(this.wiki, range.from, range.to) : '';
    const keyringSeq = head ? head.keyring_seq : JSON.parse(headText).keyring_seq;
    let keyrings = '';
    if (keyringSeq === undefined || keyringSeq > this.session.keyringSeq) {
      keyrings = await api.call('GET', `/wikis/${this.wiki}/keyring?since=${this.session.keyringSeq}`);
    }
    const changed = JSON.parse(this.session.refresh(keyrings, headText, trail));
    this.remember();
    await this.loadWanted();
    return changed;
  }

  /**
   * Sends a prepared write. `prepare()` builds a PendingWrite on the current head; on a 409 the
   * head is refreshed and `prepare()` runs again (it throws ConflictError when the page the user
   * edited changed meanwhile, which the editor turns into a merge). Resolves with the accepted
   * PendingWrite.
   */
  async commit(prepare) {
    for (let attempt = 0; attempt < 4; attempt++) {
      const pending = prepare();
      try {
        await api.call('POST', `/wikis/${this.wiki}/commits`, pending.body);
      } catch (e) {
        // Not freed here: the caller may still hold it (the finalizer frees it when unused).
        if (e instanceof api.ApiError && e.status === 409 && e.code === 'conflict') {
          await this.refresh(e.body && e.body.head);
          continue;
        }
        throw e;
      }
      this.session.accept(pending);
      this.remember();
      this.changed();
      return pending;
    }
    throw new Error('The wiki kept changing while saving; nothing was lost: try again.');
  }
}

/** Shows a Rust-side error the way its kind asks for. */
export function reportError(e) {
  if (e && (e.name === 'IntegrityError' || e.name === 'VersionError')) {
    integrityProblem(e.page ? `Page ${e.page.slice(0, 8)}…: ${e.message}` : e.message);
  }
  return e;
}

/** An error's message with its hint (what to do about it), as sentences for people. */
export function errorText(e) {
  if (!e) return 'Unknown error.';
  const sentence = (t) => {
    const text = String(t).trim();
    if (!text) return '';
    const first = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?…]$/.test(first) ? first : `${first}.`;
  };
  const message = sentence(e.message || String(e));
  return e.hint ? `${message} ${sentence(e.hint)}` : message;
}
