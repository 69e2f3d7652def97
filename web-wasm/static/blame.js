// zkwiki web app: blame, the version that brought in each line of a page version.
//
// Built on the core's line diff (`diffLines`, the same Myers diff the history view shows), one
// pair of consecutive versions at a time: a line that a version keeps keeps its owner, a line it
// adds is its own. Only versions that were verified and opened take part: a line older than the
// oldest of them is owned by that oldest one, and the view says so when the walk has not reached
// the page's creation.

import { h } from './dom.js';

/** A text's lines as the core counts them (each with its ending; no empty last line). */
function lines(text) {
  return text.match(/[^\n]*\n|[^\n]+$/g) || [];
}

/**
 * For each line of the last of `texts` (oldest first), the index in `texts` of the version that
 * brought it in. `diffLines(old, new)` is the core's diff: hunks of lines tagged ' ', '+' or
 * '-' with 1-based `old`/`new` numbers; lines outside the hunks are unchanged.
 */
export function blameLines(texts, diffLines) {
  if (!texts.length) return [];
  let owners = lines(texts[0]).map(() => 0);
  for (let i = 1; i < texts.length; i++) {
    const diff = JSON.parse(diffLines(texts[i - 1], texts[i]));
    // The new text's lines the hunks name, by number: '+' is new here, ' ' maps to an old line.
    const named = new Map();
    for (const hunk of diff.hunks) for (const l of hunk) if (l.new != null) named.set(l.new, l);
    const count = lines(texts[i]).length;
    const next = new Array(count);
    let shift = 0; // new line number − old line number, for unchanged lines outside the hunks
    for (let n = 1; n <= count; n++) {
      const l = named.get(n);
      if (l && l.tag === '+') {
        next[n - 1] = i;
        shift += 1;
        continue;
      }
      const old = l ? l.old : n - shift;
      if (l) shift = l.new - l.old;
      next[n - 1] = owners[old - 1] ?? 0;
      // Removed lines shift what follows up; the next ' ' line in a hunk states the new shift.
    }
    owners = next;
  }
  return owners;
}


/**
 * The blame of version `i` of a page's history (`versions` newest first, `opened` their opened
 * records by seq, `label(k)` a version's name): each line with the version that brought it in
 * and the member who signed that version; clicking a name selects that version.
 */
export function blameView({ versions, opened, label, i, complete, diffLines, onSelect }) {
  const usable = (k) => {
    const o = opened.get(versions[k].seq);
    return o && !o.error && !versions[k].deleted && o.kind === 'markdown' ? o : null;
  };
  const chain = [];
  for (let k = versions.length - 1; k >= i; k--) if (usable(k)) chain.push(k);
  if (!chain.length || chain[chain.length - 1] !== i) {
    return h('p', { class: 'muted', id: 'blame' }, 'No blame for this version: it is not a verified text.');
  }
  const texts = chain.map((k) => usable(k).text);
  const owners = blameLines(texts, diffLines);
  const shown = lines(texts[texts.length - 1]);
  const rows = shown.map((text, n) => {
    const k = chain[owners[n]];
    const first = n === 0 || owners[n - 1] !== owners[n];
    return h('tr', { dataset: { version: k } },
      h('td', { class: 'blame-who' }, first ? h('button', {
        class: 'linklike', type: 'button', title: 'Show this version', onclick: () => onSelect(k),
      }, `${label(k)} · ${versions[k].signer || '?'}`) : null),
      h('td', { class: 'blame-n' }, String(n + 1)),
      h('td', { class: 'blame-text mono' }, text.replace(/\n$/, '')));
  });
  const oldest = chain[0];
  return h('div', { id: 'blame' },
    h('div', { class: 'diff-head' }, `Who brought in each line of ${label(i).toLowerCase()}`),
    !complete ? h('p', { class: 'muted small' }, `Older versions are not loaded: lines from before ${label(oldest).toLowerCase()} are shown as ${label(oldest).toLowerCase()}’s.`) : null,
    h('table', { class: 'blame' }, h('tbody', {}, rows)));
}
