// Shared by the browser tests: the real votehub binary on a loopback port,
// its HTTP API, and Debian's Chromium driven by playwright-core.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.VOTEHUB_BIN ?? join(ROOT, 'target', 'debug', 'votehub');
export const TOKEN = 'browser-test-token';

/** Where the tests put their screenshots: under target/, never over the
 *  tracked docs/screenshots (scripts/screenshots copies them there on
 *  purpose). */
export function shots() {
  const dir = join(ROOT, 'target', 'screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `votehub serve`; resolves once it logs its address. */
export async function startHub({ data = mkdtempSync(join(tmpdir(), 'votehub-')), port = 0 } = {}) {
  const proc = spawn(BIN, ['serve', '--bind', `127.0.0.1:${port}`, '--data', data, '--admin-token', TOKEN], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`votehub did not start:\n${log}`)), 20000);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.once('exit', (code) => reject(new Error(`votehub exited with ${code}:\n${log}`)));
  });
  const stop = (signal = 'SIGTERM') => new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
  return { proc, url, data, port: Number(new URL(url).port), stop };
}

export function api(base) {
  const call = async (method, path, body, admin = false) => {
    const headers = { 'content-type': 'application/json' };
    if (admin) headers.authorization = `Bearer ${TOKEN}`;
    const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = text; }
    return { status: r.status, body: json };
  };
  return {
    call,
    async create(body) {
      const r = await call('POST', '/api/sessions', body, true);
      if (r.status !== 201) throw new Error(`create: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    vote: (id, voter, choice) => call('POST', `/api/sessions/${id}/votes`, { voter, choice }),
    close: (id) => call('POST', `/api/sessions/${id}/close`, undefined, true),
    session: async (id) => (await call('GET', `/api/sessions/${id}`)).body,
    voters: (names) => call('POST', '/api/voters', { names }, true),
  };
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

/** A phone-sized page of `browser` at `url`, in English, collecting the
 *  page's uncaught errors (a test ends asserting there were none). */
export async function openPage(browser, url, options = {}) {
  const context = await browser.newContext({ ...PHONE, locale: 'en-US', ...options });
  const p = await context.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(e.message));
  await p.goto(url);
  return { context, page: p, errors };
}

/** Waits until `fn` returns true (polling the page's DOM through it). */
export async function until(what, fn, timeout = 15000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try { last = await fn(); if (last === true) return; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

/** The counts a participant page shows for a session. */
export async function shownTally(page, id) {
  return page.evaluate((sid) => {
    const card = document.querySelector(`[data-session="${sid}"]`);
    if (!card) return null;
    const n = (k) => Number(card.querySelector(`[data-count="${k}"]`)?.textContent);
    return { for: n('for'), against: n('against'), abstain: n('abstain') };
  }, id);
}

/** Runs `cmd args…`; rejects with its output when it fails. */
function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => { err += c; });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${err}`))));
  });
}

/** A network namespace joined to this one by a veth pair: a host at
 *  10.213.N.2 that this machine reaches at a non-loopback address (where
 *  browsers give pages no WebCrypto). Needs root; `remove()` undoes it. */
export async function netns() {
  const n = 1 + Math.floor(Math.random() * 250);
  const name = `vhtest${process.pid % 10000}${n}`;
  const host = `vh${process.pid % 10000}h${n}`.slice(0, 15);
  const peer = `vh${process.pid % 10000}n${n}`.slice(0, 15);
  await run('ip', ['netns', 'add', name]);
  const remove = () => run('ip', ['netns', 'del', name]).catch(() => {});
  try {
    await run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
    await run('ip', ['link', 'set', peer, 'netns', name]);
    await run('ip', ['addr', 'add', `10.213.${n}.1/24`, 'dev', host]);
    await run('ip', ['link', 'set', host, 'up']);
    await run('ip', ['netns', 'exec', name, 'ip', 'addr', 'add', `10.213.${n}.2/24`, 'dev', peer]);
    await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', peer, 'up']);
    await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (e) {
    await remove();
    throw e;
  }
  return { name, address: `10.213.${n}.2`, remove };
}

/** `votehub serve` inside network namespace `ns`, on its address. */
export async function startHubIn(ns, { data = mkdtempSync(join(tmpdir(), 'votehub-')) } = {}) {
  const proc = spawn('ip', ['netns', 'exec', ns.name, BIN, 'serve', '--bind', `${ns.address}:8765`, '--data', data,
    '--admin-token', TOKEN], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`votehub did not start:\n${log}`)), 20000);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.once('exit', (code) => reject(new Error(`votehub exited with ${code}:\n${log}`)));
  });
  const stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
  return { proc, url, data, stop };
}
