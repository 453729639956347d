/**
 * One account writing faster than the store takes its readings is slowed by flow control, not refused: once it
 * has a commit's worth waiting, the hub stops reading its connections until those readings leave. Real sockets,
 * real SQLite.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeDevice, startTestServer, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ rateLimit: 0 });
});
after(() => server.stop());

test('an account pipelining more readings than its share of the store\'s queue gets every one acknowledged, in order; another account is served meanwhile', async () => {
  const d = await makeDevice(server);
  const other = await makeDevice(server);
  const peers = await Promise.all(Array.from({ length: 16 }, () => TestClient.connect(server.wsUrl, d.id, d.key, 'device')));
  const bystander = await TestClient.connect(server.wsUrl, other.id, other.key, 'device');
  const PUTS = 40;
  const BATCH = 500;
  // 16 × 40 × 500 = 320 000 readings sent at once: more than the 100 000 one account may have waiting.
  const acks = peers.map((peer, k) => Array.from({ length: PUTS }, (_, i) => {
    const status = Array.from({ length: BATCH }, (_, j) => ({ sensor: `c${k}`, value: i * BATCH + j }));
    return peer.request({ method: 'put', status }, 60_000);
  }));
  const mine = await bystander.request({ method: 'put', status: { sensor: 'temp', value: 21 } }, 30_000);
  assert.equal(mine.ok, true, JSON.stringify(mine));
  const replies = await Promise.all(acks.flat());
  const refused = replies.filter((r) => r.ok !== true);
  assert.deepEqual(refused.slice(0, 3), [], `${refused.length} of ${replies.length} puts refused`);
  assert.ok(replies.every((r) => r.count === BATCH));
  for (let k = 0; k < peers.length; k++) {
    const last = await server.hub.relay.gets(d.id, `c${k}`);
    assert.equal(last?.value, PUTS * BATCH - 1, `connection ${k}'s readings stored in the order sent`);
  }
  assert.equal(server.hub.relay.pendingWrites, 0);
  for (const p of [...peers, bystander]) await p.close();
});
