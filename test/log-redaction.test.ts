/** Issue 9: no log line, at any level down to trace, holds a device key, an API token, a cookie or a password. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { hideUrlPasswords } from '../src/log.js';
import { describeStore } from '../src/store/index.js';
import { freePort, LogCapture, makeDevice, startTestServer, TestClient } from './helpers.js';
import { pageSocket, webLogIn } from './page-session.js';

test('at trace level every door logs without secrets', async () => {
  const logs = new LogCapture();
  const mqttPort = await freePort();
  const server = await startTestServer({ logLevel: 'trace', mqttPort }, undefined, { logs });
  const secrets: string[] = [];
  try {
    const d = await makeDevice(server);
    const password = 'correct horse battery';
    const wrongKey = 'WRONGKEYQWERTY1';
    secrets.push(d.key, password, wrongKey);

    // WebSocket with the key in the query, then a wrong key.
    const ws = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    await ws.request({ method: 'put', id: 'p1', status: { sensor: 'temp', value: 1 } });
    await ws.close();
    await new TestClient(`${server.wsUrl}/ws?device=${d.id}&key=${wrongKey}`).closed;

    // HTTP: key in the query and in a header; an API token; a web log-in and its session cookie.
    await fetch(`${server.url}/api/v1/update?device=${d.id}&key=${d.key}&temp=2`);
    await fetch(`${server.url}/api/v1/devices/${d.id}/latest`, { headers: { 'x-device-key': d.key } });
    const loginRes = await fetch(`${server.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: d.email, password }) });
    const login = await loginRes.json();
    secrets.push(login.token);
    await fetch(`${server.url}/api/v1/devices`, { headers: { authorization: `Bearer ${login.token}` } });
    const { cookie: session, formCookie, csrf } = await webLogIn(server, d.email, password);
    secrets.push(session.split('=')[1], formCookie.split('=')[1], csrf);
    await fetch(`${server.url}/devices`, { headers: { cookie: session } });
    // The device page's live socket, opened with the login cookie.
    (await pageSocket(server, d.id, session)).ws.close();

    // MQTT over TCP and over WebSocket.
    for (const url of [`mqtt://127.0.0.1:${mqttPort}`, `ws://127.0.0.1:${server.port}/mqtt`]) {
      const client = await mqtt.connectAsync(url, { username: d.id, password: d.key, reconnectPeriod: 0 });
      await client.publishAsync(`devices/${d.id}/temp`, '3', { qos: 1 });
      await client.endAsync();
    }
    // Malformed requests carrying every secret: node's parser keeps the raw bytes on the error fastify logs at trace.
    for (const target of [`/api/v1/update?device=${d.id}&key=${d.key}`, `/ws?device=${d.id}&key=${d.key}`]) {
      await new Promise<void>((resolve) => {
        const c = net.connect(server.port, '127.0.0.1', () =>
          c.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nCookie: ${session}\r\nAuthorization: Bearer ${login.token}\r\nBad Header\r\n\r\n`),
        );
        c.on('data', () => {});
        c.on('close', () => resolve());
        c.on('error', () => resolve());
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    await server.stop();
  }
  // Buffers are logged as arrays of byte values: read those as text too.
  const text = logs.text.replace(/"data":\[([\d,]+)\]/g, (_, bytes: string) => Buffer.from(bytes.split(',').map(Number)).toString('latin1'));
  assert.ok(logs.entries.some((e) => e.msg === 'client error'), 'the malformed requests were logged');
  if (process.env.DUMP_LOGS) console.log(text);
  assert.ok(logs.entries.some((e) => e.level === 10), 'trace lines were written');
  for (const secret of new Set(secrets)) {
    const at = text.indexOf(secret);
    assert.equal(at, -1, `a secret (${secret.slice(0, 4)}…) is in the log: …${text.slice(Math.max(0, at - 200), at + 40)}`);
  }
});

test('store and bus URLs are shown with their passwords hidden whole, one URL or several', () => {
  assert.equal(describeStore({ store: 'postgres://iotc:s3cret@db:5432/iotc?schema=hub', dataDir: '.' }), 'postgres://iotc:***@db:5432/iotc?schema=hub');
  // Written unencoded, an `@` in a password belongs to it (URL parsers split at the last one): none of it shows.
  const shown = describeStore({ store: 'postgres://iotc:pa@ss@db/iotc', dataDir: '.' });
  assert.equal(shown, 'postgres://iotc:***@db/iotc');
  assert.equal(hideUrlPasswords('nats://a:p1@h1:4222,nats://b:p@2@h2:4222'), 'nats://a:***@h1:4222,nats://b:***@h2:4222');
  assert.equal(hideUrlPasswords('postgres://postgres@127.0.0.1:5432/iotc'), 'postgres://postgres@127.0.0.1:5432/iotc');
  assert.equal(hideUrlPasswords('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222');
});
