/** Binary chunks on the MQTT door: MQTT 5 content types both ways, and persistent sessions that reconnect. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { BlobClient, jpeg } from './blob-clients.js';
import { freePort, makeDevice, sleep, startTestServer, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';
import { mqttConnect } from './mqtt-clients.js';
import { chunkTypeOf } from '../src/doors/mqtt/content-type.js';

interface Got { topic: string; payload: Buffer; retain: boolean; contentType?: string; payloadFormat?: unknown }

/** Bytes with a JPEG's whole signature (FF D8 FF), which sniffing types image/jpeg. */
function realJpeg(size: number): Buffer {
  const b = jpeg(size);
  b[2] = 0xff;
  return b;
}

function collect(client: MqttClient): Got[] {
  const got: Got[] = [];
  client.on('message', (topic, payload, packet) => got.push({ topic, payload, retain: packet.retain, contentType: packet.properties?.contentType, payloadFormat: packet.properties?.payloadFormatIndicator }));
  return got;
}

test('which MQTT payloads are chunks: text types, loose labels and empty payloads keep UTF-8 a reading', () => {
  const utf8 = Buffer.from('{"a":1}');
  for (const type of [undefined, '', 'text/csv', 'TEXT/plain; charset=utf-8', 'application/json', 'application/ld+json', 'json']) assert.equal(chunkTypeOf(utf8, type), null, String(type));
  assert.equal(chunkTypeOf(Buffer.alloc(0), 'image/png'), null);
  assert.equal(chunkTypeOf(utf8, 'application/xml'), 'application/xml');
  assert.equal(chunkTypeOf(Buffer.from([0xff, 0xfe]), 'text/plain'), 'text/plain', 'bytes that are not UTF-8 are a chunk whatever the label');
  assert.throws(() => chunkTypeOf(Buffer.from([0xff, 0xfe]), 'json'), (err: any) => err.code === 'E_VALIDATION');
});

describe('MQTT binary chunks', () => {
  let server: TestServer;
  let mqttUrl: string;
  before(async () => {
    server = await startTestServer({ mqttPort: await freePort(), maxBlobBytes: 200_000, blobBudgetBytes: 2_000_000, maxFrameBytes: 65_536 });
    mqttUrl = `mqtt://127.0.0.1:${server.mqttPort}`;
  });
  after(() => server.stop());

  const latestBlob = (deviceId: string, sensor: string) => server.hub.store.latestBlob(deviceId, sensor, 'device');

  test('MQTT 5: the Content Type of a publish is the chunk\'s type, instead of sniffing; a non-text type makes UTF-8 bytes a chunk', async () => {
    const dev = await makeDevice(server);
    const device = await mqttConnect(mqttUrl, { username: dev.id, password: dev.key, protocolVersion: 5 });
    const looksLikeJpeg = realJpeg(5_000);
    await device.publishAsync(`devices/${dev.id}/cam`, looksLikeJpeg, { qos: 1, properties: { contentType: 'application/x-raw-sensor' } });
    const cam = await latestBlob(dev.id, 'cam');
    assert.equal(cam?.type, 'application/x-raw-sensor', 'the type the client named, not the sniffed image/jpeg');
    assert.ok(cam!.data.equals(looksLikeJpeg));

    // UTF-8 bytes labelled as non-text are a chunk (a file, an SVG), not a reading.
    await device.publishAsync(`devices/${dev.id}/file`, '{"a":1}', { qos: 1, properties: { contentType: 'application/octet-stream' } });
    await device.publishAsync(`devices/${dev.id}/logo`, '<svg xmlns="http://www.w3.org/2000/svg"/>', { qos: 1, properties: { contentType: 'image/svg+xml' } });
    const file = await latestBlob(dev.id, 'file');
    assert.deepEqual([file?.type, file?.data.toString()], ['application/octet-stream', '{"a":1}']);
    assert.equal((await latestBlob(dev.id, 'logo'))?.type, 'image/svg+xml');
    assert.equal(await server.hub.relay.gets(dev.id, 'file', 'device'), null, 'no text reading for it');

    // Text types (and no type) keep UTF-8 payloads readings; with no type, binary bytes are still sniffed.
    await device.publishAsync(`devices/${dev.id}/temp`, '21.5', { qos: 1, properties: { contentType: 'application/json' } });
    await device.publishAsync(`devices/${dev.id}/label`, 'hall', { qos: 1, properties: { contentType: 'text/plain; charset=utf-8' } });
    assert.equal((await server.hub.relay.gets(dev.id, 'temp', 'device'))?.value, 21.5);
    assert.equal((await server.hub.relay.gets(dev.id, 'label', 'device'))?.value, 'hall');
    assert.equal(await latestBlob(dev.id, 'temp'), null);
    await device.publishAsync(`devices/${dev.id}/snap`, realJpeg(1_000), { qos: 1 });
    assert.equal((await latestBlob(dev.id, 'snap'))?.type, 'image/jpeg');
    await device.endAsync();
  });

  test('MQTT 5: a chunk with a content type that is not a MIME type is refused (PUBACK 0x99 with the reason), as on WebSocket and HTTP', async () => {
    const dev = await makeDevice(server);
    const device = await mqttConnect(mqttUrl, { username: dev.id, password: dev.key, protocolVersion: 5 });
    const acks: any[] = [];
    device.on('packetreceive', (p) => p.cmd === 'puback' && acks.push(p));
    await assert.rejects(device.publishAsync(`devices/${dev.id}/cam`, jpeg(1_000), { qos: 1, properties: { contentType: 'not a type' } }), (err: any) => err.code === 0x99);
    assert.match(acks.at(-1)?.properties?.reasonString ?? '', /content type like "image\/jpeg"/);
    await assert.rejects(device.publishAsync(`devices/${dev.id}/cam`, jpeg(1_000), { qos: 1, properties: { contentType: `image/${'x'.repeat(120)}` } }), (err: any) => err.code === 0x99);
    assert.equal(await latestBlob(dev.id, 'cam'), null, 'nothing stored');
    // The connection stays; a UTF-8 payload with a loose label is still read as a reading, as before.
    await device.publishAsync(`devices/${dev.id}/temp`, '20', { qos: 1, properties: { contentType: 'json' } });
    assert.equal((await server.hub.relay.gets(dev.id, 'temp', 'device'))?.value, 20);
    await device.endAsync();
  });

  test('MQTT 5 subscribers get the chunk\'s type as Content Type (payload format 0), live and retained; readings and 3.1.1 carry none', async () => {
    const dev = await makeDevice(server);
    const camera = await BlobClient.open(server, dev, 'device');
    const first = jpeg(10_000);
    camera.putBlob('cam', first, 'image/x-first', 1);
    await camera.text((m) => m.id === 1);
    const app = await mqttConnect(mqttUrl, { username: `${dev.id}:client`, password: dev.key, protocolVersion: 5 });
    const old = await mqttConnect(mqttUrl, { username: `${dev.id}:client`, password: dev.key, protocolVersion: 4 });
    const got = collect(app);
    const oldGot = collect(old);
    await app.subscribeAsync(`devices/${dev.id}/+`, { qos: 1 });
    await old.subscribeAsync(`devices/${dev.id}/+`, { qos: 1 });
    await waitFor(() => got.length > 0 && oldGot.length > 0, 5000, 'the retained chunk');
    assert.deepEqual([got[0].retain, got[0].contentType, got[0].payloadFormat], [true, 'image/x-first', false]);
    assert.ok(got[0].payload.equals(first));

    const live = jpeg(20_000);
    camera.putBlob('cam', live, 'image/jpeg', 2);
    camera.ws.send(JSON.stringify({ method: 'put', id: 3, status: { sensor: 'temp', value: 19 } }));
    await waitFor(() => got.some((m) => m.topic.endsWith('/temp')) && got.some((m) => m.payload.equals(live)), 5000, 'the live chunk and reading');
    const chunk = got.find((m) => m.payload.equals(live))!;
    assert.deepEqual([chunk.retain, chunk.contentType, chunk.payloadFormat], [false, 'image/jpeg', false]);
    assert.equal(got.find((m) => m.topic.endsWith('/temp'))!.contentType, undefined, 'a reading has no content type');

    // MQTT 5 to MQTT 5: the type a device named reaches the app as it was sent.
    const mqttDevice = await mqttConnect(mqttUrl, { username: dev.id, password: dev.key, protocolVersion: 5 });
    await mqttDevice.publishAsync(`devices/${dev.id}/doc`, 'plain words', { qos: 1, properties: { contentType: 'application/x-note' } });
    await waitFor(() => got.some((m) => m.topic.endsWith('/doc')), 5000, 'the MQTT 5 chunk');
    assert.equal(got.find((m) => m.topic.endsWith('/doc'))!.contentType, 'application/x-note');
    await waitFor(() => oldGot.some((m) => m.topic.endsWith('/doc')), 5000, 'the chunk at the 3.1.1 app');
    assert.equal(oldGot.find((m) => m.topic.endsWith('/doc'))!.payload.toString(), 'plain words', '3.1.1 gets the bytes, nothing else');
    await Promise.all([app.endAsync(), old.endAsync(), mqttDevice.endAsync()]);
    camera.ws.close();
    await camera.closed;
  });

  for (const protocolVersion of [4, 5] as const) {
    const persistent = (clientId: string): IClientOptions => protocolVersion === 5
      ? { protocolVersion, clientId, clean: false, properties: { sessionExpiryInterval: 300 } }
      : { protocolVersion, clientId, clean: false };

    test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'} persistent session: at reconnection the newest chunk comes once, never the one it already had`, async () => {
      const dev = await makeDevice(server);
      const token = (await server.hub.tokens.create(dev.userId, 'sessions')).token;
      const putChunk = async (data: Buffer) => {
        const res = await fetch(`${server.url}/api/v1/devices/${dev.id}/blobs/firmware`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-firmware' }, body: new Uint8Array(data) });
        assert.equal(res.status, 201);
      };
      const cursorSaved = () => waitFor(async () => (await server.hub.store.blobsToSync(dev.id, 'device')).length === 0, 5000, 'the device side\'s cursor saved');
      const opts = { username: dev.id, password: dev.key, ...persistent(`fw-${dev.id}`) };
      const a = jpeg(30_000);
      await putChunk(a);
      const first = await mqttConnect(mqttUrl, opts);
      const got1 = collect(first);
      await first.subscribeAsync(`devices/${dev.id}/firmware`, { qos: 1 });
      await waitFor(() => got1.length > 0, 5000, 'chunk A as the retained message');
      assert.ok(got1[0].payload.equals(a));
      await sleep(100); // its PUBACK reaches the hub
      await first.endAsync();
      await cursorSaved();

      for (const size of [40_000, 50_000]) {
        const b = jpeg(size);
        await putChunk(b);
        // Listening from the start: the chunk may come in the same read as the CONNACK.
        const again = mqtt.connect(mqttUrl, { ...opts, reconnectPeriod: 0 });
        const got = collect(again);
        await waitFor(() => got.some((m) => m.payload.equals(b)), 5000, 'the newest chunk at reconnection');
        await sleep(300);
        assert.equal(got.filter((m) => m.payload.equals(a)).length, 0, 'chunk A is not sent again');
        assert.equal(got.length, 1, 'only the newest, once');
        await sleep(100);
        await again.endAsync();
        await cursorSaved();
      }
    });
  }

  test('MQTT 5 persistent session: a chunk left without PUBACK comes again at reconnection with its Content Type', async () => {
    const dev = await makeDevice(server);
    const app = await BlobClient.open(server, dev, 'client');
    const opts: IClientOptions = { username: dev.id, password: dev.key, protocolVersion: 5, clientId: `unacked-${dev.id}`, clean: false, properties: { sessionExpiryInterval: 300 } };
    const first = await mqttConnect(mqttUrl, opts);
    // The message is reported, but never handed back: the client sends no PUBACK, so the broker keeps it queued.
    first.handleMessage = () => {};
    const got1 = collect(first);
    await first.subscribeAsync(`devices/${dev.id}/scan`, { qos: 1 });
    const chunk = jpeg(8_000);
    app.putBlob('scan', chunk, 'image/x-scan', 1);
    await waitFor(() => got1.length > 0, 5000, 'the live chunk');
    assert.deepEqual([got1[0].retain, got1[0].contentType], [false, 'image/x-scan']);
    await first.endAsync(true);

    const again = mqtt.connect(mqttUrl, { ...opts, reconnectPeriod: 0 });
    const got = collect(again);
    await waitFor(() => got.length > 0, 5000, 'the chunk sent again');
    assert.ok(got[0].payload.equals(chunk));
    assert.deepEqual([got[0].contentType, got[0].payloadFormat], ['image/x-scan', false], 'the re-sent PUBLISH carries the chunk\'s type');
    await again.endAsync();
    app.ws.close();
    await app.closed;
  });

  test('MQTT persistent session: a retained reading is not sent again at reconnection either', async () => {
    const dev = await makeDevice(server);
    await server.hub.relay.put(dev.id, 'client', [{ sensor: 'setpoint', value: 20 }]);
    const opts = { username: dev.id, password: dev.key, protocolVersion: 4 as const, clientId: `sp-${dev.id}`, clean: false };
    const first = await mqttConnect(mqttUrl, opts);
    const got1 = collect(first);
    await first.subscribeAsync(`devices/${dev.id}/setpoint`, { qos: 1 });
    await waitFor(() => got1.length > 0, 5000, 'the retained reading');
    await sleep(100);
    await first.endAsync();
    await sleep(200);
    await server.hub.relay.put(dev.id, 'client', [{ sensor: 'setpoint', value: 21 }]);
    const again = mqtt.connect(mqttUrl, { ...opts, reconnectPeriod: 0 });
    const got = collect(again);
    await waitFor(() => got.some((m) => m.payload.toString() === '21'), 5000, 'the newest reading at reconnection');
    await sleep(300);
    assert.deepEqual(got.map((m) => m.payload.toString()), ['21']);
    await again.endAsync();
  });
});
