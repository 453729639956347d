/** Issue 12 part 3: aggregated history over HTTP (the SQL itself is checked per store in test/sharing-store-contract.ts). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bucketFor, MAX_BUCKETS, parseBucketSize } from '../src/core/buckets.js';
import { makeDevice, startTestServer } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

const get = async (path: string, headers: Record<string, string>) => {
  const res = await fetch(`${server.url}/api/v1${path}`, { headers });
  return { status: res.status, body: await res.json() };
};

test('bucket=1h answers one row per non-empty hour with min, max, avg, count, last; numeric strings count', async () => {
  const d = await makeDevice(server);
  const hour = 3_600_000;
  const t0 = Math.floor(Date.now() / hour) * hour - 3 * hour;
  const r = (dt: number, value: unknown) => ({ deviceId: d.id, sensor: 'temp', value, side: 'device' as const, time: t0 + dt });
  await server.hub.store.appendReadings([r(1000, 20), r(2000, '22'), r(3000, 21), r(2 * hour + 5, 'n/a'), r(2 * hour + 10, 30)]);
  const key = { 'x-device-key': d.key };
  const res = await get(`/devices/${d.id}/sensors/temp/history?from=${t0}&to=${t0 + 3 * hour - 1}&bucket=1h`, key);
  assert.equal(res.status, 200);
  assert.equal(res.body.bucket, hour);
  assert.deepEqual(res.body.buckets, [
    { time: t0, min: 20, max: 22, avg: 21, count: 3, last: 21 },
    { time: t0 + 2 * hour, min: 30, max: 30, avg: 30, count: 1, last: 30 },
  ], 'the empty hour in between is no row: a chart draws it as a gap');

  const auto = await get(`/devices/${d.id}/sensors/temp/history?from=${t0}&to=${t0 + 3 * hour - 1}&bucket=auto`, key);
  assert.equal(auto.body.bucket, 30_000, 'three hours in at most 500 round buckets: 30 s');
  assert.equal(auto.body.buckets.reduce((n: number, b: any) => n + b.count, 0), 4);

  const tooMany = await get(`/devices/${d.id}/sensors/temp/history?from=0&to=${t0}&bucket=1m`, key);
  assert.equal(tooMany.status, 400);
  assert.match(tooMany.body.message, /at most 2000/);
  assert.equal((await get(`/devices/${d.id}/sensors/temp/history?bucket=7x`, key)).status, 400);
});

test('bucket sizes and auto', () => {
  assert.equal(parseBucketSize('5m'), 300_000);
  assert.equal(parseBucketSize('1d'), 86_400_000);
  assert.throws(() => parseBucketSize('0h'));
  const year = 365 * 86_400_000;
  assert.ok(year / bucketFor('auto', 0, year) <= 500);
  assert.throws(() => bucketFor('1s', 0, (MAX_BUCKETS + 1) * 1000));
});

test('the WebSocket history request takes the same bucket option', async () => {
  const { TestClient } = await import('./helpers.js');
  const d = await makeDevice(server);
  const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 120_000;
  await server.hub.store.appendReadings([1, 2, '6'].map((value, i) => ({ deviceId: d.id, sensor: 'hum', value, side: 'device' as const, time: t0 + i })));
  const c = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  try {
    c.ws.send(JSON.stringify({ method: 'history', id: 1, sensor: 'hum', from: t0, to: t0 + 59_999, bucket: '1m' }));
    const reply = await c.next((m) => m.id === 1);
    assert.deepEqual(reply.buckets, [{ time: t0, min: 1, max: 6, avg: 3, count: 3, last: 6 }]);
    c.ws.send(JSON.stringify({ method: 'history', id: 2, sensor: 'hum', from: 0, to: t0, bucket: '1s' }));
    assert.equal((await c.next((m) => m.id === 2)).code, 'E_VALIDATION');
  } finally {
    c.close();
  }
});
