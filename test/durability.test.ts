/**
 * What was acknowledged is kept: the real `iotc serve` process is stopped with SIGTERM or killed with SIGKILL
 * while devices pipeline thousands of puts, then the SQLite file is opened and every acknowledged reading looked up.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { WebSocket } from 'ws';
import { Accounts } from '../src/core/accounts.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { sleep, spawnServe, tempDir, TestClient, waitFor, within } from './helpers.js';
import type { ServeProcess } from './helpers.js';

const DEVICES = 3;
/** Upper bound only: writers keep going until the server goes away. */
const PUTS_PER_DEVICE = 50_000;

let tmp: ReturnType<typeof tempDir>;
let serve: ServeProcess | null = null;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(async () => {
  if (serve && serve.child.exitCode === null && serve.child.signalCode === null) {
    serve.child.kill('SIGKILL');
    await serve.exited;
  }
  serve = null;
  tmp.cleanup();
});

/** Devices made the way the CLI makes them, before the server starts. */
async function makeDevices(): Promise<{ id: string; key: string }[]> {
  const store = new SqliteStore(path.join(tmp.dir, 'iotc.db'));
  try {
    const accounts = new Accounts(store, null);
    const user = await accounts.signUp({ name: 'Durable', email: 'durable@example.com', password: 'password123' });
    const out = [];
    for (let i = 0; i < DEVICES; i++) out.push(await accounts.createDevice(user.id, `sensor ${i}`));
    return out;
  } finally {
    await store.close();
  }
}

interface Writer {
  deviceId: string;
  client: TestClient;
  sent: number;
  done: Promise<void>;
}

/** Sends puts 0, 1, 2… without waiting for acks, a few dozen every couple of ms, until the socket closes. */
function startWriting(client: TestClient, deviceId: string): Writer {
  const w: Writer = { deviceId, client, sent: 0, done: Promise.resolve() };
  w.done = (async () => {
    while (w.sent < PUTS_PER_DEVICE && client.ws.readyState === WebSocket.OPEN) {
      for (let j = 0; j < 25 && w.sent < PUTS_PER_DEVICE; j++, w.sent++) {
        client.send({ method: 'put', status: { sensor: 'n', value: w.sent }, id: w.sent });
      }
      await sleep(2);
    }
  })();
  return w;
}

const acked = (w: Writer) => w.client.pending.filter((m) => m.ok === true).map((m) => m.id as number);

async function storedValues(deviceId: string): Promise<number[]> {
  const store = new SqliteStore(path.join(tmp.dir, 'iotc.db'));
  try {
    return (await store.history(deviceId, 'n', { limit: 1_000_000 })).map((r) => r.value as number);
  } finally {
    await store.close();
  }
}

async function runUntil(signal: 'SIGTERM' | 'SIGKILL') {
  const devices = await makeDevices();
  serve = await spawnServe({ IOTC_DATA_DIR: tmp.dir, IOTC_RATE_LIMIT: '0' });
  const clients = [];
  for (const d of devices) clients.push(await TestClient.connect(serve.wsUrl, d.id, d.key, 'device'));
  // Let the server record the devices as online first, so a clean stop has presence to clear.
  const look = new SqliteStore(path.join(tmp.dir, 'iotc.db'));
  try {
    const user = await look.getUserByEmail('durable@example.com');
    await waitFor(async () => (await look.listDevices(user!.id)).every((d) => d.online), 5000, 'devices online');
  } finally {
    await look.close();
  }
  const writers = clients.map((c, i) => startWriting(c, devices[i].id));
  const totalAcked = () => writers.reduce((sum, w) => sum + acked(w).length, 0);
  await waitFor(() => totalAcked() >= 1500, 20_000, '1500 acknowledged puts');
  serve.child.kill(signal);
  const exit = await within(serve.exited, 15_000, `exit after ${signal}`);
  const closes = await Promise.all(writers.map((w) => within(w.client.closed, 5000, 'socket close')));
  await Promise.all(writers.map((w) => w.done));
  return { devices, writers, exit, closes };
}

test('SIGTERM mid-stream: every acknowledged put is in the store, nothing unacknowledged is, and the process exits 0', async (t) => {
  const { writers, exit, closes } = await runUntil('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, `stdout: ${serve!.stdout.slice(-2000)}\nstderr: ${serve!.stderr}`);
  for (const c of closes) assert.deepEqual(c, { code: 1001, reason: 'Server is shutting down' });
  assert.match(serve!.stdout, /"msg":"shutting down: draining connections and writes"/);
  assert.match(serve!.stdout, /"msg":"IOTcommunicate stopped"/);

  // A clean stop takes this node's presence with it: nothing shows online afterwards.
  const store = new SqliteStore(path.join(tmp.dir, 'iotc.db'));
  try {
    const user = await store.getUserByEmail('durable@example.com');
    assert.deepEqual((await store.listDevices(user!.id)).map((d) => d.online), Array(DEVICES).fill(false));
  } finally {
    await store.close();
  }

  let total = 0;
  for (const w of writers) {
    const ok = acked(w);
    const refused = w.client.pending.filter((m) => m.ok === false);
    for (const r of refused) assert.equal(r.code, 'E_SHUTTING_DOWN', JSON.stringify(r));
    const stored = await storedValues(w.deviceId);
    assert.ok(ok.length > 0);
    // Mid-stream means the writer still had puts to send. Whether some were in flight when the socket closed
    // depends on where the 2 ms send loop stood: a drain that committed and acknowledged every put it took is right.
    assert.ok(w.sent < PUTS_PER_DEVICE, `the signal came mid-stream: sent ${w.sent} of ${PUTS_PER_DEVICE}`);
    assert.ok(ok.length <= w.sent);
    // Acks arrive in order, with no gap: the server acknowledges a put only once it and all before it are committed.
    assert.deepEqual(ok, Array.from({ length: ok.length }, (_, i) => i));
    const missing = ok.filter((id) => !stored.includes(id));
    assert.deepEqual(missing, [], 'acknowledged but not stored');
    // A drain commits what was accepted and sends its ack before saying goodbye: no silent writes either.
    assert.deepEqual(stored, ok, 'stored exactly what was acknowledged, once each, in order');
    for (const r of refused) assert.ok(!stored.includes(r.id), 'a refused put is not stored');
    total += ok.length;
    t.diagnostic(`${w.deviceId}: sent ${w.sent}, acknowledged ${ok.length}, refused while stopping ${refused.length}, stored ${stored.length}`);
  }
  assert.ok(total >= 1500);
});

test('SIGKILL mid-stream: every acknowledged put is still in the store', async (t) => {
  const { devices, writers, exit } = await runUntil('SIGKILL');
  assert.equal(exit.signal, 'SIGKILL');
  for (const w of writers) {
    const ok = acked(w);
    assert.ok(w.sent < PUTS_PER_DEVICE && ok.length <= w.sent, `the kill came mid-stream: sent ${w.sent} of ${PUTS_PER_DEVICE}`);
    const stored = new Set(await storedValues(w.deviceId));
    const missing = ok.filter((id) => !stored.has(id));
    assert.deepEqual(missing, [], `${missing.length} of ${ok.length} acknowledged puts lost`);
    t.diagnostic(`${w.deviceId}: sent ${w.sent}, acknowledged ${ok.length}, stored ${stored.size}`);
  }

  // The database opens cleanly afterwards, and a new server serves what was kept.
  serve = await spawnServe({ IOTC_DATA_DIR: tmp.dir });
  const app = await TestClient.connect(serve.wsUrl, devices[0].id, devices[0].key, 'client');
  const latest = await app.request({ method: 'gets', sensor: 'n' });
  const stored = await storedValues(devices[0].id);
  assert.equal(latest.value, stored[stored.length - 1]);
  assert.ok(latest.value >= Math.max(...acked(writers[0])));
  await app.close();
  serve.child.kill('SIGTERM');
  assert.equal((await within(serve.exited, 15_000, 'exit')).code, 0);
});
