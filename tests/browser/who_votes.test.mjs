// Who votes, in real Chromium: a proxy holder votes for two people besides
// herself (one tap for all, then one mandate apart), the card's QR address
// fills her code in; a secret ballot shows no choice once cast, and a
// reload reveals nothing either; the projector shows attendance.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { api, launch, openPage, shots, startHub, until } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const SHOTS = shots();

const page = (url, options) => openPage(browser, url, options);

async function roll(h, voters) {
  const r = await h.call('POST', '/api/voters', { voters }, true);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return Object.fromEntries(r.body.map((v) => [v.name, v.code]));
}

test('a proxy holder votes for herself and two others, at once and apart', async () => {
  const hub = await startHub();
  try {
    const h = api(hub.url);
    const c = await roll(h, [{ name: 'Ann', weight: 2 }, { name: 'Bob', weight: 3 }, { name: 'Cy', weight: 5 }]);
    for (const giver of ['Bob', 'Cy']) {
      assert.equal((await h.call('POST', '/api/proxies', { from: c[giver], to: c.Ann }, true)).status, 201);
    }
    const budget = await h.create({ title: 'Budget 2027', electorate: 'roll' });
    // The card's QR code: the join address with her code filled in.
    const { page: p, context, errors } = await page(`${hub.url}/?code=${c.Ann}`);
    const sent = [];
    p.on('request', (r) => { if (r.url().endsWith('/votes')) sent.push(r.postData()); });
    const card = `[data-session="${budget.id}"]`;
    await until('her ballots', async () => (await p.$$(`${card} .slot`)).length === 4);
    assert.equal(new URL(p.url()).search, '', 'the code is wiped from the address bar');
    assert.match(await p.textContent('#code-name'), /Voting as Ann, and by proxy for Bob, Cy/);
    assert.match(await p.textContent(`${card} [data-slot="all"] h3`), /The same for all 3 ballots/);
    assert.match(await p.textContent(`${card} [data-slot="Bob"] h3`), /For Bob, by proxy \(weight 3\)/);
    await p.screenshot({ path: join(SHOTS, 'participant-proxies.png') });

    // One tap: the same choice for all three.
    await p.click(`${card} [data-slot="all"] button[data-ballot="for"]`);
    await until('three ballots', async () => (await h.session(budget.id)).tally.ballots === 3);
    let s = await h.session(budget.id);
    assert.deepEqual([s.tally.for, s.tally.total], [10, 10], 'each with its weight');
    await until('each slot pressed', async () => (await p.$$(`${card} .slot:not(.slot-all) button[data-ballot="for"][aria-pressed="true"]`)).length === 3);
    // Then Cy's apart: against.
    await p.click(`${card} [data-slot="Cy"] button[data-ballot="against"]`);
    await until('Cy against', async () => (await h.session(budget.id)).tally.against === 5);
    s = await h.session(budget.id);
    assert.deepEqual([s.tally.for, s.tally.against, s.tally.ballots], [5, 5, 3]);
    // The hub counts the ballot before its answer reaches the page: wait
    // for the page to read that answer.
    await until('Cy\'s ballot acknowledged on the page', async () => /Against — recorded/.test(await p.textContent(`${card} [data-slot="Cy"] .note`)));
    // Every ballot is padded to one size: over HTTPS its length says
    // nothing of its choice.
    const forCy = sent.filter((b) => JSON.parse(b).on_behalf_of === 'Cy');
    assert.deepEqual(forCy.map((b) => JSON.parse(b).choice), ['for', 'against']);
    assert.equal(forCy[0].length, forCy[1].length, 'for and against have one size');
    await until('the turnout', async () => /3 ballots \(weight 10\)/.test(await p.textContent(`${card} .turnout`)));
    // Bob's own page: his proxy is held; he cannot vote himself.
    const bob = await page(`${hub.url}/?code=${c.Bob}`);
    await until('Bob is told', async () => /Your proxy is held by Ann/.test(await bob.page.textContent(`${card}`)));
    assert.equal((await bob.page.$$(`${card} .slot`)).length, 0, 'no ballot of his own');
    await bob.context.close();
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await hub.stop();
  }
});

test('a secret ballot shows no choice once cast, nor after a reload', async () => {
  const hub = await startHub();
  try {
    const h = api(hub.url);
    const c = await roll(h, [{ name: 'Ann' }, { name: 'Bob' }]);
    const board = await h.create({ title: 'Board (secret)', electorate: 'roll', secrecy: 'secret',
      kind: 'election', options: ['Dee', 'Eve', 'Fay'], seats: 1 });
    const { page: p, context, errors } = await page(`${hub.url}/?code=${c.Ann}`);
    const card = `[data-session="${board.id}"]`;
    await p.waitForSelector(`${card} .candidate input`);
    assert.match(await p.textContent(`${card} .secret-badge`), /Secret ballot/);
    await p.check(`${card} .candidate:has-text("Eve") input`);
    await p.click(`${card} button[data-action="cast"]`);
    await until('recorded', async () => /secret ballot is recorded/.test(await p.textContent(`${card} [data-slot="self"] .note`)));
    const shown = async () => p.evaluate((sel) => {
      const node = document.querySelector(sel);
      return {
        checked: node.querySelectorAll('input:checked').length,
        enabled: node.querySelectorAll('input:not(:disabled)').length,
        text: node.textContent,
        // What the device keeps of its ballots, read as the page reads it.
        stored: ['votehub.recorded', 'votehub.pending'].map((k) => JSON.parse(localStorage.getItem(k) ?? '{}')),
      };
    }, card);
    let now = await shown();
    assert.equal(now.checked, 0, 'no box left ticked');
    assert.equal(now.enabled, 0, 'it cannot be changed');
    const choices = (stored) => stored.flatMap((kept) => Object.values(kept))
      .flatMap((b) => ['choice', 'grade', 'options', 'marks'].filter((k) => k in (b?.ballot ?? b ?? {})));
    assert.equal(now.stored[0][board.id]?.secret, true, 'the device keeps that it voted');
    assert.deepEqual(choices(now.stored), [], 'and no choice');
    // Until the close: how many voted, nothing per candidate.
    assert.match(now.text, /Secret vote: the count appears when the vote closes/);
    assert.match(now.text, /1 ballot/);
    await p.screenshot({ path: join(SHOTS, 'participant-secret.png') });
    await p.reload();
    await p.waitForSelector(`${card} .candidate input`);
    await until('the note after a reload', async () => /secret ballot is recorded/.test(await p.textContent(`${card} [data-slot="self"] .note`)));
    now = await shown();
    assert.equal(now.checked, 0, 'a reload reveals nothing');
    assert.doesNotMatch(await p.textContent(`${card} [data-slot="self"] .note`), /Dee|Eve|Fay/);
    assert.deepEqual(choices(now.stored), [], 'nor after a reload');
    // The close shows the full count.
    await h.close(board.id);
    await until('the result', async () => /Elected: Eve/.test(await p.textContent(`${card}`)));
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await hub.stop();
  }
});

test('the projector shows who is present or represented', async () => {
  const hub = await startHub();
  try {
    const h = api(hub.url);
    const c = await roll(h, [{ name: 'Ann', weight: 4 }, { name: 'Bob' }, { name: 'Cy' }]);
    const { page: p, context, errors } = await page(`${hub.url}/screen`, { viewport: { width: 1280, height: 720 }, isMobile: false, hasTouch: false, deviceScaleFactor: 1 });
    await until('the attendance', async () => /Present or represented: 0 of 3 \(weight 0 of 6\)/.test(await p.textContent('#attendance')));
    await h.call('POST', '/api/attendance', { code: c.Ann, present: true }, true);
    await h.call('POST', '/api/proxies', { from: c.Bob, to: c.Ann }, true);
    await until('Ann in, Bob represented', async () => /: 2 of 3 \(weight 5 of 6\)/.test(await p.textContent('#attendance')), 20000);
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await hub.stop();
  }
});
