/**
 * A device's byte budget (--retention-bytes): SQLite's chunks cut as a table of single readings would be, the
 * job weighing a device as it is written, and a running server that keeps a device within its budget however
 * fast it writes large values.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RetentionJob } from '../src/core/retention.js';
import { createLogger } from '../src/log.js';
import { READING_OVERHEAD_BYTES } from '../src/store/types.js';
import type { NewReading, StoredReading } from '../src/store/types.js';
import { makeDevice, startTestServer, TestClient, waitFor } from './helpers.js';
import { DEVICES, random, withStore } from './sqlite-fixture.js';

const SENSORS = ['temp', 'hum', 'photo'];
const weight = (r: StoredReading) => Buffer.byteLength(JSON.stringify(r.value)) + READING_OVERHEAD_BYTES;
const key = (r: StoredReading) => `${r.deviceId}/${r.sensor}/${r.side}`;

/** What a table of single readings keeps: every reading newer than the newest one that does not fit, and each key's latest. */
function modelPruneBytes(all: StoredReading[], deviceId: string, max: number): StoredReading[] {
  const latest = new Map<string, number>();
  for (const r of all) latest.set(key(r), r.seq);
  let held = 0;
  let cut = -Infinity;
  for (const r of all.filter((x) => x.deviceId === deviceId).sort((a, b) => b.seq - a.seq)) {
    held += weight(r);
    if (held > max) {
      cut = r.seq;
      break;
    }
  }
  return all.filter((r) => r.deviceId !== deviceId || r.seq > cut || latest.get(key(r)) === r.seq);
}

test('SQLite cuts its chunks by bytes as a table of single readings would: interleaved keys, values large and small, partly moved, in steps', async () => {
  // The last: thousands of chunks past the budget, deleted in several steps (256 chunks each).
  for (const [seed, max, commits] of [[1, 1, 60], [2, 900, 60], [3, 20_000, 60], [4, 150_000, 60], [5, 10_000_000, 60], [6, 60_000, 900]]) {
    await withStore(async (store) => {
      // Seqs of four digits throughout, as chunks are weighed by the digits of their last seq.
      await store.appendReadings(Array.from({ length: 1000 }, (_, i): NewReading => ({ deviceId: DEVICES[1], sensor: 'pad', side: 'device', value: i, time: Date.now() })));
      const rnd = random(seed);
      const all: StoredReading[] = [];
      let time = Date.now() - 3_600_000;
      for (let c = 0; c < commits; c++) {
        const batch: NewReading[] = [];
        for (let i = 0, n = 1 + Math.floor(rnd() * 40); i < n; i++) {
          time += Math.floor(rnd() * 2000);
          const big = rnd() < 0.1;
          const value = big ? 'x'.repeat(1000 + Math.floor(rnd() * 5000)) : [all.length + i, { v: rnd(), é: 'ü😀' }, `s${i}`][i % 3];
          batch.push({ deviceId: DEVICES[rnd() < 0.8 ? 0 : 1], sensor: SENSORS[Math.floor(rnd() * 3)], side: rnd() < 0.7 ? 'device' : 'client', value, time });
        }
        all.push(...(await store.appendReadings(batch)));
        if (c % 7 === 3) store.settle();
      }
      const want = modelPruneBytes(all, DEVICES[0], max);
      assert.equal(await store.pruneDeviceBytes(DEVICES[0], max), all.length - want.length, `removed with a budget of ${max}`);
      for (const d of DEVICES) {
        for (const s of SENSORS) {
          const got = (await store.history(d, s, { limit: 100_000 })).map((r) => r.seq);
          const model = want.filter((r) => r.deviceId === d && r.sensor === s).sort((a, b) => a.time - b.time || a.seq - b.seq).map((r) => r.seq);
          assert.deepEqual(got, model, `${d.slice(0, 1)} ${s} after pruning to ${max} bytes`);
        }
      }
      assert.equal(await store.pruneDeviceBytes(DEVICES[0], max), 0, 'a second prune finds nothing');
    });
  }
});

test('the job weighs a device once an eighth of its budget was written since, and each device once after start', () => withStore(async (store) => {
  const weighed: string[] = [];
  const real = store.pruneDeviceBytes.bind(store);
  store.pruneDeviceBytes = (id, max) => {
    weighed.push(id);
    return real(id, max);
  };
  const job = new RetentionJob(store, createLogger('silent'), { maxCount: 0, maxAgeMs: 0, maxBytesPerDevice: 40_000 }, 0);
  try {
    const [a, b] = DEVICES;
    // B held more than its budget before this start: the first periodic run weighs it, as it was written.
    const before = await store.appendReadings(Array.from({ length: 60 }, (_, i): NewReading => ({ deviceId: b, sensor: 'old', side: 'device', value: 'y'.repeat(1000), time: Date.now() + i })));
    const write = async (deviceId: string, n: number) => {
      // Each weighs 976 characters of JSON and the overhead: 1 000 bytes.
      const value = 'z'.repeat(974);
      const written = Array.from({ length: n }, (): NewReading => ({ deviceId, sensor: 'v', side: 'device', value, json: JSON.stringify(value), time: Date.now() }));
      await store.appendReadings(written);
      job.noteStored(deviceId, written, 0, n);
    };
    await write(b, 1);
    await write(a, 4);
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(weighed, [], '4 000 bytes is under an eighth of 40 000: nothing weighed yet');
    await write(a, 1);
    await waitFor(() => weighed.length === 1, 2000, 'A weighed');
    assert.deepEqual(weighed, [a], 'an eighth written: weighed at once');
    await write(a, 4);
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(weighed, [a], 'counted again from the weighing');
    await job.runOnce();
    assert.deepEqual(weighed, [a, b], 'the periodic run weighs B, written since start and never weighed; not A again');
    assert.equal((await store.history(b, 'old', { limit: 1000 })).length, 38, 'B within its budget: 38 readings of 1 026 bytes with its one of 1 000');
    assert.equal(before.length, 60);
    await job.runOnce();
    assert.deepEqual(weighed, [a, b], 'each device is weighed once after start, not every run');
  } finally {
    await job.stop();
  }
}));

test('a running server keeps a device within its byte budget while it writes large values as fast as it may', async () => {
  const budget = 200_000;
  const s = await startTestServer({ retentionBytes: budget, pruneInterval: 0, rateLimit: 0, retentionCount: 0 });
  try {
    const d = await makeDevice(s);
    const dev = await TestClient.connect(s.wsUrl, d.id, d.key, 'device');
    await dev.request({ method: 'put', status: { sensor: 'rare', value: 'kept' } });
    const big = 'p'.repeat(8000);
    let most = 0;
    for (let i = 0; i < 150; i++) {
      await dev.request({ method: 'put', status: { sensor: 'photo', value: `${i} ${big}` } });
      if (i % 10 === 9) {
        const held = (await s.hub.store.history(d.id, 'photo', { limit: 10_000 })).length;
        most = Math.max(most, held);
      }
    }
    // 8 030 bytes a reading: 24 fit in the budget; a device is weighed after each eighth of it written.
    assert.ok(most <= 24 + 4, `at most an eighth over the budget at any time (${most} held)`);
    await waitFor(async () => (await s.hub.store.history(d.id, 'photo', { limit: 10_000 })).length <= 24 + 4, 3000, 'the last weighing');
    const left = await dev.request({ method: 'history', sensor: 'photo', limit: 100 });
    assert.ok(left.readings.length >= 24, `the newest readings that fit stay (${left.readings.length})`);
    assert.equal(left.readings.at(-1).value, `149 ${big}`);
    assert.equal((await dev.request({ method: 'gets', sensor: 'rare' })).value, 'kept', 'the latest of each sensor stays');
    await dev.close();
  } finally {
    await s.stop();
  }
});
