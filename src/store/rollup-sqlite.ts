import type Database from 'better-sqlite3';
import { compose, fillablePart, gapsIn, HOUR_MS, hourQuery, mergedSpan, rollupBucketsSql, sensorsAfterSql, settledHours, sideKey, sliceToFill, slicePlan, withEdges } from './rollup.js';
import type { HourSpan, RawBucket, RollupPlan, SensorKey } from './rollup.js';
import type { BucketQuery, HistoryBucket } from './types.js';

/** The store's own raw bucket query, off the event loop when it reads many readings. */
export type RawBuckets = (deviceId: string, sensor: string, q: BucketQuery) => Promise<RawBucket[]>;

/** The hourly rollup in SQLite (see src/store/rollup.ts). */
export class SqliteRollup {
  private readonly stmt;
  private readonly writeTx: Database.Transaction<(deviceId: string, sensor: string, side: string, plan: RollupPlan, hours: RawBucket[]) => void>;
  /** Moved each time retention or a deletion forgets hours: a fill whose readings were read before does not write. */
  private forgotten = 0;

  constructor(
    db: Database.Database,
    private readonly rawLater: RawBuckets,
  ) {
    this.stmt = {
      spans: db.prepare('SELECT lo, hi FROM reading_hour_spans WHERE device_id = ? AND sensor = ? AND side = ? AND hi >= ? AND lo <= ?'),
      dropSpan: db.prepare('DELETE FROM reading_hour_spans WHERE device_id = ? AND sensor = ? AND side = ? AND lo = ?'),
      addSpan: db.prepare('INSERT OR REPLACE INTO reading_hour_spans (device_id, sensor, side, lo, hi) VALUES (?, ?, ?, ?, ?)'),
      addHour: db.prepare('INSERT OR REPLACE INTO reading_hours (device_id, sensor, side, hour, min, max, sum, count, last) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      hours: db.prepare(rollupBucketsSql((name) => (name === 'bucket' ? 'CAST(@bucket AS INTEGER)' : `@${name}`))),
      sensorsAfter: db.prepare(sensorsAfterSql((n) => ['@device', '@sensor', '@limit'][n - 1])),
      oldest: db.prepare(`SELECT MIN(t) FROM (SELECT MIN(time_from) AS t FROM reading_chunks WHERE device_id = @device AND sensor = @sensor
        UNION ALL SELECT MIN(time_from) FROM readings_journal WHERE device_id = @device AND sensor = @sensor)`).pluck(),
      forgetHours: db.prepare('DELETE FROM reading_hours WHERE hour < ?'),
      forgetSpans: db.prepare('DELETE FROM reading_hour_spans WHERE hi <= ?'),
      trimSpans: db.prepare('UPDATE reading_hour_spans SET lo = ? WHERE lo < ?'),
      forgetDeviceHours: db.prepare('DELETE FROM reading_hours WHERE device_id = ? AND hour < ?'),
      forgetDeviceSpans: db.prepare('DELETE FROM reading_hour_spans WHERE device_id = ? AND hi <= ?'),
      trimDeviceSpans: db.prepare('UPDATE reading_hour_spans SET lo = ? WHERE device_id = ? AND lo < ?'),
    };
    this.writeTx = db.transaction((deviceId, sensor, side, plan, hours) => this.write(deviceId, sensor, side, plan, hours));
  }

  async buckets(deviceId: string, sensor: string, q: BucketQuery, plan: RollupPlan): Promise<HistoryBucket[]> {
    const side = sideKey(q.side);
    // Most charts find their hours filled: only a query with a gap takes the writer.
    const fillable = fillablePart(plan, this.oldest(deviceId, sensor));
    if (fillable && this.gaps(deviceId, sensor, side, fillable).length > 0 && !(await this.fill(deviceId, sensor, q, fillable))) {
      // Retention forgot hours while they were read: the whole range from the readings, this once.
      return compose(await this.rawLater(deviceId, sensor, q), q.bucketMs, q.limit);
    }
    const hours = this.stmt.hours.all({ device: deviceId, sensor, side, from: plan.hoursFrom, to: plan.hoursTo, bucket: q.bucketMs }) as RawBucket[];
    const rows = await withEdges(plan, q.side, (edge) => this.rawLater(deviceId, sensor, edge), hours);
    return compose(rows, q.bucketMs, q.limit);
  }

  private gaps(deviceId: string, sensor: string, side: string, plan: RollupPlan): HourSpan[] {
    return gapsIn(this.stmt.spans.all(deviceId, sensor, side, plan.hoursFrom, plan.hoursTo) as HourSpan[], plan.hoursFrom, plan.hoursTo);
  }

  private oldest(deviceId: string, sensor: string): number | null {
    return this.stmt.oldest.get({ device: deviceId, sensor }) as number | null;
  }

  sensorsAfter(after: SensorKey | null, limit: number): SensorKey[] {
    return this.stmt.sensorsAfter.all({ device: after?.deviceId ?? '', sensor: after?.sensor ?? '', limit }) as SensorKey[];
  }

  /** The background fill's step for one sensor (see sliceToFill): the hours it filled, 0 when none lacked. */
  async fillSlice(deviceId: string, sensor: string, now: number, maxHours: number): Promise<number> {
    const oldest = this.oldest(deviceId, sensor);
    if (oldest === null) return 0;
    const slice = sliceToFill(this.stmt.spans.all(deviceId, sensor, '', oldest, settledHours(now)) as HourSpan[], oldest, now, maxHours);
    if (!slice) return 0;
    await this.fill(deviceId, sensor, hourQuery(slice.lo, slice.hi - 1, undefined), slicePlan(slice));
    return (slice.hi - slice.lo) / HOUR_MS;
  }

  /**
   * Fills the hours of the plan no span covers, from the readings, and makes the spans touching it one. The hours
   * are read first (off the event loop when they hold many readings: an hour may hold a million), then written in
   * one transaction; false, and nothing written, when retention forgot hours meanwhile.
   */
  private async fill(deviceId: string, sensor: string, q: BucketQuery, plan: RollupPlan): Promise<boolean> {
    const side = sideKey(q.side);
    const forgotten = this.forgotten;
    const hours: RawBucket[] = [];
    for (const gap of this.gaps(deviceId, sensor, side, plan)) hours.push(...(await this.rawLater(deviceId, sensor, hourQuery(gap.lo, gap.hi - 1, q.side))));
    if (this.forgotten !== forgotten) return false;
    this.writeTx.immediate(deviceId, sensor, side, plan, hours);
    return true;
  }

  /** A settled hour holds what it held when read: written again by a fill that ran alongside, it is the same. */
  private write(deviceId: string, sensor: string, side: string, plan: RollupPlan, hours: RawBucket[]): void {
    for (const h of hours) this.stmt.addHour.run(deviceId, sensor, side, h.time, h.min, h.max, h.sum, h.count, h.last);
    const spans = this.stmt.spans.all(deviceId, sensor, side, plan.hoursFrom, plan.hoursTo) as HourSpan[];
    for (const s of spans) this.stmt.dropSpan.run(deviceId, sensor, side, s.lo);
    const merged = mergedSpan(spans, plan.hoursFrom, plan.hoursTo);
    this.stmt.addSpan.run(deviceId, sensor, side, merged.lo, merged.hi);
  }

  /**
   * Readings at or before `time` were deleted (of one device, or of all): every hour that held them is
   * forgotten, to be filled again from what is left when next charted. Call it in the deleting transaction.
   */
  forgetBefore(deviceId: string | null, time: number): void {
    this.forgotten++;
    const cut = (Math.floor(time / HOUR_MS) + 1) * HOUR_MS;
    if (deviceId === null) {
      this.stmt.forgetHours.run(cut);
      this.stmt.forgetSpans.run(cut);
      this.stmt.trimSpans.run(cut, cut);
    } else {
      this.stmt.forgetDeviceHours.run(deviceId, cut);
      this.stmt.forgetDeviceSpans.run(deviceId, cut);
      this.stmt.trimDeviceSpans.run(cut, deviceId, cut);
    }
  }
}
