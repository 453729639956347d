/**
 * Commands with confirmation ("calls") over WebSocket: an app calls a method of its device and gets the
 * device's answer, a timeout, an offline or device error; persistent calls wait for the device.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeDevice, sleep, startTestServer, TestClient, waitFor } from './helpers.js';
import type { Message, TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ maxCallsPerDevice: 3, maxCallsPerUser: 5 });
});
after(() => server.stop());

const CALL_ID = /^c_[a-z2-7]{16}$/;
const isCall = (m: Message) => typeof m.call === 'string' && 'sensor' in m;

async function pair() {
  const d = await makeDevice(server);
  const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
  const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  return { d, device, app, close: () => Promise.all([device.close(), app.close()]) };
}

describe('calls over WebSocket', () => {
  test("an app's call reaches the device as a frame with sensor and value, and the device's answer comes back", async () => {
    const { device, app, close } = await pair();
    try {
      const answer = app.request({ method: 'call', device_method: 'reboot', params: { delay: 5 }, timeout: 5000 });
      const frame = await device.next(isCall);
      assert.match(frame.call, CALL_ID);
      assert.deepEqual({ ...frame, time: 0 }, { sensor: 'reboot', value: { delay: 5 }, call: frame.call, time: 0, write: 'client' });
      assert.equal(typeof frame.time, 'number');
      const ack = await device.request({ method: 'reply', call: frame.call, result: { rebooting: true } });
      assert.deepEqual(ack, { ok: true, id: ack.id });
      const got = await answer;
      assert.deepEqual(got, { ok: true, id: got.id, call: frame.call, result: { rebooting: true } });
      // The first answer wins: a second one is refused.
      const again = await device.request({ method: 'reply', call: frame.call, result: 2 });
      assert.equal(again.code, 'E_NOT_FOUND');
      // Calls are not readings.
      assert.equal((await app.request({ method: 'get', sensor: 'reboot' })).code, 'E_NOT_FOUND');
    } finally {
      await close();
    }
  });

  test('a reply without an id is answered by nothing; params default to null; a device error is E_DEVICE with the call id', async () => {
    const { device, app, close } = await pair();
    try {
      const answer = app.request({ method: 'call', device_method: 'led' });
      const frame = await device.next(isCall);
      assert.equal(frame.value, null);
      device.send({ method: 'reply', call: frame.call, error: 'busy' });
      const got = await answer;
      assert.deepEqual(got, { ok: false, id: got.id, call: frame.call, code: 'E_DEVICE', error: 'busy' });
      await sleep(100);
      assert.deepEqual(device.pending, [], 'no answer to a reply without an id');
    } finally {
      await close();
    }
  });

  test('every device-side connection gets the call; the first answer wins', async () => {
    const { d, device, app, close } = await pair();
    const second = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    try {
      const answer = app.request({ method: 'call', device_method: 'ping_me' });
      const [a, b] = await Promise.all([device.next(isCall), second.next(isCall)]);
      assert.equal(a.call, b.call);
      await second.request({ method: 'reply', call: b.call, result: 'second' });
      assert.equal((await answer).result, 'second');
      assert.equal((await device.request({ method: 'reply', call: a.call, result: 'first' })).code, 'E_NOT_FOUND');
    } finally {
      await second.close();
      await close();
    }
  });

  test('no answer in time is E_TIMEOUT naming the call; a late answer is refused', async () => {
    const { device, app, close } = await pair();
    try {
      const started = Date.now();
      const answer = app.request({ method: 'call', device_method: 'slow', timeout: 300 });
      const frame = await device.next(isCall);
      const got = await answer;
      assert.deepEqual(got, { ok: false, id: got.id, call: frame.call, code: 'E_TIMEOUT', error: 'The device did not answer within 0.3s' });
      assert.ok(Date.now() - started >= 290);
      assert.equal((await device.request({ method: 'reply', call: frame.call, result: 1 })).code, 'E_NOT_FOUND');
    } finally {
      await close();
    }
  });

  test('a device that is not connected: E_OFFLINE at once, without a call id', async () => {
    const d = await makeDevice(server);
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    try {
      const got = await app.request({ method: 'call', device_method: 'reboot', timeout: 5000 }, 2000);
      assert.deepEqual(got, { ok: false, id: got.id, code: 'E_OFFLINE', error: 'The device is not connected' });
    } finally {
      await app.close();
    }
  });

  test('a device-side connection cannot call or read calls; a client-side one cannot reply', async () => {
    const { device, app, close } = await pair();
    try {
      const refused = await device.request({ method: 'call', device_method: 'reboot' });
      assert.equal(refused.code, 'E_FORBIDDEN');
      assert.match(refused.error, /Only the client side/);
      assert.equal((await device.request({ method: 'call_status', call: 'c_abcdefghijklmnop' })).code, 'E_FORBIDDEN');
      assert.equal((await app.request({ method: 'reply', call: 'c_abcdefghijklmnop', result: 1 })).code, 'E_FORBIDDEN');
      await sleep(100);
      assert.equal(app.pending.filter(isCall).length, 0, 'nothing reached the app side');
    } finally {
      await close();
    }
  });

  test("a device cannot answer another device's call", async () => {
    const mine = await pair();
    const other = await pair();
    try {
      const answer = mine.app.request({ method: 'call', device_method: 'reboot', timeout: 1000 });
      const frame = await mine.device.next(isCall);
      assert.equal((await other.device.request({ method: 'reply', call: frame.call, result: 'hijack' })).code, 'E_NOT_FOUND');
      assert.equal((await answer).code, 'E_TIMEOUT');
    } finally {
      await mine.close();
      await other.close();
    }
  });

  test('bad calls say what is wrong', async () => {
    const { app, close } = await pair();
    try {
      const cases: [Message, RegExp][] = [
        [{ method: 'call' }, /device_method: the method name is required/],
        [{ method: 'call', device_method: '' }, /must not be empty/],
        [{ method: 'call', device_method: 'x', timeout: 50 }, /timeout must be 100\.\.60000 ms/],
        [{ method: 'call', device_method: 'x', timeout: 60_001 }, /timeout must be 100\.\.60000 ms/],
        [{ method: 'call', device_method: 'x', timeout: 'soon' }, /timeout must be a number/],
        [{ method: 'call', device_method: 'x', persistent: 'yes' }, /persistent must be true or false/],
        [{ method: 'call', device_method: 'x', persistent: true, timeout: 8 * 86_400_000 }, /persistent call must be/],
        [{ method: 'call_status' }, /call/],
      ];
      for (const [body, message] of cases) {
        const got = await app.request(body);
        assert.equal(got.ok, false, JSON.stringify(body));
        assert.equal(got.code, 'E_VALIDATION', JSON.stringify(body));
        assert.match(got.error, message);
      }
    } finally {
      await close();
    }
  });

  test('a persistent call waits queued for the device, is delivered when it connects, and its answer is pushed and readable', async () => {
    const d = await makeDevice(server);
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const watcher = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    let device: TestClient | null = null;
    try {
      const queued = await app.request({ method: 'call', device_method: 'firmware', params: { v: 2 }, persistent: true, timeout: 60_000 });
      assert.equal(queued.ok, true);
      assert.equal(queued.state, 'queued');
      assert.match(queued.call, CALL_ID);
      const status = await app.request({ method: 'call_status', call: queued.call });
      assert.equal(status.state, 'queued');

      device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
      const frame = await device.next(isCall);
      assert.deepEqual([frame.sensor, frame.value, frame.call], ['firmware', { v: 2 }, queued.call]);
      const sent = await watcher.next((m) => m.sensor === '$call' && m.value.state === 'sent');
      assert.equal(sent.value.call, queued.call);
      assert.equal((await app.request({ method: 'call_status', call: queued.call })).state, 'sent');

      await device.request({ method: 'reply', call: frame.call, result: { updated: true } });
      for (const c of [app, watcher]) {
        const pushed = await c.next((m) => m.sensor === '$call' && m.value.state === 'answered');
        assert.deepEqual(pushed.value, { call: queued.call, state: 'answered', result: { updated: true } });
        assert.equal(typeof pushed.time, 'number');
      }
      const final = await app.request({ method: 'call_status', call: queued.call });
      assert.deepEqual({ ...final, created: 0, expires: 0 }, { ok: true, id: final.id, call: queued.call, state: 'answered', result: { updated: true }, created: 0, expires: 0 });
    } finally {
      await device?.close();
      await app.close();
      await watcher.close();
    }
  });

  test('a persistent call to a connected device is sent at once; one left unanswered expires and the apps are told', async () => {
    const { device, app, close } = await pair();
    try {
      const made = await app.request({ method: 'call', device_method: 'blink', persistent: true, timeout: 500 });
      assert.equal(made.state, 'sent');
      const frame = await device.next(isCall);
      assert.equal(frame.call, made.call);
      const pushed = await app.next((m) => m.sensor === '$call' && m.value.state === 'expired', 4000);
      assert.deepEqual(pushed.value, { call: made.call, state: 'expired' });
      assert.equal((await app.request({ method: 'call_status', call: made.call })).state, 'expired');
      assert.equal((await device.request({ method: 'reply', call: made.call, result: 1 })).code, 'E_NOT_FOUND');
    } finally {
      await close();
    }
  });

  test('open calls are bounded per device and per user (E_LIMIT names the setting); call_status of another device is not found', async () => {
    const d = await makeDevice(server);
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const other = await pair();
    try {
      for (let i = 0; i < 3; i++) assert.equal((await app.request({ method: 'call', device_method: 'q', persistent: true })).state, 'queued');
      const refused = await app.request({ method: 'call', device_method: 'q', persistent: true });
      assert.equal(refused.code, 'E_LIMIT');
      assert.match(refused.error, /IOTC_MAX_CALLS_PER_DEVICE/);
      assert.equal((await app.request({ method: 'call_status', call: 'c_abcdefghijklmnop' })).code, 'E_NOT_FOUND', 'an unknown call');
      const mineCall = (await other.app.request({ method: 'call', device_method: 'q', persistent: true, timeout: 60_000 })).call;
      await other.device.next(isCall);
      assert.equal((await app.request({ method: 'call_status', call: mineCall })).code, 'E_NOT_FOUND', "another device's call");
    } finally {
      await app.close();
      await other.close();
    }
  });

  test('the per-user bound counts every device of the user', async () => {
    const d = await makeDevice(server);
    const second = await server.hub.accounts.createDevice(d.userId, 'Second');
    const third = await server.hub.accounts.createDevice(d.userId, 'Third');
    const apps = await Promise.all([
      TestClient.connect(server.wsUrl, d.id, d.key, 'client'),
      TestClient.connect(server.wsUrl, second.id, second.key, 'client'),
      TestClient.connect(server.wsUrl, third.id, third.key, 'client'),
    ]);
    try {
      const codes: string[] = [];
      for (const app of apps) for (let i = 0; i < 2; i++) codes.push((await app.request({ method: 'call', device_method: 'q', persistent: true })).code ?? 'ok');
      assert.deepEqual(codes, ['ok', 'ok', 'ok', 'ok', 'ok', 'E_LIMIT']);
      const refused = await apps[2].request({ method: 'call', device_method: 'q', persistent: true });
      assert.match(refused.error, /IOTC_MAX_CALLS_PER_USER/);
    } finally {
      await Promise.all(apps.map((a) => a.close()));
    }
  });

  test('live calls are bounded too', async () => {
    const { device, app, close } = await pair();
    try {
      const waiting = [1, 2, 3].map(() => app.request({ method: 'call', device_method: 'hold', timeout: 2000 }));
      await waitFor(() => device.pending.filter(isCall).length === 3, 2000, 'three calls at the device');
      const refused = await app.request({ method: 'call', device_method: 'hold' });
      assert.equal(refused.code, 'E_LIMIT');
      for (const frame of device.pending.filter(isCall)) device.send({ method: 'reply', call: frame.call, result: 'ok' });
      for (const w of waiting) assert.equal((await w).result, 'ok');
    } finally {
      await close();
    }
  });
});
