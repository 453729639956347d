/**
 * Calls across doors: an app's command over WebSocket reaches a device over MQTT and its answer comes back;
 * an MQTT app calls a WebSocket device; HTTP calls, device long-polls and replies; who may call whom.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freePort, makeDevice, sleep, startTestServer, TestClient } from './helpers.js';
import type { Message, TestServer } from './helpers.js';
import { Inbox, mqttConnect } from './mqtt-clients.js';

let server: TestServer;
let mqttUrl: string;
before(async () => {
  server = await startTestServer({ mqttPort: await freePort() });
  mqttUrl = `mqtt://127.0.0.1:${server.mqttPort}`;
});
after(() => server.stop());

const isCall = (m: Message) => typeof m.call === 'string' && 'sensor' in m;

async function api(method: string, path: string, opts: { token?: string; key?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.key) headers['x-device-key'] = opts.key;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${server.port}/api/v1${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function tokenFor(userId: number): Promise<string> {
  return (await server.hub.tokens.create(userId, 'test')).token;
}

describe('calls over MQTT', () => {
  for (const protocolVersion of [4, 5] as const) {
    test(`an app's call over WebSocket reaches an MQTT device (v${protocolVersion === 4 ? '3.1.1' : '5'}) and its answer comes back over WebSocket`, async () => {
      const d = await makeDevice(server);
      const device = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion });
      const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
      try {
        const inbox = new Inbox(device);
        await device.subscribeAsync(`devices/${d.id}/rpc/request/+`, { qos: 1 });
        await device.subscribeAsync(`devices/${d.id}/+`, { qos: 1 });
        const answer = app.request({ method: 'call', device_method: 'reboot', params: { delay: 5 }, timeout: 5000 });
        const req = await inbox.next();
        const m = /^devices\/[A-Z0-9]+\/rpc\/request\/(c_[a-z2-7]{16})$/.exec(req.topic);
        assert.ok(m, req.topic);
        assert.deepEqual(JSON.parse(req.payload), { method: 'reboot', params: { delay: 5 } });
        await device.publishAsync(`devices/${d.id}/rpc/response/${m[1]}`, JSON.stringify({ result: { rebooting: true } }), { qos: 1 });
        const got = await answer;
        assert.deepEqual(got, { ok: true, id: got.id, call: m[1], result: { rebooting: true } });

        // An error answer, and a bare value taken as the result.
        const failing = app.request({ method: 'call', device_method: 'fail' });
        const req2 = await inbox.next();
        await device.publishAsync(req2.topic.replace('/request/', '/response/'), '{"error":"busy"}', { qos: 1 });
        assert.deepEqual([(await failing).code, (await failing).error], ['E_DEVICE', 'busy']);
        const bare = app.request({ method: 'call', device_method: 'temp' });
        const req3 = await inbox.next();
        await device.publishAsync(req3.topic.replace('/request/', '/response/'), '21.5', { qos: 1 });
        assert.equal((await bare).result, 21.5);

        // Calls are not readings: the device's sensor subscription (devices/ID/+) saw none of this.
        await sleep(100);
        assert.equal(inbox.unread, 0);
        assert.equal((await app.request({ method: 'sensors' })).sensors.length, 0);
      } finally {
        await device.endAsync();
        await app.close();
      }
    });
  }

  test('an MQTT app (ID:client) calls a WebSocket device and gets the answer, a device error or a timeout on its response topic', async () => {
    const d = await makeDevice(server);
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await mqttConnect(mqttUrl, { username: `${d.id}:client`, password: d.key, protocolVersion: 5 });
    try {
      const inbox = new Inbox(app);
      await app.subscribeAsync(`devices/${d.id}/rpc/response/+`, { qos: 1 });
      await app.publishAsync(`devices/${d.id}/rpc/request/r1`, JSON.stringify({ method: 'lamp', params: { on: true }, timeout: 5000 }), { qos: 1 });
      const frame = await device.next(isCall);
      assert.deepEqual([frame.sensor, frame.value], ['lamp', { on: true }]);
      device.send({ method: 'reply', call: frame.call, result: 'on' });
      const res = await inbox.next();
      assert.equal(res.topic, `devices/${d.id}/rpc/response/r1`);
      assert.deepEqual(JSON.parse(res.payload), { result: 'on' });

      await app.publishAsync(`devices/${d.id}/rpc/request/r2`, JSON.stringify({ method: 'lamp', timeout: 200 }), { qos: 1 });
      const frame2 = await device.next(isCall);
      const timedOut = await inbox.next();
      assert.equal(timedOut.topic, `devices/${d.id}/rpc/response/r2`);
      assert.deepEqual(JSON.parse(timedOut.payload), { error: 'The device did not answer within 0.2s', code: 'E_TIMEOUT', call: frame2.call });

      await app.publishAsync(`devices/${d.id}/rpc/request/r3`, 'not json', { qos: 1 });
      assert.equal(JSON.parse((await inbox.next()).payload).code, 'E_BAD_MESSAGE');
    } finally {
      await device.close();
      await app.endAsync();
    }
  });

  test('an MQTT app gets E_OFFLINE; an MQTT device cannot publish calls', async () => {
    const d = await makeDevice(server);
    const app = await mqttConnect(mqttUrl, { username: `${d.id}:client`, password: d.key, protocolVersion: 5 });
    const device = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 5 });
    const watcher = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    await watcher.close();
    try {
      const inbox = new Inbox(app);
      await app.subscribeAsync(`devices/${d.id}/rpc/response/+`, { qos: 1 });
      await device.endAsync();
      await sleep(1500); // presence is saved about once a second
      await app.publishAsync(`devices/${d.id}/rpc/request/x`, JSON.stringify({ method: 'lamp' }), { qos: 1 });
      assert.deepEqual(JSON.parse((await inbox.next()).payload), { error: 'The device is not connected', code: 'E_OFFLINE' });

      const device2 = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 5 });
      const refused = await device2.publishAsync(`devices/${d.id}/rpc/request/y`, JSON.stringify({ method: 'lamp' }), { qos: 1 }).then(
        (p) => (p as { reasonCode?: number } | undefined)?.reasonCode,
        (err: Error & { code?: number }) => err.code,
      );
      assert.equal(refused, 0x87, 'not authorized');
      await device2.endAsync();
    } finally {
      await app.endAsync();
    }
  });

  test('a persistent call made while the MQTT device is offline is delivered when it subscribes, and answered', async () => {
    const d = await makeDevice(server);
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    try {
      const made = await app.request({ method: 'call', device_method: 'update', params: 'v2', persistent: true });
      assert.equal(made.state, 'queued');
      const device = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 4 });
      const inbox = new Inbox(device);
      await device.subscribeAsync(`devices/${d.id}/rpc/request/+`, { qos: 1 });
      const req = await inbox.next();
      assert.equal(req.topic, `devices/${d.id}/rpc/request/${made.call}`);
      assert.deepEqual(JSON.parse(req.payload), { method: 'update', params: 'v2' });
      await device.publishAsync(`devices/${d.id}/rpc/response/${made.call}`, '{"result":"done"}', { qos: 1 });
      const pushed = await app.next((m) => m.sensor === '$call' && m.value.state === 'answered');
      assert.deepEqual(pushed.value, { call: made.call, state: 'answered', result: 'done' });
      await device.endAsync();
    } finally {
      await app.close();
    }
  });
});

describe('calls over HTTP', () => {
  test('an app calls a WebSocket device with its API token and gets the result; errors carry the call id', async () => {
    const d = await makeDevice(server);
    const token = await tokenFor(d.userId);
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    try {
      const answered = api('POST', `/devices/${d.id}/calls`, { token, body: { method: 'reboot', params: { delay: 1 }, timeout: 5000 } });
      const frame = await device.next(isCall);
      assert.deepEqual([frame.sensor, frame.value], ['reboot', { delay: 1 }]);
      device.send({ method: 'reply', call: frame.call, result: { ok: 1 } });
      assert.deepEqual(await answered, { status: 200, body: { call: frame.call, state: 'answered', result: { ok: 1 } } });

      const failed = api('POST', `/devices/${d.id}/calls`, { token, body: { method: 'reboot' } });
      const frame2 = await device.next(isCall);
      device.send({ method: 'reply', call: frame2.call, error: 'no power' });
      assert.deepEqual(await failed, { status: 502, body: { error: 'E_DEVICE', message: 'no power', call: frame2.call } });

      const timedOut = await api('POST', `/devices/${d.id}/calls`, { token, body: { method: 'reboot', timeout: 200 } });
      assert.equal(timedOut.status, 504);
      assert.equal(timedOut.body.error, 'E_TIMEOUT');
      assert.match(timedOut.body.call, /^c_/);
    } finally {
      await device.close();
    }
  });

  test('offline is 409; a device key (device side) cannot call: 403; another user cannot reach the device: 404', async () => {
    const d = await makeDevice(server);
    const stranger = await makeDevice(server);
    const offline = await api('POST', `/devices/${d.id}/calls`, { token: await tokenFor(d.userId), body: { method: 'reboot' } });
    assert.deepEqual(offline, { status: 409, body: { error: 'E_OFFLINE', message: 'The device is not connected' } });
    const byDevice = await api('POST', `/devices/${d.id}/calls`, { key: d.key, body: { method: 'reboot' } });
    assert.equal(byDevice.status, 403);
    assert.equal(byDevice.body.error, 'E_FORBIDDEN');
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    try {
      const foreign = await api('POST', `/devices/${d.id}/calls`, { token: await tokenFor(stranger.userId), body: { method: 'reboot' } });
      assert.equal(foreign.status, 404);
      await sleep(100);
      assert.equal(device.pending.filter(isCall).length, 0, "nothing reached the other user's device");
      const bad = await api('POST', `/devices/${d.id}/calls`, { token: await tokenFor(d.userId), body: { method: '', timeout: 5 } });
      assert.equal(bad.status, 400);
    } finally {
      await device.close();
    }
  });

  test('a persistent call over HTTP: queued (202), long-polled by an HTTP device, answered, and read back with wait', async () => {
    const d = await makeDevice(server);
    const token = await tokenFor(d.userId);
    const made = await api('POST', `/devices/${d.id}/calls`, { token, body: { method: 'water', params: { ml: 200 }, persistent: true, timeout: 60_000 } });
    assert.equal(made.status, 202);
    assert.equal(made.body.state, 'queued');
    const id = made.body.call;
    const status = await api('GET', `/devices/${d.id}/calls/${id}`, { token });
    assert.equal(status.status, 200);
    assert.deepEqual({ ...status.body, created: 0, expires: 0 }, { call: id, method: 'water', params: { ml: 200 }, state: 'queued', created: 0, expires: 0 });

    const next = await api('GET', `/devices/${d.id}/calls/next?wait=1`, { key: d.key });
    assert.deepEqual(next, { status: 200, body: { call: id, method: 'water', params: { ml: 200 } } });
    const empty = await api('GET', `/devices/${d.id}/calls/next?wait=0`, { key: d.key });
    assert.equal(empty.status, 204, 'a sent call is not handed out again');

    const waiting = api('GET', `/devices/${d.id}/calls/${id}?wait=10`, { token });
    await sleep(200);
    assert.deepEqual(await api('POST', `/devices/${d.id}/calls/${id}/reply`, { key: d.key, body: { result: { watered: true } } }), { status: 200, body: { ok: true } });
    const final = await waiting;
    assert.equal(final.body.state, 'answered');
    assert.deepEqual(final.body.result, { watered: true });
    assert.equal((await api('POST', `/devices/${d.id}/calls/${id}/reply`, { key: d.key, body: { result: 1 } })).status, 404, 'answered already');
    assert.equal((await api('GET', `/devices/${d.id}/calls/${id}`, { token: await tokenFor((await makeDevice(server)).userId) })).status, 404, "another user's call");
  });

  test('an HTTP device long-polling gets a live call made while it waits, and its answer reaches the WebSocket app', async () => {
    const d = await makeDevice(server);
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    try {
      const polling = api('GET', `/devices/${d.id}/calls/next?wait=5`, { key: d.key });
      await sleep(200);
      const answer = app.request({ method: 'call', device_method: 'beep', params: 3, timeout: 5000 });
      const next = await polling;
      assert.equal(next.status, 200);
      assert.deepEqual([next.body.method, next.body.params], ['beep', 3]);
      assert.equal((await api('POST', `/devices/${d.id}/calls/${next.body.call}/reply`, { key: d.key, body: { error: 'no speaker' } })).status, 200);
      const got = await answer;
      assert.deepEqual([got.code, got.error], ['E_DEVICE', 'no speaker']);
      const tokenOnDeviceRoute = await api('GET', `/devices/${d.id}/calls/next?wait=0`, { token: await tokenFor(d.userId) });
      assert.equal(tokenOnDeviceRoute.status, 403);
    } finally {
      await app.close();
    }
  });
});
