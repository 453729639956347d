/**
 * The hourly rollup's background fill, on both stores: it fills a sensor's settled hours a bounded slice at a
 * time, newest first, through the fill charts use; once it has run, a long-range chart reads only the rollup (no
 * span changes, no hour is added) and its answer is the aggregation of the readings by hand; it keeps up with
 * new hours as they settle.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RollupFillJob } from '../src/core/rollup-fill.js';
import { createLogger } from '../src/log.js';
import { HOUR_MS, SETTLED_MS, settledHours } from '../src/store/rollup.js';
import type { HourSpan } from '../src/store/rollup.js';
import type { BucketQuery, Side } from '../src/store/types.js';
import { DAY, expected, fixtures, readingsFor } from './rollup-fixtures.js';

const log = createLogger('silent');
const SLICE = 12;
const covered = (spans: readonly HourSpan[]) => spans.reduce((h, s) => h + (s.hi - s.lo) / HOUR_MS, 0);

for (const [name, fixture] of Object.entries(fixtures)) {
  describe(`hourly rollup, background fill: ${name}`, { skip: fixture.skip, timeout: 120_000 }, () => {
    test('fills in bounded slices, newest first, then a year-long chart reads only the rollup', async () => {
      const o = await fixture.open();
      try {
        const user = await o.store.createUser({ email: 'fill@example.com', name: 'F', passwordHash: 'h' });
        const device = await o.store.createDevice({ id: `FILL${'Q'.repeat(20)}`, userId: user.id, name: 'Greenhouse', keyHash: 'k' });
        const now = Date.now();
        const readings = readingsFor(device.id, now);
        for (let k = 0; k < readings.length; k += 500) await o.store.appendReadings(readings.slice(k, k + 500));
        const first = Math.floor(readings[0].time / HOUR_MS) * HOUR_MS;
        assert.deepEqual(await o.store.rollupSensors(null, 10), [{ deviceId: device.id, sensor: 'temp' }]);

        // Three hours ago, as after an upgrade: every slice is at most SLICE hours, adds exactly what it says, newest first.
        const earlier = now - 3 * HOUR_MS;
        let hi = settledHours(earlier);
        for (let k = 0; k < 3; k++) {
          const before = covered(await o.spans(device.id, 'temp', ''));
          const filled = await o.store.fillRollup(device.id, 'temp', earlier, SLICE);
          const spans = await o.spans(device.id, 'temp', '');
          assert.equal(filled, SLICE, 'a full slice while history lacks');
          assert.equal(covered(spans) - before, filled, 'the slice adds what it reports');
          assert.deepEqual(spans, [{ lo: hi - (k + 1) * SLICE * HOUR_MS, hi }], 'newest hours first, one span');
        }

        // The job with no time budget: one slice a tick, halved while slices take longer than sliceMs (here 0).
        const slow = new RollupFillJob(o.store, log, { everyMs: 60_000, budgetMs: 0, sliceHours: SLICE, sliceMs: 0 }, () => earlier);
        const perTick: number[] = [];
        for (let k = 0; k < 5; k++) perTick.push(await slow.tick());
        assert.deepEqual(perTick, [12, 6, 3, 1, 1], 'one slice a tick, shorter while slow');
        assert.equal(covered(await o.spans(device.id, 'temp', '')), 3 * SLICE + 23, 'the ticks filled what they report');
        await slow.stop();

        // With a tick budget far below the whole catch-up, it does part of it per tick.
        const job = new RollupFillJob(o.store, log, { everyMs: 60_000, budgetMs: 1, sliceHours: SLICE, sliceMs: 1000 }, () => earlier);
        const lacking = (hi - first) / HOUR_MS - 3 * SLICE - 23;
        const firstTick = await job.tick();
        assert.ok(firstTick > 0 && firstTick < lacking, `a tick does part of the work (${firstTick} of ${lacking} hours)`);
        let ticks = 1;
        while ((await job.tick()) > 0) assert.ok(++ticks < 1000, 'the fill ends');
        assert.deepEqual(await o.spans(device.id, 'temp', ''), [{ lo: first, hi }], 'every settled hour since the first reading');

        // New hours settled since: the next ticks fill them.
        const later = new RollupFillJob(o.store, log, { everyMs: 60_000, budgetMs: 50, sliceHours: SLICE, sliceMs: 1000 });
        while ((await later.tick()) > 0);
        hi = settledHours(Date.now());
        assert.deepEqual(await o.spans(device.id, 'temp', ''), [{ lo: first, hi }], 'keeps up with new hours');
        await later.stop();
        await job.stop();

        // Caught up: ticks look at nothing until the next hour settles, so an idle hub stays idle.
        let fills = 0;
        const counting = new Proxy(o.store, {
          get: (target, key) => (key === 'fillRollup' ? (...args: Parameters<typeof target.fillRollup>) => (fills++, target.fillRollup(...args)) : Reflect.get(target, key, target)),
        });
        let at = Date.now();
        const idle = new RollupFillJob(counting, log, { everyMs: 60_000, budgetMs: 50, sliceHours: SLICE, sliceMs: 1000 }, () => at);
        assert.equal(await idle.tick(), 0, 'nothing left to fill');
        const looked = fills;
        assert.ok(looked > 0, 'the first round looked at the sensors');
        assert.equal(await idle.tick(), 0);
        assert.equal(fills, looked, 'a caught-up job does not look again before the next hour settles');
        at = settledHours(at) + HOUR_MS + SETTLED_MS + 1;
        await idle.tick();
        assert.ok(fills > looked, 'once the next hour has settled it looks again');
        await idle.stop();

        // A year-long chart (as a client asks for it) now needs no fill: no span or hour changes, same answer.
        const spans = await o.spans(device.id, 'temp', '');
        const rows = await o.hourRows(device.id);
        const q: BucketQuery = { from: now - 365 * DAY + 1234, to: Date.now(), bucketMs: DAY, limit: 400 };
        const got = await o.store.historyBuckets(device.id, 'temp', q);
        assert.deepEqual(await o.spans(device.id, 'temp', ''), spans, 'no span filled by the chart');
        assert.equal(await o.hourRows(device.id), rows, 'no hour written by the chart');
        assert.ok(got.length > 40);
        assert.deepEqual(got, expected(readings, q));
        for (const side of ['device', 'client'] as Side[]) assert.deepEqual(await o.store.historyBuckets(device.id, 'temp', { ...q, side }), expected(readings, { ...q, side }), `side ${side}`);
      } finally {
        await o.done();
      }
    });
  });
}
