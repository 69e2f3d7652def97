// zkwiki's web app: startup, sign-in, the wiki list, the sidebar and the router.
//
// JavaScript here is glue: DOM, events and fetch. Key derivation, verification, decryption,
// encryption, markdown rendering and HTML sanitizing all run in Rust (./pkg/web_wasm.js).

import init, * as zk from './pkg/web_wasm.js';
import * as api from './api.js';
import * as device from './device.js';
import { h, replace, dialog, toast, copyText, nextPaint, enforced, pageName, pageRoute } from './dom.js';
import { clearProblems, integrityProblem } from './banner.js';
import { openWiki, reportError, errorText } from './wiki.js';
import { showIsolation } from './isolation.js';
import * as pages from './pages.js';
import * as members from './members.js';
import * as shell from './shell.js';

/** Everything the app holds in memory. Secrets live inside the Rust objects. */
export const app = {
  account: null, // zk.Account: the unsealed identity
  token: null,
  expiresAt: 0,
  wikis: [],
  open: null, // OpenWiki
  titles: new Map(),
  leaveGuard: null, // () => boolean: false keeps the user on the page (unsaved text)
};

const main = () => document.getElementById('main');

// ---------------------------------------------------------------------------------------------
// Startup

// Uncaught errors are kept for the end-to-end tests' failure reports.
window.zkwikiErrors = [];
window.addEventListener('error', (ev) => window.zkwikiErrors.push(String(ev.message)));
window.addEventListener('unhandledrejection', (ev) => window.zkwikiErrors.push(String(ev.reason && ev.reason.message ? ev.reason.message : ev.reason)));
document.addEventListener('securitypolicyviolation', (ev) => window.zkwikiErrors.push(`CSP blocked ${ev.blockedURI || 'inline'} (${ev.violatedDirective})`));

/** The app's compiled WebAssembly module (for the login worker). */
let wasmModule = null;

/**
 * Argon2id in a worker (see argon2-worker.js), so the tab keeps painting and answering while it
 * runs: resolves with the 32-byte protector key, or rejects with the Rust error (its name,
 * message and hint). Marks `zk-kdf-start` and `zk-kdf-done` on the page's timeline.
 */
function deriveInWorker(prelogin, passphrase) {
  performance.mark('zk-kdf-start');
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./argon2-worker.js', import.meta.url), { type: 'module', name: 'argon2' });
    const done = () => {
      performance.mark('zk-kdf-done');
      worker.terminate();
    };
    worker.onmessage = ({ data }) => {
      done();
      if (data.key) resolve(data.key);
      else reject(Object.assign(new Error(data.error.message), { name: data.error.name || 'Error', hint: data.error.hint }));
    };
    worker.onerror = (ev) => {
      done();
      reject(new Error(`The key-derivation worker failed: ${ev.message || 'it could not start'}`));
    };
    worker.postMessage({ module: wasmModule, prelogin, passphrase });
  });
}

/**
 * A new passphrase's key: fresh Argon2id parameters (the passphrase checked first, in Rust),
 * then the derivation in the worker. Resolves with the parameters (the `/prelogin` answer's
 * shape) and the 32-byte key; the caller wipes the key once Rust has taken it.
 */
async function deriveNewPassphraseKey(passphrase) {
  const kdf = zk.newPassphraseKdf(passphrase);
  return { kdf, key: await deriveInWorker(kdf, passphrase) };
}

/** A status line that says the slow Argon2id step is running, with a spinner. */
function showDeriving(status, what) {
  replace(status, h('span', { class: 'spinner', 'aria-hidden': 'true' }), `${what} `,
    h('span', { class: 'muted' }, 'deriving your key from the passphrase (Argon2id), in the background'));
}

async function start() {
  const meta = document.querySelector('meta[name="zkwiki-wasm-integrity"]');
  const integrity = meta && meta.content.startsWith('sha') ? meta.content : undefined;
  const wasmUrl = new URL('./pkg/web_wasm_bg.wasm', import.meta.url);
  // Compiled once: the login worker (argon2-worker.js) instantiates this same module.
  wasmModule = await WebAssembly.compileStreaming(fetch(wasmUrl, integrity ? { integrity } : {}));
  await init({ module_or_path: wasmModule });
  const version = document.getElementById('version');
  version.textContent = 'zkwiki';
  version.title = zk.formatVersion();
  window.addEventListener('hashchange', () => route());
  window.addEventListener('beforeunload', (ev) => {
    if (app.leaveGuard && !app.leaveGuard(true)) ev.preventDefault();
  });
  document.addEventListener('click', onAnchorClick);
  shell.install();
  const saved = await device.loadSignIn();
  if (saved) {
    try {
      app.account = zk.Account.importFromDevice(saved.secret);
      saved.secret.fill(0);
      app.token = saved.token;
      app.expiresAt = saved.expiresAt;
      api.setToken(app.token);
      await loadWikis();
    } catch (e) {
      await signOutLocally();
      if (!(e instanceof api.ApiError && e.status === 401)) toast(`Sign-in not restored: ${e.message}`, 'error');
    }
  }
  document.body.classList.remove('booting');
  // Read-only hooks for the end-to-end tests and benchmarks (nothing a script on this origin
  // could not reach anyway; page content cannot run script).
  window.zkwikiTest = {
    wiki: () => (app.open ? app.open.wiki : null),
    pageId: (path) => (app.open ? app.open.session.find(path) || null : null),
    info: () => (app.open ? app.open.info : null),
    // Runs the 30-second poll now; resolves when it is done (history walks included).
    poll: async () => {
      await pollOnce();
      if (app.open && app.open.attributing) await app.open.attributing;
    },
  };
  window.zkwikiReady = true;
  window.zkwikiReadyAt = performance.now();
  await route();
}

/** In-page links to headings and footnotes (#zk-…) scroll instead of changing the route. */
function onAnchorClick(ev) {
  const a = ev.target.closest && ev.target.closest('a[href^="#zk-"]');
  if (!a) return;
  ev.preventDefault();
  const target = document.getElementById(a.getAttribute('href').slice(1));
  if (target) target.scrollIntoView({ behavior: 'smooth', block: 'start' });
}

// ---------------------------------------------------------------------------------------------
// Routing

/** Navigates, asking first when the editor holds unsaved text. */
export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

let lastHash = null;
async function route() {
  const hash = location.hash || '#/';
  if (app.leaveGuard && lastHash !== hash) {
    if (!app.leaveGuard(false)) {
      history.replaceState(null, '', lastHash);
      return;
    }
    app.leaveGuard = null;
  }
  lastHash = hash;
  document.body.classList.toggle('signed-out', !app.account);
  if (!app.account) {
    renderSidebar();
    if (hash.startsWith('#/register')) return showRegister();
    return showLogin();
  }
  const [pathPart, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  const parts = pathPart.split('/').filter((s, i) => i > 0 || s !== '');
  try {
    if (parts[0] !== 'w' || !/^[0-9a-f]{32}$/.test(parts[1] || '')) {
      if (app.open) closeWiki();
      renderSidebar();
      return showWikiList();
    }
    const wiki = parts[1];
    if (!app.open || app.open.wiki !== wiki) {
      await enterWiki(wiki);
      if (!app.open) return;
    }
    renderSidebar();
    const view = parts[2] || '';
    const path = parts.slice(3).map(decodeURIComponent).join('/');
    if (view === '') return pages.showHome(app, wiki);
    if (view === 'members') return members.show(app);
    if (view === 'new') return pages.showEditor(app, null, params.get('path') || '');
    if (view === 'p') return pages.showPage(app, path, params.get('h'));
    if (view === 'edit') return pages.showEditor(app, path);
    if (view === 'history') return pages.showHistory(app, path);
    if (view === 'changes') return pages.showChanges(app);
    return pages.showHome(app, wiki);
  } catch (e) {
    showError(e);
  }
}

/** Shows an error in the main area: integrity failures as such, never as a blank page. */
export function showError(e, context) {
  reportError(e);
  const integrity = e && (e.name === 'IntegrityError' || e.name === 'VersionError');
  replace(
    main(),
    h('div', { class: integrity ? 'panel panel-danger' : 'panel panel-warn', id: 'error-panel' },
      h('h2', {}, integrity ? 'Integrity check failed' : 'Something went wrong'),
      context ? h('p', { class: 'muted' }, context) : null,
      h('p', {}, e && e.message ? e.message : String(e)),
      e && e.hint ? h('p', { class: 'muted' }, e.hint) : null,
      integrity
        ? h('p', { class: 'muted' }, 'The server sent data that fails the checks every zkwiki client runs. ' +
          'Nothing from it is shown. This can mean the server or its storage was tampered with.')
        : null),
  );
}

// ---------------------------------------------------------------------------------------------
// Wikis

async function loadWikis() {
  const res = await api.json('GET', '/wikis');
  app.wikis = res.wikis || [];
}

let pollTimer = null;

/**
 * Every 30 s while the tab is visible and nothing is being edited, fetch the wiki's head and
 * verify it (with every state since the one this tab holds): new pages show up, a page being
 * read that changed is shown in its new version, and a server that rolls back or forks the wiki
 * is caught while you read.
 */
function startPolling() {
  clearInterval(pollTimer);
  pollTimer = setInterval(() => {
    if (document.visibilityState === 'visible' && !app.leaveGuard) pollOnce();
  }, 30000);
}

async function pollOnce() {
  const w = app.open;
  if (!w) return;
  const before = w.info.seq;
  try {
    const changed = await w.refresh();
    if (app.open !== w || w.info.seq === before) return;
    renderSidebar();
    const m = location.hash.match(/^#\/w\/[0-9a-f]{32}\/p\/([^?]*)/);
    const current = m ? w.session.find(m[1].split('/').map(decodeURIComponent).join('/')) : null;
    if (current && changed.includes(current)) {
      toast('This page changed: showing the latest version');
      route();
    }
  } catch (e) {
    reportError(e);
    toast(errorText(e), 'error');
  }
}

async function enterWiki(wiki) {
  closeWiki();
  replace(main(), h('div', { class: 'loading' }, 'Verifying and decrypting…'));
  try {
    app.open = await openWiki(app.account, wiki);
    app.open.onChanged = () => {
      showIsolation(app);
      renderSidebar();
    };
    showIsolation(app);
    performance.mark('zk-wiki-open');
    device.setLastWiki(app.account.user, wiki);
    startPolling();
    // Once pages are decrypted the tree can show their titles: draw it again.
    app.open.prefetch().then(() => {
      renderSidebar(true);
      pages.refreshBacklinks(app);
    }, () => {});
  } catch (e) {
    app.open = null;
    renderSidebar();
    showError(e);
  }
}

function closeWiki() {
  clearInterval(pollTimer);
  if (app.open) {
    // The object URLs of decrypted attachments go with the wiki.
    for (const url of (app.open.urls || new Map()).values()) URL.revokeObjectURL(url);
    app.open.session.free();
    app.open = null;
  }
  clearProblems();
  showIsolation(app);
}

function showWikiList() {
  const list = h('div', { class: 'wiki-grid' });
  for (const w of app.wikis) {
    const title = app.titles.get(w.wiki);
    list.appendChild(
      h('a', { class: 'wiki-card', href: `#/w/${w.wiki}`, dataset: { wiki: w.wiki } },
        h('div', { class: 'wiki-card-title' }, title || 'Wiki'),
        h('div', { class: 'wiki-card-id mono' }, w.wiki.slice(0, 16)),
        h('div', { class: 'wiki-card-meta', title: `Wiki version ${w.seq}` }, w.role === 'owner' ? 'You own it' : `You are a ${w.role}`)),
    );
  }
  replace(
    main(),
    h('div', { class: 'page-head' }, h('h1', {}, 'Your wikis')),
    app.wikis.length ? list : h('p', { class: 'muted' }, 'No wiki yet. Create one: only you hold its key until you invite someone.'),
    h('p', {}, h('button', { class: 'btn btn-primary', id: 'create-wiki', type: 'button', onclick: createWiki }, 'New wiki')),
    h('p', { class: 'muted small' }, 'Wiki names are encrypted: each is decrypted here from its Home page.'),
  );
  loadTitles();
}

/** Opens the wikis of the list in the background to show their names (verifying each). */
async function loadTitles() {
  for (const w of app.wikis.filter((x) => !app.titles.has(x.wiki)).slice(0, 12)) {
    const card = () => document.querySelector(`.wiki-card[data-wiki="${w.wiki}"]`);
    if (!card() || app.open) return;
    let ow = null;
    try {
      ow = await openWiki(app.account, w.wiki, { attribute: false });
      const home = ow.session.find('Home.md') || ow.session.find('index.md');
      const title = ow.info.title || (home ? (await ow.view(home)).title || 'Home' : 'Wiki');
      app.titles.set(w.wiki, title);
      const el = card();
      if (el) el.querySelector('.wiki-card-title').textContent = title;
    } catch (e) {
      reportError(e);
      const el = card();
      if (el) {
        el.classList.add('wiki-card-bad');
        el.querySelector('.wiki-card-meta').textContent = `${w.role} · ${e.name === 'IntegrityError' ? 'integrity check failed' : errorText(e)}`;
      }
    } finally {
      if (ow) ow.session.free();
    }
  }
}

async function createWiki() {
  const nameInput = h('input', { id: 'wiki-name', class: 'wide', placeholder: 'e.g. Team notes', value: 'My wiki' });
  const choice = await dialog('New wiki', [
    h('p', {}, 'Its name is the title of its Home page, so it is encrypted like every page.'),
    nameInput,
    h('p', { class: 'small' }, 'Only you hold its key until you invite someone. ', enforced('crypto', 'A fresh wiki secret, wrapped to your key in a keyring you sign')),
  ], [{ label: 'Cancel' }, { label: 'Create', kind: 'primary', id: 'wiki-create-ok' }]);
  if (choice !== 'Create') return;
  const name = nameInput.value.trim().replace(/[\r\n]/g, ' ') || 'My wiki';
  try {
    const made = app.account.createWiki();
    const wiki = made.wiki;
    await api.call('POST', '/wikis', made.body);
    made.free();
    await loadWikis();
    await enterWiki(wiki);
    if (!app.open) return;
    const welcome = `---\ntitle: ${JSON.stringify(name)}\n---\n# Welcome\n\nThis is your new wiki. Everything on it is encrypted in this browser before it is sent: the server stores only ciphertext.\n\n- Edit this page with **Edit** above.\n- Link pages with \`[[Page Name]]\`; a link to a page that does not exist yet is marked as missing, and following it creates the page.\n- Invite people and agents under **Members**.\n`;
    await app.open.commit(() => app.open.session.preparePut('', 'Home.md', welcome, '', Date.now(), ''));
    noteTitle(wiki, name);
    go(pageRoute(wiki, 'Home.md'));
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------------------------------------
// Sidebar

let sidebarKey = '';
/** Draws the sidebar, unless nothing it shows changed since the last time. */
export function renderSidebar(force = false) {
  const side = document.getElementById('sidebar');
  const w = app.open;
  const key = JSON.stringify([
    app.account ? app.account.user : null,
    w ? [w.wiki, w.info.seq, w.info.role, w.info.members, w.session.generation, w.session.failures().length] : null,
    w ? w.info.title || app.titles.get(w.wiki) : null,
  ]);
  if (key === sidebarKey && side.childElementCount > 0 && !force) return;
  sidebarKey = key;
  const brand = h('a', { class: 'brand', href: '#/' }, h('span', { class: 'brand-mark' }, 'zk'), 'wiki');
  if (!app.account) {
    replace(side, brand, h('p', { class: 'side-note' }, 'End-to-end encrypted wiki. The server never sees your pages.'));
    return;
  }
  const parts = [brand];
  if (app.open) {
    const w = app.open;
    // The wiki's own title (encrypted in its settings), else its Home page's.
    const title = w.info.title || app.titles.get(w.wiki) || 'Wiki';
    shell.setTopTitle(title);
    parts.push(
      h('div', { class: 'side-wiki' },
        h('a', { href: `#/w/${w.wiki}`, class: 'side-wiki-title' }, title),
        h('div', { class: 'side-wiki-meta', title: `Wiki version ${w.info.seq}: every saved change is one version` }, `You are ${w.info.role === 'owner' ? 'an owner' : `a ${w.info.role}`} · ${w.info.members} member${w.info.members === 1 ? '' : 's'}`)),
      pages.searchBox(app),
      h('nav', { class: 'tree', 'aria-label': 'Pages' }, pages.tree(app)),
      h('div', { class: 'side-actions' },
        w.info.role === 'reader' ? null : h('a', { class: 'btn btn-small', href: `#/w/${w.wiki}/new`, id: 'new-page' }, '+ New page'),
        h('a', { class: 'btn btn-small btn-ghost', href: `#/w/${w.wiki}/changes`, id: 'changes-link' }, 'Recent changes'),
        h('a', { class: 'btn btn-small btn-ghost', href: `#/w/${w.wiki}/members`, id: 'members-link' }, 'Members')),
    );
  } else {
    shell.setTopTitle('');
    parts.push(h('div', { class: 'side-note' }, 'Pick a wiki, or create one.'));
  }
  parts.push(
    h('div', { class: 'side-foot' },
      h('a', { href: '#/', class: 'side-link' }, 'All wikis'),
      h('div', { class: 'whoami' },
        h('span', { class: 'whoami-name', id: 'whoami' }, app.account.user),
        h('button', {
          class: 'fingerprint mono',
          type: 'button',
          title: 'Your key fingerprint: read it to people who invite you (click to copy)',
          onclick: async () => toast((await copyText(app.account.fingerprint)) ? 'Fingerprint copied' : app.account.fingerprint),
        }, app.account.fingerprint)),
      h('button', {
        class: 'btn btn-small btn-ghost',
        id: 'theme-toggle',
        type: 'button',
        title: 'Light or dark: the system setting, or your choice in this browser',
        onclick: (ev) => {
          shell.cycleTheme();
          ev.currentTarget.textContent = shell.themeLabel();
        },
      }, shell.themeLabel()),
      h('div', { class: 'side-foot-actions' },
        h('button', { class: 'btn btn-small btn-ghost', id: 'logout', type: 'button', onclick: logout }, 'Log out'),
        h('button', { class: 'btn btn-small btn-ghost', id: 'change-pass', type: 'button', onclick: () => changePassphrase(false) }, 'Passphrase…'))),
  );
  replace(side, ...parts);
}

/** Records a wiki's title (from its Home page) for the list and the sidebar. */
export function noteTitle(wiki, title) {
  if (title && app.titles.get(wiki) !== title) {
    app.titles.set(wiki, title);
    renderSidebar();
  }
}

// ---------------------------------------------------------------------------------------------
// Sign-in

function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input, hint ? h('span', { class: 'field-hint' }, hint) : null);
}

function authCard(title, subtitle, form, footer) {
  replace(
    main(),
    h('div', { class: 'auth' },
      h('div', { class: 'auth-brand' }, h('span', { class: 'brand-mark' }, 'zk'), 'wiki'),
      h('p', { class: 'auth-tagline' }, 'A wiki whose server never sees your pages.'),
      h('div', { class: 'auth-card' },
        h('h1', {}, title),
        h('p', { class: 'muted' }, subtitle),
        form,
        footer)),
  );
}

function showLogin() {
  let useRecovery = false;
  const user = h('input', { name: 'user', id: 'login-user', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { name: 'passphrase', id: 'login-pass', type: 'password', autocomplete: 'current-password', required: true });
  const recovery = h('textarea', { name: 'recovery', id: 'login-recovery', rows: 3, class: 'mono', placeholder: 'ZKR1-…', spellcheck: 'false' });
  const passField = field('Passphrase', pass);
  const recField = field('Recovery key', recovery, 'The key you saved when you registered.');
  recField.hidden = true;
  const keep = h('input', { type: 'checkbox', id: 'keep-signed-in' });
  const status = h('p', { class: 'form-status', role: 'status' });
  const button = h('button', { class: 'btn btn-primary btn-wide', type: 'submit', id: 'login-submit' }, 'Log in');
  const toggle = h('button', {
    class: 'linklike',
    type: 'button',
    onclick: () => {
      useRecovery = !useRecovery;
      passField.hidden = useRecovery;
      recField.hidden = !useRecovery;
      pass.required = !useRecovery;
      toggle.textContent = useRecovery ? 'Use your passphrase' : 'Lost your passphrase? Use your recovery key';
    },
  }, 'Lost your passphrase? Use your recovery key');
  const form = h('form', {
    class: 'form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      status.className = 'form-status';
      performance.clearMarks();
      performance.mark('zk-login-start');
      try {
        status.textContent = useRecovery ? 'Checking your recovery key…' : 'Unlocking…';
        await nextPaint();
        let key;
        if (useRecovery) {
          key = zk.LoginKey.fromRecoveryKey(user.value, recovery.value);
          recovery.value = '';
        } else {
          const prelogin = await api.call('POST', '/prelogin', zk.preloginBody(user.value));
          // The slow part, in a worker: the page stays responsive and shows it is working.
          form.classList.add('unlocking');
          status.id = 'unlock-status';
          showDeriving(status, 'Unlocking…');
          const derived = await deriveInWorker(prelogin, pass.value);
          try {
            key = zk.LoginKey.fromDerivedKey(user.value, prelogin, derived);
          } finally {
            derived.fill(0);
          }
        }
        performance.mark('zk-key-derived');
        status.textContent = 'Logging in…';
        const loginText = await api.call('POST', '/login', key.loginBody());
        const account = key.unlock(loginText);
        performance.mark('zk-unlocked');
        key.free();
        pass.value = '';
        await signedIn(account, JSON.parse(loginText), keep.checked);
        if (useRecovery) await changePassphrase(true);
      } catch (e) {
        status.className = 'form-status form-error';
        status.textContent = loginMessage(e);
        button.disabled = false;
      } finally {
        form.classList.remove('unlocking');
        status.removeAttribute('id');
      }
    },
  },
  field('User name', user),
  passField,
  recField,
  h('label', { class: 'check' }, keep, h('span', {}, 'Keep me signed in on this device'),
    h('span', { class: 'field-hint' }, 'Stores your keys encrypted under a key this browser will not let anyone read out. Leave off on shared computers.')),
  button,
  status,
  h('p', { class: 'small' }, toggle));
  authCard('Log in', 'Your passphrase never leaves this browser: it derives your key here, and the server only sees a proof.', form,
    [h('p', { class: 'auth-foot' }, 'New here? ', h('a', { href: '#/register', id: 'to-register' }, 'Create an account')),
      h('p', { class: 'auth-note' }, 'Key-derivation settings weaker than Argon2id with 19 MiB and 2 passes are refused, whatever the server asks. ',
        enforced('client', 'Checked in this browser before deriving anything'))]);
  user.focus();
}

function loginMessage(e) {
  if (e && e.name === 'IntegrityError') integrityProblem(e.message);
  return errorText(e);
}

function showRegister() {
  const user = h('input', { name: 'user', id: 'reg-user', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false', pattern: '[a-z0-9][a-z0-9._\\-]{0,63}' });
  const pass = h('input', { name: 'passphrase', id: 'reg-pass', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
  const pass2 = h('input', { name: 'passphrase2', id: 'reg-pass2', type: 'password', autocomplete: 'new-password', required: true });
  const status = h('p', { class: 'form-status', role: 'status' });
  const button = h('button', { class: 'btn btn-primary btn-wide', type: 'submit', id: 'reg-submit' }, 'Create account');
  const form = h('form', {
    class: 'form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      status.className = 'form-status';
      if (pass.value !== pass2.value) {
        status.className = 'form-status form-error';
        status.textContent = 'The two passphrases differ.';
        return;
      }
      button.disabled = true;
      let reg;
      try {
        status.id = 'unlock-status';
        showDeriving(status, 'Making your keys…');
        const { kdf, key } = await deriveNewPassphraseKey(pass.value);
        try {
          reg = new zk.Registration(user.value, kdf, key);
        } finally {
          key.fill(0);
        }
        status.textContent = 'Registering…';
        await api.call('POST', '/register', reg.body());
        pass.value = '';
        pass2.value = '';
        await showRecoveryKey(reg.recoveryKey());
        const loginText = await api.call('POST', '/login', reg.loginBody());
        const account = reg.finish(loginText);
        await signedIn(account, JSON.parse(loginText), false);
      } catch (e) {
        status.className = 'form-status form-error';
        status.textContent = loginMessage(e);
        button.disabled = false;
      } finally {
        status.removeAttribute('id');
        if (reg) reg.free();
      }
    },
  },
  field('User name', user, 'Lowercase letters, digits, . _ - (others will invite you by it).'),
  field('Passphrase', pass, 'At least 10 characters; a few random words work well.'),
  field('Passphrase again', pass2),
  button,
  status);
  authCard('Create an account', 'Your keys are made in this browser. The server stores them only encrypted under your passphrase and under a recovery key that you keep.', form,
    h('p', { class: 'auth-foot' }, 'Have an account? ', h('a', { href: '#/login' }, 'Log in')));
  user.focus();
}

/** Shows the recovery key once; resolves when the user confirms they saved it. */
async function showRecoveryKey(key) {
  const check = h('input', { type: 'checkbox', id: 'saved-recovery' });
  const copy = h('button', {
    class: 'btn btn-small',
    type: 'button',
    id: 'copy-recovery',
    onclick: async () => {
      copy.textContent = (await copyText(key)) ? 'Copied' : 'Select and copy it by hand';
    },
  }, 'Copy');
  const body = [
    h('p', {}, 'This is your recovery key. It is shown ', h('strong', {}, 'once'), '. If you forget your passphrase, it is the only way back into your account: nobody, including the server\'s operator, can reset it.'),
    h('div', { class: 'recovery-key mono', id: 'recovery-key' }, key),
    h('p', {}, copy),
    h('p', { class: 'muted small' }, 'Print it or keep it in a password manager, away from this computer.'),
    h('label', { class: 'check' }, check, h('span', {}, 'I have saved my recovery key somewhere safe')),
  ];
  const done = dialog('Save your recovery key', body, [{ label: 'Continue', kind: 'primary', id: 'recovery-continue', disabled: true }], { mustChoose: true });
  check.addEventListener('change', () => {
    document.getElementById('recovery-continue').disabled = !check.checked;
  });
  await done;
}

/** Sets a new passphrase (after a recovery-key login, or from the account menu). */
async function changePassphrase(afterRecovery) {
  const p1 = h('input', { type: 'password', id: 'new-pass', autocomplete: 'new-password', class: 'wide' });
  const p2 = h('input', { type: 'password', id: 'new-pass2', autocomplete: 'new-password', class: 'wide' });
  const status = h('p', { class: 'form-status form-error', role: 'status' });
  await dialog(afterRecovery ? 'Set a new passphrase' : 'Change passphrase', [
    afterRecovery ? h('p', {}, 'You logged in with your recovery key. Choose a new passphrase for the next logins (your recovery key keeps working).') : null,
    field('New passphrase', p1, 'At least 10 characters.'),
    field('New passphrase again', p2),
    status,
  ], [
    { label: afterRecovery ? 'Later' : 'Cancel' },
    {
      label: 'Save passphrase',
      kind: 'primary',
      id: 'new-pass-save',
      onclick: async () => {
        if (p1.value !== p2.value) {
          status.textContent = 'The two passphrases differ.';
          return false;
        }
        try {
          status.className = 'form-status';
          status.id = 'unlock-status';
          showDeriving(status, 'Sealing your keys under the new passphrase…');
          const { kdf, key } = await deriveNewPassphraseKey(p1.value);
          let body;
          try {
            body = app.account.changePassphraseBody(kdf, key);
          } finally {
            key.fill(0);
          }
          await api.call('PUT', '/account/protectors/passphrase', body);
          p1.value = '';
          p2.value = '';
          toast('Passphrase changed');
          return true;
        } catch (e) {
          status.className = 'form-status form-error';
          status.textContent = errorText(e);
          return false;
        } finally {
          status.removeAttribute('id');
        }
      },
    },
  ]);
}

async function signedIn(account, login, keep) {
  app.account = account;
  app.token = login.token;
  app.expiresAt = login.expires_at;
  api.setToken(app.token);
  if (keep) {
    await device.saveSignIn(account.user, account.exportForDevice(), login.token, login.expires_at);
  }
  await loadWikis();
  const last = device.lastWiki(account.user);
  const target = app.wikis.find((w) => w.wiki === last) || (app.wikis.length === 1 ? app.wikis[0] : null);
  go(target ? `#/w/${target.wiki}` : '#/');
}

async function signOutLocally() {
  closeWiki();
  if (app.account) app.account.free();
  app.account = null;
  app.token = null;
  app.wikis = [];
  app.titles.clear();
  api.setToken(null);
  await device.clearSignIn();
}

async function logout() {
  if (app.leaveGuard && !app.leaveGuard(false)) return;
  app.leaveGuard = null;
  try {
    await api.call('POST', '/logout');
  } catch {
    // the keys are dropped whatever the server says
  }
  await signOutLocally();
  toast('Logged out: your keys are gone from this tab.');
  go('#/login');
}

// Used by views.
export { zk, go as navigate, pageName };

start().catch((e) => {
  document.body.classList.remove('booting');
  replace(main(), h('div', { class: 'panel panel-danger' }, h('h2', {}, 'zkwiki could not start'), h('p', {}, String(e && e.message ? e.message : e))));
});
