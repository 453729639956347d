/**
 * Where binary chunks should live: measures storing 50 KB frames (with the per-device budget pruning the oldest)
 * and reading the newest back, in SQLite and PostgreSQL blobs and in files under a data dir with the index in SQLite.
 * Run: node --import tsx bench/blob-storage.ts [frames]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../src/store/sqlite.js';
import { PostgresStore } from '../src/store/postgres.js';
import type { Store } from '../src/store/types.js';

const FRAMES = Number(process.argv[2] ?? 600);
const SIZE = 50_000;
const BUDGET = 8 * 1024 * 1024;
const frames = Array.from({ length: 16 }, () => crypto.randomBytes(SIZE));

async function viaStore(name: string, store: Store): Promise<void> {
  const user = await store.createUser({ email: `bench-${Date.now()}@example.com`, name: 'b', passwordHash: 'x' });
  const id = `BENCH${Date.now().toString().slice(-8)}XXXXXXX`.slice(0, 20);
  await store.createDevice({ id, userId: user.id, name: 'cam', keyHash: 'h' });
  let t = process.hrtime.bigint();
  for (let i = 0; i < FRAMES; i++) await store.appendBlobs([{ deviceId: id, sensor: 'cam', side: 'device', type: 'image/jpeg', data: frames[i % 16], time: Date.now() }], BUDGET);
  const writeMs = Number(process.hrtime.bigint() - t) / 1e6;
  t = process.hrtime.bigint();
  for (let i = 0; i < 200; i++) await store.latestBlob(id, 'cam');
  const readMs = Number(process.hrtime.bigint() - t) / 1e6;
  report(name, writeMs, readMs, await store.blobBytes(id));
  await store.deleteDevice(id);
}

function viaFiles(dir: string): void {
  const db = new Database(path.join(dir, 'index.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE blobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, sensor TEXT, size INTEGER, time INTEGER)');
  const insert = db.prepare('INSERT INTO blobs (sensor, size, time) VALUES (?, ?, ?) RETURNING seq');
  const total = db.prepare('SELECT COALESCE(SUM(size),0) AS n FROM blobs');
  const oldest = db.prepare('SELECT seq, size FROM blobs ORDER BY seq LIMIT 1');
  const drop = db.prepare('DELETE FROM blobs WHERE seq = ?');
  const newest = db.prepare('SELECT seq FROM blobs ORDER BY seq DESC LIMIT 1');
  let t = process.hrtime.bigint();
  for (let i = 0; i < FRAMES; i++) {
    // Written to a temporary name and renamed, then indexed: what a crash-safe file store must do.
    const seq = (insert.get('cam', SIZE, Date.now()) as { seq: number }).seq;
    const file = path.join(dir, `${seq}.bin`);
    fs.writeFileSync(`${file}.tmp`, frames[i % 16]);
    fs.renameSync(`${file}.tmp`, file);
    while ((total.get() as { n: number }).n > BUDGET) {
      const o = oldest.get() as { seq: number };
      drop.run(o.seq);
      fs.rmSync(path.join(dir, `${o.seq}.bin`), { force: true });
    }
  }
  const writeMs = Number(process.hrtime.bigint() - t) / 1e6;
  t = process.hrtime.bigint();
  for (let i = 0; i < 200; i++) fs.readFileSync(path.join(dir, `${(newest.get() as { seq: number }).seq}.bin`));
  const readMs = Number(process.hrtime.bigint() - t) / 1e6;
  report('files + SQLite index', writeMs, readMs, (total.get() as { n: number }).n);
  db.close();
}

function report(name: string, writeMs: number, readMs: number, kept: number): void {
  const mb = (FRAMES * SIZE) / 1e6;
  console.log(`| ${name} | ${(FRAMES / (writeMs / 1000)).toFixed(0)} | ${(mb / (writeMs / 1000)).toFixed(1)} | ${(readMs / 200).toFixed(2)} | ${(kept / 1e6).toFixed(1)} |`);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotc-blob-bench-'));
try {
  console.log(`${FRAMES} frames of ${SIZE / 1000} KB, budget ${BUDGET / 1048576} MiB per device`);
  console.log('| Where | frames/s stored | MB/s | newest read (ms) | MB kept |\n| --- | --- | --- | --- | --- |');
  const sqlite = new SqliteStore(path.join(dir, 'iotc.db'));
  await viaStore('SQLite blob', sqlite);
  await sqlite.close();
  try {
    const pg = await PostgresStore.open(process.env.IOTC_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres?schema=iotc_blob_bench');
    await viaStore('PostgreSQL bytea', pg);
    await pg.close();
  } catch (err) {
    console.log(`| PostgreSQL bytea | (not measured: ${(err as Error).message}) | | | |`);
  }
  const files = path.join(dir, 'files');
  fs.mkdirSync(files);
  viaFiles(files);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
