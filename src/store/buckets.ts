import type { BucketQuery, HistoryBucket } from './types.js';
import type { RawBucket } from './rollup.js';

/**
 * Aggregated history in SQL, per dialect. The inner query turns each value into a number (or NULL: left out)
 * and ranks the rows of each bucket newest first, so `last` is the value ranked 1.
 */
const NUMBER = '-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?';

/** A JSON number, or a JSON string holding one ("21.5", as original clients send), as a double; else NULL. */
export const SQLITE_NUMERIC = `CASE
  WHEN json_type(value) IN ('integer', 'real') THEN CAST(value AS REAL)
  WHEN json_type(value) = 'text' AND trim(json_extract(value, '$')) GLOB '*[0-9]*'
    AND trim(json_extract(value, '$')) NOT GLOB '*[^0-9.eE+-]*' THEN CAST(trim(json_extract(value, '$')) AS REAL)
END`;
export const POSTGRES_NUMERIC = `CASE
  WHEN value ~ '^${NUMBER}$' THEN value::float8
  WHEN value ~ '^"\\s*${NUMBER}\\s*"$' THEN btrim(value, '" ')::float8
END`;

/** `source` is a FROM item with the columns time, seq, value; `p(n)` a placeholder: 1 bucket ms, 2 limit. */
export function bucketsSql(numeric: string, source: string, p: (n: number) => string): string {
  return `SELECT bucket AS time, MIN(v) AS min, MAX(v) AS max, AVG(v) AS avg, SUM(v) AS sum, COUNT(*) AS count, MAX(CASE WHEN rn = 1 THEN v END) AS last
    FROM (
      SELECT bucket, v, ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY time DESC, seq DESC) AS rn
      FROM (SELECT (time / ${p(1)}) * ${p(1)} AS bucket, time, seq, ${numeric} AS v FROM ${source}) AS x
      WHERE v IS NOT NULL
    ) AS ranked
    GROUP BY bucket ORDER BY bucket LIMIT ${p(2)}`;
}

export type BucketRow = { time: number; min: number; max: number; avg: number; sum: number; count: number; last: number };

export const toBucket = (r: BucketRow): HistoryBucket => ({
  time: Number(r.time), min: Number(r.min), max: Number(r.max), avg: Number(r.avg), count: Number(r.count), last: Number(r.last),
});

/** A bucket with its sum, for the hourly rollup (src/store/rollup.ts). */
export const toRawBucket = (r: BucketRow): RawBucket => ({ ...toBucket(r), sum: Number(r.sum) });

export type { BucketQuery, HistoryBucket };
