/**
 * Calls across a cluster: two real server processes on the machine's PostgreSQL (a database made for this file)
 * and NATS. An app on one node reaches a device on the other and gets its answer; a persistent call made on one
 * node is delivered when the device connects to the other, and its answer is pushed back to the first.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiTokens } from '../src/core/tokens.js';
import { clusterSkip, twoNodeCluster } from './cluster-helpers.js';
import { sleep } from './helpers.js';
import type { Message } from './helpers.js';

const skip = await clusterSkip();
const isCall = (m: Message) => typeof m.call === 'string' && 'sensor' in m;

describe('calls across a cluster on PostgreSQL and NATS', { skip }, () => {
  const cluster = twoNodeCluster({ name: 'calls', deviceName: 'Pump' });
  const { newDevice, open } = cluster;

  test("an app on one node calls a device on the other and gets its answer or its error", async () => {
    const d = await newDevice();
    const device = await open(cluster.b, d, 'device');
    const app = await open(cluster.a, d, 'client');
    const answer = app.request({ method: 'call', device_method: 'reboot', params: { delay: 5 }, timeout: 5000 });
    const frame = await device.next(isCall);
    assert.deepEqual([frame.sensor, frame.value], ['reboot', { delay: 5 }]);
    assert.deepEqual(await device.request({ method: 'reply', call: frame.call, result: { rebooting: true } }), { ok: true, id: 2 });
    const got = await answer;
    assert.deepEqual(got, { ok: true, id: got.id, call: frame.call, result: { rebooting: true } });
    assert.equal((await device.request({ method: 'reply', call: frame.call, result: 'again' })).code, 'E_NOT_FOUND', 'the first answer won');

    const failing = app.request({ method: 'call', device_method: 'pump' });
    const second = await device.next(isCall);
    device.send({ method: 'reply', call: second.call, error: 'dry' });
    assert.deepEqual([(await failing).code, (await failing).error], ['E_DEVICE', 'dry']);
  });

  test('an HTTP call on one node reaches a WebSocket device on the other', async () => {
    const d = await newDevice();
    const token = (await new ApiTokens(cluster.store).create(d.userId, 'cluster')).token;
    const device = await open(cluster.b, d, 'device');
    await sleep(1500); // presence is saved about once a second: node a must see the device online
    const pending = fetch(`${cluster.a.url}/api/v1/devices/${d.id}/calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'ping_me', timeout: 5000 }),
    });
    const frame = await device.next(isCall);
    device.send({ method: 'reply', call: frame.call, result: 'pong' });
    const res = await pending;
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { call: frame.call, state: 'answered', result: 'pong' });
  });

  test('a device connected nowhere is E_OFFLINE from any node', async () => {
    const d = await newDevice();
    const app = await open(cluster.a, d, 'client');
    const got = await app.request({ method: 'call', device_method: 'reboot' }, 3000);
    assert.equal(got.code, 'E_OFFLINE');
  });

  test('a persistent call queued on one node is delivered when the device connects to the other; its answer is pushed back', async () => {
    const d = await newDevice();
    const app = await open(cluster.a, d, 'client');
    const made = await app.request({ method: 'call', device_method: 'firmware', params: { v: 3 }, persistent: true, timeout: 60_000 });
    assert.equal(made.state, 'queued');
    const device = await open(cluster.b, d, 'device');
    const frame = await device.next(isCall);
    assert.equal(frame.call, made.call);
    await app.next((m) => m.sensor === '$call' && m.value.state === 'sent');
    device.send({ method: 'reply', call: frame.call, result: { updated: true } });
    const pushed = await app.next((m) => m.sensor === '$call' && m.value.state === 'answered');
    assert.deepEqual(pushed.value, { call: made.call, state: 'answered', result: { updated: true } });
    const status = await app.request({ method: 'call_status', call: made.call });
    assert.deepEqual([status.state, status.result], ['answered', { updated: true }]);

    // Made while the device is connected to the other node: sent there at once, answered, pushed back.
    const live = await app.request({ method: 'call', device_method: 'blink', persistent: true, timeout: 60_000 });
    const frame2 = await device.next(isCall);
    assert.equal(frame2.call, live.call);
    device.send({ method: 'reply', call: frame2.call, result: 'ok' });
    const pushed2 = await app.next((m) => m.sensor === '$call' && m.value.call === live.call && m.value.state === 'answered');
    assert.equal(pushed2.value.result, 'ok');
  });
});
