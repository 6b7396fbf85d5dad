// The participant page: open sessions with a ballot, the live tally, and
// the result at the close. Keeps a voter id per browser (open sessions) or
// the voting code (roll sessions), and never drops a ballot silently: one
// that cannot be sent is kept and sent again when the connection is back.
import { t, translate } from './i18n.js';
import { Live } from './live.js';
import { el, mergeState, renderBars, standing, stateOfSession } from './tally.js';

const store = {
  get(k) { try { return JSON.parse(localStorage.getItem(`votehub.${k}`)); } catch { return null; } },
  set(k, v) { try { localStorage.setItem(`votehub.${k}`, JSON.stringify(v)); } catch { /* private mode */ } },
  drop(k) { try { localStorage.removeItem(`votehub.${k}`); } catch { /* private mode */ } },
};

// crypto.randomUUID needs a secure context, which a LAN address is not.
function newVoterId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return 'p-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
const voterId = store.get('voter') ?? newVoterId();
store.set('voter', voterId);

const sessions = new Map();     // id → { meta, state, node }
const recorded = store.get('recorded') ?? {};   // id → ballot the hub acknowledged
const pending = store.get('pending') ?? {};     // id → ballot not yet acknowledged
let roll = store.get('code');   // { code, name } once accepted
const notes = {};               // id → message shown under the ballot

const $ = (id) => document.getElementById(id);

const live = new Live({
  onStatus(status) {
    const s = $('status');
    s.dataset.state = status;
    s.textContent = t(status);
    if (status === 'online') { refresh(); flushPending(); }
  },
  onSessionsChanged: () => refresh(),
  onState(state) {
    const s = sessions.get(state.id);
    if (!s) return;
    s.state = mergeState(s.state, state);
    render(state.id);
  },
});

async function refresh() {
  let list;
  try {
    const r = await fetch('/api/sessions', { cache: 'no-store' });
    list = await r.json();
  } catch { return; }
  const seen = new Set();
  // Open sessions first, newest first within each group (the API's order).
  list.sort((a, b) => (a.status === b.status ? 0 : a.status === 'open' ? -1 : 1));
  for (const meta of list) {
    seen.add(meta.id);
    const known = sessions.get(meta.id);
    if (!known) sessions.set(meta.id, { meta, state: stateOfSession(meta), node: null });
    else known.meta = meta;
    live.offer(stateOfSession(meta));
    live.follow(meta.id);
  }
  for (const id of [...sessions.keys()]) if (!seen.has(id)) { sessions.get(id).node?.remove(); sessions.delete(id); }
  const box = $('sessions');
  for (const meta of list) {
    const s = sessions.get(meta.id);
    render(meta.id);
    box.append(s.node);
  }
  $('empty').hidden = list.some((m) => m.status === 'open');
  $('code').hidden = !list.some((m) => m.electorate === 'roll' && m.status === 'open') && !roll;
  renderCode();
}

function ballotLabel(b) {
  return 'grade' in b ? t(`grade.${b.grade}`) : t(b.choice);
}

function sameBallot(a, b) {
  return a && b && a.choice === b.choice && a.grade === b.grade;
}

/** Builds a session's card once per status; later renders only update its
 *  parts, so a tally update never takes the focus away from a button. */
function build(id) {
  const s = sessions.get(id);
  const { meta, state } = s;
  const open = state.status === 'open';
  const options = meta.scale === 'nuanced'
    ? [3, 2, 1, 0, -1, -2, -3].map((g) => ({ grade: g }))
    : ['for', 'against', 'abstain'].map((c) => ({ choice: c }));
  const headingId = `h-${id}`;
  const parts = {
    buttons: options.map((b) => [b, el('button', {
      type: 'button',
      class: `choice choice-${'grade' in b ? `g${b.grade}` : b.choice}`,
      'data-ballot': 'grade' in b ? String(b.grade) : b.choice,
      onclick: () => cast(id, b),
      text: ballotLabel(b),
    })]),
    result: el('p', { class: 'result' }),
    note: el('p', { class: 'note', role: 'status', 'aria-live': 'polite' }),
    bars: el('div', { class: 'bars', role: 'group', 'aria-label': t('live') }),
    turnout: el('p', { class: 'turnout' }),
    standing: el('p', { class: 'standing' }),
    groups: el('div', { class: 'groups' }),
  };
  const node = el('section', { class: `card session ${open ? 'is-open' : 'is-closed'}`, 'data-session': id, 'aria-labelledby': headingId },
    el('h2', { id: headingId, text: meta.title }),
    meta.description ? el('p', { class: 'description', text: meta.description }) : null,
    open
      ? el('div', { class: `ballot ${meta.scale === 'nuanced' ? 'nuanced' : ''}`, role: 'group', 'aria-labelledby': headingId },
        ...parts.buttons.map(([, button]) => button))
      : parts.result,
    parts.note,
    el('div', { class: 'live', 'aria-live': 'polite' }, parts.bars, parts.turnout, open ? parts.standing : null, parts.groups),
  );
  if (s.node) s.node.replaceWith(node);
  s.node = node;
  s.parts = parts;
  s.builtFor = state.status;
}

function render(id) {
  const s = sessions.get(id);
  if (!s) return;
  if (!s.node || s.builtFor !== s.state.status) build(id);
  const { state, parts } = s;
  const mine = pending[id] ?? recorded[id];
  for (const [b, button] of parts.buttons) button.setAttribute('aria-pressed', String(sameBallot(mine, b)));
  parts.result.className = `result result-${state.result}`;
  parts.result.dataset.result = state.result ?? '';
  parts.result.textContent = `${t('closed')} — ${t(state.result ?? 'rejected')}`;
  parts.note.textContent = note(id);
  renderBars(parts.bars, state);
  parts.turnout.dataset.total = String(state.total);
  parts.turnout.textContent = t('ballots', { n: state.total });
  parts.standing.textContent = standing(state);
  parts.groups.replaceChildren(...(state.groups ?? []).map((g) =>
    el('p', { class: 'group', text: t('groupNeed', { group: g.group, have: g.approvals, need: g.needed }) })));
}

function note(id) {
  if (notes[id]) return notes[id];
  if (pending[id]) return t('pending');
  if (recorded[id]) return t('yourBallot', { choice: ballotLabel(recorded[id]) });
  return '';
}

function save() {
  store.set('recorded', recorded);
  store.set('pending', pending);
}

async function cast(id, ballot) {
  const s = sessions.get(id);
  if (!s) return;
  if (s.meta.electorate === 'roll' && !roll) {
    notes[id] = t('codeNeeded');
    render(id);
    $('code-input').focus();
    return;
  }
  pending[id] = ballot;
  notes[id] = t('sending');
  save();
  render(id);
  await send(id);
}

const inflight = new Set();

/** Sends the pending ballot of session `id`; keeps it when the network fails. */
async function send(id) {
  const ballot = pending[id];
  const s = sessions.get(id);
  if (!ballot || !s || inflight.has(id)) return;
  inflight.add(id);
  try { await post(id, s, ballot); } finally { inflight.delete(id); }
  // A click made while this one was on its way goes out now.
  if (pending[id] && !sameBallot(pending[id], ballot)) send(id);
}

async function post(id, s, ballot) {
  const voter = s.meta.electorate === 'roll' ? roll?.code : voterId;
  let r;
  try {
    r = await fetch(`/api/sessions/${id}/votes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ voter, ...ballot }),
    });
  } catch {
    notes[id] = t('pending');
    render(id);
    return;
  }
  if (!sameBallot(pending[id], ballot)) return; // a newer click is on its way
  delete pending[id];
  delete notes[id];
  if (r.ok) {
    const receipt = await r.json();
    recorded[id] = ballot;
    live.offer({ ...s.state, ...receipt.tally, id, seq: receipt.seq, status: 'open' });
  } else {
    const body = await r.json().catch(() => ({}));
    if (r.status === 409) notes[id] = t('closedRefused');
    else if (r.status === 403) { notes[id] = t('notOnRoll'); forgetCode(); }
    else notes[id] = t('failed', { error: body.error ?? r.status });
  }
  save();
  render(id);
}

function flushPending() {
  for (const id of Object.keys(pending)) send(id);
}

// ── The voting code ────────────────────────────────────────────────────────

function renderCode() {
  $('code-form').hidden = !!roll;
  $('code-ok').hidden = !roll;
  if (roll) $('code-name').textContent = t('codeVotingAs', { name: roll.name });
}

function forgetCode() {
  roll = null;
  store.drop('code');
  $('code').hidden = false;
  renderCode();
}

$('code-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const typed = $('code-input').value.trim();
  const error = $('code-error');
  error.textContent = '';
  if (!typed) return;
  let r;
  try {
    r = await fetch(`/api/voters/${encodeURIComponent(typed)}`);
  } catch {
    error.textContent = t('offline');
    return;
  }
  if (!r.ok) {
    error.textContent = t('notOnRoll');
    $('code-input').setAttribute('aria-invalid', 'true');
    return;
  }
  $('code-input').removeAttribute('aria-invalid');
  const entry = await r.json();
  roll = { code: entry.code, name: entry.name };
  store.set('code', roll);
  $('code-input').value = '';
  renderCode();
  for (const id of sessions.keys()) { delete notes[id]; render(id); }
});
$('code-change').addEventListener('click', () => { forgetCode(); $('code-input').focus(); });

// ── Start ──────────────────────────────────────────────────────────────────

translate();
document.title = `votehub — ${t('title')}`;
addEventListener('online', flushPending);
// A ballot left pending is retried while the page is open.
setInterval(() => { if (live.online) flushPending(); }, 3000);
live.start();
refresh();
