/**
 * The device page in real headless Chromium: numeric strings (what the original clients send) chart as numbers,
 * and the "Call a method" form shows the device's answer, a timeout, an offline device, and a persistent call's
 * answer when the device comes back.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { browserHub, signUp } from './browser.js';
import { sleep, TestClient, waitFor } from './helpers.js';
import type { Message } from './helpers.js';

const web = browserHub();
const skip = web.skip;
let page: Page;
let device: { id: string; key: string };

before(async () => {
  if (skip) return;
  await web.ready();
  page = await (await web.browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const email = `caller-${Date.now()}@example.com`;
  await signUp(page, web.server.url, 'Caller', email);
  const user = await web.server.hub.accounts.userByEmail(email);
  device = await web.server.hub.accounts.createDevice(user.id, 'Pump');
});

const isCall = (m: Message) => typeof m.call === 'string' && 'sensor' in m;
const status = () => page.textContent('[data-call-status]');

async function call(method: string, opts: { params?: string; timeout?: string; persistent?: boolean } = {}): Promise<void> {
  await page.fill('#call-method', method);
  await page.fill('#call-params', opts.params ?? '');
  await page.fill('#call-timeout', opts.timeout ?? '10');
  await page.setChecked('[data-call-form] input[name=persistent]', opts.persistent ?? false);
  await page.click('[data-call-form] button[type=submit]');
}

test('numeric strings chart as numbers and stay strings in the card', { skip }, async () => {
  const dev = await TestClient.connect(web.server.wsUrl, device.id, device.key, 'device');
  try {
    for (const v of ['22', '22.5', '23']) await dev.request({ method: 'put', status: { sensor: 'temp', value: v } });
    await dev.request({ method: 'put', status: { sensor: 'note', value: '12 apples' } });
    await page.goto(`${web.server.url}/devices/${device.id}`);
    await page.waitForSelector('[data-live][data-state=live]');
    await waitFor(async () => Number(await page.getAttribute('[data-chart=temp]', 'data-points')) === 3, 5000, 'three points from history');
    dev.send({ method: 'put', status: { sensor: 'temp', value: '24' } });
    await waitFor(async () => Number(await page.getAttribute('[data-chart=temp]', 'data-points')) === 4, 5000, 'a live point');
    assert.equal(await page.textContent('[data-sensor=temp] .value'), '24');
    assert.equal(await page.locator('[data-chart=note]').count(), 0, 'text is not charted');
  } finally {
    await dev.close();
  }
});

test('the call form shows the answer, a device error and a timeout plainly', { skip }, async () => {
  const dev = await TestClient.connect(web.server.wsUrl, device.id, device.key, 'device');
  try {
    await page.goto(`${web.server.url}/devices/${device.id}`);
    await page.waitForSelector('[data-live][data-state=live]');
    await call('reboot', { params: '{"delay":1}' });
    const frame = await dev.next(isCall);
    assert.deepEqual([frame.sensor, frame.value], ['reboot', { delay: 1 }]);
    dev.send({ method: 'reply', call: frame.call, result: { rebooting: true } });
    await page.waitForSelector('[data-call-status][data-outcome=ok]:has-text("Answered")');
    assert.deepEqual(JSON.parse((await page.textContent('[data-call-result]'))!), { rebooting: true });

    await call('pump', { params: '3' });
    const second = await dev.next(isCall);
    dev.send({ method: 'reply', call: second.call, error: 'tank empty' });
    await waitFor(async () => (await status()) === 'The device answered with an error: tank empty', 5000, 'device error shown');
    assert.equal(await page.isVisible('[data-call-result]'), false);

    await call('slow', { timeout: '0.3' });
    await waitFor(async () => (await status()) === 'No answer: the device did not answer within 0.3 s.', 5000, 'timeout shown');

    await call('x', { params: '{oops' });
    assert.match((await status())!, /Params must be JSON/);
    assert.equal(await page.locator('[data-sensor="$call"]').count(), 0, 'no card for call frames');
  } finally {
    await dev.close();
  }
});

test('an offline device is said plainly; a persistent call waits for it and its answer appears when it comes back', { skip }, async () => {
  await page.goto(`${web.server.url}/devices/${device.id}`);
  await page.waitForSelector('[data-live][data-state=live]');
  await sleep(1500); // the previous test's device connection has left the presence table
  await call('water', { timeout: '2' });
  await waitFor(async () => /offline/.test((await status()) ?? ''), 5000, `offline shown; got ${await status()}`);

  await call('water', { params: '{"ml":200}', timeout: '600', persistent: true });
  await waitFor(async () => /^Queued/.test((await status()) ?? ''), 5000, 'queued shown');
  const dev = await TestClient.connect(web.server.wsUrl, device.id, device.key, 'device');
  try {
    const frame = await dev.next(isCall);
    assert.deepEqual([frame.sensor, frame.value], ['water', { ml: 200 }]);
    dev.send({ method: 'reply', call: frame.call, result: 'watered' });
    await page.waitForSelector('[data-call-status][data-outcome=ok]:has-text("Answered")');
    assert.equal(JSON.parse((await page.textContent('[data-call-result]'))!), 'watered');
  } finally {
    await dev.close();
  }
});
