/** The device page shows an image sensor's latest frame live, and offers other chunks as a download (headless Chromium). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { browserHub, logIn } from './browser.js';
import { BlobClient } from './blob-clients.js';
import { freePort, makeDevice } from './helpers.js';
import { mqttConnect } from './mqtt-clients.js';

/** Two 1×1 PNGs of different colours: decodable images, so the page can only show them if the bytes arrived whole. */
const RED = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
const BLUE = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPj/HwADBwIAMCbHYQAAAABJRU5ErkJggg==', 'base64');

const web = browserHub(async () => ({ mqttPort: await freePort() }));

test('an image sensor shows its latest frame live, sent over HTTP, WebSocket or MQTT; another type is a download', { skip: web.skip }, async () => {
  const server = web.server;
  const dev = await makeDevice(server, 'Camera');
  const page = await (await web.browser.newContext()).newPage();
  await logIn(page, server.url, dev.email);
  const put = (body: Buffer, type: string, sensor = 'cam') =>
    fetch(`${server.url}/api/v1/devices/${dev.id}/blobs/${sensor}`, { method: 'PUT', headers: { 'x-device-key': dev.key, 'content-type': type }, body: new Uint8Array(body) });
  assert.equal((await put(RED, 'image/png')).status, 201);
  await page.goto(`${server.url}/devices/${dev.id}`);
  // Shown on load from what is stored…
  await page.waitForFunction(() => (document.querySelector('img.blob-image') as HTMLImageElement | null)?.naturalWidth === 1, null, { timeout: 5000 });
  const first = await page.getAttribute('img.blob-image', 'src');
  await page.waitForSelector('.live, [data-live="live"]', { timeout: 5000 }).catch(() => {});
  // …and live, within a second of the device sending a new frame.
  const sent = Date.now();
  const res = await put(BLUE, 'image/png');
  const seq = (await res.json()).seq;
  await page.waitForFunction((s) => (document.querySelector('img.blob-image') as HTMLImageElement).src.endsWith(`/blobs/cam/${s}`), seq, { timeout: 5000 });
  assert.ok(Date.now() - sent < 1500, `frame shown after ${Date.now() - sent} ms`);
  assert.notEqual(await page.getAttribute('img.blob-image', 'src'), first);
  const pixel = await page.evaluate(() => {
    const img = document.querySelector('img.blob-image') as HTMLImageElement;
    const c = document.createElement('canvas');
    c.width = c.height = 1;
    const g = c.getContext('2d')!;
    g.drawImage(img, 0, 0);
    return [...g.getImageData(0, 0, 1, 1).data];
  });
  assert.ok(pixel[2] > pixel[0], `the blue frame is shown (pixel ${pixel})`);

  // The same within a second when the frame comes over a WebSocket binary frame, or an MQTT publish.
  const shownWithin = async (seq: number, since: number, door: string) => {
    await page.waitForFunction((s) => (document.querySelector('img.blob-image') as HTMLImageElement | null)?.src.endsWith(`/blobs/cam/${s}`) ?? false, seq, { timeout: 5000 });
    assert.ok(Date.now() - since < 1500, `frame over ${door} shown after ${Date.now() - since} ms`);
  };
  const camera = new BlobClient(`${server.wsUrl}/ws?device=${dev.id}&key=${dev.key}`);
  await camera.opened;
  const overWs = Date.now();
  camera.putBlob('cam', RED, 'image/png', 1);
  await shownWithin((await camera.text((m) => m.id === 1)).seq, overWs, 'WebSocket');
  camera.ws.close();
  const mqttCamera = await mqttConnect(`mqtt://127.0.0.1:${server.mqttPort}`, { username: dev.id, password: dev.key, protocolVersion: 4 });
  const overMqtt = Date.now();
  await mqttCamera.publishAsync(`devices/${dev.id}/cam`, BLUE, { qos: 1 });
  // MQTT 3.1.1 names no type: the PNG is known by its signature.
  const viaMqtt = (await server.hub.store.latestBlob(dev.id, 'cam'))!;
  assert.equal(viaMqtt.type, 'image/png');
  await shownWithin(viaMqtt.seq, overMqtt, 'MQTT');
  await mqttCamera.endAsync();

  await put(Buffer.from([0x25, 0x50, 0x44, 0x46, 0xff, 0x00]), 'application/pdf', 'report');
  const link = await page.waitForSelector('a.blob-download', { timeout: 5000 });
  assert.match((await link.textContent()) ?? '', /application\/pdf/);
  const download = await page.request.get(`${server.url}${await link.getAttribute('href')}`);
  assert.deepEqual([...(await download.body())], [0x25, 0x50, 0x44, 0x46, 0xff, 0x00]);
  assert.match(download.headers()['content-disposition'] ?? '', /attachment/);
});
