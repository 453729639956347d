/**
 * The Home Assistant bridge against the machine's real Mosquitto: discovery payloads checked against Home
 * Assistant's MQTT discovery schema, states, availability, re-announcing, and a command reaching a WebSocket device.
 * Topics carry a prefix unique to the run, so runs never see each other's retained messages.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { createLogger } from '../src/log.js';
import { startServer } from '../src/server.js';
import type { RunningServer } from '../src/server.js';
import { makeDevice, runCli, serviceAvailable, tempDir, TestClient, testConfig, waitFor } from './helpers.js';

const haveMosquitto = await serviceAvailable('Mosquitto', 1883);
const run = crypto.randomBytes(4).toString('hex');
const PREFIX = `ha-test-${run}`;
const BASE = `iotc-test-${run}`;

/** Required keys per component, from Home Assistant's MQTT integration docs (sensor, binary_sensor, switch, number). */
const REQUIRED: Record<string, string[]> = {
  sensor: ['state_topic'],
  binary_sensor: ['state_topic'],
  switch: ['command_topic'],
  number: ['command_topic'],
};

let watcher: MqttClient;
const seen = new Map<string, string>();
const tmp = tempDir('iotc-ha-');
let server: RunningServer;
let device: { id: string; key: string };
let notShown: string;

before(async () => {
  if (!haveMosquitto) return;
  watcher = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { reconnectPeriod: 0 });
  watcher.on('message', (topic, payload) => seen.set(topic, payload.toString()));
  await watcher.subscribeAsync([`${PREFIX}/#`, `${BASE}/#`], { qos: 1 });
  // The device is made before the hub starts with the bridge, as an operator would list it.
  const first = await startServer(testConfig({}, tmp.dir), createLogger('silent'));
  device = await makeDevice(first, 'Living room');
  const other = await makeDevice(first, 'Not shown');
  await first.close();
  // Opted in from the CLI; the other device is not, and must not appear.
  const optIn = await runCli(['device', 'ha', device.id, '--on'], { env: { IOTC_DATA_DIR: tmp.dir } });
  assert.equal(optIn.code, 0, optIn.stderr);
  assert.match(optIn.stdout, /is shown in Home Assistant/);
  notShown = other.id;
  const config = testConfig({ haBroker: 'mqtt://127.0.0.1:1883', haDiscoveryPrefix: PREFIX, haBaseTopic: BASE }, tmp.dir);
  server = await startServer(config, createLogger('silent'), { haPollMs: 200 });
});

after(async () => {
  if (!haveMosquitto) return;
  await server?.close();
  // Leave nothing retained on the shared broker.
  for (const topic of seen.keys()) await watcher.publishAsync(topic, '', { retain: true, qos: 1 });
  await watcher.endAsync();
  tmp.cleanup();
});

const configs = () => [...seen].filter(([t, p]) => t.startsWith(`${PREFIX}/`) && t.endsWith('/config') && p !== '').map(([t, p]) => ({ topic: t, component: t.split('/')[1], payload: JSON.parse(p) }));
const configFor = (sensor: string) => configs().find((c) => c.payload.name === sensor);

test('sensors appear as Home Assistant entities, with states and availability; a switch toggled there reaches the device', { skip: !haveMosquitto }, async () => {
  const dev = await TestClient.connect(`ws://127.0.0.1:${server.port}`, device.id, device.key, 'device');
  const app = await TestClient.connect(`ws://127.0.0.1:${server.port}`, device.id, device.key, 'client');
  for (const [sensor, value] of [['temp', 21.5], ['window', 'off'], ['note', { text: 'hi' }]] as const) {
    assert.equal((await dev.request({ method: 'put', status: { sensor, value } })).ok, true);
  }
  // What the app side writes, Home Assistant may write too.
  assert.equal((await app.request({ method: 'put', status: { sensor: 'lamp', value: 'off' } })).ok, true);
  assert.equal((await app.request({ method: 'put', status: { sensor: 'level', value: 3 } })).ok, true);
  await dev.reading();
  await dev.reading();

  await waitFor(() => configs().length === 5, 10_000, 'five discovery configs');
  const expected: Record<string, string> = { temp: 'sensor', window: 'binary_sensor', note: 'sensor', lamp: 'switch', level: 'number' };
  for (const c of configs()) {
    assert.equal(c.component, expected[c.payload.name], `component of ${c.payload.name}`);
    for (const key of REQUIRED[c.component]) assert.equal(typeof c.payload[key], 'string', `${c.component} ${c.payload.name} needs ${key}`);
    assert.match(c.payload.unique_id, /^iotc_[a-z0-9_]+$/);
    assert.match(c.topic, new RegExp(`^${PREFIX}/${c.component}/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+/config$`), 'discovery topic shape');
    assert.deepEqual(c.payload.device.identifiers, [`iotc_${device.id}`]);
    assert.equal(c.payload.device.name, 'Living room');
    assert.deepEqual(c.payload.availability.map((a: { topic: string }) => a.topic), [`${BASE}/bridge/status`, `${BASE}/${device.id}/availability`]);
    assert.equal(c.payload.availability_mode, 'all');
    if (c.component === 'switch' || c.component === 'binary_sensor') {
      assert.equal(c.payload.payload_on, 'ON');
      assert.equal(c.payload.payload_off, 'OFF');
    }
  }
  assert.equal(new Set(configs().map((c) => c.payload.unique_id)).size, 5, 'unique ids are unique');
  assert.ok(![...seen.keys()].some((t) => t.includes(notShown) || t.includes(notShown.toLowerCase())), 'a device not opted in is not published');
  const state = (sensor: string) => seen.get(configFor(sensor)!.payload.state_topic);
  await waitFor(() => state('temp') === '21.5' && state('window') === 'OFF' && state('lamp') === 'OFF' && state('level') === '3', 5000, 'states');
  assert.equal(state('note'), '{"text":"hi"}');
  assert.equal(seen.get(`${BASE}/bridge/status`), 'online');
  await waitFor(() => seen.get(`${BASE}/${device.id}/availability`) === 'online', 5000, 'the device online');

  // Home Assistant toggles the switch: the device gets it as an app-side write, in its own on/off spelling.
  await watcher.publishAsync(configFor('lamp')!.payload.command_topic, 'ON', { qos: 1 });
  const toggled = await dev.reading(5000);
  assert.equal(toggled.sensor, 'lamp');
  assert.equal(toggled.value, 'on');
  await waitFor(() => state('lamp') === 'ON', 5000, 'the switch state ON');
  await watcher.publishAsync(configFor('level')!.payload.command_topic, '7.5', { qos: 1 });
  const level = await dev.reading(5000);
  assert.deepEqual([level.sensor, level.value], ['level', 7.5]);
  // A command for a read-only sensor is ignored.
  await watcher.publishAsync(`${BASE}/${device.id}/temp/set`, '99', { qos: 1 });
  assert.equal((await app.request({ method: 'gets', sensor: 'temp' })).value, 21.5);

  // A value the device writes later follows.
  assert.equal((await dev.request({ method: 'put', status: { sensor: 'temp', value: 22 } })).ok, true);
  await waitFor(() => state('temp') === '22', 5000, 'the new temperature');

  // Home Assistant restarts: it says online on <prefix>/status and gets every entity again.
  for (const c of configs()) seen.delete(c.topic);
  await watcher.publishAsync(`${PREFIX}/status`, 'online', { qos: 1 });
  await waitFor(() => configs().length === 5, 5000, 'discovery again after Home Assistant came online');

  // The device goes away: unavailable in Home Assistant.
  dev.ws.close();
  await waitFor(() => seen.get(`${BASE}/${device.id}/availability`) === 'offline', 10_000, 'the device offline');
  app.ws.close();
});

test("a poll reads an idle device's sensors no more; a new reading and a new name are published", { skip: !haveMosquitto }, async () => {
  const store = server.hub.store;
  let sensorReads = 0;
  const latestAll = store.latestAll;
  store.latestAll = (...args) => {
    sensorReads++;
    return latestAll.apply(store, args);
  };
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(sensorReads, 0, 'five polls of an idle device read none of its sensors');
    const dev = await TestClient.connect(`ws://127.0.0.1:${server.port}`, device.id, device.key, 'device');
    assert.equal((await dev.request({ method: 'put', status: { sensor: 'temp', value: 23 } })).ok, true);
    dev.ws.close();
    const temp = () => configs().find((c) => c.payload.name === 'temp')!;
    await waitFor(() => seen.get(temp().payload.state_topic) === '23', 5000, 'the new temperature');
    assert.ok(sensorReads >= 1);
    await server.hub.accounts.renameDevice(null, device.id, 'Kitchen');
    await waitFor(() => configs().length === 5 && configs().every((c) => c.payload.device.name === 'Kitchen'), 5000, 'every entity under the new name');
  } finally {
    store.latestAll = latestAll;
  }
});

test('a store slower than the poll never has polls pile up', { skip: !haveMosquitto }, async () => {
  const store = server.hub.store;
  const read = store.homeAssistantDevices;
  let slow = true;
  let running = 0;
  let most = 0;
  let calls = 0;
  store.homeAssistantDevices = async (which) => {
    calls++;
    most = Math.max(most, ++running);
    try {
      if (slow) await new Promise((resolve) => setTimeout(resolve, 1000));
      return await read.call(store, which);
    } finally {
      running--;
    }
  };
  try {
    // Polls every 200 ms against reads of a second: about ten would wait in line by the end.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(most, 1, 'one poll at a time');
    assert.ok(calls <= 4, `${calls} polls started in 2.5 s`);
    const before = calls;
    slow = false;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // The read under way, the one poll waiting, then one each 200 ms; a line of waiting polls would run back to back.
    assert.ok(calls - before <= 8, `${calls - before} polls in the second after the store is quick again`);
  } finally {
    store.homeAssistantDevices = read;
  }
});

test('opting a device out while the hub runs removes its entities from Home Assistant', { skip: !haveMosquitto }, async () => {
  const off = await runCli(['device', 'ha', device.id, '--off'], { env: { IOTC_DATA_DIR: tmp.dir } });
  assert.equal(off.code, 0, off.stderr);
  await waitFor(() => configs().length === 0, 5000, 'every discovery config emptied');
  assert.equal(seen.get(`${BASE}/${device.id}/availability`), 'offline');
  const unknown = await runCli(['device', 'ha', 'NOSUCHDEVICE00000000', '--on'], { env: { IOTC_DATA_DIR: tmp.dir } });
  assert.equal(unknown.code, 1);
  const neither = await runCli(['device', 'ha', device.id], { env: { IOTC_DATA_DIR: tmp.dir } });
  assert.equal(neither.code, 2);
});

test('the hub stopping marks the bridge offline', { skip: !haveMosquitto }, async () => {
  await server.close();
  await waitFor(() => seen.get(`${BASE}/bridge/status`) === 'offline', 5000, 'the bridge offline');
});
