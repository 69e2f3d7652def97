// The red integrity banner: every check the core fails is named here, never hidden behind an
// empty page.

import { h, replace } from './dom.js';

const problems = [];

/** Adds an integrity problem to the banner (once per message). */
export function integrityProblem(message) {
  if (!problems.includes(message)) problems.push(message);
  show();
}

/** Clears the banner (another wiki, or logout). */
export function clearProblems() {
  problems.length = 0;
  show();
}

/** The problems shown now (for tests). */
export function currentProblems() {
  return [...problems];
}

function show() {
  const el = document.getElementById('banner');
  if (problems.length === 0) {
    el.hidden = true;
    replace(el);
    return;
  }
  replace(
    el,
    h('div', { class: 'banner-head' },
      h('strong', {}, 'Integrity check failed'),
      h('span', {}, ' — the server returned data that does not match what this wiki\'s members signed. ' +
        'Do not trust the affected content; tell the wiki\'s owner.'),
      h('button', { class: 'banner-close', type: 'button', title: 'Hide until the next problem', onclick: () => { el.hidden = true; } }, '×')),
    h('ul', {}, problems.map((p) => h('li', {}, p))),
  );
  el.hidden = false;
}
