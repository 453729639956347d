/**
 * Unmodified Tasmota and ESPHome: their default topic layouts, played with mosquitto_pub / mosquitto_sub against our
 * MQTT door on a free port, land on the device's sensors, and what the app side writes reaches them as commands.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { aliasDeliveryTopic, aliasFilterAllowed, aliasPublish } from '../src/doors/mqtt/topics.js';
import { freePort, makeDevice, startTestServer, TestClient, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';
import { mosquittoAvailable, mosquittoPub, MosquittoSub } from './mqtt-clients.js';

const haveMosquitto = mosquittoAvailable();
let server: TestServer;
let host: string[];

before(async () => {
  server = await startTestServer({ mqttPort: await freePort() });
  host = ['-h', '127.0.0.1', '-p', String(server.mqttPort)];
});
after(() => server.stop());

const sensor = async (deviceId: string, name: string) => (await server.hub.relay.sensors(deviceId)).find((r) => r.sensor === name)?.value;

describe('firmware topic layouts', () => {
  test('publishes map onto sensors; discovery is dropped; the device tree and anything else stay as they were', () => {
    assert.deepEqual(aliasPublish('tele/tasmota_1A2B3C/SENSOR'), { sensor: 'SENSOR' });
    assert.deepEqual(aliasPublish('stat/tasmota_1A2B3C/POWER'), { sensor: 'POWER' });
    assert.deepEqual(aliasPublish('livingroom/sensor/temperature/state'), { sensor: 'temperature' });
    assert.deepEqual(aliasPublish('livingroom/status'), { sensor: 'status' });
    assert.equal(aliasPublish('homeassistant/sensor/livingroom/temperature/config'), 'drop');
    assert.equal(aliasPublish('tasmota/discovery/A1B2C3D4E5F6/config'), 'drop');
    for (const topic of ['devices/OTHERDEVICE000000000/status', 'devices/X/a/state', 'foo', 'foo/bar', 'a/b/c/d/e', 'tele/+/SENSOR', 'tele//SENSOR']) {
      assert.equal(aliasPublish(topic), null, topic);
    }
  });

  test('command subscriptions: cmnd/T/… and N/COMPONENT/NAME/command only, delivered once on their own topic', () => {
    for (const f of ['cmnd/tasmota_1A2B3C/#', 'cmnd/tasmotas/+', 'cmnd/t/POWER', 'node/switch/relay/command', 'node/+/+/command']) assert.equal(aliasFilterAllowed(f), true, f);
    for (const f of ['#', 'cmnd/#', 'cmnd/+/POWER', '+/switch/relay/command', 'devices/OTHER/x/command', 'node/switch/relay/state']) assert.equal(aliasFilterAllowed(f), false, f);
    assert.equal(aliasDeliveryTopic('cmnd/t/#', 'POWER'), 'cmnd/t/POWER');
    assert.equal(aliasDeliveryTopic('cmnd/t/Power1', 'POWER'), null);
    assert.equal(aliasDeliveryTopic('node/switch/relay/command', 'relay'), 'node/switch/relay/command');
    assert.equal(aliasDeliveryTopic('node/switch/relay/command', 'temp'), null);
    assert.equal(aliasDeliveryTopic('cmnd/t/#', 'a/b'), null, 'one level only');
  });
});

describe('unmodified firmware over our MQTT door (mosquitto clients)', { skip: !haveMosquitto }, () => {
  test('Tasmota defaults: its will, tele/ and stat/ readings, discovery, and POWER commands from the app once', async () => {
    const d = await makeDevice(server);
    const auth = ['-u', d.id, '-P', d.key, '-q', '1'];
    const topic = 'tasmota_1A2B3C';
    // Tasmota subscribes to its own command topic, its group's and its fallback's.
    const firmware = new MosquittoSub([...host, ...auth, '-i', 'DVES_1A2B3C', '--will-topic', `tele/${topic}/LWT`, '--will-payload', 'Offline', '-t', `cmnd/${topic}/#`, '-t', 'cmnd/tasmotas/#', '-t', 'cmnd/DVES_1A2B3C_fb/#']);
    try {
      await waitFor(() => server.hub.relay.presence.count(d.id, 'device') === 1, 5000, 'the firmware to connect with its will');
      const telemetry = '{"Time":"2026-01-01T12:00:00","AM2301":{"Temperature":21.5,"Humidity":40.1},"TempUnit":"C"}';
      for (const [t, m] of [[`tele/${topic}/LWT`, 'Online'], [`tele/${topic}/SENSOR`, telemetry], [`stat/${topic}/POWER`, 'ON'], ['tasmota/discovery/A1B2C3D4E5F6/config', '{"dn":"x"}']]) {
        const res = await mosquittoPub([...host, ...auth, '-t', t, '-m', m]);
        assert.equal(res.code, 0, `${t}: ${res.stderr}`);
      }
      assert.equal(await sensor(d.id, 'LWT'), 'Online');
      assert.deepEqual(await sensor(d.id, 'SENSOR'), JSON.parse(telemetry));
      assert.equal(await sensor(d.id, 'POWER'), 'ON');
      assert.equal(await sensor(d.id, 'config'), undefined, 'discovery is not stored');

      const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
      assert.equal((await app.request({ method: 'put', status: { sensor: 'POWER', value: 'OFF' }, id: 1 })).ok, true);
      assert.equal(await firmware.line(1), `0 cmnd/${topic}/POWER OFF`, 'a bare word, as Tasmota expects');
      await app.close();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(firmware.lines.length, 1, `once, not once per group topic: ${JSON.stringify(firmware.lines)}`);
    } finally {
      await firmware.stop();
    }
  });

  test('ESPHome defaults: N/…/state readings, N/status, and switch commands from the app on N/switch/NAME/command', async () => {
    const d = await makeDevice(server);
    const auth = ['-u', d.id, '-P', d.key, '-q', '1'];
    const firmware = new MosquittoSub([...host, ...auth, '-i', 'livingroom', '--will-topic', 'livingroom/status', '--will-payload', 'offline', '-t', 'livingroom/switch/relay/command']);
    try {
      await waitFor(() => server.hub.relay.presence.count(d.id, 'device') === 1, 5000, 'the firmware to connect');
      for (const [t, m] of [['livingroom/status', 'online'], ['livingroom/sensor/temperature/state', '21.5'], ['livingroom/switch/relay/state', 'OFF'], ['homeassistant/switch/livingroom/relay/config', '{}']]) {
        const res = await mosquittoPub([...host, ...auth, '-t', t, '-m', m]);
        assert.equal(res.code, 0, `${t}: ${res.stderr}`);
      }
      assert.equal(await sensor(d.id, 'status'), 'online');
      assert.equal(await sensor(d.id, 'temperature'), 21.5, 'numbers are numbers, charted on the device page');
      assert.equal(await sensor(d.id, 'relay'), 'OFF');

      const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
      assert.equal((await app.request({ method: 'put', status: { sensor: 'relay', value: 'ON' }, id: 1 })).ok, true);
      assert.equal(await firmware.line(1), '0 livingroom/switch/relay/command ON');
      await app.close();
      // Dropped off without a DISCONNECT: its will sets the status sensor.
      firmware.child.kill('SIGKILL');
      await waitFor(async () => (await sensor(d.id, 'status')) === 'offline', 5000, 'the will on livingroom/status');
    } finally {
      await firmware.stop();
    }
  });

  test('other topics are still refused, and nothing reaches another device', async () => {
    const a = await makeDevice(server);
    const b = await makeDevice(server);
    const res = await mosquittoPub([...host, '-u', a.id, '-P', a.key, '-q', '1', '-t', 'some/random', '-m', '1']);
    assert.notEqual(res.code, 0, 'MQTT 3.1.1 has no negative PUBACK: the connection is closed');
    const other = await mosquittoPub([...host, '-u', a.id, '-P', a.key, '-q', '1', '-t', `devices/${b.id}/x/state`, '-m', '1']);
    assert.notEqual(other.code, 0);
    assert.deepEqual(await server.hub.relay.sensors(b.id), []);
    assert.deepEqual(await server.hub.relay.sensors(a.id), []);
  });
});
