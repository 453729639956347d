/**
 * Issue 12 in headless Chromium: the device page charts a range of dates picked in the browser's time zone and
 * keeps it in the URL; an image tile and the device page show a camera's latest frame to its owner and to an
 * account it is shared with (the login cookie reads the chunk, through the same authorize as every door), never
 * to another account; a viewer's switch on a dashboard is disabled, and a write forced from it is refused.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumAvailable, launchChromium } from './browser.js';
import { makeDevice, startTestServer, TestClient, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';

const available = chromiumAvailable();
const skip = available ? false : 'Chromium not installed';
const PASSWORD = 'correct horse battery';
/** A 1×1 red PNG: decodable, so a page shows it only if the bytes arrived whole. */
const RED = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
const ZONE = 'America/New_York';

let server: TestServer;
let browser: Browser | null = null;
const contexts: BrowserContext[] = [];
before(async () => {
  if (!available) return;
  browser = await launchChromium();
  server = await startTestServer();
});
after(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await server?.stop();
});

async function pageAs(email: string): Promise<Page> {
  const context = await browser!.newContext({ viewport: { width: 1200, height: 1000 }, timezoneId: ZONE });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(`${server.url}/login`);
  await page.fill('#f-email', email);
  await page.fill('#f-password', PASSWORD);
  await Promise.all([page.waitForURL(/\/devices/), page.click('form[action^="/login"] button[type=submit]')]);
  return page;
}

const signUp = (name: string) => server.hub.accounts.signUp({ name, email: `${name.toLowerCase()}-${Date.now()}@example.com`, password: PASSWORD });
/** The wall-clock time of an instant in ZONE, as a datetime-local input holds it. */
const wallClock = (ms: number) => new Date(ms).toLocaleString('sv-SE', { timeZone: ZONE }).replace(' ', 'T').slice(0, 16);

test('a range of dates, picked in the browser\'s time zone, is charted in buckets and kept in the URL', { skip }, async () => {
  const d = await makeDevice(server, 'Greenhouse');
  const step = 5 * 60_000;
  const now = Date.now();
  const readings = [];
  for (let t = Math.floor((now - 3 * 86_400_000) / step) * step; t < now; t += step) {
    readings.push({ deviceId: d.id, sensor: 'temp', value: t % 2 ? '21.5' : 19, side: 'device' as const, time: t });
  }
  await server.hub.store.appendReadings(readings);
  const page = await pageAs(d.email);
  await page.goto(`${server.url}/devices/${d.id}`);
  await page.waitForSelector('[data-live][data-state=live]');
  await page.waitForSelector('[data-chart=temp]');

  // 08:00 to 20:00 two days ago, New York time (the browser's zone, not the server's).
  const day = wallClock(now - 2 * 86_400_000).slice(0, 10);
  await page.selectOption('[data-range]', 'custom');
  assert.equal(await page.isVisible('[data-range-from]'), true);
  await page.fill('[data-range-from]', `${day}T20:00`);
  await page.fill('[data-range-to]', `${day}T08:00`);
  await page.click('[data-range-apply]');
  assert.match((await page.textContent('[data-range-error]')) ?? '', /start must be before the end/);
  await page.fill('[data-range-from]', `${day}T08:00`);
  await page.fill('[data-range-to]', `${day}T20:00`);
  await page.click('[data-range-apply]');

  const url = new URL(page.url());
  assert.equal(url.searchParams.get('range'), 'custom');
  const from = Date.parse(url.searchParams.get('from')!);
  const to = Date.parse(url.searchParams.get('to')!);
  assert.equal(wallClock(from), `${day}T08:00`, 'the URL holds the instant of 08:00 in New York');
  assert.equal(wallClock(to), `${day}T20:00`);
  assert.equal(to - from, 12 * 3_600_000);
  // One reading every 5 minutes, in buckets of 5 minutes: one point per reading of the range, ends included.
  const inRange = readings.filter((r) => r.time >= from && r.time <= to).length;
  assert.equal(inRange, 145);
  const charted = async () => Number(await page.getAttribute('[data-chart=temp]', 'data-points'));
  await waitFor(async () => (await charted()) === inRange, 5000, `the range charted (${inRange} points)`);
  assert.match((await page.textContent('[data-chart-card=temp] header')) ?? '', /145 buckets of 5 min/);

  // A live reading does not move a range of past dates.
  const device = await TestClient.connect(server.wsUrl, d.id, d.key);
  try {
    assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: 30 } })).ok, true);
    await waitFor(async () => /^30\b/.test(((await page.textContent('[data-sensor=temp] .value')) ?? '').trim()), 5000, 'the live reading shown on its card');
    assert.equal(await charted(), inRange, 'the chart still shows the picked range');
  } finally {
    device.close();
  }

  // A reload (or the link, opened elsewhere) charts the same range.
  await page.reload();
  await page.waitForSelector('[data-live][data-state=live]');
  assert.equal(await page.inputValue('[data-range]'), 'custom');
  assert.equal(await page.inputValue('[data-range-from]'), `${day}T08:00`);
  assert.equal(await page.inputValue('[data-range-to]'), `${day}T20:00`);
  await waitFor(async () => (await charted()) === inRange, 5000, 'the same range after a reload');

  // Back to a preset: the URL says so, and the custom dates are gone from it.
  await page.selectOption('[data-range]', '86400000');
  const preset = new URL(page.url());
  assert.equal(preset.searchParams.get('range'), '86400000');
  assert.equal(preset.searchParams.get('from'), null);
  assert.equal(await page.isVisible('[data-range-from]'), false);
});

test('the image tile and the device page show the latest frame to the owner and a viewer; another account gets none', { skip }, async () => {
  const d = await makeDevice(server, 'Camera');
  const viewer = await signUp('Viewer');
  const stranger = await signUp('Stranger');
  await server.hub.sharing.share(d.userId, d.id, { email: viewer.email, role: 'viewer' });
  const put = await fetch(`${server.url}/api/v1/devices/${d.id}/blobs/cam`, { method: 'PUT', headers: { 'x-device-key': d.key, 'content-type': 'image/png' }, body: new Uint8Array(RED) });
  assert.equal(put.status, 201);
  const { seq } = await put.json();

  const tile = { id: 'cam', type: 'image', x: 0, y: 0, w: 4, h: 3, device: d.id, sensor: 'cam', title: 'Camera' };
  const frameShown = (page: Page, sel: string) =>
    page.waitForFunction((s) => (document.querySelector(s) as HTMLImageElement | null)?.naturalWidth === 1, sel, { timeout: 5000 });

  for (const [who, userId, email] of [['owner', d.userId, d.email], ['viewer', viewer.id, viewer.email]] as const) {
    const board = await server.hub.dashboards.create(userId, { name: `Camera (${who})`, widgets: [tile] });
    const page = await pageAs(email);
    await page.goto(`${server.url}/dashboards/${board.id}`);
    await frameShown(page, '[data-type=image] img.dash-image');
    assert.equal(await page.isVisible('[data-type=image] .dash-placeholder'), false, `${who}: the frame, not the placeholder`);
    await page.goto(`${server.url}/devices/${d.id}`);
    await frameShown(page, 'img.blob-image');
    // The chunk by its seq, and the listing, read with the login cookie too.
    assert.equal((await page.request.get(`${server.url}/api/v1/devices/${d.id}/blobs/cam/${seq}`)).status(), 200);
    assert.equal((await page.request.get(`${server.url}/api/v1/devices/${d.id}/blobs/cam/history`)).status(), 200);
  }

  const other = await pageAs(stranger.email);
  for (const path of ['blobs/cam', `blobs/cam/${seq}`, 'blobs/cam/history', 'blobs']) {
    const res = await other.request.get(`${server.url}/api/v1/devices/${d.id}/${path}`);
    assert.equal(res.status(), 404, `another account: ${path}`);
    assert.equal((await res.json()).error, 'E_NOT_FOUND');
  }
  // The cookie opens reads only: a write with it is still refused.
  const write = await other.request.put(`${server.url}/api/v1/devices/${d.id}/blobs/cam`, { headers: { 'content-type': 'image/png' }, data: RED });
  assert.equal(write.status(), 401);
  const anonymous = await fetch(`${server.url}/api/v1/devices/${d.id}/blobs/cam`);
  assert.equal(anonymous.status, 401, 'no cookie, no key, no token');
  // A stranger's dashboard cannot even hold the tile.
  await assert.rejects(server.hub.dashboards.create(stranger.id, { name: 'Peek', widgets: [tile] }), /no device/);
});

test('a viewer\'s switch on a dashboard is disabled, and a write forced from it is refused', { skip }, async () => {
  const d = await makeDevice(server, 'Pump');
  const viewer = await signUp('Neighbour');
  await server.hub.sharing.share(d.userId, d.id, { email: viewer.email, role: 'viewer' });
  const device = await TestClient.connect(server.wsUrl, d.id, d.key);
  try {
    assert.equal((await device.request({ method: 'put', status: { sensor: 'pump', value: false } })).ok, true);
    const board = await server.hub.dashboards.create(viewer.id, { name: 'Pump', widgets: [{ id: 'sw', type: 'switch', x: 0, y: 0, w: 3, h: 2, device: d.id, sensor: 'pump', title: 'Pump' }] });
    const page = await pageAs(viewer.email);
    await page.goto(`${server.url}/dashboards/${board.id}`);
    await page.waitForSelector('[data-type=switch][data-conn=live]');
    assert.equal(await page.isDisabled('[data-switch=pump]'), true, 'disabled for a viewer');
    assert.equal(await page.getAttribute('[data-switch=pump]', 'aria-disabled'), 'true');
    assert.match((await page.textContent('[data-type=switch] [data-conn-state]')) ?? '', /Read only/);

    // Enabled by hand (as a page could be tampered with): the hub refuses the write, and the device gets nothing.
    await page.evaluate(() => {
      const b = document.querySelector('[data-switch=pump]') as HTMLButtonElement;
      b.disabled = false;
      b.click();
    });
    await waitFor(async () => /viewer may not/i.test((await page.textContent('[data-type=switch] .widget-error')) ?? ''), 5000, 'the refusal is shown');
    await assert.rejects(device.next((m) => m.sensor === 'pump', 1000), /no matching message/);
    const stored = await server.hub.store.latest(d.id, 'pump');
    assert.deepEqual([stored?.value, stored?.side], [false, 'device'], 'nothing was written');
  } finally {
    device.close();
  }
});
