/** Sync on connect of binary chunks: the newest chunk of each sensor reaches a connecting side on WebSocket and MQTT, on both stores. */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { blobDelivery, syncedBlobs } from '../src/core/blobs.js';
import type { StoredBlob } from '../src/store/types.js';
import { BlobClient, jpeg } from './blob-clients.js';
import { freePort, makeDevice, serviceAvailable, sleep, startTestServer, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';
import { mqttConnect } from './mqtt-clients.js';
import { createTestDatabase } from './pg-helpers.js';
import type { TestDatabase } from './pg-helpers.js';

const pgUp = await serviceAvailable('PostgreSQL', 5432);
let db: TestDatabase | null = null;
if (pgUp) {
  db = await createTestDatabase();
  after(() => db!.drop());
}

const stored = (sensor: string, seq: number): StoredBlob => ({ seq, deviceId: 'D', sensor, side: 'device', type: 'image/jpeg', size: 1, time: seq, data: Buffer.from([seq]) });

test('a chunk that arrived live while the sync was read wins over an older stored one, and is never sent twice', () => {
  const live = new Map([['cam', blobDelivery(stored('cam', 7), Buffer.from([7]))], ['mic', blobDelivery(stored('mic', 3), Buffer.from([3]))]]);
  const out = syncedBlobs([stored('cam', 5), stored('mic', 4), stored('door', 2)], live);
  assert.deepEqual(out.map((d) => [d.info.sensor, d.info.seq, JSON.parse(d.notice).sync ?? false]), [['door', 2, true], ['mic', 4, true], ['cam', 7, false]]);
});

/** A closed side's cursor is saved when its last connection leaves; the next connection syncs from there. */
async function closeAndSettle(server: TestServer, deviceId: string, side: 'device' | 'client', ...clients: BlobClient[]): Promise<void> {
  await Promise.all(clients.map((c) => (c.ws.close(), c.closed)));
  await waitFor(async () => (await server.hub.store.blobsToSync(deviceId, side)).length === 0, 5000, 'the side\'s cursor saved');
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`binary chunks in sync on connect (${kind})`, { skip: kind === 'postgres' && !pgUp && 'PostgreSQL not reachable' }, () => {
    let server: TestServer;
    let mqttUrl: string;
    before(async () => {
      const mqttPort = await freePort();
      const store = kind === 'postgres' ? { store: db!.url(`s_${crypto.randomBytes(5).toString('hex')}`) } : {};
      server = await startTestServer({ ...store, mqttPort, maxBlobBytes: 200_000, blobBudgetBytes: 2_000_000 });
      mqttUrl = `mqtt://127.0.0.1:${server.mqttPort}`;
    });
    after(() => server.stop());

    test('a connecting viewer gets the newest chunk of each sensor byte-exact, marked sync; an original client gets notices only', async () => {
      const dev = await makeDevice(server);
      const camera = await BlobClient.open(server, dev, 'device');
      const old = jpeg(50_000);
      const newest = jpeg(120_000);
      const sound = Buffer.from([0x00, 0xff, 0x80, 0x7f]);
      camera.putBlob('cam', old, 'image/jpeg', 1);
      camera.putBlob('cam', newest, 'image/jpeg', 2);
      camera.putBlob('mic', sound, 'audio/basic', 3);
      camera.ws.send(JSON.stringify({ method: 'put', id: 4, status: { sensor: 'temp', value: 20 } }));
      const acks = await Promise.all([1, 2, 3, 4].map((id) => camera.text((m) => m.id === id)));
      assert.ok(acks.every((a) => a.ok === true));

      const viewer = await BlobClient.open(server, dev, 'client', true);
      const original = await BlobClient.open(server, dev, 'client');
      await viewer.frame((f) => f.header.sensor === 'mic');
      const cam = await viewer.frame((f) => f.header.sensor === 'cam');
      assert.ok(cam.data.equals(newest), 'the newest cam frame, byte-exact');
      assert.deepEqual(cam.header, { sensor: 'cam', type: 'image/jpeg', size: newest.length, time: cam.header.time, write: 'device', seq: acks[1].seq, sync: true });
      assert.ok(viewer.frames.find((f) => f.header.sensor === 'mic')!.data.equals(sound));
      assert.equal((await viewer.text((m) => m.sensor === 'temp')).sync, true, 'readings are synced beside chunks');
      await sleep(200);
      assert.deepEqual(viewer.frames.map((f) => f.header.seq), [acks[1].seq, acks[2].seq], 'one frame per sensor, the older cam frame skipped, oldest first');

      const notice = await original.text((m) => m.sensor === 'cam');
      assert.deepEqual(notice.value, { blob: true, type: 'image/jpeg', size: newest.length, seq: acks[1].seq, url: `/api/v1/devices/${dev.id}/blobs/cam` });
      assert.equal(notice.sync, true);
      await original.text((m) => m.sensor === 'mic');
      assert.equal(original.frames.length, 0, 'a text-only connection never gets a binary frame');
      assert.ok(original.texts.every((m) => 'sensor' in m && 'value' in m), 'every unasked frame carries sensor and value');

      // Live chunks follow the sync, newer than it.
      const live = jpeg(30_000);
      camera.putBlob('cam', live, 'image/jpeg', 5);
      const liveFrame = await viewer.frame((f) => f.data.equals(live));
      assert.equal(liveFrame.header.sync, undefined);

      // Once the client side was connected, it is synced only what came after.
      await closeAndSettle(server, dev.id, 'client', viewer, original);
      const again = await BlobClient.open(server, dev, 'client', true);
      await sleep(300);
      assert.equal(again.frames.length, 0, 'nothing new since the side was last connected');
      const later = jpeg(40_000);
      await closeAndSettle(server, dev.id, 'client', again);
      camera.putBlob('cam', later, 'image/jpeg', 6);
      await camera.text((m) => m.id === 6);
      const back = await BlobClient.open(server, dev, 'client', true);
      const synced = await back.frame();
      assert.ok(synced.data.equals(later));
      assert.equal(synced.header.sync, true);
      await Promise.all([camera, back].map((c) => (c.ws.close(), c.closed)));
    });

    test('a device connecting gets the chunk an app sent while it was away, over WebSocket and as an MQTT persistent session', async () => {
      const dev = await makeDevice(server);
      const token = (await server.hub.tokens.create(dev.userId, 'sync')).token;
      const file = jpeg(90_000);
      const put = await fetch(`${server.url}/api/v1/devices/${dev.id}/blobs/firmware`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-firmware' }, body: new Uint8Array(file) });
      assert.equal(put.status, 201);
      const device = await BlobClient.open(server, dev, 'device', true);
      const f = await device.frame();
      assert.ok(f.data.equals(file));
      assert.deepEqual([f.header.type, f.header.write, f.header.sync], ['application/x-firmware', 'client', true]);
      await closeAndSettle(server, dev.id, 'device', device);

      // An MQTT device with a persistent session: its restored subscription takes the sync chunk at reconnection.
      const opts = { username: dev.id, password: dev.key, protocolVersion: 4 as const, clientId: `fw-${dev.id}`, clean: false };
      const first: MqttClient = await mqttConnect(mqttUrl, opts);
      const retained: Buffer[] = [];
      first.on('message', (_t, p) => retained.push(p));
      await first.subscribeAsync(`devices/${dev.id}/firmware`, { qos: 1 });
      await waitFor(() => retained.length > 0, 5000, 'the retained chunk');
      assert.ok(retained[0].equals(file), 'a new subscription gets the newest chunk as retained, byte-exact');
      await first.endAsync();
      await waitFor(async () => (await server.hub.store.blobsToSync(dev.id, 'device')).length === 0, 5000, 'the device side\'s cursor saved');
      const update = jpeg(70_000);
      await fetch(`${server.url}/api/v1/devices/${dev.id}/blobs/firmware`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: new Uint8Array(update) });
      const got: Buffer[] = [];
      // Listening from the start: the chunk may come in the same read as the CONNACK.
      const second = mqtt.connect(mqttUrl, { ...opts, reconnectPeriod: 0 });
      second.on('message', (_t, p) => got.push(p));
      await waitFor(() => got.some((p) => p.equals(update)), 5000, 'the chunk at reconnection, byte-exact');
      await sleep(200);
      // Only the newest, once: the retained copy the session had before is not queued in it (see publishToConnection).
      assert.equal(got.length, 1, 'once, and not the earlier copy again');
      await second.endAsync();
    });

    test('an MQTT subscription gets the newest chunk of each matching sensor as its retained message', async () => {
      const dev = await makeDevice(server);
      const camera = await BlobClient.open(server, dev, 'device');
      const frame = jpeg(80_000);
      const sound = Buffer.from([0xfe, 0x00, 0xc0]);
      camera.putBlob('cam', jpeg(10_000), 'image/jpeg', 1);
      camera.putBlob('cam', frame, 'image/jpeg', 2);
      camera.putBlob('mic', sound, 'audio/basic', 3);
      await Promise.all([1, 2, 3].map((id) => camera.text((m) => m.id === id)));
      const app: MqttClient = await mqttConnect(mqttUrl, { username: `${dev.id}:client`, password: dev.key, protocolVersion: 4 });
      const got: { topic: string; payload: Buffer; retain: boolean }[] = [];
      app.on('message', (topic, payload, packet) => got.push({ topic, payload, retain: packet.retain }));
      await app.subscribeAsync(`devices/${dev.id}/cam`, { qos: 1 });
      await waitFor(() => got.length > 0, 5000, 'the retained chunk');
      assert.equal(got[0].topic, `devices/${dev.id}/cam`);
      assert.ok(got[0].payload.equals(frame), 'the newest frame, byte-exact');
      assert.equal(got[0].retain, true);
      await app.subscribeAsync(`devices/${dev.id}/+`, { qos: 1 });
      await waitFor(() => got.some((m) => m.topic.endsWith('/mic')), 5000, 'the wildcard\'s retained chunks');
      assert.ok(got.find((m) => m.topic.endsWith('/mic'))!.payload.equals(sound));
      await sleep(200);
      assert.equal(got.filter((m) => m.topic.endsWith('/cam')).length, 1, 'a chunk already sent is not sent again by a second filter');
      // The device side's own chunks are not retained for the device side.
      const own: MqttClient = await mqttConnect(mqttUrl, { username: dev.id, password: dev.key, protocolVersion: 4 });
      const mine: Buffer[] = [];
      own.on('message', (_t, p) => mine.push(p));
      await own.subscribeAsync(`devices/${dev.id}/#`, { qos: 1 });
      await sleep(300);
      assert.equal(mine.length, 0);
      await Promise.all([app.endAsync(), own.endAsync()]);
      camera.ws.close();
      await camera.closed;
    });
  });
}
