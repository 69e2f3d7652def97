// Members and agents: who holds the wiki's keys, and what enforces each control.

import * as api from './api.js';
import { h, replace, dialog, toast, copyText, when, enforced } from './dom.js';
import { showError, renderSidebar, zk } from './app.js';
import { reportError, errorText } from './wiki.js';

const main = () => document.getElementById('main');

/** The members panel. */
export async function show(app) {
  const w = app.open;
  const owner = w.info.role === 'owner';
  const list = JSON.parse(w.session.members());
  let tokens = [];
  if (owner) {
    try {
      tokens = (await api.json('GET', `/wikis/${w.wiki}/tokens`)).tokens || [];
    } catch (e) {
      toast(`Agent tokens not listed: ${e.message}`, 'error');
    }
  }
  const table = h('table', { class: 'members', id: 'members-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Role'), h('th', {}, 'Key fingerprint'), h('th', {}, ''))),
    h('tbody', {}, list.map((m) => memberRow(app, m, owner))));
  const parts = [
    h('div', { class: 'page-head' },
      h('h1', {}, 'Members and agents'),
      h('p', { class: 'muted' }, 'Everyone below can read this wiki; owners and writers can change it. ',
        h('details', { class: 'crypto-details' }, h('summary', {}, 'Cryptographic details'),
          `Key epoch ${w.info.epoch} · keyring version ${w.info.keyring_seq}. Every member below holds the wiki key, wrapped to their own key in the owner-signed keyring; removing someone starts a new key epoch.`))),
    table,
    safetyNumbers(w),
    h('div', { class: 'legend' },
      h('p', {}, enforced('crypto'), ' Reading needs the wiki key; writes must be signed by an owner or writer key that an owner listed. Every client checks this; the server cannot change it.'),
      h('p', {}, enforced('server'), ' The server decides who may fetch ciphertext: sessions and agent tokens, their expiry and revocation.'),
      h('p', {}, enforced('you'), ' Only you can check that a key belongs to the person you mean: compare the fingerprint with them.')),
  ];
  if (owner) {
    parts.push(inviteForm(app), agentForm(app), tokenList(app, tokens));
  } else {
    parts.push(h('p', { class: 'muted' }, 'Only owners can change the members.'));
  }
  replace(main(), ...parts);
}

/**
 * The safety numbers of the version this browser verified and of its keyring, to compare with
 * another member out of band (the same numbers `zkwiki status` prints). A server showing two
 * members different wikis cannot make these agree.
 */
function safetyNumbers(w) {
  const i = w.info;
  return h('section', { class: 'safety', id: 'safety-numbers', 'aria-labelledby': 'safety-title' },
    h('h2', { id: 'safety-title' }, 'Safety numbers'),
    h('p', { class: 'muted' }, 'Read these to another member (by phone or in person) when you both see the same version: if they differ, one of you is being shown a different wiki.'),
    h('dl', { class: 'safety-list' },
      h('dt', {}, `Wiki version ${i.seq}`), h('dd', { class: 'mono', id: 'safety-head' }, i.safety_number),
      h('dt', {}, `Keyring version ${i.keyring_seq}`), h('dd', { class: 'mono', id: 'safety-keyring' }, i.keyring_safety_number)),
    i.witnesses ? h('p', { class: 'muted small', id: 'safety-witnesses' }, `This wiki lists ${i.witnesses} witness${i.witnesses === 1 ? '' : 'es'}. The command-line client and agents ask them before trusting a version; this browser does not yet, so compare these numbers on a new device.`) : null);
}

function memberRow(app, m, owner) {
  const w = app.open;
  const role = owner && !m.me
    ? h('select', {
      class: 'role-select',
      dataset: { member: m.name },
      'aria-label': `Role of ${m.name}`,
      onchange: async (ev) => {
        const value = ev.target.value;
        await commitKeyring(app, () => w.session.prepareSetRole(m.name, value, Date.now()), `${m.name} is now ${value}`);
      },
    }, ['owner', 'writer', 'reader'].filter((r) => m.kind === 'person' || r !== 'owner').map((r) => h('option', { value: r, selected: r === m.role }, r)))
    : h('span', { class: `role role-${m.role}` }, m.role);
  return h('tr', { dataset: { member: m.name } },
    h('td', {}, h('strong', {}, m.name), m.me ? h('span', { class: 'tag' }, 'you') : null, m.kind === 'agent' ? h('span', { class: 'tag tag-agent' }, 'agent') : null,
      m.folder ? h('span', { class: 'tag' }, `only ${m.folder}`) : null),
    h('td', {}, role),
    h('td', { class: 'mono small' }, m.fingerprint),
    h('td', {}, owner && !m.me
      ? h('button', { class: 'btn btn-small btn-ghost btn-danger-text', type: 'button', dataset: { revoke: m.name }, onclick: () => revoke(app, m) }, 'Remove')
      : null));
}

/** Sends a keyring change and redraws. */
async function commitKeyring(app, prepare, message) {
  try {
    const pending = await app.open.commit(prepare);
    pending.free();
    toast(message);
    renderSidebar();
    await show(app);
    return true;
  } catch (e) {
    reportError(e);
    toast(errorText(e), 'error');
    await show(app);
    return false;
  }
}

function inviteForm(app) {
  const w = app.open;
  const name = h('input', { id: 'invite-user', placeholder: 'user name', autocapitalize: 'none', spellcheck: 'false', required: true });
  const role = h('select', { id: 'invite-role' }, h('option', { value: 'reader' }, 'reader'), h('option', { value: 'writer' }, 'writer'), h('option', { value: 'owner' }, 'owner'));
  return h('section', { class: 'card' },
    h('h2', {}, 'Invite a person'),
    h('p', { class: 'muted' }, 'Their public key comes from the server, so check its fingerprint with them before confirming: a server could hand you its own key instead.'),
    h('form', {
      class: 'inline-form',
      onsubmit: async (ev) => {
        ev.preventDefault();
        let userText;
        try {
          userText = await api.call('GET', `/users/${encodeURIComponent(name.value.trim())}`);
        } catch (e) {
          toast(e instanceof api.ApiError && e.status === 404 ? `No user “${zk.escapeText(name.value.trim())}”.` : errorText(e), 'error');
          return;
        }
        const info = JSON.parse(zk.Account.describeUser(userText));
        const choice = await dialog(`Invite ${info.user} as ${role.value}?`, [
          h('p', {}, `Ask ${info.user} to read you the fingerprint shown under their name in zkwiki's sidebar, over a channel you trust (in person, a call). It must be exactly:`),
          h('div', { class: 'fingerprint-big mono', id: 'invite-fingerprint' }, info.fingerprint),
          h('p', { class: 'muted small' }, 'If it differs, cancel: the key is not theirs.'),
          h('p', {}, enforced('you', 'Only a person can compare fingerprints'), ' ', enforced('crypto', 'Once confirmed, the key is signed into the keyring by you')),
        ], [{ label: 'Cancel' }, { label: 'Fingerprint matches: invite', kind: 'primary', id: 'invite-confirm' }]);
        if (choice !== 'Fingerprint matches: invite') return;
        const ok = await commitKeyring(app, () => w.session.prepareInvite(userText, role.value, info.fingerprint, Date.now()), `${info.user} invited`);
        if (ok) name.value = '';
      },
    }, name, role, h('button', { class: 'btn btn-primary', type: 'submit', id: 'invite-submit' }, 'Invite…')),
    h('p', { class: 'small' }, enforced('crypto', 'The wiki key is wrapped to their X25519 key (age) in a keyring version you sign'), ' Reader or writer is checked by every client: a reader\'s writes are rejected.'));
}

function agentForm(app) {
  const w = app.open;
  const name = h('input', { id: 'agent-name', placeholder: 'agent name, e.g. notes-bot', autocapitalize: 'none', spellcheck: 'false', required: true });
  const role = h('select', { id: 'agent-role' }, h('option', { value: 'read' }, 'read only'), h('option', { value: 'write' }, 'read and write'));
  const days = h('input', { id: 'agent-days', type: 'number', min: 1, max: 365, value: 30, class: 'narrow' });
  return h('section', { class: 'card' },
    h('h2', {}, 'Grant an agent'),
    h('p', { class: 'muted' }, 'Makes a new key for the agent here, adds it to the keyring, and asks the server for a token. You get one key file to give the agent (for ', h('code', {}, 'zkwiki mcp'), '); it is shown once.'),
    h('form', {
      class: 'inline-form',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const agentName = name.value.trim();
        const r = role.value;
        let pending;
        try {
          pending = await w.commit(() => w.session.prepareAgent(agentName, r === 'write' ? 'writer' : 'reader', Date.now()));
        } catch (e) {
          reportError(e);
          toast(errorText(e), 'error');
          return;
        }
        let keyFile;
        try {
          const tok = await api.json('POST', `/wikis/${w.wiki}/tokens`, zk.newTokenBody(agentName, r, Number(days.value) * 86400));
          // Indented for the person reading it; the same JSON for `zkwiki mcp --key`.
          keyFile = JSON.stringify(JSON.parse(pending.agentKeyFile(location.origin, w.wiki, tok.token, tok.expires_at)), null, 2);
        } catch (e) {
          toast(`The agent is in the keyring, but no token was made: ${errorText(e)}`, 'error');
          pending.free();
          await show(app);
          return;
        }
        pending.free();
        name.value = '';
        await showKeyFile(agentName, keyFile);
        keyFile = null;
        await show(app);
      },
    }, name, role, h('label', { class: 'inline-label' }, 'expires in ', days, ' days'), h('button', { class: 'btn btn-primary', type: 'submit', id: 'agent-submit' }, 'Grant')),
    h('p', { class: 'small' }, enforced('crypto', 'A read-only agent can decrypt but every client rejects what it signs'), ' ', enforced('server', 'The token expires, and the server refuses it once revoked')));
}

async function showKeyFile(name, keyFile) {
  const copy = h('button', { class: 'btn btn-small', type: 'button', onclick: async () => { copy.textContent = (await copyText(keyFile)) ? 'Copied' : 'Copy failed'; } }, 'Copy');
  const download = h('button', {
    class: 'btn btn-small',
    type: 'button',
    onclick: () => {
      const url = URL.createObjectURL(new Blob([keyFile], { type: 'application/json' }));
      const a = h('a', { href: url, download: `${name}.zkwiki-agent.json` });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    },
  }, 'Download');
  await dialog(`Key file for ${name}`, [
    h('p', {}, 'Give this file to the agent (e.g. ', h('code', {}, `zkwiki mcp --key ${name}.zkwiki-agent.json`), '). It holds the agent\'s private key and token: anyone with it can act as the agent. It is not stored anywhere and is shown only now.'),
    h('pre', { class: 'keyfile mono', id: 'agent-keyfile' }, keyFile),
    h('p', {}, copy, ' ', download),
  ], [{ label: 'Done', kind: 'primary', id: 'keyfile-done' }]);
}

function tokenList(app, tokens) {
  const w = app.open;
  return h('section', { class: 'card' },
    h('h2', {}, 'Agent tokens'),
    tokens.length === 0 ? h('p', { class: 'muted' }, 'No agent tokens.') : h('table', { class: 'members' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Agent'), h('th', {}, 'Access'), h('th', {}, 'Expires'), h('th', {}, ''))),
      h('tbody', {}, tokens.map((t) => h('tr', {},
        h('td', {}, zk.escapeText(t.name)),
        h('td', {}, t.role),
        h('td', {}, t.revoked ? h('span', { class: 'tag' }, 'revoked') : when(t.expires_at * 1000)),
        h('td', {}, t.revoked ? null : h('button', {
          class: 'btn btn-small btn-ghost btn-danger-text',
          type: 'button',
          onclick: async () => {
            try {
              await api.call('DELETE', `/wikis/${w.wiki}/tokens/${t.id}`);
              toast(`Token of ${zk.escapeText(t.name)} revoked`);
            } catch (e) {
              toast(errorText(e), 'error');
            }
            await show(app);
          },
        }, 'Revoke token')))))),
    h('p', { class: 'small' }, enforced('server', 'Revoking a token stops the server answering it; remove the agent from the members too, so it cannot read anything written afterwards even with a copy of the ciphertext')));
}

async function revoke(app, m) {
  const w = app.open;
  let pending;
  try {
    pending = w.session.prepareRemove(m.name, Date.now());
  } catch (e) {
    toast(errorText(e), 'error');
    return;
  }
  const report = JSON.parse(pending.report);
  pending.free();
  const choice = await dialog(`Remove ${m.name}?`, [
    h('p', {}, `A new key epoch (${report.new_epoch}) starts: nothing written from now on can be read with ${m.name}'s key.`),
    h('p', {}, h('strong', {}, 'What cannot be taken back: '), `${m.name} could read every page written in epochs 1–${report.epochs_readable}${report.scope ? ` under ${report.scope}` : ''}: ${report.pages_readable === 1 ? 'the' : `all ${report.pages_readable}`} page${report.pages_readable === 1 ? '' : 's'} as they are now, and their earlier versions. Anything they saved stays with them.`),
    report.pages.length ? h('details', {}, h('summary', {}, 'Which pages'), h('ul', { class: 'report-pages mono small' }, report.pages.map((p) => h('li', {}, p)))) : null,
    h('p', {}, enforced('crypto', 'New epoch secret, wrapped only to the remaining members'), m.kind === 'agent' ? [' ', enforced('server', 'Its tokens are revoked too')] : null),
  ], [{ label: 'Cancel' }, { label: `Remove ${m.name}`, kind: 'danger', id: 'revoke-confirm' }]);
  if (!choice || choice === 'Cancel') return;
  const ok = await commitKeyring(app, () => w.session.prepareRemove(m.name, Date.now()), `${m.name} removed; epoch ${report.new_epoch} started`);
  if (ok && m.kind === 'agent') {
    try {
      const tokens = (await api.json('GET', `/wikis/${w.wiki}/tokens`)).tokens || [];
      for (const t of tokens.filter((t) => t.name === m.name && !t.revoked)) {
        await api.call('DELETE', `/wikis/${w.wiki}/tokens/${t.id}`);
      }
      await show(app);
    } catch (e) {
      toast(`Tokens of ${m.name} not revoked: ${errorText(e)}`, 'error');
    }
  }
}
