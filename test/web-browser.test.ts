/**
 * The web app end to end, as a maker uses it, in real headless Chromium: sign up, create a device, read its URL
 * off the page, connect a device with it, watch values arrive live and on the chart, flip the lamp, download CSV;
 * and another user failing to open that device. Screenshots are always taken (and checked not to be blank), into a
 * temporary folder; `npm run screenshots` (IOTC_SCREENSHOTS=1) writes them over the README's, under docs/screenshots/.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { browserHub, PASSWORD, signUp } from './browser.js';
import { ROOT, sleep, TestClient, tempDir, waitFor } from './helpers.js';

// A test run leaves the checkout as it was: the README's screenshots are rewritten only when asked for.
const shotsDir = process.env.IOTC_SCREENSHOTS === '1' ? null : tempDir('iotc-shots-');
const SHOTS = shotsDir?.dir ?? path.join(ROOT, 'docs', 'screenshots');
const web = browserHub();
let context: BrowserContext;
let page: Page;

before(async () => {
  if (web.skip) return;
  await web.ready();
  context = await web.browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true, colorScheme: 'light' });
  page = await context.newPage();
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(() => shotsDir?.cleanup());

async function shot(p: Page, name: string, opts: { scrollTo?: string } = {}): Promise<void> {
  if (opts.scrollTo) await p.evaluate((sel) => document.querySelector(sel)!.scrollIntoView(), opts.scrollTo);
  else await p.evaluate(() => window.scrollTo(0, 0));
  await p.screenshot({ path: path.join(SHOTS, name), fullPage: !opts.scrollTo });
  assert.ok(fs.statSync(path.join(SHOTS, name)).size > 10_000, `${name} looks empty`);
}

interface Made {
  id: string;
  key: string;
  url: string;
}
const state: { email: string; greenhouse?: Made; device?: TestClient } = { email: `maker-${Date.now()}@example.com` };

test('sign-up form shows field errors, keeps what was typed, then signs up', { skip: web.skip }, async () => {
  await page.goto(`${web.server.url}/signup`);
  await page.fill('#f-name', 'Ada Maker');
  await page.fill('#f-email', 'not-an-email');
  await page.fill('#f-password', 'short');
  await page.click('form[action="/signup"] button[type=submit]');
  await page.waitForSelector('#f-email-error');
  assert.match(await page.textContent('#f-email-error') ?? '', /not a valid address/i);
  assert.match(await page.textContent('#f-password-error') ?? '', /at least 8/);
  assert.equal(await page.inputValue('#f-name'), 'Ada Maker');
  assert.equal(await page.inputValue('#f-email'), 'not-an-email');
  assert.equal(await page.inputValue('#f-password'), '', 'a password is never sent back');

  await page.fill('#f-email', state.email);
  await page.fill('#f-password', PASSWORD);
  await Promise.all([page.waitForURL(/\/devices\?welcome/), page.click('form[action="/signup"] button[type=submit]')]);
  assert.match(await page.textContent('main') ?? '', /Welcome, Ada Maker/);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'iotc_session');
  assert.ok(session, 'session cookie set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
});

test('a new device shows its id, key and ready-to-paste URL once', { skip: web.skip }, async () => {
  await page.click('text=New device');
  await page.waitForURL(/\/devices\/new$/);
  await page.click('button[type=submit]:has-text("Create device")');
  assert.match(await page.textContent('#f-name-error') ?? '', /name is required/i);
  await page.fill('#f-name', 'Greenhouse');
  await Promise.all([page.waitForSelector('[data-testid=device-url]'), page.click('button[type=submit]:has-text("Create device")')]);
  const url = (await page.textContent('[data-testid=device-url]'))!.trim();
  const m = /^ws:\/\/127\.0\.0\.1:(\d+)\/ws\?device=([A-Z0-9]{20})&key=([A-Z0-9]{15})$/.exec(url);
  assert.ok(m, `URL on the page: ${url}`);
  assert.equal(Number(m[1]), web.server.port);
  assert.equal(await page.textContent('[data-testid=device-id]'), m[2]);
  assert.equal(await page.textContent('[data-testid=device-key]'), m[3]);
  assert.match(await page.textContent('main') ?? '', /shown only now/i);
  state.greenhouse = { url, id: m[2], key: m[3] };
  await shot(page, 'new-device.png');

  // Copy puts exactly the URL on the clipboard (the page is http on 127.0.0.1, a secure context).
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: web.server.url });
  await page.click('[data-copy=device-url]');
  await page.waitForSelector('[data-copy=device-url].done');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), url);
});

test('the docs carry the device id and, from the new-device page, its key', { skip: web.skip }, async () => {
  const { id, key } = state.greenhouse!;
  await Promise.all([page.waitForURL(/\/docs\?device=/), page.click('[data-docs-link]')]);
  await page.waitForSelector('#ex-python .key-slot.filled', { state: 'attached' });
  assert.equal(new URL(page.url()).hash, '', 'the key is taken out of the address bar');
  const python = (await page.textContent('#ex-python'))!;
  assert.ok(python.includes(`ws://127.0.0.1:${web.server.port}/ws?device=${id}&key=${key}&side=device`), python.slice(0, 400));
  const arduino = (await page.textContent('#ex-arduino'))!;
  assert.ok(arduino.includes(`"/ws?device=${id}&key=${key}&side=device"`));
  assert.ok(arduino.includes(`const uint16_t PORT = ${web.server.port};`));
  const mqttText = (await page.textContent('#ex-mqtt'))!;
  // The test server runs without an MQTT TCP listener: the page offers MQTT over WebSocket, never a port where the hub is not.
  assert.ok(mqttText.includes(`mqtt pub -l ws -h 127.0.0.1 -p ${web.server.port} --path /mqtt -u ${id} -P ${key} -t devices/${id}/temp -m 21.5`), mqttText);
  assert.doesNotMatch(mqttText, /mosquitto_pub|-p 1883/);
  assert.equal(await page.isVisible('#panel-python'), false, 'one example tab at a time');
  await page.click('[data-tab=python]');
  assert.equal(await page.isVisible('#panel-python'), true);
  await page.click('[data-tab=arduino]');
  await page.setViewportSize({ width: 1280, height: 1000 });
  await shot(page, 'docs.png', { scrollTo: '#examples' });
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `docs: no sideways scrolling on a phone (${overflow}px too wide)`);
  await page.setViewportSize({ width: 1280, height: 860 });
});

test('a device connected with the URL from the page shows up live, on its chart, and gets the switch and values', { skip: web.skip }, async () => {
  const { url, id } = state.greenhouse!;
  // An hour of history, so the chart has a shape; stored as the device would have written it.
  const now = Date.now();
  await web.server.hub.store.appendReadings(
    Array.from({ length: 60 }, (_, i) => ({ deviceId: id, sensor: 'temp', value: Math.round((20 + 2 * Math.sin(i / 9) + i / 40) * 100) / 100, side: 'device' as const, time: now - (60 - i) * 60_000 })),
  );
  const device = new TestClient(url);
  await device.opened;
  state.device = device;
  web.cleanups.push(() => device.close());
  assert.equal((await device.request({ method: 'put', status: [{ sensor: 'led', value: false }, { sensor: 'humidity', value: 48 }, { sensor: 'firmware', value: 'v1.2.0' }] })).ok, true);

  await page.goto(`${web.server.url}/devices/${id}`);
  await page.waitForSelector('[data-live][data-state=live]');
  await waitFor(async () => Number(await page.getAttribute('[data-chart=temp]', 'data-points')) >= 60, 5000, 'chart with history');

  assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: 23.75 } })).ok, true);
  await page.waitForSelector('[data-sensor=temp] .value:text-is("23.75")');
  await waitFor(async () => Number(await page.getAttribute('[data-chart=temp]', 'data-points')) >= 61, 5000, 'live point on the chart');
  assert.ok(await page.isVisible('[data-chart=temp] canvas'), 'uPlot draws the chart');
  await waitFor(async () => (await page.textContent('[data-status-text]')) === 'Online', 6000, 'online status');

  // The lamp switch reaches the device live.
  assert.equal(await page.getAttribute('[data-switch=led]', 'aria-checked'), 'false');
  await page.click('[data-switch=led]');
  const led = await device.reading();
  assert.deepEqual([led.sensor, led.value, led.write], ['led', true, 'client']);
  await waitFor(async () => (await page.getAttribute('[data-switch=led]', 'aria-checked')) === 'true', 3000, 'switch shows on');

  // Any sensor, any value: JSON is sent as JSON, anything else as text.
  await page.fill('#send-sensor', 'target');
  await page.fill('#send-value', '25');
  await page.click('[data-send-form] button[type=submit]');
  const target = await device.reading();
  assert.deepEqual([target.sensor, target.value], ['target', 25]);
  await page.fill('#send-sensor', 'message');
  await page.fill('#send-value', 'hello there');
  await page.click('[data-send-form] button[type=submit]');
  assert.equal((await device.reading()).value, 'hello there');
  await page.waitForSelector('[data-send-status].ok');

  await device.request({ method: 'put', status: { sensor: 'led', value: true } });
  await device.request({ method: 'put', status: { sensor: 'temp', value: 23.9 } });
  await page.waitForSelector('[data-sensor=temp] .value:text-is("23.9")');
  await sleep(1000); // let the arrival highlight fade
  await shot(page, 'device.png');

  await page.setViewportSize({ width: 390, height: 844 });
  await sleep(300);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, 'device-phone.png'), fullPage: false });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);
  await page.setViewportSize({ width: 1280, height: 860 });
});

test('history downloads as CSV', { skip: web.skip }, async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-csv]')]);
  assert.match(download.suggestedFilename(), /^Greenhouse-all-\d{8}-\d{4}\.csv$/);
  const csv = fs.readFileSync((await download.path())!, 'utf8');
  const lines = csv.trim().split('\r\n');
  assert.equal(lines[0], 'time,time_ms,sensor,value,write');
  assert.ok(lines.some((l) => /,temp,23\.75,device$/.test(l)), 'the live temperature is in the file');
  assert.ok(lines.some((l) => /,led,true,client$/.test(l)), 'the switch flip is in the file');
  assert.ok(lines.filter((l) => l.includes(',temp,')).length >= 62);
});

test('the device list shows online state and latest values', { skip: web.skip }, async () => {
  await page.goto(`${web.server.url}/devices/new`);
  await page.fill('#f-name', 'Desk lamp');
  await page.click('button[type=submit]:has-text("Create device")');
  await page.waitForSelector('[data-testid=device-url]');
  await page.goto(`${web.server.url}/devices`);
  const card = `[data-device="${state.greenhouse!.id}"]`;
  assert.equal(await page.textContent(`${card} [data-status-text]`), 'Online');
  assert.match((await page.textContent(`${card} [data-chips]`))!, /temp\s*23\.9/);
  await shot(page, 'devices.png');
});

test('the Python example from the docs page runs as the device: readings on the chart, lamp switched from the page', { skip: web.skip }, async (t) => {
  // Debian's python3-websocket lives in the system Python, which a version manager's python3 may shadow.
  const python = ['python3', '/usr/bin/python3'].find((bin) => spawnSync(bin, ['-c', 'import websocket'], { stdio: 'ignore' }).status === 0);
  if (!python) {
    if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error('python3 with websocket-client is required (IOTC_REQUIRE_SERVICES=1): apt-get install python3-websocket');
    console.log('# notice: python3 with websocket-client (apt-get install python3-websocket) not found; skipping the Python example run');
    t.skip('python3-websocket not installed');
    return;
  }
  const { id } = state.greenhouse!;
  // The test's own device goes away, so nothing the page wrote is pending for the device side any more.
  await state.device!.close();
  await page.goto(`${web.server.url}/docs?device=${id}`);
  // Opened from the device list this time: the key comes from this tab's memory of the new-device page.
  await page.waitForSelector('#ex-python .key-slot.filled', { state: 'attached' });
  const code = (await page.textContent('#ex-python'))!;
  const dir = tempDir('iotc-python-');
  web.cleanups.push(dir.cleanup);
  fs.writeFileSync(path.join(dir.dir, 'device.py'), code);
  const py = spawn(python, ['-u', path.join(dir.dir, 'device.py')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  py.stdout.on('data', (d) => (out += d));
  py.stderr.on('data', (d) => (out += d));
  web.cleanups.push(() => py.kill('SIGKILL'));
  await waitFor(() => out.includes('connected'), 10_000, `python example to connect; output: ${out}`);

  await page.goto(`${web.server.url}/devices/${id}`);
  await page.waitForSelector('[data-live][data-state=live]');
  const before = Number(await page.getAttribute('[data-chart=temp]', 'data-points'));
  await waitFor(async () => Number(await page.getAttribute('[data-chart=temp]', 'data-points')) >= before + 2, 10_000, 'python readings on the chart');
  assert.doesNotMatch(out, /lamp ON/);
  // The example announces led=false on connect, so the switch is off; flip it on from the page.
  await waitFor(async () => (await page.getAttribute('[data-switch=led]', 'aria-checked')) === 'false', 5000, 'switch off');
  await page.click('[data-switch=led]');
  await waitFor(() => out.includes('lamp ON'), 5000, `python to switch the lamp on; output: ${out}`);
  py.kill('SIGKILL');
});

test('another user cannot open the first user\'s device: 404, and its live connection is refused', { skip: web.skip }, async () => {
  const other = await web.browser.newContext();
  web.cleanups.push(() => other.close());
  const p = await other.newPage();
  await signUp(p, web.server.url, 'Mallory', `other-${Date.now()}@example.com`);
  const { id } = state.greenhouse!;
  for (const suffix of ['', '/status.json', '/history.csv', '/rotate', '/delete']) {
    const res = await p.goto(`${web.server.url}/devices/${id}${suffix}`);
    assert.equal(res!.status(), 404, `GET /devices/ID${suffix}`);
  }
  assert.match((await p.textContent('main')) ?? (await p.content()), /No such device|not found/i);
  const code = await p.evaluate(
    (wsUrl) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(wsUrl);
        ws.onclose = (e) => resolve(e.code);
      }),
    `${web.server.wsUrl}/ws?device=${id}&side=client`,
  );
  assert.equal(code, 4401);
  assert.doesNotMatch(await (await p.goto(`${web.server.url}/devices`))!.text(), /Greenhouse/);
});

test('log out ends the session on the server', { skip: web.skip }, async () => {
  const before = (await context.cookies()).find((c) => c.name === 'iotc_session')!;
  await Promise.all([page.waitForURL(/\/login\?bye/), page.click('form.logout button')]);
  assert.match((await page.textContent('main'))!, /You have logged out/);
  // The old cookie, replayed, no longer opens anything.
  const res = await fetch(`${web.server.url}/devices`, { headers: { cookie: `iotc_session=${before.value}`, accept: 'text/html' }, redirect: 'manual' });
  assert.equal(res.status, 303);
  assert.match(res.headers.get('location') ?? '', /^\/login/);
});
