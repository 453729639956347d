/**
 * The MQTT door's own paths around the broker: QoS 0 publishes written straight onto a connection's wire (corked
 * for the turn), and the packets one read brings passed to the broker in one piece. Real sockets, real clients.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { freePort, makeDevice, startTestServer, waitFor } from './helpers.js';
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
