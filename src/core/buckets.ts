import { IotcError } from './errors.js';

/** Buckets one aggregated history reply may hold. */
export const MAX_BUCKETS = 2000;
/** What bucket=auto aims for: enough points for a chart as wide as a screen. */
export const AUTO_POINTS = 500;
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const NICE = ['1s', '5s', '10s', '30s', '1m', '5m', '10m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '7d', '30d'].map((b) => parseBucketSize(b));

/** "5m" → 300000. Whole seconds, minutes, hours or days. */
export function parseBucketSize(text: string): number {
  const m = /^([1-9][0-9]{0,5})([smhd])$/.exec(text);
  if (!m) throw new IotcError('E_VALIDATION', 'bucket must be a size like 1m, 5m, 1h, 1d (s, m, h, d) or "auto"');
  return Number(m[1]) * UNITS[m[2]];
}

/**
 * The bucket size for a range: the given one (refused if the range would need more than MAX_BUCKETS), or for
 * "auto" the smallest round size giving at most AUTO_POINTS buckets.
 */
export function bucketFor(bucket: string, from: number, to: number): number {
  const span = Math.max(1, to - from + 1);
  if (bucket === 'auto') return NICE.find((size) => span / size <= AUTO_POINTS) ?? Math.ceil(span / AUTO_POINTS);
  const size = parseBucketSize(bucket);
  if (span / size > MAX_BUCKETS) {
    throw new IotcError('E_VALIDATION', `This range in ${bucket} buckets would be ${Math.ceil(span / size)} buckets; at most ${MAX_BUCKETS}: use a larger bucket or bucket=auto`);
  }
  return size;
}
