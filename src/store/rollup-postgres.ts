import type pg from 'pg';
import type { PostgresAccess } from './calls-postgres.js';
import { compose, fillablePart, gapsIn, HOUR_MS, hourQuery, mergedSpan, rollupBucketsSql, sensorsAfterSql, settledHours, sideKey, sliceToFill, slicePlan, withEdges } from './rollup.js';
import type { HourSpan, RawBucket, RollupParam, RollupPlan, SensorKey } from './rollup.js';
import type { BucketQuery, HistoryBucket } from './types.js';

/** The store's raw bucket query, on the given connection (a fill's transaction) or on the pool. */
export type PgRawBuckets = (c: pg.PoolClient | null, deviceId: string, sensor: string, q: BucketQuery) => Promise<RawBucket[]>;

const PARAMS: RollupParam[] = ['device', 'sensor', 'side', 'from', 'to', 'bucket'];
const HOUR_BUCKETS = rollupBucketsSql((name) => `$${PARAMS.indexOf(name) + 1}::${name === 'device' || name === 'sensor' || name === 'side' ? 'text' : 'bigint'}`);
const SPANS = 'SELECT lo, hi FROM reading_hour_spans WHERE device_id = $1 AND sensor = $2 AND side = $3 AND hi >= $4 AND lo <= $5';

/**
 * The hourly rollup in PostgreSQL (see src/store/rollup.ts). Nodes fill at once under a shared lock; forgetting
 * takes it alone, after the readings went, so no fill that read them before can write its hours afterwards.
 */
export class PostgresRollup {
  constructor(
    private readonly db: PostgresAccess,
    private readonly raw: PgRawBuckets,
  ) {}

  async buckets(deviceId: string, sensor: string, q: BucketQuery, plan: RollupPlan): Promise<HistoryBucket[]> {
    const side = sideKey(q.side);
    const key = [deviceId, sensor, side, plan.hoursFrom, plan.hoursTo];
    const fillable = fillablePart(plan, await this.oldest(deviceId, sensor));
    if (fillable) {
      const { rows: spans } = await this.db.q<HourSpan>(SPANS, [deviceId, sensor, side, fillable.hoursFrom, fillable.hoursTo], 'iotc_rollup_spans');
      if (gapsIn(spans, fillable.hoursFrom, fillable.hoursTo).length > 0) await this.db.tx((c) => this.fill(c, deviceId, sensor, q, fillable));
    }
    const { rows: hours } = await this.db.q<RawBucket>(HOUR_BUCKETS, [...key, q.bucketMs], 'iotc_rollup_buckets');
    const rows = await withEdges(plan, q.side, (edge) => this.raw(null, deviceId, sensor, edge), hours);
    return compose(rows, q.bucketMs, q.limit);
  }

  private async oldest(deviceId: string, sensor: string): Promise<number | null> {
    const { rows } = await this.db.q<{ oldest: number | null }>('SELECT MIN(time) AS oldest FROM readings WHERE device_id = $1 AND sensor = $2', [deviceId, sensor], 'iotc_rollup_oldest');
    return rows[0].oldest;
  }

  async sensorsAfter(after: SensorKey | null, limit: number): Promise<SensorKey[]> {
    const { rows } = await this.db.q<SensorKey>(sensorsAfterSql((n) => `$${n}`), [after?.deviceId ?? '', after?.sensor ?? '', limit], 'iotc_rollup_sensors');
    return rows;
  }

  /**
   * The background fill's step for one sensor (see sliceToFill): the hours it filled, 0 when none lacked. Its
   * look-ups run on the pool; only the fill itself, a few hours of readings, holds a connection, in a transaction.
   */
  async fillSlice(deviceId: string, sensor: string, now: number, maxHours: number): Promise<number> {
    const oldest = await this.oldest(deviceId, sensor);
    if (oldest === null) return 0;
    const { rows: spans } = await this.db.q<HourSpan>(SPANS, [deviceId, sensor, '', oldest, settledHours(now)], 'iotc_rollup_spans');
    const slice = sliceToFill(spans, oldest, now, maxHours);
    if (!slice) return 0;
    await this.db.tx((c) => this.fill(c, deviceId, sensor, hourQuery(slice.lo, slice.hi - 1, undefined), slicePlan(slice)));
    return (slice.hi - slice.lo) / HOUR_MS;
  }

  private async fill(c: pg.PoolClient, deviceId: string, sensor: string, q: BucketQuery, plan: RollupPlan): Promise<void> {
    await c.query('SELECT pg_advisory_xact_lock_shared(hashtext($1))', [this.db.lockKey('rollup')]);
    const side = sideKey(q.side);
    // Read again under the lock: hours may have been filled, or forgotten, since.
    const { rows: spans } = await c.query<HourSpan>(SPANS, [deviceId, sensor, side, plan.hoursFrom, plan.hoursTo]);
    for (const gap of gapsIn(spans, plan.hoursFrom, plan.hoursTo)) {
      const hours = await this.raw(c, deviceId, sensor, hourQuery(gap.lo, gap.hi - 1, q.side));
      if (hours.length === 0) continue;
      await c.query(
        `INSERT INTO reading_hours (device_id, sensor, side, hour, min, max, sum, count, last)
         SELECT $1, $2, $3, * FROM unnest($4::bigint[], $5::float8[], $6::float8[], $7::float8[], $8::bigint[], $9::float8[])
         ON CONFLICT (device_id, sensor, side, hour) DO UPDATE
           SET min = excluded.min, max = excluded.max, sum = excluded.sum, count = excluded.count, last = excluded.last`,
        [deviceId, sensor, side, ...(['time', 'min', 'max', 'sum', 'count', 'last'] as const).map((f) => hours.map((h) => h[f]))],
      );
    }
    const merged = mergedSpan(spans, plan.hoursFrom, plan.hoursTo);
    await c.query('DELETE FROM reading_hour_spans WHERE device_id = $1 AND sensor = $2 AND side = $3 AND lo = ANY($4::bigint[])', [deviceId, sensor, side, spans.map((s) => s.lo)]);
    // Another node may have filled the same hours meanwhile: spans may overlap, never lose hours.
    await c.query(
      `INSERT INTO reading_hour_spans (device_id, sensor, side, lo, hi) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (device_id, sensor, side, lo) DO UPDATE SET hi = GREATEST(reading_hour_spans.hi, excluded.hi)`,
      [deviceId, sensor, side, merged.lo, merged.hi],
    );
  }

  /**
   * Readings at or before `time` were deleted (of one device, or of all), and committed: every hour that held
   * them is forgotten, to be filled again from what is left when next charted. On the deleting connection
   * `c`, outside any transaction of its own: a pool of one connection must not wait for a second.
   */
  async forgetBefore(c: pg.ClientBase, deviceId: string | null, time: number): Promise<void> {
    const cut = (Math.floor(time / HOUR_MS) + 1) * HOUR_MS;
    const device = deviceId === null ? '' : 'AND device_id = $2';
    const params = deviceId === null ? [cut] : [cut, deviceId];
    await c.query('BEGIN');
    try {
      await this.db.lock(c, 'rollup');
      await c.query(`DELETE FROM reading_hours WHERE hour < $1 ${device}`, params);
      // Spans starting before the cut now start at it (those ending before it go).
      await c.query(
        `WITH cut AS (DELETE FROM reading_hour_spans WHERE lo < $1 ${device} RETURNING device_id, sensor, side, hi)
         INSERT INTO reading_hour_spans (device_id, sensor, side, lo, hi)
         SELECT device_id, sensor, side, $1, MAX(hi) FROM cut WHERE hi > $1 GROUP BY device_id, sensor, side
         ON CONFLICT (device_id, sensor, side, lo) DO UPDATE SET hi = GREATEST(reading_hour_spans.hi, excluded.hi)`,
        params,
      );
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
}
