/**
 * Issue 9, finding 6: idle unauthenticated sockets must not pile up. Every door gives a new connection the
 * handshake timeout to prove who it is, and one address holds at most --max-unauth-per-address of them.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { freePort, LogCapture, makeDevice, sleep, startTestServer, TestClient, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';
import { mqttConnect } from './mqtt-clients.js';
import { HandshakeGuard } from '../src/doors/handshake-guard.js';
import { createLogger } from '../src/log.js';

interface RawSocket {
  socket: net.Socket;
  /** Milliseconds from connect to the server closing it, once it has. */
  closedAfter: Promise<number>;
  closed: boolean;
  received: Buffer;
}

async function rawSocket(port: number, send?: string | Buffer): Promise<RawSocket> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const start = Date.now();
  const raw: RawSocket = { socket, closed: false, received: Buffer.alloc(0), closedAfter: null as unknown as Promise<number> };
  socket.on('error', () => {});
  socket.on('data', (d) => (raw.received = Buffer.concat([raw.received, d])));
  raw.closedAfter = new Promise((resolve) =>
    socket.once('close', () => {
      raw.closed = true;
      resolve(Date.now() - start);
    }),
  );
  if (send) socket.write(send);
  return raw;
}

const connectPacket = (opts: Record<string, unknown>) =>
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'idle', keepalive: 0, ...opts } as any, { protocolVersion: (opts.protocolVersion as number) ?? 4 });

const UPGRADE = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n${extra}\r\n`;

describe('handshake timeout', () => {
  let server: TestServer;
  const logs = new LogCapture();
  before(async () => {
    server = await startTestServer({ mqttPort: await freePort(), handshakeTimeout: 1000, mqttMaxKeepalive: 1000 }, undefined, { logs });
  });
  after(() => server.stop());

  test('HTTP port: a socket that sends nothing, or never finishes its request or upgrade, is closed within the timeout', async () => {
    const silent = await rawSocket(server.port);
    const partial = await rawSocket(server.port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
    const partialUpgrade = await rawSocket(server.port, UPGRADE('/ws?device=X&key=Y').slice(0, 60));
    // The WebSocket handshake for MQTT completes, but no CONNECT follows.
    const noConnect = await rawSocket(server.port, UPGRADE('/mqtt'));
    for (const [name, s] of Object.entries({ silent, partial, partialUpgrade, noConnect })) {
      const ms = await s.closedAfter;
      assert.ok(ms >= 900 && ms < 2500, `${name} closed after ${ms} ms`);
    }
    assert.match(noConnect.received.toString(), /^HTTP\/1.1 101/, 'the upgrade itself was answered');
  });

  test('HTTP port: a keep-alive connection left idle after its request is closed within the timeout', async () => {
    const s = await rawSocket(server.port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await waitFor(() => s.received.includes('{"ok":true}'), 2000, 'the answer');
    assert.match(s.received.toString(), /^HTTP\/1.1 200[^]*keep-alive/i);
    const ms = await s.closedAfter;
    assert.ok(ms >= 900 && ms < 2500, `closed after ${ms} ms`);
  });

  test('MQTT port: no CONNECT, or half a CONNECT, is closed within the timeout', async () => {
    const silent = await rawSocket(server.mqttPort!);
    const half = await rawSocket(server.mqttPort!, connectPacket({}).subarray(0, 5));
    for (const [name, s] of Object.entries({ silent, half })) {
      const ms = await s.closedAfter;
      assert.ok(ms >= 900 && ms < 2500, `${name} closed after ${ms} ms`);
    }
  });

  test('an authenticated MQTT 3.1.1 connection asking for no keep-alive, or a huge one, is dropped once silent for 1.5 × --mqtt-max-keepalive', async () => {
    const d = await makeDevice(server);
    const sockets = await Promise.all([0, 65535].map((keepalive) => rawSocket(server.mqttPort!, connectPacket({ username: d.id, password: Buffer.from(d.key), keepalive, clientId: `idle-${keepalive}` }))));
    for (const s of sockets) {
      await waitFor(() => s.received.length >= 4, 2000, 'CONNACK');
      assert.deepEqual([...s.received.subarray(0, 4)], [0x20, 0x02, 0x00, 0x00], 'accepted');
      const ms = await s.closedAfter;
      assert.ok(ms >= 1400 && ms < 3500, `closed after ${ms} ms`);
    }
    assert.ok(logs.entries.some((e) => e.deviceId === d.id && e.msg?.includes('--mqtt-max-keepalive')), 'the drop is logged, naming the setting');
  });

  test('MQTT 5: a keep-alive of 0 or above the limit is replaced, and the CONNACK says so (Server Keep Alive)', async () => {
    const d = await makeDevice(server);
    for (const keepalive of [0, 3600]) {
      const c = await mqttConnect(`mqtt://127.0.0.1:${server.mqttPort}`, { username: d.id, password: d.key, protocolVersion: 5, keepalive });
      // mqtt.js keeps the CONNACK it was answered with.
      assert.equal((c as unknown as { connackPacket?: any }).connackPacket?.properties?.serverKeepAlive, 1, `keepalive ${keepalive}`);
      await c.endAsync();
    }
    const asked = await mqttConnect(`mqtt://127.0.0.1:${server.mqttPort}`, { username: d.id, password: d.key, protocolVersion: 5, keepalive: 1 });
    assert.equal((asked as unknown as { connackPacket?: any }).connackPacket?.properties?.serverKeepAlive, undefined, 'a keep-alive within the limit is kept as asked');
    await asked.endAsync();
  });

  test('a client doing its handshake promptly is unaffected, and stays connected past the timeout', async () => {
    const d = await makeDevice(server);
    const ws = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    const mq = await mqttConnect(`mqtt://127.0.0.1:${server.mqttPort}`, { username: d.id, password: d.key, protocolVersion: 4, keepalive: 1 });
    await sleep(1600);
    assert.equal((await ws.request({ method: 'put', status: { sensor: 't', value: 1 } })).ok, true);
    await mq.publishAsync(`devices/${d.id}/t`, '2', { qos: 1 });
    assert.equal(mq.connected, true);
    await Promise.all([ws.close(), mq.endAsync()]);
  });
});

describe('unauthenticated connections per address', () => {
  let server: TestServer;
  const logs = new LogCapture();
  before(async () => {
    server = await startTestServer({ mqttPort: await freePort(), maxUnauthPerAddress: 20, handshakeTimeout: 5000 }, undefined, { logs });
  });
  after(() => server.stop());

  test('a flood of idle sockets from one address holds at most the cap, and a real client from that address still gets in', async () => {
    const flood: RawSocket[] = [];
    for (let i = 0; i < 150; i++) {
      flood.push(await rawSocket(server.port));
      flood.push(await rawSocket(server.mqttPort!));
    }
    await waitFor(() => flood.filter((s) => !s.closed).length <= 20, 3000, 'the oldest idle sockets to be closed');
    const during = await (await fetch(`${server.url}/metrics`)).text();
    // This scrape's connection closed the oldest of the 20 (and its request ended its own handshake).
    assert.match(during, /^iotc_handshakes_pending 19$/m);
    const d = await makeDevice(server);
    const ws = await TestClient.connect(server.wsUrl, d.id, d.key, 'device');
    assert.equal((await ws.request({ method: 'put', status: { sensor: 't', value: 1 } })).ok, true);
    const mq = await mqttConnect(`mqtt://127.0.0.1:${server.mqttPort}`, { username: d.id, password: d.key, protocolVersion: 4 });
    await mq.publishAsync(`devices/${d.id}/t`, '2', { qos: 1 });
    const mqWs = await mqttConnect(`ws://127.0.0.1:${server.port}/mqtt`, { username: d.id, password: d.key, protocolVersion: 5 });
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.ok(flood.filter((s) => !s.closed).length <= 20, 'still no more than the cap open');
    // Authenticated connections do not count: the flood did not close them.
    assert.equal(mq.connected && mqWs.connected, true);
    assert.equal((await ws.request({ method: 'put', status: { sensor: 't', value: 3 } })).ok, true);
    assert.ok(logs.entries.some((e) => e.msg?.includes('max-unauth-per-address')), 'logged, naming the setting');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /iotc_errors_total\{code="E_LIMIT"\} [1-9]/);
    for (const s of flood) s.socket.destroy();
    await Promise.all([ws.close(), mq.endAsync(), mqWs.endAsync()]);
  });
});

describe('behind a trusted proxy', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ trustProxy: true, maxUnauthPerAddress: 3, handshakeTimeout: 2000 });
  });
  after(() => server.stop());

  test('the proxy\'s own connections are not counted; upgrades count by the address the proxy forwarded', async () => {
    // Many connections from the proxy: timed, never closed for their number.
    const pool = await Promise.all(Array.from({ length: 10 }, () => rawSocket(server.port)));
    const from = (addr: string) => rawSocket(server.port, UPGRADE('/mqtt', `X-Forwarded-For: ${addr}\r\n`));
    const a = [];
    for (let i = 0; i < 5; i++) a.push(await from('203.0.113.7'));
    const b = await from('198.51.100.9');
    await sleep(300);
    assert.equal(pool.filter((s) => s.closed).length, 0, 'no pooled proxy connection closed for being many');
    assert.deepEqual(a.map((s) => s.closed), [true, true, false, false, false], 'the oldest two of one forwarded address closed');
    assert.equal(b.closed, false, 'another forwarded address is unaffected');
    for (const s of [...pool, ...a, b]) s.socket.destroy();
  });
});

describe('refused WebSocket upgrades', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ handshakeTimeout: 5000 });
  });
  after(() => server.stop());

  test('a peer that is refused and never answers the close frame is dropped within seconds', async () => {
    const wrongKey = await rawSocket(server.port, UPGRADE('/ws?device=AAAAAAAAAAAAAAAAAAAA&key=WRONGKEYWRONGKE'));
    const noKey = await rawSocket(server.port, UPGRADE('/ws'));
    for (const [name, s] of Object.entries({ wrongKey, noKey })) {
      const ms = await s.closedAfter;
      assert.match(s.received.toString(), /^HTTP\/1.1 101/, `${name}: refused inside the WebSocket, where a browser can read why`);
      assert.ok(ms < 3500, `${name} closed after ${ms} ms`);
    }
  });
});

describe('the handshake guard itself', () => {
  test('at one handshake per address, each newcomer closes the one before; a settled one holds nothing', () => {
    const guard = new HandshakeGuard({ handshakeTimeout: 60_000, maxUnauthPerAddress: 1 }, createLogger('silent'));
    const dropped: string[] = [];
    try {
      const a = guard.admit('10.0.0.1', () => dropped.push('a'));
      guard.admit('10.0.0.1', () => dropped.push('b'));
      assert.deepEqual(dropped, ['a']);
      guard.admit('10.0.0.1', () => dropped.push('c'));
      assert.deepEqual(dropped, ['a', 'b'], 'the second is counted too, and closed by the third');
      assert.equal(guard.pending, 1);
      a.settle();
      const d = guard.admit('10.0.0.2', () => dropped.push('d'));
      d.settle();
      guard.admit('10.0.0.2', () => dropped.push('e'));
      assert.deepEqual(dropped, ['a', 'b'], 'a settled handshake is not closed by a newer one');
      assert.equal(guard.pending, 2);
    } finally {
      guard.close();
    }
  });
});
