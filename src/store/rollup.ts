import type { BucketQuery, HistoryBucket, Side } from './types.js';

/**
 * The hourly rollup: a cache of min, max, sum, count and last per device, sensor, side and complete hour, from
 * which aggregated history over long ranges is composed instead of reading every reading of the range again.
 * It is filled lazily, by the bucket queries that need it, from the store's own raw bucket query (so it sees
 * exactly what that query sees), and never on the write path. Each store keeps, per device, sensor and side,
 * the spans of hours already filled; an hour outside every span is filled before it is read.
 *
 * An hour is cached only once it ended SETTLED_MS ago: readings are stamped by the server when they arrive and
 * committed moments later, so an hour that old gets no more readings. It changes after that only when readings
 * are deleted (retention, device deletion): the stores then forget the hours concerned (see forgetBefore).
 */
export const HOUR_MS = 3_600_000;
/** Far above the time between a reading's stamp and its commit (a batch, a slow PostgreSQL: its 30 s query timeout). */
export const SETTLED_MS = 5 * 60_000;
/**
 * Shorter ranges are answered from the readings: a day or two of them is read about as fast as its hours,
 * and would only fill the cache with hours nobody charts again.
 */
export const ROLLUP_MIN_RANGE_MS = 7 * 86_400_000;

/** A bucket as the SQL makes it, with the sum the rollup adds up across hours. */
export interface RawBucket extends HistoryBucket {
  sum: number;
}

/** A span of filled hours, [lo, hi) in ms. */
export interface HourSpan {
  lo: number;
  hi: number;
}

/** Whole settled hours [hoursFrom, hoursTo) come from the rollup; the edges before and after (inclusive ranges) from the readings. */
export interface RollupPlan {
  hoursFrom: number;
  hoursTo: number;
  before: [number, number] | null;
  after: [number, number] | null;
}

/** Rollup rows are kept for one side or, under '', for both (a chart of what either side wrote). */
export const sideKey = (side: Side | undefined): string => side ?? '';

/** How a bucket query splits, or null when it is better answered from the readings alone. */
export function planRollup(q: BucketQuery, now: number): RollupPlan | null {
  if (q.bucketMs % HOUR_MS !== 0 || q.to - q.from < ROLLUP_MIN_RANGE_MS) return null;
  const hoursFrom = Math.ceil(q.from / HOUR_MS) * HOUR_MS;
  const hoursTo = Math.min(Math.floor((q.to + 1) / HOUR_MS) * HOUR_MS, settledHours(now));
  if (hoursTo <= hoursFrom) return null;
  return {
    hoursFrom,
    hoursTo,
    before: q.from < hoursFrom ? [q.from, hoursFrom - 1] : null,
    after: hoursTo <= q.to ? [hoursTo, q.to] : null,
  };
}

/** The end of the hours that may be cached at `now` (exclusive). */
export const settledHours = (now: number): number => Math.floor((now - SETTLED_MS) / HOUR_MS) * HOUR_MS;

/** A sensor of a device, as the background fill walks them. */
export interface SensorKey {
  deviceId: string;
  sensor: string;
}

/**
 * The background fill (src/core/rollup-fill.ts) takes on, per call, at most `maxHours` of a sensor's hours (both
 * sides together, as charts ask by default) between the hour of its oldest reading and the settled hours: the
 * newest ones no span covers, so the ranges charted most are ready first. Null when nothing is lacking.
 */
export function sliceToFill(spans: readonly HourSpan[], oldest: number, now: number, maxHours: number): HourSpan | null {
  const gap = gapsIn(spans, Math.floor(oldest / HOUR_MS) * HOUR_MS, settledHours(now)).at(-1);
  return gap ? { lo: Math.max(gap.lo, gap.hi - maxHours * HOUR_MS), hi: gap.hi } : null;
}

/** Sensors after a cursor, a page at a time, in the database's order; `p(n)` a placeholder: 1 device, 2 sensor, 3 limit. */
export const sensorsAfterSql = (p: (n: number) => string): string =>
  `SELECT DISTINCT device_id AS "deviceId", sensor FROM latest WHERE device_id > ${p(1)} OR (device_id = ${p(1)} AND sensor > ${p(2)})
    ORDER BY device_id, sensor LIMIT ${p(3)}`;

/**
 * The part of a plan's hours a fill needs: none before the hour of the sensor's oldest reading (`oldest`, null:
 * it has none), where there is nothing to read. Charts and the background fill agree on it, so a chart of a
 * longer range than the history finds it filled. Null when nothing is to be filled.
 */
export function fillablePart(plan: RollupPlan, oldest: number | null): RollupPlan | null {
  if (oldest === null) return null;
  const hoursFrom = Math.max(plan.hoursFrom, Math.floor(oldest / HOUR_MS) * HOUR_MS);
  return hoursFrom < plan.hoursTo ? { ...plan, hoursFrom } : null;
}

/** A slice as the lazy fill's plan: the same code fills it, under the same spans and locks. */
export const slicePlan = (slice: HourSpan): RollupPlan => ({ hoursFrom: slice.lo, hoursTo: slice.hi, before: null, after: null });

/** The raw query for a range in hour buckets: every hour of it fits under the limit. */
export function hourQuery(from: number, to: number, side: Side | undefined): BucketQuery {
  return { from, to, bucketMs: HOUR_MS, limit: Math.floor(to / HOUR_MS) - Math.floor(from / HOUR_MS) + 1, side };
}

/** The edges of a plan as raw hour queries, run by `raw`, around the rollup's hours. */
export async function withEdges(plan: RollupPlan, side: Side | undefined, raw: (q: BucketQuery) => RawBucket[] | Promise<RawBucket[]>, hours: RawBucket[]): Promise<RawBucket[]> {
  const edge = async (e: [number, number] | null) => (e ? raw(hourQuery(e[0], e[1], side)) : []);
  return [...(await edge(plan.before)), ...hours, ...(await edge(plan.after))];
}

export type RollupParam = 'device' | 'sensor' | 'side' | 'from' | 'to' | 'bucket';

/**
 * The cached hours [from, to) of a sensor added up into buckets in the database (a year of hours is 8760 rows;
 * its buckets are a few hundred): `last` is that of the bucket's newest hour. `p` names a placeholder.
 */
export function rollupBucketsSql(p: (name: RollupParam) => string): string {
  return `SELECT (hour / ${p('bucket')}) * ${p('bucket')} AS time, MIN(min) AS min, MAX(max) AS max, SUM(sum) AS sum,
      CAST(SUM(count) AS BIGINT) AS count, MAX(CASE WHEN rn = 1 THEN last END) AS last
    FROM (
      SELECT hour, min, max, sum, count, last, ROW_NUMBER() OVER (PARTITION BY hour / ${p('bucket')} ORDER BY hour DESC) AS rn
      FROM reading_hours
      WHERE device_id = ${p('device')} AND sensor = ${p('sensor')} AND side = ${p('side')} AND hour >= ${p('from')} AND hour < ${p('to')}
    ) AS h
    GROUP BY 1 ORDER BY 1`;
}

/** The parts of [from, to) no span covers, oldest first. Spans may overlap (two nodes filled at once). */
export function gapsIn(spans: readonly HourSpan[], from: number, to: number): HourSpan[] {
  const gaps: HourSpan[] = [];
  let at = from;
  for (const s of [...spans].sort((a, b) => a.lo - b.lo)) {
    if (s.lo > at) gaps.push({ lo: at, hi: Math.min(s.lo, to) });
    at = Math.max(at, s.hi);
    if (at >= to) break;
  }
  if (at < to) gaps.push({ lo: at, hi: to });
  return gaps.filter((g) => g.hi > g.lo);
}

/** The one span that replaces the spans touching [from, to) once the gaps between them are filled. */
export function mergedSpan(spans: readonly HourSpan[], from: number, to: number): HourSpan {
  return { lo: Math.min(from, ...spans.map((s) => s.lo)), hi: Math.max(to, ...spans.map((s) => s.hi)) };
}

/**
 * Adds up time-ordered rows of disjoint ranges (hours, or the edges' partial hours) into buckets of `bucketMs`.
 * `last` is the last of the newest row in a bucket: the rows do not overlap in time, so it is the newest value.
 */
export function compose(rows: readonly RawBucket[], bucketMs: number, limit: number): HistoryBucket[] {
  const out: HistoryBucket[] = [];
  let cur: RawBucket | null = null;
  const close = () => {
    if (cur) out.push({ time: cur.time, min: cur.min, max: cur.max, avg: cur.sum / cur.count, count: cur.count, last: cur.last });
  };
  for (const r of rows) {
    if (r.count === 0) continue;
    const time = Math.floor(r.time / bucketMs) * bucketMs;
    if (cur && cur.time === time) {
      cur.min = Math.min(cur.min, r.min);
      cur.max = Math.max(cur.max, r.max);
      cur.sum += r.sum;
      cur.count += r.count;
      cur.last = r.last;
      continue;
    }
    close();
    if (out.length >= limit) return out;
    cur = { time, min: r.min, max: r.max, avg: 0, sum: r.sum, count: r.count, last: r.last };
  }
  close();
  return out.slice(0, limit);
}
