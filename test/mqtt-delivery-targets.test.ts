/**
 * Where an MQTT connection's readings go is kept per sensor (delivery.ts) until its filters change: every change of
 * subscriptions, after sensors were already delivered (or found to have no subscriber), must take effect at once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, makeDevice, sleep, startTestServer, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';
import { Inbox, mqttConnect } from './mqtt-clients.js';

let server: TestServer;
let mqttUrl: string;

before(async () => {
  server = await startTestServer({ mqttPort: await freePort(), rateLimit: 0 });
  mqttUrl = `mqtt://127.0.0.1:${server.mqttPort}`;
});
after(() => server.stop());

/** Waits a while and says what arrived meanwhile: nothing should have. */
async function nothingArrives(inbox: Inbox): Promise<void> {
  await sleep(300);
  assert.deepEqual(inbox.messages.slice(inbox.messages.length - inbox.unread), [], 'no message expected');
}

test('subscribing and unsubscribing after deliveries changes where the next readings go, topic filters and firmware filters alike', async () => {
  const d = await makeDevice(server);
  const phone = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  const device = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 4 });
  const inbox = new Inbox(device);
  // The put's ack comes after its commit, and the commit hands the reading to the MQTT connection in the same turn.
  const put = async (sensor: string, value: unknown) => assert.equal((await phone.request({ method: 'put', status: { sensor, value } })).ok, true);
  try {
    await device.subscribeAsync(`devices/${d.id}/temp`, { qos: 0 });
    await put('temp', 1);
    await put('hum', 1); // delivered to no topic: this connection holds no filter for it yet
    assert.deepEqual(await inbox.next(), { topic: `devices/${d.id}/temp`, payload: '1', retain: false, qos: 0 });
    await nothingArrives(inbox);

    await device.subscribeAsync(`devices/${d.id}/#`, { qos: 1 });
    // temp's latest went out live already: only hum's is retained now.
    assert.deepEqual(await inbox.next(), { topic: `devices/${d.id}/hum`, payload: '1', retain: true, qos: 1 });
    await put('hum', 2);
    assert.deepEqual(await inbox.next(), { topic: `devices/${d.id}/hum`, payload: '2', retain: false, qos: 1 }, 'hum now has a subscriber, at the wildcard\'s QoS');
    await put('temp', 2);
    // Once, though two filters match it. (At the exact filter's QoS: aedes lowers a QoS 1 publish to the QoS of a
    // subscription to its very topic, whatever a wildcard granted.)
    const temp = await inbox.next();
    assert.deepEqual([temp.topic, temp.payload, temp.retain], [`devices/${d.id}/temp`, '2', false]);

    await device.unsubscribeAsync(`devices/${d.id}/#`);
    await put('hum', 3);
    await put('temp', 3);
    assert.deepEqual(await inbox.next(), { topic: `devices/${d.id}/temp`, payload: '3', retain: false, qos: 0 }, 'back to the one filter left, at its QoS');
    await nothingArrives(inbox);

    await put('POWER', 'OFF');
    await device.subscribeAsync('cmnd/lamp_1/#', { qos: 0 });
    // The latest of what the app side wrote, retained, that did not go out live: hum (temp did) and POWER.
    const retained = [await inbox.next(), await inbox.next()].map((m) => [m.topic, m.payload, m.retain]).sort();
    assert.deepEqual(retained, [['cmnd/lamp_1/POWER', 'OFF', true], ['cmnd/lamp_1/hum', '3', true]]);
    await put('POWER', 'ON');
    assert.deepEqual(await inbox.next(), { topic: 'cmnd/lamp_1/POWER', payload: 'ON', retain: false, qos: 0 }, 'a firmware command topic, taken after the sensor had none');

    await device.unsubscribeAsync(['cmnd/lamp_1/#', `devices/${d.id}/temp`]);
    await put('POWER', 'OFF');
    await put('temp', 4);
    await nothingArrives(inbox);
  } finally {
    await device.endAsync();
    await phone.close();
  }
});

test('a device with more sensors than a connection keeps targets for still gets each reading on its topic', async () => {
  const d = await makeDevice(server);
  const phone = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  const device = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 4 });
  const inbox = new Inbox(device);
  try {
    await device.subscribeAsync(`devices/${d.id}/+`, { qos: 0 });
    const status = Array.from({ length: 300 }, (_, i) => ({ sensor: `s${i}`, value: i }));
    for (let at = 0; at < status.length; at += 100) {
      assert.equal((await phone.request({ method: 'put', status: status.slice(at, at + 100) })).ok, true);
    }
    for (let i = 0; i < 300; i++) assert.deepEqual(await inbox.next(), { topic: `devices/${d.id}/s${i}`, payload: String(i), retain: false, qos: 0 });
    // Sensors kept and sensors beyond the bound alike follow an unsubscription.
    await device.unsubscribeAsync(`devices/${d.id}/+`);
    await phone.request({ method: 'put', status: [{ sensor: 's0', value: -1 }, { sensor: 's299', value: -1 }] });
    await nothingArrives(inbox);
  } finally {
    await device.endAsync();
    await phone.close();
  }
});
