// The projector view: the current session in large type — bars, turnout,
// what adoption still needs, the result at the close — and the address to
// join with its QR code. `?session=<id>` pins a session; otherwise it shows
// the newest open one, or the newest closed one when none is open.
import { t, translate } from './i18n.js';
import { Live } from './live.js';
import { el, mergeState, renderBars, standing, stateOfSession } from './tally.js';

const $ = (id) => document.getElementById(id);
const pinned = new URLSearchParams(location.search).get('session');
let current = null;   // { meta, state }
let rollSize = 0;

const live = new Live({
  onStatus(status) {
    $('status').dataset.state = status;
    $('status').textContent = status === 'online' ? '' : t(status);
    if (status === 'online') refresh();
  },
  onSessionsChanged: () => refresh(),
  onState(state) {
    if (!current || state.id !== current.meta.id) return;
    current.state = mergeState(current.state, state);
    render();
  },
});

async function refresh() {
  let list, info;
  try {
    [list, info] = await Promise.all([
      fetch('/api/sessions', { cache: 'no-store' }).then((r) => r.json()),
      fetch('/api/info', { cache: 'no-store' }).then((r) => r.json()),
    ]);
  } catch { return; }
  rollSize = info.roll_size;
  const url = info.join_urls[0];
  if ($('join-url').textContent !== url) {
    $('join-url').textContent = url;
    $('qr').src = `/qr.svg?data=${encodeURIComponent(url)}`;
    $('qr').alt = url;
  }
  const pick = list.find((s) => s.id === pinned) ?? list.find((s) => s.status === 'open') ?? list[0];
  if (!pick) { current = null; render(); return; }
  if (current?.meta.id !== pick.id) {
    if (current) live.unfollow(current.meta.id);
    current = { meta: pick, state: stateOfSession(pick) };
    live.follow(pick.id);
  }
  current.meta = pick;
  live.offer(stateOfSession(pick));
  render();
}

function render() {
  $('empty').hidden = !!current;
  if (!current) {
    for (const id of ['title', 'description', 'turnout', 'standing']) $(id).textContent = '';
    $('bars').replaceChildren();
    $('result').hidden = true;
    return;
  }
  const { meta, state } = current;
  $('title').textContent = meta.title;
  $('description').textContent = meta.description;
  renderBars($('bars'), state);
  const turnout = meta.electorate === 'roll' && rollSize > 0
    ? t('turnout', { n: state.total, of: rollSize, pct: Math.round((100 * state.total) / rollSize) })
    : t('ballots', { n: state.total });
  $('turnout').textContent = turnout;
  const closed = state.status === 'closed';
  $('result').hidden = !closed;
  $('result').className = `big-result result-${state.result}`;
  $('result').dataset.result = closed ? state.result : '';
  $('result').textContent = closed ? t(state.result) : '';
  $('standing').textContent = closed ? '' : standing(state);
  $('groups').replaceChildren(...(state.groups ?? []).map((g) =>
    el('p', { class: 'group', text: t('groupNeed', { group: g.group, have: g.approvals, need: g.needed }) })));
}

translate();
document.title = t('screenTitle');
live.start();
refresh();
