/**
 * Outages of the real services, on throwaway instances started for this file (the machine's shared
 * PostgreSQL and NATS are never stopped): clear errors and no false acknowledgements while a service is
 * down, /readyz saying what is down, and recovery without a restart when it returns.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { encodeBlobFrame } from '../src/core/blobs.js';
import { makeDevice, serviceAvailable, startTestServer, TestClient, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';
import { createTestDatabase } from './pg-helpers.js';
import type { TestDatabase } from './pg-helpers.js';
import { sample } from './prom.js';
import { natsServerInstalled, postgresInstalled, TcpProxy, ThrowawayNats, ThrowawayPostgres } from './services.js';

// Checked before any test starts: tests begin running as soon as they are declared.
const pgUp = await serviceAvailable('PostgreSQL', 5432);

/** Requests are answered once a connection is attached and synced: after this, readings arrive live only. */
async function attached(...conns: TestClient[]): Promise<void> {
  for (const c of conns) assert.equal((await c.request({ method: 'ping' })).ok, true);
}

async function readyz(server: TestServer): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}/readyz`);
  return { status: res.status, body: await res.json() };
}

function requireBinaries(what: string, ok: boolean): boolean {
  if (ok) return true;
  if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error(`${what} is required (IOTC_REQUIRE_SERVICES=1) but not installed`);
  console.log(`# notice: ${what} not installed; skipping its outage tests`);
  return false;
}

describe('PostgreSQL outage', { skip: !requireBinaries('PostgreSQL (server binaries, run as root)', postgresInstalled()) && 'no PostgreSQL binaries' }, () => {
  let pg: ThrowawayPostgres;
  let server: TestServer;
  const clients: TestClient[] = [];

  before(async () => {
    pg = await ThrowawayPostgres.start();
    server = await startTestServer({ store: pg.url, bus: 'memory' });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.stop();
    await pg?.destroy();
  });

  test('while the database is down, writes are refused with E_UNAVAILABLE (never acknowledged), and the node recovers by itself', async () => {
    const d = await makeDevice(server);
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const client = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    clients.push(device, client);
    await attached(device, client);
    assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: 1 } })).ok, true);
    assert.equal((await client.reading()).value, 1);

    await pg.stop();

    const refused = await device.request({ method: 'put', status: { sensor: 'temp', value: 2 } }, 10_000);
    assert.equal(refused.ok, false);
    assert.equal(refused.code, 'E_UNAVAILABLE');
    assert.match(refused.error, /could not save the reading; it was not kept/);
    const gets = await client.request({ method: 'gets', sensor: 'temp' }, 10_000);
    assert.equal(gets.code, 'E_UNAVAILABLE');
    assert.match(gets.error, /database is unreachable/);

    const ready = await readyz(server);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.error, 'E_UNAVAILABLE');
    assert.match(ready.body.message, /^Not ready: store \(postgres\): /);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'alive, only not ready');

    // A new connection cannot be authenticated: refused with "try again later", not left hanging.
    const newcomer = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const refusal = await newcomer.next();
    assert.equal(refusal.code, 'E_UNAVAILABLE');
    assert.equal((await newcomer.closed).code, 1013);
    // Nothing that was refused reached the other side.
    assert.deepEqual(client.pending, []);

    await pg.start();
    await waitFor(async () => (await readyz(server)).status === 200, 15_000, 'ready again');
    const ack = await device.request({ method: 'put', status: { sensor: 'temp', value: 3 } });
    assert.equal(ack.ok, true);
    assert.equal((await client.reading()).value, 3);
    const now = await client.request({ method: 'gets', sensor: 'temp' });
    assert.equal(now.value, 3);
    const hist = await client.request({ method: 'history', sensor: 'temp', limit: 10 });
    assert.deepEqual(hist.readings.map((r: { value: number }) => r.value), [1, 3], 'the refused write was not kept');

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.ok(sample(metrics, 'iotc_store_batch_seconds_count{outcome="failed"}')! >= 1);
    assert.ok(sample(metrics, 'iotc_errors_total{code="E_UNAVAILABLE"}')! >= 3);
  });
});

describe('NATS outage', { skip: (!pgUp && 'PostgreSQL not reachable') || (!requireBinaries('nats-server', natsServerInstalled()) && 'no nats-server') }, () => {
  let nats: ThrowawayNats;
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  /** A third node whose own link to NATS goes through a proxy that can be cut. */
  let c: TestServer;
  let link: TcpProxy;
  const clients: TestClient[] = [];

  before(async () => {
    nats = await ThrowawayNats.start();
    link = await TcpProxy.start(nats.port);
    db = await createTestDatabase();
    a = await startTestServer({ store: db.url(), bus: nats.url, nodeId: 'outage-a' });
    b = await startTestServer({ store: db.url(), bus: nats.url, nodeId: 'outage-b' });
    c = await startTestServer({ store: db.url(), bus: `nats://127.0.0.1:${link.port}`, nodeId: 'outage-c' });
  });
  after(async () => {
    await Promise.all(clients.map((cl) => cl.close()));
    await a?.stop();
    await b?.stop();
    await c?.stop();
    await link?.cut();
    await nats?.stop();
    await db?.drop();
  });

  test('while NATS is down, readings are still stored and acknowledged; when it returns, connections on other nodes get what they missed', async () => {
    const d = await makeDevice(a);
    const device = await TestClient.connect(a.wsUrl, d.id, d.key, 'device');
    const client = await TestClient.connect(b.wsUrl, d.id, d.key, 'client');
    clients.push(device, client);
    await attached(device, client);
    assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: 'before' } })).ok, true);
    assert.equal((await client.reading()).value, 'before');

    await nats.stop();
    await waitFor(async () => (await readyz(a)).status === 503 && (await readyz(b)).status === 503, 5000, 'both nodes not ready');
    const ready = await readyz(b);
    assert.match(ready.body.message, /bus \(nats\): NATS is unreachable/);

    // Stored and acknowledged on each node; they cannot cross yet.
    assert.equal((await device.request({ method: 'put', status: [{ sensor: 'temp', value: 'during' }, { sensor: 'door', value: 'open' }] })).ok, true);
    assert.equal((await client.request({ method: 'put', status: { sensor: 'lamp', value: 'on' } })).ok, true);
    // Reads go to the store, so they work from any node meanwhile.
    assert.equal((await client.request({ method: 'gets', sensor: 'door' })).value, 'open');

    await nats.start();
    await waitFor(async () => (await readyz(a)).status === 200 && (await readyz(b)).status === 200, 15_000, 'both nodes ready again');
    // Delivered live from the reconnect buffer, or as a sync from the store: either way, nothing missed.
    const temp = await client.next((m) => m.sensor === 'temp' && m.value === 'during', 10_000);
    const door = await client.next((m) => m.sensor === 'door', 10_000);
    assert.equal(door.value, 'open');
    assert.equal(temp.write, 'device');
    const lamp = await device.next((m) => m.sensor === 'lamp', 10_000);
    assert.equal(lamp.value, 'on');

    // And live traffic flows again.
    await device.request({ method: 'put', status: { sensor: 'temp', value: 'after' } });
    await client.next((m) => m.sensor === 'temp' && m.value === 'after', 5000);
  });

  test('a node whose own link to NATS drops re-reads from the store, when the link returns, what its connections missed', async () => {
    const d = await makeDevice(a);
    const device = await TestClient.connect(a.wsUrl, d.id, d.key, 'device');
    const client = await TestClient.connect(c.wsUrl, d.id, d.key, 'client');
    clients.push(device, client);
    await attached(device, client);
    assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: 1 } })).ok, true);
    assert.equal((await client.reading()).value, 1);

    await link.cut();
    await waitFor(async () => (await readyz(c)).status === 503, 5000, 'node C not ready');
    assert.equal((await readyz(a)).status, 200, 'the other nodes are fine');
    // Node A publishes with NATS up, but C is not subscribed now: these are lost to the bus.
    for (const value of [2, 3, 4]) assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value } })).ok, true);
    assert.equal((await device.request({ method: 'put', status: { sensor: 'hum', value: 55 } })).ok, true);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(client.pending, [], 'nothing arrives while the link is down');

    await link.resume();
    await waitFor(async () => (await readyz(c)).status === 200, 15_000, 'node C ready again');
    // The newest value of each sensor the device wrote meanwhile, marked as a sync.
    const got = [await client.reading(5000), await client.reading(5000)];
    assert.deepEqual(got.map((m) => [m.sensor, m.value, m.sync]), [['temp', 4, true], ['hum', 55, true]]);
    await device.request({ method: 'put', status: { sensor: 'temp', value: 5 } });
    const live = await client.reading();
    assert.deepEqual([live.value, live.sync], [5, undefined]);
  });

  test('when a node\'s link to NATS returns, its viewers get the newest chunk of each sensor stored meanwhile, once', async () => {
    const d = await makeDevice(a);
    const openWs = (node: TestServer, side: string) =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${node.wsUrl}/ws?device=${d.id}&key=${d.key}&side=${side}&binary=1`);
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
    const camera = await openWs(a, 'device');
    const viewer = await openWs(c, 'client');
    const frames: { header: Record<string, unknown>; bytes: Buffer }[] = [];
    viewer.on('message', (data: Buffer, binary) => {
      if (binary) frames.push({ header: JSON.parse(data.subarray(1, 1 + data[0]).toString()), bytes: Buffer.from(data.subarray(1 + data[0])) });
    });
    const answered = (ws: WebSocket) =>
      new Promise<void>((resolve) => {
        ws.once('message', () => resolve());
        ws.send(JSON.stringify({ method: 'ping', id: 1 }));
      });
    await answered(viewer);
    await answered(camera);
    const send = async (sensor: string, bytes: Buffer) => {
      const acked = new Promise<void>((resolve) => camera.once('message', () => resolve()));
      camera.send(encodeBlobFrame({ sensor, type: 'image/jpeg', id: 'c' }, bytes));
      await acked;
    };
    await send('cam', Buffer.from([1, 1]));
    await waitFor(() => frames.length === 1, 5000, 'the first chunk, live');

    await link.cut();
    await waitFor(async () => (await readyz(c)).status === 503, 5000, 'node C not ready');
    // Stored on node A and announced on the bus, which node C does not hear now.
    await send('cam', Buffer.from([2, 2]));
    await send('cam', Buffer.from([3, 3]));
    await send('door', Buffer.from([4, 4]));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(frames.length, 1, 'nothing arrives while the link is down');

    await link.resume();
    await waitFor(async () => (await readyz(c)).status === 200, 15_000, 'node C ready again');
    await waitFor(() => frames.length === 3, 5000, 'the newest chunk of each sensor');
    assert.deepEqual(frames.slice(1).map((f) => [f.header.sensor, [...f.bytes], f.header.sync]), [['cam', [3, 3], true], ['door', [4, 4], true]]);
    // Live again, and nothing sent twice.
    await send('cam', Buffer.from([5, 5]));
    await waitFor(() => frames.length === 4, 5000, 'a live chunk after the return');
    assert.deepEqual([[...frames[3].bytes], frames[3].header.sync], [[5, 5], undefined]);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(frames.length, 4);
    viewer.close();
    camera.close();
  });
});
