/**
 * What aggregated history costs: N one-minute readings of one sensor (written straight into the SQLite chunk
 * table as the store's journal move leaves them, one a chunk, or into PostgreSQL's readings table, as years of a
 * device would be; retention is not running here, so nothing is pruned), then the bucket queries a chart makes:
 * straight from the readings ("raw"), the first time through the hourly rollup (which fills the hours not yet in
 * it: "cold"; the cases run in order, so a longer range fills only what the shorter ones did not) and again
 * ("warm"). Rounds alternate raw and warm; medians are reported.
 * With --prefill, the background fill (src/core/rollup-fill.ts) first runs over the whole history, slice after
 * slice as its ticks would; its slices are timed (what each holds the event loop in SQLite), and "cold" is then
 * the first chart after it.
 * Usage: node --import tsx bench/history-buckets.ts [N=10000000] [postgres://…/db] [--prefill]   (SQLite without a URL)
 */
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SqliteStore } from '../src/store/sqlite.js';
import { PostgresStore } from '../src/store/postgres.js';
import type { BucketQuery, HistoryBucket, Store } from '../src/store/types.js';
import { CHUNK_COLS, toChunks } from '../src/store/sqlite-chunks.js';
import { ROLLUP_FILL_DEFAULTS } from '../src/core/rollup-fill.js';

const args = process.argv.slice(2).filter((a) => a !== '--prefill');
const prefill = process.argv.includes('--prefill');
const n = Number(args[0] ?? 10_000_000);
const pgUrl = args[1];
const ROUNDS = 3;
const end = Date.UTC(2026, 0, 1);
const start = end - n * 60_000;
/** Every tenth value a numeric string, as original clients send. */
const valueOf = (i: number) => (i % 10 === 0 ? `"${(20 + Math.sin(i / 1440) * 5).toFixed(2)}"` : (20 + Math.sin(i / 1440) * 5).toFixed(2));

async function sqliteFixture(): Promise<{ store: Store; raw: Raw; done: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iotc-buckets-'));
  const file = path.join(dir, 'iotc.db');
  const first = new SqliteStore(file);
  const user = await first.createUser({ email: 'bench@example.com', name: 'Bench', passwordHash: 'x' });
  const device = await first.createDevice({ id: 'BENCHBUCKETS00000000', userId: user.id, name: 'Bench', keyHash: 'x' });
  await first.close();
  const db = new Database(file);
  const insert = db.prepare(`INSERT INTO reading_chunks (${CHUNK_COLS}) VALUES (?, 'temp', 'device', ?, ?, ?, ?, ?, ?)`);
  const load = db.transaction((from: number, to: number) => {
    // A reading a minute reaches each move of the journal alone: the store keeps it as a chunk of one.
    for (let i = from; i < to; i++) {
      for (const c of toChunks([{ seq: i + 1, time: start + i * 60_000, json: valueOf(i) }])) insert.run(device.id, c.seqFrom, c.seqTo, c.timeFrom, c.timeTo, c.n, c.data);
    }
  });
  for (let i = 0; i < n; i += 500_000) load(i, Math.min(n, i + 500_000));
  db.close();
  console.log(`SQLite: file ${(fs.statSync(file).size / 1e6).toFixed(0)} MB`);
  const store = new SqliteStore(file);
  return { store, raw: rawOf(store), done: async () => (await store.close(), fs.rmSync(dir, { recursive: true, force: true })) };
}

async function postgresFixture(url: string): Promise<{ store: Store; raw: Raw; done: () => Promise<void> }> {
  const schema = `bench_${crypto.randomBytes(4).toString('hex')}`;
  const u = new URL(url);
  u.searchParams.set('schema', schema);
  const store = await PostgresStore.open(u.toString());
  const user = await store.createUser({ email: 'bench@example.com', name: 'Bench', passwordHash: 'x' });
  const device = await store.createDevice({ id: 'BENCHBUCKETS00000000', userId: user.id, name: 'Bench', keyHash: 'x' });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  // The same values as SQLite's, made by the server: sin() and to_char agree to the two decimals kept.
  for (let i = 0; i < n; i += 1_000_000) {
    await client.query(
      `INSERT INTO ${schema}.readings (device_id, sensor, side, value, time)
       SELECT $1, 'temp', 'device', CASE WHEN i % 10 = 0 THEN '"' || v || '"' ELSE v END, $2::bigint + i * 60000
       FROM (SELECT i, trim(to_char(20 + sin(i / 1440.0) * 5, 'FM990.00')) AS v FROM generate_series($3::bigint, $4::bigint) AS i) AS s`,
      [device.id, start, i, Math.min(n, i + 1_000_000) - 1],
    );
  }
  await client.query(`VACUUM ANALYZE ${schema}.readings`);
  const { rows } = await client.query(`SELECT pg_size_pretty(pg_total_relation_size('${schema}.readings')) AS size`);
  console.log(`PostgreSQL: readings ${rows[0].size}`);
  return {
    store,
    raw: rawOf(store),
    done: async () => {
      await store.close();
      await client.query(`DROP SCHEMA ${schema} CASCADE`);
      await client.end();
    },
  };
}

type Raw = (deviceId: string, sensor: string, q: BucketQuery) => Promise<unknown[]>;
/** The store's raw bucket query, past the rollup: what every query cost before it. */
const rawOf = (store: Store): Raw => {
  // Private on purpose: reached here only to time the raw query beside the rollup.
  const s = store as unknown as { readings: { rawBuckets(...args: unknown[]): unknown } };
  return async (deviceId, sensor, q) => (await (store.kind === 'sqlite' ? s.readings.rawBuckets(deviceId, sensor, q) : s.readings.rawBuckets(null, deviceId, sensor, q))) as unknown[];
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`);

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const out = await fn();
  return [performance.now() - t, out];
}

const t0 = performance.now();
const { store, raw, done } = pgUrl ? await postgresFixture(pgUrl) : await sqliteFixture();
console.log(`loaded ${n} readings (${((end - start) / 86_400_000 / 365).toFixed(1)} years of one a minute) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
try {
  const year = 365 * 86_400_000;
  const cases: [string, number, number, number][] = [
    ['last day, 5m', end - 86_400_000, end, 300_000],
    ['last week, 1h', end - 7 * 86_400_000, end, 3_600_000],
    ['last month, 1h', end - 30 * 86_400_000, end, 3_600_000],
    ['last year, 1d', end - year, end, 86_400_000],
    ['last 83 days, 1h', end - 83 * 86_400_000, end, 3_600_000],
  ];
  const device = 'BENCHBUCKETS00000000';
  if (prefill) {
    const slices: number[] = [];
    const t = performance.now();
    for (;;) {
      const [took, hours] = await timed(() => store.fillRollup(device, 'temp', Date.now(), ROLLUP_FILL_DEFAULTS.sliceHours));
      if (hours === 0) break;
      slices.push(took);
    }
    const sorted = [...slices].sort((a, b) => a - b);
    console.log(`prefill: ${slices.length} slices of ${ROLLUP_FILL_DEFAULTS.sliceHours} h in ${ms(performance.now() - t)}; per slice median ${ms(median(slices))}, p99 ${ms(sorted[Math.floor(sorted.length * 0.99)])}, max ${ms(sorted.at(-1)!)}`);
  }
  console.log(`${'range, bucket'.padEnd(26)} buckets      raw     cold     warm  reply`);
  for (const [name, from, to, bucketMs] of cases) {
    const q = { from, to, bucketMs, limit: 2000 };
    // Once untimed, so the first ("cold") query finds the readings' pages in memory as the raw rounds do.
    await raw(device, 'temp', q);
    const [cold, rows] = await timed<HistoryBucket[]>(() => store.historyBuckets(device, 'temp', q));
    const raws: number[] = [];
    const warms: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      raws.push((await timed(() => raw(device, 'temp', q)))[0]);
      warms.push((await timed(() => store.historyBuckets(device, 'temp', q)))[0]);
    }
    console.log(`${name.padEnd(26)} ${String(rows.length).padStart(7)} ${ms(median(raws)).padStart(8)} ${ms(cold).padStart(8)} ${ms(median(warms)).padStart(8)}  ${(JSON.stringify(rows).length / 1024).toFixed(0)} KB`);
  }
} finally {
  await done();
}
