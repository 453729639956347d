/**
 * Automations end to end on a real server: rules evaluated from committed readings, alerts raised once and cleared
 * once, webhooks to a real receiver (signature checked), retries that survive a restart, email to a real SMTP
 * server, schedules on an injectable clock, the loop guard, SSRF refusals and per-user limits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AutomationEngine } from '../src/automations/engine.js';
import type { Clock } from '../src/automations/engine.js';
import { Rules } from '../src/automations/rules.js';
import { guardedLookup, isPrivateAddress } from '../src/automations/ssrf.js';
import { IotcError } from '../src/core/errors.js';
import { createLogger } from '../src/log.js';
import { startReceiver, startSmtp } from './automation-helpers.js';
import type { Receiver, Smtp } from './automation-helpers.js';
import { makeDevice, sleep, startTestServer, testConfig, TestClient, tempDir, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';
import { SqliteStore } from '../src/store/sqlite.js';

const FAST = { rulesTick: 50, webhookAllowPrivate: true, webhookBackoff: 50, webhookTimeout: 2000 } as const;

const rejectsCode = (p: Promise<unknown>, code: string, pattern?: RegExp) =>
  assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof IotcError, String(err));
    assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });

describe('rules on a running hub', () => {
  let server: TestServer;
  let hook: Receiver;
  let smtp: Smtp;
  before(async () => {
    hook = await startReceiver();
    smtp = await startSmtp();
    server = await startTestServer({ ...FAST, smtpUrl: smtp.url, smtpFrom: 'Hub <hub@example.com>' });
  });
  after(async () => {
    await server.stop();
    await hook.close();
    await smtp.close();
  });

  test('"temp < 2 for 300ms → email me, set heater=true, webhook": fires once, clears once, signed', async () => {
    hook.hooks.length = 0;
    const d = await makeDevice(server);
    const rule = await server.hub.rules.create(d.userId, d.id, {
      name: 'frost', trigger: { type: 'threshold', sensor: 'temp', op: '<', value: 2, forMs: '300ms' },
      actions: [{ type: 'email', to: d.email }, { type: 'set', sensor: 'heater', value: true }, { type: 'webhook', url: hook.url }],
    });
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    try {
      assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: 1.5 } })).ok, true);
      await sleep(150);
      assert.equal(hook.hooks.length, 0, 'not before the condition held for 300ms');
      for (const v of [1, 0.5, 1.9]) assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: v } })).ok, true);
      const heater = await device.next((m) => m.sensor === 'heater', 3000);
      assert.deepEqual([heater.value, heater.write], [true, 'client']);
      const [fired] = await hook.waitForHooks(1);
      assert.ok(fired.signed(rule.secret), 'signature checks out with the rule secret');
      assert.ok(!fired.signed('whsec_wrong'), 'and not with another secret');
      assert.equal(fired.body.event, 'triggered');
      assert.equal(fired.body.device, d.id);
      assert.equal(fired.body.rule, rule.id);
      assert.equal(fired.body.sensor, 'temp');
      assert.equal(typeof fired.body.value, 'number');
      assert.equal(typeof fired.body.time, 'number');
      // Still cold: no storm.
      for (const v of [1, 0]) await device.request({ method: 'put', status: { sensor: 'temp', value: v } });
      await sleep(500);
      assert.equal(hook.hooks.length, 1, 'raised once while the condition keeps holding');
      await device.request({ method: 'put', status: { sensor: 'temp', value: 5 } });
      await device.request({ method: 'put', status: { sensor: 'temp', value: 6 } });
      const hooks = await hook.waitForHooks(2);
      assert.equal(hooks[1].body.event, 'cleared');
      assert.equal(hooks[1].body.value, 5);
      await sleep(300);
      assert.equal(hook.hooks.length, 2, 'cleared once');
      const mails = await waitFor(() => (smtp.mails.filter((m) => m.subject?.includes(rule.id) || m.text?.includes(rule.id)).length >= 2 ? smtp.mails : null), 5000, 'two emails');
      const mine = mails!.filter((m) => m.text?.includes(rule.id));
      assert.match(mine[0].subject ?? '', /frost triggered/);
      assert.match(mine[1].subject ?? '', /frost cleared/);
      assert.equal((mine[0].to as { text: string }).text, d.email);
      const alerts = await server.hub.rules.alerts(d.userId, d.id);
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0].state, 'cleared');
      const log = await server.hub.rules.deliveries(d.userId, d.id);
      assert.equal(log.filter((x) => x.kind === 'webhook' && x.state === 'delivered' && x.lastStatus === 200).length, 2);
      assert.equal(log.filter((x) => x.kind === 'email' && x.state === 'delivered' && x.lastStatus === 250).length, 2);
      const [after] = await server.hub.rules.list(d.userId, d.id);
      assert.equal(after.lastError, null);
      assert.ok(after.lastRunAt);
    } finally {
      await device.close();
    }
  });

  test('a condition broken before its `for` ran out raises nothing', async () => {
    const h = await startReceiver();
    try {
      const d = await makeDevice(server);
      await server.hub.rules.create(d.userId, d.id, { trigger: { type: 'threshold', sensor: 't', op: '>', value: 30, forMs: 300 }, actions: [{ type: 'webhook', url: h.url }] });
      const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
      await device.request({ method: 'put', status: { sensor: 't', value: 31 } });
      await sleep(100);
      await device.request({ method: 'put', status: { sensor: 't', value: 20 } });
      await sleep(600);
      assert.equal(h.hooks.length, 0);
      await device.close();
    } finally {
      await h.close();
    }
  });

  test('"offline for 300ms → webhook" fires once when the device leaves, "online" once when it is back', async () => {
    const h = await startReceiver();
    try {
      const d = await makeDevice(server);
      const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
      const rule = await server.hub.rules.create(d.userId, d.id, { trigger: { type: 'offline', forMs: '300ms' }, actions: [{ type: 'webhook', url: h.url }] });
      await sleep(1500);
      assert.equal(h.hooks.length, 0, 'online: nothing');
      await device.close();
      const [off] = await h.waitForHooks(1, 5000);
      assert.equal(off.body.event, 'offline');
      assert.equal(off.body.device, d.id);
      assert.ok(off.signed(rule.secret));
      await sleep(800);
      assert.equal(h.hooks.length, 1, 'once');
      const again = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
      const hooks = await h.waitForHooks(2, 5000);
      assert.equal(hooks[1].body.event, 'online');
      await again.close();
    } finally {
      await h.close();
    }
  });

  test('a rule\'s own writes never trigger rules: two "changed" rules that would ping-pong fire once each', async () => {
    const d = await makeDevice(server);
    await server.hub.rules.create(d.userId, d.id, { trigger: { type: 'changed', sensor: 'x' }, actions: [{ type: 'set', sensor: 'x', value: 1 }] });
    await server.hub.rules.create(d.userId, d.id, { trigger: { type: 'changed', sensor: 'x' }, actions: [{ type: 'set', sensor: 'x', value: 2 }] });
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    await app.request({ method: 'put', status: { sensor: 'x', value: 0 } });
    await app.request({ method: 'put', status: { sensor: 'x', value: 7 } });
    await sleep(800);
    await server.hub.automations.settled();
    const history = await server.hub.relay.history(d.id, 'x', { limit: 100 });
    assert.deepEqual(history.map((r) => r.value).sort(), [0, 1, 2, 7], 'the app\'s two writes and one write per rule, nothing more');
    await app.close();
  });

  test('failed webhooks are retried with backoff and the log keeps the status codes', async () => {
    const h = await startReceiver();
    try {
      h.answers.push(500, 503);
      const d = await makeDevice(server);
      const rule = await server.hub.rules.create(d.userId, d.id, { trigger: { type: 'threshold', sensor: 'v', op: '==', value: 'on' }, actions: [{ type: 'webhook', url: h.url }] });
      const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
      await device.request({ method: 'put', status: { sensor: 'v', value: 'on' } });
      const [got] = await h.waitForHooks(1, 5000);
      assert.ok(got.signed(rule.secret));
      const [entry] = (await waitFor(async () => {
        const log = await server.hub.rules.deliveries(d.userId, d.id);
        return log[0]?.state === 'delivered' ? log : null;
      }))!;
      assert.equal(entry.attempts, 3);
      assert.equal(entry.lastStatus, 200);
      await device.close();
    } finally {
      await h.close();
    }
  });

  test('a webhook answering 404 is not retried; the failure is shown plainly as the rule\'s last run', async () => {
    const h = await startReceiver();
    try {
      h.answers.push(404);
      const d = await makeDevice(server);
      const rule = await server.hub.rules.create(d.userId, d.id, { trigger: { type: 'changed', sensor: 's' }, actions: [{ type: 'webhook', url: h.url }] });
      const r = await server.hub.rules.testFire(d.userId, rule.id);
      assert.equal(r.error, null, 'queued fine');
      const failed = await waitFor(async () => {
        const got = await server.hub.rules.get(d.userId, rule.id);
        return got.lastError ? got : null;
      });
      assert.match(failed!.lastError!, /webhook to http:\/\/127\.0\.0\.1:\d+\/hook failed after 1 attempt: HTTP 404/);
      const [entry] = await server.hub.rules.deliveries(d.userId, d.id);
      assert.deepEqual([entry.state, entry.lastStatus, entry.attempts], ['failed', 404, 1]);
    } finally {
      await h.close();
    }
  });

  test('only the owner sees or changes a rule; limits say which setting', async () => {
    const a = await makeDevice(server);
    const b = await makeDevice(server);
    const rule = await server.hub.rules.create(a.userId, a.id, { trigger: { type: 'online' }, actions: [{ type: 'notify' }] });
    await rejectsCode(server.hub.rules.get(b.userId, rule.id), 'E_NOT_FOUND');
    await rejectsCode(server.hub.rules.delete(b.userId, rule.id), 'E_NOT_FOUND');
    await rejectsCode(server.hub.rules.create(b.userId, a.id, { trigger: { type: 'online' }, actions: [{ type: 'notify' }] }), 'E_NOT_FOUND');
    await rejectsCode(server.hub.rules.create(a.userId, a.id, { trigger: { type: 'online' }, actions: [{ type: 'email', to: 'someone.else@example.com' }] }), 'E_VALIDATION', /own address/);
    await rejectsCode(server.hub.rules.create(a.userId, a.id, { trigger: { type: 'schedule', cron: 'not a cron' }, actions: [{ type: 'notify' }] }), 'E_VALIDATION', /trigger\.cron/);
    await rejectsCode(server.hub.rules.create(a.userId, a.id, { trigger: { type: 'threshold', sensor: 't', op: '>', value: 1 }, actions: [] }), 'E_VALIDATION', /at least one action/);
    const limited = new Rules(server.hub.store, { ...server.hub.config, rulesPerDevice: 2 }, null);
    await limited.create(a.userId, a.id, { trigger: { type: 'online' }, actions: [{ type: 'notify' }] });
    await rejectsCode(limited.create(a.userId, a.id, { trigger: { type: 'online' }, actions: [{ type: 'notify' }] }), 'E_LIMIT', /--rules-per-device 2/);
  });
});

describe('webhook SSRF guard', () => {
  test('private, loopback and link-local addresses are recognised', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '172.16.0.1', '169.254.169.254', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '0.0.0.0', '100.64.0.1']) {
      assert.ok(isPrivateAddress(a), a);
    }
    for (const a of ['93.184.216.34', '2606:4700::1111', '8.8.8.8']) assert.ok(!isPrivateAddress(a), a);
  });

  test('refused when the rule is saved, and when a name resolves inward at delivery time', async () => {
    const server = await startTestServer({ ...FAST, webhookAllowPrivate: false });
    const h = await startReceiver();
    try {
      const d = await makeDevice(server);
      for (const url of [h.url, 'http://localhost:9/x', 'http://[::1]/x', 'http://169.254.169.254/latest/meta-data']) {
        await rejectsCode(server.hub.rules.create(d.userId, d.id, { trigger: { type: 'online' }, actions: [{ type: 'webhook', url }] }), 'E_VALIDATION', /IOTC_WEBHOOK_ALLOW_PRIVATE/);
      }
      const err = await new Promise<Error | null>((resolve) => guardedLookup(false)('localhost', {}, (e) => resolve(e)));
      assert.match(String(err?.message), /resolves to .*IOTC_WEBHOOK_ALLOW_PRIVATE/);
      // A rule saved while private targets were allowed is still refused at delivery once they are not.
      const lax = new Rules(server.hub.store, { ...server.hub.config, webhookAllowPrivate: true }, null);
      const rule = await lax.create(d.userId, d.id, { trigger: { type: 'changed', sensor: 'q' }, actions: [{ type: 'webhook', url: h.url }] });
      await server.hub.rules.testFire(d.userId, rule.id);
      const failed = await waitFor(async () => ((await server.hub.rules.get(d.userId, rule.id)).lastError ? await server.hub.rules.get(d.userId, rule.id) : null));
      assert.match(failed!.lastError!, /IOTC_WEBHOOK_ALLOW_PRIVATE/);
      assert.equal(h.hooks.length, 0, 'nothing reached the private receiver');
    } finally {
      await h.close();
      await server.stop();
    }
  });
});

describe('delivery queue across restarts and per-user bounds', () => {
  test('a pending retry survives a restart and is delivered by the next server', async () => {
    const { dir, cleanup } = tempDir();
    const h = await startReceiver();
    try {
      h.answers.push(500);
      let server = await startTestServer({ ...FAST, webhookBackoff: 1500 }, dir);
      const d = await makeDevice(server);
      const rule = await server.hub.rules.create(d.userId, d.id, { trigger: { type: 'changed', sensor: 's' }, actions: [{ type: 'webhook', url: h.url }] });
      await server.hub.rules.testFire(d.userId, rule.id);
      await waitFor(async () => ((await server.hub.rules.deliveries(d.userId, d.id))[0]?.attempts === 1 ? true : null), 15_000);
      await server.stop({ keepData: true });
      assert.equal(h.hooks.length, 0);
      server = await startTestServer({ ...FAST, webhookBackoff: 1500 }, dir);
      try {
        const [got] = await h.waitForHooks(1, 15_000);
        assert.equal(got.body.rule, rule.id);
        assert.equal(got.body.test, true);
        // The receiver has the hook before the hub has its answer and records it: wait for the log to say so.
        const entry = await waitFor(async () => {
          const [e] = await server.hub.rules.deliveries(d.userId, d.id);
          return e?.state === 'pending' ? null : e;
        }, 5000);
        assert.ok(entry);
        assert.deepEqual([entry.state, entry.attempts], ['delivered', 2]);
      } finally {
        await server.stop({ keepData: true });
      }
    } finally {
      await h.close();
      cleanup();
    }
  });

  test('a full queue refuses with E_LIMIT naming --delivery-queue, and other users are not held back', async () => {
    const server = await startTestServer({ ...FAST, deliveryQueue: 2, webhookBackoff: 60_000 });
    const slow = await startReceiver();
    const fine = await startReceiver();
    try {
      slow.answers.push(500, 500, 500, 500);
      const a = await makeDevice(server);
      const b = await makeDevice(server);
      const ra = await server.hub.rules.create(a.userId, a.id, { trigger: { type: 'changed', sensor: 's' }, actions: [{ type: 'webhook', url: slow.url }] });
      await server.hub.rules.testFire(a.userId, ra.id);
      await server.hub.rules.testFire(a.userId, ra.id);
      await rejectsCode(server.hub.rules.testFire(a.userId, ra.id), 'E_LIMIT', /--delivery-queue/);
      const rb = await server.hub.rules.create(b.userId, b.id, { trigger: { type: 'changed', sensor: 's' }, actions: [{ type: 'webhook', url: fine.url }] });
      assert.equal((await server.hub.rules.testFire(b.userId, rb.id)).error, null);
      await fine.waitForHooks(1);
    } finally {
      await server.stop();
      await slow.close();
      await fine.close();
    }
  });
});

describe('a webhook target that hangs', () => {
  test('times out within --webhook-timeout, is retried, and holds back no other account', async () => {
    const http = await import('node:http');
    const hanging = http.createServer(() => {
      // Never answers.
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    const port = (hanging.address() as { port: number }).port;
    const server = await startTestServer({ ...FAST, webhookTimeout: 300, webhookBackoff: 60_000 });
    const fine = await startReceiver();
    try {
      const a = await makeDevice(server);
      const b = await makeDevice(server);
      const ra = await server.hub.rules.create(a.userId, a.id, { trigger: { type: 'changed', sensor: 's' }, actions: [{ type: 'webhook', url: `http://127.0.0.1:${port}/slow` }] });
      for (let i = 0; i < 3; i++) await server.hub.rules.testFire(a.userId, ra.id);
      const rb = await server.hub.rules.create(b.userId, b.id, { trigger: { type: 'changed', sensor: 's' }, actions: [{ type: 'webhook', url: fine.url }] });
      const started = Date.now();
      await server.hub.rules.testFire(b.userId, rb.id);
      await fine.waitForHooks(1, 2000);
      assert.ok(Date.now() - started < 1500, 'the other account\'s webhook went out at once');
      const log = await waitFor(async () => {
        const l = await server.hub.rules.deliveries(a.userId, a.id);
        return l.filter((x) => x.attempts === 1).length === 3 ? l : null;
      }, 5000);
      for (const x of log!) {
        assert.equal(x.state, 'pending', 'to be retried');
        assert.equal(x.lastStatus, null);
        assert.match(x.lastError ?? '', /no (complete )?answer within 300 ms/);
      }
    } finally {
      await server.stop();
      await fine.close();
      hanging.closeAllConnections();
      await new Promise((r) => hanging.close(r));
    }
  });
});

describe('schedules on an injectable clock', () => {
  test('each occurrence fires once across two engines sharing a store, in the rule\'s time zone', async () => {
    const { dir, cleanup } = tempDir();
    const store = new SqliteStore(`${dir}/iotc.db`);
    const h = await startReceiver();
    let now = Date.parse('2026-03-01T05:00:00Z');
    const clock: Clock = { now: () => now };
    const config = testConfig({ ...FAST, rulesTick: 60_000 }, dir);
    const log = createLogger('silent');
    const engines = [new AutomationEngine(store, null, config, log, clock), new AutomationEngine(store, null, config, log, clock)];
    try {
      const user = await store.createUser({ email: 'sched@example.com', name: 'S', passwordHash: 'x' });
      await store.createDevice({ id: 'SCHEDULEDEVICE000001', userId: user.id, name: 'Pump', keyHash: 'h' });
      const rules = new Rules(store, config, null);
      // 07:00 in Paris is 06:00 UTC in March.
      const rule = await rules.create(null, 'SCHEDULEDEVICE000001', { trigger: { type: 'schedule', cron: '0 7 * * *', tz: 'Europe/Paris' }, actions: [{ type: 'webhook', url: h.url }] });
      for (const e of engines) await e.reload();
      now = Date.parse('2026-03-01T05:59:59Z');
      await Promise.all(engines.map((e) => e.tick()));
      assert.equal((await store.automations.listDeliveries('SCHEDULEDEVICE000001', 10)).length, 0, 'not before 07:00 Paris');
      now = Date.parse('2026-03-01T06:00:01Z');
      await Promise.all(engines.map((e) => e.tick()));
      await Promise.all(engines.map((e) => e.tick()));
      await Promise.all(engines.map((e) => e.sender.tick()));
      await Promise.all(engines.map((e) => e.sender.idle()));
      const [got] = await h.waitForHooks(1);
      assert.equal(got.body.event, 'schedule');
      assert.equal(got.body.time, Date.parse('2026-03-01T06:00:00Z'));
      assert.ok(got.signed(rule.secret));
      assert.equal((await store.automations.listDeliveries('SCHEDULEDEVICE000001', 10)).length, 1, 'one occurrence, one delivery');
      now = Date.parse('2026-03-02T06:00:00Z');
      await Promise.all(engines.map((e) => e.tick()));
      assert.equal((await store.automations.listDeliveries('SCHEDULEDEVICE000001', 10)).length, 2, 'the next day fires again, once');
    } finally {
      for (const e of engines) await e.stop();
      await store.close();
      await h.close();
      cleanup();
    }
  });
});

/**
 * An engine on a clock the test sets, over its own store with one device, counting its full reads of the rules,
 * and a webhook receiver; `at` moves the clock, ticks, and sends what fired.
 */
async function countingEngine(deviceId: string, run: (t: { store: SqliteStore; engine: AutomationEngine; config: ReturnType<typeof testConfig>; hook: Receiver; reads: () => number; at: (time: string) => Promise<void>; ticksOver: (ms: number) => Promise<void> }) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  const store = new SqliteStore(`${dir}/iotc.db`);
  const hook = await startReceiver();
  let now = Date.parse('2026-03-01T05:00:00Z');
  const config = testConfig({ ...FAST, rulesTick: 50 }, dir);
  const engine = new AutomationEngine(store, null, config, createLogger('silent'), { now: () => now });
  let reads = 0;
  const list = store.automations.listEnabledRules.bind(store.automations);
  store.automations.listEnabledRules = () => (reads++, list());
  try {
    const user = await store.createUser({ email: `${deviceId.toLowerCase()}@example.com`, name: 'R', passwordHash: 'x' });
    await store.createDevice({ id: deviceId, userId: user.id, name: 'Pump', keyHash: 'h' });
    await run({
      store, engine, config, hook,
      reads: () => reads,
      at: async (time) => {
        now = Date.parse(time);
        await engine.tick();
        await engine.sender.tick();
        await engine.sender.idle();
      },
      ticksOver: async (ms) => {
        for (const end = now + ms; now < end; ) {
          now += 500;
          await engine.tick();
        }
      },
    });
  } finally {
    await engine.stop();
    await store.close();
    await hook.close();
    cleanup();
  }
}

const DAILY = (hhmm: string) => ({ trigger: { type: 'schedule', cron: `${hhmm.slice(3)} ${hhmm.slice(0, 2)} * * *`, tz: 'Europe/Paris' } });

test('an engine reads the rules again only when one changed, on this node or another', () =>
  // A full read every second cost ~0.1 s of the event loop per 10 000 rules of the hub, changed or not.
  countingEngine('RELOADDEVICE00000001', async ({ store, engine, config, hook, reads, at, ticksOver }) => {
    await engine.reload();
    assert.equal(reads(), 1);
    await ticksOver(10_000);
    assert.equal(reads(), 1, 'nothing changed: not read again');
    // Created without this engine (another node's work): seen at the next reload, and it fires.
    await new Rules(store, config, null).create(null, 'RELOADDEVICE00000001', { ...DAILY('07:00'), actions: [{ type: 'webhook', url: hook.url }] });
    await ticksOver(2_000);
    assert.equal(reads(), 2, 'read again once after the change');
    await at('2026-03-01T06:00:01Z');
    assert.equal((await hook.waitForHooks(1))[0].body.event, 'schedule');
    await ticksOver(10_000);
    assert.equal(reads(), 2, 'and not again while nothing changes');
  }));

test('a rule changed on this node is taken alone: created, edited, disabled and deleted without reading the others', () =>
  // One account editing its rules (20 requests/s per token) must not make the node read every account's rules.
  countingEngine('LOCALRULEDEVICE00001', async ({ store, engine, config, hook, reads, at }) => {
    const deliveries = async () => (await store.automations.listDeliveries('LOCALRULEDEVICE00001', 10)).length;
    const rules = new Rules(store, config, engine);
    await engine.reload();
    const seven = await rules.create(null, 'LOCALRULEDEVICE00001', { ...DAILY('07:00'), actions: [{ type: 'webhook', url: hook.url }] });
    const eight = await rules.create(null, 'LOCALRULEDEVICE00001', { ...DAILY('08:00'), actions: [{ type: 'webhook', url: hook.url }] });
    await at('2026-03-01T06:00:01Z');
    assert.equal(await deliveries(), 1, 'the 07:00 rule created here fires');
    await rules.update(null, seven.id, DAILY('07:30'));
    await at('2026-03-01T06:30:01Z');
    assert.equal(await deliveries(), 2, 'the edited rule fires at its new time');
    await rules.update(null, seven.id, { enabled: false });
    await rules.delete(null, eight.id);
    await at('2026-03-02T06:30:01Z');
    await at('2026-03-02T07:00:01Z');
    assert.equal(await deliveries(), 2, 'neither the disabled nor the deleted rule fires the next day');
    await rules.update(null, seven.id, { enabled: true });
    await at('2026-03-03T06:30:01Z');
    assert.equal(await deliveries(), 3, 'enabled again, it fires');
    assert.equal(reads(), 1, 'none of these changes read the rules again');
    await hook.waitForHooks(3);
  }));
