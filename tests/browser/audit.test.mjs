// Receipts checked by the voter's page, in real Chromium, over a
// non-loopback address (a network namespace of the test's own), where the
// page has no WebCrypto: after the close the page shows the ✓, and a
// published proof altered on its way makes it raise the alarm. The page
// keeps its receipts across a reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { api, launch, netns, openPage, shots, startHubIn, until } from './harness.mjs';

let browser;
let ns;
let hub;
before(async () => {
  browser = await launch();
  ns = await netns();
  hub = await startHubIn(ns);
});
after(async () => {
  await hub?.stop();
  await ns?.remove();
  await browser?.close();
});

const page = (options) => openPage(browser, hub.url, options);

test('the page checks its ballot against the published count, without WebCrypto', async () => {
  const h = api(hub.url);
  const s = await h.create({ title: 'Budget 2027' });
  const { page: p, context, errors } = await page();
  const card = `[data-session="${s.id}"]`;
  assert.deepEqual(await p.evaluate(() => [window.isSecureContext, typeof crypto.subtle]),
    [false, 'undefined'], 'a plain http:// LAN address: no WebCrypto');
  await p.click(`${card} button[data-ballot="for"]`);
  await until('recorded', async () => /recorded/.test(await p.textContent(`${card} .note`)));
  for (let i = 0; i < 4; i++) assert.equal((await h.vote(s.id, `other-${i}`, 'against')).status, 200);
  // The page keeps its receipt across a reload.
  await p.reload();
  await p.waitForSelector(card);
  await h.close(s.id);
  await until('the check', async () => /in the published count/.test(await p.textContent(`${card} .audit`) ?? ''), 20000);
  assert.equal(await p.getAttribute(`${card} .audit`, 'data-audit'), 'ok');
  await p.screenshot({ path: join(shots(), 'participant-audit.png') });
  assert.deepEqual(errors, []);
  await context.close();
});

test('a proof altered on its way raises the alarm', async () => {
  const h = api(hub.url);
  const s = await h.create({ title: 'Statutes' });
  const { page: p, context, errors } = await page();
  const card = `[data-session="${s.id}"]`;
  await p.click(`${card} button[data-ballot="against"]`);
  await until('recorded', async () => /recorded/.test(await p.textContent(`${card} .note`)));
  assert.equal((await h.vote(s.id, 'someone', 'for')).status, 200);
  // Whoever sits between the page and the hub flips a bit of the proof.
  await p.route('**/proof?**', async (route) => {
    const response = await route.fetch();
    const proof = await response.json();
    const first = proof.inclusion[0];
    proof.inclusion[0] = (first[0] === '0' ? '1' : '0') + first.slice(1);
    await route.fulfill({ response, json: proof });
  });
  await h.close(s.id);
  await until('the alarm', async () => (await p.getAttribute(`${card} .audit`, 'data-audit')) === 'alarm', 20000);
  assert.match(await p.textContent(`${card} .audit`), /Alarm: the ballot is not in the published log/);
  assert.equal(await p.getAttribute(`${card} .audit`, 'role'), 'alert');
  assert.deepEqual(errors, []);
  await context.close();
});

test('a receipt whose logged ballot is not the one sent raises the alarm', async () => {
  const { leafOf } = await import('../../ui/audit.js');
  const h = api(hub.url);
  const s = await h.create({ title: 'Quorum' });
  const { page: p, context, errors } = await page();
  const card = `[data-session="${s.id}"]`;
  // A hub that logs "against" for a ballot "for", and makes the receipt
  // hash consistently: only comparing with what was sent can tell.
  await p.route('**/votes', async (route) => {
    const response = await route.fetch();
    const answer = await response.json();
    const entry = { ...answer.receipt.entry, choice: 'against' };
    const leaf = Buffer.from(leafOf(entry)).toString('hex');
    await route.fulfill({ response, json: { ...answer, receipt: { ...answer.receipt, entry, leaf } } });
  });
  await p.click(`${card} button[data-ballot="for"]`);
  await until('recorded', async () => /recorded/.test(await p.textContent(`${card} .note`)));
  await h.close(s.id);
  await until('the alarm', async () => (await p.getAttribute(`${card} .audit`, 'data-audit')) === 'alarm', 20000);
  assert.match(await p.textContent(`${card} .audit`), /not the one this phone sent/);
  assert.deepEqual(errors, []);
  await context.close();
});
