// DOM helpers. Text always goes in as text (textContent); the only HTML the app inserts is the
// page HTML made by the Rust renderer (see setTrustedHtml).

/** Creates an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else if (key === 'value') {
      el.value = value;
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * Puts HTML made by the Rust renderer (web-wasm/src/render.rs: a fixed set of tags and
 * attributes, every text escaped, every URL checked) into an element. Never call this with
 * anything else.
 */
export function setTrustedHtml(el, renderedByRust) {
  el.innerHTML = renderedByRust;
}

/**
 * Appends HTML made by the Rust renderer (the rest of a long page after its fold: whole
 * top-level elements) at the end of an element. Same rule as setTrustedHtml.
 */
export function appendTrustedHtml(el, renderedByRust) {
  el.insertAdjacentHTML('beforeend', renderedByRust);
}

/** `Enforced by` badges: cryptography, the server, the client, or you. */
export function enforced(by, detail) {
  const labels = {
    crypto: ['cryptography', 'badge-crypto'],
    server: ['server', 'badge-server'],
    client: ['client', 'badge-client'],
    you: ['you', 'badge-you'],
  };
  const [label, cls] = labels[by];
  return h('span', { class: `badge ${cls}`, title: detail || '' }, `enforced by ${label}`);
}

/** Formats milliseconds since 1970 as a local date and time. */
export function when(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** "3 minutes ago" style. */
export function ago(ms) {
  if (!ms) return '';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const hr = Math.round(m / 60);
  if (hr < 24) return `${hr} h ago`;
  const d = Math.round(hr / 24);
  if (d < 30) return `${d} days ago`;
  return when(ms);
}

/** Page path without ".md". */
export function pageName(path) {
  return path.endsWith('.md') ? path.slice(0, -3) : path;
}

/** The route of a page. */
export function pageRoute(wiki, path, view = 'p') {
  const enc = path.split('/').map(encodeURIComponent).join('/');
  return `#/w/${wiki}/${view}/${enc}`;
}

let toastTimer = null;
/** A short message at the bottom of the screen. */
export function toast(message, kind = 'info') {
  const el = document.getElementById('toast');
  replace(el, message);
  el.className = `toast toast-${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, kind === 'error' ? 8000 : 3500);
}

/**
 * Opens a modal dialog with a title, body nodes and buttons [{label, kind, onclick}] (onclick may
 * return false to keep the dialog open). Resolves with the label of the button pressed.
 */
export function dialog(title, body, buttons, options = {}) {
  const dlg = document.getElementById('dialog');
  // Focus goes back to what opened the dialog when it closes (Esc, a button), if still there.
  const opener = document.activeElement;
  return new Promise((resolve) => {
    // `mustChoose`: Escape does not close it (e.g. the recovery key must be confirmed).
    dlg.oncancel = (ev) => {
      if (options.mustChoose) ev.preventDefault();
    };
    const row = h('div', { class: 'dialog-buttons' });
    for (const b of buttons) {
      const btn = h('button', {
        class: `btn ${b.kind ? `btn-${b.kind}` : ''}`,
        type: 'button',
        disabled: b.disabled,
        id: b.id,
        onclick: async () => {
          if (b.onclick && (await b.onclick()) === false) return;
          dlg.close();
          resolve(b.label);
        },
      }, b.label);
      row.appendChild(btn);
    }
    replace(dlg, h('h2', {}, title), h('div', { class: 'dialog-body' }, body), row);
    dlg.onclose = () => {
      resolve(null);
      if (opener && opener !== document.body && opener.isConnected && typeof opener.focus === 'function') opener.focus();
    };
    dlg.showModal();
    // The first field gets the focus (else the first button the dialog offers).
    const first = dlg.querySelector('.dialog-body :is(input:not([type=hidden]):not([type=checkbox]), textarea, select):not([disabled])')
      || row.querySelector('button:not([disabled])');
    if (first) first.focus();
  });
}

/** Copies text to the clipboard; returns whether it worked. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** Waits for the next paint (so a "working…" state shows before a long computation). */
export function nextPaint() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}
