import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, makeDevice, startTestServer, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';
import { Inbox, mosquittoAvailable, mosquittoPub, MosquittoSub, mqttConnect } from './mqtt-clients.js';

/** The three doors onto one relay: whatever one writes, the others' other side reads, in both directions. */
const haveMosquitto = mosquittoAvailable();
let server: TestServer;
let api: string;
let mqttUrl: string;

before(async () => {
  server = await startTestServer({ mqttPort: await freePort() });
  api = `${server.url}/api/v1`;
  mqttUrl = `mqtt://127.0.0.1:${server.mqttPort}`;
});
after(() => server.stop());

async function ownerToken(userId: number): Promise<string> {
  return (await server.hub.tokens.create(userId, 'interop')).token;
}

async function httpJson(method: string, url: string, headers: Record<string, string> = {}, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method, headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

test('an unmodified MQTT device and a one-line curl update show up for the WebSocket app and the API; the phone\'s switch reaches the MQTT device', { skip: !haveMosquitto }, async () => {
  const d = await makeDevice(server);
  const token = await ownerToken(d.userId);
  const phone = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  const mqttHost = ['-h', '127.0.0.1', '-p', String(server.mqttPort), '-u', d.id, '-P', d.key, '-V', 'mqttv311'];

  // What a PubSubClient sketch does: MQTT 3.1.1, its own client id, QoS 0 publish, subscribe to devices/ID/+.
  const sketch = new MosquittoSub([...mqttHost, '-i', 'ESP8266Client', '-t', `devices/${d.id}/+`]);
  try {
    const pub = await mosquittoPub([...mqttHost, '-i', 'ESP8266Client-pub', '-t', `devices/${d.id}/temp`, '-m', '21.5']);
    assert.equal(pub.code, 0, pub.stderr);
    const fromMqtt = await phone.reading();
    assert.deepEqual([fromMqtt.sensor, fromMqtt.value, fromMqtt.write], ['temp', 21.5, 'device']);

    const curl = await httpJson('GET', `${api}/update?device=${d.id}&key=${d.key}&hum=40`);
    assert.equal(curl.status, 200);
    const fromHttp = await phone.reading();
    assert.deepEqual([fromHttp.sensor, fromHttp.value], ['hum', 40]);

    // The device page reads the same values through the account side.
    const page = await httpJson('GET', `${api}/devices/${d.id}/latest`, { authorization: `Bearer ${token}` });
    assert.deepEqual(page.body.values, { hum: 40, temp: 21.5 });

    // The phone flips the switch; the MQTT device receives it.
    const ack = await phone.request({ method: 'put', status: { sensor: 'switch', value: true } });
    assert.equal(ack.ok, true);
    assert.equal(await sketch.line(1), `0 devices/${d.id}/switch true`);
  } finally {
    await sketch.stop();
    await phone.close();
  }
});

test('every door to every other door, both sides', async () => {
  const d = await makeDevice(server);
  const token = await ownerToken(d.userId);
  const bearer = { authorization: `Bearer ${token}` };

  const wsDevice = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
  const wsClient = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  const mqttDevice = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 5 });
  const mqttClient = await mqttConnect(`ws://127.0.0.1:${server.port}/mqtt`, { username: `${d.id}:client`, password: d.key, protocolVersion: 4 });
  const devInbox = new Inbox(mqttDevice);
  const cliInbox = new Inbox(mqttClient);
  await mqttDevice.subscribeAsync(`devices/${d.id}/+`, { qos: 1 });
  await mqttClient.subscribeAsync(`devices/${d.id}/+`, { qos: 1 });

  try {
    // Device side writers → client side readers (WebSocket app, MQTT app, HTTP API).
    await mqttDevice.publishAsync(`devices/${d.id}/a`, '1', { qos: 1 });
    await wsDevice.request({ method: 'put', status: { sensor: 'b', value: 2 } });
    assert.equal((await httpJson('POST', `${api}/devices/${d.id}/readings`, { 'x-device-key': d.key }, { sensor: 'c', value: 3 })).status, 201);
    for (const [sensor, value] of [['a', 1], ['b', 2], ['c', 3]] as const) {
      const ws = await wsClient.reading();
      assert.deepEqual([ws.sensor, ws.value, ws.write], [sensor, value, 'device']);
      const m = await cliInbox.next();
      assert.deepEqual([m.topic, m.payload], [`devices/${d.id}/${sensor}`, String(value)]);
    }
    const seenByApp = await httpJson('GET', `${api}/devices/${d.id}/latest`, bearer);
    assert.deepEqual(seenByApp.body.values, { a: 1, b: 2, c: 3 });

    // Client side writers → device side readers (WebSocket device, MQTT device, HTTP poll).
    await mqttClient.publishAsync(`devices/${d.id}/x`, '"on"', { qos: 1 });
    await wsClient.request({ method: 'put', status: { sensor: 'y', value: false } });
    assert.equal((await httpJson('POST', `${api}/devices/${d.id}/readings`, bearer, { sensor: 'z', value: { level: 3 } })).status, 201);
    for (const [sensor, value, payload] of [['x', 'on', '"on"'], ['y', false, 'false'], ['z', { level: 3 }, '{"level":3}']] as const) {
      const ws = await wsDevice.reading();
      assert.deepEqual([ws.sensor, ws.value, ws.write], [sensor, value, 'client']);
      const m = await devInbox.next();
      assert.deepEqual([m.topic, m.payload], [`devices/${d.id}/${sensor}`, payload]);
    }
    const polled = await httpJson('GET', `${api}/devices/${d.id}/latest`, { 'x-device-key': d.key });
    assert.deepEqual(polled.body.values, { x: 'on', y: false, z: { level: 3 } });

    // Nobody hears their own side.
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(devInbox.unread, 0);
    assert.equal(cliInbox.unread, 0);
    assert.deepEqual(wsDevice.pending, []);
    assert.deepEqual(wsClient.pending, []);
  } finally {
    await Promise.all([mqttDevice.endAsync(), mqttClient.endAsync(), wsDevice.close(), wsClient.close()]);
  }
});

test('wrong keys and tokens are refused on every door, and a device cannot reach another device through any', async () => {
  const a = await makeDevice(server);
  const b = await makeDevice(server);
  const wrong = 'WRONGKEYWRONGKE';

  const ws = new TestClient(`${server.wsUrl}/ws?device=${a.id}&key=${wrong}`);
  assert.equal((await ws.closed).code, 4401);
  assert.equal((await httpJson('GET', `${api}/update?device=${a.id}&key=${wrong}&t=1`)).status, 401);
  assert.equal((await httpJson('GET', `${api}/devices`, { authorization: 'Bearer iotc_notarealtokennotarealtokennotar' })).status, 401);
  await assert.rejects(mqttConnect(mqttUrl, { username: a.id, password: wrong, protocolVersion: 4 }), (err: any) => err.code === 4);
  await assert.rejects(mqttConnect(`ws://127.0.0.1:${server.port}/mqtt`, { username: a.id, password: wrong, protocolVersion: 5 }), (err: any) => err.code === 0x86);

  // Device a's valid key, aimed at device b.
  const wsCross = new TestClient(`${server.wsUrl}/ws?device=${b.id}&key=${a.key}`);
  assert.equal((await wsCross.closed).code, 4401);
  assert.equal((await httpJson('POST', `${api}/devices/${b.id}/readings`, { 'x-device-key': a.key }, { sensor: 't', value: 1 })).status, 401);
  assert.equal((await httpJson('GET', `${api}/devices/${b.id}/latest?device=${a.id}&key=${a.key}`)).status, 403);
  const tokenA = await ownerToken(a.userId);
  assert.equal((await httpJson('POST', `${api}/devices/${b.id}/readings`, { authorization: `Bearer ${tokenA}` }, { sensor: 't', value: 1 })).status, 404);
  const mq = await mqttConnect(mqttUrl, { username: a.id, password: a.key, protocolVersion: 5 });
  await assert.rejects(mq.publishAsync(`devices/${b.id}/t`, '1', { qos: 1 }), (err: any) => err.code === 0x87);
  await assert.rejects(mq.subscribeAsync(`devices/${b.id}/#`, { qos: 1 }), (err: any) => err.packet?.granted?.[0] === 0x87);
  await mq.endAsync();
  assert.deepEqual(await server.hub.relay.sensors(b.id), [], 'device b is untouched');
});
