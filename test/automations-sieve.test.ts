/**
 * The reading path of automations: the sieve settles the steady state without the engine's slow path, hands on
 * in commit order whatever may change an alert, and on a running hub an alert rises and clears once per spell,
 * the second spell too, even when the readings share one batch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_WAITING_PER_ACCOUNT, ReadingSieve } from '../src/automations/reading-sieve.js';
import type { SlowJob } from '../src/automations/reading-sieve.js';
import { sortRules } from '../src/automations/rule-state.js';
import type { Rule, Trigger } from '../src/automations/model.js';
import type { NewReading, StoredReading } from '../src/store/types.js';
import { startReceiver } from './automation-helpers.js';
import type { Receiver } from './automation-helpers.js';
import { makeDevice, sleep, startTestServer, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';

const rule = (id: string, deviceId: string, trigger: Trigger, cooldownMs = 0): Rule => ({
  id, deviceId, userId: 1, name: '', enabled: true, trigger, actions: [{ type: 'notify' }], cooldownMs,
  secret: 's', createdAt: 0, updatedAt: 0, lastRunAt: null, lastError: null,
});

describe('the reading sieve', () => {
  let seq = 0;
  const batch = (...rows: [string, string, unknown][]): [StoredReading[], NewReading[]] => {
    const written = rows.map(([deviceId, sensor, value]) => ({ deviceId, sensor, value, side: 'device' as const, time: Date.now(), json: JSON.stringify(value) }));
    return [written.map((w) => ({ ...w, seq: ++seq })), written];
  };

  test('an account churning its rules has at most MAX_WAITING_PER_ACCOUNT jobs waiting: another account\'s come next, none dropped', async () => {
    const order: string[] = [];
    const rules = sortRules([
      rule('churned', 'a1', { type: 'changed', sensor: 'pos' }),
      { ...rule('quiet', 'b1', { type: 'changed', sensor: 'pos' }), userId: 2 },
    ], new Map(), () => null);
    const sieve = new ReadingSieve(true, () => false, async (job: SlowJob) => {
      order.push(job.s.rule.id);
    });
    sieve.index = rules.byReading;
    const churn = Array.from({ length: 3 * MAX_WAITING_PER_ACCOUNT }, (_, i): [string, string, unknown] => ['a1', 'pos', i]);
    sieve.take(...batch(...churn, ['b1', 'pos', 'moved']));
    await sieve.settled();
    assert.equal(order.indexOf('quiet'), MAX_WAITING_PER_ACCOUNT, 'the other account\'s job waited behind the cap, not behind the whole churn');
    assert.equal(order.length, MAX_WAITING_PER_ACCOUNT + 1);
    assert.equal(sieve.dropped, 2 * MAX_WAITING_PER_ACCOUNT, 'the churning account\'s jobs past the cap were dropped, and counted');
    order.length = 0;
    sieve.take(...batch(['a1', 'pos', 'again']));
    await sieve.settled();
    assert.deepEqual(order, ['churned'], 'once evaluated, its jobs are taken again');
  });

  test('a reading no rule names, and the steady state, never reach the slow path; the rest does, in order', async () => {
    const jobs: [string, unknown][] = [];
    const rules = sortRules([
      rule('hot', 'd1', { type: 'threshold', sensor: 'temp', op: '>', value: 30, forMs: 0 }),
      rule('moved', 'd1', { type: 'changed', sensor: 'pos' }),
    ], new Map(), () => null);
    const byRule = new WeakSet<NewReading>();
    const sieve = new ReadingSieve(true, (r) => byRule.has(r), async (job: SlowJob) => {
      jobs.push([job.s.rule.id, job.r.value]);
      // What the engine would learn: the alert's state after this reading.
      if (job.s.rule.id === 'hot') job.s.open = (job.r.value as number) > 30;
    });
    sieve.index = rules.byReading;
    sieve.take(...batch(['d1', 'hum', 50], ['d2', 'temp', 99], ['d1', 'temp', 20]));
    await sieve.settled();
    assert.deepEqual(jobs, [['hot', 20]], 'other sensors and devices cost nothing; the first reading asks (the alert state is unknown)');
    jobs.length = 0;
    sieve.take(...batch(['d1', 'temp', 21], ['d1', 'temp', 22]));
    sieve.take(...batch(['d1', 'temp', 31], ['d1', 'temp', 32], ['d1', 'temp', 5]));
    await sieve.settled();
    assert.deepEqual(jobs, [['hot', 31], ['hot', 32], ['hot', 5]], 'cold with no alert: nothing; from the first hot reading, each in order until evaluated');
    jobs.length = 0;
    sieve.take(...batch(['d1', 'temp', 6], ['d1', 'pos', 'a']));
    await sieve.settled();
    sieve.take(...batch(['d1', 'pos', 'a'], ['d1', 'pos', 'b']));
    const [stored, written] = batch(['d1', 'pos', 'c'], ['d1', 'pos', 'c']);
    byRule.add(written[0]);
    sieve.take(stored, written);
    await sieve.settled();
    assert.deepEqual(jobs, [['moved', 'a'], ['moved', 'b']], 'a changed rule: the first value asks the store, then only a change; a rule\'s own write is never evaluated');
  });

  test('a changed rule within its cooldown stops in the sieve, from the reading after the one that fires', async () => {
    const jobs: unknown[] = [];
    const sieve = new ReadingSieve(true, () => false, async (job: SlowJob) => void jobs.push([job.r.value, job.previous]));
    sieve.index = sortRules([rule('door', 'd1', { type: 'changed', sensor: 'door' }, 3_600_000)], new Map(), () => null).byReading;
    sieve.take(...batch(['d1', 'door', 'open'], ['d1', 'door', 'shut'], ['d1', 'door', 'open'], ['d1', 'door', 'shut']));
    await sieve.settled();
    assert.deepEqual(jobs, [['open', undefined], ['shut', '"open"']], 'the first asks the store; the first change fires (decided here); the rest are within the hour');
  });
});

describe('alerts on a running hub, reading after reading', () => {
  let server: TestServer;
  let hook: Receiver;
  before(async () => {
    hook = await startReceiver();
    server = await startTestServer({ rulesTick: 50, webhookAllowPrivate: true, webhookBackoff: 50, webhookTimeout: 2000 });
  });
  after(async () => {
    await server.stop();
    await hook.close();
  });

  test('every spell raises once and clears once, the second too, even within one batch', async () => {
    const d = await makeDevice(server);
    await server.hub.rules.create(d.userId, d.id, { trigger: { type: 'threshold', sensor: 't', op: '>', value: 30 }, actions: [{ type: 'webhook', url: hook.url }] });
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    try {
      const put = async (...values: number[]) =>
        assert.equal((await device.request({ method: 'put', status: values.map((value) => ({ sensor: 't', value })) })).ok, true);
      await put(20);
      await put(31, 32, 20, 35, 36);
      await put(10, 11);
      const hooks = await hook.waitForHooks(4);
      await sleep(300);
      assert.equal(hook.hooks.length, 4, 'nothing more');
      assert.deepEqual(hooks.map((h) => [h.body.event, h.body.value]), [['triggered', 31], ['cleared', 20], ['triggered', 35], ['cleared', 10]]);
      const alerts = await server.hub.rules.alerts(d.userId, d.id);
      assert.deepEqual(alerts.map((a) => a.state), ['cleared', 'cleared']);
    } finally {
      await device.close();
    }
  });
});
