// The frame around the views: the drawer and top bar on narrow screens, the skip link, the
// keyboard shortcuts (`/` or Ctrl+K search, `e` edit, Esc closes) and the light/dark choice.

const body = () => document.body;

/** Whether the sidebar is a drawer (the top bar is shown): narrow screens. */
function narrow() {
  return getComputedStyle(document.getElementById('topbar')).display !== 'none';
}

/** Opens or closes the drawer; focus goes into it, and back to the menu button. */
export function setDrawer(open) {
  const was = body().classList.contains('drawer-open');
  body().classList.toggle('drawer-open', open);
  const button = document.getElementById('menu-button');
  button.setAttribute('aria-expanded', String(open));
  button.setAttribute('aria-label', open ? 'Close the menu' : 'Open the menu');
  if (open && !was) {
    const first = document.querySelector('#sidebar a, #sidebar input, #sidebar button');
    if (first) first.focus();
  } else if (!open && was && document.getElementById('sidebar').contains(document.activeElement)) {
    button.focus();
  }
}

/** Puts the cursor in the search box (opening the drawer first on a narrow screen). */
function focusSearch() {
  const search = document.getElementById('search');
  if (!search) return false;
  if (narrow()) setDrawer(true);
  search.focus();
  search.select();
  return true;
}

/** Whether the key went to something that takes text. */
function typing(ev) {
  const t = ev.target;
  return t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
}

/** The title shown in the top bar. */
export function setTopTitle(text) {
  document.getElementById('topbar-title').textContent = text || 'zkwiki';
}

const THEMES = ['auto', 'light', 'dark'];
const THEME_KEY = 'zkwiki-theme';

/** The colour scheme picked in this browser: 'auto' (the system's), 'light' or 'dark'. */
export function theme() {
  try {
    const t = localStorage.getItem(THEME_KEY);
    return THEMES.includes(t) ? t : 'auto';
  } catch {
    return 'auto';
  }
}

function applyTheme(t) {
  if (t === 'auto') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

/** What the theme button says for a choice. */
export function themeLabel(t = theme()) {
  return { auto: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' }[t];
}

/** Moves to the next choice (system → light → dark → system), kept in this browser. */
export function cycleTheme() {
  const next = THEMES[(THEMES.indexOf(theme()) + 1) % THEMES.length];
  try {
    if (next === 'auto') localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, next);
  } catch {
    // Storage refused: the choice lasts for this page only.
  }
  applyTheme(next);
  return next;
}

/** Wires the frame up; call once at start. */
export function install() {
  applyTheme(theme());
  document.getElementById('menu-button').addEventListener('click', () => setDrawer(!body().classList.contains('drawer-open')));
  document.getElementById('search-button').addEventListener('click', () => focusSearch());
  document.getElementById('drawer-backdrop').addEventListener('click', () => setDrawer(false));
  // Following a link closes the drawer (a route change keeps it closed).
  window.addEventListener('hashchange', () => setDrawer(false));
  document.getElementById('skip-link').addEventListener('click', (ev) => {
    ev.preventDefault();
    setDrawer(false);
    const main = document.getElementById('main');
    const heading = main.querySelector('h1');
    (heading || main).setAttribute('tabindex', '-1');
    (heading || main).focus();
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.defaultPrevented || document.querySelector('dialog[open]')) return;
    if (ev.key === 'Escape') {
      if (body().classList.contains('drawer-open')) {
        ev.preventDefault();
        setDrawer(false);
      } else if (ev.target && ev.target.id === 'search') {
        ev.target.blur();
      }
      return;
    }
    if ((ev.ctrlKey || ev.metaKey) && (ev.key === 'k' || ev.key === 'K')) {
      if (focusSearch()) ev.preventDefault();
      return;
    }
    if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === '/') {
      if (focusSearch()) ev.preventDefault();
    } else if (ev.key === 'e') {
      const edit = document.getElementById('edit');
      if (edit) {
        ev.preventDefault();
        edit.click();
      }
    }
  });
}
