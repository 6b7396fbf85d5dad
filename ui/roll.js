// The window's voter roll: the rows a search finds, check-ins (keyboard
// first), weights, proxies, reissued codes, the printed cards, backups and
// the roll's export. Talks to the hub only through bridge.js.
import { call } from './bridge.js';
import { $, confirmThen, errorText } from './window.js';
import { t } from './i18n.js';
import { el } from './tally.js';

/** Where the cards say the room's phones reach the hub. */
let joinUrls = () => [];

let page = { rows: [], matches: 0, total: 0 };   // the rows the search shows
const SHOWN = 200;            // rows asked for at most: a search narrows them

export function renderAttendance(a) {
  if (!a) return;
  $('attendance').textContent = a.weight_total === 0 ? '' : t('attendanceLine', {
    present: a.present, represented: a.represented, absent: a.absent,
    w: a.weight_present + a.weight_represented, total: a.weight_total,
  });
  for (const [k, v] of Object.entries(a)) $('attendance').dataset[k] = String(v);
}

function rollRow(r) {
  const weight = el('input', { type: 'number', min: '1', max: '1000000', step: '1', value: String(r.weight),
    class: 'weight-input', 'aria-label': t('weightOf', { name: r.name }) });
  weight.addEventListener('change', () => rollAct(() => call('edit_voter', { code: r.code, edit: { weight: Number(weight.value) } })));
  const present = el('input', { type: 'checkbox', 'aria-label': t('presentLabel', { name: r.name }) });
  present.checked = r.present;
  present.addEventListener('change', () => checkIn(r, present.checked));
  const proxy = el('td', { class: 'proxy-cell' });
  if (r.proxy_to) {
    proxy.append(el('span', { text: t('proxyTo', { name: r.proxy_to_name ?? r.proxy_to }) }), ' ',
      el('button', { type: 'button', 'data-action': 'revoke', text: t('proxyRevoke'),
        onclick: () => rollAct(() => call('revoke_proxy', { from: r.code })) }));
  } else {
    proxy.append(el('button', { type: 'button', 'data-action': 'give-proxy', text: t('proxyGiveFor'), onclick: () => askProxy(r) }));
  }
  if (r.proxies_names.length) proxy.append(el('p', { class: 'small', text: t('holdsFor', { names: r.proxies_names.join(', ') }) }));
  return el('tr', { 'data-code': r.code, 'data-present': String(r.present) },
    el('td', { text: r.name }),
    el('td', { class: 'code-cell', text: r.code }),
    el('td', {}, weight),
    el('td', {}, present),
    proxy,
    el('td', {}, el('button', { type: 'button', 'data-action': 'reissue', text: t('reissue'), onclick: () => reissue(r) })));
}

function drawRoll() {
  $('roll-count').textContent = t('rollCount', { n: page.total });
  $('roll-table').querySelector('tbody').replaceChildren(...page.rows.map(rollRow));
  $('roll-more').textContent = page.matches > page.rows.length ? t('rollMore', { n: page.matches - page.rows.length }) : '';
}

/** Reads the rows the search finds (the roll may hold thousands: only
 *  these come to the window). */
export async function renderRoll() {
  try { page = await call('roll_page', { query: $('roll-search').value, limit: SHOWN }); } catch { return; }
  // Keep the keyboard where it was when rows are drawn again.
  const focused = document.activeElement?.closest?.('tr[data-code]');
  const code = focused?.dataset.code;
  const index = focused ? [...focused.children].indexOf(document.activeElement.closest('td')) : -1;
  drawRoll();
  if (code) {
    const row = $('roll-table').querySelector(`tr[data-code="${code}"]`);
    row?.children[index]?.querySelector('input, button')?.focus();
  }
}

/** Runs a roll command; its error (or nothing) is said under the roll. */
async function rollAct(command) {
  try {
    await command();
    $('roll-message').textContent = '';
  } catch (err) {
    $('roll-message').textContent = errorText(err);
  }
  renderRoll();
}

async function checkIn(r, present) {
  try {
    await call('set_presence', { code: r.code, present });
    $('checkin-status').textContent = t(present ? 'checkedIn' : 'checkedOut', { name: r.name });
  } catch (err) {
    $('checkin-status').textContent = errorText(err);
  }
  renderRoll();
}

let searchTimer = null;

function reissue(r) {
  confirmThen(t('confirmReissue', { name: r.name }), t('reissueYes'), async () => {
    try {
      const v = await call('reissue_code', { code: r.code });
      $('roll-message').textContent = t('reissued', { name: v.name, code: v.code });
    } catch (err) {
      $('roll-message').textContent = errorText(err);
    }
    renderRoll();
  });
}

let proxyFrom = null;
async function askProxy(r) {
  proxyFrom = r;
  $('proxy-h').textContent = t('proxyOf', { name: r.name });
  $('proxy-error').textContent = '';
  $('proxy-holder').value = '';
  // The names to pick from, read once per dialog.
  try {
    const names = await call('roll_names');
    $('roll-names-list').replaceChildren(...names.map((n) => el('option', { value: n })));
  } catch { /* typing a code still works */ }
  $('proxy-dialog').showModal();
  $('proxy-holder').focus();
}

async function showCards() {
  $('cards-frame').srcdoc = await call('cards_html', { lang: document.documentElement.lang, url: $('cards-url').value || null });
}

/** Wires the roll's forms and buttons; `urls()` gives the hub's join
 *  addresses as last reported. */
export function startRoll(urls) {
  joinUrls = urls;
  // Keyboard first: type a name or a code, Enter checks the first match in,
  // Shift+Enter checks them out.
  $('roll-search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(renderRoll, 120);
  });
  $('roll-search').addEventListener('keydown', async (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    clearTimeout(searchTimer);
    await renderRoll();
    const [first] = page.rows;
    if (!first) { $('checkin-status').textContent = t('noMatch'); return; }
    await checkIn(first, !e.shiftKey);
    $('roll-search').select();
  });
  $('checkin-form').addEventListener('submit', (e) => e.preventDefault());
  $('proxy-form').addEventListener('submit', async (e) => {
    if (e.submitter?.value !== 'yes' || !proxyFrom) return;
    e.preventDefault();
    const typed = $('proxy-holder').value.trim();
    // A name from the list, or a code as typed.
    let holder = typed;
    let holderName = typed;
    try {
      const found = await call('roll_page', { query: typed, limit: 50 });
      const exact = found.rows.find((r) => r.name === typed || r.code === typed.toUpperCase());
      if (exact) { holder = exact.code; holderName = exact.name; }
    } catch { /* the hub says what is wrong below */ }
    try {
      await call('give_proxy', { from: proxyFrom.code, to: holder });
      $('proxy-dialog').close();
      $('roll-message').textContent = t('proxyGiven', { from: proxyFrom.name, to: holderName });
    } catch (err) {
      $('proxy-error').textContent = errorText(err);
    }
    renderRoll();
  });
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
  $('roll-import-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = $('roll-file').files?.[0];
    if (!file) { $('roll-message').textContent = t('chooseFile'); return; }
    try {
      const before = page.total;
      const listed = await call('import_roll', { text: await file.text() });
      await renderRoll();
      const added = page.total - before;
      $('roll-message').textContent = t('rollImported', { n: added })
        + (listed.length > added ? ` ${t('rollKept', { n: listed.length - added })}` : '');
      $('roll-file').value = '';
    } catch (err) {
      $('roll-message').textContent = errorText(err);
    }
  });
  $('roll-cards').addEventListener('click', async () => {
    // The address printed on the cards: the one the room's phones reach.
    const urls = joinUrls();
    $('cards-url').replaceChildren(...urls.map((u) => el('option', { value: u, text: u })));
    try {
      await showCards();
      $('cards-dialog').showModal();
    } catch (err) {
      $('roll-message').textContent = errorText(err);
    }
  });
  $('cards-url').addEventListener('change', () => showCards().catch((err) => { $('roll-message').textContent = errorText(err); }));
  $('cards-print').addEventListener('click', () => $('cards-frame').contentWindow?.print());
  $('cards-close').addEventListener('click', () => $('cards-dialog').close());
  $('backup-button').addEventListener('click', async () => {
    const button = $('backup-button');
    button.disabled = true;
    $('backup-message').textContent = t('backingUp');
    try {
      $('backup-message').textContent = t('backedUp', { path: await call('backup') });
    } catch (err) {
      $('backup-message').textContent = errorText(err);
    } finally {
      button.disabled = false;
    }
  });
  $('roll-export').addEventListener('click', async () => {
    try { $('roll-message').textContent = t('savedTo', { path: await call('export_roll') }); } catch (err) { $('roll-message').textContent = errorText(err); }
  });
}
