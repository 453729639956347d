/**
 * Dashboards end to end in real headless Chromium: build one with a gauge, a chart and a switch, rearrange it by
 * dragging, reload and find it kept, flip the switch and see a real WebSocket device receive it; then the phone
 * layout. Screenshots go to a temporary folder; `npm run screenshots` writes them under docs/screenshots/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { browserHub, CHROMIUM_PATH, logIn, signUp } from './browser.js';
import { ROOT, TestClient, tempDir, waitFor } from './helpers.js';

const shotsDir = process.env.IOTC_SCREENSHOTS === '1' ? null : tempDir('iotc-dash-shots-');
const SHOTS = shotsDir?.dir ?? path.join(ROOT, 'docs', 'screenshots');
const web = browserHub();
let context: BrowserContext;
let page: Page;
const state: { email?: string; deviceId?: string; key?: string; dashboard?: string; device?: TestClient } = {};

before(async () => {
  if (web.skip) return;
  await web.ready();
  context = await web.browser.newContext({ viewport: { width: 1280, height: 1500 }, colorScheme: 'light' });
  page = await context.newPage();
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(() => shotsDir?.cleanup());

async function shot(p: Page, name: string): Promise<void> {
  await p.evaluate(() => window.scrollTo(0, 0));
  await p.screenshot({ path: path.join(SHOTS, name), fullPage: true });
  assert.ok(fs.statSync(path.join(SHOTS, name)).size > 10_000, `${name} looks empty`);
}

const box = async (sel: string) => (await page.locator(sel).boundingBox())!;
const spec = async (id: string) => (await page.evaluate((i) => JSON.parse(document.getElementById('dashboard')!.dataset.dashboard!).widgets.find((w: { id: string }) => w.id === i), id)) as Record<string, number>;

async function addWidget(type: string, fields: Record<string, string>): Promise<void> {
  const before = await page.locator('[data-widget]').count();
  await page.selectOption('#w-type', type);
  for (const [name, value] of Object.entries(fields)) await page.fill(`#w-${name}`, value);
  await page.click('[data-add-form] button[type=submit]');
  await waitFor(async () => (await page.locator('[data-widget]').count()) === before + 1, 3000, `${type} widget added`);
  await page.waitForSelector('[data-save-status][data-saved=yes]');
}

test('a dashboard with a gauge, a chart and a switch is built, dragged into place, kept over a reload, and its switch reaches the device', { skip: web.skip }, async () => {
  const email = `dash-${Date.now()}@example.com`;
  await signUp(page, web.server.url, 'Grace Grower', email);
  state.email = email;
  const user = (await web.server.hub.store.getUserByEmail(email))!;
  const made = await web.server.hub.accounts.createDevice(user.id, 'Greenhouse');
  state.deviceId = made.id;
  state.key = made.key;
  const now = Date.now();
  await web.server.hub.store.appendReadings(
    Array.from({ length: 60 }, (_, i) => ({ deviceId: made.id, sensor: 'temp', value: Math.round((20 + 2 * Math.sin(i / 9)) * 100) / 100, side: 'device' as const, time: now - (60 - i) * 60_000 })),
  );
  const device = await TestClient.connect(web.server.url.replace(/^http/, 'ws'), made.id, made.key);
  state.device = device;
  web.cleanups.push(() => device.ws.close());
  assert.equal((await device.request({ method: 'put', status: [{ sensor: 'pump', value: false }, { sensor: 'humidity', value: 48 }] })).ok, true);

  await page.goto(`${web.server.url}/dashboards`);
  await page.fill('#dash-name', 'Greenhouse');
  await Promise.all([page.waitForURL(/\/dashboards\/\d+$/), page.click('form[action="/dashboards"] button[type=submit]')]);
  state.dashboard = page.url();
  assert.ok(await page.isVisible('[data-editor]'), 'a new dashboard opens in edit mode');

  await addWidget('gauge', { sensor: 'temp', title: 'Temperature', min: '0', max: '40', units: '°C' });
  await addWidget('chart', { sensor: 'temp', more: 'humidity', title: 'Climate' });
  await addWidget('switch', { sensor: 'pump', title: 'Pump' });
  await waitFor(async () => Number(await page.getAttribute('[data-type=chart] [data-chart]', 'data-points')) >= 60, 5000, 'chart with history');
  await waitFor(async () => (await page.getAttribute('[data-type=gauge]', 'data-gauge-value')) !== null, 5000, 'gauge shows the temperature');

  // Drag the switch (placed last, at the bottom) up beside the gauge, then widen it by its corner.
  const sw = page.locator('[data-type=switch]');
  const swId = (await sw.getAttribute('data-widget'))!;
  const gauge = await box('[data-type=gauge]');
  const head = await box('[data-type=switch] .widget-head');
  await page.mouse.move(head.x + 20, head.y + 10);
  await page.mouse.down();
  await page.mouse.move(gauge.x + gauge.width + 40, gauge.y + 10, { steps: 8 });
  await page.mouse.up();
  await page.waitForSelector('[data-save-status][data-saved=yes]');
  const corner = await box('[data-type=switch] .widget-resize');
  await page.mouse.move(corner.x + 5, corner.y + 5);
  await page.mouse.down();
  await page.mouse.move(corner.x + 5 + 200, corner.y + 5, { steps: 6 });
  await page.mouse.up();
  const moved = await box('[data-type=switch]');
  assert.ok(Math.abs(moved.y - gauge.y) < 5, `the switch is on the gauge's row (${moved.y} vs ${gauge.y})`);
  assert.ok(moved.x > gauge.x + gauge.width, 'the switch is right of the gauge');
  await waitFor(async () => (await page.getAttribute('[data-save-status]', 'data-saved')) === 'yes' && (await page.textContent('[data-save-status]')) === 'Saved', 3000, 'saved');

  // The server kept the arrangement.
  const saved = (await web.server.hub.dashboards.list(user.id))[0];
  const savedSwitch = saved.widgets.find((w) => (w as { id: string }).id === swId) as Record<string, number>;
  assert.equal(savedSwitch.y, 0);
  assert.ok(savedSwitch.x >= 3 && savedSwitch.w > 3, `moved and widened: ${JSON.stringify(savedSwitch)}`);

  await page.click('[data-edit]');
  await shot(page, 'dashboard-desktop.png');

  // Reload: the same layout comes back from the server.
  await page.reload();
  await page.waitForSelector('[data-type=switch][data-conn=live]');
  assert.deepEqual(await spec(swId), savedSwitch);
  const again = await box('[data-type=switch]');
  const gaugeAgain = await box('[data-type=gauge]');
  assert.ok(Math.abs(again.y - gaugeAgain.y) < 5 && Math.abs(again.x - moved.x) < 5 && Math.abs(again.width - moved.width) < 5, 'same place and size after a reload');

  // The switch writes as the client side; the real device receives it.
  assert.equal(await page.getAttribute('[data-switch=pump]', 'aria-checked'), 'false');
  await page.click('[data-switch=pump]');
  const got = await device.reading();
  assert.deepEqual([got.sensor, got.value, got.write], ['pump', true, 'client']);
  await waitFor(async () => (await page.getAttribute('[data-switch=pump]', 'aria-checked')) === 'true', 3000, 'switch shows on');

  // A reading from the device moves the gauge live.
  assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: 31.5 } })).ok, true);
  await waitFor(async () => (await page.getAttribute('[data-type=gauge]', 'data-gauge-value')) === '31.5', 3000, 'gauge follows live');
});

test('controls are disabled while the connection is down, and say so', { skip: web.skip }, async () => {
  await page.goto(state.dashboard!);
  await page.waitForSelector('[data-type=switch][data-conn=live]');
  assert.equal(await page.isDisabled('[data-switch=pump]'), false);
  // Logging out in another tab closes this page's connections, and they cannot come back without a login.
  const other = await context.newPage();
  await other.goto(`${web.server.url}/devices`);
  await Promise.all([other.waitForURL(/\/$|\/login/), other.click('form.logout button')]);
  await waitFor(async () => (await page.getAttribute('[data-type=switch]', 'data-conn')) !== 'live', 5000, 'connection down');
  assert.equal(await page.isDisabled('[data-switch=pump]'), true);
  assert.match((await page.textContent('[data-type=switch] [data-conn-state]')) ?? '', /Offline/);
  await logIn(other, web.server.url, state.email!);
  await other.close();
  await page.reload();
  await page.waitForSelector('[data-type=switch][data-conn=live]');
  assert.equal(await page.isDisabled('[data-switch=pump]'), false);
});

test('on a phone the dashboard fits the screen and widgets still drag', { skip: web.skip }, async () => {
  const phone = await web.browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'light', storageState: await context.storageState() });
  web.cleanups.push(() => phone.close());
  const p = await phone.newPage();
  await p.goto(state.dashboard!);
  await p.waitForSelector('[data-type=switch][data-conn=live]');
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no sideways scrolling (${width})`);
  const order = () => p.evaluate(() => [...document.querySelectorAll<HTMLElement>('[data-widget]')].sort((a, b) => Number(a.style.order) - Number(b.style.order)).map((e) => e.dataset.type));
  assert.deepEqual(await order(), ['gauge', 'switch', 'chart'], 'stacked in reading order');
  for (const type of ['gauge', 'chart']) {
    const b = (await p.locator(`[data-type=${type}]`).boundingBox())!;
    assert.ok(b.width > 300, `${type} takes the phone's width (${b.width})`);
  }
  await shot(p, 'dashboard-phone.png');

  // Drag the chart (last) above the gauge (first): it takes the gauge's place, on the phone and on the desktop.
  await p.click('[data-edit]');
  // A tall phone, so the editor panel above the grid leaves both widgets in view (the mouse acts in the viewport only).
  await p.setViewportSize({ width: 390, height: 2400 });
  const head = (await p.locator('[data-type=chart] .widget-head').boundingBox())!;
  const first = (await p.locator('[data-type=gauge]').boundingBox())!;
  await p.mouse.move(head.x + 30, head.y + 10);
  await p.mouse.down();
  await p.mouse.move(head.x + 30, first.y + 5, { steps: 10 });
  await p.mouse.up();
  await waitFor(async () => (await p.getAttribute('[data-save-status]', 'data-saved')) === 'yes', 3000, 'saved');
  assert.deepEqual(await order(), ['chart', 'gauge', 'switch']);
  const userId = (await web.server.hub.store.getDevice(state.deviceId!))!.userId;
  const saved = (await web.server.hub.dashboards.list(userId))[0].widgets as { type: string; y: number }[];
  assert.equal(saved.find((w) => w.type === 'chart')!.y, 0);
  assert.ok(saved.find((w) => w.type === 'gauge')!.y > 0, 'the gauge moved down');
  await p.reload();
  await p.waitForSelector('[data-widget]');
  assert.deepEqual(await order(), ['chart', 'gauge', 'switch'], 'kept over a reload');
});

test('a chart set to the last week draws aggregated buckets of seeded readings, with a gap, and keeps its range over a reload', { skip: web.skip }, async () => {
  // One reading every half hour for six days, none on the third: one per 30-minute bucket ("auto" over a week).
  const now = Date.now();
  const HOUR = 3_600_000;
  const times = Array.from({ length: 288 }, (_, i) => now - 6 * 24 * HOUR + i * HOUR / 2).filter((_, i) => i < 96 || i >= 144);
  await web.server.hub.store.appendReadings(times.map((time, i) => ({ deviceId: state.deviceId!, sensor: 'soil', value: String(30 + (i % 5)), side: 'device' as const, time })));
  const asked: Record<string, unknown>[] = [];
  const answered: { bucket: number; buckets: { time: number; avg: number; count: number }[] }[] = [];
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => {
      const m = JSON.parse(String(f.payload));
      if (m.method === 'history' && m.sensor === 'soil') asked.push(m);
    });
    ws.on('framereceived', (f) => {
      const m = JSON.parse(String(f.payload));
      if (m.sensor === 'soil' && m.buckets) answered.push(m);
    });
  });

  await page.goto(`${web.server.url}/dashboards`);
  await page.fill('#dash-name', 'Soil');
  await Promise.all([page.waitForURL(/\/dashboards\/\d+$/), page.click('form[action="/dashboards"] button[type=submit]')]);
  await page.selectOption('#w-type', 'chart');
  assert.equal(await page.isVisible('#w-from'), false, 'the dates show only for a range of dates');
  await page.selectOption('#w-range', 'custom');
  assert.equal(await page.isVisible('#w-from'), true);
  await page.fill('#w-sensor', 'soil');
  await page.click('[data-add-form] button[type=submit]');
  assert.match((await page.textContent('[data-add-status]')) ?? '', /Pick both dates/);
  await page.selectOption('#w-range', 'week');
  await addWidget('chart', { title: 'Soil, last week' });

  const expectPoints = times.length + 1; // the buckets, and a null where the third day is missing
  const drawn = async () => {
    await waitFor(async () => Number(await page.getAttribute('[data-type=chart] [data-chart]', 'data-points')) === expectPoints, 5000, 'the week drawn as buckets');
    const req = asked.at(-1)!;
    assert.equal(req.bucket, 'auto');
    assert.ok(Math.abs(Number(req.to) - Number(req.from) - 7 * 24 * HOUR) < 1000, `a week asked for: ${JSON.stringify(req)}`);
    assert.ok(!asked.some((r) => r.limit !== undefined), 'never the latest raw readings');
    const reply = answered.at(-1)!;
    assert.equal(reply.bucket, 30 * 60_000);
    assert.deepEqual(reply.buckets.map((b) => [b.time, b.count, b.avg]), times.map((t, i) => [t - (t % (30 * 60_000)), 1, 30 + (i % 5)]));
    assert.equal(await page.getAttribute('[data-type=chart] [data-chart]', 'data-bucket'), String(30 * 60_000));
  };
  await drawn();
  const userId = (await web.server.hub.store.getDevice(state.deviceId!))!.userId;
  const kept = (await web.server.hub.dashboards.list(userId)).find((d) => d.name === 'Soil')!.widgets as { range?: unknown }[];
  assert.deepEqual(kept.map((w) => w.range), ['week']);

  // A live reading does not land among a week's half-hour averages.
  assert.equal((await state.device!.request({ method: 'put', status: { sensor: 'soil', value: 99 } })).ok, true);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(Number(await page.getAttribute('[data-type=chart] [data-chart]', 'data-points')), expectPoints);

  asked.length = 0;
  answered.length = 0;
  await page.reload();
  await page.waitForSelector('[data-type=chart][data-conn=live]');
  assert.equal(await page.getAttribute('[data-type=chart] [data-chart]', 'data-range'), 'week');
  // The reading of a moment ago is now one bucket more.
  times.push(now);
  await waitFor(async () => Number(await page.getAttribute('[data-type=chart] [data-chart]', 'data-points')) >= expectPoints + 1, 5000, 'drawn again');
  assert.equal(answered.at(-1)!.buckets.length, times.length);
  assert.equal(asked.at(-1)!.bucket, 'auto');
});

test('the hub installs as an app: a valid manifest, a service worker controlling the page, no installability errors, an offline page', { skip: web.skip }, async () => {
  // A profile on disk: Chromium never offers to install from an incognito context (as a fresh one is).
  const profile = tempDir('iotc-pwa-profile-');
  const installable = await chromium.launchPersistentContext(profile.dir, { executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  web.cleanups.push(() => profile.cleanup());
  web.cleanups.push(() => installable.close());
  const p = await installable.newPage();
  await p.goto(`${web.server.url}/login`);
  await p.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await p.reload();
  await waitFor(() => p.evaluate(() => navigator.serviceWorker.controller !== null), 5000, 'the service worker controls the page');
  assert.equal(await p.evaluate(() => navigator.serviceWorker.controller!.scriptURL), `${web.server.url}/sw.js`);

  const manifest = await p.evaluate(async () => (await fetch(document.querySelector<HTMLLinkElement>('link[rel=manifest]')!.href)).json());
  assert.equal(manifest.display, 'standalone');
  assert.equal(manifest.start_url, '/dashboards');
  for (const size of ['192x192', '512x512']) {
    const icon = manifest.icons.find((i: { sizes: string; purpose: string }) => i.sizes === size && i.purpose === 'any');
    assert.ok(icon, `a ${size} icon`);
    const res = await p.request.get(web.server.url + icon.src);
    assert.equal(res.headers()['content-type'], 'image/png');
    const png = await res.body();
    assert.equal(png.readUInt32BE(16), Number(size.split('x')[0]), `${size} icon is that wide`);
  }

  // Chromium's own verdict, as its install button uses it.
  const cdp = await installable.newCDPSession(p);
  const { installabilityErrors } = (await cdp.send('Page.getInstallabilityErrors')) as { installabilityErrors: { errorId: string }[] };
  assert.deepEqual(installabilityErrors.map((e) => e.errorId), []);
  const { errors } = (await cdp.send('Page.getAppManifest')) as { errors: { message: string }[] };
  assert.deepEqual(errors, []);

  // Without a network, a page opens as the cached offline page, and says so.
  await installable.setOffline(true);
  try {
    await p.goto(`${web.server.url}/devices`);
    await p.waitForSelector('[data-offline-page]');
    assert.match((await p.textContent('h1')) ?? '', /offline/i);
    assert.match((await p.textContent('[data-offline-page]')) ?? '', /cannot reach your hub/);
    await shot(p, 'pwa-offline.png');
  } finally {
    await installable.setOffline(false);
  }
  // The hub answers again: the offline page goes to the page that was asked for by itself.
  await p.waitForURL(/\/login\?next=%2Fdevices|\/devices/, { timeout: 10_000 });
  await p.waitForSelector('form[action^="/login"]', { timeout: 10_000 });
});
