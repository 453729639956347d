/**
 * Issue 12: the hourly rollup behind aggregated history, on both stores. Every answer is checked against an
 * aggregation of the same readings computed here, by hand, from what was written: across hour bounds, with
 * numeric strings and values that are not numbers, per side, before and after retention and device deletion.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { HOUR_MS, SETTLED_MS } from '../src/store/rollup.js';
import type { BucketQuery, HistoryBucket, NewReading, Side, Store } from '../src/store/types.js';
import { serviceAvailable, tempDir } from './helpers.js';
import { createTestDatabase } from './pg-helpers.js';
import type { TestDatabase } from './pg-helpers.js';

const pgUp = await serviceAvailable('PostgreSQL', 5432);
let pgDb: TestDatabase | null = null;
if (pgUp) {
  pgDb = await createTestDatabase();
  after(() => pgDb!.drop());
}

/** A store, and a way to count its rollup rows behind its back. */
interface Opened {
  store: Store;
  hourRows(deviceId: string): Promise<number>;
  done(): Promise<void>;
}

const fixtures: Record<string, { skip: string | false; open(): Promise<Opened> }> = {
  sqlite: {
    skip: false,
    async open() {
      const tmp = tempDir('iotc-rollup-');
      const file = path.join(tmp.dir, 'iotc.db');
      const store = new SqliteStore(file);
      return {
        store,
        async hourRows(deviceId) {
          const db = new Database(file, { readonly: true });
          try {
            return (db.prepare('SELECT COUNT(*) AS n FROM reading_hours WHERE device_id = ?').get(deviceId) as { n: number }).n;
          } finally {
            db.close();
          }
        },
        async done() {
          await store.close();
          tmp.cleanup();
        },
      };
    },
  },
  postgres: {
    skip: !pgUp && 'PostgreSQL not reachable',
    async open() {
      const schema = `s_${crypto.randomBytes(5).toString('hex')}`;
      // One connection: retention forgetting hours, and a fill, must never wait for a second one.
      const store = await PostgresStore.open(pgDb!.url(schema), { poolSize: 1 });
      return {
        store,
        async hourRows(deviceId) {
          const { rows } = await pgDb!.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM ${schema}.reading_hours WHERE device_id = $1`, [deviceId]);
          return rows[0].n;
        },
        async done() {
          await store.close();
          await pgDb!.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        },
      };
    },
  },
};

/** What a reading counts as, the way the stores read it: JSON numbers and strings holding one. */
function numeric(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(value.trim())) return Number(value.trim());
  return null;
}

/** The aggregation by hand: `readings` in write order (their sequence numbers). */
function expected(readings: readonly NewReading[], q: BucketQuery): HistoryBucket[] {
  const byBucket = new Map<number, { vs: number[]; last: number }>();
  for (const r of readings) {
    if (r.time < q.from || r.time > q.to || (q.side && r.side !== q.side)) continue;
    const v = numeric(r.value);
    if (v === null) continue;
    const time = Math.floor(r.time / q.bucketMs) * q.bucketMs;
    const b = byBucket.get(time) ?? { vs: [], last: NaN };
    b.vs.push(v);
    byBucket.set(time, b);
  }
  // Last: newest time, then the later write.
  const newest = new Map<number, NewReading>();
  for (const r of readings) {
    if (r.time < q.from || r.time > q.to || (q.side && r.side !== q.side) || numeric(r.value) === null) continue;
    const time = Math.floor(r.time / q.bucketMs) * q.bucketMs;
    const n = newest.get(time);
    if (!n || r.time >= n.time) newest.set(time, r);
  }
  return [...byBucket.entries()]
    .sort(([a], [b]) => a - b)
    .slice(0, q.limit)
    .map(([time, b]) => {
      const sum = b.vs.reduce((s, v) => s + v, 0);
      return { time, min: Math.min(...b.vs), max: Math.max(...b.vs), avg: sum / b.vs.length, count: b.vs.length, last: numeric(newest.get(time)!.value)! };
    });
}

const DAY = 86_400_000;

/**
 * 45 days of readings up to a minute ago: every 37 minutes (so they fall anywhere in an hour), some exactly
 * on an hour's first and last millisecond, two at the same moment, numeric strings, values that are not
 * numbers, and an hour with nothing numeric. Numbers are multiples of 1/4, so every sum is exact.
 */
function readingsFor(deviceId: string, now: number): NewReading[] {
  const start = Math.floor(now / HOUR_MS) * HOUR_MS - 45 * DAY;
  const out: NewReading[] = [];
  const add = (time: number, value: unknown, side: Side = 'device') => out.push({ deviceId, sensor: 'temp', value, side, time });
  let i = 0;
  for (let t = start - 30 * 60_000; t < now - 60_000; t += 37 * 60_000, i++) {
    const v = ((i * 7) % 23) * 0.25 - 2;
    const side: Side = i % 5 === 0 ? 'client' : 'device';
    if (i % 11 === 0) add(t, ` ${v} `, side);
    else if (i % 13 === 0) add(t, 'on', side);
    else if (i % 17 === 0) add(t, { x: v }, side);
    else add(t, v, side);
  }
  for (let d = 1; d < 44; d += 3) {
    const h = start + d * DAY + 5 * HOUR_MS;
    add(h, 100 + d);
    add(h - 1, -100 - d, 'client');
    add(h + HOUR_MS - 1, String(d / 4));
    add(h + 30 * 60_000, 7);
    add(h + 30 * 60_000, 8);
  }
  const silent = start + 20 * DAY + 2 * HOUR_MS;
  for (let k = 0; k < out.length; k++) if (out[k].time >= silent && out[k].time < silent + HOUR_MS) out[k] = { ...out[k], value: 'n/a' };
  out.sort((a, b) => a.time - b.time);
  return out;
}

for (const [name, fixture] of Object.entries(fixtures)) {
  describe(`hourly rollup: ${name}`, { skip: fixture.skip, timeout: 120_000 }, () => {
    let n = 0;
    /** Runs `fn` on a fresh store holding a device's 45 days of readings, then closes and removes it. */
    async function withReadings(fn: (o: Opened, d: { device: { id: string }; readings: NewReading[]; now: number }) => Promise<void>) {
      const o = await fixture.open();
      try {
        const user = await o.store.createUser({ email: `rollup${++n}@example.com`, name: 'R', passwordHash: 'h' });
        const device = await o.store.createDevice({ id: `ROLLUP${String(n).padStart(4, '0')}${'Q'.repeat(10)}`, userId: user.id, name: 'Greenhouse', keyHash: 'k' });
        const now = Date.now();
        const readings = readingsFor(device.id, now);
        for (let k = 0; k < readings.length; k += 500) await o.store.appendReadings(readings.slice(k, k + 500));
        await fn(o, { device, readings, now });
      } finally {
        await o.done();
      }
    }

    /** Ranges over a month in whole-hour buckets, with edges inside hours and in the unsettled last minutes. */
    const queries = (now: number): BucketQuery[] => {
      const start = Math.floor(now / HOUR_MS) * HOUR_MS - 45 * DAY;
      return [
        { from: start - 20 * 60_000 + 3, to: now, bucketMs: HOUR_MS, limit: 2000 },
        { from: start, to: start + 40 * DAY - 1, bucketMs: DAY, limit: 2000 },
        { from: start + 5 * HOUR_MS + 1, to: now - 3 * HOUR_MS + 7, bucketMs: 3 * HOUR_MS, limit: 2000 },
        { from: start + 7 * HOUR_MS + 59 * 60_000, to: now, bucketMs: DAY, limit: 10 },
      ];
    };
    const sides: (Side | undefined)[] = [undefined, 'device', 'client'];

    test('answers equal the aggregation of the readings, filled or read from the cache', () =>
      withReadings(async (o, { device, readings, now }) => {
        assert.equal(await o.hourRows(device.id), 0, 'nothing is rolled up when readings are written');
        for (const side of sides) {
          for (const q of queries(now)) {
            const want = expected(readings, { ...q, side });
            assert.ok(want.length > 3, 'the case has buckets to compare');
            assert.deepEqual(await o.store.historyBuckets(device.id, 'temp', { ...q, side }), want, `filling: ${JSON.stringify({ ...q, side })}`);
            assert.deepEqual(await o.store.historyBuckets(device.id, 'temp', { ...q, side }), want, `from the cache: ${JSON.stringify({ ...q, side })}`);
          }
        }
        const rows = await o.hourRows(device.id);
        assert.ok(rows > 3 * 40 * 12, `the hours were rolled up (${rows} rows)`);
        assert.deepEqual(await o.store.historyBuckets(device.id, 'other', queries(now)[0]), [], 'a sensor with no readings has no buckets');
      }));

    test('a reading in the last minutes (not settled, not cached) is in the answer at once', () =>
      withReadings(async (o, { device, readings, now }) => {
        const q = queries(now)[0];
        await o.store.historyBuckets(device.id, 'temp', q);
        const fresh: NewReading = { deviceId: device.id, sensor: 'temp', value: 1234, side: 'device', time: Date.now() };
        await o.store.appendReadings([fresh]);
        const to = Date.now();
        const got = await o.store.historyBuckets(device.id, 'temp', { ...q, to });
        assert.deepEqual(got, expected([...readings, fresh], { ...q, to }));
        assert.equal(got.at(-1)!.last, 1234);
        assert.ok(SETTLED_MS < HOUR_MS);
      }));

    test('retention by age and by count, and deleting the device, leave no stale hour behind', () =>
      withReadings(async (o, { device, readings, now }) => {
        for (const q of queries(now)) await o.store.historyBuckets(device.id, 'temp', q);

        // By age, cutting through the middle of an hour that is cached.
        const cutoff = Math.floor(now / HOUR_MS) * HOUR_MS - 30 * DAY + 20 * 60_000 + 5;
        assert.ok((await o.store.prune({ maxAgeMs: now - cutoff, maxCount: 0 }, now)) > 0);
        let left = readings.filter((r) => r.time >= cutoff);
        for (const side of sides) {
          for (const q of queries(now)) assert.deepEqual(await o.store.historyBuckets(device.id, 'temp', { ...q, side }), expected(left, { ...q, side }), `after pruning by age: ${JSON.stringify({ ...q, side })}`);
        }

        // By count: the oldest go, but the latest of each side stays.
        const keep = 400;
        assert.ok((await o.store.prune({ maxAgeMs: 0, maxCount: keep }, now)) > 0);
        const lastOfSide = new Set((['device', 'client'] as const).map((s) => left.map((r) => r.side).lastIndexOf(s)));
        left = left.filter((_, k) => k >= left.length - keep || lastOfSide.has(k));
        for (const side of sides) {
          for (const q of queries(now)) assert.deepEqual(await o.store.historyBuckets(device.id, 'temp', { ...q, side }), expected(left, { ...q, side }), `after pruning by count: ${JSON.stringify({ ...q, side })}`);
        }

        assert.ok((await o.hourRows(device.id)) > 0);
        assert.equal(await o.store.deleteDevice(device.id), true);
        assert.equal(await o.hourRows(device.id), 0, 'the device\'s hours go with it');
      }));
  });
}
