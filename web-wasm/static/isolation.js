// The isolation panel: pages a member of the wiki wrote against its rules (a path the policy
// refuses, outside their folder, clashing with an earlier page, undecryptable). Rust left them
// out of the wiki and found, in the verified history, which member's key signed each. That is a
// signed fact about a member, not a sign of a tampering server: amber, not the red banner. A
// writer or owner can remove such a page; the rest of the wiki works as usual.

import { h, replace, dialog, toast, enforced } from './dom.js';
import { reportError, errorText } from './wiki.js';

/** Draws (or hides) the panel for the open wiki. */
export function showIsolation(app) {
  const el = document.getElementById('isolation');
  const w = app.open;
  const items = w ? JSON.parse(w.session.isolated()).sort((a, b) => (a.seq || 0) - (b.seq || 0)) : [];
  if (items.length === 0) {
    el.hidden = true;
    replace(el);
    return;
  }
  const canRemove = w.info.role === 'owner' || w.info.role === 'writer';
  const signers = [...new Set(items.map((i) => i.signer).filter(Boolean))];
  replace(el,
    h('div', { class: 'isolation-head' },
      h('strong', {}, items.length === 1 ? 'An unreadable page was left out' : `${items.length} unreadable pages were left out`),
      h('span', {}, signers.length
        ? ` — written against this wiki's rules by ${signers.join(', ')}. The rest of the wiki is fine; this is about what a member signed, not about the server.`
        : ' — written against this wiki\'s rules by a member. The rest of the wiki is fine.'),
      enforced('client', 'Every zkwiki client checks each page against the same rules and leaves out what breaks them')),
    h('ul', { class: 'isolation-list', id: 'isolation-list' }, items.map((i) => h('li', { dataset: { page: i.page } },
      h('span', { class: 'isolation-text' },
        'Unreadable page written by ', h('strong', {}, i.signer || 'an unknown member'),
        i.seq ? ` at seq ${i.seq}` : '',
        `: ${i.problem}`,
        i.path !== null && i.path !== undefined ? h('span', { class: 'isolation-path mono', title: i.path }, ` (path “${shorten(i.path)}”)`) : null),
      canRemove && !i.signer ? h('span', { class: 'muted small' }, 'checking history…') : null,
      canRemove && i.signer ? h('button', {
        class: 'btn btn-small btn-ghost btn-danger-text',
        type: 'button',
        dataset: { removeIsolated: i.page },
        onclick: () => removeIsolated(app, i),
      }, 'Remove') : null))));
  el.hidden = false;
}

/** A long untrusted path, cut in the middle for the panel (the whole of it is in the tooltip). */
function shorten(text, max = 72) {
  return text.length <= max ? text : `${text.slice(0, max / 2 - 1)}…${text.slice(-(max / 2 - 1))}`;
}

async function removeIsolated(app, item) {
  const choice = await dialog('Remove this page?', [
    h('p', {}, `It was written by ${item.signer || 'a member'}${item.seq ? ` at seq ${item.seq}` : ''} and cannot be shown: ${item.problem}.`),
    h('p', { class: 'muted' }, 'Removing it takes it out of the current wiki for everyone; it stays in the history. Consider whether that member should keep write access.'),
  ], [{ label: 'Cancel' }, { label: 'Remove', kind: 'danger', id: 'remove-isolated-ok' }]);
  if (choice !== 'Remove') return;
  try {
    await app.open.commit(() => app.open.session.prepareDelete(item.page, Date.now()));
    toast('Removed');
  } catch (e) {
    reportError(e);
    toast(errorText(e), 'error');
  }
  showIsolation(app);
}
