/**
 * The MQTT door's own paths around the broker: QoS 0 publishes written straight onto a connection's wire (corked
 * for the turn), the packets one read brings passed to the broker in one piece, and 3.1.1 publishes taken off
 * the wire before the broker (fast-publish.ts). Real sockets, real clients.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { TestClient, freePort, makeDevice, startTestServer, waitFor } from './helpers.js';
import type { TestServer } from './helpers.js';
import { Inbox, mqttConnect } from './mqtt-clients.js';

let server: TestServer;
let url: string;

before(async () => {
  server = await startTestServer({ mqttPort: await freePort(), rateLimit: 0 });
  url = `mqtt://127.0.0.1:${server.mqttPort}`;
});
after(() => server.stop());

for (const protocolVersion of [4, 5] as const) {
  test(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}: a burst of QoS 0 values reaches a QoS 0 subscriber whole, once each and in order, after its retained value`, async () => {
    const d = await makeDevice(server);
    const device = await mqttConnect(url, { username: d.id, password: d.key, protocolVersion });
    const app = await mqttConnect(url, { username: `${d.id}:client`, password: d.key, protocolVersion });
    try {
      await device.publishAsync(`devices/${d.id}/n`, '0', { qos: 1 });
      const inbox = new Inbox(app);
      await app.subscribeAsync(`devices/${d.id}/+`, { qos: 0 });
      const retained = await inbox.next();
      assert.deepEqual([retained.payload, retained.retain, retained.qos], ['0', true, 0]);
      // Many in one turn: the commit delivers them together, and the wire writes them together.
      for (let i = 1; i <= 200; i++) device.publish(`devices/${d.id}/n`, String(i), { qos: 0 });
      await device.publishAsync(`devices/${d.id}/n`, '201', { qos: 1 });
      const got: number[] = [];
      for (let i = 1; i <= 201; i++) {
        const m = await inbox.next();
        assert.equal(m.topic, `devices/${d.id}/n`);
        assert.equal(m.retain, false);
        got.push(Number(m.payload));
      }
      assert.deepEqual(got, Array.from({ length: 201 }, (_, i) => i + 1));
    } finally {
      await device.endAsync(true);
      await app.endAsync(true);
    }
  });
}

test('a CONNECT and the publishes after it in one TCP write are each taken, in order; a packet over the limit after them closes the connection', async () => {
  const d = await makeDevice(server);
  const packets = [
    mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'burst', keepalive: 30, username: d.id, password: Buffer.from(d.key) } as mqttPacket.IConnectPacket),
    ...Array.from({ length: 20 }, (_, i) => mqttPacket.generate({ cmd: 'publish', topic: `devices/${d.id}/seq`, payload: String(i + 1), qos: 1, messageId: i + 1, retain: false, dup: false } as mqttPacket.IPublishPacket)),
  ];
  const socket = net.connect(server.mqttPort!, '127.0.0.1');
  const acks: number[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (p) => {
    if (p.cmd === 'puback') acks.push(p.messageId!);
  });
  socket.on('data', (b) => parser.parse(b));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(Buffer.concat(packets));
  await waitFor(() => acks.length === 20, 5000, 'every publish acknowledged');
  assert.deepEqual(acks, Array.from({ length: 20 }, (_, i) => i + 1));
  const history = await server.hub.relay.history(d.id, 'seq', { limit: 100 });
  assert.deepEqual(history.map((r) => r.value).sort((a, b) => Number(a) - Number(b)), Array.from({ length: 20 }, (_, i) => i + 1));
  // A header announcing more than the limit: refused from its first bytes, never buffered.
  socket.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
  await closed;
});

/** A 3.1.1 connection on a bare socket, so the test decides every byte (no client library pinging on its own). */
class RawMqtt {
  readonly acks: number[] = [];
  readonly received: mqttPacket.Packet[] = [];
  readonly closed: Promise<void>;
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });

  private constructor(readonly socket: net.Socket) {
    this.parser.on('packet', (p) => {
      this.received.push(p);
      if (p.cmd === 'puback') this.acks.push(p.messageId!);
    });
    socket.on('data', (b) => this.parser.parse(b));
    this.closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  }

  static async open(port: number): Promise<RawMqtt> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawMqtt(socket);
  }

  /** Opened, logged in as the device and past its CONNACK. */
  static async connected(port: number, d: { id: string; key: string }, extra: Partial<mqttPacket.IConnectPacket> = {}): Promise<RawMqtt> {
    const raw = await RawMqtt.open(port);
    raw.socket.write(RawMqtt.connectPacket(d, extra));
    await raw.connack();
    return raw;
  }

  static connectPacket(d: { id: string; key: string }, extra: Partial<mqttPacket.IConnectPacket> = {}): Buffer {
    return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `raw-${Math.random()}`, keepalive: 30, username: d.id, password: Buffer.from(d.key), ...extra } as mqttPacket.IConnectPacket);
  }

  static publishPacket(topic: string, payload: string, messageId?: number): Buffer {
    return mqttPacket.generate({ cmd: 'publish', topic, payload, qos: messageId === undefined ? 0 : 1, messageId, retain: false, dup: false } as mqttPacket.IPublishPacket);
  }

  get open(): boolean {
    return !this.socket.destroyed;
  }

  async connack(): Promise<void> {
    await waitFor(() => this.received.some((p) => p.cmd === 'connack'), 5000, 'CONNACK');
    const connack = this.received.find((p) => p.cmd === 'connack') as mqttPacket.IConnackPacket;
    assert.equal(connack.returnCode, 0);
  }
}

const seqNumbers = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

test('publishes sent before the CONNACK and those sent right after it are stored and acknowledged in the order sent', async () => {
  const d = await makeDevice(server);
  const raw = await RawMqtt.open(server.mqttPort!);
  try {
    const topic = `devices/${d.id}/order`;
    raw.socket.write(Buffer.concat([RawMqtt.connectPacket(d), ...seqNumbers(30).map((i) => RawMqtt.publishPacket(topic, String(i), i))]));
    await raw.connack();
    // Written the moment the CONNACK arrives, while the broker may still hold those sent with the CONNECT.
    for (let i = 31; i <= 90; i++) raw.socket.write(RawMqtt.publishPacket(topic, String(i), i));
    await waitFor(() => raw.acks.length === 90, 5000, 'every publish acknowledged');
    assert.deepEqual(raw.acks, seqNumbers(90));
    const history = await server.hub.relay.history(d.id, 'order', { limit: 100 });
    assert.deepEqual(history.sort((a, b) => a.seq - b.seq).map((r) => r.value), seqNumbers(90));
  } finally {
    raw.socket.destroy();
  }
});

test('a connection that only publishes, never pinging, is kept past 1.5 × its keep-alive', async () => {
  const d = await makeDevice(server);
  const raw = await RawMqtt.connected(server.mqttPort!, d, { keepalive: 1 });
  try {
    // Every publish counts as the client being alive, as every packet does (MQTT-3.1.2-24): 3.5 s at a 1 s keep-alive.
    for (let i = 1; i <= 14; i++) {
      raw.socket.write(RawMqtt.publishPacket(`devices/${d.id}/alive`, String(i), i));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.equal(raw.open, true, 'still connected');
    await waitFor(() => raw.acks.length === 14, 5000, 'every publish acknowledged');
    // Silent from here: the keep-alive still ends the connection.
    const started = Date.now();
    await raw.closed;
    assert.ok(Date.now() - started < 5000, 'closed for silence');
  } finally {
    raw.socket.destroy();
  }
});

test('a flood of QoS 1 publishes in one write, more than are held waiting for a commit, is acknowledged whole and in order', async () => {
  const d = await makeDevice(server);
  const raw = await RawMqtt.connected(server.mqttPort!, d);
  try {
    const n = 3000;
    raw.socket.write(Buffer.concat(seqNumbers(n).map((i) => RawMqtt.publishPacket(`devices/${d.id}/flood`, String(i), ((i - 1) % 65535) + 1))));
    await waitFor(() => raw.acks.length === n, 15_000, 'every publish acknowledged');
    assert.deepEqual(raw.acks, seqNumbers(n));
    assert.equal((await server.hub.relay.gets(d.id, 'flood'))?.value, n);
    // Reading went on after the flood: the connection still answers.
    raw.socket.write(mqttPacket.generate({ cmd: 'pingreq' }));
    await waitFor(() => raw.received.some((p) => p.cmd === 'pingresp'), 5000, 'PINGRESP');
  } finally {
    raw.socket.destroy();
  }
});

test('a publish refused on the way in closes a 3.1.1 connection, stores nothing, and its will is published', async () => {
  const d = await makeDevice(server);
  const other = await makeDevice(server);
  const app = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
  const raw = await RawMqtt.connected(server.mqttPort!, d, { will: { topic: `devices/${d.id}/status`, payload: Buffer.from('gone'), qos: 1, retain: false } });
  try {
    raw.socket.write(RawMqtt.publishPacket(`devices/${d.id}/fine`, '1', 1));
    await waitFor(() => raw.acks.length === 1, 5000, 'the first publish acknowledged');
    raw.socket.write(RawMqtt.publishPacket(`devices/${other.id}/x`, '2', 2));
    await raw.closed;
    assert.deepEqual(raw.acks, [1]);
    assert.equal(await server.hub.relay.gets(other.id, 'x'), null);
    const readings = [await app.reading(), await app.reading()];
    assert.deepEqual(readings.map((r) => [r.sensor, r.value]), [['fine', 1], ['status', 'gone']]);
  } finally {
    raw.socket.destroy();
    await app.close();
  }
});

test('publishes are acknowledged in the order sent, and a refused one ends the connection only after those before it are', async () => {
  const d = await makeDevice(server);
  const other = await makeDevice(server);
  const raw = await RawMqtt.connected(server.mqttPort!, d);
  try {
    // A discovery announcement is answered at once, a reading after its commit: the PUBACKs still come in order.
    // Then, in the same write, a publish to another device: refused, after the four before it are acknowledged.
    raw.socket.write(Buffer.concat([
      RawMqtt.publishPacket(`devices/${d.id}/a`, '1', 1),
      RawMqtt.publishPacket('homeassistant/sensor/x/config', '{}', 2),
      RawMqtt.publishPacket(`devices/${d.id}/a`, '3', 3),
      RawMqtt.publishPacket('tasmota/discovery/x/config', '{}', 4),
      RawMqtt.publishPacket(`devices/${other.id}/x`, '5', 5),
      RawMqtt.publishPacket(`devices/${d.id}/after`, '6', 6),
    ]));
    await raw.closed;
    assert.deepEqual(raw.acks, [1, 2, 3, 4]);
    assert.equal((await server.hub.relay.gets(d.id, 'a'))?.value, 3);
    assert.equal(await server.hub.relay.gets(other.id, 'x'), null);
    assert.equal(await server.hub.relay.gets(d.id, 'after'), null, 'nothing after the refused publish is handled');
  } finally {
    raw.socket.destroy();
  }
});

test('a packet for the broker after publishes still waiting for their commit is handled after them', async () => {
  const d = await makeDevice(server);
  const raw = await RawMqtt.connected(server.mqttPort!, d);
  try {
    // A QoS 2 publish is the broker's: it is stored after the QoS 1 ones before it, and PINGREQ is answered.
    raw.socket.write(Buffer.concat([
      ...seqNumbers(50).map((i) => RawMqtt.publishPacket(`devices/${d.id}/mixed`, String(i), i)),
      mqttPacket.generate({ cmd: 'publish', topic: `devices/${d.id}/mixed`, payload: '51', qos: 2, messageId: 51, retain: false, dup: false } as mqttPacket.IPublishPacket),
      mqttPacket.generate({ cmd: 'pingreq' }),
      ...seqNumbers(10, 52).map((i) => RawMqtt.publishPacket(`devices/${d.id}/mixed`, String(i), i)),
    ]));
    await waitFor(() => raw.acks.length === 60 && raw.received.some((p) => p.cmd === 'pubrec'), 5000, 'every publish answered');
    assert.deepEqual(raw.acks, [...seqNumbers(50), ...seqNumbers(10, 52)]);
    const history = await server.hub.relay.history(d.id, 'mixed', { limit: 100 });
    assert.deepEqual(history.sort((a, b) => a.seq - b.seq).map((r) => r.value), seqNumbers(61));
    assert.ok(raw.received.some((p) => p.cmd === 'pingresp'));
  } finally {
    raw.socket.destroy();
  }
});

test('publishes the broker refuses for their form still close the connection: a wildcard in the topic, QoS 3', async () => {
  const d = await makeDevice(server);
  for (const bad of [RawMqtt.publishPacket(`devices/${d.id}/+`, '1', 1), Buffer.from([0x36, 0x04, 0x00, 0x01, 0x61, 0x31])]) {
    const raw = await RawMqtt.connected(server.mqttPort!, d);
    raw.socket.write(bad);
    await raw.closed;
    assert.deepEqual(raw.acks, []);
  }
});
