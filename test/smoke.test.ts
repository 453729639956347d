import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeDevice, startTestServer, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

test('a reading put by the device reaches the client, stamped, and is acknowledged', async () => {
  const d = await makeDevice(server);
  const client = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
  const ack = await device.request({ method: 'put', status: { sensor: 'temp', value: 20 } });
  assert.equal(ack.ok, true);
  const got = await client.reading();
  assert.equal(got.sensor, 'temp');
  assert.equal(got.value, 20);
  assert.equal(got.write, 'device');
  assert.equal(typeof got.time, 'number');
  await Promise.all([client.close(), device.close()]);
});
