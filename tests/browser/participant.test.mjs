// The participant page and the projector view in real Chromium, against the
// real votehub binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { api, launch, PHONE, shots, shownTally, startHub, until } from './harness.mjs';

const SHOTS = shots();
let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function participant(url, options = {}) {
  const context = await browser.newContext({ ...PHONE, locale: 'en-US', ...options });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  return { context, page, errors };
}

test('20 participant pages vote at once and all converge on the exact tally', async () => {
  const hub = await startHub();
  try {
    const h = api(hub.url);
    const session = await h.create({ title: 'Budget 2027', description: 'Adopt the budget as presented by the treasurer.' });
    const pages = await Promise.all(Array.from({ length: 20 }, () => participant(hub.url)));
    await Promise.all(pages.map(({ page }) => page.waitForSelector(`[data-session="${session.id}"] button[data-ballot="for"]`)));
    const choices = ['for', 'against', 'abstain'];
    // Every page clicks at the same time.
    await Promise.all(pages.map(({ page }, i) =>
      page.click(`[data-session="${session.id}"] button[data-ballot="${choices[i % 3]}"]`)));
    // Meanwhile ballots arrive from outside too, and one page changes its mind.
    for (let i = 0; i < 30; i++) await h.vote(session.id, `outside-${i}`, i < 20 ? 'for' : 'against');
    await pages[0].page.click(`[data-session="${session.id}"] button[data-ballot="against"]`);
    const expected = { for: 7 - 1 + 20, against: 7 + 1 + 10, abstain: 6 };
    for (const [i, { page }] of pages.entries()) {
      await until(`page ${i} to show ${JSON.stringify(expected)}`, async () =>
        JSON.stringify(await shownTally(page, session.id)) === JSON.stringify(expected));
      const mine = i === 0 ? 'against' : choices[i % 3];
      const pressed = await page.getAttribute(`[data-session="${session.id}"] button[data-ballot="${mine}"]`, 'aria-pressed');
      assert.equal(pressed, 'true', `page ${i} shows its own ballot`);
      // Every screen can show the tally before the voter's own answer
      // arrives: wait for that answer.
      await until(`page ${i} to show its ballot recorded`, async () =>
        /recorded/.test(await page.textContent(`[data-session="${session.id}"] .note`)));
    }
    const s = await h.session(session.id);
    assert.deepEqual({ for: s.tally.for, against: s.tally.against, abstain: s.tally.abstain }, expected);
    await pages[1].page.screenshot({ path: join(SHOTS, 'participant.png') });
    for (const { page, errors } of pages) {
      assert.deepEqual(errors, []);
      await page.context().close();
    }
  } finally {
    await hub.stop();
  }
});

test('a page rides out a hub restart: it says so, keeps a ballot cast meanwhile, and shows the right tally', async () => {
  let hub = await startHub();
  const h = api(hub.url);
  const session = await h.create({ title: 'Restart' });
  const { page, context } = await participant(hub.url);
  try {
    await page.waitForSelector('#status[data-state="online"]');
    await h.vote(session.id, 'early', 'for');
    await until('the first ballot', async () => (await shownTally(page, session.id))?.for === 1);

    await hub.stop('SIGKILL');
    await page.waitForSelector('#status[data-state="offline"]');
    assert.match(await page.textContent('#status'), /reconnecting/i);
    // A ballot cast while the hub is down is kept, and the participant told.
    await page.click(`[data-session="${session.id}"] button[data-ballot="against"]`);
    await until('the pending note', async () =>
      /Not sent yet/.test(await page.textContent(`[data-session="${session.id}"] .note`)));

    hub = await startHub({ data: hub.data, port: hub.port });
    for (let i = 0; i < 4; i++) await h.vote(session.id, `after-${i}`, 'abstain');
    await page.waitForSelector('#status[data-state="online"]', { timeout: 20000 });
    await until('the tally after the restart', async () =>
      JSON.stringify(await shownTally(page, session.id)) === JSON.stringify({ for: 1, against: 1, abstain: 4 }), 20000);
    await until('the page to show its ballot recorded', async () =>
      /recorded/.test(await page.textContent(`[data-session="${session.id}"] .note`)));
    const s = await h.session(session.id);
    assert.equal(s.tally.against, 1, 'the ballot cast offline reached the hub');
    assert.equal(s.tally.total, 6);
  } finally {
    await context.close();
    await hub.stop();
  }
});

test('a roll code is refused when wrong and accepted when right', async () => {
  const hub = await startHub();
  try {
    const h = api(hub.url);
    const roll = await h.voters(['Ann Martin', 'Bob Durand']);
    const ann = roll.body[0].code;
    const session = await h.create({ title: 'Members only', electorate: 'roll' });
    const { page, context, errors } = await participant(hub.url);
    await page.waitForSelector('#code:not([hidden])');
    // Voting before giving a code asks for it.
    await page.click(`[data-session="${session.id}"] button[data-ballot="for"]`);
    assert.match(await page.textContent(`[data-session="${session.id}"] .note`), /voting code/);

    await page.fill('#code-input', 'ZZZZ-ZZZZ');
    await page.click('#code-form button[type="submit"]');
    await until('the refusal', async () => /not on the roll/.test(await page.textContent('#code-error')));
    assert.equal(await page.getAttribute('#code-input', 'aria-invalid'), 'true');

    // Typed loosely, the right code is accepted and remembered.
    await page.fill('#code-input', ann.toLowerCase().replace('-', ''));
    await page.click('#code-form button[type="submit"]');
    await until('the greeting', async () => /Voting as Ann Martin/.test(await page.textContent('#code-ok')));
    await page.click(`[data-session="${session.id}"] button[data-ballot="for"]`);
    await until('the ballot', async () => (await shownTally(page, session.id))?.for === 1);
    await page.reload();
    await until('the code kept across reloads', async () => /Voting as Ann Martin/.test(await page.textContent('#code-ok')));
    assert.equal((await h.session(session.id)).tally.for, 1);
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await hub.stop();
  }
});

test('the projector view shows the live tally, then the result in large type', async () => {
  const hub = await startHub();
  try {
    const h = api(hub.url);
    const session = await h.create({ title: 'Statuts : article 4', description: 'Modifier la durée du mandat du bureau.' });
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, locale: 'fr-FR' });
    const page = await context.newPage();
    await page.goto(`${hub.url}/screen`);
    await page.waitForSelector('#title:has-text("Statuts")');
    for (let i = 0; i < 12; i++) await h.vote(session.id, `v${i}`, i < 9 ? 'for' : 'against');
    await until('the live tally', async () => (await page.textContent('#turnout')) === '12 bulletins');
    assert.match(await page.textContent('#standing'), /Serait adoptée/);
    assert.match(await page.getAttribute('#qr', 'src'), /^\/qr\.svg\?data=http/);
    const qr = await page.evaluate(async () => (await fetch(document.querySelector('#qr').src)).headers.get('content-type'));
    assert.equal(qr, 'image/svg+xml');
    await page.screenshot({ path: join(SHOTS, 'screen-live.png') });

    assert.equal((await h.close(session.id)).status, 200);
    await until('the result', async () => (await page.textContent('#result')) === 'Adoptée');
    assert.equal(await page.isVisible('#result'), true);
    await page.screenshot({ path: join(SHOTS, 'screen-result.png') });
    await context.close();
  } finally {
    await hub.stop();
  }
});

test('a new session appears on open pages without a reload', async () => {
  const hub = await startHub();
  try {
    const h = api(hub.url);
    const { page, context } = await participant(hub.url);
    await page.waitForSelector('#empty:not([hidden])');
    const session = await h.create({ title: 'Late motion' });
    await page.waitForSelector(`[data-session="${session.id}"] button[data-ballot="for"]`, { timeout: 5000 });
    await h.close(session.id);
    await until('the result on the page', async () =>
      (await page.getAttribute(`[data-session="${session.id}"] .result`, 'data-result')) === 'rejected');
    await context.close();
  } finally {
    await hub.stop();
  }
});
