/**
 * Issue 9, finding 1: one account's MQTT subscriptions must not slow the hub for anyone else.
 * The attack: a connection subscribes to thousands of filters of its own device, then its own client side
 * feeds it batches of readings; meanwhile another account writes and /healthz is polled.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freePort, LogCapture, makeDevice, sleep, startTestServer, TestClient } from './helpers.js';
import type { TestServer } from './helpers.js';
import type { MqttClient } from 'mqtt';
import { closedWith, Inbox, mqttConnect } from './mqtt-clients.js';

/** Puts with ids from a second account and /healthz probes, for `ms`; returns their latencies. */
async function victimWhile(server: TestServer, ms: number): Promise<{ acks: number[]; sent: number; health: number[]; failures: string[] }> {
  const v = await makeDevice(server, 'Victim');
  const victim = await TestClient.connect(server.wsUrl, v.id, v.key, 'device');
  const acks: number[] = [];
  const health: number[] = [];
  const failures: string[] = [];
  let sent = 0;
  const until = Date.now() + ms;
  const puts = (async () => {
    const pending: Promise<void>[] = [];
    for (let i = 0; Date.now() < until; i++) {
      const t0 = Date.now();
      sent++;
      pending.push(victim.request({ method: 'put', status: { sensor: 'temp', value: i } }, 5000).then(
        (reply) => void (reply.ok ? acks.push(Date.now() - t0) : failures.push(JSON.stringify(reply))),
        (err: Error) => void failures.push(err.message),
      ));
      await sleep(20);
    }
    await Promise.all(pending);
  })();
  const probes = (async () => {
    while (Date.now() < until) {
      const t0 = Date.now();
      try {
        const res = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(3000) });
        assert.equal(res.status, 200);
        health.push(Date.now() - t0);
      } catch (err) {
        failures.push(`healthz: ${(err as Error).message}`);
      }
      await sleep(100);
    }
  })();
  await Promise.all([puts, probes]);
  await victim.close();
  return { acks, sent, health, failures };
}

/** The SUBACK's return codes, refused filters included (mqtt.js rejects a SUBACK with any refusal). */
async function suback(c: MqttClient, filters: string | string[], qos: 0 | 1): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filters, { qos })).map((g) => g.qos);
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw err;
    return granted;
  }
}

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))];

describe('MQTT subscriptions', () => {
  let server: TestServer;
  let mqttUrl: string;
  const logs = new LogCapture();
  before(async () => {
    server = await startTestServer({ mqttPort: await freePort() }, undefined, { logs });
    mqttUrl = `mqtt://127.0.0.1:${server.mqttPort}`;
  });
  after(() => server.stop());

  test('thousands of filters fed by their own client side leave another account\'s puts and /healthz prompt', async () => {
    const a = await makeDevice(server, 'Attacker');
    const sub = await mqttConnect(mqttUrl, { username: a.id, password: a.key, protocolVersion: 4 });
    const inbox = new Inbox(sub);
    const granted: number[] = [];
    for (let p = 0; p < 10; p++) {
      const filters = Array.from({ length: 1500 }, (_, i) => `devices/${a.id}/f${p * 1500 + i}`);
      granted.push(...(await suback(sub, filters, 0)));
    }
    assert.equal(granted.length, 15_000);
    assert.equal(granted.filter((q) => q === 0).length, 100, 'the first 100 filters (the default cap) are granted');
    assert.ok(granted.slice(100).every((q) => q === 128), 'every filter over the cap is refused (0x80)');

    const feeder = await TestClient.connect(server.wsUrl, a.id, a.key, 'client');
    let feeding = true;
    let batches = 0;
    const feed = (async () => {
      while (feeding) {
        feeder.send({ method: 'put', status: Array.from({ length: 50 }, (_, i) => ({ sensor: `f${i}`, value: batches })) });
        batches++;
        await sleep(10);
      }
    })();
    const result = await victimWhile(server, 3000);
    feeding = false;
    await feed;
    assert.deepEqual(result.failures, []);
    assert.equal(result.acks.length, result.sent, 'every put of the other account acknowledged');
    assert.ok(p99(result.acks) < 500, `victim p99 ack ${p99(result.acks)} ms`);
    assert.ok(Math.max(...result.health) < 1000, `/healthz took up to ${Math.max(...result.health)} ms`);
    assert.ok(batches >= 30, `the attacker fed ${batches} batches`);
    assert.ok(inbox.messages.length > 0, 'the granted filters still deliver');
    assert.ok(inbox.messages.every((m) => /\/f\d+$/.test(m.topic) && Number(m.topic.split('/f')[1]) < 100));
    assert.ok(logs.entries.some((e) => e.msg?.includes('subscription refused') && e.msg.includes('mqtt-max-subscriptions')), 'the refusal is logged, naming the setting');
    await feeder.close();
    await sub.endAsync();
  });

  test('MQTT 5: filters over the cap get SUBACK 0x97 (quota exceeded); unsubscribing frees room', async () => {
    const a = await makeDevice(server);
    const c = await mqttConnect(mqttUrl, { username: a.id, password: a.key, protocolVersion: 5 });
    const first = Array.from({ length: 99 }, (_, i) => `devices/${a.id}/s${i}`);
    assert.ok((await suback(c, first, 1)).every((g) => g === 1));
    // Subscribing again to a filter already held takes no new room.
    assert.deepEqual(await suback(c, first[0], 0), [0]);
    assert.deepEqual(await suback(c, [`devices/${a.id}/+`, `devices/${a.id}/x`, `devices/${a.id}/y`], 1), [1, 0x97, 0x97]);
    await c.unsubscribeAsync([first[1], first[2]]);
    assert.deepEqual(await suback(c, [`devices/${a.id}/x`, `devices/${a.id}/y`, `devices/${a.id}/z`], 1), [1, 1, 0x97]);
    const told = await new Promise<any>((resolve) => c.subscribe(`devices/${a.id}/w`, { qos: 0 }, (_err, _granted, packet) => resolve(packet)));
    assert.match(told?.properties?.reasonString ?? '', /at most 100 subscriptions per connection \(--mqtt-max-subscriptions\)/);
    // A filter outside the device is still "not authorized", not a quota matter.
    assert.deepEqual(await suback(c, ['devices/+/temp'], 1), [0x87]);
    assert.equal(c.connected, true);
    await c.endAsync();
  });

  test('SUBSCRIBE packets count against the message rate: a flood of them closes the connection (MQTT 5: 0x96)', async () => {
    const a = await makeDevice(server);
    const c = await mqttConnect(mqttUrl, { username: a.id, password: a.key, protocolVersion: 5 });
    c.on('error', () => {});
    const closed = closedWith(c, 10_000);
    // 50 filters a packet (the same ones again: a filter held is granted again, and costs again).
    const filters = Array.from({ length: 50 }, (_, i) => `devices/${a.id}/r${i}`);
    for (let i = 0; i < 40 && c.connected; i++) c.subscribe(filters, { qos: 0 }, () => {});
    assert.equal((await closed).reasonCode, 0x96);
    assert.ok(logs.entries.some((e) => e.msg?.includes('subscriptions over the rate limit (--rate-limit')));
  });

  test('a persistent session keeps only the filters it was granted, and the cap holds after it is restored', async () => {
    const a = await makeDevice(server);
    const opts = { username: a.id, password: a.key, protocolVersion: 4 as const, clean: false, clientId: 'keeper' };
    const first = await mqttConnect(mqttUrl, opts);
    const granted = await suback(first, Array.from({ length: 150 }, (_, i) => `devices/${a.id}/k${i}`), 1);
    assert.equal(granted.filter((g) => g === 1).length, 100);
    await first.unsubscribeAsync(Array.from({ length: 10 }, (_, i) => `devices/${a.id}/k${i}`));
    await first.endAsync();
    const again = await mqttConnect(mqttUrl, opts);
    const inbox = new Inbox(again);
    await server.hub.relay.put(a.id, 'client', [{ sensor: 'k120', value: 'refused' }, { sensor: 'k105', value: 'refused' }, { sensor: 'k5', value: 'dropped' }, { sensor: 'k15', value: 'granted' }]);
    const m = await inbox.next();
    assert.deepEqual([m.topic, m.payload], [`devices/${a.id}/k15`, '"granted"']);
    await sleep(100);
    assert.equal(inbox.unread, 0, 'filters refused or given up before are not restored');
    // 90 restored: room for exactly 10 more.
    const more = await suback(again, Array.from({ length: 11 }, (_, i) => `devices/${a.id}/new${i}`), 1);
    assert.deepEqual(more, [...Array(10).fill(1), 128]);
    await again.endAsync();
  });

  test('delivery follows the filters held: exact, + and #, highest QoS of overlapping filters, none after unsubscribe', async () => {
    const a = await makeDevice(server);
    const c = await mqttConnect(mqttUrl, { username: a.id, password: a.key, protocolVersion: 4 });
    const inbox = new Inbox(c);
    await c.subscribeAsync({ [`devices/${a.id}/room/+/temp`]: { qos: 0 }, [`devices/${a.id}/room/kitchen/temp`]: { qos: 1 }, [`devices/${a.id}/door/#`]: { qos: 0 } });
    const put = (sensor: string, value: unknown) => server.hub.relay.put(a.id, 'client', [{ sensor, value }]);
    await put('room/kitchen/temp', 1);
    await put('room/hall/temp', 2);
    await put('room/hall/hum', 3);
    await put('door/front/open', true);
    await put('other', 4);
    const got = [await inbox.next(), await inbox.next(), await inbox.next()];
    assert.deepEqual(got.map((m) => [m.topic.split('/').slice(2).join('/'), m.payload, m.qos]), [
      ['room/kitchen/temp', '1', 1],
      ['room/hall/temp', '2', 0],
      ['door/front/open', 'true', 0],
    ]);
    await c.unsubscribeAsync(`devices/${a.id}/door/#`);
    await put('door/front/open', false);
    await put('room/hall/temp', 5);
    assert.equal((await inbox.next()).payload, '5');
    await sleep(100);
    assert.equal(inbox.unread, 0, 'nothing for the filter given up');
    await c.endAsync();
  });
});

describe('retained values on SUBSCRIBE', () => {
  let server: TestServer;
  let mqttUrl: string;
  before(async () => {
    // A cap raised far above the default, so the cost of matching itself is what is measured.
    server = await startTestServer({ mqttPort: await freePort(), mqttMaxSubscriptions: 5000, rateBurst: 10_000, maxSensors: 10_000 });
    mqttUrl = `mqtt://127.0.0.1:${server.mqttPort}`;
  });
  after(() => server.stop());

  test('1 000 filters against 5 000 sensors cost the sensors matched, not filters × sensors', async () => {
    const a = await makeDevice(server);
    const sensors = Array.from({ length: 5000 }, (_, i) => ({ sensor: `s${i}`, value: i }));
    await server.hub.relay.put(a.id, 'client', sensors);
    const c = await mqttConnect(mqttUrl, { username: a.id, password: a.key, protocolVersion: 4 });
    const inbox = new Inbox(c);
    const filters = [...Array.from({ length: 997 }, (_, i) => `devices/${a.id}/none${i}`), `devices/${a.id}/s7`, `devices/${a.id}/s42`, `devices/${a.id}/s4999`];
    const t0 = Date.now();
    await c.subscribeAsync(filters, { qos: 1 });
    const got = [await inbox.next(), await inbox.next(), await inbox.next()].map((m) => [m.topic.split('/')[2], m.payload, m.retain]).sort();
    const took = Date.now() - t0;
    assert.deepEqual(got, [['s42', '42', true], ['s4999', '4999', true], ['s7', '7', true]]);
    assert.ok(took < 1000, `subscribe and retained values took ${took} ms`);
    const wild = Date.now();
    await c.subscribeAsync(`devices/${a.id}/+`, { qos: 0 });
    let n = 0;
    while (n < 5000 - 3) {
      await inbox.next();
      n++;
    }
    assert.ok(Date.now() - wild < 3000, `a wildcard over 5 000 sensors took ${Date.now() - wild} ms`);
    await sleep(100);
    assert.equal(inbox.unread, 0, 'each sensor sent once; the three already sent are not repeated');
    await c.endAsync();
  });
});
