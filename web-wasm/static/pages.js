// Page views: reading, the page tree, search, the editor (with conflict handling) and history.

import * as api from './api.js';
import { h, replace, setTrustedHtml, appendTrustedHtml, dialog, toast, when, ago, pageName, pageRoute, enforced } from './dom.js';
import { go, showError, renderSidebar, noteTitle, zk } from './app.js';
import { reportError, errorText } from './wiki.js';
import { blameView } from './blame.js';

const main = () => document.getElementById('main');

// ---------------------------------------------------------------------------------------------
// Tree and search (sidebar)

/** A folder's name as trees and breadcrumbs show it (the core's rule: Otterwiki-style). */
export function treeName(segment) {
  return zk.displayName(segment);
}

/**
 * The page tree, from the decrypted paths: in the core's order (pages before folders) and with
 * its names (a page's title once it is decrypted, else its file name as Otterwiki shows it).
 */
export function tree(app) {
  const w = app.open;
  const list = JSON.parse(w.session.tree());
  const current = currentPath();
  const root = { dirs: new Map(), files: [] };
  for (const p of list) {
    const segs = p.path.split('/');
    let node = root;
    for (const s of segs.slice(0, -1)) {
      if (!node.dirs.has(s)) node.dirs.set(s, { dirs: new Map(), files: [] });
      node = node.dirs.get(s);
    }
    node.files.push(p);
  }
  const failed = new Set(JSON.parse(w.session.failures()).map((f) => f.page));
  const build = (node, prefix) => {
    const ul = h('ul', {});
    for (const p of node.files) {
      const cls = ['tree-page', p.path === current ? 'active' : '', failed.has(p.id) ? 'failed' : '', p.kind !== 'markdown' ? 'attachment' : ''].join(' ');
      ul.appendChild(h('li', { class: cls }, h('a', { href: pageRoute(w.wiki, p.path), title: p.path }, p.name)));
    }
    for (const [name, sub] of node.dirs.entries()) {
      const open = current.startsWith(`${prefix}${name}/`) || node.dirs.size + node.files.length < 12;
      ul.appendChild(h('li', { class: 'tree-dir' }, h('details', { open }, h('summary', { title: `${prefix}${name}` }, treeName(name)), build(sub, `${prefix}${name}/`))));
    }
    return ul;
  };
  if (list.length === 0) return h('p', { class: 'side-note' }, 'No pages yet.');
  return build(root, '');
}

/** Highlights the page in the tree (the tree itself is redrawn only when pages change). */
function markActive(wiki, path) {
  const href = pageRoute(wiki, path);
  // Selectors rather than a loop over every entry: a wiki's tree can hold thousands of pages.
  for (const li of document.querySelectorAll('.tree li.tree-page.active')) li.classList.remove('active');
  const link = document.querySelector(`.tree li.tree-page > a:first-child[href="${CSS.escape(href)}"]`);
  if (link) link.parentElement.classList.add('active');
  else renderSidebar();
}

function currentPath() {
  const m = (location.hash || '').match(/^#\/w\/[0-9a-f]{32}\/(?:p|edit|history)\/([^?]*)/);
  return m ? m[1].split('/').map(decodeURIComponent).join('/') : '';
}

/** Search as you type over the wiki's encrypted index (decrypted here). */
export function searchBox(app) {
  const results = h('div', { class: 'search-results', id: 'search-results', hidden: true });
  let hits = [];
  let active = -1;
  const input = h('input', {
    type: 'search',
    id: 'search',
    class: 'search',
    placeholder: 'Search pages…',
    autocomplete: 'off',
    'aria-label': 'Search pages',
  });
  const draw = () => {
    if (!input.value.trim()) {
      results.hidden = true;
      return;
    }
    replace(results);
    if (hits.length === 0) results.appendChild(h('div', { class: 'search-empty' }, 'No page matches.'));
    hits.forEach((hit, i) => {
      const snippet = h('div', { class: 'search-snippet' }, hit.snippet.map(([text, isMatch]) => (isMatch ? h('mark', {}, text) : text)));
      results.appendChild(
        h('a', { class: `search-hit${i === active ? ' active' : ''}`, href: pageRoute(app.open.wiki, hit.path) },
          h('div', { class: 'search-path' }, pageName(hit.path)), hit.snippet.length ? snippet : null),
      );
    });
    results.appendChild(h('div', { class: 'search-foot' }, 'Searched in this browser ', enforced('client', 'The index is decrypted and searched here; the server never sees search terms')));
    results.hidden = false;
  };
  input.addEventListener('input', () => {
    const t0 = performance.now();
    hits = JSON.parse(app.open.session.search(input.value, 12));
    window.zkwikiLastSearchMs = performance.now() - t0;
    active = hits.length ? 0 : -1;
    draw();
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      if (!hits.length) return;
      active = (active + (ev.key === 'ArrowDown' ? 1 : hits.length - 1)) % hits.length;
      draw();
    } else if (ev.key === 'Enter' && active >= 0 && hits[active]) {
      ev.preventDefault();
      go(pageRoute(app.open.wiki, hits[active].path));
      input.value = '';
      results.hidden = true;
    } else if (ev.key === 'Escape') {
      input.value = '';
      results.hidden = true;
    }
  });
  input.addEventListener('blur', () => setTimeout(() => { results.hidden = true; }, 200));
  input.addEventListener('focus', () => { if (input.value.trim()) draw(); });
  results.addEventListener('click', () => {
    setTimeout(() => {
      input.value = '';
      results.hidden = true;
    }, 0);
  });
  return h('div', { class: 'search-wrap' }, input, results);
}

// ---------------------------------------------------------------------------------------------
// Reading

/** The wiki's start page: Home, else the first page, else an empty state. */
export async function showHome(app, wiki) {
  const s = app.open.session;
  const home = s.find('Home.md') || s.find('index.md');
  if (home) return go(pageRoute(wiki, s.pathOf(home)));
  const first = JSON.parse(s.pages())
    .filter((p) => p.kind === 'markdown')
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))[0];
  if (first) return go(pageRoute(wiki, first.path));
  replace(main(),
    h('div', { class: 'empty' },
      h('h1', {}, 'An empty wiki'),
      h('p', { class: 'muted' }, 'Pages you write here are encrypted in this browser before they are sent.'),
      app.open.info.role === 'reader' ? h('p', {}, 'You can read this wiki but not write it.') : h('a', { class: 'btn btn-primary', href: `#/w/${wiki}/new?path=Home.md` }, 'Write the first page')));
}

/** Shows a page: fetch its envelope, verify against the signed manifest, decrypt, render. */
export async function showPage(app, path, fragment) {
  const w = app.open;
  const id = w.session.find(path);
  refuseDrops();
  if (!id) {
    replace(main(),
      h('div', { class: 'empty' },
        h('h1', {}, pageName(path)),
        h('p', { class: 'muted' }, 'This page does not exist yet.'),
        w.info.role === 'reader' ? null : h('a', { class: 'btn btn-primary', id: 'create-missing', href: `#/w/${w.wiki}/new?path=${encodeURIComponent(path)}` }, 'Create it')));
    return;
  }
  let page;
  const t0 = performance.now();
  try {
    page = await w.view(id);
  } catch (e) {
    return showError(e, `While opening “${pageName(path)}”:`);
  }
  if (w.session.find(path) !== id) {
    // Renamed or replaced meanwhile (which path finds which page is the core's rule).
    return showError(new Error('The page changed while loading; try again.'));
  }
  if (page.kind === 'attachment') return showAttachment(app, id, page, t0);
  // The path it shows, so a test (or a script) can tell this page's body from the last one's.
  const article = h('article', { class: 'page-body', id: 'page-body', dataset: { path: page.path } });
  setTrustedHtml(article, page.html);
  const title = page.title || pageName(page.path.split('/').pop());
  // The header shows the title; a first heading that only repeats it is not shown twice.
  const firstHeading = article.querySelector('h1, h2, h3, h4, h5, h6, p, ul, ol, pre, blockquote, .table-wrap');
  if (firstHeading && firstHeading.tagName === 'H1' && firstHeading.textContent.trim() === title.trim()) firstHeading.remove();
  replace(main(),
    h('div', { class: 'page-head' },
      crumbs(w, page.path, title),
      h('h1', { class: 'page-title', id: 'page-title' }, title),
      h('div', { class: 'page-meta' },
        writtenBy(page),
        ` · ${ago(page.written_at)}`,
        ' · ',
        h('span', { class: 'verified', title: 'The envelope matches the manifest signed by a writer of this wiki, and decrypted with a key-committing AEAD' }, '✓ verified')),
      h('div', { class: 'page-actions' },
        w.info.role === 'reader' ? null : h('a', { class: 'btn btn-small', id: 'edit', href: pageRoute(w.wiki, page.path, 'edit') }, 'Edit'),
        h('a', { class: 'btn btn-small btn-ghost', id: 'history', href: pageRoute(w.wiki, page.path, 'history') }, 'History'),
        w.info.role === 'reader' ? null : h('button', { class: 'btn btn-small btn-ghost', id: 'rename', type: 'button', onclick: () => rename(app, id, page.path) }, 'Rename'),
        w.info.role === 'reader' ? null : h('button', { class: 'btn btn-small btn-ghost btn-danger-text', id: 'delete', type: 'button', onclick: () => remove(app, id, page.path) }, 'Delete'))),
    page.tags && page.tags.length ? h('div', { class: 'tags', id: 'page-tags', 'aria-label': 'Tags' }, page.tags.map((t) => h('button', {
      class: 'page-tag',
      type: 'button',
      title: `Search for “${t}”`,
      onclick: () => {
        const box = document.getElementById('search');
        if (!box) return;
        box.value = t;
        box.dispatchEvent(new Event('input'));
        box.focus();
      },
    }, `#${t}`))) : null,
    article,
    attachmentList(app, page.path));
  if (w.info.role !== 'reader') acceptDrops(app, page.path);
  fillEmbeds(app, article);
  viewShown(t0);
  if (performance.getEntriesByName('zk-first-page').length === 0) performance.mark('zk-first-page');
  if (page.path === 'Home.md' || page.path === 'index.md') noteTitle(w.wiki, page.title || 'Home');
  markActive(w.wiki, page.path);
  // A long page: the part after the fold goes in after the first paint (parsing all of a 100 KiB
  // page's HTML takes Chromium 10+ ms), or at once when a heading in it is to be scrolled to.
  let rest = page.htmlRest;
  const finish = () => {
    // Navigated away meanwhile: nothing to complete.
    if (!rest || !article.isConnected) return;
    const t1 = performance.now();
    appendTrustedHtml(article, rest);
    rest = '';
    fillEmbeds(app, article);
    window.zkwikiLastRestMs = performance.now() - t1;
    window.zkwikiLastCompleteMs = performance.now() - t0;
  };
  window.zkwikiLastRestMs = 0;
  window.zkwikiLastCompleteMs = rest ? null : window.zkwikiLastViewMs;
  // After the first paint: the table of contents (of the whole page) and the backlinks.
  const extras = () => {
    if (!article.isConnected) return;
    finish();
    addToc(article);
    addBacklinks(app, id, article);
    highlightCode(article);
  };
  if (fragment) {
    let target = document.getElementById(`zk-${fragment}`);
    if (!target && rest) {
      finish();
      target = document.getElementById(`zk-${fragment}`);
    }
    if (target) target.scrollIntoView();
  } else {
    main().scrollTop = 0;
  }
  requestAnimationFrame(() => setTimeout(extras, 0));
}

/** Colours the page's fenced code blocks after the first paint (highlight.js: the DOM only). */
function highlightCode(article) {
  if (!article.querySelector('pre > code[class*="language-"]')) return;
  import('./highlight.js')
    .then((m) => { if (article.isConnected) m.highlightAll(article); })
    .catch((e) => console.error('highlighting failed; code stays plain', e));
}

/** "On this page": the headings of a long page (three or more sections), before its text. */
function addToc(article) {
  if (document.getElementById('toc')) return;
  const heads = [...article.querySelectorAll('h2[id], h3[id]')];
  if (heads.length < 3) return;
  const nav = h('nav', { class: 'toc', id: 'toc', 'aria-labelledby': 'toc-title' },
    h('details', { open: heads.length <= 40 },
      h('summary', { id: 'toc-title' }, 'On this page'),
      h('ul', {}, heads.map((el) => h('li', { class: `toc-${el.tagName.toLowerCase()}` }, h('a', { href: `#${el.id}` }, el.textContent))))));
  article.before(nav);
}

/** "Pages that link here", from the pages decrypted in this tab (the core's link rule). */
function addBacklinks(app, id, article) {
  const w = app.open;
  if (!w) return;
  const from = JSON.parse(w.session.backlinks(id));
  const old = document.getElementById('backlinks');
  const section = from.length ? h('section', { class: 'backlinks', id: 'backlinks', 'aria-labelledby': 'backlinks-title', dataset: { page: id } },
    h('h2', { id: 'backlinks-title' }, 'Pages that link here'),
    h('ul', {}, from.map((p) => h('li', {}, h('a', { href: pageRoute(w.wiki, p.path), title: p.path }, p.name))))) : null;
  if (old) old.remove();
  if (section) article.after(section);
}

/** Lists the backlinks of the page on screen again (more pages were decrypted meanwhile). */
export function refreshBacklinks(app) {
  const article = document.getElementById('page-body');
  const id = app.open && app.open.session.find(currentPath());
  if (article && id) addBacklinks(app, id, article);
}

/**
 * Who wrote the current version: the member whose key signed it when this browser verified that
 * step, with the record's author as a claim only when it differs; else the record's claim,
 * marked as one (History shows the signer of every version).
 */
function writtenBy(page) {
  if (page.signer) {
    return h('span', { class: 'written-by' }, 'Last written by ',
      h('strong', { title: 'The member whose key signed this version' }, page.signer),
      page.claim ? h('span', { class: 'claim', title: 'The author name the record gives: a claim, not checked' }, ` (written as “${page.claim}”)`) : null);
  }
  return h('span', { class: 'written-by', title: 'The author name the record gives (a claim); History shows the member whose key signed each version' },
    `Last written as “${page.author || 'unknown'}”`);
}

/**
 * An object URL of a decrypted attachment's bytes (never a network address), made once per
 * version and kept while the wiki is open (`closeWiki` revokes them). `type` is the inline type
 * the core recognised from the bytes, or a download type.
 */
function objectUrl(w, id, bytes, type) {
  w.urls = w.urls || new Map();
  const key = `${w.session.hashOf(id)}:${type}`;
  if (!w.urls.has(key)) w.urls.set(key, URL.createObjectURL(new Blob([bytes], { type })));
  return w.urls.get(key);
}

/** Saves bytes as a file (always as a download, never opened as a document of this origin). */
function download(bytes, name) {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = h('a', { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** The page an attachment belongs to (`Folder/Page/file.png` → `Folder/Page.md`), if it exists. */
function ownerPage(w, path) {
  const folder = path.split('/').slice(0, -1).join('/');
  if (!folder) return null;
  const id = w.session.find(`${folder}.md`);
  return id ? w.session.pathOf(id) : null;
}

/** Crumbs: each folder links to its page (Otterwiki's `Folder.md`), the last is the name. */
function crumbs(w, path, last) {
  const segs = path.split('/');
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumbs' },
    segs.slice(0, -1).map((seg, i) => {
      const page = `${segs.slice(0, i + 1).join('/')}.md`;
      return h('span', { class: 'crumb' }, h('a', { href: pageRoute(w.wiki, page) }, treeName(seg)), ' / ');
    }),
    h('span', { class: 'crumb', 'aria-current': 'page' }, last));
}

/**
 * A page or attachment is on screen (its first screens, for a long page): the time since `t0`
 * and its parts, for the benchmarks (`tests/browser_bench.rs`) and the tests.
 */
function viewShown(t0) {
  window.zkwikiLastViewMs = performance.now() - t0;
  if (window.zkwikiLastViewParts) window.zkwikiLastViewParts.dom = window.zkwikiLastViewMs - window.zkwikiLastViewParts.fetch - window.zkwikiLastViewParts.wasm;
  if (window.zkwikiOnView) {
    const done = window.zkwikiOnView;
    window.zkwikiOnView = null;
    done();
  }
}

/** An attachment: images and PDFs inline (from the decrypted bytes), download, rename, delete. */
function showAttachment(app, id, page, t0) {
  const w = app.open;
  const bytes = w.session.attachmentBytes(id);
  const name = page.path.split('/').pop();
  let preview = null;
  if (page.media && bytes && page.media.startsWith('image/')) {
    preview = h('img', { class: 'attachment-preview', id: 'attachment-view', alt: name, src: objectUrl(w, id, bytes, page.media) });
  } else if (page.media === 'application/pdf' && bytes) {
    preview = h('iframe', { class: 'attachment-pdf', id: 'attachment-view', title: name, src: objectUrl(w, id, bytes, page.media) });
  }
  const owner = ownerPage(w, page.path);
  const writer = w.info.role !== 'reader';
  replace(main(),
    h('div', { class: 'page-head' },
      crumbs(w, page.path, name),
      h('h1', { class: 'page-title', id: 'page-title' }, name),
      h('div', { class: 'page-meta' }, `Attachment · ${(page.size / 1024).toFixed(1)} KiB · `, writtenBy(page), ` · ${ago(page.written_at)}`,
        owner ? [' · attached to ', h('a', { href: pageRoute(w.wiki, owner), id: 'attachment-owner' }, pageName(owner))] : null,
        ' · ', h('span', { class: 'verified' }, '✓ verified')),
      h('div', { class: 'page-actions' },
        h('button', { class: 'btn btn-small', type: 'button', id: 'download', onclick: () => download(bytes, name) }, 'Download'),
        h('a', { class: 'btn btn-small btn-ghost', id: 'history', href: pageRoute(w.wiki, page.path, 'history') }, 'History'),
        writer ? h('button', { class: 'btn btn-small btn-ghost', id: 'rename', type: 'button', onclick: () => rename(app, id, page.path) }, 'Rename') : null,
        writer ? h('button', { class: 'btn btn-small btn-ghost btn-danger-text', id: 'delete', type: 'button', onclick: () => remove(app, id, page.path) }, 'Delete') : null)),
    preview ? h('div', { class: 'attachment-frame' }, preview) : h('p', { class: 'muted', id: 'attachment-not-shown' }, 'This kind of file is not shown here: download it to open it.'));
  viewShown(t0);
  markActive(w.wiki, page.path);
}

/**
 * Images in a page that are attachments of the wiki (`data-zk-path`, set by the Rust renderer):
 * each is fetched, verified and decrypted like a page, and shown from an object URL.
 */
async function fillEmbeds(app, root) {
  const w = app.open;
  for (const img of root.querySelectorAll('img[data-zk-path]:not([src])')) {
    const id = w.session.find(img.dataset.zkPath);
    if (!id) continue;
    try {
      const v = await w.view(id);
      const bytes = w.session.attachmentBytes(id);
      if (v.media && v.media.startsWith('image/') && bytes) img.src = objectUrl(w, id, bytes, v.media);
      else img.replaceWith(h('a', { class: 'wikilink', href: pageRoute(w.wiki, v.path) }, img.alt || v.path.split('/').pop()));
    } catch (e) {
      reportError(e);
      img.replaceWith(h('span', { class: 'image-blocked', title: errorText(e) }, `[image failed its checks: ${img.alt || img.dataset.zkPath}]`));
    }
  }
}

/** The attachments of a page, with upload (file picker, or drop files on the page) for writers. */
function attachmentList(app, pagePath) {
  const w = app.open;
  const files = JSON.parse(w.session.attachmentsOf(pagePath));
  const writer = w.info.role !== 'reader';
  if (!files.length && !writer) return null;
  const input = h('input', { type: 'file', multiple: true, id: 'attach-input', class: 'visually-hidden', onchange: () => upload(app, pagePath, [...input.files]) });
  return h('section', { class: 'attachments', id: 'attachments', 'aria-labelledby': 'attachments-title' },
    h('h2', { id: 'attachments-title' }, files.length ? `Attachments (${files.length})` : 'Attachments'),
    files.length ? h('ul', { class: 'attachment-list' }, files.map((f) => h('li', {},
      h('a', { href: pageRoute(w.wiki, f.path) }, f.path.split('/').pop()),
      h('span', { class: 'muted small' }, ` ${(f.size / 1024).toFixed(1)} KiB`)))) : null,
    writer ? h('p', { class: 'attach-actions' },
      h('label', { class: 'btn btn-small', for: 'attach-input', id: 'attach-button' }, 'Upload files'), input,
      h('span', { class: 'muted small' }, ' or drop files on the page. They are encrypted here before they are sent.')) : null);
}

/** Encrypts and saves dropped or picked files as attachments of the page (replacing same names). */
async function upload(app, pagePath, files) {
  const w = app.open;
  let saved = 0;
  for (const file of files) {
    try {
      const path = zk.uploadPath(pagePath, file.name);
      const bytes = new Uint8Array(await file.arrayBuffer());
      // Replacing a file: the core writes over the version it has decrypted.
      const old = w.session.find(path);
      if (old && !w.session.isLoaded(old)) await w.view(old);
      await w.commit(() => {
        const existing = w.session.find(path);
        return w.session.preparePutBytes(existing || '', existing ? w.session.pathOf(existing) : path, bytes, existing ? w.session.hashOf(existing) : '', Date.now());
      });
      saved++;
    } catch (e) {
      reportError(e);
      toast(`${file.name}: ${errorText(e)}`, 'error');
    }
  }
  if (saved) {
    toast(saved === 1 ? 'Attachment saved' : `${saved} attachments saved`);
    go(pageRoute(w.wiki, pagePath));
  }
}

/** Dropping files anywhere on a page's view uploads them to that page (writers). */
function acceptDrops(app, pagePath) {
  const el = main();
  const over = (ev) => {
    if (!ev.dataTransfer || ![...ev.dataTransfer.types].includes('Files')) return;
    ev.preventDefault();
    el.classList.add('dropping');
  };
  el.ondragenter = over;
  el.ondragover = over;
  el.ondragleave = (ev) => { if (ev.target === el) el.classList.remove('dropping'); };
  el.ondrop = (ev) => {
    el.classList.remove('dropping');
    if (!ev.dataTransfer || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    upload(app, pagePath, [...ev.dataTransfer.files]);
  };
}

/** No drops outside a page's view. */
function refuseDrops() {
  const el = main();
  el.ondragenter = el.ondragover = el.ondragleave = el.ondrop = null;
}

async function rename(app, id, path) {
  const w = app.open;
  const input = h('input', { value: path, id: 'rename-path', class: 'wide', 'aria-label': 'New path' });
  const status = h('p', { class: 'form-status form-error', id: 'rename-error', role: 'status' });
  // Offered once every page is decrypted and some page links here (a markdown page only).
  const updateLinks = h('input', { type: 'checkbox', id: 'rename-links' });
  const linksText = h('span', { id: 'rename-links-text' });
  const linksRow = h('label', { class: 'check', id: 'rename-links-row', hidden: true }, updateLinks, linksText);
  const offer = async () => {
    if (!path.endsWith('.md')) return;
    await w.loadAllMarkdown();
    const from = JSON.parse(w.session.backlinks(id));
    if (from.length === 0 || !linksRow.isConnected) return;
    const names = from.slice(0, 3).map((p) => p.name).join(', ') + (from.length > 3 ? ', …' : '');
    linksText.textContent = `Update the links to it in ${from.length} page${from.length === 1 ? '' : 's'} that link here (${names}), in the same change`;
    updateLinks.checked = true;
    linksRow.hidden = false;
  };
  const done = dialog('Rename page', [h('p', {}, 'The page keeps its history.'), input, linksRow, status], [
    { label: 'Cancel' },
    {
      label: 'Rename',
      kind: 'primary',
      id: 'rename-ok',
      onclick: async () => {
        status.textContent = '';
        try {
          await w.commit(() => w.session.prepareRename(id, input.value, Date.now(), updateLinks.checked));
        } catch (e) {
          // The path policy's reason (or a conflict) stays in the dialog, next to the path.
          status.textContent = errorText(e);
          reportError(e);
          return false;
        }
        toast(updateLinks.checked ? 'Renamed, and the links to it updated' : 'Renamed');
        go(pageRoute(w.wiki, w.session.pathOf(id) || path));
        return true;
      },
    },
  ]);
  offer().catch(reportError);
  await done;
}

async function remove(app, id, path) {
  const choice = await dialog('Delete page?', [h('p', {}, `“${pageName(path)}” leaves the wiki. Its earlier versions stay in the history (and in every clone).`)], [
    { label: 'Cancel' },
    { label: 'Delete', kind: 'danger', id: 'delete-ok' },
  ]);
  if (choice !== 'Delete') return;
  try {
    await app.open.commit(() => app.open.session.prepareDelete(id, Date.now()));
    toast('Deleted');
    go(`#/w/${app.open.wiki}`);
  } catch (e) {
    toast(errorText(e), 'error');
    reportError(e);
  }
}

// ---------------------------------------------------------------------------------------------
// Editing

/**
 * The editor. `path` null means a new page (`suggested` pre-fills its path). Saving never loses
 * text: on a conflict the user's text stays in the editor, merged with the other version when
 * that is clean, with both sides marked when it is not, and "Restore my text" brings back exactly
 * what they typed.
 */
export async function showEditor(app, path, suggested = '') {
  const w = app.open;
  let id = path ? w.session.find(path) : null;
  if (path && !id) return go(`#/w/${w.wiki}/new?path=${encodeURIComponent(path)}`);
  if (w.info.role === 'reader') {
    replace(main(), h('div', { class: 'panel panel-warn' }, h('h2', {}, 'Read-only'), h('p', {}, 'You can read this wiki but not write it.'), enforced('crypto', 'Every client rejects a state signed by a reader')));
    return;
  }
  let base = '';
  let baseText = '';
  if (id) {
    try {
      await w.view(id);
    } catch (e) {
      return showError(e);
    }
    base = w.session.hashOf(id);
    baseText = w.session.text(id) || '';
  }
  const pathInput = h('input', { id: 'edit-path', class: 'edit-path', value: path || suggested, placeholder: 'Folder/Page name', 'aria-label': 'Page path', disabled: !!id });
  const text = h('textarea', { id: 'editor', class: 'editor mono', spellcheck: 'true', 'aria-label': 'Page text (markdown)' });
  text.value = id ? baseText : `# ${pageName((suggested || 'New page').split('/').pop())}\n\n`;
  const preview = h('article', { class: 'page-body preview', id: 'preview' });
  const notice = h('div', { class: 'edit-notice', id: 'edit-notice', hidden: true });
  const status = h('span', { class: 'edit-status', id: 'edit-status' });
  let mine = null; // the user's own text, kept across a merge
  let saved = text.value;
  // A new page's path is what the user typed, as the client core makes it a markdown path.
  const targetPath = () => (id ? path : zk.markdownPath(pathInput.value));
  const draw = () => {
    const p = id ? path : zk.markdownPath(pathInput.value || 'Untitled');
    setTrustedHtml(preview, JSON.parse(w.session.preview(p, text.value)).html);
  };
  let timer = null;
  text.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(draw, 120);
    status.textContent = text.value === saved ? '' : 'Unsaved changes';
  });
  text.addEventListener('keydown', (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && ev.key === 's') {
      ev.preventDefault();
      save();
    }
  });
  app.leaveGuard = (unloading) => text.value === saved || (!unloading && confirm('Leave without saving? Your changes will be lost.'));

  const showNotice = (kind, ...children) => {
    notice.className = `edit-notice notice-${kind}`;
    replace(notice, ...children);
    notice.hidden = false;
  };

  async function onConflict(e) {
    // The page changed (or went away) on the server since editing began.
    const theirsId = w.session.find(targetPath()) || id;
    let theirs = null;
    let who = 'another writer';
    try {
      if (theirsId && w.session.hashOf(theirsId)) {
        const v = await w.view(theirsId);
        theirs = w.session.text(theirsId);
        who = v.signer || v.author || who;
      }
    } catch (err) {
      return showError(err);
    }
    if (mine === null) mine = text.value;
    if (theirs === null) {
      id = null;
      base = '';
      pathInput.disabled = false;
      showNotice('warn', h('strong', {}, 'This page was deleted by someone else while you edited. '), 'Your text is still here; saving creates the page again.');
      return;
    }
    const merged = JSON.parse(zk.mergeTexts(baseText, mine, theirs, `${who}'s version`));
    base = w.session.hashOf(theirsId);
    baseText = theirs;
    text.value = merged.text;
    draw();
    const restore = h('button', { class: 'btn btn-small', type: 'button', id: 'restore-mine', onclick: () => { text.value = mine; draw(); } }, 'Restore my text');
    const showTheirs = h('button', {
      class: 'btn btn-small btn-ghost',
      type: 'button',
      id: 'show-theirs',
      onclick: () => dialog(`${who}'s version`, [h('pre', { class: 'theirs mono' }, theirs)], [{ label: 'Close' }]),
    }, `Show ${who}'s version`);
    if (merged.conflicts === 0) {
      showNotice('info', h('strong', {}, `${who} saved this page while you were editing. `), 'Their changes and yours did not overlap and are merged below: check, then save.', h('div', { class: 'notice-actions' }, restore, showTheirs));
    } else {
      showNotice('warn', h('strong', {}, `${who} changed the same lines while you were editing. `),
        `${merged.conflicts} conflicting part${merged.conflicts === 1 ? ' is' : 's are'} marked with <<<<<<< and >>>>>>> below, with both versions. Keep what you want, remove the markers, and save.`,
        h('div', { class: 'notice-actions' }, restore, showTheirs));
    }
    status.textContent = 'Unsaved changes (merged)';
    e.handled = true;
  }

  async function save() {
    const p = targetPath();
    saveBtn.disabled = true;
    status.textContent = 'Encrypting and saving…';
    try {
      const pending = await w.commit(() => w.session.preparePut(id || '', p, text.value, base, Date.now(), message.value));
      id = pending.page;
      pending.free();
      saved = text.value;
      message.value = '';
      mine = null;
      app.leaveGuard = null;
      toast('Saved');
      go(pageRoute(w.wiki, p));
    } catch (e) {
      if (e && e.name === 'ConflictError') {
        await onConflict(e);
      } else {
        status.textContent = '';
        showNotice('error', h('strong', {}, 'Not saved: '), errorText(e), ' Your text is still here.');
        reportError(e);
      }
    } finally {
      saveBtn.disabled = false;
    }
  }

  // An optional note on the change, like a commit message: kept encrypted with the version.
  const message = h('input', { id: 'edit-message', class: 'edit-message', maxlength: 4096, placeholder: 'What changed? (optional)', 'aria-label': 'Change message (optional)' });
  message.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      save();
    }
  });
  const saveBtn = h('button', { class: 'btn btn-primary', id: 'save', type: 'button', onclick: save }, 'Save');
  const cancel = h('a', { class: 'btn btn-ghost', href: id ? pageRoute(w.wiki, path) : `#/w/${w.wiki}` }, 'Cancel');
  replace(main(),
    h('div', { class: 'page-head' },
      h('h1', {}, id ? `Editing ${pageName(path)}` : 'New page'),
      h('div', { class: 'page-meta' }, 'Encrypted in this browser before it is sent. ', enforced('crypto', 'XChaCha20-Poly1305 under the wiki key; the server stores ciphertext only'))),
    h('div', { class: 'edit-bar' }, id ? h('span', { class: 'mono edit-path-label' }, path) : pathInput, h('span', { class: 'spacer' }), status, message, cancel, saveBtn),
    notice,
    h('div', { class: 'edit-grid' },
      h('div', { class: 'edit-pane' }, h('div', { class: 'pane-label' }, 'Markdown'), text),
      h('div', { class: 'edit-pane' }, h('div', { class: 'pane-label' }, 'Preview'), preview)));
  draw();
  text.focus();
}

// ---------------------------------------------------------------------------------------------
// History

/**
 * A page's history. The versions come from Rust's verified walk back from the head (batches of
 * `/states`): each older state is accepted only as the predecessor of the one after it, so a
 * server that rewrote history shows a red error where the chain breaks, never its version. Each
 * version names the member whose key signed it (the record's author only as a claim when it
 * differs) and is opened against the manifest entry that member signed.
 */
export async function showHistory(app, path) {
  const w = app.open;
  const id = w.session.find(path);
  if (!id) return go(pageRoute(w.wiki, path));
  replace(main(), h('div', { class: 'loading' }, 'Verifying history…'));
  const walk = w.session.pageHistory(id, 30);
  const versions = [];
  let failure = null;
  let complete = false;
  const opened = new Map(); // seq → opened version (or {error})

  // Walks further back (verifying every state) and opens the versions found.
  async function walkOn() {
    const found = await walkAndOpen(w, walk, opened, (v) => v.seq, () => id, () => '');
    failure = failure || found.failure;
    complete = found.complete;
    versions.splice(0, versions.length, ...found.versions);
  }

  // The page's own version numbers (1 = its first), known once the walk reached its creation;
  // until then, counted back from the current one. The wiki's state number stays in a tooltip.
  const label = (i) => (complete ? `Version ${versions.length - i}` : i === 0 ? 'Current' : `${i} before current`);
  const list = h('ol', { class: 'history-list', id: 'history-list' });
  const diffBox = h('div', { class: 'diff', id: 'diff' });
  const footer = h('div', { class: 'history-foot', id: 'history-foot' });
  let selected = 0;
  const select = (i) => {
    selected = i;
    for (const li of list.children) li.classList.toggle('active', Number(li.dataset.i) === i);
    const v = versions[i];
    const o = v && opened.get(v.seq);
    if (!v || v.deleted || !o || o.error) {
      replace(diffBox, h('p', { class: 'muted' }, o && o.error ? `This version failed its checks: ${o.error}` : 'Deleted in this version.'));
      return;
    }
    const prev = versions.slice(i + 1).map((x) => opened.get(x.seq)).find((x) => x && !x.error);
    // With no verified version before it, the oldest one shown is the page's first only when
    // the walk reached the page's creation; otherwise it is shown whole, not as a diff.
    const shown = prev || complete
      ? renderDiff(prev ? prev.text : '', o.text, prev ? label(versions.findIndex((x) => x.seq === prev.seq)) : 'nothing', label(i))
      : h('div', {},
        h('div', { class: 'diff-head' }, `${label(i)}, as written (no earlier version ${failure ? 'could be verified' : 'loaded yet'} to compare with)`),
        h('pre', { class: 'version-text mono' }, o.text));
    replace(diffBox, shown,
      w.info.role === 'reader' || i === 0 ? null : h('p', { class: 'version-actions' }, o.kind !== 'markdown' ? null : h('button', {
        class: 'btn btn-small',
        type: 'button',
        id: 'revert-version',
        onclick: () => revertTo(app, path, o, label(i)),
      }, `Revert to ${label(i).toLowerCase()}`), ' ', h('button', {
        class: 'btn btn-small btn-ghost',
        type: 'button',
        id: 'restore-version',
        title: 'Opens the editor with this version\'s text',
        onclick: () => restoreVersion(app, path, o.text),
      }, `Restore ${label(i).toLowerCase()}`)));
    if (o.kind === 'markdown') {
      diffBox.append(h('p', {}, h('button', {
        class: 'btn btn-small btn-ghost',
        type: 'button',
        id: 'blame-version',
        title: 'Who brought in each line of this version',
        onclick: () => replace(diffBox, blameView({ versions, opened, label, i, complete, diffLines: zk.diffLines, onSelect: select })),
      }, 'Blame')));
    }
  };
  const draw = () => {
    replace(list);
    versions.forEach((v, i) => {
      const o = opened.get(v.seq) || {};
      const row = o.error
        ? h('li', { class: 'history-item bad', dataset: { i } }, h('span', { class: 'seq', title: `Wiki version ${v.seq}` }, label(i)),
          h('span', { class: 'history-who' }, h('strong', {}, v.signer || '?')),
          h('span', { class: 'history-error' }, `✗ ${o.error}`))
        : h('li', { class: 'history-item', dataset: { i }, tabindex: 0 },
          h('span', { class: 'seq', title: `Wiki version ${v.seq}` }, label(i)),
          h('span', { class: 'history-who' },
            h('strong', { title: 'The member whose key signed this version (checked against the owner-signed keyring)' }, v.signer || '?'),
            v.deleted ? ' deleted the page' : null,
            o.claim ? h('span', { class: 'claim', title: 'The author name the record gives: a claim, not checked' }, ` written as “${o.claim}”`) : null,
            o.path && o.path !== path ? h('span', { class: 'muted' }, ` · was ${pageName(o.shown_path)}`) : null),
          h('span', { class: 'history-time', title: 'The writer\'s clock (a claim)' }, o.written_at ? when(o.written_at) : ''),
          o.message ? h('span', { class: 'history-message', title: o.email ? `Written as ${o.email} (a claim)` : 'The message saved with this version' }, o.message) : null);
      row.addEventListener('click', () => select(i));
      list.appendChild(row);
    });
    replace(footer,
      failure ? h('div', { class: 'panel panel-danger history-broken', id: 'history-error' },
        h('strong', {}, 'History could not be verified further back. '),
        errorText(failure),
        h('p', { class: 'muted small' }, `${versions.length ? 'The versions listed below are verified; older' : 'Older'} ones are not shown, because what the server returned for them does not chain to the current state.`)) : null);
    replace(moreBox,
      !failure && !complete ? h('button', {
        class: 'btn btn-small btn-ghost',
        type: 'button',
        id: 'history-more',
        onclick: async () => {
          walk.more(30);
          await walkOn();
          draw();
          select(selected);
        },
      }, 'Older versions…') : null,
      !failure && complete ? h('p', { class: 'muted small' }, 'The first version of this page is the last above.') : null);
  };
  const moreBox = h('div', { class: 'history-more' });

  await walkOn();
  if (!document.body.contains(main()) || w !== app.open) {
    walk.free();
    return;
  }
  replace(main(),
    h('div', { class: 'page-head' },
      h('h1', {}, `History of ${pageName(path)}`),
      h('div', { class: 'page-meta' }, 'Each version is verified back from the current one, state by state, and names the member whose key signed it. ', enforced('crypto', 'Ed25519 signatures by members of the owner-signed keyring, hash-linked states, SHA-256 of each envelope')),
      h('div', { class: 'page-actions' }, h('a', { class: 'btn btn-small btn-ghost', href: pageRoute(w.wiki, path) }, 'Back to page'))),
    footer,
    h('div', { class: 'history' }, h('div', {}, list, moreBox), diffBox));
  draw();
  if (versions.length) select(0);
}

/**
 * Walks a verified history further back (Rust checks every state as the predecessor of the one
 * after it) and opens the versions not opened yet, each against the manifest entry its signer
 * signed: `opened` maps `key(v)` to the opened record or `{error}`; `blobOf(v)` is the page whose
 * envelope to fetch and `pageOf(v)` what `openVersion` is told (`''` in one page's history).
 * Returns the walk's `{versions, complete}` and `failure`, the error where the chain broke.
 */
async function walkAndOpen(w, walk, opened, key, blobOf, pageOf) {
  let failure = null;
  try {
    for (;;) {
      const range = JSON.parse(walk.wanted());
      if (!range) break;
      walk.load(await api.states(w.wiki, range.from, range.to));
    }
  } catch (e) {
    reportError(e);
    failure = e;
  }
  const found = JSON.parse(walk.versions());
  await api.pool(found.versions.filter((v) => !v.deleted && !opened.has(key(v))), 4, async (v) => {
    try {
      const bytes = await w.fetchBlob(blobOf(v), v.hash);
      opened.set(key(v), JSON.parse(w.session.openVersion(walk, v.seq, pageOf(v), bytes)));
    } catch (e) {
      reportError(e);
      opened.set(key(v), { error: errorText(e) });
    }
  });
  return { ...found, failure };
}

/**
 * The wiki's recent changes: every page version of the latest wiki versions, newest first,
 * from Rust's verified walk back from the head (as a page's history: a server that rewrote
 * history shows an error where the chain breaks). Each entry is opened against the manifest
 * entry its signer signed, for its path, message and time.
 */
export async function showChanges(app) {
  const w = app.open;
  replace(main(), h('div', { class: 'loading' }, 'Verifying history…'));
  const walk = w.session.pageHistory('', 30);
  let failure = null;
  let found = { versions: [], complete: false };
  const opened = new Map(); // `${seq}/${page}` → opened version (or {error})
  const key = (v) => `${v.seq}/${v.page}`;
  async function walkOn() {
    found = await walkAndOpen(w, walk, opened, key, (v) => v.page, (v) => v.page);
    failure = failure || found.failure;
  }
  const list = h('ol', { class: 'history-list changes-list', id: 'changes-list' });
  const moreBox = h('div', { class: 'history-more' });
  const draw = () => {
    replace(list);
    // A removal has no record: it is named by the page's other versions in the list.
    const named = new Map();
    for (const v of found.versions) {
      const o = opened.get(key(v));
      if (o && o.shown_path && !named.has(v.page)) named.set(v.page, o.shown_path);
    }
    for (const v of found.versions) {
      const o = opened.get(key(v)) || {};
      if (o.kind === 'index' || o.kind === 'settings') continue;
      const current = w.session.pathOf(v.page);
      const path = o.shown_path || named.get(v.page) || current;
      const name = path ? pageName(path) : `page ${v.page.slice(0, 8)}…`;
      const target = current ? h('a', { href: pageRoute(w.wiki, current) }, name) : h('span', {}, name);
      list.appendChild(h('li', { class: `history-item${o.error ? ' bad' : ''}`, dataset: { seq: v.seq, page: v.page, deleted: v.deleted ? 'yes' : '' } },
        h('span', { class: 'seq', title: 'Wiki version (every saved change is one)' }, `v${v.seq}`),
        h('span', { class: 'history-who' }, target, ' ',
          h('span', { class: 'muted' }, v.deleted ? 'deleted by ' : 'by '), h('strong', {}, v.signer || '?'),
          o.error ? h('span', { class: 'history-error' }, ` ✗ ${o.error}`) : null),
        h('span', { class: 'history-time', title: 'The writer\'s clock (a claim)' }, o.written_at ? when(o.written_at) : ''),
        o.message ? h('span', { class: 'history-message' }, o.message) : null));
    }
    replace(moreBox,
      failure ? h('div', { class: 'panel panel-danger history-broken', id: 'changes-error' }, h('strong', {}, 'History could not be verified further back. '), errorText(failure)) : null,
      !failure && !found.complete ? h('button', {
        class: 'btn btn-small btn-ghost',
        type: 'button',
        id: 'changes-more',
        onclick: async () => {
          walk.more(30);
          await walkOn();
          draw();
        },
      }, 'Older changes…') : null,
      !failure && found.complete ? h('p', { class: 'muted small' }, 'This is where the wiki began.') : null);
  };
  await walkOn();
  if (w !== app.open) {
    walk.free();
    return;
  }
  replace(main(),
    h('div', { class: 'page-head' },
      h('h1', {}, 'Recent changes'),
      h('div', { class: 'page-meta' }, 'Every change to the wiki, newest first, verified back from the current version state by state and named by the member whose key signed it. ', enforced('crypto', 'Ed25519 signatures by members of the owner-signed keyring, hash-linked states, SHA-256 of each envelope'))),
    list, moreBox);
  draw();
}

/**
 * Reverts a page to an earlier version in one step, after a confirmation: that version's text
 * becomes a new version (the versions after it stay in the history). Built on the current
 * version the user saw, so a change saved meanwhile is a conflict, never overwritten.
 */
async function revertTo(app, path, version, versionLabel) {
  const w = app.open;
  const id = w.session.find(path);
  const base = id && w.session.hashOf(id);
  if (!base) return;
  const what = versionLabel.toLowerCase();
  const choice = await dialog(`Revert to ${what}?`, [
    h('p', {}, `“${pageName(path)}” gets the text of ${what} back, as a new version. The versions after it stay in the history.`),
  ], [
    { label: 'Cancel' },
    { label: 'Revert', kind: 'primary', id: 'revert-ok' },
  ]);
  if (choice !== 'Revert') return;
  try {
    await w.commit(() => w.session.preparePut(id, w.session.pathOf(id) || path, version.text, base, Date.now(), `Revert to ${what}`));
    toast(`Reverted to ${what}`);
    go(pageRoute(w.wiki, w.session.pathOf(id) || path));
  } catch (e) {
    toast(e && e.name === 'ConflictError' ? 'The page changed since you opened its history: nothing was reverted. Look at the new version first.' : errorText(e), 'error');
    reportError(e);
  }
}

function restoreVersion(app, path, text) {
  go(pageRoute(app.open.wiki, path, 'edit'));
  // The editor loads the current version; put the old text in once it is there.
  setTimeout(function fill(tries = 0) {
    const ed = document.getElementById('editor');
    if (!ed) {
      if (tries < 50) setTimeout(() => fill(tries + 1), 50);
      return;
    }
    ed.value = text;
    ed.dispatchEvent(new Event('input'));
  }, 50);
}

/** A diff table from Rust's line diff. */
export function renderDiff(oldText, newText, oldLabel, newLabel) {
  const d = JSON.parse(zk.diffLines(oldText, newText));
  const head = h('div', { class: 'diff-head' }, `${newLabel} compared with ${oldLabel.toLowerCase()}: `, h('span', { class: 'diff-add' }, `+${d.added}`), ' ', h('span', { class: 'diff-del' }, `−${d.removed}`));
  if (d.hunks.length === 0) return h('div', {}, head, h('p', { class: 'muted' }, 'No change to the text (renamed, or saved unchanged).'));
  const table = h('table', { class: 'diff-table mono' });
  d.hunks.forEach((hunk, k) => {
    if (k > 0) table.appendChild(h('tr', { class: 'diff-gap' }, h('td', { colspan: 3 }, '⋯')));
    for (const l of hunk) {
      const cls = l.tag === '+' ? 'ins' : l.tag === '-' ? 'del' : 'ctx';
      table.appendChild(h('tr', { class: cls }, h('td', { class: 'ln' }, l.old ?? ''), h('td', { class: 'ln' }, l.new ?? ''), h('td', { class: 'code' }, `${l.tag} ${l.text}`)));
    }
  });
  return h('div', {}, head, table);
}
