// The desktop window: the hub's addresses with QR codes, the sessions with
// live tallies, and the moderator's actions. Talks to the hub only through
// bridge.js; everything else is plain DOM.
import { call, onSnapshot } from './bridge.js';
import { countdown } from './clock.js';
import { setLang, t, translate } from './i18n.js';
import { renderAttendance, renderRoll, startRoll } from './roll.js';
import { el, electionResult, renderBars, standing, stateOfSession } from './tally.js';
import { $, confirmThen, errorText } from './window.js';

let snapshot = null;
const cards = new Map();   // session id → { node, parts }
const qrCache = new Map(); // url → svg data URL
const messages = {};       // session id → last action message

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
  // The addresses and their QR codes are made first, so that the window
  // says "running" only once it shows where participants go.
  let items = null;
  const key = status.state === 'running' ? status.join_urls.join(' ') : shownUrls;
  if (key !== shownUrls) {
    items = await Promise.all(status.join_urls.map(async (url) =>
      el('figure', { class: 'join-item' },
        el('img', { src: await qr(url), alt: '', width: '160', height: '160' }),
        el('figcaption', { class: 'join-url', 'data-url': url, text: url }))));
    shownUrls = key;
  }
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
  if (items) $('join-list').replaceChildren(...items);
}

$('port-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const port = Number($('port-input').value);
  try { await call('restart_hub', { port }); } catch (err) { $('failure-message').textContent = errorText(err); }
});

// ── The agenda ─────────────────────────────────────────────────────────────

const ACTIONS = {
  draft: ['open', 'edit', 'delete'],
  open: ['close', 'extend1', 'extend5'],
  closed: ['broadcast', 'export', 'audit'],
};

function buildCard(s) {
  const parts = {
    position: el('span', { class: 'position' }),
    status: el('span', { class: 'pill' }),
    subscribers: el('span', { class: 'subscribers' }),
    countdown: el('p', { class: 'countdown' }),
    bars: el('div', { class: 'bars', role: 'group', 'aria-label': t('live') }),
    turnout: el('p', { class: 'turnout' }),
    standing: el('p', { class: 'standing' }),
    result: el('p', { class: 'result' }),
    head: el('p', { class: 'small head' }),
    message: el('p', { class: 'note', role: 'status' }),
    register: el('details', { class: 'register', ontoggle: (e) => { registers.delete(s.id); renderRegister(currentOf(s.id), e.target); } },
      el('summary', { text: t('whoVotedOpen') }), el('ol', { class: 'register-list' })),
    title: el('h3'),
    description: el('p', { class: 'description' }),
    actions: el('div', { class: 'row wrap actions' }),
  };
  const buttons = {
    open: el('button', { type: 'button', class: 'primary', 'data-action': 'open', text: t('openVote'), onclick: () => act(s.id, 'open_session') }),
    edit: el('button', { type: 'button', 'data-action': 'edit', text: t('editVote'), onclick: () => startEdit(s.id) }),
    delete: el('button', { type: 'button', 'data-action': 'delete', text: t('deleteVote'), onclick: () => deleteDraft(s.id) }),
    close: el('button', { type: 'button', class: 'danger', 'data-action': 'close', text: t('closeVote'), onclick: () => closeVote(s.id) }),
    extend1: el('button', { type: 'button', 'data-action': 'extend1', text: t('extend1'), onclick: () => act(s.id, 'extend_session', { seconds: 60 }) }),
    extend5: el('button', { type: 'button', 'data-action': 'extend5', text: t('extend5'), onclick: () => act(s.id, 'extend_session', { seconds: 300 }) }),
    broadcast: el('button', { type: 'button', 'data-action': 'broadcast', text: t('broadcastAgain'), onclick: () => act(s.id, 'broadcast') }),
    export: el('button', { type: 'button', 'data-action': 'export', text: t('exportCsv'), onclick: () => act(s.id, 'export_session') }),
    audit: el('button', { type: 'button', 'data-action': 'audit', text: t('auditFile'), onclick: () => act(s.id, 'export_audit') }),
    up: el('button', { type: 'button', 'data-action': 'up', text: t('moveUp'), onclick: () => move(s.id, -1) }),
    down: el('button', { type: 'button', 'data-action': 'down', text: t('moveDown'), onclick: () => move(s.id, 1) }),
  };
  parts.buttons = buttons;
  const article = el('article', { class: 'card session', 'aria-labelledby': `t-${s.id}` },
    el('header', { class: 'session-head' },
      el('span', { class: 'drag', 'aria-hidden': 'true', text: '⠿' }), parts.position, parts.title, parts.status, parts.subscribers),
    parts.description, parts.countdown,
    el('div', { class: 'live', 'aria-live': 'polite' }, parts.bars, parts.turnout, parts.standing, parts.result, parts.head),
    parts.register,
    parts.actions,
    parts.message);
  parts.title.id = `t-${s.id}`;
  const node = el('li', { 'data-session': s.id, tabindex: '0', draggable: 'true' }, article);
  node.addEventListener('keydown', (e) => {
    if (e.target !== node || !e.altKey) return;
    if (e.key === 'ArrowUp') { e.preventDefault(); move(s.id, -1); }
    if (e.key === 'ArrowDown') { e.preventDefault(); move(s.id, 1); }
  });
  node.addEventListener('dragstart', (e) => {
    dragged = s.id;
    node.classList.add('dragging');
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('text/plain', s.id);
  });
  node.addEventListener('dragend', () => { dragged = null; node.classList.remove('dragging'); clearDropMarks(); });
  node.addEventListener('dragover', (e) => {
    if (!dragged || dragged === s.id) return;
    e.preventDefault();
    clearDropMarks();
    node.classList.add('drop-before');
  });
  node.addEventListener('drop', (e) => {
    e.preventDefault();
    clearDropMarks();
    if (dragged && dragged !== s.id) moveBefore(dragged, s.id);
  });
  return { node, parts };
}

let dragged = null;
function clearDropMarks() {
  for (const n of document.querySelectorAll('.drop-before')) n.classList.remove('drop-before');
}

function renderSessions(sessions) {
  const list = $('session-list');
  $('no-votes').hidden = sessions.length > 0;
  const seen = new Set();
  for (const s of sessions) {
    seen.add(s.id);
    let card = cards.get(s.id);
    if (!card) { card = buildCard(s); cards.set(s.id, card); }
    const { parts } = card;
    const state = stateOfSession(s);
    const article = card.node.firstChild;
    article.className = `card session is-${s.status}`;
    card.node.dataset.status = s.status;
    parts.position.textContent = `${s.position}.`;
    parts.title.textContent = s.title;
    parts.description.textContent = s.description;
    parts.description.hidden = !s.description;
    parts.status.textContent = s.status === 'open' ? t('open') : s.status === 'closed' ? t('closed') : t('draftPill');
    parts.subscribers.textContent = t('subscribers', { n: s.subscribers });
    parts.subscribers.dataset.subscribers = String(s.subscribers);
    const secretOpen = s.secrecy === 'secret' && s.status !== 'closed';
    if (secretOpen) {
      // Until the close a secret vote shows how many voted, nothing per choice.
      parts.bars.replaceChildren(el('p', { class: 'secret-note', text: t('secretUntilClose') }));
    } else {
      renderBars(parts.bars, state, s);
    }
    // A draft has nothing to count yet.
    parts.bars.closest('.live').hidden = s.status === 'draft';
    const people = s.tally.ballots ?? s.tally.total;
    parts.turnout.textContent = s.electorate === 'roll' && s.tally.total !== people
      ? t('ballotsWeighed', { n: people, w: s.tally.total }) : t('ballots', { n: people });
    parts.turnout.dataset.total = String(s.tally.total);
    parts.standing.textContent = s.status === 'open' && !secretOpen ? standing(state) : '';
    parts.register.hidden = s.electorate !== 'roll' || s.status === 'draft';
    parts.head.textContent = s.status === 'closed' && s.audit ? t('auditHeadShort', { fingerprint: s.audit.fingerprint, n: s.audit.size }) : '';
    renderRegister(s, parts.register);
    parts.result.textContent = s.status !== 'closed' ? ''
      : s.kind === 'election' ? electionResult(state, s) : t(s.result);
    parts.result.className = `result result-${s.result}`;
    parts.result.dataset.result = s.result ?? '';
    const closesAt = s.status === 'open' ? s.closes_at : null;
    if (parts.countdown.dataset.closesAt !== (closesAt ?? '')) {
      parts.countdown.dataset.closesAt = closesAt ?? '';
      countdown(parts.countdown, closesAt);
    }
    const wanted = [...ACTIONS[s.status], 'up', 'down'];
    if (parts.actions.dataset.for !== s.status) {
      parts.actions.dataset.for = s.status;
      parts.actions.replaceChildren(...wanted.map((a) => parts.buttons[a]));
    }
    parts.buttons.up.disabled = s.position === 1;
    parts.buttons.down.disabled = s.position === sessions.length;
    parts.message.textContent = messages[s.id] ?? '';
    list.append(card.node); // keeps the agenda's order
  }
  for (const [id, card] of cards) if (!seen.has(id)) { card.node.remove(); cards.delete(id); }
}

function currentOf(id) {
  return snapshot?.sessions.find((x) => x.id === id) ?? { id, seq: -1 };
}

function order() {
  return (snapshot?.sessions ?? []).map((s) => s.id);
}

async function reorder(ids, moved) {
  try {
    await call('reorder', { order: ids });
    const s = snapshot?.sessions.find((x) => x.id === moved);
    $('agenda-status').textContent = t('moved', { title: s?.title ?? '', n: ids.indexOf(moved) + 1 });
  } catch (e) {
    messages[moved] = errorText(e);
    if (snapshot) renderSessions(snapshot.sessions);
  }
  // Keep the keyboard where it was.
  cards.get(moved)?.node.focus();
}

function move(id, by) {
  const ids = order();
  const i = ids.indexOf(id);
  const j = i + by;
  if (i < 0 || j < 0 || j >= ids.length) return;
  ids.splice(i, 1);
  ids.splice(j, 0, id);
  reorder(ids, id);
}

function moveBefore(id, before) {
  const ids = order().filter((x) => x !== id);
  ids.splice(ids.indexOf(before), 0, id);
  reorder(ids, id);
}

function closeVote(id) {
  const s = snapshot?.sessions.find((x) => x.id === id);
  if (!s) return;
  confirmThen(t('confirmClose', { title: s.title }), t('confirmYes'), () => act(id, 'close_session'));
}

function deleteDraft(id) {
  const s = snapshot?.sessions.find((x) => x.id === id);
  if (!s) return;
  confirmThen(t('confirmDelete', { title: s.title }), t('deleteYes'), () => act(id, 'delete_session'));
}

async function act(id, command, extra = {}) {
  try {
    const out = await call(command, { id, ...extra });
    messages[id] = command === 'export_session' || command === 'export_audit' ? t('savedTo', { path: out }) : '';
  } catch (e) {
    messages[id] = errorText(e);
  }
  if (snapshot) renderSessions(snapshot.sessions);
}

// ── New vote, or a draft edited ────────────────────────────────────────────

let editing = null;   // the id of the draft being edited

function showFields() {
  const f = $('new-form');
  const kind = f.elements.kind.value;
  const method = f.elements.method.value;
  const rule = f.elements.rule.value;
  for (const n of f.querySelectorAll('[data-for-kind]')) n.hidden = n.dataset.forKind !== kind;
  for (const n of f.querySelectorAll('[data-for-method]')) n.hidden = method !== n.dataset.forMethod;
  for (const n of f.querySelectorAll('[data-for-rule]')) n.hidden = n.dataset.forRule !== rule;
}
for (const name of ['kind', 'method', 'rule']) $('new-form').elements[name].addEventListener('change', showFields);

function specOfForm(form) {
  const f = new FormData(form);
  const rule = { kind: f.get('rule') };
  if (rule.kind === 'supermajority') rule.ratio = Number(f.get('ratio'));
  if (rule.kind === 'inertia' && f.get('electorate_size')) rule.electorate = Number(f.get('electorate_size'));
  if (f.get('quorum')) rule.quorum = Number(f.get('quorum'));
  if (f.get('quorum_present')) rule.quorum_present = Number(f.get('quorum_present')) / 100;
  const spec = {
    title: f.get('title'), description: f.get('description'), rule,
    electorate: f.get('electorate'), kind: f.get('kind'), secrecy: f.get('secrecy'),
  };
  if (spec.kind === 'election') {
    spec.options = String(f.get('options')).split('\n').map((o) => o.trim()).filter(Boolean);
    spec.seats = Number(f.get('seats') || 1);
    spec.method = f.get('method');
    if (spec.method === 'selection') {
      if (f.get('min')) spec.min = Number(f.get('min'));
      if (f.get('max')) spec.max = Number(f.get('max'));
    }
  } else {
    spec.scale = f.get('scale');
  }
  const minutes = Number(f.get('duration_min'));
  spec.duration_s = minutes > 0 ? Math.round(minutes * 60) : null;
  return spec;
}

function fillForm(s) {
  const f = $('new-form').elements;
  f.title.value = s.title;
  f.description.value = s.description;
  f.kind.value = s.kind;
  f.scale.value = s.scale ?? 'choice';
  f.method.value = s.method ?? 'selection';
  f.options.value = (s.options ?? []).map((o) => o.name).join('\n');
  f.seats.value = s.seats ?? 1;
  f.min.value = s.min ?? '';
  f.max.value = s.max ?? '';
  f.rule.value = s.rule.kind;
  f.ratio.value = s.rule.ratio ?? 0.66;
  f.electorate_size.value = s.rule.electorate ?? '';
  f.quorum.value = s.rule.quorum ?? '';
  f.quorum_present.value = s.rule.quorum_present ? Math.round(s.rule.quorum_present * 100) : '';
  f.electorate.value = s.electorate;
  f.secrecy.value = s.secrecy ?? 'named';
  f.duration_min.value = s.duration_s ? s.duration_s / 60 : '';
  showFields();
}

function startEdit(id) {
  const s = snapshot?.sessions.find((x) => x.id === id);
  if (!s) return;
  editing = id;
  fillForm(s);
  $('new-vote').open = true;
  $('new-title-h').textContent = t('editDraft');
  $('create-session').textContent = t('saveDraft');
  $('cancel-edit').hidden = false;
  $('new-draft').closest('label').hidden = true;
  $('new-title').focus();
}

function stopEdit() {
  editing = null;
  $('new-form').reset();
  $('new-title-h').textContent = t('newVote');
  $('create-session').textContent = t('create');
  $('cancel-edit').hidden = true;
  $('new-draft').closest('label').hidden = false;
  showFields();
}
$('cancel-edit').addEventListener('click', stopEdit);

$('new-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const session = specOfForm(e.target);
  $('new-error').textContent = '';
  $('new-warning').textContent = '';
  try {
    if (editing) {
      await call('edit_session', { id: editing, session });
      stopEdit();
    } else {
      if ($('new-draft').checked) session.status = 'draft';
      const created = await call('create_session', { session });
      $('new-warning').textContent = created.warnings.join(' ');
      e.target.reset();
      showFields();
    }
  } catch (err) {
    $('new-error').textContent = errorText(err);
  }
});

// ── Import an agenda ───────────────────────────────────────────────────────

let importName = '';
$('import-file').addEventListener('change', async (e) => {
  const file = e.target.files?.[0];
  if (!file) return;
  importName = file.name;
  $('import-text').value = await file.text();
});

$('import-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('import-text').value;
  $('import-message').textContent = '';
  try {
    const created = await call('import_agenda', { text, name: importName });
    $('import-message').textContent = t('imported', { n: created.length });
    $('import-text').value = '';
    $('import-file').value = '';
    importName = '';
  } catch (err) {
    $('import-message').textContent = errorText(err);
  }
});

// ── The day: minutes, and closing it ───────────────────────────────────────

async function showMinutes(meeting) {
  const html = await call('minutes_html', { meeting, lang: document.documentElement.lang });
  $('minutes-frame').srcdoc = html;
}

$('minutes-button').addEventListener('click', async () => {
  try {
    // Earlier meetings stay readable: newest first, the current one chosen.
    const meetings = (await call('meetings')).reverse();
    $('minutes-meeting').replaceChildren(...meetings.map((m) =>
      el('option', { value: m.id, text: `${m.title} — ${m.started_at.slice(0, 10)}` })));
    await showMinutes(meetings[0]?.id ?? null);
    $('minutes-dialog').showModal();
  } catch (err) {
    $('hub-state').textContent = errorText(err);
  }
});
$('minutes-meeting').addEventListener('change', (e) => showMinutes(e.target.value).catch(() => {}));
$('minutes-print').addEventListener('click', () => $('minutes-frame').contentWindow?.print());
$('minutes-close').addEventListener('click', () => $('minutes-dialog').close());

$('close-day').addEventListener('click', () => {
  $('day-error').textContent = '';
  $('day-name').value = '';
  $('day-dialog').showModal();
});
$('day-form').addEventListener('submit', async (e) => {
  if (e.submitter?.value !== 'yes') return;
  e.preventDefault();
  try {
    await call('start_meeting', { title: $('day-name').value });
    $('day-dialog').close();
  } catch (err) {
    $('day-error').textContent = errorText(err);
  }
});

// ── The register of who has voted ──────────────────────────────────────────

const registers = new Map();   // session id → { seq, at } of the last read

/** The names of who voted, read again when the vote moved — at most once
 *  a second (a long register is sorted each time). */
async function renderRegister(s, box) {
  const last = registers.get(s.id);
  if (!box.open || last?.seq === s.seq) return;
  if (last && Date.now() - last.at < 1000) {
    if (!last.timer) last.timer = setTimeout(() => { last.timer = null; last.at = 0; renderRegister(currentOf(s.id), box); }, 1000);
    return;
  }
  registers.set(s.id, { seq: s.seq, at: Date.now() });
  try {
    const names = await call('voted', { id: s.id });
    box.querySelector('summary').textContent = t('whoVoted', { n: names.length });
    box.querySelector('ol').replaceChildren(...names.map((n) => el('li', { text: n })));
  } catch (err) {
    box.querySelector('ol').replaceChildren(el('li', { class: 'error', text: errorText(err) }));
  }
}

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
    max_proxies: Number(f.get('max_proxies') || 0),
    tls_cert: f.get('tls_cert'), tls_key: f.get('tls_key'),
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

let lastRoll = -1;
let rollTimer = null;
let first = true;
function apply(next) {
  // The form stays folded once there are votes to watch.
  if (first) { first = false; $('new-vote').open = next.sessions.length === 0; }
  snapshot = next;
  $('meeting-title').textContent = next.meeting ? t('meetingTitle', { title: next.meeting.title }) : '';
  renderStatus(next.status, next.connections);
  renderSessions(next.sessions);
  renderAttendance(next.attendance);
  $('key-fingerprint').textContent = next.key ? t('auditKey', { fingerprint: next.key.fingerprint }) : '';
  $('version').textContent = `votehub ${next.version}`;
  // The roll may be long: read again at most once a second while it moves.
  if (next.roll_version !== lastRoll && !rollTimer) {
    lastRoll = next.roll_version;
    renderRoll();
    rollTimer = setTimeout(() => {
      rollTimer = null;
      if (snapshot && snapshot.roll_version !== lastRoll) apply(snapshot);
    }, 1000);
  }
}

translate();
showFields();
startRoll(() => snapshot?.status?.join_urls ?? []);
await loadSettings();
await onSnapshot(apply);
apply(await call('snapshot'));
