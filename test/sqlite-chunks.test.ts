/**
 * SQLite keeps readings in chunks (one row per device, sensor and side per commit). Every read must answer as
 * a table of single readings did: these tests hold the store against a plain model of that table, with
 * queries whose bounds fall inside chunks, chunks split by time span and size, readings partly journaled
 * and partly moved, retention cutting chunks, paging with maxBytes, and a database migrated from readings rows.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { MAX_READINGS, SPAN_MS } from '../src/store/sqlite-chunks.js';
import { SQLITE_MIGRATIONS } from '../src/store/sqlite-migrations.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { HistoryQuery, NewReading, Side, StoredReading } from '../src/store/types.js';
import { tempDir } from './helpers.js';
import { DEVICES, newStore, random, withStore } from './sqlite-fixture.js';

const SENSORS = ['temp', 'hum'];

/** What a readings table with one row per reading answered (the SQL the store had before chunks). */
function modelHistory(all: StoredReading[], deviceId: string, sensor: string, q: HistoryQuery): StoredReading[] {
  const newestFirst = q.from === undefined;
  const rows = all
    .filter((r) => r.deviceId === deviceId && r.sensor === sensor && (q.side === undefined || r.side === q.side))
    .filter((r) => (q.from === undefined || r.time >= q.from) && (q.to === undefined || r.time <= q.to))
    .sort((a, b) => (a.time - b.time || a.seq - b.seq) * (newestFirst ? -1 : 1))
    .slice(0, q.limit);
  let kept = rows;
  if (q.maxBytes !== undefined) {
    let before = 0;
    kept = [];
    for (const r of rows) {
      if (before > q.maxBytes) break;
      kept.push(r);
      before += [...JSON.stringify(r.value)].length;
    }
  }
  return newestFirst ? kept.reverse() : kept;
}

function modelPrune(all: StoredReading[], latest: Map<string, StoredReading>, maxCount: number, maxAgeMs: number, now: number): StoredReading[] {
  let left = all;
  if (maxAgeMs > 0) {
    for (const [k, r] of latest) if (r.time < now - maxAgeMs) latest.delete(k);
    const keep = new Set([...latest.values()].map((r) => r.seq));
    left = left.filter((r) => r.time >= now - maxAgeMs || keep.has(r.seq));
  }
  if (maxCount > 0) {
    const keep = new Set([...latest.values()].map((r) => r.seq));
    for (const d of DEVICES) {
      const mine = left.filter((r) => r.deviceId === d).sort((a, b) => b.seq - a.seq);
      if (mine.length <= maxCount) continue;
      const last = mine[maxCount].seq;
      left = left.filter((r) => r.deviceId !== d || r.seq > last || keep.has(r.seq));
    }
  }
  return left;
}

const key = (r: { deviceId: string; sensor: string; side: Side }) => `${r.deviceId}/${r.sensor}/${r.side}`;

/**
 * Commits of 1 to 60 readings over both devices, sensors and sides, times rising by 0–3 s with clock steps
 * back, one commit spanning more than SPAN_MS and one holding more than MAX_READINGS of one key.
 */
async function fill(store: SqliteStore, rnd: () => number): Promise<{ all: StoredReading[]; latest: Map<string, StoredReading> }> {
  const all: StoredReading[] = [];
  let time = 1_000_000;
  const values = (i: number): unknown => [i, `s${i}`, { v: i, é: 'ü😀' }, i + 0.5, `${i}.25`, null][i % 6];
  const commit = async (batch: NewReading[]) => all.push(...(await store.appendReadings(batch)));
  for (let c = 0; c < 120; c++) {
    const batch: NewReading[] = [];
    const size = 1 + Math.floor(rnd() * 60);
    for (let i = 0; i < size; i++) {
      time += rnd() < 0.05 ? -5000 : Math.floor(rnd() * 3000);
      batch.push({ deviceId: DEVICES[Math.floor(rnd() * 2)], sensor: SENSORS[Math.floor(rnd() * 2)], side: rnd() < 0.7 ? 'device' : 'client', value: values(all.length + i), time });
    }
    await commit(batch);
    if (c % 10 === 3) store.settle();
  }
  await commit(Array.from({ length: 40 }, (_, i): NewReading => ({ deviceId: DEVICES[0], sensor: 'temp', side: 'device', value: i, time: time + i * (SPAN_MS / 10) })));
  time += 40 * (SPAN_MS / 10);
  await commit(Array.from({ length: MAX_READINGS + 250 }, (_, i): NewReading => ({ deviceId: DEVICES[1], sensor: 'hum', side: 'device', value: i, time: time + (i >> 4) })));
  const latest = new Map<string, StoredReading>();
  for (const r of all) latest.set(key(r), r);
  return { all, latest };
}

function queries(all: StoredReading[], rnd: () => number): HistoryQuery[] {
  const times = all.map((r) => r.time);
  const pick = () => times[Math.floor(rnd() * times.length)];
  const out: HistoryQuery[] = [{ limit: 100_000 }, { limit: 1 }];
  for (let i = 0; i < 60; i++) {
    const [a, b] = [pick(), pick()].sort((x, y) => x - y);
    const q: HistoryQuery = { limit: [1, 3, 17, 200, 5000][i % 5] };
    if (i % 3 !== 0) q.from = a + (i % 4 === 0 ? 1 : 0);
    if (i % 2 === 0) q.to = b;
    if (i % 7 === 0) q.side = 'client';
    if (i % 5 === 1) q.maxBytes = [0, 10, 300][i % 3];
    out.push(q);
  }
  return out;
}

async function assertAnswersAsModel(store: SqliteStore, all: StoredReading[], qs: HistoryQuery[], when: string): Promise<void> {
  for (const d of DEVICES) {
    for (const s of SENSORS) {
      for (const q of qs) {
        assert.deepEqual(await store.history(d, s, q), modelHistory(all, d, s, q), `${when}: history ${d.slice(0, 1)} ${s} ${JSON.stringify(q)}`);
      }
    }
  }
}

test('history answers as a table of single readings would, journaled, partly moved and moved, at bounds inside chunks', async () => {
  const { dir, cleanup } = tempDir();
  const store = await newStore(path.join(dir, 'h.db'));
  try {
    const rnd = random(15);
    const { all } = await fill(store, rnd);
    const qs = queries(all, rnd);
    await assertAnswersAsModel(store, all, qs, 'partly moved');
    while (store.settle() > 0);
    await assertAnswersAsModel(store, all, qs, 'all moved');
    const db = new Database(path.join(dir, 'h.db'), { readonly: true });
    try {
      const chunks = db.prepare('SELECT COUNT(*) AS n, MAX(time_to - time_from) AS span, MAX(n) AS most FROM reading_chunks').get() as { n: number; span: number; most: number };
      assert.ok(chunks.n < all.length / 4, `${chunks.n} chunks hold ${all.length} readings`);
      assert.ok(chunks.span <= SPAN_MS, `a chunk spans ${chunks.span} ms`);
      assert.ok(chunks.most <= MAX_READINGS, `a chunk holds ${chunks.most} readings`);
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM readings').get() as { n: number }).n, all.length, 'the readings view shows each reading once');
    } finally {
      db.close();
    }
  } finally {
    await store.close();
    cleanup();
  }
});

test('paging a sensor with maxBytes and the next bound returns every reading once, in order', async () => {
  const { dir, cleanup } = tempDir();
  const store = await newStore(path.join(dir, 'p.db'));
  try {
    const { all } = await fill(store, random(7));
    store.settle(5);
    for (const [d, s] of [[DEVICES[0], 'temp'], [DEVICES[1], 'hum']]) {
      const want = all.filter((r) => r.deviceId === d && r.sensor === s).sort((a, b) => a.time - b.time || a.seq - b.seq);
      // Forward from the start, as a client follows `next: {from}`: the next page starts at the last time seen
      // (readings of that millisecond may follow), or after it once a page brought nothing new.
      const seen = new Set<number>();
      const got: StoredReading[] = [];
      let from = 0;
      for (let pages = 0; pages < 10_000; pages++) {
        const page = await store.history(d, s, { from, limit: 37, maxBytes: 200 });
        if (page.length === 0) break;
        const fresh = page.filter((r) => !seen.has(r.seq));
        for (const r of fresh) (seen.add(r.seq), got.push(r));
        from = fresh.length === 0 ? page[page.length - 1].time + 1 : page[page.length - 1].time;
      }
      assert.deepEqual(got.map((r) => r.seq), want.map((r) => r.seq), `forward pages of ${s}`);
      // Backward from the newest, as `next: {to}`.
      seen.clear();
      const back: StoredReading[] = [];
      let to: number | undefined;
      for (let pages = 0; pages < 10_000; pages++) {
        const page = await store.history(d, s, { to, limit: 29 });
        if (page.length === 0) break;
        const fresh = page.filter((r) => !seen.has(r.seq));
        for (const r of fresh) seen.add(r.seq);
        back.unshift(...fresh);
        to = fresh.length === 0 ? page[0].time - 1 : page[0].time;
      }
      assert.deepEqual(back.map((r) => r.seq), want.map((r) => r.seq), `backward pages of ${s}`);
    }
  } finally {
    await store.close();
    cleanup();
  }
});

test('retention by age and by count cuts chunks at their bound and keeps each key’s latest reading', async () => {
  for (const [maxCount, maxAge] of [[150, 0], [0, 200_000], [40, 600_000], [1, 0]]) {
    const { dir, cleanup } = tempDir();
    const store = await newStore(path.join(dir, 'r.db'));
    try {
      const rnd = random(maxCount + maxAge);
      const { all, latest } = await fill(store, rnd);
      const now = Math.max(...all.map((r) => r.time)) + 1;
      const left = modelPrune(all, latest, maxCount, maxAge, now);
      const removed = await store.prune({ maxCount, maxAgeMs: maxAge }, now);
      assert.equal(removed, all.length - left.length, `removed with count ${maxCount}, age ${maxAge}`);
      await assertAnswersAsModel(store, left, queries(left, rnd), `after pruning to ${maxCount}/${maxAge}`);
      assert.equal(await store.prune({ maxCount, maxAgeMs: maxAge }, now), 0, 'a second prune finds nothing');
      for (const r of latest.values()) assert.deepEqual(await store.latest(r.deviceId, r.sensor, r.side), r);
    } finally {
      await store.close();
      cleanup();
    }
  }
});

test('buckets count every reading of a range once, with the range bounds inside chunks', async () => {
  const { dir, cleanup } = tempDir();
  const store = await newStore(path.join(dir, 'b.db'));
  try {
    const rnd = random(3);
    const { all } = await fill(store, rnd);
    store.settle(20);
    const numeric = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'string' && /^-?[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : null);
    for (const q of queries(all, rnd).filter((x) => x.from !== undefined && x.to !== undefined).slice(0, 12)) {
      const bucketMs = 60_000;
      const got = await store.historyBuckets(DEVICES[0], 'temp', { from: q.from!, to: q.to!, bucketMs, limit: 10_000 });
      const rows = all.filter((r) => r.deviceId === DEVICES[0] && r.sensor === 'temp' && r.time >= q.from! && r.time <= q.to! && numeric(r.value) !== null);
      const want = new Map<number, number[]>();
      for (const r of rows) {
        const b = Math.floor(r.time / bucketMs) * bucketMs;
        want.set(b, [...(want.get(b) ?? []), numeric(r.value)!]);
      }
      assert.deepEqual(got.map((b) => [b.time, b.count, b.min, b.max]), [...want.entries()].sort((a, b) => a[0] - b[0]).map(([t, v]) => [t, v.length, Math.min(...v), Math.max(...v)]));
    }
  } finally {
    await store.close();
    cleanup();
  }
});

test('the chunk migration (12) turns readings rows (moved and journaled) into chunks that answer as the rows did', async () => {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 'old.db');
  const db = new Database(file);
  for (const sql of SQLITE_MIGRATIONS.slice(0, 9)) db.exec(sql);
  db.pragma('user_version = 9');
  db.prepare("INSERT INTO users (id, email, name, password_hash, created_at) VALUES (1, 'o@example.com', 'O', 'x', 1)").run();
  for (const id of DEVICES) db.prepare("INSERT INTO devices (id, user_id, name, key_hash, created_at) VALUES (?, 1, 'd', 'h', 1)").run(id);
  const rnd = random(10);
  const all: StoredReading[] = [];
  let time = 5_000_000;
  const insert = (table: string) => db.prepare(`INSERT INTO ${table} (seq, device_id, sensor, side, value, time) VALUES (?, ?, ?, ?, ?, ?)`);
  db.exec('BEGIN');
  // Value texts as an export file may hold them (digits and escapes as written) are kept as they are. (Space
  // between JSON tokens would not be: json_each drops it; the hub never stored any, as it writes JSON.stringify's text.)
  const texts = ['21.50', '{"a":[1,2e3]}', '"x\\u00e9"', 'true', '-0.0'];
  for (let seq = 3; seq < 3000; seq += 1 + Math.floor(rnd() * 3)) {
    time += rnd() < 0.03 ? -70_000 : Math.floor(rnd() * 400);
    const r = { seq, deviceId: DEVICES[seq % 2], sensor: SENSORS[Math.floor(rnd() * 2)], side: (rnd() < 0.8 ? 'device' : 'client') as Side, time, value: JSON.parse(texts[seq % 5]) };
    insert(seq < 2500 ? 'readings' : 'readings_journal').run(seq, r.deviceId, r.sensor, r.side, texts[seq % 5], time);
    all.push(r);
  }
  db.prepare("UPDATE sqlite_sequence SET seq = 4000 WHERE name = 'readings_journal'").run();
  db.exec('COMMIT');
  const sums = (sql: string) => db.prepare(sql).all();
  const lengthsBefore = sums('SELECT seq, length(value) AS l, value FROM (SELECT * FROM readings UNION ALL SELECT * FROM readings_journal) ORDER BY seq');
  db.close();

  const store = new SqliteStore(file, { everyMs: 3_600_000, batch: 100 });
  try {
    await assertAnswersAsModel(store, all, queries(all, rnd).filter((q) => q.maxBytes === undefined), 'migrated');
    const check = new Database(file, { readonly: true });
    assert.deepEqual(check.prepare('SELECT seq, length(value) AS l, value FROM readings ORDER BY seq').all(), lengthsBefore, 'value texts kept as they were');
    check.close();
    const [next] = await store.appendReadings([{ deviceId: DEVICES[0], sensor: 'temp', side: 'device', value: 1, time: time + 1 }]);
    assert.equal(next.seq, 4001, 'numbering goes on after the highest ever issued');
  } finally {
    await store.close();
    cleanup();
  }
});

test('the move joins a key’s commits into one chunk; a seq is never issued twice, even after the journal rows holding the highest went', async () => {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 'm.db');
  const store = await newStore(file);
  try {
    const written: StoredReading[] = [];
    for (let i = 0; i < 200; i++) {
      written.push(...(await store.appendReadings([
        { deviceId: DEVICES[0], sensor: 'temp', side: 'device', value: i, time: 10_000 + i * 10 },
        { deviceId: DEVICES[1], sensor: 'hum', side: 'device', value: -i, time: 10_000 + i * 10 },
      ])));
    }
    assert.equal(store.settle(1000), 400, 'one move');
    const db = new Database(file, { readonly: true });
    const chunks = (db.prepare('SELECT device_id, n FROM reading_chunks ORDER BY device_id').all() as { device_id: string; n: number }[]).map((c) => [c.device_id, c.n]);
    db.close();
    assert.deepEqual(chunks, [[DEVICES[0], 200], [DEVICES[1], 200]], '400 journal rows became a chunk per key');
    assert.deepEqual(await store.history(DEVICES[0], 'temp', { limit: 1000 }), written.filter((r) => r.deviceId === DEVICES[0]));

    const [gone] = await store.appendReadings([{ deviceId: DEVICES[1], sensor: 'hum', side: 'device', value: 'x', time: 20_000 }]);
    assert.equal(await store.deleteDevice(DEVICES[1]), true);
    const [next] = await store.appendReadings([{ deviceId: DEVICES[0], sensor: 'temp', side: 'device', value: 'y', time: 20_001 }]);
    assert.ok(next.seq > gone.seq, `seq ${next.seq} issued after ${gone.seq}`);
  } finally {
    await store.close();
    cleanup();
  }
});

test('latest values: read back at once, written by the move, rebuilt from the journal after a crash, never outliving a deleted device', async () => {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 'l.db');
  const store = await newStore(file);
  const tableLatest = () => {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare('SELECT device_id, sensor, side, seq, value FROM latest ORDER BY device_id, sensor, side').all();
    } finally {
      db.close();
    }
  };
  let crashed: SqliteStore | null = null;
  try {
    await store.appendReadings([{ deviceId: DEVICES[0], sensor: 'temp', side: 'device', value: 1, time: 1000 }]);
    const [t2, h1] = await store.appendReadings([
      { deviceId: DEVICES[0], sensor: 'temp', side: 'device', value: { c: 2 }, time: 1001 },
      { deviceId: DEVICES[1], sensor: 'hum', side: 'client', value: 'on', time: 1001 },
    ]);
    // A commit leaves the latest table alone (that is the point: fewer pages per commit)…
    assert.deepEqual(tableLatest(), [], 'no commit wrote the latest table');
    // …yet every read of latest values answers with the newest committed reading.
    assert.deepEqual(await store.latest(DEVICES[0], 'temp'), t2);
    assert.deepEqual(await store.latestAll(DEVICES[1]), [h1]);
    assert.deepEqual((await store.latestWeights(DEVICES[1])).map((w) => w.sensor), ['hum']);
    assert.deepEqual(await store.latestSince(DEVICES[0], 'device', 0), [t2]);
    assert.deepEqual(tableLatest(), [
      { device_id: DEVICES[0], sensor: 'temp', side: 'device', seq: t2.seq, value: '{"c":2}' },
      { device_id: DEVICES[1], sensor: 'hum', side: 'client', seq: h1.seq, value: '"on"' },
    ]);

    // A crash before the next move: the newest readings are only in the journal. Opening the file again (the
    // first store never closes, as after a kill) writes them to latest from the journal.
    const [t3] = await store.appendReadings([{ deviceId: DEVICES[0], sensor: 'temp', side: 'device', value: [3, 'x'], time: 1002 }]);
    const [h2] = await store.appendReadings([{ deviceId: DEVICES[1], sensor: 'hum', side: 'client', value: 'off', time: 1003 }]);
    crashed = new SqliteStore(file);
    assert.deepEqual(tableLatest().map((r) => (r as { seq: number }).seq), [t3.seq, h2.seq], 'rebuilt from the journal');
    assert.deepEqual(await crashed.latest(DEVICES[0], 'temp', 'device'), t3);
    await crashed.close();
    crashed = null;

    // A move writes them too; an older value never overwrites a newer one.
    const [t4] = await store.appendReadings([{ deviceId: DEVICES[0], sensor: 'temp', side: 'device', value: 4, time: 1004 }]);
    store.settle(1000);
    assert.equal((tableLatest()[0] as { seq: number }).seq, t4.seq);

    // A device deleted with a newest value still waiting: the value does not come back at the next write.
    await store.appendReadings([{ deviceId: DEVICES[1], sensor: 'hum', side: 'client', value: 'late', time: 1005 }]);
    assert.equal(await store.deleteDevice(DEVICES[1]), true);
    store.settle(1000);
    assert.deepEqual(await store.latestAll(DEVICES[1]), []);
    assert.deepEqual(tableLatest().map((r) => (r as { device_id: string }).device_id), [DEVICES[0]]);
  } finally {
    await crashed?.close();
    await store.close();
    cleanup();
  }
});

/** A file's chunk rows and latest rows, read on a connection of its own. */
function tables(file: string): { chunks: unknown[]; latest: unknown[]; journal: number } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      chunks: db.prepare('SELECT device_id, sensor, side, seq_from, seq_to, time_from, time_to, n, data FROM reading_chunks ORDER BY device_id, sensor, side, seq_from').all(),
      latest: db.prepare('SELECT device_id, sensor, side, seq, value, time FROM latest ORDER BY device_id, sensor, side').all(),
      journal: (db.prepare('SELECT COUNT(*) AS n FROM readings_journal').get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
}

test('the timer’s move, taken in steps of one key per transaction, makes the chunks and latest rows of a move in one transaction', async () => {
  const { dir, cleanup } = tempDir();
  const [fileA, fileB] = [path.join(dir, 'one.db'), path.join(dir, 'steps.db')];
  const [one, steps] = [await newStore(fileA), await newStore(fileB)];
  try {
    // The same commits in both, and the same moves of 7 rows among them: the journal keeps a few hundred rows.
    await fill(one, random(21));
    await fill(steps, random(21));
    assert.ok(tables(fileB).journal > 100, 'rows left to move');
    while (one.settle(100_000) > 0);
    steps.beginMove(100_000);
    let taken = 0;
    while (steps.moveStep({ readRows: 100_000, sliceKeys: 1 })) taken++;
    const [a, b] = [tables(fileA), tables(fileB)];
    assert.ok(taken >= 8, `${taken} steps: a read, then one per key (2 devices × 2 sensors × 2 sides)`);
    assert.equal(b.journal, 0, 'the journal is empty');
    assert.deepEqual(b.chunks, a.chunks);
    assert.deepEqual(b.latest, a.latest);
  } finally {
    await one.close();
    await steps.close();
    cleanup();
  }
});

test('a move in steps loses, repeats and revives nothing when commits, a move in one transaction and a device’s deletion come between its steps', async () => {
  const { dir, cleanup } = tempDir();
  const file = path.join(dir, 's.db');
  const store = await newStore(file);
  try {
    const rnd = random(33);
    let { all } = await fill(store, rnd);
    const qs = queries(all, rnd);
    let time = Math.max(...all.map((r) => r.time));
    let live = [...DEVICES];
    let stepCount = 0;
    store.beginMove(60);
    for (let round = 0; round < 400; round++) {
      if (!store.moveStep({ readRows: 5, sliceKeys: 1 })) store.beginMove(60);
      stepCount++;
      if (round % 4 === 1 && round < 300) {
        const batch = Array.from({ length: 1 + (round % 7) }, (_, i): NewReading => ({
          deviceId: live[i % live.length], sensor: SENSORS[round % 2], side: i % 3 === 0 ? 'client' : 'device', value: round * 10 + i, time: (time += 500),
        }));
        all.push(...(await store.appendReadings(batch)));
      }
      if (round % 9 === 4) store.settle(3);
      if (round === 150) {
        // Deleted while rows of it may be read and waiting in the move's slices.
        assert.equal(await store.deleteDevice(DEVICES[1]), true);
        live = [DEVICES[0]];
        all = all.filter((r) => r.deviceId !== DEVICES[1]);
      }
    }
    // Moves until the journal is empty, a bounded number of times: a miscounted journal would never be moved.
    for (let i = 0; i < 10_000 && tables(file).journal > 0; i++) {
      if (!store.moveStep({ readRows: 5, sliceKeys: 1 })) store.beginMove(60);
    }
    assert.equal(tables(file).journal, 0, 'everything moved');
    await assertAnswersAsModel(store, all, qs, `after ${stepCount} steps`);
    assert.deepEqual(await store.history(DEVICES[1], 'temp', { limit: 10 }), [], 'the deleted device’s readings did not come back');
    assert.deepEqual(await store.latestAll(DEVICES[1]), []);
    const newest = new Map<string, StoredReading>();
    for (const r of all) newest.set(key(r), r);
    for (const side of ['device', 'client'] as const) {
      const expected = [...newest.values()].filter((r) => r.side === side).sort((x, y) => x.sensor.localeCompare(y.sensor));
      assert.deepEqual(await store.latestAll(DEVICES[0], side), expected, `latest of the ${side} side`);
    }
  } finally {
    await store.close();
    cleanup();
  }
});

test('a chunk\'s text and its cuts: [[seq,time,value],…] as JSON writes each piece, cut at the size, count and span bounds', async () => {
  const { toChunks, MAX_CHUNK_CHARS } = await import('../src/store/sqlite-chunks.js');
  // The plain model: each reading's text on its own, cut where the next would pass a bound.
  const model = (rs: { seq: number; time: number; json: string }[]) => {
    const out: { seqFrom: number; seqTo: number; timeFrom: number; timeTo: number; n: number; data: string }[] = [];
    let cur: typeof rs = [];
    const text = (r: (typeof rs)[number]) => `[${r.seq},${r.time},${r.json}]`;
    const close = () => {
      if (cur.length === 0) return;
      const times = cur.map((r) => r.time);
      out.push({ seqFrom: cur[0].seq, seqTo: cur[cur.length - 1].seq, timeFrom: Math.min(...times), timeTo: Math.max(...times), n: cur.length, data: `[${cur.map(text).join(',')}]` });
      cur = [];
    };
    for (const r of rs) {
      const times = [...cur.map((c) => c.time), r.time];
      const chars = [...cur, r].reduce((sum, c) => sum + text(c).length + 1, 0);
      if (cur.length > 0 && (cur.length >= MAX_READINGS || Math.max(...times) - Math.min(...times) > SPAN_MS || chars > MAX_CHUNK_CHARS)) close();
      cur.push(r);
    }
    close();
    return out;
  };
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const values = ['1', '-0.5', '"on"', '"température"', '"😀"', 'null', '{"a":[1,2]}', JSON.stringify('x'.repeat(900)), JSON.stringify('y'.repeat(5000))];
  for (let trial = 0; trial < 40; trial++) {
    const rs: { seq: number; time: number; json: string }[] = [];
    let seq = [1, 9, 10, 99_999, 2 ** 40, Number.MAX_SAFE_INTEGER - 3000][trial % 6];
    let time = [1_764_600_000_000, 0, -5_000, 999, 1e12][trial % 5];
    const count = 1 + Math.floor(random() * 1500);
    for (let i = 0; i < count; i++) {
      rs.push({ seq: seq++, time, json: values[Math.floor(random() * (trial % 3 === 0 ? values.length : 3))] });
      time += random() < 0.01 ? -70_000 : Math.floor(random() * 200);
    }
    const chunks = toChunks(rs);
    assert.deepEqual(chunks, model(rs), `trial ${trial}`);
    for (const c of chunks) assert.equal(JSON.parse(c.data).length, c.n);
  }
});

test('deleting a device with many chunks goes in steps: its readings all go, those written between the steps too; the other device keeps its own', async () => {
  await withStore(async (store) => {
    const [a, b] = DEVICES;
    // 20 moves × 30 sensors, each move more than a chunk's span after the last: 600 chunks of A, several steps.
    for (let m = 0; m < 20; m++) {
      const time = Date.now() - (20 - m) * 2 * SPAN_MS;
      await store.appendReadings(Array.from({ length: 30 }, (_, i): NewReading => ({ deviceId: a, sensor: `s${i}`, side: 'device', value: m, time })));
      await store.appendReadings([{ deviceId: b, sensor: 'kept', side: 'device', value: m, time }]);
      while (store.settle() > 0);
    }
    const db = new Database(store.file, { readonly: true });
    assert.equal(db.prepare('SELECT COUNT(*) FROM reading_chunks WHERE device_id = ?').pluck().get(a), 600);
    db.close();
    const deleting = store.deleteDevice(a);
    // After the first step, A writes again: that reading goes with the device at the end.
    await new Promise((resolve) => setImmediate(resolve));
    await store.appendReadings([{ deviceId: a, sensor: 's0', side: 'device', value: 'late', time: Date.now() }]);
    while (store.settle() > 0);
    assert.equal(await deleting, true);
    for (let i = 0; i < 30; i++) assert.deepEqual(await store.history(a, `s${i}`, { limit: 100 }), [], `s${i}`);
    assert.equal(await store.latest(a, 's0'), null);
    assert.deepEqual((await store.history(b, 'kept', { limit: 100 })).map((r) => r.value), Array.from({ length: 20 }, (_, m) => m));
  });
});

test('aggregating, or paging through, a range of many readings runs off the event loop, and answers as the store itself would', async () => {
  await withStore(async (store) => {
    const [a] = DEVICES;
    const now = Date.now();
    // 30 000 readings of one sensor in the last ten minutes (more than the 10 000 aggregated in the event loop).
    for (let m = 0; m < 30; m++) {
      await store.appendReadings(Array.from({ length: 1000 }, (_, i): NewReading => ({ deviceId: a, sensor: 'temp', side: 'device', value: i % 50, time: now - 600_000 + m * 20_000 })));
      while (store.settle() > 0);
    }
    await store.appendReadings([{ deviceId: a, sensor: 'temp', side: 'device', value: 7, time: now }]);
    let turns = 0;
    let counting = true;
    const count = () => {
      if (!counting) return;
      turns++;
      setImmediate(count);
    };
    setImmediate(count);
    const q = { from: now - 3_600_000, to: now, bucketMs: 3_600_000, limit: 10 };
    const buckets = await store.historyBuckets(a, 'temp', q);
    counting = false;
    assert.ok(turns > 0, 'the event loop turned while the readings were aggregated');
    const all = buckets.reduce((n, b) => n + b.count, 0);
    assert.equal(all, 30_001);
    assert.equal(Math.min(...buckets.map((b) => b.min)), 0);
    assert.equal(Math.max(...buckets.map((b) => b.max)), 49);
    assert.equal(buckets.at(-1)!.last, 7, 'the newest reading, still in the journal, is counted too');

    // Pages of it: many readings share each time, so the chunks to expand count more than a page; read off the
    // event loop too, in order, the journal's newest reading with them.
    turns = 0;
    counting = true;
    setImmediate(count);
    const newest = await store.history(a, 'temp', { limit: 5000, maxBytes: 1_048_576 });
    const oldest = await store.history(a, 'temp', { from: now - 600_000, limit: 5000, maxBytes: 1_048_576 });
    counting = false;
    assert.ok(turns > 0, 'the event loop turned while the pages were read');
    assert.equal(newest.length, 5000);
    assert.equal(newest.at(-1)!.value, 7);
    assert.deepEqual(newest.slice(-3, -1).map((r) => r.value), [48, 49], 'the last batch\'s last readings, in order');
    assert.ok(newest.every((r, i) => i === 0 || r.seq > newest[i - 1].seq), 'oldest first');
    assert.equal(oldest.length, 5000);
    assert.deepEqual(oldest.slice(0, 3).map((r) => r.value), [0, 1, 2], 'the first batch\'s first readings');
    assert.ok(oldest.every((r, i) => i === 0 || r.seq > oldest[i - 1].seq));
  });
});
