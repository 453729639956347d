import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeDevice, sleep, startTestServer, TestClient, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer({ maxConnectionsPerDevice: 64 });
});
after(() => server.stop());

test('every client of a device gets each reading once, also after others left', async () => {
  const d = await makeDevice(server);
  const clients = await Promise.all(Array.from({ length: 12 }, () => TestClient.connect(server.wsUrl, d.id, d.key, 'client')));
  const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
  assert.equal((await device.request({ method: 'put', status: { sensor: 't', value: 1 } })).ok, true);
  for (const c of clients) assert.equal((await c.reading()).value, 1);

  // Half leave; the rest keep receiving, and nobody gets a reading twice.
  await Promise.all(clients.slice(0, 6).map((c) => c.close()));
  await waitFor(() => server.hub.relay.connections.client === 6, 5000, 'six clients left');
  assert.equal((await device.request({ method: 'put', status: [{ sensor: 't', value: 2 }, { sensor: 't', value: 3 }] })).count, 2);
  for (const c of clients.slice(6)) {
    assert.equal((await c.reading()).value, 2);
    assert.equal((await c.reading()).value, 3);
  }
  await sleep(100);
  for (const c of clients.slice(6)) assert.deepEqual(c.pending, []);
  await Promise.all([device.close(), ...clients.slice(6).map((c) => c.close())]);
  await waitFor(() => server.hub.relay.connections.device === 0 && server.hub.relay.connections.client === 0, 5000, 'all gone');
});

test('a key rotation closes every connection that used the old key, on both sides', async () => {
  const d = await makeDevice(server);
  const conns = [
    await TestClient.connect(server.wsUrl, d.id, d.key, 'device'),
    await TestClient.connect(server.wsUrl, d.id, d.key, 'client'),
    await TestClient.connect(server.wsUrl, d.id, d.key, 'client'),
  ];
  await server.hub.accounts.rotateKey(d.userId, d.id);
  for (const c of conns) assert.equal((await c.closed).code, 4401);
});
