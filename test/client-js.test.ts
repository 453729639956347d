/** The JavaScript client (iotcommunicate/client) against a real hub: acks, reads, live readings, reconnect, offline queue. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { connect, IotcError, socketUrl } from '../src/client/node.js';
import type { Client, Reading } from '../src/client/node.js';
import { makeDevice, startTestServer, TestClient, tempDir, waitFor, within } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

const clients: Client[] = [];
after(() => clients.forEach((c) => c.close()));
function open(url: string, opts: Parameters<typeof connect>[1] = {}): Client {
  const c = connect(url, { reconnect: { initialDelay: 50, maxDelay: 400 }, ...opts });
  clients.push(c);
  return c;
}

/** The next `event` payload of a client. */
function next<E extends 'reading' | 'connected' | 'disconnected' | 'error'>(c: Client, event: E, ms = 5000): Promise<any> {
  return within(new Promise((resolve) => c.once(event, resolve as any)), ms, event);
}

describe('addresses', () => {
  test('the URL device add prints, with or without /ws, http or no scheme, gives the same socket URL', () => {
    const want = 'ws://127.0.0.1:8888/ws?device=DEV&key=KEY&side=device';
    for (const url of ['ws://127.0.0.1:8888/ws?device=DEV&key=KEY', 'ws://127.0.0.1:8888?device=DEV&key=KEY', 'http://127.0.0.1:8888/?device=DEV&key=KEY', '127.0.0.1:8888/ws/?key=KEY&device=DEV']) {
      assert.equal(socketUrl({ url }), want, url);
    }
    assert.equal(socketUrl({ url: 'https://hub.example/iot', device: 'D', key: 'K', side: 'client' }), 'wss://hub.example/iot/ws?device=D&key=K&side=client');
    assert.equal(socketUrl({ url: 'ws://h/ws?device=A&key=B&side=device', side: 'client' }), 'ws://h/ws?device=A&key=B&side=client', 'options win over the URL');
    assert.throws(() => socketUrl({ url: 'ws://h:1/ws' }), (e: IotcError) => e.code === 'E_VALIDATION' && /device id and key/.test(e.message));
    assert.throws(() => socketUrl({ url: 'ftp://h/', device: 'a', key: 'b' }), (e: IotcError) => e.code === 'E_VALIDATION' && /not a WebSocket URL/.test(e.message));
    assert.throws(() => socketUrl({ url: 'ws://h/', device: 'a', key: 'b', side: 'both' as never }), /side must be/);
  });
});

describe('against a running hub', () => {
  test('put resolves on the durable ack; the other side gets a reading event; get, history and sensors read it back', async () => {
    const d = await makeDevice(server);
    const dev = open(`${server.wsUrl}/ws?device=${d.id}&key=${d.key}`);
    const app = open(server.wsUrl, { device: d.id, key: d.key, side: 'client' });
    await Promise.all([dev.ready(), app.ready()]);
    assert.equal(dev.side, 'device');
    assert.equal(app.side, 'client');

    const seen = next(app, 'reading');
    const ack = await dev.put('temp', 21.5);
    assert.equal(typeof ack.time, 'number');
    // Resolved means committed: the store has it before anything else happens.
    assert.equal((await server.hub.store.latest(d.id, 'temp'))?.value, 21.5);
    const r: Reading = await seen;
    assert.deepEqual(r, { sensor: 'temp', value: 21.5, time: ack.time, write: 'device' });

    const batch = await dev.put([{ sensor: 'temp', value: 22 }, { sensor: 'hum', value: { rel: 40 } }]);
    assert.equal(batch.count, 2);
    assert.deepEqual(await app.get('temp'), { sensor: 'temp', value: 22, time: batch.time, write: 'device' });
    assert.equal(await app.get('nothing-here'), null, 'a sensor without a value reads as null');
    assert.equal(await app.get('temp', { write: 'client' }), null);
    assert.deepEqual((await app.history('temp', { limit: 5 })).map((x) => x.value), [21.5, 22]);
    assert.deepEqual((await app.history('temp', { from: new Date(ack.time), limit: 1 })).map((x) => x.value), [21.5]);
    assert.deepEqual((await dev.sensors()).map((x) => [x.sensor, x.value]), [['hum', { rel: 40 }], ['temp', 22]]);
  });

  test('every put carries an id on the wire, so the hub acknowledges it', async () => {
    const d = await makeDevice(server);
    const peek = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const dev = open(server.wsUrl, { device: d.id, key: d.key });
    await dev.ready();
    await dev.put('x', 1);
    // The client's own ack arrived, so the hub saw an id: a put without one gets no reply in the original protocol.
    assert.equal((await peek.reading()).value, 1);
    await peek.close();
  });

  test('errors carry the catalogue code and the hub message', async () => {
    const d = await makeDevice(server);
    const dev = open(server.wsUrl, { device: d.id, key: d.key });
    await assert.rejects(dev.put('', 1), (e: IotcError) => e instanceof IotcError && e.code === 'E_VALIDATION' && /sensor must not be empty/.test(e.message));
    await assert.rejects(dev.history('t', { limit: 0 }), (e: IotcError) => e.code === 'E_VALIDATION' && /limit must be at least 1/.test(e.message));
    await assert.rejects(dev.request({ method: 'frobnicate' }), (e: IotcError) => e.code === 'E_BAD_MESSAGE');
  });

  test('a wrong key never reports connected: ready() rejects with E_AUTH and the client stops trying', async () => {
    const d = await makeDevice(server);
    const c = open(server.wsUrl, { device: d.id, key: 'AAAAAAAAAAAAAAA' });
    let connected = 0;
    c.on('connected', () => connected++);
    const gone = next(c, 'disconnected');
    const put = c.put('t', 1);
    await assert.rejects(c.ready(), (e: IotcError) => e.code === 'E_AUTH' && e.message === 'Wrong device id or key');
    await assert.rejects(put, (e: IotcError) => e.code === 'E_AUTH', 'what waited fails with the reason');
    const ev = await gone;
    assert.equal(ev.code, 4401);
    assert.equal(ev.retryIn, null);
    assert.equal(connected, 0);
    assert.equal(c.connected, false);
    await assert.rejects(c.get('t'), (e: IotcError) => e.code === 'E_AUTH', 'later requests fail with the same reason');
  });

  test('reconnects with backoff across a server restart; puts made meanwhile are queued and resolve on their ack', async () => {
    const { dir, cleanup } = tempDir();
    let hub = await startTestServer({}, dir);
    const port = hub.port;
    try {
      const d = await makeDevice(hub);
      const dev = open(`ws://127.0.0.1:${port}`, { device: d.id, key: d.key });
      await dev.ready();
      await dev.put('count', 1);
      const delays: (number | null)[] = [];
      dev.on('disconnected', (e) => delays.push(e.retryIn));
      await hub.stop({ keepData: true });
      await waitFor(() => delays.length >= 2, 5000, 'retries while the hub is down');
      assert.equal(dev.connected, false);
      assert.ok(delays.every((ms) => ms !== null && ms >= 25 && ms <= 400), `jittered, capped delays: ${delays}`);

      const queued = [dev.put('count', 2), dev.put('count', 3)];
      const back = next(dev, 'connected', 10_000);
      hub = await startTestServer({ port }, dir);
      assert.deepEqual(await back, { reconnected: true });
      const acks = await within(Promise.all(queued), 5000, 'acks of the queued puts');
      assert.ok(acks[0].time <= acks[1].time);
      assert.deepEqual((await hub.hub.store.history(d.id, 'count', { limit: 10 })).map((r) => r.value), [1, 2, 3], 'sent once each, in order');
      assert.equal((await dev.get('count'))?.value, 3);
    } finally {
      await hub.stop({ keepData: true });
      cleanup();
    }
  });

  test('a long offline queue is flushed at a pace the hub accepts: 600 puts, every one acknowledged, in order', async () => {
    const d = await makeDevice(server);
    const c = open(server.wsUrl, { device: d.id, key: d.key });
    // Made before the connection is accepted, so they all wait in the queue (the hub's default limit: 200/s, bursts of 400).
    const puts = Array.from({ length: 600 }, (_, i) => c.put('seq', i));
    const acks = await within(Promise.all(puts), 15_000, 'all acks');
    assert.equal(acks.length, 600);
    const stored = await server.hub.store.history(d.id, 'seq', { limit: 1000 });
    assert.deepEqual(stored.map((r) => r.value), Array.from({ length: 600 }, (_, i) => i));
  });

  test('the offline queue is bounded: past queueLimit a put is refused with E_LIMIT', async () => {
    const d = await makeDevice(server);
    const c = open('ws://127.0.0.1:1', { device: d.id, key: d.key, queueLimit: 2 });
    const first = [c.put('a', 1), c.put('a', 2)];
    await assert.rejects(c.put('a', 3), (e: IotcError) => e.code === 'E_LIMIT' && /queueLimit/.test(e.message));
    c.close();
    for (const p of first) await assert.rejects(p, (e: IotcError) => e.code === 'E_UNAVAILABLE', 'close() fails what still waits');
  });

  test('a read made while disconnected times out with E_TIMEOUT saying so', async () => {
    const d = await makeDevice(server);
    const c = open('ws://127.0.0.1:1', { device: d.id, key: d.key, requestTimeout: 200 });
    await assert.rejects(c.get('t'), (e: IotcError) => e.code === 'E_TIMEOUT' && /not connected to the hub within 0.2s/.test(e.message));
  });
});

describe('onCall and call against a stand-in hub (the wire of docs/protocol.md, no server needed)', () => {
  /** A WebSocket server that accepts every connection and runs `script` on it. */
  async function fakeHub(script: (send: (m: object) => void, inbox: () => Promise<any>) => Promise<void>): Promise<{ url: string; done: Promise<void>; close: () => void }> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    let finish!: (v: Promise<void>) => void;
    const done = new Promise<void>((r) => (finish = r as never));
    wss.on('connection', (ws) => {
      const queue: any[] = [];
      const waiting: ((m: any) => void)[] = [];
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString());
        if (m.method === 'ping') return ws.send(JSON.stringify({ ok: true, id: m.id, time: Date.now() }));
        const w = waiting.shift();
        if (w) w(m);
        else queue.push(m);
      });
      const inbox = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r)));
      finish(script((m) => ws.send(JSON.stringify(m)), inbox));
    });
    const port = (wss.address() as { port: number }).port;
    return { url: `ws://127.0.0.1:${port}/ws?device=D&key=K`, done, close: () => wss.close() };
  }

  test('the device answers a call with its handler result, a thrown error, or "no handler"', async () => {
    const hub = await fakeHub(async (send, inbox) => {
      send({ sensor: 'reboot', value: { delay: 5 }, call: 'c_AAAA', time: 1, write: 'client' });
      let m = await inbox();
      assert.deepEqual({ ...m, id: undefined }, { method: 'reply', call: 'c_AAAA', result: { rebooting: 5 }, id: undefined });
      assert.equal(typeof m.id, 'number', 'the reply carries an id so its delivery is acknowledged');
      send({ ok: true, id: m.id });
      send({ sensor: 'reboot', value: { delay: -1 }, call: 'c_BBBB', time: 2, write: 'client' });
      m = await inbox();
      assert.deepEqual([m.call, m.error, 'result' in m], ['c_BBBB', 'delay must be positive', false]);
      send({ sensor: 'selfdestruct', value: null, call: 'c_CCCC', time: 3, write: 'client' });
      m = await inbox();
      assert.deepEqual([m.call, m.error], ['c_CCCC', 'This device has no handler for "selfdestruct"']);
    });
    const dev = open(hub.url);
    const readings: Reading[] = [];
    dev.on('reading', (r) => readings.push(r));
    dev.onCall('reboot', async (params: any) => {
      if (params.delay < 0) throw new Error('delay must be positive');
      return { rebooting: params.delay };
    });
    await within(hub.done, 5000, 'the device answers');
    assert.deepEqual(readings, [], 'calls are not readings');
    hub.close();
  });

  test('call sends the contract message and maps answers and errors', async () => {
    const hub = await fakeHub(async (send, inbox) => {
      let m = await inbox();
      assert.deepEqual({ ...m, id: 0 }, { method: 'call', id: 0, device_method: 'reboot', params: { delay: 5 }, timeout: 5000, persistent: false });
      send({ ok: true, id: m.id, call: 'c_1', result: { rebooting: true } });
      m = await inbox();
      send({ ok: false, id: m.id, call: 'c_2', code: 'E_DEVICE', error: 'busy' });
      m = await inbox();
      send({ ok: false, id: m.id, code: 'E_OFFLINE', error: 'The device is not connected' });
      m = await inbox();
      assert.equal(m.persistent, true);
      send({ ok: true, id: m.id, call: 'c_4', state: 'queued' });
      m = await inbox();
      assert.deepEqual({ ...m, id: 0 }, { method: 'call_status', id: 0, call: 'c_4' });
      send({ ok: true, id: m.id, call: 'c_4', state: 'queued' });
      send({ sensor: '$call', value: { call: 'c_4', state: 'answered', result: 42 }, time: 5 });
    });
    const app = open(hub.url, { side: 'client' });
    assert.deepEqual(await app.call('reboot', { delay: 5 }, { timeout: 5000 }), { rebooting: true });
    await assert.rejects(app.call('reboot'), (e: IotcError) => e.code === 'E_DEVICE' && e.message === 'busy' && e.call === 'c_2');
    await assert.rejects(app.call('reboot'), (e: IotcError) => e.code === 'E_OFFLINE');
    const ticket = await app.call('reboot', null, { persistent: true });
    assert.deepEqual(ticket, { call: 'c_4', state: 'queued' });
    assert.equal(await within(app.callResult('c_4'), 5000, 'the pushed answer'), 42);
    await hub.done;
    hub.close();
  });
});
