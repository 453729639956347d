/**
 * Several real server processes sharing the machine's PostgreSQL (a database made for this file) and NATS:
 * devices and clients spread over them exchange readings as on one node, any node answers gets, history and
 * sync, rotation and deletion close connections everywhere, and a node killed mid-stream loses nothing acknowledged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { encodeBlobFrame } from '../src/core/blobs.js';
import { clusterSkip, twoNodeCluster } from './cluster-helpers.js';
import { runCli, sleep, waitFor, within } from './helpers.js';
import type { Message } from './helpers.js';
import { sample } from './prom.js';
import type { NodeProcess } from './services.js';

const skip = await clusterSkip();

describe('a cluster of nodes on PostgreSQL and NATS', { skip }, () => {
  const cluster = twoNodeCluster({ name: 'cluster', deviceName: 'Lamp' });
  const { newDevice, open, startNode } = cluster;

  test('a binary chunk sent to one node reaches a viewer on another byte-exact', async () => {
    const d = await newDevice();
    const frameFrom = (ws: WebSocket) =>
      new Promise<Buffer>((resolve) => ws.on('message', (data: Buffer, binary) => binary && resolve(Buffer.from(data.subarray(1 + data[0])))));
    const openWs = (node: NodeProcess, side: string) =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${node.wsUrl}/ws?device=${d.id}&key=${d.key}&side=${side}&binary=1`);
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
    const viewer = await openWs(cluster.b, 'client');
    const camera = await openWs(cluster.a, 'device');
    // Attached once a request is answered: then a chunk stored elsewhere arrives live.
    await new Promise<void>((resolve) => {
      viewer.once('message', () => resolve());
      viewer.send(JSON.stringify({ method: 'ping', id: 1 }));
    });
    const got = frameFrom(viewer);
    const bytes = Buffer.from([0xff, 0xd8, 0, 1, 2, 0xfe, 0xff]);
    camera.send(encodeBlobFrame({ sensor: 'cam', type: 'image/jpeg' }, bytes));
    assert.ok((await within(got, 5000, 'the chunk on the other node')).equals(bytes));
    viewer.close();
    camera.close();
  });

  test('a device on one node and a client on another exchange readings both ways, as on one node', async () => {
    const d = await newDevice();
    const device = await open(cluster.a, d, 'device');
    const client = await open(cluster.b, d, 'client');
    const ack = await device.request({ method: 'put', status: { sensor: 'temp', value: 21.5 } });
    assert.equal(ack.ok, true);
    const got = await client.reading();
    assert.deepEqual({ ...got, time: 0 }, { sensor: 'temp', value: 21.5, time: 0, write: 'device' });
    assert.equal(got.time, ack.time);
    assert.equal((await client.request({ method: 'put', status: { sensor: 'lamp', value: { on: true, level: 0.75 } } })).ok, true);
    const cmd = await device.reading();
    assert.deepEqual([cmd.sensor, cmd.value, cmd.write], ['lamp', { on: true, level: 0.75 }, 'client']);
    // A reading is not echoed back to its writer's own side.
    await sleep(200);
    assert.deepEqual(client.pending, []);
    assert.deepEqual(device.pending, []);
  });

  test('a sensor name PostgreSQL cannot store is refused at the edge, and writes sharing its batch are kept', async () => {
    const [d1, d2] = [await newDevice(), await newDevice()];
    const bad = await open(cluster.a, d1, 'device');
    const good = await open(cluster.a, d2, 'device');
    // Sent in the same instant, so a store batch would hold both if the bad one got through.
    const [refused, ok] = await Promise.all([
      bad.request({ method: 'put', status: { sensor: 'a\u0000b', value: 1 } }),
      good.request({ method: 'put', status: { sensor: 'temp', value: 2 } }),
    ]);
    assert.deepEqual([refused.ok, refused.code], [false, 'E_VALIDATION']);
    assert.match(refused.error, /NUL/);
    assert.equal(ok.ok, true);
    assert.equal((await good.request({ method: 'gets', sensor: 'temp' })).value, 2);
  });

  test('gets, sensors, history and sync-on-connect answer the same from any node', async () => {
    const d = await newDevice();
    const device = await open(cluster.a, d, 'device');
    for (let i = 1; i <= 5; i++) assert.equal((await device.request({ method: 'put', status: { sensor: 'temp', value: i } })).ok, true);
    await device.request({ method: 'put', status: { sensor: 'hum', value: 40 } });
    // A client that never connected before gets, on connecting to the other node, the newest of each sensor.
    const client = await open(cluster.b, d, 'client');
    const synced = [await client.reading(), await client.reading()];
    assert.deepEqual(synced.map((r) => [r.sensor, r.value, r.sync]), [['temp', 5, true], ['hum', 40, true]]);
    for (const c of [client, device]) {
      const temp = await c.request({ method: 'gets', sensor: 'temp' });
      assert.deepEqual([temp.ok, temp.value, temp.write], [true, 5, 'device']);
      const hist = await c.request({ method: 'history', sensor: 'temp', limit: 3 });
      assert.deepEqual(hist.readings.map((r: Message) => r.value), [3, 4, 5]);
      const sensors = await c.request({ method: 'sensors' });
      assert.deepEqual(sensors.sensors.map((r: Message) => [r.sensor, r.value]), [['hum', 40], ['temp', 5]]);
    }
    // The client leaves; the device writes on; the client comes back through node A and is synced.
    await client.close();
    await sleep(100);
    await device.request({ method: 'put', status: { sensor: 'temp', value: 6 } });
    const back = await open(cluster.a, d, 'client');
    const missed = await back.reading();
    assert.deepEqual([missed.sensor, missed.value, missed.sync], ['temp', 6, true]);
  });

  test('devices and clients spread over three nodes: every reading crosses, in order, both ways', async () => {
    const c = await startNode('node-c');
    const ring = [cluster.a, cluster.b, c];
    const pairs = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const d = await newDevice();
        return { d, device: await open(ring[i % 3], d, 'device'), client: await open(ring[(i + 1) % 3], d, 'client') };
      }),
    );
    const N = 40;
    await Promise.all(
      pairs.map(async ({ device, client }) => {
        const acks = Array.from({ length: N }, (_, i) => device.request({ method: 'put', status: { sensor: 'seq', value: i } }));
        const back = Array.from({ length: 5 }, (_, i) => client.request({ method: 'put', status: { sensor: 'cmd', value: i } }));
        assert.ok((await Promise.all([...acks, ...back])).every((r) => r.ok));
        const atClient: number[] = [];
        while (atClient.length < N) atClient.push((await client.reading()).value);
        assert.deepEqual(atClient, Array.from({ length: N }, (_, i) => i), 'per-device order kept across nodes');
        const atDevice: number[] = [];
        while (atDevice.length < 5) atDevice.push((await device.reading()).value);
        assert.deepEqual(atDevice, [0, 1, 2, 3, 4]);
      }),
    );
    const text = await (await fetch(`${c.url}/metrics`)).text();
    assert.ok(sample(text, 'iotc_bus_lag_seconds_count')! > 0, 'node C received readings over the bus');
    assert.match(text, /^iotc_node_info\{node="node-c",store="postgres",bus="nats"\} 1$/m);
  });

  test('a node started later answers gets with the stored values', async () => {
    const d = await newDevice();
    const device = await open(cluster.a, d, 'device');
    await device.request({ method: 'put', status: [{ sensor: 'temp', value: 19 }, { sensor: 'door', value: 'closed' }] });
    const late = await startNode('node-late');
    const client = await open(late, d, 'client');
    await client.reading(); // the sync
    await client.reading();
    const got = await client.request({ method: 'gets', sensor: 'door' });
    assert.deepEqual([got.ok, got.value, got.write], [true, 'closed', 'device']);
    await device.request({ method: 'put', status: { sensor: 'temp', value: 20 } });
    assert.equal((await client.reading()).value, 20);
    const ready = await (await fetch(`${late.url}/readyz`)).json();
    assert.deepEqual(ready, { ok: true, store: 'postgres', bus: 'nats' });
  });

  test('online status and client counts add up across nodes', async () => {
    const d = await newDevice();
    const device = await open(cluster.a, d, 'device');
    await open(cluster.b, d, 'client');
    await open(cluster.nodes[2] ?? cluster.b, d, 'client');
    const status = () => cluster.store.listDevices(d.userId).then((l) => l[0]);
    await waitFor(async () => {
      const s = await status();
      return s.online && s.clients === 2;
    }, 5000, 'online with two clients');
    await device.close();
    await waitFor(async () => !(await status()).online, 5000, 'offline after the device left');
    assert.equal((await status()).clients, 2);
  });

  test('rotating a key (from the CLI) closes the old key\'s connections on every node; deleting closes the new ones', async () => {
    const d = await newDevice();
    const conns = [await open(cluster.a, d, 'device'), await open(cluster.b, d, 'client'), await open(cluster.nodes[2] ?? cluster.b, d, 'client')];
    const rotated = await runCli(['device', 'rotate', d.id, '--json'], { env: { IOTC_STORE: cluster.db.url() } });
    assert.equal(rotated.code, 0, rotated.stderr);
    const closes = await Promise.all(conns.map((c) => Promise.race([c.closed, sleep(5000).then(() => ({ code: 0, reason: 'still open' }))])));
    for (const cl of closes) assert.deepEqual(cl, { code: 4401, reason: 'The device key was rotated' });
    const newKey = JSON.parse(rotated.stdout).key;
    const fresh = [await open(cluster.b, { id: d.id, key: newKey }, 'device'), await open(cluster.a, { id: d.id, key: newKey }, 'client')];
    await cluster.accounts.deleteDevice(null, d.id);
    const gone = await Promise.all(fresh.map((c) => Promise.race([c.closed, sleep(5000).then(() => ({ code: 0, reason: 'still open' }))])));
    for (const cl of gone) assert.equal(cl.code, 4404);
  });

  test('a node killed mid-stream loses nothing acknowledged; its device reconnects to another node and syncs', async () => {
    const doomed = await startNode('node-doomed');
    const d = await newDevice();
    const client = await open(cluster.b, d, 'client');
    const device = await open(doomed, d, 'device');
    const acked: number[] = [];
    let stop = false;
    // Pipelined writes, several in flight at a time, as a busy device sends them.
    const writer = (async () => {
      for (let i = 0; !stop; i += 4) {
        const batch = [i, i + 1, i + 2, i + 3].map((v) =>
          device.request({ method: 'put', status: { sensor: 'seq', value: v } }, 2000).then(
            (r) => r.ok && acked.push(v),
            () => {},
          ),
        );
        await Promise.all(batch);
      }
    })();
    await waitFor(() => acked.length >= 100, 10_000, '100 acknowledged writes');
    await doomed.stop('SIGKILL');
    stop = true;
    await writer;
    await device.closed;
    assert.ok(acked.length >= 100);

    // Every acknowledged reading is in the store, seen from another node.
    const hist = await client.request({ method: 'history', sensor: 'seq', limit: 10_000 });
    const stored = new Set(hist.readings.map((r: Message) => r.value));
    const lost = acked.filter((v) => !stored.has(v));
    assert.deepEqual(lost, [], 'acknowledged readings missing after SIGKILL');

    // While the device is away, the client sends a command; the device reconnects elsewhere and gets it.
    await client.request({ method: 'put', status: { sensor: 'cmd', value: 'reboot' } });
    const again = await open(cluster.a, d, 'device');
    const sync = await again.next((m) => m.sensor === 'cmd');
    assert.deepEqual([sync.value, sync.sync, sync.write], ['reboot', true, 'client']);
    assert.equal((await again.request({ method: 'put', status: { sensor: 'seq', value: -1 } })).ok, true);
    await client.next((m) => m.sensor === 'seq' && m.value === -1);
  });
});
