// The participant page: the open votes with a ballot each — for / against
// / abstain, a grade, or the candidates of an election — the live tally,
// the countdown of a timed vote, and the result at the close. Keeps a
// voter id per browser (open sessions) or the voting code (roll sessions),
// and never drops a ballot silently: one that cannot be sent is kept, and
// sent again with the same ballot id until the hub answers (a retry the hub
// already recorded gets its first answer, never a second ballot).
import { countdown, syncClock } from './clock.js';
import { t, translate } from './i18n.js';
import { Live } from './live.js';
import { el, electionResult, mergeState, optionName, renderBars, standing, stateOfSession } from './tally.js';

const store = {
  get(k) { try { return JSON.parse(localStorage.getItem(`votehub.${k}`)); } catch { return null; } },
  set(k, v) { try { localStorage.setItem(`votehub.${k}`, JSON.stringify(v)); } catch { /* private mode */ } },
  drop(k) { try { localStorage.removeItem(`votehub.${k}`); } catch { /* private mode */ } },
};

// crypto.randomUUID needs a secure context, which a LAN address is not.
function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
const voterId = store.get('voter') ?? randomId('p-');
store.set('voter', voterId);

const sessions = new Map();     // id → { meta, state, node, parts }
const recorded = store.get('recorded') ?? {};   // id → ballot the hub acknowledged
const pending = store.get('pending') ?? {};     // id → { ballot, ballot_id } not yet acknowledged
const drafts = {};              // id → election marks being chosen, not yet sent
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

async function clock() {
  try {
    const sent = Date.now();
    const info = await (await fetch('/api/info', { cache: 'no-store' })).json();
    syncClock(info, sent, Date.now());
  } catch { /* offline: keep the last offset */ }
}

async function refresh() {
  let list;
  try {
    const r = await fetch('/api/sessions', { cache: 'no-store' });
    list = await r.json();
  } catch { return; }
  // Drafts are the organisers' until they open.
  list = list.filter((m) => m.status !== 'draft');
  const seen = new Set();
  // Open sessions first, newest first within each group (the API's order).
  list.sort((a, b) => (a.status === b.status ? 0 : a.status === 'open' ? -1 : 1));
  for (const meta of list) {
    seen.add(meta.id);
    const known = sessions.get(meta.id);
    if (!known) sessions.set(meta.id, { meta, state: stateOfSession(meta), node: null });
    else { known.meta = meta; known.state = mergeState(known.state, { status: meta.status, result: meta.result }); }
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

// ── What a ballot looks like ───────────────────────────────────────────────

function ballotLabel(b, meta) {
  if ('grade' in b) return t(`grade.${b.grade}`);
  if ('choice' in b) return t(b.choice);
  if ('options' in b) return b.options.length ? b.options.map((id) => optionName(meta, id)).join(', ') : t('blank');
  const marked = Object.entries(b.marks).filter(([, m]) => m !== 'abstain');
  if (!marked.length) return t('blank');
  return marked.map(([id, m]) => `${optionName(meta, Number(id))} (${t(m)})`).join(', ');
}

function sameBallot(a, b) {
  return !!a && !!b && JSON.stringify(a) === JSON.stringify(b);
}

/** What the ballot's current choice is: the one on its way, else the one
 *  recorded. */
function mine(id) {
  return pending[id]?.ballot ?? recorded[id];
}

// ── Cards ─────────────────────────────────────────────────────────────────

function motionBallot(id, meta, parts) {
  const options = meta.scale === 'nuanced'
    ? [3, 2, 1, 0, -1, -2, -3].map((g) => ({ grade: g }))
    : ['for', 'against', 'abstain'].map((c) => ({ choice: c }));
  parts.buttons = options.map((b) => [b, el('button', {
    type: 'button',
    class: `choice choice-${'grade' in b ? `g${b.grade}` : b.choice}`,
    'data-ballot': 'grade' in b ? String(b.grade) : b.choice,
    onclick: () => cast(id, b),
    text: ballotLabel(b, meta),
  })]);
  return el('div', { class: `ballot ${meta.scale === 'nuanced' ? 'nuanced' : ''}`, role: 'group', 'aria-labelledby': `h-${id}` },
    ...parts.buttons.map(([, button]) => button));
}

/** How many candidates a selection ballot may mark, in words. */
function selectionRule(meta) {
  if (meta.min === meta.max) return t('chooseExactly', { n: meta.max });
  if (meta.min > 0) return t('chooseBetween', { min: meta.min, max: meta.max });
  return t('chooseUpTo', { n: meta.max });
}

function electionBallot(id, meta, parts) {
  const ruleId = `rule-${id}`;
  const reason = el('p', { class: 'error limit', id: `limit-${id}`, role: 'alert' });
  parts.reason = reason;
  let fields;
  if (meta.method === 'approval') {
    fields = meta.options.map((o) => el('fieldset', { class: 'mark', 'data-option': String(o.id) },
      el('legend', { text: o.name }),
      ...['for', 'against', 'abstain'].map((m) => el('label', { class: `mark-${m}` },
        el('input', { type: 'radio', name: `m-${id}-${o.id}`, value: m, 'data-mark': m,
          onchange: () => { drafts[id] = readMarks(id, meta); } }),
        el('span', { text: t(m) })))));
  } else {
    fields = meta.options.map((o) => el('label', { class: 'candidate', 'data-option': String(o.id) },
      el('input', { type: 'checkbox', value: String(o.id), 'aria-describedby': `${ruleId} limit-${id}`,
        onchange: (e) => choose(id, meta, e.target) }),
      el('span', { text: o.name })));
  }
  parts.submit = el('button', { type: 'button', class: 'primary cast', 'data-action': 'cast', text: t('castBallot'),
    onclick: () => submitElection(id, meta) });
  return el('div', { class: `ballot election ${meta.method}`, role: 'group', 'aria-labelledby': `h-${id}` },
    el('p', { class: 'help', id: ruleId, text: meta.method === 'approval' ? t('markEach') : selectionRule(meta) }),
    ...fields, reason, parts.submit);
}

function readMarks(id, meta) {
  const card = sessions.get(id)?.node;
  const marks = {};
  for (const o of meta.options) {
    const picked = card?.querySelector(`input[name="m-${id}-${o.id}"]:checked`);
    marks[o.id] = picked?.value ?? 'abstain';
  }
  return marks;
}

/** A box ticked or unticked: more than `max` is refused, and said why. */
function choose(id, meta, box) {
  const card = sessions.get(id).node;
  const ticked = [...card.querySelectorAll('.candidate input:checked')];
  const { reason } = sessions.get(id).parts;
  if (box.checked && ticked.length > meta.max) {
    box.checked = false;
    reason.textContent = t('tooMany', { n: meta.max });
    return;
  }
  reason.textContent = '';
  drafts[id] = ticked.map((b) => Number(b.value)).sort((a, b) => a - b);
}

function submitElection(id, meta) {
  const { reason } = sessions.get(id).parts;
  if (meta.method === 'approval') {
    cast(id, { marks: readMarks(id, meta) });
    return;
  }
  const chosen = drafts[id] ?? [];
  if (chosen.length < meta.min) {
    reason.textContent = t('tooFew', { n: meta.min });
    return;
  }
  reason.textContent = '';
  cast(id, { options: chosen });
}

/** Builds a session's card once per status; later renders only update its
 *  parts, so a tally update never takes the focus away from a control. */
function build(id) {
  const s = sessions.get(id);
  const { meta, state } = s;
  const open = state.status === 'open';
  const headingId = `h-${id}`;
  const parts = {
    buttons: [],
    result: el('p', { class: 'result', role: 'status' }),
    note: el('p', { class: 'note', role: 'status', 'aria-live': 'polite' }),
    bars: el('div', { class: 'bars', role: 'group', 'aria-label': t('live') }),
    turnout: el('p', { class: 'turnout' }),
    standing: el('p', { class: 'standing' }),
    groups: el('div', { class: 'groups' }),
    countdown: el('p', { class: 'countdown' }),
  };
  s.parts = parts;
  let ballot = null;
  if (open) ballot = meta.kind === 'election' ? electionBallot(id, meta, parts) : motionBallot(id, meta, parts);
  const node = el('section', { class: `card session ${open ? 'is-open' : 'is-closed'}`, 'data-session': id, 'aria-labelledby': headingId },
    el('h2', { id: headingId, text: meta.title }),
    meta.description ? el('p', { class: 'description', text: meta.description }) : null,
    open ? parts.countdown : null,
    open ? ballot : parts.result,
    parts.note,
    el('div', { class: 'live', 'aria-live': 'polite' }, parts.bars, parts.turnout, open ? parts.standing : null, parts.groups),
  );
  if (s.node) s.node.replaceWith(node);
  s.node = node;
  s.builtFor = state.status;
  // An election ballot shows what was sent, when the page comes back.
  const sent = mine(id);
  if (open && meta.kind === 'election' && sent) {
    if (sent.options) {
      drafts[id] = sent.options;
      for (const box of node.querySelectorAll('.candidate input')) box.checked = sent.options.includes(Number(box.value));
    } else if (sent.marks) {
      for (const [o, m] of Object.entries(sent.marks)) {
        const radio = node.querySelector(`input[name="m-${id}-${o}"][value="${m}"]`);
        if (radio) radio.checked = true;
      }
    }
  }
  if (open) countdown(parts.countdown, state.closes_at ?? meta.closes_at);
}

function render(id) {
  const s = sessions.get(id);
  if (!s) return;
  if (!s.node || s.builtFor !== s.state.status) build(id);
  const { meta, state, parts } = s;
  for (const [b, button] of parts.buttons) button.setAttribute('aria-pressed', String(sameBallot(mine(id), b)));
  parts.result.className = `result result-${state.result}`;
  parts.result.dataset.result = state.result ?? '';
  parts.result.textContent = meta.kind === 'election'
    ? `${t('votingClosed')} — ${electionResult(state, meta)}`
    : `${t('votingClosed')} — ${t(state.result ?? 'rejected')}`;
  parts.note.textContent = note(id);
  renderBars(parts.bars, state, meta);
  parts.turnout.dataset.total = String(state.total);
  parts.turnout.textContent = t('ballots', { n: state.ballots ?? state.total });
  parts.standing.textContent = standing(state);
  parts.groups.replaceChildren(...(state.groups ?? []).map((g) =>
    el('p', { class: 'group', text: t('groupNeed', { group: g.group, have: g.approvals, need: g.needed }) })));
  if (state.status === 'open' && parts.countdown.isConnected) {
    const closesAt = state.closes_at ?? meta.closes_at;
    if (parts.countdown.dataset.closesAt !== (closesAt ?? '')) {
      parts.countdown.dataset.closesAt = closesAt ?? '';
      countdown(parts.countdown, closesAt);
    }
  }
}

function note(id) {
  const meta = sessions.get(id)?.meta;
  if (notes[id]) return notes[id];
  if (pending[id]) return t('pending');
  if (recorded[id]) return t('yourBallot', { choice: ballotLabel(recorded[id], meta) });
  return '';
}

function save() {
  store.set('recorded', recorded);
  store.set('pending', pending);
}

// ── Sending ballots ───────────────────────────────────────────────────────

async function cast(id, ballot) {
  const s = sessions.get(id);
  if (!s) return;
  if (s.meta.electorate === 'roll' && !roll) {
    notes[id] = t('codeNeeded');
    render(id);
    $('code-input').focus();
    return;
  }
  // A new ballot, a new id: retries of it carry this one.
  pending[id] = { ballot, ballot_id: randomId('b-') };
  notes[id] = t('sending');
  save();
  render(id);
  await send(id);
}

const inflight = new Set();

/** Sends the pending ballot of session `id`; keeps it when the network fails. */
async function send(id) {
  const waiting = pending[id];
  const s = sessions.get(id);
  if (!waiting || !s || inflight.has(id)) return;
  inflight.add(id);
  try { await post(id, s, waiting); } finally { inflight.delete(id); }
  // A tap made while this one was on its way goes out now.
  if (pending[id] && pending[id].ballot_id !== waiting.ballot_id) send(id);
}

async function post(id, s, waiting) {
  const voter = s.meta.electorate === 'roll' ? roll?.code : voterId;
  let r;
  try {
    r = await fetch(`/api/sessions/${id}/votes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ voter, ...waiting.ballot, ballot_id: waiting.ballot_id }),
    });
  } catch {
    notes[id] = t('pending');
    render(id);
    return;
  }
  if (r.status >= 500) {
    // Nothing was recorded: try again later with the same id.
    notes[id] = t('pending');
    render(id);
    return;
  }
  if (pending[id]?.ballot_id !== waiting.ballot_id) return; // a newer tap is on its way
  delete pending[id];
  delete notes[id];
  if (r.ok) {
    const receipt = await r.json();
    recorded[id] = waiting.ballot;
    live.offer({ ...s.state, ...stateOfTally(receipt.tally, s.meta), id, seq: receipt.seq, status: 'open' });
  } else {
    const body = await r.json().catch(() => ({}));
    if (r.status === 409) notes[id] = t('closedRefused');
    else if (r.status === 403) { notes[id] = t('notOnRoll'); forgetCode(); }
    else notes[id] = t('failed', { error: body.error ?? r.status });
  }
  save();
  render(id);
}

/** A receipt's tally as the views draw it. */
function stateOfTally(tally, meta) {
  return stateOfSession({ ...meta, tally, status: 'open' });
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

// Ballots kept from before this page had ballot ids are sent with one.
for (const [id, p] of Object.entries(pending)) {
  if (!p?.ballot) pending[id] = { ballot: p, ballot_id: randomId('b-') };
}
save();
translate();
document.title = `votehub — ${t('title')}`;
addEventListener('online', flushPending);
// A ballot left pending is retried while the page is open.
setInterval(() => { if (live.online) flushPending(); }, 3000);
live.start();
clock();
refresh();
