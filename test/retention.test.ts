/** Retention: old readings go by count and by age, but the latest value of every sensor (and side) always stays. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { RetentionJob } from '../src/core/retention.js';
import { createLogger } from '../src/log.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { NewReading, Side } from '../src/store/types.js';
import { makeDevice, sleep, startTestServer, TestClient, tempDir, waitFor, within } from './helpers.js';
import { hashSecret } from '../src/core/secrets.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2025, 0, 10);

let tmp: ReturnType<typeof tempDir>;
let store: SqliteStore;
let deviceIds: string[];
beforeEach(async () => {
  tmp = tempDir();
  store = new SqliteStore(path.join(tmp.dir, 'iotc.db'));
  const user = await store.createUser({ email: 'r@example.com', name: 'R', passwordHash: 'h' });
  deviceIds = [];
  for (const id of ['AAAAAAAAAAAAAAAAAAA1', 'AAAAAAAAAAAAAAAAAAA2']) {
    await store.createDevice({ id, userId: user.id, name: id, keyHash: 'x' });
    deviceIds.push(id);
  }
});
afterEach(async () => {
  await store.close();
  tmp.cleanup();
});

const r = (deviceId: string, sensor: string, value: unknown, time: number, side: Side = 'device'): NewReading => ({ deviceId, sensor, value, side, time });

async function values(deviceId: string, sensor: string, side?: Side): Promise<unknown[]> {
  return (await store.history(deviceId, sensor, { limit: 10_000, side })).map((x) => x.value);
}

describe('Store.prune', () => {
  test('by count: keeps the newest N per device plus the latest of each sensor and side', async () => {
    const [a, b] = deviceIds;
    await store.appendReadings([
      r(a, 'rare', 'old rare', NOW - 10_000),
      r(a, 'set', 'client set', NOW - 9_000, 'client'),
      ...Array.from({ length: 20 }, (_, i) => r(a, 'temp', i, NOW - 5_000 + i)),
      ...Array.from({ length: 3 }, (_, i) => r(b, 'temp', i, NOW - 5_000 + i)),
    ]);
    const removed = await store.prune({ maxCount: 5, maxAgeMs: 0 }, NOW);
    assert.equal(removed, 15, 'the 15 oldest temps go; rare and set survive as the latest of their sensor');
    assert.deepEqual(await values(a, 'temp'), [15, 16, 17, 18, 19]);
    assert.deepEqual(await values(a, 'rare'), ['old rare']);
    assert.deepEqual(await values(a, 'set'), ['client set']);
    assert.deepEqual(await values(b, 'temp'), [0, 1, 2], 'a device under the limit is untouched');
    assert.equal((await store.latest(a, 'temp'))?.value, 19);
    assert.equal(await store.prune({ maxCount: 5, maxAgeMs: 0 }, NOW), 0, 'nothing more to do');
  });

  test('in steps: count and age cuts across thousands of chunks keep exactly what one cut would', async () => {
    const [a, b] = deviceIds;
    const all: { deviceId: string; sensor: string; seq: number; time: number }[] = [];
    // 200 moves of the journal × 30 sensors: 6 000 chunks per device, each of one reading, a minute apart.
    for (let m = 0; m < 200; m++) {
      for (const d of [a, b]) {
        const stored = await store.appendReadings(Array.from({ length: 30 }, (_, i) => r(d, `s${i}`, m, NOW - (200 - m) * 60_000)));
        all.push(...stored.map((x) => ({ deviceId: x.deviceId, sensor: x.sensor, seq: x.seq, time: x.time })));
      }
      store.settle();
    }
    const seqs = async (d: string) => {
      const out: number[] = [];
      for (let i = 0; i < 30; i++) out.push(...(await store.history(d, `s${i}`, { limit: 10_000 })).map((x) => x.seq));
      return out.sort((x, y) => x - y);
    };
    const latest = new Set([a, b].flatMap((d) => Array.from({ length: 30 }, (_, i) => Math.max(...all.filter((x) => x.deviceId === d && x.sensor === `s${i}`).map((x) => x.seq)))));
    // By count: each device keeps its newest 4 000 (each sensor's latest among them).
    assert.equal(await store.prune({ maxCount: 4000, maxAgeMs: 0 }, NOW), 4000);
    const newest = new Set([a, b].flatMap((d) => all.filter((x) => x.deviceId === d).map((x) => x.seq).sort((x, y) => x - y).slice(-4000)));
    for (const d of [a, b]) assert.deepEqual(await seqs(d), all.filter((x) => x.deviceId === d && newest.has(x.seq)).map((x) => x.seq), d);
    // By age: of those, everything written more than 100 minutes before NOW goes.
    const cutoff = NOW - 100 * 60_000;
    const aged = all.filter((x) => newest.has(x.seq) && x.time < cutoff && !latest.has(x.seq)).length;
    assert.ok(aged > 1000, `${aged} readings to age out`);
    assert.equal(await store.prune({ maxCount: 0, maxAgeMs: NOW - cutoff }, NOW), aged);
    for (const d of [a, b]) {
      const want = all.filter((x) => x.deviceId === d && newest.has(x.seq) && (x.time >= cutoff || latest.has(x.seq))).map((x) => x.seq);
      assert.deepEqual(await seqs(d), want, d);
    }
  });

  test('by age: drops readings older than the limit, keeping the latest of a sensor while it is younger', async () => {
    const [a] = deviceIds;
    await store.appendReadings([
      r(a, 'temp', 'very old', NOW - 40 * DAY),
      r(a, 'temp', 'old', NOW - 31 * DAY),
      r(a, 'temp', 'recent', NOW - 1 * DAY),
      r(a, 'led', 'old, by the device', NOW - 60 * DAY, 'device'),
      r(a, 'led', 'recent, by the client', NOW - 2 * DAY, 'client'),
    ]);
    const removed = await store.prune({ maxCount: 0, maxAgeMs: 30 * DAY }, NOW);
    assert.equal(removed, 3);
    assert.deepEqual(await values(a, 'temp'), ['recent']);
    assert.deepEqual(await values(a, 'led', 'client'), ['recent, by the client']);
    assert.deepEqual(await values(a, 'led', 'device'), []);
    assert.deepEqual((await store.latestAll(a)).map((x) => [x.sensor, x.value]), [
      ['led', 'recent, by the client'],
      ['temp', 'recent'],
    ]);
  });

  test('by age: a sensor not written for the whole age is forgotten, its latest value with it', async () => {
    const [a] = deviceIds;
    await store.appendReadings([
      r(a, 'temp', 'recent', NOW - 1 * DAY),
      r(a, 'led', 'older, by the device', NOW - 60 * DAY, 'device'),
      r(a, 'led', 'old, by the client', NOW - 50 * DAY, 'client'),
      r(a, 'gone', 'only reading, ancient', NOW - 365 * DAY),
    ]);
    assert.equal(await store.prune({ maxCount: 0, maxAgeMs: 30 * DAY }, NOW), 3);
    assert.deepEqual(await values(a, 'gone'), []);
    assert.equal(await store.latest(a, 'led'), null);
    assert.deepEqual((await store.latestAll(a)).map((x) => [x.sensor, x.value]), [['temp', 'recent']]);
  });

  test('count and age together; zero for both keeps everything', async () => {
    const [a] = deviceIds;
    await store.appendReadings(Array.from({ length: 10 }, (_, i) => r(a, 'n', i, NOW - (10 - i) * DAY)));
    assert.equal(await store.prune({ maxCount: 0, maxAgeMs: 0 }, NOW), 0);
    assert.equal((await values(a, 'n')).length, 10);
    // Age leaves the last 4 days (i = 6..9); count then keeps 3 of them.
    assert.equal(await store.prune({ maxCount: 3, maxAgeMs: 4 * DAY }, NOW), 7);
    assert.deepEqual(await values(a, 'n'), [7, 8, 9]);
  });

  test('device events older than a day are dropped, but their numbering never restarts', async () => {
    const [a, b] = deviceIds;
    await store.setDeviceKey(a, 'y1');
    await store.setDeviceKey(b, 'y2');
    await store.setDeviceKey(a, 'y3');
    const last = await store.lastDeviceEventSeq();
    assert.equal((await store.deviceEventsSince(0)).length, 3);
    await store.prune({ maxCount: 0, maxAgeMs: 0 }, Date.now() + 12 * 3_600_000);
    assert.equal((await store.deviceEventsSince(0)).length, 3, 'events younger than a day stay');
    await store.prune({ maxCount: 0, maxAgeMs: 0 }, Date.now() + 2 * DAY);
    const left = await store.deviceEventsSince(0);
    assert.deepEqual(left, [], 'old events go');
    assert.equal(await store.lastDeviceEventSeq(), last);
    // A server that read up to `last` must see the next event.
    await store.setDeviceKey(b, 'z');
    const next = await store.deviceEventsSince(last);
    assert.deepEqual(next.map((e) => [e.deviceId, e.kind]), [[b, 'rotated']]);
    assert.ok(next[0].seq > last);
  });
});

describe('RetentionJob', () => {
  test('runOnce applies the policy and drops expired web sessions and log-in buckets full again', async () => {
    const [a] = deviceIds;
    const now = Date.now();
    await store.appendReadings(Array.from({ length: 8 }, (_, i) => r(a, 'n', i, now - 1000 + i)));
    const user = await store.getUserByEmail('r@example.com');
    await store.createSession({ idHash: 'expired', userId: user!.id, csrfToken: 'c', createdAt: now - 2000, expiresAt: now - 1000 });
    await store.createSession({ idHash: 'live', userId: user!.id, csrfToken: 'c', createdAt: now, expiresAt: now + DAY });
    const limit = { burst: 2, perSecond: 1 };
    assert.equal(await store.takeAttempt('account:refilled', limit, now - 5000), 0);
    assert.equal(await store.takeAttempt('account:recent', limit, now + DAY), 0);
    const job = new RetentionJob(store, createLogger('silent'), { maxCount: 2, maxAgeMs: 0, maxBytesPerDevice: 0 }, 0);
    await job.runOnce();
    assert.deepEqual(await values(a, 'n'), [6, 7]);
    assert.equal(await store.pruneSessions(now), 0, 'the expired session was already gone');
    assert.ok(await store.getSession('live', now));
    assert.equal(await store.pruneAttempts(now), 0, 'the bucket full again was already gone');
    assert.equal(await store.pruneAttempts(now + DAY + 1000), 1, 'the other stayed until it is full again');
    await job.stop();
  });

  test('started, it prunes in the background until stopped', async () => {
    const [a] = deviceIds;
    await store.appendReadings(Array.from({ length: 30 }, (_, i) => r(a, 'n', i, Date.now())));
    const job = new RetentionJob(store, createLogger('silent'), { maxCount: 4, maxAgeMs: 0, maxBytesPerDevice: 0 }, 50);
    job.start();
    await waitFor(async () => (await values(a, 'n')).length === 4, 3000, 'background prune');
    await job.stop();
    await store.appendReadings(Array.from({ length: 10 }, (_, i) => r(a, 'n', 100 + i, Date.now())));
    await new Promise((res) => setTimeout(res, 200));
    assert.equal((await values(a, 'n')).length, 14, 'a stopped job prunes no more');
  });

  test('a policy of zeros or an interval of 0 never schedules anything', async () => {
    const [a] = deviceIds;
    await store.appendReadings(Array.from({ length: 5 }, (_, i) => r(a, 'n', i, Date.now() - 100 * DAY)));
    for (const job of [
      new RetentionJob(store, createLogger('silent'), { maxCount: 0, maxAgeMs: 0, maxBytesPerDevice: 0 }, 20),
      new RetentionJob(store, createLogger('silent'), { maxCount: 1, maxAgeMs: DAY, maxBytesPerDevice: 1000 }, 0),
    ]) {
      job.start();
      await new Promise((res) => setTimeout(res, 120));
      await job.stop();
    }
    assert.equal((await values(a, 'n')).length, 5);
  });
});

test('a running server prunes by its retention settings; gets and sync still see the latest values', async () => {
  const s = await startTestServer({ retentionCount: 5, pruneInterval: 100, rateLimit: 0 });
  try {
    const d = await makeDevice(s);
    const dev = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
    await dev.request({ method: 'put', status: { sensor: 'rare', value: 'kept' } });
    await dev.request({ method: 'put', status: Array.from({ length: 50 }, (_, i) => ({ sensor: 'n', value: i })) });
    await waitFor(async () => (await dev.request({ method: 'history', sensor: 'n', limit: 100 })).readings.length < 50, 3000, 'pruning');
    const h = await dev.request({ method: 'history', sensor: 'n', limit: 100 });
    assert.deepEqual(h.readings.map((x: any) => x.value), [45, 46, 47, 48, 49], 'the newest 5 readings of the device');
    assert.equal((await dev.request({ method: 'gets', sensor: 'rare' })).value, 'kept');
    const app = await TestClient.connect(s.wsUrl, d.id, d.key, 'client');
    const synced = [await app.next(), await app.next()].map((m) => [m.sensor, m.value, m.sync]);
    assert.deepEqual(synced, [['rare', 'kept', true], ['n', 49, true]]);
    await Promise.all([dev.close(), app.close()]);
  } finally {
    await s.stop();
  }
});

test('a server still sees rotations made by the CLI after retention pruned the old device events', async () => {
  const s = await startTestServer({ pruneInterval: 0 });
  // The CLI is another connection to the same file.
  const cli = new SqliteStore(path.join(s.dataDir, 'iotc.db'));
  try {
    const d = await makeDevice(s);
    const other = await makeDevice(s);
    await cli.setDeviceKey(other.id, hashSecret('NEWKEY000000001'));
    const dev = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
    await waitFor(async () => (await s.hub.store.deviceEventsSince(0)).length === 1, 3000);
    await sleep(1200); // the server has polled the first event
    await s.hub.store.prune({ maxCount: 0, maxAgeMs: 0 }, Date.now() + 2 * DAY);
    await cli.setDeviceKey(d.id, hashSecret('NEWKEY000000002'));
    assert.deepEqual(await within(dev.closed, 3000, 'close after the rotation'), { code: 4401, reason: 'The device key was rotated' });
  } finally {
    await cli.close();
    await s.stop();
  }
});
