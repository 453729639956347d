/** Stores for the rollup's tests (test/rollup*.test.ts), and the aggregation by hand their answers are checked against. */
import crypto from 'node:crypto';
import path from 'node:path';
import { after } from 'node:test';
import Database from 'better-sqlite3';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { HOUR_MS } from '../src/store/rollup.js';
import type { HourSpan } from '../src/store/rollup.js';
import type { BucketQuery, HistoryBucket, NewReading, Side, Store } from '../src/store/types.js';
import { serviceAvailable, tempDir } from './helpers.js';
import { createTestDatabase } from './pg-helpers.js';
import type { TestDatabase } from './pg-helpers.js';

const pgUp = await serviceAvailable('PostgreSQL', 5432);
let pgDb: TestDatabase | null = null;
if (pgUp) {
  pgDb = await createTestDatabase();
  after(() => pgDb!.drop());
}

/** A store, and a way to count its rollup rows behind its back. */
export interface Opened {
  store: Store;
  hourRows(deviceId: string): Promise<number>;
  /** The spans of hours filled for a sensor and side ('' both), oldest first. */
  spans(deviceId: string, sensor: string, side: string): Promise<HourSpan[]>;
  done(): Promise<void>;
}

const SPANS = 'SELECT lo, hi FROM reading_hour_spans WHERE device_id = ? AND sensor = ? AND side = ? ORDER BY lo';

export const fixtures: Record<string, { skip: string | false; open(): Promise<Opened> }> = {
  sqlite: {
    skip: false,
    async open() {
      const tmp = tempDir('iotc-rollup-');
      const file = path.join(tmp.dir, 'iotc.db');
      const store = new SqliteStore(file);
      return {
        store,
        async hourRows(deviceId) {
          const db = new Database(file, { readonly: true });
          try {
            return (db.prepare('SELECT COUNT(*) AS n FROM reading_hours WHERE device_id = ?').get(deviceId) as { n: number }).n;
          } finally {
            db.close();
          }
        },
        async spans(deviceId, sensor, side) {
          const db = new Database(file, { readonly: true });
          try {
            return db.prepare(SPANS).all(deviceId, sensor, side) as HourSpan[];
          } finally {
            db.close();
          }
        },
        async done() {
          await store.close();
          tmp.cleanup();
        },
      };
    },
  },
  postgres: {
    skip: !pgUp && 'PostgreSQL not reachable',
    async open() {
      const schema = `s_${crypto.randomBytes(5).toString('hex')}`;
      // One connection: retention forgetting hours, and a fill, must never wait for a second one.
      const store = await PostgresStore.open(pgDb!.url(schema), { poolSize: 1 });
      return {
        store,
        async hourRows(deviceId) {
          const { rows } = await pgDb!.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM ${schema}.reading_hours WHERE device_id = $1`, [deviceId]);
          return rows[0].n;
        },
        async spans(deviceId, sensor, side) {
          return (await pgDb!.query<HourSpan>(`SELECT lo::float8 AS lo, hi::float8 AS hi FROM ${schema}.reading_hour_spans WHERE device_id = $1 AND sensor = $2 AND side = $3 ORDER BY lo`, [deviceId, sensor, side])).rows;
        },
        async done() {
          await store.close();
          await pgDb!.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        },
      };
    },
  },
};

/** What a reading counts as, the way the stores read it: JSON numbers and strings holding one. */
function numeric(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(value.trim())) return Number(value.trim());
  return null;
}

/** The aggregation by hand: `readings` in write order (their sequence numbers). */
export function expected(readings: readonly NewReading[], q: BucketQuery): HistoryBucket[] {
  const byBucket = new Map<number, { vs: number[]; last: number }>();
  for (const r of readings) {
    if (r.time < q.from || r.time > q.to || (q.side && r.side !== q.side)) continue;
    const v = numeric(r.value);
    if (v === null) continue;
    const time = Math.floor(r.time / q.bucketMs) * q.bucketMs;
    const b = byBucket.get(time) ?? { vs: [], last: NaN };
    b.vs.push(v);
    byBucket.set(time, b);
  }
  // Last: newest time, then the later write.
  const newest = new Map<number, NewReading>();
  for (const r of readings) {
    if (r.time < q.from || r.time > q.to || (q.side && r.side !== q.side) || numeric(r.value) === null) continue;
    const time = Math.floor(r.time / q.bucketMs) * q.bucketMs;
    const n = newest.get(time);
    if (!n || r.time >= n.time) newest.set(time, r);
  }
  return [...byBucket.entries()]
    .sort(([a], [b]) => a - b)
    .slice(0, q.limit)
    .map(([time, b]) => {
      const sum = b.vs.reduce((s, v) => s + v, 0);
      return { time, min: Math.min(...b.vs), max: Math.max(...b.vs), avg: sum / b.vs.length, count: b.vs.length, last: numeric(newest.get(time)!.value)! };
    });
}

export const DAY = 86_400_000;

/**
 * 45 days of readings up to a minute ago: every 37 minutes (so they fall anywhere in an hour), some exactly
 * on an hour's first and last millisecond, two at the same moment, numeric strings, values that are not
 * numbers, and an hour with nothing numeric. Numbers are multiples of 1/4, so every sum is exact.
 */
export function readingsFor(deviceId: string, now: number): NewReading[] {
  const start = Math.floor(now / HOUR_MS) * HOUR_MS - 45 * DAY;
  const out: NewReading[] = [];
  const add = (time: number, value: unknown, side: Side = 'device') => out.push({ deviceId, sensor: 'temp', value, side, time });
  let i = 0;
  for (let t = start - 30 * 60_000; t < now - 60_000; t += 37 * 60_000, i++) {
    const v = ((i * 7) % 23) * 0.25 - 2;
    const side: Side = i % 5 === 0 ? 'client' : 'device';
    if (i % 11 === 0) add(t, ` ${v} `, side);
    else if (i % 13 === 0) add(t, 'on', side);
    else if (i % 17 === 0) add(t, { x: v }, side);
    else add(t, v, side);
  }
  for (let d = 1; d < 44; d += 3) {
    const h = start + d * DAY + 5 * HOUR_MS;
    add(h, 100 + d);
    add(h - 1, -100 - d, 'client');
    add(h + HOUR_MS - 1, String(d / 4));
    add(h + 30 * 60_000, 7);
    add(h + 30 * 60_000, 8);
  }
  const silent = start + 20 * DAY + 2 * HOUR_MS;
  for (let k = 0; k < out.length; k++) if (out[k].time >= silent && out[k].time < silent + HOUR_MS) out[k] = { ...out[k], value: 'n/a' };
  out.sort((a, b) => a.time - b.time);
  return out;
}
