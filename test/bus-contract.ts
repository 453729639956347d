/**
 * The Bus contract: what every bus implementation must do, written once and run against each
 * (test/bus.test.ts). Each test gets its own network of nodes from the fixture.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, test } from 'node:test';
import type { Bus, BusEvent } from '../src/bus/types.js';
import type { StoredReading } from '../src/store/types.js';
import { sleep, waitFor } from './helpers.js';

/** Nodes connected to one network (one in-process hub, one NATS server...). */
export interface BusNetwork {
  node(): Promise<Bus>;
  /** Closes every node still open and whatever the network needs. */
  close(): Promise<void>;
}

export interface BusFixture {
  network(): Promise<BusNetwork>;
}

/** A node with everything it received, in order. */
class Node {
  readonly got: BusEvent[] = [];
  constructor(readonly bus: Bus) {
    bus.onEvent((e) => this.got.push(e));
  }
  /** Subscribes and waits until the subscription is in effect. */
  async want(...deviceIds: string[]): Promise<void> {
    for (const id of deviceIds) this.bus.subscribe(id);
    await this.bus.ping();
  }
  of(deviceId: string): BusEvent[] {
    return this.got.filter((e) => e.deviceId === deviceId);
  }
  readingsOf(deviceId: string): StoredReading[] {
    return this.of(deviceId).flatMap((e) => (e.type === 'readings' ? e.readings : []));
  }
}

const newDeviceId = () => crypto.randomBytes(10).toString('hex').toUpperCase();

let seq = 0;
function readings(deviceId: string, n: number, value: (i: number) => unknown = (i) => i): StoredReading[] {
  return Array.from({ length: n }, (_, i) => ({
    seq: ++seq, deviceId, sensor: 'temp', value: value(i), side: 'device' as const, time: 1_700_000_000_000 + i,
  }));
}

export function busContract(name: string, fixture: BusFixture, opts: { skip?: boolean | string } = {}): void {
  async function withNetwork(fn: (net: BusNetwork, node: () => Promise<Node>) => Promise<void>): Promise<void> {
    const net = await fixture.network();
    try {
      await fn(net, async () => new Node(await net.node()));
    } finally {
      await net.close();
    }
  }

  /**
   * Proves a negative: `from` publishes a marker on a device `to` listens to, and once the marker is in,
   * anything else sent before it would have arrived too; a short wait covers buses that do not order across devices.
   */
  async function settle(from: Node, to: Node): Promise<void> {
    const marker = newDeviceId();
    await to.want(marker);
    await from.bus.publish({ type: 'device', deviceId: marker, kind: 'rotated' });
    await waitFor(() => to.of(marker).length > 0, 5000, 'marker event');
    await sleep(100);
    to.bus.unsubscribe(marker);
  }

  describe(`Bus contract: ${name}`, { skip: opts.skip }, () => {
    test('events reach the nodes subscribed to the device, intact, and no other node', () =>
      withNetwork(async (_net, node) => {
        const [a, b, c, d] = [await node(), await node(), await node(), await node()];
        const dev = newDeviceId();
        await b.want(dev);
        await c.want(dev);
        await d.want(newDeviceId());
        const sent = readings(dev, 3, (i) => [{ nested: { n: i, big: 1e300, s: 'ünïcödé ✓ 😀 "q"' } }, null, true, 0.1][i]);
        await a.bus.publish({ type: 'readings', deviceId: dev, readings: sent });
        await waitFor(() => b.of(dev).length > 0 && c.of(dev).length > 0, 5000, 'delivery');
        assert.deepEqual(b.readingsOf(dev), sent);
        assert.deepEqual(c.readingsOf(dev), sent);
        await settle(a, d);
        assert.deepEqual(d.of(dev), [], 'a node without interest in the device gets nothing');
        assert.deepEqual(a.of(dev), []);
      }));

    test('the received event is a copy: changing it changes nothing for the sender or other nodes', () =>
      withNetwork(async (_net, node) => {
        const [a, b, c] = [await node(), await node(), await node()];
        const dev = newDeviceId();
        await b.want(dev);
        await c.want(dev);
        const sent = readings(dev, 1, () => ({ on: true }));
        b.bus.onEvent((e) => {
          if (e.type === 'readings') (e.readings[0].value as { on: boolean }).on = false;
          b.got.push(e);
        });
        await a.bus.publish({ type: 'readings', deviceId: dev, readings: sent });
        await waitFor(() => b.of(dev).length > 0 && c.of(dev).length > 0, 5000, 'delivery');
        assert.deepEqual(sent[0].value, { on: true });
        assert.deepEqual(c.readingsOf(dev)[0].value, { on: true });
      }));

    test('a node never receives its own publications', () =>
      withNetwork(async (_net, node) => {
        const [a, b] = [await node(), await node()];
        const dev = newDeviceId();
        await a.want(dev);
        await b.want(dev);
        await a.bus.publish({ type: 'readings', deviceId: dev, readings: readings(dev, 1) });
        await waitFor(() => b.of(dev).length === 1, 5000, 'delivery to the other node');
        await settle(b, a);
        assert.deepEqual(a.of(dev), [], 'no echo');
        // ...while it does receive the same device's events from others.
        await b.bus.publish({ type: 'readings', deviceId: dev, readings: readings(dev, 1) });
        await waitFor(() => a.of(dev).length === 1, 5000, 'delivery from the other node');
        assert.equal(b.of(dev).length, 1);
      }));

    test("one device's events arrive in the order they were published, also interleaved with another device's", () =>
      withNetwork(async (_net, node) => {
        const [a, b] = [await node(), await node()];
        const [x, y] = [newDeviceId(), newDeviceId()];
        await b.want(x, y);
        const sentX: StoredReading[] = [];
        const sentY: StoredReading[] = [];
        for (let i = 0; i < 300; i++) {
          const rx = readings(x, 1 + (i % 3), () => i);
          sentX.push(...rx);
          void a.bus.publish({ type: 'readings', deviceId: x, readings: rx });
          if (i % 2 === 0) {
            const ry = readings(y, 1, () => i);
            sentY.push(...ry);
            void a.bus.publish({ type: 'readings', deviceId: y, readings: ry });
          }
        }
        await a.bus.ping();
        await waitFor(() => b.readingsOf(x).length === sentX.length && b.readingsOf(y).length === sentY.length, 10_000, 'all events');
        assert.deepEqual(b.readingsOf(x).map((r) => r.seq), sentX.map((r) => r.seq));
        assert.deepEqual(b.readingsOf(y).map((r) => r.seq), sentY.map((r) => r.seq));
      }));

    test('a large run of readings arrives complete and in order', () =>
      withNetwork(async (_net, node) => {
        const [a, b] = [await node(), await node()];
        const dev = newDeviceId();
        await b.want(dev);
        const big = 'x'.repeat(1000);
        const sent = readings(dev, 3000, (i) => `${i}:${big}`);
        await a.bus.publish({ type: 'readings', deviceId: dev, readings: sent });
        await waitFor(() => b.readingsOf(dev).length >= sent.length, 10_000, 'all readings');
        assert.deepEqual(b.readingsOf(dev).map((r) => r.value), sent.map((r) => r.value));
      }));

    test('device events (rotation, deletion) reach subscribed nodes', () =>
      withNetwork(async (_net, node) => {
        const [a, b] = [await node(), await node()];
        const dev = newDeviceId();
        await b.want(dev);
        await a.bus.publish({ type: 'device', deviceId: dev, kind: 'rotated' });
        await a.bus.publish({ type: 'device', deviceId: dev, kind: 'deleted' });
        await waitFor(() => b.of(dev).length === 2, 5000, 'device events');
        assert.deepEqual(b.of(dev), [
          { type: 'device', deviceId: dev, kind: 'rotated' },
          { type: 'device', deviceId: dev, kind: 'deleted' },
        ]);
      }));

    test('call, reply and state events reach the nodes subscribed to the device, intact and in order', () =>
      withNetwork(async (_net, node) => {
        const [a, b, c] = [await node(), await node(), await node()];
        const dev = newDeviceId();
        await b.want(dev);
        await c.want(newDeviceId());
        const call = 'c_abcdefghijklmnop';
        const sent: BusEvent[] = [
          { type: 'call', deviceId: dev, call: { call, method: 'reboot', params: { delay: 5, s: 'ünï ✓' }, time: 1_700_000_000_000, expires: 1_700_000_005_000, persistent: false } },
          { type: 'reply', deviceId: dev, call, delivered: true },
          { type: 'reply', deviceId: dev, call, result: { rebooting: true } },
          { type: 'reply', deviceId: dev, call, error: 'busy' },
          { type: 'state', deviceId: dev, call, state: 'answered', result: null },
          { type: 'state', deviceId: dev, call, state: 'expired' },
        ];
        for (const e of sent) await a.bus.publish(e);
        await waitFor(() => b.of(dev).length === sent.length, 5000, 'call events');
        assert.deepEqual(b.of(dev), sent);
        await settle(a, c);
        assert.deepEqual(c.of(dev), [], 'a node without interest in the device gets no call events');
      }));

    test('subscribing twice is one interest: no double delivery, and one unsubscribe stops delivery', () =>
      withNetwork(async (_net, node) => {
        const [a, b] = [await node(), await node()];
        const dev = newDeviceId();
        await b.want(dev, dev);
        await a.bus.publish({ type: 'readings', deviceId: dev, readings: readings(dev, 1) });
        await waitFor(() => b.of(dev).length > 0, 5000, 'delivery');
        await settle(a, b);
        assert.equal(b.of(dev).length, 1, 'delivered once');
        b.bus.unsubscribe(dev);
        await b.bus.ping();
        await a.bus.publish({ type: 'readings', deviceId: dev, readings: readings(dev, 1) });
        await settle(a, b);
        assert.equal(b.of(dev).length, 1, 'nothing after unsubscribe');
        b.bus.unsubscribe(dev); // harmless when not subscribed
        await b.want(dev);
        await a.bus.publish({ type: 'readings', deviceId: dev, readings: readings(dev, 1) });
        await waitFor(() => b.of(dev).length === 2, 5000, 'delivery after subscribing again');
      }));

    test('a closed node receives nothing and refuses to publish; the others carry on', () =>
      withNetwork(async (_net, node) => {
        const [a, b, c] = [await node(), await node(), await node()];
        const dev = newDeviceId();
        await b.want(dev);
        await c.want(dev);
        await b.bus.close();
        await b.bus.close(); // twice is fine
        await a.bus.publish({ type: 'readings', deviceId: dev, readings: readings(dev, 1) });
        await waitFor(() => c.of(dev).length === 1, 5000, 'delivery to the open node');
        await settle(a, c);
        assert.deepEqual(b.got, []);
        await assert.rejects(b.bus.publish({ type: 'readings', deviceId: dev, readings: readings(dev, 1) }));
        await assert.rejects(b.bus.ping());
        await a.bus.ping();
      }));
  });
}
