/**
 * Automations on two real nodes sharing PostgreSQL and NATS: each reading is evaluated once whichever node
 * committed it, an alert is raised and cleared once whichever node sees the edge, a schedule fires once per
 * occurrence, and an offline rule fires once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Rules } from '../src/automations/rules.js';
import { loadConfig } from '../src/config.js';
import { startReceiver } from './automation-helpers.js';
import type { Receiver } from './automation-helpers.js';
import { clusterSkip, twoNodeCluster } from './cluster-helpers.js';
import { sleep, waitFor } from './helpers.js';

const skip = await clusterSkip();

describe('automations in a cluster of two nodes on PostgreSQL and NATS', { skip }, () => {
  const cluster = twoNodeCluster({
    name: 'auto-cluster',
    deviceName: 'Greenhouse',
    env: { IOTC_RULES_TICK: '50ms', IOTC_WEBHOOK_ALLOW_PRIVATE: 'true', IOTC_WEBHOOK_BACKOFF: '50ms' },
  });
  const { newDevice, open } = cluster;
  let rules: Rules;
  const receivers: Receiver[] = [];
  const receiver = async () => {
    const r = await startReceiver();
    receivers.push(r);
    return r;
  };
  /** Nodes reload rules made elsewhere every five ticks (here 5 × 50 ms, at least 1 s). */
  const seenByNodes = () => sleep(1300);

  before(() => {
    rules = new Rules(cluster.store, loadConfig({}, {}, { webhookAllowPrivate: true }), null);
  });

  after(() => Promise.all(receivers.map((r) => r.close())));

  test('readings committed on either node are each evaluated once; alerts rise and clear once', async () => {
    const hook = await receiver();
    const d = await newDevice();
    await rules.create(d.userId, d.id, { trigger: { type: 'changed', sensor: 'n' }, actions: [{ type: 'webhook', url: hook.url }] });
    const hot = await rules.create(d.userId, d.id, { trigger: { type: 'threshold', sensor: 'temp', op: '>', value: 30 }, actions: [{ type: 'webhook', url: hook.url }] });
    await seenByNodes();
    const device = await open(cluster.a, d, 'device');
    const app = await open(cluster.b, d, 'client');
    for (let i = 1; i <= 6; i++) {
      const writer = i % 2 ? device : app;
      assert.equal((await writer.request({ method: 'put', status: { sensor: 'n', value: i } })).ok, true);
    }
    // Each edge is waited for before the next reading: two readings through different nodes are evaluated side by
    // side, and of two that would both raise, whichever node gets there first raises, with its own reading.
    let edges = 0;
    for (const [writer, temp, edge] of [[device, 31, true], [app, 32, false], [device, 33, false], [app, 20, true], [device, 10, false], [app, 35, true]] as const) {
      assert.equal((await writer.request({ method: 'put', status: { sensor: 'temp', value: temp } })).ok, true);
      if (edge) await waitFor(() => hook.hooks.filter((h) => h.body.rule === hot.id).length > edges, 8000, `the edge at ${temp}`);
      else await sleep(150);
      if (edge) edges++;
    }
    await hook.waitForHooks(8, 8000);
    await sleep(800);
    const changed = hook.hooks.filter((h) => h.body.sensor === 'n').map((h) => h.body.value).sort();
    assert.deepEqual(changed, [2, 3, 4, 5, 6], 'each change once (the first value has nothing before it)');
    const alarm = hook.hooks.filter((h) => h.body.rule === hot.id).map((h) => `${h.body.event}:${h.body.value}`);
    assert.deepEqual(alarm, ['triggered:31', 'cleared:20', 'triggered:35']);
    const alerts = await cluster.store.automations.listAlerts(d.id, 10);
    assert.deepEqual(alerts.map((x) => x.state), ['active', 'cleared']);
  });

  test('a schedule fires once per occurrence across both nodes', async () => {
    const hook = await receiver();
    const d = await newDevice();
    // Croner's six-field form: every second.
    await rules.create(d.userId, d.id, { trigger: { type: 'schedule', cron: '* * * * * *', tz: 'UTC' }, actions: [{ type: 'webhook', url: hook.url }] });
    await seenByNodes();
    await sleep(3000);
    const times = hook.hooks.map((h) => h.body.time as number);
    assert.ok(times.length >= 2, `fired ${times.length} times`);
    assert.equal(new Set(times).size, times.length, `no occurrence fired twice: ${times.join(', ')}`);
    assert.ok(times.every((t) => t % 1000 === 0), 'occurrences fall on whole seconds');
  });

  test('an offline rule fires once when the device leaves whichever node it was on', async () => {
    const hook = await receiver();
    const d = await newDevice();
    const device = await open(cluster.a, d, 'device');
    await rules.create(d.userId, d.id, { trigger: { type: 'offline', forMs: '2s' }, actions: [{ type: 'webhook', url: hook.url }] });
    await seenByNodes();
    await sleep(1500);
    assert.equal(hook.hooks.length, 0, 'online on node a: node b does not take it for offline');
    await device.close();
    const [off] = await hook.waitForHooks(1, 8000);
    assert.equal(off.body.event, 'offline');
    await sleep(1000);
    assert.equal(hook.hooks.length, 1, 'once');
  });
});
