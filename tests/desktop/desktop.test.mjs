// The real desktop app under Xvfb, driven through tauri-driver and
// WebKitWebDriver: a moderator creates a session in the window, ballots
// arrive from outside over HTTP, the window's tally and subscriber count
// move, the moderator closes the session from the window, and a WebSocket
// subscriber receives `session_closed`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { BIN, ROOT, freePort, shots, until } from '../browser/harness.mjs';

const APP = process.env.VOTEHUB_DESKTOP_BIN ?? join(ROOT, 'target', 'debug', 'votehub-desktop');
const TOKEN = 'desktop-test-token';
const children = [];

function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (c) => { log += c; });
  children.push(child);
  child.log = () => log;
  return child;
}

after(() => { for (const c of children.reverse()) c.kill('SIGTERM'); });

/** Starts Xvfb on a display it picks itself, and resolves with that
 *  display once the server is ready for clients (`-displayfd` writes the
 *  number then, and only then). */
function xvfb() {
  const child = spawn('Xvfb', ['-displayfd', '1', '-screen', '0', '1280x900x24', '-nolisten', 'tcp'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`Xvfb did not start:\n${err}`)), 20000);
    child.stderr.on('data', (c) => { err += c; });
    child.stdout.on('data', (c) => {
      out += c;
      const m = /^(\d+)\n/.exec(out);
      if (m) { clearTimeout(timer); resolve(`:${m[1]}`); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`Xvfb exited with ${code}:\n${err}`)); });
  });
}

function tauriDriver() {
  const local = join(homedir(), '.cargo', 'bin', 'tauri-driver');
  return existsSync(local) ? local : 'tauri-driver';
}

/** A small W3C WebDriver client over fetch. */
function webdriver(base) {
  const req = async (method, path, body) => {
    const r = await fetch(base + path, {
      method, headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await r.json();
    if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value)}`);
    return json.value;
  };
  let sid;
  const el = async (css) => {
    try {
      return Object.values(await req('POST', `/session/${sid}/element`, { using: 'css selector', value: css }))[0];
    } catch (e) {
      throw new Error(`${css}: ${e.message}`);
    }
  };
  return {
    async open(application) {
      const value = await req('POST', '/session', { capabilities: { alwaysMatch: { 'tauri:options': { application } } } });
      sid = value.sessionId;
    },
    close: () => sid && req('DELETE', `/session/${sid}`),
    run: (script, ...args) => req('POST', `/session/${sid}/execute/sync`, { script, args }),
    /** Clicks `css`; an element redrawn between the lookup and the click
     *  (the roll redraws as people check in) is looked up again. */
    async click(css) {
      for (let attempt = 0; ; attempt++) {
        try {
          await req('POST', `/session/${sid}/element/${await el(css)}/click`, {});
          return;
        } catch (e) {
          if (attempt >= 4 || !/stale element/.test(e.message)) throw e;
        }
      }
    },
    async type(css, text) { await req('POST', `/session/${sid}/element/${await el(css)}/value`, { text }); },
    /** Presses `key` with Alt held, on whatever has the focus. */
    async altKey(key) {
      const keys = [{ type: 'keyDown', value: '\uE00A' }, { type: 'keyDown', value: key },
        { type: 'keyUp', value: key }, { type: 'keyUp', value: '\uE00A' }];
      await req('POST', `/session/${sid}/actions`, { actions: [{ type: 'key', id: 'keyboard', actions: keys }] });
    },
    screenshot: () => req('GET', `/session/${sid}/screenshot`),
  };
}

/** The app in a fresh Xvfb display, driven through tauri-driver, its hub
 *  told to listen on `bind`. */
async function openApp(bind) {
  const display = await xvfb();
  const driverPort = await freePort();
  const nativePort = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'votehub-desktop-'));
  const driver = start(tauriDriver(), ['--port', String(driverPort), '--native-port', String(nativePort)], {
    DISPLAY: display,
    VOTEHUB_BIND: bind,
    VOTEHUB_DATA: data,
    VOTEHUB_ADMIN_TOKEN: TOKEN,
    LANG: 'en_US.UTF-8',
  });
  const wd = webdriver(`http://127.0.0.1:${driverPort}`);
  await until('tauri-driver', async () => (await fetch(`http://127.0.0.1:${driverPort}/status`)).ok, 20000)
    .catch((e) => { throw new Error(`${e.message}\n${driver.log()}`); });
  await wd.open(APP);
  return wd;
}

async function running(wd) {
  await until('the hub in the window', async () =>
    (await wd.run("return document.querySelector('#hub-state').dataset.state")) === 'running', 30000);
}

test('create, watch and close a session from the real window', { timeout: 180000 }, async () => {
  const hubPort = await freePort();
  const wd = await openApp(`127.0.0.1:${hubPort}`);
  try {
    const hub = `http://127.0.0.1:${hubPort}`;
    await running(wd);
    const urls = await wd.run("return [...document.querySelectorAll('.join-url')].map(e => e.dataset.url)");
    assert.deepEqual(urls, [`${hub}/`], 'the window shows the address participants open');
    assert.equal(await wd.run("return document.querySelectorAll('.join-item img[src^=\"data:image/svg+xml\"]').length"), 1, 'with its QR code');
    // One version everywhere: the window's is the hub's /health and the workspace's.
    const health = await (await fetch(`${hub}/health`)).json();
    const workspace = readFileSync(join(ROOT, 'Cargo.toml'), 'utf8').match(/^version = "([^"]+)"/m)[1];
    assert.equal(health.version, workspace, '/health shows the workspace version');
    assert.equal(await wd.run("return document.querySelector('#version').textContent"), `votehub ${workspace}`,
      'the window shows the version');

    // The moderator creates a session in the window.
    await wd.type('#new-title', 'Budget 2027');
    await wd.type('#new-form textarea[name="description"]', 'Adopt the budget as presented by the treasurer.');
    await wd.click('#create-session');
    let session;
    await until('the session on the hub', async () => {
      const list = await (await fetch(`${hub}/api/sessions`)).json();
      session = list.find((s) => s.title === 'Budget 2027');
      return !!session;
    });
    const card = `[data-session="${session.id}"]`;
    await until('the session in the window', async () => await wd.run(`return !!document.querySelector('${card}')`));

    // A participant screen subscribes over /live; ballots come in over HTTP.
    const ws = new WebSocket(`ws://127.0.0.1:${hubPort}/live`);
    const events = [];
    ws.on('message', (data) => events.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.send(JSON.stringify({ action: 'subscribe', session_id: session.id }));
    for (let i = 0; i < 10; i++) {
      const r = await fetch(`${hub}/api/sessions/${session.id}/votes`, {
        method: 'POST', body: JSON.stringify({ voter: `v${i}`, choice: i < 7 ? 'for' : 'against' }),
      });
      assert.equal(r.status, 200);
    }
    const shown = (what) => wd.run(`return document.querySelector('${card} ${what}')?.textContent`);
    await until('the tally in the window', async () => (await shown('[data-count="for"]')) === '7' && (await shown('[data-count="against"]')) === '3');
    await until('the subscriber count in the window', async () =>
      (await wd.run(`return document.querySelector('${card} [data-subscribers]').dataset.subscribers`)) === '1');
    await until('the connected browsers', async () =>
      Number(await wd.run("return document.querySelector('#connections').dataset.count")) >= 1);
    writeFileSync(join(shots(), 'desktop.png'), Buffer.from(await wd.screenshot(), 'base64'));

    // The moderator closes it from the window, confirming first.
    await wd.click(`${card} button[data-action="close"]`);
    await until('the confirmation', async () => await wd.run("return document.querySelector('#confirm').open"));
    await wd.click('#confirm-yes');
    await until('session_closed on the subscriber', async () => events.some((e) => e.event === 'session_closed'));
    const closed = events.find((e) => e.event === 'session_closed');
    assert.equal(closed.result, 'adopted');
    assert.equal(closed.votes_for, 7);
    assert.equal(closed.votes_total, 10);
    await until('the result in the window', async () =>
      (await wd.run(`return document.querySelector('${card} .result').dataset.result`)) === 'adopted');
    const status = await (await fetch(`${hub}/api/sessions/${session.id}`)).json();
    assert.equal(status.status, 'closed');
    ws.close();

    // The audit file, saved from the window, verifies offline.
    await wd.click(`${card} button[data-action="audit"]`);
    let saved;
    await until('the audit file saved', async () => {
      saved = /Saved to (\S+\.json)/.exec(await shown('p.note[role="status"]') ?? '')?.[1];
      return !!saved;
    });
    const verify = spawnSync(BIN, ['verify', saved], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);

    // A backup from the window, while the hub runs: the copy holds the vote.
    await wd.click('#backup-button');
    let copy;
    await until('the backup made', async () => {
      copy = /Backed up to (\S+) —/.exec(await wd.run("return document.querySelector('#backup-message').textContent"))?.[1];
      return !!copy;
    }, 30000);
    const again = spawnSync(BIN, ['backup', mkdtempSync(join(tmpdir(), 'votehub-copy-')) + '/c', '--data', copy], { encoding: 'utf8' });
    assert.equal(again.status, 0, again.stderr);
    // (The token came from VOTEHUB_ADMIN_TOKEN: there is no token file to copy.)
    assert.match(again.stdout, /backed up 1 sessions and 10 ballots \(\d+ bytes, with signing-key\)/);
  } finally {
    await wd.close().catch(() => {});
  }
});

test('a port in use is shown in the window, and another port can be chosen there', { timeout: 180000 }, async () => {
  // Something else holds the port the app is told to use.
  const { createServer } = await import('node:net');
  const squatter = createServer();
  await new Promise((r) => squatter.listen(0, '127.0.0.1', r));
  const taken = squatter.address().port;
  const wd = await openApp(`127.0.0.1:${taken}`);
  try {
    await until('the failure in the window', async () =>
      (await wd.run("return document.querySelector('#hub-state').dataset.state")) === 'failed', 30000);
    assert.equal(await wd.run("return document.querySelector('#failure').hidden"), false);
    assert.match(await wd.run("return document.querySelector('#failure-message').textContent"), /in use/i);
    assert.match(await wd.run("return document.querySelector('#port-label').textContent"), /already used/);

    const free = await freePort();
    await wd.run("document.querySelector('#port-input').value = ''");
    await wd.type('#port-input', String(free));
    await wd.click('#port-form button[type="submit"]');
    await until('the hub on the new port', async () =>
      (await wd.run("return document.querySelector('#hub-state').dataset.state")) === 'running', 30000);
    const health = await (await fetch(`http://127.0.0.1:${free}/health`)).json();
    assert.equal(health.status, 'ok');
    assert.equal(await wd.run("return document.querySelector('#failure').hidden"), true);
  } finally {
    await wd.close().catch(() => {});
    squatter.close();
  }
});

test('import an agenda of three votes, reorder it, open, watch, close, open the next', { timeout: 180000 }, async () => {
  const hubPort = await freePort();
  const wd = await openApp(`127.0.0.1:${hubPort}`);
  const hub = `http://127.0.0.1:${hubPort}`;
  const agenda = async () => (await (await fetch(`${hub}/api/agenda`)).json());
  try {
    await running(wd);
    // The agenda file, pasted in the import form.
    await wd.run("document.querySelector('#import').open = true");
    // (Pasted: WebDriver's typing drops newlines.)
    await wd.run("document.querySelector('#import-text').value = arguments[0]", [
      'title,description,kind,options,seats,rule',
      'Minutes,Approve the last minutes,motion,,,majority',
      'Budget,Adopt the budget,motion,,,supermajority 2/3',
      'Board,,election,Ann;Bob;Cy,2,',
    ].join('\n'));
    await wd.click('#import-button');
    await until('three drafts on the hub', async () => (await agenda()).length === 3);
    await until('the import said so', async () =>
      /3 votes imported/.test(await wd.run("return document.querySelector('#import-message').textContent")));
    const [minutes, budget, board] = await agenda();
    assert.deepEqual([minutes.title, budget.title, board.title], ['Minutes', 'Budget', 'Board']);
    const titles = () => wd.run("return [...document.querySelectorAll('#session-list > li h3')].map(h => h.textContent)");
    await until('the agenda in the window', async () => JSON.stringify(await titles()) === '["Minutes","Budget","Board"]');

    // Reorder by keyboard: the budget first (Alt+↑ on its card) …
    await wd.run(`document.querySelector('[data-session="${budget.id}"]').focus()`);
    await wd.altKey('\uE013');
    await until('the budget first', async () => (await agenda())[0].id === budget.id);
    // … and by a button: the minutes after the board.
    await wd.click(`[data-session="${minutes.id}"] button[data-action="down"]`);
    await until('the new order on the hub', async () =>
      (await agenda()).map((s) => s.title).join() === 'Budget,Board,Minutes');
    await until('the new order in the window', async () => JSON.stringify(await titles()) === '["Budget","Board","Minutes"]');

    // Open the first, watch the ballots come in, close it.
    const card = `[data-session="${budget.id}"]`;
    await wd.click(`${card} button[data-action="open"]`);
    await until('it is open', async () => (await (await fetch(`${hub}/api/sessions/${budget.id}`)).json()).status === 'open');
    for (let i = 0; i < 9; i++) {
      const r = await fetch(`${hub}/api/sessions/${budget.id}/votes`, {
        method: 'POST', body: JSON.stringify({ voter: `v${i}`, choice: i < 7 ? 'for' : 'against' }),
      });
      assert.equal(r.status, 200);
    }
    const shown = (what) => wd.run(`return document.querySelector('${card} ${what}')?.textContent`);
    await until('the tally in the window', async () => (await shown('[data-count="for"]')) === '7');
    await wd.click(`${card} button[data-action="close"]`);
    await until('the confirmation', async () => await wd.run("return document.querySelector('#confirm').open"));
    await wd.click('#confirm-yes');
    await until('the result in the window', async () =>
      (await wd.run(`return document.querySelector('${card} .result').dataset.result`)) === 'adopted');

    // Open the next: the election, with a bar per candidate.
    const next = `[data-session="${board.id}"]`;
    await wd.click(`${next} button[data-action="open"]`);
    await until('the election is open', async () => (await (await fetch(`${hub}/api/sessions/${board.id}`)).json()).status === 'open');
    const r = await fetch(`${hub}/api/sessions/${board.id}/votes`, { method: 'POST', body: JSON.stringify({ voter: 'x', options: [0, 2] }) });
    assert.equal(r.status, 200);
    await until('the candidates in the window', async () =>
      (await wd.run(`return document.querySelectorAll('${next} .bar').length`)) === 3
      && (await wd.run(`return document.querySelector('${next} [data-count="o2"]')?.textContent`)) === '1');
    writeFileSync(join(shots(), 'desktop-agenda.png'), Buffer.from(await wd.screenshot(), 'base64'));
  } finally {
    await wd.close().catch(() => {});
  }
});

test('check in three members by keyboard, give a proxy, watch the register fill', { timeout: 180000 }, async () => {
  const hubPort = await freePort();
  const wd = await openApp(`127.0.0.1:${hubPort}`);
  const hub = `http://127.0.0.1:${hubPort}`;
  const admin = { authorization: `Bearer ${TOKEN}` };
  const attendance = async () => (await fetch(`${hub}/api/attendance`)).json();
  try {
    await running(wd);
    // The roll, from a file with weights (pasted through the file input's
    // text: WebDriver cannot pick files in WebKitGTK).
    await wd.run("document.querySelector('#roll-add').open = true");
    await wd.run(`
      const file = new File([arguments[0]], 'roll.csv', { type: 'text/csv' });
      const list = new DataTransfer(); list.items.add(file);
      document.querySelector('#roll-file').files = list.files;`,
    ['name,groups,weight', 'Ann Martin,,3', 'Bob Durand,,2', 'Cy Petit,,1', 'Dee Roux,,4'].join('\n'));
    await wd.click('#roll-import');
    await until('the roll in the window', async () =>
      (await wd.run("return document.querySelectorAll('#roll-table tbody tr').length")) === 4);
    const roll = await (await fetch(`${hub}/api/voters`, { headers: admin })).json();
    const code = Object.fromEntries(roll.map((v) => [v.name, v.code]));
    assert.deepEqual(roll.map((v) => v.weight), [3, 2, 1, 4]);

    // Keyboard first: type a name (or a code), Enter checks the first match in.
    for (const typed of ['ann', 'Bob D', code['Cy Petit'].toLowerCase()]) {
      await wd.run("const s = document.querySelector('#roll-search'); s.value = ''; s.focus();");
      await wd.type('#roll-search', `${typed}\uE007`);
      await until(`${typed} checked in`, async () =>
        /checked in/.test(await wd.run("return document.querySelector('#checkin-status').textContent")));
      await wd.run("document.querySelector('#checkin-status').textContent = ''");
    }
    let a = await attendance();
    assert.deepEqual([a.present, a.weight_present, a.absent], [3, 6, 1]);
    await until('the window counts them', async () =>
      (await wd.run("return document.querySelector('#attendance').dataset.present")) === '3');

    // Dee, absent, gives her proxy to Ann.
    await wd.run("const s = document.querySelector('#roll-search'); s.value = 'Dee'; s.dispatchEvent(new Event('input'));");
    await until('Dee alone in the table', async () =>
      JSON.stringify(await wd.run("return [...document.querySelectorAll('#roll-table tbody tr')].map(r => r.dataset.code)"))
        === JSON.stringify([code['Dee Roux']]));
    await wd.click(`tr[data-code="${code['Dee Roux']}"] button[data-action="give-proxy"]`);
    await until('the proxy dialog', async () => await wd.run("return document.querySelector('#proxy-dialog').open"));
    await wd.type('#proxy-holder', 'Ann Martin');
    await wd.click('#proxy-form button[value="yes"]');
    await until('the proxy on the hub', async () => {
      const list = await (await fetch(`${hub}/api/proxies`, { headers: admin })).json();
      return list.length === 1 && list[0].to_name === 'Ann Martin';
    });
    a = await attendance();
    assert.deepEqual([a.represented, a.weight_represented], [1, 4]);

    // A vote on the roll: the register fills as ballots arrive.
    const r = await fetch(`${hub}/api/sessions`, {
      method: 'POST', headers: admin, body: JSON.stringify({ title: 'Statutes', electorate: 'roll' }),
    });
    const session = await r.json();
    const card = `[data-session="${session.id}"]`;
    await until('the vote in the window', async () => await wd.run(`return !!document.querySelector('${card} details.register')`));
    await wd.run(`document.querySelector('${card} details.register').open = true`);
    const cast = (body) => fetch(`${hub}/api/sessions/${session.id}/votes`, { method: 'POST', body: JSON.stringify(body) });
    assert.equal((await cast({ voter: code['Bob Durand'], choice: 'for' })).status, 200);
    const register = () => wd.run(`return [...document.querySelectorAll('${card} .register-list li')].map(li => li.textContent)`);
    await until('Bob in the register', async () => JSON.stringify(await register()) === '["Bob Durand"]');
    assert.equal((await cast({ voter: code['Ann Martin'], choice: 'for', on_behalf_of: 'Dee Roux' })).status, 200);
    assert.equal((await cast({ voter: code['Ann Martin'], choice: 'against' })).status, 200);
    await until('the register sorted by name', async () =>
      JSON.stringify(await register()) === '["Ann Martin","Bob Durand","Dee Roux"]');
    assert.match(await wd.run(`return document.querySelector('${card} .register summary').textContent`), /Who has voted \(3\)/);
    await until('the weighed turnout', async () =>
      /3 ballots \(weight 9\)/.test(await wd.run(`return document.querySelector('${card} .turnout').textContent`)));
    writeFileSync(join(shots(), 'desktop-roll.png'), Buffer.from(await wd.screenshot(), 'base64'));
  } finally {
    await wd.close().catch(() => {});
  }
});
