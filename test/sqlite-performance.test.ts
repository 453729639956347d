import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from '../src/store/sqlite-migrations.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { NewReading, Side } from '../src/store/types.js';
import { tempDir } from './helpers.js';

/** A store whose journal never moves on its own, so each test decides when readings are settled. */
function manualStore(file: string): SqliteStore {
  return new SqliteStore(file, { everyMs: 3_600_000, batch: 3 });
}

async function withDevice(store: SqliteStore, id = 'D'.repeat(20)): Promise<string> {
  const user = await store.createUser({ email: `${id}@example.com`, name: 'T', passwordHash: 'x' });
  await store.createDevice({ id, userId: user.id, name: 'dev', keyHash: 'h' });
  return id;
}

const reading = (deviceId: string, sensor: string, value: unknown, time: number, side: Side = 'device'): NewReading => ({ deviceId, sensor, value, time, side });

test('history reads journaled and settled readings alike, in order, with every filter', async () => {
  const { dir, cleanup } = tempDir();
  const store = manualStore(path.join(dir, 'a.db'));
  try {
    const id = await withDevice(store);
    const written = [];
    for (let i = 0; i < 10; i++) written.push(...(await store.appendReadings([reading(id, i % 2 ? 'hum' : 'temp', i, 1000 + i, i % 3 ? 'device' : 'client')])));
    const queries = [
      { limit: 100 },
      { limit: 2 },
      { limit: 100, from: 1003 },
      { limit: 2, from: 1001, to: 1008 },
      { limit: 100, side: 'client' as Side },
      { limit: 3, to: 1006 },
    ];
    const before = await Promise.all(queries.map((q) => store.history(id, 'temp', q)));
    assert.deepEqual(before[0].map((r) => r.value), [0, 2, 4, 6, 8]);
    assert.deepEqual(before[1].map((r) => r.value), [6, 8]);
    assert.deepEqual(before[2].map((r) => r.value), [4, 6, 8]);
    assert.deepEqual(before[3].map((r) => r.value), [2, 4]);
    assert.deepEqual(before[4].map((r) => r.value), [0, 6]);
    assert.deepEqual(before[5].map((r) => r.value), [2, 4, 6]);
    // Part settled (batch of 3), part still journaled: a query spans both tables.
    assert.equal(store.settle(), 3);
    assert.deepEqual(await Promise.all(queries.map((q) => store.history(id, 'temp', q))), before);
    while (store.settle() > 0);
    assert.deepEqual(await Promise.all(queries.map((q) => store.history(id, 'temp', q))), before);
    assert.deepEqual(
      (await store.history(id, 'temp', { limit: 100 })).map((r) => r.seq),
      written.filter((r) => r.sensor === 'temp').map((r) => r.seq),
    );
  } finally {
    await store.close();
    cleanup();
  }
});

test('sequence numbers keep rising after the journal empties and after reopening', async () => {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 'b.db');
  let store = manualStore(file);
  try {
    const id = await withDevice(store);
    const a = await store.appendReadings([reading(id, 's', 1, 1), reading(id, 's', 2, 2)]);
    while (store.settle() > 0);
    const b = await store.appendReadings([reading(id, 's', 3, 3)]);
    assert.ok(b[0].seq > a[1].seq, `seq ${b[0].seq} after ${a[1].seq}`);
    await store.close();
    store = manualStore(file);
    const c = await store.appendReadings([reading(id, 's', 4, 4)]);
    assert.ok(c[0].seq > b[0].seq);
    assert.deepEqual((await store.history(id, 's', { limit: 10 })).map((r) => r.value), [1, 2, 3, 4]);
    assert.equal((await store.latest(id, 's'))?.value, 4);
  } finally {
    await store.close();
    cleanup();
  }
});

test('journaled readings survive a crash (no close) and are moved by the next store', async () => {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 'c.db');
  const crashed = manualStore(file);
  const id = await withDevice(crashed);
  await crashed.appendReadings([reading(id, 's', 'kept', 5)]);
  // No close(): a second connection opens the file as a restarted server would after a crash.
  const store = manualStore(file);
  try {
    assert.deepEqual((await store.history(id, 's', { limit: 10 })).map((r) => r.value), ['kept']);
    assert.equal(store.settle(), 1);
    assert.deepEqual((await store.history(id, 's', { limit: 10 })).map((r) => r.value), ['kept']);
  } finally {
    await store.close();
    await crashed.close();
    cleanup();
  }
});

test('deleting a device removes its journaled readings too', async () => {
  const { dir, cleanup } = tempDir();
  const store = manualStore(path.join(dir, 'd.db'));
  try {
    const id = await withDevice(store);
    const other = await withDevice(store, 'E'.repeat(20));
    await store.appendReadings([reading(id, 's', 1, 1), reading(other, 's', 2, 2)]);
    store.settle(1);
    await store.appendReadings([reading(id, 's', 3, 3)]);
    assert.equal(await store.deleteDevice(id), true);
    assert.deepEqual(await store.history(id, 's', { limit: 10 }), []);
    assert.deepEqual((await store.history(other, 's', { limit: 10 })).map((r) => r.value), [2]);
  } finally {
    await store.close();
    cleanup();
  }
});

test('a database from before the journal keeps its readings, and new ones number after them', async () => {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 'old.db');
  const db = new Database(file);
  db.exec(SQLITE_MIGRATIONS[0]);
  db.pragma('user_version = 1');
  db.prepare("INSERT INTO readings (seq, device_id, sensor, side, value, time) VALUES (41, 'OLD', 's', 'device', '\"old\"', 1)").run();
  db.close();
  const store = manualStore(file);
  try {
    const [r] = await store.appendReadings([reading('OLD', 's', 'new', 2)]);
    assert.ok(r.seq > 41, `seq ${r.seq}`);
    assert.deepEqual((await store.history('OLD', 's', { limit: 10 })).map((x) => x.value), ['old', 'new']);
    while (store.settle() > 0);
    assert.deepEqual((await store.history('OLD', 's', { limit: 10 })).map((x) => x.value), ['old', 'new']);
  } finally {
    await store.close();
    cleanup();
  }
});

test('the store moves the journal on its own', async () => {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 'e.db');
  const store = new SqliteStore(file, { everyMs: 20, batch: 100 });
  try {
    const id = await withDevice(store);
    await store.appendReadings(Array.from({ length: 250 }, (_, i) => reading(id, 's', i, i)));
    const check = new Database(file, { readonly: true });
    const journaled = () => (check.prepare('SELECT COALESCE(SUM(n), 0) AS n FROM readings_journal').get() as { n: number }).n;
    assert.equal(journaled(), 250);
    const until = Date.now() + 5000;
    while (journaled() > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(journaled(), 0);
    assert.equal((check.prepare('SELECT COUNT(*) AS n FROM readings').get() as { n: number }).n, 250);
    check.close();
  } finally {
    await store.close();
    cleanup();
  }
});

test('checkpoints run beside the writer, and a closed store leaves no WAL behind', async () => {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 'f.db');
  const store = new SqliteStore(file, { everyMs: 20, batch: 1000, checkpointMs: 20 });
  try {
    const id = await withDevice(store);
    const fs = await import('node:fs');
    const dbSize = () => fs.statSync(file).size;
    const before = dbSize();
    for (let i = 0; i < 20; i++) await store.appendReadings(Array.from({ length: 200 }, (_, k) => reading(id, `s${k % 7}`, { i, k }, i * 1000 + k)));
    // The writer's own automatic checkpoint is off: only the worker copies the WAL into the database file.
    const until = Date.now() + 5000;
    while (dbSize() <= before && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.ok(dbSize() > before, 'the database file grew: the WAL was checkpointed into it');
    assert.equal((await store.history(id, 's3', { limit: 10_000 })).length, 20 * Math.ceil((200 - 3) / 7));
    await store.close();
    assert.equal(fs.existsSync(`${file}-wal`), false, 'the last connection to close removed the WAL');
  } finally {
    await store.close();
    cleanup();
  }
});

test('presence: a save between heartbeats writes only what changed; a heartbeat renews every entry of the node', async () => {
  const { dir, cleanup } = tempDir();
  const store = manualStore(path.join(dir, 'g.db'));
  try {
    const a = await withDevice(store, 'A'.repeat(20));
    const user = await store.getUserByEmail(`${a}@example.com`);
    await store.createDevice({ id: 'B'.repeat(20), userId: user!.id, name: 'b', keyHash: 'h' });
    const online = async () => Object.fromEntries((await store.listDevices(user!.id)).map((d) => [d.id[0], d.online]));
    const now = Date.now();
    // A's entry written with an expiry already past, as if its node had stopped renewing it.
    await store.savePresence('n1', [{ deviceId: a, side: 'device', connections: 1 }], now, now - 1, false);
    assert.deepEqual(await online(), { A: false, B: false });
    await store.savePresence('n1', [{ deviceId: 'B'.repeat(20), side: 'device', connections: 1 }], now, now + 60_000, false);
    assert.deepEqual(await online(), { A: false, B: true }, 'no heartbeat: only B was written');
    await store.savePresence('n1', [], now, now + 60_000, true);
    assert.deepEqual(await online(), { A: true, B: true }, 'heartbeat: the node renewed all its entries');
  } finally {
    await store.close();
    cleanup();
  }
});

test('the WAL starts over once it passes its bound: commits wait for the worker to copy it, the event loop does not, nothing is lost', async () => {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 'w.db');
  const FRAMES = 300;
  const store = new SqliteStore(file, { everyMs: 10, batch: 1000, checkpointMs: 10, walRestartFrames: FRAMES });
  try {
    const id = await withDevice(store);
    const fs = await import('node:fs');
    const walFrames = () => (fs.statSync(`${file}-wal`).size - 32) / (4096 + 24);
    let written = 0;
    let longestTurn = 0;
    // Well over ten times the bound, in commits a millisecond apart (as under load), so a checkpoint beside them
    // never finds the WAL fully copied on its own: without starting over the WAL holds every frame (~12 000). The
    // millisecond, rather than commits back to back, lets the worker that counts the frames run on a machine as
    // busy as CI's: back to back, a starved worker's stale count let the WAL pass the bound by thousands of frames.
    for (let round = 0; round < 400; round++) {
      const before = performance.now();
      await store.appendReadings(Array.from({ length: 100 }, (_, k) => reading(id, `s${k % 50}`, 'x'.repeat(200), round * 1000 + k)));
      written += 100;
      longestTurn = Math.max(longestTurn, performance.now() - before);
      await new Promise((r) => setTimeout(r, 1));
    }
    const grown = walFrames();
    // The bound is checked every 10 ms from a count up to 10 ms old (more when the machine is busy), so the WAL
    // passes it by what a few rounds of commits write.
    assert.ok(grown < FRAMES * 8, `the WAL holds ${Math.round(grown)} frames: it started over (bound ${FRAMES})`);
    let total = 0;
    for (let k = 0; k < 50; k++) total += (await store.history(id, `s${k}`, { limit: 10_000 })).length;
    assert.equal(total, written, 'every committed reading is kept');
    assert.ok(longestTurn < 1000, `no commit waited past the restart's bound (${longestTurn.toFixed(0)} ms)`);
  } finally {
    await store.close();
    cleanup();
  }
});

test("a device's or user's calls are read through their own index, never the hub-wide expiry index", async () => {
  // Without statistics SQLite picked the expiry index, which holds every open call of the hub: one account's
  // queued calls would then slow every device's connection (each reads its queued calls as it attaches).
  const { dir, cleanup } = tempDir();
  const store = manualStore(path.join(dir, 'iotc.db'));
  try {
    const db = (store as unknown as { db: Database.Database }).db;
    const stmts = (store.calls as unknown as { stmt: Record<string, Database.Statement> }).stmt;
    const plan = (name: string) => {
      const source = stmts[name].source;
      return db.prepare(`EXPLAIN QUERY PLAN ${source}`).all(...Array(source.split('?').length - 1).fill('x')).map((r) => (r as { detail: string }).detail).join(' / ');
    };
    for (const name of ['openOfDevice', 'open', 'queued']) assert.match(plan(name), /USING INDEX calls_by_device \(device_id=\?/, name);
    assert.match(plan('openOfUser'), /USING INDEX calls_by_user \(user_id=\?/);
  } finally {
    await store.close();
    cleanup();
  }
});
