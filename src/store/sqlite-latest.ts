import type Database from 'better-sqlite3';
import type { Side } from './device-types.js';
import { READING_OVERHEAD_BYTES } from './reading-types.js';
import type { LatestWeight, SensorPage, StoredReading } from './reading-types.js';
import { READING_COLS, toReading } from './rows.js';
import type { ReadingRow } from './rows.js';
import type { SqliteReadings } from './sqlite-readings.js';

/**
 * Reads of the latest table: each sensor's newest value per side. Every read first has the readings write
 * what commits left for it (writeLatest), since a commit does not write this table itself.
 */
export class SqliteLatest {
  private readonly stmt;

  constructor(
    private readonly db: Database.Database,
    private readonly readings: SqliteReadings,
  ) {
    this.stmt = {
      latestAny: db.prepare(`SELECT ${READING_COLS} FROM latest WHERE device_id = ? AND sensor = ? ORDER BY seq DESC LIMIT 1`),
      latestSide: db.prepare(`SELECT ${READING_COLS} FROM latest WHERE device_id = ? AND sensor = ? AND side = ?`),
      latestAllAny: db.prepare(`SELECT ${READING_COLS} FROM latest l WHERE device_id = ?
        AND seq = (SELECT MAX(seq) FROM latest m WHERE m.device_id = l.device_id AND m.sensor = l.sensor) ORDER BY sensor`),
      latestAllSide: db.prepare(`SELECT ${READING_COLS} FROM latest WHERE device_id = ? AND side = ? ORDER BY sensor`),
      latestWeights: db.prepare(`SELECT sensor, side, octet_length(value) + ${READING_OVERHEAD_BYTES} AS bytes FROM latest WHERE device_id = ?`),
      latestSince: db.prepare(`SELECT ${READING_COLS} FROM latest WHERE device_id = ? AND side = ? AND seq > ? ORDER BY seq`),
    };
  }

  latest(deviceId: string, sensor: string, side?: Side): StoredReading | null {
    this.readings.writeLatest();
    const row = (side ? this.stmt.latestSide.get(deviceId, sensor, side) : this.stmt.latestAny.get(deviceId, sensor)) as
      | ReadingRow
      | undefined;
    return row ? toReading(row) : null;
  }

  latestAll(deviceId: string, side?: Side, page?: SensorPage): StoredReading[] {
    this.readings.writeLatest();
    if (page === undefined) {
      const rows = (side ? this.stmt.latestAllSide.all(deviceId, side) : this.stmt.latestAllAny.all(deviceId)) as ReadingRow[];
      return rows.map(toReading);
    }
    const where = ['device_id = ?'];
    const params: unknown[] = [deviceId];
    if (side) (where.push('side = ?'), params.push(side));
    else where.push('seq = (SELECT MAX(seq) FROM latest m WHERE m.device_id = l.device_id AND m.sensor = l.sensor)');
    if (page.after !== undefined) (where.push('sensor > ?'), params.push(page.after));
    let sql = `SELECT ${READING_COLS} FROM latest l WHERE ${where.join(' AND ')} ORDER BY sensor`;
    if (page.maxBytes !== undefined) {
      sql = `SELECT ${READING_COLS} FROM (SELECT *, SUM(length(value)) OVER (ORDER BY sensor ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
        FROM (${sql})) WHERE before IS NULL OR before <= ? ORDER BY sensor`;
      params.push(page.maxBytes);
    }
    return (this.db.prepare(sql).all(...params) as ReadingRow[]).map(toReading);
  }

  latestWeights(deviceId: string): LatestWeight[] {
    this.readings.writeLatest();
    return this.stmt.latestWeights.all(deviceId) as LatestWeight[];
  }

  latestSince(deviceId: string, side: Side, afterSeq: number): StoredReading[] {
    this.readings.writeLatest();
    return (this.stmt.latestSince.all(deviceId, side, afterSeq) as ReadingRow[]).map(toReading);
  }
}
