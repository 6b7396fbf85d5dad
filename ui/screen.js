// The projector view: the vote the room is on, in large type — bars (one
// per candidate in an election), turnout, what adoption still needs, the
// countdown of a timed vote, the result at the close — and the address to
// join with its QR code, and who is present (when there is a roll). It
// follows the agenda by itself: the open vote, else the last result.
// `?session=<id>` pins a session; `?attendance=0` hides the attendance.
import { countdown, syncClock } from './clock.js';
import { t, translate } from './i18n.js';
import { Live } from './live.js';
import { el, electionResult, mergeState, renderBars, standing, stateOfSession } from './tally.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const pinned = params.get('session');
const showAttendance = params.get('attendance') !== '0';
let current = null;   // { meta, state }
let rollSize = 0;
let joinUrl = '';
let keyFingerprint = '';

const live = new Live({
  onStatus(status) {
    $('status').dataset.state = status;
    $('status').textContent = status === 'online' ? '' : t(status);
    if (status === 'online') refresh();
  },
  onSessionsChanged: () => refresh(),
  onState(state) {
    if (!current || state.id !== current.meta.id) return;
    const wasOpen = current.state.status === 'open';
    current.state = mergeState(current.state, state);
    render();
    // A vote that just closed: the agenda may have moved on.
    if (wasOpen && current.state.status === 'closed') refresh();
  },
});

/** What the room is on: the first open vote of the agenda, else the vote
 *  closed last. */
function pick(agenda) {
  if (pinned) return agenda.find((s) => s.id === pinned);
  const open = agenda.find((s) => s.status === 'open');
  if (open) return open;
  const closed = agenda.filter((s) => s.status === 'closed');
  closed.sort((a, b) => (a.closed_at < b.closed_at ? 1 : -1));
  return closed[0];
}

async function refresh() {
  let agenda, info;
  try {
    const sent = Date.now();
    [agenda, info] = await Promise.all([
      fetch('/api/agenda', { cache: 'no-store' }).then((r) => r.json()),
      fetch('/api/info', { cache: 'no-store' }).then((r) => r.json()),
    ]);
    syncClock(info, sent, Date.now());
  } catch { return; }
  rollSize = info.roll_size;
  const url = info.join_urls[0];
  joinUrl = url;
  if ($('join-url').textContent !== url) {
    $('join-url').textContent = url;
    $('qr').src = `/qr.svg?data=${encodeURIComponent(url)}`;
    $('qr').alt = url;
  }
  const chosen = pick(agenda);
  if (!chosen) {
    if (current) live.unfollow(current.meta.id);
    current = null;
    render();
    return;
  }
  if (current?.meta.id !== chosen.id) {
    if (current) live.unfollow(current.meta.id);
    current = { meta: chosen, state: stateOfSession(chosen) };
    live.follow(chosen.id);
  }
  current.meta = chosen;
  current.state = mergeState(current.state, { status: chosen.status, result: chosen.result,
    elected: chosen.elected ?? null, tied: chosen.tied ?? null });
  live.offer(stateOfSession(chosen));
  render();
}

function render() {
  $('empty').hidden = !!current;
  document.body.dataset.session = current?.meta.id ?? '';
  if (!current) {
    for (const id of ['title', 'description', 'turnout', 'standing']) $(id).textContent = '';
    $('bars').replaceChildren();
    $('result').hidden = true;
    countdown($('countdown'), null);
    return;
  }
  const { meta, state } = current;
  $('title').textContent = meta.title;
  $('description').textContent = meta.description;
  if (meta.secrecy === 'secret' && state.status !== 'closed') {
    // Until the close a secret vote shows how many voted, nothing per choice.
    $('bars').replaceChildren(el('p', { class: 'secret-note', text: t('secretUntilClose') }));
  } else {
    renderBars($('bars'), state, meta);
  }
  const people = state.ballots ?? state.total;
  const turnout = meta.electorate === 'roll' && rollSize > 0
    ? t('turnout', { n: people, of: rollSize, pct: Math.round((100 * people) / rollSize) })
    : t('ballots', { n: people });
  $('turnout').textContent = turnout;
  const closed = state.status === 'closed';
  $('result').hidden = !closed;
  $('result').className = `big-result result-${state.result}`;
  $('result').dataset.result = closed ? state.result : '';
  $('result').textContent = !closed ? '' : meta.kind === 'election' ? electionResult(state, meta) : t(state.result);
  $('standing').textContent = closed || meta.secrecy === 'secret' ? '' : standing(state);
  // At the close: the published count's fingerprint, and where anyone can
  // take its audit file to check it.
  const audited = closed && meta.audit && joinUrl;
  $('audit').hidden = !audited;
  if (audited) {
    const bundle = `${joinUrl}api/sessions/${meta.id}/audit`;
    $('audit-head').textContent = t('auditHead', { fingerprint: meta.audit.fingerprint });
    $('audit-url').textContent = bundle;
    $('audit-key').textContent = keyFingerprint ? t('auditKey', { fingerprint: keyFingerprint }) : '';
    const qr = `/qr.svg?data=${encodeURIComponent(bundle)}`;
    if ($('audit-qr').getAttribute('src') !== qr) $('audit-qr').src = qr;
  }
  $('groups').replaceChildren(...(state.groups ?? []).map((g) =>
    el('p', { class: 'group', text: t('groupNeed', { group: g.group, have: g.approvals, need: g.needed }) })));
  const closesAt = closed ? null : state.closes_at ?? meta.closes_at;
  if ($('countdown').dataset.closesAt !== (closesAt ?? '')) {
    $('countdown').dataset.closesAt = closesAt ?? '';
    countdown($('countdown'), closesAt);
  }
}

/** Who is present or represented, read every few seconds (check-ins do
 *  not move the agenda). */
async function attendance() {
  if (!showAttendance) return;
  let a;
  try { a = await (await fetch('/api/attendance', { cache: 'no-store' })).json(); } catch { return; }
  const box = $('attendance');
  box.hidden = !a.weight_total;
  box.textContent = t('attendanceScreen', {
    n: a.present + a.represented, of: a.present + a.represented + a.absent,
    w: a.weight_present + a.weight_represented, total: a.weight_total,
  });
  box.dataset.present = String(a.present);
}

translate();
document.title = t('screenTitle');
fetch('/api/key', { cache: 'no-store' }).then((r) => r.json())
  .then((k) => { keyFingerprint = k.fingerprint; render(); }).catch(() => {});
attendance();
setInterval(attendance, 5000);
live.start();
refresh();
