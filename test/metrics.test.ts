/** /metrics (Prometheus text), /healthz and /readyz on one node. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, makeDevice, startTestServer, TestClient } from './helpers.js';
import { mqttConnect } from './mqtt-clients.js';
import type { TestServer } from './helpers.js';
import { sample } from './prom.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

async function scrape(): Promise<string> {
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

test('/healthz and /readyz answer when the store and bus are up', async () => {
  const live = await fetch(`${server.url}/healthz`);
  assert.equal(live.status, 200);
  assert.deepEqual(await live.json(), { ok: true });
  const ready = await fetch(`${server.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { ok: true, store: 'sqlite', bus: 'memory' });
});

test('/metrics counts connections by door and side, readings in and out, store batches and errors by code', async () => {
  const before = await scrape();
  assert.equal(sample(before, 'iotc_connections{door="ws",side="device"}'), undefined);
  assert.equal(sample(before, 'iotc_readings_in_total'), 0);
  assert.match(before, /^iotc_node_info\{node="[^"]+",store="sqlite",bus="memory"\} 1$/m);
  assert.match(before, /^process_resident_memory_bytes \d+/m);

  const d = await makeDevice(server);
  const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
  const c1 = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  const c2 = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  assert.equal((await device.request({ method: 'put', status: [{ sensor: 'a', value: 1 }, { sensor: 'b', value: 2 }, { sensor: 'c', value: 3 }] })).ok, true);
  await Promise.all([c1.reading(), c2.reading()]);
  await Promise.all([c1.reading(), c1.reading(), c2.reading(), c2.reading()]);
  const missing = await device.request({ method: 'gets', sensor: 'nothing' });
  assert.equal(missing.code, 'E_NOT_FOUND');
  const refused = await TestClient.connect(server.wsUrl, d.id, 'WRONGKEY0000000', 'client');
  await refused.closed;

  const text = await scrape();
  assert.equal(sample(text, 'iotc_connections{door="ws",side="device"}'), 1);
  assert.equal(sample(text, 'iotc_connections{door="ws",side="client"}'), 2);
  assert.equal(sample(text, 'iotc_readings_in_total'), 3);
  assert.equal(sample(text, 'iotc_readings_out_total'), 6, 'three readings to two clients');
  assert.equal(sample(text, 'iotc_store_batch_size_count'), 1);
  assert.equal(sample(text, 'iotc_store_batch_size_sum'), 3);
  assert.equal(sample(text, 'iotc_store_batch_seconds_count{outcome="committed"}'), 1);
  assert.ok(sample(text, 'iotc_store_batch_seconds_sum{outcome="committed"}')! > 0);
  assert.equal(sample(text, 'iotc_store_pending_readings'), 0);
  assert.equal(sample(text, 'iotc_errors_total{code="E_NOT_FOUND"}'), 1);
  assert.equal(sample(text, 'iotc_errors_total{code="E_AUTH"}'), 1);
  assert.equal(sample(text, 'iotc_bus_lag_seconds_count'), 0, 'a single node receives nothing over the bus');

  await Promise.all([device.close(), c1.close(), c2.close()]);
  const afterClose = await scrape();
  assert.equal(sample(afterClose, 'iotc_connections{door="ws",side="client"}'), undefined);
});

test('MQTT connections, over TCP and over WebSocket, count as door "mqtt"', async () => {
  const node = await startTestServer({ mqttPort: await freePort() });
  try {
    const d = await makeDevice(node);
    const tcp = await mqttConnect(`mqtt://127.0.0.1:${node.mqttPort}`, { username: d.id, password: d.key, protocolVersion: 4 });
    const overWs = await mqttConnect(`ws://127.0.0.1:${node.port}/mqtt`, { username: `${d.id}:client`, password: d.key, protocolVersion: 5 });
    const text = await (await fetch(`${node.url}/metrics`)).text();
    assert.equal(sample(text, 'iotc_connections{door="mqtt",side="device"}'), 1);
    assert.equal(sample(text, 'iotc_connections{door="mqtt",side="client"}'), 1);
    assert.doesNotMatch(text, /iotc_connections\{door="other"/);
    await Promise.all([tcp.endAsync(), overWs.endAsync()]);
  } finally {
    await node.stop();
  }
});

test("/metrics reports the event loop's delay since the previous scrape, to the tail, and starts afresh", async () => {
  await scrape();
  // The pause starts right after a scrape reset the monitor, before its timer ticks again: the interval under way
  // must still be counted (Node's own monitor dropped it).
  // A 160 ms pause of the server's own loop (test and server share this process) must show in the next scrape.
  const until = Date.now() + 160;
  while (Date.now() < until);
  await new Promise((r) => setTimeout(r, 20));
  const text = await scrape();
  for (const q of ['0.5', '0.99', '0.999']) assert.ok(sample(text, `iotc_eventloop_delay_seconds{quantile="${q}"}`)! >= 0);
  assert.ok(sample(text, 'iotc_eventloop_delay_seconds{quantile="max"}')! >= 0.14, 'the 160 ms pause is the longest');
  await new Promise((r) => setTimeout(r, 20));
  const next = await scrape();
  const nextMax = sample(next, 'iotc_eventloop_delay_seconds{quantile="max"}')!;
  assert.ok(nextMax < 0.14, `reset by the previous scrape (max now ${nextMax})`);
});
