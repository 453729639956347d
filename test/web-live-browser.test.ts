/**
 * The pages' shared live socket (live.js) where it stops for good, in real headless Chromium: a deleted device, and
 * a login that ended. The device page says which, with a way on; a dashboard's widgets go offline and stay so.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { browserHub, logIn } from './browser.js';
import { makeDevice, sleep, TestClient } from './helpers.js';

const web = browserHub();

async function signedIn(): Promise<{ page: Page; device: Awaited<ReturnType<typeof makeDevice>> }> {
  const device = await makeDevice(web.server, 'Lamp');
  await web.server.hub.relay.put(device.id, 'device', [{ sensor: 'led', value: false }]);
  const context = await web.browser.newContext();
  web.cleanups.push(() => context.close());
  const page = await context.newPage();
  await logIn(page, web.server.url, device.email);
  return { page, device };
}

test('a device deleted while its page is open: the page goes offline and says so, with the way back', { skip: web.skip }, async () => {
  const { page, device } = await signedIn();
  await page.goto(`${web.server.url}/devices/${device.id}`);
  await page.waitForSelector('[data-live][data-state=live]');
  assert.equal(await page.isHidden('[data-live-error]'), true);
  await web.server.hub.accounts.deleteDevice(device.userId, device.id);
  await page.waitForSelector('[data-live][data-state=off]');
  assert.equal((await page.textContent('[data-live]'))?.trim(), 'Offline');
  assert.match((await page.textContent('[data-live-error]')) ?? '', /This device was deleted\./);
  assert.equal(await page.getAttribute('[data-live-error] a', 'href'), '/devices');
  assert.equal(await page.isDisabled('[data-switch=led]'), true);
});

test('a login that ended: the device page stops retrying and asks to log in again; a dashboard goes offline', { skip: web.skip }, async () => {
  const { page, device } = await signedIn();
  const user = (await web.server.hub.store.getUserByEmail(device.email))!;
  const board = await web.server.hub.dashboards.create(user.id, { name: 'Lamp board', widgets: [{ id: 'sw', type: 'switch', x: 0, y: 0, w: 3, h: 2, device: device.id, sensor: 'led' }] });
  await page.goto(`${web.server.url}/devices/${device.id}`);
  await page.waitForSelector('[data-live][data-state=live]');
  const dashboard = await page.context().newPage();
  await dashboard.goto(`${web.server.url}/dashboards/${board.id}`);
  await dashboard.waitForSelector('[data-widget=sw][data-conn=live]');

  // Writes work while the login lasts: the widget's switch reaches the device through the shared socket.
  const dev = await TestClient.connect(web.server.wsUrl, device.id, device.key, 'device');
  web.cleanups.push(() => dev.close());
  await dashboard.click('[data-switch=led]');
  assert.equal((await dev.next((m) => m.sensor === 'led')).value, true);

  const other = await page.context().newPage();
  await other.goto(`${web.server.url}/devices`);
  await Promise.all([other.waitForURL(/\/login/), other.click('form.logout button')]);
  // Each page retries (the hub refuses the ended login) and gives up after the third refusal in a row.
  await page.waitForSelector('[data-live][data-state=off]', { timeout: 15_000 });
  assert.match((await page.textContent('[data-live-error]')) ?? '', /Your session has ended, so live updates stopped\./);
  assert.equal(await page.getAttribute('[data-live-error] a', 'href'), `/login?next=${encodeURIComponent(`/devices/${device.id}`)}`);
  await dashboard.waitForSelector('[data-widget=sw][data-conn=off]', { timeout: 15_000 });
  assert.equal(await dashboard.isDisabled('[data-switch=led]'), true);
  assert.match((await dashboard.textContent('[data-widget=sw] [data-conn-state]')) ?? '', /Offline/);
  // Stopped for good: nothing goes back to retrying.
  await sleep(1500);
  assert.equal(await page.getAttribute('[data-live]', 'data-state'), 'off');
  assert.equal(await dashboard.getAttribute('[data-widget=sw]', 'data-conn'), 'off');
});
