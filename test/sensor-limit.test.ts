/**
 * Distinct sensors per device are bounded (100k sensors once made a 612 MB database and a 107 MB device list):
 * a put creating one beyond the limit is refused at every door, existing sensors keep working, and sensors
 * that retention forgets make room again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeDevice, startTestServer, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';
import type { LatestWeight } from '../src/store/types.js';
import { mqttConnect } from './mqtt-clients.js';

const DAY = 86_400_000;

describe('sensors per device', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ maxSensors: 5 })));
  after(() => server.stop());

  test('the sixth sensor is refused at WS, HTTP and MQTT with E_LIMIT naming the setting; the five keep working', async () => {
    const d = await makeDevice(server);
    const other = await makeDevice(server);
    const c = await TestClient.connect(server.wsUrl, d.id, d.key);
    const mq = await mqttConnect(`ws://127.0.0.1:${server.port}/mqtt`, { username: d.id, password: d.key, protocolVersion: 5 });
    try {
      const five = await c.request({ method: 'put', status: ['a', 'b', 'c', 'd'].map((sensor) => ({ sensor, value: 1 })) });
      assert.equal(five.ok, true);
      assert.equal((await c.request({ method: 'put', status: { sensor: 'e', value: 1 } })).ok, true);
      const sixth = await c.request({ method: 'put', status: { sensor: 'f', value: 1 } });
      assert.deepEqual([sixth.ok, sixth.code], [false, 'E_LIMIT']);
      assert.match(sixth.error, /5 sensors.*most this hub allows is 5 \(max-sensors \/ IOTC_MAX_SENSORS\): "f" was not created/);
      const batch = await c.request({ method: 'put', status: [{ sensor: 'a', value: 2 }, { sensor: 'g', value: 2 }] });
      assert.deepEqual([batch.ok, batch.code], [false, 'E_LIMIT'], 'a batch is refused whole');
      assert.equal((await server.hub.relay.gets(d.id, 'a'))?.value, 1, 'nothing of the refused batch was stored');
      assert.equal((await c.request({ method: 'put', status: [{ sensor: 'a', value: 3 }, { sensor: 'e', value: 3 }] })).ok, true);

      const post = await fetch(`${server.url}/api/v1/devices/${d.id}/readings`, {
        method: 'POST', headers: { 'x-device-key': d.key, 'content-type': 'application/json' }, body: '{"sensor":"h","value":1}',
      });
      const body = await post.json();
      assert.deepEqual([post.status, body.error], [403, 'E_LIMIT']);
      assert.match(body.message, /IOTC_MAX_SENSORS/);
      assert.equal((await fetch(`${server.url}/api/v1/update?device=${d.id}&key=${d.key}&zz=1`)).status, 403);
      assert.equal((await fetch(`${server.url}/api/v1/update?device=${d.id}&key=${d.key}&b=7`)).status, 200);
      await assert.rejects(mq.publishAsync(`devices/${d.id}/m`, '1', { qos: 1 }), (err: any) => err.code === 0x97);
      await mq.publishAsync(`devices/${d.id}/c`, '8', { qos: 1 });

      assert.deepEqual((await server.hub.relay.sensors(d.id)).map((r) => [r.sensor, r.value]), [['a', 3], ['b', 7], ['c', 8], ['d', 1], ['e', 3]]);
      const fresh = await TestClient.connect(server.wsUrl, other.id, other.key);
      assert.equal((await fresh.request({ method: 'put', status: ['p', 'q', 'r', 's', 't'].map((sensor) => ({ sensor, value: 0 })) })).ok, true, 'another device has its own five');
      await fresh.close();
    } finally {
      await mq.endAsync();
      await c.close();
    }
  });

  test('puts of one connection keep their order while a new sensor waits for the store', async () => {
    const d = await makeDevice(server);
    const c = await TestClient.connect(server.wsUrl, d.id, d.key);
    try {
      const ids = Array.from({ length: 12 }, (_, i) => `p${i}`);
      ids.forEach((id, i) => c.send({ method: 'put', id, status: { sensor: i % 3 === 0 ? `s${i / 3}` : 's0', value: i } }));
      const acks = await Promise.all(ids.map((id) => c.next((m) => m.id === id)));
      assert.ok(acks.every((m) => m.ok), JSON.stringify(acks));
      for (let i = 1; i < acks.length; i++) assert.ok(acks[i].time >= acks[i - 1].time);
      const order = (await server.hub.relay.history(d.id, 's0', { limit: 100 })).map((r) => r.value);
      assert.deepEqual(order, [0, 1, 2, 4, 5, 7, 8, 10, 11]);
    } finally {
      await c.close();
    }
  });

  test('a device at its limit retrying new sensors costs the store one look every few seconds, not one per put', async () => {
    const d = await makeDevice(server);
    const c = await TestClient.connect(server.wsUrl, d.id, d.key);
    const store = server.hub.store;
    const weights = store.latestWeights.bind(store);
    let looks = 0;
    store.latestWeights = (id) => (looks++, weights(id));
    try {
      assert.equal((await c.request({ method: 'put', status: ['a', 'b', 'c', 'd', 'e'].map((sensor) => ({ sensor, value: 1 })) })).ok, true);
      const refused = await Promise.all(Array.from({ length: 50 }, (_, i) => c.request({ method: 'put', status: { sensor: `new${i}`, value: 1 } })));
      assert.ok(refused.every((m) => m.code === 'E_LIMIT'));
      assert.ok(looks <= 2, `${looks} store look-ups`);
    } finally {
      store.latestWeights = weights;
      await c.close();
    }
  });

  test('the store is the truth: sensors another node made count, and sensors retention forgot make room', async () => {
    const d = await makeDevice(server);
    const store = server.hub.store;
    const old = Date.now() - 40 * DAY;
    // Written "by another node": straight into the shared store, never seen by this node's relay.
    await store.appendReadings(['a', 'b', 'c', 'd', 'e'].map((sensor) => ({ deviceId: d.id, sensor, value: 0, side: 'device' as const, time: old })));
    const c = await TestClient.connect(server.wsUrl, d.id, d.key);
    try {
      const refused = await c.request({ method: 'put', status: { sensor: 'new', value: 1 } });
      assert.equal(refused.code, 'E_LIMIT');
      assert.equal((await c.request({ method: 'put', status: { sensor: 'a', value: 1 } })).ok, true);
      // What the retention job does: prune, then tell the relay.
      await store.prune({ maxCount: 0, maxAgeMs: 30 * DAY }, Date.now());
      server.hub.relay.sensorsPruned();
      assert.deepEqual((await store.latestWeights(d.id)).map((w) => w.sensor), ['a']);
      for (const sensor of ['new', 'n2', 'n3', 'n4']) assert.equal((await c.request({ method: 'put', status: { sensor, value: 1 } })).ok, true, sensor);
      assert.equal((await c.request({ method: 'put', status: { sensor: 'n5', value: 1 } })).code, 'E_LIMIT');
    } finally {
      await c.close();
    }
  });
});

test('the sensor-name cache keeps the devices in use and reads an evicted one from the store again', async () => {
  const { SensorLimit } = await import('../src/core/sensor-limit.js');
  const { SqliteStore } = await import('../src/store/sqlite.js');
  class CountingStore extends SqliteStore {
    reads: string[] = [];
    override async latestWeights(deviceId: string): Promise<LatestWeight[]> {
      this.reads.push(deviceId);
      return super.latestWeights(deviceId);
    }
  }
  const store = new CountingStore(':memory:');
  const limit = new SensorLimit(store, 10);
  const id = (i: number) => `D${String(i).padStart(19, '0')}`;
  try {
    const admit = async (i: number) => {
      await limit.admit(id(i), 'device', [{ sensor: 't' }], ['1']);
    };
    // A device in steady use, then 2 500 others passing through (more than the 2 000 the cache holds), the
    // first device writing between each of them.
    await admit(0);
    for (let i = 1; i <= 2500; i++) {
      await admit(i);
      await admit(0);
    }
    assert.equal(store.reads.filter((d) => d === id(0)).length, 1, 'the device in use was never evicted');
    const before = store.reads.length;
    await admit(1);
    assert.deepEqual(store.reads.slice(before), [id(1)], 'the oldest device was evicted and is read again');
    await admit(2500);
    assert.equal(store.reads.length, before + 1, 'a recent one is still cached');
  } finally {
    await store.close();
  }
});

describe('what the latest values of a device weigh together', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ maxLatestBytes: 10_000, rateLimit: 0 })));
  after(() => server.stop());

  test('a put that would make them weigh more than --max-latest-bytes is refused at every door; puts no heavier pass', async () => {
    const d = await makeDevice(server);
    const dev = await TestClient.connect(server.wsUrl, d.id, d.key);
    const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const mq = await mqttConnect(`ws://127.0.0.1:${server.port}/mqtt`, { username: d.id, password: d.key, protocolVersion: 5 });
    // A string weighing n bytes: its JSON (two quotes more) and the 24 bytes of a reading.
    const v = (n: number) => 'x'.repeat(n - 26);
    try {
      assert.equal((await dev.request({ method: 'put', status: ['a', 'b', 'c', 'd'].map((sensor) => ({ sensor, value: v(2000) })) })).ok, true);
      assert.equal((await dev.request({ method: 'put', status: { sensor: 'e', value: v(2000) } })).ok, true, 'exactly the limit');
      const over = await dev.request({ method: 'put', status: { sensor: 'f', value: 'x' } });
      assert.deepEqual([over.ok, over.code], [false, 'E_LIMIT']);
      assert.match(over.error, /would weigh 10027 bytes, the most this hub allows is 10000 \(max-latest-bytes \/ IOTC_MAX_LATEST_BYTES\)/);
      assert.equal((await app.request({ method: 'put', status: { sensor: 'a', value: 'x' } })).code, 'E_LIMIT', 'the other side’s values weigh in too');

      assert.equal((await dev.request({ method: 'put', status: { sensor: 'a', value: v(1000) } })).ok, true, 'a lighter value makes room');
      assert.equal((await dev.request({ method: 'put', status: { sensor: 'f', value: 'x' } })).ok, true);
      const batch = await dev.request({ method: 'put', status: [{ sensor: 'b', value: v(3000) }, { sensor: 'b', value: v(1000) }] });
      assert.equal(batch.ok, true, 'a batch is weighed by the last value of each sensor');

      const post = await fetch(`${server.url}/api/v1/devices/${d.id}/readings`, {
        method: 'POST', headers: { 'x-device-key': d.key, 'content-type': 'application/json' }, body: JSON.stringify({ sensor: 'g', value: v(3000) }),
      });
      const body = await post.json();
      assert.deepEqual([post.status, body.error], [403, 'E_LIMIT']);
      assert.match(body.message, /IOTC_MAX_LATEST_BYTES/);
      await assert.rejects(mq.publishAsync(`devices/${d.id}/g`, v(3000), { qos: 1 }), (err: any) => err.code === 0x97);
      assert.equal(await server.hub.relay.gets(d.id, 'g'), null, 'nothing refused was stored');
      assert.equal((await server.hub.relay.gets(d.id, 'b'))?.value, v(1000));
      assert.equal((await app.request({ method: 'put', status: { sensor: 'g', value: v(1900) } })).ok, true, 'room for what fits: 8 027 + 1 900');
    } finally {
      await mq.endAsync();
      await Promise.all([dev.close(), app.close()]);
    }
  });
});
