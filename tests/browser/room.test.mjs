// A participant's page in real Chromium on a venue's bad Wi-Fi: Chromium
// runs in the room's network namespace, the hub in its own, and between
// them votehub-room's access point loses 10 % of the packets and cuts the
// link silently. The page must say it is reconnecting, come back by
// itself on the right tally, record a ballot tapped during the cut exactly
// once when the link returns, and do it again after the hub is killed and
// restarted. Needs root (network namespaces): without them the test fails
// and says why.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { api, BIN, PHONE, ROOT, shownTally, TOKEN, until } from './harness.mjs';

const ROOM_BIN = process.env.VOTEHUB_ROOM_BIN ?? join(ROOT, 'target', 'debug', 'votehub-room');
const PORT = 8765;
const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

/** `votehub-room up`: resolves with its layout and a way to send commands. */
async function roomUp(args) {
  const proc = spawn(ROOM_BIN, ['up', ...args, '--max-seconds', '300'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (c) => { err += c; });
  const lines = createInterface({ input: proc.stdout });
  const queue = [];
  const waiting = [];
  lines.on('line', (l) => (waiting.length ? waiting.shift()(l) : queue.push(l)));
  const next = () => new Promise((resolve, reject) => {
    if (queue.length) return resolve(queue.shift());
    const timer = setTimeout(() => reject(new Error(`votehub-room said nothing: ${err}`)), 30000);
    waiting.push((l) => { clearTimeout(timer); resolve(l); });
    proc.once('exit', () => reject(new Error(
      `network namespaces cannot be made here, so the room cannot be tested (needs root, iproute2, nftables): ${err}`)));
  });
  const layout = JSON.parse(await next());
  // Closing its stdin takes the room down, whatever happened to the test.
  cleanups.push(() => new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', resolve);
    proc.stdin.end();
  }));
  return {
    layout,
    async command(line) {
      proc.stdin.write(`${line}\n`);
      assert.equal(await next(), 'ok', line);
    },
  };
}

/** votehub serve in the hub's namespace, on every address there. */
async function hubIn(ns, data) {
  const proc = spawn('ip', ['netns', 'exec', ns, BIN, 'serve', '--bind', `0.0.0.0:${PORT}`, '--data', data,
    '--admin-token', TOKEN], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`votehub did not start:\n${log}`)), 20000);
    proc.stderr.on('data', (c) => {
      log += c;
      if (/listening on/.test(log)) { clearTimeout(timer); resolve(); }
    });
    proc.once('exit', (code) => reject(new Error(`votehub exited with ${code}:\n${log}`)));
  });
  const kill9 = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', resolve);
    proc.kill('SIGKILL');
  });
  cleanups.push(kill9);
  return { kill9 };
}

/** Chromium started inside the room's namespace (playwright talks to it
 *  over pipes, which `ip netns exec` passes on). */
async function chromiumIn(ns) {
  const dir = mkdtempSync(join(tmpdir(), 'votehub-room-'));
  const wrapper = join(dir, 'chromium-in-room');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${process.env.CHROMIUM ?? '/usr/bin/chromium'} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const browser = await chromium.launch({
    executablePath: wrapper,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  cleanups.push(() => browser.close());
  return browser;
}

test('a page on a lossy Wi-Fi rides out a cut and a hub restart, and its ballot counts once', async () => {
  const room = await roomUp(['--loss', '10', '--delay-ms', '40', '--jitter-ms', '20']);
  const { layout } = room;
  const data = mkdtempSync(join(tmpdir(), 'votehub-'));
  let hub = await hubIn(layout.hub_ns, data);
  // The organiser's clean link, for what the test does as a moderator.
  const h = api(`http://${layout.control_addr}:${PORT}`);
  const s = await h.create({ title: 'Budget 2027' });
  const browser = await chromiumIn(layout.room_ns);
  const context = await browser.newContext({ ...PHONE, locale: 'en-US' });
  const p = await context.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(e.message));
  await p.goto(`http://${layout.hub_addr}:${PORT}/`, { timeout: 30000 });
  const card = `[data-session="${s.id}"]`;
  await p.waitForSelector(card, { timeout: 30000 });
  await until('online', async () => (await p.getAttribute('#status', 'data-state')) === 'online', 30000);
  await p.click(`${card} button[data-ballot="for"]`);
  await until('recorded', async () => /recorded/.test(await p.textContent(`${card} .note`)), 30000);

  // The access point drops everyone, silently.
  await room.command('cut on');
  await until('the page to say it is reconnecting', async () =>
    (await p.getAttribute('#status', 'data-state')) === 'offline'
    && /reconnecting/i.test(await p.textContent('#status')), 15000);
  // She changes her mind during the cut; the room votes on meanwhile.
  await p.click(`${card} button[data-ballot="against"]`);
  for (let i = 0; i < 3; i++) assert.equal((await h.vote(s.id, `in-the-hall-${i}`, 'abstain')).status, 200);
  assert.deepEqual((await h.session(s.id)).tally.for, 1, 'her tap has not reached the hub');
  await room.command('cut off');
  await until('her change of mind recorded', async () =>
    /against/i.test(await p.textContent(`${card} .note`)) && /recorded/.test(await p.textContent(`${card} .note`)), 40000);
  await until('the page on the exact tally', async () =>
    JSON.stringify(await shownTally(p, s.id)) === JSON.stringify({ for: 0, against: 1, abstain: 3 }), 30000);
  let t = (await h.session(s.id)).tally;
  assert.deepEqual([t.for, t.against, t.abstain, t.total], [0, 1, 3, 4], 'her ballot counted once, the latest');

  // The hub dies (kill -9) and comes back on its data; ballots go on.
  await hub.kill9();
  await until('the page to notice', async () => (await p.getAttribute('#status', 'data-state')) === 'offline', 15000);
  hub = await hubIn(layout.hub_ns, data);
  for (let i = 0; i < 2; i++) assert.equal((await h.vote(s.id, `after-${i}`, 'for')).status, 200);
  await until('the page back online', async () => (await p.getAttribute('#status', 'data-state')) === 'online', 40000);
  await until('the page on the exact tally after the restart', async () =>
    JSON.stringify(await shownTally(p, s.id)) === JSON.stringify({ for: 2, against: 1, abstain: 3 }), 30000);
  t = (await h.session(s.id)).tally;
  assert.deepEqual([t.for, t.against, t.abstain], [2, 1, 3], 'nothing acknowledged was lost');
  assert.deepEqual(errors, []);
  await context.close();
});
