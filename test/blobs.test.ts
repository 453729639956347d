/** Binary chunks end to end: byte-exact across WebSocket, HTTP and MQTT in both directions, limits, budget, latest-wins. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import type { MqttClient } from 'mqtt';
import { encodeBlobFrame, sniffBlobType } from '../src/core/blobs.js';
import { BlobClient, jpeg } from './blob-clients.js';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { freePort, makeDevice, ROOT, runProcess, sleep, startTestServer, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';
import { closedWith, mqttConnect } from './mqtt-clients.js';
import { connect } from '../src/client/node.js';
import type { BlobChunk } from '../src/client/node.js';

test('an MQTT chunk without a type is typed by its image signature, or application/octet-stream', () => {
  assert.equal(sniffBlobType(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0])), 'image/jpeg');
  assert.equal(sniffBlobType(Buffer.from('89504e470d0a1a0a0000', 'hex')), 'image/png');
  assert.equal(sniffBlobType(Buffer.from('GIF89a\x01')), 'image/gif');
  assert.equal(sniffBlobType(Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8 ', 'latin1')), 'image/webp');
  assert.equal(sniffBlobType(Buffer.from('RIFF\x10\x00\x00\x00WAVEfmt ', 'latin1')), 'application/octet-stream');
  assert.equal(sniffBlobType(Buffer.from([0xff, 0xd8])), 'application/octet-stream');
});

describe('binary chunks', () => {
  let server: TestServer;
  let mqttUrl: string;
  before(async () => {
    const mqttPort = await freePort();
    server = await startTestServer({ mqttPort, maxBlobBytes: 200_000, blobBudgetBytes: 500_000, maxFrameBytes: 65_536 });
    mqttUrl = `mqtt://127.0.0.1:${server.mqttPort}`;
  });
  after(() => server.stop());

  const api = (path: string, init: RequestInit = {}) => fetch(`${server.url}/api/v1${path}`, init);

  test('a WebSocket binary frame reaches binary, text, HTTP and MQTT receivers byte-exact; text readings keep working', async () => {
    const dev = await makeDevice(server);
    const viewer = await BlobClient.open(server, dev, 'client', true);
    const original = await BlobClient.open(server, dev, 'client');
    const sub: MqttClient = await mqttConnect(mqttUrl, { username: `${dev.id}:client`, password: dev.key, protocolVersion: 4 });
    const got: Buffer[] = [];
    sub.on('message', (_t, p) => got.push(p));
    await sub.subscribeAsync(`devices/${dev.id}/cam`, { qos: 1 });
    const camera = await BlobClient.open(server, dev, 'device');
    const bytes = jpeg(150_000);
    camera.putBlob('cam', bytes, 'image/jpeg', 7);
    const ack = await camera.text((m) => m.id === 7);
    assert.equal(ack.ok, true);
    assert.equal(ack.size, bytes.length);
    const f = await viewer.frame();
    assert.ok(f.data.equals(bytes), 'binary viewer got the bytes exactly');
    assert.deepEqual({ sensor: f.header.sensor, type: f.header.type, write: f.header.write, seq: f.header.seq }, { sensor: 'cam', type: 'image/jpeg', write: 'device', seq: ack.seq });
    const notice = await original.text((m) => m.sensor === 'cam');
    assert.deepEqual(notice.value, { blob: true, type: 'image/jpeg', size: bytes.length, seq: ack.seq, url: `/api/v1/devices/${dev.id}/blobs/cam` });
    assert.equal(original.frames.length, 0, 'a text-only connection never gets a binary frame');
    await waitFor(() => got.length > 0, 5000, 'the MQTT payload');
    assert.ok(got[0].equals(bytes), 'MQTT subscriber got the bytes exactly');
    const res = await api(`/devices/${dev.id}/blobs/cam`, { headers: { 'x-device-key': dev.key } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), 'HTTP GET gives the bytes exactly');
    const etag = res.headers.get('etag')!;
    const again = await api(`/devices/${dev.id}/blobs/cam`, { headers: { 'x-device-key': dev.key, 'if-none-match': etag } });
    assert.equal(again.status, 304);
    // JSON on the same connection, and a fire-and-forget chunk (no id: no ack).
    camera.ws.send(JSON.stringify({ method: 'put', id: 8, status: { sensor: 'temp', value: 21.5 } }));
    assert.equal((await camera.text((m) => m.id === 8)).ok, true);
    assert.equal((await original.text((m) => m.sensor === 'temp')).value, 21.5);
    camera.putBlob('cam', Buffer.from([0, 1, 2, 255]));
    assert.ok((await viewer.frame((x) => x.data.length === 4)).data.equals(Buffer.from([0, 1, 2, 255])));
    assert.equal(viewer.frames[1].header.type, 'application/octet-stream');
    assert.equal(camera.texts.filter((m) => m.ok === true).length, 2, 'only the puts with ids were acked');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.ok(Number(/^iotc_blob_bytes_in_total (\d+)/m.exec(metrics)?.[1]) >= bytes.length + 4, 'chunk bytes are counted in /metrics');
    await sub.endAsync();
    await Promise.all([viewer, original, camera].map((c) => (c.ws.close(), c.closed)));
  });

  test('HTTP PUT (token, client side) and MQTT publish reach the other side byte-exact; listing and GET by seq', async () => {
    const dev = await makeDevice(server);
    const token = (await server.hub.tokens.create(dev.userId, 'blobs')).token;
    const device = await BlobClient.open(server, dev, 'device', true);
    const mqttDevice: MqttClient = await mqttConnect(mqttUrl, { username: dev.id, password: dev.key, protocolVersion: 4 });
    const got: Buffer[] = [];
    mqttDevice.on('message', (_t, p) => got.push(p));
    await mqttDevice.subscribeAsync(`devices/${dev.id}/firmware`, { qos: 1 });
    const file = jpeg(90_000);
    const put = await api(`/devices/${dev.id}/blobs/firmware`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-firmware' }, body: new Uint8Array(file) });
    assert.equal(put.status, 201);
    const stored = await put.json();
    assert.equal(stored.size, file.length);
    const f = await device.frame();
    assert.ok(f.data.equals(file));
    assert.equal(f.header.type, 'application/x-firmware');
    assert.equal(f.header.write, 'client');
    await waitFor(() => got.length > 0, 5000, 'MQTT payload');
    assert.ok(got[0].equals(file));

    // MQTT publish of bytes that are not UTF-8: a chunk; of JSON: a reading, as before.
    const viewer = await BlobClient.open(server, dev, 'client', true);
    const mqttApp: MqttClient = await mqttConnect(mqttUrl, { username: `${dev.id}:client`, password: dev.key, protocolVersion: 5 });
    const appGot: Buffer[] = [];
    mqttApp.on('message', (_t, p) => appGot.push(p));
    await mqttApp.subscribeAsync(`devices/${dev.id}/cam`, { qos: 1, rh: 2 });
    const frame = jpeg(30_000);
    frame[2] = 0x00; // not a JPEG's signature (FF D8 FF): stored as application/octet-stream
    await mqttDevice.publishAsync(`devices/${dev.id}/cam`, frame, { qos: 1 });
    assert.ok((await viewer.frame()).data.equals(frame));
    await waitFor(() => appGot.length > 0, 5000, 'the chunk at the MQTT app');
    assert.ok(appGot[0].equals(frame), 'MQTT to MQTT, byte-exact');
    // And the other way: an MQTT app's chunk reaches the device on MQTT and WebSocket.
    const command = jpeg(20_000);
    await mqttDevice.subscribeAsync(`devices/${dev.id}/command`, { qos: 1 });
    await mqttApp.publishAsync(`devices/${dev.id}/command`, command, { qos: 1 });
    await waitFor(() => got.some((p) => p.equals(command)), 5000, 'the app\'s chunk at the MQTT device');
    assert.ok((await device.frame((x) => x.data.equals(command))).header.write === 'client');
    await mqttApp.endAsync();
    await mqttDevice.publishAsync(`devices/${dev.id}/temp`, '22.5', { qos: 1 });
    assert.equal((await viewer.text((m) => m.sensor === 'temp')).value, 22.5);
    const latest = await api(`/devices/${dev.id}/blobs/cam`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(latest.headers.get('content-type'), 'application/octet-stream');
    assert.ok(Buffer.from(await latest.arrayBuffer()).equals(frame));

    const list = await (await api(`/devices/${dev.id}/blobs/firmware/history`, { headers: { authorization: `Bearer ${token}` } })).json();
    assert.equal(list.blobs.length, 1);
    assert.equal(list.blobs[0].size, file.length);
    const one = await api(list.blobs[0].url.replace('/api/v1', ''), { headers: { authorization: `Bearer ${token}` } });
    assert.ok(Buffer.from(await one.arrayBuffer()).equals(file));
    // A device's bytes never run as a page of the hub: a chunk claiming text/html is a sandboxed download.
    await api(`/devices/${dev.id}/blobs/page`, { method: 'PUT', headers: { 'x-device-key': dev.key, 'content-type': 'text/html' }, body: '<script>alert(1)</script>' });
    const page = await api(`/devices/${dev.id}/blobs/page?key=${dev.key}`);
    assert.match(page.headers.get('content-disposition') ?? '', /^attachment/);
    assert.match(page.headers.get('content-security-policy') ?? '', /sandbox/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(latest.headers.get('content-disposition')?.startsWith('attachment'), true, 'octet-stream is a download too');
    const all = await (await api(`/devices/${dev.id}/blobs`, { headers: { 'x-device-key': dev.key } })).json();
    assert.deepEqual(all.blobs.map((b: any) => b.sensor), ['cam', 'command', 'firmware', 'page']);
    await mqttDevice.endAsync();
    await Promise.all([device, viewer].map((c) => (c.ws.close(), c.closed)));
  });

  test('an oversize chunk is refused with a clear error on every door and nothing is stored; text keeps --max-frame', async () => {
    const dev = await makeDevice(server);
    const big = jpeg(200_001);
    const res = await api(`/devices/${dev.id}/blobs/cam`, { method: 'PUT', headers: { 'x-device-key': dev.key, 'content-type': 'image/jpeg' }, body: new Uint8Array(big) });
    assert.equal(res.status, 413);
    const body = await res.json();
    assert.equal(body.error, 'E_TOO_LARGE');
    assert.match(body.message, /--max-blob/);
    const camera = await BlobClient.open(server, dev, 'device');
    camera.putBlob("cam", big, "image/jpeg", 1);
    const refused = await camera.text((m) => m.id === 1);
    assert.equal(refused.code, 'E_TOO_LARGE');
    assert.match(refused.error, /--max-blob/);
    // MQTT 3.1.1 has no negative PUBACK: the connection is closed.
    const mqttDevice: MqttClient = await mqttConnect(mqttUrl, { username: dev.id, password: dev.key, protocolVersion: 4 });
    const gone = closedWith(mqttDevice);
    mqttDevice.publish(`devices/${dev.id}/cam`, big, { qos: 1 });
    await gone;
    mqttDevice.end(true);
    assert.equal(await server.hub.store.blobBytes(dev.id), 0, 'nothing stored');
    // A text frame above --max-frame is still refused, though binary frames may be bigger.
    camera.ws.send(JSON.stringify({ method: 'put', id: 2, status: { sensor: 'x', value: 'a'.repeat(70_000) } }));
    const closed = await camera.closed;
    assert.equal(closed.code, 1009);
    assert.match(closed.reason, /--max-frame/);
  });

  test('stored chunks stay within the per-device budget, oldest dropped first', async () => {
    const dev = await makeDevice(server);
    const camera = await BlobClient.open(server, dev, 'device');
    for (let i = 0; i < 8; i++) {
      camera.putBlob('cam', jpeg(100_000), 'image/jpeg', i);
      await camera.text((m) => m.id === i);
    }
    assert.ok((await server.hub.store.blobBytes(dev.id)) <= 500_000);
    const list = await (await api(`/devices/${dev.id}/blobs/cam/history`, { headers: { 'x-device-key': dev.key } })).json();
    assert.equal(list.blobs.length, 5);
    const acks = camera.texts.filter((m) => m.ok).map((m) => m.seq);
    assert.deepEqual(list.blobs.map((b: any) => b.seq), acks.slice(-5).reverse(), 'the newest five are kept');
    camera.ws.close();
    await camera.closed;
  });

  test('a slow viewer gets the newest frame, skipping stale ones, and the server does not queue them all', async () => {
    const dev = await makeDevice(server);
    const slow = await BlobClient.open(server, dev, 'client', true);
    const camera = await BlobClient.open(server, dev, 'device');
    (slow.ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
    let last = -1;
    for (let i = 0; i < 200; i++) {
      const frame = jpeg(100_000);
      frame.writeUInt32BE(i, 4);
      camera.putBlob('cam', frame, 'image/jpeg', i);
      if (i % 20 === 19) await camera.text((m) => m.id === i);
      last = i;
    }
    await camera.text((m) => m.id === last);
    (slow.ws as unknown as { _socket: import('node:net').Socket })._socket.resume();
    await waitFor(() => slow.frames.some((f) => f.data.readUInt32BE(4) === last), 10_000, 'the newest frame');
    // 200 frames of 100 KB would be 20 MB queued for the viewer; latest-wins holds what the kernel buffers plus a frame or two.
    const received = slow.frames.reduce((n, f) => n + f.data.length, 0);
    assert.ok(slow.frames.length < 100 && received < 10_000_000, `the slow viewer skipped stale frames (got ${slow.frames.length} of 200, ${received} bytes)`);
    assert.equal(slow.ws.readyState, WebSocket.OPEN, 'the slow viewer was not disconnected');
    await sleep(100);
    await Promise.all([slow, camera].map((c) => (c.ws.close(), c.closed)));
  });

  test('the JavaScript client: putBlob resolves once stored; the other side gets a blob event with the same bytes', async () => {
    const dev = await makeDevice(server);
    const camera = connect(`${server.wsUrl}/ws?device=${dev.id}&key=${dev.key}`, { reconnect: false });
    const app = connect(`${server.wsUrl}/ws?device=${dev.id}&key=${dev.key}`, { side: 'client', binary: true, reconnect: false });
    const plain = connect(`${server.wsUrl}/ws?device=${dev.id}&key=${dev.key}`, { side: 'client', reconnect: false });
    try {
      await Promise.all([camera.ready(), app.ready(), plain.ready()]);
      const got = new Promise<BlobChunk>((resolve) => app.once('blob', resolve));
      const notice = new Promise<any>((resolve) => plain.once('reading', resolve));
      const bytes = jpeg(60_000);
      const stored = await camera.putBlob('cam', bytes, 'image/jpeg');
      assert.equal(stored.size, bytes.length);
      const blob = await got;
      assert.ok(Buffer.from(blob.data).equals(bytes));
      assert.deepEqual([blob.sensor, blob.type, blob.seq, blob.write], ['cam', 'image/jpeg', stored.seq, 'device']);
      assert.equal((await notice).value.blob, true, 'a client without the binary option gets the notice as a reading');
      await assert.rejects(camera.putBlob('cam', jpeg(200_001)), (err: any) => err.code === 'E_TOO_LARGE');
    } finally {
      camera.close();
      app.close();
      plain.close();
    }
  });

  const havePython = (() => {
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import websocket'], { stdio: 'ignore' });
      return true;
    } catch {
      if (process.env.IOTC_REQUIRE_SERVICES === '1') throw new Error('/usr/bin/python3 with python3-websocket is required (IOTC_REQUIRE_SERVICES=1)');
      console.log('# notice: /usr/bin/python3 with python3-websocket not found; skipping the Python binary chunk test');
      return false;
    }
  })();

  test('the Python client: put_blob is acked once stored and reaches a WebSocket viewer byte-exact; on_blob receives', { skip: !havePython }, async () => {
    const dev = await makeDevice(server);
    const viewer = await BlobClient.open(server, dev, 'client', true);
    const source = `
import sys, json, threading, iotcommunicate
dev, key, root = sys.argv[1:4]
got = threading.Event()
cam = iotcommunicate.WebSocket(dev, key, side="device", root=root, binary=True)
cam.on_blob = lambda blob, ws: (print(json.dumps({"blob": blob["sensor"], "hex": blob["data"].hex(), "type": blob["type"]})), got.set())
cam.connect(threaded=True)
cam.wait_connected(10)
ack = cam.put_blob("cam", bytes([0xff, 0xd8, 0x00, 0x80, 0xfe]), "image/jpeg", timeout=10)
print(json.dumps({"ack": ack["seq"], "size": ack["size"]}))
got.wait(10)
cam.close()
`;
    const file = path.join(server.dataDir, 'blob.py');
    (await import('node:fs')).writeFileSync(file, source);
    const run = runProcess('/usr/bin/python3', [file, dev.id, dev.key, server.url], { timeoutMs: 30_000, env: { ...process.env, PYTHONPATH: path.join(ROOT, 'clients/python') } });
    const frame = await viewer.frame();
    assert.deepEqual([...frame.data], [0xff, 0xd8, 0x00, 0x80, 0xfe]);
    assert.equal(frame.header.type, 'image/jpeg');
    viewer.ws.send(encodeBlobFrame({ sensor: 'cmd', type: 'application/octet-stream' }, Buffer.from([1, 2, 250])));
    const result = await run;
    const lines = result.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    assert.deepEqual(lines.find((l) => 'ack' in l), { ack: frame.header.seq, size: 5 }, result.stderr);
    assert.deepEqual(lines.find((l) => 'blob' in l), { blob: 'cmd', hex: '0102fa', type: 'application/octet-stream' }, result.stderr);
    viewer.ws.close();
    await viewer.closed;
  });
});
