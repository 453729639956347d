/** The relay end to end over real sockets: delivery, reads, batches, sync on connect, limits, restart. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { makeDevice, sleep, startTestServer, tempDir, TestClient, within, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ maxConnectionsPerDevice: 3, rateLimit: 0 });
});
after(() => server.stop());

async function pair(s = server) {
  const d = await makeDevice(s);
  const device = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
  const client = await TestClient.connect(s.wsUrl, d.id, d.key, 'client');
  return { d, device, client, close: () => Promise.all([device.close(), client.close()]) };
}

/**
 * Proves nothing else is waiting for `c`: a reading sent to it before now would arrive before the
 * reply to this ping, because one socket keeps its order.
 */
async function assertNoReadings(c: TestClient): Promise<void> {
  const pong = await c.request({ method: 'ping' });
  assert.equal(pong.ok, true);
  assert.deepEqual(c.pending.filter((m) => !('ok' in m)), [], 'no reading should have been delivered here');
}

describe('live delivery', () => {
  test('ids and keys made before the unambiguous alphabet, with O, 0, I and 1, still connect', async () => {
    const { hashSecret } = await import('../src/core/secrets.js');
    const user = await server.hub.store.createUser({ email: `old-alphabet-${Date.now()}@example.com`, name: 'Old', passwordHash: 'x' });
    const [id, key] = ['OLD0DEVICE1IOIO01I0O', 'KEY0O1I01IO0I1O'];
    await server.hub.store.createDevice({ id, userId: user.id, name: 'From before', keyHash: hashSecret(key) });
    const device = await TestClient.connect(server.wsUrl, id, key, 'device');
    const client = await TestClient.connect(server.wsUrl, id, key, 'client');
    assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: 1 } })).ok, true);
    assert.equal((await client.reading()).value, 1);
    await Promise.all([device.close(), client.close()]);
  });

  test('device → client: the reading arrives with sensor, value, time and writer', async () => {
    const { device, client, close } = await pair();
    const before = Date.now();
    const ack = await device.request({ method: 'put', status: { sensor: 'temp', value: 21.5 } });
    assert.equal(ack.ok, true);
    assert.equal(typeof ack.time, 'number');
    assert.ok(ack.time >= before && ack.time <= Date.now());
    const got = await client.reading();
    assert.deepEqual(got, { sensor: 'temp', value: 21.5, time: ack.time, write: 'device' });
    await close();
  });

  test('client → device: any JSON value travels unchanged', async () => {
    const { device, client, close } = await pair();
    const values = [true, 'on', { r: 255, g: 0, list: [1, 2, { deep: null }] }, null, [1, 'two'], -0.125, 0];
    for (const value of values) {
      const ack = await client.request({ method: 'put', status: { sensor: 'led', value } });
      assert.equal(ack.ok, true);
      const got = await device.reading();
      assert.deepEqual(got, { sensor: 'led', value, time: ack.time, write: 'client' });
    }
    await close();
  });

  test('a writer never receives its own side: another device connection of the same id gets nothing', async () => {
    const { d, device, client, close } = await pair();
    const twin = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const otherClient = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    await device.request({ method: 'put', status: { sensor: 'temp', value: 1 } });
    // Both clients get it...
    assert.equal((await client.reading()).value, 1);
    assert.equal((await otherClient.reading()).value, 1);
    // ...neither device connection does.
    await assertNoReadings(device);
    await assertNoReadings(twin);

    await client.request({ method: 'put', status: { sensor: 'led', value: true } });
    assert.equal((await device.reading()).value, true);
    assert.equal((await twin.reading()).value, true);
    await assertNoReadings(otherClient);
    await assertNoReadings(client);
    await Promise.all([close(), twin.close(), otherClient.close()]);
  });

  test("another device's readings never arrive", async () => {
    const a = await pair();
    const b = await pair();
    await a.device.request({ method: 'put', status: { sensor: 'temp', value: 'from a' } });
    assert.equal((await a.client.reading()).value, 'from a');
    await assertNoReadings(b.client);
    await assertNoReadings(b.device);
    await Promise.all([a.close(), b.close()]);
  });

  test('many pipelined puts are acknowledged and delivered in the order sent', async () => {
    const { device, client, close } = await pair();
    const n = 1000;
    const acks: Promise<{ [k: string]: any }>[] = [];
    for (let i = 0; i < n; i++) acks.push(device.request({ method: 'put', status: { sensor: 'n', value: i } }));
    const replies = await Promise.all(acks);
    assert.ok(replies.every((r) => r.ok === true));
    // Acks themselves come back in send order: each reply carries its request's id.
    const got: number[] = [];
    for (let i = 0; i < n; i++) got.push((await client.reading()).value);
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => i));
    const times = replies.map((r) => r.time);
    assert.deepEqual(times, [...times].sort((x, y) => x - y), 'server times never go backwards');
    await close();
  });
});

describe('reads', () => {
  test('gets answers the latest value, E_NOT_FOUND when there is none, and honours "write"', async () => {
    const { device, client, close } = await pair();
    const none = await client.request({ method: 'gets', sensor: 'temp' });
    assert.deepEqual(none, { ok: false, error: 'No value stored for sensor "temp"', code: 'E_NOT_FOUND', sensor: 'temp', value: null, id: none.id });

    await device.request({ method: 'put', status: { sensor: 'temp', value: 1 } });
    const a2 = await device.request({ method: 'put', status: { sensor: 'temp', value: 2 } });
    const got = await client.request({ method: 'gets', sensor: 'temp' });
    assert.deepEqual(got, { ok: true, id: got.id, sensor: 'temp', value: 2, time: a2.time, write: 'device' });

    // The client writes the same sensor: now the latest overall is the client's, but each side keeps its own.
    const c1 = await client.request({ method: 'put', status: { sensor: 'temp', value: 'client says 3' } });
    assert.equal((await device.request({ method: 'gets', sensor: 'temp' })).value, 'client says 3');
    const byDevice = await device.request({ method: 'gets', sensor: 'temp', write: 'device' });
    assert.equal(byDevice.value, 2);
    assert.equal(byDevice.write, 'device');
    const byClient = await device.request({ method: 'gets', sensor: 'temp', write: 'client' });
    assert.equal(byClient.value, 'client says 3');
    assert.equal(byClient.time, c1.time);
    const noClientHumidity = await device.request({ method: 'gets', sensor: 'humidity', write: 'client' });
    assert.equal(noClientHumidity.code, 'E_NOT_FOUND');
    await close();
  });

  test('a read on the same connection sees the put sent just before it, without waiting for the ack', async () => {
    const { device, close } = await pair();
    device.send({ method: 'put', status: { sensor: 'x', value: 'fresh' }, id: 'w' });
    const r = await device.request({ method: 'gets', sensor: 'x' });
    assert.equal(r.value, 'fresh');
    await close();
  });

  test('history: the last N oldest first, a from/to range in ms or ISO 8601, and the writer filter', async () => {
    const { device, client, close } = await pair();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      times.push((await device.request({ method: 'put', status: { sensor: 'h', value: i } })).time);
      await sleep(15);
    }
    await client.request({ method: 'put', status: { sensor: 'h', value: 'c' } });

    const last3 = await client.request({ method: 'history', sensor: 'h', limit: 3 });
    assert.equal(last3.ok, true);
    assert.equal(last3.sensor, 'h');
    assert.deepEqual(last3.readings.map((r: any) => r.value), [3, 4, 'c']);
    assert.deepEqual(Object.keys(last3.readings[0]).sort(), ['sensor', 'time', 'value', 'write']);

    const all = await client.request({ method: 'history', sensor: 'h' });
    assert.deepEqual(all.readings.map((r: any) => r.value), [0, 1, 2, 3, 4, 'c']);

    const range = await client.request({ method: 'history', sensor: 'h', from: times[1], to: times[3] });
    assert.deepEqual(range.readings.map((r: any) => r.value), [1, 2, 3]);

    const iso = await client.request({ method: 'history', sensor: 'h', from: new Date(times[2]).toISOString(), to: new Date(times[2]).toISOString() });
    assert.deepEqual(iso.readings.map((r: any) => r.value), [2]);
    assert.equal(iso.readings[0].time, times[2]);

    // A range with a limit reads forward from its start.
    const fromLimited = await client.request({ method: 'history', sensor: 'h', from: times[0], limit: 2 });
    assert.deepEqual(fromLimited.readings.map((r: any) => r.value), [0, 1]);

    const onlyDevice = await client.request({ method: 'history', sensor: 'h', write: 'device', limit: 2 });
    assert.deepEqual(onlyDevice.readings.map((r: any) => r.value), [3, 4]);
    assert.ok(onlyDevice.readings.every((r: any) => r.write === 'device'));

    const empty = await client.request({ method: 'history', sensor: 'nothing-here' });
    assert.deepEqual(empty, { ok: true, id: empty.id, sensor: 'nothing-here', readings: [] });
    await close();
  });

  test('sensors lists the latest value of every sensor, by name, with the writer', async () => {
    const { device, client, close } = await pair();
    assert.deepEqual((await client.request({ method: 'sensors' })).sensors, []);
    await device.request({ method: 'put', status: { sensor: 'temp', value: 20 } });
    await device.request({ method: 'put', status: { sensor: 'temp', value: 21 } });
    await device.request({ method: 'put', status: { sensor: 'humidity', value: 40 } });
    await client.request({ method: 'put', status: { sensor: 'led', value: true } });
    const all = await client.request({ method: 'sensors' });
    assert.deepEqual(
      all.sensors.map((r: any) => [r.sensor, r.value, r.write]),
      [['humidity', 40, 'device'], ['led', true, 'client'], ['temp', 21, 'device']],
    );
    const fromClient = await device.request({ method: 'sensors', write: 'client' });
    assert.deepEqual(fromClient.sensors.map((r: any) => r.sensor), ['led']);
    await close();
  });

  test('ping answers the server time', async () => {
    const { device, close } = await pair();
    const t0 = Date.now();
    const pong = await device.request({ method: 'ping' });
    assert.equal(pong.ok, true);
    assert.ok(pong.time >= t0 && pong.time <= Date.now());
    await close();
  });
});

describe('batch put', () => {
  test('acknowledges the count once and delivers every reading in order', async () => {
    const { device, client, close } = await pair();
    const status = Array.from({ length: 50 }, (_, i) => ({ sensor: i % 2 ? 'odd' : 'even', value: i }));
    const ack = await device.request({ method: 'put', status });
    assert.equal(ack.ok, true);
    assert.equal(ack.count, 50);
    assert.equal(typeof ack.time, 'number');
    const got = [];
    for (let i = 0; i < 50; i++) got.push(await client.reading());
    assert.deepEqual(got.map((r) => [r.sensor, r.value, r.write]), status.map((s) => [s.sensor, s.value, 'device']));
    assert.equal((await client.request({ method: 'gets', sensor: 'odd' })).value, 49);
    assert.equal((await client.request({ method: 'history', sensor: 'even', limit: 100 })).readings.length, 25);
    await close();
  });

  test('a batch of one is still a batch: the ack carries count 1', async () => {
    const { device, close } = await pair();
    const ack = await device.request({ method: 'put', status: [{ sensor: 'a', value: 1 }] });
    assert.equal(ack.count, 1);
    await close();
  });
});

/** Waits until the server has let go of every connection of this side (its sync cursor is saved then). */
async function gone(deviceId: string, side: 'device' | 'client', s = server) {
  await waitFor(() => s.hub.relay.presence.count(deviceId, side) === 0, 5000, `${side} of ${deviceId} to disconnect`);
}

describe('sync on connect', () => {
  test('a device that was offline gets what the client wrote, first and marked sync: the latest of each sensor', async () => {
    const d = await makeDevice(server);
    const client = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const led = await client.request({ method: 'put', status: { sensor: 'led', value: true } });
    await client.request({ method: 'put', status: { sensor: 'color', value: 'red' } });
    const blue = await client.request({ method: 'put', status: { sensor: 'color', value: 'blue' } });

    const lamp = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    assert.deepEqual(await lamp.next(), { sensor: 'led', value: true, time: led.time, write: 'client', sync: true });
    assert.deepEqual(await lamp.next(), { sensor: 'color', value: 'blue', time: blue.time, write: 'client', sync: true });
    await assertNoReadings(lamp);
    // Live readings after that carry no sync mark.
    await client.request({ method: 'put', status: { sensor: 'led', value: false } });
    assert.deepEqual(Object.keys(await lamp.reading()).sort(), ['sensor', 'time', 'value', 'write']);
    await Promise.all([client.close(), lamp.close()]);
  });

  test('a client that never connected gets the device latest values; the device gets nothing of its own', async () => {
    const d = await makeDevice(server);
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    await device.request({ method: 'put', status: { sensor: 'temp', value: 1 } });
    await device.request({ method: 'put', status: { sensor: 'temp', value: 2 } });
    await device.request({ method: 'put', status: { sensor: 'hum', value: 3 } });
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    assert.deepEqual([await app.next(), await app.next()].map((m) => [m.sensor, m.value, m.write, m.sync]), [
      ['temp', 2, 'device', true],
      ['hum', 3, 'device', true],
    ]);
    await assertNoReadings(app);
    await device.close();
    await gone(d.id, 'device');
    const again = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    await assertNoReadings(again);
    await Promise.all([app.close(), again.close()]);
  });

  test('a reconnect gets only what is new since it left; what it saw live is not sent again', async () => {
    const d = await makeDevice(server);
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    await device.request({ method: 'put', status: { sensor: 'old', value: 'seen at first connect' } });
    let app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    assert.equal((await app.next()).sync, true);
    await device.request({ method: 'put', status: { sensor: 'live', value: 'seen live' } });
    assert.equal((await app.reading()).value, 'seen live');
    await app.close();
    await gone(d.id, 'client');

    await device.request({ method: 'put', status: { sensor: 'temp', value: 5 } });
    await device.request({ method: 'put', status: { sensor: 'temp', value: 6 } });
    app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    assert.deepEqual(await app.next(), { sensor: 'temp', value: 6, time: (await app.request({ method: 'gets', sensor: 'temp' })).time, write: 'device', sync: true });
    await assertNoReadings(app);
    await app.close();
    await gone(d.id, 'client');

    app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    await assertNoReadings(app);
    await Promise.all([app.close(), device.close()]);
  });

  test('while one connection of a side stays, a second one of that side still syncs from the shared cursor', async () => {
    const d = await makeDevice(server);
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    await app.request({ method: 'put', status: { sensor: 'led', value: 'on' } });
    const lamp1 = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    assert.equal((await lamp1.next()).sync, true);
    const lamp2 = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    // The side has not been away yet (lamp1 never left), so the new connection is brought up to date too.
    const m = await lamp2.next();
    assert.deepEqual([m.sensor, m.value, m.sync], ['led', 'on', true]);
    await Promise.all([app.close(), lamp1.close(), lamp2.close()]);
  });
});

describe('limits', () => {
  test('connections per device and side are capped: the extra one is told why and closed with 4429', async () => {
    const d = await makeDevice(server);
    const open = [];
    for (let i = 0; i < 3; i++) open.push(await TestClient.connect(server.wsUrl, d.id, d.key, 'device'));
    const extra = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const msg = await extra.next();
    assert.deepEqual(msg, { ok: false, error: 'At most 3 device connections per device', code: 'E_TOO_MANY_CONNECTIONS', sensor: null, value: null });
    const closed = await within(extra.closed, 5000, 'the socket to close');
    assert.equal(closed.code, 4429);
    assert.equal(closed.reason, 'At most 3 device connections per device');
    // The other side has its own allowance, and the open ones still work.
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    await open[0].request({ method: 'put', status: { sensor: 't', value: 1 } });
    assert.equal((await app.reading()).value, 1);
    // A freed slot can be taken again.
    await open[2].close();
    await waitFor(() => server.hub.relay.presence.count(d.id, 'device') === 2);
    const again = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    assert.equal((await again.request({ method: 'ping' })).ok, true);
    await Promise.all([...open.slice(0, 2).map((c) => c.close()), app.close(), again.close()]);
  });
});

describe('restart', () => {
  test('a server restarted on the same data dir still answers gets, history and sync', async () => {
    const { dir, cleanup } = tempDir();
    try {
      let s = await startTestServer({}, dir);
      const d = await makeDevice(s);
      const device = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
      for (let i = 0; i < 5; i++) await device.request({ method: 'put', status: { sensor: 'temp', value: i } });
      await device.close();
      await s.stop({ keepData: true });

      s = await startTestServer({}, dir);
      try {
        const app = await TestClient.connect(s.wsUrl, d.id, d.key, 'client');
        const synced = await app.next();
        assert.deepEqual([synced.sensor, synced.value, synced.sync], ['temp', 4, true]);
        assert.equal((await app.request({ method: 'gets', sensor: 'temp' })).value, 4);
        const h = await app.request({ method: 'history', sensor: 'temp', limit: 10 });
        assert.deepEqual(h.readings.map((r: any) => r.value), [0, 1, 2, 3, 4]);
        await app.close();
      } finally {
        await s.stop();
      }
    } finally {
      cleanup();
    }
  });
});

describe('store failures', () => {
  test('a put the store cannot save is answered E_UNAVAILABLE, not delivered, and the connection recovers', async () => {
    const s = await startTestServer();
    const other = new Database(path.join(s.dataDir, 'iotc.db'));
    try {
      const d = await makeDevice(s);
      const dev = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
      const app = await TestClient.connect(s.wsUrl, d.id, d.key, 'client');
      // New readings go to the journal table first; without it no write can commit.
      other.exec('ALTER TABLE readings_journal RENAME TO readings_away');
      const failed = await dev.request({ method: 'put', status: { sensor: 't', value: 'lost' } });
      assert.deepEqual(failed, { ok: false, error: 'The store could not save the reading; it was not kept', code: 'E_UNAVAILABLE', id: failed.id });
      other.exec('ALTER TABLE readings_away RENAME TO readings_journal');
      const ack = await dev.request({ method: 'put', status: { sensor: 't', value: 'kept' } });
      assert.equal(ack.ok, true);
      assert.equal((await app.reading()).value, 'kept', 'the failed reading was never delivered');
      assert.deepEqual((await app.request({ method: 'history', sensor: 't' })).readings.map((r: any) => r.value), ['kept']);
      await Promise.all([dev.close(), app.close()]);
    } finally {
      other.close();
      await s.stop();
    }
  });


  test('a connection whose sync lookup fails is refused and not left registered: no phantom presence, no lost slot', async () => {
    const s = await startTestServer({ maxConnectionsPerDevice: 1 });
    const other = new Database(path.join(s.dataDir, 'iotc.db'));
    try {
      const d = await makeDevice(s);
      // A real store failure between authentication and sync: the cursors table is gone for a moment.
      other.exec('ALTER TABLE cursors RENAME TO cursors_away');
      const failed = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
      assert.deepEqual(await failed.next(), { ok: false, error: 'Internal error', code: 'E_INTERNAL', sensor: null, value: null });
      assert.equal((await within(failed.closed, 5000, 'the socket to close')).code, 1011);
      other.exec('ALTER TABLE cursors_away RENAME TO cursors');

      assert.deepEqual(s.hub.relay.connections, { device: 0, client: 0 });
      assert.equal(s.hub.relay.presence.count(d.id, 'device'), 0);
      await sleep(1100); // a presence flush
      assert.equal((await s.hub.accounts.listDevices(d.userId))[0].online, false);
      // The only slot is free again.
      const dev = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
      assert.equal((await dev.request({ method: 'ping' })).ok, true);
      await dev.close();
    } finally {
      other.close();
      await s.stop();
    }
  });
});

describe('sync racing live delivery', () => {
  test('a reading written on another node while a connection is being set up reaches it once, after its sync', async () => {
    const { MemoryBusHub } = await import('../src/bus/memory.js');
    const { Relay } = await import('../src/core/relay.js');
    const { SqliteStore } = await import('../src/store/sqlite.js');
    const { createLogger } = await import('../src/log.js');
    const { hashSecret } = await import('../src/core/secrets.js');
    const tmp = tempDir();
    // Both nodes share one SQLite file; node A's sync lookup waits on a gate so node B can write meanwhile.
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    let lookupStarted!: () => void;
    const started = new Promise<void>((r) => (lookupStarted = r));
    class GatedStore extends SqliteStore {
      override async latestSince(deviceId: string, side: 'device' | 'client', afterSeq: number) {
        const rows = await super.latestSince(deviceId, side, afterSeq);
        lookupStarted();
        await gate;
        return rows;
      }
    }
    const file = path.join(tmp.dir, 'shared.db');
    const storeA = new GatedStore(file);
    const storeB = new SqliteStore(file);
    const hub = new MemoryBusHub();
    const log = createLogger('silent');
    const relayA = new Relay({ store: storeA, bus: hub.connect(), log, nodeId: 'a', maxConnectionsPerDevice: 5 });
    const relayB = new Relay({ store: storeB, bus: hub.connect(), log, nodeId: 'b', maxConnectionsPerDevice: 5 });
    try {
      const user = await storeB.createUser({ email: 'race@example.com', name: 'R', passwordHash: 'x' });
      const device = await storeB.createDevice({ id: 'RACE0000000000000001', userId: user.id, name: 'd', keyHash: hashSecret('k') });
      await relayB.put(device.id, 'client', [{ sensor: 'cmd', value: 'before' }]);
      // A SQLite store writes its newest values to the latest table at its journal move (or before it reads
      // them): node B's, here, so that node A, on its own connection, reads them as another node would.
      storeB.settle();

      const got: { value: unknown; sync: boolean }[] = [];
      const attaching = relayA.attach(device, {
        side: 'device',
        deliver: (_r, json) => {
          const m = JSON.parse(json);
          got.push({ value: m.value, sync: m.sync === true });
        },
        revoked: () => {},
      });
      await started;
      // Written after A's sync lookup read the store, while A is subscribed: it travels live over the bus.
      await relayB.put(device.id, 'client', [{ sensor: 'cmd', value: 'during' }]);
      await sleep(20);
      assert.deepEqual(got, [], 'nothing is delivered before the sync is sent');
      openGate();
      const attachment = await attaching;
      assert.deepEqual(got, [
        { value: 'before', sync: true },
        { value: 'during', sync: false },
      ]);
      attachment.detach();
    } finally {
      openGate();
      await relayA.close();
      await relayB.close();
      await storeA.close();
      await storeB.close();
      tmp.cleanup();
    }
  });
});
