// The participant page: the open votes with a ballot each — for / against
// / abstain, a grade, or the candidates of an election — the live tally,
// the countdown of a timed vote, and the result at the close. Keeps a
// voter id per browser (open sessions) or the voting code (roll sessions),
// and never drops a ballot silently: one that cannot be sent is kept, and
// sent again with the same ballot id until the hub answers (a retry the hub
// already recorded gets its first answer, never a second ballot).
//
// A member who holds proxies gets one ballot for themself and one per
// mandate ("for Bob, by proxy"), each sent as its own ballot, and a row of
// buttons that casts the same choice for all of them at once. A secret
// ballot, once recorded, is kept on this device without its choice: the
// page shows that it was cast, never what.
import { countdown, syncClock } from './clock.js';
import { t, translate } from './i18n.js';
import { Live } from './live.js';
import { bound, Receipts } from './receipts.js';
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
// Ballots are kept per slot: the session id for one's own ballot, and
// `id::name` for a mandate's.
const recorded = store.get('recorded') ?? {};   // slot → ballot the hub acknowledged ({secret} when secret)
const pending = store.get('pending') ?? {};     // slot → { ballot, ballot_id, on_behalf_of?, tracker? }
const drafts = {};              // slot → election marks being chosen, not yet sent
let roll = store.get('code');   // { code, name, mandates, represented_by } once accepted
// Each ballot's receipt, checked against the published log after the close.
const receipts = new Receipts(store, {
  render: (id) => render(id),
  renderAll: () => { for (const id of sessions.keys()) render(id); },
  status: (id) => sessions.get(id)?.state?.status,
});
const notes = {};               // slot → message shown under the ballot

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

let refreshRetry = null;
async function refresh() {
  let list;
  try {
    // Bounded like a ballot: on a lossy link a request can hang for long;
    // one that fails is tried again shortly (one retry pending at most).
    const r = await fetch('/api/sessions', { cache: 'no-store', signal: AbortSignal.timeout(8000) });
    list = await r.json();
  } catch {
    refreshRetry ??= setTimeout(() => { refreshRetry = null; refresh(); }, 2000);
    return;
  }
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
  // Proxies given or taken back since: the ballots this device holds follow.
  if (roll) checkCode(roll.code, true);
}

// ── Slots: whom this device votes for in a session ──────────────────────────

/** The ballots this device casts in session `meta`: its own (unless its
 *  proxy is given), then one per mandate it holds. */
function slotsOf(meta) {
  if (meta.electorate !== 'roll' || !roll) return [{ key: meta.id, mandate: null }];
  const own = roll.represented_by ? [] : [{ key: meta.id, mandate: null }];
  return own.concat((roll.mandates ?? []).map((m) => ({ key: `${meta.id}::${m.name}`, mandate: m })));
}

const sessionOf = (key) => key.split('::')[0];

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

/** The slot's current choice: the one on its way, else the one recorded
 *  (never a secret one: the device does not keep it). */
function mine(key) {
  const sent = pending[key]?.ballot ?? recorded[key];
  return sent?.secret ? null : sent;
}

/** A secret ballot was recorded for this slot: it cannot be changed. */
function castSecretly(key) {
  return !!recorded[key]?.secret;
}

const isSecret = (meta) => meta.secrecy === 'secret';

// ── Cards ─────────────────────────────────────────────────────────────────

function motionChoices(meta) {
  return meta.scale === 'nuanced'
    ? [3, 2, 1, 0, -1, -2, -3].map((g) => ({ grade: g }))
    : ['for', 'against', 'abstain'].map((c) => ({ choice: c }));
}

function motionBallot(key, meta, slot, headingId) {
  slot.buttons = motionChoices(meta).map((b) => [b, el('button', {
    type: 'button',
    class: `choice choice-${'grade' in b ? `g${b.grade}` : b.choice}`,
    'data-ballot': 'grade' in b ? String(b.grade) : b.choice,
    onclick: () => cast(key, b),
    text: ballotLabel(b, meta),
  })]);
  return el('div', { class: `ballot ${meta.scale === 'nuanced' ? 'nuanced' : ''}`, role: 'group', 'aria-labelledby': headingId },
    ...slot.buttons.map(([, button]) => button));
}

/** How many candidates a selection ballot may mark, in words. */
function selectionRule(meta) {
  if (meta.min === meta.max) return t('chooseExactly', { n: meta.max });
  if (meta.min > 0) return t('chooseBetween', { min: meta.min, max: meta.max });
  return t('chooseUpTo', { n: meta.max });
}

function electionBallot(key, meta, slot, headingId, n) {
  const ruleId = `rule-${n}-${meta.id}`;
  const limitId = `limit-${n}-${meta.id}`;
  slot.reason = el('p', { class: 'error limit', id: limitId, role: 'alert' });
  let fields;
  if (meta.method === 'approval') {
    fields = meta.options.map((o) => el('fieldset', { class: 'mark', 'data-option': String(o.id) },
      el('legend', { text: o.name }),
      ...['for', 'against', 'abstain'].map((m) => el('label', { class: `mark-${m}` },
        el('input', { type: 'radio', name: `m-${n}-${meta.id}-${o.id}`, value: m, 'data-mark': m,
          onchange: () => { drafts[key] = readMarks(slot, meta); } }),
        el('span', { text: t(m) })))));
  } else {
    fields = meta.options.map((o) => el('label', { class: 'candidate', 'data-option': String(o.id) },
      el('input', { type: 'checkbox', value: String(o.id), 'aria-describedby': `${ruleId} ${limitId}`,
        onchange: (e) => choose(key, meta, slot, e.target) }),
      el('span', { text: o.name })));
  }
  slot.submit = el('button', { type: 'button', class: 'primary cast', 'data-action': 'cast', text: t('castBallot'),
    onclick: () => submitElection([key], meta) });
  slot.fields = el('div', { class: 'fields' }, ...fields);
  return el('div', { class: `ballot election ${meta.method}`, role: 'group', 'aria-labelledby': headingId },
    el('p', { class: 'help', id: ruleId, text: meta.method === 'approval' ? t('markEach') : selectionRule(meta) }),
    slot.fields, slot.reason, slot.submit);
}

function readMarks(slot, meta) {
  const marks = {};
  for (const o of meta.options) {
    const picked = slot.node.querySelector(`fieldset[data-option="${o.id}"] input:checked`);
    marks[o.id] = picked?.value ?? 'abstain';
  }
  return marks;
}

/** A box ticked or unticked: more than `max` is refused, and said why. */
function choose(key, meta, slot, box) {
  const ticked = [...slot.node.querySelectorAll('.candidate input:checked')];
  if (box.checked && ticked.length > meta.max) {
    box.checked = false;
    slot.reason.textContent = t('tooMany', { n: meta.max });
    return;
  }
  slot.reason.textContent = '';
  drafts[key] = ticked.map((b) => Number(b.value)).sort((a, b) => a - b);
}

/** Sends the election ballot chosen in the first of `keys` for each of
 *  them (one slot, or every slot at once). */
function submitElection(keys, meta) {
  const s = sessions.get(meta.id);
  const slot = s.parts.slots.get(keys[0]);
  let ballot;
  if (meta.method === 'approval') {
    ballot = { marks: readMarks(slot, meta) };
  } else {
    const chosen = drafts[keys[0]] ?? [];
    if (chosen.length < meta.min) {
      slot.reason.textContent = t('tooFew', { n: meta.min });
      return;
    }
    ballot = { options: chosen };
  }
  slot.reason.textContent = '';
  for (const key of keys) cast(key, ballot);
}

/** The slots still waiting for a ballot (all of them, unless secret ones
 *  were cast: those cannot be changed). */
function castable(meta) {
  return slotsOf(meta).map((x) => x.key).filter((key) => !castSecretly(key));
}

/** Builds a session's card once per status and slot set; later renders
 *  only update its parts, so a tally update never takes the focus away
 *  from a control. */
function build(id) {
  const s = sessions.get(id);
  const { meta, state } = s;
  const open = state.status === 'open';
  const headingId = `h-${id}`;
  const slots = slotsOf(meta);
  const parts = {
    slots: new Map(),
    result: el('p', { class: 'result', role: 'status' }),
    audit: el('p', { class: 'audit', role: 'status', 'aria-live': 'polite' }),
    bars: el('div', { class: 'bars', role: 'group', 'aria-label': t('live') }),
    turnout: el('p', { class: 'turnout' }),
    standing: el('p', { class: 'standing' }),
    groups: el('div', { class: 'groups' }),
    countdown: el('p', { class: 'countdown' }),
    represented: el('p', { class: 'represented', role: 'status' }),
    all: null,
  };
  s.parts = parts;
  const blocks = [];
  if (open) {
    const many = slots.length > 1;
    if (many && meta.kind !== 'election') {
      // One tap casts the same choice for every ballot this device holds.
      const allHeading = `all-${id}`;
      parts.all = el('div', { class: 'slot slot-all', 'data-slot': 'all' },
        el('h3', { id: allHeading, text: t('forAll', { n: slots.length }) }),
        el('div', { class: `ballot ${meta.scale === 'nuanced' ? 'nuanced' : ''}`, role: 'group', 'aria-labelledby': allHeading },
          ...motionChoices(meta).map((b) => el('button', {
            type: 'button',
            class: `choice choice-${'grade' in b ? `g${b.grade}` : b.choice}`,
            'data-ballot': 'grade' in b ? String(b.grade) : b.choice,
            'data-all': 'true',
            onclick: () => { for (const key of castable(meta)) cast(key, b); },
            text: ballotLabel(b, meta),
          }))));
      blocks.push(parts.all);
    }
    slots.forEach(({ key, mandate }, n) => {
      const slot = { note: el('p', { class: 'note', role: 'status', 'aria-live': 'polite' }), buttons: [] };
      const slotHeading = `h-${n}-${id}`;
      const title = !many ? null : mandate
        ? t('forMandate', { name: mandate.name, weight: mandate.weight })
        : t('forMyself');
      const ballot = meta.kind === 'election'
        ? electionBallot(key, meta, slot, many ? slotHeading : headingId, n)
        : motionBallot(key, meta, slot, many ? slotHeading : headingId);
      slot.node = el('div', { class: 'slot', 'data-slot': mandate ? mandate.name : 'self' },
        title ? el('h3', { id: slotHeading, text: title }) : null, ballot, slot.note);
      if (many && meta.kind === 'election' && !mandate) {
        slot.node.append(el('button', { type: 'button', class: 'cast cast-all', 'data-action': 'cast-all',
          text: t('castForAll', { n: slots.length }), onclick: () => submitElection(castable(meta), meta) }));
      }
      parts.slots.set(key, slot);
      blocks.push(slot.node);
    });
  }
  const node = el('section', { class: `card session ${open ? 'is-open' : 'is-closed'}`, 'data-session': id, 'aria-labelledby': headingId },
    el('h2', { id: headingId, text: meta.title }),
    meta.description ? el('p', { class: 'description', text: meta.description }) : null,
    open && isSecret(meta) ? el('p', { class: 'secret-badge', text: t('secretBallot') }) : null,
    open ? parts.countdown : null,
    open ? parts.represented : null,
    ...(open ? blocks : [parts.result, parts.audit]),
    el('div', { class: 'live', 'aria-live': 'polite' }, parts.bars, parts.turnout, open ? parts.standing : null, parts.groups),
  );
  if (s.node) s.node.replaceWith(node);
  s.node = node;
  s.builtFor = `${state.status}|${slots.map((x) => x.key).join(',')}`;
  // An election ballot shows what was sent, when the page comes back.
  for (const [key, slot] of parts.slots) {
    const sent = mine(key);
    if (!open || meta.kind !== 'election' || !sent) continue;
    if (sent.options) {
      drafts[key] = sent.options;
      for (const box of slot.node.querySelectorAll('.candidate input')) box.checked = sent.options.includes(Number(box.value));
    } else if (sent.marks) {
      for (const [o, m] of Object.entries(sent.marks)) {
        const radio = slot.node.querySelector(`fieldset[data-option="${o}"] input[value="${m}"]`);
        if (radio) radio.checked = true;
      }
    }
  }
  if (open) countdown(parts.countdown, state.closes_at ?? meta.closes_at);
}

function render(id) {
  const s = sessions.get(id);
  if (!s) return;
  const wanted = `${s.state.status}|${slotsOf(s.meta).map((x) => x.key).join(',')}`;
  if (!s.node || s.builtFor !== wanted) build(id);
  const { meta, state, parts } = s;
  for (const [key, slot] of parts.slots) {
    const sealed = castSecretly(key);
    for (const [b, button] of slot.buttons) {
      button.setAttribute('aria-pressed', String(sameBallot(mine(key), b)));
      button.disabled = sealed;
    }
    if (slot.submit) slot.submit.disabled = sealed;
    if (sealed && slot.fields) {
      // Nothing of a secret ballot stays on screen once it is cast.
      for (const input of slot.fields.querySelectorAll('input')) { input.checked = false; input.disabled = true; }
    }
    slot.note.textContent = note(key);
  }
  if (parts.all) {
    const left = castable(meta).length;
    for (const button of parts.all.querySelectorAll('button')) button.disabled = left === 0;
  }
  parts.represented.textContent = meta.electorate === 'roll' && roll?.represented_by
    ? t('representedBy', { name: roll.represented_by }) : '';
  receipts.show(id, parts.audit);
  parts.result.className = `result result-${state.result}`;
  parts.result.dataset.result = state.result ?? '';
  parts.result.textContent = meta.kind === 'election'
    ? `${t('votingClosed')} — ${electionResult(state, meta)}`
    : `${t('votingClosed')} — ${t(state.result ?? 'rejected')}`;
  const people = state.ballots ?? state.total;
  if (isSecret(meta) && state.status !== 'closed') {
    // Until the close a secret vote shows how many voted, nothing per choice.
    parts.bars.replaceChildren(el('p', { class: 'secret-note', text: t('secretUntilClose') }));
    parts.standing.textContent = '';
  } else {
    renderBars(parts.bars, state, meta);
    parts.standing.textContent = standing(state);
  }
  parts.turnout.dataset.total = String(state.total);
  parts.turnout.textContent = meta.electorate === 'roll' && state.total !== people
    ? t('ballotsWeighed', { n: people, w: state.total }) : t('ballots', { n: people });
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

function note(key) {
  const meta = sessions.get(sessionOf(key))?.meta;
  if (notes[key]) return notes[key];
  if (pending[key]) return t('pending');
  if (recorded[key]?.secret) return t('secretRecorded');
  if (recorded[key]) return t('yourBallot', { choice: ballotLabel(recorded[key], meta) });
  return '';
}

function save() {
  bound(recorded, (k) => k in pending);
  store.set('recorded', recorded);
  store.set('pending', pending);
}

// ── Sending ballots ───────────────────────────────────────────────────────

async function cast(key, ballot) {
  const id = sessionOf(key);
  const s = sessions.get(id);
  if (!s) return;
  if (s.meta.electorate === 'roll' && !roll) {
    notes[key] = t('codeNeeded');
    render(id);
    $('code-input').focus();
    return;
  }
  if (castSecretly(key)) return;
  const slot = slotsOf(s.meta).find((x) => x.key === key);
  // A new ballot, a new id: retries of it carry this one (and a secret
  // ballot's tracker, chosen here, to find it in the results later).
  pending[key] = {
    ballot,
    ballot_id: randomId('b-'),
    ...(slot?.mandate ? { on_behalf_of: slot.mandate.name } : {}),
    ...(isSecret(s.meta) ? { tracker: randomId('') } : {}),
  };
  notes[key] = t('sending');
  save();
  render(id);
  await send(key);
}

const inflight = new Set();

/** Sends the pending ballot of slot `key`; keeps it when the network fails. */
async function send(key) {
  const waiting = pending[key];
  const s = sessions.get(sessionOf(key));
  if (!waiting || !s || inflight.has(key)) return;
  inflight.add(key);
  try { await post(key, s, waiting); } finally { inflight.delete(key); }
  // A tap made while this one was on its way goes out now.
  if (pending[key] && pending[key].ballot_id !== waiting.ballot_id) send(key);
}

/** The longest ballot session `meta` takes: its body is what every
 *  ballot's is padded to. */
function longestBallot(meta) {
  if (meta.kind !== 'election') return meta.scale === 'nuanced' ? { grade: -3 } : { choice: 'against' };
  const ids = meta.options.map((o) => o.id);
  if (meta.method === 'approval') return { marks: Object.fromEntries(ids.map((i) => [i, 'against'])) };
  return { options: ids.slice(-Math.max(1, meta.max ?? ids.length)) };
}

/** `fields` as JSON, padded to the length of the longest ballot the
 *  session takes (rounded up to 64 bytes): over HTTPS, the size of a
 *  request then says nothing of the choice in it. */
function padded(fields, ballot, meta) {
  const text = JSON.stringify({ ...fields, ...ballot });
  const longest = JSON.stringify({ ...fields, ...longestBallot(meta), pad: '' }).length;
  const target = Math.ceil((longest + 1) / 64) * 64;
  const room = target - text.length - ',"pad":""'.length;
  return JSON.stringify({ ...fields, ...ballot, pad: ' '.repeat(Math.max(0, room)) });
}

async function post(key, s, waiting) {
  const id = s.meta.id;
  const voter = s.meta.electorate === 'roll' ? roll?.code : voterId;
  const fields = { voter, ballot_id: waiting.ballot_id };
  if (waiting.on_behalf_of) fields.on_behalf_of = waiting.on_behalf_of;
  if (waiting.tracker) fields.tracker = waiting.tracker;
  let r;
  try {
    r = await fetch(`/api/sessions/${id}/votes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: padded(fields, waiting.ballot, s.meta),
      // On a Wi-Fi that went silent a request hangs for minutes: give it
      // up and send it again (same ballot id) once the hub is back.
      signal: AbortSignal.timeout(8000),
    });
  } catch {
    notes[key] = t('pending');
    render(id);
    return;
  }
  if (r.status >= 500) {
    // Nothing was recorded: try again later with the same id.
    notes[key] = t('pending');
    render(id);
    return;
  }
  let answer = null;
  try { answer = await r.json(); } catch { /* cut off on the way */ }
  if (r.ok && answer === null) {
    // Recorded, but the answer was lost: the same id again gets it.
    notes[key] = t('pending');
    render(id);
    return;
  }
  if (pending[key]?.ballot_id !== waiting.ballot_id) return; // a newer tap is on its way
  delete pending[key];
  delete notes[key];
  if (r.ok) {
    const receipt = answer;
    // A secret ballot leaves only that it was cast (and its tracker).
    recorded[key] = isSecret(s.meta) ? { secret: true, tracker: receipt.receipt?.tracker ?? waiting.tracker } : waiting.ballot;
    receipts.keep(key, id, receipt.receipt, waiting.ballot);
    delete drafts[key];
    live.offer({ ...s.state, ...stateOfTally(receipt.tally, s.meta), id, seq: receipt.seq, status: 'open' });
  } else {
    switch (answer?.code) {
      case 'already_voted': recorded[key] = { secret: true }; notes[key] = t('alreadyVoted'); break;
      case 'voter_represented': notes[key] = t('representedRefused'); checkCode(roll?.code, true); break;
      case 'not_a_proxy': notes[key] = t('notAProxy'); checkCode(roll?.code, true); break;
      case 'voter_not_on_roll': notes[key] = t('notOnRoll'); forgetCode(); break;
      case 'session_closed': case 'session_not_open': notes[key] = t('closedRefused'); break;
      default: notes[key] = t('failed', { error: answer?.error ?? r.status });
    }
  }
  save();
  render(id);
}

/** A receipt's tally as the views draw it. */
function stateOfTally(tally, meta) {
  return stateOfSession({ ...meta, tally, status: 'open' });
}

function flushPending() {
  for (const key of Object.keys(pending)) send(key);
}

// ── The voting code ────────────────────────────────────────────────────────

function renderCode() {
  $('code-form').hidden = !!roll;
  $('code-ok').hidden = !roll;
  if (!roll) return;
  const mandates = roll.mandates ?? [];
  $('code-name').textContent = mandates.length
    ? t('codeVotingAsFor', { name: roll.name, names: mandates.map((m) => m.name).join(', ') })
    : t('codeVotingAs', { name: roll.name });
}

function forgetCode() {
  roll = null;
  store.drop('code');
  $('code').hidden = false;
  renderCode();
  for (const id of sessions.keys()) render(id);
}

/** Looks a typed code up; `quiet` re-reads a known one (its proxies may
 *  have changed). True when the code is on the roll. */
async function checkCode(typed, quiet = false) {
  const error = $('code-error');
  if (!quiet) error.textContent = '';
  if (!typed) return false;
  let r;
  try {
    r = await fetch(`/api/voters/${encodeURIComponent(typed)}`, { cache: 'no-store' });
  } catch {
    if (!quiet) error.textContent = t('offline');
    return false;
  }
  if (!r.ok) {
    if (r.status === 404) {
      if (quiet && roll) { forgetCode(); error.textContent = t('codeGone'); return false; }
      error.textContent = t('notOnRoll');
      $('code-input').setAttribute('aria-invalid', 'true');
    }
    return false;
  }
  $('code-input').removeAttribute('aria-invalid');
  const entry = await r.json();
  roll = { code: entry.code, name: entry.name, mandates: entry.mandates ?? [], represented_by: entry.represented_by ?? null };
  store.set('code', roll);
  renderCode();
  for (const id of sessions.keys()) render(id);
  return true;
}

$('code-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const typed = $('code-input').value.trim();
  if (await checkCode(typed)) {
    $('code-input').value = '';
    for (const key of Object.keys(notes)) delete notes[key];
    for (const id of sessions.keys()) render(id);
  }
});
$('code-change').addEventListener('click', () => { forgetCode(); $('code-input').focus(); });

// ── Start ──────────────────────────────────────────────────────────────────

// Ballots kept from before this page had ballot ids are sent with one.
for (const [key, p] of Object.entries(pending)) {
  if (!p?.ballot) pending[key] = { ballot: p, ballot_id: randomId('b-') };
}
save();
// A card's QR code opens the page with the code filled in: it is taken,
// then wiped from the address bar (and from the history).
const given = new URLSearchParams(location.search).get('code');
if (given) {
  history.replaceState(null, '', location.pathname);
  if (!roll || roll.code !== given) checkCode(given);
}
translate();
document.title = `votehub — ${t('title')}`;
addEventListener('online', flushPending);
// A ballot left pending is retried while the page is open.
setInterval(() => { if (live.online) flushPending(); }, 3000);
live.start();
clock();
receipts.loadKey();
refresh();
