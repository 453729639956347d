/** Issue 12 in Chromium: an operator flips a switch from their own account and the device receives it; a viewer's switch is disabled; the range picker charts buckets. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { browserHub, logIn } from './browser.js';
import { makeDevice, TestClient, waitFor } from './helpers.js';

const web = browserHub();

async function pageAs(email: string) {
  const context = await web.browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  await logIn(page, web.server.url, email);
  return { page, context };
}

test('operator flips the switch and the device receives it; the viewer\'s switch is disabled; the range picker draws buckets', { skip: web.skip }, async () => {
  const server = web.server;
  const d = await makeDevice(server, 'Greenhouse');
  const partner = await server.hub.accounts.signUp({ name: 'Partner', email: `partner-${Date.now()}@example.com`, password: 'correct horse battery' });
  const neighbour = await server.hub.accounts.signUp({ name: 'Neighbour', email: `neighbour-${Date.now()}@example.com`, password: 'correct horse battery' });
  await server.hub.sharing.share(d.userId, d.id, { email: partner.email, role: 'operator' });
  await server.hub.sharing.share(d.userId, d.id, { email: neighbour.email, role: 'viewer' });
  // A day of readings, every 10 minutes, with a gap of 4 hours; numbers sent as strings chart too.
  const now = Date.now();
  const readings = [];
  for (let t = now - 86_400_000; t < now; t += 600_000) {
    if (t > now - 10 * 3_600_000 && t < now - 6 * 3_600_000) continue;
    readings.push({ deviceId: d.id, sensor: 'temp', value: String(20 + (t % 7)), side: 'device' as const, time: t });
  }
  await server.hub.store.appendReadings(readings);
  const device = await TestClient.connect(server.wsUrl, d.id, d.key);
  try {
    assert.equal((await device.request({ method: 'put', status: { sensor: 'pump', value: false } })).ok, true);

    const op = await pageAs(partner.email);
    await op.page.goto(`${server.url}/devices/${d.id}`);
    await op.page.waitForSelector('[data-live][data-state=live]');
    await waitFor(async () => (await op.page.getAttribute('[data-switch=pump]', 'disabled')) === null, 5000, 'operator switch enabled');
    await op.page.click('[data-switch=pump]');
    const got = await device.next((m) => m.sensor === 'pump');
    assert.deepEqual([got.value, got.write], [true, 'client']);

    // The range picker: the last day in buckets, the 4-hour gap drawn as a gap (a null point).
    await op.page.selectOption('[data-range]', '86400000');
    await waitFor(async () => /buckets of/.test((await op.page.textContent('[data-chart-card=temp] header')) ?? ''), 5000, 'bucketed chart');
    const points = Number(await op.page.getAttribute('[data-chart=temp]', 'data-points'));
    assert.ok(points > 100 && points < 600, `about one point per bucket: ${points}`);
    await op.context.close();

    const viewer = await pageAs(neighbour.email);
    await viewer.page.goto(`${server.url}/devices/${d.id}`);
    await viewer.page.waitForSelector('[data-live][data-state=live]');
    await viewer.page.waitForSelector('[data-switch=pump]');
    assert.equal(await viewer.page.isDisabled('[data-switch=pump]'), true, 'the viewer\'s switch is disabled');
    assert.equal(await viewer.page.isDisabled('[data-send-form] button[type=submit]'), true);
    assert.match((await viewer.page.textContent('[data-shared]')) ?? '', /viewer/);
    await viewer.context.close();
  } finally {
    device.close();
  }
});
