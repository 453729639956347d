/**
 * What aggregated history costs in SQLite: N one-minute readings of one sensor (written straight into the
 * chunk table as the store's journal move leaves them, one a chunk, as years of a device would be; retention is not running here,
 * so nothing is pruned), then
 * the bucket queries a chart makes. Usage: node --import tsx bench/history-buckets.ts [N=10000000]
 */
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import Database from 'better-sqlite3';
import { SqliteStore } from '../src/store/sqlite.js';
import { CHUNK_COLS, toChunks } from '../src/store/sqlite-chunks.js';

const n = Number(process.argv[2] ?? 10_000_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotc-buckets-'));
const file = path.join(dir, 'iotc.db');
try {
  const store = new SqliteStore(file);
  const user = await store.createUser({ email: 'bench@example.com', name: 'Bench', passwordHash: 'x' });
  const device = await store.createDevice({ id: 'BENCHBUCKETS00000000', userId: user.id, name: 'Bench', keyHash: 'x' });
  await store.close();

  const db = new Database(file);
  const end = Date.UTC(2026, 0, 1);
  const start = end - n * 60_000;
  let t = performance.now();
  const insert = db.prepare(`INSERT INTO reading_chunks (${CHUNK_COLS}) VALUES (?, 'temp', 'device', ?, ?, ?, ?, ?, ?)`);
  const load = db.transaction((from: number, to: number) => {
    const readings = [];
    for (let i = from; i < to; i++) {
      const json = i % 10 === 0 ? `"${(20 + Math.sin(i / 1440) * 5).toFixed(2)}"` : (20 + Math.sin(i / 1440) * 5).toFixed(2);
      readings.push({ seq: i + 1, time: start + i * 60_000, json });
    }
    // A reading a minute reaches each move of the journal alone: the store keeps it as a chunk of one.
    for (const r of readings) for (const c of toChunks([r])) insert.run(device.id, c.seqFrom, c.seqTo, c.timeFrom, c.timeTo, c.n, c.data);
  });
  for (let i = 0; i < n; i += 500_000) load(i, Math.min(n, i + 500_000));
  console.log(`loaded ${n} readings (${((end - start) / 86_400_000 / 365).toFixed(1)} years of one a minute) in ${((performance.now() - t) / 1000).toFixed(1)} s; file ${(fs.statSync(file).size / 1e6).toFixed(0)} MB`);
  db.close();

  const reopened = new SqliteStore(file);
  const year = 365 * 86_400_000;
  const cases: [string, number, number, number][] = [
    ['last day, 5m', end - 86_400_000, end, 300_000],
    ['last week, 1h', end - 7 * 86_400_000, end, 3_600_000],
    ['last month, 1h', end - 30 * 86_400_000, end, 3_600_000],
    ['last year, 1d', end - year, end, 86_400_000],
  ];
  for (const [name, from, to, bucketMs] of cases) {
    t = performance.now();
    const rows = await reopened.historyBuckets(device.id, 'temp', { from, to, bucketMs, limit: 2000 });
    const ms = performance.now() - t;
    console.log(`${name.padEnd(24)} ${String(rows.length).padStart(5)} buckets  ${ms.toFixed(0).padStart(6)} ms  ${(JSON.stringify(rows).length / 1024).toFixed(0)} KB`);
  }
  await reopened.close();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
