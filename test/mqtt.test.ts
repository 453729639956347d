import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../src/log.js';
import { startServer } from '../src/server.js';
import { loadConfig } from '../src/config.js';
import { freePort, LogCapture, makeDevice, sleep, startTestServer, tempDir, TestClient, testConfig, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';
import { closedWith, Inbox, mosquittoAvailable, mosquittoPub, MosquittoSub, mqttConnect } from './mqtt-clients.js';

const haveMosquitto = mosquittoAvailable();
let server: TestServer;
let host: string[];
let mqttUrl: string;

before(async () => {
  server = await startTestServer({ mqttPort: await freePort() });
  assert.ok(server.mqttPort && server.mqttPort !== 1883);
  host = ['-h', '127.0.0.1', '-p', String(server.mqttPort)];
  mqttUrl = `mqtt://127.0.0.1:${server.mqttPort}`;
});
after(() => server.stop());

for (const version of ['mqttv311', 'mqttv5'] as const) {
  describe(`mosquitto clients, ${version}`, { skip: !haveMosquitto }, () => {
    test('mosquitto_pub: JSON or plain payloads become readings; QoS 1 is acknowledged after they are stored', async () => {
      const d = await makeDevice(server);
      const client = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
      const auth = ['-u', d.id, '-P', d.key, '-V', version, '-q', '1'];
      const cases: [string, string, unknown][] = [
        ['temp', '21.5', 21.5],
        ['state', 'on', 'on'],
        ['quoted', '"on"', 'on'],
        ['flag', 'true', true],
        ['obj', '{"a":1,"b":[true,null]}', { a: 1, b: [true, null] }],
        ['greeting', 'hello world', 'hello world'],
      ];
      for (const [sensor, payload, value] of cases) {
        const res = await mosquittoPub([...host, ...auth, '-t', `devices/${d.id}/${sensor}`, '-m', payload]);
        assert.equal(res.code, 0, res.stderr);
        // mosquitto_pub exits after the PUBACK: the reading must already be committed.
        const stored = await server.hub.relay.gets(d.id, sensor);
        assert.deepEqual(stored?.value, value, `${sensor} stored before PUBACK`);
        assert.equal(stored?.side, 'device');
        const got = await client.reading();
        assert.deepEqual([got.sensor, got.value, got.write], [sensor, value, 'device']);
      }
      await client.close();
    });

    test('mosquitto_sub gets what the WebSocket client writes, as JSON text; the latest is retained for a new subscriber', async () => {
      const d = await makeDevice(server);
      const phone = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
      await phone.request({ method: 'put', status: { sensor: 'switch', value: true } });
      const sub = new MosquittoSub([...host, '-u', d.id, '-P', d.key, '-V', version, '-q', '1', '-t', `devices/${d.id}/+`]);
      try {
        assert.equal(await sub.line(1), `1 devices/${d.id}/switch true`, 'retained latest value on subscribe');
        await phone.request({ method: 'put', status: [{ sensor: 'switch', value: false }, { sensor: 'mode', value: 'eco' }, { sensor: 'cfg', value: { t: 20 } }] });
        assert.equal(await sub.line(2), `0 devices/${d.id}/switch false`);
        assert.equal(await sub.line(3), `0 devices/${d.id}/mode "eco"`);
        assert.equal(await sub.line(4), `0 devices/${d.id}/cfg {"t":20}`);
        // The device's own writes are not echoed back to it.
        const res = await mosquittoPub([...host, '-u', d.id, '-P', d.key, '-V', version, '-q', '1', '-t', `devices/${d.id}/temp`, '-m', '20']);
        assert.equal(res.code, 0);
        await phone.request({ method: 'put', status: { sensor: 'marker', value: 1 } });
        assert.equal(await sub.line(5), `0 devices/${d.id}/marker 1`);
      } finally {
        await sub.stop();
        await phone.close();
      }
    });

    test('wrong key, unknown device and another device\'s topic are refused', async () => {
      const a = await makeDevice(server);
      const b = await makeDevice(server);
      const wrong = await mosquittoPub([...host, '-u', a.id, '-P', 'WRONGKEYWRONGKE', '-V', version, '-t', `devices/${a.id}/t`, '-m', '1']);
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /bad user ?name or password/i);
      const unknown = await mosquittoPub([...host, '-u', 'NOSUCHDEVICE0000000', '-P', a.key, '-V', version, '-t', 'devices/NOSUCHDEVICE0000000/t', '-m', '1']);
      assert.notEqual(unknown.code, 0);
      const other = await mosquittoPub([...host, '-u', a.id, '-P', a.key, '-V', version, '-q', '1', '-t', `devices/${b.id}/t`, '-m', '1']);
      if (version === 'mqttv5') assert.match(other.stderr, /not authori[sz]ed/i);
      else assert.notEqual(other.code, 0, 'MQTT 3.1.1 has no negative PUBACK: the connection is closed');
      const sub = new MosquittoSub([...host, '-u', a.id, '-P', a.key, '-V', version, '-t', `devices/${b.id}/+`]);
      const exit = await Promise.race([sub.exited, sleep(4000).then(() => 'still running')]);
      await sub.stop();
      assert.notEqual(exit, 'still running', 'mosquitto_sub gives up when its only subscription is denied');
      assert.match(sub.stderr, /denied/i);
      assert.equal(await server.hub.relay.gets(b.id, 't'), null, 'nothing written to the other device');
      assert.equal(await server.hub.relay.gets(a.id, 't'), null);
    });
  });
}

describe('mqtt npm client', () => {
  for (const protocolVersion of [4, 5] as const) {
    test(`v${protocolVersion === 4 ? '3.1.1' : '5'}: QoS 1 publish resolves after commit; subscriptions outside the device are refused`, async () => {
      const a = await makeDevice(server);
      const b = await makeDevice(server);
      const c = await mqttConnect(mqttUrl, { username: a.id, password: a.key, protocolVersion });
      await c.publishAsync(`devices/${a.id}/hum`, '55', { qos: 1 });
      assert.equal((await server.hub.relay.gets(a.id, 'hum'))?.value, 55);
      const granted = await c.subscribeAsync(`devices/${a.id}/#`, { qos: 1 });
      assert.equal(granted[0].qos, 1);
      const refusedCode = protocolVersion === 5 ? 0x87 : 128;
      for (const filter of [`devices/${b.id}/+`, 'devices/+/temp', '#', `devices/${a.id}`]) {
        await assert.rejects(c.subscribeAsync(filter, { qos: 0 }), (err: any) => err.packet?.granted?.[0] === refusedCode, filter);
      }
      assert.equal(c.connected, true, 'a refused subscription keeps the connection');
      const inbox = new Inbox(c);
      await server.hub.relay.put(a.id, 'client', [{ sensor: 'cmd', value: 'reboot' }]);
      const m = await inbox.next();
      assert.deepEqual([m.topic, m.payload, m.qos, m.retain], [`devices/${a.id}/cmd`, '"reboot"', 1, false]);
      await server.hub.relay.put(b.id, 'client', [{ sensor: 'cmd', value: 'other' }]);
      await sleep(200);
      assert.equal(inbox.unread, 0, "another device's values never arrive");
      await c.endAsync();
    });
  }

  test('v5: a publish to another device gets PUBACK "not authorized" and the connection stays', async () => {
    const a = await makeDevice(server);
    const b = await makeDevice(server);
    const c = await mqttConnect(mqttUrl, { username: a.id, password: a.key, protocolVersion: 5 });
    await assert.rejects(c.publishAsync(`devices/${b.id}/x`, '1', { qos: 1 }), (err: any) => err.code === 0x87);
    await c.publishAsync(`devices/${a.id}/x`, '2', { qos: 1 });
    assert.equal((await server.hub.relay.gets(a.id, 'x'))?.value, 2);
    assert.equal(await server.hub.relay.gets(b.id, 'x'), null);
    await c.endAsync();
  });

  test('v5: a sensor name over 64 characters gets PUBACK "not authorized"; one of 64 is stored', async () => {
    const a = await makeDevice(server);
    const c = await mqttConnect(mqttUrl, { username: a.id, password: a.key, protocolVersion: 5 });
    await assert.rejects(c.publishAsync(`devices/${a.id}/${'s'.repeat(65)}`, '1', { qos: 1 }), (err: any) => err.code === 0x87);
    await c.publishAsync(`devices/${a.id}/${'s'.repeat(64)}`, '2', { qos: 1 });
    assert.equal((await server.hub.relay.gets(a.id, 's'.repeat(64)))?.value, 2);
    assert.equal(await server.hub.relay.gets(a.id, 's'.repeat(65)), null);
    await c.endAsync();
  });

  test('v3.1.1: a publish to another device closes the connection and stores nothing', async () => {
    const a = await makeDevice(server);
    const b = await makeDevice(server);
    const c = await mqttConnect(mqttUrl, { username: a.id, password: a.key, protocolVersion: 4 });
    const closed = closedWith(c);
    c.publish(`devices/${b.id}/x`, '1', { qos: 1 });
    await closed;
    assert.equal(await server.hub.relay.gets(b.id, 'x'), null);
  });

  test('QoS 2 publishes are stored once; a QoS 2 subscription receives readings at QoS 1', async () => {
    const d = await makeDevice(server);
    const c = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 5 });
    await c.publishAsync(`devices/${d.id}/exact`, '42', { qos: 2 });
    const history = await server.hub.relay.history(d.id, 'exact', { limit: 10 });
    assert.deepEqual(history.map((r) => r.value), [42]);
    const inbox = new Inbox(c);
    const granted = await c.subscribeAsync(`devices/${d.id}/+`, { qos: 2 });
    assert.equal(granted[0].qos, 2);
    await server.hub.relay.put(d.id, 'client', [{ sensor: 'cmd', value: 1 }]);
    const m = await inbox.next();
    assert.deepEqual([m.topic, m.qos], [`devices/${d.id}/cmd`, 1]);
    await c.endAsync();
  });

  test('a connection publishing faster than the rate limit is refused (MQTT 5: PUBACK quota exceeded)', async () => {
    const limited = await startTestServer({ mqttPort: await freePort(), rateLimit: 1, rateBurst: 2 });
    try {
      const d = await makeDevice(limited);
      const c = await mqttConnect(`mqtt://127.0.0.1:${limited.mqttPort}`, { username: d.id, password: d.key, protocolVersion: 5 });
      const results = await Promise.allSettled([1, 2, 3, 4].map((i) => c.publishAsync(`devices/${d.id}/n`, String(i), { qos: 1 })));
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'rejected']);
      assert.equal((results[3] as PromiseRejectedResult).reason.code, 0x97);
      assert.equal((await limited.hub.relay.history(d.id, 'n', { limit: 10 })).length, 2);
      await c.endAsync();
    } finally {
      await limited.stop();
    }
  });

  test('wrong credentials are refused at CONNECT with the right return code', async () => {
    const d = await makeDevice(server);
    await assert.rejects(mqttConnect(mqttUrl, { username: d.id, password: 'WRONG', protocolVersion: 4 }), (err: any) => err.code === 4);
    await assert.rejects(mqttConnect(mqttUrl, { username: d.id, password: 'WRONG', protocolVersion: 5 }), (err: any) => err.code === 0x86);
    await assert.rejects(mqttConnect(mqttUrl, { username: d.id, protocolVersion: 4 }), (err: any) => err.code === 4);
    await assert.rejects(mqttConnect(mqttUrl, { protocolVersion: 4 }), (err: any) => err.code === 4);
    await assert.rejects(mqttConnect(mqttUrl, { username: `${d.id}:admin`, password: d.key, protocolVersion: 4 }), (err: any) => err.code === 4);
    // A will outside the device's own topics is refused too.
    await assert.rejects(
      mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 4, will: { topic: 'devices/OTHER/status', payload: Buffer.from('x'), qos: 0, retain: false } }),
      (err: any) => err.code === 5,
    );
  });

  test('username ID:client is the client side: it writes to the device and reads what the device writes', async () => {
    const d = await makeDevice(server);
    const device = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const app = await mqttConnect(mqttUrl, { username: `${d.id}:client`, password: d.key, protocolVersion: 4 });
    const inbox = new Inbox(app);
    await app.subscribeAsync(`devices/${d.id}/+`, { qos: 1 });
    await app.publishAsync(`devices/${d.id}/switch`, 'true', { qos: 1 });
    const got = await device.reading();
    assert.deepEqual([got.sensor, got.value, got.write], ['switch', true, 'client']);
    await device.request({ method: 'put', status: { sensor: 'temp', value: 23.5 } });
    const m = await inbox.next();
    assert.deepEqual([m.topic, m.payload], [`devices/${d.id}/temp`, '23.5']);
    await app.endAsync();
    await device.close();
  });

  test('a will message on devices/ID/SENSOR is stored when the device drops off', async () => {
    const d = await makeDevice(server);
    const client = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    const c = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 4, will: { topic: `devices/${d.id}/status`, payload: Buffer.from('offline'), qos: 1, retain: true } });
    c.stream.destroy();
    const got = await client.reading();
    assert.deepEqual([got.sensor, got.value], ['status', 'offline']);
    await client.close();
  });

  for (const protocolVersion of [4, 5] as const) {
    test(`v${protocolVersion === 4 ? '3.1.1' : '5'}: a persistent session gets what it missed while offline`, async () => {
      const d = await makeDevice(server);
      const opts = protocolVersion === 5
        ? { username: d.id, password: d.key, protocolVersion, clientId: 'sleepy', clean: false, properties: { sessionExpiryInterval: 3600 } }
        : { username: d.id, password: d.key, protocolVersion, clientId: 'sleepy', clean: false };
      const first = await mqttConnect(mqttUrl, opts);
      await first.subscribeAsync(`devices/${d.id}/+`, { qos: 1 });
      await first.endAsync();
      await waitFor(async () => !(await server.hub.store.listDevices(d.userId))[0].online, 3000, 'device offline');

      const phone = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
      await phone.request({ method: 'put', status: { sensor: 'switch', value: 'on' } });
      const again = await mqttConnect(mqttUrl, opts);
      const inbox = new Inbox(again);
      const m = await inbox.next();
      assert.deepEqual([m.topic, m.payload], [`devices/${d.id}/switch`, '"on"'], 'delivered through the restored subscription, without subscribing again');
      await phone.request({ method: 'put', status: { sensor: 'switch', value: 'off' } });
      assert.equal((await inbox.next()).payload, '"off"');
      await again.endAsync();
      await phone.close();
    });
  }

  test('the same client id on two devices does not make them take each other over', async () => {
    const a = await makeDevice(server);
    const b = await makeDevice(server);
    const ca = await mqttConnect(mqttUrl, { username: a.id, password: a.key, clientId: 'ESP8266Client', protocolVersion: 4 });
    const cb = await mqttConnect(mqttUrl, { username: b.id, password: b.key, clientId: 'ESP8266Client', protocolVersion: 4 });
    await sleep(200);
    assert.equal(ca.connected, true);
    assert.equal(cb.connected, true);
    await ca.publishAsync(`devices/${a.id}/t`, '1', { qos: 1 });
    await cb.publishAsync(`devices/${b.id}/t`, '2', { qos: 1 });
    await Promise.all([ca.endAsync(), cb.endAsync()]);
  });

  for (const protocolVersion of [4, 5] as const) {
    test(`v${protocolVersion === 4 ? '3.1.1' : '5'}: rotating the key or deleting the device disconnects MQTT sessions`, async () => {
      const d = await makeDevice(server);
      const c = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion });
      const closed = closedWith(c);
      const rotated = await server.hub.accounts.rotateKey(d.userId, d.id);
      const how = await closed;
      if (protocolVersion === 5) assert.equal(how.reasonCode, 0x87, 'MQTT 5 is told why');
      await assert.rejects(mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion }));
      const c2 = await mqttConnect(mqttUrl, { username: d.id, password: rotated.key, protocolVersion });
      const closed2 = closedWith(c2);
      await server.hub.accounts.deleteDevice(d.userId, d.id);
      await closed2;
      await assert.rejects(mqttConnect(mqttUrl, { username: d.id, password: rotated.key, protocolVersion }));
    });
  }

  test('a key rotated by the CLI (another process) closes the session too', async () => {
    const d = await makeDevice(server);
    const c = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 4 });
    const closed = closedWith(c, 8000);
    // Same effect as `iotc device rotate` beside the server: only the store knows, the relay polls its device events.
    await server.hub.store.setDeviceKey(d.id, 'f'.repeat(64));
    await closed;
  });

  test('MQTT over WebSocket at /mqtt on the HTTP port', async () => {
    const d = await makeDevice(server);
    const phone = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    for (const protocolVersion of [4, 5] as const) {
      const c = await mqttConnect(`ws://127.0.0.1:${server.port}/mqtt`, { username: d.id, password: d.key, protocolVersion });
      const inbox = new Inbox(c);
      await c.subscribeAsync(`devices/${d.id}/led`, { qos: 1 });
      if (protocolVersion === 5) {
        const retained = await inbox.next();
        assert.deepEqual([retained.payload, retained.retain], ['4', true], 'the latest value written for the first connection');
      }
      await c.publishAsync(`devices/${d.id}/temp`, String(protocolVersion), { qos: 1 });
      assert.equal((await phone.reading()).value, protocolVersion);
      await phone.request({ method: 'put', status: { sensor: 'led', value: protocolVersion } });
      const m = await inbox.next();
      assert.deepEqual([m.topic, m.payload], [`devices/${d.id}/led`, String(protocolVersion)]);
      await c.endAsync();
    }
    await phone.close();
  });

  test('a packet larger than the limit closes the connection and stores nothing', async () => {
    const d = await makeDevice(server);
    const c = await mqttConnect(mqttUrl, { username: d.id, password: d.key, protocolVersion: 4 });
    const closed = closedWith(c);
    c.publish(`devices/${d.id}/big`, 'x'.repeat(200_000), { qos: 1 });
    await closed;
    assert.equal(await server.hub.relay.gets(d.id, 'big'), null);
  });

  test('a connection that sends garbage instead of CONNECT is dropped', async () => {
    const sock = net.connect(server.mqttPort!, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('GET / HTTP/1.1\r\n\r\n');
    await new Promise((r) => sock.once('close', r));
  });
});

describe('listener', () => {
  test('mqtt-port 0 turns the TCP listener off; MQTT over WebSocket still answers', async () => {
    const s = await startTestServer({ mqttPort: 0 });
    try {
      assert.equal(s.mqttPort, null);
      const d = await makeDevice(s);
      const c = await mqttConnect(`ws://127.0.0.1:${s.port}/mqtt`, { username: d.id, password: d.key, protocolVersion: 4 });
      await c.endAsync();
    } finally {
      await s.stop();
    }
  });

  test('the default port in use (a broker already on the machine) leaves the hub running without the TCP listener, and says so', async () => {
    // Hold 1883 ourselves unless something (such as a local Mosquitto) already does.
    const blocker = net.createServer();
    const held = await new Promise<boolean>((resolve) => {
      blocker.once('error', () => resolve(false));
      blocker.listen(1883, '127.0.0.1', () => resolve(true));
    });
    const tmp = tempDir();
    const logs = new LogCapture();
    try {
      const config = loadConfig({}, {}, { port: 0, host: '127.0.0.1', dataDir: tmp.dir, logLevel: 'warn' });
      assert.equal(config.mqttPort, 1883, 'left at its default');
      const s = await startServer(config, createLogger('warn', logs));
      try {
        assert.equal(s.mqttPort, null);
        assert.match(logs.text, /MQTT port 1883 is already in use.*Running without the MQTT TCP listener/);
        const d = await makeDevice(s);
        const c = await mqttConnect(`ws://127.0.0.1:${s.port}/mqtt`, { username: d.id, password: d.key, protocolVersion: 4 });
        await c.endAsync();
      } finally {
        await s.close();
      }
    } finally {
      tmp.cleanup();
      if (held) await new Promise((r) => blocker.close(r));
    }
  });

  test('a port in use gives a clear error naming the option', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startTestServer({ mqttPort: port }), (err: Error) => err.message.includes(`MQTT port ${port} is already in use`) && err.message.includes('--mqtt-port') && err.message.includes('IOTC_MQTT_PORT'));
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});

test('refusals on the MQTT and HTTP doors are logged, and no log line holds a key, password or token', async () => {
  const lines: string[] = [];
  const tmp = tempDir();
  const s = await startServer(testConfig({ mqttPort: await freePort(), logLevel: 'debug' }, tmp.dir), createLogger('debug', { write: (line: string) => void lines.push(line) }));
  try {
    const a = await makeDevice(s);
    const b = await makeDevice(s);
    const url = `mqtt://127.0.0.1:${s.mqttPort}`;
    const token = (await s.hub.tokens.create(a.userId, 'log check')).token;
    await assert.rejects(mqttConnect(url, { username: a.id, password: `${a.key}X`, protocolVersion: 4 }));
    const c = await mqttConnect(url, { username: a.id, password: a.key, protocolVersion: 5 });
    await c.publishAsync(`devices/${a.id}/ok`, '1', { qos: 1 });
    await assert.rejects(c.publishAsync(`devices/${b.id}/t`, '1', { qos: 1 }));
    await assert.rejects(c.subscribeAsync(`devices/${b.id}/+`));
    await c.endAsync();
    await fetch(`${s.url}/api/v1/update?device=${a.id}&key=${a.key}&t=1`);
    await fetch(`${s.url}/api/v1/update?device=${b.id}&key=${a.key}&t=1`);
    await fetch(`${s.url}/api/v1/devices/${b.id}/latest`, { headers: { authorization: `Bearer ${token}` } });
    await fetch(`${s.url}/api/v1/devices`, { headers: { authorization: `Bearer ${token}x` } });
    const log = lines.join('');
    assert.match(log, /mqtt refused: wrong device id or key/);
    assert.match(log, /mqtt publish refused/);
    assert.match(log, /mqtt subscribe refused/);
    assert.match(log, /api request refused/);
    for (const secret of [a.key, b.key, token, 'correct horse battery']) assert.ok(!log.includes(secret), 'a secret reached the log');
  } finally {
    await s.close();
    tmp.cleanup();
  }
});
