/**
 * Editing a dashboard widget after it was added, in real headless Chromium: a chart of the last day becomes the
 * last week in place (same id, place and size), saved at once, redrawn with that span's buckets and kept over a
 * reload; bad ranges are refused in the form and change nothing on the hub; another account, even one the device
 * is shared with as viewer, gets no edit control and cannot change the dashboard.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { browserHub, signUp } from './browser.js';
import { waitFor } from './helpers.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const web = browserHub();
let context: BrowserContext;
let page: Page;
/** The `history` requests the page sent for the seeded sensor, newest last. */
const asked: { from?: number; to?: number; bucket?: unknown; limit?: number }[] = [];
const state: { email?: string; userId?: number; deviceId?: string; dashboard?: string; dashboardId?: number; chartId?: string } = {};

before(async () => {
  if (web.skip) return;
  await web.ready();
  context = await web.browser.newContext({ viewport: { width: 1280, height: 1500 }, colorScheme: 'light' });
  web.cleanups.push(() => context.close());
  page = await context.newPage();
  page.on('websocket', (ws) =>
    ws.on('framesent', (f) => {
      const m = JSON.parse(String(f.payload));
      if (m.method === 'history' && m.sensor === 'soil') asked.push(m);
    }),
  );
});

type Spec = Record<string, unknown> & { id: string };
const savedWidgets = async () => (await web.server.hub.dashboards.get(state.userId!, state.dashboardId!)).widgets as Spec[];
const chartRange = () => page.getAttribute('[data-type=chart] [data-chart]', 'data-range');
const span = (r: { from?: number; to?: number }) => Number(r.to) - Number(r.from);

async function openEditor(): Promise<void> {
  await page.click('[data-type=chart] [data-widget-edit]');
  await page.waitForSelector('[data-add-form][data-mode=edit]');
}

test('a chart added with the last day is edited to the last week: same widget, saved at once, redrawn from that span, kept over a reload', { skip: web.skip }, async () => {
  state.email = `edit-${Date.now()}@example.com`;
  await signUp(page, web.server.url, 'Edith Editor', state.email);
  state.userId = (await web.server.hub.store.getUserByEmail(state.email))!.id;
  const made = await web.server.hub.accounts.createDevice(state.userId, 'Garden');
  state.deviceId = made.id;
  const now = Date.now();
  await web.server.hub.store.appendReadings(Array.from({ length: 8 * 24 }, (_, i) => ({ deviceId: made.id, sensor: 'soil', value: 30 + (i % 7), side: 'device' as const, time: now - 8 * DAY + i * HOUR })));

  await page.goto(`${web.server.url}/dashboards`);
  await page.fill('#dash-name', 'Garden');
  await Promise.all([page.waitForURL(/\/dashboards\/\d+$/), page.click('form[action="/dashboards"] button[type=submit]')]);
  state.dashboard = page.url();
  state.dashboardId = Number(/(\d+)$/.exec(state.dashboard)![1]);
  await page.selectOption('#w-type', 'chart');
  await page.fill('#w-sensor', 'soil');
  await page.fill('#w-title', 'Soil');
  await page.selectOption('#w-range', 'day');
  await page.click('[data-add-form] button[type=submit]');
  await page.waitForSelector('[data-type=chart][data-conn=live]');
  await waitFor(async () => (await savedWidgets()).length === 1 && asked.some((r) => Math.abs(span(r) - DAY) < 1000), 5000, 'the day charted and saved');
  const added = (await savedWidgets())[0];
  state.chartId = added.id;
  assert.equal(added.range, 'day');

  // The form opens with the widget's settings; its type stays.
  await openEditor();
  assert.equal(await page.textContent('[data-form-heading]'), 'Edit widget');
  assert.equal(await page.inputValue('#w-type'), 'chart');
  assert.equal(await page.isDisabled('#w-type'), true);
  assert.equal(await page.inputValue('#w-sensor'), 'soil');
  assert.equal(await page.inputValue('#w-title'), 'Soil');
  assert.equal(await page.inputValue('#w-range'), 'day');
  assert.equal(await page.inputValue('#w-device'), made.id);

  asked.length = 0;
  await page.selectOption('#w-range', 'week');
  await page.fill('#w-title', 'Soil, this week');
  await page.click('[data-add-form] button[type=submit]');
  await waitFor(async () => /Saved Soil, this week/.test((await page.textContent('[data-add-status]')) ?? ''), 5000, 'the form says saved');
  // Saved on the hub at once, the same widget in the same place and size.
  const edited = (await savedWidgets())[0];
  assert.deepEqual(edited, { ...added, range: 'week', title: 'Soil, this week' });
  // Redrawn: the week's buckets asked for, never the latest raw readings.
  assert.equal(await chartRange(), 'week');
  assert.equal(await page.textContent('[data-type=chart] h3'), 'Soil, this week');
  assert.equal(await page.locator('[data-widget]').count(), 1);
  await waitFor(() => asked.some((r) => Math.abs(span(r) - 7 * DAY) < 1000), 5000, 'the week asked for');
  assert.ok(asked.every((r) => r.bucket === 'auto' && r.limit === undefined), JSON.stringify(asked));
  await waitFor(async () => Number(await page.getAttribute('[data-type=chart] [data-chart]', 'data-points')) >= 7 * 24 - 2, 5000, 'the week drawn');
  // Back to adding.
  assert.equal(await page.getAttribute('[data-add-form]', 'data-mode'), 'add');
  assert.equal(await page.textContent('[data-add-form] button[type=submit]'), 'Add widget');

  asked.length = 0;
  await page.reload();
  await page.waitForSelector('[data-type=chart][data-conn=live]');
  assert.equal(await chartRange(), 'week');
  await waitFor(() => asked.length > 0, 5000, 'history asked for after the reload');
  assert.ok(Math.abs(span(asked.at(-1)!) - 7 * DAY) < 1000, `a week asked for: ${JSON.stringify(asked.at(-1))}`);
});

test('a bad range in the edit form is said there and changes nothing on the hub', { skip: web.skip }, async () => {
  await page.goto(state.dashboard!);
  await page.click('[data-edit]');
  const before = await savedWidgets();
  await openEditor();
  await page.selectOption('#w-range', 'custom');
  assert.equal(await page.isVisible('#w-from'), true);

  // The end before the start: caught in the page.
  await page.fill('#w-from', '2026-03-02T10:00');
  await page.fill('#w-to', '2026-03-01T10:00');
  await page.click('[data-add-form] button[type=submit]');
  assert.match((await page.textContent('[data-add-status]')) ?? '', /The start must be before the end/);

  // Dates before 1970: the hub's schema refuses them, and the form names what is wrong.
  await page.fill('#w-from', '1960-01-01T00:00');
  await page.fill('#w-to', '1961-01-01T00:00');
  await page.click('[data-add-form] button[type=submit]');
  await waitFor(async () => /Not saved: range\.from: range\.from must be 0 or more/.test((await page.textContent('[data-add-status]')) ?? ''), 5000, 'the refusal in the form');
  assert.equal(await page.isHidden('[data-save-error]'), true, 'said in the form, not in the page banner');
  assert.equal(await page.getAttribute('[data-add-form]', 'data-mode'), 'edit', 'still editing, to fix it');

  assert.deepEqual(await savedWidgets(), before, 'nothing changed on the hub');
  assert.equal(await chartRange(), 'week', 'the widget drawn as it was');
  await page.click('[data-edit-cancel]');
  assert.equal(await page.getAttribute('[data-add-form]', 'data-mode'), 'add');
  await page.reload();
  await page.waitForSelector('[data-type=chart]');
  assert.equal(await chartRange(), 'week');
});

test('another account, even one the device is shared with as viewer, gets no edit control and cannot change the dashboard', { skip: web.skip }, async () => {
  const viewerContext = await web.browser.newContext({ viewport: { width: 1280, height: 1000 } });
  web.cleanups.push(() => viewerContext.close());
  const viewer = await viewerContext.newPage();
  const email = `viewer-${Date.now()}@example.com`;
  await signUp(viewer, web.server.url, 'Vera Viewer', email);
  await web.server.hub.sharing.share(state.userId!, state.deviceId!, { email, role: 'viewer' });
  const before = await savedWidgets();

  const res = await viewer.goto(state.dashboard!);
  assert.equal(res!.status(), 404);
  assert.equal(await viewer.locator('[data-widget-edit], [data-edit], [data-add-form]').count(), 0);

  // Her own session and CSRF token, the owner's dashboard: refused as not found, nothing changed.
  const csrf = await viewer.getAttribute('input[name=_csrf]', 'value');
  const changed = before.map((w) => ({ ...w, range: 'year', title: 'Mine now' }));
  const put = await viewer.evaluate(
    async ({ url, token, widgets }) => {
      const r = await fetch(url, { method: 'PUT', headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': token! }, body: JSON.stringify({ widgets }) });
      return { status: r.status, body: await r.json() };
    },
    { url: `${state.dashboard}/data.json`, token: csrf, widgets: changed },
  );
  assert.equal(put.status, 404, JSON.stringify(put.body));
  assert.equal(put.body.error, 'E_NOT_FOUND');
  assert.deepEqual(await savedWidgets(), before);
});
