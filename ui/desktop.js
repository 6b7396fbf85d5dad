// The desktop window: the hub's addresses with QR codes, the sessions with
// live tallies, and the moderator's actions. Talks to the hub only through
// bridge.js; everything else is plain DOM.
import { call, onSnapshot } from './bridge.js';
import { setLang, t, translate } from './i18n.js';
import { el, renderBars, standing, stateOfSession } from './tally.js';

const $ = (id) => document.getElementById(id);
let snapshot = null;
const cards = new Map();   // session id → { node, parts }
const qrCache = new Map(); // url → svg data URL
const messages = {};       // session id → last action message

function errorText(e) {
  return e?.error ?? String(e);
}

// ── Hub status and join addresses ─────────────────────────────────────────

async function qr(url) {
  if (!qrCache.has(url)) {
    const svg = await call('qr_svg', { data: url });
    qrCache.set(url, `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`);
  }
  return qrCache.get(url);
}

let shownUrls = '';
async function renderStatus(status, connections) {
  const state = $('hub-state');
  state.dataset.state = status.state;
  state.textContent = status.state === 'running' ? t('hubRunning', { port: status.port })
    : status.state === 'failed' ? t('hubFailed') : t('hubStarting');
  $('failure').hidden = status.state !== 'failed';
  if (status.state === 'failed') {
    $('failure-message').textContent = status.message;
    const port = $('port-input').value || '8765';
    $('port-label').textContent = status.port_in_use ? t('portInUse', { port }) : t('otherFailure');
  }
  $('join').hidden = status.state !== 'running';
  if (status.state !== 'running') return;
  $('connections').textContent = t('connected', { n: connections });
  $('connections').dataset.count = String(connections);
  $('admin-token').textContent = t('adminToken', { token: status.admin_token });
  $('data-dir').textContent = t('dataDir', { dir: status.data_dir });
  const key = status.join_urls.join(' ');
  if (key === shownUrls) return;
  shownUrls = key;
  const items = await Promise.all(status.join_urls.map(async (url) =>
    el('figure', { class: 'join-item' },
      el('img', { src: await qr(url), alt: '', width: '160', height: '160' }),
      el('figcaption', { class: 'join-url', 'data-url': url, text: url }))));
  $('join-list').replaceChildren(...items);
}

$('port-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const port = Number($('port-input').value);
  try { await call('restart_hub', { port }); } catch (err) { $('failure-message').textContent = errorText(err); }
});

// ── Sessions ───────────────────────────────────────────────────────────────

function buildCard(s) {
  const parts = {
    status: el('span', { class: 'pill' }),
    subscribers: el('span', { class: 'subscribers' }),
    bars: el('div', { class: 'bars', role: 'group', 'aria-label': t('live') }),
    turnout: el('p', { class: 'turnout' }),
    standing: el('p', { class: 'standing' }),
    result: el('p', { class: 'result' }),
    message: el('p', { class: 'note', role: 'status' }),
    close: el('button', { type: 'button', class: 'danger', 'data-action': 'close', text: t('closeVote'), onclick: () => closeVote(s.id) }),
    broadcast: el('button', { type: 'button', 'data-action': 'broadcast', text: t('broadcastAgain'), onclick: () => act(s.id, 'broadcast') }),
    export: el('button', { type: 'button', 'data-action': 'export', text: t('exportCsv'), onclick: () => act(s.id, 'export_session') }),
  };
  const node = el('article', { class: 'card session', 'data-session': s.id, 'aria-label': s.title },
    el('header', { class: 'session-head' }, el('h3', { text: s.title }), parts.status, parts.subscribers),
    s.description ? el('p', { class: 'description', text: s.description }) : null,
    el('div', { class: 'live', 'aria-live': 'polite' }, parts.bars, parts.turnout, parts.standing, parts.result),
    el('div', { class: 'row wrap actions' }, parts.close, parts.broadcast, parts.export),
    parts.message);
  return { node, parts };
}

function renderSessions(sessions) {
  const list = $('session-list');
  $('no-votes').hidden = sessions.length > 0;
  const ordered = [...sessions].sort((a, b) => (a.status === b.status ? 0 : a.status === 'open' ? -1 : 1));
  const seen = new Set();
  for (const s of ordered) {
    seen.add(s.id);
    let card = cards.get(s.id);
    if (!card) { card = buildCard(s); cards.set(s.id, card); }
    const { parts } = card;
    const state = stateOfSession(s);
    const open = s.status === 'open';
    card.node.classList.toggle('is-closed', !open);
    parts.status.textContent = open ? t('open') : t('closed');
    parts.subscribers.textContent = t('subscribers', { n: s.subscribers });
    parts.subscribers.dataset.subscribers = String(s.subscribers);
    renderBars(parts.bars, state);
    parts.turnout.textContent = t('ballots', { n: s.tally.total });
    parts.turnout.dataset.total = String(s.tally.total);
    parts.standing.textContent = open ? standing(state) : '';
    parts.result.textContent = open ? '' : t(s.result);
    parts.result.className = `result result-${s.result}`;
    parts.result.dataset.result = s.result ?? '';
    parts.close.hidden = !open;
    parts.broadcast.hidden = open;
    parts.message.textContent = messages[s.id] ?? '';
    list.append(card.node); // keeps the order: open first, newest first
  }
  for (const [id, card] of cards) if (!seen.has(id)) { card.node.remove(); cards.delete(id); }
}

function closeVote(id) {
  const s = snapshot?.sessions.find((x) => x.id === id);
  if (!s) return;
  const dialog = $('confirm');
  $('confirm-text').textContent = t('confirmClose', { title: s.title });
  dialog.returnValue = '';
  dialog.onclose = async () => {
    if (dialog.returnValue === 'yes') await act(id, 'close_session');
  };
  dialog.showModal();
}

async function act(id, command) {
  try {
    const out = await call(command, { id });
    messages[id] = command === 'export_session' ? t('savedTo', { path: out }) : '';
  } catch (e) {
    messages[id] = errorText(e);
  }
  if (snapshot) renderSessions(snapshot.sessions);
}

// ── New vote ───────────────────────────────────────────────────────────────

function showRuleFields() {
  const kind = $('new-rule').value;
  for (const label of document.querySelectorAll('[data-for-rule]')) label.hidden = label.dataset.forRule !== kind;
}
$('new-rule').addEventListener('change', showRuleFields);

$('new-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const rule = { kind: f.get('rule') };
  if (rule.kind === 'supermajority') rule.ratio = Number(f.get('ratio'));
  if (rule.kind === 'inertia' && f.get('electorate_size')) rule.electorate = Number(f.get('electorate_size'));
  if (f.get('quorum')) rule.quorum = Number(f.get('quorum'));
  const session = {
    title: f.get('title'), description: f.get('description'), rule,
    electorate: f.get('electorate'), scale: f.get('scale'),
  };
  $('new-error').textContent = '';
  try {
    await call('create_session', { session });
    e.target.reset();
    showRuleFields();
  } catch (err) {
    $('new-error').textContent = errorText(err);
  }
});

// ── Voter roll ─────────────────────────────────────────────────────────────

async function renderRoll() {
  let roll;
  try { roll = await call('roll'); } catch { return; }
  $('roll-count').textContent = t('rollCount', { n: roll.length });
  $('roll-table').querySelector('tbody').replaceChildren(...roll.map((r) =>
    el('tr', {}, el('td', { text: r.name }), el('td', { class: 'code-cell', text: r.code }))));
}

$('roll-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const names = $('roll-names').value.split('\n').map((n) => n.trim()).filter(Boolean);
  try {
    const issued = await call('register_voters', { names });
    $('roll-names').value = '';
    $('roll-message').textContent = t('rollCount', { n: issued.length });
  } catch (err) {
    $('roll-message').textContent = errorText(err);
  }
  renderRoll();
});
$('roll-print').addEventListener('click', () => window.print());
$('roll-export').addEventListener('click', async () => {
  try { $('roll-message').textContent = t('savedTo', { path: await call('export_roll') }); } catch (err) { $('roll-message').textContent = errorText(err); }
});

// ── Settings ───────────────────────────────────────────────────────────────

async function loadSettings() {
  const s = await call('get_settings');
  setLang(s.language);
  translate();
  const form = $('settings-form');
  for (const [k, v] of Object.entries(s)) if (form.elements[k]) form.elements[k].value = v;
  if (!$('port-input').value) $('port-input').value = s.port;
}

$('settings-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const settings = {
    bind_address: f.get('bind_address'), port: Number(f.get('port')),
    data_dir: f.get('data_dir'), language: f.get('language'),
  };
  $('settings-error').textContent = '';
  try {
    await call('save_settings', { settings });
    await loadSettings();
    qrCache.clear();
    shownUrls = '';
    await call('restart_hub', {});
  } catch (err) {
    $('settings-error').textContent = errorText(err);
  }
});

// ── Start ──────────────────────────────────────────────────────────────────

let lastRollSize = -1;
let first = true;
function apply(next) {
  // The form stays folded once there are votes to watch.
  if (first) { first = false; $('new-vote').open = next.sessions.length === 0; }
  snapshot = next;
  renderStatus(next.status, next.connections);
  renderSessions(next.sessions);
  if (next.roll_size !== lastRollSize) { lastRollSize = next.roll_size; renderRoll(); }
}

translate();
showRuleFields();
await loadSettings();
await onSnapshot(apply);
apply(await call('snapshot'));
