/**
 * Issue 12: the hourly rollup behind aggregated history, on both stores. Every answer is checked against an
 * aggregation of the same readings computed here, by hand, from what was written: across hour bounds, with
 * numeric strings and values that are not numbers, per side, before and after retention and device deletion.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HOUR_MS, SETTLED_MS } from '../src/store/rollup.js';
import type { BucketQuery, NewReading, Side } from '../src/store/types.js';
import { DAY, expected, fixtures, readingsFor } from './rollup-fixtures.js';
import type { Opened } from './rollup-fixtures.js';

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
