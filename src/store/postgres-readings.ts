import type pg from 'pg';
import type { PostgresAccess } from './calls-postgres.js';
import { bucketsSql, POSTGRES_NUMERIC, toBucket, toRawBucket } from './buckets.js';
import type { BucketRow } from './buckets.js';
import { planRollup } from './rollup.js';
import type { SensorKey } from './rollup.js';
import { PostgresRollup } from './rollup-postgres.js';
import type { Side } from './device-types.js';
import { READING_OVERHEAD_BYTES } from './reading-types.js';
import type { BucketQuery, HistoryBucket, HistoryQuery, LatestWeight, NewReading, RetentionPolicy, SensorPage, StoredReading } from './reading-types.js';
import { READING_COLS, toReading } from './rows.js';
import type { ReadingRow } from './rows.js';

/** Whether a reading (aliased r) is not its key's latest, which retention by count or bytes keeps. */
const KEEPS_LATEST = 'NOT EXISTS (SELECT 1 FROM latest l WHERE l.device_id = r.device_id AND l.sensor = r.sensor AND l.side = r.side AND l.seq = r.seq)';

/** Readings in the PostgreSQL store: the readings table, each sensor's latest value, and history with its hourly rollup. */
export class PostgresReadings {
  private readonly rollup: PostgresRollup;

  constructor(private readonly db: PostgresAccess) {
    this.rollup = new PostgresRollup(db, async (c, deviceId, sensor, q) => (await this.rawBuckets(c, deviceId, sensor, q)).map(toRawBucket));
  }

  /**
   * One statement, so one round trip and its own transaction: a multi-row insert from arrays, then the
   * newest reading of each (device, sensor, side) moved into the latest table, in key order so concurrent
   * batches lock rows in the same order, and only forward so a slower node cannot put back an older value.
   */
  async appendReadings(readings: NewReading[]): Promise<StoredReading[]> {
    if (readings.length === 0) return [];
    const n = readings.length;
    const ids = new Array<string>(n);
    const sensors = new Array<string>(n);
    const sides = new Array<string>(n);
    const values = new Array<string>(n);
    const times = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const r = readings[i];
      ids[i] = r.deviceId;
      sensors[i] = r.sensor;
      sides[i] = r.side;
      values[i] = r.json ?? JSON.stringify(r.value);
      times[i] = r.time;
    }
    const { rows } = await this.db.q<{ seq: number }>(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
           WITH ORDINALITY AS t(device_id, sensor, side, value, time, ord)
       ), ins AS (
         INSERT INTO readings (device_id, sensor, side, value, time)
         SELECT device_id, sensor, side, value, time FROM input ORDER BY ord
         RETURNING seq, device_id, sensor, side, value, time
       ), up AS (
         INSERT INTO latest (device_id, sensor, side, seq, value, time)
         SELECT DISTINCT ON (device_id, sensor, side) device_id, sensor, side, seq, value, time
         FROM ins ORDER BY device_id, sensor, side, seq DESC
         ON CONFLICT (device_id, sensor, side) DO UPDATE SET seq = excluded.seq, value = excluded.value, time = excluded.time
         WHERE latest.seq < excluded.seq
       )
       SELECT seq FROM ins`,
      [ids, sensors, sides, values, times],
      'iotc_append_readings',
    );
    // Sequence numbers are drawn in insertion order, which is input order: the i-th smallest is the i-th reading's.
    const seqs = rows.map((r) => r.seq).sort((a, b) => a - b);
    return readings.map((r, i) => ({ seq: seqs[i], deviceId: r.deviceId, sensor: r.sensor, side: r.side, value: r.value, time: r.time }));
  }

  async latest(deviceId: string, sensor: string, side?: Side): Promise<StoredReading | null> {
    const { rows } = side
      ? await this.db.q<ReadingRow>(`SELECT ${READING_COLS} FROM latest WHERE device_id = $1 AND sensor = $2 AND side = $3`, [deviceId, sensor, side], 'iotc_latest_side')
      : await this.db.q<ReadingRow>(`SELECT ${READING_COLS} FROM latest WHERE device_id = $1 AND sensor = $2 ORDER BY seq DESC LIMIT 1`, [deviceId, sensor], 'iotc_latest_any');
    return rows[0] ? toReading(rows[0]) : null;
  }

  async latestAll(deviceId: string, side?: Side, page: SensorPage = {}): Promise<StoredReading[]> {
    const params: unknown[] = [deviceId];
    const where = ['device_id = $1'];
    if (side) where.push(`side = $${params.push(side)}`);
    if (page.after !== undefined) where.push(`sensor > $${params.push(page.after)}`);
    let sql = side
      ? `SELECT ${READING_COLS} FROM latest WHERE ${where.join(' AND ')} ORDER BY sensor`
      : `SELECT DISTINCT ON (sensor) ${READING_COLS} FROM latest WHERE ${where.join(' AND ')} ORDER BY sensor, seq DESC`;
    if (page.maxBytes !== undefined) {
      sql = `SELECT ${READING_COLS} FROM (SELECT *, SUM(length(value)) OVER (ORDER BY sensor ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
        FROM (${sql}) listed) counted WHERE before IS NULL OR before <= $${params.push(page.maxBytes)} ORDER BY sensor`;
    }
    const { rows } = await this.db.q<ReadingRow>(sql, params);
    return rows.map(toReading);
  }

  async latestWeights(deviceId: string): Promise<LatestWeight[]> {
    const sql = `SELECT sensor, side, octet_length(value) + ${READING_OVERHEAD_BYTES} AS bytes FROM latest WHERE device_id = $1`;
    return (await this.db.q<LatestWeight>(sql, [deviceId], 'iotc_latest_weights')).rows;
  }

  async latestSince(deviceId: string, side: Side, afterSeq: number): Promise<StoredReading[]> {
    const { rows } = await this.db.q<ReadingRow>(
      `SELECT ${READING_COLS} FROM latest WHERE device_id = $1 AND side = $2 AND seq > $3 ORDER BY seq`,
      [deviceId, side, afterSeq],
      'iotc_latest_since',
    );
    return rows.map(toReading);
  }

  async history(deviceId: string, sensor: string, q: HistoryQuery): Promise<StoredReading[]> {
    const where = ['device_id = $1', 'sensor = $2'];
    const params: unknown[] = [deviceId, sensor];
    const add = (sql: string, v: unknown) => (params.push(v), where.push(sql.replace('?', `$${params.length}`)));
    if (q.from !== undefined) add('time >= ?', q.from);
    if (q.to !== undefined) add('time <= ?', q.to);
    if (q.side !== undefined) add('side = ?', q.side);
    params.push(q.limit);
    // A range reads forward from its start; a bare limit means "the most recent N".
    const newestFirst = q.from === undefined;
    const dir = newestFirst ? 'DESC' : 'ASC';
    const order = `ORDER BY time ${dir}, seq ${dir}`;
    let sql = `SELECT ${READING_COLS} FROM readings WHERE ${where.join(' AND ')} ${order} LIMIT $${params.length}`;
    if (q.maxBytes !== undefined) {
      // What the rows before each one hold, summed in the database: the values past the bound are never sent here.
      params.push(q.maxBytes);
      sql = `SELECT ${READING_COLS} FROM (SELECT *, SUM(length(value)) OVER (${order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
        FROM (${sql}) limited) counted WHERE before IS NULL OR before <= $${params.length} ${order}`;
    }
    const { rows } = await this.db.q<ReadingRow>(sql, params);
    const out = rows.map(toReading);
    return newestFirst ? out.reverse() : out;
  }

  rollupSensors(after: SensorKey | null, limit: number): Promise<SensorKey[]> {
    return this.rollup.sensorsAfter(after, limit);
  }

  fillRollup(deviceId: string, sensor: string, now: number, maxHours: number): Promise<number> {
    return this.rollup.fillSlice(deviceId, sensor, now, maxHours);
  }

  async historyBuckets(deviceId: string, sensor: string, q: BucketQuery): Promise<HistoryBucket[]> {
    const plan = planRollup(q, Date.now());
    if (plan) return this.rollup.buckets(deviceId, sensor, q, plan);
    return (await this.rawBuckets(null, deviceId, sensor, q)).map(toBucket);
  }

  /** Aggregated history straight from the readings, on `c` (a transaction) or the pool. */
  async rawBuckets(c: pg.PoolClient | null, deviceId: string, sensor: string, q: BucketQuery): Promise<BucketRow[]> {
    const source = `(SELECT time, seq, value FROM readings WHERE device_id = $3 AND sensor = $4 AND time >= $5 AND time <= $6${q.side ? ' AND side = $7' : ''}) AS src`;
    const params: unknown[] = [q.bucketMs, q.limit, deviceId, sensor, q.from, q.to];
    if (q.side) params.push(q.side);
    const sql = bucketsSql(POSTGRES_NUMERIC, source, (n) => `$${n}::bigint`);
    return (c ? await c.query<BucketRow>(sql, params) : await this.db.q<BucketRow>(sql, params)).rows;
  }

  /** Deletes readings outside the policy on `c`, which holds the prune lock; returns how many went. */
  async prune(c: pg.PoolClient, policy: RetentionPolicy, now: number): Promise<number> {
    let removed = 0;
    if (policy.maxAgeMs > 0) {
      // Sensors not written for the whole age go first, so their last readings are pruned with the rest.
      await c.query('DELETE FROM latest WHERE time < $1', [now - policy.maxAgeMs]);
      const aged = (await c.query(`DELETE FROM readings r WHERE time < $1 AND ${KEEPS_LATEST}`, [now - policy.maxAgeMs])).rowCount ?? 0;
      if (aged > 0) await this.rollup.forgetBefore(c, null, now - policy.maxAgeMs - 1);
      removed += aged;
    }
    if (policy.maxCount > 0) {
      const over = await c.query<{ device_id: string }>('SELECT device_id FROM readings GROUP BY device_id HAVING COUNT(*) > $1', [policy.maxCount]);
      for (const { device_id } of over.rows) {
        // The time of the newest reading deleted, so the rollup forgets the hours up to it.
        removed += await this.dropUpTo(c, device_id, 'SELECT seq FROM readings WHERE device_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2', policy.maxCount);
      }
    }
    return removed;
  }

  /** Store.pruneDeviceBytes, in the transaction `c`. */
  pruneDeviceBytes(c: pg.PoolClient, deviceId: string, maxBytes: number): Promise<number> {
    // The newest reading that does not fit with every newer one: it and older ones go.
    const cut = `SELECT MAX(seq) FROM (SELECT seq, SUM(octet_length(value) + ${READING_OVERHEAD_BYTES}) OVER (ORDER BY seq DESC) AS held
      FROM readings WHERE device_id = $1) w WHERE held > $2`;
    return this.dropUpTo(c, deviceId, cut, maxBytes);
  }

  /**
   * Deletes the device's readings up to the seq that `lastSql` selects (from $1, the device, and $2, `arg`), but
   * for each key's latest; tells the rollup; returns how many went.
   */
  private async dropUpTo(c: pg.PoolClient, deviceId: string, lastSql: string, arg: number): Promise<number> {
    // The time of the newest reading deleted, so the rollup forgets the hours up to it.
    const { rows: [gone] } = await c.query<{ n: number; newest: number | null }>(
      `WITH d AS (DELETE FROM readings r WHERE device_id = $1 AND seq <= (${lastSql}) AND ${KEEPS_LATEST} RETURNING time)
       SELECT COUNT(*)::bigint AS n, MAX(time) AS newest FROM d`,
      [deviceId, arg],
    );
    if (gone.newest !== null) await this.rollup.forgetBefore(c, deviceId, gone.newest);
    return gone.n;
  }
}
