// The hub's clock on this device, and countdowns to a vote's deadline. A
// phone's clock may be minutes off: a page measures its offset from the
// hub's (`/api/info`'s `now`, halfway through the round trip), so every
// screen counts down to the same moment. The desktop window runs on the
// hub's own machine and needs no offset.
import { t } from './i18n.js';

let offset = 0;

/** Measures this device's clock against the hub's from an `/api/info`
 *  answer fetched between `sent` and `received` (ms, this device's clock). */
export function syncClock(info, sent, received) {
  const hub = Date.parse(info?.now);
  if (Number.isFinite(hub)) offset = hub - (sent + received) / 2;
}

export function hubNow() {
  return Date.now() + offset;
}

/** Milliseconds until `closesAt` (RFC 3339) by the hub's clock, at least 0. */
export function remaining(closesAt) {
  return Math.max(0, Date.parse(closesAt) - hubNow());
}

/** 1:05:09, 4:07, 0:09 */
export function formatRemaining(ms) {
  const s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

// Every countdown on the page, refreshed by one timer.
const countdowns = new Set();
let timer = null;

/** Shows in `node` the time left until `closesAt`. The figure changes every
 *  second but is hidden from screen readers; a polite live region says it
 *  at a few moments only (every minute, then 30 and 10 seconds before). */
export function countdown(node, closesAt) {
  for (const c of countdowns) if (c.node === node) countdowns.delete(c);
  node.replaceChildren();
  if (!closesAt) return;
  const shown = document.createElement('span');
  shown.className = 'countdown-figure';
  shown.setAttribute('aria-hidden', 'true');
  const said = document.createElement('span');
  said.className = 'sr-only';
  said.setAttribute('aria-live', 'polite');
  node.append(shown, said);
  countdowns.add({ node, closesAt, shown, said, last: null });
  tick();
  if (!timer) timer = setInterval(tick, 250);
}

function milestone(ms) {
  const s = Math.ceil(ms / 1000);
  if (s <= 0) return 'closed';
  if (s <= 10) return '10s';
  if (s <= 30) return '30s';
  return `${Math.ceil(s / 60)}m`;
}

function tick() {
  for (const c of [...countdowns]) {
    if (!c.node.isConnected) { countdowns.delete(c); continue; }
    const ms = remaining(c.closesAt);
    c.node.dataset.remaining = String(Math.ceil(ms / 1000));
    c.shown.textContent = ms > 0 ? t('closesIn', { time: formatRemaining(ms) }) : t('deadlineReached');
    const m = milestone(ms);
    if (m !== c.last) {
      c.last = m;
      c.said.textContent = ms > 0 ? t('closesIn', { time: formatRemaining(ms) }) : t('deadlineReached');
    }
  }
  if (countdowns.size === 0 && timer) { clearInterval(timer); timer = null; }
}
