import { IotcError } from './errors.js';
import { readingJson } from './reading-wire.js';
import type { StoredReading } from '../store/types.js';

/** Room kept in a reply bound for what surrounds the readings: ok, id, sensor, more, next. */
const ENVELOPE = 512;

/** The fields a client puts into its request, in place of its own, to get what a cut reply left out. */
export type HistoryNext = { from: number; limit: number } | { to: number; limit: number };

/** A history reply that fits the bound: the readings (oldest first) and, when cut, where to go on. */
export interface HistoryPage {
  readings: StoredReading[];
  /** Their wire forms, in the same order. */
  json: string[];
  next?: HistoryNext;
}

/**
 * Cuts a history answer to `maxBytes`, keeping the readings nearest where the query reads from (the oldest
 * from `from`, else the newest). A cut never splits one millisecond, so continuing from its time repeats
 * and skips nothing: `next` says which bound to move (from or to) and the limit left.
 */
export function historyPage(rows: StoredReading[], query: { limit: number; from?: number }, maxBytes: number): HistoryPage {
  const forward = query.from !== undefined;
  const at = (k: number) => rows[forward ? k : rows.length - 1 - k];
  const budget = maxBytes - Math.min(ENVELOPE, maxBytes / 4);
  const json: string[] = [];
  let used = 0;
  for (let k = 0; k < rows.length; k++) {
    const text = readingJson(at(k));
    used += Buffer.byteLength(text) + 1;
    if (used > budget) break;
    json.push(text);
  }
  if (json.length === rows.length) return { readings: rows, json: forward ? json : json.reverse() };
  const boundary = at(json.length).time;
  while (json.length > 0 && at(json.length - 1).time === boundary) json.pop();
  if (json.length === 0) {
    throw new IotcError(
      'E_TOO_LARGE',
      `The readings at time ${boundary} alone are larger than a reply may be (${maxBytes} bytes, max-reply / IOTC_MAX_REPLY_BYTES); ` +
        `ask ${forward ? `from ${boundary + 1}` : `to ${boundary - 1}`} to go past them`,
    );
  }
  const kept = forward ? rows.slice(0, json.length) : rows.slice(rows.length - json.length);
  const limit = query.limit - json.length;
  return { readings: kept, json: forward ? json : json.reverse(), next: forward ? { from: boundary, limit } : { to: boundary, limit } };
}

/** A sensors reply that fits the bound: the latest readings, by name, and the last name sent when cut. */
export interface SensorsPage {
  readings: StoredReading[];
  json: string[];
  next?: { after: string };
}

/** UTF-8 byte order: the order both stores sort sensor names in. */
export const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Cuts a sensors answer (sorted by name) to `maxBytes`, starting after the name `after`. */
export function sensorsPage(rows: StoredReading[], after: string | undefined, maxBytes: number): SensorsPage {
  const from = after === undefined ? rows : rows.filter((r) => byteOrder(r.sensor, after) > 0);
  const budget = maxBytes - Math.min(ENVELOPE, maxBytes / 4);
  const json: string[] = [];
  let used = 0;
  for (const r of from) {
    const text = readingJson(r);
    used += Buffer.byteLength(text) + 1;
    if (used > budget && json.length > 0) break;
    json.push(text);
  }
  const readings = from.slice(0, json.length);
  return json.length === from.length ? { readings, json } : { readings, json, next: { after: readings[readings.length - 1].sensor } };
}
