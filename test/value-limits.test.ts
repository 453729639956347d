/**
 * Values that once broke other accounts' writes: nested thousands deep (they failed the shared store batch),
 * numbers that cannot be kept exactly (1e400 stored as null, big integers rounded), time bounds beyond what
 * a store can hold (a 500 on PostgreSQL). Each is refused alone, at every door, on every store.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { IotcError } from '../src/core/errors.js';
import { checkIntegerLiterals, checkValue, DEFAULT_VALUE_LIMITS } from '../src/core/values.js';
import { WriteBatcher } from '../src/core/write-batcher.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { NewReading, Store } from '../src/store/types.js';
import { makeDevice, serviceAvailable, startTestServer, tempDir, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';
import { mqttConnect } from './mqtt-clients.js';
import { createTestDatabase } from './pg-helpers.js';
import type { TestDatabase } from './pg-helpers.js';

const pgUp = await serviceAvailable('PostgreSQL', 5432);
let db: TestDatabase | null = null;
if (pgUp) {
  db = await createTestDatabase();
  after(() => db!.drop());
}
const newSchema = () => `s_${crypto.randomBytes(5).toString('hex')}`;

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

function refuses(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof IotcError && err.code === 'E_VALIDATION' && pattern.test(err.message));
}

describe('the value rules', () => {
  test('depth, size and finite numbers are checked without recursion; the JSON text comes back', () => {
    assert.equal(checkValue(21.5, DEFAULT_VALUE_LIMITS), '21.5');
    assert.equal(checkValue({ a: [1, { b: 'c' }] }, DEFAULT_VALUE_LIMITS), '{"a":[1,{"b":"c"}]}');
    assert.equal(checkValue(JSON.parse(nested(32)), DEFAULT_VALUE_LIMITS), nested(32));
    refuses(() => checkValue(JSON.parse(nested(33)), DEFAULT_VALUE_LIMITS), /deeper than 32 levels .*max-value-depth/);
    refuses(() => checkValue(JSON.parse(nested(100_000)), DEFAULT_VALUE_LIMITS), /deeper than 32/);
    refuses(() => checkValue(Infinity, DEFAULT_VALUE_LIMITS), /too large to store/);
    refuses(() => checkValue({ a: [1, -Infinity] }, DEFAULT_VALUE_LIMITS), /too large to store.*as a string/);
    refuses(() => checkValue('x'.repeat(100), { maxDepth: 32, maxBytes: 50 }), /102 characters, more than the 50 allowed .*max-value-bytes/);
    refuses(() => checkValue(undefined, DEFAULT_VALUE_LIMITS), /must be JSON/);
  });

  test('integer literals beyond ±2^53 are found outside strings only; decimals and exponents pass', () => {
    for (const ok of [
      '{"value":9007199254740991}', '{"value":-9007199254740991}', '{"value":"12345678901234567890"}', '{"value":1.2345678901234567890}',
      '{"value":12345678901234567890e0}', '{"value":"say \\"12345678901234567890\\" twice"}', '{"value":1e400}', '{"sensor":"1234567890123456789"}',
    ]) checkIntegerLiterals(ok);
    refuses(() => checkIntegerLiterals('{"value":9007199254740992}'), /9007199254740992 is beyond ±2\^53 and would lose precision; send it as a string/);
    refuses(() => checkIntegerLiterals('{"value":[1,-12345678901234567890]}'), /-12345678901234567890 is beyond/);
    refuses(() => checkIntegerLiterals('{"a":"\\\\","value":12345678901234567890}'), /12345678901234567890/);
  });
});

describe('a write the store refuses fails alone, never its batch-mates', () => {
  const stores: [string, () => Promise<{ store: Store; done: () => Promise<void> }>, boolean][] = [
    ['sqlite', async () => {
      const tmp = tempDir('iotc-batch-');
      const store = new SqliteStore(`${tmp.dir}/iotc.db`);
      return { store, done: async () => (await store.close(), tmp.cleanup()) };
    }, true],
    ['postgres', async () => {
      const schema = newSchema();
      const store = await PostgresStore.open(db!.url(schema));
      return { store, done: async () => (await store.close(), void (await db!.query(`DROP SCHEMA ${schema} CASCADE`))) };
    }, pgUp],
  ];
  for (const [kind, open, up] of stores) {
    test(`${kind}: one poisoned write among many; the others commit in order`, { skip: !up && 'PostgreSQL not reachable' }, async () => {
      const { store, done } = await open();
      try {
        const user = await store.createUser({ email: 'v@example.com', name: 'V', passwordHash: 'h' });
        for (const id of ['VICTIMXXXXXXXXXXXXXX', 'ATTACKERXXXXXXXXXXXX']) await store.createDevice({ id, userId: user.id, name: id, keyHash: 'h' });
        const committed: number[] = [];
        const batcher = new WriteBatcher(store, (stored) => committed.push(...stored.map((r) => r.value as number)));
        const r = (deviceId: string, value: unknown): NewReading[] => [{ deviceId, sensor: 'temp', value, side: 'device', time: Date.now() }];
        // A BigInt makes JSON.stringify throw inside the store: a failure no edge check saw coming.
        const writes = Array.from({ length: 40 }, (_, i) => (i === 17 ? batcher.write(r('ATTACKERXXXXXXXXXXXX', 10n)) : batcher.write(r('VICTIMXXXXXXXXXXXXXX', i))));
        const results = await Promise.allSettled(writes);
        results.forEach((res, i) => assert.equal(res.status, i === 17 ? 'rejected' : 'fulfilled', `write ${i}`));
        assert.equal((results[17] as PromiseRejectedResult).reason.code, 'E_UNAVAILABLE');
        const expected = Array.from({ length: 40 }, (_, i) => i).filter((i) => i !== 17);
        assert.deepEqual(committed, expected, 'committed once each, in the order written');
        assert.deepEqual((await store.history('VICTIMXXXXXXXXXXXXXX', 'temp', { limit: 100 })).map((x) => x.value), expected);
        assert.deepEqual(await store.history('ATTACKERXXXXXXXXXXXX', 'temp', { limit: 100 }), []);
        await store.ping();
      } finally {
        await done();
      }
    });
  }
});

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`hostile values at every door (${kind})`, { skip: kind === 'postgres' && !pgUp && 'PostgreSQL not reachable' }, () => {
    let server: TestServer;
    let schema: string | null = null;
    before(async () => {
      if (kind === 'postgres') schema = newSchema();
      server = await startTestServer(kind === 'postgres' ? { store: db!.url(schema!) } : {});
    });
    after(async () => {
      await server.stop();
      if (schema) await db!.query(`DROP SCHEMA ${schema} CASCADE`);
    });

    test('a value nested 6 000 deep is refused at WS, HTTP and MQTT; another account\'s puts all succeed meanwhile', async () => {
      const victim = await makeDevice(server);
      const attacker = await makeDevice(server);
      const v = await TestClient.connect(server.wsUrl, victim.id, victim.key);
      const a = await TestClient.connect(server.wsUrl, attacker.id, attacker.key);
      const mq = await mqttConnect(`ws://127.0.0.1:${server.port}/mqtt`, { username: attacker.id, password: attacker.key, protocolVersion: 5 });
      const deep = nested(6000);
      try {
        const victimPuts: Promise<any>[] = [];
        const attacks: Promise<any>[] = [];
        for (let i = 0; i < 60; i++) {
          victimPuts.push(v.request({ method: 'put', status: { sensor: 'temp', value: i } }));
          a.send(`{"method":"put","id":"deep${i}","status":{"sensor":"x","value":${deep}}}`);
          attacks.push(a.next((m) => m.id === `deep${i}`));
          if (i % 10 === 0) {
            attacks.push(fetch(`${server.url}/api/v1/devices/${attacker.id}/readings`, {
              method: 'POST', headers: { 'x-device-key': attacker.key, 'content-type': 'application/json' }, body: `{"sensor":"x","value":${deep}}`,
            }).then(async (res) => ({ status: res.status, body: await res.json() })));
            attacks.push(mq.publishAsync(`devices/${attacker.id}/x`, deep, { qos: 1 }).then(() => 'accepted', (err) => ({ mqtt: err.code })));
          }
        }
        const acks = await Promise.all(victimPuts);
        assert.ok(acks.every((m) => m.ok === true), JSON.stringify(acks.find((m) => !m.ok)));
        for (const res of await Promise.all(attacks)) {
          if ('ok' in res) assert.deepEqual([res.ok, res.code, /max-value-depth/.test(res.error)], [false, 'E_VALIDATION', true]);
          else if ('status' in res) assert.deepEqual([res.status, res.body.error], [400, 'E_VALIDATION']);
          else assert.deepEqual(res, { mqtt: 0x99 }, 'MQTT 5 is told the payload is refused');
        }
        assert.equal((await server.hub.relay.history(victim.id, 'temp', { limit: 100 })).length, 60);
        assert.deepEqual(await server.hub.relay.sensors(attacker.id), [], 'nothing of the attack was stored');
        assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
      } finally {
        await mq.endAsync();
        await v.close();
        await a.close();
      }
    });

    test('a write the store refuses (whatever the reason) fails alone: batch-mates commit and /readyz stays 200', async () => {
      const victim = await makeDevice(server);
      const attacker = await makeDevice(server);
      const store = server.hub.store;
      const append = store.appendReadings.bind(store);
      store.appendReadings = (readings) => (readings.some((r) => r.sensor === 'poison') ? Promise.reject(new Error('simulated store failure')) : append(readings));
      try {
        const relay = server.hub.relay;
        const writes = [
          relay.put(victim.id, 'device', [{ sensor: 'temp', value: 1 }]),
          relay.put(attacker.id, 'device', [{ sensor: 'poison', value: 1 }]),
          relay.put(victim.id, 'device', [{ sensor: 'temp', value: 2 }, { sensor: 'hum', value: 3 }]),
        ];
        const results = await Promise.allSettled(writes);
        assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
        assert.equal((results[1] as PromiseRejectedResult).reason.code, 'E_UNAVAILABLE');
        assert.deepEqual((await relay.history(victim.id, 'temp', { limit: 10 })).map((r) => r.value), [1, 2]);
        assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
      } finally {
        store.appendReadings = append;
      }
    });

    test('huge time bounds are a 400 at WS and HTTP, not a store failure', async () => {
      const d = await makeDevice(server);
      const c = await TestClient.connect(server.wsUrl, d.id, d.key);
      try {
        for (const bound of [{ from: 99999999999999999999 }, { to: 8_640_000_000_000_001 }, { from: '+275760-09-13T00:00:00.001Z' }]) {
          const m = await c.request({ method: 'history', sensor: 'temp', ...bound });
          assert.deepEqual([m.ok, m.code], [false, 'E_VALIDATION'], JSON.stringify(m));
        }
        const ok = await c.request({ method: 'history', sensor: 'temp', from: 0, to: 8_640_000_000_000_000 });
        assert.equal(ok.ok, true, JSON.stringify(ok));
        for (const q of ['from=99999999999999999999', 'to=99999999999999999999', 'from=8640000000000001']) {
          const res = await fetch(`${server.url}/api/v1/devices/${d.id}/sensors/temp/history?${q}`, { headers: { 'x-device-key': d.key } });
          const body = await res.json();
          assert.deepEqual([res.status, body.error], [400, 'E_VALIDATION'], `${q}: ${JSON.stringify(body)}`);
          assert.match(body.message, /out of range/);
        }
      } finally {
        await c.close();
      }
    });
  });
}

describe('numbers that cannot be kept exactly', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer()));
  after(() => server.stop());

  test('WS and HTTP refuse 1e400 and integers beyond ±2^53 with a clear message; exact numbers come back exact', async () => {
    const d = await makeDevice(server);
    const c = await TestClient.connect(server.wsUrl, d.id, d.key);
    try {
      const big = await c.request({ method: 'put', status: { sensor: 'n', value: 0 } });
      assert.equal(big.ok, true);
      c.send('{"method":"put","id":"a","status":{"sensor":"n","value":12345678901234567890}}');
      const a = await c.next((m) => m.id === 'a');
      assert.deepEqual([a.ok, a.code, a.error], [false, 'E_VALIDATION', 'the number 12345678901234567890 is beyond ±2^53 and would lose precision; send it as a string']);
      c.send('{"method":"put","id":"b","status":[{"sensor":"n","value":1},{"sensor":"m","value":{"x":[1e400]}}]}');
      const b = await c.next((m) => m.id === 'b');
      assert.deepEqual([b.ok, b.code], [false, 'E_VALIDATION']);
      assert.match(b.error, /reading 2 \("m"\).*too large to store/);
      c.send('{"method":"put","id":"c","status":{"sensor":"n","value":[9007199254740991,-9007199254740991,1.5e300,"12345678901234567890"]}}');
      assert.equal((await c.next((m) => m.id === 'c')).ok, true);
      const got = await c.request({ method: 'gets', sensor: 'n' });
      assert.deepEqual(got.value, [9007199254740991, -9007199254740991, 1.5e300, '12345678901234567890']);

      const post = (body: string) => fetch(`${server.url}/api/v1/devices/${d.id}/readings`, { method: 'POST', headers: { 'x-device-key': d.key, 'content-type': 'application/json' }, body });
      for (const body of ['{"sensor":"n","value":12345678901234567890}', '{"sensor":"n","value":1e400}', '[{"sensor":"n","value":1},{"sensor":"n","value":-1e999}]']) {
        const res = await post(body);
        const answer = await res.json();
        assert.deepEqual([res.status, answer.error], [400, 'E_VALIDATION'], body);
        assert.match(answer.message, /beyond ±2\^53|too large to store/);
      }
      const plain = await fetch(`${server.url}/api/v1/devices/${d.id}/readings`, { method: 'POST', headers: { 'x-device-key': d.key, 'content-type': 'text/plain' }, body: '{"sensor":"n","value":12345678901234567890}' });
      assert.equal(plain.status, 400);
      assert.equal((await post('{"sensor":"n","value":9007199254740991}')).status, 201);
      assert.equal((await server.hub.relay.gets(d.id, 'n'))?.value, 9007199254740991);

      // The one-line update picks the type itself: a number it cannot keep exactly stays the text it was.
      const upd = await fetch(`${server.url}/api/v1/update?device=${d.id}&key=${d.key}&big=12345678901234567890&huge=1e400&ok=9007199254740991`);
      assert.equal(upd.status, 200);
      assert.equal((await server.hub.relay.gets(d.id, 'big'))?.value, '12345678901234567890');
      assert.equal((await server.hub.relay.gets(d.id, 'huge'))?.value, '1e400');
      assert.equal((await server.hub.relay.gets(d.id, 'ok'))?.value, 9007199254740991);
    } finally {
      await c.close();
    }
  });

  test('MQTT refuses them too (MQTT 5: PUBACK "payload format invalid"); the connection goes on', async () => {
    const d = await makeDevice(server);
    const mq = await mqttConnect(`ws://127.0.0.1:${server.port}/mqtt`, { username: d.id, password: d.key, protocolVersion: 5 });
    try {
      for (const payload of ['12345678901234567890', '{"a":1e400}', '[1e400]']) {
        await assert.rejects(mq.publishAsync(`devices/${d.id}/n`, payload, { qos: 1 }), (err: any) => err.code === 0x99, payload);
      }
      await mq.publishAsync(`devices/${d.id}/n`, '9007199254740991', { qos: 1 });
      await mq.publishAsync(`devices/${d.id}/text`, 'about 12345678901234567890 things', { qos: 1 });
      assert.equal((await server.hub.relay.gets(d.id, 'n'))?.value, 9007199254740991);
      assert.equal((await server.hub.relay.gets(d.id, 'text'))?.value, 'about 12345678901234567890 things');
    } finally {
      await mq.endAsync();
    }
  });
});
