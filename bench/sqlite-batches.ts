/**
 * What storing a reading costs in SQLite, by commit size and by how many devices a commit touches:
 * the first layout (each reading indexed in readings at commit), the store as shipped (chunks appended to the
 * journal at commit, moved into the indexed chunk table in bulk), another build's store when given
 * (`--baseline DIR`, its dist/ folder: the journal of single readings before chunks), and two raw-SQL layouts
 * measured before choosing. CPU of this process (the journal's move included) and WAL bytes, per reading.
 *   node --import tsx bench/sqlite-batches.ts [--baseline DIR]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { SqliteStore } from '../src/store/sqlite.js';
import { SQLITE_MIGRATIONS } from '../src/store/sqlite-migrations.js';
import type { NewReading } from '../src/store/types.js';

type StoreClass = new (file: string, journal: { everyMs: number; batch: number; checkpointMs: number }) => SqliteStore;
const { values: args } = parseArgs({ options: { baseline: { type: 'string' } } });
const Baseline = args.baseline
  ? ((await import(pathToFileURL(path.join(path.resolve(args.baseline), 'store/sqlite.js')).href)) as { SqliteStore: StoreClass }).SqliteStore
  : null;

const N = 100_000;
const ids = (d: number) => Array.from({ length: d }, (_, i) => `BENCH${String(i).padStart(15, '0')}`);
const value = (n: number, d: number) => ({ d, n, t: 123456789.123 });

interface Result {
  cpuUs: number;
  walBytes: number;
}

/** The readings layout before the journal: each reading inserted into readings (and its two indexes) at commit. */
async function direct(batch: number, devices: number, dir: string): Promise<Result> {
  // Schema and statements as the store had them; checkpoints off so the WAL size counts every page written.
  const db = new Database(path.join(dir, 'direct.db'));
  db.exec(SQLITE_MIGRATIONS[0]);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
  const insert = db.prepare('INSERT INTO readings (device_id, sensor, side, value, time) VALUES (?, ?, ?, ?, ?)');
  const latest = db.prepare(`INSERT INTO latest (device_id, sensor, side, seq, value, time) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (device_id, sensor, side) DO UPDATE SET seq = excluded.seq, value = excluded.value, time = excluded.time`);
  const tx = db.transaction((rows: [string, string, number][]) => {
    const last = new Map<string, [number, string, number]>();
    for (const [id, v, t] of rows) last.set(id, [Number(insert.run(id, 'temp', 'device', v, t).lastInsertRowid), v, t]);
    for (const [id, [seq, v, t]] of last) latest.run(id, 'temp', 'device', seq, v, t);
  });
  return commitAll(db, path.join(dir, 'direct.db'), tx, batch, devices);
}

/** A store build: appendReadings into its journal, settle() moving batches into the indexed table. */
async function journal(Store: StoreClass, batch: number, devices: number, dir: string): Promise<Result> {
  const file = path.join(dir, `journal-${Store === SqliteStore ? 'shipped' : 'baseline'}.db`);
  // Timers far off: this loop decides when the journal moves, and no background checkpoint runs.
  const store = new Store(file, { everyMs: 3_600_000, batch: 5000, checkpointMs: 3_600_000 });
  const devs = ids(devices);
  const c0 = process.cpuUsage();
  let pending = 0;
  for (let n = 0; n < N; ) {
    const rows: NewReading[] = [];
    for (let i = 0; i < batch; i++, n++) rows.push({ deviceId: devs[n % devices], sensor: 'temp', side: 'device', value: value(n, n % devices), time: n });
    await store.appendReadings(rows);
    // Every 5 000 readings the journal is moved whole, whatever its rows hold (a reading, or a chunk of them).
    pending += batch;
    if (pending >= 5000) {
      while (store.settle() > 0);
      pending = 0;
    }
  }
  while (store.settle() > 0);
  const c = process.cpuUsage(c0);
  const walBytes = fs.statSync(`${file}-wal`).size;
  await store.close();
  return { cpuUs: (c.user + c.system) / N, walBytes: walBytes / N };
}

/** Options for writing each reading once, measured before choosing (issue 15): raw SQL, same value encoding. */
type Layout = 'one-index' | 'chunked';
async function writeOnce(layout: Layout, batch: number, devices: number, dir: string): Promise<Result> {
  const file = path.join(dir, `${layout}.db`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec(`CREATE TABLE latest (device_id TEXT NOT NULL, sensor TEXT NOT NULL, side TEXT NOT NULL, seq INTEGER NOT NULL, value TEXT NOT NULL,
    time INTEGER NOT NULL, PRIMARY KEY (device_id, sensor, side)) WITHOUT ROWID`);
  if (layout === 'one-index') {
    // readings as before, but only the (device, sensor, time) index: sync and pruning by count read latest/seq ranges.
    db.exec(`CREATE TABLE readings (seq INTEGER PRIMARY KEY, device_id TEXT NOT NULL, sensor TEXT NOT NULL, side TEXT NOT NULL, value TEXT NOT NULL, time INTEGER NOT NULL);
      CREATE INDEX readings_by_sensor ON readings(device_id, sensor, time);`);
  } else {
    // One row per device, sensor and side per commit: its readings' seqs, times and values in one JSON array.
    db.exec(`CREATE TABLE reading_chunks (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, sensor TEXT NOT NULL, side TEXT NOT NULL,
      first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, time_from INTEGER NOT NULL, time_to INTEGER NOT NULL, readings TEXT NOT NULL);
      CREATE INDEX chunks_by_sensor ON reading_chunks(device_id, sensor, time_from);`);
  }
  const latest = db.prepare(`INSERT INTO latest (device_id, sensor, side, seq, value, time) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (device_id, sensor, side) DO UPDATE SET seq = excluded.seq, value = excluded.value, time = excluded.time`);
  const insert = layout === 'one-index' ? db.prepare('INSERT INTO readings (device_id, sensor, side, value, time) VALUES (?, ?, ?, ?, ?)') : null!;
  const chunk = layout === 'one-index' ? null! : db.prepare('INSERT INTO reading_chunks (device_id, sensor, side, first_seq, last_seq, time_from, time_to, readings) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  let seq = 0;
  const tx = db.transaction((rows: [string, string, number][]) => {
    const last = new Map<string, [number, string, number]>();
    if (layout === 'one-index') {
      for (const [id, v, t] of rows) last.set(id, [Number(insert.run(id, 'temp', 'device', v, t).lastInsertRowid), v, t]);
    } else {
      const byDevice = new Map<string, [number, string, number][]>();
      for (const [id, v, t] of rows) {
        const list = byDevice.get(id) ?? (byDevice.set(id, []), byDevice.get(id)!);
        list.push([++seq, v, t]);
        last.set(id, [seq, v, t]);
      }
      for (const [id, list] of byDevice) {
        const json = `[${list.map(([n, v, t]) => `[${n},${t},${v}]`).join(',')}]`;
        chunk.run(id, 'temp', 'device', list[0][0], list[list.length - 1][0], list[0][2], list[list.length - 1][2], json);
      }
    }
    for (const [id, [n, v, t]] of last) latest.run(id, 'temp', 'device', n, v, t);
  });
  return commitAll(db, file, tx, batch, devices);
}

/** Commits N readings through a raw-SQL layout's transaction, `batch` at a time; then closes the database. */
function commitAll(db: Database.Database, file: string, tx: Database.Transaction<(rows: [string, string, number][]) => void>, batch: number, devices: number): Result {
  const devs = ids(devices);
  const c0 = process.cpuUsage();
  for (let n = 0; n < N; ) {
    const rows: [string, string, number][] = [];
    for (let i = 0; i < batch; i++, n++) rows.push([devs[n % devices], JSON.stringify(value(n, n % devices)), n]);
    tx.immediate(rows);
  }
  const c = process.cpuUsage(c0);
  const walBytes = fs.statSync(`${file}-wal`).size;
  db.close();
  return { cpuUs: (c.user + c.system) / N, walBytes: walBytes / N };
}

const cases: [number, number][] = [[10, 100], [100, 100], [1000, 100], [10, 20], [300, 20], [500, 10]];
console.log('readings per commit × devices, per reading (CPU of this process, WAL bytes):');
console.log(`              indexed at commit    |  chunks, journal (as shipped)${Baseline ? '  |  baseline build        ' : ''}  |  readings, one index    |  chunked, raw (row per device per commit)`);
for (const [batch, devices] of cases) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotc-sqlite-batches-'));
  try {
    const kb = (x: number) => `${(x / 1024).toFixed(2)} KiB`;
    const cell = (r: Result) => `${r.cpuUs.toFixed(1).padStart(5)} µs, ${kb(r.walBytes).padStart(9)}`;
    const a = await direct(batch, devices, dir);
    const b = await journal(SqliteStore, batch, devices, dir);
    const base = Baseline ? `  |  ${cell(await journal(Baseline, batch, devices, dir))}` : '';
    const c = await writeOnce('one-index', batch, devices, dir);
    const d = await writeOnce('chunked', batch, devices, dir);
    console.log(`${String(batch).padStart(5)} × ${String(devices).padStart(3)}:  ${cell(a)}  |  ${cell(b)}${base}  |  ${cell(c)}  |  ${cell(d)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
