// The day in real Chromium: an election on the participant page (the limit
// on candidates enforced and said), a timed vote's countdown, drafts kept
// off the page, and the projector following the agenda by itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { api, launch, openPage, shots, startHub, until } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const SHOTS = shots();

const page = (url, options) => openPage(browser, url, options);

test('a participant ticks 2 of 5 candidates; a third is refused with the reason', async () => {
  const hub = await startHub();
  try {
    const h = api(hub.url);
    const draft = await h.create({ title: 'Not yet', status: 'draft' });
    const board = await h.create({
      title: 'Board', kind: 'election', options: ['Ann', 'Bob', 'Cy', 'Dee', 'Eve'], seats: 2, duration_s: 600,
    });
    const { page: p, context, errors } = await page(hub.url);
    const card = `[data-session="${board.id}"]`;
    await p.waitForSelector(`${card} .candidate input`);
    assert.equal(await p.$(`[data-session="${draft.id}"]`), null, 'a draft is not on the page');
    assert.match(await p.textContent(`${card} .help`), /Choose up to 2 candidates/);
    // The countdown, by the hub's clock.
    await until('the countdown', async () => /Closes in (9|10):\d\d/.test(await p.textContent(`${card} .countdown`)));
    const remaining = Number(await p.getAttribute(`${card} .countdown`, 'data-remaining'));
    assert.ok(remaining > 500 && remaining <= 600, `${remaining} s left`);
    assert.equal(await p.getAttribute(`${card} .countdown-figure`, 'aria-hidden'), 'true');

    const box = (name) => `${card} .candidate:has-text("${name}") input`;
    await p.check(box('Ann'));
    await p.check(box('Cy'));
    await p.click(box('Eve'));
    assert.equal(await p.isChecked(box('Eve')), false, 'the third is refused');
    assert.match(await p.textContent(`${card} .limit`), /up to 2 candidates: untick one first/);
    await p.click(`${card} button[data-action="cast"]`);
    await until('the receipt', async () => /Ann, Cy — recorded/.test(await p.textContent(`${card} .note`)));
    const s = await h.session(board.id);
    assert.deepEqual(s.tally.options.map((o) => o.votes), [1, 0, 1, 0, 0]);
    await until('the bars', async () => (await p.textContent(`${card} [data-count="o0"]`)) === '1');
    await p.screenshot({ path: join(SHOTS, 'participant-election.png') });
    // After a reload the ballot is still shown as sent.
    await p.reload();
    await p.waitForSelector(`${card} .candidate input`);
    await until('the boxes kept', async () => (await p.isChecked(box('Ann'))) && (await p.isChecked(box('Cy'))));
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await hub.stop();
  }
});

test('the projector follows the agenda from one vote to the next and shows the elected', async () => {
  const hub = await startHub();
  try {
    const h = api(hub.url);
    const motion = await h.create({ title: 'Budget 2027', status: 'draft' });
    const board = await h.create({
      title: 'Board', kind: 'election', options: ['Ann', 'Bob', 'Cy'], seats: 2, status: 'draft',
    });
    const { page: p, context, errors } = await page(`${hub.url}/screen`, { viewport: { width: 1280, height: 720 }, isMobile: false, hasTouch: false, deviceScaleFactor: 1 });
    await p.waitForSelector('#empty:not([hidden])');

    await h.call('POST', `/api/sessions/${motion.id}/open`, undefined, true);
    await until('the first vote', async () => (await p.textContent('#title')) === 'Budget 2027');
    for (let i = 0; i < 3; i++) await h.vote(motion.id, `m${i}`, 'for');
    await until('its tally', async () => (await p.textContent('#turnout')) === '3 ballots');
    await h.close(motion.id);
    await until('its result', async () => (await p.textContent('#result')) === 'Adopted');

    await h.call('POST', `/api/sessions/${board.id}/open`, undefined, true);
    await until('the next vote', async () => (await p.textContent('#title')) === 'Board');
    for (const [voter, options] of [['a', [0, 1]], ['b', [0, 2]], ['c', [0, 1]]]) {
      const r = await h.call('POST', `/api/sessions/${board.id}/votes`, { voter, options });
      assert.equal(r.status, 200);
    }
    await until('a bar per candidate', async () => (await p.$$('#bars .bar')).length === 3
      && (await p.textContent('#bars [data-count="o0"]')) === '3');
    await h.close(board.id);
    await until('the elected', async () => (await p.textContent('#result')) === 'Elected: Ann, Bob');
    assert.equal(await p.getAttribute('#bars .bar-o0', 'data-mark'), 'elected');
    assert.equal(await p.getAttribute('#bars .bar-o1', 'data-mark'), 'elected');
    assert.equal(await p.getAttribute('#bars .bar-o2', 'data-mark'), null);
    await p.screenshot({ path: join(SHOTS, 'screen-election.png') });
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await hub.stop();
  }
});
