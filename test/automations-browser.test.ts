/**
 * The "done when", in real headless Chromium with only the web app: a new user makes
 * "temp < 2 for a while → email me and set heater=true" and "offline for a while → webhook" (durations kept short),
 * sees each fire once and clear once, acknowledges an alert, edits, disables and test-fires rules, reads the
 * delivery log, sees a failing webhook's error in plain words and a notification.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startReceiver, startSmtp } from './automation-helpers.js';
import type { Receiver, Smtp } from './automation-helpers.js';
import { browserHub, signUp } from './browser.js';
import { sleep, TestClient, waitFor } from './helpers.js';

let hook: Receiver;
let smtp: Smtp;
const web = browserHub(async () => {
  hook = await startReceiver();
  smtp = await startSmtp();
  return { rulesTick: 50, webhookAllowPrivate: true, webhookBackoff: 50, smtpUrl: smtp.url };
});
let page: Page;
const email = `grower-${Date.now()}@example.com`;
let device: { id: string; key: string };

before(async () => {
  if (web.skip) return;
  await web.ready();
  // The owner's browser is in another zone than the server: schedules made on the page take the browser's.
  page = await (await web.browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'Asia/Tokyo' })).newPage();
});

after(async () => {
  await hook?.close();
  await smtp?.close();
});

async function addRule(fields: Record<string, string>, checks: string[] = []): Promise<void> {
  for (const [name, value] of Object.entries(fields)) {
    if (name === 'preset') await page.selectOption('#r-preset', value);
    else await page.fill(`#r-${name}`, value);
  }
  for (const c of checks) await page.check(`[data-rule-form] input[name=${c}]`);
  await Promise.all([page.waitForLoadState('load'), page.click('[data-rule-form] button[type=submit]')]);
}

const text = async (sel: string) => (await page.textContent(sel)) ?? '';

test('a new user makes the two rules of the issue with the web app and sees them fire and clear once', { skip: web.skip }, async () => {
  await signUp(page, web.server.url, 'Grower', email);
  await page.goto(`${web.server.url}/devices/new`);
  await page.fill('#f-name', 'Greenhouse');
  await Promise.all([page.waitForSelector('[data-testid=device-id]'), page.click('button[type=submit]:has-text("Create device")')]);
  device = { id: (await text('[data-testid=device-id]')).trim(), key: (await text('[data-testid=device-key]')).trim() };

  await page.goto(`${web.server.url}/devices/${device.id}`);
  await Promise.all([page.waitForURL(/\/rules$/), page.click('[data-rules-link]')]);
  assert.match(await text('main'), /No rules yet/);

  // A mistake is said plainly and the form keeps what was typed.
  await addRule({ name: 'frost', when: 'temp < 2', for: '1s' });
  assert.match(await text('[data-rule-form] .alert-error'), /Choose at least one thing to do/);
  assert.equal(await page.inputValue('#r-when'), 'temp < 2');

  await addRule({ set: 'heater=true' }, ['email']);
  assert.match(await text('.alert-success'), /Rule frost added/);
  await addRule({ name: 'gone', when: 'offline', for: '2s', webhook: hook.url });
  assert.match(await text('.alert-success'), /Rule gone added/);
  assert.equal(await page.locator('[data-rule]').count(), 2);
  assert.match(await text('[data-rule]:nth-child(1)'), /temp < 2 for 1s → set heater=true, email/);
  const secret = (await text('[data-rule]:nth-child(2) [data-secret]')).trim();
  assert.match(secret, /^whsec_/);

  // The device: cold for more than a second → heater on, one email; warm again → one "cleared" email.
  const dev = await TestClient.connect(web.server.wsUrl, device.id, device.key, 'device');
  assert.equal((await dev.request({ method: 'put', status: { sensor: 'temp', value: 1 } })).ok, true);
  const heater = await dev.next((m) => m.sensor === 'heater', 5000);
  assert.equal(heater.value, true);
  await dev.request({ method: 'put', status: { sensor: 'temp', value: 0.5 } });
  await sleep(300);
  await dev.request({ method: 'put', status: { sensor: 'temp', value: 8 } });
  await waitFor(() => (smtp.mails.length >= 2 ? true : null), 5000, 'two emails');
  await sleep(300);
  assert.deepEqual(smtp.mails.map((m) => /frost (\w+)/.exec(m.subject ?? '')?.[1]), ['triggered', 'cleared']);

  // Offline for 2 s → one webhook; the alert is active until the device is back; acknowledged on the page.
  await dev.close();
  const [off] = await hook.waitForHooks(1, 8000);
  assert.equal(off.body.event, 'offline');
  assert.ok(off.signed(secret), 'signed with the secret shown on the page');
  await page.reload();
  const active = page.locator('[data-alerts] tr', { hasText: 'gone' }).first();
  assert.equal((await active.locator('[data-alert-state]').textContent())?.trim(), 'active');
  await Promise.all([page.waitForLoadState('load'), active.locator('button:has-text("Acknowledge")').click()]);
  assert.match(await text('.alert-success'), /Alert acknowledged/);
  assert.equal((await page.locator('[data-alerts] tr', { hasText: 'gone' }).first().locator('[data-alert-state]').textContent())?.trim(), 'acknowledged');
  const back = await TestClient.connect(web.server.wsUrl, device.id, device.key, 'device');
  const hooks = await hook.waitForHooks(2, 5000);
  assert.equal(hooks[1].body.event, 'online');
  await sleep(500);
  assert.equal(hook.hooks.length, 2, 'offline once, online once');
  await back.close();

  await page.reload();
  const states = await page.locator('[data-alerts] [data-alert-state]').allTextContents();
  assert.deepEqual(states.map((s) => s.trim()).sort(), ['cleared', 'cleared']);
  const log = page.locator('[data-deliveries] tbody tr');
  assert.equal(await log.count(), 4, 'two emails and two webhooks in the log');
  assert.deepEqual((await page.locator('[data-deliveries] [data-delivery-status]').allTextContents()).sort(), ['200', '200', '250', '250']);
  assert.deepEqual((await page.locator('[data-deliveries] [data-delivery-state]').allTextContents()), ['delivered', 'delivered', 'delivered', 'delivered']);
});

test('edit, disable, test-fire, a failing webhook\'s error in plain words, and a notification', { skip: web.skip }, async () => {
  await page.goto(`${web.server.url}/devices/${device.id}/rules`);
  const frost = page.locator('[data-rule]', { hasText: 'frost' });
  await Promise.all([page.waitForURL(/\/edit$/), frost.locator('a:has-text("Edit")').click()]);
  assert.equal(await page.inputValue('#r-when'), 'temp < 2');
  assert.equal(await page.inputValue('#r-for'), '1s');
  await page.fill('#r-for', '5m');
  await Promise.all([page.waitForURL(/\/rules\?notice/), page.click('[data-rule-form] button[type=submit]')]);
  assert.match(await text('[data-rule]:nth-child(1)'), /temp < 2 for 5m/);

  await Promise.all([page.waitForLoadState('load'), page.locator('[data-rule]', { hasText: 'frost' }).locator('button:has-text("Disable")').click()]);
  assert.equal((await page.locator('[data-rule]', { hasText: 'frost' }).locator('[data-rule-state]').textContent())?.trim(), 'disabled');

  const broken = await startReceiver();
  try {
    broken.answers.push(404);
    await addRule({ name: 'broken', when: 'door changed', webhook: broken.url }, ['notify']);
    await Promise.all([page.waitForLoadState('load'), page.locator('[data-rule]', { hasText: 'broken' }).locator('button:has-text("Test-fire")').click()]);
    assert.match(await text('.alert-success'), /Test of broken fired/);
    await waitFor(async () => ((await web.server.hub.store.automations.listRules(device.id)).find((r) => r.name === 'broken')?.lastError ? true : null));
    await page.reload();
    assert.match(await text('[data-rule]:has-text("broken") [data-rule-error]'), /webhook to http:\/\/127\.0\.0\.1:\d+\/hook failed after 1 attempt: HTTP 404/);
    assert.match(await text('[data-notifications]'), /door changed: triggered \(test\)/);
    await Promise.all([page.waitForLoadState('load'), page.click('[data-notifications] button:has-text("Mark all read")')]);
    assert.equal(await page.locator('[data-notifications]').count(), 0);
  } finally {
    await broken.close();
  }

  await Promise.all([page.waitForLoadState('load'), page.locator('[data-rule]', { hasText: 'broken' }).locator('button:has-text("Delete")').click()]);
  assert.match(await text('.alert-success'), /Rule broken deleted/);
  assert.equal(await page.locator('[data-rule]').count(), 2);

  // A schedule with no zone typed runs in the owner's (this browser's); a webhook with its own body template.
  await addRule({ name: 'morning', every: '07:00', webhook: hook.url, body: '{"text":"{{name}}: {{event}}"}' });
  assert.match(await text('.alert-success'), /Rule morning added/);
  const morning = (await web.server.hub.store.automations.listRules(device.id)).find((r) => r.name === 'morning')!;
  assert.deepEqual(morning.trigger, { type: 'schedule', cron: '0 7 * * *', tz: 'Asia/Tokyo' });
  assert.deepEqual(morning.actions, [{ type: 'webhook', url: hook.url, method: 'POST', preset: 'plain', body: { text: '{{name}}: {{event}}' } }]);
  assert.match(await text('[data-rule]:has-text("morning")'), /every "0 7 \* \* \*" \(Asia\/Tokyo\)/);
  await Promise.all([page.waitForLoadState('load'), page.locator('[data-rule]', { hasText: 'morning' }).locator('button:has-text("Delete")').click()]);
  assert.equal(await page.locator('[data-rule]').count(), 2);
});

test('another user cannot open the Rules page of someone else\'s device', { skip: web.skip }, async () => {
  const other = await web.browser.newContext();
  const p = await other.newPage();
  await signUp(p, web.server.url, 'Other', `other-${Date.now()}@example.com`);
  const res = await p.goto(`${web.server.url}/devices/${device.id}/rules`);
  assert.equal(res?.status(), 404);
  await other.close();
});
