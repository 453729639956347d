/**
 * Replies are bounded and counted: a client that stops reading and asks for history again and again once
 * grew the server by gigabytes. History and sensors replies are cut at max-reply and say where to go on;
 * a connection's reads run one at a time, each once its earlier replies have left.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { IotcError } from '../src/core/errors.js';
import { MAX_WAITING_READS, ProtocolSession } from '../src/core/protocol.js';
import type { Attachment, Relay } from '../src/core/relay.js';
import { historyPage, sensorsPage } from '../src/core/replies.js';
import { createLogger } from '../src/log.js';
import type { StoredReading } from '../src/store/types.js';
import { makeDevice, sleep, startTestServer, TestClient, waitFor } from './helpers.js';
import type { Message, TestServer } from './helpers.js';

const reading = (seq: number, time: number, value: unknown, sensor = 's'): StoredReading => ({ seq, time, value, sensor, deviceId: 'D', side: 'device' });

describe('cutting a reply', () => {
  // Each reading's wire form is about 150 bytes: 10 fit in 2 000 once the envelope is set aside.
  const rows = Array.from({ length: 30 }, (_, i) => reading(i + 1, 1000 + Math.floor(i / 3), 'v'.repeat(100)));

  test('forward from a time: the oldest that fit, never splitting a millisecond; next moves "from"', () => {
    const page = historyPage(rows, { limit: 30, from: 0 }, 2000);
    assert.ok(page.readings.length > 0 && page.readings.length % 3 === 0, `${page.readings.length} readings`);
    assert.deepEqual(page.readings, rows.slice(0, page.readings.length));
    assert.deepEqual(page.next, { from: rows[page.readings.length].time, limit: 30 - page.readings.length });
    assert.equal(page.json.length, page.readings.length);
    assert.ok(page.json.join(',').length < 2000);
  });

  test('newest first without "from": the newest that fit, oldest first in the reply; next moves "to"', () => {
    const page = historyPage(rows, { limit: 30 }, 2000);
    const n = page.readings.length;
    assert.ok(n > 0 && n % 3 === 0);
    assert.deepEqual(page.readings, rows.slice(30 - n));
    assert.deepEqual(page.json.map((j) => JSON.parse(j).time), page.readings.map((r) => r.time));
    assert.deepEqual(page.next, { to: rows[30 - n - 1].time, limit: 30 - n });
  });

  test('an answer that fits is whole; one millisecond larger than the bound is refused, saying how to go past it', () => {
    assert.deepEqual(historyPage(rows, { limit: 30 }, 1_000_000).readings, rows);
    assert.equal(historyPage(rows, { limit: 30 }, 1_000_000).next, undefined);
    const sameTime = Array.from({ length: 20 }, (_, i) => reading(i + 1, 5000, 'v'.repeat(100)));
    assert.throws(() => historyPage(sameTime, { limit: 20, from: 0 }, 2000), (err: unknown) =>
      err instanceof IotcError && err.code === 'E_TOO_LARGE' && /at time 5000 .*max-reply \/ IOTC_MAX_REPLY_BYTES.*from 5001/.test(err.message));
  });

  test('sensors: cut by name, continued after the last name sent', () => {
    const latest = Array.from({ length: 30 }, (_, i) => reading(i, 1, 'v'.repeat(100), `s${String(i).padStart(2, '0')}`));
    const first = sensorsPage(latest, undefined, 2000);
    assert.ok(first.readings.length < 30 && first.next);
    const rest = sensorsPage(latest, first.next!.after, 1_000_000);
    assert.deepEqual([...first.readings, ...rest.readings], latest);
    assert.equal(rest.next, undefined);
  });
});

describe('bounded replies on the wire', () => {
  let server: TestServer;
  let d: Awaited<ReturnType<typeof makeDevice>>;
  const total = 240;
  before(async () => {
    server = await startTestServer({ maxReplyBytes: 8192, rateLimit: 0 });
    d = await makeDevice(server);
    // Batches of four share one millisecond, as the readings of one put do.
    for (let b = 0; b < total / 4; b++) {
      await server.hub.store.appendReadings(Array.from({ length: 4 }, (_, i) => ({ deviceId: d.id, sensor: 'temp', value: `${b}-${i}-${'x'.repeat(80)}`, side: 'device' as const, time: 1_700_000_000_000 + b })));
    }
  });
  after(() => server.stop());

  async function pages(ask: (next: Message | undefined) => Promise<Message>): Promise<{ values: unknown[]; count: number }> {
    const values: unknown[][] = [];
    let next: Message | undefined;
    let count = 0;
    do {
      const reply = await ask(next);
      assert.equal(reply.ok ?? true, true, JSON.stringify(reply).slice(0, 300));
      assert.ok(JSON.stringify(reply).length <= 8192, 'a page stays within max-reply');
      values.push(reply.readings.map((r: Message) => r.value));
      next = reply.more ? reply.next : undefined;
      count++;
    } while (next);
    return { values: values.flat(), count };
  }

  test('WS: following "next" from a time, or back from the newest, yields every reading once, in order', async () => {
    const all = (await server.hub.relay.history(d.id, 'temp', { limit: 10_000 })).map((r) => r.value);
    assert.equal(all.length, total);
    const c = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    try {
      const forward = await pages((next) => c.request({ method: 'history', sensor: 'temp', limit: 10_000, from: 0, ...next }));
      assert.ok(forward.count > 2, `${forward.count} pages`);
      assert.deepEqual(forward.values, all);
      const backward: unknown[][] = [];
      let next: Message | undefined;
      do {
        const reply = await c.request({ method: 'history', sensor: 'temp', limit: 200, ...next });
        backward.unshift(reply.readings.map((r: Message) => r.value));
        next = reply.more ? reply.next : undefined;
      } while (next);
      assert.deepEqual(backward.flat(), all.slice(total - 200), 'the 200 newest, each once');
    } finally {
      await c.close();
    }
  });

  test('HTTP: the same bound and "next"; CSV says where to go on in X-More / X-Next', async () => {
    const all = (await server.hub.relay.history(d.id, 'temp', { limit: 10_000 })).map((r) => r.value);
    const url = (q: Record<string, unknown>) => `${server.url}/api/v1/devices/${d.id}/sensors/temp/history?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]))}`;
    const get = async (q: Record<string, unknown>) => (await fetch(url(q), { headers: { 'x-device-key': d.key } })).json();
    const forward = await pages((next) => get({ limit: 10_000, from: 0, ...next }));
    assert.deepEqual(forward.values, all);
    const csv = await fetch(url({ limit: 10_000, from: 0, format: 'csv' }), { headers: { 'x-device-key': d.key } });
    assert.equal(csv.headers.get('x-more'), 'true');
    const next = new URLSearchParams(csv.headers.get('x-next') ?? '');
    assert.ok(Number(next.get('from')) > 1_700_000_000_000 && Number(next.get('limit')) < 10_000, csv.headers.get('x-next') ?? '');
    assert.ok((await csv.text()).length < 10_000);
  });

  test('sensors: cut at the bound and continued with "after", on WS and HTTP', async () => {
    const dev = await makeDevice(server);
    await server.hub.store.appendReadings(Array.from({ length: 150 }, (_, i) => ({ deviceId: dev.id, sensor: `s${String(i).padStart(3, '0')}`, value: 'y'.repeat(100), side: 'device' as const, time: Date.now() })));
    const c = await TestClient.connect(server.wsUrl, dev.id, dev.key, 'client');
    try {
      const names: string[] = [];
      let next: Message | undefined;
      do {
        const reply = await c.request({ method: 'sensors', ...next });
        names.push(...reply.sensors.map((r: Message) => r.sensor));
        next = reply.more ? reply.next : undefined;
      } while (next);
      assert.deepEqual(names, Array.from({ length: 150 }, (_, i) => `s${String(i).padStart(3, '0')}`));
      const first = await (await fetch(`${server.url}/api/v1/devices/${dev.id}/sensors`, { headers: { 'x-device-key': dev.key } })).json();
      assert.equal(first.more, true);
      const rest = await (await fetch(`${server.url}/api/v1/devices/${dev.id}/sensors?after=${first.next.after}`, { headers: { 'x-device-key': dev.key } })).json();
      assert.equal(rest.sensors[0].sensor > first.next.after, true);
      // The other side's latest, for a polling device: cut too, values and readings alike.
      const latest = await (await fetch(`${server.url}/api/v1/devices/${dev.id}/latest?side=client`, { headers: { 'x-device-key': dev.key } })).json();
      assert.equal(latest.more, true);
      assert.deepEqual(Object.keys(latest.values), latest.readings.map((r: Message) => r.sensor));
      const latestRest = await (await fetch(`${server.url}/api/v1/devices/${dev.id}/latest?side=client&after=${latest.next.after}`, { headers: { 'x-device-key': dev.key } })).json();
      assert.ok(latestRest.readings.length > 0 && latestRest.readings[0].sensor > latest.next.after);
    } finally {
      await c.close();
    }
  });
});

describe('a client that asks and never reads', () => {
  let server: TestServer;
  before(async () => (server = await startTestServer({ rateLimit: 0 })));
  after(() => server.stop());

  test('40 history requests of 6 KB values: one read at a time, server memory stays flat, every reply comes once it reads', async () => {
    const d = await makeDevice(server);
    const value = 'v'.repeat(6000);
    for (let b = 0; b < 10; b++) {
      await server.hub.store.appendReadings(Array.from({ length: 200 }, (_, i) => ({ deviceId: d.id, sensor: 'big', value, side: 'device' as const, time: 1_700_000_000_000 + b * 200 + i })));
    }
    let running = 0;
    let most = 0;
    let served = 0;
    const history = server.hub.relay.history.bind(server.hub.relay);
    server.hub.relay.history = async (...args) => {
      most = Math.max(most, ++running);
      try {
        return await history(...args);
      } finally {
        running--;
        served++;
      }
    };
    const c = await TestClient.connect(server.wsUrl, d.id, d.key, 'client');
    try {
      global.gc?.();
      const before = process.memoryUsage().rss;
      c.pauseSocket();
      for (let i = 1; i <= 40; i++) c.send({ method: 'history', sensor: 'big', limit: 10_000, id: i });
      await sleep(1500);
      const grown = (process.memoryUsage().rss - before) / 1048576;
      // Unbounded, these 40 replies were 12 MB each, all held at once: 480 MB.
      assert.ok(grown < 100, `server grew ${grown.toFixed(0)} MiB`);
      assert.ok(served < 40, `${served} replies made for a client that reads none`);
      c.resumeSocket();
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => c.next((m) => m.id === i + 1, 20_000)));
      for (const r of replies) {
        assert.equal(r.ok, true);
        assert.equal(r.more, true);
        assert.ok(r.readings.length > 10 && r.readings.length < 200, `${r.readings.length} readings`);
      }
      assert.equal(most, 1, 'never two reads of one connection at once');
      await waitFor(() => served === 40, 5000, 'every request served once');
      assert.equal(c.ws.readyState, c.ws.OPEN, 'a reader that catches up stays connected');
    } finally {
      server.hub.relay.history = history;
      await c.close();
    }
  });
});

test('reads waiting on a connection are bounded: beyond the bound they are refused at once, saying why', async () => {
  let lookups = 0;
  const relay = { gets: async () => (lookups++, null), countError: () => {} } as unknown as Relay;
  const attachment = { device: { id: 'D' }, side: 'client' } as unknown as Attachment;
  const replies: Message[] = [];
  let room: (v: boolean) => void = () => {};
  const session = new ProtocolSession(relay, attachment, (t) => replies.push(JSON.parse(t)), () => {}, createLogger('silent'), { rateLimit: 0, rateBurst: 1 },
    () => new Promise<boolean>((resolve) => (room = (v) => resolve(v))));
  for (let i = 1; i <= MAX_WAITING_READS + 5; i++) void session.handle(JSON.stringify({ method: 'gets', sensor: 't', id: i }));
  await sleep(10);
  assert.deepEqual(replies.map((m) => [m.id, m.code]), [1, 2, 3, 4, 5].map((i) => [MAX_WAITING_READS + i, 'E_RATE_LIMITED']));
  assert.match(replies[0].error, /At most 1024 gets, history and sensors requests may wait/);
  await session.handle(JSON.stringify({ method: 'ping', id: 'p' }));
  assert.equal(replies.at(-1)!.id, 'p', 'a ping does not wait behind reads');
  assert.equal(lookups, 0, 'no read was made while the connection had no room');
  // The connection closes: the waiting reads are dropped without touching the store.
  room(false);
  await sleep(10);
  assert.equal(lookups, 0);
});
